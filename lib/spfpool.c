/*
 * spfpool.c - the daemon's side of the SPF worker pool (see spfpool.h)
 *
 * Slots: a worker is idle, busy (one check owns it and talks to it without
 * the lock) or being started. The lock guards the slots, the quarantine
 * list and the spawn backoff, and is never held across a spawn, a socket
 * read or a DNS wait.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "spfpool.h"
#include "spfwire.h"

extern char **environ;

#define HELLO_MS        5000    /* a new worker's time to say hello */
#define BACKOFF_MIN_MS  100
#define BACKOFF_MAX_MS  30000
#define QUAR_MAX        64      /* domains remembered */
#define QUAR_KILLS      2       /* lost checks within QUAR_WINDOW_MS */
#define QUAR_WINDOW_MS  600000
#define QUAR_MS         600000

enum slot_state { SLOT_EMPTY, SLOT_STARTING, SLOT_IDLE, SLOT_BUSY };

struct slot {
    enum slot_state state;
    pid_t pid;
    int fd;
};

struct quar {
    char domain[SG_DNS_NAME_MAX];
    unsigned lost;
    int64_t first_ms, until_ms;
};

struct sg_spf_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* a slot became idle or empty */
    char *exe;
    unsigned max, grace_ms;
    bool stderr_null;           /* workers' stderr is /dev/null too */
    struct slot slot[SG_SPF_POOL_MAX];
    unsigned streak;            /* deaths or failed starts in a row */
    int64_t next_spawn_ms;
    char spawn_error[96];
    struct quar quar[QUAR_MAX];
    unsigned long checks, lost, spawned, quarantined;
};

/* mono_ms - the pool's clock (CLOCK_MONOTONIC, the condition's too) */
static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_reason(struct sg_spf_outcome *out, enum sg_spf_fault f,
                       const char *why)
{
    out->result = SG_SPF_TEMPERROR;
    out->fault = f;
    sg_strlcpy(out->fault_reason, why, sizeof(out->fault_reason));
    snprintf(out->reason, sizeof(out->reason), "SPF worker: %s", why);
}

/* ---- starting and stopping workers ---- */

/* hello - a new worker's first packet, checked */
static bool hello(int fd, char *why, size_t size)
{
    struct pollfd pfd = { fd, POLLIN, 0 };
    struct sg_wire_hello h;
    ssize_t n;

    if (poll(&pfd, 1, HELLO_MS) != 1) {
        snprintf(why, size, "no hello within %d ms", HELLO_MS);
        return false;
    }
    n = recv(fd, &h, sizeof(h), MSG_DONTWAIT);
    if (n != (ssize_t) sizeof(h) || h.kind != SG_WIRE_HELLO ||
        h.magic != SG_WIRE_MAGIC || h.version != SG_WIRE_VERSION ||
        h.req_size != sizeof(struct sg_wire_req) ||
        h.outcome_size != sizeof(struct sg_spf_outcome) ||
        h.answer_size != sizeof(struct sg_wire_ans)) {
        snprintf(why, size, n == 0 ? "exited before its hello"
                 : "its hello does not match this daemon");
        return false;
    }
    return true;
}

static void reap(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            continue;
    }
}

/* spawn - start one worker: the executable again, its socket on fd 3 */
static bool spawn(const struct sg_spf_pool *p, struct slot *s, char *why,
                  size_t size)
{
    const char *exe = p->exe;
    char *argv[] = { (char *) "smtpguard-spf", (char *) SG_SPF_WORKER_ARG,
                     NULL };
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    int sv[2], child, rc;
    pid_t pid = 0;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        snprintf(why, size, "socketpair: %s", strerror(errno));
        return false;
    }
    child = sv[1];
    if (child == SG_SPF_WORKER_FD) {    /* dup2 to itself keeps CLOEXEC */
        child = fcntl(sv[1], F_DUPFD_CLOEXEC, SG_SPF_WORKER_FD + 1);
        close(sv[1]);
        sv[1] = child;
    }
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (p->stderr_null)
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, child, SG_SPF_WORKER_FD);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
                             POSIX_SPAWN_SETSIGDEF);
    rc = child < 0 ? errno : posix_spawn(&pid, exe, &fa, &attr, argv,
                                         environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (sv[1] >= 0)
        close(sv[1]);
    if (rc != 0) {
        snprintf(why, size, "cannot start %s: %s", exe, strerror(rc));
        close(sv[0]);
        return false;
    }
    if (!hello(sv[0], why, size)) {
        close(sv[0]);
        reap(pid);
        return false;
    }
    s->pid = pid;
    s->fd = sv[0];
    return true;
}

