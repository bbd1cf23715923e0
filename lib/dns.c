/*
 * dns.c - parallel DNS lookups on non-blocking sockets, verified replies,
 * a sharded TTL cache (see dns.h)
 *
 * Life of a query: cache hit -> done at once. Otherwise a UDP socket bound
 * to a random port and connected to the server (the kernel then delivers
 * only datagrams from that address and port), a random 16-bit ID, the
 * packet built by ldns, sent. sg_dns_wait() polls the batch's sockets;
 * every datagram is checked by sg_dns_parse_reply() and dropped unless it
 * answers exactly this question; after timeout_ms the query is sent again
 * (new socket, new port, new ID, next server) up to `retries` times, then
 * it is a TIMEOUT. TC set: the query is asked again over TCP.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "dns.h"
#include "dname.h"
#include "htab.h"

#define UDP_MAX 4096            /* we send no EDNS: servers keep to 512 */
#define TCP_MAX 65535
#define SHARDS 16

const char *sg_dns_status_name(enum sg_dns_status st)
{
    static const char *const names[] = {
        "pending", "ok", "nxdomain", "nodata", "servfail", "refused",
        "rcode", "timeout", "neterr", "malformed", "badname",
    };

    return (unsigned) st < sizeof(names) / sizeof(names[0]) ? names[st]
        : "?";
}

/* ---- servers ---- */

static int parse_server(const char *tok, size_t len, struct sg_dns_server *s,
                        struct sg_err *err)
{
    char host[SG_ADDR_STRLEN + 8], *colon;
    const char *port = NULL;

    if (len >= sizeof(host)) {
        sg_err_set(err, "server '%.*s' too long", (int) len, tok);
        return SG_EINVAL;
    }
    memcpy(host, tok, len);
    host[len] = '\0';
    if (host[0] == '[') {
        char *close = strchr(host, ']');

        if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
            sg_err_set(err, "server '%s': '[' without ']' or junk after it",
                       host);
            return SG_EINVAL;
        }
        *close = '\0';
        port = close[1] == ':' ? close + 2 : NULL;
        memmove(host, host + 1, strlen(host + 1) + 1);
    } else if ((colon = strchr(host, ':')) != NULL &&
               colon == strrchr(host, ':')) {
        *colon = '\0';          /* one colon: IPv4 with a port */
        port = colon + 1;
    }
    if (sg_addr_parse(host, &s->addr) != SG_OK) {
        sg_err_set(err, "server '%s' is not an IPv4 or IPv6 address", host);
        return SG_EINVAL;
    }
    s->port = 53;
    if (port != NULL) {
        char *end;
        long p = strtol(port, &end, 10);

        if (*port == '\0' || *end != '\0' || p < 1 || p > 65535) {
            sg_err_set(err, "server '%.*s': port not 1-65535", (int) len,
                       tok);
            return SG_EINVAL;
        }
        s->port = (uint16_t) p;
    }
    return SG_OK;
}

int sg_dns_parse_servers(const char *text, struct sg_dns_server *out,
                         size_t max, size_t *n, struct sg_err *err)
{
    const char *p = text ? text : "";

    *n = 0;
    p += strspn(p, " ,\t");
    while (*p != '\0') {
        size_t len = strcspn(p, " ,\t");
        struct sg_dns_server s;

        if (*n == max) {
            sg_err_set(err, "more than %zu servers", max);
            return SG_EINVAL;
        }
        if (parse_server(p, len, &s, err) != SG_OK)
            return SG_EINVAL;
        if (out != NULL)
            out[*n] = s;
        (*n)++;
        p += len;
        p += strspn(p, " ,\t");
    }
    return SG_OK;
}

size_t sg_dns_parse_resolv_conf(const char *text, struct sg_dns_server *out,
                                size_t max)
{
    size_t n = 0;

    while (text != NULL && *text != '\0' && n < max) {
        size_t len = strcspn(text, "\n");
        char line[256], word[16], addr[SG_ADDR_STRLEN];

        snprintf(line, sizeof(line), "%.*s", (int) (len < 255 ? len : 255),
                 text);
        text += len + (text[len] == '\n');
        if (sscanf(line, " %15s %63s", word, addr) != 2 ||
            strcmp(word, "nameserver") != 0)
            continue;
        addr[strcspn(addr, "#;")] = '\0';
        if (sg_addr_parse(addr, &out[n].addr) == SG_OK) {
            out[n].port = 53;
            n++;
        }
    }
    return n;
}

