/*
 * spfmacro.c - the macros smtpguard expands itself (RFC 7208 7): the
 * explanation of a fail, %{p} (its PTR lookup and the validated name),
 * and the values of %{s l o h i v} libspf2 is given
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
void sg_spfi_validated(struct ctx *c, const char *domain, bool term,
                       char *buf, size_t size)
{
    const struct sg_dns_answer *ptr = sg_spfi_ask(c, c->rev, SG_DNS_T_PTR);
    uint16_t want = c->client_v4 ? SG_DNS_T_A : SG_DNS_T_AAAA;
    size_t alen = c->client_v4 ? 4 : 16;
    int best = -1;

    snprintf(buf, size, "unknown");
    if (term && ++c->terms > MAX_TERMS)
        sg_spfi_set_perm(c, "more than 10 DNS lookups");
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
        f = sg_spfi_ask(c, name, want);
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
        sg_spfi_validated(c, c->exp_domain[0] ? c->exp_domain : o->domain, false,
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
void sg_spfi_explanation(struct ctx *c, const struct sg_addr *ip,
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

/* macro_values - what %{s l o h i v} expand to in this check's records
 * (as libspf2 is given them) */
void sg_spfi_macro_values(struct ctx *c, const struct sg_addr *ip,
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
