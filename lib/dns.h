/*
 * dns.h - the one DNS component: parallel non-blocking lookups built on
 * ldns, verified answers, one shared cache
 *
 * ldns builds the queries and parses the answers; sending and receiving is
 * ours, on non-blocking sockets under poll(), because ldns has no
 * asynchronous resolver and its own (1.8.3) does not match a reply to its
 * query (CVE-2026-10846). Every query has its own connected UDP socket on
 * a random source port and a random ID; a reply counts only if it comes
 * from the server asked, carries the ID, has QR set and asks exactly the
 * question (name compared case-insensitively, type, class). Anything else
 * is dropped, counted, and the query keeps waiting. A truncated reply is
 * asked again over TCP.
 *
 * Lookups are grouped in a batch per SMTP session: queries are sent the
 * moment they are added (sg_dns_query returns at once) and collected with
 * sg_dns_wait() against a deadline, possibly on another thread, possibly
 * adding follow-up queries (A/AAAA for PTR names) in between. A batch is
 * used by one thread at a time; the resolver and its cache are shared by
 * all and are thread-safe: the cache is sharded, each shard behind its own
 * mutex, never held across network I/O. Concurrent identical misses are
 * not coalesced: each session asks; the cache then keeps one answer.
 *
 * Answers are immutable and reference-counted, shared between the cache
 * and the batches that use them. Input trust: everything from the network
 * is bounded (packet size, records kept, name and TXT lengths, CNAME chain
 * length) and validated before use.
 */
#ifndef SG_DNS_H
#define SG_DNS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "dname.h"
#include "env.h"
#include "sg.h"

#define SG_DNS_T_A      1
#define SG_DNS_T_NS     2
#define SG_DNS_T_CNAME  5
#define SG_DNS_T_SOA    6
#define SG_DNS_T_PTR    12
#define SG_DNS_T_MX     15
#define SG_DNS_T_TXT    16
#define SG_DNS_T_AAAA   28

#define SG_DNS_NAME_MAX   SG_DNAME_MAX
#define SG_DNS_TXT_MAX    8192  /* one TXT record's strings, concatenated */
#define SG_DNS_RR_MAX     64    /* records kept per answer */
#define SG_DNS_CNAME_MAX  8     /* CNAMEs followed within one answer */
#define SG_DNS_SERVERS_MAX 8
#define SG_DNS_BATCH_MAX  160   /* queries per batch */
/* The cache's memory budget per answer it may hold, on average: an answer
 * with a few records is 600-900 bytes (the answer, its records and
 * texts, the cache entry and key), so dnsCacheSize answers of common
 * sizes fit, and big ones (up to 64 KB of TXT over TCP) displace more. */
#define SG_DNS_CACHE_AVG  1024

enum sg_dns_status {
    SG_DNS_PENDING = 0,         /* not answered yet */
    SG_DNS_OK,                  /* records of the type asked */
    SG_DNS_NXDOMAIN,            /* the name does not exist */
    SG_DNS_NODATA,              /* the name exists, no records of the type */
    SG_DNS_SERVFAIL,
    SG_DNS_REFUSED,
    SG_DNS_RCODE,               /* another error rcode (FORMERR, NOTIMP..) */
    SG_DNS_TIMEOUT,             /* no valid answer after every try */
    SG_DNS_NETERR,              /* no socket, unreachable server */
    SG_DNS_MALFORMED,           /* an answer came but made no sense */
    SG_DNS_BADNAME,             /* a name no query can carry: never asked */
};

const char *sg_dns_status_name(enum sg_dns_status st);
/* True for results a check may treat as definite (OK, NXDOMAIN, NODATA). */
static inline bool sg_dns_definite(enum sg_dns_status st)
{
    return st == SG_DNS_OK || st == SG_DNS_NXDOMAIN || st == SG_DNS_NODATA;
}

struct sg_dns_rr {
    uint16_t type;
    uint32_t ttl;
    struct sg_addr addr;        /* A, AAAA */
    uint16_t pref;              /* MX */
    char *text;                 /* PTR/CNAME/MX/NS name (lower case, no
                                 * trailing dot), TXT strings joined */
    size_t len;                 /* of text */
};

/* One answer: immutable once published; refcounted. */
struct sg_dns_answer {
    atomic_int refcnt;
    enum sg_dns_status status;
    uint16_t qtype;
    char name[SG_DNS_NAME_MAX]; /* as asked, lower case */
    char canon[SG_DNS_NAME_MAX];/* after CNAMEs */
    uint32_t ttl;               /* what the cache used */
    bool truncated_rrs;         /* records over the bounds were dropped */
    size_t nrr;
    struct sg_dns_rr *rr;
};

void sg_dns_answer_unref(struct sg_dns_answer *a);

struct sg_dns_server {
    struct sg_addr addr;
    uint16_t port;
};

/* Injected clock for tests (milliseconds, monotonic); NULL: the real one. */
typedef int64_t (*sg_dns_clock_fn)(void *arg);

