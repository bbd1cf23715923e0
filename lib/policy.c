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
#include <unistd.h>               /* gethostname */
#include <sys/socket.h>         /* AF_INET */

#include "dname.h"
#include "mailaddr.h"
#include "policy_int.h"
#include "relay.h"
#include "spf.h"
#include "spfpool.h"

#define RATE_WINDOW 60          /* the per-minute limits */

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

/* check_lists - deny list first, then the exemption lists */
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
        if (sg_pol_fire(s, SG_EV_DENY_STRICT,
                 sg_config_get(s->cfg, SG_SET_do_deny_connect), "DenyConnect",
                 sg_config_get(s->cfg, SG_SET_score_deny_connect), &args,
                 SG_STAGE_CONNECT, v))
            return true;
        /* Score mode: the deny list still comes before the exemptions. */
        if (sg_pol_score_check(s, SG_STAGE_CONNECT, v))
            return true;
    }
    for (size_t i = 0; i < sizeof(exempt_lists) / sizeof(exempt_lists[0]);
         i++)
        if (sg_config_ip_listed(s->cfg, exempt_lists[i], &s->addr, &entry)) {
            s->exempt = true;
            sg_args_init(&args);
            sg_args_add(&args, "list", "%s", sg_iplist_name(exempt_lists[i]));
            sg_args_add(&args, "entry", "%s", entry);
            sg_pol_emit(s, SG_EV_EXEMPT, SG_ACT_ACCEPT, &args);
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
    return sg_pol_fire(s, SG_EV_IP_BANNED, SG_MODE_BLOCK, "ban", 0, &args,
                SG_STAGE_CONNECT, v);
}

static bool check_frequency(struct sg_session *s, struct sg_verdict *v)
{
    long mode = sg_config_get(s->cfg, SG_SET_do_frequency_ip);
    long max = sg_config_get(s->cfg, SG_SET_max_ip_connects);
    long window = sg_config_get(s->cfg, SG_SET_ip_duration);
    long expire = sg_config_get(s->cfg, SG_SET_ip_expiration);
    sg_time_t now = sg_engine_now(s->eng);
    char key[SG_RATE_KEY_MAX];
    struct sg_args args;
    unsigned n;

    if (mode == SG_MODE_OFF || max == 0)
        return false;
    snprintf(key, sizeof(key), "conn:%s", s->ipkey);
    n = sg_state_rate_hit(s->eng->state, key, now, window);
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
    if (!sg_pol_fire(s, SG_EV_IP_FREQUENCY, mode, "FrequencyIP",
              sg_config_get(s->cfg, SG_SET_score_frequency_ip), &args,
              SG_STAGE_CONNECT, v))
        return false;
    {
        struct sg_ban ban = { .kind = SG_BAN_IP, .created = now,
                              .expires = now + expire };

        sg_strlcpy(ban.key, s->ipkey, sizeof(ban.key));
        sg_strlcpy(ban.reason, sg_event_def(SG_EV_IP_FREQUENCY)->id,
                   sizeof(ban.reason));
        sg_engine_ban(s->eng, &ban);
        sg_state_rate_reset(s->eng->state, key, now);
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
        sg_pol_emit(s, SG_EV_SESSION_ALLOC, SG_ACT_TEMPFAIL, &args);
        sg_verdict_set(v, SG_EV_SESSION_ALLOC, SG_ACT_TEMPFAIL, SG_STAGE_CONNECT,
                   NULL);
        return true;
    }
    s->counted = true;
    mode = sg_config_get(s->cfg, SG_SET_do_max_sessions);
    max = sg_config_get(s->cfg, SG_SET_max_sessions);
    if (max > 0 && c.global > max) {
        sg_args_init(&args);
        sg_args_add(&args, "max_sessions", "%ld", max);
        sg_args_add(&args, "scope", "global");
        if (sg_pol_fire(s, SG_EV_MAX_SESSIONS, mode, "MaxSMTPSessions",
                 sg_config_get(s->cfg, SG_SET_score_max_sessions), &args,
                 SG_STAGE_CONNECT, v))
            return true;
    }
    max = sg_config_service_limit(s->cfg, s->service);
    if (max > 0 && c.service > max) {
        sg_args_init(&args);
        sg_args_add(&args, "max_sessions", "%ld", max);
        sg_args_add(&args, "scope", "service");
        if (sg_pol_fire(s, SG_EV_MAX_SESSIONS, mode, "MaxSMTPServiceSessions",
                 sg_config_get(s->cfg, SG_SET_score_max_sessions), &args,
                 SG_STAGE_CONNECT, v))
            return true;
    }
    max = sg_config_get(s->cfg, SG_SET_max_ip_sessions);
    if (max > 0 && c.client > max) {
        sg_args_init(&args);
        sg_args_add(&args, "network", "%s", s->ipkey);
        sg_args_add(&args, "max_sessions", "%ld", max);
        if (sg_pol_fire(s, SG_EV_MAX_IP_SESSIONS,
                 sg_config_get(s->cfg, SG_SET_do_max_ip_sessions),
                 "MaxSMTPipSessions",
                 sg_config_get(s->cfg, SG_SET_score_max_ip_sessions), &args,
                 SG_STAGE_CONNECT, v))
            return true;
    }
    return false;
}

