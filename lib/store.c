/*
 * store.c - SQLite store: open/create/migrate, policy load, state flush
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "catalogue.h"
#include "store.h"

#define POOL_MAX 8
#define MAIN_BUSY_MS 5000       /* maintenance thread: may wait */
#define POOL_BUSY_MS 250        /* worker threads: bounded wait */

/*
 * The statements the maintenance thread runs every flush, poll and
 * reload, prepared once per main connection instead of parsed each time
 * (the parse cost more than the work). Finalized when db closes.
 */
enum stmt {
    ST_BEGIN, ST_BEGIN_IMMEDIATE, ST_COMMIT, ST_SERIALS,
    ST_FLUSH_RATE, ST_FLUSH_DOMAIN, ST_FLUSH_DOMAIN_DEL, ST_BAN,
    ST_PURGE_BANS, ST_PURGE_RATES, ST_PURGE_DOMAINS,
    ST_SETTINGS, ST_LISTS, ST_DNSBL, ST_OVERRIDES, ST_COUNT
};

struct sg_store {
    sqlite3 *db;                /* maintenance thread only; NULL: closed */
    char *path;
    const struct sg_log *log;
    int version;
    const struct sg_migration *migrations;
    size_t nmigrations;
    int target;
    dev_t dev;                  /* the file we opened, to notice when */
    ino_t ino;                  /* it is deleted or replaced */
    ino_t side_ino[2];          /* its -wal and -shm (0: none yet) */
    bool readonly;              /* main connection opened read-only */
    pthread_mutex_t pool_mu;    /* guards pool, npool, pool_gen */
    sqlite3 *pool[POOL_MAX];
    int npool;
    unsigned pool_gen;          /* bumped by a reopen: old ones are closed */
    sqlite3_stmt *stmt[ST_COUNT];       /* prepared once on db */
};

/* unavailable - the main connection is closed (a reopen failed) */
static int unavailable(const struct sg_store *s, struct sg_err *err)
{
    sg_err_set(err, "database %s is not open (reopening failed; retrying)",
               s->path);
    return SG_EDB;
}

#define NEED_DB(s, err) do {                                            \
        if ((s)->db == NULL)                                            \
            return unavailable((s), (err));                             \
    } while (0)

/* db_status - map an SQLite result code to sg_status, with text */
static int db_status(sqlite3 *db, int rc, const char *what,
                     struct sg_err *err)
{
    int primary = rc & 0xff;

    if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW)
        return SG_OK;
    sg_err_set(err, "%s: %s", what, db ? sqlite3_errmsg(db)
               : sqlite3_errstr(rc));
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
        return SG_ERETRY;
    if (primary == SQLITE_NOMEM)
        return SG_ENOMEM;
    return SG_EDB;
}

static int exec(sqlite3 *db, const char *sql, const char *what,
                struct sg_err *err)
{
    return db_status(db, sqlite3_exec(db, sql, NULL, NULL, NULL), what, err);
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st,
                   struct sg_err *err)
{
    return db_status(db, sqlite3_prepare_v2(db, sql, -1, st, NULL), sql, err);
}

static const char ban_sql[] =
    "INSERT OR REPLACE INTO bans (kind, key, reason, created, expires) "
    "VALUES (?, ?, ?, ?, ?)";

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN",
    [ST_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    /* Two lookups by key, not "key IN (...)", which builds a temporary
     * b-tree (and its page cache) at every poll. */
    [ST_SERIALS] = "SELECT (SELECT value FROM meta WHERE key = "
        "'policy_serial'), (SELECT value FROM meta WHERE key = "
        "'ban_serial')",
    [ST_FLUSH_RATE] = "INSERT INTO rate_windows (key, window_start, "
        "window_seconds, count) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET "
        "window_start = excluded.window_start, "
        "window_seconds = excluded.window_seconds, count = excluded.count",
    [ST_FLUSH_DOMAIN] = "INSERT INTO domain_ip (domain, subnet, last_seen) "
        "VALUES (?, ?, ?) ON CONFLICT (domain, subnet) DO UPDATE SET "
        "last_seen = excluded.last_seen",
    [ST_FLUSH_DOMAIN_DEL] = "DELETE FROM domain_ip WHERE domain = ?",
    [ST_BAN] = ban_sql,
    [ST_PURGE_BANS] = "DELETE FROM bans WHERE expires <= ?",
    [ST_PURGE_RATES] = "DELETE FROM rate_windows WHERE window_start + "
        "(CASE WHEN window_seconds > 0 THEN window_seconds ELSE ?2 END) "
        "<= ?1",
    [ST_PURGE_DOMAINS] = "DELETE FROM domain_ip WHERE last_seen <= ?",
    [ST_SETTINGS] = "SELECT name, value FROM settings",
    [ST_LISTS] = "SELECT 'ip', list, network, 0, NULL "
        "FROM ip_lists UNION ALL SELECT 'ip', 'relayNetworks', "
        "network, 0, NULL FROM relay_networks "
        "UNION ALL SELECT 'domain', list, domain, 0, NULL "
        "FROM domain_lists UNION ALL SELECT 'service', "
        "'service_limits', service, max_sessions, NULL "
        "FROM service_limits UNION ALL SELECT 'relay', "
        "'local_domains', domain, 0, NULL FROM local_domains "
        "UNION ALL SELECT 'relay', 'local_addresses', address, "
        "0, NULL FROM local_addresses UNION ALL SELECT 'relay', "
        "'catchalls', domain, 0, mailbox FROM catchalls "
        "UNION ALL SELECT 'relay', 'mta_mailers', mailer, 0, "
        "class FROM mta_mailers",
    [ST_DNSBL] = "SELECT zone, weight, answers, txt, ipv6 "
        "FROM dnsbl_zones ORDER BY rowid",
    [ST_OVERRIDES] = "SELECT id, severity_override, action_override "
        "FROM catalogue WHERE severity_override IS NOT NULL "
        "OR action_override IS NOT NULL",
};

/* cached - statement id of the main connection, reset and unbound */
static int cached(struct sg_store *s, enum stmt id, sqlite3_stmt **st,
                struct sg_err *err)
{
    if (s->stmt[id] == NULL) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1,
                                    SQLITE_PREPARE_PERSISTENT, &s->stmt[id],
                                    NULL);

        if (rc != SQLITE_OK) {
            s->stmt[id] = NULL;
            *st = NULL;
            return db_status(s->db, rc, stmt_sql[id], err);
        }
    }
    *st = s->stmt[id];
    return SG_OK;
}

