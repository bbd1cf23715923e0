/*
 * spfdns.c - the DNS layer libspf2 asks through: our resolver (through
 * the check's asker), our record checks, our lookup limits
 *
 * Counting DNS-querying terms at the DNS layer (RFC 7208 4.6.4): a TXT
 * lookup after the first one that finds an SPF record is an include or a
 * redirect; MX and PTR lookups are terms; an A/AAAA lookup is a term unless
 * it is for a name an MX or PTR answer gave (the per-mechanism lookups,
 * bounded separately). A term whose answer is NXDOMAIN or NODATA is a void
 * lookup. TXT lookups that find no SPF record (an explanation, or an
 * include target without a record, which libspf2 already refuses) are not
 * counted, so an explanation never turns a fail into a permerror.
 *
 * DNS errors (RFC 7208 5, 4.4, 2.6.7): a lookup that fails (SERVFAIL,
 * another error RCODE, a timeout, an answer that makes no sense) ends the
 * evaluation with temperror at once; libspf2 is told TRY_AGAIN for it and
 * for every lookup after, and whatever it makes of that, our result
 * replaces its. Except where 5.5 and 7.3 say otherwise: an error of the
 * PTR lookup of the client's address (ptr, %{p}) is no match and
 * "unknown", an error of the address lookup of one of its names skips
 * that name. The explanation fetched after a fail is not part of the
 * evaluation: an error there only loses the explanation (6.2).
 */
#include <netinet/in.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include "dname.h"
#include "spf.h"
#include "spf_int.h"
#include "spfrecord.h"

void sg_spfi_set_perm(struct ctx *c, const char *why)
{
    if (!c->perm)
        snprintf(c->reason, sizeof(c->reason), "%s", why);
    c->perm = true;
}

/*
 * take_sub - is this address lookup one of those the last MX or PTR term
 * makes (a name of its answer, not asked yet)? Any other lookup means
 * that term is done: its names left unasked are forgotten, so a later
 * a:NAME of one of them is a term of its own.
 */
static bool take_sub(struct ctx *c, uint16_t type, const char *name)
{
    if (type == SG_DNS_T_A || type == SG_DNS_T_AAAA)
        for (size_t i = 0; i < c->nsub; i++)
            if (!c->sub_asked[i] && strcasecmp(c->sub[i], name) == 0) {
                c->sub_asked[i] = true;
                return true;
            }
    c->nsub = 0;
    return false;
}

/* set_subs - the names of an MX or PTR answer: the address lookups to
 * come. 4.6.4: more than 10 MX names is an error; of PTR names only the
 * first 10 are looked at (to_libspf2() gives libspf2 no more). */
static void set_subs(struct ctx *c, const struct sg_dns_answer *a)
{
    c->nsub = 0;
    c->sub_ptr = a->qtype == SG_DNS_T_PTR;
    for (size_t k = 0; k < a->nrr; k++) {
        if (a->rr[k].text == NULL)
            continue;
        if (c->nsub == MAX_SUBNAMES) {
            if (a->qtype == SG_DNS_T_MX)
                sg_spfi_set_perm(c, "more than 10 MX names");
            return;
        }
        c->sub_asked[c->nsub] = false;
        c->sub_fetched[c->nsub] = false;
        sg_strlcpy(c->sub[c->nsub++], a->rr[k].text, SG_DNS_NAME_MAX);
    }
}

/*
 * fetch_mx_hosts - the address lookups of an MX term, all of them, now.
 * RFC 7208 5.4: check_host() "performs an address lookup on each MX name
 * returned", and 5: a DNS error in one stops the mechanism with
 * temperror. libspf2 stops at the first host that matches, so an error
 * of a later host would go unseen; lookup() gives it these answers.
 */
