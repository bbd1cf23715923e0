/*
 * test_state.c - in-memory windows, histories, bans and concurrency
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "dns.h"
#include "siphash.h"
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

/* ---- bounds ---- */

START_TEST(test_bound_holds)
{
    struct sg_state *st = sg_state_new();
    struct sg_state_stats stats;
    char key[64];

    sg_state_set_limits(st, 1000, 500);
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "mail:sender:u%d@example.com", i);
        ck_assert_uint_eq(sg_state_rate_hit(st, key, 100, 60), 1);
        snprintf(key, sizeof(key), "d%d.example", i);
        ck_assert_uint_eq(sg_state_domain_hit(st, key, "192.0.2.0/24", 100,
                                              3600), 1);
    }
    sg_state_stats(st, &stats);
    ck_assert_uint_eq(stats.windows, 1000);
    ck_assert_uint_eq(stats.windows_evicted, 9000);
    ck_assert_uint_eq(stats.domains, 500);
    ck_assert_uint_eq(stats.domains_evicted, 9500);
    ck_assert_uint_eq(stats.windows_max, 1000);
    /* A lower bound shrinks the map at its next new key. */
    sg_state_set_limits(st, 100, 500);
    sg_state_rate_hit(st, "fresh", 100, 60);
    sg_state_stats(st, &stats);
    ck_assert_uint_eq(stats.windows, 100);
    sg_state_free(st);
}
END_TEST

START_TEST(test_eviction_order)
{
    struct sg_state *st = sg_state_new();
    char key[32];

    sg_state_set_limits(st, 100, 100);
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        sg_state_rate_hit(st, key, 100, 60);
        snprintf(key, sizeof(key), "d%d.example", i);
        sg_state_domain_hit(st, key, "192.0.2.0/24", 100, 3600);
    }
    /* k0 and d0 are the oldest; using them makes k1 and d1 the oldest. */
    ck_assert_uint_eq(sg_state_rate_hit(st, "k0", 101, 60), 2);
    ck_assert_uint_eq(sg_state_domain_hit(st, "d0.example", "198.51.100.0/24",
                                          101, 3600), 2);
    sg_state_rate_hit(st, "new1", 102, 60);
    sg_state_domain_hit(st, "new1.example", "192.0.2.0/24", 102, 3600);
    ck_assert_uint_eq(sg_state_rate_count(st, "k1", 103, 60), 0);
    ck_assert_uint_eq(sg_state_rate_count(st, "k0", 103, 60), 2);
    ck_assert_uint_eq(sg_state_rate_count(st, "k2", 103, 60), 1);
    /* d1 starts again from nothing, d0 kept both subnets. */
    ck_assert_uint_eq(sg_state_domain_hit(st, "d0.example", "192.0.2.0/24",
                                          103, 3600), 2);
    sg_state_domain_hit(st, "new2.example", "192.0.2.0/24", 103, 3600);
    ck_assert_uint_eq(sg_state_domain_hit(st, "d1.example", "203.0.113.0/24",
                                          104, 3600), 1);
    /* The next in line went for d1's return, in order: d2, then d3. */
    ck_assert_uint_eq(sg_state_domain_hit(st, "d4.example", "203.0.113.0/24",
                                          104, 3600), 2);
    sg_state_free(st);
}
END_TEST

START_TEST(test_bans_survive_eviction)
{
    struct sg_state *st = sg_state_new();
    struct sg_ban b = { .kind = SG_BAN_IP, .created = 100, .expires = 9000 };
    struct sg_ban got;
    struct sg_state_stats stats;
    char key[64];

    sg_state_set_limits(st, 100, 100);
    strcpy(b.key, "192.0.2.1");
    sg_state_rate_hit(st, "conn:192.0.2.1", 100, 90);
    ck_assert_uint_gt(sg_state_ban_add(st, &b), 0);
    b.kind = SG_BAN_DOMAIN;
    strcpy(b.key, "example.com");
    sg_state_domain_hit(st, "example.com", "192.0.2.0/24", 100, 3600);
    ck_assert_uint_gt(sg_state_ban_add(st, &b), 0);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "mail:sender:u%d@example.net", i);
        sg_state_rate_hit(st, key, 101, 60);
        snprintf(key, sizeof(key), "d%d.example", i);
        sg_state_domain_hit(st, key, "192.0.2.0/24", 101, 3600);
    }
    /* The window and history behind the bans are gone; the bans not. */
    ck_assert_uint_eq(sg_state_rate_count(st, "conn:192.0.2.1", 102, 90), 0);
    ck_assert(sg_state_ban_find(st, SG_BAN_IP, "192.0.2.1", 102, &got));
    ck_assert(sg_state_ban_find(st, SG_BAN_DOMAIN, "example.com", 102, &got));
    sg_state_stats(st, &stats);
    ck_assert_uint_eq(stats.bans, 2);
    sg_state_free(st);
}
END_TEST

