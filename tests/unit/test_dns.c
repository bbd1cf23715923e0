/*
 * test_dns.c - the DNS component: server lists, reply verification on
 * crafted packets, the cache, and the socket engine against a DNS peer of
 * the test's own on 127.0.0.1 that forges, delays, drops and truncates
 */
#include <check.h>
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "dns.h"
#include "testutil.h"

/* ---- crafted replies ---- */

/* reply - a reply to (name, type) with id and rcode, answer RRs in zone
 * syntax ("name 300 IN A 127.0.0.2"), NULL-terminated; wire in *len */
static uint8_t *reply(uint16_t id, const char *qname, uint16_t qtype,
                      ldns_pkt_rcode rcode, bool qr, bool tc,
                      const char *const *rrs, const char *soa, size_t *len)
{
    ldns_pkt *p = ldns_pkt_query_new(ldns_dname_new_frm_str(qname),
                                     (ldns_rr_type) qtype, LDNS_RR_CLASS_IN,
                                     LDNS_RD);
    uint8_t *wire = NULL;
    ldns_rr *rr;

    ck_assert_ptr_nonnull(p);
    ldns_pkt_set_id(p, id);
    ldns_pkt_set_qr(p, qr);
    ldns_pkt_set_tc(p, tc);
    ldns_pkt_set_aa(p, true);
    ldns_pkt_set_rcode(p, (uint8_t) rcode);
    for (int i = 0; rrs != NULL && rrs[i] != NULL; i++) {
        ck_assert_int_eq(ldns_rr_new_frm_str(&rr, rrs[i], 0, NULL, NULL),
                         LDNS_STATUS_OK);
        ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
    }
    if (soa != NULL) {
        ck_assert_int_eq(ldns_rr_new_frm_str(&rr, soa, 0, NULL, NULL),
                         LDNS_STATUS_OK);
        ldns_pkt_push_rr(p, LDNS_SECTION_AUTHORITY, rr);
    }
    ck_assert_int_eq(ldns_pkt2wire(&wire, p, len), LDNS_STATUS_OK);
    ldns_pkt_free(p);
    return wire;
}

#define SOA "test. 600 IN SOA ns.test. h.test. 1 3600 600 86400 120"

START_TEST(test_parse_servers)
{
    struct sg_dns_server s[4];
    struct sg_err err;
    size_t n;
    char text[256];

    ck_assert_int_eq(sg_dns_parse_servers("127.0.0.1:5353 [::1]:53, "
                                          "192.0.2.1", s, 4, &n, &err),
                     SG_OK);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(s[0].port, 5353);
    ck_assert_int_eq(s[1].addr.family, AF_INET6);
    ck_assert_int_eq(s[2].port, 53);
    ck_assert_int_eq(sg_dns_parse_servers("a b c d e", s, 4, &n, &err),
                     SG_EINVAL);
    ck_assert_int_eq(sg_dns_parse_servers("1.2.3.4 1.2.3.4 1.2.3.4 1.2.3.4 "
                                          "1.2.3.4", s, 4, &n, &err),
                     SG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "more than 4"));
    ck_assert_int_eq(sg_dns_parse_servers("[::1]x", s, 4, &n, &err),
                     SG_EINVAL);
    ck_assert_int_eq(sg_dns_parse_servers("127.0.0.1:99999", s, 4, &n,
                                          &err), SG_EINVAL);
    ck_assert_int_eq(sg_dns_parse_servers("", s, 4, &n, &err), SG_OK);
    ck_assert_int_eq(n, 0);

    snprintf(text, sizeof(text), "# comment\nsearch example.test\n"
             "nameserver 192.0.2.53\nnameserver  2001:db8::53 # v6\n"
             "nameserver bogus\nnameserver 198.51.100.53\n"
             "nameserver 203.0.113.53\n");
    ck_assert_int_eq(sg_dns_parse_resolv_conf(text, s, 4), 4);
    ck_assert_int_eq(s[1].addr.family, AF_INET6);
    ck_assert_int_eq(sg_dns_parse_resolv_conf(text, s, 2), 2);
    ck_assert_int_eq(sg_dns_parse_resolv_conf("garbage\n\n\0", s, 4), 0);
}
END_TEST

START_TEST(test_reply_verification)
{
    static const char *const a_rr[] = {
        "bl.test. 300 IN A 127.0.0.2", "bl.test. 200 IN A 127.0.0.4", NULL,
    };
    struct sg_dns_answer *a;
    uint8_t *w;
    size_t len;
    bool tc;

    /* The real answer. */
    w = reply(0x1234, "bl.test.", SG_DNS_T_A, LDNS_RCODE_NOERROR, true,
              false, a_rr, NULL, &len);
    ck_assert_int_eq(sg_dns_parse_reply(w, len, 0x1234, "bl.test",
                                        SG_DNS_T_A, &a, &tc), SG_OK);
    ck_assert_int_eq(a->status, SG_DNS_OK);
    ck_assert_int_eq(a->nrr, 2);
    ck_assert_int_eq(a->ttl, 200);
    ck_assert_int_eq(a->rr[0].addr.b[3], 2);
    ck_assert(!tc);
    sg_dns_answer_unref(a);
    /* The question is compared case-insensitively. */
    ck_assert_int_eq(sg_dns_parse_reply(w, len, 0x1234, "BL.Test",
                                        SG_DNS_T_A, &a, &tc), SG_OK);
    sg_dns_answer_unref(a);
    /* Wrong ID, wrong name, wrong type: not ours. */
    ck_assert_int_eq(sg_dns_parse_reply(w, len, 0x1235, "bl.test",
                                        SG_DNS_T_A, &a, &tc), SG_ENOENT);
    ck_assert_ptr_null(a);
    ck_assert_int_eq(sg_dns_parse_reply(w, len, 0x1234, "bm.test",
                                        SG_DNS_T_A, &a, &tc), SG_ENOENT);
    ck_assert_int_eq(sg_dns_parse_reply(w, len, 0x1234, "bl.test",
                                        SG_DNS_T_AAAA, &a, &tc), SG_ENOENT);
    /* Truncated packets, every length. */
    for (size_t cut = 0; cut < len; cut++) {
        int rc = sg_dns_parse_reply(w, cut, 0x1234, "bl.test", SG_DNS_T_A,
                                    &a, &tc);

        ck_assert_msg(rc == SG_ENOENT || rc == SG_OK, "cut %zu: %d", cut, rc);
        sg_dns_answer_unref(a);
    }
    free(w);
    /* QR unset: a query, not a reply. */
    w = reply(7, "bl.test.", SG_DNS_T_A, LDNS_RCODE_NOERROR, false, false,
              a_rr, NULL, &len);
    ck_assert_int_eq(sg_dns_parse_reply(w, len, 7, "bl.test", SG_DNS_T_A,
                                        &a, &tc), SG_ENOENT);
    free(w);
    /* TC set: the caller goes to TCP. */
    w = reply(7, "bl.test.", SG_DNS_T_A, LDNS_RCODE_NOERROR, true, true,
              NULL, NULL, &len);
    ck_assert_int_eq(sg_dns_parse_reply(w, len, 7, "bl.test", SG_DNS_T_A,
                                        &a, &tc), SG_OK);
    ck_assert(tc);
    sg_dns_answer_unref(a);
    free(w);
}
END_TEST

