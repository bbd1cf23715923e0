/*
 * test_state.c - in-memory windows, histories, bans and concurrency
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "state.h"
#include "testutil.h"

START_TEST(test_concurrency_counts)
{
    struct sg_state *st = sg_state_new();
    struct sg_conc_counts c;

    ck_assert_int_eq(sg_state_conc_enter(st, "smtpd", "192.0.2.1", &c), SG_OK);
    ck_assert_int_eq(c.global, 1);
    sg_state_conc_enter(st, "smtpd", "192.0.2.1", &c);
    ck_assert_int_eq(c.global, 2);
    ck_assert_int_eq(c.service, 2);
    ck_assert_int_eq(c.client, 2);
    sg_state_conc_enter(st, "submission", "192.0.2.2", &c);
    ck_assert_int_eq(c.global, 3);
    ck_assert_int_eq(c.service, 1);
    ck_assert_int_eq(c.client, 1);
    sg_state_conc_leave(st, "smtpd", "192.0.2.1");
    sg_state_conc_leave(st, "smtpd", "192.0.2.1");
    sg_state_conc_leave(st, "submission", "192.0.2.2");
    ck_assert_int_eq(sg_state_conc_total(st), 0);
    /* A stray leave never drives counts negative. */
    sg_state_conc_leave(st, "smtpd", "192.0.2.1");
    ck_assert_int_eq(sg_state_conc_total(st), 0);
    sg_state_conc_enter(st, "smtpd", "192.0.2.1", &c);
    ck_assert_int_eq(c.client, 1);
    sg_state_free(st);
}
END_TEST

START_TEST(test_concurrency_enomem)
{
    struct sg_state *st = sg_state_new();
    struct sg_conc_counts c;

    sg_alloc_fail_after(1);     /* the service entry fits, the client not */
    ck_assert_int_eq(sg_state_conc_enter(st, "smtpd", "192.0.2.1", &c),
                     SG_ENOMEM);
    sg_alloc_fail_after(-1);
    ck_assert_int_eq(sg_state_conc_total(st), 0);
    ck_assert_int_eq(sg_state_conc_enter(st, "smtpd", "192.0.2.1", &c), SG_OK);
    ck_assert_int_eq(c.service, 1);
    sg_state_free(st);
}
END_TEST

struct hammer {
    struct sg_state *st;
    int id;
};

static void *hammer_thread(void *arg)
{
    struct hammer *h = arg;
    struct sg_conc_counts c;
    char key[32];

    snprintf(key, sizeof(key), "192.0.2.%d", h->id % 4);
    for (int i = 0; i < 20000; i++) {
        sg_state_conc_enter(h->st, "smtpd", key, &c);
        sg_state_rate_hit(h->st, key, 1000 + i / 1000, 90);
        sg_state_conc_leave(h->st, "smtpd", key);
    }
    return NULL;
}

