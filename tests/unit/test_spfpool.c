/*
 * test_spfpool.c - SPF evaluations in worker processes: the same results
 * as in the daemon's process, and a worker lost (crashed, stopped, never
 * started) costs its one check, never the caller
 *
 * The workers are this test program itself (check_main.c hands
 * SG_SPF_WORKER_ARG to sg_spf_worker_main()), sandboxed as the daemon's.
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spfpool.h"
#include "testutil.h"
#include "txtpeer.h"

/* AddressSanitizer's own SIGSEGV handler reports, then aborts or exits
 * (ASAN_OPTIONS): there, a worker sent SIGSEGV dies of something else. */
#if defined(__SANITIZE_ADDRESS__)
#define SG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SG_ASAN 1
#endif
#endif

static const struct zone_rr zone[] = {
    { "good.test", "v=spf1 ip4:192.0.2.0/24 -all" },
    { "deny.test", "v=spf1 -all exp=e.deny.test" },
    { "e.deny.test", "%{i} is not one of %{d}'s servers" },
    { "slow.test", "v=spf1 include:s.slow.test -all" },
    { "s.slow.test", "v=spf1 ?all" },
    { NULL, NULL },
};

static struct sg_spf_pool *pool_start(unsigned workers, const char *exe)
{
    struct sg_spf_pool_opts o = { exe, workers, exe ? 0 : 1, 300, false };
    struct sg_spf_pool *pool;
    struct sg_err err;

    ck_assert_msg(sg_spf_pool_new(&o, &pool, &err) == SG_OK, "pool: %s",
                  err.msg);
    return pool;
}

static void check(struct sg_spf_pool *pool, struct sg_dns *dns,
                  const char *from, const char *ip, unsigned ms,
                  struct sg_spf_outcome *out)
{
    struct sg_mailaddr m;
    struct sg_addr a;

    ck_assert_int_eq(sg_mailaddr_parse(from, &m), SG_OK);
    ck_assert_int_eq(sg_addr_parse(ip, &a), SG_OK);
    sg_spf_pool_check(pool, dns, sg_dns_clock(dns) + ms, &a, "helo.test", &m,
                      "mx.test", out);
}

/* A worker gives what the daemon's process gives, and is used again. */
START_TEST(test_pool_same_results)
{
    static const struct {
        const char *from, *ip;
    } cases[] = {
        { "a@good.test", "192.0.2.7" }, { "a@good.test", "198.51.100.7" },
        { "b@deny.test", "192.0.2.1" }, { "c@none.test", "192.0.2.1" },
        { "d@slow.test", "2001:db8::1" },
    };
    struct sg_spf_pool *pool = pool_start(2, NULL);
    struct sg_spf_pool_stats st;
    struct txt_peer p;
    struct sg_dns *dns = txt_peer_start(&p, zone);
    pid_t pids[4];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sg_spf_outcome in, out;

        check(NULL, dns, cases[i].from, cases[i].ip, 3000, &in);
        check(pool, dns, cases[i].from, cases[i].ip, 3000, &out);
        ck_assert_msg(out.fault == SG_SPF_FAULT_NONE, "%s: fault %s",
                      cases[i].from, out.fault_reason);
        ck_assert_msg(out.result == in.result, "%s: got %s, want %s",
                      cases[i].from, sg_spf_result_name(out.result),
                      sg_spf_result_name(in.result));
        ck_assert_str_eq(out.explanation, in.explanation);
        ck_assert_str_eq(out.identity, in.identity);
        ck_assert_str_eq(out.reason, in.reason);
        ck_assert_uint_eq(out.dns_terms, in.dns_terms);
    }
    ck_assert_uint_eq(sg_spf_pool_pids(pool, pids, 4), 1);
    sg_spf_pool_stats(pool, &st);
    ck_assert_uint_eq(st.checks, 5);
    ck_assert_uint_eq(st.lost, 0);
    ck_assert_uint_eq(st.spawned, 1);
    txt_peer_stop(&p, dns);
    sg_spf_pool_free(pool);
}
END_TEST

struct killer {
    struct sg_spf_pool *pool;
    int sig;
    unsigned after_ms;
};