START_TEST(test_reply_kinds)
{
    static const char *const chain[] = {
        "www.test. 300 IN CNAME Host.Test.", "host.test. 100 IN A 192.0.2.1",
        "other.test. 100 IN A 192.0.2.9", NULL,
    };
    static const char *const loop[] = {
        "a.test. 300 IN CNAME b.test.", "b.test. 300 IN CNAME a.test.", NULL,
    };
    static const char *const txt[] = {
        "t.test. 300 IN TXT \"v=spf1 \" \"-all\"", NULL,
    };
    static const char *const ptr[] = {
        "1.2.0.192.in-addr.arpa. 300 IN PTR Mail.Example.TEST.", NULL,
    };
    struct sg_dns_answer *a;
    uint8_t *w;
    size_t len;
    bool tc;

    w = reply(1, "www.test.", SG_DNS_T_A, LDNS_RCODE_NOERROR, true, false,
              chain, NULL, &len);
    ck_assert_int_eq(sg_dns_parse_reply(w, len, 1, "www.test", SG_DNS_T_A,
                                        &a, &tc), SG_OK);
    ck_assert_int_eq(a->nrr, 1);
    ck_assert_str_eq(a->canon, "host.test");
    ck_assert_int_eq(a->rr[0].addr.b[3], 1);
    sg_dns_answer_unref(a);
    free(w);

    w = reply(1, "a.test.", SG_DNS_T_A, LDNS_RCODE_NOERROR, true, false,
              loop, NULL, &len);
    ck_assert_int_eq(sg_dns_parse_reply(w, len, 1, "a.test", SG_DNS_T_A,
                                        &a, &tc), SG_EINVAL);
    ck_assert_int_eq(a->status, SG_DNS_MALFORMED);
    sg_dns_answer_unref(a);
    free(w);

    w = reply(1, "t.test.", SG_DNS_T_TXT, LDNS_RCODE_NOERROR, true, false,
              txt, NULL, &len);
    ck_assert_int_eq(sg_dns_parse_reply(w, len, 1, "t.test", SG_DNS_T_TXT,
                                        &a, &tc), SG_OK);
    ck_assert_str_eq(a->rr[0].text, "v=spf1 -all");
    ck_assert_int_eq(a->rr[0].len, 11);
    sg_dns_answer_unref(a);
    free(w);

    w = reply(1, "1.2.0.192.in-addr.arpa.", SG_DNS_T_PTR,
              LDNS_RCODE_NOERROR, true, false, ptr, NULL, &len);
    ck_assert_int_eq(sg_dns_parse_reply(w, len, 1, "1.2.0.192.in-addr.arpa",
                                        SG_DNS_T_PTR, &a, &tc), SG_OK);
    ck_assert_str_eq(a->rr[0].text, "mail.example.test");
    sg_dns_answer_unref(a);
    free(w);

    /* NXDOMAIN and NODATA take the SOA's TTL bounded by its minimum. */
    w = reply(1, "x.test.", SG_DNS_T_A, LDNS_RCODE_NXDOMAIN, true, false,
              NULL, SOA, &len);
    ck_assert_int_eq(sg_dns_parse_reply(w, len, 1, "x.test", SG_DNS_T_A,
                                        &a, &tc), SG_OK);
    ck_assert_int_eq(a->status, SG_DNS_NXDOMAIN);
    ck_assert_int_eq(a->ttl, 120);
    sg_dns_answer_unref(a);
    free(w);
    w = reply(1, "t.test.", SG_DNS_T_AAAA, LDNS_RCODE_NOERROR, true, false,
              txt, SOA, &len);      /* a TXT where AAAA was asked */
    ck_assert_int_eq(sg_dns_parse_reply(w, len, 1, "t.test", SG_DNS_T_AAAA,
                                        &a, &tc), SG_OK);
    ck_assert_int_eq(a->status, SG_DNS_NODATA);
    sg_dns_answer_unref(a);
    free(w);
    w = reply(1, "t.test.", SG_DNS_T_A, LDNS_RCODE_SERVFAIL, true, false,
              NULL, NULL, &len);
    ck_assert_int_eq(sg_dns_parse_reply(w, len, 1, "t.test", SG_DNS_T_A,
                                        &a, &tc), SG_OK);
    ck_assert_int_eq(a->status, SG_DNS_SERVFAIL);
    sg_dns_answer_unref(a);
    free(w);
}
END_TEST