/* backoff - after a death or a failed start: the next start waits */
static void backoff(struct sg_spf_pool *p)
{
    int64_t ms = BACKOFF_MIN_MS;

    for (unsigned i = 0; i < p->streak && ms < BACKOFF_MAX_MS; i++)
        ms *= 2;
    p->streak++;
    p->next_spawn_ms = mono_ms() + (ms < BACKOFF_MAX_MS ? ms
                                    : BACKOFF_MAX_MS);
}

/* acquire - an idle worker, or a new one; -1 when none came in time */
static int acquire(struct sg_spf_pool *p, int64_t until_ms, char *why,
                   size_t size)
{
    pthread_mutex_lock(&p->mu);
    for (;;) {
        int empty = -1;
        int64_t now = mono_ms(), wake;
        struct timespec ts;

        for (unsigned i = 0; i < p->max; i++) {
            if (p->slot[i].state == SLOT_IDLE) {
                p->slot[i].state = SLOT_BUSY;
                pthread_mutex_unlock(&p->mu);
                return (int) i;
            }
            if (p->slot[i].state == SLOT_EMPTY && empty < 0)
                empty = (int) i;
        }
        if (empty >= 0 && now >= p->next_spawn_ms) {
            struct slot *s = &p->slot[empty];
            char err[96];
            bool ok;

            s->state = SLOT_STARTING;
            pthread_mutex_unlock(&p->mu);
            ok = spawn(p, s, err, sizeof(err));
            pthread_mutex_lock(&p->mu);
            if (ok) {
                s->state = SLOT_BUSY;
                p->spawned++;
                pthread_mutex_unlock(&p->mu);
                return empty;
            }
            s->state = SLOT_EMPTY;
            sg_strlcpy(p->spawn_error, err, sizeof(p->spawn_error));
            backoff(p);
            pthread_cond_broadcast(&p->cv);
            continue;
        }
        if (now >= until_ms)
            break;
        wake = empty >= 0 && p->next_spawn_ms < until_ms ? p->next_spawn_ms
            : until_ms;
        ts.tv_sec = (time_t) (wake / 1000);
        ts.tv_nsec = (long) (wake % 1000) * 1000000;
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
    snprintf(why, size, "no worker free in time%s%.56s",
             p->spawn_error[0] ? "; last start: " : "", p->spawn_error);
    pthread_mutex_unlock(&p->mu);
    return -1;
}

/* release - a check is done with its worker; lost: it is gone */
static void release(struct sg_spf_pool *p, int i, bool lost)
{
    struct slot *s = &p->slot[i];

    if (lost)
        close(s->fd);           /* reaped by lose() */
    pthread_mutex_lock(&p->mu);
    if (lost) {
        s->state = SLOT_EMPTY;
        s->pid = 0;
        s->fd = -1;
        p->lost++;
        backoff(p);
    } else {
        s->state = SLOT_IDLE;
        p->streak = 0;
    }
    p->checks++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* ---- quarantine: domains whose checks kill workers ---- */

static struct quar *quar_find(struct sg_spf_pool *p, const char *domain)
{
    for (unsigned i = 0; i < QUAR_MAX; i++)
        if (p->quar[i].domain[0] != '\0' &&
            strcasecmp(p->quar[i].domain, domain) == 0)
            return &p->quar[i];
    return NULL;
}

/* quarantined - ms left of the domain's quarantine, 0 for none */
static int64_t quarantined(struct sg_spf_pool *p, const char *domain)
{
    int64_t now = mono_ms(), left = 0;
    struct quar *q;

    pthread_mutex_lock(&p->mu);
    q = quar_find(p, domain);
    if (q != NULL && q->until_ms > now)
        left = q->until_ms - now;
    pthread_mutex_unlock(&p->mu);
    return left;
}

/* quar_note - a check of domain lost its worker; the quarantine's length
 * in seconds when this starts one */
static unsigned quar_note(struct sg_spf_pool *p, const char *domain)
{
    int64_t now = mono_ms();
    unsigned started = 0;
    struct quar *q;

    pthread_mutex_lock(&p->mu);
    q = quar_find(p, domain);
    if (q == NULL) {            /* a free entry, else the oldest */
        q = &p->quar[0];
        for (unsigned i = 0; i < QUAR_MAX; i++) {
            if (p->quar[i].domain[0] == '\0') {
                q = &p->quar[i];
                break;
            }
            if (p->quar[i].first_ms < q->first_ms)
                q = &p->quar[i];
        }
        memset(q, 0, sizeof(*q));
        sg_strlcpy(q->domain, domain, sizeof(q->domain));
    }
    if (q->lost == 0 || now - q->first_ms > QUAR_WINDOW_MS) {
        q->lost = 0;
        q->first_ms = now;
    }
    if (++q->lost >= QUAR_KILLS && q->until_ms <= now) {
        q->until_ms = now + QUAR_MS;
        q->lost = 0;
        p->quarantined++;
        started = QUAR_MS / 1000;
    }
    pthread_mutex_unlock(&p->mu);
    return started;
}

/* ---- one check ---- */

static bool send_packet(int fd, const void *buf, size_t len)
{
    ssize_t n;

    do
        n = send(fd, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t) len;
}

/* encode - an answer as an ANS packet in buf; its length */
static size_t encode(const struct sg_dns_answer *a, unsigned char *buf)
{
    struct sg_wire_ans *h = (void *) buf;
    struct sg_wire_rr *wr = (void *) (buf + sizeof(*h));
    size_t n = a->nrr < SG_DNS_RR_MAX ? a->nrr : SG_DNS_RR_MAX, o, text = 0;

    /* Every record that fits (all of them: an answer is at most 64 KB). */
    for (size_t k = 0; k < n; k++)
        if (a->rr[k].text != NULL) {
            if (sizeof(*h) + (k + 1) * sizeof(*wr) + text + a->rr[k].len >
                SG_WIRE_MAX) {
                n = k;
                break;
            }
            text += a->rr[k].len;
        }
    h->result = SG_WIRE_ANSWER;
    h->status = a->status;
    h->ttl = a->ttl;
    h->qtype = a->qtype;
    h->truncated_rrs = a->truncated_rrs || n < a->nrr;
    h->nrr = (uint32_t) n;
    memcpy(h->name, a->name, sizeof(h->name));
    memcpy(h->canon, a->canon, sizeof(h->canon));
    o = sizeof(*h) + n * sizeof(*wr);
    for (size_t k = 0; k < n; k++) {
        const struct sg_dns_rr *r = &a->rr[k];

        memset(&wr[k], 0, sizeof(wr[k]));
        wr[k].type = r->type;
        wr[k].pref = r->pref;
        wr[k].ttl = r->ttl;
        wr[k].addr = r->addr;
        wr[k].len = r->text ? (uint32_t) r->len : SG_WIRE_NO_TEXT;
        if (r->text != NULL) {
            memcpy(buf + o, r->text, r->len);
            o += r->len;
        }
    }
    return o;
}

/* answer - a worker's question (checked), asked through the batch */
static bool answer(int fd, const struct sg_wire_ask *q,
                   struct sg_dns_batch *batch, int64_t deadline,
                   unsigned char *buf)
{
    struct sg_wire_ans *h = (void *) buf;
    const struct sg_dns_answer *a = NULL;
    int hd = sg_dns_query(batch, q->name, q->type);

    memset(h, 0, sizeof(*h));
    h->kind = SG_WIRE_ANS;
    if (hd >= 0) {
        sg_dns_wait(batch, hd, deadline);
        a = sg_dns_result(batch, hd);
    }
    if (a == NULL) {
        h->result = hd < 0 ? SG_WIRE_REFUSED : SG_WIRE_NO_ANSWER;
        return send_packet(fd, h, sizeof(*h));
    }
    return send_packet(fd, buf, encode(a, buf));
}

static bool ask_ok(const struct sg_wire_ask *q)
{
    size_t n = strnlen(q->name, sizeof(q->name));

    return n > 0 && n <= 253 && (q->type == SG_DNS_T_A ||
                                 q->type == SG_DNS_T_AAAA ||
                                 q->type == SG_DNS_T_MX ||
                                 q->type == SG_DNS_T_PTR ||
                                 q->type == SG_DNS_T_TXT);
}

#define TERMINATE(a) ((a)[sizeof(a) - 1] = '\0')

/* take - a worker's outcome: nothing in it is trusted */
static void take(struct sg_spf_outcome *out, const struct sg_wire_done *d)
{
    *out = d->out;
    if ((unsigned) out->result > SG_SPF_PERMERROR)
        out->result = SG_SPF_TEMPERROR;
    TERMINATE(out->identity);
    TERMINATE(out->domain);
    TERMINATE(out->helo);
    TERMINATE(out->ip);
    TERMINATE(out->reason);
    TERMINATE(out->explanation);
    TERMINATE(out->refused_record);
    TERMINATE(out->refused_domain);
    out->helo_identity = !!out->helo_identity;
    out->record_refused = !!out->record_refused;
    out->fault = SG_SPF_FAULT_NONE;
    out->fault_pid = 0;
    out->fault_reason[0] = '\0';
    out->quarantine_s = 0;
    out->idle_lost_pid = 0;
    out->idle_lost_reason[0] = '\0';
}

/* lose - end a worker that failed a check: reaped, and for one that
 * died of itself, what killed it */
static void lose(pid_t pid, enum sg_spf_fault f, char *why, size_t size)
{
    pid_t r = 0;
    int st = 0;

    /* Its socket closed: it is exiting; a moment to see how. */
    for (int i = 0; f == SG_SPF_FAULT_DIED && i < 200 &&
         (r = waitpid(pid, &st, WNOHANG)) == 0; i++)
        usleep(500);
    if (r != pid) {
        kill(pid, SIGKILL);
        while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
            continue;
    }
    if (f != SG_SPF_FAULT_DIED)
        return;
    if (r == pid && WIFSIGNALED(st))
        snprintf(why, size, "killed by signal %d (SIG%s)", WTERMSIG(st),
                 sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st))
                 : "?");
    else if (r == pid && WIFEXITED(st))
        snprintf(why, size, "exited with status %d", WEXITSTATUS(st));
    else
        snprintf(why, size, "closed its socket");
}

