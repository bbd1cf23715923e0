/*
 * engine.h - one smtpguard policy engine: store, shared state, published
 * policy snapshot, and the maintenance thread that keeps them in step
 *
 * The maintenance thread wakes every second or when asked, and in this
 * order: writes the dirty counters in one transaction when flushInterval
 * (1 s by default) has passed; reloads the policy when SIGHUP asked for it
 * or the database's policy serial moved; reloads bans when their serial
 * moved (an operator lifted one); purges expired rows now and then. It is the only user of the store's
 * main connection. Workers only touch memory, except to write a new ban
 * through at once (pooled connection, bounded busy wait).
 *
 * Thread-safety: all functions may be called from any thread, except
 * sg_engine_tick(), which belongs to the maintenance thread (or to a test
 * that did not start it).
 */
#ifndef SG_ENGINE_H
#define SG_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "config.h"
#include "dns.h"
#include "env.h"
#include "log.h"
#include "state.h"
#include "store.h"

struct sg_spf_pool;

struct sg_engine_opts {
    const char *db_path;
    /* Clocks, host name, the resolver's sockets (NULL members: the
     * machine's) and the log, whose max_severity follows logLevel. */
    struct sg_env env;
    const char *dns_servers;    /* NULL: the dnsServers setting */
};

struct sg_engine {
    struct sg_env env;          /* completed: no NULL function */
    struct sg_log *log;         /* env.log */
    struct sg_store *store;
    struct sg_state *state;
    struct sg_confhold conf;
    atomic_ulong session_seq;

    pthread_mutex_t dns_mu;     /* guards dns and dns_sig */
    struct sg_dns *dns;         /* the resolver and cache of every check */
    char dns_sig[512];          /* the settings it was made with */
    char *dns_servers_opt;      /* --dns-servers, wins over the setting */
    struct sg_spf_pool *spf_pool; /* NULL: SPF in this process; the
                                   * daemon sets it before sessions run */

    pthread_mutex_t mu;         /* guards the fields below */
    pthread_cond_t cv;
    pthread_t thread;
    bool running;
    bool stop;
    bool reload_requested;
    int64_t policy_serial;
    int64_t ban_serial;
    sg_time_t last_purge;
    unsigned db_failures;       /* consecutive failed writes */
    unsigned readonly_ticks;    /* maintenance thread only */
    /* state_evicting reports per bounded map (maintenance thread only):
     * windows, domains, dns_cache */
    struct sg_evict_report {
        unsigned long seen;     /* evictions counted at the last line */
        sg_time_t logged;       /* when it was logged */
        bool ever;
    } evict[3];
    struct sg_evict_report dns_local;   /* the resolver's local failures */
};

int sg_engine_open(const struct sg_engine_opts *opts, struct sg_engine **out,
                   struct sg_err *err);
/*
 * For -n: open as sg_engine_open() does, but on sg_store_open_check()'s
 * read-only copy: settings and lists are validated (and refused ones
 * logged) as at start, the file is never changed. *version: the file's
 * schema version. Close with sg_engine_close() (nothing is written).
 */
int sg_engine_open_check(const struct sg_engine_opts *opts, int *version,
                         struct sg_engine **out, struct sg_err *err);
int sg_engine_start(struct sg_engine *eng);
/* Ask for a reload (SIGHUP); async-signal-unsafe, call from a thread. */
void sg_engine_request_reload(struct sg_engine *eng);
/* One maintenance pass; for the maintenance thread and tests. */
void sg_engine_tick(struct sg_engine *eng);
/* Stop the thread, flush everything, close the database. */
void sg_engine_close(struct sg_engine *eng, const char *reason);

sg_time_t sg_engine_now(const struct sg_engine *eng);
/* The current resolver, referenced: release with sg_dns_free(). */
struct sg_dns *sg_engine_dns(struct sg_engine *eng);
/* A new resolver on the settings in force, its cache empty; sessions
 * holding the old one finish on it. */
void sg_engine_dns_renew(struct sg_engine *eng);
/* Consecutive failed database writes; 0 when the last one worked. */
unsigned sg_engine_db_failing(struct sg_engine *eng);
/* Record a ban in memory and write it through to the database. */
void sg_engine_ban(struct sg_engine *eng, const struct sg_ban *ban);
/* Log a failed (ok=false) or successful database operation. */
void sg_engine_db_result(struct sg_engine *eng, const char *op, bool ok,
                         const struct sg_err *err);

#endif /* SG_ENGINE_H */
