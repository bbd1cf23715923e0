/*
 * dnswire.c - DNS on the wire: the query packet, the checks a reply must
 * pass to be the answer to it, and the answer made of what it says (see
 * dns.h)
 *
 * Everything read here comes from the network: a reply is ours only if it
 * carries the ID, QR, and exactly the question asked (sg_dns_parse_reply);
 * names, records, TXT lengths and CNAME chains are bounded before use.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "dns_int.h"

/* ---- answers ---- */

struct sg_dns_answer *sg_dnsw_answer_new(const char *name, uint16_t type,
                                         enum sg_dns_status st)
{
    struct sg_dns_answer *a = sg_calloc(1, sizeof(*a));

    if (a == NULL)
        return NULL;
    atomic_init(&a->refcnt, 1);
    a->status = st;
    a->qtype = type;
    sg_strlcpy(a->name, name, sizeof(a->name));
    sg_strlcpy(a->canon, name, sizeof(a->canon));
    return a;
}

struct sg_dns_answer *sg_dnsw_answer_ref(struct sg_dns_answer *a)
{
    atomic_fetch_add(&a->refcnt, 1);
    return a;
}

void sg_dns_answer_unref(struct sg_dns_answer *a)
{
    if (a == NULL || atomic_fetch_sub(&a->refcnt, 1) != 1)
        return;
    for (size_t i = 0; i < a->nrr; i++)
        sg_free(a->rr[i].text);
    sg_free(a->rr);
    sg_free(a);
}

/*
 * dname_text - a wire-format name (uncompressed, as ldns keeps it) as
 * lower-case text without the trailing dot. Refuses bytes that would need
 * escaping (a dot or a space inside a label, control bytes).
 */
