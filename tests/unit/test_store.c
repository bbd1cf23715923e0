/*
 * test_store.c - database creation, migrations, validation triggers,
 * policy loading and the persistence of state
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"
#include "store_admin.h"
#include "testutil.h"

static int query_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int v = -1;

    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* query_text - the first column of the first row, as text (malloc'd) */
static char *query_text(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    char *v = NULL;

    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
        v = strdup((const char *) sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/*
 * What the daemon's user may plant in a database that root reads too
 * (smtpguard -n, smtpguardctl): on a hardened connection a view's unsafe
 * function does not run, and the schema cannot be rewritten in place.
 */
START_TEST(test_harden)
{
    const char *path = temp_db("harden.db");
    struct sg_err err;
    sqlite3 *db;
    char *msg = NULL;

    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE t(x); "
                                  "CREATE VIEW v AS SELECT "
                                  "load_extension('/nonexistent/x.so')",
                                  NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sg_store_harden(db, &err), SG_OK);
    ck_assert_int_ne(sqlite3_exec(db, "SELECT * FROM v", NULL, NULL, &msg),
                     SQLITE_OK);
    ck_assert_msg(msg != NULL && strstr(msg, "unsafe use of load_extension")
                  != NULL, "%s", msg ? msg : "(none)");
    sqlite3_free(msg);
    msg = NULL;
    sqlite3_exec(db, "PRAGMA writable_schema = ON", NULL, NULL, NULL);
    ck_assert_int_ne(sqlite3_exec(db, "UPDATE sqlite_schema SET sql = "
                                  "'CREATE TABLE t(y)' WHERE name = 't'",
                                  NULL, NULL, &msg), SQLITE_OK);
    ck_assert_msg(msg != NULL && strstr(msg, "may not be modified") != NULL,
                  "%s", msg ? msg : "(none)");
    sqlite3_free(msg);
    sqlite3_close(db);
}
END_TEST

static char *read_fixture(const char *name)
{
    char path[512];
    FILE *f;
    char *buf;
    long n;

    snprintf(path, sizeof(path), "%s/%s", SG_TEST_FIXTURES, name);
    ck_assert_ptr_nonnull(f = fopen(path, "r"));
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    ck_assert_ptr_nonnull(buf = calloc(1, (size_t) n + 1));
    ck_assert_int_eq(fread(buf, 1, (size_t) n, f), n);
    fclose(f);
    return buf;
}

/*
 * The shape of a schema: every object with its columns (name, type, not
 * null, default, primary key) and the SQL of indexes and triggers. Table
 * SQL itself differs after ALTER TABLE, so columns stand in for it.
 */
static const char schema_shape_sql[] =
    "SELECT group_concat(line, char(10)) FROM ("
    " SELECT m.type || ' ' || m.name || ' ' || coalesce(p.cid, '') || ' ' ||"
    "  coalesce(p.name, '') || ' ' || coalesce(p.type, '') || ' ' ||"
    "  coalesce(p.\"notnull\", '') || ' ' || coalesce(p.dflt_value, '') ||"
    "  ' ' || coalesce(p.pk, '') || ' ' ||"
    "  CASE WHEN m.type IN ('index', 'trigger') THEN coalesce(m.sql, '')"
    "  ELSE '' END AS line"
    " FROM sqlite_master m LEFT JOIN pragma_table_info(m.name) p"
    "  ON m.type = 'table'"
    " WHERE m.name NOT LIKE 'sqlite_%'"
    " ORDER BY m.type, m.name, p.cid)";

/* sql_error - run SQL expecting failure; returns the error text */
static const char *sql_error(const char *path, const char *sql)
{
    static char msg[256];
    sqlite3 *db;
    char *err = NULL;

    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK)
        msg[0] = '\0';
    else
        snprintf(msg, sizeof(msg), "%s", err);
    sqlite3_free(err);
    sqlite3_close(db);
    return msg;
}

static struct sg_store *open_store(const char *path)
{
    struct sg_store *s;
    struct sg_err err;

    ck_assert_msg(sg_store_open(path, &test_log, &s, &err) == SG_OK,
                  "open %s: %s", path, err.msg);
    return s;
}

START_TEST(test_create)
{
    const char *p = temp_db("create.db");
    struct sg_store *s;

    capture_reset();
    s = open_store(p);
    ck_assert_int_eq(sg_store_schema_version(s), SG_SCHEMA_VERSION);
    ck_assert_int_eq(capture_count("id=00290009"), 1);
    sg_store_close(s);
    ck_assert_int_eq(query_int(p, "PRAGMA user_version"), SG_SCHEMA_VERSION);
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM setting_info"),
                     SG_SET_COUNT);
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM settings"),
                     SG_SET_COUNT);
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM catalogue"),
                     SG_EV_COUNT);
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM ip_lists WHERE "
                               "list = 'noProcessingIPs'"), 2);
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM pragma_journal_mode "
                               "WHERE journal_mode = 'wal'"), 1);
    /* Reopen: nothing created or migrated, operator values kept. */
    test_sql(p, "UPDATE settings SET value = '9' WHERE name = 'MaxErrors'");
    capture_reset();
    s = open_store(p);
    sg_store_close(s);
    ck_assert_int_eq(captured.n, 0);
    ck_assert_int_eq(query_int(p, "SELECT value FROM settings WHERE name = "
                               "'MaxErrors'"), 9);
}
END_TEST

