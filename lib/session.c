/*
 * session.c - the session lifecycle (facts in, verdicts out) and the
 * verdict core the checks share: events, modes, the penalty score, errors
 * per session
 *
 * Each check runs in its mode: off, block (refuse), monitor (log only) or
 * score (add its weight to the session's score; at the threshold the
 * session is refused). An operator's catalogue override to "monitor" turns
 * any check's refusal into a log line. The checks themselves live in
 * check_*.c; this file calls them stage by stage.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>         /* AF_INET */

#include "mailaddr.h"
#include "policy_int.h"
#include "spf.h"

void sg_verdict_session_alloc(struct sg_verdict *v)
{
    sg_verdict_clear(v);
    sg_verdict_set(v, SG_EV_SESSION_ALLOC, SG_ACT_TEMPFAIL, SG_STAGE_CONNECT,
                   NULL);
}

static void log_ctx(const struct sg_session *s, struct sg_log_ctx *ctx)
{
    ctx->queue_id = s->qid[0] ? s->qid : NULL;
    ctx->client = s->client;
    ctx->service = s->service;
    ctx->session = s->id;
}

void sg_pol_emit(const struct sg_session *s, enum sg_event ev,
                 enum sg_action act, const struct sg_args *args)
{
    struct sg_log_ctx ctx;

    log_ctx(s, &ctx);
    sg_log_event(s->eng->log, ev, act, &ctx, args);
}

void sg_pol_add_score(struct sg_session *s, const char *check, long weight)
{
    size_t len = strlen(s->parts);

    s->score += (unsigned) weight;
    snprintf(s->parts + len, sizeof(s->parts) - len, "%s%s=%ld",
             len ? "," : "", check, weight);
}

/*
 * fire - a check found its limit exceeded: apply its mode. Returns true
 * when the verdict now refuses.
 */
bool sg_pol_fire(struct sg_session *s, enum sg_event ev, long mode,
                 const char *check, long weight, const struct sg_args *args,
                 enum sg_stage stage, struct sg_verdict *v)
{
    enum sg_action act = sg_event_action(ev);

    if (mode == SG_MODE_OFF)
        return false;
    if (mode == SG_MODE_MONITOR || act == SG_ACT_MONITOR) {
        act = SG_ACT_MONITOR;
    } else if (mode == SG_MODE_SCORE) {
        act = SG_ACT_SCORE;
        sg_pol_add_score(s, check, weight);
    }
    sg_pol_emit(s, ev, act, args);
    if (act < SG_ACT_REJECT)
        return false;
    sg_verdict_set(v, ev, act, stage, NULL);
    return true;
}

/* score_check - refuse once the penalty score reaches the threshold */
bool sg_pol_score_check(struct sg_session *s, enum sg_stage stage,
                        struct sg_verdict *v)
{
    long threshold = sg_config_get(s->cfg, SG_SET_score_threshold);
    struct sg_args args;
    enum sg_action act;

    if (s->score < (unsigned long) threshold || sg_verdict_refuses(v))
        return sg_verdict_refuses(v);
    act = sg_event_action(SG_EV_SCORE_EXCEEDED);
    sg_args_init(&args);
    sg_args_add(&args, "score", "%u", s->score);
    sg_args_add(&args, "threshold", "%ld", threshold);
    sg_args_add(&args, "parts", "%s", s->parts);
    if (s->score_fired && act != SG_ACT_MONITOR) {
        sg_verdict_set(v, SG_EV_SCORE_EXCEEDED, act, stage, NULL);
        return true;
    }
    s->score_fired = true;
    return sg_pol_fire(s, SG_EV_SCORE_EXCEEDED, SG_MODE_BLOCK, "score", 0, &args,
                stage, v);
}

/* count_error - one more session error; closes the session over MaxErrors */
void sg_pol_count_error(struct sg_session *s, struct sg_verdict *v)
{
    long max = sg_config_get(s->cfg, SG_SET_max_errors);
    long mode = sg_config_get(s->cfg, SG_SET_do_max_errors);
    struct sg_args args;

    s->errors++;
    if (s->exempt || max == 0 || s->errors <= (unsigned long) max)
        return;
    /* Monitor and score act once; block closes whenever it is asked. */
    if (s->errors_fired && mode != SG_MODE_BLOCK)
        return;
    s->errors_fired = true;
    sg_args_init(&args);
    sg_args_add(&args, "errors", "%u", s->errors);
    sg_args_add(&args, "max_errors", "%ld", max);
    if (!sg_pol_fire(s, SG_EV_MAX_ERRORS, mode, "MaxErrors",
              sg_config_get(s->cfg, SG_SET_score_max_errors), &args,
              SG_STAGE_OTHER, v))
        sg_pol_score_check(s, SG_STAGE_OTHER, v);
}