/* check_db - databaseFailMode tempfail while writes fail */
static bool check_db(struct sg_session *s, struct sg_verdict *v)
{
    unsigned failures;
    struct sg_args args;

    if (sg_config_get(s->cfg, SG_SET_db_fail_mode) != 1
        || (failures = sg_engine_db_failing(s->eng)) == 0)
        return false;
    sg_args_init(&args);
    sg_args_add(&args, "failures", "%u", failures);
    sg_pol_emit(s, SG_EV_DB_UNAVAILABLE, SG_ACT_TEMPFAIL, &args);
    sg_verdict_set(v, SG_EV_DB_UNAVAILABLE, SG_ACT_TEMPFAIL,
                       SG_STAGE_CONNECT, NULL);
    return true;
}

void sg_session_connect(struct sg_session *s, struct sg_verdict *v)
{
    sg_verdict_clear(v);
    if (!s->addr_ok)
        return;                 /* no address (local submission): no limits */
    if (check_lists(s, v) || s->exempt)
        return;
    if (check_db(s, v) || check_ban(s, v) || check_frequency(s, v)
        || check_concurrency(s, v))
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
        return sg_pol_fire(s, SG_EV_DOMAIN_BLOCKED, SG_MODE_BLOCK, "domain ban", 0,
                    &args, SG_STAGE_OTHER, v);
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
    if (!sg_pol_fire(s, SG_EV_DOMAIN_IP_LIMIT, mode, "DomainIP",
              sg_config_get(s->cfg, SG_SET_score_domain_ip), &args,
              SG_STAGE_OTHER, v)) {
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

/* ---- mail and recipient rates ---- */

/* limited - rate, recipient and harvest limits apply to this client: it
 * has an address (not local submission) and is not exempt */
static bool limited(const struct sg_session *s)
{
    return s->addr_ok && !s->exempt;
}

enum key_type { KEY_SENDER, KEY_AUTH, KEY_IP, KEY_COUNT };

static const char *const key_names[KEY_COUNT] = { "sender", "auth", "ip" };

/* rate_key - "<what>:<type>:<key>" for this transaction; false if none */
static bool rate_key(const struct sg_session *s, const char *what,
                     enum key_type t, char *buf, size_t size)
{
    const char *k;

    switch (t) {
    case KEY_SENDER:
        k = s->sender_key;
        break;
    case KEY_AUTH:
        k = s->auth;
        break;
    default:
        k = s->addr_ok ? s->ipkey : "";
        break;
    }
    if (*k == '\0')
        return false;
    snprintf(buf, size, "%s:%s:%s", what, key_names[t], k);
    return true;
}

static long rate_limit(const struct sg_session *s, bool rcpt, enum key_type t)
{
    static const enum sg_setting mail[KEY_COUNT] = {
        SG_SET_max_email_sender, SG_SET_max_email_auth, SG_SET_max_email_ip,
    };
    static const enum sg_setting rcpts[KEY_COUNT] = {
        SG_SET_max_rcpt_sender, SG_SET_max_rcpt_auth, SG_SET_max_rcpt_ip,
    };

    return sg_config_get(s->cfg, rcpt ? rcpts[t] : mail[t]);
}

/*
 * check_rates - refuse when a per-minute window is already full. Counts
 * nothing: accepted messages and recipients are counted when accepted.
 */
static bool check_rates(struct sg_session *s, bool rcpt, enum sg_stage stage,
                        struct sg_verdict *v)
{
    enum sg_event ev = rcpt ? SG_EV_RCPT_RATE : SG_EV_EMAIL_RATE;
    long mode = sg_config_get(s->cfg, rcpt ? SG_SET_do_rcpt_rate
                              : SG_SET_do_email_rate);
    sg_time_t now = sg_engine_now(s->eng);
    char key[SG_RATE_KEY_MAX];
    struct sg_args args;

    if (mode == SG_MODE_OFF || !limited(s))
        return false;
    for (int t = 0; t < KEY_COUNT; t++) {
        long max = rate_limit(s, rcpt, (enum key_type) t);
        unsigned n;

        if (max == 0 || !rate_key(s, rcpt ? "rcpt" : "mail",
                                  (enum key_type) t, key, sizeof(key)))
            continue;
        n = sg_state_rate_count(s->eng->state, key, now, RATE_WINDOW);
        if (n < (unsigned long) max)
            continue;
        sg_args_init(&args);
        sg_args_add(&args, "sender_email_address", "%s",
                    s->sender_key[0] ? s->sender_key : "<>");
        sg_args_add(&args, "key_type", "%s", key_names[t]);
        sg_args_add(&args, "key", "%s", strchr(strchr(key, ':') + 1, ':')
                    + 1);
        sg_args_add(&args, "count", "%u", n);
        sg_args_add(&args, "max", "%ld", max);
        if (sg_pol_fire(s, ev, mode, rcpt ? "RcptRate" : "EmailRate",
                 sg_config_get(s->cfg, rcpt ? SG_SET_score_rcpt_rate
                               : SG_SET_score_email_rate), &args, stage, v))
            return true;
    }
    return false;
}

/* count_rates - one more accepted message or recipient for each key */
static void count_rates(struct sg_session *s, bool rcpt)
{
    sg_time_t now = sg_engine_now(s->eng);
    char key[SG_RATE_KEY_MAX];

    if (!limited(s))
        return;
    for (int t = 0; t < KEY_COUNT; t++)
        if (rate_limit(s, rcpt, (enum key_type) t) > 0
            && rate_key(s, rcpt ? "rcpt" : "mail", (enum key_type) t, key,
                        sizeof(key)))
            sg_state_rate_hit(s->eng->state, key, now, RATE_WINDOW);
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

/* ---- SPF ---- */

/* receiver - the name this server reports SPF results under: authservId,
 * else the MTA's host name (macro j), else this host's name */
static void receiver(const struct sg_session *s, char *buf, size_t size)
{
    const char *id = sg_config_text(s->cfg, SG_SET_authserv_id);

    if (*id != '\0')
        sg_strlcpy(buf, id, size);
    else if (sg_dname_host_ok(s->mta_host))
        sg_strlcpy(buf, s->mta_host, size);
    else if (gethostname(buf, size) != 0 || !sg_dname_host_ok(buf))
        sg_strlcpy(buf, "localhost", size);
    buf[size - 1] = '\0';
}

static const struct {
    enum sg_event ev;
    enum sg_setting action, score;
} spf_map[] = {
    [SG_SPF_NONE] = { SG_EV_SPF_NONE, SG_SET_spf_none_action,
                      SG_SET_score_spf_none },
    [SG_SPF_NEUTRAL] = { SG_EV_SPF_NEUTRAL, SG_SET_spf_neutral_action,
                         SG_SET_score_spf_neutral },
    [SG_SPF_PASS] = { SG_EV_SPF_PASS, SG_SET_COUNT, SG_SET_COUNT },
    [SG_SPF_FAIL] = { SG_EV_SPF_FAIL, SG_SET_spf_fail_action,
                      SG_SET_score_spf_fail },
    [SG_SPF_SOFTFAIL] = { SG_EV_SPF_SOFTFAIL, SG_SET_spf_softfail_action,
                          SG_SET_score_spf_softfail },
    [SG_SPF_TEMPERROR] = { SG_EV_SPF_TEMPERROR, SG_SET_spf_temperror_action,
                           SG_SET_score_spf_temperror },
    [SG_SPF_PERMERROR] = { SG_EV_SPF_PERMERROR, SG_SET_spf_permerror_action,
                           SG_SET_score_spf_permerror },
};

/* spf_reply - the reply of a refused SPF result: the domain's explanation
 * for a fail, when it gave one; the result and why otherwise */
static void spf_reply(const struct sg_spf_outcome *o, enum sg_event ev,
                      struct sg_verdict *v)
{
    struct sg_args reply;

    sg_args_init(&reply);
    sg_args_add(&reply, "identity", "%s", o->identity);
    sg_args_add(&reply, "ip", "%s", o->ip);
    sg_args_add(&reply, "reason", "%s", o->reason);
    if (o->result == SG_SPF_FAIL)
        sg_args_add(&reply, "explanation", "%s", o->explanation);
    sg_verdict_set(v, ev, v->action, SG_STAGE_MAIL, &reply);
}

/* spf_faults - a check lost to the worker pool says why (spfpool.h) */
static void spf_faults(struct sg_session *s, const struct sg_spf_outcome *o)
{
    struct sg_args args;

    if (o->idle_lost_pid > 0) {
        sg_args_init(&args);
        sg_args_add(&args, "pid", "%d", o->idle_lost_pid);
        sg_args_add(&args, "reason", "%s", o->idle_lost_reason);
        sg_pol_emit(s, SG_EV_SPF_WORKER_DIED_IDLE, SG_ACT_NONE, &args);
    }
    if (o->fault == SG_SPF_FAULT_NONE ||
        o->fault == SG_SPF_FAULT_QUARANTINED)
        return;
    sg_args_init(&args);
    sg_args_add(&args, "domain", "%s", o->domain);
    if (o->fault == SG_SPF_FAULT_UNAVAILABLE) {
        sg_args_add(&args, "reason", "%s", o->fault_reason);
        sg_pol_emit(s, SG_EV_SPF_WORKER_UNAVAILABLE, SG_ACT_NONE, &args);
        return;
    }
    sg_args_add(&args, "pid", "%d", o->fault_pid);
    sg_args_add(&args, "reason", "%s", o->fault_reason);
    sg_pol_emit(s, SG_EV_SPF_WORKER_LOST, SG_ACT_NONE, &args);
    if (o->quarantine_s > 0) {
        sg_args_init(&args);
        sg_args_add(&args, "domain", "%s", o->domain);
        sg_args_add(&args, "seconds", "%u", o->quarantine_s);
        sg_pol_emit(s, SG_EV_SPF_DOMAIN_QUARANTINED, SG_ACT_NONE, &args);
    }
}

/* spf_apply - log the result, score it, refuse it as the policy says */
static void spf_apply(struct sg_session *s, const struct sg_spf_outcome *o,
                      struct sg_verdict *v)
{
    long mode = sg_config_get(s->cfg, SG_SET_do_spf);
    enum sg_event ev = spf_map[o->result].ev;
    long act = SG_SPF_ACT_ACCEPT, score = 0;
    enum sg_action a = SG_ACT_NONE;
    struct sg_args args;

    if (spf_map[o->result].action != SG_SET_COUNT) {
        act = sg_config_get(s->cfg, spf_map[o->result].action);
        score = sg_config_get(s->cfg, spf_map[o->result].score);
    }
    if (mode == SG_MODE_MONITOR || sg_event_action(ev) == SG_ACT_MONITOR)
        a = act != SG_SPF_ACT_ACCEPT || score > 0 ? SG_ACT_MONITOR
            : SG_ACT_NONE;
    else if (mode == SG_MODE_BLOCK && act == SG_SPF_ACT_REJECT)
        a = SG_ACT_REJECT;
    else if (mode == SG_MODE_BLOCK && act == SG_SPF_ACT_TEMPFAIL)
        a = SG_ACT_TEMPFAIL;
    else if (score > 0)
        a = SG_ACT_SCORE;
    spf_faults(s, o);
    if (o->record_refused) {
        sg_args_init(&args);
        sg_args_add(&args, "domain", "%s", o->refused_domain);
        sg_args_add(&args, "reason", "%s", o->reason);
        sg_args_add(&args, "record", "%s", o->refused_record);
        sg_pol_emit(s, SG_EV_SPF_RECORD_REFUSED, SG_ACT_NONE, &args);
    }
    sg_args_init(&args);
    sg_args_add(&args, "identity", "%s", o->identity);
    sg_args_add(&args, "ip", "%s", o->ip);
    sg_args_add(&args, "domain", "%s", o->domain);
    if (o->result == SG_SPF_FAIL)
        sg_args_add(&args, "explanation", "%s", o->explanation);
    if (o->result == SG_SPF_TEMPERROR || o->result == SG_SPF_PERMERROR)
        sg_args_add(&args, "reason", "%s", o->reason);
    sg_pol_emit(s, ev, a, &args);
    /* A refusal is the penalty; the score counts what was let through. */
    if (a == SG_ACT_SCORE)
        sg_pol_add_score(s, sg_event_def(ev)->name, score);
    if (a >= SG_ACT_REJECT) {
        v->action = a;
        v->event = ev;
        spf_reply(o, ev, v);
    }
}

/* check_spf - SPF of this transaction's sender (or HELO for <>) */
static void check_spf(struct sg_session *s, struct sg_verdict *v)
{
    struct sg_spf_outcome o;
    struct sg_dns *dns;
    char recv[SG_DNS_NAME_MAX];

    s->spf_received[0] = s->spf_ar[0] = '\0';
    if (sg_config_get(s->cfg, SG_SET_do_spf) == SG_MODE_OFF ||
        s->auth[0] != '\0' ||
        sg_config_ip_listed(s->cfg, SG_LIST_RELAY, &s->addr, NULL) ||
        (dns = sg_engine_dns(s->eng)) == NULL)
        return;
    receiver(s, recv, sizeof(recv));
    /* The MAIL callback's one DNS budget, shared with sg_rep_stage. */
    sg_spf_pool_check(s->eng->spf_pool, dns, s->dns_deadline, &s->addr,
                      s->helo, &s->sender, recv, &o);
    sg_dns_free(dns);
    spf_apply(s, &o, v);
    sg_spf_received(&o, recv, s->spf_received, sizeof(s->spf_received));
    sg_spf_authres(&o, s->spf_ar, sizeof(s->spf_ar));
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
        check_domain(s, s->sender.domain, v);
    if (!sg_verdict_refuses(v))
        check_rates(s, false, SG_STAGE_MAIL, v);
    if (!sg_verdict_refuses(v))
        check_spf(s, v);
    if (!sg_verdict_refuses(v))
        sg_pol_score_check(s, SG_STAGE_OTHER, v);
    if (sg_verdict_refuses(v))
        sg_pol_count_error(s, v);
}

/* check_harvest - one more unknown recipient from this client */
static bool check_harvest(struct sg_session *s, struct sg_verdict *v)
{
    long mode = sg_config_get(s->cfg, SG_SET_do_harvest);
    long max = sg_config_get(s->cfg, SG_SET_max_harvest);
    long window = sg_config_get(s->cfg, SG_SET_harvest_duration);
    long expire = sg_config_get(s->cfg, SG_SET_harvest_expiration);
    sg_time_t now = sg_engine_now(s->eng);
    char key[SG_RATE_KEY_MAX];
    struct sg_args args;
    unsigned n;

    if (mode == SG_MODE_OFF || max == 0 || !limited(s))
        return false;
    snprintf(key, sizeof(key), "harvest:%s", s->ipkey);
    n = sg_state_rate_hit(s->eng->state, key, now, window);
    if (n <= (unsigned long) max)
        return false;
    /* Monitor and score act once per window: at the first crossing. */
    if (mode != SG_MODE_BLOCK && n != (unsigned long) max + 1)
        return false;
    sg_args_init(&args);
    sg_args_add(&args, "ip", "%s", s->client);
    sg_args_add(&args, "network", "%s", s->ipkey);
    sg_args_add(&args, "unknown", "%u", n);
    sg_args_add(&args, "duration", "%ld", window);
    sg_args_add(&args, "max_unknown", "%ld", max);
    sg_args_add(&args, "ban_seconds", "%ld", expire);
    if (!sg_pol_fire(s, SG_EV_HARVEST, mode, "Harvest",
              sg_config_get(s->cfg, SG_SET_score_harvest), &args,
              SG_STAGE_RCPT, v))
        return false;
    {
        struct sg_ban ban = { .kind = SG_BAN_IP, .created = now,
                              .expires = now + expire };

        sg_strlcpy(ban.key, s->ipkey, sizeof(ban.key));
        sg_strlcpy(ban.reason, sg_event_def(SG_EV_HARVEST)->id,
                   sizeof(ban.reason));
        sg_engine_ban(s->eng, &ban);
        sg_state_rate_reset(s->eng->state, key, now);
    }
    return true;
}

static enum sg_event relay_event(enum sg_relay_outcome o)
{
    switch (o) {
    case SG_RCPT_LOCAL:
        return SG_EV_RCPT_LOCAL;
    case SG_RCPT_CATCHALL:
        return SG_EV_RCPT_CATCHALL;
    case SG_RCPT_UNKNOWN:
        return SG_EV_RCPT_UNKNOWN;
    case SG_RELAY_OPEN:
        return SG_EV_RELAY_OPEN;
    case SG_RELAY_AUTH:
        return SG_EV_RELAY_AUTH;
    case SG_RELAY_NETWORK:
        return SG_EV_RELAY_NETWORK;
    case SG_RELAY_LOCAL_SENDER:
        return SG_EV_RELAY_LOCAL_SENDER;
    case SG_RELAY_DENY_DISABLED:
        return SG_EV_RELAY_DISABLED;
    case SG_RELAY_DENY_SENDER:
        return SG_EV_RELAY_DENY_SENDER;
    default:
        return SG_EV_RELAY_DENIED;
    }
}

/* check_relay - the relay decision for one recipient, and its events */
static bool check_relay(struct sg_session *s, const struct sg_mailaddr *rcpt,
                        const char *rcpt_key, const char *mailer,
                        struct sg_verdict *v)
{
    long mode = sg_config_get(s->cfg, SG_SET_do_relay);
    long weight = sg_config_get(s->cfg, SG_SET_score_relay);
    struct sg_relay_facts f = {
        .client = s->addr_ok ? &s->addr : NULL,
        .auth_user = s->auth,
        .sender = s->sender_ok ? &s->sender : NULL,
        .rcpt = rcpt,
        .rcpt_mailer = mailer,
    };
    const char *sender = s->sender_key[0] ? s->sender_key : "";
    struct sg_relay_decision d;
    enum sg_event ev;
    struct sg_args args;
    bool refused;

    if (mode == SG_MODE_OFF) {
        /* Without the relay check an unknown local recipient is the MTA's
         * to refuse; it still counts towards the directory harvest limit. */
        if (sg_config_get(s->cfg, SG_SET_do_harvest) == SG_MODE_OFF
            || !limited(s))
            return false;
        sg_relay_decide(s->cfg, &f, &d);
        return d.outcome == SG_RCPT_UNKNOWN && check_harvest(s, v);
    }
    sg_relay_decide(s->cfg, &f, &d);
    ev = relay_event(d.outcome);
    sg_args_init(&args);
    sg_args_add(&args, "recipient", "%s", rcpt_key);
    sg_args_add(&args, "sender", "%s", sender);
    switch (d.outcome) {
    case SG_RCPT_LOCAL:
        sg_args_add(&args, "source", "%s", d.source);
        sg_args_add(&args, "entry", "%s", d.detail);
        sg_pol_emit(s, ev, SG_ACT_ACCEPT, &args);
        return false;
    case SG_RCPT_CATCHALL:
        sg_args_add(&args, "mailbox", "%s", d.detail);
        sg_pol_emit(s, ev, SG_ACT_ACCEPT, &args);
        return false;
    case SG_RCPT_UNKNOWN:
        sg_args_add(&args, "domain", "%s", rcpt->domain);
        {
            char key[SG_RATE_KEY_MAX];

            snprintf(key, sizeof(key), "harvest:%s", s->ipkey);
            sg_args_add(&args, "unknown", "%u", s->addr_ok
                        ? sg_state_rate_count(s->eng->state, key,
                                              sg_engine_now(s->eng),
                                              sg_config_get(s->cfg,
                                                  SG_SET_harvest_duration))
                          + 1 : 1);
        }
        refused = sg_pol_fire(s, ev, mode, "Relay", weight, &args, SG_STAGE_RCPT, v);
        if (check_harvest(s, v))
            refused = true;
        return refused;
    case SG_RELAY_AUTH:
        sg_args_add(&args, "user", "%s", d.detail);
        sg_pol_emit(s, ev, SG_ACT_ACCEPT, &args);
        return false;
    case SG_RELAY_NETWORK:
        sg_args_add(&args, "entry", "%s", d.detail);
        sg_pol_emit(s, ev, SG_ACT_ACCEPT, &args);
        return false;
    case SG_RELAY_OPEN:
    case SG_RELAY_LOCAL_SENDER:
        sg_pol_emit(s, ev, SG_ACT_ACCEPT, &args);
        return false;
    default:
        break;
    }
    /* Denied: the MailEnable-coded event, then the security log line. */
    refused = sg_pol_fire(s, ev, mode, "Relay", weight, &args, SG_STAGE_RCPT, v);
    sg_args_init(&args);
    sg_args_add(&args, "ip", "%s", s->client);
    sg_args_add(&args, "sender", "%s", sender);
    sg_args_add(&args, "recipient", "%s", rcpt_key);
    sg_pol_emit(s, SG_EV_RELAY_ATTEMPT, refused ? v->action
         : mode == SG_MODE_SCORE ? SG_ACT_SCORE : SG_ACT_MONITOR, &args);
    return refused;
}

/* check_rcpt_count - recipients of this message */
static bool check_rcpt_count(struct sg_session *s, struct sg_verdict *v)
{
    long max = sg_config_get(s->cfg, SG_SET_max_rcpt_message);
    struct sg_args args;

    if (max == 0 || !limited(s) || s->rcpts < (unsigned long) max)
        return false;
    sg_args_init(&args);
    sg_args_add(&args, "sender_email_address", "%s",
                s->sender_key[0] ? s->sender_key : "<>");
    sg_args_add(&args, "recipients", "%u", s->rcpts + 1);
    sg_args_add(&args, "max_rcpt", "%ld", max);
    return sg_pol_fire(s, SG_EV_RCPT_PER_MESSAGE,
                sg_config_get(s->cfg, SG_SET_do_rcpt_rate), "RcptPerMessage",
                sg_config_get(s->cfg, SG_SET_score_rcpt_rate), &args,
                SG_STAGE_RCPT, v);
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
    if (!sg_verdict_refuses(v) && !check_rcpt_count(s, v)
        && !check_relay(s, &r, key, mailer, v)
        && !check_rates(s, true, SG_STAGE_RCPT, v))
        sg_pol_score_check(s, SG_STAGE_OTHER, v);
    if (sg_verdict_refuses(v)) {
        sg_pol_count_error(s, v);
        return;
    }
    s->rcpts++;
    count_rates(s, true);
}

void sg_session_message_done(struct sg_session *s)
{
    if (s->in_mail && s->sender_ok)
        count_rates(s, false);
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
    receiver(s, recv, sizeof(recv));
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