/* stmt_done - back to its idle state: no transaction held open by it */
static void stmt_done(sqlite3_stmt *st)
{
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

/* run - step a cached statement without results (BEGIN, COMMIT) */
static int run(struct sg_store *s, enum stmt id, const char *what,
               struct sg_err *err)
{
    sqlite3_stmt *st;
    int rc = cached(s, id, &st, err);

    if (rc == SG_OK) {
        rc = db_status(s->db, sqlite3_step(st), what, err);
        stmt_done(st);
    }
    return rc;
}

/* close_main - finalize the cached statements, close the main connection */
static void close_main(struct sg_store *s)
{
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(s->stmt[i]);
        s->stmt[i] = NULL;
    }
    sqlite3_close(s->db);
    s->db = NULL;
}

/* is_corrupt - the last error of db says the file is damaged */
static bool is_corrupt(sqlite3 *db)
{
    int primary = db ? sqlite3_extended_errcode(db) & 0xff : 0;

    return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

int sg_store_harden(sqlite3 *db, struct sg_err *err)
{
    int defensive = 0, trusted = 1;

    if (sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, &defensive)
        != SQLITE_OK ||
        sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, &trusted)
        != SQLITE_OK || defensive != 1 || trusted != 0) {
        sg_err_set(err, "SQLite %s cannot turn on its defensive mode and "
                   "turn off trusted_schema", sqlite3_libversion());
        return SG_EDB;
    }
    return SG_OK;
}

/*
 * db_open - one connection in multi-thread mode, WAL, busy timeout. Only
 * the main connection creates the file: a pool connection finding it gone
 * fails, and the maintenance thread notices and reopens. *corrupt (when
 * not NULL) tells whether a failure was a damaged file.
 */
static int db_open(const char *path, int busy_ms, bool create, sqlite3 **out,
                   bool *corrupt, struct sg_err *err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE
                             | (create ? SQLITE_OPEN_CREATE : 0)
                             | SQLITE_OPEN_NOMUTEX, NULL);

    if (rc != SQLITE_OK) {
        rc = db_status(db, rc, path, err);
        if (corrupt != NULL)
            *corrupt = is_corrupt(db);
        sqlite3_close(db);
        return rc;
    }
    if ((rc = sg_store_harden(db, err)) != SG_OK) {
        sqlite3_close(db);
        return rc;
    }
    sqlite3_busy_timeout(db, busy_ms);
    sqlite3_extended_result_codes(db, 1);
    rc = exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
              "set journal mode", err);
    if (rc != SG_OK) {
        if (corrupt != NULL)
            *corrupt = is_corrupt(db);
        sqlite3_close(db);
        return rc;
    }
    *out = db;
    return SG_OK;
}

static int user_version(sqlite3 *db, int *version, struct sg_err *err)
{
    sqlite3_stmt *st;
    int rc = prepare(db, "PRAGMA user_version", &st, err);

    if (rc != SG_OK)
        return rc;
    rc = sqlite3_step(st);
    *version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    rc = db_status(db, rc, "read user_version", err);
    sqlite3_finalize(st);
    return rc;
}

static int table_count(sqlite3 *db, int *count, struct sg_err *err)
{
    sqlite3_stmt *st;
    int rc = prepare(db, "SELECT count(*) FROM sqlite_master", &st, err);

    if (rc != SG_OK)
        return rc;
    rc = sqlite3_step(st);
    *count = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    rc = db_status(db, rc, "read sqlite_master", err);
    sqlite3_finalize(st);
    return rc;
}

static int set_user_version(sqlite3 *db, int version, struct sg_err *err)
{
    char sql[64];

    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version);
    return exec(db, sql, "set user_version", err);
}

static void log_kv2(const struct sg_log *log, enum sg_event ev,
                    const char *k1, const char *v1, const char *k2,
                    const char *v2, const char *k3, const char *v3)
{
    struct sg_args args;

    sg_args_init(&args);
    if (k1)
        sg_args_add(&args, k1, "%s", v1);
    if (k2)
        sg_args_add(&args, k2, "%s", v2);
    if (k3)
        sg_args_add(&args, k3, "%s", v3);
    sg_log_event(log, ev, SG_ACT_NONE, NULL, &args);
}

/* choices_text - "rules|allow|deny" for a choice setting, else "" */
static void choices_text(const struct sg_setting_def *d, char *buf,
                         size_t size)
{
    const char *const *names = sg_setting_choices(d);
    size_t n = 0;

    buf[0] = '\0';
    for (int i = 0; names != NULL && names[i] != NULL && n < size; i++)
        n += (size_t) snprintf(buf + n, size - n, "%s%s", i ? "|" : "",
                               names[i]);
}