static int dname_text(const ldns_rdf *rdf, char *out, size_t size)
{
    const uint8_t *d;
    size_t len, i = 0, o = 0;

    if (rdf == NULL || ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_DNAME)
        return SG_EINVAL;
    d = ldns_rdf_data(rdf);
    len = ldns_rdf_size(rdf);
    while (i < len && d[i] != 0) {
        size_t l = d[i++];

        if (l > 63 || i + l > len)
            return SG_EINVAL;
        if (o > 0) {
            if (o + 1 >= size)
                return SG_EINVAL;
            out[o++] = '.';
        }
        for (size_t k = 0; k < l; k++, i++) {
            uint8_t c = d[i];

            if (c <= ' ' || c > '~' || c == '.' || c == '\\' || o + 1 >= size)
                return SG_EINVAL;
            out[o++] = (char) (c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
    }
    if (o == 0 && size > 1)
        out[o++] = '.';         /* the root */
    out[o] = '\0';
    return SG_OK;
}

/*
 * qname_rdf - a name of sg_dname_query_ok() as an ldns name: every byte that is
 * not a letter, digit, '-' or '_' written as \DDD, so that ldns's
 * presentation parser takes it as that byte of the label and nothing
 * else (a space, ';', '(', '@' or '$' included).
 */
static ldns_rdf *qname_rdf(const char *name)
{
    char esc[4 * SG_DNS_NAME_MAX + 1];
    size_t o = 0;

    for (const char *p = name; *p != '\0' && o + 5 < sizeof(esc); p++) {
        unsigned char c = (unsigned char) *p;

        if (c == '.' || c == '-' || c == '_' || (c >= '0' && c <= '9') ||
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            esc[o++] = (char) c;
        else
            o += (size_t) snprintf(esc + o, sizeof(esc) - o, "\\%03u", c);
    }
    esc[o] = '\0';
    return ldns_dname_new_frm_str(esc);
}

/* add_txt - a TXT record's strings, concatenated, as the record's text;
 * false: too long, a string that is not one, or out of memory */
static bool add_txt(struct sg_dns_rr *r, const ldns_rr *rr)
{
    size_t total = 0, k, cnt = ldns_rr_rd_count(rr);

    for (k = 0; k < cnt; k++)
        total += ldns_rdf_size(ldns_rr_rdf(rr, k));
    if (total > SG_DNS_TXT_MAX + cnt ||
        (r->text = sg_malloc(total + 1)) == NULL)
        return false;
    for (k = 0; k < cnt; k++) {
        const ldns_rdf *s = ldns_rr_rdf(rr, k);
        const uint8_t *d = ldns_rdf_data(s);
        size_t l = ldns_rdf_size(s);

        if (l == 0 || (size_t) d[0] + 1 != l) {
            sg_free(r->text);
            r->text = NULL;
            return false;
        }
        memcpy(r->text + r->len, d + 1, l - 1);
        r->len += l - 1;
    }
    r->text[r->len] = '\0';
    return true;
}

/* add_rr - keep one record of the answer; false: not representable */
static bool add_rr(struct sg_dns_answer *a, const ldns_rr *rr)
{
    struct sg_dns_rr *r = &a->rr[a->nrr];
    uint16_t type = (uint16_t) ldns_rr_get_type(rr);
    const ldns_rdf *f = ldns_rr_rdf(rr, 0);
    char name[SG_DNS_NAME_MAX];

    memset(r, 0, sizeof(*r));
    r->type = type;
    r->ttl = ldns_rr_ttl(rr);
    switch (type) {
    case SG_DNS_T_A:
    case SG_DNS_T_AAAA: {
        size_t want = type == SG_DNS_T_A ? 4 : 16;

        if (f == NULL || ldns_rdf_size(f) != want)
            return false;
        r->addr.family = type == SG_DNS_T_A ? AF_INET : AF_INET6;
        memcpy(r->addr.b, ldns_rdf_data(f), want);
        break;
    }
    case SG_DNS_T_MX:
        if (ldns_rr_rd_count(rr) != 2 || ldns_rdf_size(f) != 2)
            return false;
        r->pref = ldns_rdf2native_int16(f);
        f = ldns_rr_rdf(rr, 1);
        /* fall through */
    case SG_DNS_T_PTR:
    case SG_DNS_T_CNAME:
    case SG_DNS_T_NS:
        if (dname_text(f, name, sizeof(name)) != SG_OK ||
            (r->text = sg_strdup(name)) == NULL)
            return false;
        r->len = strlen(name);
        break;
    case SG_DNS_T_TXT:
        if (!add_txt(r, rr))
            return false;
        break;
    default:
        return false;
    }
    a->nrr++;
    return true;
}

/* negative_ttl - RFC 2308: the SOA's TTL bounded by its MINIMUM */
static uint32_t negative_ttl(const ldns_pkt *p)
{
    const ldns_rr_list *auth = ldns_pkt_authority(p);

    for (size_t i = 0; auth != NULL && i < ldns_rr_list_rr_count(auth); i++) {
        const ldns_rr *rr = ldns_rr_list_rr(auth, i);

        if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA &&
            ldns_rr_rd_count(rr) == 7) {
            uint32_t min = ldns_rdf2native_int32(ldns_rr_rdf(rr, 6));

            return ldns_rr_ttl(rr) < min ? ldns_rr_ttl(rr) : min;
        }
    }
    return 0;
}

/*
 * dname_equal - two names in ldns's wire form (uncompressed, ending in the
 * root label) alike but for ASCII case. ldns_dname_compare() orders names,
 * finding every label afresh from the left for each step from the right:
 * quadratic in the labels, and it was most of the time a reply with many
 * records of a long name took. A length octet is below 64, so folding
 * case never changes one and the labels stay aligned.
 */
static bool dname_equal(const ldns_rdf *a, const ldns_rdf *b)
{
    const uint8_t *x = ldns_rdf_data(a), *y = ldns_rdf_data(b);
    size_t n = ldns_rdf_size(a);

    if (ldns_rdf_get_type(a) != LDNS_RDF_TYPE_DNAME ||
        ldns_rdf_get_type(b) != LDNS_RDF_TYPE_DNAME || n != ldns_rdf_size(b))
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = x[i], d = y[i];

        if (c >= 'A' && c <= 'Z')
            c = (uint8_t) (c + ('a' - 'A'));
        if (d >= 'A' && d <= 'Z')
            d = (uint8_t) (d + ('a' - 'A'));
        if (c != d)
            return false;
    }
    return true;
}

/* collect - the records of `type` at the end of the CNAME chain of qname */
static int collect(struct sg_dns_answer *a, const ldns_pkt *p,
                   const ldns_rdf *qname, uint16_t type)
{
    const ldns_rr_list *ans = ldns_pkt_answer(p);
    size_t count = ans ? ldns_rr_list_rr_count(ans) : 0;
    const ldns_rdf *cur = qname;
    uint32_t ttl = UINT32_MAX;
    int hops = 0;
    bool moved = true;

    while (moved && type != SG_DNS_T_CNAME) {
        moved = false;
        for (size_t i = 0; i < count; i++) {
            const ldns_rr *rr = ldns_rr_list_rr(ans, i);

            if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME &&
                ldns_rr_get_class(rr) == LDNS_RR_CLASS_IN &&
                dname_equal(ldns_rr_owner(rr), cur) &&
                ldns_rr_rd_count(rr) == 1) {
                if (++hops > SG_DNS_CNAME_MAX)
                    return SG_EINVAL;       /* a loop or a silly chain */
                cur = ldns_rr_rdf(rr, 0);
                moved = true;
                break;
            }
        }
    }
    /* No CNAME: the name as asked (sg_dnsw_answer_new), which may hold
     * bytes dname_text() refuses in names from answers (a space). */
    if (hops > 0 && dname_text(cur, a->canon, sizeof(a->canon)) != SG_OK)
        return SG_EINVAL;
    for (size_t i = 0; i < count; i++) {
        const ldns_rr *rr = ldns_rr_list_rr(ans, i);

        if (ldns_rr_get_type(rr) != (ldns_rr_type) type ||
            ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN ||
            !dname_equal(ldns_rr_owner(rr), cur))
            continue;
        if (a->nrr == SG_DNS_RR_MAX || !add_rr(a, rr)) {
            a->truncated_rrs = true;
            continue;
        }
        if (ldns_rr_ttl(rr) < ttl)
            ttl = ldns_rr_ttl(rr);
    }
    a->ttl = ttl == UINT32_MAX ? 0 : ttl;
    return SG_OK;
}

