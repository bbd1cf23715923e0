/*
 * txtpeer.c - for tests only: the TXT-serving DNS peer (txtpeer.h)
 */
#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "txtpeer.h"

static void *txt_peer_run(void *arg)
{
    struct txt_peer *p = arg;

    while (!atomic_load(&p->stop)) {
        struct pollfd pfd = { p->fd, POLLIN, 0 };
        struct sockaddr_in from;
        socklen_t sl = sizeof(from);
        uint8_t buf[512], *wire = NULL;
        ldns_pkt *q = NULL, *r;
        const ldns_rr *qrr;
        size_t len;
        ssize_t n;
        char *name;
        bool found = false;

        if (poll(&pfd, 1, 50) <= 0)
            continue;
        n = recvfrom(p->fd, buf, sizeof(buf), 0, (struct sockaddr *) &from,
                     &sl);
        if (n <= 0 || ldns_wire2pkt(&q, buf, (size_t) n) != LDNS_STATUS_OK)
            continue;
        qrr = ldns_rr_list_rr(ldns_pkt_question(q), 0);
        name = ldns_rdf2str(ldns_rr_owner(qrr));
        atomic_fetch_add(&p->queries, 1);
        if (p->slow != NULL && strncasecmp(name, p->slow, strlen(p->slow))
            == 0 && name[strlen(p->slow)] == '.')
            usleep(p->slow_ms * 1000);
        r = ldns_pkt_query_new(ldns_rdf_clone(ldns_rr_owner(qrr)),
                               ldns_rr_get_type(qrr), LDNS_RR_CLASS_IN,
                               LDNS_RD);
        ldns_pkt_set_id(r, ldns_pkt_id(q));
        ldns_pkt_set_qr(r, true);
        ldns_pkt_set_aa(r, true);
        for (const struct zone_rr *z = p->zone; z->name != NULL; z++) {
            ldns_rr *rr;
            size_t tl = strlen(z->txt);

            if (strncasecmp(name, z->name, strlen(z->name)) != 0 ||
                name[strlen(z->name)] != '.' || name[strlen(z->name) + 1])
                continue;
            found = true;
            if (ldns_rr_get_type(qrr) != LDNS_RR_TYPE_TXT)
                continue;
            rr = ldns_rr_new();
            ldns_rr_set_type(rr, LDNS_RR_TYPE_TXT);
            ldns_rr_set_owner(rr, ldns_rdf_clone(ldns_rr_owner(qrr)));
            ldns_rr_set_ttl(rr, 300);
            for (size_t i = 0; i < tl || i == 0; i += 255) {
                uint8_t s[256];
                size_t sn = tl - i < 255 ? tl - i : 255;

                s[0] = (uint8_t) sn;
                memcpy(s + 1, z->txt + i, sn);
                ldns_rr_push_rdf(rr, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_STR,
                                                           sn + 1, s));
            }
            ldns_pkt_push_rr(r, LDNS_SECTION_ANSWER, rr);
        }
        ldns_pkt_set_rcode(r, found ? LDNS_RCODE_NOERROR
                           : LDNS_RCODE_NXDOMAIN);
        if (ldns_pkt2wire(&wire, r, &len) == LDNS_STATUS_OK)
            sendto(p->fd, wire, len, 0, (struct sockaddr *) &from, sl);
        free(wire);
        free(name);
        ldns_pkt_free(r);
        ldns_pkt_free(q);
    }
    return NULL;
}

struct sg_dns *txt_peer_start(struct txt_peer *p,
                                     const struct zone_rr *zone)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sa);
    struct sg_dns_opts o = { 0 };
    struct sg_dns *dns;
    struct sg_err err;
    char servers[64];

    memset(p, 0, sizeof(*p));
    p->zone = zone;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    p->fd = socket(AF_INET, SOCK_DGRAM, 0);
    ck_assert_int_eq(bind(p->fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
    getsockname(p->fd, (struct sockaddr *) &sa, &sl);
    p->port = ntohs(sa.sin_port);
    pthread_create(&p->thread, NULL, txt_peer_run, p);
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", p->port);
    o.servers = servers;
    o.timeout_ms = 1000;
    o.retries = 0;
    ck_assert_int_eq(sg_dns_new(&o, &dns, &err), SG_OK);
    return dns;
}

void txt_peer_stop(struct txt_peer *p, struct sg_dns *dns)
{
    sg_dns_free(dns);
    atomic_store(&p->stop, true);
    pthread_join(p->thread, NULL);
    close(p->fd);
}

