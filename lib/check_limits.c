/*
 * check_limits.c - the session limits: deny list and exemptions, bans,
 * connection frequency, concurrency, the database's fail mode, client
 * subnets per sender domain, directory harvests
 */
#include <stdio.h>
#include <string.h>

#include "policy_int.h"

/* check_lists - deny list first, then the exemption lists */
bool sg_chk_lists(struct sg_session *s, struct sg_verdict *v)
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

bool sg_chk_ban(struct sg_session *s, struct sg_verdict *v)
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

/*
 * issue_ban - ban `key` (the client's network or a sender domain) for
 * `seconds`, its reason the event that decided it
 */
static void issue_ban(struct sg_session *s, enum sg_ban_kind kind,
                      const char *key, enum sg_event ev, long seconds,
                      sg_time_t now)
{
    struct sg_ban ban;

    memset(&ban, 0, sizeof(ban));
    ban.kind = kind;
    ban.created = now;
    ban.expires = now + seconds;
    sg_strlcpy(ban.key, key, sizeof(ban.key));
    sg_strlcpy(ban.reason, sg_event_def(ev)->id, sizeof(ban.reason));
    sg_engine_ban(s->eng, &ban);
}

/* A limit counted in a window of the client's network that bans. */
struct window_ban {
    const char *key;            /* the rate window */
    long mode, max, window, expire, weight;
    enum sg_event ev;
    const char *check;          /* its name in the score's parts */
    const char *count_name, *max_name;  /* the event's parameters */
    enum sg_stage stage;
};

/*
 * window_then_ban - one more in the window; past the limit the event fires
 * (after the parameters the caller put in `args`: the count, the window,
 * the limit, the ban's length), and a refusal bans the client's network
 * and starts the window again. Monitor and score act once per window: at
 * the first crossing.
 */
static bool window_then_ban(struct sg_session *s, const struct window_ban *w,
                            struct sg_args *args, struct sg_verdict *v)
{
    sg_time_t now = sg_engine_now(s->eng);
    unsigned n;

    if (w->mode == SG_MODE_OFF || w->max == 0)
        return false;
    n = sg_state_rate_hit(s->eng->state, w->key, now, w->window);
    if (n <= (unsigned long) w->max)
        return false;
    if (w->mode != SG_MODE_BLOCK && n != (unsigned long) w->max + 1)
        return false;
    sg_args_add(args, w->count_name, "%u", n);
    sg_args_add(args, "duration", "%ld", w->window);
    sg_args_add(args, w->max_name, "%ld", w->max);
    sg_args_add(args, "ban_seconds", "%ld", w->expire);
    if (!sg_pol_fire(s, w->ev, w->mode, w->check, w->weight, args, w->stage,
                     v))
        return false;
    issue_ban(s, SG_BAN_IP, s->ipkey, w->ev, w->expire, now);
    sg_state_rate_reset(s->eng->state, w->key, now);
    return true;
}

bool sg_chk_frequency(struct sg_session *s, struct sg_verdict *v)
{
    char key[SG_RATE_KEY_MAX];
    struct window_ban w = {
        key, sg_config_get(s->cfg, SG_SET_do_frequency_ip),
        sg_config_get(s->cfg, SG_SET_max_ip_connects),
        sg_config_get(s->cfg, SG_SET_ip_duration),
        sg_config_get(s->cfg, SG_SET_ip_expiration),
        sg_config_get(s->cfg, SG_SET_score_frequency_ip),
        SG_EV_IP_FREQUENCY, "FrequencyIP", "connections", "max_connects",
        SG_STAGE_CONNECT,
    };
    struct sg_args args;

    snprintf(key, sizeof(key), "conn:%s", s->ipkey);
    sg_args_init(&args);
    sg_args_add(&args, "network", "%s", s->ipkey);
    return window_then_ban(s, &w, &args, v);
}

bool sg_chk_concurrency(struct sg_session *s, struct sg_verdict *v)
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
bool sg_chk_db(struct sg_session *s, struct sg_verdict *v)
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

bool sg_chk_domain(struct sg_session *s, const char *domain,
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
    issue_ban(s, SG_BAN_DOMAIN, domain, SG_EV_DOMAIN_IP_LIMIT, expire, now);
    sg_state_domain_reset(s->eng->state, domain);
    return true;
}

/* sg_chk_harvest - one more unknown recipient from this client */
bool sg_chk_harvest(struct sg_session *s, struct sg_verdict *v)
{
    char key[SG_RATE_KEY_MAX];
    struct window_ban w = {
        key, sg_config_get(s->cfg, SG_SET_do_harvest),
        sg_config_get(s->cfg, SG_SET_max_harvest),
        sg_config_get(s->cfg, SG_SET_harvest_duration),
        sg_config_get(s->cfg, SG_SET_harvest_expiration),
        sg_config_get(s->cfg, SG_SET_score_harvest),
        SG_EV_HARVEST, "Harvest", "unknown", "max_unknown", SG_STAGE_RCPT,
    };
    struct sg_args args;

    if (!sg_chk_limited(s))
        return false;
    snprintf(key, sizeof(key), "harvest:%s", s->ipkey);
    sg_args_init(&args);
    sg_args_add(&args, "ip", "%s", s->client);
    sg_args_add(&args, "network", "%s", s->ipkey);
    return window_then_ban(s, &w, &args, v);
}