/* A compression pointer that points at itself, and RR counts that lie. */
START_TEST(test_reply_hostile_wire)
{
    static const uint8_t loop[] = {
        0x00, 0x09, 0x81, 0x80, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
        0x01, 'x', 0x04, 't', 'e', 's', 't', 0x00, 0x00, 0x01, 0x00, 0x01,
        0xc0, 0x18, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00,
        0x04, 127, 0, 0, 2,
    };
    uint8_t lying[sizeof(loop)];
    struct sg_dns_answer *a;
    bool tc;
    int rc;

    rc = sg_dns_parse_reply(loop, sizeof(loop), 9, "x.test", SG_DNS_T_A,
                            &a, &tc);
    ck_assert_int_eq(rc, SG_ENOENT);
    memcpy(lying, loop, sizeof(lying));
    lying[24] = 0xc0;
    lying[25] = 0x0c;           /* a valid pointer now ... */
    lying[7] = 40;              /* ... but 40 answers announced */
    rc = sg_dns_parse_reply(lying, sizeof(lying), 9, "x.test", SG_DNS_T_A,
                            &a, &tc);
    ck_assert_int_eq(rc, SG_ENOENT);
    lying[7] = 1;
    rc = sg_dns_parse_reply(lying, sizeof(lying), 9, "x.test", SG_DNS_T_A,
                            &a, &tc);
    ck_assert_int_eq(rc, SG_OK);
    ck_assert_int_eq(a->status, SG_DNS_OK);
    sg_dns_answer_unref(a);
}
END_TEST

/* ---- a DNS peer of our own ---- */

enum peer_mode {
    P_ANSWER, P_FORGE_FIRST, P_DROP, P_TRUNCATE, P_SERVFAIL,
    P_NXDOMAIN,                 /* NXDOMAIN with an SOA (negative TTL 120) */
    P_FLOOD,                    /* replies with wrong IDs for a second */
    P_TCP_TINY,                 /* TC, then over TCP a length below 12 */
    P_TCP_GARBLED,              /* TC, then over TCP bytes that do not parse */
    P_TCP_SHORT,                /* TC, then over TCP half the answer */
};

#define PEER_SEEN 32

struct peer {
    int udp, tcp, forger;       /* forger: bound to 127.0.0.2 */
    uint16_t port;
    enum peer_mode mode;
    int delay_ms;
    atomic_int queries;
    uint16_t seen_id[PEER_SEEN], seen_port[PEER_SEEN];  /* per query */
    atomic_bool stop;
    pthread_t thread;
};

struct job {
    struct peer *p;
    uint8_t buf[512];
    size_t len;
    struct sockaddr_in from;
};

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* answer_for - what the peer knows: N.test A 127.0.0.N; big.test TXT of
 * 500 bytes, hugeN.test TXT of 1500 */
static uint8_t *answer_for(const uint8_t *q, size_t qlen, bool tc,
                           ldns_pkt_rcode rcode, size_t *len)
{
    ldns_pkt *in = NULL;
    const ldns_rr *qrr;
    char *name, rrtext[2048];
    const char *rrs[2] = { NULL, NULL };
    uint8_t *w;

    if (ldns_wire2pkt(&in, q, qlen) != LDNS_STATUS_OK)
        return NULL;
    qrr = ldns_rr_list_rr(ldns_pkt_question(in), 0);
    name = ldns_rdf2str(ldns_rr_owner(qrr));
    if (strcmp(name, "big.test.") == 0) {
        char big[501];

        memset(big, 'x', 500);
        big[500] = '\0';
        snprintf(rrtext, sizeof(rrtext), "big.test. 300 IN TXT \"%.250s\" "
                 "\"%.250s\"", big, big);
    } else if (strncmp(name, "huge", 4) == 0) {
        char s[251];
        size_t n;

        memset(s, 'y', 250);
        s[250] = '\0';
        n = (size_t) snprintf(rrtext, sizeof(rrtext), "%s 300 IN TXT", name);
        for (int i = 0; i < 6; i++)
            n += (size_t) snprintf(rrtext + n, sizeof(rrtext) - n,
                                   " \"%s\"", s);
    } else {
        snprintf(rrtext, sizeof(rrtext), "%s 300 IN A 127.0.0.%d", name,
                 name[0] >= '0' && name[0] <= '9' ? atoi(name) % 250 : 1);
    }
    if (!tc && rcode == LDNS_RCODE_NOERROR &&
        ldns_rr_get_type(qrr) == LDNS_RR_TYPE_A)
        rrs[0] = rrtext;
    if (!tc && rcode == LDNS_RCODE_NOERROR &&
        (strcmp(name, "big.test.") == 0 || strncmp(name, "huge", 4) == 0))
        rrs[0] = rrtext;
    w = reply(ldns_pkt_id(in), name, (uint16_t) ldns_rr_get_type(qrr), rcode,
              true, tc, rcode == LDNS_RCODE_NXDOMAIN ? NULL : rrs,
              rcode == LDNS_RCODE_NXDOMAIN ? SOA : NULL, len);
    free(name);
    ldns_pkt_free(in);
    return w;
}