/* sync_builtin - refresh setting_info, the catalogue and default settings */
static int sync_builtin(sqlite3 *db, struct sg_err *err)
{
    sqlite3_stmt *info = NULL, *set = NULL, *cat = NULL;
    char choices[128];
    int rc;

    rc = exec(db, "DELETE FROM setting_info", "clear setting_info", err);
    if (rc == SG_OK)
        rc = prepare(db, "INSERT INTO setting_info (name, type, "
                     "default_value, min, max, description, choices) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", &info, err);
    if (rc == SG_OK)
        rc = prepare(db, "INSERT OR IGNORE INTO settings (name, value) "
                     "VALUES (?, ?)", &set, err);
    if (rc == SG_OK)
        rc = prepare(db, "INSERT INTO catalogue (id, name, facility, "
                     "severity, action, message) VALUES (?, ?, ?, ?, ?, ?) "
                     "ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
                     "facility = excluded.facility, "
                     "severity = excluded.severity, action = excluded.action, "
                     "message = excluded.message", &cat, err);
    for (int i = 0; rc == SG_OK && i < SG_SET_COUNT; i++) {
        const struct sg_setting_def *d = sg_setting_def((enum sg_setting) i);

        sqlite3_bind_text(info, 1, d->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(info, 2, sg_setting_type_name(d->type), -1,
                          SQLITE_STATIC);
        sqlite3_bind_text(info, 3, d->def, -1, SQLITE_STATIC);
        sqlite3_bind_int64(info, 4, d->min);
        sqlite3_bind_int64(info, 5, d->max);
        sqlite3_bind_text(info, 6, d->doc, -1, SQLITE_STATIC);
        choices_text(d, choices, sizeof(choices));
        if (choices[0] != '\0')
            sqlite3_bind_text(info, 7, choices, -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_null(info, 7);
        rc = db_status(db, sqlite3_step(info), "insert setting_info", err);
        sqlite3_reset(info);
        sqlite3_bind_text(set, 1, d->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(set, 2, d->def, -1, SQLITE_STATIC);
        if (rc == SG_OK)
            rc = db_status(db, sqlite3_step(set), "insert settings", err);
        sqlite3_reset(set);
    }
    for (int i = 0; rc == SG_OK && i < SG_EV_COUNT; i++) {
        const struct sg_event_def *e = sg_event_def((enum sg_event) i);

        sqlite3_bind_text(cat, 1, e->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(cat, 2, e->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(cat, 3, sg_facility_name(e->facility), -1,
                          SQLITE_STATIC);
        sqlite3_bind_text(cat, 4, sg_severity_name(e->severity), -1,
                          SQLITE_STATIC);
        sqlite3_bind_text(cat, 5, sg_action_name(e->action), -1,
                          SQLITE_STATIC);
        sqlite3_bind_text(cat, 6, e->message, -1, SQLITE_STATIC);
        rc = db_status(db, sqlite3_step(cat), "update catalogue", err);
        sqlite3_reset(cat);
    }
    sqlite3_finalize(info);
    sqlite3_finalize(set);
    sqlite3_finalize(cat);
    return rc;
}

/* migrate - bring the schema to `target` inside the open transaction */
static int migrate(struct sg_store *s, const struct sg_migration *m, size_t n,
                   int target, struct sg_err *err)
{
    int version, tables, rc;
    char from[16], to[16];

    if ((rc = user_version(s->db, &version, err)) != SG_OK
        || (rc = table_count(s->db, &tables, err)) != SG_OK)
        return rc;
    if (version == 0 && tables > 0) {
        sg_err_set(err, "%s is an SQLite database but not smtpguard's "
                   "(user_version 0 and %d objects)", s->path, tables);
        return SG_EINVAL;
    }
    if (version > target) {
        sg_err_set(err, "%s has schema version %d, newer than this "
                   "smtpguard understands (%d): refusing to use it",
                   s->path, version, target);
        return SG_EINVAL;
    }
    if (version == 0) {
        rc = exec(s->db, sg_sql_schema, "create schema", err);
        if (rc == SG_OK)
            rc = exec(s->db, sg_sql_defaults, "insert defaults", err);
        if (rc == SG_OK)
            rc = set_user_version(s->db, target, err);
        if (rc == SG_OK) {
            snprintf(to, sizeof(to), "%d", target);
            log_kv2(s->log, SG_EV_DB_CREATED, "database", s->path,
                    "version", to, NULL, NULL);
        }
        s->version = target;
        return rc;
    }
    for (int v = version + 1; v <= target; v++) {
        size_t i;

        for (i = 0; i < n && m[i].version != v; i++)
            ;
        if (i == n) {
            sg_err_set(err, "no migration to schema version %d", v);
            return SG_EINVAL;
        }
        rc = exec(s->db, m[i].sql, m[i].name, err);
        if (rc != SG_OK)
            return rc;
    }
    if (version < target) {
        if ((rc = set_user_version(s->db, target, err)) != SG_OK)
            return rc;
        snprintf(from, sizeof(from), "%d", version);
        snprintf(to, sizeof(to), "%d", target);
        log_kv2(s->log, SG_EV_SCHEMA_MIGRATED, "database", s->path,
                "from", from, "to", to);
    }
    s->version = target;
    return SG_OK;
}

/* quick_check - PRAGMA quick_check is "ok", or the first problem in err */
static int quick_check(sqlite3 *db, bool *corrupt, struct sg_err *err)
{
    sqlite3_stmt *st;
    int rc = prepare(db, "PRAGMA quick_check(1)", &st, err);

    if (rc != SG_OK) {
        *corrupt = is_corrupt(db);
        return rc;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL
        && strcmp((const char *) sqlite3_column_text(st, 0), "ok") != 0) {
        sg_err_set(err, "integrity check: %s", sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        *corrupt = true;
        return SG_EDB;
    }
    rc = db_status(db, rc, "integrity check", err);
    *corrupt = rc != SG_OK && is_corrupt(db);
    sqlite3_finalize(st);
    return rc;
}

/*
 * open_main - open the main connection, create or migrate the schema, and
 * remember which file it is. *corrupt tells a damaged file apart from the
 * other failures.
 */
static int open_main(struct sg_store *s, bool check, bool *corrupt,
                     struct sg_err *err)
{
    struct stat st;
    int rc;

    *corrupt = false;
    rc = db_open(s->path, MAIN_BUSY_MS, true, &s->db, corrupt, err);
    if (rc != SG_OK) {
        s->db = NULL;
        return rc;
    }
    if (check)
        rc = quick_check(s->db, corrupt, err);
    if (rc == SG_OK)
        rc = exec(s->db, "BEGIN IMMEDIATE", "begin", err);
    if (rc == SG_OK) {
        rc = migrate(s, s->migrations, s->nmigrations, s->target, err);
        if (rc == SG_OK)
            rc = sync_builtin(s->db, err);
        if (rc == SG_OK)
            rc = exec(s->db, "COMMIT", "commit", err);
        if (rc != SG_OK) {
            *corrupt = *corrupt || is_corrupt(s->db);
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        }
    }
    if (rc == SG_OK && stat(s->path, &st) < 0) {
        sg_err_set(err, "%s: %s", s->path, strerror(errno));
        rc = SG_EDB;
    }
    if (rc != SG_OK) {
        close_main(s);
        return rc;
    }
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    for (int i = 0; i < 2; i++) {
        char side[4200];

        snprintf(side, sizeof(side), "%s%s", s->path, i ? "-shm" : "-wal");
        s->side_ino[i] = stat(side, &st) == 0 && st.st_dev == s->dev
            ? st.st_ino : 0;
    }
    return SG_OK;
}

/*
 * quarantine - move a damaged database (and its WAL, which must not be
 * replayed into a new file) aside; nothing is deleted.
 */
static int quarantine(const char *path, char *saved, size_t size,
                      struct sg_err *err)
{
    char stamp[32], from[4400], to[4400];
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    if ((size_t) snprintf(saved, size, "%s.corrupt-%s", path, stamp) >= size
        || strlen(saved) + 5 >= sizeof(to)) {
        sg_err_set(err, "database path too long to move aside: %s", path);
        return SG_EDB;
    }
    if (rename(path, saved) < 0) {
        sg_err_set(err, "cannot move damaged %s aside to %s: %s", path, saved,
                   strerror(errno));
        return SG_EDB;
    }
    for (int i = 0; i < 2; i++) {
        const char *suffix = i == 0 ? "-wal" : "-shm";

        snprintf(from, sizeof(from), "%s%s", path, suffix);
        snprintf(to, sizeof(to), "%s%s", saved, suffix);
        if (rename(from, to) < 0 && errno != ENOENT) {
            sg_err_set(err, "cannot move %s aside: %s", from,
                       strerror(errno));
            return SG_EDB;
        }
    }
    return SG_OK;
}

/*
 * ro_connect - the main connection, read-only: the file is never written
 * (nor its -wal), *version its user_version. A damaged file sets *corrupt.
 */
static int ro_connect(struct sg_store *s, int *version, bool *corrupt,
                      struct sg_err *err)
{
    int rc = SG_EDB;
    char *uri, path[3 * 4096];
    size_t o = 0;

    *corrupt = false;
    /* The path inside a URI: '?', '#' and '%' percent-encoded. */
    for (const char *c = s->path; *c != '\0' && o + 4 < sizeof(path); c++)
        o += (size_t) (strchr("?#%", *c) != NULL
                       ? snprintf(path + o, 4, "%%%02X", (unsigned char) *c)
                       : (path[o] = *c, 1));
    path[o] = '\0';
    /*
     * A WAL database cannot be read where its -shm cannot be created (a
     * read-only directory): then it is opened immutable, as the file is.
     */
    for (int immutable = 0; immutable < 2; immutable++) {
        uri = sqlite3_mprintf("file:%s?mode=ro%s", path,
                              immutable ? "&immutable=1" : "");
        if (uri == NULL) {
            sg_err_set(err, "out of memory");
            return SG_ENOMEM;
        }
        rc = sqlite3_open_v2(uri, &s->db, SQLITE_OPEN_READONLY
                             | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
        sqlite3_free(uri);
        if (rc == SQLITE_OK && sg_store_harden(s->db, err) != SG_OK) {
            close_main(s);
            return SG_EDB;
        }
        if (rc == SQLITE_OK) {
            sqlite3_busy_timeout(s->db, MAIN_BUSY_MS);
            sqlite3_extended_result_codes(s->db, 1);
            rc = user_version(s->db, version, err);
            if (rc == SG_OK)
                return SG_OK;
            *corrupt = is_corrupt(s->db);
        } else {
            rc = db_status(s->db, rc, s->path, err);
        }
        close_main(s);
        if (*corrupt)
            break;
    }
    return rc;
}

/*
 * open_ro - the fallback when the database cannot be written (read-only
 * file, directory or filesystem): serve its policies and state, and fail
 * every write until a reopen read-write works. Only a database at the
 * current schema version: nothing can be migrated.
 */
static int open_ro(struct sg_store *s, struct sg_err *err)
{
    struct stat st;
    bool corrupt;
    int rc, version = 0;

    if ((rc = ro_connect(s, &version, &corrupt, err)) != SG_OK)
        return rc;
    if (version != s->target) {
        sg_err_set(err, "%s is read-only at schema version %d (this "
                   "smtpguard needs %d)", s->path, version, s->target);
        rc = SG_EDB;
    }
    if (rc == SG_OK && stat(s->path, &st) < 0)
        rc = SG_EDB;
    if (rc != SG_OK) {
        close_main(s);
        return rc;
    }
    s->version = version;
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->side_ino[0] = s->side_ino[1] = 0;
    s->readonly = true;
    return SG_OK;
}

/* open_any - read-write, else read-only with the first error in *err */
static int open_any(struct sg_store *s, bool check, bool *corrupt,
                    struct sg_err *err)
{
    struct sg_err ro_err;
    int rc;

    s->readonly = false;
    rc = open_main(s, check, corrupt, err);
    if (rc == SG_OK || *corrupt || access(s->path, F_OK) < 0)
        return rc;
    if (open_ro(s, &ro_err) != SG_OK)
        return rc;
    if (check && s->log != NULL) {     /* at start; later ones: flushes */
        struct sg_args args;

        sg_args_init(&args);
        sg_args_add(&args, "operation", "open read-write");
        sg_args_add(&args, "error", "%s (serving it read-only meanwhile)",
                    err->msg);
        sg_log_event(s->log, SG_EV_DB_ERROR, SG_ACT_NONE, NULL, &args);
    }
    return SG_OK;
}

bool sg_store_readonly(const struct sg_store *s)
{
    return s->readonly;
}

/* store_new - a closed store for path; NULL (and err) when out of memory */
static struct sg_store *store_new(const char *path, const struct sg_log *log,
                                  const struct sg_migration *m, size_t n,
                                  int target, struct sg_err *err)
{
    struct sg_store *s = calloc(1, sizeof(*s));

    if (s == NULL || (s->path = strdup(path)) == NULL) {
        free(s);
        sg_err_set(err, "out of memory");
        return NULL;
    }
    s->log = log;
    s->migrations = m;
    s->nmigrations = n;
    s->target = target;
    pthread_mutex_init(&s->pool_mu, NULL);
    return s;
}

int sg_store_open_with(const char *path, const struct sg_log *log,
                       const struct sg_migration *m, size_t n, int target,
                       struct sg_store **out, struct sg_err *err)
{
    struct sg_store *s = store_new(path, log, m, n, target, err);
    char saved[4200];
    bool corrupt;
    int rc;

    if (s == NULL)
        return SG_ENOMEM;
    rc = open_any(s, true, &corrupt, err);
    if (rc != SG_OK && corrupt) {
        /* Mail must keep flowing: keep the damaged file, start anew. */
        struct sg_err why = *err;

        rc = quarantine(path, saved, sizeof(saved), err);
        if (rc == SG_OK)
            rc = open_main(s, false, &corrupt, err);
        if (rc == SG_OK)
            log_kv2(log, SG_EV_DB_CORRUPT, "database", path, "error",
                    why.msg, "saved", saved);
    }
    if (rc != SG_OK) {
        sg_store_close(s);
        return rc;
    }
    *out = s;
    return SG_OK;
}

bool sg_store_file_changed(struct sg_store *s, const char **how)
{
    struct stat st;

    if (s->db == NULL) {
        *how = "unavailable";
        return true;
    }
    if (stat(s->path, &st) < 0) {
        *how = "deleted";
        return errno == ENOENT;
    }
    if (st.st_dev != s->dev || st.st_ino != s->ino) {
        *how = "replaced";
        return true;
    }
    return false;
}

static void close_pool(struct sg_store *s)
{
    pthread_mutex_lock(&s->pool_mu);
    for (int i = 0; i < s->npool; i++)
        sqlite3_close(s->pool[i]);
    s->npool = 0;
    s->pool_gen++;
    pthread_mutex_unlock(&s->pool_mu);
}

int sg_store_reopen(struct sg_store *s, bool *created, struct sg_err *err)
{
    const char *how;
    bool moved = sg_store_file_changed(s, &how) && s->db != NULL;
    struct stat st;
    bool corrupt;

    close_pool(s);
    /* Closing the last connection checkpoints into the old file. */
    close_main(s);
    /*
     * When the file was deleted or replaced, SQLite leaves the old WAL and
     * shared-memory files at the path (it sees the database moved and
     * does not checkpoint them away). Opened with the new file, that WAL
     * would be replayed into it: old pages over new ones. Remove them,
     * but only if they are still the very files we had open.
     */
    for (int i = 0; moved && i < 2; i++) {
        char side[4200];

        snprintf(side, sizeof(side), "%s%s", s->path, i ? "-shm" : "-wal");
        if (s->side_ino[i] != 0 && stat(side, &st) == 0
            && st.st_dev == s->dev && st.st_ino == s->side_ino[i])
            unlink(side);
    }
    *created = stat(s->path, &st) < 0 && errno == ENOENT;
    return open_any(s, false, &corrupt, err);
}

int sg_store_open(const char *path, const struct sg_log *log,
                  struct sg_store **out, struct sg_err *err)
{
    return sg_store_open_with(path, log, sg_sql_migrations,
                              sg_sql_nmigrations, SG_SCHEMA_VERSION, out, err);
}

/*
 * file_image - the database file read into an SQLite allocation (as
 * sqlite3_deserialize() wants it), marked rollback-journal: a copy in
 * memory cannot have a WAL. Only when the file has no -wal, so that all of
 * it is in the file.
 */
static int file_image(const char *path, unsigned char **buf, size_t *size,
                      struct sg_err *err)
{
    FILE *fp = fopen(path, "rb");
    struct stat st;

    *buf = NULL;
    *size = 0;
    if (fp == NULL || fstat(fileno(fp), &st) < 0) {
        sg_err_set(err, "%s: %s", path, strerror(errno));
        if (fp != NULL)
            fclose(fp);
        return SG_EDB;
    }
    *size = (size_t) st.st_size;
    if (*size > 0 && (*buf = sqlite3_malloc64(*size)) == NULL) {
        fclose(fp);
        sg_err_set(err, "out of memory reading %s", path);
        return SG_ENOMEM;
    }
    if (*size > 0 && fread(*buf, 1, *size, fp) != *size) {
        sg_err_set(err, "%s: short read", path);
        fclose(fp);
        sqlite3_free(*buf);
        *buf = NULL;
        return SG_EDB;
    }
    fclose(fp);
    if (*size >= 20 && (*buf)[18] == 2 && (*buf)[19] == 2)
        (*buf)[18] = (*buf)[19] = 1;
    return SG_OK;
}

/*
 * check_copy - the database copied into memory without a write to the
 * file or its directory: read as a file when it has no WAL, else through
 * a read-only connection that uses the WAL and -shm already there (a
 * running daemon's). The copy is checked, then migrated and refreshed as
 * the daemon would do it in place.
 */
static int check_copy(struct sg_store *s, int *version, struct sg_err *err)
{
    const struct sg_log *log = s->log;
    char wal[4200];
    struct stat st;
    sqlite3 *mem = NULL;
    bool corrupt = false;
    int rc, tables;

    rc = db_status(NULL, sqlite3_open_v2(":memory:", &mem,
                                         SQLITE_OPEN_READWRITE
                                         | SQLITE_OPEN_CREATE
                                         | SQLITE_OPEN_NOMUTEX, NULL),
                   "open a memory database", err);
    if (rc != SG_OK) {
        sqlite3_close(mem);
        return rc;
    }
    sqlite3_extended_result_codes(mem, 1);
    if ((rc = sg_store_harden(mem, err)) != SG_OK) {
        sqlite3_close(mem);
        return rc;
    }
    snprintf(wal, sizeof(wal), "%s-wal", s->path);
    if (stat(wal, &st) < 0 && errno == ENOENT) {
        unsigned char *buf;
        size_t size;

        rc = file_image(s->path, &buf, &size, err);
        if (rc == SG_OK && size > 0)
            rc = db_status(mem, sqlite3_deserialize(mem, "main", buf,
                                                    (sqlite3_int64) size,
                                                    (sqlite3_int64) size,
                                                    SQLITE_DESERIALIZE_FREEONCLOSE
                                                    | SQLITE_DESERIALIZE_RESIZEABLE),
                           "load the file", err);
    } else if ((rc = ro_connect(s, version, &corrupt, err)) == SG_OK) {
        sqlite3_backup *b = sqlite3_backup_init(mem, "main", s->db, "main");

        if (b == NULL)
            rc = db_status(mem, sqlite3_errcode(mem), "copy", err);
        else {
            int step = sqlite3_backup_step(b, -1);
            int fin = sqlite3_backup_finish(b);

            rc = db_status(s->db, step == SQLITE_DONE ? fin : step, "copy",
                           err);
            corrupt = is_corrupt(s->db) || is_corrupt(mem);
        }
        close_main(s);
    }
    s->db = mem;
    if (rc == SG_OK && (rc = user_version(mem, version, err)) != SG_OK)
        corrupt = is_corrupt(mem);
    if (rc == SG_OK)
        rc = quick_check(mem, &corrupt, err);
    if (rc != SG_OK && corrupt) {
        struct sg_err why = *err;

        sg_err_set(err, "%s is damaged (%s): at start the daemon would "
                   "move it aside to %s.corrupt-STAMP and start with a new "
                   "database", s->path, why.msg, s->path);
        return SG_EDB;
    }
    if (rc == SG_OK && (rc = table_count(mem, &tables, err)) == SG_OK) {
        if (*version == 0 && tables > 0) {
            sg_err_set(err, "%s is an SQLite database but not smtpguard's "
                       "(user_version 0 and %d objects)", s->path, tables);
            rc = SG_EINVAL;
        } else if (*version > s->target) {
            sg_err_set(err, "%s has schema version %d, newer than this "
                       "smtpguard understands (%d)", s->path, *version,
                       s->target);
            rc = SG_EINVAL;
        }
    }
    if (rc != SG_OK)
        return rc;
    s->log = NULL;              /* nothing is migrated: no events */
    rc = exec(mem, "BEGIN", "begin", err);
    if (rc == SG_OK)
        rc = migrate(s, s->migrations, s->nmigrations, s->target, err);
    if (rc == SG_OK)
        rc = sync_builtin(mem, err);
    if (rc == SG_OK)
        rc = exec(mem, "COMMIT", "commit", err);
    s->log = log;
    return rc;
}

int sg_store_open_check(const char *path, const struct sg_log *log,
                        int *version, struct sg_store **out,
                        struct sg_err *err)
{
    struct sg_store *s = store_new(path, log, sg_sql_migrations,
                                   sg_sql_nmigrations, SG_SCHEMA_VERSION, err);
    int rc;

    if (s == NULL)
        return SG_ENOMEM;
    s->readonly = true;
    *version = 0;
    if ((rc = check_copy(s, version, err)) != SG_OK) {
        sg_store_close(s);
        return rc;
    }
    *out = s;
    return SG_OK;
}

void sg_store_close(struct sg_store *s)
{
    if (s == NULL)
        return;
    close_pool(s);
    close_main(s);
    pthread_mutex_destroy(&s->pool_mu);
    free(s->path);
    free(s);
}

const char *sg_store_path(const struct sg_store *s)
{
    return s->path;
}

int sg_store_schema_version(struct sg_store *s)
{
    return s->version;
}

/* ---- policy ---- */

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);

    return t ? (const char *) t : NULL;
}

static int load_settings(struct sg_store *s, struct sg_config *cfg,
                         const struct sg_config *prev, struct sg_err *err)
{
    sqlite3_stmt *st;
    int rc = cached(s, ST_SETTINGS, &st, err);

    if (rc != SG_OK)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = col_text(st, 0);
        const struct sg_setting_def *d = name ? sg_setting_find(name) : NULL;

        if ((d != NULL && prev != NULL &&
             sg_config_keep(cfg, prev, d->id) != SG_OK) ||
            (name != NULL &&
             sg_config_apply_def(cfg, d, name, col_text(st, 1), s->log)
             == SG_ENOMEM)) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    rc = db_status(s->db, rc, "read settings", err);
    stmt_done(st);
    return rc;
}

static int load_lists(struct sg_store *s, struct sg_config *cfg,
                      struct sg_err *err)
{
    sqlite3_stmt *st;
    int rc = cached(s, ST_LISTS, &st, err);

    if (rc != SG_OK)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *kind = col_text(st, 0), *list = col_text(st, 1);
        const char *entry = col_text(st, 2);

        if (list == NULL || kind == NULL)
            continue;
        if (strcmp(kind, "ip") == 0)
            rc = sg_config_add_net(cfg, list, entry, s->log);
        else if (strcmp(kind, "domain") == 0)
            rc = sg_config_add_domain(cfg, list, entry, s->log);
        else if (strcmp(kind, "relay") == 0)
            rc = sg_config_add_relay(cfg, list, entry, col_text(st, 4),
                                     s->log);
        else
            rc = sg_config_add_service(cfg, entry,
                                       (long) sqlite3_column_int64(st, 3),
                                       s->log);
        if (rc == SG_ENOMEM) {
            stmt_done(st);
            sg_err_set(err, "out of memory loading lists");
            return SG_ENOMEM;
        }
    }
    rc = db_status(s->db, rc, "read lists", err);
    stmt_done(st);
    return rc;
}

static int load_dnsbl(struct sg_store *s, struct sg_config *cfg,
                      struct sg_err *err)
{
    sqlite3_stmt *st;
    int rc = cached(s, ST_DNSBL, &st, err);

    if (rc != SG_OK)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sg_config_add_dnsbl(cfg, col_text(st, 0),
                                (long) sqlite3_column_int64(st, 1),
                                col_text(st, 2),
                                sqlite3_column_int(st, 3) != 0,
                                sqlite3_column_int(st, 4) != 0, s->log)
            == SG_ENOMEM) {
            stmt_done(st);
            sg_err_set(err, "out of memory loading dnsbl_zones");
            return SG_ENOMEM;
        }
    }
    rc = db_status(s->db, rc, "read dnsbl_zones", err);
    stmt_done(st);
    return rc;
}

static void log_override_invalid(const struct sg_log *log, const char *id,
                                 const char *reason)
{
    struct sg_args args;

    sg_args_init(&args);
    sg_args_add(&args, "list", "catalogue");
    sg_args_add(&args, "entry", "%s", id ? id : "NULL");
    sg_args_add(&args, "reason", "%s", reason);
    sg_log_event(log, SG_EV_LIST_ENTRY_INVALID, SG_ACT_NONE, NULL, &args);
}

/* load_overrides - severity/action overrides, validated, then published */
static int load_overrides(struct sg_store *s, struct sg_err *err)
{
    int sev[SG_EV_COUNT], act[SG_EV_COUNT];
    sqlite3_stmt *st;
    int rc;

    for (int i = 0; i < SG_EV_COUNT; i++)
        sev[i] = act[i] = -1;
    rc = cached(s, ST_OVERRIDES, &st, err);
    if (rc != SG_OK)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = col_text(st, 0), *sv = col_text(st, 1);
        const char *av = col_text(st, 2);
        const struct sg_event_def *e = id ? sg_event_find(id) : NULL;
        int a = av ? sg_action_parse(av) : -1;

        if (e == NULL) {
            log_override_invalid(s->log, id, "no such event");
            continue;
        }
        if (sv != NULL && (sev[e->event] = sg_severity_parse(sv)) < 0)
            log_override_invalid(s->log, id, "unknown severity");
        if (av == NULL)
            continue;
        if (e->action < SG_ACT_REJECT) {
            log_override_invalid(s->log, id, "the action of an event that "
                                 "refuses nothing cannot be overridden");
        } else if (a != SG_ACT_MONITOR && a < SG_ACT_REJECT) {
            log_override_invalid(s->log, id, "action must be reject, "
                                 "tempfail, close or monitor");
        } else {
            act[e->event] = a;
        }
    }
    rc = db_status(s->db, rc, "read catalogue", err);
    stmt_done(st);
    if (rc == SG_OK)
        for (int i = 0; i < SG_EV_COUNT; i++)
            sg_event_override((enum sg_event) i, sev[i], act[i]);
    return rc;
}

int sg_store_load_config(struct sg_store *s, const struct sg_config *prev,
                         struct sg_config **out, struct sg_err *err)
{
    struct sg_config *cfg;
    int rc;

    NEED_DB(s, err);
    if ((cfg = sg_config_new()) == NULL) {
        sg_err_set(err, "out of memory");
        return SG_ENOMEM;
    }
    rc = run(s, ST_BEGIN, "begin", err);
    if (rc == SG_OK) {
        rc = load_settings(s, cfg, prev, err);
        if (rc == SG_OK)
            rc = load_lists(s, cfg, err);
        if (rc == SG_OK)
            rc = load_dnsbl(s, cfg, err);
        if (rc == SG_OK)
            rc = load_overrides(s, err);
        run(s, ST_COMMIT, "commit", NULL);
    }
    if (rc != SG_OK) {
        sg_config_unref(cfg);
        return rc;
    }
    sg_config_finish(cfg);
    *out = cfg;
    return SG_OK;
}

int sg_store_serials(struct sg_store *s, int64_t *policy, int64_t *bans,
                     struct sg_err *err)
{
    sqlite3_stmt *st;
    int rc;

    NEED_DB(s, err);
    rc = cached(s, ST_SERIALS, &st, err);
    if (rc != SG_OK)
        return rc;
    *policy = *bans = 0;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        *policy = sqlite3_column_int64(st, 0);      /* NULL: 0 */
        *bans = sqlite3_column_int64(st, 1);
        rc = sqlite3_step(st);
    }
    rc = db_status(s->db, rc, "read serials", err);
    stmt_done(st);
    return rc;
}

