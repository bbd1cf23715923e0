/*
 * policy.c - the session limits: deny list, exemptions, bans, connection
 * frequency, concurrency, client subnets per sender domain, errors per
 * session, and the penalty score
 *
 * Each check runs in its mode: off, block (refuse), monitor (log only) or
 * score (add its weight to the session's score; at the threshold the
 * session is refused). An operator's catalogue override to "monitor" turns
 * any check's refusal into a log line.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>         /* AF_INET */

#include "policy.h"

struct sg_session {
    struct sg_engine *eng;
    struct sg_config *cfg;      /* pinned at connect */
    struct sg_addr addr;
    bool addr_ok;
    bool exempt;
    bool counted;               /* holds concurrency counts */
    bool errors_fired;
    bool score_fired;
    char client[SG_ADDR_STRLEN];
    char ipkey[SG_ADDR_STRLEN];
    char service[65];
    char qid[32];
    unsigned long id;
    unsigned errors;
    unsigned score;
    char parts[160];
};

enum stage { STAGE_CONNECT, STAGE_OTHER };

/* Client-facing texts: short, no limits revealed, the event ID appended. */
static const char *reply_text(enum sg_event ev)
{
    switch (ev) {
    case SG_EV_MAX_SESSIONS:
        return "Too many concurrent sessions, try again later";
    case SG_EV_MAX_IP_SESSIONS:
        return "Too many concurrent sessions from your address, try again "
            "later";
    case SG_EV_IP_FREQUENCY:
        return "Too many connections from your address, try again later";
    case SG_EV_IP_BANNED:
        return "Your address is temporarily blocked, try again later";
    case SG_EV_DOMAIN_IP_LIMIT:
    case SG_EV_DOMAIN_BLOCKED:
        return "Sender domain temporarily blocked, try again later";
    case SG_EV_MAX_ERRORS:
        return "Too many errors, closing connection";
    case SG_EV_DENY_STRICT:
        return "Access denied";
    case SG_EV_SCORE_EXCEEDED:
        return "Refused by local policy";
    default:
        return "Temporary local problem, try again later";
    }
}

/* verdict_set - fill a refusing verdict for `ev` with action `act` */
static void verdict_set(struct sg_verdict *v, enum sg_event ev,
                        enum sg_action act, enum stage stage)
{
    const struct sg_event_def *def = sg_event_def(ev);
    const char *code, *xcode;

    switch (act) {
    case SG_ACT_CLOSE:
        code = "421", xcode = "4.7.0";
        break;
    case SG_ACT_TEMPFAIL:
        code = "451";
        xcode = def->facility == SG_FAC_SYSTEM || ev == SG_EV_SESSION_ALLOC
            ? "4.3.0" : "4.7.1";
        break;
    default:
        code = stage == STAGE_CONNECT ? "554" : "550", xcode = "5.7.1";
        break;
    }
    v->action = act;
    v->event = ev;
    sg_strlcpy(v->code, code, sizeof(v->code));
    sg_strlcpy(v->xcode, xcode, sizeof(v->xcode));
    snprintf(v->text, sizeof(v->text), "%s [smtpguard %s]", reply_text(ev),
             def->id);
}

static void verdict_clear(struct sg_verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->action = SG_ACT_NONE;
}

void sg_verdict_session_alloc(struct sg_verdict *v)
{
    verdict_clear(v);
    verdict_set(v, SG_EV_SESSION_ALLOC, SG_ACT_TEMPFAIL, STAGE_CONNECT);
}

static void log_ctx(const struct sg_session *s, struct sg_log_ctx *ctx)
{
    ctx->queue_id = s->qid[0] ? s->qid : NULL;
    ctx->client = s->client;
    ctx->service = s->service;
    ctx->session = s->id;
}

static void emit(const struct sg_session *s, enum sg_event ev,
                 enum sg_action act, const struct sg_args *args)
{
    struct sg_log_ctx ctx;

    log_ctx(s, &ctx);
    sg_log_event(s->eng->log, ev, act, &ctx, args);
}

static void add_score(struct sg_session *s, const char *check, long weight)
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
static bool fire(struct sg_session *s, enum sg_event ev, long mode,
                 const char *check, long weight, const struct sg_args *args,
                 enum stage stage, struct sg_verdict *v)
{
    enum sg_action act = sg_event_action(ev);