START_TEST(test_refuse_newer_and_foreign)
{
    const char *p = temp_db("newer.db");
    struct sg_store *s;
    struct sg_err err;

    capture_reset();
    sg_store_close(open_store(p));
    test_sql(p, "PRAGMA user_version = 99");
    ck_assert_int_eq(sg_store_open(p, &test_log, &s, &err), SG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "newer"));
    ck_assert_int_eq(query_int(p, "PRAGMA user_version"), 99);

    p = temp_db("foreign.db");
    test_sql(p, "CREATE TABLE mine (x)");
    ck_assert_int_eq(sg_store_open(p, &test_log, &s, &err), SG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "not smtpguard's"));
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM sqlite_master"), 1);

    ck_assert_int_eq(sg_store_open("/nonexistent/dir/x.db", &test_log, &s,
                                   &err), SG_EDB);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/dir/x.db"));
}
END_TEST

/* Versions after the current one. */
#define V SG_SCHEMA_VERSION
static const struct sg_migration test_migrations[] = {
    { V + 1, "next_test.sql", "CREATE TABLE added_in_3 (x INTEGER);" },
    { V + 2, "next2_test.sql", "ALTER TABLE added_in_3 ADD COLUMN y TEXT;" },
};

static const struct sg_migration broken_migrations[] = {
    { V + 1, "next_test.sql", "CREATE TABLE added_in_3 (x INTEGER);" },
    { V + 2, "next2_broken.sql", "ALTER TABLE no_such_table ADD COLUMN y;" },
};

START_TEST(test_migrate_in_place)
{
    const char *p = temp_db("migrate.db");
    struct sg_store *s;
    struct sg_err err;
    char want[64];

    capture_reset();
    sg_store_close(open_store(p));
    test_sql(p, "INSERT INTO bans VALUES ('ip', '192.0.2.1', '00200154', 1, "
             "4000000000)");
    ck_assert_int_eq(sg_store_open_with(p, &test_log, test_migrations, 2,
                                        V + 2, &s, &err), SG_OK);
    sg_store_close(s);
    ck_assert_int_eq(query_int(p, "PRAGMA user_version"), V + 2);
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM pragma_table_info("
                               "'added_in_3') WHERE name = 'y'"), 1);
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM bans"), 1);
    ck_assert_ptr_nonnull(capture_find("id=00290008"));
    snprintf(want, sizeof(want), "from=%d to=%d", V, V + 2);
    ck_assert_ptr_nonnull(capture_find(want));
}
END_TEST

START_TEST(test_migrate_failure_rolls_back)
{
    const char *p = temp_db("broken.db");
    struct sg_store *s;
    struct sg_err err;
    char want[64];

    capture_reset();
    sg_store_close(open_store(p));
    ck_assert_int_ne(sg_store_open_with(p, &test_log, broken_migrations, 2,
                                        V + 2, &s, &err), SG_OK);
    ck_assert_ptr_nonnull(strstr(err.msg, "next2_broken.sql"));
    ck_assert_int_eq(query_int(p, "PRAGMA user_version"), V);
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM sqlite_master WHERE "
                               "name = 'added_in_3'"), 0);
    /* A gap in the chain is refused too. */
    ck_assert_int_eq(sg_store_open_with(p, &test_log, test_migrations + 1, 1,
                                        V + 2, &s, &err), SG_EINVAL);
    snprintf(want, sizeof(want), "no migration to schema version %d", V + 1);
    ck_assert_ptr_nonnull(strstr(err.msg, want));
}
END_TEST

/* A version 1 database (fixture) migrates to exactly what schema.sql makes,
 * keeping its state and gaining the new default rows. */
START_TEST(test_migrate_v1)
{
    const char *p = temp_db("v1.db"), *fresh = temp_db("v2.db");
    char *schema = read_fixture("schema_v1.sql");
    char *defaults = read_fixture("defaults_v1.sql");
    char *want, *got;
    struct sg_store *s;
    struct sg_err err;

    capture_reset();
    test_sql(p, schema);
    test_sql(p, defaults);
    test_sql(p, "PRAGMA user_version = 1;"
             "INSERT INTO ip_rate VALUES ('192.0.2.7', 1000, 4);"
             "INSERT INTO ip_lists (list, network) VALUES "
             "('ispip', '198.51.100.0/24');");
    free(schema);
    free(defaults);
    ck_assert_int_eq(sg_store_open(p, &test_log, &s, &err), SG_OK);
    sg_store_close(s);
    ck_assert_ptr_nonnull(capture_find("from=1 to=3"));
    ck_assert_int_eq(query_int(p, "PRAGMA user_version"), 3);
    ck_assert_int_eq(query_int(p, "SELECT count FROM rate_windows WHERE "
                               "key = 'conn:192.0.2.7' AND window_start = "
                               "1000 AND window_seconds = 90"), 4);
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM ip_lists"), 3);
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM mta_mailers"), 8);
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM relay_networks"), 2);

    sg_store_close(open_store(fresh));
    want = query_text(fresh, schema_shape_sql);
    got = query_text(p, schema_shape_sql);
    ck_assert_ptr_nonnull(want);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, want);
    free(want);
    free(got);
}
END_TEST