/* ---- state ---- */

static void ban_from_row(sqlite3_stmt *st, struct sg_ban *b)
{
    const char *kind = col_text(st, 0);

    memset(b, 0, sizeof(*b));
    b->kind = kind && strcmp(kind, "domain") == 0 ? SG_BAN_DOMAIN : SG_BAN_IP;
    sg_strlcpy(b->key, col_text(st, 1) ? col_text(st, 1) : "", sizeof(b->key));
    sg_strlcpy(b->reason, col_text(st, 2) ? col_text(st, 2) : "",
               sizeof(b->reason));
    b->created = sqlite3_column_int64(st, 3);
    b->expires = sqlite3_column_int64(st, 4);
    b->persisted = true;
}

int sg_store_load_bans(struct sg_store *s, sg_time_t now, struct sg_ban **rows,
                       size_t *n, struct sg_err *err)
{
    sqlite3_stmt *st;
    size_t cap = 0;
    int rc;

    *rows = NULL;
    *n = 0;
    NEED_DB(s, err);
    rc = prepare(s->db, "SELECT kind, key, reason, created, expires "
                 "FROM bans WHERE expires > ?", &st, err);
    if (rc != SG_OK)
        return rc;
    sqlite3_bind_int64(st, 1, now);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            struct sg_ban *p = realloc(*rows, (cap ? cap * 2 : 16)
                                       * sizeof(**rows));

            if (p == NULL) {
                rc = SQLITE_NOMEM;
                break;
            }
            *rows = p;
            cap = cap ? cap * 2 : 16;
        }
        ban_from_row(st, &(*rows)[(*n)++]);
    }
    rc = db_status(s->db, rc, "read bans", err);
    sqlite3_finalize(st);
    if (rc != SG_OK) {
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return rc;
}

