/*
 * check_dns.c - the client's DNS reputation: DNSBL/DNSWL zones and
 * forward-confirmed reverse DNS
 *
 * The lookups start when the client connects (one batch: an A query per
 * zone of dnsbl_zones, the PTR of the address) and run while the client
 * talks. Each later stage takes what has arrived and asks the follow-ups
 * at once: the TXT reason of a zone that lists the client, A/AAAA for each
 * PTR name. At dnsCheckStage the session waits for the rest, at most
 * dnsMaxWait, and gets its verdict; a refusal is repeated at every later
 * command. What has not arrived by then counts as a temporary failure.
 *
 * Not checked: clients without an address, exempt clients (the exemption
 * lists), authenticated clients and clients in relay_networks (they are
 * the site's own users: submission, not inbound mail).
 *
 * Input trust: DNS answers are verified by dns.c; texts taken from them
 * (TXT reasons, host names) are bounded and made printable here before
 * they reach a reply or a log line.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "dname.h"
#include "dnsbl.h"
#include "policy_int.h"

static bool wanted(const struct sg_session *s)
{
    const struct sg_config *cfg = s->cfg;

    return s->addr_ok && !s->exempt &&
        ((sg_config_get(cfg, SG_SET_do_dnsbl) != SG_MODE_OFF &&
          cfg->ndnsbl > 0) ||
         sg_config_get(cfg, SG_SET_do_fcrdns) != SG_MODE_OFF);
}

void sg_rep_start(struct sg_session *s)
{
    struct sg_rep *r = &s->rep;
    const struct sg_config *cfg = s->cfg;
    char name[SG_DNS_NAME_MAX + 80];
    struct sg_dns *dns;

    memset(r, 0, sizeof(*r));
    r->h_ptr = -1;
    for (size_t i = 0; i < SG_REP_ZONES; i++)
        r->h_bl[i] = r->h_txt[i] = -1;
    if (!wanted(s) || (dns = sg_engine_dns(s->eng)) == NULL)
        return;
    r->batch = sg_dns_batch_new(dns);
    sg_dns_free(dns);           /* the batch holds its own reference */
    if (r->batch == NULL)
        return;
    if (sg_config_get(cfg, SG_SET_do_dnsbl) != SG_MODE_OFF)
        for (size_t i = 0; i < cfg->ndnsbl && i < SG_REP_ZONES; i++) {
            const struct sg_dnsbl_zone *z = &cfg->dnsbl[i];

            if ((s->addr.family == AF_INET6 && !z->ipv6) ||
                sg_dname_reverse(&s->addr, z->zone, name, sizeof(name))
                != SG_OK)
                continue;
            r->h_bl[i] = sg_dns_query(r->batch, name, SG_DNS_T_A);
        }
    if (sg_config_get(cfg, SG_SET_do_fcrdns) != SG_MODE_OFF &&
        sg_dname_reverse(&s->addr, s->addr.family == AF_INET
                            ? "in-addr.arpa" : "ip6.arpa", name,
                            sizeof(name)) == SG_OK)
        r->h_ptr = sg_dns_query(r->batch, name, SG_DNS_T_PTR);
}

void sg_rep_free(struct sg_session *s)
{
    sg_dns_batch_free(s->rep.batch);
    s->rep.batch = NULL;
}

/* listing - the first A record of a zone's answer that counts, or NULL */
static const struct sg_dns_rr *listing(const struct sg_session *s, size_t i)
{
    const struct sg_dns_answer *a = sg_dns_result(s->rep.batch,
                                                  s->rep.h_bl[i]);

    if (a == NULL || a->status != SG_DNS_OK)
        return NULL;
    for (size_t k = 0; k < a->nrr; k++)
        if (a->rr[k].addr.family == AF_INET &&
            sg_dnsbl_answer_counts(&s->cfg->dnsbl[i], a->rr[k].addr.b))
            return &a->rr[k];
    return NULL;
}

