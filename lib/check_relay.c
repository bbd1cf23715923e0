/*
 * check_relay.c - relay authorization of each recipient: its event, and
 * the catch-all and unknown-recipient outcomes
 */
#include <stdio.h>
#include <string.h>

#include "policy_int.h"
#include "relay.h"

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
bool sg_chk_relay(struct sg_session *s, const struct sg_mailaddr *rcpt,
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
            || !sg_chk_limited(s))
            return false;
        sg_relay_decide(s->cfg, &f, &d);
        return d.outcome == SG_RCPT_UNKNOWN && sg_chk_harvest(s, v);
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
        if (sg_chk_harvest(s, v))
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