/*
 * idle_alive - an idle worker has nothing to say: a hang-up or anything
 * to read means it is gone (killed from outside while it waited: the OOM
 * killer, an operator), before any check of ours reached it.
 */
static bool idle_alive(const struct slot *s)
{
    struct pollfd pfd = { s->fd, POLLIN, 0 };

    return poll(&pfd, 1, 0) == 0;
}

/*
 * converse - one check with worker s: the request, its questions, its
 * outcome. Returns the fault (NONE: *out is the worker's outcome). The
 * request is sent already (sg_spf_pool_check()).
 */
static enum sg_spf_fault converse(struct sg_spf_pool *p, struct slot *s,
                                  struct sg_dns *dns, int64_t deadline,
                                  struct sg_spf_outcome *out, char *why,
                                  size_t size)
{
    struct sg_dns_batch *batch = sg_dns_batch_new(dns);
    unsigned char *buf = malloc(SG_WIRE_MAX);
    enum sg_spf_fault f = SG_SPF_FAULT_PROTOCOL;
    unsigned asks = 0;

    snprintf(why, size, "out of memory");
    if (batch == NULL || buf == NULL) {
        f = SG_SPF_FAULT_UNAVAILABLE;
        goto done;
    }
    for (;;) {
        int64_t left = deadline + p->grace_ms - sg_dns_clock(dns);
        struct pollfd pfd = { s->fd, POLLIN, 0 };
        ssize_t n;
        int r;

        if (left <= 0 || (r = poll(&pfd, 1, (int) left)) == 0) {
            f = SG_SPF_FAULT_TIMEOUT;
            snprintf(why, size, "overran the check's time by %u ms",
                     p->grace_ms);
            break;
        }
        if (r < 0 && errno == EINTR)
            continue;
        n = recv(s->fd, buf, SG_WIRE_MAX, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            f = SG_SPF_FAULT_DIED;
            break;
        }
        if ((size_t) n == sizeof(struct sg_wire_done) &&
            ((struct sg_wire_done *) buf)->kind == SG_WIRE_DONE) {
            take(out, (struct sg_wire_done *) buf);
            f = SG_SPF_FAULT_NONE;
            break;
        }
        if ((size_t) n != sizeof(struct sg_wire_ask) ||
            ((struct sg_wire_ask *) buf)->kind != SG_WIRE_ASK ||
            !ask_ok((struct sg_wire_ask *) buf) || ++asks > SG_WIRE_ASKS) {
            snprintf(why, size, "broke the protocol (a %zd-byte packet)", n);
            break;
        }
        {
            struct sg_wire_ask q = *(struct sg_wire_ask *) buf;

            if (!answer(s->fd, &q, batch, deadline, buf)) {
                f = SG_SPF_FAULT_DIED;
                break;
            }
        }
    }
done:
    sg_dns_batch_free(batch);
    free(buf);
    return f;
}

