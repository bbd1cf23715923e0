/*
 * store_admin.c - the operator's statements (smtpguardctl): every SQL text
 * it runs, on a connection of its own
 *
 * A short-lived process beside the daemon: one connection, statements
 * prepared when run (none is run twice), the busy timeout the operator
 * chose (--wait). Unlike the daemon's connections this one keeps SQLite's
 * primary result codes: a refusal is SQLITE_CONSTRAINT whatever the
 * constraint.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"
#include "store_admin.h"

struct sg_admin {
    sqlite3 *db;
};

/* ---- the statements ---- */

static const char *const query_sql[] = {
    [SG_ADMIN_SETTINGS] =
        "SELECT s.name, s.value, i.default_value, i.type FROM settings s "
        "JOIN setting_info i USING (name) ORDER BY s.name COLLATE NOCASE",
    [SG_ADMIN_SETTING] =
        "SELECT s.name, s.value, i.default_value, i.type FROM settings s "
        "JOIN setting_info i USING (name) WHERE s.name = ?",
    [SG_ADMIN_BANS] =
        "SELECT b.kind, b.key, b.reason, coalesce(c.name, '') AS event, "
        "datetime(b.expires, 'unixepoch') AS expires, b.expires - "
        "strftime('%s', 'now') AS remaining FROM bans b LEFT JOIN catalogue "
        "c ON c.id = b.reason WHERE b.expires > strftime('%s', 'now') "
        "ORDER BY b.expires",
    /* The keys as the daemon builds them (sql/schema.sql, rate_windows):
     * whole keys, so that no character of KEY is a pattern and
     * "2001:db8::1" does not find the counters of "1". */
    [SG_ADMIN_COUNTERS] =
        "SELECT 'window' AS what, key, count, datetime(window_start, "
        "'unixepoch') AS since, window_seconds FROM rate_windows "
        "WHERE key COLLATE NOCASE IN ('conn:' || ?1, 'harvest:' || ?1, "
        "'mail:sender:' || ?1, 'mail:auth:' || ?1, 'mail:ip:' || ?1, "
        "'rcpt:sender:' || ?1, 'rcpt:auth:' || ?1, 'rcpt:ip:' || ?1) "
        "UNION ALL SELECT 'subnet', domain || ' ' || subnet, 1, "
        "datetime(last_seen, 'unixepoch'), NULL FROM domain_ip "
        "WHERE domain = ?1 COLLATE NOCASE "
        "UNION ALL SELECT 'ban ' || kind, key || ' ' || reason, NULL, "
        "datetime(created, 'unixepoch'), expires - created FROM bans "
        "WHERE key = ?1 COLLATE NOCASE",
    [SG_ADMIN_EVENTS] =
        "SELECT id, name, coalesce(severity_override, severity) AS "
        "severity, coalesce(action_override, action) AS action, "
        "CASE WHEN severity_override IS NULL AND action_override IS "
        "NULL THEN '' ELSE 'yes' END AS override FROM catalogue "
        "ORDER BY id",
};

#define SQL_SETTING_UPDATE \
    "UPDATE settings SET value = ?, updated = strftime('%s', 'now') " \
    "WHERE name = ?"
#define SQL_SETTING_INSERT "INSERT INTO settings (name, value) VALUES (?, ?)"
#define SQL_DNSBL_SHOW \
    "SELECT zone, weight, answers, txt, ipv6, coalesce(comment, '') AS " \
    "comment FROM dnsbl_zones ORDER BY rowid"
#define SQL_DNSBL_PUT \
    "INSERT INTO dnsbl_zones (zone, weight, answers, txt, ipv6, comment) " \
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (zone) DO UPDATE SET weight = " \
    "excluded.weight, answers = excluded.answers, txt = excluded.txt, " \
    "ipv6 = excluded.ipv6, comment = coalesce(excluded.comment, comment)"