/* ---- answers ---- */

static struct sg_dns_answer *answer_new(const char *name, uint16_t type,
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

static struct sg_dns_answer *answer_ref(struct sg_dns_answer *a)
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

static void lower_name(const char *in, char *out, size_t size)
{
    size_t i;

    for (i = 0; in[i] != '\0' && i + 1 < size; i++)
        out[i] = (char) (in[i] >= 'A' && in[i] <= 'Z' ? in[i] + 32 : in[i]);
    if (i > 1 && out[i - 1] == '.')
        i--;
    out[i] = '\0';
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
    case SG_DNS_T_TXT: {
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
        break;
    }
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

/* follow - the records of `type` at the end of the CNAME chain of qname */
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
    /* No CNAME: the name as asked (answer_new), which may hold bytes
     * dname_text() refuses in names from answers (a space). */
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

int sg_dns_parse_reply(const uint8_t *wire, size_t len, uint16_t id,
                       const char *name, uint16_t type,
                       struct sg_dns_answer **out, bool *truncated)
{
    ldns_pkt *p = NULL;
    ldns_rdf *qname = NULL;
    const ldns_rr_list *q;
    const ldns_rr *qrr;
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
    q = ldns_pkt_question(p);
    if (q == NULL || ldns_rr_list_rr_count(q) != 1)
        goto out;
    qrr = ldns_rr_list_rr(q, 0);
    if (ldns_rr_get_type(qrr) != (ldns_rr_type) type ||
        ldns_rr_get_class(qrr) != LDNS_RR_CLASS_IN ||
        !dname_equal(ldns_rr_owner(qrr), qname))
        goto out;
    /* It is the answer to our question. */
    *truncated = ldns_pkt_tc(p);
    if ((a = answer_new(name, type, SG_DNS_OK)) == NULL) {
        rc = SG_ENOMEM;
        goto out;
    }
    a->rr = sg_calloc(SG_DNS_RR_MAX, sizeof(*a->rr));
    if (a->rr == NULL) {
        sg_dns_answer_unref(a);
        rc = SG_ENOMEM;
        goto out;
    }
    rc = SG_OK;
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

/* ---- cache ---- */

struct centry {
    struct sg_hnode node;       /* first */
    struct sg_dns_answer *ans;
    int64_t expires;            /* cache clock, milliseconds */
    size_t bytes;               /* accounted to the shard */
    struct centry *older, *newer;
};

struct shard {
    pthread_mutex_t mu;
    struct sg_htab tab;
    struct centry *oldest, *newest;
    size_t count, bytes;
};

struct sg_dns {
    atomic_int refcnt;
    struct sg_dns_server servers[SG_DNS_SERVERS_MAX];
    size_t nservers;
    int timeout_ms, retries;
    size_t shard_max, shard_bytes_max;
    uint32_t ttl_min, ttl_max, neg_ttl_max;
    sg_dns_clock_fn clock;
    void *clock_arg;
    struct shard shard[SHARDS];
    atomic_ulong st_queries, st_hits, st_sent, st_answers, st_mismatched,
        st_malformed, st_timeouts, st_tcp, st_entries, st_bytes,
        st_evictions, st_local;
    atomic_int local_what, local_errno;     /* the last local failure */
};

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sg_dns_clock(const struct sg_dns *dns)
{
    (void) dns;
    return mono_ms();
}

static int64_t cache_now(const struct sg_dns *dns)
{
    return dns->clock ? dns->clock(dns->clock_arg) : mono_ms();
}

static void cache_key(char *buf, size_t size, const char *name,
                      uint16_t type)
{
    snprintf(buf, size, "%u/%s", type, name);
}

static void lru_unlink(struct shard *s, struct centry *e)
{
    if (e->older)
        e->older->newer = e->newer;
    else
        s->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        s->newest = e->older;
    e->older = e->newer = NULL;
}

static void lru_append(struct shard *s, struct centry *e)
{
    e->newer = NULL;
    e->older = s->newest;
    if (s->newest)
        s->newest->newer = e;
    else
        s->oldest = e;
    s->newest = e;
}

static void centry_drop(struct sg_dns *dns, struct shard *s, struct centry *e)
{
    sg_htab_remove(&s->tab, &e->node);
    lru_unlink(s, e);
    s->count--;
    s->bytes -= e->bytes;
    atomic_fetch_sub(&dns->st_entries, 1);
    atomic_fetch_sub(&dns->st_bytes, e->bytes);
    sg_dns_answer_unref(e->ans);
    sg_free(e->node.key);
    sg_free(e);
}

static struct sg_dns_answer *cache_get(struct sg_dns *dns, const char *name,
                                       uint16_t type)
{
    char key[SG_DNS_NAME_MAX + 8];
    struct sg_dns_answer *a = NULL;
    struct centry *e;
    struct shard *s;
    uint64_t h;

    if (dns->shard_max == 0)
        return NULL;
    cache_key(key, sizeof(key), name, type);
    h = sg_hash(key);
    s = &dns->shard[h % SHARDS];
    pthread_mutex_lock(&s->mu);
    e = (struct centry *) sg_htab_find(&s->tab, key);
    if (e != NULL && e->expires <= cache_now(dns))
        centry_drop(dns, s, e);
    else if (e != NULL) {
        a = answer_ref(e->ans);
        lru_unlink(s, e);       /* now the most recently used */
        lru_append(s, e);
    }
    pthread_mutex_unlock(&s->mu);
    return a;
}

static uint32_t clamp_ttl(const struct sg_dns *dns,
                          const struct sg_dns_answer *a)
{
    uint32_t ttl = a->ttl;

    if (a->status == SG_DNS_OK) {
        if (ttl < dns->ttl_min)
            ttl = dns->ttl_min;
        if (ttl > dns->ttl_max)
            ttl = dns->ttl_max;
    } else if (ttl > dns->neg_ttl_max) {
        ttl = dns->neg_ttl_max;
    }
    return ttl;
}

/* answer_bytes - the memory an entry of the answer holds (allocator
 * overhead aside) */
static size_t answer_bytes(const struct sg_dns_answer *a, size_t keylen)
{
    size_t n = sizeof(struct centry) + keylen + 1 + sizeof(*a) +
        a->nrr * sizeof(*a->rr);

    for (size_t i = 0; i < a->nrr; i++)
        n += a->rr[i].text ? a->rr[i].len + 1 : 0;
    return n;
}

/* cache_put - keep a definite answer; temporary failures are not cached,
 * so one lost packet does not stick to every session for a TTL. The
 * least recently used entries of the shard make room, by count and by
 * bytes. */
static void cache_put(struct sg_dns *dns, struct sg_dns_answer *a)
{
    char key[SG_DNS_NAME_MAX + 8];
    struct centry *e, *old;
    struct shard *s;
    uint32_t ttl;

    if (dns->shard_max == 0 || !sg_dns_definite(a->status))
        return;
    if ((ttl = clamp_ttl(dns, a)) == 0)
        return;
    cache_key(key, sizeof(key), a->name, a->qtype);
    if (answer_bytes(a, strlen(key)) > dns->shard_bytes_max)
        return;                 /* bigger than a shard may hold */
    if ((e = sg_calloc(1, sizeof(*e))) == NULL)
        return;
    e->bytes = answer_bytes(a, strlen(key));
    if ((e->node.key = sg_strdup(key)) == NULL) {
        sg_free(e);
        return;
    }
    e->node.hash = sg_hash(key);
    e->ans = answer_ref(a);
    s = &dns->shard[e->node.hash % SHARDS];
    pthread_mutex_lock(&s->mu);
    e->expires = cache_now(dns) + (int64_t) ttl * 1000;
    if ((old = (struct centry *) sg_htab_find(&s->tab, key)) != NULL)
        centry_drop(dns, s, old);
    while ((s->count >= dns->shard_max ||
            s->bytes + e->bytes > dns->shard_bytes_max) && s->oldest != NULL) {
        centry_drop(dns, s, s->oldest);
        atomic_fetch_add(&dns->st_evictions, 1);
    }
    sg_htab_insert(&s->tab, &e->node);
    lru_append(s, e);
    s->count++;
    s->bytes += e->bytes;
    atomic_fetch_add(&dns->st_entries, 1);
    atomic_fetch_add(&dns->st_bytes, e->bytes);
    pthread_mutex_unlock(&s->mu);
}

/* ---- resolver ---- */

static char *read_small_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *buf;
    size_t n;

    if (fp == NULL)
        return NULL;
    if ((buf = sg_malloc(65536)) == NULL) {
        fclose(fp);
        return NULL;
    }
    n = fread(buf, 1, 65535, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

int sg_dns_new(const struct sg_dns_opts *o, struct sg_dns **out,
               struct sg_err *err)
{
    struct sg_dns *dns = sg_calloc(1, sizeof(*dns));
    int i;

    if (dns == NULL) {
        sg_err_set(err, "out of memory");
        return SG_ENOMEM;
    }
    if (o->servers != NULL && o->servers[strspn(o->servers, " ,\t")]) {
        if (sg_dns_parse_servers(o->servers, dns->servers,
                                 SG_DNS_SERVERS_MAX, &dns->nservers, err)
            != SG_OK) {
            sg_free(dns);
            return SG_EINVAL;
        }
    } else {
        const char *path = o->resolv_conf ? o->resolv_conf
            : "/etc/resolv.conf";
        char *text = read_small_file(path);

        dns->nservers = sg_dns_parse_resolv_conf(text, dns->servers,
                                                 SG_DNS_SERVERS_MAX);
        sg_free(text);
        if (dns->nservers == 0) {
            /* As the stub resolver does: the local host. */
            sg_addr_parse("127.0.0.1", &dns->servers[0].addr);
            dns->servers[0].port = 53;
            dns->nservers = 1;
        }
    }
    atomic_init(&dns->refcnt, 1);
    dns->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 1500;
    dns->retries = o->retries >= 0 ? o->retries : 1;
    dns->shard_max = o->cache_max ? (o->cache_max + SHARDS - 1) / SHARDS : 0;
    dns->shard_bytes_max = dns->shard_max * SG_DNS_CACHE_AVG;
    dns->ttl_min = o->ttl_min;
    dns->ttl_max = o->ttl_max ? o->ttl_max : 3600;
    dns->neg_ttl_max = o->neg_ttl_max;
    dns->clock = o->clock;
    dns->clock_arg = o->clock_arg;
    for (i = 0; i < SHARDS; i++) {
        pthread_mutex_init(&dns->shard[i].mu, NULL);
        if (sg_htab_init(&dns->shard[i].tab, 64) != SG_OK)
            break;
    }
    if (i < SHARDS) {
        while (i-- > 0)
            sg_htab_destroy(&dns->shard[i].tab);
        sg_free(dns);
        sg_err_set(err, "out of memory");
        return SG_ENOMEM;
    }
    *out = dns;
    return SG_OK;
}

struct sg_dns *sg_dns_ref(struct sg_dns *dns)
{
    atomic_fetch_add(&dns->refcnt, 1);
    return dns;
}

void sg_dns_free(struct sg_dns *dns)
{
    if (dns == NULL || atomic_fetch_sub(&dns->refcnt, 1) != 1)
        return;
    for (int i = 0; i < SHARDS; i++) {
        struct shard *s = &dns->shard[i];

        while (s->oldest != NULL)
            centry_drop(dns, s, s->oldest);
        sg_htab_destroy(&s->tab);
        pthread_mutex_destroy(&s->mu);
    }
    sg_free(dns);
}

void sg_dns_get_stats(struct sg_dns *dns, struct sg_dns_stats *st)
{
    st->queries = atomic_load(&dns->st_queries);
    st->cache_hits = atomic_load(&dns->st_hits);
    st->sent = atomic_load(&dns->st_sent);
    st->answers = atomic_load(&dns->st_answers);
    st->mismatched = atomic_load(&dns->st_mismatched);
    st->malformed = atomic_load(&dns->st_malformed);
    st->timeouts = atomic_load(&dns->st_timeouts);
    st->tcp = atomic_load(&dns->st_tcp);
    st->cache_entries = atomic_load(&dns->st_entries);
    st->cache_bytes = atomic_load(&dns->st_bytes);
    st->cache_evictions = atomic_load(&dns->st_evictions);
    st->local_failures = atomic_load(&dns->st_local);
    st->local_what = (enum sg_dns_local) atomic_load(&dns->local_what);
    st->local_errno = atomic_load(&dns->local_errno);
}

const char *sg_dns_local_name(enum sg_dns_local what)
{
    switch (what) {
    case SG_DNS_LOCAL_RANDOM:
        return "getrandom";
    case SG_DNS_LOCAL_SOCKET:
        return "socket";
    case SG_DNS_LOCAL_MEMORY:
        return "memory";
    default:
        return "none";
    }
}

/* local_failure - a try not sent for a reason of ours: counted, and the
 * reason kept for the line the engine logs (state_evicting's pace). */
static void local_failure(struct sg_dns *dns, enum sg_dns_local what,
                          int err)
{
    atomic_store(&dns->local_what, (int) what);
    atomic_store(&dns->local_errno, err);
    atomic_fetch_add(&dns->st_local, 1);
}

void sg_dns_servers_text(const struct sg_dns *dns, char *buf, size_t size)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < dns->nservers && len + 1 < size; i++) {
        char a[SG_ADDR_STRLEN];
        const struct sg_dns_server *s = &dns->servers[i];
        int n;

        sg_addr_format(&s->addr, a, sizeof(a));
        n = snprintf(buf + len, size - len, s->addr.family == AF_INET6
                     ? "%s[%s]:%u" : "%s%s:%u", len ? " " : "", a, s->port);
        if (n < 0 || (size_t) n >= size - len)
            break;
        len += (size_t) n;
    }
}

/* ---- queries ---- */

enum qstate { Q_DONE, Q_UDP, Q_TCP_CONNECT, Q_TCP_SEND, Q_TCP_RECV };

struct query {
    char name[SG_DNS_NAME_MAX];
    uint16_t type;
    enum qstate state;
    struct sg_dns_answer *ans;
    int fd;
    uint16_t id;
    int tries;                  /* UDP sends so far */
    size_t server;
    int64_t deadline;           /* of the current try */
    uint8_t *wire;              /* the query as sent (TCP: length first) */
    size_t wire_len, off;
    uint8_t *rbuf;              /* TCP reply */
    size_t rlen, rwant;
};

struct sg_dns_batch {
    struct sg_dns *dns;
    struct query *q;
    size_t n, cap;
};

struct sg_dns_batch *sg_dns_batch_new(struct sg_dns *dns)
{
    struct sg_dns_batch *b = sg_calloc(1, sizeof(*b));

    if (b != NULL)
        b->dns = sg_dns_ref(dns);
    return b;
}

static void q_close(struct query *q)
{
    if (q->fd >= 0)
        close(q->fd);
    q->fd = -1;
    sg_free(q->wire);
    sg_free(q->rbuf);
    q->wire = q->rbuf = NULL;
}

static void q_finish(struct sg_dns_batch *b, struct query *q,
                     struct sg_dns_answer *a, enum sg_dns_status st)
{
    q_close(q);
    q->state = Q_DONE;
    if (a == NULL)
        a = answer_new(q->name, q->type, st);
    q->ans = a;                 /* NULL only when out of memory */
    if (a == NULL)
        return;
    if (a->status == SG_DNS_TIMEOUT)
        atomic_fetch_add(&b->dns->st_timeouts, 1);
    else if (a->status == SG_DNS_MALFORMED)
        atomic_fetch_add(&b->dns->st_malformed, 1);
    else if (a->status != SG_DNS_NETERR && a->status != SG_DNS_BADNAME)
        atomic_fetch_add(&b->dns->st_answers, 1);
    cache_put(b->dns, a);
}

/*
 * random16 - 16 bits from the kernel. Query IDs and source ports are what
 * a forger must guess (RFC 5452): when getrandom() fails there is no
 * fallback to anything guessable; the query is not sent.
 */
static bool random16(uint16_t *v)
{
    ssize_t n;

    do
        n = getrandom(v, sizeof(*v), 0);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t) sizeof(*v);
}

static socklen_t server_sockaddr(const struct sg_dns_server *s,
                                 struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (s->addr.family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *) ss;

        in->sin_family = AF_INET;
        in->sin_port = htons(s->port);
        memcpy(&in->sin_addr, s->addr.b, 4);
        return sizeof(*in);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) ss;

        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(s->port);
        memcpy(&in6->sin6_addr, s->addr.b, 16);
        return sizeof(*in6);
    }
}