struct sg_session *sg_session_new(struct sg_engine *eng,
                                  const struct sg_session_info *info)
{
    struct sg_session *s = sg_calloc(1, sizeof(*s));
    struct sg_config *cfg;

    if (s == NULL) {
        struct sg_args args;
        struct sg_log_ctx ctx = { NULL, info->client_addr, info->service, 0 };

        sg_args_init(&args);
        sg_args_add(&args, "reason", "out of memory");
        sg_log_event(eng->log, SG_EV_SESSION_ALLOC, SG_ACT_TEMPFAIL, &ctx,
                     &args);
        return NULL;
    }
    s->eng = eng;
    s->cfg = cfg = sg_confhold_get(&eng->conf);
    s->id = atomic_fetch_add(&eng->session_seq, 1) + 1;
    sg_strlcpy(s->service, info->service && *info->service ? info->service
               : "default", sizeof(s->service));
    if (info->mta_host == NULL ||
        sg_strlcpy(s->mta_host, info->mta_host, sizeof(s->mta_host)) != 0)
        s->mta_host[0] = '\0';
    s->addr_ok = info->client_addr != NULL
        && sg_addr_parse(info->client_addr, &s->addr) == SG_OK;
    if (s->addr_ok) {
        sg_addr_format(&s->addr, s->client, sizeof(s->client));
        sg_addr_key(&s->addr, (int) sg_config_get(cfg, SG_SET_ipv4_prefix),
                    (int) sg_config_get(cfg, SG_SET_ipv6_prefix), s->ipkey,
                    sizeof(s->ipkey));
    } else {
        sg_strlcpy(s->client, "unknown", sizeof(s->client));
        sg_strlcpy(s->ipkey, "unknown", sizeof(s->ipkey));
    }
    return s;
}

void sg_session_free(struct sg_session *s)
{
    if (s == NULL)
        return;
    if (s->counted)
        sg_state_conc_leave(s->eng->state, s->service, s->ipkey);
    sg_rep_free(s);
    sg_config_unref(s->cfg);
    sg_free(s);
}

void sg_session_connect(struct sg_session *s, struct sg_verdict *v)
{
    sg_verdict_clear(v);
    if (!s->addr_ok)
        return;                 /* no address (local submission): no limits */
    if (sg_chk_lists(s, v) || s->exempt)
        return;
    if (sg_chk_db(s, v) || sg_chk_ban(s, v) || sg_chk_frequency(s, v)
        || sg_chk_concurrency(s, v))
        return;
    sg_rep_start(s);
    sg_rep_stage(s, SG_DNS_STAGE_CONNECT, NULL, v);
    if (!sg_verdict_refuses(v))
        sg_pol_score_check(s, SG_STAGE_CONNECT, v);
}

void sg_session_helo(struct sg_session *s, const char *helo,
                     struct sg_verdict *v)
{
    sg_verdict_clear(v);
    if (helo == NULL || sg_strlcpy(s->helo, helo, sizeof(s->helo)) != 0)
        s->helo[0] = '\0';
    sg_rep_stage(s, SG_DNS_STAGE_HELO, NULL, v);
    if (sg_verdict_refuses(v))
        sg_pol_count_error(s, v);
    else
        sg_pol_score_check(s, SG_STAGE_OTHER, v);
}

/* malformed - an envelope address that does not parse */
static bool malformed(struct sg_session *s, const char *command,
                      const char *arg, enum sg_stage stage, struct sg_verdict *v)
{
    struct sg_args args;

    sg_args_init(&args);
    sg_args_add(&args, "command", "%s", command);
    sg_args_add(&args, "address", "%s", arg ? arg : "NULL");
    return sg_pol_fire(s, SG_EV_ADDRESS_MALFORMED,
                sg_config_get(s->cfg, SG_SET_do_relay), "Address",
                sg_config_get(s->cfg, SG_SET_score_relay), &args, stage, v);
}

void sg_session_set_auth(struct sg_session *s, const char *user)
{
    if (user == NULL || sg_strlcpy(s->auth, user, sizeof(s->auth)) != 0)
        s->auth[0] = '\0';
}

