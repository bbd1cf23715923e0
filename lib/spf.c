/*
 * spf.c - libspf2 behind our own DNS layer and record checks (see spf.h)
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
#include "spfrecord.h"

#define MAX_TERMS 10            /* RFC 7208 4.6.4 */
#define MAX_VOIDS 2
#define MAX_SUBNAMES 10         /* MX/PTR names looked up per term */

struct ctx {
    const struct sg_spf_asker *asker;
    int txt_seen;
    unsigned terms, voids;
    bool perm, temp;
    char reason[128];
    /* The names of the last MX or PTR answer whose address lookups are
     * still to come: part of that term, not terms of their own (RFC 7208
     * 4.6.4), each once. */
    char sub[MAX_SUBNAMES][SG_DNS_NAME_MAX];
    bool sub_asked[MAX_SUBNAMES];
    size_t nsub;
    bool sub_ptr;               /* they are the names of a PTR answer */
    /* An MX term's address lookups, all made when its answer comes
     * (fetch_mx_hosts), for libspf2 to find when it asks. */
    bool sub_fetched[MAX_SUBNAMES];
    const struct sg_dns_answer *sub_ans[MAX_SUBNAMES];
    char rev[SG_DNS_NAME_MAX];  /* the client's reverse name */
    bool client_v4;
    unsigned char client_addr[16];
    bool p_counted;             /* %{p}'s PTR lookup counted */
    SPF_request_t *req;
    char exp_target[SG_DNS_NAME_MAX];   /* exp=, expanded by libspf2 */
    char exp_domain[SG_DNS_NAME_MAX];   /* %{d} of the explanation */
    char exp_text[SG_SPF_EXP_MAX + 1];  /* fetch_exp(): checked */
    /* The values of the macros of a record that we know before libspf2
     * expands them (sg_spf_macro_digits), by letter; d set per record. */
    const char *macro[26];
    char m_s[SG_MAILADDR_KEYMAX + 16], m_i[72];
    struct sg_spf_outcome *out;
};

