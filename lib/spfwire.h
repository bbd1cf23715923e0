/*
 * spfwire.h - the messages between the daemon and an SPF worker
 * (spfpool.c, spfworker.c); internal to those two files
 *
 * One SOCK_SEQPACKET socket pair per worker: each message is one packet,
 * so boundaries and sizes come from the kernel. Both ends are the same
 * executable (the daemon execs itself), so fixed structs are enough; the
 * hello carries a magic, a version and the struct sizes, and a worker
 * whose hello does not match is not used (an upgraded binary on disk).
 *
 *   worker -> parent  HELLO once, then per check ASK* DONE
 *   parent -> worker  REQ per check, ANS per ASK
 */
#ifndef SG_SPFWIRE_H
#define SG_SPFWIRE_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "dns.h"
#include "mailaddr.h"
#include "spf.h"

#define SG_WIRE_MAGIC   0x53475046u     /* "SGPF" */
#define SG_WIRE_VERSION 1u
#define SG_WIRE_MAX     (80 * 1024)     /* the biggest packet (an ANS) */
#define SG_WIRE_ASKS    200             /* questions per check at most */

enum sg_wire_kind {
    SG_WIRE_HELLO = 1,
    SG_WIRE_REQ,
    SG_WIRE_ASK,
    SG_WIRE_ANS,
    SG_WIRE_DONE,
};

struct sg_wire_hello {
    uint32_t kind, magic, version;
    uint32_t req_size, outcome_size, answer_size;
};

struct sg_wire_req {
    uint32_t kind;
    bool has_helo, has_sender;
    struct sg_addr client;
    struct sg_mailaddr sender;
    char helo[SG_DNS_NAME_MAX];
    char receiver[SG_DNS_NAME_MAX];
};

struct sg_wire_ask {
    uint32_t kind;
    uint16_t type;
    char name[SG_DNS_NAME_MAX];
};

enum sg_wire_ans_result {
    SG_WIRE_ANSWER,             /* an answer follows */
    SG_WIRE_NO_ANSWER,          /* none in time */
    SG_WIRE_REFUSED,            /* over the check's lookup budget */
};

/* An ANS: this header, nrr sg_wire_rr, then the texts back to back. */
struct sg_wire_ans {
    uint32_t kind;
    uint32_t result;            /* enum sg_wire_ans_result */
    uint32_t status;            /* enum sg_dns_status */
    uint32_t ttl;
    uint16_t qtype;
    bool truncated_rrs;
    uint32_t nrr;
    char name[SG_DNS_NAME_MAX];
    char canon[SG_DNS_NAME_MAX];
};

#define SG_WIRE_NO_TEXT UINT32_MAX

struct sg_wire_rr {
    uint16_t type;
    uint16_t pref;
    uint32_t ttl;
    uint32_t len;               /* of its text; SG_WIRE_NO_TEXT: none */
    struct sg_addr addr;
};

struct sg_wire_done {
    uint32_t kind;
    struct sg_spf_outcome out;
};

#endif /* SG_SPFWIRE_H */