/* Version 2 (fixture) gains dnsbl_zones and keeps its relay tables. */
START_TEST(test_migrate_v2)
{
    const char *p = temp_db("v2.db"), *fresh = temp_db("v3.db");
    char *schema = read_fixture("schema_v2.sql");
    char *defaults = read_fixture("defaults_v2.sql");
    char *want, *got;
    struct sg_store *s;
    struct sg_err err;

    capture_reset();
    test_sql(p, schema);
    test_sql(p, defaults);
    test_sql(p, "PRAGMA user_version = 2;"
             "INSERT INTO local_domains (domain) VALUES ('example.test');"
             "INSERT INTO rate_windows VALUES ('mail:sender:a@b.test', "
             "1000, 60, 7);");
    free(schema);
    free(defaults);
    ck_assert_int_eq(sg_store_open(p, &test_log, &s, &err), SG_OK);
    sg_store_close(s);
    ck_assert_ptr_nonnull(capture_find("from=2 to=3"));
    ck_assert_int_eq(query_int(p, "PRAGMA user_version"), 3);
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM local_domains"), 1);
    ck_assert_int_eq(query_int(p, "SELECT count FROM rate_windows"), 7);
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM dnsbl_zones"), 0);
    /* The new table's change trigger works. */
    test_sql(p, "UPDATE meta SET value = 0 WHERE key = 'policy_serial';"
             "INSERT INTO dnsbl_zones (zone) VALUES ('bl.example.test');");
    ck_assert_int_eq(query_int(p, "SELECT value FROM meta WHERE key = "
                               "'policy_serial'"), 1);

    sg_store_close(open_store(fresh));
    want = query_text(fresh, schema_shape_sql);
    got = query_text(p, schema_shape_sql);
    ck_assert_ptr_nonnull(want);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, want);
    free(want);
    free(got);
}
END_TEST

START_TEST(test_sql_validation_triggers)
{
    const char *p = temp_db("triggers.db");
    int serial;

    capture_reset();
    sg_store_close(open_store(p));
    serial = query_int(p, "SELECT value FROM meta WHERE key='policy_serial'");
    ck_assert_ptr_nonnull(strstr(sql_error(p, "UPDATE settings SET value = "
                          "'abc' WHERE name = 'maxSMTPipSessions'"),
                          "whole number"));
    ck_assert_ptr_nonnull(strstr(sql_error(p, "UPDATE settings SET value = "
                          "'100001' WHERE name = 'maxSMTPipSessions'"),
                          "whole number"));
    ck_assert_ptr_nonnull(strstr(sql_error(p, "UPDATE settings SET value = "
                          "'4' WHERE name = 'DoFrequencyIP'"),
                          "whole number"));
    ck_assert_ptr_nonnull(strstr(sql_error(p, "INSERT INTO settings "
                          "(name, value) VALUES ('maxSMTPipSesions', '3')"),
                          "unknown setting"));
    ck_assert_ptr_nonnull(strstr(sql_error(p, "UPDATE settings SET value = "
                          "'10x' WHERE name = 'maxSMTPipDuration'"),
                          "seconds"));
    ck_assert_ptr_nonnull(strstr(sql_error(p, "UPDATE settings SET value = "
                          "'loud' WHERE name = 'logLevel'"), "severity"));
    ck_assert_ptr_nonnull(strstr(sql_error(p, "INSERT INTO ip_lists (list, "
                          "network) VALUES ('blackList', '192.0.2.1')"),
                          "CHECK constraint"));
    ck_assert_ptr_nonnull(strstr(sql_error(p, "UPDATE settings SET value = "
                          "'maybe' WHERE name = 'relayAuthenticated'"),
                          "not a boolean"));
    ck_assert_ptr_nonnull(strstr(sql_error(p, "UPDATE settings SET value = "
                          "'open' WHERE name = 'relayPolicy'"),
                          "not one of the choices"));
    ck_assert_ptr_nonnull(strstr(sql_error(p, "UPDATE settings SET value = "
                          "'rules|deny' WHERE name = 'relayPolicy'"),
                          "not one of the choices"));
    ck_assert_ptr_nonnull(strstr(sql_error(p, "INSERT INTO mta_mailers "
                          "(mailer, class) VALUES ('x', 'sideways')"),
                          "CHECK constraint"));
    /* Refused statements changed nothing. */
    ck_assert_int_eq(query_int(p, "SELECT value FROM meta WHERE "
                               "key='policy_serial'"), serial);
    ck_assert_str_eq(sql_error(p, "UPDATE settings SET value = '2h' WHERE "
                               "name = 'maxSMTPipExpiration'"), "");
    ck_assert_str_eq(sql_error(p, "UPDATE settings SET value = 'debug' WHERE "
                               "name = 'logLevel'"), "");
    ck_assert_str_eq(sql_error(p, "UPDATE settings SET value = 'Deny' WHERE "
                               "name = 'relayPolicy'"), "");
    ck_assert_str_eq(sql_error(p, "UPDATE settings SET value = 'off' WHERE "
                               "name = 'relayAuthenticated'"), "");
    ck_assert_str_eq(sql_error(p, "INSERT INTO local_domains (domain) "
                               "VALUES ('example.org')"), "");
    ck_assert_int_eq(query_int(p, "SELECT value FROM meta WHERE "
                               "key='policy_serial'"), serial + 5);
}
END_TEST

