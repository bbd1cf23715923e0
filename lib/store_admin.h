/*
 * store_admin.h - the operator's statements: what smtpguardctl reads and
 * writes in the database of a running smtpguard
 *
 * Every SQL text the operator's tool runs lives in store_admin.c, fixed at
 * build time: the caller names a query (enum sg_admin_query), a list (the
 * table of store_admin.c) or a change (one function each) and passes
 * values, which are bound, never spliced into SQL. The caller validates
 * values as the daemon does (config.c, dnsbl.c, dname.c) before writing;
 * the schema's constraints and triggers are the second line.
 *
 * Writes are one statement, or one transaction where they are several
 * (the purge, an event's overrides); the table triggers bump the serial
 * the daemon polls. Failures, for every function but sg_admin_open():
 *
 *   SG_EINVAL  a constraint or trigger refused the write; err holds
 *              SQLite's message (a trigger's reason)
 *   SG_ERETRY  the database stayed locked by another writer past the busy
 *              timeout; err names the step that waited
 *   SG_EDB     anything else; err is "STEP: SQLite's message"
 *
 * where STEP is "query" (preparing a statement), "read", "write", or the
 * transaction's "BEGIN IMMEDIATE" / "COMMIT". Nothing is changed by a
 * write that fails.
 */
#ifndef SG_STORE_ADMIN_H
#define SG_STORE_ADMIN_H

#include <stdbool.h>

#include "dnsbl.h"
#include "sg.h"

struct sg_admin;

/*
 * sg_admin_open - a connection to the existing smtpguard database at
 * `path` (never created here), hardened as the daemon's are
 * (sg_store_harden), waiting up to busy_ms for another writer, foreign
 * keys on, of schema version SG_SCHEMA_VERSION only. SG_ENOENT: no file at
 * `path`. SG_EINVAL: another schema version (*version says which, -1 when
 * it could not be read). SG_ERETRY: locked while reading the version.
 * SG_EDB: SQLite cannot open it (err holds its reason, without the path).
 */
int sg_admin_open(const char *path, int busy_ms, struct sg_admin **out,
                  int *version, struct sg_err *err);
void sg_admin_close(struct sg_admin *adm);

/*
 * One row of a query: the column names, the values as text (NULL for SQL
 * NULL) and whether SQLite typed each as an integer (so that JSON output
 * can print it as a number). The first call of a query, once it is
 * prepared and before any row is read, has the names only (value and
 * integer NULL): a caller can start its output there.
 */
struct sg_admin_row {
    int ncol;
    const char *const *name;
    const char *const *value;
    const bool *integer;
};

typedef void (*sg_admin_row_fn)(void *arg, const struct sg_admin_row *row);

enum sg_admin_query {
    SG_ADMIN_SETTINGS,          /* name, value, default_value, type */
    SG_ADMIN_SETTING,           /* the same, of the setting `key` */
    SG_ADMIN_BANS,              /* in force: kind, key, reason, event,
                                 * expires, remaining */
    SG_ADMIN_COUNTERS,          /* windows, subnets and bans of `key` */
    SG_ADMIN_EVENTS,            /* the catalogue with its overrides */
};

/*
 * sg_admin_query - the column names, then every row of query `q` in
 * order, to fn (`key` is its parameter, or NULL for those without). The
 * strings of a row are valid only during the call. On a failure fn may
 * have had some of the rows.
 */
int sg_admin_query(struct sg_admin *adm, enum sg_admin_query q,
                   const char *key, sg_admin_row_fn fn, void *arg,
                   struct sg_err *err);

/* What an entry of a list is; the caller normalizes it accordingly. */
enum sg_admin_entry {
    SG_ADMIN_NETWORK,           /* a CIDR network */
    SG_ADMIN_DOMAIN,
    SG_ADMIN_ADDRESS,           /* local-part@domain */
    SG_ADMIN_ZONE,              /* a DNSBL zone: sg_admin_dnsbl_put() */
};

struct sg_admin_list {
    const char *name;           /* as smtpguardctl names it */
    enum sg_admin_entry entry;
    bool mapped;                /* each entry has a value (an address) */
};

/* The list called `name` (deny, noprocessing, ... dnsbl), NULL if none. */
const struct sg_admin_list *sg_admin_list_find(const char *name);

/*
 * sg_admin_list_show - the entries of a list, to fn as sg_admin_query()
 * gives them: entry, value ('' unless mapped), comment; for dnsbl every
 * column of the zones in the order added (zone, weight, answers, txt,
 * ipv6, comment).
 */
int sg_admin_list_show(struct sg_admin *adm, const struct sg_admin_list *l,
                       sg_admin_row_fn fn, void *arg, struct sg_err *err);

/*
 * sg_admin_list_add - add a normalized entry (with its value when the
 * list is mapped; a mapped entry's value is replaced); *changes is 0 when
 * it was there already.
 */
int sg_admin_list_add(struct sg_admin *adm, const struct sg_admin_list *l,
                      const char *entry, const char *value, int *changes,
                      struct sg_err *err);

/* sg_admin_list_remove - remove an entry (in any case); *changes 0: none */
int sg_admin_list_remove(struct sg_admin *adm, const struct sg_admin_list *l,
                         const char *entry, int *changes,
                         struct sg_err *err);

/*
 * sg_admin_dnsbl_put - add a DNSBL zone, or replace every column of it
 * but the comment, which a NULL `comment` leaves as it was.
 */
int sg_admin_dnsbl_put(struct sg_admin *adm, const struct sg_dnsbl_zone *z,
                       const char *comment, struct sg_err *err);

/* sg_admin_setting_set - the value of a setting (a row made if missing) */
int sg_admin_setting_set(struct sg_admin *adm, const char *name,
                         const char *value, struct sg_err *err);

/* sg_admin_unban - lift every ban on `key` (any case); *lifted how many */
int sg_admin_unban(struct sg_admin *adm, const char *key, int *lifted,
                   struct sg_err *err);

struct sg_admin_purged {
    int bans;                   /* expired */
    int windows;                /* counting windows past their end */
    int subnets;                /* domain subnet records unseen a year */
};

/* sg_admin_purge - delete what has expired, in one transaction */
int sg_admin_purge(struct sg_admin *adm, struct sg_admin_purged *n,
                   struct sg_err *err);

/*
 * sg_admin_event_overrides - the severity and action overrides of event
 * `id` (malloc'd; NULL when not set). SG_EDB only when the statement
 * cannot be prepared: a row that cannot be read reads as no override.
 */
int sg_admin_event_overrides(struct sg_admin *adm, const char *id,
                             char **severity, char **action,
                             struct sg_err *err);

/*
 * sg_admin_event_override - set the severity and/or action override of
 * event `id` (NULL: leave that one), in one transaction.
 */
int sg_admin_event_override(struct sg_admin *adm, const char *id,
                            const char *severity, const char *action,
                            struct sg_err *err);

/* sg_admin_event_reset - drop both overrides of event `id` */
int sg_admin_event_reset(struct sg_admin *adm, const char *id,
                         struct sg_err *err);

#endif /* SG_STORE_ADMIN_H */