static void fetch_mx_hosts(struct ctx *c)
{
    uint16_t want = c->client_v4 ? SG_DNS_T_A : SG_DNS_T_AAAA;

    for (size_t i = 0; i < c->nsub && !c->perm; i++) {
        const struct sg_dns_answer *a;
        bool refused;

        if (strcmp(c->sub[i], ".") == 0)
            continue;           /* "no mail here" (RFC 7505) */
        a = c->asker->ask(c->asker->arg, c->sub[i], want, &refused);
        if (a == NULL && refused) {
            sg_spfi_set_perm(c, "too many DNS lookups");
            return;
        }
        c->sub_fetched[i] = true;
        c->sub_ans[i] = a;
        if (a == NULL || (!sg_dns_definite(a->status) &&
                          a->status != SG_DNS_BADNAME))
            c->temp = true;
    }
}

/* fetched - the answer fetch_mx_hosts() has for this lookup, if any */
static bool fetched(const struct ctx *c, uint16_t type, const char *name,
                    const struct sg_dns_answer **a)
{
    if (type != (c->client_v4 ? SG_DNS_T_A : SG_DNS_T_AAAA))
        return false;
    for (size_t i = 0; i < c->nsub; i++)
        if (!c->sub_asked[i] && c->sub_fetched[i] &&
            strcasecmp(c->sub[i], name) == 0) {
            *a = c->sub_ans[i];
            return true;
        }
    return false;
}

/* refuse_record - the domain's record is a permerror of ours: why, and
 * what it was, for spf_record_refused */
static void refuse_record(struct ctx *c, const char *domain,
                          const struct sg_dns_rr *r, const char *why)
{
    sg_spfi_set_perm(c, why);
    c->out->record_refused = true;
    snprintf(c->out->refused_record, sizeof(c->out->refused_record), "%.*s",
             (int) (r->len < 60 ? r->len : 60), r->text);
    sg_strlcpy(c->out->refused_domain, domain,
               sizeof(c->out->refused_domain));
}

/* check_txt - our checks of the SPF records of one TXT answer; the
 * index of the one SPF record, -1 for none */
static int check_txt(struct ctx *c, const char *domain,
                     const struct sg_dns_answer *a)
{
    int found = -1;

    for (size_t k = 0; k < a->nrr; k++) {
        const struct sg_dns_rr *r = &a->rr[k];
        struct sg_spf_check chk;

        if (!sg_spf_is_record(r->text, r->len))
            continue;
        if (found >= 0) {
            sg_spfi_set_perm(c, "more than one SPF record");
            return found;
        }
        found = (int) k;
        sg_spf_record_check(r->text, r->len, &chk);
        if (!chk.ok) {
            char why[128];

            snprintf(why, sizeof(why), "invalid record: %s", chk.reason);
            refuse_record(c, domain, r, why);
        }
    }
    return found;
}

/* error_ignored - a DNS error that is no temperror: the PTR lookup of
 * the client's address (RFC 7208 5.5: ptr does not match; 7.3: %{p} is
 * "unknown"), or the address lookup of one of its names (5.5: "that
 * domain name is skipped and the search continues"). */
static bool error_ignored(const struct ctx *c, uint16_t type,
                          const char *name)
{
    if (type == SG_DNS_T_PTR)
        return strcasecmp(name, c->rev) == 0;
    if ((type == SG_DNS_T_A || type == SG_DNS_T_AAAA) && c->sub_ptr)
        for (size_t i = 0; i < c->nsub; i++)
            if (!c->sub_asked[i] && strcasecmp(c->sub[i], name) == 0)
                return true;
    return false;
}

/* count - the term accounting of one answer (a: NULL for no answer, a
 * timeout); sets c->perm when over a limit */
static void count(struct ctx *c, uint16_t type, const char *name,
                  enum sg_dns_status st, const struct sg_dns_answer *a,
                  int spf_index)
{
    bool term, sub = take_sub(c, type, name);

    switch (type) {
    case SG_DNS_T_TXT:
        term = c->txt_seen++ > 0 && (spf_index >= 0 ||
                                     !sg_dns_definite(st));
        break;
    case SG_DNS_T_MX:
        term = true;
        break;
    case SG_DNS_T_PTR:
        term = strcasecmp(name, c->rev) == 0;
        break;
    default:
        term = !sub;
        break;
    }
    if (st == SG_DNS_OK && a != NULL &&
        (type == SG_DNS_T_MX || type == SG_DNS_T_PTR))
        set_subs(c, a);
    if (!term)
        return;
    if (++c->terms > MAX_TERMS)
        sg_spfi_set_perm(c, "more than 10 DNS lookups");
    if ((st == SG_DNS_NXDOMAIN || st == SG_DNS_NODATA) &&
        ++c->voids > MAX_VOIDS)
        sg_spfi_set_perm(c, "more than 2 void lookups");
}

