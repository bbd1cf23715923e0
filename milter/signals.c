/*
 * signals.c - SIGHUP reloads the policy instead of stopping the milter
 *
 * libmilter's signal thread sigwait()s for SIGHUP, SIGTERM and SIGINT and
 * stops the filter on any of them. We want SIGTERM/SIGINT to keep doing
 * that, and SIGHUP to reload. Two threads in sigwait() for the same signal
 * would race for it, so this file defines sigwait() for the process: the
 * definition libmilter's call binds to (the executable's symbol comes
 * first, with libmilter.so and libmilter.a alike). It waits for the same
 * set less SIGHUP, which only our reload thread waits for. The integration
 * tests send SIGHUP and check that the daemon reloads and keeps serving.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>

#include "milter.h"

int sigwait(const sigset_t *set, int *sig)
{
    sigset_t without_hup = *set;
    int r;

    sigdelset(&without_hup, SIGHUP);
    do {
        r = sigwaitinfo(&without_hup, NULL);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno;
    *sig = r;
    return 0;
}

static void *reload_thread(void *arg)
{
    struct sg_engine *eng = arg;
    sigset_t hup;

    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    for (;;) {
        int r = sigwaitinfo(&hup, NULL);

        if (r == SIGHUP)
            sg_engine_request_reload(eng);
    }
    return NULL;
}

/*
 * milter_signals_block - first thing in main, before any thread exists (all
 * inherit the mask): a SIGHUP or SIGTERM during start-up waits, pending,
 * for the threads that take it (a reload, a clean stop) instead of
 * killing a daemon that holds its socket and database half set up.
 */
int milter_signals_block(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    return pthread_sigmask(SIG_BLOCK, &set, NULL) == 0 ? 0 : -1;
}

int milter_signals_start(struct sg_engine *eng)
{
    pthread_t tid;

    if (milter_signals_block() < 0)
        return -1;
    if (pthread_create(&tid, NULL, reload_thread, eng) != 0)
        return -1;
    pthread_detach(tid);
    return 0;
}