START_TEST(test_eviction_event)
{
    struct sg_engine *eng;
    char key[64];

    fake_now = 1700000000;
    eng = test_engine();
    test_sql(temp_db_of(eng), "UPDATE settings SET value = '100' "
             "WHERE name = 'maxCountingWindows'");
    sg_engine_tick(eng);
    capture_reset();
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "rcpt:ip:198.51.100.%d", i);
        sg_state_rate_hit(eng->state, key, fake_now, 60);
    }
    sg_engine_tick(eng);
    ck_assert_int_eq(capture_count("state_evicting"), 0);   /* full, none out */
    for (int i = 100; i < 130; i++) {
        snprintf(key, sizeof(key), "rcpt:ip:198.51.100.%d", i);
        sg_state_rate_hit(eng->state, key, fake_now, 60);
    }
    sg_engine_tick(eng);
    ck_assert_int_eq(capture_count("state_evicting"), 1);
    ck_assert_ptr_nonnull(capture_find("map=windows evicted=30 entries=100 "
                                       "limit=100"));
    /* Within the minute: counted, not logged. */
    for (int i = 130; i < 200; i++) {
        snprintf(key, sizeof(key), "rcpt:ip:198.51.100.%d", i);
        sg_state_rate_hit(eng->state, key, fake_now, 60);
        if (i % 3 == 0)
            fake_now++;             /* 23 s in all */
        sg_engine_tick(eng);
    }
    ck_assert_int_eq(capture_count("state_evicting"), 1);
    fake_now += 40;
    sg_engine_tick(eng);
    ck_assert_int_eq(capture_count("state_evicting"), 2);
    ck_assert_ptr_nonnull(capture_find("map=windows evicted=70 "));
    sg_engine_tick(eng);            /* nothing new: no line */
    ck_assert_int_eq(capture_count("state_evicting"), 2);
    sg_engine_close(eng, "test");
}
END_TEST

/* A query the resolver could not send (no socket): one dns_local_error
 * line from the maintenance tick, then the same pace as evictions. */
START_TEST(test_dns_local_error_event)
{
    struct sg_engine *eng;
    struct sg_dns *dns;
    struct sg_dns_batch *b;
    struct rlimit old, low;
    int probe;

    fake_now = 1700000000;
    eng = test_engine();
    dns = sg_engine_dns(eng);
    ck_assert_ptr_nonnull(dns);
    b = sg_dns_batch_new(dns);
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    probe = dup(0);
    ck_assert_int_ge(probe, 0);
    close(probe);
    low = old;
    low.rlim_cur = (rlim_t) probe;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    sg_dns_query(b, "a.example", SG_DNS_T_A);
    sg_dns_query(b, "b.example", SG_DNS_T_A);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    sg_dns_batch_free(b);
    sg_engine_tick(eng);
    ck_assert_int_eq(capture_count("dns_local_error"), 1);
    ck_assert_ptr_nonnull(capture_find("what=socket error=\"Too many open "
                                       "files\" tries=2"));
    sg_engine_tick(eng);            /* nothing new: no line */
    ck_assert_int_eq(capture_count("dns_local_error"), 1);
    sg_dns_free(dns);
    sg_engine_close(eng, "test");
}
END_TEST

/* SipHash-2-4 with key 00..0f of inputs 00, 00 01, ... (the paper's
 * vectors.h). */