/* bind_random - a random source port: a forger must guess it too. False
 * only when no random number came (the try is then not sent). */
static bool bind_random(int fd, int family)
{
    struct sockaddr_storage ss;

    for (int i = 0; i < 8; i++) {
        uint16_t port;

        if (!random16(&port))
            return false;
        port = (uint16_t) (1024 + port % (65536 - 1024));
        memset(&ss, 0, sizeof(ss));
        if (family == AF_INET) {
            ((struct sockaddr_in *) &ss)->sin_family = AF_INET;
            ((struct sockaddr_in *) &ss)->sin_port = htons(port);
        } else {
            ((struct sockaddr_in6 *) &ss)->sin6_family = AF_INET6;
            ((struct sockaddr_in6 *) &ss)->sin6_port = htons(port);
        }
        if (bind(fd, (struct sockaddr *) &ss, family == AF_INET
                 ? sizeof(struct sockaddr_in)
                 : sizeof(struct sockaddr_in6)) == 0)
            return true;
        if (errno != EADDRINUSE && errno != EACCES)
            return true;        /* connect() picks an ephemeral port */
    }
    return true;
}

/* build - the query packet with a fresh ID: SG_EINVAL for a name no
 * query can carry, SG_ENOMEM, SG_ERETRY when no random ID came */
