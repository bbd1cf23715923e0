/*
 * engine.c - store + state + policy snapshot, and the maintenance thread
 */
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "relay.h"

sg_time_t sg_engine_now(const struct sg_engine *eng)
{
    return sg_env_now(&eng->env);
}

void sg_engine_db_result(struct sg_engine *eng, const char *op, bool ok,
                         const struct sg_err *err)
{
    struct sg_args args;
    unsigned failures;

    pthread_mutex_lock(&eng->mu);
    failures = eng->db_failures;
    eng->db_failures = ok ? 0 : failures + 1;
    pthread_mutex_unlock(&eng->mu);
    sg_args_init(&args);
    sg_args_add(&args, "operation", "%s", op);
    if (ok) {
        if (failures == 0)
            return;
        sg_args_add(&args, "failures", "%u", failures);
        sg_log_event(eng->log, SG_EV_DB_RECOVERED, SG_ACT_NONE, NULL, &args);
        return;
    }
    /* First failure of a streak, then one line a minute at one flush/s. */
    if (failures % 60 != 0)
        return;
    sg_args_add(&args, "error", "%s", err ? err->msg : "unknown");
    sg_log_event(eng->log, SG_EV_DB_ERROR, SG_ACT_NONE, NULL, &args);
}

/*
 * dns_configure - a new resolver when the DNS settings changed (the cache
 * starts empty then). Sessions keep the one they started their lookups on.
 */
static void dns_configure(struct sg_engine *eng, const struct sg_config *cfg)
{
    struct sg_dns_opts o = { 0 };
    struct sg_dns *dns, *old;
    struct sg_err err;
    char sig[sizeof(eng->dns_sig)];

    o.servers = eng->dns_servers_opt ? eng->dns_servers_opt
        : sg_config_text(cfg, SG_SET_dns_servers);
    o.timeout_ms = (int) sg_config_get(cfg, SG_SET_dns_timeout);
    o.retries = (int) sg_config_get(cfg, SG_SET_dns_retries);
    o.cache_max = (size_t) sg_config_get(cfg, SG_SET_dns_cache_size);
    o.ttl_min = (uint32_t) sg_config_get(cfg, SG_SET_dns_ttl_min);
    o.ttl_max = (uint32_t) sg_config_get(cfg, SG_SET_dns_ttl_max);
    o.neg_ttl_max = (uint32_t) sg_config_get(cfg, SG_SET_dns_neg_ttl_max);
    o.clock = eng->env.now_ms;
    o.clock_arg = eng->env.arg;
    o.ops = eng->env.dns;
    snprintf(sig, sizeof(sig), "%s|%d|%d|%zu|%u|%u|%u", o.servers,
             o.timeout_ms, o.retries, o.cache_max, o.ttl_min, o.ttl_max,
             o.neg_ttl_max);
    pthread_mutex_lock(&eng->dns_mu);
    if (eng->dns != NULL && strcmp(sig, eng->dns_sig) == 0) {
        pthread_mutex_unlock(&eng->dns_mu);
        return;
    }
    pthread_mutex_unlock(&eng->dns_mu);
    if (sg_dns_new(&o, &dns, &err) != SG_OK) {
        struct sg_args args;

        sg_args_init(&args);
        sg_args_add(&args, "setting", "dnsServers");
        sg_args_add(&args, "value", "%s", o.servers);
        sg_args_add(&args, "reason", "%s", err.msg);
        sg_args_add(&args, "kept", "the previous resolver");
        sg_log_event(eng->log, SG_EV_SETTING_INVALID, SG_ACT_NONE, NULL,
                     &args);
        return;
    }
    pthread_mutex_lock(&eng->dns_mu);
    old = eng->dns;
    eng->dns = dns;
    sg_strlcpy(eng->dns_sig, sig, sizeof(eng->dns_sig));
    pthread_mutex_unlock(&eng->dns_mu);
    sg_dns_free(old);
}