int sg_store_load_state(struct sg_store *s, struct sg_state *state,
                        sg_time_t now, sg_time_t ip_window,
                        sg_time_t domain_window, struct sg_err *err)
{
    sqlite3_stmt *st;
    struct sg_ban *bans;
    size_t nbans;
    int rc;

    rc = sg_store_load_bans(s, now, &bans, &nbans, err);
    if (rc != SG_OK)
        return rc;
    for (size_t i = 0; i < nbans; i++)
        sg_state_ban_add(state, &bans[i]);
    free(bans);
    (void) ip_window;
    if ((rc = prepare(s->db, "SELECT key, window_start, window_seconds, "
                      "count FROM rate_windows WHERE window_start + "
                      "window_seconds > ?", &st, err)) != SG_OK)
        return rc;
    sqlite3_bind_int64(st, 1, now);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (col_text(st, 0) != NULL)
            sg_state_rate_load(state, col_text(st, 0),
                               sqlite3_column_int64(st, 1),
                               sqlite3_column_int64(st, 2),
                               (unsigned) sqlite3_column_int64(st, 3));
    rc = db_status(s->db, rc, "read rate_windows", err);
    sqlite3_finalize(st);
    if (rc != SG_OK)
        return rc;
    if ((rc = prepare(s->db, "SELECT domain, subnet, last_seen FROM "
                      "domain_ip WHERE last_seen > ?", &st, err)) != SG_OK)
        return rc;
    sqlite3_bind_int64(st, 1, now - domain_window);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (col_text(st, 0) != NULL && col_text(st, 1) != NULL)
            sg_state_domain_load(state, col_text(st, 0), col_text(st, 1),
                                 sqlite3_column_int64(st, 2));
    rc = db_status(s->db, rc, "read domain_ip", err);
    sqlite3_finalize(st);
    return rc;
}

