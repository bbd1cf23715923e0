/*
 * txtpeer.h - for tests only: a DNS server on a loopback UDP port that
 * serves TXT records (up to 4 KB each) from a table, NXDOMAIN for any
 * other name, NODATA for other types of a listed name
 */
#ifndef SG_TEST_TXTPEER_H
#define SG_TEST_TXTPEER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "dns.h"

struct zone_rr {
    const char *name, *txt;
};

struct txt_peer {
    int fd;
    uint16_t port;
    pthread_t thread;
    atomic_bool stop;
    atomic_uint queries;        /* questions received */
    const struct zone_rr *zone;
    const char *slow;           /* a name answered only after slow_ms */
    unsigned slow_ms;
};

/* Start the peer and a resolver aimed at it (1 s timeout, no retries). */
struct sg_dns *txt_peer_start(struct txt_peer *p, const struct zone_rr *zone);
/* Free the resolver, stop the peer. */
void txt_peer_stop(struct txt_peer *p, struct sg_dns *dns);

#endif /* SG_TEST_TXTPEER_H */
