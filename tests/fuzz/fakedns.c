/*
 * fakedns.c - the in-memory DNS server behind the wrapped socket calls
 * (see fakedns.h)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "fakedns.h"

#define ZONE_MAX 64
#define DATA_MAX 8192
#define NAME_MAX_ 256
#define FAKE_MAX 256
#define UDP_LIMIT 512
#define WIRE_MAX 65535

enum { T_A = 1, T_NS = 2, T_CNAME = 5, T_PTR = 12, T_MX = 15, T_TXT = 16,
       T_AAAA = 28 };
enum fault { F_NONE, F_SERVFAIL, F_REFUSED, F_NXDOMAIN, F_TC, F_BADID,
             F_DROP };

struct record {
    char name[NAME_MAX_];
    uint16_t type;              /* 0: a fault */
    enum fault fault;
    uint16_t pref;
    uint8_t data[DATA_MAX];     /* address, name text, TXT bytes */
    size_t len;
};

static struct record zone[ZONE_MAX];
static size_t nzone;
static unsigned nqueries;

struct fake {
    int fd;                     /* -1: free slot */
    bool stream;
    uint8_t in[2 + 512];        /* TCP: the query as it arrives */
    size_t inlen;
    uint8_t *out[2];            /* UDP: datagrams; TCP: out[0] a stream */
    size_t outlen[2], outoff;
    int nout;
};

static struct fake fakes[FAKE_MAX];
static bool fakes_init;
static int devnull = -1;


void fakedns_reset(void)
{
    nzone = 0;
    nqueries = 0;
}

unsigned fakedns_queries(void)
{
    return nqueries;
}

static uint16_t type_of(const char *t, size_t n, enum fault *fault)
{
    static const struct {
        const char *name;
        uint16_t type;
        enum fault fault;
    } types[] = {
        { "A", T_A, F_NONE }, { "AAAA", T_AAAA, F_NONE },
        { "MX", T_MX, F_NONE }, { "PTR", T_PTR, F_NONE },
        { "CNAME", T_CNAME, F_NONE }, { "NS", T_NS, F_NONE },
        { "TXT", T_TXT, F_NONE }, { "SERVFAIL", 0, F_SERVFAIL },
        { "REFUSED", 0, F_REFUSED }, { "NXDOMAIN", 0, F_NXDOMAIN },
        { "TC", 0, F_TC }, { "BADID", 0, F_BADID }, { "DROP", 0, F_DROP },
    };

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strlen(types[i].name) == n && strncasecmp(types[i].name, t, n)
            == 0) {
            *fault = types[i].fault;
            return types[i].type;
        }
    *fault = F_NONE;
    return 0xffff;
}

/* word - the next space-separated word of [*p, end) */
static size_t word(const char **p, const char *end, const char **w)
{
    while (*p < end && **p == ' ')
        (*p)++;
    *w = *p;
    while (*p < end && **p != ' ')
        (*p)++;
    return (size_t) (*p - *w);
}

int fakedns_line(const char *line, size_t len)
{
    const char *p = line, *end = line + len, *w;
    struct record *r;
    size_t n;
    char tmp[NAME_MAX_];

    if (nzone == ZONE_MAX)
        return 0;
    r = &zone[nzone];
    memset(r, 0, offsetof(struct record, data));
    r->len = 0;
    if ((n = word(&p, end, &w)) == 0 || n >= NAME_MAX_)
        return 0;
    memcpy(r->name, w, n);
    r->name[n] = '\0';
    if (n > 1 && r->name[n - 1] == '.')
        r->name[n - 1] = '\0';
    n = word(&p, end, &w);
    if ((r->type = type_of(w, n, &r->fault)) == 0xffff)
        return 0;
    if (p < end)
        p++;                    /* the one space before DATA */
    n = (size_t) (end - p);
    switch (r->type) {
    case 0:
        break;
    case T_TXT:
        if (n > DATA_MAX)
            return 0;
        memcpy(r->data, p, n);
        r->len = n;
        break;
    case T_A:
    case T_AAAA:
        if (n >= sizeof(tmp))
            return 0;
        memcpy(tmp, p, n);
        tmp[n] = '\0';
        if (inet_pton(r->type == T_A ? AF_INET : AF_INET6, tmp, r->data)
            != 1)
            return 0;
        r->len = r->type == T_A ? 4 : 16;
        break;
    case T_MX:
        for (; p < end && *p >= '0' && *p <= '9'; p++)
            r->pref = (uint16_t) (r->pref * 10 + (unsigned) (*p - '0'));
        while (p < end && *p != ' ')
            p++;
        if (p < end)
            p++;
        n = (size_t) (end - p);
        /* fall through */
    default:
        if (n >= NAME_MAX_)
            return 0;
        memcpy(r->data, p, n);
        r->data[n] = '\0';
        r->len = n;
        break;
    }
    nzone++;
    return 1;
}

/* ---- replies ---- */

struct wire {
    uint8_t b[WIRE_MAX];
    size_t n;
    bool full;
};