struct sg_dns_opts {
    const char *servers;        /* "ADDR[:PORT] [ADDR6]:PORT ..."; NULL or
                                 * "": resolv_conf's nameservers */
    const char *resolv_conf;    /* NULL: /etc/resolv.conf */
    int timeout_ms;             /* per try (default 1500) */
    int retries;                /* tries after the first (default 1) */
    size_t cache_max;           /* answers cached; 0: no cache. Also the
                                 * memory bound: cache_max times
                                 * SG_DNS_CACHE_AVG bytes in all */
    uint32_t ttl_min, ttl_max;  /* clamp of positive TTLs, seconds */
    uint32_t neg_ttl_max;       /* bound of negative TTLs, seconds */
    sg_dns_clock_fn clock;      /* the cache's clock; NULL: monotonic */
    void *clock_arg;
    const struct sg_dns_ops *ops;   /* the sockets; NULL: the machine's */
};

struct sg_dns_stats {
    unsigned long queries;      /* lookups asked */
    unsigned long cache_hits;
    unsigned long sent;         /* packets sent (UDP tries + TCP) */
    unsigned long answers;      /* verified answers */
    unsigned long mismatched;   /* replies dropped: ID, question, source */
    unsigned long malformed;
    unsigned long timeouts;
    unsigned long tcp;          /* retries over TCP after truncation */
    unsigned long cache_entries;
    unsigned long cache_bytes;  /* accounted: answers, records, entries */
    unsigned long cache_evictions;
    unsigned long local_failures;   /* tries not sent: no random number,
                                     * no socket, no memory */
    enum sg_dns_local {
        SG_DNS_LOCAL_NONE, SG_DNS_LOCAL_RANDOM, SG_DNS_LOCAL_SOCKET,
        SG_DNS_LOCAL_MEMORY,
    } local_what;                   /* the last one */
    int local_errno;
};

/* "getrandom", "socket", "memory" */
const char *sg_dns_local_name(enum sg_dns_local what);

struct sg_dns;
struct sg_dns_batch;

/* Parse a servers list ("127.0.0.1:5353 [::1]:53"); SG_EINVAL with why. */
int sg_dns_parse_servers(const char *text, struct sg_dns_server *out,
                         size_t max, size_t *n, struct sg_err *err);
/* The nameservers of a resolv.conf text (at most `max`; port 53). */
size_t sg_dns_parse_resolv_conf(const char *text, struct sg_dns_server *out,
                                size_t max);

int sg_dns_new(const struct sg_dns_opts *opts, struct sg_dns **out,
               struct sg_err *err);
/* Resolvers are refcounted: each batch holds one; free drops one. */
struct sg_dns *sg_dns_ref(struct sg_dns *dns);
void sg_dns_free(struct sg_dns *dns);
void sg_dns_get_stats(struct sg_dns *dns, struct sg_dns_stats *st);
/* The servers in use, as text ("127.0.0.1:5353 ..."). */
void sg_dns_servers_text(const struct sg_dns *dns, char *buf, size_t size);

/*
 * A batch of lookups. sg_dns_query() answers from the cache or sends at
 * once; returns the handle (>= 0), or -1 when the batch is full or out of
 * memory. A name that is not a valid DNS name gets a handle whose answer is
 * BADNAME, asked of nobody.
 */
struct sg_dns_batch *sg_dns_batch_new(struct sg_dns *dns);
int sg_dns_query(struct sg_dns_batch *b, const char *name, uint16_t type);
#define SG_DNS_ALL (-1)         /* sg_dns_wait: until every query is done */
#define SG_DNS_ANY (-2)         /* ... until one more query is done */

/*
 * Receive, retry and switch to TCP until every query (SG_DNS_ALL), one
 * more query (SG_DNS_ANY) or the one handle is done, or `deadline`
 * (sg_dns_clock milliseconds) passes.
 * Returns the number of queries of the batch still pending. A deadline in
 * the past only takes what has already arrived.
 */
int sg_dns_wait(struct sg_dns_batch *b, int handle, int64_t deadline);
/* The answer of a handle; status PENDING while there is none. */
const struct sg_dns_answer *sg_dns_result(const struct sg_dns_batch *b,
                                          int handle);
enum sg_dns_status sg_dns_status_of(const struct sg_dns_batch *b,
                                    int handle);
int sg_dns_pending(const struct sg_dns_batch *b);
/* Frees the batch; queries still in flight are abandoned (sockets closed). */
void sg_dns_batch_free(struct sg_dns_batch *b);

int64_t sg_dns_clock(const struct sg_dns *dns);

/*
 * Check one reply in wire form against the question asked: ID, QR, opcode,
 * one question equal to (name, type, class IN). Returns SG_OK and fills
 * *out (a new answer, refcount 1) for a reply to use; SG_ENOENT for a
 * reply that is not for this query (dropped); SG_EINVAL for a reply to
 * this query that cannot be parsed (*out gets a MALFORMED answer).
 * *truncated is set when the TC bit is on (the caller retries over TCP).
 * Pure; callable on any bytes (fuzzing).
 */
int sg_dns_parse_reply(const uint8_t *wire, size_t len, uint16_t id,
                       const char *name, uint16_t type,
                       struct sg_dns_answer **out, bool *truncated);

#endif /* SG_DNS_H */