void sg_engine_dns_renew(struct sg_engine *eng)
{
    struct sg_config *cfg = sg_confhold_get(&eng->conf);

    pthread_mutex_lock(&eng->dns_mu);
    eng->dns_sig[0] = '\0';      /* no signature matches: a new one */
    pthread_mutex_unlock(&eng->dns_mu);
    dns_configure(eng, cfg);
    sg_config_unref(cfg);
}

struct sg_dns *sg_engine_dns(struct sg_engine *eng)
{
    struct sg_dns *dns;

    pthread_mutex_lock(&eng->dns_mu);
    dns = eng->dns ? sg_dns_ref(eng->dns) : NULL;
    pthread_mutex_unlock(&eng->dns_mu);
    return dns;
}

/* reload - build and publish a new snapshot from the database */
static int reload(struct sg_engine *eng, const char *trigger)
{
    struct sg_config *prev = sg_confhold_get(&eng->conf);
    struct sg_config *cfg;
    struct sg_err err;
    struct sg_args args;
    int rc = sg_store_load_config(eng->store, prev, &cfg, &err);

    sg_config_unref(prev);
    if (rc != SG_OK) {
        sg_engine_db_result(eng, "reload policy", false, &err);
        return rc;
    }
    atomic_store(&eng->log->max_severity,
                 (int) sg_config_get(cfg, SG_SET_log_level));
    sg_args_init(&args);
    sg_args_add(&args, "trigger", "%s", trigger);
    sg_args_add(&args, "settings", "%d", SG_SET_COUNT);
    sg_args_add(&args, "entries", "%zu", cfg->entries);
    sg_log_event(eng->log, SG_EV_POLICY_RELOADED, SG_ACT_NONE, NULL, &args);
    sg_relay_lint(cfg, eng->log);
    sg_state_set_limits(eng->state,
                        (size_t) sg_config_get(cfg, SG_SET_state_windows_max),
                        (size_t) sg_config_get(cfg, SG_SET_state_domains_max));
    dns_configure(eng, cfg);
    sg_confhold_set(&eng->conf, cfg);
    return SG_OK;
}

/* engine_free - release everything; the thread must not be running */
static void engine_free(struct sg_engine *eng)
{
    sg_store_close(eng->store);
    sg_state_free(eng->state);
    sg_confhold_destroy(&eng->conf);
    sg_dns_free(eng->dns);
    free(eng->dns_servers_opt);
    pthread_mutex_destroy(&eng->dns_mu);
    pthread_cond_destroy(&eng->cv);
    pthread_mutex_destroy(&eng->mu);
    free(eng);
}

/* engine_open - sg_engine_open(), or with `version` its -n variant */
static int engine_open(const struct sg_engine_opts *opts, int *version,
                       struct sg_engine **out, struct sg_err *err)
{
    struct sg_engine *eng = calloc(1, sizeof(*eng));
    struct sg_config *cfg;
    struct sg_state_stats stats;
    struct sg_args args;
    pthread_condattr_t ca;
    int rc;

