/*
 * spfworker.c - an SPF worker process: a sandbox, then one evaluation per
 * request, DNS asked of the parent (see spfpool.h, spfwire.h)
 *
 * The worker is the daemon's own executable, started fresh by the pool.
 * Before it reads a request it closes every descriptor but its socket and
 * the standard three, sets resource limits (no core, no file writes, no
 * new descriptors, bounded address space), can never regain privileges,
 * and on x86_64 and aarch64 installs a seccomp filter: a system call
 * outside a short list (socket reads and writes, memory, time, exiting and
 * signalling itself) kills it. A bug in libspf2 that takes control of the
 * worker finds a process that can only talk to its parent, which checks
 * everything it says. Sanitizer builds skip the address-space limit and
 * the filter: the sanitizers' runtimes need both.
 *
 * Single-threaded, so the answers of the current check can live in a
 * static list freed after each check.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "spfpool.h"
#include "spfwire.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SG_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define SG_SANITIZED 1
#endif
#endif

#define ANSWERS_MAX SG_WIRE_ASKS

static int sock = -1;
static struct sg_dns_answer *answers[ANSWERS_MAX];
static size_t nanswers;
static unsigned char buf[SG_WIRE_MAX];

/* send_all - one packet; a parent that is gone ends the worker */
static void send_packet(const void *p, size_t len)
{
    while (send(sock, p, len, MSG_NOSIGNAL) < 0)
        if (errno != EINTR)
            _exit(0);
}

static ssize_t recv_packet(void)
{
    ssize_t n;

    do
        n = recv(sock, buf, sizeof(buf), 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        _exit(0);               /* the parent closed: we are done */
    return n;
}

/* decode - an ANS packet as an answer of our own (one allocation) */
static struct sg_dns_answer *decode(size_t n)
{
    const struct sg_wire_ans *h = (const void *) buf;
    const struct sg_wire_rr *wr = (const void *) (buf + sizeof(*h));
    const char *text;
    size_t need, tlen = 0;
    struct sg_dns_answer *a;
    char *t;

    if (n < sizeof(*h) || h->nrr > SG_DNS_RR_MAX ||
        n < sizeof(*h) + h->nrr * sizeof(*wr))
        return NULL;
    text = (const char *) (wr + h->nrr);
    for (uint32_t k = 0; k < h->nrr; k++)
        if (wr[k].len != SG_WIRE_NO_TEXT)
            tlen += (size_t) wr[k].len + 1;
    need = sizeof(*h) + h->nrr * sizeof(*wr);
    for (uint32_t k = 0; k < h->nrr; k++)
        if (wr[k].len != SG_WIRE_NO_TEXT)
            need += wr[k].len;
    if (need != n)
        return NULL;
    a = calloc(1, sizeof(*a) + h->nrr * sizeof(a->rr[0]) + tlen);
    if (a == NULL)
        return NULL;
    atomic_init(&a->refcnt, 1);
    a->status = (enum sg_dns_status) h->status;
    a->qtype = h->qtype;
    a->ttl = h->ttl;
    a->truncated_rrs = h->truncated_rrs;
    memcpy(a->name, h->name, sizeof(a->name));
    memcpy(a->canon, h->canon, sizeof(a->canon));
    a->name[sizeof(a->name) - 1] = a->canon[sizeof(a->canon) - 1] = '\0';
    a->nrr = h->nrr;
    a->rr = (struct sg_dns_rr *) (a + 1);
    t = (char *) (a->rr + h->nrr);
    for (uint32_t k = 0; k < h->nrr; k++) {
        struct sg_dns_rr *r = &a->rr[k];

        r->type = wr[k].type;
        r->ttl = wr[k].ttl;
        r->pref = wr[k].pref;
        r->addr = wr[k].addr;
        if (wr[k].len == SG_WIRE_NO_TEXT)
            continue;
        memcpy(t, text, wr[k].len);
        t[wr[k].len] = '\0';
        r->text = t;
        r->len = wr[k].len;
        text += wr[k].len;
        t += wr[k].len + 1;
    }
    return a;
}

/* parent_ask - the asker of a worker: one question to the parent */
static const struct sg_dns_answer *parent_ask(void *arg, const char *name,
                                              uint16_t type, bool *refused)
{
    struct sg_wire_ask q;
    const struct sg_wire_ans *h = (const void *) buf;
    struct sg_dns_answer *a;
    ssize_t n;

    (void) arg;
    *refused = false;
    if (nanswers == ANSWERS_MAX) {
        *refused = true;
        return NULL;
    }
    memset(&q, 0, sizeof(q));
    q.kind = SG_WIRE_ASK;
    q.type = type;
    sg_strlcpy(q.name, name, sizeof(q.name));
    send_packet(&q, sizeof(q));
    n = recv_packet();
    if ((size_t) n < sizeof(*h) || h->kind != SG_WIRE_ANS)
        _exit(3);               /* the parent never does this */
    if (h->result != SG_WIRE_ANSWER) {
        *refused = h->result == SG_WIRE_REFUSED;
        return NULL;
    }
    if ((a = decode((size_t) n)) == NULL)
        return NULL;
    answers[nanswers++] = a;
    return a;
}

static void evaluate(const struct sg_wire_req *r)
{
    static const struct sg_spf_asker asker = { parent_ask, NULL };
    struct sg_wire_done d;

    memset(&d, 0, sizeof(d));
    d.kind = SG_WIRE_DONE;
    sg_spf_eval(&asker, &r->client, r->has_helo ? r->helo : NULL,
                r->has_sender ? &r->sender : NULL, r->receiver, &d.out);
    for (size_t k = 0; k < nanswers; k++)
        free(answers[k]);
    nanswers = 0;
    send_packet(&d, sizeof(d));
}

/* ---- the sandbox ---- */

static int limit(int what, rlim_t n)
{
    struct rlimit rl = { n, n };

    return setrlimit(what, &rl);
}

#if !defined(SG_SANITIZED) && (defined(__x86_64__) || defined(__aarch64__))
#define ALLOW(nr) \
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

static int seccomp_filter(void)
{
    static struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, arch)),