/*
 * expand_delims - the macros libspf2 gets wrong, expanded by us
 * (sg_spf_macro_delims), %{p} among them. %{p} is found here, when the
 * record arrives, rather than when its term is evaluated, and its PTR
 * lookup counted then, once per check: so a match before the term does
 * not spare it. Its DNS errors give "unknown" (7.3) either way, and
 * libspf2's PTR lookups are then only those of ptr mechanisms. %{p} is
 * "do not use" (7.3).
 */
static void expand_delims(struct ctx *c, const char *domain, char *txt,
                          size_t size)
{
    char p[SG_DNS_NAME_MAX];

    if ((sg_spf_macro_delims(txt, size, c->macro) & 1u << ('p' - 'a')) == 0)
        return;
    sg_spfi_validated(c, domain, !c->p_counted, p, sizeof(p));
    c->p_counted = true;
    c->macro['p' - 'a'] = p;
    sg_spf_macro_delims(txt, size, c->macro);
    c->macro['p' - 'a'] = NULL;
}

/* count_terms - mechanisms and modifiers of a record as libspf2 is given
 * it (after "v=spf1"): a modifier's name ends at '=' before any ':' or
 * '/' */
static void count_terms(const char *txt, unsigned *mech, unsigned *mod)
{
    const char *p = txt + strcspn(txt, " ");

    *mech = *mod = 0;
    while (*p != '\0') {
        size_t n, name;

        p += strspn(p, " ");
        if ((n = strcspn(p, " ")) == 0)
            break;
        name = strcspn(p, "=:/ ");
        if (name < n && p[name] == '=')
            (*mod)++;
        else
            (*mech)++;
        p += n;
    }
}

/*
 * whole_in_libspf2 - does libspf2 keep every term of the record? Its
 * compiler stops adding mechanisms once their compiled data pass about
 * 511 bytes, without an error: a long record would be evaluated without
 * its last terms (a "-all" lost is a neutral where the domain says fail).
 * The record is compiled here once, as libspf2 will compile it, and its
 * terms counted against ours (libspf2 files redirect= with the
 * mechanisms: the sums are compared).
 */
static bool whole_in_libspf2(struct ctx *c, const char *txt, char *why,
                             size_t size)
{
    SPF_response_t *resp = SPF_response_new(NULL);
    SPF_record_t *rec = NULL;
    unsigned mech, mod;
    bool whole = true;

    if (resp == NULL)
        return true;            /* libspf2 will fail the same way */
    count_terms(txt, &mech, &mod);
    if (SPF_record_compile(c->req->spf_server, resp, &rec, txt)
        == SPF_E_SUCCESS && rec != NULL &&
        (unsigned) rec->num_mech + rec->num_mod < mech + mod) {
        snprintf(why, size, "record too long for libspf2 (it keeps %u of "
                 "%u terms)", (unsigned) rec->num_mech + rec->num_mod,
                 mech + mod);
        whole = false;
    }
    if (rec != NULL)
        SPF_record_free(rec);
    SPF_response_free(resp);
    return whole;
}