    if (mode == SG_MODE_OFF)
        return false;
    if (mode == SG_MODE_MONITOR || act == SG_ACT_MONITOR) {
        act = SG_ACT_MONITOR;
    } else if (mode == SG_MODE_SCORE) {
        act = SG_ACT_SCORE;
        add_score(s, check, weight);
    }
    emit(s, ev, act, args);
    if (act < SG_ACT_REJECT)
        return false;
    verdict_set(v, ev, act, stage);
    return true;
}

/* score_check - refuse once the penalty score reaches the threshold */
static bool score_check(struct sg_session *s, enum stage stage,
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
        verdict_set(v, SG_EV_SCORE_EXCEEDED, act, stage);
        return true;
    }
    s->score_fired = true;
    return fire(s, SG_EV_SCORE_EXCEEDED, SG_MODE_BLOCK, "score", 0, &args,
                stage, v);
}

/* count_error - one more session error; closes the session over MaxErrors */
static void count_error(struct sg_session *s, struct sg_verdict *v)
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
    if (!fire(s, SG_EV_MAX_ERRORS, mode, "MaxErrors",
              sg_config_get(s->cfg, SG_SET_score_max_errors), &args,
              STAGE_OTHER, v))
        score_check(s, STAGE_OTHER, v);
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
    sg_config_unref(s->cfg);
    sg_free(s);
}

/* check_exempt - deny list first, then the exemption lists */
static bool check_lists(struct sg_session *s, struct sg_verdict *v)
{
    static const enum sg_iplist exempt_lists[] = {
        SG_LIST_NOPROCESSING, SG_LIST_WHITELIST, SG_LIST_ISPIP,
    };
    const char *entry;
    struct sg_args args;

    if (sg_config_ip_listed(s->cfg, SG_LIST_DENY, &s->addr, &entry)) {
        sg_args_init(&args);
        sg_args_add(&args, "entry", "%s", entry);
        if (fire(s, SG_EV_DENY_STRICT,
                 sg_config_get(s->cfg, SG_SET_do_deny_connect), "DenyConnect",
                 0, &args, STAGE_CONNECT, v))
            return true;
    }
    for (size_t i = 0; i < sizeof(exempt_lists) / sizeof(exempt_lists[0]);
         i++)
        if (sg_config_ip_listed(s->cfg, exempt_lists[i], &s->addr, &entry)) {
            s->exempt = true;
            sg_args_init(&args);
            sg_args_add(&args, "list", "%s", sg_iplist_name(exempt_lists[i]));
            sg_args_add(&args, "entry", "%s", entry);
            emit(s, SG_EV_EXEMPT, SG_ACT_ACCEPT, &args);
            break;
        }
    return false;
}

static bool check_ban(struct sg_session *s, struct sg_verdict *v)
{
    struct sg_ban ban;
    struct sg_args args;
    sg_time_t now = sg_engine_now(s->eng);

    if (!sg_state_ban_find(s->eng->state, SG_BAN_IP, s->ipkey, now, &ban))
        return false;
    sg_args_init(&args);
    sg_args_add(&args, "network", "%s", s->ipkey);
    sg_args_add(&args, "remaining", "%lld", (long long) (ban.expires - now));
    sg_args_add(&args, "ban_reason", "%s", ban.reason);
    return fire(s, SG_EV_IP_BANNED, SG_MODE_BLOCK, "ban", 0, &args,
                STAGE_CONNECT, v);
}

static bool check_frequency(struct sg_session *s, struct sg_verdict *v)
{
    long mode = sg_config_get(s->cfg, SG_SET_do_frequency_ip);
    long max = sg_config_get(s->cfg, SG_SET_max_ip_connects);
    long window = sg_config_get(s->cfg, SG_SET_ip_duration);
    long expire = sg_config_get(s->cfg, SG_SET_ip_expiration);
    sg_time_t now = sg_engine_now(s->eng);
    struct sg_args args;
    unsigned n;

    if (mode == SG_MODE_OFF || max == 0)
        return false;
    n = sg_state_rate_hit(s->eng->state, s->ipkey, now, window);
    if (n <= (unsigned long) max)
        return false;
    /* Monitor and score act once per window: at the first crossing. */
    if (mode != SG_MODE_BLOCK && n != (unsigned long) max + 1)
        return false;
    sg_args_init(&args);
    sg_args_add(&args, "network", "%s", s->ipkey);
    sg_args_add(&args, "connections", "%u", n);
    sg_args_add(&args, "duration", "%ld", window);
    sg_args_add(&args, "max_connects", "%ld", max);
    sg_args_add(&args, "ban_seconds", "%ld", expire);
    if (!fire(s, SG_EV_IP_FREQUENCY, mode, "FrequencyIP",
              sg_config_get(s->cfg, SG_SET_score_frequency_ip), &args,
              STAGE_CONNECT, v))
        return false;
    {
        struct sg_ban ban = { .kind = SG_BAN_IP, .created = now,
                              .expires = now + expire };

        sg_strlcpy(ban.key, s->ipkey, sizeof(ban.key));
        sg_strlcpy(ban.reason, sg_event_def(SG_EV_IP_FREQUENCY)->id,
                   sizeof(ban.reason));
        sg_engine_ban(s->eng, &ban);
        sg_state_rate_reset(s->eng->state, s->ipkey, now);
    }
    return true;
}