/* question_ok - the reply asks exactly our question: one question, of
 * our type, class IN, our name (case aside) */
static bool question_ok(const ldns_pkt *p, const ldns_rdf *qname,
                        uint16_t type)
{
    const ldns_rr_list *q = ldns_pkt_question(p);
    const ldns_rr *qrr;

    if (q == NULL || ldns_rr_list_rr_count(q) != 1)
        return false;
    qrr = ldns_rr_list_rr(q, 0);
    return ldns_rr_get_type(qrr) == (ldns_rr_type) type &&
        ldns_rr_get_class(qrr) == LDNS_RR_CLASS_IN &&
        dname_equal(ldns_rr_owner(qrr), qname);
}

/* read_rcode - the answer by the reply's RCODE: its status, and for
 * NOERROR its records; SG_EINVAL when they make no sense (MALFORMED) */
static int read_rcode(struct sg_dns_answer *a, const ldns_pkt *p,
                      const ldns_rdf *qname, uint16_t type)
{
    int rc = SG_OK;

    switch (ldns_pkt_get_rcode(p)) {
    case LDNS_RCODE_NOERROR:
        if (collect(a, p, qname, type) != SG_OK) {
            a->status = SG_DNS_MALFORMED;
            rc = SG_EINVAL;
        } else if (a->nrr == 0) {
            a->status = SG_DNS_NODATA;
            a->ttl = negative_ttl(p);
        }
        break;
    case LDNS_RCODE_NXDOMAIN:
        a->status = SG_DNS_NXDOMAIN;
        a->ttl = negative_ttl(p);
        break;
    case LDNS_RCODE_SERVFAIL:
        a->status = SG_DNS_SERVFAIL;
        break;
    case LDNS_RCODE_REFUSED:
        a->status = SG_DNS_REFUSED;
        break;
    default:
        a->status = SG_DNS_RCODE;
        break;
    }
    return rc;
}

int sg_dns_parse_reply(const uint8_t *wire, size_t len, uint16_t id,
                       const char *name, uint16_t type,
                       struct sg_dns_answer **out, bool *truncated)
{
    ldns_pkt *p = NULL;
    ldns_rdf *qname = NULL;
    struct sg_dns_answer *a;
    int rc = SG_ENOENT;