/* checked_domain - the domain sg_spf_eval() will check, for quarantine */
static const char *checked_domain(const struct sg_mailaddr *sender,
                                  const char *helo)
{
    if (sender != NULL && !sender->null)
        return sender->domain;
    return helo != NULL ? helo : "";
}

void sg_spf_pool_check(struct sg_spf_pool *p, struct sg_dns *dns,
                       int64_t deadline, const struct sg_addr *client,
                       const char *helo, const struct sg_mailaddr *sender,
                       const char *receiver, struct sg_spf_outcome *out)
{
    const char *domain = checked_domain(sender, helo);
    struct sg_wire_req req;
    enum sg_spf_fault f;
    char why[96], idle_why[96] = "";
    pid_t idle_pid = 0;
    int64_t left;
    int i;

    if (p == NULL) {
        sg_spf_check(dns, deadline, client, helo, sender, receiver, out);
        return;
    }
    memset(out, 0, sizeof(*out));
    sg_addr_format(client, out->ip, sizeof(out->ip));
    sg_strlcpy(out->domain, domain, sizeof(out->domain));
    if (sender != NULL && !sender->null)
        snprintf(out->identity, sizeof(out->identity), "%s@%s",
                 sender->local, sender->domain);
    else
        sg_strlcpy(out->identity, domain, sizeof(out->identity));
    out->helo_identity = sender == NULL || sender->null;
    if (helo != NULL)
        sg_strlcpy(out->helo, helo, sizeof(out->helo));
    if (*domain != '\0' && (left = quarantined(p, domain)) > 0) {
        snprintf(why, sizeof(why), "its records stopped SPF workers; "
                 "not evaluated for %lld more seconds",
                 (long long) (left + 999) / 1000);
        set_reason(out, SG_SPF_FAULT_QUARANTINED, why);
        return;
    }
    memset(&req, 0, sizeof(req));
    req.kind = SG_WIRE_REQ;
    req.client = *client;
    req.has_helo = helo != NULL;
    if (helo != NULL)
        sg_strlcpy(req.helo, helo, sizeof(req.helo));
    req.has_sender = sender != NULL;
    if (sender != NULL)
        req.sender = *sender;
    sg_strlcpy(req.receiver, receiver, sizeof(req.receiver));
    /* A worker that died idle is not this check's loss: it is replaced,
     * and the check goes to the next one (a few times at most). */
    for (int tries = 0;; tries++) {
        left = deadline - sg_dns_clock(dns);
        i = acquire(p, mono_ms() + (left > 0 ? left : 0), why, sizeof(why));
        if (i < 0) {
            set_reason(out, SG_SPF_FAULT_UNAVAILABLE, why);
            return;
        }
        if (idle_alive(&p->slot[i]) &&
            send_packet(p->slot[i].fd, &req, sizeof(req)))
            break;
        idle_pid = p->slot[i].pid;
        lose(idle_pid, SG_SPF_FAULT_DIED, idle_why, sizeof(idle_why));
        release(p, i, true);
        if (tries == 3) {
            set_reason(out, SG_SPF_FAULT_UNAVAILABLE, "workers keep dying "
                       "before any check reaches them");
            break;
        }
    }
    if (out->fault == SG_SPF_FAULT_UNAVAILABLE) {
        out->idle_lost_pid = idle_pid;
        sg_strlcpy(out->idle_lost_reason, idle_why,
                   sizeof(out->idle_lost_reason));
        return;
    }
    f = converse(p, &p->slot[i], dns, deadline, out, why, sizeof(why));
    out->idle_lost_pid = idle_pid;
    sg_strlcpy(out->idle_lost_reason, idle_why,
               sizeof(out->idle_lost_reason));
    if (f == SG_SPF_FAULT_NONE) {
        release(p, i, false);
        return;
    }
    out->fault_pid = p->slot[i].pid;
    lose(p->slot[i].pid, f, why, sizeof(why));
    release(p, i, true);
    set_reason(out, f, why);
    if (*domain != '\0' && f != SG_SPF_FAULT_UNAVAILABLE)
        out->quarantine_s = quar_note(p, domain);
}

