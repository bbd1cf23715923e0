/*
 * fuzz_engine.c - the engine of the session harnesses (fuzz_engine.h)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fakedns.h"
#include "fuzz_engine.h"

sg_time_t fuzz_now;

static char dir[64];
static char path[128];
static struct sg_log quiet_log;

void fuzz_clean(const char *what, const char *s)
{
    static const char control[] =
        "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
        "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f"
        "\x7f";

    if (s[strcspn(s, control)] != '\0') {
        fprintf(stderr, "fuzz: control character in %s: %s\n", what, s);
        abort();
    }
}

/* sink - every line one line: a hostile value must never forge one */
static void sink(void *arg, enum sg_severity sev, const char *line)
{
    (void) arg;
    (void) sev;
    if (strlen(line) >= SG_LOG_LINE_MAX) {
        fprintf(stderr, "fuzz: log line too long\n");
        abort();
    }
    fuzz_clean("a log line", line);
}

static sg_time_t clock_fn(void *arg)
{
    (void) arg;
    return fuzz_now;
}

static void remove_db(const char *db)
{
    static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
    char f[160];

    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        snprintf(f, sizeof(f), "%s%s", db, suffix[i]);
        unlink(f);
    }
}

/* cleanup - at exit, also when libFuzzer stops in the middle of an input */
static void cleanup(void)
{
    if (dir[0] == '\0')
        return;
    remove_db(path);
    rmdir(dir);
    dir[0] = '\0';
}

static struct sg_engine *open_at(const char *db)
{
    struct sg_engine_opts o = { 0 };
    struct sg_engine *eng;
    struct sg_err err;

    quiet_log.sink = sink;
    atomic_store(&quiet_log.max_severity, SG_SEV_DEBUG);
    fuzz_now = 1700000000;
    o.db_path = db;
    o.env.log = &quiet_log;
    o.env.now = clock_fn;
    o.env.dns = &fakedns_ops;   /* DNS from memory (fakedns.h) */
    o.dns_servers = "192.0.2.53:53";
    if (sg_engine_open(&o, &eng, &err) != SG_OK) {
        fprintf(stderr, "fuzz: engine: %s\n", err.msg);
        abort();
    }
    atomic_store(&quiet_log.max_severity, SG_SEV_DEBUG);
    return eng;
}

/*
 * One engine per process, brought back to the state of a new one after
 * each input: opening one costs milliseconds (the schema check and the
 * catalogue sync), a session microseconds. What an input can change is
 * put back: the memory state (concurrency, windows, bans), the rows the
 * daemon writes, the settings, the resolver with its cache, the clock.
 */
static struct sg_engine *shared;
static sqlite3 *side;           /* the harness's own connection */
static char **snap_name, **snap_value;  /* the settings as first opened */
static size_t nsnap;
static bool *touched;           /* ... and which were written this input */
static bool dirty;              /* a setting was written this input */
static bool pending;            /* ... and not loaded yet */
static bool in_txn;             /* the settings' transaction is open */

/* The harness's statements, prepared once: a parse costs more than a run. */
enum { BEGIN, DEL_BANS, DEL_RATES, DEL_DOMAINS, COMMIT, RESTORE, SET,
       VERSION, NSQL };
static const char *const sql_text[NSQL] = {
    [BEGIN] = "BEGIN IMMEDIATE",
    [DEL_BANS] = "DELETE FROM bans",
    [DEL_RATES] = "DELETE FROM rate_windows",
    [DEL_DOMAINS] = "DELETE FROM domain_ip",
    [COMMIT] = "COMMIT",
    [RESTORE] = ("UPDATE settings SET value = ?1 WHERE name = ?2 AND "
                 "value IS NOT ?1"),
    [SET] = "UPDATE settings SET value = ?1 WHERE name = ?2",
    [VERSION] = "PRAGMA data_version",
};
static sqlite3_stmt *sql_stmt[NSQL];
static int64_t data_version;    /* the database as our last reset left it */