/* kill_busy - the signal to the pool's worker once a check holds it */
static void *kill_busy(void *arg)
{
    struct killer *k = arg;
    pid_t pid;

    usleep(k->after_ms * 1000);
    ck_assert_uint_eq(sg_spf_pool_pids(k->pool, &pid, 1), 1);
    kill(pid, k->sig);
    return NULL;
}

static void lose_one(struct sg_spf_pool *pool, struct sg_dns *dns, int sig,
                     struct sg_spf_outcome *out)
{
    struct killer k = { pool, sig, 100 };
    pthread_t t;

    pthread_create(&t, NULL, kill_busy, &k);
    check(pool, dns, "a@slow.test", "192.0.2.9", 800, out);
    pthread_join(t, NULL);
}

/*
 * A worker killed in the middle of a check (SIGSEGV, as a libspf2 bug
 * would) makes that check a temperror naming the signal; the pool starts
 * another, and the next check is served. Twice for one domain: the domain
 * is quarantined, its next check answered without any evaluation.
 */
START_TEST(test_pool_worker_lost)
{
    struct sg_spf_pool *pool = pool_start(1, NULL);
    struct sg_spf_pool_stats st;
    struct sg_spf_outcome out;
    struct txt_peer p;
    struct sg_dns *dns = txt_peer_start(&p, zone);
    unsigned asked;

    p.slow = "s.slow.test";
    p.slow_ms = 400;
    lose_one(pool, dns, SIGSEGV, &out);
    ck_assert_int_eq(out.result, SG_SPF_TEMPERROR);
    ck_assert_int_eq(out.fault, SG_SPF_FAULT_DIED);
#ifndef SG_ASAN
    ck_assert_msg(strstr(out.fault_reason, "signal 11 (SIGSEGV)") != NULL,
                  "reason: %s", out.fault_reason);
#endif
    ck_assert_int_gt(out.fault_pid, 0);
    ck_assert_uint_eq(out.quarantine_s, 0);
    ck_assert_str_eq(out.domain, "slow.test");
    /* The pool waits out its backoff, starts a worker, serves. */
    check(pool, dns, "a@good.test", "192.0.2.7", 3000, &out);
    ck_assert_int_eq(out.fault, SG_SPF_FAULT_NONE);
    ck_assert_int_eq(out.result, SG_SPF_PASS);

    lose_one(pool, dns, SIGKILL, &out);
    ck_assert_int_eq(out.fault, SG_SPF_FAULT_DIED);
    ck_assert_msg(strstr(out.fault_reason, "signal 9") != NULL, "reason: %s",
                  out.fault_reason);
    ck_assert_uint_eq(out.quarantine_s, 600);
    asked = atomic_load(&p.queries);
    check(pool, dns, "b@slow.test", "192.0.2.9", 3000, &out);
    ck_assert_int_eq(out.result, SG_SPF_TEMPERROR);
    ck_assert_int_eq(out.fault, SG_SPF_FAULT_QUARANTINED);
    ck_assert_uint_eq(atomic_load(&p.queries), asked);
    check(pool, dns, "b@deny.test", "192.0.2.9", 3000, &out);
    ck_assert_int_eq(out.result, SG_SPF_FAIL);
    sg_spf_pool_stats(pool, &st);
    ck_assert_uint_eq(st.lost, 2);
    ck_assert_uint_eq(st.quarantined, 1);
    ck_assert_uint_eq(st.spawned, 3);
    txt_peer_stop(&p, dns);
    sg_spf_pool_free(pool);
}
END_TEST

/*
 * A worker that dies while idle (the OOM killer, an operator) costs no
 * check and blames no domain: the next check goes to a new worker and
 * says which one it found dead.
 */