static SPF_dns_rr_t *to_libspf2(SPF_dns_server_t *srv, struct ctx *c,
                                const char *domain, ns_type type,
                                const struct sg_dns_answer *a, int only)
{
    bool client_v4 = c->client_v4;
    SPF_dns_rr_t *rr;
    int herrno, n = 0;

    switch (a->status) {
    case SG_DNS_OK:
        herrno = NETDB_SUCCESS;
        break;
    case SG_DNS_NXDOMAIN:
        herrno = HOST_NOT_FOUND;
        break;
    case SG_DNS_NODATA:
        herrno = NO_DATA;
        break;
    default:
        herrno = TRY_AGAIN;
        break;
    }
    rr = SPF_dns_rr_new_init(srv, domain, type, (int) a->ttl, herrno);
    if (rr == NULL || herrno != NETDB_SUCCESS)
        return rr;
    for (size_t k = 0; k < a->nrr; k++) {
        const struct sg_dns_rr *r = &a->rr[k];
        size_t len;

        /* Of a TXT answer libspf2 sees the one SPF record we checked,
         * rewritten, and nothing else. Explanations never come this way
         * (get_exp() fetches them), so its macro compiler gets no string
         * from the network we did not check (CVE-2023-42118). */
        if (type == ns_t_txt && (int) k != only)
            continue;
        if (type == ns_t_mx && strcmp(r->text, ".") == 0)
            continue;           /* "no mail here" (RFC 7505) */
        if (type == ns_t_ptr && n == MAX_SUBNAMES)
            break;              /* 4.6.4: at most 10 names looked at */
        len = r->text ? r->len + 1 : sizeof(struct in6_addr);
        if (type == ns_t_txt && (int) k == only)
            len = 2 * SG_SPF_RECORD_MAX;    /* room for the rewriting */
        if (SPF_dns_rr_buf_realloc(rr, n, len) != SPF_E_SUCCESS)
            break;
        if (type == ns_t_a)
            memcpy(&rr->rr[n]->a, r->addr.b, 4);
        else if (type == ns_t_aaaa)
            memcpy(&rr->rr[n]->aaaa, r->addr.b, 16);
        else if (type == ns_t_txt && (int) k == only) {
            /* The record is evaluated for this domain: its %{d}. */
            c->macro['d' - 'a'] = domain;
            char why[96];

            sg_spf_record_for_libspf2(r->text, r->len, client_v4,
                                      rr->rr[n]->txt, len);
            expand_delims(c, domain, rr->rr[n]->txt, len);
            sg_spf_macro_digits(rr->rr[n]->txt, c->macro);
            if (!whole_in_libspf2(c, rr->rr[n]->txt, why, sizeof(why))) {
                refuse_record(c, domain, r, why);
                SPF_dns_rr_free(rr);
                return SPF_dns_rr_new_init(srv, domain, type, 0, TRY_AGAIN);
            }
        }
        else
            memcpy(rr->rr[n]->txt, r->text, r->len + 1);
        n++;
    }
    rr->num_rr = n;
    if (n == 0)
        rr->herrno = NO_DATA;
    return rr;
}

/* ask - one lookup, waited for; NULL: no answer (or over the budget) */
const struct sg_dns_answer *sg_spfi_ask(struct ctx *c, const char *name,
                                        uint16_t type)
{
    bool refused;

    return c->asker->ask(c->asker->arg, name, type, &refused);
}

static bool ends_with(const char *s, const char *suffix, size_t *base)
{
    size_t n = strlen(s), m = strlen(suffix);

    if (n <= m || strcasecmp(s + n - m, suffix) != 0)
        return false;
    *base = n - m;
    return true;
}

/* fit_253 - RFC 7208 4.8: a name over 253 octets loses labels on the
 * left */
const char *sg_spfi_fit_253(const char *name)
{
    while (strlen(name) > 253 && strchr(name, '.') != NULL)
        name = strchr(name, '.') + 1;
    return name;
}

/*
 * marked - the exists: names of sg_spf_record_for_libspf2() for "a//0",
 * "mx/0" and "mx//0": does the name (or one of its MX hosts) have an
 * address of the client's family? One DNS-querying term, as the
 * mechanism it stands for.
 */