#define SQL_UNBAN "DELETE FROM bans WHERE key = ? COLLATE NOCASE"
#define SQL_PURGE_BANS \
    "DELETE FROM bans WHERE expires <= strftime('%s', 'now')"
#define SQL_PURGE_WINDOWS \
    "DELETE FROM rate_windows WHERE window_start + window_seconds <= " \
    "strftime('%s', 'now')"
#define SQL_PURGE_SUBNETS \
    "DELETE FROM domain_ip WHERE last_seen < strftime('%s', 'now') - " \
    "31536000"
#define SQL_EVENT_OVERRIDES \
    "SELECT severity_override, action_override FROM catalogue WHERE id = ?"
#define SQL_EVENT_SEVERITY \
    "UPDATE catalogue SET severity_override = ? WHERE id = ?"
#define SQL_EVENT_ACTION \
    "UPDATE catalogue SET action_override = ? WHERE id = ?"
#define SQL_EVENT_RESET \
    "UPDATE catalogue SET severity_override = NULL, action_override = " \
    "NULL WHERE id = ?"

/*
 * The lists, and where each lives. The statements of a list are made from
 * this table only: table and column names are never the caller's.
 */
static const struct list_def {
    struct sg_admin_list pub;   /* first: what sg_admin_list_find gives */
    const char *table;
    const char *list;           /* the ip_lists/domain_lists list, or NULL */
    const char *column;         /* the entry column */
    const char *value_column;   /* of a mapped list, or NULL */
} lists[] = {
    { { "deny", SG_ADMIN_NETWORK, false }, "ip_lists",
      "denySMTPConnectionsFromAlways", "network", NULL },
    { { "noprocessing", SG_ADMIN_NETWORK, false }, "ip_lists",
      "noProcessingIPs", "network", NULL },
    { { "whitelist", SG_ADMIN_NETWORK, false }, "ip_lists",
      "whiteListedIPs", "network", NULL },
    { { "ispip", SG_ADMIN_NETWORK, false }, "ip_lists", "ispip", "network",
      NULL },
    { { "relay", SG_ADMIN_NETWORK, false }, "relay_networks", NULL,
      "network", NULL },
    { { "local-domains", SG_ADMIN_DOMAIN, false }, "local_domains", NULL,
      "domain", NULL },
    { { "local-addresses", SG_ADMIN_ADDRESS, false }, "local_addresses",
      NULL, "address", NULL },
    { { "catchalls", SG_ADMIN_DOMAIN, true }, "catchalls", NULL, "domain",
      "mailbox" },
    { { "dnsbl", SG_ADMIN_ZONE, false }, "dnsbl_zones", NULL, "zone", NULL },
    { { "exempt-domains", SG_ADMIN_DOMAIN, false }, "domain_lists",
      "maxSMTPdomainIPWL", "domain", NULL },
};

#define NLISTS (sizeof(lists) / sizeof(lists[0]))

/* ---- running them ---- */

/* locked - whether the last error of db was waiting in vain for a lock */
static bool locked(sqlite3 *db)
{
    int rc = sqlite3_extended_errcode(db) & 0xff;

    return rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
}

/* fail - the last error of db, after `what`: locked, or anything else */
static int fail(sqlite3 *db, const char *what, struct sg_err *err)
{
    if (locked(db)) {
        sg_err_set(err, "%s", what);
        return SG_ERETRY;
    }
    sg_err_set(err, "%s: %s", what, sqlite3_errmsg(db));
    return SG_EDB;
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st,
                struct sg_err *err)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
        return fail(db, "query", err);
    return SG_OK;
}

static int exec_sql(sqlite3 *db, const char *sql, struct sg_err *err)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return fail(db, sql, err);
    return SG_OK;
}