void sg_session_mail(struct sg_session *s, const char *sender,
                     struct sg_verdict *v)
{
    sg_verdict_clear(v);
    s->in_mail = true;
    s->rcpts = 0;
    s->sender_key[0] = '\0';
    s->sender_ok = sg_mailaddr_parse(sender, &s->sender) == SG_OK;
    if (!s->sender_ok) {
        if (malformed(s, "MAIL FROM", sender, SG_STAGE_MAIL, v))
            sg_pol_count_error(s, v);
        return;
    }
    if (!s->sender.null)
        sg_mailaddr_key(&s->sender, s->sender_key, sizeof(s->sender_key));
    if (s->exempt || !s->addr_ok)
        return;
    sg_rep_stage(s, SG_DNS_STAGE_MAIL, NULL, v);
    if (sg_verdict_refuses(v)) {
        sg_pol_count_error(s, v);
        return;
    }
    if (!s->sender.null && s->sender.domain_ok && s->sender.domain[0] != '['
        && s->sender.domain[0] != '\0')
        sg_chk_domain(s, s->sender.domain, v);
    if (!sg_verdict_refuses(v))
        sg_chk_rates(s, false, SG_STAGE_MAIL, v);
    if (!sg_verdict_refuses(v))
        sg_chk_spf(s, v);
    if (!sg_verdict_refuses(v))
        sg_pol_score_check(s, SG_STAGE_OTHER, v);
    if (sg_verdict_refuses(v))
        sg_pol_count_error(s, v);
}

void sg_session_rcpt(struct sg_session *s, const char *rcpt,
                     const char *mailer, struct sg_verdict *v)
{
    struct sg_mailaddr r;
    char key[SG_MAILADDR_KEYMAX];

    sg_verdict_clear(v);
    if (sg_mailaddr_parse(rcpt, &r) != SG_OK || r.null) {
        if (malformed(s, "RCPT TO", rcpt, SG_STAGE_RCPT, v))
            sg_pol_count_error(s, v);
        return;
    }
    sg_mailaddr_key(&r, key, sizeof(key));
    sg_rep_stage(s, SG_DNS_STAGE_RCPT, key, v);
    if (!sg_verdict_refuses(v) && !sg_chk_rcpt_count(s, v)
        && !sg_chk_relay(s, &r, key, mailer, v)
        && !sg_chk_rates(s, true, SG_STAGE_RCPT, v))
        sg_pol_score_check(s, SG_STAGE_OTHER, v);
    if (sg_verdict_refuses(v)) {
        sg_pol_count_error(s, v);
        return;
    }
    s->rcpts++;
    sg_chk_count_rates(s, true);
}

void sg_session_message_done(struct sg_session *s)
{
    if (s->in_mail && s->sender_ok)
        sg_chk_count_rates(s, false);
    sg_session_reset(s);
}

void sg_session_unknown(struct sg_session *s, const char *command,
                        struct sg_verdict *v)
{
    struct sg_args args;
    char cmd[64];
    long max = sg_config_get(s->cfg, SG_SET_max_errors);

    sg_verdict_clear(v);
    /* Log the verb only: the rest may be anything, of any length. */
    snprintf(cmd, sizeof(cmd), "%.*s", (int) strcspn(command ? command : "",
                                                      " \t\r\n"),
             command ? command : "");
    sg_args_init(&args);
    sg_args_add(&args, "command", "%s", cmd);
    sg_args_add(&args, "errors", "%u", s->errors + 1);
    sg_args_add(&args, "max_errors", "%ld", max);
    sg_pol_emit(s, SG_EV_UNKNOWN_COMMAND, SG_ACT_NONE, &args);
    sg_pol_count_error(s, v);
}

void sg_session_reset(struct sg_session *s)
{
    s->qid[0] = '\0';
    s->in_mail = false;
    s->sender_ok = false;
    s->sender_key[0] = '\0';
    s->auth[0] = '\0';
    s->rcpts = 0;
    s->spf_received[0] = s->spf_ar[0] = '\0';
}

void sg_session_headers(struct sg_session *s, sg_header_fn fn, void *arg)
{
    char recv[SG_DNS_NAME_MAX], ar[1200];
    size_t len;

    if (s->spf_ar[0] == '\0' && s->score == 0)
        return;
    if (s->spf_received[0] != '\0')
        fn(arg, "Received-SPF", s->spf_received);
    sg_chk_receiver(s, recv, sizeof(recv));
    len = (size_t) snprintf(ar, sizeof(ar), "%s", recv);
    if (s->score > 0 && len < sizeof(ar))
        len += (size_t) snprintf(ar + len, sizeof(ar) - len,
                                 " (smtpguard score=%u/%ld %s)", s->score,
                                 sg_config_get(s->cfg,
                                               SG_SET_score_threshold),
                                 s->parts);
    if (len < sizeof(ar))
        snprintf(ar + len, sizeof(ar) - len, "; %s",
                 s->spf_ar[0] ? s->spf_ar : "none");
    fn(arg, "Authentication-Results", ar);
}

void sg_session_set_queue_id(struct sg_session *s, const char *qid)
{
    if (qid == NULL || sg_strlcpy(s->qid, qid, sizeof(s->qid)) != 0)
        s->qid[0] = '\0';
}

unsigned sg_session_errors(const struct sg_session *s)
{
    return s->errors;
}

unsigned sg_session_score(const struct sg_session *s)
{
    return s->score;
}