/* followups - ask what the answers so far call for */
static void followups(struct sg_session *s)
{
    struct sg_rep *r = &s->rep;
    const struct sg_dns_answer *a;

    for (size_t i = 0; i < s->cfg->ndnsbl && i < SG_REP_ZONES; i++)
        if (r->h_bl[i] >= 0 && r->h_txt[i] < 0 && s->cfg->dnsbl[i].txt &&
            listing(s, i) != NULL)
            r->h_txt[i] = sg_dns_query(r->batch,
                                       sg_dns_result(r->batch,
                                                     r->h_bl[i])->name,
                                       SG_DNS_T_TXT);
    if (r->fwd_asked || r->h_ptr < 0 ||
        (a = sg_dns_result(r->batch, r->h_ptr)) == NULL)
        return;
    r->fwd_asked = true;
    if (a->status != SG_DNS_OK)
        return;
    for (size_t k = 0; k < a->nrr && r->nfwd < SG_REP_NAMES; k++)
        if (a->rr[k].type == SG_DNS_T_PTR)
            r->h_fwd[r->nfwd++] = sg_dns_query(
                r->batch, a->rr[k].text,
                s->addr.family == AF_INET ? SG_DNS_T_A : SG_DNS_T_AAAA);
}

/* printable - a DNS text fit for a reply and a log: ASCII, no '%' */
static void printable(const char *in, size_t len, char *out, size_t size)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 1 < size; i++) {
        unsigned char c = (unsigned char) in[i];

        out[o++] = c < ' ' || c > '~' || c == '%' || c == '\\' ? '_'
            : (char) c;
    }
    out[o] = '\0';
}

static enum sg_stage to_stage(enum sg_dns_stage st)
{
    switch (st) {
    case SG_DNS_STAGE_CONNECT:
        return SG_STAGE_CONNECT;
    case SG_DNS_STAGE_MAIL:
        return SG_STAGE_MAIL;
    case SG_DNS_STAGE_RCPT:
        return SG_STAGE_RCPT;
    default:
        return SG_STAGE_OTHER;
    }
}

static void lookup_failed(const struct sg_session *s, const char *check,
                          const struct sg_dns_answer *a, const char *type)
{
    struct sg_args args;

    sg_args_init(&args);
    sg_args_add(&args, "check", "%s", check);
    sg_args_add(&args, "name", "%s", a ? a->name : "?");
    sg_args_add(&args, "type", "%s", type);
    sg_args_add(&args, "status", "%s",
                sg_dns_status_name(a ? a->status : SG_DNS_TIMEOUT));
    sg_pol_emit(s, SG_EV_DNS_LOOKUP_FAILED, SG_ACT_NONE, &args);
}

struct dnsbl_sum {
    long score;
    long best;                  /* heaviest listing's weight */
    size_t best_zone;
    char answer[SG_ADDR_STRLEN];
    char reason[128];
    char zones[160];            /* zone=weight,... */
};

/* one_zone - log zone i's answer and add it to the sum */
static void one_zone(struct sg_session *s, size_t i, const char *rcpt,
                     struct dnsbl_sum *sum)
{
    const struct sg_dnsbl_zone *z = &s->cfg->dnsbl[i];
    const struct sg_dns_answer *a = sg_dns_result(s->rep.batch,
                                                  s->rep.h_bl[i]);
    const struct sg_dns_answer *t = sg_dns_result(s->rep.batch,
                                                  s->rep.h_txt[i]);
    const struct sg_dns_rr *hit = listing(s, i);
    char answer[SG_ADDR_STRLEN], reason[128] = "";
    struct sg_args args;
    size_t len;

    if (hit == NULL) {
        if (a == NULL || !sg_dns_definite(a->status))
            lookup_failed(s, "DNSBL", a, "A");
        return;
    }
    sg_addr_format(&hit->addr, answer, sizeof(answer));
    if (t != NULL && t->status == SG_DNS_OK && t->nrr > 0)
        printable(t->rr[0].text, t->rr[0].len, reason, sizeof(reason));
    sum->score += z->weight;
    len = strlen(sum->zones);
    snprintf(sum->zones + len, sizeof(sum->zones) - len, "%s%s=%ld",
             len ? "," : "", z->zone, z->weight);
    sg_args_init(&args);
    sg_args_add(&args, "ip", "%s", s->client);
    sg_args_add(&args, "zone", "%s", z->zone);
    sg_args_add(&args, "answer", "%s", answer);
    sg_args_add(&args, "weight", "%ld", z->weight);
    if (z->weight < 0) {
        sg_pol_emit(s, SG_EV_DNSWL_LISTED, SG_ACT_NONE, &args);
        return;
    }
    sg_args_add(&args, "reason", "%s", reason);
    sg_args_add(&args, "sender", "%s", s->sender_key);
    sg_args_add(&args, "recipient", "%s", rcpt ? rcpt : "");
    sg_pol_emit(s, SG_EV_DNSBL_LISTED, SG_ACT_NONE, &args);
    if (z->weight > sum->best) {
        sum->best = z->weight;
        sum->best_zone = i;
        sg_strlcpy(sum->answer, answer, sizeof(sum->answer));
        sg_strlcpy(sum->reason, reason, sizeof(sum->reason));
    }
}