static int build(struct query *q, bool tcp)
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

/* send_udp - one try over UDP to the next server */
static void send_udp(struct sg_dns_batch *b, struct query *q, int64_t now)
{
    const struct sg_dns_server *s = &b->dns->servers[q->server];
    struct sockaddr_storage ss;
    socklen_t sl = server_sockaddr(s, &ss);
    int rc;

    q_close(q);
    q->tries++;
    q->deadline = now + b->dns->timeout_ms;
    q->state = Q_UDP;
    if ((rc = build(q, false)) != SG_OK) {
        if (rc != SG_EINVAL)
            local_failure(b->dns, rc == SG_ENOMEM ? SG_DNS_LOCAL_MEMORY
                          : SG_DNS_LOCAL_RANDOM, rc == SG_ENOMEM ? ENOMEM
                          : errno);
        q_finish(b, q, NULL, rc == SG_EINVAL ? SG_DNS_BADNAME
                 : SG_DNS_NETERR);
        return;
    }
    q->fd = socket(s->addr.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                   0);
    if (q->fd < 0) {
        local_failure(b->dns, SG_DNS_LOCAL_SOCKET, errno);
        return;                 /* counts as a lost try */
    }
    if (!bind_random(q->fd, s->addr.family)) {
        local_failure(b->dns, SG_DNS_LOCAL_RANDOM, errno);
        q_close(q);
        return;
    }
    if (connect(q->fd, (struct sockaddr *) &ss, sl) < 0 ||
        send(q->fd, q->wire + 2, q->wire_len - 2, 0) < 0) {
        q_close(q);
        return;
    }
    atomic_fetch_add(&b->dns->st_sent, 1);
}