static void *job_run(void *arg)
{
    struct job *j = arg;
    struct peer *p = j->p;
    size_t len;
    uint8_t *w;

    if (p->delay_ms)
        sleep_ms(p->delay_ms);
    if (p->mode == P_FORGE_FIRST) {
        /* Wrong ID, then the wrong question, then from 127.0.0.2. */
        w = answer_for(j->buf, j->len, false, LDNS_RCODE_NOERROR, &len);
        w[0] ^= 0x55;
        sendto(p->udp, w, len, 0, (struct sockaddr *) &j->from,
               sizeof(j->from));
        w[0] ^= 0x55;
        w[13] = w[13] == '9' ? '8' : '9';   /* first letter of the name */
        sendto(p->udp, w, len, 0, (struct sockaddr *) &j->from,
               sizeof(j->from));
        free(w);
        w = answer_for(j->buf, j->len, false, LDNS_RCODE_NOERROR, &len);
        ((uint8_t *) w)[len - 1] = 66;      /* a forged address */
        sendto(p->forger, w, len, 0, (struct sockaddr *) &j->from,
               sizeof(j->from));
        free(w);
        sleep_ms(50);
    }
    if (p->mode == P_FLOOD) {
        /* Replies that are not for the query, back to back: each one
         * wakes the resolver, none may keep it past its deadline. */
        int64_t end = 0;
        struct timespec ts;

        w = answer_for(j->buf, j->len, false, LDNS_RCODE_NOERROR, &len);
        w[0] ^= 0x55;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        end = ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1000;
        do {
            for (int i = 0; i < 50; i++)
                sendto(p->udp, w, len, 0, (struct sockaddr *) &j->from,
                       sizeof(j->from));
            clock_gettime(CLOCK_MONOTONIC, &ts);
        } while (ts.tv_sec * 1000 + ts.tv_nsec / 1000000 < end &&
                 !atomic_load(&p->stop));
        free(w);
        free(j);
        return NULL;
    }
    w = answer_for(j->buf, j->len, p->mode == P_TRUNCATE ||
                   p->mode == P_TCP_TINY || p->mode == P_TCP_GARBLED ||
                   p->mode == P_TCP_SHORT,
                   p->mode == P_SERVFAIL ? LDNS_RCODE_SERVFAIL
                   : p->mode == P_NXDOMAIN ? LDNS_RCODE_NXDOMAIN
                   : LDNS_RCODE_NOERROR, &len);
    if (w != NULL)
        sendto(p->udp, w, len, 0, (struct sockaddr *) &j->from,
               sizeof(j->from));
    free(w);
    free(j);
    return NULL;
}

static void serve_tcp(struct peer *p)
{
    int c = accept(p->tcp, NULL, NULL);
    uint8_t buf[600], *w;
    uint8_t hdr[2];
    size_t len, got = 0, want;

    if (c < 0)
        return;
    while (got < 2 && recv(c, hdr + got, 1, 0) == 1)
        got++;
    want = ((size_t) hdr[0] << 8) | hdr[1];
    got = 0;
    while (got < want && want <= sizeof(buf)) {
        ssize_t n = recv(c, buf + got, want - got, 0);

        if (n <= 0)
            break;
        got += (size_t) n;
    }
    if (got == want && p->mode == P_TCP_TINY) {
        static const uint8_t tiny[] = { 0, 5, 1, 2, 3, 4, 5 };

        send(c, tiny, sizeof(tiny), 0);
    } else if (got == want && p->mode == P_TCP_GARBLED) {
        uint8_t junk[2 + 40];

        memset(junk, 0xc0, sizeof(junk));   /* pointers to themselves */
        junk[0] = 0;
        junk[1] = 40;
        memcpy(junk + 2, buf, 2);           /* the ID matches */
        junk[4] = 0x81;                     /* a response */
        send(c, junk, sizeof(junk), 0);
    } else if (got == want && (w = answer_for(buf, want, false,
                                              LDNS_RCODE_NOERROR,
                                              &len)) != NULL) {
        hdr[0] = (uint8_t) (len >> 8);
        hdr[1] = (uint8_t) len;
        send(c, hdr, 2, 0);
        send(c, w, p->mode == P_TCP_SHORT ? len / 2 : len, 0);
        free(w);
    }
    close(c);
}

static void *peer_run(void *arg)
{
    struct peer *p = arg;

    while (!atomic_load(&p->stop)) {
        struct pollfd pfd[2] = { { p->udp, POLLIN, 0 }, { p->tcp, POLLIN, 0 } };
        struct job *j;
        socklen_t sl;
        pthread_t t;
        ssize_t n;

        if (poll(pfd, 2, 50) <= 0)
            continue;
        if (pfd[1].revents)
            serve_tcp(p);
        if (!pfd[0].revents)
            continue;
        j = calloc(1, sizeof(*j));
        j->p = p;
        sl = sizeof(j->from);
        n = recvfrom(p->udp, j->buf, sizeof(j->buf), 0,
                     (struct sockaddr *) &j->from, &sl);
        if (n >= 2 && atomic_load(&p->queries) < PEER_SEEN) {
            int k = atomic_load(&p->queries);

            p->seen_id[k] = (uint16_t) ((j->buf[0] << 8) | j->buf[1]);
            p->seen_port[k] = ntohs(j->from.sin_port);
        }
        atomic_fetch_add(&p->queries, 1);
        if (n <= 0 || p->mode == P_DROP) {
            free(j);
            continue;
        }
        j->len = (size_t) n;
        pthread_create(&t, NULL, job_run, j);
        pthread_detach(t);
    }
    return NULL;
}

static void peer_start(struct peer *p, enum peer_mode mode, int delay_ms)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sa);
    int one = 1;

    memset(p, 0, sizeof(*p));
    p->mode = mode;
    p->delay_ms = delay_ms;
    /* One port for both; the kernel's free UDP port may be a TCP port in
     * use by some client, so try again then. */
    for (int tries = 0;; tries++) {
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sa.sin_port = 0;
        p->udp = socket(AF_INET, SOCK_DGRAM, 0);
        ck_assert_int_eq(bind(p->udp, (struct sockaddr *) &sa, sizeof(sa)),
                         0);
        sl = sizeof(sa);
        getsockname(p->udp, (struct sockaddr *) &sa, &sl);
        p->port = ntohs(sa.sin_port);
        p->tcp = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(p->tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(p->tcp, (struct sockaddr *) &sa, sizeof(sa)) == 0)
            break;
        ck_assert_int_lt(tries, 50);
        close(p->udp);
        close(p->tcp);
    }
    ck_assert_int_eq(listen(p->tcp, 16), 0);
    p->forger = socket(AF_INET, SOCK_DGRAM, 0);
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(0x7f000002);
    ck_assert_int_eq(bind(p->forger, (struct sockaddr *) &sa, sizeof(sa)), 0);
    pthread_create(&p->thread, NULL, peer_run, p);
}

