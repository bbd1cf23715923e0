/*
 * milterproto.c - milter wire format and socket I/O for the benchmark
 * client: every wait bounded by the timeout, partial reads/writes and
 * EINTR handled, SIGPIPE avoided with MSG_NOSIGNAL (the program also
 * ignores the signal).
 */
#include "milterproto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void set_err(struct mp_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_err(struct mp_conn *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);

    if (q == NULL) {
        fprintf(stderr, "sg-loadclient: out of memory\n");
        abort();
    }
    return q;
}

double mp_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

uint32_t mp_get_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* ---- socket specification ------------------------------------------- */

static int parse_unix(const char *path, struct mp_addr *a, char *err,
                      size_t errlen)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)&a->sa;

    if (*path == '\0' || strlen(path) >= sizeof sun->sun_path) {
        snprintf(err, errlen, "bad unix socket path \"%s\"", path);
        return -1;
    }
    memset(a, 0, sizeof *a);
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, strlen(path) + 1);
    a->salen = (socklen_t)sizeof *sun;
    snprintf(a->text, sizeof a->text, "unix:%s", path);
    return 0;
}

static int parse_inet(const char *rest, int family, struct mp_addr *a,
                      char *err, size_t errlen)
{
    char port[32], host[256];
    const char *at = strchr(rest, '@');
    const char *colon = strrchr(rest, ':');
    struct addrinfo hints, *res = NULL;
    int rc;

    /* libmilter writes PORT@HOST; also accept Postfix's HOST:PORT. */
    if (at != NULL) {
        snprintf(port, sizeof port, "%.*s", (int)(at - rest), rest);
        snprintf(host, sizeof host, "%s", at + 1);
    } else if (colon != NULL) {
        snprintf(host, sizeof host, "%.*s", (int)(colon - rest), rest);
        snprintf(port, sizeof port, "%s", colon + 1);
    } else {
        snprintf(port, sizeof port, "%s", rest);
        snprintf(host, sizeof host, "%s",
                 family == AF_INET6 ? "::1" : "127.0.0.1");
    }
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, errlen, "cannot resolve \"%s\" port \"%s\": %s", host,
                 port, rc != 0 ? gai_strerror(rc) : "no address");
        return -1;
    }
    memset(a, 0, sizeof *a);
    memcpy(&a->sa, res->ai_addr, res->ai_addrlen);
    a->salen = res->ai_addrlen;
    snprintf(a->text, sizeof a->text, "%s:%s@%s",
             family == AF_INET6 ? "inet6" : "inet", port, host);
    freeaddrinfo(res);
    return 0;
}

int mp_parse_socket(const char *spec, struct mp_addr *addr, char *err,
                    size_t errlen)
{
    if (strncmp(spec, "unix:", 5) == 0)
        return parse_unix(spec + 5, addr, err, errlen);
    if (strncmp(spec, "local:", 6) == 0)
        return parse_unix(spec + 6, addr, err, errlen);
    if (spec[0] == '/')
        return parse_unix(spec, addr, err, errlen);
    if (strncmp(spec, "inet:", 5) == 0)
        return parse_inet(spec + 5, AF_INET, addr, err, errlen);
    if (strncmp(spec, "inet6:", 6) == 0)
        return parse_inet(spec + 6, AF_INET6, addr, err, errlen);
    snprintf(err, errlen,
             "bad socket \"%s\": use inet:PORT@HOST, inet6:PORT@HOST or "
             "unix:/path", spec);
    return -1;
}

/* ---- connection ------------------------------------------------------ */

void mp_conn_init(struct mp_conn *c, int timeout_ms)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->timeout_ms = timeout_ms;
}

void mp_conn_free(struct mp_conn *c)
{
    mp_close(c);
    free(c->out);
    free(c->in);
    c->out = c->in = NULL;
    c->outcap = c->incap = 0;
}

void mp_close(struct mp_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->outlen = c->inlen = c->inpos = 0;
}

/* Sockets are blocking with SO_RCVTIMEO/SO_SNDTIMEO: one syscall per
 * send or receive in the common case (the client shares the CPU with the
 * milter under test, so its own overhead matters). A timed-out call fails
 * with EAGAIN. set_timeo() narrows the receive timeout to what is left of
 * the current reply's deadline when one reply needs several reads. */
static int set_timeo(struct mp_conn *c, int opt, int ms)
{
    struct timeval tv;

    if (ms < 1)
        ms = 1;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    if (setsockopt(c->fd, SOL_SOCKET, opt, &tv, sizeof tv) < 0) {
        set_err(c, "setsockopt: %s", strerror(errno));
        return -1;
    }
    if (opt == SO_RCVTIMEO)
        c->rcvtimeo_ms = ms;
    return 0;
}