/* run - one write with n text parameters (NULL: SQL NULL); changes() */
static int run(sqlite3 *db, const char *sql, int n, const char *const *v,
               int *changes, struct sg_err *err)
{
    sqlite3_stmt *st;
    int rc = prep(db, sql, &st, err);

    if (rc != SG_OK)
        return rc;
    for (int i = 0; i < n; i++) {
        if (v[i] == NULL)
            sqlite3_bind_null(st, i + 1);
        else
            sqlite3_bind_text(st, i + 1, v[i], -1, SQLITE_TRANSIENT);
    }
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT) {
        sg_err_set(err, "%s", sqlite3_errmsg(db));
        return SG_EINVAL;
    }
    if (rc != SQLITE_DONE)
        return fail(db, "write", err);
    if (changes != NULL)
        *changes = sqlite3_changes(db);
    return SG_OK;
}

/* query - every row of sql (with `key` as ?1 unless NULL) to fn */
static int query(sqlite3 *db, const char *sql, const char *key,
                 sg_admin_row_fn fn, void *arg, struct sg_err *err)
{
    sqlite3_stmt *st;
    struct sg_admin_row row;
    const char **name, **value;
    bool *integer;
    int rc = prep(db, sql, &st, err);

    if (rc != SG_OK)
        return rc;
    if (key != NULL)
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    row.ncol = sqlite3_column_count(st);
    name = calloc((size_t) row.ncol + 1, sizeof(*name));
    value = calloc((size_t) row.ncol + 1, sizeof(*value));
    integer = calloc((size_t) row.ncol + 1, sizeof(*integer));
    if (name == NULL || value == NULL || integer == NULL) {
        sg_err_set(err, "read: out of memory");
        rc = SG_ENOMEM;
        goto out;
    }
    for (int i = 0; i < row.ncol; i++)
        name[i] = sqlite3_column_name(st, i);
    row.name = name;
    row.value = NULL;
    row.integer = NULL;
    fn(arg, &row);
    row.value = value;
    row.integer = integer;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < row.ncol; i++) {
            /* The type first: reading the text may convert the value. */
            int type = sqlite3_column_type(st, i);
            const unsigned char *t = sqlite3_column_text(st, i);

            integer[i] = type == SQLITE_INTEGER;
            value[i] = type == SQLITE_NULL ? NULL
                : t != NULL ? (const char *) t : "";
        }
        fn(arg, &row);
    }
    rc = rc == SQLITE_DONE ? SG_OK : fail(db, "read", err);
out:
    sqlite3_finalize(st);
    free(name);
    free(value);
    free(integer);
    return rc;
}

/* One write of a transaction: as run() takes it; no sql: skipped. */
struct write {
    const char *sql;
    int n;
    const char *v[2];
    int *changes;
};

/* transaction - BEGIN IMMEDIATE, the writes, COMMIT; undone on failure */
static int transaction(sqlite3 *db, const struct write *w, size_t n,
                       struct sg_err *err)
{
    int rc = exec_sql(db, "BEGIN IMMEDIATE", err);

    if (rc != SG_OK)
        return rc;
    for (size_t i = 0; i < n && rc == SG_OK; i++)
        if (w[i].sql != NULL)
            rc = run(db, w[i].sql, w[i].n, w[i].v, w[i].changes, err);
    if (rc == SG_OK)
        rc = exec_sql(db, "COMMIT", err);
    if (rc != SG_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* ---- the connection ---- */

int sg_admin_open(const char *path, int busy_ms, struct sg_admin **out,
                  int *version, struct sg_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st;
    int rc;

    *out = NULL;
    *version = -1;
    if (access(path, F_OK) < 0) {
        sg_err_set(err, "no such file");
        return SG_ENOENT;
    }
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL)
        != SQLITE_OK) {
        sg_err_set(err, "%s", db ? sqlite3_errmsg(db) : "no memory");
        sqlite3_close(db);
        return SG_EDB;
    }
    if ((rc = sg_store_harden(db, err)) != SG_OK)
        goto fail;
    sqlite3_busy_timeout(db, busy_ms);
    sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL)
        != SQLITE_OK) {
        rc = locked(db) ? SG_ERETRY : SG_EDB;
        sg_err_set(err, "%s", sqlite3_errmsg(db));
        goto fail;
    }
    if (sqlite3_step(st) == SQLITE_ROW)
        *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (*version != SG_SCHEMA_VERSION) {
        sg_err_set(err, "schema version %d, not %d", *version,
                   SG_SCHEMA_VERSION);
        rc = SG_EINVAL;
        goto fail;
    }
    if ((*out = calloc(1, sizeof(**out))) == NULL) {
        sg_err_set(err, "no memory");
        rc = SG_EDB;
        goto fail;
    }
    (*out)->db = db;
    return SG_OK;