static void put(struct wire *w, const void *p, size_t n)
{
    if (w->n + n > sizeof(w->b)) {
        w->full = true;
        return;
    }
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void put16(struct wire *w, unsigned v)
{
    uint8_t b[2] = { (uint8_t) (v >> 8), (uint8_t) v };

    put(w, b, 2);
}

/* put_name - a name in wire form; false when it has no wire form */
static bool put_name(struct wire *w, const char *name)
{
    uint8_t buf[NAME_MAX_ + 2];
    size_t o = 0;

    for (const char *p = name; *p != '\0';) {
        size_t l = strcspn(p, ".");

        if (l == 0 || l > 63 || o + l + 2 > 255)
            return false;
        buf[o++] = (uint8_t) l;
        memcpy(buf + o, p, l);
        o += l;
        p += l + (p[l] == '.');
    }
    buf[o++] = 0;
    put(w, buf, o);
    return true;
}

static bool has_name(const char *name)
{
    for (size_t i = 0; i < nzone; i++)
        if (strcasecmp(zone[i].name, name) == 0)
            return true;
    return false;
}

/* owner - the records of `name`, else of "*" */
static const char *owner(const char *name)
{
    return has_name(name) ? name : has_name("*") ? "*" : NULL;
}

static enum fault fault_of(const char *name)
{
    const char *o = owner(name);

    for (size_t i = 0; o != NULL && i < nzone; i++)
        if (zone[i].type == 0 && strcasecmp(zone[i].name, o) == 0)
            return zone[i].fault;
    return F_NONE;
}

static void put_rr(struct wire *w, const char *name, bool first,
                   const struct record *r)
{
    size_t at;

    if (first)
        put16(w, 0xc00c);
    else if (!put_name(w, name))
        return;
    put16(w, r->type);
    put16(w, 1);
    put16(w, 0);
    put16(w, 300);
    at = w->n;
    put16(w, 0);
    switch (r->type) {
    case T_A:
    case T_AAAA:
        put(w, r->data, r->len);
        break;
    case T_TXT:
        for (size_t o = 0; o < r->len || o == 0; o += 255) {
            uint8_t l = (uint8_t) (r->len - o > 255 ? 255 : r->len - o);

            put(w, &l, 1);
            put(w, r->data + o, l);
            if (r->len == 0)
                break;
        }
        break;
    case T_MX:
        put16(w, r->pref);
        /* fall through */
    default:
        if (!put_name(w, (const char *) r->data))
            put(w, "", 1);      /* the root: a name with no wire form */
        break;
    }
    if (!w->full) {
        w->b[at] = (uint8_t) ((w->n - at - 2) >> 8);
        w->b[at + 1] = (uint8_t) (w->n - at - 2);
    }
}

/* answer - the reply to one query; false when none is sent */
static bool answer(const uint8_t *q, size_t qlen, struct wire *w,
                   bool tcp, bool *badid_first)
{
    char name[NAME_MAX_], cur[NAME_MAX_];
    size_t o = 12, nl = 0, qend;
    uint16_t qtype, an = 0, rcode = 0;
    enum fault f;
    bool first = true;

    *badid_first = false;
    w->n = 0;
    w->full = false;
    if (qlen < 17)
        return false;
    while (o < qlen && q[o] != 0) {
        size_t l = q[o];

        if (l > 63 || o + 1 + l >= qlen || nl + l + 2 > sizeof(name))
            return false;
        if (nl)
            name[nl++] = '.';
        memcpy(name + nl, q + o + 1, l);
        nl += l;
        o += 1 + l;
    }
    name[nl] = '\0';
    qend = o + 5;
    if (qend > qlen)
        return false;
    qtype = (uint16_t) ((q[o + 1] << 8) | q[o + 2]);
    nqueries++;
    f = fault_of(name);
    if (f == F_DROP)
        return false;
    *badid_first = f == F_BADID && !tcp;
    put(w, q, 2);
    put16(w, 0x8180);
    put16(w, 1);
    put16(w, 0);
    put16(w, 0);
    put16(w, 0);
    put(w, q + 12, qend - 12);
    if (f == F_SERVFAIL || f == F_REFUSED || f == F_NXDOMAIN) {
        rcode = f == F_SERVFAIL ? 2 : f == F_REFUSED ? 5 : 3;
    } else {
        snprintf(cur, sizeof(cur), "%s", name);
        /* CNAMEs first, up to 10 (a loop stops there), then the type. */
        for (int hop = 0; hop < 10; hop++) {
            const char *own = owner(cur);
            const struct record *cn = NULL;

            if (own == NULL) {
                if (first)
                    rcode = 3;
                break;
            }
            for (size_t i = 0; i < nzone; i++)
                if (strcasecmp(zone[i].name, own) == 0 &&
                    zone[i].type == T_CNAME && qtype != T_CNAME)
                    cn = &zone[i];
            if (cn != NULL) {
                put_rr(w, cur, first, cn);
                an++;
                first = false;
                snprintf(cur, sizeof(cur), "%.255s", (const char *) cn->data);
                continue;
            }
            for (size_t i = 0; i < nzone; i++)
                if (strcasecmp(zone[i].name, own) == 0 &&
                    zone[i].type == qtype) {
                    put_rr(w, cur, first, &zone[i]);
                    an++;
                }
            break;
        }
    }
    if (w->full || ((f == F_TC || w->n > UDP_LIMIT) && !tcp)) {
        /* Truncated: the question alone, TC set. */
        w->full = false;
        w->n = qend;
        w->b[2] |= 0x02;
        an = 0;
    }
    w->b[3] = (uint8_t) (0x80 | rcode);
    w->b[6] = (uint8_t) (an >> 8);
    w->b[7] = (uint8_t) an;
    return true;
}

/* ---- the wrapped socket calls ---- */

static struct fake *fake_of(int fd)
{
    if (!fakes_init || fd < 0)
        return NULL;
    for (int i = 0; i < FAKE_MAX; i++)
        if (fakes[i].fd == fd)
            return &fakes[i];
    return NULL;
}

static void fake_drop(struct fake *f)
{
    for (int i = 0; i < 2; i++)
        free(f->out[i]);
    memset(f, 0, sizeof(*f));
    f->fd = -1;
}

static int fake_socket(void *arg, int domain, int type, int protocol)
{
    int fd;

    (void) arg;
    (void) protocol;
    if (domain != AF_INET && domain != AF_INET6) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    if (!fakes_init) {
        for (int i = 0; i < FAKE_MAX; i++)
            fakes[i].fd = -1;
        fakes_init = true;
    }
    if (devnull < 0 && (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
        return -1;
    for (int i = 0; i < FAKE_MAX; i++)
        if (fakes[i].fd < 0) {
            if ((fd = fcntl(devnull, F_DUPFD_CLOEXEC, 0)) < 0)
                return -1;
            fakes[i].fd = fd;
            fakes[i].stream = (type & 0xf) == SOCK_STREAM;
            return fd;
        }
    errno = EMFILE;
    return -1;
}

/* bind, connect - every address is the one server */
static int fake_bind(void *arg, int fd, const struct sockaddr *sa,
                     socklen_t len)
{
    (void) arg;
    (void) sa;
    (void) len;
    return fake_of(fd) ? 0 : (errno = EBADF, -1);
}

static void queue(struct fake *f, const struct wire *w, bool prefix)
{
    uint8_t *b;

    if (f->nout == 2 || (b = malloc(w->n + 2)) == NULL)
        return;
    if (prefix) {
        b[0] = (uint8_t) (w->n >> 8);
        b[1] = (uint8_t) w->n;
    }
    memcpy(b + (prefix ? 2 : 0), w->b, w->n);
    f->out[f->nout] = b;
    f->outlen[f->nout++] = w->n + (prefix ? 2 : 0);
}

static ssize_t fake_send(void *arg, int fd, const void *buf, size_t len,
                         int flags)
{
    static struct wire w, bad;
    struct fake *f = fake_of(fd);
    bool badid;

    (void) arg;
    (void) flags;
    if (f == NULL) {
        errno = EBADF;
        return -1;
    }
    if (!f->stream) {
        if (answer(buf, len, &w, false, &badid)) {
            if (badid) {
                bad = w;
                bad.b[0] ^= 0x5a;
                queue(f, &bad, false);
            }
            queue(f, &w, false);
        }
        return (ssize_t) len;
    }
    if (f->inlen + len > sizeof(f->in)) {
        errno = EPIPE;
        return -1;
    }
    memcpy(f->in + f->inlen, buf, len);
    f->inlen += len;
    if (f->inlen >= 2 && f->inlen == 2 + (((size_t) f->in[0] << 8) |
                                          f->in[1]) &&
        answer(f->in + 2, f->inlen - 2, &w, true, &badid))
        queue(f, &w, true);
    return (ssize_t) len;
}

static ssize_t fake_recv(void *arg, int fd, void *buf, size_t len,
                         int flags)
{
    struct fake *f = fake_of(fd);
    size_t n;

    (void) arg;
    (void) flags;
    if (f == NULL) {
        errno = EBADF;
        return -1;
    }
    if (f->stream) {
        if (f->nout == 0 || f->outoff == f->outlen[0])
            return 0;           /* the server closed */
        n = f->outlen[0] - f->outoff;
        if (n > len)
            n = len;
        memcpy(buf, f->out[0] + f->outoff, n);
        f->outoff += n;
        return (ssize_t) n;
    }
    if (f->outoff == (size_t) f->nout) {
        errno = ECONNREFUSED;   /* no reply coming: fail the try now */
        return -1;
    }
    n = f->outlen[f->outoff];
    if (n > len)
        n = len;
    memcpy(buf, f->out[f->outoff++], n);
    return (ssize_t) n;
}

static int fake_close(void *arg, int fd)
{
    struct fake *f = fake_of(fd);

    (void) arg;
    if (f != NULL)
        fake_drop(f);
    return close(fd);
}

const struct sg_dns_ops fakedns_ops = {
    .socket = fake_socket, .bind = fake_bind, .connect = fake_bind,
    .send = fake_send, .recv = fake_recv, .close = fake_close, .arg = NULL,
};