START_TEST(test_load_config)
{
    const char *p = temp_db("config.db");
    struct sg_store *s;
    struct sg_config *cfg, *cfg2;
    struct sg_err err;

    capture_reset();
    s = open_store(p);
    test_sql(p, "UPDATE settings SET value = '3' WHERE name = 'MaxErrors';"
             "UPDATE settings SET value = '15m' WHERE name = "
             "'maxSMTPipDuration';"
             "INSERT INTO ip_lists (list, network) VALUES "
             "('denySMTPConnectionsFromAlways', '192.0.2.0/24'),"
             "('ispip', '2001:db8::/32'), ('whiteListedIPs', '192.0.2.1/8');"
             "INSERT INTO domain_lists (list, domain) VALUES "
             "('maxSMTPdomainIPWL', 'example.com');"
             "INSERT INTO service_limits VALUES ('submission', 4, NULL);"
             "UPDATE catalogue SET severity_override = 'error', "
             "action_override = 'monitor' WHERE id = '00200153';"
             "UPDATE catalogue SET action_override = 'reject' WHERE "
             "id = '00290001';");
    ck_assert_int_eq(sg_store_load_config(s, NULL, &cfg, &err), SG_OK);
    ck_assert_int_eq(sg_config_get(cfg, SG_SET_max_errors), 3);
    ck_assert_int_eq(sg_config_get(cfg, SG_SET_ip_duration), 900);
    ck_assert_int_eq(sg_config_service_limit(cfg, "submission"), 4);
    ck_assert(sg_config_domain_exempt(cfg, "example.com"));
    /* 2 default noProcessingIPs + 2 default relay networks + 8 default
     * mta_mailers + 2 good networks, 1 domain, 1 service. */
    ck_assert_int_eq(cfg->entries, 16);
    ck_assert_ptr_nonnull(capture_find("entry=192.0.2.1/8"));
    ck_assert_ptr_nonnull(capture_find("refuses nothing"));
    ck_assert_int_eq(sg_event_severity(SG_EV_MAX_IP_SESSIONS), SG_SEV_ERR);
    ck_assert_int_eq(sg_event_action(SG_EV_MAX_IP_SESSIONS), SG_ACT_MONITOR);
    ck_assert_int_eq(sg_event_action(SG_EV_STARTED), SG_ACT_NONE);

    /* A value SQL lets through but the daemon refuses: the last good value
     * stays (15 minutes), not the default. */
    test_sql(p, "UPDATE settings SET value = '0' WHERE name = "
             "'maxSMTPipDuration'");
    capture_reset();
    ck_assert_int_eq(sg_store_load_config(s, cfg, &cfg2, &err), SG_OK);
    ck_assert_int_eq(sg_config_get(cfg2, SG_SET_ip_duration), 900);
    ck_assert_ptr_nonnull(capture_find("setting=maxSMTPipDuration"));
    ck_assert_ptr_nonnull(capture_find("kept=900"));
    sg_config_unref(cfg2);
    sg_config_unref(cfg);
    sg_event_clear_overrides();
    sg_store_close(s);
}
END_TEST

START_TEST(test_state_round_trip)
{
    const char *p = temp_db("state.db");
    struct sg_store *s;
    struct sg_state *st = sg_state_new(), *st2 = sg_state_new();
    struct sg_flush_batch b;
    struct sg_ban ban = { .kind = SG_BAN_IP, .created = 1000,
                          .expires = 5000 }, got;
    int64_t deleted;
    struct sg_err err;

    capture_reset();
    s = open_store(p);
    for (int i = 0; i < 5; i++)
        sg_state_rate_hit(st, "192.0.2.9", 1000, 90);
    sg_state_domain_hit(st, "example.com", "192.0.2.0/24", 1000, 3600);
    sg_state_domain_hit(st, "example.com", "198.51.100.0/24", 1001, 3600);
    strcpy(ban.key, "203.0.113.5");
    strcpy(ban.reason, "00200154");
    ck_assert_int_eq(sg_store_write_ban(s, &ban, &err), SG_OK);
    ck_assert_int_eq(sg_state_collect(st, &b), SG_OK);
    ck_assert_int_eq(sg_store_flush(s, &b, &err), SG_OK);
    sg_flush_batch_free(&b);

    ck_assert_int_eq(sg_store_load_state(s, st2, 1010, 90, 3600, &err), SG_OK);
    ck_assert(sg_state_ban_find(st2, SG_BAN_IP, "203.0.113.5", 1010, &got));
    ck_assert_str_eq(got.reason, "00200154");
    ck_assert_uint_eq(sg_state_rate_hit(st2, "192.0.2.9", 1010, 90), 6);
    ck_assert_uint_eq(sg_state_domain_hit(st2, "example.com",
                                          "203.0.113.0/24", 1010, 3600), 3);

    /* Purge drops what expired, and says how many bans went. */
    ck_assert_int_eq(sg_store_purge(s, 6000, 90, 3600, &deleted, &err),
                     SG_OK);
    ck_assert_int_eq(deleted, 1);
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM bans"), 0);
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM rate_windows"), 0);
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM domain_ip"), 0);
    sg_store_close(s);
    sg_state_free(st);
    sg_state_free(st2);
}
END_TEST