fail:
    sqlite3_close(db);
    return rc;
}

void sg_admin_close(struct sg_admin *adm)
{
    if (adm == NULL)
        return;
    sqlite3_close(adm->db);
    free(adm);
}

/* ---- queries ---- */

int sg_admin_query(struct sg_admin *adm, enum sg_admin_query q,
                   const char *key, sg_admin_row_fn fn, void *arg,
                   struct sg_err *err)
{
    if ((size_t) q >= sizeof(query_sql) / sizeof(query_sql[0])) {
        sg_err_set(err, "query: no query %d", (int) q);
        return SG_EINVAL;
    }
    return query(adm->db, query_sql[q], key, fn, arg, err);
}

int sg_admin_event_overrides(struct sg_admin *adm, const char *id,
                             char **severity, char **action,
                             struct sg_err *err)
{
    sqlite3_stmt *st;
    int rc = prep(adm->db, SQL_EVENT_OVERRIDES, &st, err);

    *severity = *action = NULL;
    if (rc != SG_OK)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        char **out[2] = { severity, action };

        for (int i = 0; i < 2; i++) {
            const unsigned char *t;

            if (sqlite3_column_type(st, i) == SQLITE_NULL)
                continue;
            t = sqlite3_column_text(st, i);
            *out[i] = strdup(t != NULL ? (const char *) t : "");
        }
    }
    sqlite3_finalize(st);
    return SG_OK;
}

/* ---- lists ---- */

const struct sg_admin_list *sg_admin_list_find(const char *name)
{
    for (size_t i = 0; i < NLISTS; i++)
        if (strcmp(lists[i].pub.name, name) == 0)
            return &lists[i].pub;
    return NULL;
}

/* def - the table row of a list sg_admin_list_find() gave, or NULL */
static const struct list_def *def(const struct sg_admin_list *l,
                                  struct sg_err *err)
{
    for (size_t i = 0; i < NLISTS; i++)
        if (l == &lists[i].pub)
            return &lists[i];
    sg_err_set(err, "query: not a list of smtpguard");
    return NULL;
}

int sg_admin_list_show(struct sg_admin *adm, const struct sg_admin_list *l,
                       sg_admin_row_fn fn, void *arg, struct sg_err *err)
{
    const struct list_def *d = def(l, err);
    char sql[512];

    if (d == NULL)
        return SG_EINVAL;
    if (l->entry == SG_ADMIN_ZONE)
        snprintf(sql, sizeof(sql), "%s", SQL_DNSBL_SHOW);
    else
        snprintf(sql, sizeof(sql), "SELECT %s AS entry, %s AS value, "
                 "coalesce(comment, '') AS comment FROM %s%s ORDER BY 1",
                 d->column, d->value_column ? d->value_column : "''",
                 d->table, d->list ? " WHERE list = ?" : "");
    return query(adm->db, sql, d->list, fn, arg, err);
}

int sg_admin_list_add(struct sg_admin *adm, const struct sg_admin_list *l,
                      const char *entry, const char *value, int *changes,
                      struct sg_err *err)
{
    const struct list_def *d = def(l, err);
    char sql[512];