/* start_tcp - the same question over TCP, to the server that truncated */
static void start_tcp(struct sg_dns_batch *b, struct query *q, int64_t now)
{
    const struct sg_dns_server *s = &b->dns->servers[q->server];
    struct sockaddr_storage ss;
    socklen_t sl = server_sockaddr(s, &ss);
    int rc;

    q_close(q);
    atomic_fetch_add(&b->dns->st_tcp, 1);
    q->deadline = now + 2 * (int64_t) b->dns->timeout_ms;
    if ((rc = build(q, true)) != SG_OK) {  /* the name went over UDP */
        local_failure(b->dns, rc == SG_ENOMEM ? SG_DNS_LOCAL_MEMORY
                      : SG_DNS_LOCAL_RANDOM, rc == SG_ENOMEM ? ENOMEM
                      : errno);
        q_finish(b, q, NULL, SG_DNS_NETERR);
        return;
    }
    q->fd = socket(s->addr.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                   0);
    if (q->fd < 0) {
        local_failure(b->dns, SG_DNS_LOCAL_SOCKET, errno);
        q_finish(b, q, NULL, SG_DNS_NETERR);
        return;
    }
    if (connect(q->fd, (struct sockaddr *) &ss, sl) < 0 &&
        errno != EINPROGRESS) {
        q_finish(b, q, NULL, SG_DNS_NETERR);
        return;
    }
    q->state = Q_TCP_CONNECT;
    atomic_fetch_add(&b->dns->st_sent, 1);
}