static int bind_ban_step(sqlite3 *db, sqlite3_stmt *st, const struct sg_ban *b,
                         struct sg_err *err)
{
    int rc;

    sqlite3_bind_text(st, 1, b->kind == SG_BAN_DOMAIN ? "domain" : "ip", -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 2, b->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, b->reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, b->created);
    sqlite3_bind_int64(st, 5, b->expires);
    rc = db_status(db, sqlite3_step(st), "write ban", err);
    sqlite3_reset(st);
    return rc;
}

int sg_store_write_ban(struct sg_store *s, const struct sg_ban *ban,
                       struct sg_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st;
    unsigned gen;
    int rc;

    pthread_mutex_lock(&s->pool_mu);
    if (s->npool > 0)
        db = s->pool[--s->npool];
    gen = s->pool_gen;
    pthread_mutex_unlock(&s->pool_mu);
    if (db == NULL) {
        if ((rc = db_open(s->path, POOL_BUSY_MS, false, &db, NULL, err))
            != SG_OK)
            return rc;
        /* These connections write only bans: a ban a client was told
         * about survives a power loss too, not only a crash (one sync per
         * ban; counters stay on the main connection's NORMAL). */
        /* One row at a time needs a few pages, not the 2 MB page cache
         * SQLite gives every connection by default: up to POOL_MAX of
         * them would each fill theirs over hours of bans. */
        if ((rc = exec(db, "PRAGMA synchronous=FULL; PRAGMA cache_size=-64",
                       "set synchronous", err)) != SG_OK) {
            sqlite3_close(db);
            return rc;
        }
    }
    rc = prepare(db, ban_sql, &st, err);
    if (rc == SG_OK) {
        rc = bind_ban_step(db, st, ban, err);
        sqlite3_finalize(st);
    }
    /*
     * A connection to a file that has since been replaced is not kept, and
     * what it wrote went to the old file: the ban stays unwritten, so the
     * next flush puts it in the new one.
     */
    pthread_mutex_lock(&s->pool_mu);
    if (gen != s->pool_gen && rc == SG_OK) {
        sg_err_set(err, "write ban: the database was reopened meanwhile");
        rc = SG_ERETRY;
    }
    if (s->npool < POOL_MAX && gen == s->pool_gen) {
        s->pool[s->npool++] = db;
        db = NULL;
    }
    pthread_mutex_unlock(&s->pool_mu);
    sqlite3_close(db);
    return rc;
}