/* saved_copy - the PATH.corrupt-* file next to path, or NULL */
static char *saved_copy(const char *path)
{
    static char found[4096 + 512];
    char dir[4096], *slash;
    const char *base;
    DIR *d;
    struct dirent *e;

    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    *slash = '\0';
    base = slash + 1;
    found[0] = '\0';
    ck_assert_ptr_nonnull(d = opendir(dir));
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, base, strlen(base)) == 0
            && strstr(e->d_name, ".corrupt-") != NULL
            && strstr(e->d_name, "-wal") == NULL
            && strstr(e->d_name, "-shm") == NULL)
            snprintf(found, sizeof(found), "%s/%s", dir, e->d_name);
    closedir(d);
    return found[0] ? found : NULL;
}

START_TEST(test_corrupt_moved_aside)
{
    const char *p = temp_db("garbage.db");
    char *saved, buf[64];
    struct sg_store *s;
    FILE *fp;

    /* Not a database at all: kept byte for byte, a new one made. */
    ck_assert_ptr_nonnull(fp = fopen(p, "w"));
    for (int i = 0; i < 200; i++)
        fputs("this is not an SQLite database, it is a text file\n", fp);
    fclose(fp);
    capture_reset();
    s = open_store(p);
    sg_store_close(s);
    ck_assert_int_eq(capture_count("id=00290013"), 1);
    ck_assert_int_eq(capture_count("id=00290009"), 1);
    ck_assert_ptr_nonnull(saved = saved_copy(p));
    ck_assert_ptr_nonnull(fp = fopen(saved, "r"));
    ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), fp));
    fclose(fp);
    ck_assert_str_eq(buf, "this is not an SQLite database, it is a text "
                     "file\n");
    ck_assert_int_eq(query_int(p, "PRAGMA user_version"), SG_SCHEMA_VERSION);

    /* A real database with a damaged table page. */
    p = temp_db("damaged.db");
    sg_store_close(open_store(p));
    test_sql(p, "PRAGMA journal_mode=DELETE; CREATE TABLE filler (x); "
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
             "WHERE i < 2000) INSERT INTO filler SELECT randomblob(200) "
             "FROM n; PRAGMA journal_mode=WAL");
    ck_assert_ptr_nonnull(fp = fopen(p, "r+"));
    ck_assert_int_eq(fseek(fp, 4096L * 40, SEEK_SET), 0);
    for (int i = 0; i < 4096 * 3; i++)
        fputc(0xA5, fp);
    fclose(fp);
    capture_reset();
    s = open_store(p);
    sg_store_close(s);
    ck_assert_int_eq(capture_count("id=00290013"), 1);
    ck_assert_ptr_nonnull(saved_copy(p));
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM sqlite_master WHERE "
                               "name = 'filler'"), 0);
}
END_TEST

struct writer {
    struct sg_store *s;
    int id;
    int other_errors;           /* anything but a wait that gave up */
    int unwritten;              /* bans still out after every retry */
};

/*
 * ban_writer - 50 bans through the pool. A pool connection waits at most
 * POOL_BUSY_MS for the lock and then gives up with SG_ERETRY: the engine
 * leaves that ban to the next flush. On a loaded machine six writers can
 * wait that long, so the writer retries as the flush would; what must
 * never happen is another error, or a ban that no retry gets in.
 */
static void *ban_writer(void *arg)
{
    struct writer *w = arg;
    struct sg_err err;

    for (int i = 0; i < 50; i++) {
        struct sg_ban b = { .kind = SG_BAN_IP, .created = 1,
                            .expires = 4000000000 };
        int rc = SG_ERETRY;

        snprintf(b.key, sizeof(b.key), "198.51.100.%d-%d", w->id, i);
        strcpy(b.reason, "00200154");
        for (int tries = 0; tries < 100 && rc == SG_ERETRY; tries++)
            if ((rc = sg_store_write_ban(w->s, &b, &err)) != SG_OK
                && rc != SG_ERETRY)
                w->other_errors++;
        if (rc != SG_OK)
            w->unwritten++;
    }
    return NULL;
}