    if (eng == NULL || (cfg = sg_config_new()) == NULL) {
        free(eng);
        sg_err_set(err, "out of memory");
        return SG_ENOMEM;
    }
    eng->env = opts->env;
    sg_env_complete(&eng->env);
    eng->log = eng->env.log;
    pthread_mutex_init(&eng->mu, NULL);
    pthread_mutex_init(&eng->dns_mu, NULL);
    if (opts->dns_servers != NULL &&
        (eng->dns_servers_opt = strdup(opts->dns_servers)) == NULL) {
        pthread_mutex_destroy(&eng->dns_mu);
        pthread_mutex_destroy(&eng->mu);
        sg_config_unref(cfg);
        free(eng);
        sg_err_set(err, "out of memory");
        return SG_ENOMEM;
    }
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&eng->cv, &ca);
    pthread_condattr_destroy(&ca);
    sg_confhold_init(&eng->conf, cfg);
    /* Every map of client-chosen keys hashes with this key: without one
     * the daemon does not start (a guessable key would let a client
     * collapse a table into one chain). */
    if (sg_hash_init() < 0) {
        sg_err_set(err, "cannot draw the hash tables' key: getrandom: %s",
                   strerror(errno));
        rc = SG_EINVAL;
        goto fail;
    }
    if ((eng->state = sg_state_new()) == NULL) {
        sg_err_set(err, "out of memory");
        rc = SG_ENOMEM;
        goto fail;
    }
    rc = version != NULL
        ? sg_store_open_check(opts->db_path, eng->log, version, &eng->store,
                              err)
        : sg_store_open(opts->db_path, eng->log, &eng->store, err);
    if (rc != SG_OK)
        goto fail;
    if ((rc = sg_store_serials(eng->store, &eng->policy_serial,
                               &eng->ban_serial, err)) != SG_OK)
        goto fail;
    if ((rc = reload(eng, version != NULL ? "check" : "start")) != SG_OK) {
        sg_err_set(err, "cannot read the policy tables of %s", opts->db_path);
        goto fail;
    }
    cfg = sg_confhold_get(&eng->conf);
    rc = sg_store_load_state(eng->store, eng->state, sg_engine_now(eng),
                             sg_config_get(cfg, SG_SET_ip_duration),
                             sg_config_get(cfg, SG_SET_domain_ip_duration),
                             err);
    sg_config_unref(cfg);
    if (rc != SG_OK)
        goto fail;
    sg_state_stats(eng->state, &stats);
    sg_args_init(&args);
    sg_args_add(&args, "bans", "%zu", stats.bans);
    sg_args_add(&args, "windows", "%zu", stats.windows);
    sg_args_add(&args, "domains", "%zu", stats.domains);
    sg_log_event(eng->log, SG_EV_STATE_RESTORED, SG_ACT_NONE, NULL, &args);
    eng->last_purge = sg_engine_now(eng);
    *out = eng;
    return SG_OK;

fail:
    engine_free(eng);
    return rc;
}

int sg_engine_open(const struct sg_engine_opts *opts, struct sg_engine **out,
                   struct sg_err *err)
{
    return engine_open(opts, NULL, out, err);
}

int sg_engine_open_check(const struct sg_engine_opts *opts, int *version,
                         struct sg_engine **out, struct sg_err *err)
{
    return engine_open(opts, version, out, err);
}

void sg_engine_ban(struct sg_engine *eng, const struct sg_ban *ban)
{
    struct sg_err err;
    uint64_t gen = sg_state_ban_add(eng->state, ban);
    int rc;

    if (gen == 0)
        return;                 /* ENOMEM: enforced nowhere, logged by caller */
    rc = sg_store_write_ban(eng->store, ban, &err);
    if (rc == SG_OK)
        sg_state_ban_persisted(eng->state, ban->kind, ban->key, gen);
    /* On failure the maintenance thread writes it with the next flush. */
    sg_engine_db_result(eng, "write ban", rc == SG_OK, &err);
}

/* flush - write dirty counters and unwritten bans */
static int flush(struct sg_engine *eng)
{
    struct sg_flush_batch b;
    struct sg_err err;
    int rc;

    if ((rc = sg_state_collect(eng->state, &b)) != SG_OK)
        return rc;
    rc = sg_store_flush(eng->store, &b, &err);
    if (rc == SG_OK) {
        for (size_t i = 0; i < b.nbans; i++)
            sg_state_ban_persisted(eng->state, b.bans[i].kind, b.bans[i].key,
                                   b.bans[i].gen);
    } else {
        sg_state_flush_failed(eng->state, &b);
    }
    if (b.nrates || b.ndomains || b.nbans || rc != SG_OK)
        sg_engine_db_result(eng, "flush counters", rc == SG_OK, &err);
    sg_flush_batch_free(&b);
    return rc;
}

