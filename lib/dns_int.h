/*
 * dns_int.h - what the resolver's files share: the resolver object, the
 * query of a batch, and the functions one file offers the others.
 * Internal to the resolver (dns.c, dnswire.c, dnsservers.c, dnscache.c);
 * everyone else sees only dns.h.
 *
 * dns.c: the resolver, the batch (sockets, tries, waiting).
 * dnswire.c (sg_dnsw_): queries and replies on the wire, answers.
 * dnsservers.c (sg_dnss_): the servers asked, from settings or resolv.conf.
 * dnscache.c (sg_dnsc_): the sharded cache; the counters read.
 */
#ifndef SG_DNS_INT_H
#define SG_DNS_INT_H

#include <errno.h>
#include <pthread.h>
#include <sys/random.h>
#include <time.h>

#include "dns.h"
#include "htab.h"

#define SHARDS 16

struct centry;

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
    const struct sg_dns_ops *ops;   /* the sockets (env.h) */
    struct shard shard[SHARDS];
    atomic_ulong st_queries, st_hits, st_sent, st_answers, st_mismatched,
        st_malformed, st_timeouts, st_tcp, st_entries, st_bytes,
        st_evictions, st_local;
    atomic_int local_what, local_errno;     /* the last local failure */
};

enum qstate { Q_DONE, Q_UDP, Q_TCP_CONNECT, Q_TCP_SEND, Q_TCP_RECV };

struct query {
    char name[SG_DNS_NAME_MAX];
    uint16_t type;
    enum qstate state;
    struct sg_dns_answer *ans;
    int fd;
    const struct sg_dns_ops *ops;   /* of the resolver: opened fd with */
    uint16_t id;
    int tries;                  /* UDP sends so far */
    size_t server;
    int64_t deadline;           /* of the current try */
    uint8_t *wire;              /* the query as sent (TCP: length first) */
    size_t wire_len, off;
    uint8_t *rbuf;              /* TCP reply */
    size_t rlen, rwant;
};

static inline int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * random16 - 16 bits from the kernel. Query IDs and source ports are what
 * a forger must guess (RFC 5452): when getrandom() fails there is no
 * fallback to anything guessable; the query is not sent.
 */
static inline bool random16(uint16_t *v)
{
    ssize_t n;

    do
        n = getrandom(v, sizeof(*v), 0);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t) sizeof(*v);
}

/* dnswire.c */
struct sg_dns_answer *sg_dnsw_answer_new(const char *name, uint16_t type,
                                         enum sg_dns_status st);
struct sg_dns_answer *sg_dnsw_answer_ref(struct sg_dns_answer *a);
void sg_dnsw_lower_name(const char *in, char *out, size_t size);
int sg_dnsw_build(struct query *q, bool tcp);

/* dnsservers.c */
int sg_dnss_init(struct sg_dns *dns, const struct sg_dns_opts *o,
                 struct sg_err *err);

/* dnscache.c */
int sg_dnsc_init(struct sg_dns *dns, const struct sg_dns_opts *o);
void sg_dnsc_destroy(struct sg_dns *dns);
struct sg_dns_answer *sg_dnsc_get(struct sg_dns *dns, const char *name,
                                  uint16_t type);
void sg_dnsc_put(struct sg_dns *dns, struct sg_dns_answer *a);

#endif /* SG_DNS_INT_H */