START_TEST(test_concurrent_ban_writes)
{
    const char *p = temp_db("pool.db");
    struct sg_store *s;
    pthread_t t[6];
    struct writer w[6];
    char *check;

    capture_reset();
    s = open_store(p);
    for (int i = 0; i < 6; i++) {
        w[i] = (struct writer) { s, i, 0, 0 };
        pthread_create(&t[i], NULL, ban_writer, &w[i]);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(w[i].other_errors, 0);
        ck_assert_int_eq(w[i].unwritten, 0);
    }
    sg_store_close(s);
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM bans"), 300);
    check = query_text(p, "PRAGMA integrity_check");
    ck_assert_str_eq(check, "ok");
    free(check);
}
END_TEST

/* ---- store_admin: the operator's statements ---- */

/* What a query gave its callback: the header call, then the rows. */
struct got_rows {
    int headers;                /* calls with the names only */
    int n;
    int ncol;
    char name[8][32];
    char value[8][8][64];       /* [row][col]; "(null)" for NULL */
    bool integer[8][8];
};

static void got_row(void *arg, const struct sg_admin_row *row)
{
    struct got_rows *g = arg;

    ck_assert_int_le(row->ncol, 8);
    if (row->value == NULL) {
        ck_assert_int_eq(g->n, 0);
        g->headers++;
        g->ncol = row->ncol;
        for (int i = 0; i < row->ncol; i++)
            snprintf(g->name[i], sizeof(g->name[i]), "%s", row->name[i]);
        return;
    }
    ck_assert_int_eq(g->headers, 1);
    if (g->n == 8)
        return;
    for (int i = 0; i < row->ncol; i++) {
        snprintf(g->value[g->n][i], sizeof(g->value[g->n][i]), "%s",
                 row->value[i] ? row->value[i] : "(null)");
        g->integer[g->n][i] = row->integer[i];
    }
    g->n++;
}

static struct sg_admin *open_admin(const char *path, int busy_ms)
{
    struct sg_admin *adm;
    struct sg_err err;
    int version;

    ck_assert_msg(sg_admin_open(path, busy_ms, &adm, &version, &err)
                  == SG_OK, "admin open %s: %s", path, err.msg);
    ck_assert_int_eq(version, SG_SCHEMA_VERSION);
    return adm;
}

/* Missing, of another version: told apart, and nothing is created. */
START_TEST(test_admin_open)
{
    char missing[4096], old[4096];
    struct sg_admin *adm;
    struct sg_err err;
    int version;

    snprintf(missing, sizeof(missing), "%s", temp_db("admin-missing.db"));
    ck_assert_int_eq(sg_admin_open(missing, 0, &adm, &version, &err),
                     SG_ENOENT);
    ck_assert_ptr_null(adm);
    ck_assert_int_eq(access(missing, F_OK), -1);
    snprintf(old, sizeof(old), "%s", temp_db("admin-old.db"));
    capture_reset();
    sg_store_close(open_store(old));
    test_sql(old, "PRAGMA user_version = 2");
    ck_assert_int_eq(sg_admin_open(old, 0, &adm, &version, &err), SG_EINVAL);
    ck_assert_ptr_null(adm);
    ck_assert_int_eq(version, 2);
}
END_TEST