START_TEST(test_concurrency_threads_no_drift)
{
    struct sg_state *st = sg_state_new();
    pthread_t t[8];
    struct hammer h[8];

    for (int i = 0; i < 8; i++) {
        h[i].st = st;
        h[i].id = i;
        pthread_create(&t[i], NULL, hammer_thread, &h[i]);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(sg_state_conc_total(st), 0);
    /* 2 threads per key, 20000 hits each, all in one 90 s window. */
    ck_assert_uint_eq(sg_state_rate_hit(st, "192.0.2.0", 1019, 90), 40001);
    sg_state_free(st);
}
END_TEST

static const struct {
    const char *label;
    sg_time_t at[6];
    int n;
    unsigned want_last;
} window_cases[] = {
    { "three in window", { 100, 101, 150 }, 3, 3 },
    { "window edge restarts", { 100, 150, 190 }, 3, 1 },      /* 190-100=90 */
    { "just inside", { 100, 150, 189 }, 3, 3 },
    { "clock backwards restarts", { 100, 101, 50 }, 3, 1 },
    { "restart then count", { 100, 300, 301, 302 }, 4, 3 },
};

START_TEST(test_rate_window)
{
    struct sg_state *st = sg_state_new();
    unsigned got = 0;

    for (int i = 0; i < window_cases[_i].n; i++)
        got = sg_state_rate_hit(st, "k", window_cases[_i].at[i], 90);
    ck_assert_msg(got == window_cases[_i].want_last, "%s: got %u, want %u",
                  window_cases[_i].label, got, window_cases[_i].want_last);
    sg_state_free(st);
}
END_TEST

START_TEST(test_rate_reset_and_load)
{
    struct sg_state *st = sg_state_new();

    sg_state_rate_hit(st, "k", 100, 90);
    sg_state_rate_hit(st, "k", 101, 90);
    sg_state_rate_reset(st, "k", 102);
    ck_assert_uint_eq(sg_state_rate_hit(st, "k", 103, 90), 1);
    ck_assert_int_eq(sg_state_rate_load(st, "j", 100, 90, 7), SG_OK);
    ck_assert_uint_eq(sg_state_rate_hit(st, "j", 120, 90), 8);
    sg_state_free(st);
}
END_TEST

START_TEST(test_domain_history)
{
    struct sg_state *st = sg_state_new();

    ck_assert_uint_eq(sg_state_domain_hit(st, "example.com", "192.0.2.0/24",
                                          100, 3600), 1);
    ck_assert_uint_eq(sg_state_domain_hit(st, "example.com", "192.0.2.0/24",
                                          110, 3600), 1);
    ck_assert_uint_eq(sg_state_domain_hit(st, "example.com",
                                          "198.51.100.0/24", 120, 3600), 2);
    ck_assert_uint_eq(sg_state_domain_hit(st, "example.org",
                                          "198.51.100.0/24", 120, 3600), 1);
    /* The first subnet was last seen at 110: gone by 3710. */
    ck_assert_uint_eq(sg_state_domain_hit(st, "example.com",
                                          "203.0.113.0/24", 3710, 3600), 2);
    sg_state_domain_reset(st, "example.com");
    ck_assert_uint_eq(sg_state_domain_hit(st, "example.com",
                                          "203.0.113.0/24", 3711, 3600), 1);
    sg_state_free(st);
}
END_TEST

START_TEST(test_bans)
{
    struct sg_state *st = sg_state_new();
    struct sg_ban b = { .kind = SG_BAN_IP, .created = 100, .expires = 200 };
    struct sg_ban got;

    strcpy(b.key, "192.0.2.1");
    strcpy(b.reason, "00200154");
    ck_assert_uint_gt(sg_state_ban_add(st, &b), 0);
    ck_assert(sg_state_ban_find(st, SG_BAN_IP, "192.0.2.1", 150, &got));
    ck_assert_str_eq(got.reason, "00200154");
    ck_assert(!got.persisted);
    ck_assert(!sg_state_ban_find(st, SG_BAN_IP, "192.0.2.1", 200, &got));
    ck_assert(!sg_state_ban_find(st, SG_BAN_DOMAIN, "192.0.2.1", 150, &got));
    sg_state_purge(st, 200, 90, 3600);
    ck_assert(!sg_state_ban_find(st, SG_BAN_IP, "192.0.2.1", 150, &got));
    sg_state_free(st);
}
END_TEST

START_TEST(test_bans_replace_keeps_newer)
{
    struct sg_state *st = sg_state_new();
    struct sg_ban b = { .kind = SG_BAN_IP, .created = 100, .expires = 900 };
    struct sg_ban got, rows[1];
    uint64_t g_old, before;

    strcpy(b.key, "old");
    g_old = sg_state_ban_add(st, &b);
    sg_state_ban_persisted(st, SG_BAN_IP, "old", g_old);
    strcpy(b.key, "unwritten");
    sg_state_ban_add(st, &b);                   /* never persisted */
    before = sg_state_ban_gen(st);
    strcpy(b.key, "new");
    sg_state_ban_add(st, &b);                   /* added after the SELECT */
    sg_state_ban_persisted(st, SG_BAN_IP, "new", before + 1);
    rows[0] = b;
    strcpy(rows[0].key, "fromdb");
    /* The database no longer has "old": an operator deleted it. */
    ck_assert_int_eq(sg_state_bans_replace(st, rows, 1, before), SG_OK);
    ck_assert(!sg_state_ban_find(st, SG_BAN_IP, "old", 150, &got));
    ck_assert(sg_state_ban_find(st, SG_BAN_IP, "unwritten", 150, &got));
    ck_assert(sg_state_ban_find(st, SG_BAN_IP, "new", 150, &got));
    ck_assert(sg_state_ban_find(st, SG_BAN_IP, "fromdb", 150, &got));
    ck_assert(got.persisted);
    sg_state_free(st);
}
END_TEST

START_TEST(test_collect_and_failure)
{
    struct sg_state *st = sg_state_new();
    struct sg_flush_batch b;
    struct sg_ban ban = { .kind = SG_BAN_DOMAIN, .created = 1, .expires = 9 };

    sg_state_rate_hit(st, "192.0.2.1", 100, 90);
    sg_state_rate_hit(st, "192.0.2.2", 100, 90);
    sg_state_domain_hit(st, "example.com", "192.0.2.0/24", 100, 3600);
    strcpy(ban.key, "example.com");
    sg_state_ban_add(st, &ban);
    ck_assert_int_eq(sg_state_collect(st, &b), SG_OK);
    ck_assert_uint_eq(b.nrates, 2);
    ck_assert_uint_eq(b.ndomains, 1);
    ck_assert_uint_eq(b.nbans, 1);
    /* The write failed: everything must come again next time. */
    sg_state_flush_failed(st, &b);
    sg_flush_batch_free(&b);
    ck_assert_int_eq(sg_state_collect(st, &b), SG_OK);
    ck_assert_uint_eq(b.nrates, 2);
    ck_assert_uint_eq(b.ndomains, 1);
    ck_assert_uint_eq(b.nbans, 1);
    sg_state_ban_persisted(st, SG_BAN_DOMAIN, "example.com", b.bans[0].gen);
    sg_flush_batch_free(&b);
    /* Written: nothing dirty any more. */
    ck_assert_int_eq(sg_state_collect(st, &b), SG_OK);
    ck_assert_uint_eq(b.nrates + b.ndomains + b.nbans, 0);
    sg_flush_batch_free(&b);
    /* A reset domain is collected as a delete. */
    sg_state_domain_reset(st, "example.com");
    ck_assert_int_eq(sg_state_collect(st, &b), SG_OK);
    ck_assert_uint_eq(b.ndomains, 1);
    ck_assert(b.domains[0].reset);
    ck_assert_str_eq(b.domains[0].subnet, "");
    sg_flush_batch_free(&b);
    sg_state_free(st);
}
END_TEST

START_TEST(test_purge_windows)
{
    struct sg_state *st = sg_state_new();
    struct sg_flush_batch b;
    struct sg_state_stats stats;

    sg_state_rate_hit(st, "a", 100, 90);
    sg_state_domain_hit(st, "example.com", "192.0.2.0/24", 100, 3600);
    sg_state_collect(st, &b);           /* clean, so purgeable */
    sg_flush_batch_free(&b);
    sg_state_purge(st, 150, 90, 3600);
    sg_state_stats(st, &stats);
    ck_assert_uint_eq(stats.windows, 1);
    ck_assert_uint_eq(stats.domains, 1);
    sg_state_purge(st, 5000, 90, 3600);
    sg_state_stats(st, &stats);
    ck_assert_uint_eq(stats.windows, 0);
    ck_assert_uint_eq(stats.domains, 0);
    sg_state_free(st);
}
END_TEST

#define N(a) ((int) (sizeof(a) / sizeof((a)[0])))

Suite *state_suite(void)
{
    Suite *s = suite_create("state");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_concurrency_counts);
    tcase_add_test(tc, test_concurrency_enomem);
    tcase_add_test(tc, test_concurrency_threads_no_drift);
    tcase_add_loop_test(tc, test_rate_window, 0, N(window_cases));
    tcase_add_test(tc, test_rate_reset_and_load);
    tcase_add_test(tc, test_domain_history);
    tcase_add_test(tc, test_bans);
    tcase_add_test(tc, test_bans_replace_keeps_newer);
    tcase_add_test(tc, test_collect_and_failure);
    tcase_add_test(tc, test_purge_windows);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return s;
}