START_TEST(test_pool_idle_death_unnoticed)
{
    struct sg_spf_pool *pool = pool_start(1, NULL);
    struct sg_spf_pool_stats st;
    struct sg_spf_outcome out;
    struct txt_peer p;
    struct sg_dns *dns = txt_peer_start(&p, zone);
    pid_t pid, now;
    int sigs[] = { SIGKILL, SIGSEGV };

    for (size_t k = 0; k < sizeof(sigs) / sizeof(sigs[0]); k++) {
        check(pool, dns, "a@good.test", "192.0.2.7", 3000, &out);
        ck_assert_int_eq(out.result, SG_SPF_PASS);
        ck_assert_uint_eq(sg_spf_pool_pids(pool, &pid, 1), 1);
        kill(pid, sigs[k]);
        usleep(50 * 1000);
        check(pool, dns, "a@good.test", "192.0.2.7", 3000, &out);
        ck_assert_msg(out.fault == SG_SPF_FAULT_NONE, "fault: %s",
                      out.fault_reason);
        ck_assert_int_eq(out.result, SG_SPF_PASS);
        ck_assert_uint_eq(out.quarantine_s, 0);
        ck_assert_int_eq(out.idle_lost_pid, pid);
        ck_assert_msg(strstr(out.idle_lost_reason, "killed by signal") !=
                      NULL || strstr(out.idle_lost_reason, "exited") != NULL,
                      "%s", out.idle_lost_reason);
        ck_assert_uint_eq(sg_spf_pool_pids(pool, &now, 1), 1);
        ck_assert_int_ne(now, pid);
    }
    /* The same domain twice: still never quarantined. */
    check(pool, dns, "a@good.test", "192.0.2.7", 3000, &out);
    ck_assert_int_eq(out.fault, SG_SPF_FAULT_NONE);
    ck_assert_int_eq(out.idle_lost_pid, 0);
    sg_spf_pool_stats(pool, &st);
    ck_assert_uint_eq(st.lost, 2);
    txt_peer_stop(&p, dns);
    sg_spf_pool_free(pool);
}
END_TEST

/* A worker that stops answering (SIGSTOP) is killed at the deadline plus
 * the grace, and the check is a temperror; the caller waits no longer. */
START_TEST(test_pool_worker_overruns)
{
    struct sg_spf_pool *pool = pool_start(1, NULL);
    struct sg_spf_outcome out;
    struct txt_peer p;
    struct sg_dns *dns = txt_peer_start(&p, zone);
    int64_t t0;

    p.slow = "s.slow.test";
    p.slow_ms = 200;
    t0 = sg_dns_clock(dns);
    lose_one(pool, dns, SIGSTOP, &out);
    ck_assert_int_eq(out.fault, SG_SPF_FAULT_TIMEOUT);
    ck_assert_int_eq(out.result, SG_SPF_TEMPERROR);
    ck_assert_int_lt(sg_dns_clock(dns) - t0, 800 + 300 + 400);
    txt_peer_stop(&p, dns);
    sg_spf_pool_free(pool);
}
END_TEST

/* No worker can start (the executable is gone): each check is a
 * temperror saying why, within its deadline. */
START_TEST(test_pool_unavailable)
{
    struct sg_spf_pool *pool = pool_start(2, "/nonexistent/smtpguard");
    struct sg_spf_outcome out;
    struct txt_peer p;
    struct sg_dns *dns = txt_peer_start(&p, zone);

    check(pool, dns, "a@good.test", "192.0.2.7", 300, &out);
    ck_assert_int_eq(out.result, SG_SPF_TEMPERROR);
    ck_assert_int_eq(out.fault, SG_SPF_FAULT_UNAVAILABLE);
    ck_assert_msg(strstr(out.fault_reason, "cannot start") != NULL,
                  "reason: %s", out.fault_reason);
    txt_peer_stop(&p, dns);
    sg_spf_pool_free(pool);
}
END_TEST

/* Invalid sizes are refused with a message, nothing started. */
START_TEST(test_pool_refuses_bad_sizes)
{
    struct sg_spf_pool_opts o = { NULL, 0, 0, 0, false };
    struct sg_spf_pool *pool = (void *) 1;
    struct sg_err err;

    ck_assert_int_eq(sg_spf_pool_new(&o, &pool, &err), SG_EINVAL);
    ck_assert_ptr_null(pool);
    ck_assert_ptr_nonnull(strstr(err.msg, "1..64"));
    o.workers = SG_SPF_POOL_MAX + 1;
    ck_assert_int_eq(sg_spf_pool_new(&o, &pool, &err), SG_EINVAL);
}
END_TEST

Suite *spfpool_suite(void)
{
    Suite *s = suite_create("spfpool");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_pool_same_results);
    tcase_add_test(tc, test_pool_worker_lost);
    tcase_add_test(tc, test_pool_idle_death_unnoticed);
    tcase_add_test(tc, test_pool_worker_overruns);
    tcase_add_test(tc, test_pool_unavailable);
    tcase_add_test(tc, test_pool_refuses_bad_sizes);
    suite_add_tcase(s, tc);
    return s;
}
