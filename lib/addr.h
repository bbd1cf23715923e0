/*
 * addr.h - IPv4/IPv6 client addresses, CIDR networks and prefix keys
 *
 * Input trust: strings come from the MTA's macros (hostile as SMTP input)
 * and from operators' lists; every parser bounds its input and fails
 * cleanly. IPv4-mapped IPv6 addresses (::ffff:192.0.2.1) are treated as the
 * IPv4 address they carry. Reentrant.
 */
#ifndef SG_ADDR_H
#define SG_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sg.h"

#define SG_ADDR_STRLEN 64       /* room for any address or key text */

struct sg_addr {
    int family;                 /* AF_INET or AF_INET6 */
    uint8_t b[16];              /* IPv4 in b[0..3] */
};

struct sg_cidr {
    struct sg_addr addr;        /* host bits zero */
    int prefix;
};

/*
 * Parse a client address: "192.0.2.1", "2001:db8::1", "[2001:db8::1]",
 * "IPv6:2001:db8::1" (Sendmail), with an optional zone ("fe80::1%eth0",
 * dropped). Returns SG_OK or SG_EINVAL.
 */
int sg_addr_parse(const char *s, struct sg_addr *out);

/* Text form ("192.0.2.1", "2001:db8::1"); returns SG_OK or SG_EINVAL. */
int sg_addr_format(const struct sg_addr *a, char *buf, size_t size);

int sg_addr_bits(const struct sg_addr *a);  /* 32 or 128 */

/* Keep the first `prefix` bits (clamped to the family's width). */
void sg_addr_mask(const struct sg_addr *in, int prefix, struct sg_addr *out);

/*
 * The key an address is counted under: the address masked to v4prefix or
 * v6prefix bits, as text; "/N" is appended unless N is the full width
 * ("192.0.2.7", "2001:db8:0:1::/64").
 */
void sg_addr_key(const struct sg_addr *a, int v4prefix, int v6prefix,
                 char *buf, size_t size);

/*
 * Parse "addr" or "addr/prefix". Host bits beyond the prefix are refused
 * (they usually mean a typo) with a message that suggests the network.
 */
int sg_cidr_parse(const char *s, struct sg_cidr *out, struct sg_err *err);
bool sg_cidr_match(const struct sg_cidr *net, const struct sg_addr *a);
void sg_cidr_format(const struct sg_cidr *net, char *buf, size_t size);

#endif /* SG_ADDR_H */