static bool dnsbl_verdict(struct sg_session *s, enum sg_stage stage,
                          const char *rcpt, struct sg_verdict *v)
{
    long mode = sg_config_get(s->cfg, SG_SET_do_dnsbl);
    long threshold = sg_config_get(s->cfg, SG_SET_dnsbl_threshold);
    struct dnsbl_sum sum;
    struct sg_args args;
    const char *zone;

    if (mode == SG_MODE_OFF)
        return false;
    memset(&sum, 0, sizeof(sum));
    for (size_t i = 0; i < s->cfg->ndnsbl && i < SG_REP_ZONES; i++)
        if (s->rep.h_bl[i] >= 0)
            one_zone(s, i, rcpt, &sum);
    if (sum.score <= 0)
        return false;
    zone = s->cfg->dnsbl[sum.best_zone].zone;
    sg_args_init(&args);
    sg_args_add(&args, "ip", "%s", s->client);
    if (sum.score < threshold) {
        sg_args_add(&args, "score", "%ld", sum.score);
        sg_args_add(&args, "threshold", "%ld", threshold);
        sg_args_add(&args, "zones", "%s", sum.zones);
        sg_pol_emit(s, SG_EV_DNSBL_SCORE, mode == SG_MODE_MONITOR
                    ? SG_ACT_MONITOR : SG_ACT_SCORE, &args);
        if (mode != SG_MODE_MONITOR)
            sg_pol_add_score(s, "DNSBL", sum.score);
        return false;
    }
    sg_args_add(&args, "zone", "%s", zone);
    sg_args_add(&args, "answer", "%s", sum.answer);
    sg_args_add(&args, "reason", "%s", sum.reason);
    sg_args_add(&args, "score", "%ld", sum.score);
    sg_args_add(&args, "threshold", "%ld", threshold);
    if (!sg_pol_fire(s, SG_EV_DNSBL_FAILED, mode, "DNSBL", sum.score, &args,
                     stage, v))
        return false;
    /* As Postfix words it, with the list's own reason. */
    if (v->action == SG_ACT_REJECT) {
        struct sg_args reply;

        sg_args_init(&reply);
        sg_args_add(&reply, "client", "%s", s->client);
        sg_args_add(&reply, "zone", "%s", zone);
        sg_args_add(&reply, "reason", "%s", sum.reason);
        sg_verdict_set(v, v->event, v->action, stage, &reply);
    }
    return true;
}

static bool same_addr(const struct sg_addr *a, const struct sg_addr *b)
{
    return a->family == b->family &&
        memcmp(a->b, b->b, a->family == AF_INET ? 4 : 16) == 0;
}

enum rdns { RDNS_PASS, RDNS_NO_PTR, RDNS_MISMATCH, RDNS_TEMP };

/* fcrdns - the outcome, and the host name it is about */
static enum rdns fcrdns(const struct sg_session *s, char *host, size_t size)
{
    const struct sg_rep *r = &s->rep;
    const struct sg_dns_answer *ptr = sg_dns_result(r->batch, r->h_ptr);
    bool temp = false;

