/*
 * check_spf.c - SPF of the transaction's sender (or HELO for <>): the
 * evaluation in the worker pool, its events, score and reply, the
 * Received-SPF and Authentication-Results values
 */
#include <stdio.h>
#include <string.h>

#include "dname.h"
#include "policy_int.h"
#include "spf.h"
#include "spfpool.h"

/* ---- SPF ---- */

/* sg_chk_receiver - the name this server reports SPF results under: authservId,
 * else the MTA's host name (macro j), else this host's name */
void sg_chk_receiver(const struct sg_session *s, char *buf, size_t size)
{
    const char *id = sg_config_text(s->cfg, SG_SET_authserv_id);

    if (*id != '\0')
        sg_strlcpy(buf, id, size);
    else if (sg_dname_host_ok(s->mta_host))
        sg_strlcpy(buf, s->mta_host, size);
    else {
        sg_env_hostname(&s->eng->env, buf, size);
        if (!sg_dname_host_ok(buf))
            sg_strlcpy(buf, "localhost", size);
    }
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
void sg_chk_spf(struct sg_session *s, struct sg_verdict *v)
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
    sg_chk_receiver(s, recv, sizeof(recv));
    /* The MAIL callback's one DNS budget, shared with sg_rep_stage. */
    sg_spf_pool_check(s->eng->spf_pool, dns, s->dns_deadline, &s->addr,
                      s->helo, &s->sender, recv, &o);
    sg_dns_free(dns);
    spf_apply(s, &o, v);
    sg_spf_received(&o, recv, s->spf_received, sizeof(s->spf_received));
    sg_spf_authres(&o, s->spf_ar, sizeof(s->spf_ar));
}