/* Rows: names first, then values as text, integers marked, NULL kept. */
START_TEST(test_admin_rows)
{
    const char *p = temp_db("admin-rows.db");
    const struct sg_admin_list *dnsbl = sg_admin_list_find("dnsbl");
    struct got_rows g = { 0 };
    struct sg_dnsbl_zone z = { .zone = "bl.example", .weight = -3,
                               .answers = "127.0.0.2", .txt = false,
                               .ipv6 = true };
    struct sg_admin *adm;
    struct sg_err err;

    capture_reset();
    sg_store_close(open_store(p));
    test_sql(p, "INSERT INTO rate_windows (key, count, window_start, "
             "window_seconds) VALUES ('conn:192.0.2.7', 4, 1000, 60), "
             "('conn:192.0.2.70', 9, 1000, 60)");
    test_sql(p, "INSERT INTO domain_ip (domain, subnet, last_seen) VALUES "
             "('192.0.2.7', '192.0.2.0/24', 1000)");
    adm = open_admin(p, 0);

    ck_assert_int_eq(sg_admin_query(adm, SG_ADMIN_SETTING, "MaxErrors",
                                    got_row, &g, &err), SG_OK);
    ck_assert_int_eq(g.headers, 1);
    ck_assert_int_eq(g.ncol, 4);
    ck_assert_str_eq(g.name[0], "name");
    ck_assert_str_eq(g.name[2], "default_value");
    ck_assert_int_eq(g.n, 1);
    ck_assert_str_eq(g.value[0][0], "MaxErrors");
    ck_assert(!g.integer[0][1]);

    /* Whole keys only: 192.0.2.70's window is not 192.0.2.7's. */
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(sg_admin_query(adm, SG_ADMIN_COUNTERS, "192.0.2.7",
                                    got_row, &g, &err), SG_OK);
    ck_assert_int_eq(g.n, 2);
    ck_assert_str_eq(g.name[0], "what");
    ck_assert_str_eq(g.value[0][0], "window");
    ck_assert_str_eq(g.value[0][2], "4");
    ck_assert(g.integer[0][2]);
    ck_assert(!g.integer[0][0]);
    ck_assert_str_eq(g.value[1][0], "subnet");
    ck_assert_str_eq(g.value[1][4], "(null)");
    ck_assert(!g.integer[1][4]);

    /* No rows: the header call all the same. */
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(sg_admin_query(adm, SG_ADMIN_BANS, NULL, got_row, &g,
                                    &err), SG_OK);
    ck_assert_int_eq(g.headers, 1);
    ck_assert_int_eq(g.ncol, 6);
    ck_assert_int_eq(g.n, 0);

    ck_assert_ptr_nonnull(dnsbl);
    ck_assert_int_eq(dnsbl->entry, SG_ADMIN_ZONE);
    ck_assert_int_eq(sg_admin_dnsbl_put(adm, &z, "a comment", &err), SG_OK);
    z.weight = 2;
    ck_assert_int_eq(sg_admin_dnsbl_put(adm, &z, NULL, &err), SG_OK);
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(sg_admin_list_show(adm, dnsbl, got_row, &g, &err),
                     SG_OK);
    ck_assert_int_eq(g.ncol, 6);
    ck_assert_int_eq(g.n, 1);
    ck_assert_str_eq(g.value[0][0], "bl.example");
    ck_assert_str_eq(g.value[0][1], "2");
    ck_assert(g.integer[0][1]);
    ck_assert_str_eq(g.value[0][3], "0");
    ck_assert_str_eq(g.value[0][5], "a comment");
    sg_admin_close(adm);
}
END_TEST

/* Lists: from the fixed table only; changes() says what happened. */
START_TEST(test_admin_lists)
{
    const char *p = temp_db("admin-lists.db");
    const struct sg_admin_list *deny = sg_admin_list_find("deny"),
        *catchalls = sg_admin_list_find("catchalls");
    struct got_rows g = { 0 };
    struct sg_admin *adm;
    struct sg_err err;
    int n;

    ck_assert_ptr_null(sg_admin_list_find("ip_lists"));
    ck_assert_ptr_null(sg_admin_list_find("Deny"));
    ck_assert_ptr_nonnull(deny);
    ck_assert(!deny->mapped);
    ck_assert_int_eq(deny->entry, SG_ADMIN_NETWORK);
    ck_assert_ptr_nonnull(catchalls);
    ck_assert(catchalls->mapped);
    capture_reset();
    sg_store_close(open_store(p));
    adm = open_admin(p, 0);
    ck_assert_int_eq(sg_admin_list_add(adm, deny, "192.0.2.0/24", NULL, &n,
                                       &err), SG_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(sg_admin_list_add(adm, deny, "192.0.2.0/24", NULL, &n,
                                       &err), SG_OK);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM ip_lists WHERE list "
                               "= 'denySMTPConnectionsFromAlways'"), 1);
    ck_assert_int_eq(sg_admin_list_add(adm, catchalls, "example.org",
                                       "a@example.org", &n, &err), SG_OK);
    ck_assert_int_eq(sg_admin_list_add(adm, catchalls, "example.org",
                                       "b@example.org", &n, &err), SG_OK);
    ck_assert_int_eq(sg_admin_list_show(adm, catchalls, got_row, &g, &err),
                     SG_OK);
    ck_assert_int_eq(g.n, 1);
    ck_assert_str_eq(g.name[0], "entry");
    ck_assert_str_eq(g.value[0][1], "b@example.org");
    ck_assert_int_eq(sg_admin_list_remove(adm, catchalls, "EXAMPLE.org", &n,
                                          &err), SG_OK);
    ck_assert_int_eq(n, 1);
    /* The noprocessing list holds the same network: only deny's goes. */
    test_sql(p, "INSERT INTO ip_lists (list, network) VALUES "
             "('noProcessingIPs', '192.0.2.0/24')");
    ck_assert_int_eq(sg_admin_list_remove(adm, deny, "192.0.2.0/24", &n,
                                          &err), SG_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(sg_admin_list_remove(adm, deny, "192.0.2.0/24", &n,
                                          &err), SG_OK);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM ip_lists WHERE "
                               "network = '192.0.2.0/24'"), 1);
    sg_admin_close(adm);
}
END_TEST

