/*
 * dname.h - domain names as smtpguard takes them: the one place that says
 * what a name may be, for each use, and how reverse names are written
 *
 * A name comes from operators (lists, zones, settings), from SMTP clients
 * (HELO, MAIL FROM, RCPT TO) and from DNS answers. Each use has its own
 * rule, named here: what a list entry may be, what the resolver may ask,
 * what may stand in a header as a host name.
 */
#ifndef SG_DNAME_H
#define SG_DNAME_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"

#define SG_DNAME_MAX 254        /* a name as text, no trailing dot, NUL */

/*
 * Lower-case a domain and drop one trailing dot into `out`; SG_EINVAL
 * unless it is a plausible host-style DNS name: letters, digits, '-', '_'
 * and dots, no empty label, at most 253 characters.
 */
int sg_dname_normalize(const char *in, char *out, size_t size);

/*
 * A name the resolver is willing to ask: labels of 1-63 printable ASCII
 * bytes (space included: SPF macros expand to such names, RFC 7208 7.3)
 * separated by dots, one trailing dot allowed. Control bytes, DEL, 8-bit
 * bytes, backslash and double quote are refused: a name is never an
 * escape sequence, so its labels are exactly the bytes between its dots.
 */
bool sg_dname_query_ok(const char *name);

/*
 * A name fit to be written as a host name (a header's receiver or
 * authserv-id): letters, digits, '-', '_' and dots, not starting with a
 * dot or a hyphen, under SG_DNAME_MAX.
 */
bool sg_dname_host_ok(const char *name);

/*
 * A fully qualified host name SPF can check (RFC 7208 2.3; anything else
 * is "none"): at least two labels of 1-63 characters, letters, digits,
 * '-', '_' and dots, under SG_DNAME_MAX, not an address literal.
 */
bool sg_dname_fqdn_ok(const char *name);

/*
 * The name for `client` under `zone`: reversed octets for IPv4
 * (7.2.0.192.zone for 192.0.2.7), reversed nibbles for IPv6 (RFC 5782,
 * and RFC 1035 / 3596 with zone "in-addr.arpa" / "ip6.arpa"). SG_EINVAL
 * when it does not fit.
 */
int sg_dname_reverse(const struct sg_addr *client, const char *zone,
                     char *out, size_t size);

#endif /* SG_DNAME_H */
