/*
 * test_policy.c - the session limits end to end through the engine, with a
 * fake clock and a real (temporary) SQLite database
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "dns.h"
#include "policy.h"
#include "testutil.h"

static struct sg_engine *eng;

static void setup(void)
{
    fake_now = 1700000000;
    eng = test_engine();
}

static void teardown(void)
{
    if (getenv("SG_TEST_DUMP") != NULL)     /* debugging aid */
        for (int i = 0; i < captured.n; i++)
            fprintf(stderr, "%s\n", captured.line[i]);
    sg_engine_close(eng, "test");
    sg_event_clear_overrides();
    sg_alloc_fail_after(-1);
}

/* policy - run SQL against the engine's database and reload */
static void policy(const char *sql)
{
    test_sql(temp_db_of(eng), sql);
    sg_engine_tick(eng);
}

static struct sg_session *connect_as(const char *addr, const char *service,
                                     struct sg_verdict *v)
{
    struct sg_session_info info = { addr, NULL, service, NULL };
    struct sg_session *s = sg_session_new(eng, &info);

    ck_assert_ptr_nonnull(s);
    sg_session_connect(s, v);
    return s;
}

/* connect_verdict - connect, return the action, close again */
static enum sg_action connect_once(const char *addr, struct sg_verdict *v)
{
    struct sg_session *s = connect_as(addr, "smtpd", v);

    sg_session_free(s);
    return v->action;
}