static void reload_bans(struct sg_engine *eng)
{
    uint64_t gen = sg_state_ban_gen(eng->state);
    struct sg_ban *rows;
    size_t n;
    struct sg_err err;
    int rc = sg_store_load_bans(eng->store, sg_engine_now(eng), &rows, &n,
                                &err);

    if (rc != SG_OK) {
        sg_engine_db_result(eng, "reload bans", false, &err);
        return;
    }
    sg_state_bans_replace(eng->state, rows, n, gen);
    free(rows);
}

unsigned sg_engine_db_failing(struct sg_engine *eng)
{
    unsigned failures;

    pthread_mutex_lock(&eng->mu);
    failures = eng->db_failures;
    pthread_mutex_unlock(&eng->mu);
    return failures;
}

/*
 * check_file - reopen the database when its file was deleted or replaced,
 * or when writes keep failing (a read-only or full filesystem that was
 * fixed may need a fresh connection); then write everything held in
 * memory into it and load its policies and bans at this tick.
 */
static bool check_file(struct sg_engine *eng)
{
    const char *how = NULL;
    struct sg_state_stats stats;
    struct sg_args args;
    struct sg_err err;
    bool created, changed;
    unsigned failures;

    failures = sg_engine_db_failing(eng);
    changed = sg_store_file_changed(eng->store, &how);
    if (sg_store_readonly(eng->store) && ++eng->readonly_ticks % 10 == 0)
        failures = 10;          /* try read-write again */
    if (!changed && !(failures > 0 && failures % 10 == 0))
        return false;
    if (sg_store_reopen(eng->store, &created, &err) != SG_OK) {
        sg_engine_db_result(eng, "reopen database", false, &err);
        return false;
    }
    if (!sg_store_readonly(eng->store))
        sg_state_mark_all_dirty(eng->state);
    eng->policy_serial = -1;    /* load what this file holds */
    eng->ban_serial = -1;
    if (!changed || strcmp(how, "unavailable") == 0)
        return true;
    sg_state_stats(eng->state, &stats);
    sg_args_init(&args);
    sg_args_add(&args, "database", "%s", sg_store_path(eng->store));
    sg_args_add(&args, "how", "%s", how);
    sg_args_add(&args, "created", "%s", created ? "yes" : "no");
    sg_args_add(&args, "bans", "%zu", stats.bans);
    sg_args_add(&args, "windows", "%zu", stats.windows);
    sg_log_event(eng->log, SG_EV_DB_REPLACED, SG_ACT_NONE, NULL, &args);
    return true;
}

/*
 * report_evictions - one state_evicting line for a map that evicted since
 * its last line: at once when evictions start, then at most once per
 * SG_EVICT_REPORT_SECONDS while they go on, with the count in between.
 */
#define SG_EVICT_REPORT_SECONDS 60

/* report_due - the count went up since r's last line, which is old
 * enough (or there was none): time for the next */
static bool report_due(struct sg_evict_report *r, unsigned long total,
                       sg_time_t now)
{
    if (total < r->seen)
        r->seen = 0;            /* a new resolver counts from zero */
    if (total == r->seen)
        return false;
    return !(r->ever && now >= r->logged
             && now - r->logged < SG_EVICT_REPORT_SECONDS);
}

static void report_done(struct sg_evict_report *r, unsigned long total,
                        sg_time_t now)
{
    r->seen = total;
    r->logged = now;
    r->ever = true;
}

static void report_evictions(struct sg_engine *eng, int i, const char *map,
                             unsigned long total, size_t entries,
                             size_t limit, sg_time_t now)
{
    struct sg_evict_report *r = &eng->evict[i];
    struct sg_args args;

    if (!report_due(r, total, now))
        return;
    sg_args_init(&args);
    sg_args_add(&args, "map", "%s", map);
    sg_args_add(&args, "evicted", "%lu", total - r->seen);
    sg_args_add(&args, "entries", "%zu", entries);
    sg_args_add(&args, "limit", "%zu", limit);
    sg_log_event(eng->log, SG_EV_STATE_EVICTING, SG_ACT_NONE, NULL, &args);
    report_done(r, total, now);
}