static const uint64_t sip_vectors[64] = {
    0x726fdb47dd0e0e31ULL, 0x74f839c593dc67fdULL, 0x0d6c8009d9a94f5aULL,
    0x85676696d7fb7e2dULL, 0xcf2794e0277187b7ULL, 0x18765564cd99a68dULL,
    0xcbc9466e58fee3ceULL, 0xab0200f58b01d137ULL, 0x93f5f5799a932462ULL,
    0x9e0082df0ba9e4b0ULL, 0x7a5dbbc594ddb9f3ULL, 0xf4b32f46226bada7ULL,
    0x751e8fbc860ee5fbULL, 0x14ea5627c0843d90ULL, 0xf723ca908e7af2eeULL,
    0xa129ca6149be45e5ULL, 0x3f2acc7f57c29bdbULL, 0x699ae9f52cbe4794ULL,
    0x4bc1b3f0968dd39cULL, 0xbb6dc91da77961bdULL, 0xbed65cf21aa2ee98ULL,
    0xd0f2cbb02e3b67c7ULL, 0x93536795e3a33e88ULL, 0xa80c038ccd5ccec8ULL,
    0xb8ad50c6f649af94ULL, 0xbce192de8a85b8eaULL, 0x17d835b85bbb15f3ULL,
    0x2f2e6163076bcfadULL, 0xde4daaaca71dc9a5ULL, 0xa6a2506687956571ULL,
    0xad87a3535c49ef28ULL, 0x32d892fad841c342ULL, 0x7127512f72f27cceULL,
    0xa7f32346f95978e3ULL, 0x12e0b01abb051238ULL, 0x15e034d40fa197aeULL,
    0x314dffbe0815a3b4ULL, 0x027990f029623981ULL, 0xcadcd4e59ef40c4dULL,
    0x9abfd8766a33735cULL, 0x0e3ea96b5304a7d0ULL, 0xad0c42d6fc585992ULL,
    0x187306c89bc215a9ULL, 0xd4a60abcf3792b95ULL, 0xf935451de4f21df2ULL,
    0xa9538f0419755787ULL, 0xdb9acddff56ca510ULL, 0xd06c98cd5c0975ebULL,
    0xe612a3cb9ecba951ULL, 0xc766e62cfcadaf96ULL, 0xee64435a9752fe72ULL,
    0xa192d576b245165aULL, 0x0a8787bf8ecb74b2ULL, 0x81b3e73d20b49b6fULL,
    0x7fa8220ba3b2eceaULL, 0x245731c13ca42499ULL, 0xb78dbfaf3a8d83bdULL,
    0xea1ad565322a1a0bULL, 0x60e61c23a3795013ULL, 0x6606d7e446282b93ULL,
    0x6ca4ecb15c5f91e1ULL, 0x9f626da15c9625f3ULL, 0xe51b38608ef25f57ULL,
    0x958a324ceb064572ULL,
};

START_TEST(test_siphash_vectors)
{
    uint8_t key[SG_SIPHASH_KEY_LEN], in[64];

    for (int i = 0; i < SG_SIPHASH_KEY_LEN; i++)
        key[i] = (uint8_t) i;
    for (int i = 0; i < 64; i++)
        in[i] = (uint8_t) i;
    for (int len = 0; len < 64; len++)
        ck_assert_msg(sg_siphash24(key, in, (size_t) len) == sip_vectors[len],
                      "length %d: got %016llx, want %016llx", len,
                      (unsigned long long) sg_siphash24(key, in, (size_t) len),
                      (unsigned long long) sip_vectors[len]);
}
END_TEST

START_TEST(test_hash_is_keyed)
{
    uint8_t key[SG_SIPHASH_KEY_LEN] = { 0 };

    /* The table hash is not the all-zero key's (nor FNV-1a's constant). */
    ck_assert_int_eq(sg_hash_init(), 0);
    ck_assert(sg_hash("example.com")
              != sg_siphash24(key, "example.com", 11));
    ck_assert(sg_hash("") != 0xcbf29ce484222325ULL);
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
    tcase_add_test(tc, test_bound_holds);
    tcase_add_test(tc, test_eviction_order);
    tcase_add_test(tc, test_bans_survive_eviction);
    tcase_add_test(tc, test_eviction_event);
    tcase_add_test(tc, test_dns_local_error_event);
    tcase_add_test(tc, test_siphash_vectors);
    tcase_add_test(tc, test_hash_is_keyed);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return s;
}