#if defined(__x86_64__)
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
#else
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_AARCH64, 1, 0),
#endif
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, nr)),
        ALLOW(__NR_read), ALLOW(__NR_write), ALLOW(__NR_readv),
        ALLOW(__NR_writev), ALLOW(__NR_recvfrom), ALLOW(__NR_sendto),
        ALLOW(__NR_recvmsg), ALLOW(__NR_sendmsg),
        ALLOW(__NR_brk), ALLOW(__NR_mmap), ALLOW(__NR_munmap),
        ALLOW(__NR_mremap), ALLOW(__NR_mprotect), ALLOW(__NR_madvise),
        ALLOW(__NR_futex), ALLOW(__NR_uname), ALLOW(__NR_getrandom),
        ALLOW(__NR_clock_gettime), ALLOW(__NR_gettimeofday),
#ifdef __NR_time
        ALLOW(__NR_time),
#endif
#ifdef __NR_fstat
        ALLOW(__NR_fstat),
#endif
        ALLOW(__NR_newfstatat),
        ALLOW(__NR_getpid), ALLOW(__NR_gettid), ALLOW(__NR_tgkill),
        ALLOW(__NR_rt_sigprocmask), ALLOW(__NR_rt_sigaction),
        ALLOW(__NR_rt_sigreturn), ALLOW(__NR_restart_syscall),
        ALLOW(__NR_exit), ALLOW(__NR_exit_group),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    };
    struct sock_fprog prog = { (unsigned short) (sizeof(f) / sizeof(f[0])),
                               f };

    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}
#else
static int seccomp_filter(void)
{
    return 0;                   /* an architecture we have no list for */
}
#endif

/* sandbox - what the worker gives up before it reads a request */
static int sandbox(int fd)
{
    if (fd != SG_SPF_WORKER_FD)
        return -1;
#ifdef SYS_close_range
    if (syscall(SYS_close_range, SG_SPF_WORKER_FD + 1, ~0U, 0) != 0)
#endif
        for (int i = SG_SPF_WORKER_FD + 1; i < 1024; i++)
            close(i);
    if (limit(RLIMIT_CORE, 0) != 0 || limit(RLIMIT_FSIZE, 0) != 0 ||
        limit(RLIMIT_NOFILE, SG_SPF_WORKER_FD + 1) != 0 ||
        limit(RLIMIT_NPROC, 0) != 0)
        return -1;
#ifndef SG_SANITIZED
    if (limit(RLIMIT_AS, (rlim_t) 512 << 20) != 0)
        return -1;
#endif
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 ||
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return seccomp_filter();
}

int sg_spf_worker_main(int fd)
{
    struct sg_wire_hello hi = {
        SG_WIRE_HELLO, SG_WIRE_MAGIC, SG_WIRE_VERSION,
        sizeof(struct sg_wire_req), sizeof(struct sg_spf_outcome),
        sizeof(struct sg_wire_ans),
    };

    if (sandbox(fd) != 0)
        return 2;
    sock = fd;
    send_packet(&hi, sizeof(hi));
    for (;;) {
        ssize_t n = recv_packet();
        struct sg_wire_req r;

        if ((size_t) n != sizeof(r) || ((struct sg_wire_req *) buf)->kind
            != SG_WIRE_REQ)
            return 3;
        memcpy(&r, buf, sizeof(r));
        r.helo[sizeof(r.helo) - 1] = r.receiver[sizeof(r.receiver) - 1] = 0;
        evaluate(&r);
    }
}