    *out = NULL;
    *truncated = false;
    /* Header checks on the raw bytes first: cheap, and enough to drop
     * most forgeries without parsing. */
    if (len < 12 || ((wire[0] << 8) | wire[1]) != id || !(wire[2] & 0x80) ||
        ((wire[2] >> 3) & 0x0f) != 0 || wire[4] != 0 || wire[5] != 1)
        return SG_ENOENT;
    if (ldns_wire2pkt(&p, wire, len) != LDNS_STATUS_OK)
        p = NULL;
    if (p == NULL || (qname = qname_rdf(name)) == NULL)
        goto out;               /* unparseable: cannot tell it is ours */
    if (!question_ok(p, qname, type))
        goto out;
    /* It is the answer to our question. */
    *truncated = ldns_pkt_tc(p);
    if ((a = sg_dnsw_answer_new(name, type, SG_DNS_OK)) == NULL) {
        rc = SG_ENOMEM;
        goto out;
    }
    a->rr = sg_calloc(SG_DNS_RR_MAX, sizeof(*a->rr));
    if (a->rr == NULL) {
        sg_dns_answer_unref(a);
        rc = SG_ENOMEM;
        goto out;
    }
    rc = read_rcode(a, p, qname, type);
    /* Room for SG_DNS_RR_MAX records while parsing; keep what is used. */
    if (a->nrr == 0) {
        sg_free(a->rr);
        a->rr = NULL;
    } else if (a->nrr < SG_DNS_RR_MAX) {
        struct sg_dns_rr *rr = realloc(a->rr, a->nrr * sizeof(*rr));

        if (rr != NULL)
            a->rr = rr;
    }
    *out = a;
out:
    if (qname != NULL)
        ldns_rdf_deep_free(qname);
    if (p != NULL)
        ldns_pkt_free(p);
    return rc;
}

/* ---- queries ---- */

/* sg_dnsw_lower_name - a name as it is asked and cached: ASCII lower case,
 * without a trailing dot (the root stays ".") */
void sg_dnsw_lower_name(const char *in, char *out, size_t size)
{
    size_t i;

    for (i = 0; in[i] != '\0' && i + 1 < size; i++)
        out[i] = (char) (in[i] >= 'A' && in[i] <= 'Z' ? in[i] + 32 : in[i]);
    if (i > 1 && out[i - 1] == '.')
        i--;
    out[i] = '\0';
}

/* sg_dnsw_build - the query packet with a fresh ID: SG_EINVAL for a name
 * no query can carry, SG_ENOMEM, SG_ERETRY when no random ID came */
int sg_dnsw_build(struct query *q, bool tcp)
{
    ldns_rdf *name = qname_rdf(q->name);
    size_t nlen, len;
    uint8_t *w;

    if (name == NULL)
        return SG_EINVAL;
    /* RFC 1035 4.1: a header asking for recursion, one question. Written
     * here rather than by ldns_pkt2wire(), whose name compression costs
     * time quadratic in the labels of a long name and has nothing to
     * compress in a lone question. */
    nlen = ldns_rdf_size(name);
    len = 12 + nlen + 4;
    if (len > 512) {
        ldns_rdf_deep_free(name);
        return SG_EINVAL;
    }
    sg_free(q->wire);
    if ((q->wire = sg_malloc(len + 2)) == NULL) {
        ldns_rdf_deep_free(name);
        return SG_ENOMEM;
    }
    if (!random16(&q->id)) {
        ldns_rdf_deep_free(name);
        return SG_ERETRY;
    }
    w = q->wire;
    memset(w, 0, 2 + 12);
    w[0] = (uint8_t) (len >> 8);
    w[1] = (uint8_t) len;
    w[2] = (uint8_t) (q->id >> 8);
    w[3] = (uint8_t) q->id;
    w[4] = 0x01;                /* RD */
    w[7] = 1;                   /* QDCOUNT */
    memcpy(w + 14, ldns_rdf_data(name), nlen);
    w[14 + nlen] = (uint8_t) (q->type >> 8);
    w[15 + nlen] = (uint8_t) q->type;
    w[16 + nlen] = 0;
    w[17 + nlen] = 1;           /* class IN */
    ldns_rdf_deep_free(name);
    q->wire_len = len + 2;
    q->off = tcp ? 0 : 2;
    return SG_OK;
}
