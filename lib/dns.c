/*
 * dns.c - parallel DNS lookups on non-blocking sockets: the resolver and
 * its batches of queries (see dns.h)
 *
 * Life of a query: cache hit -> done at once. Otherwise a UDP socket bound
 * to a random port and connected to the server (the kernel then delivers
 * only datagrams from that address and port), a random 16-bit ID, the
 * packet built by ldns, sent. sg_dns_wait() polls the batch's sockets;
 * every datagram is checked by sg_dns_parse_reply() and dropped unless it
 * answers exactly this question; after timeout_ms the query is sent again
 * (new socket, new port, new ID, next server) up to `retries` times, then
 * it is a TIMEOUT. TC set: the query is asked again over TCP.
 *
 * The packets, the checks of replies and the answers are in dnswire.c,
 * the cache in dnscache.c, the list of servers in dnsservers.c.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns_int.h"

#define UDP_MAX 4096            /* we send no EDNS: servers keep to 512 */
#define TCP_MAX 65535

const char *sg_dns_status_name(enum sg_dns_status st)
{
    static const char *const names[] = {
        "pending", "ok", "nxdomain", "nodata", "servfail", "refused",
        "rcode", "timeout", "neterr", "malformed", "badname",
    };

    return (unsigned) st < sizeof(names) / sizeof(names[0]) ? names[st]
        : "?";
}

int64_t sg_dns_clock(const struct sg_dns *dns)
{
    (void) dns;
    return mono_ms();
}

/* ---- resolver ---- */

int sg_dns_new(const struct sg_dns_opts *o, struct sg_dns **out,
               struct sg_err *err)
{
    struct sg_dns *dns = sg_calloc(1, sizeof(*dns));

    if (dns == NULL) {
        sg_err_set(err, "out of memory");
        return SG_ENOMEM;
    }
    if (sg_dnss_init(dns, o, err) != SG_OK) {
        sg_free(dns);
        return SG_EINVAL;
    }
    atomic_init(&dns->refcnt, 1);
    dns->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 1500;
    dns->retries = o->retries >= 0 ? o->retries : 1;
    dns->ops = o->ops ? o->ops : &sg_dns_ops_system;
    if (sg_dnsc_init(dns, o) != SG_OK) {
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
    sg_dnsc_destroy(dns);
    sg_free(dns);
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

/* ---- queries ---- */

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
        q->ops->close(q->ops->arg, q->fd);
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
        a = sg_dnsw_answer_new(q->name, q->type, st);
    q->ans = a;                 /* NULL only when out of memory */
    if (a == NULL)
        return;
    if (a->status == SG_DNS_TIMEOUT)
        atomic_fetch_add(&b->dns->st_timeouts, 1);
    else if (a->status == SG_DNS_MALFORMED)
        atomic_fetch_add(&b->dns->st_malformed, 1);
    else if (a->status != SG_DNS_NETERR && a->status != SG_DNS_BADNAME)
        atomic_fetch_add(&b->dns->st_answers, 1);
    sg_dnsc_put(b->dns, a);
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
static bool bind_random(const struct sg_dns_ops *ops, int fd, int family)
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
        if (ops->bind(ops->arg, fd, (struct sockaddr *) &ss, family == AF_INET
                 ? sizeof(struct sockaddr_in)
                 : sizeof(struct sockaddr_in6)) == 0)
            return true;
        if (errno != EADDRINUSE && errno != EACCES)
            return true;        /* connect() picks an ephemeral port */
    }
    return true;
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
    if ((rc = sg_dnsw_build(q, false)) != SG_OK) {
        if (rc != SG_EINVAL)
            local_failure(b->dns, rc == SG_ENOMEM ? SG_DNS_LOCAL_MEMORY
                          : SG_DNS_LOCAL_RANDOM, rc == SG_ENOMEM ? ENOMEM
                          : errno);
        q_finish(b, q, NULL, rc == SG_EINVAL ? SG_DNS_BADNAME
                 : SG_DNS_NETERR);
        return;
    }
    q->fd = q->ops->socket(q->ops->arg, s->addr.family,
                           SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (q->fd < 0) {
        local_failure(b->dns, SG_DNS_LOCAL_SOCKET, errno);
        return;                 /* counts as a lost try */
    }
    if (!bind_random(q->ops, q->fd, s->addr.family)) {
        local_failure(b->dns, SG_DNS_LOCAL_RANDOM, errno);
        q_close(q);
        return;
    }
    if (q->ops->connect(q->ops->arg, q->fd, (struct sockaddr *) &ss, sl) < 0
        || q->ops->send(q->ops->arg, q->fd, q->wire + 2, q->wire_len - 2,
                        0) < 0) {
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
    /* The name went over UDP. */
    if ((rc = sg_dnsw_build(q, true)) != SG_OK) {
        local_failure(b->dns, rc == SG_ENOMEM ? SG_DNS_LOCAL_MEMORY
                      : SG_DNS_LOCAL_RANDOM, rc == SG_ENOMEM ? ENOMEM
                      : errno);
        q_finish(b, q, NULL, SG_DNS_NETERR);
        return;
    }
    q->fd = q->ops->socket(q->ops->arg, s->addr.family,
                           SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (q->fd < 0) {
        local_failure(b->dns, SG_DNS_LOCAL_SOCKET, errno);
        q_finish(b, q, NULL, SG_DNS_NETERR);
        return;
    }
    if (q->ops->connect(q->ops->arg, q->fd, (struct sockaddr *) &ss, sl) < 0
        && errno != EINPROGRESS) {
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
    q->ops = dns->ops;
    q->type = type;
    atomic_fetch_add(&dns->st_queries, 1);
    if (name == NULL || !sg_dname_query_ok(name)) {
        sg_strlcpy(q->name, name ? name : "", sizeof(q->name));
        q_finish(b, q, NULL, SG_DNS_BADNAME);
        return (int) b->n++;
    }
    sg_dnsw_lower_name(name, lname, sizeof(lname));
    sg_strlcpy(q->name, lname, sizeof(q->name));
    if ((q->ans = sg_dnsc_get(dns, lname, type)) != NULL) {
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
        ssize_t n = q->ops->recv(q->ops->arg, q->fd, buf, sizeof(buf), 0);
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
        n = q->ops->send(q->ops->arg, q->fd, q->wire + q->off,
                         q->wire_len - q->off, MSG_NOSIGNAL);
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
    n = q->ops->recv(q->ops->arg, q->fd, q->rbuf + q->rlen,
                     q->rwant - q->rlen, 0);
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