const char *sg_spf_result_name(enum sg_spf_result r)
{
    static const char *const names[] = {
        "none", "neutral", "pass", "fail", "softfail", "temperror",
        "permerror",
    };

    return (unsigned) r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

/* libspf2 logs through globals; its error handler must not return. */
static void quiet(const char *file, int line, const char *msg)
{
    (void) file;
    (void) line;
    (void) msg;
}

static void fatal(const char *file, int line, const char *msg)
    __attribute__((noreturn));

static void fatal(const char *file, int line, const char *msg)
{
    fprintf(stderr, "smtpguard: libspf2 %s:%d: %s\n", file, line, msg);
    abort();
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_libspf2(void)
{
    SPF_error_handler = fatal;
    SPF_warning_handler = quiet;
    SPF_info_handler = quiet;
    SPF_debug_handler = quiet;
}

static void set_perm(struct ctx *c, const char *why)
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
                set_perm(c, "more than 10 MX names");
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
            set_perm(c, "too many DNS lookups");
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
            set_perm(c, "more than one SPF record");
            return found;
        }
        found = (int) k;
        sg_spf_record_check(r->text, r->len, &chk);
        if (!chk.ok) {
            char why[128];

            snprintf(why, sizeof(why), "invalid record: %s", chk.reason);
            set_perm(c, why);
            c->out->record_refused = true;
            snprintf(c->out->refused_record, sizeof(c->out->refused_record),
                     "%.*s", (int) (r->len < 60 ? r->len : 60), r->text);
            sg_strlcpy(c->out->refused_domain, domain,
                       sizeof(c->out->refused_domain));
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
        set_perm(c, "more than 10 DNS lookups");
    if ((st == SG_DNS_NXDOMAIN || st == SG_DNS_NODATA) &&
        ++c->voids > MAX_VOIDS)
        set_perm(c, "more than 2 void lookups");
}

static void validated(struct ctx *c, const char *domain, bool term,
                      char *buf, size_t size);

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
    validated(c, domain, !c->p_counted, p, sizeof(p));
    c->p_counted = true;
    c->macro['p' - 'a'] = p;
    sg_spf_macro_delims(txt, size, c->macro);
    c->macro['p' - 'a'] = NULL;
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
            sg_spf_record_for_libspf2(r->text, r->len, client_v4,
                                      rr->rr[n]->txt, len);
            expand_delims(c, domain, rr->rr[n]->txt, len);
            sg_spf_macro_digits(rr->rr[n]->txt, c->macro);
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
static const struct sg_dns_answer *ask(struct ctx *c, const char *name,
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
static const char *fit_253(const char *name)
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
    a = ask(c, base, mx ? SG_DNS_T_MX : want);
    if (++c->terms > MAX_TERMS)
        set_perm(c, "more than 10 DNS lookups");
    if (a == NULL || !sg_dns_definite(a->status))
        temp = true;
    else if (a->status != SG_DNS_OK && ++c->voids > MAX_VOIDS)
        set_perm(c, "more than 2 void lookups");
    else if (a->status == SG_DNS_OK && !mx)
        found = true;
    if (mx && a != NULL && a->status == SG_DNS_OK && a->nrr > MAX_SUBNAMES)
        set_perm(c, "more than 10 MX names");
    /* every host (5.4), not up to the first that has an address */
    for (size_t k = 0; mx && a != NULL && a->status == SG_DNS_OK &&
         k < a->nrr && !c->perm; k++) {
        const struct sg_dns_answer *h;

        if (a->rr[k].text == NULL || strcmp(a->rr[k].text, ".") == 0)
            continue;           /* "no mail here" (RFC 7505) */
        h = ask(c, a->rr[k].text, want);
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
static SPF_dns_rr_t *lookup(SPF_dns_server_t *srv, const char *domain,
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
    domain = fit_253(domain);
    refused = false;
    if (!fetched(c, (uint16_t) type, domain, &a))
        a = c->asker->ask(c->asker->arg, domain, (uint16_t) type, &refused);
    if (a == NULL && refused) {
        set_perm(c, "too many DNS lookups");
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
static SPF_errcode_t get_exp(SPF_server_t *srv, const char *domain,
                             char **bufp, size_t *buflenp)
{
    static const char fixed[] = "SPF fail";
    struct ctx *c = srv->resolver->hook;

    sg_strlcpy(c->exp_target, domain != NULL ? fit_253(domain) : "",
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
static bool fetch_exp(struct ctx *c)
{
    const char *name = c->exp_target;
    const struct sg_dns_answer *a;
    char why[96];
    size_t len;

    if (*name == '\0' || ends_with(name, ".invalid", &len) ||
        strcasecmp(name, "invalid") == 0)
        return false;
    a = ask(c, name, SG_DNS_T_TXT);
    if (a == NULL || a->status != SG_DNS_OK || a->nrr != 1 ||
        a->rr[0].text == NULL ||
        !sg_spf_exp_check(a->rr[0].text, a->rr[0].len, why, sizeof(why)))
        return false;
    sg_strlcpy(c->exp_text, a->rr[0].text, sizeof(c->exp_text));
    return true;
}

static enum sg_spf_result map(SPF_result_t r)
{
    switch (r) {
    case SPF_RESULT_PASS:
        return SG_SPF_PASS;
    case SPF_RESULT_FAIL:
        return SG_SPF_FAIL;
    case SPF_RESULT_SOFTFAIL:
        return SG_SPF_SOFTFAIL;
    case SPF_RESULT_NEUTRAL:
        return SG_SPF_NEUTRAL;
    case SPF_RESULT_NONE:
        return SG_SPF_NONE;
    case SPF_RESULT_TEMPERROR:
        return SG_SPF_TEMPERROR;
    default:
        return SG_SPF_PERMERROR;
    }
}

/* identity - what is checked: the sender, or postmaster@HELO */
static bool identity(const struct sg_mailaddr *sender, const char *helo,
                     struct sg_spf_outcome *out, char *from, size_t size)
{
    /* The identity is named in the headers even when it cannot be
     * checked ("domain of a@b does not provide an SPF record"). */
    if (sender != NULL && !sender->null) {
        snprintf(from, size, "%s%s%s", sender->local,
                 *sender->domain != '\0' ? "@" : "", sender->domain);
        sg_strlcpy(out->identity, from, sizeof(out->identity));
        if (!sender->domain_ok || !sg_dname_fqdn_ok(sender->domain) ||
            strlen(sender->local) > 64)
            return false;
        sg_strlcpy(out->domain, sender->domain, sizeof(out->domain));
        return true;
    }
    out->helo_identity = true;
    if (helo != NULL)
        sg_strlcpy(out->identity, helo, sizeof(out->identity));
    if (!sg_dname_fqdn_ok(helo))
        return false;
    snprintf(from, size, "postmaster@%s", helo);
    sg_strlcpy(out->identity, helo, sizeof(out->identity));
    sg_strlcpy(out->domain, helo, sizeof(out->domain));
    return true;
}

/* subdomain_of - name is domain or under it */
static bool subdomain_of(const char *name, const char *domain)
{
    size_t n = strlen(name), m = strlen(domain);

    return n >= m && strcasecmp(name + n - m, domain) == 0 &&
        (n == m || name[n - m - 1] == '.');
}

/*
 * validated - %{p} (RFC 7208 7.3): a PTR name of the client that leads
 * back to it (5.5), the domain itself or one under it first; "unknown"
 * when there is none or a lookup fails. With term, its PTR lookup is
 * counted among the 10 (4.6.4: "When evaluating the "ptr" mechanism or
 * the %{p} macro, the number of "PTR" resource records queried is
 * included in the overall limit of 10"); it is no term, so never a void
 * lookup, and an error is "unknown" (7.3), no temperror.
 */
static void validated(struct ctx *c, const char *domain, bool term,
                      char *buf, size_t size)
{
    const struct sg_dns_answer *ptr = ask(c, c->rev, SG_DNS_T_PTR);
    uint16_t want = c->client_v4 ? SG_DNS_T_A : SG_DNS_T_AAAA;
    size_t alen = c->client_v4 ? 4 : 16;
    int best = -1;

    snprintf(buf, size, "unknown");
    if (term && ++c->terms > MAX_TERMS)
        set_perm(c, "more than 10 DNS lookups");
    for (size_t k = 0; ptr != NULL && ptr->status == SG_DNS_OK &&
         k < ptr->nrr && k < MAX_SUBNAMES && best != 0; k++) {
        const char *name = ptr->rr[k].text;
        const struct sg_dns_answer *f;
        int rank;

        if (name == NULL)
            continue;
        rank = strcasecmp(name, domain) == 0 ? 0
            : subdomain_of(name, domain) ? 1 : 2;
        if (best >= 0 && rank >= best)
            continue;
        f = ask(c, name, want);
        for (size_t j = 0; f != NULL && f->status == SG_DNS_OK &&
             j < f->nrr; j++)
            if (memcmp(f->rr[j].addr.b, c->client_addr, alen) == 0) {
                snprintf(buf, size, "%s", name);
                best = rank;
                break;
            }
    }
}

/* url_escape - an upper-case macro letter: URL-escaped (RFC 7208 7.3) */
static void url_escape(char *v, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    char tmp[512];
    size_t o = 0;

    for (size_t i = 0; v[i] != '\0' && o + 4 < sizeof(tmp); i++) {
        unsigned char ch = (unsigned char) v[i];

        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
            (ch >= '0' && ch <= '9') || strchr("-._~", ch) != NULL) {
            tmp[o++] = (char) ch;
        } else {
            tmp[o++] = '%';
            tmp[o++] = hex[ch >> 4];
            tmp[o++] = hex[ch & 0xf];
        }
    }
    tmp[o] = '\0';
    snprintf(v, size, "%s", tmp);
}

/* macro_value - the value of one macro letter (RFC 7208 7.3) */
static void macro_value(struct ctx *c, const struct sg_addr *ip,
                        const char *local, const char *receiver, char l,
                        char *buf, size_t size)
{
    /* IPv6 "dot-format": nibbles as RFC 7208 7.4 writes them, upper
     * case (what the RFC 7208 test suite expects of explanations). */
    static const char hex[] = "0123456789ABCDEF";
    const struct sg_spf_outcome *o = c->out;
    size_t n = 0;

    switch (l) {
    case 's':
        snprintf(buf, size, "%s@%s", local, o->domain);
        break;
    case 'l':
        snprintf(buf, size, "%s", local);
        break;
    case 'o':
        snprintf(buf, size, "%s", o->domain);
        break;
    case 'd':
        snprintf(buf, size, "%s", c->exp_domain[0] ? c->exp_domain
                 : o->domain);
        break;
    case 'i':
        if (ip->family == AF_INET) {
            snprintf(buf, size, "%s", o->ip);
            break;
        }
        for (int i = 0; i < 16 && n + 4 < size; i++) {
            buf[n++] = hex[ip->b[i] >> 4];
            buf[n++] = '.';
            buf[n++] = hex[ip->b[i] & 0xf];
            buf[n++] = '.';
        }
        buf[n ? n - 1 : 0] = '\0';
        break;
    case 'c':
        snprintf(buf, size, "%s", o->ip);
        break;
    case 'v':
        snprintf(buf, size, "%s", ip->family == AF_INET ? "in-addr" : "ip6");
        break;
    case 'h':
        snprintf(buf, size, "%s", o->helo);
        break;
    case 'r':
        snprintf(buf, size, "%s", receiver);
        break;
    case 't':
        snprintf(buf, size, "%lld", (long long) time(NULL));
        break;
    default:                    /* p */
        validated(c, c->exp_domain[0] ? c->exp_domain : o->domain, false,
                  buf, size);
        break;
    }
}

/* transform - RFC 7208 7.3: split at the delimiters (empty parts kept),
 * reversed if asked, the rightmost `keep` parts, rejoined with "." */
static void transform(char *v, size_t size, int keep, bool rev,
                      const char *delims)
{
    char *part[128], tmp[512];
    int n = 0;
    size_t o = 0;

    snprintf(tmp, sizeof(tmp), "%s", v);
    part[n++] = tmp;
    for (char *p = tmp; *p != '\0' && n < 128; p++)
        if (strchr(delims, *p) != NULL) {
            *p = '\0';
            part[n++] = p + 1;
        }
    if (rev)
        for (int i = 0; i < n / 2; i++) {
            char *x = part[i];

            part[i] = part[n - 1 - i];
            part[n - 1 - i] = x;
        }
    v[0] = '\0';
    for (int i = keep > 0 && keep < n ? n - keep : 0, first = i;
         i < n && o < size; i++)
        o += (size_t) snprintf(v + o, o < size ? size - o : 0, "%s%s",
                               i > first ? "." : "", part[i]);
}

/* explanation - the exp= text with its macros expanded (RFC 7208 6.2) */
static void explanation(struct ctx *c, const struct sg_addr *ip,
                        const char *local, const char *receiver)
{
    struct sg_spf_outcome *o = c->out;
    const char *e = c->exp_text;
    size_t n = 0, max = sizeof(o->explanation);

    for (size_t i = 0; e[i] != '\0' && n + 1 < max; i++) {
        char v[512], delims[8] = "";
        const char *m;
        int keep = 0, d = 0;
        bool rev = false, upper;

        if (e[i] != '%') {
            o->explanation[n++] = e[i];
            continue;
        }
        if (e[i + 1] == '%' || e[i + 1] == '_' || e[i + 1] == '-') {
            const char *lit = e[i + 1] == '%' ? "%" : e[i + 1] == '_'
                ? " " : "%20";

            for (; *lit && n + 1 < max; lit++)
                o->explanation[n++] = *lit;
            i++;
            continue;
        }
        /* %{...}: checked by sg_spf_exp_check, so well formed */
        m = e + i + 2;
        macro_value(c, ip, local, receiver, (char) (*m | 0x20), v,
                    sizeof(v));
        upper = *m >= 'A' && *m <= 'Z';
        for (m++; *m >= '0' && *m <= '9'; m++)
            keep = keep * 10 + (*m - '0');
        if (*m == 'r' || *m == 'R')
            rev = true, m++;
        while (*m != '}' && d < 7)
            delims[d++] = *m++;
        while (*m != '}')
            m++;
        /* "If transformers or delimiters are provided" (7.3) */
        if (keep > 0 || rev || d > 0)
            transform(v, sizeof(v), keep, rev, d ? delims : ".");
        /* "expand exactly as their lowercase equivalents, and are then
         * URL escaped" (7.3): after the transformers */
        if (upper)
            url_escape(v, sizeof(v));
        for (const char *p = v; *p && n + 1 < max; p++)
            o->explanation[n++] = (unsigned char) *p < ' ' ||
                (unsigned char) *p > '~' ? '?' : *p;
        i = (size_t) (m - e);
    }
    o->explanation[n] = '\0';
}

/* fixed_explanation - libspf2's default explanation (used when a record
 * has no exp=): a text without macros, so nothing is expanded. */
static bool fixed_explanation(SPF_server_t *srv)
{
    SPF_response_t *resp = NULL;
    SPF_errcode_t err = SPF_server_set_explanation(srv, "SPF fail", &resp);

    if (resp != NULL)
        SPF_response_free(resp);
    return err == SPF_E_SUCCESS;
}

/* macro_values - what %{s l o h i v} expand to in this check's records
 * (as libspf2 is given them) */
static void macro_values(struct ctx *c, const struct sg_addr *ip,
                         const char *helo, const char *from)
{
    static const char hex[] = "0123456789abcdef";
    const char *at = strrchr(from, '@');
    size_t n = 0;

    sg_strlcpy(c->m_s, from, sizeof(c->m_s));
    c->macro['s' - 'a'] = c->m_s;
    if (at != NULL) {
        c->m_s[at - from] = '\0';      /* l: m_s up to the @ */
        c->macro['l' - 'a'] = c->m_s;
        c->macro['o' - 'a'] = at + 1;
        c->macro['s' - 'a'] = from;
    }
    c->macro['h' - 'a'] = helo != NULL && sg_dname_fqdn_ok(helo) ? helo
        : "helo.sg-not-a-domain.invalid";
    c->macro['v' - 'a'] = ip->family == AF_INET ? "in-addr" : "ip6";
    if (ip->family == AF_INET) {
        sg_strlcpy(c->m_i, c->out->ip, sizeof(c->m_i));
    } else {
        for (int i = 0; i < 16; i++) {
            c->m_i[n++] = hex[ip->b[i] >> 4];
            c->m_i[n++] = '.';
            c->m_i[n++] = hex[ip->b[i] & 0xf];
            c->m_i[n++] = '.';
        }
        c->m_i[n - 1] = '\0';
    }
    c->macro['i' - 'a'] = c->m_i;
}

void sg_spf_eval(const struct sg_spf_asker *asker,
                 const struct sg_addr *client, const char *helo,
                 const struct sg_mailaddr *sender, const char *receiver,
                 struct sg_spf_outcome *out)
{
    SPF_dns_server_t layer;
    SPF_server_t *srv = NULL;
    SPF_request_t *req = NULL;
    SPF_response_t *resp = NULL;
    struct ctx c;
    char from[SG_MAILADDR_KEYMAX + 16];

    pthread_once(&once, init_libspf2);
    memset(out, 0, sizeof(*out));
    memset(&c, 0, sizeof(c));
    c.out = out;
    c.asker = asker;
    c.client_v4 = client->family == AF_INET;
    memcpy(c.client_addr, client->b, c.client_v4 ? 4 : 16);
    sg_addr_format(client, out->ip, sizeof(out->ip));
    if (helo != NULL)
        sg_strlcpy(out->helo, helo, sizeof(out->helo));
    if (!identity(sender, helo, out, from, sizeof(from))) {
        out->result = SG_SPF_NONE;      /* RFC 7208 2.3, 4.3 */
        sg_strlcpy(out->reason, "no usable domain", sizeof(out->reason));
        return;
    }
    sg_dname_reverse(client, client->family == AF_INET ? "in-addr.arpa"
                        : "ip6.arpa", c.rev, sizeof(c.rev));
    memset(&layer, 0, sizeof(layer));
    layer.lookup = lookup;
    layer.get_exp = get_exp;
    layer.name = "smtpguard";
    layer.hook = &c;
    if ((srv = SPF_server_new_dns(&layer, 0)) == NULL ||
        !fixed_explanation(srv) || (req = SPF_request_new(srv)) == NULL) {
        out->result = SG_SPF_TEMPERROR;
        sg_strlcpy(out->reason, "out of memory", sizeof(out->reason));
        goto done;
    }
    c.req = req;
    /* Our own limits are the ones that count (over the whole check). */
    SPF_server_set_max_dns_mech(srv, 100);
    SPF_server_set_max_dns_mx(srv, MAX_SUBNAMES);
    SPF_server_set_max_dns_ptr(srv, MAX_SUBNAMES);
    if (client->family == AF_INET) {
        struct in_addr in;

        memcpy(&in, client->b, 4);
        SPF_request_set_ipv4(req, in);
    } else {
        struct in6_addr in6;

        memcpy(&in6, client->b, 16);
        SPF_request_set_ipv6(req, in6);
    }
    /* libspf2 gives up on a record whose %{h} expands to no domain; RFC
     * 7208 7.3 says such a name matches nothing: a name that cannot. */
    SPF_request_set_helo_dom(req, helo != NULL && sg_dname_fqdn_ok(helo)
                             ? helo : "helo.sg-not-a-domain.invalid");
    SPF_request_set_env_from(req, from);
    macro_values(&c, client, helo, from);
    SPF_request_query_mailfrom(req, &resp);
    out->result = resp ? map(SPF_response_result(resp)) : SG_SPF_TEMPERROR;
    if (c.perm) {
        out->result = SG_SPF_PERMERROR;
        sg_strlcpy(out->reason, c.reason, sizeof(out->reason));
    } else if (c.temp) {
        out->result = SG_SPF_TEMPERROR;
        sg_strlcpy(out->reason, "DNS lookup failed or timed out",
                   sizeof(out->reason));
    } else if (out->result == SG_SPF_PERMERROR) {
        sg_strlcpy(out->reason, "record not usable", sizeof(out->reason));
    }
    if (out->result == SG_SPF_FAIL && fetch_exp(&c))
        explanation(&c, client, sender && !sender->null ? sender->local
                    : "postmaster", receiver);
done:
    out->dns_terms = c.terms;
    if (resp != NULL)
        SPF_response_free(resp);
    if (req != NULL)
        SPF_request_free(req);
    if (srv != NULL)
        SPF_server_free(srv);
}

/* The in-process asker: one batch of the shared resolver per check. */
struct batch_asker {
    struct sg_dns_batch *batch;
    int64_t deadline;
};

static const struct sg_dns_answer *batch_ask(void *arg, const char *name,
                                             uint16_t type, bool *refused)
{
    struct batch_asker *b = arg;
    int h = sg_dns_query(b->batch, name, type);

    *refused = h < 0;
    if (h < 0)
        return NULL;
    sg_dns_wait(b->batch, h, b->deadline);
    return sg_dns_result(b->batch, h);
}

void sg_spf_check(struct sg_dns *dns, int64_t deadline,
                  const struct sg_addr *client, const char *helo,
                  const struct sg_mailaddr *sender, const char *receiver,
                  struct sg_spf_outcome *out)
{
    struct batch_asker b = { sg_dns_batch_new(dns), deadline };
    struct sg_spf_asker asker = { batch_ask, &b };

    if (b.batch == NULL) {
        memset(out, 0, sizeof(*out));
        out->result = SG_SPF_TEMPERROR;
        sg_strlcpy(out->reason, "out of memory", sizeof(out->reason));
        return;
    }
    sg_spf_eval(&asker, client, helo, sender, receiver, out);
    sg_dns_batch_free(b.batch);
}

/* quoted - a quoted-string value (RFC 5322), specials escaped */
static void quoted(char *buf, size_t size, const char *v)
{
    size_t o = 0;

    if (size < 3)
        return;
    buf[o++] = '"';
    for (size_t i = 0; v[i] != '\0' && o + 3 < size; i++) {
        unsigned char c = (unsigned char) v[i];

        if (c < ' ' || c > '~')
            continue;
        if (c == '"' || c == '\\')
            buf[o++] = '\\';
        buf[o++] = (char) c;
    }
    buf[o++] = '"';
    buf[o] = '\0';
}

void sg_spf_received(const struct sg_spf_outcome *o, const char *receiver,
                     char *buf, size_t size)
{
    char comment[1200], from[SG_MAILADDR_KEYMAX + 4], helo[300];
    const char *who = o->helo_identity ? "" : "domain of ";

    switch (o->result) {
    case SG_SPF_PASS:
        snprintf(comment, sizeof(comment), "%s: %s%s designates %s as "
                 "permitted sender", receiver, who, o->identity, o->ip);
        break;
    case SG_SPF_FAIL:
        snprintf(comment, sizeof(comment), "%s: %s%s does not designate %s "
                 "as permitted sender", receiver, who, o->identity, o->ip);
        break;
    case SG_SPF_SOFTFAIL:
        snprintf(comment, sizeof(comment), "%s: %s%s discourages use of %s "
                 "as permitted sender", receiver, who, o->identity, o->ip);
        break;
    case SG_SPF_NEUTRAL:
        snprintf(comment, sizeof(comment), "%s: %s is neither permitted nor "
                 "denied by %s%s", receiver, o->ip, who, o->identity);
        break;
    case SG_SPF_NONE:
        snprintf(comment, sizeof(comment), "%s: %s%s does not provide an "
                 "SPF record", receiver, who, o->identity);
        break;
    default:
        snprintf(comment, sizeof(comment), "%s: %s in processing %s%s",
                 receiver, o->result == SG_SPF_TEMPERROR ? "temporary error"
                 : "permanent error", who, o->identity);
        break;
    }
    for (char *p = comment; *p; p++)
        if (*p == '(' || *p == ')' || *p == '\\' || (unsigned char) *p < ' '
            || (unsigned char) *p >= 0x7f)
            *p = ' ';
    quoted(from, sizeof(from), o->helo_identity ? "" : o->identity);
    quoted(helo, sizeof(helo), o->helo);
    snprintf(buf, size, "%s (%s) client-ip=%s; envelope-from=%s; helo=%s; "
             "receiver=%s; identity=%s;", sg_spf_result_name(o->result),
             comment, o->ip, from, helo, receiver,
             o->helo_identity ? "helo" : "mailfrom");
}

void sg_spf_authres(const struct sg_spf_outcome *o, char *buf, size_t size)
{
    char v[SG_MAILADDR_KEYMAX + 4];
    size_t n = strlen(o->identity);

    /* An address or a domain as it is when it is a dot-atom, else a
     * quoted-string (RFC 8601 2.2 pvalue). */
    if (n > 0 && strspn(o->identity, "abcdefghijklmnopqrstuvwxyz"
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                        "!#$&'*+-/=?^_`{|}~.@") == n)
        sg_strlcpy(v, o->identity, sizeof(v));
    else
        quoted(v, sizeof(v), o->identity);
    snprintf(buf, size, "spf=%s smtp.%s=%s", sg_spf_result_name(o->result),
             o->helo_identity ? "helo" : "mailfrom", v);
}
