/*
 * spf_int.h - what the SPF evaluation's files share (spf.c, spfdns.c,
 * spfmacro.c): the context of one evaluation and their internal calls.
 * Internal to lib/.
 */
#ifndef SG_SPF_INT_H
#define SG_SPF_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include "dns.h"
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

/* spfdns.c: the DNS layer (SPF_dns_server_t's lookup and get_exp) */
SPF_dns_rr_t *sg_spfi_lookup(SPF_dns_server_t *srv, const char *domain,
                             ns_type type, int should_cache);
SPF_errcode_t sg_spfi_get_exp(SPF_server_t *srv, const char *domain,
                              char **bufp, size_t *buflenp);
/* After a fail: fetch and check the exp= target libspf2 named. */
bool sg_spfi_fetch_exp(struct ctx *c);
/* The first reason for a permerror wins. */
void sg_spfi_set_perm(struct ctx *c, const char *why);
/* One lookup through the check's asker; NULL: none (or over budget). */
const struct sg_dns_answer *sg_spfi_ask(struct ctx *c, const char *name,
                                        uint16_t type);
/* RFC 7208 4.8: a name over 253 octets loses labels on the left. */
const char *sg_spfi_fit_253(const char *name);

/* spfmacro.c: the macros we expand ourselves */
void sg_spfi_validated(struct ctx *c, const char *domain, bool term,
                       char *buf, size_t size);
/* The explanation of a fail, from the checked exp= text, into c->out. */
void sg_spfi_explanation(struct ctx *c, const struct sg_addr *ip,
                         const char *local, const char *receiver);
void sg_spfi_macro_values(struct ctx *c, const struct sg_addr *ip,
                          const char *helo, const char *from);

#endif /* SG_SPF_INT_H */
