/*
 * check_rates.c - messages and recipients per minute (per sender,
 * authenticated user and client), recipients per message
 */
#include <stdio.h>
#include <string.h>

#include "policy_int.h"

#define RATE_WINDOW 60          /* the per-minute limits */

/* ---- mail and recipient rates ---- */

/* limited - rate, recipient and harvest limits apply to this client: it
 * has an address (not local submission) and is not exempt */
bool sg_chk_limited(const struct sg_session *s)
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
bool sg_chk_rates(struct sg_session *s, bool rcpt, enum sg_stage stage,
                        struct sg_verdict *v)
{
    enum sg_event ev = rcpt ? SG_EV_RCPT_RATE : SG_EV_EMAIL_RATE;
    long mode = sg_config_get(s->cfg, rcpt ? SG_SET_do_rcpt_rate
                              : SG_SET_do_email_rate);
    sg_time_t now = sg_engine_now(s->eng);
    char key[SG_RATE_KEY_MAX];
    struct sg_args args;

    if (mode == SG_MODE_OFF || !sg_chk_limited(s))
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
void sg_chk_count_rates(struct sg_session *s, bool rcpt)
{
    sg_time_t now = sg_engine_now(s->eng);
    char key[SG_RATE_KEY_MAX];

    if (!sg_chk_limited(s))
        return;
    for (int t = 0; t < KEY_COUNT; t++)
        if (rate_limit(s, rcpt, (enum key_type) t) > 0
            && rate_key(s, rcpt ? "rcpt" : "mail", (enum key_type) t, key,
                        sizeof(key)))
            sg_state_rate_hit(s->eng->state, key, now, RATE_WINDOW);
}

/* check_rcpt_count - recipients of this message */
bool sg_chk_rcpt_count(struct sg_session *s, struct sg_verdict *v)
{
    long max = sg_config_get(s->cfg, SG_SET_max_rcpt_message);
    struct sg_args args;

    if (max == 0 || !sg_chk_limited(s) || s->rcpts < (unsigned long) max)
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