static int db_count(const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int n = -1;

    ck_assert_int_eq(sqlite3_open(temp_db_of(eng), &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

START_TEST(test_plain_session_passes)
{
    struct sg_verdict v;
    struct sg_session *s = connect_as("192.0.2.1", "smtpd", &v);

    ck_assert_int_eq(v.action, SG_ACT_NONE);
    sg_session_helo(s, "mx.example.com", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    sg_session_mail(s, "<a@example.com>", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    sg_session_free(s);
    ck_assert_int_eq(sg_state_conc_total(eng->state), 0);
}
END_TEST

START_TEST(test_deny_list)
{
    struct sg_verdict v;

    policy("INSERT INTO ip_lists (list, network) VALUES "
           "('denySMTPConnectionsFromAlways', '192.0.2.0/24'),"
           "('whiteListedIPs', '192.0.2.5')");
    ck_assert_int_eq(connect_once("192.0.2.5", &v), SG_ACT_REJECT);
    ck_assert_str_eq(v.code, "554");
    ck_assert_str_eq(v.xcode, "5.7.1");
    ck_assert_ptr_nonnull(strstr(v.text, "[smtpguard 00200159]"));
    ck_assert_ptr_nonnull(capture_find("entry=192.0.2.0/24"));
    ck_assert_int_eq(connect_once("192.0.3.5", &v), SG_ACT_NONE);
    policy("UPDATE settings SET value = '2' WHERE name = 'DoDenyConnect'");
    capture_reset();
    ck_assert_int_eq(connect_once("192.0.2.5", &v), SG_ACT_NONE);
    ck_assert_ptr_nonnull(capture_find("id=00200159 event=smtp_connection_"
                                       "denied severity=notice "
                                       "action=monitor"));
}
END_TEST

START_TEST(test_global_and_service_sessions)
{
    struct sg_verdict v;
    struct sg_session *a, *b, *c;

    policy("UPDATE settings SET value = '2' WHERE name = 'maxSMTPSessions';"
           "INSERT INTO service_limits VALUES ('submission', 1, NULL)");
    a = connect_as("192.0.2.1", "smtpd", &v);
    b = connect_as("192.0.2.2", "submission", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    c = connect_as("192.0.2.3", "smtpd", &v);
    ck_assert_int_eq(v.action, SG_ACT_CLOSE);
    ck_assert_str_eq(v.code, "421");
    ck_assert_str_eq(v.xcode, "4.7.0");
    ck_assert_ptr_nonnull(strstr(v.text, "00200150"));
    ck_assert_ptr_nonnull(capture_find("scope=global"));
    sg_session_free(c);
    sg_session_free(a);
    c = connect_as("192.0.2.3", "submission", &v);
    ck_assert_int_eq(v.action, SG_ACT_CLOSE);
    ck_assert_ptr_nonnull(capture_find("service=submission session=4 "
                                       "max_sessions=1 scope=service"));
    sg_session_free(c);
    c = connect_as("192.0.2.3", "smtpd", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    sg_session_free(c);
    sg_session_free(b);
    ck_assert_int_eq(sg_state_conc_total(eng->state), 0);
}
END_TEST

START_TEST(test_ip_sessions_ipv6_prefix)
{
    struct sg_verdict v;
    struct sg_session *s[3];

    policy("UPDATE settings SET value = '2' WHERE name = 'maxSMTPipSessions'");
    s[0] = connect_as("2001:db8:1:2::1", "smtpd", &v);
    s[1] = connect_as("2001:db8:1:2::2", "smtpd", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    ck_assert_int_eq(connect_once("2001:db8:1:3::1", &v), SG_ACT_NONE);
    ck_assert_int_eq(connect_once("2001:db8:1:2:ffff::9", &v), SG_ACT_CLOSE);
    ck_assert_ptr_nonnull(strstr(v.text, "00200153"));
    ck_assert_ptr_nonnull(capture_find("network=2001:db8:1:2::/64 "
                                       "max_sessions=2"));
    /* Operator narrows the aggregation: the addresses are separate now. */
    policy("UPDATE settings SET value = '128' WHERE name = "
           "'ipv6AggregatePrefix'");
    ck_assert_int_eq(connect_once("2001:db8:1:2:ffff::9", &v), SG_ACT_NONE);
    sg_session_free(s[0]);
    sg_session_free(s[1]);
    ck_assert_int_eq(sg_state_conc_total(eng->state), 0);
}
END_TEST

START_TEST(test_frequency_ban_persists)
{
    struct sg_verdict v;
    struct sg_engine_opts o = { .env = { .log = &test_log, .now = fake_clock },
                                .dns_servers = TEST_DNS_NOWHERE };
    struct sg_err err;
    char path[128];

    policy("UPDATE settings SET value = '3' WHERE name = 'maxSMTPipConnects';"
           "UPDATE settings SET value = '60' WHERE name = "
           "'maxSMTPipDuration';"
           "UPDATE settings SET value = '120' WHERE name = "
           "'maxSMTPipExpiration'");
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(connect_once("198.51.100.7", &v), SG_ACT_NONE);
    ck_assert_int_eq(connect_once("198.51.100.7", &v), SG_ACT_CLOSE);
    ck_assert_ptr_nonnull(strstr(v.text, "00200154"));
    ck_assert_ptr_nonnull(capture_find("connections=4 duration=60 "
                                       "max_connects=3 ban_seconds=120"));
    /* Written through at once, before any flush. */
    ck_assert_int_eq(db_count("SELECT count(*) FROM bans WHERE key = "
                              "'198.51.100.7' AND reason = '00200154'"), 1);
    fake_now += 30;
    ck_assert_int_eq(connect_once("198.51.100.7", &v), SG_ACT_CLOSE);
    ck_assert_ptr_nonnull(strstr(v.text, "00200155"));
    ck_assert_ptr_nonnull(capture_find("remaining=90 ban_reason=00200154"));
    ck_assert_int_eq(connect_once("198.51.100.8", &v), SG_ACT_NONE);

    /* Restart: the ban is still there. */
    snprintf(path, sizeof(path), "%s", temp_db_of(eng));
    sg_engine_close(eng, "restart");
    o.db_path = path;
    ck_assert_int_eq(sg_engine_open(&o, &eng, &err), SG_OK);
    ck_assert_int_eq(connect_once("198.51.100.7", &v), SG_ACT_CLOSE);
    ck_assert_ptr_nonnull(strstr(v.text, "00200155"));
    /* An operator lifts the ban: effective at the next maintenance pass. */
    policy("DELETE FROM bans WHERE key = '198.51.100.7'");
    ck_assert_int_eq(connect_once("198.51.100.7", &v), SG_ACT_NONE);
    /* And bans expire by themselves. */
    for (int i = 0; i < 4; i++)
        connect_once("198.51.100.9", &v);
    ck_assert_int_eq(v.action, SG_ACT_CLOSE);
    fake_now += 121;
    ck_assert_int_eq(connect_once("198.51.100.9", &v), SG_ACT_NONE);
}
END_TEST

/* The purge of expired bans must not hide an operator's unban. */
START_TEST(test_purge_keeps_operator_changes)
{
    struct sg_verdict v;
    char sql[256];

    policy("UPDATE settings SET value = '1' WHERE name = 'purgeInterval'");
    snprintf(sql, sizeof(sql), "INSERT INTO bans VALUES "
             "('ip', '198.51.100.20', '00200154', %ld, %ld), "
             "('ip', '198.51.100.21', '00200154', %ld, %ld)",
             (long) fake_now, (long) fake_now + 10,
             (long) fake_now, (long) fake_now + 1000);
    policy(sql);
    ck_assert_int_eq(connect_once("198.51.100.20", &v), SG_ACT_CLOSE);
    ck_assert_int_eq(connect_once("198.51.100.21", &v), SG_ACT_CLOSE);
    fake_now += 11;
    sg_engine_tick(eng);                /* purges the first ban */
    ck_assert_int_eq(db_count("SELECT count(*) FROM bans"), 1);
    ck_assert_int_eq(connect_once("198.51.100.20", &v), SG_ACT_NONE);
    ck_assert_int_eq(connect_once("198.51.100.21", &v), SG_ACT_CLOSE);
    /* Unban at the same moment as the next purge. */
    fake_now += 2;
    policy("DELETE FROM bans WHERE key = '198.51.100.21'");
    ck_assert_int_eq(connect_once("198.51.100.21", &v), SG_ACT_NONE);
    /* And a ban added by hand still arrives after a purge. */
    snprintf(sql, sizeof(sql), "INSERT INTO bans VALUES "
             "('ip', '198.51.100.22', 'operator', %ld, %ld)",
             (long) fake_now, (long) fake_now + 1000);
    fake_now += 2;
    policy(sql);
    ck_assert_int_eq(connect_once("198.51.100.22", &v), SG_ACT_CLOSE);
}
END_TEST

START_TEST(test_frequency_monitor_and_counters_persist)
{
    struct sg_verdict v;
    struct sg_engine_opts o = { .env = { .log = &test_log, .now = fake_clock },
                                .dns_servers = TEST_DNS_NOWHERE };
    struct sg_err err;
    char path[128];

    policy("UPDATE settings SET value = '2' WHERE name = 'maxSMTPipConnects';"
           "UPDATE settings SET value = '2' WHERE name = 'DoFrequencyIP'");
    capture_reset();
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(connect_once("203.0.113.1", &v), SG_ACT_NONE);
    /* Logged once per window, at the crossing. */
    ck_assert_int_eq(capture_count("id=00200154"), 1);
    ck_assert_ptr_nonnull(capture_find("action=monitor"));
    ck_assert_int_eq(db_count("SELECT count(*) FROM bans"), 0);
    /* Closing flushes: the count is in the database. */
    snprintf(path, sizeof(path), "%s", temp_db_of(eng));
    sg_engine_close(eng, "test");
    o.db_path = path;
    ck_assert_int_eq(sg_engine_open(&o, &eng, &err), SG_OK);
    ck_assert_int_eq(db_count("SELECT count FROM rate_windows WHERE key = "
                              "'conn:203.0.113.1'"), 6);
}
END_TEST

START_TEST(test_domain_ip_switches)
{
    struct sg_verdict v;
    struct sg_session *s;
    const char *clients[] = { "192.0.2.1", "192.0.2.200", "198.51.100.1",
                              "203.0.113.1" };

    policy("UPDATE settings SET value = '1' WHERE name = 'DoDomainIP';"
           "UPDATE settings SET value = '2' WHERE name = 'maxSMTPdomainIP';"
           "INSERT INTO domain_lists (list, domain) VALUES "
           "('maxSMTPdomainIPWL', 'big.example')");
    for (int i = 0; i < 4; i++) {
        s = connect_as(clients[i], "smtpd", &v);
        sg_session_mail(s, "<user@Spread.Example.>", &v);
        if (i < 3) {
            /* two /24s after i=2: 192.0.2.0/24 twice, then 198.51.100.0/24 */
            ck_assert_msg(v.action == SG_ACT_NONE, "client %d refused", i);
        } else {
            ck_assert_int_eq(v.action, SG_ACT_TEMPFAIL);
            ck_assert_str_eq(v.code, "451");
            ck_assert_str_eq(v.xcode, "4.7.1");
            ck_assert_ptr_nonnull(strstr(v.text, "00200156"));
            ck_assert_uint_eq(sg_session_errors(s), 1);
        }
        sg_session_free(s);
    }
    ck_assert_ptr_nonnull(capture_find("domain=spread.example subnets=3 "
                                       "max_subnets=2"));
    s = connect_as("192.0.2.1", "smtpd", &v);
    sg_session_mail(s, "<other@spread.example>", &v);
    ck_assert_int_eq(v.action, SG_ACT_TEMPFAIL);
    ck_assert_ptr_nonnull(strstr(v.text, "00200157"));
    ck_assert_int_eq(db_count("SELECT count(*) FROM bans WHERE kind = "
                              "'domain' AND key = 'spread.example'"), 1);
    /* Exempt domain (and its subdomains), null sender. */
    for (int i = 0; i < 4; i++) {
        struct sg_session *t = connect_as(clients[i], "smtpd", &v);

        sg_session_mail(t, "<x@mail.big.example>", &v);
        ck_assert_int_eq(v.action, SG_ACT_NONE);
        sg_session_mail(t, "<>", &v);
        ck_assert_int_eq(v.action, SG_ACT_NONE);
        sg_session_free(t);
    }
    /* The domain of a quoted local part holding '@' is the last one. */
    for (int i = 0; i < 4; i++) {
        struct sg_session *t = connect_as(clients[i], "smtpd", &v);

        sg_session_mail(t, "<\"a@spread.example\"@quoted.example>", &v);
        sg_session_free(t);
    }
    ck_assert_int_eq(v.action, SG_ACT_TEMPFAIL);
    ck_assert_ptr_nonnull(capture_find("domain=quoted.example subnets=3"));
    sg_session_free(s);
}
END_TEST

START_TEST(test_max_errors_closes)
{
    struct sg_verdict v;
    struct sg_session *s;

    policy("UPDATE settings SET value = '2' WHERE name = 'MaxErrors'");
    s = connect_as("192.0.2.1", "smtpd", &v);
    sg_session_unknown(s, "FOO bar", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    sg_session_unknown(s, "BAR", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    sg_session_unknown(s, "BAZ\r\nINJECTED", &v);
    ck_assert_int_eq(v.action, SG_ACT_CLOSE);
    ck_assert_str_eq(v.code, "421");
    ck_assert_ptr_nonnull(strstr(v.text, "00200158"));
    ck_assert_ptr_nonnull(capture_find("command=FOO errors=1 max_errors=2"));
    ck_assert_ptr_nonnull(capture_find("errors=3 max_errors=2 msg="));
    ck_assert_ptr_null(capture_find("INJECTED"));
    sg_session_free(s);
}
END_TEST

START_TEST(test_exempt_skips_limits)
{
    struct sg_verdict v;
    struct sg_session *s[4];

    policy("UPDATE settings SET value = '1' WHERE name = 'maxSMTPipSessions';"
           "UPDATE settings SET value = '1' WHERE name = 'maxSMTPipConnects';"
           "UPDATE settings SET value = 'debug' WHERE name = 'logLevel';"
           "INSERT INTO ip_lists (list, network) VALUES "
           "('ispip', '192.0.2.0/28'), ('whiteListedIPs', '2001:db8::/32')");
    for (int i = 0; i < 4; i++) {
        s[i] = connect_as(i % 2 ? "192.0.2.3" : "2001:db8::7", "smtpd", &v);
        ck_assert_int_eq(v.action, SG_ACT_NONE);
    }
    ck_assert_ptr_nonnull(capture_find("id=00200161 event=session_limits_"
                                       "exempt severity=debug action=accept"));
    ck_assert_ptr_nonnull(capture_find("list=ispip entry=192.0.2.0/28"));
    for (int i = 0; i < 4; i++)
        sg_session_free(s[i]);
    /* Local submission without an address is not limited either. */
    ck_assert_int_eq(connect_once(NULL, &v), SG_ACT_NONE);
    ck_assert_int_eq(connect_once("unknown", &v), SG_ACT_NONE);
}
END_TEST

START_TEST(test_score_mode)
{
    struct sg_verdict v;
    struct sg_session *keep;

    policy("UPDATE settings SET value = '3' WHERE name = 'DoFrequencyIP';"
           "UPDATE settings SET value = '3' WHERE name = "
           "'DoMaxSMTPipSessions';"
           "UPDATE settings SET value = '1' WHERE name = 'maxSMTPipSessions';"
           "UPDATE settings SET value = '2' WHERE name = 'maxSMTPipConnects';"
           "UPDATE settings SET value = '30' WHERE name = 'scoreFrequencyIP';"
           "UPDATE settings SET value = '30' WHERE name = "
           "'scoreMaxSMTPipSessions';"
           "UPDATE settings SET value = '50' WHERE name = "
           "'penaltyScoreThreshold'");
    /* One check over its limit: 30 < 50, accepted, logged as score. */
    keep = connect_as("192.0.2.50", "smtpd", &v);
    ck_assert_int_eq(connect_once("192.0.2.50", &v), SG_ACT_NONE);
    ck_assert_ptr_nonnull(capture_find("id=00200153 event=max_smtp_ip_"
                                       "sessions_reached severity=warning "
                                       "action=score"));
    /* Third connection: frequency crosses too, 60 >= 50: refused. */
    ck_assert_int_eq(connect_once("192.0.2.50", &v), SG_ACT_REJECT);
    ck_assert_str_eq(v.code, "554");
    ck_assert_ptr_nonnull(strstr(v.text, "00200160"));
    ck_assert_ptr_nonnull(capture_find("score=60 threshold=50 parts=\""
                                       "FrequencyIP=30,MaxSMTPipSessions=30\""));
    sg_session_free(keep);
}
END_TEST

START_TEST(test_catalogue_override_monitor)
{
    struct sg_verdict v;
    struct sg_session *s[3];

    policy("UPDATE settings SET value = '2' WHERE name = 'maxSMTPipSessions';"
           "UPDATE catalogue SET action_override = 'monitor' WHERE "
           "name = 'max_smtp_ip_sessions_reached'");
    for (int i = 0; i < 3; i++) {
        s[i] = connect_as("192.0.2.60", "smtpd", &v);
        ck_assert_int_eq(v.action, SG_ACT_NONE);
    }
    ck_assert_ptr_nonnull(capture_find("id=00200153 event=max_smtp_ip_"
                                       "sessions_reached severity=warning "
                                       "action=monitor"));
    for (int i = 0; i < 3; i++)
        sg_session_free(s[i]);
}
END_TEST

/*
 * Every session limit in every mode, one table. A trigger brings its limit
 * to the crossing; the mode then decides:
 *   0 off      nothing logged, accepted
 *   1 block    refused with the limit's event and its action
 *   2 monitor  the event logged as monitor, accepted
 *   3 score    the event logged as score and its weight added: accepted
 *              below penaltyScoreThreshold, refused (penalty_score_exceeded)
 *              at it
 */
enum lim { LIM_GLOBAL, LIM_SERVICE, LIM_IP, LIM_FREQUENCY, LIM_DOMAIN_IP,
           LIM_ERRORS, LIM_DENY, LIM_COUNT };
enum mode_case { MC_OFF, MC_BLOCK, MC_MONITOR, MC_SCORE_BELOW,
                 MC_SCORE_AT, MC_COUNT };

#define THRESHOLD 50

static const struct {
    const char *label;
    const char *setup;          /* SQL putting the limit at 1 */
    const char *mode;           /* its mode setting */
    const char *weight;         /* its score weight setting */
    const char *check;          /* its name in the score's parts */
    const char *id;             /* its event */
    enum sg_action block;       /* what block mode does */
    const char *code;
    const char *score_code;     /* the reply when the score refuses */
} limits[LIM_COUNT] = {
    [LIM_GLOBAL] = { "global sessions",
        "UPDATE settings SET value = '1' WHERE name = 'maxSMTPSessions'",
        "DoMaxSMTPSessions", "scoreMaxSMTPSessions", "MaxSMTPSessions",
        "00200150", SG_ACT_CLOSE, "421", "554" },
    [LIM_SERVICE] = { "per-service sessions",
        "INSERT INTO service_limits VALUES ('submission', 1, NULL)",
        "DoMaxSMTPSessions", "scoreMaxSMTPSessions",
        "MaxSMTPServiceSessions", "00200150", SG_ACT_CLOSE, "421", "554" },
    [LIM_IP] = { "per-IP sessions",
        "UPDATE settings SET value = '1' WHERE name = 'maxSMTPipSessions'",
        "DoMaxSMTPipSessions", "scoreMaxSMTPipSessions",
        "MaxSMTPipSessions", "00200153", SG_ACT_CLOSE, "421", "554" },
    [LIM_FREQUENCY] = { "connection frequency",
        "UPDATE settings SET value = '1' WHERE name = 'maxSMTPipConnects'",
        "DoFrequencyIP", "scoreFrequencyIP", "FrequencyIP", "00200154",
        SG_ACT_CLOSE, "421", "554" },
    [LIM_DOMAIN_IP] = { "client subnets per sender domain",
        "UPDATE settings SET value = '1' WHERE name = 'maxSMTPdomainIP'",
        "DoDomainIP", "scoreDomainIP", "DomainIP", "00200156",
        SG_ACT_TEMPFAIL, "451", "550" },
    [LIM_ERRORS] = { "errors per session",
        "UPDATE settings SET value = '1' WHERE name = 'MaxErrors'",
        "DoMaxErrors", "scoreMaxErrors", "MaxErrors", "00200158",
        SG_ACT_CLOSE, "421", "550" },
    [LIM_DENY] = { "strict deny list",
        "INSERT INTO ip_lists (list, network) VALUES "
        "('denySMTPConnectionsFromAlways', '192.0.2.0/24')",
        "DoDenyConnect", "scoreDenyConnect", "DenyConnect", "00200159",
        SG_ACT_REJECT, "554", "554" },
};

/* trigger - bring limit `l` to its crossing; *held: a session kept open
 * for it (or NULL), returns the session that crosses, verdict in v */
static struct sg_session *trigger(enum lim l, struct sg_session **held,
                                  struct sg_verdict *v)
{
    struct sg_session *s;

    *held = NULL;
    switch (l) {
    case LIM_GLOBAL:
        *held = connect_as("198.51.100.1", "smtpd", v);
        ck_assert_int_eq(v->action, SG_ACT_NONE);
        return connect_as("198.51.100.2", "smtpd", v);
    case LIM_SERVICE:
        *held = connect_as("198.51.100.1", "submission", v);
        ck_assert_int_eq(v->action, SG_ACT_NONE);
        /* Another service is not limited by it. */
        ck_assert_int_eq(connect_once("198.51.100.3", v), SG_ACT_NONE);
        return connect_as("198.51.100.2", "submission", v);
    case LIM_IP:
        *held = connect_as("198.51.100.1", "smtpd", v);
        ck_assert_int_eq(v->action, SG_ACT_NONE);
        return connect_as("198.51.100.1", "smtpd", v);
    case LIM_FREQUENCY:
        ck_assert_int_eq(connect_once("198.51.100.1", v), SG_ACT_NONE);
        return connect_as("198.51.100.1", "smtpd", v);
    case LIM_DOMAIN_IP:
        s = connect_as("198.51.100.1", "smtpd", v);
        sg_session_mail(s, "<a@spread.example>", v);
        ck_assert_int_eq(v->action, SG_ACT_NONE);
        sg_session_free(s);
        s = connect_as("203.0.113.1", "smtpd", v);
        ck_assert_int_eq(v->action, SG_ACT_NONE);
        sg_session_mail(s, "<b@spread.example>", v);
        return s;
    case LIM_ERRORS:
        s = connect_as("198.51.100.1", "smtpd", v);
        sg_session_unknown(s, "FOO", v);
        ck_assert_int_eq(v->action, SG_ACT_NONE);
        sg_session_unknown(s, "BAR", v);
        return s;
    default:
        return connect_as("192.0.2.5", "smtpd", v);
    }
}

/* line_with - the captured line of event `id`; fails when there is none */
static const char *line_with(const char *id)
{
    char needle[32];
    const char *line;

    snprintf(needle, sizeof(needle), "id=%s ", id);
    line = capture_find(needle);
    ck_assert_msg(line != NULL, "no %s logged", id);
    return line;
}

START_TEST(test_limit_modes)
{
    enum lim l = (enum lim) (_i / MC_COUNT);
    enum mode_case mc = (enum mode_case) (_i % MC_COUNT);
    static const char *const mode_value[MC_COUNT] = { "0", "1", "2", "3",
                                                      "3" };
    struct sg_session *held, *s;
    struct sg_verdict v;
    char sql[512], want[64];
    long weight = mc == MC_SCORE_AT ? THRESHOLD : THRESHOLD - 1;

    snprintf(sql, sizeof(sql), "%s; UPDATE settings SET value = '%s' WHERE "
             "name = '%s'; UPDATE settings SET value = '%ld' WHERE name = "
             "'%s'; UPDATE settings SET value = '%d' WHERE name = "
             "'penaltyScoreThreshold'", limits[l].setup, mode_value[mc],
             limits[l].mode, weight, limits[l].weight, THRESHOLD);
    policy(sql);
    capture_reset();
    s = trigger(l, &held, &v);
    switch (mc) {
    case MC_OFF:
        ck_assert_msg(v.action == SG_ACT_NONE, "%s off: action %d",
                      limits[l].label, v.action);
        snprintf(want, sizeof(want), "id=%s", limits[l].id);
        ck_assert_int_eq(capture_count(want), 0);
        ck_assert_uint_eq(sg_session_score(s), 0);
        break;
    case MC_BLOCK:
        ck_assert_msg(v.action == limits[l].block, "%s block: action %d",
                      limits[l].label, v.action);
        ck_assert_str_eq(v.code, limits[l].code);
        ck_assert_ptr_nonnull(strstr(v.text, limits[l].id));
        snprintf(want, sizeof(want), "action=%s",
                 sg_action_name(limits[l].block));
        ck_assert_ptr_nonnull(strstr(line_with(limits[l].id), want));
        break;
    case MC_MONITOR:
        ck_assert_msg(v.action == SG_ACT_NONE, "%s monitor: action %d",
                      limits[l].label, v.action);
        ck_assert_ptr_nonnull(strstr(line_with(limits[l].id),
                                     "action=monitor"));
        ck_assert_uint_eq(sg_session_score(s), 0);
        break;
    case MC_SCORE_BELOW:
        ck_assert_msg(v.action == SG_ACT_NONE, "%s score: action %d",
                      limits[l].label, v.action);
        ck_assert_ptr_nonnull(strstr(line_with(limits[l].id),
                                     "action=score"));
        ck_assert_uint_eq(sg_session_score(s), THRESHOLD - 1);
        ck_assert_int_eq(capture_count("id=00200160"), 0);
        break;
    default:
        ck_assert_msg(v.action == SG_ACT_REJECT, "%s score at threshold: "
                      "action %d", limits[l].label, v.action);
        ck_assert_int_eq(v.event, SG_EV_SCORE_EXCEEDED);
        ck_assert_str_eq(v.code, limits[l].score_code);
        ck_assert_ptr_nonnull(strstr(v.text, "00200160"));
        ck_assert_ptr_nonnull(strstr(line_with(limits[l].id),
                                     "action=score"));
        snprintf(want, sizeof(want), "parts=\"%s=%d\"", limits[l].check,
                 THRESHOLD);
        ck_assert_msg(strstr(line_with("00200160"), want) != NULL,
                      "%s: %s lacks %s", limits[l].label,
                      line_with("00200160"), want);
        break;
    }
    sg_session_free(s);
    sg_session_free(held);
    ck_assert_int_eq(sg_state_conc_total(eng->state), 0);
}
END_TEST

/* noProcessingIPs: no session limit, no rate; the deny list still first */
START_TEST(test_no_processing_ips)
{
    struct sg_verdict v;
    struct sg_session *s[3], *t;

    policy("UPDATE settings SET value = '1' WHERE name = 'maxSMTPipSessions';"
           "UPDATE settings SET value = '1' WHERE name = 'maxSMTPipConnects';"
           "UPDATE settings SET value = '1' WHERE name = 'maxEmailPerMinute';"
           "UPDATE settings SET value = 'debug' WHERE name = 'logLevel';"
           "INSERT INTO ip_lists (list, network) VALUES "
           "('noProcessingIPs', '198.51.100.0/24'), "
           "('noProcessingIPs', '2001:db8:5::/48'), "
           "('denySMTPConnectionsFromAlways', '198.51.100.66')");
    for (int i = 0; i < 3; i++) {
        s[i] = connect_as(i == 1 ? "2001:db8:5:1::9" : "198.51.100.7",
                          "smtpd", &v);
        ck_assert_int_eq(v.action, SG_ACT_NONE);
    }
    ck_assert_ptr_nonnull(capture_find("id=00200161 event=session_limits_"
                                       "exempt severity=debug action=accept "
                                       "client=198.51.100.7"));
    ck_assert_ptr_nonnull(capture_find("list=noProcessingIPs "
                                       "entry=198.51.100.0/24"));
    ck_assert_ptr_nonnull(capture_find("list=noProcessingIPs "
                                       "entry=2001:db8:5::/48"));
    for (int i = 0; i < 3; i++) {
        sg_session_mail(s[0], "<news@sender.example>", &v);
        ck_assert_int_eq(v.action, SG_ACT_NONE);
        sg_session_message_done(s[0]);
    }
    ck_assert_int_eq(capture_count("id=00200151"), 0);
    ck_assert_int_eq(capture_count("id=00200153"), 0);
    ck_assert_int_eq(capture_count("id=00200154"), 0);
    for (int i = 0; i < 3; i++)
        sg_session_free(s[i]);
    /* The default entry: the host itself. */
    ck_assert_int_eq(connect_once("127.0.0.1", &v), SG_ACT_NONE);
    ck_assert_ptr_nonnull(capture_find("list=noProcessingIPs "
                                       "entry=127.0.0.1"));
    /* The deny list comes before it. */
    ck_assert_int_eq(connect_once("198.51.100.66", &v), SG_ACT_REJECT);
    ck_assert_ptr_nonnull(strstr(v.text, "00200159"));
    /* Outside the list the same limits hold. */
    t = connect_as("203.0.113.7", "smtpd", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    ck_assert_int_eq(connect_once("203.0.113.7", &v), SG_ACT_CLOSE);
    sg_session_free(t);
}
END_TEST

/* line_index - the index of the last captured line holding `needle` */
static int line_index(const char *needle)
{
    for (int i = captured.n - 1; i >= 0; i--)
        if (strstr(captured.line[i], needle) != NULL)
            return i;
    ck_abort_msg("no line with %s", needle);
    return -1;
}

/* A severity override written to the catalogue table reaches the line. */
START_TEST(test_catalogue_severity_override)
{
    struct sg_verdict v;
    struct sg_session *keep;
    int i;

    policy("UPDATE settings SET value = '1' WHERE name = 'maxSMTPipSessions';"
           "UPDATE catalogue SET severity_override = 'error' WHERE id = "
           "'00200153'");
    ck_assert_int_eq(db_count("SELECT count(*) FROM catalogue WHERE "
                              "severity_override = 'error'"), 1);
    keep = connect_as("192.0.2.80", "smtpd", &v);
    capture_reset();
    ck_assert_int_eq(connect_once("192.0.2.80", &v), SG_ACT_CLOSE);
    i = line_index("id=00200153 ");
    ck_assert_ptr_nonnull(strstr(captured.line[i], "event=max_smtp_ip_"
                                 "sessions_reached severity=error "
                                 "action=close"));
    ck_assert_int_eq(captured.sev[i], SG_SEV_ERR);
    /* Severity only: the action is still the default. */
    ck_assert_int_eq(v.action, SG_ACT_CLOSE);
    /* Below logLevel it is not logged at all. */
    policy("UPDATE catalogue SET severity_override = 'debug' WHERE id = "
           "'00200153'");
    capture_reset();
    atomic_store(&test_log.max_severity, SG_SEV_INFO);  /* logLevel info */
    ck_assert_int_eq(connect_once("192.0.2.80", &v), SG_ACT_CLOSE);
    ck_assert_int_eq(capture_count("id=00200153"), 0);
    /* Cleared: the catalogue's default again. */
    policy("UPDATE catalogue SET severity_override = NULL WHERE id = "
           "'00200153'");
    capture_reset();
    ck_assert_int_eq(connect_once("192.0.2.80", &v), SG_ACT_CLOSE);
    i = line_index("id=00200153 ");
    ck_assert_ptr_nonnull(strstr(captured.line[i], "severity=warning "
                                 "action=close"));
    ck_assert_int_eq(captured.sev[i], SG_SEV_WARNING);
    sg_session_free(keep);
}
END_TEST

START_TEST(test_session_alloc_failure)
{
    struct sg_session_info info = { "192.0.2.1", NULL, "smtpd", NULL };
    struct sg_verdict v;

    capture_reset();
    sg_alloc_fail_after(0);
    ck_assert_ptr_null(sg_session_new(eng, &info));
    sg_alloc_fail_after(-1);
    ck_assert_ptr_nonnull(capture_find("id=00200152 event=failed_create_new_"
                                       "session severity=critical "
                                       "action=tempfail client=192.0.2.1"));
    sg_verdict_session_alloc(&v);
    ck_assert_int_eq(v.action, SG_ACT_TEMPFAIL);
    ck_assert_str_eq(v.code, "451");
    ck_assert_str_eq(v.xcode, "4.3.0");
    ck_assert_ptr_nonnull(strstr(v.text, "00200152"));
    /* The daemon goes on serving. */
    ck_assert_int_eq(connect_once("192.0.2.1", &v), SG_ACT_NONE);
    ck_assert_int_eq(sg_state_conc_total(eng->state), 0);
}
END_TEST

START_TEST(test_live_reload_and_signal)
{
    struct sg_verdict v;
    struct sg_session *a;

    policy("UPDATE settings SET value = '1' WHERE name = 'maxSMTPipSessions'");
    ck_assert_ptr_nonnull(capture_find("trigger=\"database change\""));
    a = connect_as("192.0.2.70", "smtpd", &v);
    ck_assert_int_eq(connect_once("192.0.2.70", &v), SG_ACT_CLOSE);
    policy("UPDATE settings SET value = '5' WHERE name = 'maxSMTPipSessions'");
    ck_assert_int_eq(connect_once("192.0.2.70", &v), SG_ACT_NONE);
    /* A session keeps the policy it started with. */
    ck_assert_int_eq(sg_config_get(eng->conf.cur, SG_SET_max_ip_sessions), 5);
    capture_reset();
    sg_engine_request_reload(eng);
    sg_engine_tick(eng);
    ck_assert_ptr_nonnull(capture_find("trigger=signal"));
    /* logLevel follows the setting. */
    policy("UPDATE settings SET value = 'warning' WHERE name = 'logLevel'");
    ck_assert_int_eq(atomic_load(&test_log.max_severity), SG_SEV_WARNING);
    sg_session_free(a);
}
END_TEST


START_TEST(test_dns_renew)
{
    struct sg_dns *a = sg_engine_dns(eng), *b;
    struct sg_dns_batch *batch = sg_dns_batch_new(a);
    struct sg_dns_stats st;
    char sa[128], sb[128];

    ck_assert_ptr_nonnull(batch);
    ck_assert_int_ge(sg_dns_query(batch, "renew.example", SG_DNS_T_A), 0);
    sg_dns_batch_free(batch);
    sg_dns_get_stats(a, &st);
    ck_assert_uint_eq(st.queries, 1);
    sg_engine_dns_renew(eng);
    b = sg_engine_dns(eng);
    ck_assert_ptr_ne(a, b);
    sg_dns_get_stats(b, &st);
    ck_assert_uint_eq(st.queries, 0);   /* nothing carried over */
    sg_dns_servers_text(a, sa, sizeof(sa));
    sg_dns_servers_text(b, sb, sizeof(sb));
    ck_assert_str_eq(sa, sb);           /* the settings in force */
    sg_dns_free(a);                     /* the old one, still ours */
    sg_dns_free(b);
}
END_TEST

/* unlink_db - the database file and its WAL and shared-memory files */
static void unlink_db(const char *path)
{
    char name[4200];

    unlink(path);
    snprintf(name, sizeof(name), "%s-wal", path);
    unlink(name);
    snprintf(name, sizeof(name), "%s-shm", path);
    unlink(name);
}

static long setting_now(enum sg_setting id)
{
    struct sg_config *cfg = sg_confhold_get(&eng->conf);
    long v = (long) sg_config_get(cfg, id);

    sg_config_unref(cfg);
    return v;
}

START_TEST(test_db_deleted_recreated)
{
    struct sg_verdict v;
    const char *db = temp_db_of(eng);

    policy("UPDATE settings SET value = '2' WHERE name = 'maxSMTPipConnects'");
    for (int i = 0; i < 3; i++)
        connect_once("192.0.2.60", &v);
    ck_assert_int_eq(v.action, SG_ACT_CLOSE);
    sg_engine_tick(eng);
    ck_assert_int_eq(db_count("SELECT count(*) FROM bans"), 1);
    /* Deleted under the running daemon; more counting meanwhile. */
    unlink_db(db);
    connect_once("192.0.2.61", &v);
    connect_once("192.0.2.61", &v);
    capture_reset();
    sg_engine_tick(eng);
    ck_assert_int_eq(capture_count("id=00290012"), 1);
    ck_assert_int_eq(capture_count("how=deleted created=yes bans=1"), 1);
    ck_assert_int_eq(capture_count("id=00290009"), 1);  /* created */
    ck_assert_int_eq(db_count("SELECT count(*) FROM bans WHERE key = "
                              "'192.0.2.60'"), 1);
    ck_assert_int_eq(db_count("SELECT count FROM rate_windows WHERE key = "
                              "'conn:192.0.2.61'"), 2);
    /* The new file's policies (the defaults) are in force; the ban too. */
    ck_assert_int_eq(setting_now(SG_SET_max_ip_connects), 20);
    ck_assert_int_eq(connect_once("192.0.2.60", &v), SG_ACT_CLOSE);
    ck_assert_int_eq(capture_count("id=00290006"), 0);
}
END_TEST

START_TEST(test_db_replaced_by_restore)
{
    struct sg_verdict v;
    const char *db = temp_db_of(eng);
    const char *other = temp_db("restored.db");
    struct sg_store *s;
    struct sg_err err;

    policy("UPDATE settings SET value = '1' WHERE name = 'maxSMTPipConnects'");
    connect_once("192.0.2.62", &v);
    ck_assert_int_eq(connect_once("192.0.2.62", &v), SG_ACT_CLOSE);
    sg_engine_tick(eng);
    /* A "backup" with its own policy, moved into place. */
    ck_assert_int_eq(sg_store_open(other, &test_log, &s, &err), SG_OK);
    sg_store_close(s);
    test_sql(other, "UPDATE settings SET value = '7' WHERE name = "
             "'MaxErrors'");
    ck_assert_int_eq(db_count_in(other, "SELECT value FROM settings WHERE "
                                 "name = 'MaxErrors'"), 7);
    ck_assert_int_eq(rename(other, db), 0);
    capture_reset();
    sg_engine_tick(eng);
    ck_assert_int_eq(capture_count("how=replaced created=no bans=1"), 1);
    ck_assert_int_eq(db_count("SELECT value FROM settings WHERE name = "
                              "'MaxErrors'"), 7);
    ck_assert_int_eq(setting_now(SG_SET_max_errors), 7);
    ck_assert_int_eq(db_count("SELECT count(*) FROM bans WHERE key = "
                              "'192.0.2.62'"), 1);
    ck_assert_int_eq(connect_once("192.0.2.62", &v), SG_ACT_CLOSE);
    /* Bans written from a worker reach the new file, not the old one. */
    sg_engine_tick(eng);
    ck_assert_int_eq(capture_count("id=00290006"), 0);
}
END_TEST

START_TEST(test_db_fail_mode)
{
    char dir[] = "/tmp/sgfail.XXXXXX", away[64], path[128];
    struct sg_engine_opts o = { .db_path = path,
                                .env = { .log = &test_log, .now = fake_clock },
                                .dns_servers = TEST_DNS_NOWHERE };
    struct sg_err err;
    struct sg_verdict v;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/sg.db", dir);
    snprintf(away, sizeof(away), "%s.away", dir);
    sg_engine_close(eng, "test");
    ck_assert_int_eq(sg_engine_open(&o, &eng, &err), SG_OK);
    test_sql(path, "UPDATE settings SET value = 'tempfail' WHERE name = "
             "'databaseFailMode'; UPDATE settings SET value = '0' WHERE "
             "name IN ('DoSPF', 'DoFCrDNS')");
    sg_engine_tick(eng);
    ck_assert_int_eq(connect_once("192.0.2.70", &v), SG_ACT_NONE);
    /* The directory goes away: nothing can be written or recreated. */
    ck_assert_int_eq(rename(dir, away), 0);
    capture_reset();
    sg_engine_tick(eng);
    ck_assert_int_ge(capture_count("id=00290006"), 1);
    ck_assert_uint_gt(sg_engine_db_failing(eng), 0);
    ck_assert_int_eq(connect_once("192.0.2.71", &v), SG_ACT_TEMPFAIL);
    ck_assert_str_eq(v.code, "451");
    ck_assert_int_eq(capture_count("id=00290014"), 1);
    /* Back: reopened, the counts held meanwhile written, mail accepted. */
    ck_assert_int_eq(rename(away, dir), 0);
    capture_reset();
    sg_engine_tick(eng);
    ck_assert_int_eq(capture_count("id=00290007"), 1);     /* recovered */
    ck_assert_uint_eq(sg_engine_db_failing(eng), 0);
    ck_assert_int_eq(connect_once("192.0.2.71", &v), SG_ACT_NONE);
    ck_assert_int_eq(db_count_in(path, "SELECT count FROM rate_windows "
                                 "WHERE key = 'conn:192.0.2.70'"), 1);
    /* Open mode (the default) serves from memory through the fault. */
    test_sql(path, "UPDATE settings SET value = 'open' WHERE name = "
             "'databaseFailMode'");
    sg_engine_tick(eng);
    ck_assert_int_eq(rename(dir, away), 0);
    sg_engine_tick(eng);
    ck_assert_uint_gt(sg_engine_db_failing(eng), 0);
    ck_assert_int_eq(connect_once("192.0.2.72", &v), SG_ACT_NONE);
    ck_assert_int_eq(rename(away, dir), 0);
    sg_engine_tick(eng);
    ck_assert_int_eq(db_count_in(path, "SELECT count FROM rate_windows "
                                 "WHERE key = 'conn:192.0.2.72'"), 1);
}
END_TEST

Suite *policy_suite(void)
{
    Suite *s = suite_create("policy");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_plain_session_passes);
    tcase_add_test(tc, test_deny_list);
    tcase_add_test(tc, test_global_and_service_sessions);
    tcase_add_test(tc, test_ip_sessions_ipv6_prefix);
    tcase_add_test(tc, test_frequency_ban_persists);
    tcase_add_test(tc, test_purge_keeps_operator_changes);
    tcase_add_test(tc, test_frequency_monitor_and_counters_persist);
    tcase_add_test(tc, test_domain_ip_switches);
    tcase_add_test(tc, test_max_errors_closes);
    tcase_add_test(tc, test_exempt_skips_limits);
    tcase_add_test(tc, test_score_mode);
    tcase_add_test(tc, test_catalogue_override_monitor);
    tcase_add_test(tc, test_catalogue_severity_override);
    tcase_add_test(tc, test_no_processing_ips);
    tcase_add_loop_test(tc, test_limit_modes, 0, LIM_COUNT * MC_COUNT);
    tcase_add_test(tc, test_session_alloc_failure);
    tcase_add_test(tc, test_live_reload_and_signal);
    tcase_add_test(tc, test_dns_renew);
    tcase_add_test(tc, test_db_deleted_recreated);
    tcase_add_test(tc, test_db_replaced_by_restore);
    tcase_add_test(tc, test_db_fail_mode);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}