int sg_dns_query(struct sg_dns_batch *b, const char *name, uint16_t type)
{
    struct sg_dns *dns = b->dns;
    struct query *q;
    char lname[SG_DNS_NAME_MAX];

    if (b->n == SG_DNS_BATCH_MAX)
        return -1;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        struct query *nq = realloc(b->q, cap * sizeof(*nq));

        if (nq == NULL)
            return -1;
        b->q = nq;
        b->cap = cap;
    }
    q = &b->q[b->n];
    memset(q, 0, sizeof(*q));
    q->fd = -1;
    q->type = type;
    atomic_fetch_add(&dns->st_queries, 1);
    if (name == NULL || !sg_dname_query_ok(name)) {
        sg_strlcpy(q->name, name ? name : "", sizeof(q->name));
        q_finish(b, q, NULL, SG_DNS_BADNAME);
        return (int) b->n++;
    }
    lower_name(name, lname, sizeof(lname));
    sg_strlcpy(q->name, lname, sizeof(q->name));
    if ((q->ans = cache_get(dns, lname, type)) != NULL) {
        atomic_fetch_add(&dns->st_hits, 1);
        q->state = Q_DONE;
        return (int) b->n++;
    }
    {
        uint16_t r = 0;

        (void) random16(&r);    /* the first server to ask: no secret */
        q->server = r % dns->nservers;
    }
    send_udp(b, q, mono_ms());
    return (int) b->n++;
}