static void peer_stop(struct peer *p)
{
    atomic_store(&p->stop, true);
    pthread_join(p->thread, NULL);
    sleep_ms(20);               /* let detached jobs finish sending */
    close(p->udp);
    close(p->tcp);
    close(p->forger);
}

static struct sg_dns *resolver(const struct peer *p, int timeout_ms,
                               int retries, size_t cache)
{
    struct sg_dns_opts o = { 0 };
    struct sg_dns *dns;
    struct sg_err err;
    char servers[64];

    snprintf(servers, sizeof(servers), "127.0.0.1:%u", p->port);
    o.servers = servers;
    o.timeout_ms = timeout_ms;
    o.retries = retries;
    o.cache_max = cache;
    o.ttl_max = 3600;
    o.neg_ttl_max = 600;
    ck_assert_int_eq(sg_dns_new(&o, &dns, &err), SG_OK);
    return dns;
}

START_TEST(test_forged_replies_ignored)
{
    struct peer p;
    struct sg_dns *dns;
    struct sg_dns_batch *b;
    struct sg_dns_stats st;
    int h;

    peer_start(&p, P_FORGE_FIRST, 0);
    dns = resolver(&p, 2000, 0, 0);
    b = sg_dns_batch_new(dns);
    h = sg_dns_query(b, "9.test", SG_DNS_T_A);
    ck_assert_int_eq(sg_dns_wait(b, -1, sg_dns_clock(dns) + 3000), 0);
    ck_assert_int_eq(sg_dns_status_of(b, h), SG_DNS_OK);
    /* The real address, not the forger's .66. */
    ck_assert_int_eq(sg_dns_result(b, h)->rr[0].addr.b[3], 9);
    sg_dns_get_stats(dns, &st);
    /* Wrong ID and wrong question reached us and were dropped; the kernel
     * never delivered the one from 127.0.0.2 to the connected socket. */
    ck_assert_uint_eq(st.mismatched, 2);
    ck_assert_uint_eq(st.answers, 1);
    sg_dns_batch_free(b);
    sg_dns_free(dns);
    peer_stop(&p);
}
END_TEST

START_TEST(test_parallel_not_serial)
{
    struct peer p;
    struct sg_dns *dns;
    struct sg_dns_batch *b;
    int64_t t0, took;
    char name[32];

    peer_start(&p, P_ANSWER, 300);
    dns = resolver(&p, 2000, 0, 0);
    b = sg_dns_batch_new(dns);
    t0 = sg_dns_clock(dns);
    for (int i = 1; i <= 8; i++) {
        snprintf(name, sizeof(name), "%d.test", i);
        ck_assert_int_eq(sg_dns_query(b, name, SG_DNS_T_A), i - 1);
    }
    ck_assert_int_eq(sg_dns_wait(b, -1, t0 + 5000), 0);
    took = sg_dns_clock(dns) - t0;
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(sg_dns_status_of(b, i), SG_DNS_OK);
    /* 8 answers delayed 300 ms each: about 300 ms, not 2400. */
    ck_assert_msg(took >= 290 && took < 1200, "took %lld ms",
                  (long long) took);
    sg_dns_batch_free(b);
    sg_dns_free(dns);
    peer_stop(&p);
}
END_TEST

START_TEST(test_timeout_within_budget)
{
    struct peer p;
    struct sg_dns *dns;
    struct sg_dns_batch *b;
    int64_t t0, took;
    int h;

    peer_start(&p, P_DROP, 0);
    dns = resolver(&p, 200, 1, 0);
    b = sg_dns_batch_new(dns);
    t0 = sg_dns_clock(dns);
    h = sg_dns_query(b, "1.test", SG_DNS_T_A);
    /* A deadline before the tries are over: back at the deadline. */
    ck_assert_int_eq(sg_dns_wait(b, h, t0 + 250), 1);
    took = sg_dns_clock(dns) - t0;
    ck_assert_msg(took >= 240 && took < 350, "took %lld", (long long) took);
    ck_assert_int_eq(sg_dns_status_of(b, h), SG_DNS_PENDING);
    /* Two tries of 200 ms, then TIMEOUT. */
    ck_assert_int_eq(sg_dns_wait(b, h, t0 + 5000), 0);
    took = sg_dns_clock(dns) - t0;
    ck_assert_msg(took >= 390 && took < 600, "took %lld", (long long) took);
    ck_assert_int_eq(sg_dns_status_of(b, h), SG_DNS_TIMEOUT);
    ck_assert_int_eq(atomic_load(&p.queries), 2);
    sg_dns_batch_free(b);
    sg_dns_free(dns);
    peer_stop(&p);
}
END_TEST

/* SPF macros expand to names with spaces and '%' (RFC 7208 7.3): asked,
 * byte for byte, and the reply matched to them. */
START_TEST(test_names_with_spaces_asked)
{
    static const char *const names[] = {
        "macro%percent  space%20url-space.test", "semi;colon(paren).test",
        "$at@sign.test",
    };
    struct peer p;
    struct sg_dns *dns;
    struct sg_dns_batch *b;

    peer_start(&p, P_ANSWER, 0);
    dns = resolver(&p, 1000, 0, 0);
    b = sg_dns_batch_new(dns);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(sg_dns_query(b, names[i], SG_DNS_T_A), i);
    ck_assert_int_eq(sg_dns_wait(b, SG_DNS_ALL, sg_dns_clock(dns) + 3000), 0);
    for (int i = 0; i < 3; i++) {
        const struct sg_dns_answer *a = sg_dns_result(b, i);

        ck_assert_int_eq(sg_dns_status_of(b, i), SG_DNS_OK);
        ck_assert_str_eq(a->name, names[i]);
        ck_assert_str_eq(a->canon, names[i]);
        ck_assert_uint_eq(a->nrr, 1);
    }
    ck_assert_int_eq(atomic_load(&p.queries), 3);
    sg_dns_batch_free(b);
    sg_dns_free(dns);
    peer_stop(&p);
}
END_TEST

