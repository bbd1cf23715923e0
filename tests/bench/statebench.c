/*
 * statebench.c - the bounded state maps under many fresh keys, and the
 * keyed hash under a collision flood
 *
 * usage: sg-statebench [-n KEYS] [-b BOUND] [-f FLOOD]
 *
 * 1. KEYS distinct sender domains through sg_state_domain_hit(), then
 *    KEYS distinct sender addresses through sg_state_rate_hit(), each map
 *    bounded at BOUND entries (maxDomainHistories, maxCountingWindows).
 *    At ten checkpoints it prints entries, evictions, the process's RSS
 *    and the ns per operation since the last checkpoint: both columns
 *    must stay flat once the bound is reached (the reference is the RSS
 *    at the moment the first map filled up).
 * 2. FLOOD keys whose FNV-1a hashes (the unkeyed hash the tables used
 *    before) agree in their low 20 bits, so that they share one bucket
 *    of any table up to a million buckets, against FLOOD random keys:
 *    ns/op through sg_state_rate_hit() (SipHash under a random key) and
 *    through a chained table hashed with FNV-1a as before.
 *
 * Defaults: KEYS 1000000, BOUND 100000, FLOOD 20000 (a few seconds).
 * SG_BENCH_STATE_KEYS in the environment sets KEYS (e.g. 10000000).
 * A benchmark, not a test: it exits 0 unless something failed to run.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "state.h"

#define LOW_BITS 20

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e9 + (double) ts.tv_nsec;
}

static double rss_mb(void)
{
    long size = 0, resident = 0;
    FILE *fp = fopen("/proc/self/statm", "r");

    if (fp != NULL) {
        if (fscanf(fp, "%ld %ld", &size, &resident) != 2)
            resident = 0;
        fclose(fp);
    }
    return (double) resident * (double) sysconf(_SC_PAGESIZE) / 1048576.0;
}

/* fnv1a - the hash the tables used before */
static uint64_t fnv1a(const char *key)
{
    uint64_t h = 1469598103934665603ULL;

    while (*key) {
        h ^= (unsigned char) *key++;
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/*
 * flood_key - a key whose FNV-1a hash has `target` in its low LOW_BITS
 * bits. The low k bits of FNV-1a's state depend only on the low k bits
 * before each step, and multiplying by the odd prime is invertible modulo
 * 2^k: so for a random prefix, try each byte c1, and see whether a last
 * byte c2 can reach the target (state before c2 must be T * P^-1 up to
 * its low 8 bits). About one prefix in 16 has such a c1.
 */
static void flood_key(char *buf, uint64_t target, uint64_t pinv)
{
    const uint64_t mask = (1ULL << LOW_BITS) - 1, p = 1099511628211ULL;
    uint64_t want = (target * pinv) & mask;

    for (;;) {
        uint64_t r = next_rand(), s;

        for (int i = 0; i < 8; i++)
            buf[i] = (char) ('a' + (r >> (5 * i)) % 26);
        strcpy(buf + 8, ".flood.example");
        buf[22] = '\0';
        s = fnv1a(buf);
        for (unsigned c1 = 1; c1 < 256; c1++) {
            uint64_t y = ((s ^ c1) * p) & mask;
            unsigned c2 = (unsigned) ((y ^ want) & 0xff);

            if (((y ^ want) & mask & ~0xffULL) == 0 && c2 != 0) {
                buf[22] = (char) c1;
                buf[23] = (char) c2;
                buf[24] = '\0';
                return;
            }
        }
    }
}

/* The tables as they were: FNV-1a, chained, power-of-two buckets. */
struct onode {
    struct onode *next;
    uint64_t hash;
    char key[32];
    unsigned count;
};

struct otab {
    struct onode **b;
    size_t nb, n;
};

static void otab_hit(struct otab *t, const char *key)
{
    uint64_t h = fnv1a(key);
    struct onode *n;

    for (n = t->b[h & (t->nb - 1)]; n != NULL; n = n->next)
        if (n->hash == h && strcmp(n->key, key) == 0) {
            n->count++;
            return;
        }
    if (t->n >= t->nb) {
        size_t nb = t->nb * 2;
        struct onode **b = calloc(nb, sizeof(*b));

        for (size_t i = 0; i < t->nb; i++)
            for (struct onode *m = t->b[i], *next; m != NULL; m = next) {
                next = m->next;
                m->next = b[m->hash & (nb - 1)];
                b[m->hash & (nb - 1)] = m;
            }
        free(t->b);
        t->b = b;
        t->nb = nb;
    }
    n = calloc(1, sizeof(*n));
    n->hash = h;
    snprintf(n->key, sizeof(n->key), "%s", key);
    n->count = 1;
    n->next = t->b[h & (t->nb - 1)];
    t->b[h & (t->nb - 1)] = n;
    t->n++;
}

static void otab_free(struct otab *t)
{
    for (size_t i = 0; i < t->nb; i++)
        for (struct onode *m = t->b[i], *next; m != NULL; m = next) {
            next = m->next;
            free(m);
        }
    free(t->b);
}

/* fill - `n` fresh keys through one map, printing checkpoints */
static void fill(struct sg_state *st, const char *map, long n,
                 double *rss_full)
{
    struct sg_state_stats stats;
    long step = n / 10 > 0 ? n / 10 : 1;
    double t0 = now_ns();
    char key[80];

    memset(&stats, 0, sizeof(stats));
    printf("%-8s %10s %8s %10s %8s %7s\n", "map", "keys", "entries",
           "evicted", "rss_MB", "ns/op");
    for (long i = 1; i <= n; i++) {
        if (map[0] == 'd') {
            snprintf(key, sizeof(key), "d%ld-%lx.example", i,
                     (unsigned long) (i * 2654435761UL));
            sg_state_domain_hit(st, key, "192.0.2.0/24", 1000, 3600);
        } else {
            snprintf(key, sizeof(key), "mail:sender:u%ld@s%lx.example", i,
                     (unsigned long) (i * 2654435761UL));
            sg_state_rate_hit(st, key, 1000, 60);
        }
        if (i % step == 0) {
            double t1 = now_ns();

            sg_state_stats(st, &stats);
            printf("%-8s %10ld %8zu %10lu %8.1f %7.0f\n", map, i,
                   map[0] == 'd' ? stats.domains : stats.windows,
                   map[0] == 'd' ? stats.domains_evicted
                   : stats.windows_evicted, rss_mb(), (t1 - t0) / step);
            fflush(stdout);
            t0 = now_ns();
        }
        if (*rss_full == 0 && (map[0] == 'd' ? stats.domains_evicted
                               : stats.windows_evicted) == 0) {
            sg_state_stats(st, &stats);
            if ((map[0] == 'd' ? stats.domains_evicted
                 : stats.windows_evicted) > 0)
                *rss_full = rss_mb();
        }
    }
}

/* flood - ns/op of `n` keys through the keyed state and the old table */
static void flood(long n, char **keys, const char *label)
{
    struct sg_state *st = sg_state_new();
    struct otab old = { calloc(16, sizeof(struct onode *)), 16, 0 };
    double t0, t1, t2;

    sg_state_set_limits(st, (size_t) n + 1, 100);
    t0 = now_ns();
    for (long i = 0; i < n; i++)
        sg_state_rate_hit(st, keys[i], 1000, 60);
    for (long i = 0; i < n; i++)    /* and look each up again */
        sg_state_rate_hit(st, keys[i], 1000, 60);
    t1 = now_ns();
    for (long i = 0; i < n; i++)
        otab_hit(&old, keys[i]);
    for (long i = 0; i < n; i++)
        otab_hit(&old, keys[i]);
    t2 = now_ns();
    printf("%-7s %8ld %16.0f %16.0f\n", label, n, (t1 - t0) / (2.0 * n),
           (t2 - t1) / (2.0 * n));
    otab_free(&old);
    sg_state_free(st);
}

int main(int argc, char **argv)
{
    long n = 1000000, bound = 100000, nflood = 20000;
    const char *env = getenv("SG_BENCH_STATE_KEYS");
    struct sg_state *st;
    double rss0, rss_full = 0;
    uint64_t pinv = 1, p = 1099511628211ULL;
    char **fk, **rk;
    int c;

    if (env != NULL && *env)
        n = atol(env);
    while ((c = getopt(argc, argv, "n:b:f:")) != -1)
        switch (c) {
        case 'n': n = atol(optarg); break;
        case 'b': bound = atol(optarg); break;
        case 'f': nflood = atol(optarg); break;
        default:
            fprintf(stderr, "usage: %s [-n KEYS] [-b BOUND] [-f FLOOD]\n",
                    argv[0]);
            return 2;
        }
    if (n < 10 || bound < 100 || nflood < 1) {
        fprintf(stderr, "statebench: KEYS >= 10, BOUND >= 100, FLOOD >= 1\n");
        return 2;
    }
    if ((st = sg_state_new()) == NULL) {
        fprintf(stderr, "statebench: no state (getrandom failed?)\n");
        return 1;
    }
    rss0 = rss_mb();
    sg_state_set_limits(st, (size_t) bound, (size_t) bound);
    printf("state bounds: %ld fresh keys per map, bound %ld entries each; "
           "RSS at start %.1f MB\n", n, bound, rss0);
    fill(st, "domains", n, &rss_full);
    printf("reference: RSS when the domain map first reached its bound: "
           "%.1f MB\n", rss_full);
    rss_full = 0;
    fill(st, "windows", n, &rss_full);
    printf("reference: RSS when the window map first reached its bound: "
           "%.1f MB; at the end %.1f MB\n", rss_full, rss_mb());
    sg_state_free(st);

    /* P^-1 modulo 2^64 by Newton's iteration (odd P). */
    for (int i = 0; i < 6; i++)
        pinv *= 2 - p * pinv;
    fk = calloc((size_t) nflood, sizeof(*fk));
    rk = calloc((size_t) nflood, sizeof(*rk));
    for (long i = 0; i < nflood; i++) {
        fk[i] = malloc(32);
        rk[i] = malloc(32);
        flood_key(fk[i], 0x5a5a5, pinv);
        if ((fnv1a(fk[i]) & ((1ULL << LOW_BITS) - 1)) != 0x5a5a5) {
            fprintf(stderr, "statebench: flood key construction broken\n");
            return 1;
        }
        snprintf(rk[i], 32, "%016llx.example",
                 (unsigned long long) next_rand());
    }
    printf("\ncollision flood: keys whose FNV-1a hashes share the low %d "
           "bits (one bucket)\n", LOW_BITS);
    printf("%-7s %8s %16s %16s\n", "keys", "n", "keyed_ns/op", "fnv1a_ns/op");
    flood(nflood, rk, "random");
    flood(nflood, fk, "flood");
    for (long i = 0; i < nflood; i++) {
        free(fk[i]);
        free(rk[i]);
    }
    free(fk);
    free(rk);
    return 0;
}