/* udp_readable - every datagram waiting: the answer, or drop and count */
static void udp_readable(struct sg_dns_batch *b, struct query *q,
                         int64_t now)
{
    uint8_t buf[UDP_MAX];

    /* A bounded number per call: a flood must not hold us here past the
     * deadline sg_dns_wait() keeps. */
    for (int k = 0; k < 64; k++) {
        struct sg_dns_answer *a;
        bool tc;
        ssize_t n = recv(q->fd, buf, sizeof(buf), 0);
        int rc;

        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            q_close(q);         /* ICMP unreachable: try the next one */
            q->deadline = now;
            return;
        }
        rc = sg_dns_parse_reply(buf, (size_t) n, q->id, q->name, q->type,
                                &a, &tc);
        if (rc == SG_ENOENT) {
            atomic_fetch_add(&b->dns->st_mismatched, 1);
            continue;
        }
        if (tc && rc != SG_ENOMEM) {
            sg_dns_answer_unref(a);
            start_tcp(b, q, now);
            return;
        }
        q_finish(b, q, a, SG_DNS_MALFORMED);
        return;
    }
}

static void tcp_progress(struct sg_dns_batch *b, struct query *q,
                         short revents)
{
    ssize_t n;

    if (revents & (POLLERR | POLLHUP | POLLNVAL) && q->state != Q_TCP_RECV) {
        q_finish(b, q, NULL, SG_DNS_NETERR);
        return;
    }
    if (q->state == Q_TCP_CONNECT)
        q->state = Q_TCP_SEND;
    if (q->state == Q_TCP_SEND) {
        n = send(q->fd, q->wire + q->off, q->wire_len - q->off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                q_finish(b, q, NULL, SG_DNS_NETERR);
            return;
        }
        q->off += (size_t) n;
        if (q->off == q->wire_len) {
            q->state = Q_TCP_RECV;
            q->rwant = 2;
            q->rlen = 0;
            if ((q->rbuf = sg_malloc(TCP_MAX + 2)) == NULL)
                q_finish(b, q, NULL, SG_DNS_NETERR);
        }
        return;
    }
    n = recv(q->fd, q->rbuf + q->rlen, q->rwant - q->rlen, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        q_finish(b, q, NULL, SG_DNS_NETERR);
        return;
    }
    q->rlen += (size_t) n;
    if (q->rlen < q->rwant)
        return;
    if (q->rwant == 2) {
        q->rwant = 2 + (((size_t) q->rbuf[0] << 8) | q->rbuf[1]);
        if (q->rwant < 14)
            q_finish(b, q, NULL, SG_DNS_MALFORMED);
        return;
    } else {
        struct sg_dns_answer *a;
        bool tc;
        int rc = sg_dns_parse_reply(q->rbuf + 2, q->rlen - 2, q->id, q->name,
                                    q->type, &a, &tc);

        if (rc == SG_ENOENT) {
            /* Over TCP, to the server we connected: not a forgery but a
             * broken server. */
            atomic_fetch_add(&b->dns->st_mismatched, 1);
            q_finish(b, q, NULL, SG_DNS_MALFORMED);
            return;
        }
        q_finish(b, q, a, SG_DNS_MALFORMED);
    }
}

