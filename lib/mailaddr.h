/*
 * mailaddr.h - envelope addresses as MAIL FROM and RCPT TO carry them
 *
 * Parses what the MTA hands over ("<user@example.org>", "<>",
 * "<@relay.example:user@example.org>", "<\"john doe\"@example.org>",
 * "<postmaster>") into a local part and a domain, and makes the key the
 * policy compares: lower-case "local@domain", with a quoted local part
 * reduced to its content. Domains are lower-cased without a trailing dot
 * (IDNs compare in their ASCII xn-- form, as the MTA passes them); address
 * literals ("[192.0.2.1]") are kept as written, lower-cased.
 *
 * Input trust: the argument comes straight from an SMTP client. Lengths are
 * bounded, control characters, NUL and unbalanced quotes or brackets are
 * refused. Reentrant.
 */
#ifndef SG_MAILADDR_H
#define SG_MAILADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "sg.h"

#define SG_MAILADDR_LOCALMAX 256    /* RFC 5321 says 64; be lenient */
#define SG_MAILADDR_DOMAINMAX 256
#define SG_MAILADDR_KEYMAX (SG_MAILADDR_LOCALMAX + SG_MAILADDR_DOMAINMAX + 2)

struct sg_mailaddr {
    bool null;                  /* <>: the null sender */
    bool domain_ok;             /* domain is a valid DNS name or literal */
    char local[SG_MAILADDR_LOCALMAX];   /* unquoted content, case kept */
    char domain[SG_MAILADDR_DOMAINMAX]; /* normalized, "" when none */
};

/*
 * Parse an envelope address with or without angle brackets. SG_EINVAL for
 * garbage (control characters, unbalanced quotes or brackets, too long, an
 * empty local part before '@'). A domain that is not a DNS name (UTF-8
 * under SMTPUTF8, say) is kept lower-cased with domain_ok false.
 */
int sg_mailaddr_parse(const char *arg, struct sg_mailaddr *out);

/* The key: "local@domain" lower case, or "local" without a domain. */
void sg_mailaddr_key(const struct sg_mailaddr *a, char *buf, size_t size);

/* Parse `text` and write its key; SG_EINVAL when it does not parse. */
int sg_mailaddr_normalize(const char *text, char *buf, size_t size);

/* True for the postmaster address without a domain (RFC 5321 4.5.1). */
bool sg_mailaddr_is_postmaster(const struct sg_mailaddr *a);

#endif /* SG_MAILADDR_H */