/* ---- the pool ---- */

int sg_spf_pool_new(const struct sg_spf_pool_opts *o,
                    struct sg_spf_pool **out, struct sg_err *err)
{
    struct sg_spf_pool *p;
    pthread_condattr_t ca;
    char exe[4096];

    *out = NULL;
    if (o->workers < 1 || o->workers > SG_SPF_POOL_MAX ||
        o->prestart > o->workers) {
        sg_err_set(err, "SPF workers: %u is not in 1..%d", o->workers,
                   SG_SPF_POOL_MAX);
        return SG_EINVAL;
    }
    if (o->exe == NULL) {
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

        if (n <= 0) {
            sg_err_set(err, "SPF workers: cannot find this executable: %s",
                       strerror(errno));
            return SG_EINVAL;
        }
        exe[n] = '\0';
    }
    if ((p = calloc(1, sizeof(*p))) == NULL ||
        (p->exe = strdup(o->exe ? o->exe : exe)) == NULL) {
        free(p);
        sg_err_set(err, "out of memory");
        return SG_ENOMEM;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->max = o->workers;
    p->grace_ms = o->grace_ms ? o->grace_ms : 500;
    p->stderr_null = o->stderr_null;
    for (unsigned i = 0; i < SG_SPF_POOL_MAX; i++)
        p->slot[i].fd = -1;
    for (unsigned i = 0; i < o->prestart; i++) {
        char why[96];

        if (!spawn(p, &p->slot[i], why, sizeof(why))) {
            sg_err_set(err, "SPF worker: %s", why);
            sg_spf_pool_free(p);
            return SG_EINVAL;
        }
        p->slot[i].state = SLOT_IDLE;
        p->spawned++;
    }
    *out = p;
    return SG_OK;
}

void sg_spf_pool_free(struct sg_spf_pool *p)
{
    if (p == NULL)
        return;
    for (unsigned i = 0; i < SG_SPF_POOL_MAX; i++)
        if (p->slot[i].state == SLOT_IDLE || p->slot[i].state == SLOT_BUSY) {
            close(p->slot[i].fd);       /* it exits on EOF */
            reap(p->slot[i].pid);
        }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->exe);
    free(p);
}

void sg_spf_pool_stats(struct sg_spf_pool *p, struct sg_spf_pool_stats *st)
{
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&p->mu);
    for (unsigned i = 0; i < p->max; i++) {
        st->workers += p->slot[i].state >= SLOT_IDLE;
        st->busy += p->slot[i].state == SLOT_BUSY;
    }
    st->checks = p->checks;
    st->lost = p->lost;
    st->spawned = p->spawned;
    st->quarantined = p->quarantined;
    pthread_mutex_unlock(&p->mu);
}

unsigned sg_spf_pool_pids(struct sg_spf_pool *p, pid_t *pids, unsigned max)
{
    unsigned n = 0;

    pthread_mutex_lock(&p->mu);
    for (unsigned i = 0; i < p->max && n < max; i++)
        if (p->slot[i].state >= SLOT_IDLE)
            pids[n++] = p->slot[i].pid;
    pthread_mutex_unlock(&p->mu);
    return n;
}