/* report_dns_local - queries the resolver could not send for a reason of
 * this host (no random number, no socket): as often as evictions */
static void report_dns_local(struct sg_engine *eng,
                             const struct sg_dns_stats *ds, sg_time_t now)
{
    struct sg_evict_report *r = &eng->dns_local;
    struct sg_args args;

    if (!report_due(r, ds->local_failures, now))
        return;
    sg_args_init(&args);
    sg_args_add(&args, "what", "%s", sg_dns_local_name(ds->local_what));
    sg_args_add(&args, "error", "%s", strerror(ds->local_errno));
    sg_args_add(&args, "tries", "%lu", ds->local_failures - r->seen);
    sg_log_event(eng->log, SG_EV_DNS_LOCAL_ERROR, SG_ACT_NONE, NULL, &args);
    report_done(r, ds->local_failures, now);
}

static void check_evictions(struct sg_engine *eng, sg_time_t now)
{
    struct sg_state_stats st;
    struct sg_dns_stats ds;
    struct sg_dns *dns = sg_engine_dns(eng);
    struct sg_config *cfg = sg_confhold_get(&eng->conf);

    sg_state_stats(eng->state, &st);
    report_evictions(eng, 0, "windows", st.windows_evicted, st.windows,
                     st.windows_max, now);
    report_evictions(eng, 1, "domains", st.domains_evicted, st.domains,
                     st.domains_max, now);
    if (dns != NULL) {
        sg_dns_get_stats(dns, &ds);
        report_evictions(eng, 2, "dns_cache", ds.cache_evictions,
                         ds.cache_entries,
                         (size_t) sg_config_get(cfg, SG_SET_dns_cache_size),
                         now);
        report_dns_local(eng, &ds, now);
        sg_dns_free(dns);
    }
    sg_config_unref(cfg);
}

/*
 * tick - one maintenance pass: notice a deleted or replaced file, flush
 * the counters when `do_flush` (or the file was just reopened, so that
 * what memory holds lands in it now), pick up policy and ban changes,
 * purge when due.
 */
static void tick(struct sg_engine *eng, bool do_flush)
{
    int64_t policy, bans;
    struct sg_err err;
    bool requested;
    struct sg_config *cfg;
    sg_time_t now = sg_engine_now(eng);

    pthread_mutex_lock(&eng->mu);
    requested = eng->reload_requested;
    eng->reload_requested = false;
    pthread_mutex_unlock(&eng->mu);

    if (check_file(eng))
        do_flush = true;
    /* Flush first, so our own writes are in before we look at serials. */
    if (do_flush || requested)
        flush(eng);
    if (sg_store_serials(eng->store, &policy, &bans, &err) != SG_OK) {
        sg_engine_db_result(eng, "poll changes", false, &err);
        policy = eng->policy_serial;
        bans = eng->ban_serial;
    }
    if (requested || policy != eng->policy_serial) {
        if (reload(eng, requested ? "signal" : "database change") == SG_OK)
            eng->policy_serial = policy;
    }
    if (bans != eng->ban_serial) {
        reload_bans(eng);
        eng->ban_serial = bans;
    }
    cfg = sg_confhold_get(&eng->conf);
    if (now - eng->last_purge >= sg_config_get(cfg, SG_SET_purge_interval)
        || now < eng->last_purge) {
        sg_time_t ipw = sg_config_get(cfg, SG_SET_ip_duration);
        sg_time_t dw = sg_config_get(cfg, SG_SET_domain_ip_duration);
        int64_t deleted;
        int rc = sg_store_purge(eng->store, now, ipw, dw, &deleted, &err);

        sg_state_purge(eng->state, now, ipw, dw);
        if (rc != SG_OK)
            sg_engine_db_result(eng, "purge", false, &err);
        eng->last_purge = now;
#ifdef __GLIBC__
        /*
         * Give the free pages of every malloc arena back. libmilter's
         * workers each allocate from an arena of their own, and glibc
         * returns memory to the kernel only from the top of an arena:
         * the holes that sessions and purges leave further down stay
         * resident, a few more with every arena a new worker takes. In
         * 30-minute soaks this held RSS about 1.5 MB lower; the creep it
         * was added for comes and goes (README, Soak).
         */
        malloc_trim(0);
#endif
        /*
         * Our purge moved the ban serial by one per deleted row, and the
         * memory state has already dropped those bans. Skip the reload
         * only if nobody else touched the bans meanwhile: an operator's
         * unban between our serial read and the purge must still reach
         * memory at the next tick.
         */
        if (deleted > 0
            && sg_store_serials(eng->store, &policy, &bans, &err) == SG_OK
            && bans == eng->ban_serial + deleted)
            eng->ban_serial = bans;
    }
    sg_config_unref(cfg);
    check_evictions(eng, now);
}

