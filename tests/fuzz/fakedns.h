/*
 * fakedns.h - a DNS server in memory, behind the socket calls the resolver
 * makes (lib/dns.c), for harnesses that run whole checks
 *
 * The harness hands fakedns_ops to the resolver as its socket calls
 * (sg_dns_opts.ops, or the engine's env.dns): every socket it opens is a
 * descriptor of /dev/null (so poll() says ready at once) whose send()
 * hands the query to this server and whose recv() returns its reply. The resolver runs unchanged: its own queries, IDs, question
 * checks, parsing by ldns, TCP after a truncated UDP reply. No packet
 * leaves the process and nothing waits: a name that gets no reply fails at
 * once (as after an ICMP unreachable), not after a timeout.
 *
 * Zone lines, one record each:  NAME TYPE DATA
 *   TYPE A, AAAA (an address), MX ("10 mx.example"), PTR, CNAME, NS (a
 *   name), TXT (the rest of the line, bytes as they are, split into
 *   strings of 255; may hold NULs), or a fault for every question about
 *   NAME: SERVFAIL, REFUSED, NXDOMAIN, TC (the UDP reply is truncated: the
 *   resolver asks again over TCP), BADID (a reply with the wrong ID comes
 *   first), DROP (no reply). NAME "*" answers names that have no record.
 *   A name without records is NXDOMAIN; a name without records of the
 *   type asked is NODATA. UDP replies over 512 bytes are truncated.
 */
#ifndef SG_FAKEDNS_H
#define SG_FAKEDNS_H

#include <stddef.h>

#include "env.h"

/* The resolver's socket calls, answered from the zone below. */
extern const struct sg_dns_ops fakedns_ops;

/* Forget every record. */
void fakedns_reset(void);
/* Add one record from a zone line (not NUL-terminated); false when the
 * line is not one (unknown type, bad address, too long, zone full). */
int fakedns_line(const char *line, size_t len);
/* Questions answered since the last reset. */
unsigned fakedns_queries(void);

#endif /* SG_FAKEDNS_H */