static sqlite3_stmt *side_stmt(int id)
{
    if (sql_stmt[id] == NULL
        && sqlite3_prepare_v3(side, sql_text[id], -1,
                              SQLITE_PREPARE_PERSISTENT, &sql_stmt[id],
                              NULL) != SQLITE_OK) {
        fprintf(stderr, "fuzz: %s: %s\n", sql_text[id], sqlite3_errmsg(side));
        abort();
    }
    return sql_stmt[id];
}

static void side_exec(int id)
{
    sqlite3_stmt *st = side_stmt(id);

    if (sqlite3_step(st) != SQLITE_DONE) {
        fprintf(stderr, "fuzz: %s: %s\n", sql_text[id], sqlite3_errmsg(side));
        abort();
    }
    sqlite3_reset(st);
}

/* version - PRAGMA data_version: it moves when another connection (the
 * engine's) commits a change */
static int64_t version(void)
{
    sqlite3_stmt *st = side_stmt(VERSION);
    int64_t v = -1;

    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return v;
}

/* dns_used - did the engine's resolver get a question since it was made?
 * A resolver that was never asked has nothing cached to forget. */
static bool dns_used(struct sg_engine *eng)
{
    struct sg_dns *dns = sg_engine_dns(eng);
    struct sg_dns_stats st = { 0 };

    if (dns != NULL) {
        sg_dns_get_stats(dns, &st);
        sg_dns_free(dns);
    }
    return dns == NULL || st.queries != 0;
}

static void snapshot(void)
{
    sqlite3_stmt *st;

    if (sqlite3_open(path, &side) != SQLITE_OK) {
        fprintf(stderr, "fuzz: %s: %s\n", path, sqlite3_errmsg(side));
        abort();
    }
    sqlite3_busy_timeout(side, 2000);
    if (sqlite3_prepare_v2(side, "SELECT name, value FROM settings", -1, &st,
                           NULL) != SQLITE_OK)
        abort();
    while (sqlite3_step(st) == SQLITE_ROW) {
        snap_name = realloc(snap_name, (nsnap + 1) * sizeof(*snap_name));
        snap_value = realloc(snap_value, (nsnap + 1) * sizeof(*snap_value));
        if (snap_name == NULL || snap_value == NULL)
            abort();
        snap_name[nsnap] = strdup((const char *) sqlite3_column_text(st, 0));
        snap_value[nsnap] = strdup((const char *) sqlite3_column_text(st, 1));
        nsnap++;
    }
    sqlite3_finalize(st);
    if ((touched = calloc(nsnap ? nsnap : 1, sizeof(*touched))) == NULL)
        abort();
    data_version = version();
}

