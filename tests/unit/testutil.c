/*
 * testutil.c - shared unit-test fixtures
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "testutil.h"

struct capture captured;
struct sg_log test_log;
sg_time_t fake_now = 1700000000;

static char tmpdir[64];
static char path[128];
static char last_engine_db[128];

static void capture_sink(void *arg, enum sg_severity sev, const char *line)
{
    (void) arg;
    if (captured.n < CAPTURE_MAX) {
        snprintf(captured.line[captured.n], SG_LOG_LINE_MAX, "%s", line);
        captured.sev[captured.n++] = sev;
    }
}

void capture_reset(void)
{
    captured.n = 0;
    test_log.sink = capture_sink;
    test_log.arg = NULL;
    atomic_store(&test_log.max_severity, SG_SEV_DEBUG);
}

int capture_count(const char *needle)
{
    int n = 0;

    for (int i = 0; i < captured.n; i++)
        if (strstr(captured.line[i], needle) != NULL)
            n++;
    return n;
}

const char *capture_find(const char *needle)
{
    for (int i = captured.n - 1; i >= 0; i--)
        if (strstr(captured.line[i], needle) != NULL)
            return captured.line[i];
    return NULL;
}

sg_time_t fake_clock(void *arg)
{
    (void) arg;
    return fake_now;
}

const char *temp_db(const char *name)
{
    if (tmpdir[0] == '\0') {
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/sgtest.XXXXXX");
        if (mkdtemp(tmpdir) == NULL) {
            perror("mkdtemp");
            abort();
        }
    }
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    return path;
}

void temp_cleanup(void)
{
    char cmd[128];

    if (tmpdir[0] == '\0')
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmpdir);
    tmpdir[0] = '\0';
}

struct sg_engine *test_engine(void)
{
    static int seq;
    char name[64];
    struct sg_engine_opts o = { 0 };
    struct sg_engine *eng;
    struct sg_err err;

    capture_reset();
    snprintf(name, sizeof(name), "engine%ld-%d.db", (long) getpid(), ++seq);
    snprintf(last_engine_db, sizeof(last_engine_db), "%s", temp_db(name));
    o.db_path = last_engine_db;
    o.env.log = &test_log;
    o.env.now = fake_clock;
    o.dns_servers = TEST_DNS_NOWHERE;
    ck_assert_msg(sg_engine_open(&o, &eng, &err) == SG_OK, "open: %s",
                  err.msg);
    /* The DNS checks have tests of their own, with a DNS server. */
    test_sql(last_engine_db, "UPDATE settings SET value = '0' WHERE name "
             "IN ('DoSPF', 'DoFCrDNS')");
    sg_engine_tick(eng);
    atomic_store(&test_log.max_severity, SG_SEV_DEBUG);
    capture_reset();
    return eng;
}

const char *temp_db_of(struct sg_engine *eng)
{
    (void) eng;
    return last_engine_db;
}

void test_sql(const char *db_path, const char *sql)
{
    sqlite3 *db;
    char *msg = NULL;

    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        ck_abort_msg("sql '%s': %s", sql, msg);
    sqlite3_close(db);
}

int db_count_in(const char *db_path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int n = -1;

    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}