    sg_strlcpy(host, "unknown", size);
    if (ptr != NULL && (ptr->status == SG_DNS_NXDOMAIN ||
                        ptr->status == SG_DNS_NODATA))
        return RDNS_NO_PTR;
    if (ptr == NULL || ptr->status != SG_DNS_OK) {
        lookup_failed(s, "FCrDNS", ptr, "PTR");
        return RDNS_TEMP;
    }
    if (ptr->nrr > 0 && ptr->rr[0].text != NULL)
        printable(ptr->rr[0].text, ptr->rr[0].len, host, size);
    for (size_t j = 0; j < r->nfwd; j++) {
        const struct sg_dns_answer *a = sg_dns_result(r->batch, r->h_fwd[j]);

        if (a == NULL || !sg_dns_definite(a->status)) {
            temp = true;
            continue;
        }
        for (size_t k = 0; k < a->nrr; k++)
            if (same_addr(&a->rr[k].addr, &s->addr)) {
                printable(a->name, strlen(a->name), host, size);
                return RDNS_PASS;
            }
    }
    return temp ? RDNS_TEMP : RDNS_MISMATCH;
}

static bool fcrdns_verdict(struct sg_session *s, enum sg_stage stage,
                           struct sg_verdict *v)
{
    static const char *const names[] = {
        "pass", "no_ptr", "mismatch", "temperror",
    };
    long mode = sg_config_get(s->cfg, SG_SET_do_fcrdns);
    char host[SG_DNS_NAME_MAX];
    struct sg_args args;
    enum rdns res;
    bool temp;

    if (mode == SG_MODE_OFF || s->rep.h_ptr < 0)
        return false;
    res = fcrdns(s, host, sizeof(host));
    temp = res == RDNS_TEMP;
    sg_args_init(&args);
    sg_args_add(&args, "ip", "%s", s->client);
    sg_args_add(&args, "hostname", "%s", host);
    if (res == RDNS_PASS) {
        sg_pol_emit(s, SG_EV_RDNS_PASS, SG_ACT_NONE, &args);
        return false;
    }
    if (!temp)
        sg_args_add(&args, "result", "%s", names[res]);
    if (!sg_pol_fire(s, temp ? SG_EV_RDNS_TEMPERROR : SG_EV_RDNS_FAILED,
                     mode, "FCrDNS", temp ? 0
                     : sg_config_get(s->cfg, SG_SET_score_fcrdns), &args,
                     stage, v))
        return false;
    /* RFC 7372's codes for reverse DNS, Postfix's wording. */
    if (v->action == SG_ACT_REJECT || v->action == SG_ACT_TEMPFAIL) {
        struct sg_args reply;

        sg_args_init(&reply);
        sg_args_add(&reply, "client", "%s", s->client);
        sg_verdict_set(v, v->event, v->action, stage, &reply);
    }
    return true;
}

/* own_user - authenticated or in relay_networks: not checked */
static bool own_user(const struct sg_session *s)
{
    return s->auth[0] != '\0' ||
        sg_config_ip_listed(s->cfg, SG_LIST_RELAY, &s->addr, NULL);
}

void sg_rep_stage(struct sg_session *s, enum sg_dns_stage stage,
                  const char *rcpt, struct sg_verdict *v)
{
    struct sg_rep *r = &s->rep;
    int64_t deadline;

    /* One DNS budget per callback: what is left of it after the verdicts
     * here is what the SPF check of the MAIL callback may wait. */
    deadline = sg_dns_clock(NULL) + sg_config_get(s->cfg, SG_SET_dns_budget);
    s->dns_deadline = deadline;
    if (r->done) {
        if (r->refused)
            *v = r->verdict;
        return;
    }
    if (r->batch == NULL)
        return;
    /* Whatever has arrived, and the follow-ups it calls for. */
    sg_dns_wait(r->batch, SG_DNS_ALL, 0);
    followups(s);
    if ((long) stage < sg_config_get(s->cfg, SG_SET_dns_stage))
        return;
    while (sg_dns_pending(r->batch) > 0 && sg_dns_clock(NULL) < deadline) {
        sg_dns_wait(r->batch, SG_DNS_ANY, deadline);
        followups(s);
    }
    r->done = true;
    if (!own_user(s) &&
        (dnsbl_verdict(s, to_stage(stage), rcpt, v) ||
         fcrdns_verdict(s, to_stage(stage), v))) {
        r->refused = true;
        r->verdict = *v;
    }
    sg_rep_free(s);
}