static SPF_dns_rr_t *marked(SPF_dns_server_t *srv, struct ctx *c,
                            const char *domain, ns_type type, size_t len,
                            bool mx, uint16_t want)
{
    char base[SG_DNS_NAME_MAX];
    const struct sg_dns_answer *a;
    bool found = false, temp = false;
    SPF_dns_rr_t *rr;

    snprintf(base, sizeof(base), "%.*s", (int) len, domain);
    a = sg_spfi_ask(c, base, mx ? SG_DNS_T_MX : want);
    if (++c->terms > MAX_TERMS)
        sg_spfi_set_perm(c, "more than 10 DNS lookups");
    if (a == NULL || !sg_dns_definite(a->status))
        temp = true;
    else if (a->status != SG_DNS_OK && ++c->voids > MAX_VOIDS)
        sg_spfi_set_perm(c, "more than 2 void lookups");
    else if (a->status == SG_DNS_OK && !mx)
        found = true;
    if (mx && a != NULL && a->status == SG_DNS_OK && a->nrr > MAX_SUBNAMES)
        sg_spfi_set_perm(c, "more than 10 MX names");
    /* every host (5.4), not up to the first that has an address */
    for (size_t k = 0; mx && a != NULL && a->status == SG_DNS_OK &&
         k < a->nrr && !c->perm; k++) {
        const struct sg_dns_answer *h;

        if (a->rr[k].text == NULL || strcmp(a->rr[k].text, ".") == 0)
            continue;           /* "no mail here" (RFC 7505) */
        h = sg_spfi_ask(c, a->rr[k].text, want);
        if (h == NULL || (!sg_dns_definite(h->status) &&
                          h->status != SG_DNS_BADNAME))
            temp = true;
        else if (h->status == SG_DNS_OK)
            found = true;
    }
    /* A failed lookup is a temperror (RFC 7208 5), even when another
     * host has an address. */
    c->temp = c->temp || temp;
    if (c->perm || c->temp)
        return SPF_dns_rr_new_init(srv, domain, type, 0, TRY_AGAIN);
    if (!found)
        return SPF_dns_rr_new_init(srv, domain, type, 0, HOST_NOT_FOUND);
    rr = SPF_dns_rr_new_init(srv, domain, type, 60, NETDB_SUCCESS);
    if (rr != NULL && SPF_dns_rr_buf_realloc(rr, 0, sizeof(struct in6_addr))
        == SPF_E_SUCCESS) {
        rr->rr[0]->a.s_addr = htonl(INADDR_LOOPBACK);
        rr->num_rr = 1;
    }
    return rr;
}

/* lookup - libspf2's DNS: our resolver, our checks, our limits */
SPF_dns_rr_t *sg_spfi_lookup(SPF_dns_server_t *srv, const char *domain,
                             ns_type type, int should_cache)
{
    struct ctx *c = srv->hook;
    const struct sg_dns_answer *a;
    enum sg_dns_status st;
    bool refused, ignored;
    int spf = -1;

    (void) should_cache;
    /* The SPF RR type is gone (RFC 7208 3.1); after a finding of ours,
     * stop the evaluation: our result replaces libspf2's. */
    if (type == ns_t_spf)
        return SPF_dns_rr_new_init(srv, domain, type, 0, NO_DATA);
    if (c->perm || c->temp ||
        (type != ns_t_a && type != ns_t_aaaa && type != ns_t_mx &&
         type != ns_t_ptr && type != ns_t_txt))
        return SPF_dns_rr_new_init(srv, domain, type, 0, TRY_AGAIN);
    {
        size_t len;

        if (type == ns_t_a && ends_with(domain, SG_SPF_MARK_MX4, &len))
            return marked(srv, c, domain, type, len, true, SG_DNS_T_A);
        if (type == ns_t_a && ends_with(domain, SG_SPF_MARK_MX6, &len))
            return marked(srv, c, domain, type, len, true, SG_DNS_T_AAAA);
        if (type == ns_t_a && ends_with(domain, SG_SPF_MARK_A6, &len))
            return marked(srv, c, domain, type, len, false, SG_DNS_T_AAAA);
        /* RFC 6761: names under .invalid never resolve; ask nobody. */
        if (ends_with(domain, ".invalid", &len) ||
            strcasecmp(domain, "invalid") == 0)
            return SPF_dns_rr_new_init(srv, domain, type, 0,
                                       HOST_NOT_FOUND);
    }
    domain = sg_spfi_fit_253(domain);
    refused = false;
    if (!fetched(c, (uint16_t) type, domain, &a))
        a = c->asker->ask(c->asker->arg, domain, (uint16_t) type, &refused);
    if (a == NULL && refused) {
        sg_spfi_set_perm(c, "too many DNS lookups");
        return SPF_dns_rr_new_init(srv, domain, type, 0, TRY_AGAIN);
    }
    st = a != NULL ? a->status : SG_DNS_TIMEOUT;
    if (st == SG_DNS_BADNAME)
        /* A name no query can carry (empty or long labels): it does not
         * exist (RFC 7208 4.3: "none" at the top, no match below). Any
         * other answer that made no sense (a short or garbled reply over
         * TCP, records that do not parse) is a DNS error: temperror
         * (RFC 7208 5). */
        return SPF_dns_rr_new_init(srv, domain, type, 0, HOST_NOT_FOUND);
    ignored = !sg_dns_definite(st) &&
        error_ignored(c, (uint16_t) type, domain);
    if (!sg_dns_definite(st) && !ignored)
        c->temp = true;
    if (type == ns_t_txt && st == SG_DNS_OK)
        spf = check_txt(c, a->name, a);
    count(c, (uint16_t) type, a != NULL ? a->name : domain, st, a, spf);
    if (type == ns_t_mx && st == SG_DNS_OK && !c->perm)
        fetch_mx_hosts(c);
    if (c->perm || c->temp)
        return SPF_dns_rr_new_init(srv, domain, type, 0, TRY_AGAIN);
    if (ignored)
        return SPF_dns_rr_new_init(srv, domain, type, 0, HOST_NOT_FOUND);
    return to_libspf2(srv, c, domain, type, a, spf);
}