/* An answer over TCP that is short or makes no sense: never a
 * definite "does not exist", which a check would take as proof. */
START_TEST(test_bad_tcp_answer_not_definite)
{
    static const enum peer_mode modes[] = { P_TCP_TINY, P_TCP_GARBLED,
                                            P_TCP_SHORT };

    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        struct peer p;
        struct sg_dns *dns;
        struct sg_dns_batch *b;
        enum sg_dns_status st;
        int h;

        peer_start(&p, modes[i], 0);
        dns = resolver(&p, 1000, 0, 0);
        b = sg_dns_batch_new(dns);
        h = sg_dns_query(b, "big.test", SG_DNS_T_TXT);
        ck_assert_int_eq(sg_dns_wait(b, -1, sg_dns_clock(dns) + 3000), 0);
        st = sg_dns_status_of(b, h);
        ck_assert_msg(!sg_dns_definite(st) && st != SG_DNS_BADNAME,
                      "mode %d: %s", (int) modes[i], sg_dns_status_name(st));
        sg_dns_batch_free(b);
        sg_dns_free(dns);
        peer_stop(&p);
    }
}
END_TEST

/* No socket (the descriptor limit): the try is not sent, and the
 * resolver says why, for the engine's dns_local_error line. */
START_TEST(test_no_socket_counted)
{
    struct peer p;
    struct sg_dns *dns;
    struct sg_dns_batch *b;
    struct sg_dns_stats st;
    struct rlimit old, low;
    int h, probe;

    peer_start(&p, P_ANSWER, 0);
    dns = resolver(&p, 200, 0, 0);
    b = sg_dns_batch_new(dns);
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    probe = dup(0);             /* the lowest free descriptor */
    ck_assert_int_ge(probe, 0);
    close(probe);
    low = old;
    low.rlim_cur = (rlim_t) probe;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    h = sg_dns_query(b, "1.test", SG_DNS_T_A);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    ck_assert_int_eq(sg_dns_wait(b, -1, sg_dns_clock(dns) + 2000), 0);
    ck_assert(!sg_dns_definite(sg_dns_status_of(b, h)));
    sg_dns_get_stats(dns, &st);
    ck_assert_uint_eq(st.local_failures, 1);
    ck_assert_int_eq(st.local_what, SG_DNS_LOCAL_SOCKET);
    ck_assert_int_eq(st.local_errno, EMFILE);
    ck_assert_str_eq(sg_dns_local_name(st.local_what), "socket");
    ck_assert_int_eq(p.queries, 0);
    sg_dns_batch_free(b);
    sg_dns_free(dns);
    peer_stop(&p);
}
END_TEST

START_TEST(test_truncated_goes_tcp)
{
    struct peer p;
    struct sg_dns *dns;
    struct sg_dns_batch *b;
    struct sg_dns_stats st;
    const struct sg_dns_answer *a;
    int h;

    peer_start(&p, P_TRUNCATE, 0);
    dns = resolver(&p, 1000, 0, 0);
    b = sg_dns_batch_new(dns);
    h = sg_dns_query(b, "big.test", SG_DNS_T_TXT);
    ck_assert_int_eq(sg_dns_wait(b, -1, sg_dns_clock(dns) + 3000), 0);
    a = sg_dns_result(b, h);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->status, SG_DNS_OK);
    ck_assert_int_eq(a->rr[0].len, 500);
    sg_dns_get_stats(dns, &st);
    ck_assert_uint_eq(st.tcp, 1);
    sg_dns_batch_free(b);
    sg_dns_free(dns);
    peer_stop(&p);
}
END_TEST

START_TEST(test_servfail_and_bad_names)
{
    struct peer p;
    struct sg_dns *dns;
    struct sg_dns_batch *b;
    int h, bad;

    peer_start(&p, P_SERVFAIL, 0);
    dns = resolver(&p, 1000, 0, 100);
    b = sg_dns_batch_new(dns);
    h = sg_dns_query(b, "1.test", SG_DNS_T_A);
    bad = sg_dns_query(b, "a..b", SG_DNS_T_A);
    ck_assert_int_eq(sg_dns_status_of(b, bad), SG_DNS_BADNAME);
    /* Never an escape sequence, no control bytes. */
    ck_assert_int_eq(sg_dns_query(b, "back\\046slash.test", SG_DNS_T_A), 2);
    ck_assert_int_eq(sg_dns_status_of(b, 2), SG_DNS_BADNAME);
    ck_assert_int_eq(sg_dns_query(b, "tab\there.test", SG_DNS_T_A), 3);
    ck_assert_int_eq(sg_dns_status_of(b, 3), SG_DNS_BADNAME);
    ck_assert_int_eq(sg_dns_wait(b, -1, sg_dns_clock(dns) + 3000), 0);
    ck_assert_int_eq(sg_dns_status_of(b, h), SG_DNS_SERVFAIL);
    sg_dns_batch_free(b);
    ck_assert_int_eq(atomic_load(&p.queries), 1);
    /* SERVFAIL is not cached: the next session asks again. */
    b = sg_dns_batch_new(dns);
    sg_dns_query(b, "1.test", SG_DNS_T_A);
    sg_dns_wait(b, -1, sg_dns_clock(dns) + 3000);
    ck_assert_int_eq(atomic_load(&p.queries), 2);
    sg_dns_batch_free(b);
    sg_dns_free(dns);
    peer_stop(&p);
}
END_TEST

/* ---- cache ---- */

static int64_t cache_ms;

static int64_t fake_ms(void *arg)
{
    (void) arg;
    return cache_ms;
}