static bool check_concurrency(struct sg_session *s, struct sg_verdict *v)
{
    struct sg_conc_counts c;
    struct sg_args args;
    long max, mode;

    if (sg_state_conc_enter(s->eng->state, s->service, s->ipkey, &c)
        != SG_OK) {
        sg_args_init(&args);
        sg_args_add(&args, "reason", "out of memory counting sessions");
        emit(s, SG_EV_SESSION_ALLOC, SG_ACT_TEMPFAIL, &args);
        verdict_set(v, SG_EV_SESSION_ALLOC, SG_ACT_TEMPFAIL, STAGE_CONNECT);
        return true;
    }
    s->counted = true;
    mode = sg_config_get(s->cfg, SG_SET_do_max_sessions);
    max = sg_config_get(s->cfg, SG_SET_max_sessions);
    if (max > 0 && c.global > max) {
        sg_args_init(&args);
        sg_args_add(&args, "max_sessions", "%ld", max);
        sg_args_add(&args, "scope", "global");
        if (fire(s, SG_EV_MAX_SESSIONS, mode, "MaxSMTPSessions",
                 sg_config_get(s->cfg, SG_SET_score_max_sessions), &args,
                 STAGE_CONNECT, v))
            return true;
    }
    max = sg_config_service_limit(s->cfg, s->service);
    if (max > 0 && c.service > max) {
        sg_args_init(&args);
        sg_args_add(&args, "max_sessions", "%ld", max);
        sg_args_add(&args, "scope", "service");
        if (fire(s, SG_EV_MAX_SESSIONS, mode, "MaxSMTPServiceSessions",
                 sg_config_get(s->cfg, SG_SET_score_max_sessions), &args,
                 STAGE_CONNECT, v))
            return true;
    }
    max = sg_config_get(s->cfg, SG_SET_max_ip_sessions);
    if (max > 0 && c.client > max) {
        sg_args_init(&args);
        sg_args_add(&args, "network", "%s", s->ipkey);
        sg_args_add(&args, "max_sessions", "%ld", max);
        if (fire(s, SG_EV_MAX_IP_SESSIONS,
                 sg_config_get(s->cfg, SG_SET_do_max_ip_sessions),
                 "MaxSMTPipSessions",
                 sg_config_get(s->cfg, SG_SET_score_max_ip_sessions), &args,
                 STAGE_CONNECT, v))
            return true;
    }
    return false;
}

void sg_session_connect(struct sg_session *s, struct sg_verdict *v)
{
    verdict_clear(v);
    if (!s->addr_ok)
        return;                 /* no address (local submission): no limits */
    if (check_lists(s, v) || s->exempt)
        return;
    if (check_ban(s, v) || check_frequency(s, v) || check_concurrency(s, v))
        return;
    score_check(s, STAGE_CONNECT, v);
}

void sg_session_helo(struct sg_session *s, const char *helo,
                     struct sg_verdict *v)
{
    (void) helo;
    verdict_clear(v);
    score_check(s, STAGE_OTHER, v);
}

/* sender_domain - the domain of an envelope sender; false for <> */
static bool sender_domain(const char *sender, char *out, size_t size)
{
    char buf[512];
    const char *at;
    size_t len;

    if (sender == NULL)
        return false;
    if (*sender == '<')
        sender++;
    len = strcspn(sender, ">");
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, sender, len);
    buf[len] = '\0';
    if ((at = strrchr(buf, '@')) == NULL)
        return false;
    return sg_domain_normalize(at + 1, out, size) == SG_OK;
}