/*
 * get_exp - libspf2's explanation fetch, replaced: after a fail (and a
 * softfail or neutral) it hands us the exp= target it expanded from the
 * record that decided, a record we checked. We only note the name and
 * the current domain (%{d} of the explanation); fetch_exp() looks it up
 * when the result is a fail. What libspf2 gets back is a fixed text: its
 * macro compiler never sees the network's explanation, which may hold
 * anything (an SPF-looking record crafted against
 * SPF_record_compile_macro, CVE-2023-42118, included).
 */
SPF_errcode_t sg_spfi_get_exp(SPF_server_t *srv, const char *domain,
                              char **bufp, size_t *buflenp)
{
    static const char fixed[] = "SPF fail";
    struct ctx *c = srv->resolver->hook;

    sg_strlcpy(c->exp_target, domain != NULL ? sg_spfi_fit_253(domain) : "",
               sizeof(c->exp_target));
    sg_strlcpy(c->exp_domain, c->req->cur_dom != NULL ? c->req->cur_dom
               : c->out->domain, sizeof(c->exp_domain));
    if (*buflenp < sizeof(fixed)) {
        char *p = realloc(*bufp, sizeof(fixed));

        if (p == NULL)
            return SPF_E_NO_MEMORY;
        *bufp = p;
        *buflenp = sizeof(fixed);
    }
    memcpy(*bufp, fixed, sizeof(fixed));
    return SPF_E_SUCCESS;
}

/* fetch_exp - the explanation string of a fail: one TXT record that is
 * a well-formed explanation within our bounds, else none (RFC 7208 6.2:
 * as if there were no exp=). Not a DNS-querying term (4.6.4). */
bool sg_spfi_fetch_exp(struct ctx *c)
{
    const char *name = c->exp_target;
    const struct sg_dns_answer *a;
    char why[96];
    size_t len;

    if (*name == '\0' || ends_with(name, ".invalid", &len) ||
        strcasecmp(name, "invalid") == 0)
        return false;
    a = sg_spfi_ask(c, name, SG_DNS_T_TXT);
    if (a == NULL || a->status != SG_DNS_OK || a->nrr != 1 ||
        a->rr[0].text == NULL ||
        !sg_spf_exp_check(a->rr[0].text, a->rr[0].len, why, sizeof(why)))
        return false;
    sg_strlcpy(c->exp_text, a->rr[0].text, sizeof(c->exp_text));
    return true;
}