START_TEST(test_cache_ttl_and_eviction)
{
    struct peer p;
    struct sg_dns_opts o = { 0 };
    struct sg_dns *dns;
    struct sg_dns_batch *b;
    struct sg_dns_stats st;
    struct sg_err err;
    char servers[64], name[32];

    peer_start(&p, P_ANSWER, 0);
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", p.port);
    o.servers = servers;
    o.timeout_ms = 1000;
    o.cache_max = 32;           /* 2 per shard */
    o.ttl_min = 10;
    o.ttl_max = 60;             /* the peer says 300 */
    o.clock = fake_ms;
    cache_ms = 1000000;
    ck_assert_int_eq(sg_dns_new(&o, &dns, &err), SG_OK);
    b = sg_dns_batch_new(dns);
    sg_dns_query(b, "7.test", SG_DNS_T_A);
    sg_dns_wait(b, -1, sg_dns_clock(dns) + 2000);
    /* A hit completes at once, without a packet. */
    ck_assert_int_eq(sg_dns_query(b, "7.TEST.", SG_DNS_T_A), 1);
    ck_assert_int_eq(sg_dns_status_of(b, 1), SG_DNS_OK);
    ck_assert_int_eq(atomic_load(&p.queries), 1);
    /* TTL 300 clamped to 60: gone after a minute. */
    cache_ms += 59000;
    sg_dns_query(b, "7.test", SG_DNS_T_A);
    ck_assert_int_eq(sg_dns_status_of(b, 2), SG_DNS_OK);
    cache_ms += 2000;
    sg_dns_query(b, "7.test", SG_DNS_T_A);
    ck_assert_int_eq(sg_dns_status_of(b, 3), SG_DNS_PENDING);
    sg_dns_wait(b, -1, sg_dns_clock(dns) + 2000);
    sg_dns_batch_free(b);
    /* Bounded: 100 names leave at most 32 entries. */
    for (int i = 0; i < 100; i++) {
        b = sg_dns_batch_new(dns);
        snprintf(name, sizeof(name), "%d.test", i);
        sg_dns_query(b, name, SG_DNS_T_A);
        sg_dns_wait(b, -1, sg_dns_clock(dns) + 2000);
        sg_dns_batch_free(b);
    }
    sg_dns_get_stats(dns, &st);
    ck_assert_uint_le(st.cache_entries, 32);
    ck_assert_uint_ge(st.cache_evictions, 68);
    /* 2 above, and 7.test in the loop unless 0-6.test took its shard
     * first (the shard follows the keyed hash, random per process). */
    ck_assert_uint_ge(st.cache_hits, 2);
    ck_assert_uint_le(st.cache_hits, 3);
    sg_dns_free(dns);
    peer_stop(&p);
}
END_TEST

/* NXDOMAIN with an SOA is cached for the SOA's negative TTL (RFC 2308:
 * min(TTL 600, MINIMUM 120)), bounded by neg_ttl_max. */
START_TEST(test_negative_cache)
{
    struct peer p;
    struct sg_dns_opts o = { 0 };
    struct sg_dns *dns;
    struct sg_dns_batch *b;
    const struct sg_dns_answer *a;
    struct sg_err err;
    char servers[64];

    peer_start(&p, P_NXDOMAIN, 0);
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", p.port);
    o.servers = servers;
    o.timeout_ms = 1000;
    o.cache_max = 100;
    o.ttl_max = 3600;
    o.neg_ttl_max = 60;         /* below the SOA's 120 */
    o.clock = fake_ms;
    cache_ms = 5000000;
    ck_assert_int_eq(sg_dns_new(&o, &dns, &err), SG_OK);
    b = sg_dns_batch_new(dns);
    sg_dns_query(b, "gone.test", SG_DNS_T_A);
    sg_dns_wait(b, SG_DNS_ALL, sg_dns_clock(dns) + 2000);
    a = sg_dns_result(b, 0);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->status, SG_DNS_NXDOMAIN);
    ck_assert_uint_eq(a->ttl, 120);
    ck_assert_int_eq(atomic_load(&p.queries), 1);
    /* Within the bound: a hit, nothing asked. */
    cache_ms += 59000;
    sg_dns_query(b, "gone.test", SG_DNS_T_A);
    ck_assert_int_eq(sg_dns_status_of(b, 1), SG_DNS_NXDOMAIN);
    ck_assert_int_eq(atomic_load(&p.queries), 1);
    /* Past 60 s (not 120): asked again. */
    cache_ms += 2000;
    sg_dns_query(b, "gone.test", SG_DNS_T_A);
    ck_assert_int_eq(sg_dns_status_of(b, 2), SG_DNS_PENDING);
    sg_dns_wait(b, SG_DNS_ALL, sg_dns_clock(dns) + 2000);
    ck_assert_int_eq(sg_dns_status_of(b, 2), SG_DNS_NXDOMAIN);
    ck_assert_int_eq(atomic_load(&p.queries), 2);
    sg_dns_batch_free(b);
    sg_dns_free(dns);
    peer_stop(&p);
}
END_TEST

/* Every query has its own random ID and its own random source port. */
START_TEST(test_random_ids_and_ports)
{
    struct peer p;
    struct sg_dns *dns;
    struct sg_dns_batch *b;
    char name[32];
    int ids = 0, ports = 0;

    peer_start(&p, P_ANSWER, 0);
    dns = resolver(&p, 2000, 0, 0);
    b = sg_dns_batch_new(dns);
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "%d.test", i);
        sg_dns_query(b, name, SG_DNS_T_A);
    }
    ck_assert_int_eq(sg_dns_wait(b, SG_DNS_ALL, sg_dns_clock(dns) + 3000), 0);
    ck_assert_int_eq(atomic_load(&p.queries), 20);
    for (int i = 0; i < 20; i++) {
        bool id_new = true, port_new = true;

        for (int k = 0; k < i; k++) {
            id_new = id_new && p.seen_id[k] != p.seen_id[i];
            port_new = port_new && p.seen_port[k] != p.seen_port[i];
        }
        ids += id_new;
        ports += port_new;
    }
    /* 20 draws of 16 bits (ports: of 64512) collide rarely: at most 2. */
    ck_assert_msg(ids >= 18, "%d distinct IDs of 20", ids);
    ck_assert_msg(ports >= 18, "%d distinct ports of 20", ports);
    sg_dns_batch_free(b);
    sg_dns_free(dns);
    peer_stop(&p);
}
END_TEST