static bool check_domain(struct sg_session *s, const char *domain,
                         struct sg_verdict *v)
{
    long mode = sg_config_get(s->cfg, SG_SET_do_domain_ip);
    long max = sg_config_get(s->cfg, SG_SET_max_domain_ip);
    long window = sg_config_get(s->cfg, SG_SET_domain_ip_duration);
    long expire = sg_config_get(s->cfg, SG_SET_domain_ip_expiration);
    sg_time_t now = sg_engine_now(s->eng);
    char subnet[SG_ADDR_STRLEN];
    struct sg_ban ban;
    struct sg_args args;
    unsigned n;

    if (sg_state_ban_find(s->eng->state, SG_BAN_DOMAIN, domain, now, &ban)) {
        sg_args_init(&args);
        sg_args_add(&args, "domain", "%s", domain);
        sg_args_add(&args, "remaining", "%lld",
                    (long long) (ban.expires - now));
        return fire(s, SG_EV_DOMAIN_BLOCKED, SG_MODE_BLOCK, "domain ban", 0,
                    &args, STAGE_OTHER, v);
    }
    if (mode == SG_MODE_OFF || max == 0
        || sg_config_domain_exempt(s->cfg, domain))
        return false;
    sg_addr_key(&s->addr, (int) sg_config_get(s->cfg, SG_SET_domain_v4_prefix),
                (int) sg_config_get(s->cfg, SG_SET_domain_v6_prefix), subnet,
                sizeof(subnet));
    n = sg_state_domain_hit(s->eng->state, domain, subnet, now, window);
    if (n <= (unsigned long) max)
        return false;
    sg_args_init(&args);
    sg_args_add(&args, "domain", "%s", domain);
    sg_args_add(&args, "subnets", "%u", n);
    sg_args_add(&args, "max_subnets", "%ld", max);
    sg_args_add(&args, "duration", "%ld", window);
    sg_args_add(&args, "ban_seconds", "%ld", expire);
    /* In monitor/score mode forget the history so the event fires again
     * only after another max_subnets switches, not on every mail. */
    if (!fire(s, SG_EV_DOMAIN_IP_LIMIT, mode, "DomainIP",
              sg_config_get(s->cfg, SG_SET_score_domain_ip), &args,
              STAGE_OTHER, v)) {
        sg_state_domain_reset(s->eng->state, domain);
        return false;
    }
    memset(&ban, 0, sizeof(ban));
    ban.kind = SG_BAN_DOMAIN;
    ban.created = now;
    ban.expires = now + expire;
    sg_strlcpy(ban.key, domain, sizeof(ban.key));
    sg_strlcpy(ban.reason, sg_event_def(SG_EV_DOMAIN_IP_LIMIT)->id,
               sizeof(ban.reason));
    sg_engine_ban(s->eng, &ban);
    sg_state_domain_reset(s->eng->state, domain);
    return true;
}

void sg_session_mail(struct sg_session *s, const char *sender,
                     struct sg_verdict *v)
{
    char domain[256];

    verdict_clear(v);
    if (s->exempt || !s->addr_ok)
        return;
    if (sender_domain(sender, domain, sizeof(domain)))
        check_domain(s, domain, v);
    if (!sg_verdict_refuses(v))
        score_check(s, STAGE_OTHER, v);
    if (sg_verdict_refuses(v))
        count_error(s, v);
}

void sg_session_unknown(struct sg_session *s, const char *command,
                        struct sg_verdict *v)
{
    struct sg_args args;
    char cmd[64];
    long max = sg_config_get(s->cfg, SG_SET_max_errors);

    verdict_clear(v);
    /* Log the verb only: the rest may be anything, of any length. */
    snprintf(cmd, sizeof(cmd), "%.*s", (int) strcspn(command ? command : "",
                                                      " \t\r\n"),
             command ? command : "");
    sg_args_init(&args);
    sg_args_add(&args, "command", "%s", cmd);
    sg_args_add(&args, "errors", "%u", s->errors + 1);
    sg_args_add(&args, "max_errors", "%ld", max);
    emit(s, SG_EV_UNKNOWN_COMMAND, SG_ACT_NONE, &args);
    count_error(s, v);
}

void sg_session_reset(struct sg_session *s)
{
    s->qid[0] = '\0';
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