int sg_store_flush(struct sg_store *s, const struct sg_flush_batch *b,
                   struct sg_err *err)
{
    sqlite3_stmt *rate = NULL, *dom = NULL, *del = NULL, *ban = NULL;
    int rc;

    if (b->nrates == 0 && b->ndomains == 0 && b->nbans == 0)
        return SG_OK;
    NEED_DB(s, err);
    rc = run(s, ST_BEGIN_IMMEDIATE, "begin flush", err);
    if (rc != SG_OK)
        return rc;
    if (rc == SG_OK)
        rc = cached(s, ST_FLUSH_RATE, &rate, err);
    if (rc == SG_OK)
        rc = cached(s, ST_FLUSH_DOMAIN, &dom, err);
    if (rc == SG_OK)
        rc = cached(s, ST_FLUSH_DOMAIN_DEL, &del, err);
    if (rc == SG_OK)
        rc = cached(s, ST_BAN, &ban, err);
    for (size_t i = 0; rc == SG_OK && i < b->nrates; i++) {
        sqlite3_bind_text(rate, 1, b->rates[i].key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(rate, 2, b->rates[i].start);
        sqlite3_bind_int64(rate, 3, b->rates[i].window);
        sqlite3_bind_int64(rate, 4, b->rates[i].count);
        rc = db_status(s->db, sqlite3_step(rate), "flush rate_windows", err);
        sqlite3_reset(rate);
    }
    for (size_t i = 0; rc == SG_OK && i < b->ndomains; i++) {
        const struct sg_domain_row *d = &b->domains[i];

        if (d->reset) {
            sqlite3_bind_text(del, 1, d->domain, -1, SQLITE_STATIC);
            rc = db_status(s->db, sqlite3_step(del), "flush domain_ip", err);
            sqlite3_reset(del);
        }
        if (rc != SG_OK || d->subnet[0] == '\0')
            continue;
        sqlite3_bind_text(dom, 1, d->domain, -1, SQLITE_STATIC);
        sqlite3_bind_text(dom, 2, d->subnet, -1, SQLITE_STATIC);
        sqlite3_bind_int64(dom, 3, d->last_seen);
        rc = db_status(s->db, sqlite3_step(dom), "flush domain_ip", err);
        sqlite3_reset(dom);
    }
    for (size_t i = 0; rc == SG_OK && i < b->nbans; i++)
        rc = bind_ban_step(s->db, ban, &b->bans[i], err);
    stmt_done(rate);
    stmt_done(dom);
    stmt_done(del);
    stmt_done(ban);
    if (rc == SG_OK)
        rc = run(s, ST_COMMIT, "commit flush", err);
    if (rc != SG_OK)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int sg_store_purge(struct sg_store *s, sg_time_t now, sg_time_t ip_window,
                   sg_time_t domain_window, int64_t *bans_deleted,
                   struct sg_err *err)
{
    sqlite3_stmt *st[3] = { NULL, NULL, NULL };
    int rc;

    if (bans_deleted != NULL)
        *bans_deleted = 0;
    NEED_DB(s, err);
    rc = run(s, ST_BEGIN_IMMEDIATE, "begin purge", err);
    if (rc != SG_OK)
        return rc;
    rc = cached(s, ST_PURGE_BANS, &st[0], err);
    if (rc == SG_OK)
        rc = cached(s, ST_PURGE_RATES, &st[1], err);
    if (rc == SG_OK)
        rc = cached(s, ST_PURGE_DOMAINS, &st[2], err);
    if (rc == SG_OK) {
        sqlite3_bind_int64(st[0], 1, now);
        sqlite3_bind_int64(st[1], 1, now);
        sqlite3_bind_int64(st[1], 2, ip_window);
        sqlite3_bind_int64(st[2], 1, now - domain_window);
    }
    for (int i = 0; rc == SG_OK && i < 3; i++) {
        rc = db_status(s->db, sqlite3_step(st[i]), "purge", err);
        if (rc == SG_OK && i == 0 && bans_deleted != NULL)
            *bans_deleted = sqlite3_changes(s->db);
    }
    for (int i = 0; i < 3; i++)
        stmt_done(st[i]);
    if (rc == SG_OK)
        rc = run(s, ST_COMMIT, "commit purge", err);
    if (rc != SG_OK) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        if (bans_deleted != NULL)
            *bans_deleted = 0;
    }
    return rc;
}
