/*
 * dnsbl.h - DNS blacklist and allow list zones: which answers count, and
 * the weighted sum over the zones that list a client
 *
 * A zone is configured as postscreen's postscreen_dnsbl_sites entries are
 * ("zone=127.0.0.[2..11;20]*weight"), in the columns of dnsbl_zones: the
 * zone, the answer filter and the weight (negative: an allow list). The
 * answer filter is a comma-separated list of alternatives, any of which
 * may match an A record of the answer:
 *   ""                  any 127.0.0.0/8 address except 127.255.255.0/24
 *                       (the range lists use to signal errors, such as a
 *                       query refused from a public resolver)
 *   "127.0.0.[2..11;20]" four octets, each a number, or [a list] of
 *                       numbers and ranges separated by ';'
 *   "127.0.0.0/24"      a network
 *   "&0x04"             a bitmask of the last octet: any bit set (lists
 *                       that encode several sublists in one answer)
 *
 * Input trust: zone rows come from the operator (validated, refused with a
 * reason); answers come from DNS servers and are only compared. Reentrant.
 */
#ifndef SG_DNSBL_H
#define SG_DNSBL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "sg.h"

#define SG_DNSBL_ZONE_MAX 254   /* a DNS name, without the client part */

enum sg_dnsbl_kind {
    SG_DNSBL_ANY,               /* "" */
    SG_DNSBL_PATTERN,           /* octets with [lists] */
    SG_DNSBL_NET,               /* a.b.c.d/n */
    SG_DNSBL_MASK,              /* &mask of the last octet */
};

struct sg_dnsbl_match {
    enum sg_dnsbl_kind kind;
    uint8_t octet[4][32];       /* PATTERN: a bit per allowed value */
    struct sg_cidr net;         /* NET */
    unsigned mask;              /* MASK */
};

struct sg_dnsbl_zone {
    char *zone;                 /* lower case, no trailing dot */
    long weight;                /* negative: allow list */
    char *answers;              /* the filter as configured, for logs */
    struct sg_dnsbl_match *match;
    size_t nmatch;
    bool txt;                   /* fetch the TXT reason */
    bool ipv6;                  /* ask for IPv6 clients too */
};

/*
 * Parse an answer filter into `z` (match, nmatch, answers). SG_EINVAL with
 * a reason that names the offending part; SG_ENOMEM.
 */
int sg_dnsbl_answers_parse(struct sg_dnsbl_zone *z, const char *text,
                           struct sg_err *err);

/*
 * Fill a zone from its columns (zone name, weight, filter, txt, ipv6);
 * SG_EINVAL with a reason. Free with sg_dnsbl_zone_clear().
 */
int sg_dnsbl_zone_init(struct sg_dnsbl_zone *z, const char *zone,
                       long weight, const char *answers, bool txt,
                       bool ipv6, struct sg_err *err);

/*
 * Parse a postscreen-style site, "zone[=filter][*weight]" (the filter may
 * hold several alternatives separated by ',' as in the answers column).
 */
int sg_dnsbl_site_parse(struct sg_dnsbl_zone *z, const char *site,
                        struct sg_err *err);

void sg_dnsbl_zone_clear(struct sg_dnsbl_zone *z);

/* True when the IPv4 answer `a` (4 bytes) counts as a listing of `z`. */
bool sg_dnsbl_answer_counts(const struct sg_dnsbl_zone *z, const uint8_t a[4]);

#endif /* SG_DNSBL_H */
