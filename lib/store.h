/*
 * store.h - the SQLite store: schema and migrations, policy tables, and the
 * persistent part of the session-limit state
 *
 * With store_admin.c (smtpguardctl's statements, on a connection of its
 * own), the only module that talks to SQLite. One "main" connection
 * belongs to the maintenance thread (reload, flush, purge); ban writes
 * come from any worker thread through a small pool of connections, so no
 * lock is held while SQLite does I/O. WAL mode, synchronous=NORMAL,
 * bound parameters only. SQLITE_BUSY/LOCKED map to SG_ERETRY, everything
 * else to SG_EDB, with sqlite3_errmsg() text in the sg_err.
 *
 * Input trust: the database is the operator's; every value read from it is
 * validated (config.c) before use.
 */
#ifndef SG_STORE_H
#define SG_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "log.h"
#include "state.h"

#define SG_SCHEMA_VERSION 3

struct sg_migration {
    int version;                /* the version this script produces */
    const char *name;
    const char *sql;
};

/* Embedded from sql/ at build time (sql_embed.c). */
extern const char sg_sql_schema[];
extern const char sg_sql_defaults[];
extern const struct sg_migration sg_sql_migrations[];
extern const size_t sg_sql_nmigrations;

struct sg_store;
struct sqlite3;

/*
 * sg_store_harden - on every connection to a smtpguard database, the
 * daemon's and smtpguardctl's: SQLite's defensive mode (no writable_schema,
 * no writes to shadow tables) and trusted_schema off (triggers and views
 * call only functions SQLite marks innocuous). A database the daemon's user
 * can write is read by root too (smtpguard -n, smtpguardctl): what that
 * user planted in its schema must not run as root. SG_EDB with err set if
 * this SQLite cannot do it (3.31 and later can).
 */
int sg_store_harden(struct sqlite3 *db, struct sg_err *err);

/*
 * Open the database at `path`, creating it (schema, defaults) when it does
 * not exist and migrating an older schema in place. Refuses a database
 * newer than this build, or a file that is not an smtpguard database.
 * A damaged file (not a database, or failing PRAGMA quick_check) is moved
 * aside to PATH.corrupt-STAMP with its WAL and a new database created;
 * database_corrupt says where the old one went.
 * Logs database_created / schema_migrated. Then refreshes setting_info,
 * the catalogue table and missing default settings.
 */
int sg_store_open(const char *path, const struct sg_log *log,
                  struct sg_store **out, struct sg_err *err);

/* For tests only: open with another migration set and target version. */
int sg_store_open_with(const char *path, const struct sg_log *log,
                       const struct sg_migration *migrations, size_t n,
                       int target_version, struct sg_store **out,
                       struct sg_err *err);

/*
 * For the daemon's -n: open `path` read-only (neither it nor its WAL is
 * ever written), check it (PRAGMA quick_check), and work on a copy in
 * memory, migrated from *version (the file's schema version) to
 * SG_SCHEMA_VERSION and refreshed as sg_store_open() would do in place.
 * A damaged file, a foreign or newer database is an error naming it.
 * Logs nothing; every later write goes to the copy.
 */
int sg_store_open_check(const char *path, const struct sg_log *log,
                        int *version, struct sg_store **out,
                        struct sg_err *err);

void sg_store_close(struct sg_store *store);

/*
 * True when the file at the path is no longer the one open (*how is
 * "deleted" or "replaced"), or the store is closed after a failed reopen
 * ("unavailable"). Maintenance thread only.
 */
bool sg_store_file_changed(struct sg_store *store, const char **how);

/*
 * True when the database could only be opened read-only (a read-only file,
 * directory or filesystem at open): policies and state are read from it,
 * every write fails, and the engine tries read-write again every 10 s.
 */
bool sg_store_readonly(const struct sg_store *store);

/*
 * Close every connection and open the path again, creating and migrating
 * as sg_store_open() does (*created: no file was there). On failure the
 * store stays closed: every call fails with SG_EDB until a reopen works.
 */
int sg_store_reopen(struct sg_store *store, bool *created,
                    struct sg_err *err);
int sg_store_schema_version(struct sg_store *store);
const char *sg_store_path(const struct sg_store *store);

/* Build a new snapshot from the policy tables, starting from `prev`'s
 * values (or the defaults). Sets catalogue overrides. */
int sg_store_load_config(struct sg_store *store, const struct sg_config *prev,
                         struct sg_config **out, struct sg_err *err);

/* The change counters kept by the triggers of schema.sql. */
int sg_store_serials(struct sg_store *store, int64_t *policy, int64_t *bans,
                     struct sg_err *err);

/* Restore windows, histories and unexpired bans into `st`. */
int sg_store_load_state(struct sg_store *store, struct sg_state *st,
                        sg_time_t now, sg_time_t ip_window,
                        sg_time_t domain_window, struct sg_err *err);

/* All unexpired bans (caller frees *rows with free()). */
int sg_store_load_bans(struct sg_store *store, sg_time_t now,
                       struct sg_ban **rows, size_t *n, struct sg_err *err);

/* Write one ban now. Any thread; uses a pooled connection. */
int sg_store_write_ban(struct sg_store *store, const struct sg_ban *ban,
                       struct sg_err *err);

/* Write a flush batch in one transaction (main connection). */
int sg_store_flush(struct sg_store *store, const struct sg_flush_batch *b,
                   struct sg_err *err);

/*
 * Delete expired bans, windows and histories in one transaction. If
 * bans_deleted is not NULL it gets the number of ban rows deleted (each
 * moved the ban serial by one), 0 when the purge failed.
 */
int sg_store_purge(struct sg_store *store, sg_time_t now,
                   sg_time_t ip_window, sg_time_t domain_window,
                   int64_t *bans_deleted, struct sg_err *err);

#endif /* SG_STORE_H */