/* A refusal by a constraint or trigger is SG_EINVAL with its reason. */
START_TEST(test_admin_refusal)
{
    const char *p = temp_db("admin-refusal.db");
    struct sg_dnsbl_zone z = { .zone = "bl.example", .weight = 0,
                               .answers = "", .txt = true, .ipv6 = true };
    struct sg_admin *adm;
    struct sg_err err;
    int serial;

    capture_reset();
    sg_store_close(open_store(p));
    serial = query_int(p, "SELECT value FROM meta WHERE key='policy_serial'");
    adm = open_admin(p, 0);
    ck_assert_int_eq(sg_admin_setting_set(adm, "MaxErrors", "lots", &err),
                     SG_EINVAL);
    ck_assert_msg(strstr(err.msg, "whole number") != NULL, "%s", err.msg);
    ck_assert_int_eq(sg_admin_setting_set(adm, "NoSuchSetting", "1", &err),
                     SG_EINVAL);
    ck_assert_msg(strstr(err.msg, "unknown setting") != NULL, "%s", err.msg);
    ck_assert_int_eq(sg_admin_dnsbl_put(adm, &z, NULL, &err), SG_EINVAL);
    ck_assert_msg(strstr(err.msg, "CHECK constraint") != NULL, "%s",
                  err.msg);
    ck_assert_int_eq(sg_admin_event_override(adm, "00200154", "warning",
                                             "sideways", &err), SG_EINVAL);
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM catalogue WHERE "
                               "severity_override IS NOT NULL"), 0);
    ck_assert_int_eq(query_int(p, "SELECT value FROM meta WHERE "
                               "key='policy_serial'"), serial);
    /* And what is valid goes through. */
    ck_assert_int_eq(sg_admin_setting_set(adm, "MaxErrors", "7", &err),
                     SG_OK);
    ck_assert_int_eq(query_int(p, "SELECT value FROM settings WHERE name = "
                               "'MaxErrors'"), 7);
    ck_assert_int_eq(sg_admin_event_override(adm, "00200154", "warning",
                                             "monitor", &err), SG_OK);
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM catalogue WHERE "
                               "action_override = 'monitor'"), 1);
    sg_admin_close(adm);
}
END_TEST

/* Another writer holding the lock: SG_ERETRY naming the step. */
START_TEST(test_admin_locked)
{
    const char *p = temp_db("admin-locked.db");
    struct sg_admin_purged n;
    struct sg_admin *adm;
    struct sg_err err;
    sqlite3 *holder;
    int lifted;

    capture_reset();
    sg_store_close(open_store(p));
    test_sql(p, "INSERT INTO bans (kind, key, reason, created, expires) "
             "VALUES ('ip', '192.0.2.1', '00200154', 1, 2), ('ip', "
             "'192.0.2.2', '00200154', 1, 4000000000)");
    adm = open_admin(p, 0);
    ck_assert_int_eq(sqlite3_open(p, &holder), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(holder, "BEGIN IMMEDIATE", NULL, NULL,
                                  NULL), SQLITE_OK);
    ck_assert_int_eq(sg_admin_setting_set(adm, "MaxErrors", "7", &err),
                     SG_ERETRY);
    ck_assert_str_eq(err.msg, "write");
    ck_assert_int_eq(sg_admin_purge(adm, &n, &err), SG_ERETRY);
    ck_assert_str_eq(err.msg, "BEGIN IMMEDIATE");
    ck_assert_int_eq(sg_admin_event_override(adm, "00200154", "info", NULL,
                                             &err), SG_ERETRY);
    ck_assert_str_eq(err.msg, "BEGIN IMMEDIATE");
    ck_assert_int_eq(sg_admin_unban(adm, "192.0.2.2", &lifted, &err),
                     SG_ERETRY);
    /* Readers are not held up (WAL). */
    ck_assert_int_eq(sg_admin_query(adm, SG_ADMIN_EVENTS, NULL, got_row,
                                    &(struct got_rows) { 0 }, &err), SG_OK);
    sqlite3_exec(holder, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(holder);

    ck_assert_int_eq(sg_admin_purge(adm, &n, &err), SG_OK);
    ck_assert_int_eq(n.bans, 1);
    ck_assert_int_eq(n.windows, 0);
    ck_assert_int_eq(sg_admin_unban(adm, "192.0.2.2", &lifted, &err), SG_OK);
    ck_assert_int_eq(lifted, 1);
    ck_assert_int_eq(query_int(p, "SELECT count(*) FROM bans"), 0);
    sg_admin_close(adm);
}
END_TEST

Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_create);
    tcase_add_test(tc, test_harden);
    tcase_add_test(tc, test_refuse_newer_and_foreign);
    tcase_add_test(tc, test_migrate_in_place);
    tcase_add_test(tc, test_migrate_failure_rolls_back);
    tcase_add_test(tc, test_migrate_v1);
    tcase_add_test(tc, test_migrate_v2);
    tcase_add_test(tc, test_sql_validation_triggers);
    tcase_add_test(tc, test_load_config);
    tcase_add_test(tc, test_state_round_trip);
    tcase_add_test(tc, test_concurrent_ban_writes);
    tcase_add_test(tc, test_corrupt_moved_aside);
    tcase_add_test(tc, test_admin_open);
    tcase_add_test(tc, test_admin_rows);
    tcase_add_test(tc, test_admin_lists);
    tcase_add_test(tc, test_admin_refusal);
    tcase_add_test(tc, test_admin_locked);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}
