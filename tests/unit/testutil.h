/*
 * testutil.h - fixtures shared by the unit tests: a log sink that captures
 * lines, a fake clock, and temporary database paths
 */
#ifndef SG_TESTUTIL_H
#define SG_TESTUTIL_H

#include <check.h>

#include "engine.h"
#include "log.h"

#define CAPTURE_MAX 256
/* Resolver for engines of tests that do not test DNS: a closed port on
 * loopback, so no lookup ever leaves the machine (they fail at once). */
#define TEST_DNS_NOWHERE "127.0.0.1:9"


struct capture {
    int n;
    char line[CAPTURE_MAX][SG_LOG_LINE_MAX];
    enum sg_severity sev[CAPTURE_MAX];
};

extern struct capture captured;
extern struct sg_log test_log;
extern sg_time_t fake_now;

void capture_reset(void);
/* Number of captured lines containing `needle`. */
int capture_count(const char *needle);
/* The last captured line containing `needle`, or NULL. */
const char *capture_find(const char *needle);

sg_time_t fake_clock(void *arg);

/* A fresh path in a temporary directory ("/tmp/sgtest.XXXXXX/name"). */
const char *temp_db(const char *name);
void temp_cleanup(void);

/* An engine on a fresh database with the fake clock; no thread. */
struct sg_engine *test_engine(void);
/* Path of the database of the engine made last. */
const char *temp_db_of(struct sg_engine *eng);
/* Run SQL on the engine's database through a separate connection. */
void test_sql(const char *path, const char *sql);
/* The integer of the first row and column of a query, -1 when none. */
int db_count_in(const char *path, const char *sql);

Suite *addr_suite(void);
Suite *config_suite(void);
Suite *log_suite(void);
Suite *state_suite(void);
Suite *store_suite(void);
Suite *policy_suite(void);
Suite *relay_suite(void);
Suite *dnsbl_suite(void);
Suite *dns_suite(void);
Suite *spf_suite(void);
Suite *spfpool_suite(void);
Suite *verdict_suite(void);

#endif /* SG_TESTUTIL_H */
