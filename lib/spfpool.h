/*
 * spfpool.h - SPF evaluations contained in a pool of worker processes
 *
 * libspf2 is unmaintained and has had several memory-safety bugs
 * (spfrecord.h lists them); our record checks keep the known ones out, and
 * the pool makes the next one cost one check instead of the daemon. Each
 * evaluation (sg_spf_eval: libspf2 and our checks) runs in a worker
 * process of its own executable, started with SG_SPF_WORKER_ARG: a fresh
 * exec, so a worker shares no address-space layout and no stack canary
 * with the daemon (a crash is no oracle for them), holds no database,
 * socket or log descriptor, runs under resource limits and, where the
 * architecture is known, a seccomp filter that allows little beyond
 * reading and writing its socket and managing memory (spfworker.c).
 *
 * DNS stays in the daemon: a worker asks its parent, which answers through
 * the session's batch of the shared resolver (cache, deadline and lookup
 * budget as in-process), one question at a time. The parent trusts nothing
 * a worker says: questions are checked (type, name) and counted, the
 * outcome's strings are terminated and its values range-checked.
 *
 * A worker that dies, overruns the check's deadline (plus a grace for its
 * own CPU time) or breaks the protocol is killed and reaped; the check is
 * a temperror with out->fault set, which the caller logs (spf_worker_lost)
 * and answers per spfTemperrorAction. Workers are started on demand up to
 * the pool's size (a few at once at start), again after a death with a
 * backoff that doubles while deaths follow each other, so a record that
 * kills every worker cannot make the daemon fork in a loop. A domain
 * whose checks killed workers twice within ten minutes is quarantined for
 * ten minutes: its checks are temperrors without evaluation
 * (SG_SPF_FAULT_QUARANTINED), so an attacker cannot burn the pool.
 *
 * Thread-safety: every function may be called from any thread; a check
 * holds one worker for its duration and no lock while it waits.
 */
#ifndef SG_SPFPOOL_H
#define SG_SPFPOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "dns.h"
#include "spf.h"

/* argv[1] of a worker: its executable's main() hands fd 3 to
 * sg_spf_worker_main() when it sees it. */
#define SG_SPF_WORKER_ARG "--sg-spf-worker"
#define SG_SPF_WORKER_FD  3

#define SG_SPF_POOL_MAX   64    /* workers at most */

struct sg_spf_pool_opts {
    const char *exe;            /* NULL: this process's own executable */
    unsigned workers;           /* at most this many (1..SG_SPF_POOL_MAX) */
    unsigned prestart;          /* started at once (<= workers) */
    unsigned grace_ms;          /* CPU time past the deadline; 0: 500 */
    bool stderr_null;           /* workers' stderr on /dev/null (a daemon
                                 * detached from its terminal: a worker
                                 * must not hold the starter's pipes) */
};

struct sg_spf_pool;

/*
 * Start a pool: prestart workers are spawned and must say hello. Returns
 * SG_OK, or SG_EINVAL / SG_ENOMEM with err set (a worker that cannot be
 * started at all: the executable, the sandbox).
 */
int sg_spf_pool_new(const struct sg_spf_pool_opts *opts,
                    struct sg_spf_pool **out, struct sg_err *err);
/* Stop every worker (they are idle: call when no check runs). */
void sg_spf_pool_free(struct sg_spf_pool *pool);

/*
 * sg_spf_check() in a worker: the same arguments and outcome. pool NULL:
 * evaluated in this process (tests, fuzzing, -w 0).
 */
void sg_spf_pool_check(struct sg_spf_pool *pool, struct sg_dns *dns,
                       int64_t deadline, const struct sg_addr *client,
                       const char *helo, const struct sg_mailaddr *sender,
                       const char *receiver, struct sg_spf_outcome *out);

struct sg_spf_pool_stats {
    unsigned workers, busy;     /* alive now, of which checking */
    unsigned long checks, lost, spawned, quarantined;
};
void sg_spf_pool_stats(struct sg_spf_pool *pool,
                       struct sg_spf_pool_stats *st);
/* The live workers' pids (for tests and operators); returns how many. */
unsigned sg_spf_pool_pids(struct sg_spf_pool *pool, pid_t *pids,
                          unsigned max);

/*
 * The worker's side, for the main() of every executable the pool may
 * start: sandbox itself, say hello on fd, then evaluate what it is sent
 * until the parent closes the socket. Returns the exit status.
 */
int sg_spf_worker_main(int fd);

#endif /* SG_SPFPOOL_H */