/* The cache is bounded in bytes too: big answers displace more. */
START_TEST(test_cache_bytes_bounded)
{
    struct peer p;
    struct sg_dns *dns;
    struct sg_dns_batch *b;
    struct sg_dns_stats st;
    char name[32];

    peer_start(&p, P_ANSWER, 0);
    dns = resolver(&p, 1000, 0, 64);    /* 64 KB in all, 4 KB a shard */
    for (int i = 0; i < 100; i++) {
        b = sg_dns_batch_new(dns);
        snprintf(name, sizeof(name), "huge%d.test", i);
        sg_dns_query(b, name, SG_DNS_T_TXT);
        sg_dns_wait(b, SG_DNS_ALL, sg_dns_clock(dns) + 2000);
        ck_assert_int_eq(sg_dns_status_of(b, 0), SG_DNS_OK);
        ck_assert_uint_eq(sg_dns_result(b, 0)->rr[0].len, 1500);
        sg_dns_batch_free(b);
        sg_dns_get_stats(dns, &st);
        ck_assert_uint_le(st.cache_bytes, 64 * SG_DNS_CACHE_AVG);
    }
    /* ~2.2 KB each: one a shard, not the four the count would allow. */
    ck_assert_uint_le(st.cache_entries, 16);
    ck_assert_uint_ge(st.cache_entries, 8);
    ck_assert_uint_ge(st.cache_bytes, st.cache_entries * 1500);
    sg_dns_free(dns);
    /* Small answers: the count is the bound, as before. */
    dns = resolver(&p, 1000, 0, 32);
    for (int i = 0; i < 100; i++) {
        b = sg_dns_batch_new(dns);
        snprintf(name, sizeof(name), "%d.test", i);
        sg_dns_query(b, name, SG_DNS_T_A);
        sg_dns_wait(b, SG_DNS_ALL, sg_dns_clock(dns) + 2000);
        sg_dns_batch_free(b);
    }
    sg_dns_get_stats(dns, &st);
    ck_assert_uint_gt(st.cache_entries, 16);
    ck_assert_uint_le(st.cache_bytes, 32 * SG_DNS_CACHE_AVG);
    sg_dns_free(dns);
    peer_stop(&p);
}
END_TEST

/* A flood of replies that are not for the query does not keep
 * sg_dns_wait() past its deadline. */
START_TEST(test_deadline_under_flood)
{
    struct peer p;
    struct sg_dns *dns;
    struct sg_dns_batch *b;
    struct sg_dns_stats st;
    int64_t t0, took;
    int h;

    peer_start(&p, P_FLOOD, 0);
    dns = resolver(&p, 2000, 0, 0);
    b = sg_dns_batch_new(dns);
    t0 = sg_dns_clock(dns);
    h = sg_dns_query(b, "1.test", SG_DNS_T_A);
    ck_assert_int_eq(sg_dns_wait(b, h, t0 + 300), 1);
    took = sg_dns_clock(dns) - t0;
    ck_assert_msg(took >= 290 && took < 400, "took %lld ms", (long long) took);
    ck_assert_int_eq(sg_dns_status_of(b, h), SG_DNS_PENDING);
    sg_dns_get_stats(dns, &st);
    ck_assert_uint_gt(st.mismatched, 100);
    sg_dns_batch_free(b);
    sg_dns_free(dns);
    peer_stop(&p);
}
END_TEST

struct hammer {
    struct sg_dns *dns;
    int ok;
};

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    char name[32];

    for (int i = 0; i < 200; i++) {
        struct sg_dns_batch *b = sg_dns_batch_new(h->dns);

        snprintf(name, sizeof(name), "%d.test", i % 10);
        sg_dns_query(b, name, SG_DNS_T_A);
        sg_dns_wait(b, -1, sg_dns_clock(h->dns) + 3000);
        h->ok += sg_dns_status_of(b, 0) == SG_DNS_OK;
        sg_dns_batch_free(b);
    }
    return NULL;
}

START_TEST(test_cache_threads)
{
    struct peer p;
    struct hammer h[4];
    pthread_t t[4];
    struct sg_dns *dns;
    struct sg_dns_stats st;

    peer_start(&p, P_ANSWER, 0);
    dns = resolver(&p, 2000, 1, 1000);
    for (int i = 0; i < 4; i++) {
        h[i].dns = dns;
        h[i].ok = 0;
        pthread_create(&t[i], NULL, hammer_run, &h[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(h[i].ok, 200);
    }
    sg_dns_get_stats(dns, &st);
    ck_assert_uint_eq(st.queries, 800);
    ck_assert_uint_ge(st.cache_hits, 700);
    sg_dns_free(dns);
    peer_stop(&p);
}
END_TEST

Suite *dns_suite(void)
{
    Suite *s = suite_create("dns");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_parse_servers);
    tcase_add_test(tc, test_reply_verification);
    tcase_add_test(tc, test_reply_kinds);
    tcase_add_test(tc, test_reply_hostile_wire);
    tcase_add_test(tc, test_forged_replies_ignored);
    tcase_add_test(tc, test_parallel_not_serial);
    tcase_add_test(tc, test_timeout_within_budget);
    tcase_add_test(tc, test_truncated_goes_tcp);
    tcase_add_test(tc, test_bad_tcp_answer_not_definite);
    tcase_add_test(tc, test_no_socket_counted);
    tcase_add_test(tc, test_servfail_and_bad_names);
    tcase_add_test(tc, test_names_with_spaces_asked);
    tcase_add_test(tc, test_cache_ttl_and_eviction);
    tcase_add_test(tc, test_cache_threads);
    tcase_add_test(tc, test_negative_cache);
    tcase_add_test(tc, test_random_ids_and_ports);
    tcase_add_test(tc, test_cache_bytes_bounded);
    tcase_add_test(tc, test_deadline_under_flood);
    suite_add_tcase(s, tc);
    return s;
}