void sg_engine_tick(struct sg_engine *eng)
{
    tick(eng, true);
}

/*
 * maintenance - the thread: wakes every SG_POLL_SECONDS to look for policy
 * and ban changes (two integers read from the database: cheap), whatever
 * flushInterval says, so that a change written by anyone is in force
 * within 2 seconds; flushes the counters every flushInterval seconds.
 * SIGHUP wakes it at once.
 */
#define SG_POLL_SECONDS 1

static void *maintenance(void *arg)
{
    struct sg_engine *eng = arg;
    struct timespec last_flush, ts;

    clock_gettime(CLOCK_MONOTONIC, &last_flush);
    pthread_mutex_lock(&eng->mu);
    while (!eng->stop) {
        struct sg_config *cfg;
        sg_time_t interval;
        bool do_flush;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += SG_POLL_SECONDS;
        while (!eng->stop && !eng->reload_requested)
            if (pthread_cond_timedwait(&eng->cv, &eng->mu, &ts) == ETIMEDOUT)
                break;
        if (eng->stop)
            break;
        pthread_mutex_unlock(&eng->mu);
        cfg = sg_confhold_get(&eng->conf);
        interval = sg_config_get(cfg, SG_SET_flush_interval);
        sg_config_unref(cfg);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        /* Due when a whole interval has passed, give or take 50 ms. */
        do_flush = (ts.tv_sec - last_flush.tv_sec) * 1000
            + (ts.tv_nsec - last_flush.tv_nsec) / 1000000
            >= interval * 1000 - 50;
        if (do_flush)
            last_flush = ts;
        tick(eng, do_flush);
        pthread_mutex_lock(&eng->mu);
    }
    pthread_mutex_unlock(&eng->mu);
    return NULL;
}

int sg_engine_start(struct sg_engine *eng)
{
    int rc = pthread_create(&eng->thread, NULL, maintenance, eng);

    if (rc != 0)
        return SG_ENOMEM;
    eng->running = true;
    return SG_OK;
}

void sg_engine_request_reload(struct sg_engine *eng)
{
    pthread_mutex_lock(&eng->mu);
    eng->reload_requested = true;
    pthread_cond_signal(&eng->cv);
    pthread_mutex_unlock(&eng->mu);
}

void sg_engine_close(struct sg_engine *eng, const char *reason)
{
    struct sg_args args;

    if (eng == NULL)
        return;
    if (eng->running) {
        pthread_mutex_lock(&eng->mu);
        eng->stop = true;
        pthread_cond_signal(&eng->cv);
        pthread_mutex_unlock(&eng->mu);
        pthread_join(eng->thread, NULL);
    }
    /* Final flush; a busy database gets a few more chances. */
    for (int i = 0; i < 5 && flush(eng) == SG_ERETRY; i++)
        ;
    sg_args_init(&args);
    sg_args_add(&args, "reason", "%s", reason);
    sg_log_event(eng->log, SG_EV_STOPPED, SG_ACT_NONE, NULL, &args);
    engine_free(eng);
}