/* expire - tries whose time is up: the next try, or TIMEOUT */
static void expire(struct sg_dns_batch *b, int64_t now)
{
    for (size_t i = 0; i < b->n; i++) {
        struct query *q = &b->q[i];

        if (q->state == Q_DONE || q->deadline > now)
            continue;
        if (q->state == Q_UDP && q->tries <= b->dns->retries) {
            q->server = (q->server + 1) % b->dns->nservers;
            send_udp(b, q, now);
        } else {
            q_finish(b, q, NULL, q->state == Q_UDP ? SG_DNS_TIMEOUT
                     : SG_DNS_NETERR);
        }
    }
}

int sg_dns_pending(const struct sg_dns_batch *b)
{
    int n = 0;

    for (size_t i = 0; b != NULL && i < b->n; i++)
        n += b->q[i].state != Q_DONE;
    return n;
}

static bool done(const struct sg_dns_batch *b, int handle, int pending0)
{
    if (handle >= 0)
        return (size_t) handle >= b->n || b->q[handle].state == Q_DONE;
    if (handle == SG_DNS_ANY)
        return sg_dns_pending(b) < pending0 || sg_dns_pending(b) == 0;
    return sg_dns_pending(b) == 0;
}

int sg_dns_wait(struct sg_dns_batch *b, int handle, int64_t deadline)
{
    struct pollfd pfd[SG_DNS_BATCH_MAX];
    size_t idx[SG_DNS_BATCH_MAX];
    int pending0;

    if (b == NULL)
        return 0;
    pending0 = sg_dns_pending(b);
    for (;;) {
        int64_t now = mono_ms(), next = deadline;
        nfds_t n = 0;
        int rc;

        expire(b, now);
        if (done(b, handle, pending0))
            break;
        for (size_t i = 0; i < b->n; i++) {
            struct query *q = &b->q[i];

            if (q->state == Q_DONE)
                continue;
            if (q->deadline < next)
                next = q->deadline;
            if (q->fd < 0)
                continue;
            pfd[n].fd = q->fd;
            pfd[n].events = q->state == Q_TCP_CONNECT ||
                q->state == Q_TCP_SEND ? POLLOUT : POLLIN;
            pfd[n].revents = 0;
            idx[n++] = i;
        }
        rc = poll(pfd, n, next > now ? (int) (next - now) : 0);
        if (rc < 0 && errno != EINTR)
            break;
        for (nfds_t k = 0; rc > 0 && k < n; k++) {
            struct query *q = &b->q[idx[k]];

            if (pfd[k].revents == 0 || q->state == Q_DONE)
                continue;
            if (q->state == Q_UDP)
                udp_readable(b, q, now);
            else
                tcp_progress(b, q, pfd[k].revents);
        }
        /* At the deadline whatever came: a flood of replies to drop
         * (forged, mismatched) must not keep the caller waiting. */
        if (mono_ms() >= deadline) {
            expire(b, mono_ms());
            break;
        }
    }
    return sg_dns_pending(b);
}

const struct sg_dns_answer *sg_dns_result(const struct sg_dns_batch *b,
                                          int handle)
{
    if (b == NULL || handle < 0 || (size_t) handle >= b->n ||
        b->q[handle].state != Q_DONE)
        return NULL;
    return b->q[handle].ans;
}

enum sg_dns_status sg_dns_status_of(const struct sg_dns_batch *b, int handle)
{
    const struct sg_dns_answer *a = sg_dns_result(b, handle);

    if (a != NULL)
        return a->status;
    if (b != NULL && handle >= 0 && (size_t) handle < b->n &&
        b->q[handle].state == Q_DONE)
        return SG_DNS_NETERR;   /* finished without memory for an answer */
    return SG_DNS_PENDING;
}

void sg_dns_batch_free(struct sg_dns_batch *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n; i++) {
        q_close(&b->q[i]);
        sg_dns_answer_unref(b->q[i].ans);
    }
    free(b->q);
    sg_dns_free(b->dns);
    sg_free(b);
}