static void restore_settings(void)
{
    sqlite3_stmt *st = side_stmt(RESTORE);

    /* Only those written: one statement per setting costs more than a
     * short input. */
    for (size_t i = 0; i < nsnap; i++) {
        if (!touched[i])
            continue;
        touched[i] = false;
        sqlite3_bind_text(st, 1, snap_value[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, snap_name[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) {
            fprintf(stderr, "fuzz: restore %s: %s\n", snap_name[i],
                    sqlite3_errmsg(side));
            abort();
        }
        sqlite3_reset(st);
    }
    sqlite3_clear_bindings(st);
}

static void commit_settings(void)
{
    if (in_txn)
        side_exec(COMMIT);
    in_txn = false;
}

static void reset(struct sg_engine *eng)
{
    bool was_dirty;

    sg_state_free(eng->state);
    if ((eng->state = sg_state_new()) == NULL)
        abort();
    /* A new state has no bounds: the engine's come from its settings
     * (a reload sets them again below when the input changed those). */
    {
        struct sg_config *cfg = sg_confhold_get(&eng->conf);

        sg_state_set_limits(eng->state,
                            (size_t) sg_config_get(cfg,
                                                   SG_SET_state_windows_max),
                            (size_t) sg_config_get(cfg,
                                                   SG_SET_state_domains_max));
        sg_config_unref(cfg);
    }
    /*
     * The rows and settings go back only when the input changed the file:
     * a write of ours makes the engine's connection drop its page cache
     * and read the file again at its next statement, which cost more than
     * the whole of a short input.
     */
    commit_settings();
    if (dirty || version() != data_version) {
        side_exec(BEGIN);
        side_exec(DEL_BANS);
        side_exec(DEL_RATES);
        side_exec(DEL_DOMAINS);
        if (dirty)
            restore_settings();
        side_exec(COMMIT);
        data_version = version();
    }
    was_dirty = dirty;
    dirty = pending = false;
    fuzz_now = 1700000000;
    eng->last_purge = fuzz_now;
    pthread_mutex_lock(&eng->mu);
    eng->db_failures = 0;
    pthread_mutex_unlock(&eng->mu);
    eng->readonly_ticks = 0;
    if (was_dirty) {
        sg_engine_request_reload(eng);
        sg_engine_tick(eng);    /* the settings of a new engine */
    }
    /* Nothing cached from the last input's zone. */
    if (was_dirty || dns_used(eng))
        sg_engine_dns_renew(eng);
    atomic_store(&quiet_log.max_severity, SG_SEV_DEBUG);
}

static void close_shared(void)
{
    if (shared != NULL)
        sg_engine_close(shared, "end of run");
    shared = NULL;
    for (int i = 0; i < NSQL; i++) {
        sqlite3_finalize(sql_stmt[i]);
        sql_stmt[i] = NULL;
    }
    sqlite3_close(side);
    side = NULL;
    cleanup();
}

struct sg_engine *fuzz_engine_new(void)
{
    if (shared != NULL)
        return shared;          /* put back by fuzz_engine_free() */
    if (dir[0] == '\0') {
        const char *tmp = getenv("TMPDIR");

        /* In memory when there is a tmpfs: no disk syncs per input. */
        if (tmp == NULL || *tmp == '\0' || strlen(tmp) > 40)
            tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof(dir), "%s/sg-fuzz.XXXXXX", tmp);
        if (mkdtemp(dir) == NULL) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(close_shared);
    }
    snprintf(path, sizeof(path), "%s/engine.db", dir);
    shared = open_at(path);
    snapshot();
    return shared;
}

bool fuzz_engine_set(struct sg_engine *eng, const char *name,
                     const char *value)
{
    sqlite3_stmt *st = side_stmt(SET);
    bool ok;

    /* A run of settings is one transaction (committed by the apply): a
     * commit each cost more than the sessions between them. A value the
     * schema's triggers refuse aborts its statement, not the rest. */
    if (!in_txn) {
        side_exec(BEGIN);
        in_txn = true;
    }
    sqlite3_bind_text(st, 1, value, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    /* The database's own checks refuse bad values: not an error. */
    ok = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(side) == 1;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    (void) eng;
    if (ok) {
        dirty = pending = true;
        for (size_t i = 0; i < nsnap; i++)
            if (strcmp(snap_name[i], name) == 0)
                touched[i] = true;
    }
    return ok;
}

void fuzz_engine_apply(struct sg_engine *eng)
{
    commit_settings();
    if (!pending)
        return;
    pending = false;
    sg_engine_tick(eng);        /* sees the new policy serial: a reload */
    atomic_store(&quiet_log.max_severity, SG_SEV_DEBUG);
}

/*
 * The reset is at the end of an input, not at the start of the next, so
 * that what an input allocates is freed within it: libFuzzer reruns every
 * input that leaves more mallocs than frees under its leak check.
 */
void fuzz_engine_free(struct sg_engine *eng)
{
    if (eng == shared)
        reset(eng);             /* stays open for the next input */
}