    if (d == NULL)
        return SG_EINVAL;
    if (d->list) {
        snprintf(sql, sizeof(sql), "INSERT OR IGNORE INTO %s (list, %s) "
                 "VALUES (?, ?)", d->table, d->column);
        return run(adm->db, sql, 2, (const char *[]) { d->list, entry },
                   changes, err);
    }
    if (d->value_column) {
        snprintf(sql, sizeof(sql), "INSERT INTO %s (%s, %s) VALUES (?, ?) "
                 "ON CONFLICT DO UPDATE SET %s = excluded.%s", d->table,
                 d->column, d->value_column, d->value_column,
                 d->value_column);
        return run(adm->db, sql, 2, (const char *[]) { entry, value },
                   changes, err);
    }
    snprintf(sql, sizeof(sql), "INSERT OR IGNORE INTO %s (%s) VALUES (?)",
             d->table, d->column);
    return run(adm->db, sql, 1, &entry, changes, err);
}

int sg_admin_list_remove(struct sg_admin *adm, const struct sg_admin_list *l,
                         const char *entry, int *changes, struct sg_err *err)
{
    const struct list_def *d = def(l, err);
    char sql[512];

    if (d == NULL)
        return SG_EINVAL;
    snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE %s = ? COLLATE "
             "NOCASE%s", d->table, d->column,
             d->list ? " AND list = ?" : "");
    return run(adm->db, sql, d->list ? 2 : 1,
               (const char *[]) { entry, d->list }, changes, err);
}

int sg_admin_dnsbl_put(struct sg_admin *adm, const struct sg_dnsbl_zone *z,
                       const char *comment, struct sg_err *err)
{
    char weight[24];

    snprintf(weight, sizeof(weight), "%ld", z->weight);
    return run(adm->db, SQL_DNSBL_PUT, 6, (const char *[]) {
                   z->zone, weight, z->answers, z->txt ? "1" : "0",
                   z->ipv6 ? "1" : "0", comment }, NULL, err);
}

/* ---- policies, state, catalogue ---- */

int sg_admin_setting_set(struct sg_admin *adm, const char *name,
                         const char *value, struct sg_err *err)
{
    int n, rc = run(adm->db, SQL_SETTING_UPDATE, 2,
                    (const char *[]) { value, name }, &n, err);

    if (rc == SG_OK && n == 0)
        rc = run(adm->db, SQL_SETTING_INSERT, 2,
                 (const char *[]) { name, value }, NULL, err);
    return rc;
}

int sg_admin_unban(struct sg_admin *adm, const char *key, int *lifted,
                   struct sg_err *err)
{
    return run(adm->db, SQL_UNBAN, 1, &key, lifted, err);
}

int sg_admin_purge(struct sg_admin *adm, struct sg_admin_purged *n,
                   struct sg_err *err)
{
    const struct write w[] = {
        { SQL_PURGE_BANS, 0, { NULL }, &n->bans },
        { SQL_PURGE_WINDOWS, 0, { NULL }, &n->windows },
        { SQL_PURGE_SUBNETS, 0, { NULL }, &n->subnets },
    };

    n->bans = n->windows = n->subnets = 0;
    return transaction(adm->db, w, sizeof(w) / sizeof(w[0]), err);
}

int sg_admin_event_override(struct sg_admin *adm, const char *id,
                            const char *severity, const char *action,
                            struct sg_err *err)
{
    const struct write w[] = {
        { severity ? SQL_EVENT_SEVERITY : NULL, 2, { severity, id }, NULL },
        { action ? SQL_EVENT_ACTION : NULL, 2, { action, id }, NULL },
    };

    return transaction(adm->db, w, sizeof(w) / sizeof(w[0]), err);
}

int sg_admin_event_reset(struct sg_admin *adm, const char *id,
                         struct sg_err *err)
{
    return run(adm->db, SQL_EVENT_RESET, 1, &id, NULL, err);
}