int mp_connect(struct mp_conn *c, const struct mp_addr *addr)
{
    int family = addr->sa.ss_family, one = 1;

    mp_close(c);
    c->fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        set_err(c, "socket: %s", strerror(errno));
        return -1;
    }
    /* SO_SNDTIMEO also bounds connect() on Linux. */
    if (set_timeo(c, SO_SNDTIMEO, c->timeout_ms) < 0 ||
        set_timeo(c, SO_RCVTIMEO, c->timeout_ms) < 0)
        return -1;
    if (family != AF_UNIX)
        (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    while (connect(c->fd, (const struct sockaddr *)&addr->sa,
                   addr->salen) < 0) {
        if (errno == EINTR)
            continue; /* the connection attempt goes on: wait for it */
        if (errno == EISCONN)
            break;
        set_err(c, "%s: %s", addr->text,
                errno == EINPROGRESS || errno == EAGAIN ? "timed out"
                                                        : strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- output ---------------------------------------------------------- */

static void out_reserve(struct mp_conn *c, size_t n)
{
    if (c->outlen + n <= c->outcap)
        return;
    while (c->outlen + n > c->outcap)
        c->outcap = c->outcap ? c->outcap * 2 : 16384;
    c->out = xrealloc(c->out, c->outcap);
}

void mp_put(struct mp_conn *c, const void *p, size_t n)
{
    out_reserve(c, n);
    memcpy(c->out + c->outlen, p, n);
    c->outlen += n;
}

void mp_begin(struct mp_conn *c, char cmd)
{
    static const unsigned char zero[4];

    c->pktstart = c->outlen;
    mp_put(c, zero, 4); /* length, patched by mp_end() */
    mp_put(c, &cmd, 1);
}

void mp_put_str(struct mp_conn *c, const char *s)
{
    mp_put(c, s, strlen(s) + 1);
}

void mp_put_u16(struct mp_conn *c, uint16_t v)
{
    unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};

    mp_put(c, b, 2);
}

void mp_put_u32(struct mp_conn *c, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};

    mp_put(c, b, 4);
}

void mp_end(struct mp_conn *c)
{
    uint32_t len = (uint32_t)(c->outlen - c->pktstart - 4);
    unsigned char *p = c->out + c->pktstart;

    p[0] = (unsigned char)(len >> 24);
    p[1] = (unsigned char)(len >> 16);
    p[2] = (unsigned char)(len >> 8);
    p[3] = (unsigned char)len;
}

void mp_simple(struct mp_conn *c, char cmd)
{
    mp_begin(c, cmd);
    mp_end(c);
}

int mp_flush(struct mp_conn *c)
{
    size_t off = 0;

    while (off < c->outlen) {
        ssize_t n = send(c->fd, c->out + off, c->outlen - off, MSG_NOSIGNAL);

        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        c->last_errno = n < 0 ? errno : EIO;
        set_err(c, "write: %s",
                n == 0 ? "no progress"
                : errno == EAGAIN || errno == EWOULDBLOCK ? "timed out"
                : strerror(errno));
        return -1;
    }
    c->outlen = 0;
    return 0;
}

/* ---- input ----------------------------------------------------------- */

/* Make sure at least `need` unread bytes are buffered. Returns 0, or -1
 * (timeout, error, or EOF; `eof_ok` turns a clean EOF into 1). */
static int fill(struct mp_conn *c, size_t need, double deadline, int eof_ok)
{
    while (c->inlen - c->inpos < need) {
        ssize_t n;

        if (c->inpos > 0) { /* compact */
            memmove(c->in, c->in + c->inpos, c->inlen - c->inpos);
            c->inlen -= c->inpos;
            c->inpos = 0;
        }
        if (c->incap < need || c->incap - c->inlen < 4096) {
            size_t cap = c->incap ? c->incap : 16384;

            while (cap < need || cap - c->inlen < 4096)
                cap *= 2;
            c->in = xrealloc(c->in, cap);
            c->incap = cap;
        }
        n = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, 0);
        if (n > 0) {
            double left = deadline - mp_now_ms();

            c->inlen += (size_t)n;
            if (c->inlen - c->inpos >= need)
                break;
            if (left <= 0 || set_timeo(c, SO_RCVTIMEO, (int)left) < 0)
                goto timeout;
            continue;
        }
        if (n == 0) {
            if (eof_ok && c->inlen == c->inpos)
                return 1;
            set_err(c, "milter closed the connection");
            return -1;
        }
        if (errno == EINTR) {
            if (mp_now_ms() < deadline)
                continue;
            goto timeout;
        }
        if (errno == ECONNRESET && eof_ok && c->inlen == c->inpos)
            return 1;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            goto timeout;
        set_err(c, "read: %s", strerror(errno));
        return -1;
    }
    return 0;
timeout:
    set_err(c, "timed out waiting for the milter");
    return -1;
}

int mp_read(struct mp_conn *c, struct mp_packet *pkt)
{
    double deadline;
    uint32_t len;

    if (c->outlen > 0 && mp_flush(c) < 0)
        return -1;
    if (c->rcvtimeo_ms != c->timeout_ms &&
        set_timeo(c, SO_RCVTIMEO, c->timeout_ms) < 0)
        return -1;
    deadline = mp_now_ms() + c->timeout_ms;
    if (fill(c, 5, deadline, 0) < 0)
        return -1;
    len = mp_get_u32(c->in + c->inpos);
    if (len < 1 || len > MP_MAX_REPLY) {
        set_err(c, "bad reply packet length %lu", (unsigned long)len);
        return -1;
    }
    if (fill(c, 4 + (size_t)len, deadline, 0) < 0)
        return -1;
    pkt->cmd = (char)c->in[c->inpos + 4];
    pkt->data = c->in + c->inpos + 5;
    pkt->len = len - 1;
    c->inpos += 4 + (size_t)len;
    return 0;
}

int mp_wait_close(struct mp_conn *c)
{
    int rc;

    if (c->outlen > 0 && mp_flush(c) < 0)
        /* A milter that closed first (e.g. after a reject) is fine. */
        return c->last_errno == EPIPE || c->last_errno == ECONNRESET ? 0 : -1;
    if (c->rcvtimeo_ms != c->timeout_ms &&
        set_timeo(c, SO_RCVTIMEO, c->timeout_ms) < 0)
        return -1;
    rc = fill(c, 1, mp_now_ms() + c->timeout_ms, 1);
    if (rc == 1)
        return 0;
    if (rc == 0)
        set_err(c, "milter sent data after QUIT");
    return -1;
}
