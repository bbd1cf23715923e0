/*
 * relay.h - the relay decision for one recipient (seed 003, MailEnable's
 * relay codes)
 *
 * A recipient is either local (delivered here: a known mailbox, a domain's
 * catch-all, or unknown) or remote, and a remote one is relayed only when a
 * criterion grants it. What is local comes from smtpguard's tables
 * (local_domains, local_addresses, catchalls); while local_domains is
 * empty, from the MTA's own routing decision ({rcpt_mailer}, classified by
 * mta_mailers), so attaching smtpguard to a live MX before configuring it
 * neither refuses inbound mail nor opens a relay.
 *
 * Pure function of the policy snapshot and the facts; reentrant.
 */
#ifndef SG_RELAY_H
#define SG_RELAY_H

#include "addr.h"
#include "config.h"
#include "log.h"
#include "mailaddr.h"

enum sg_relay_outcome {
    SG_RCPT_LOCAL,              /* ME-I0101 local delivery */
    SG_RCPT_CATCHALL,           /* ME-I0102 catch-all */
    SG_RCPT_UNKNOWN,            /* local domain, unknown mailbox: 550 5.1.1 */
    SG_RELAY_OPEN,              /* ME-I0110 anyone may relay */
    SG_RELAY_AUTH,              /* ME-I0108 authenticated */
    SG_RELAY_NETWORK,           /* ME-I0107 authorized network */
    SG_RELAY_LOCAL_SENDER,      /* ME-I0106 sender in the local map */
    SG_RELAY_DENY_DISABLED,     /* ME-I0112 relaying disabled */
    SG_RELAY_DENY,              /* ME-I0111 no criterion met */
    SG_RELAY_DENY_SENDER,       /* ME-E0109 sender not defined here */
};

struct sg_relay_facts {
    const struct sg_addr *client;       /* NULL: no address (local) */
    const char *auth_user;              /* NULL or "": not authenticated */
    const struct sg_mailaddr *sender;   /* NULL: none or malformed */
    const struct sg_mailaddr *rcpt;
    const char *rcpt_mailer;            /* the MTA's mailer, may be NULL */
};

struct sg_relay_decision {
    enum sg_relay_outcome outcome;
    const char *source;         /* what decided it (a table, "mta", ...) */
    char detail[SG_MAILADDR_KEYMAX];    /* the entry that matched */
};

static inline bool sg_relay_denied(enum sg_relay_outcome o)
{
    return o >= SG_RELAY_DENY_DISABLED;
}

void sg_relay_decide(const struct sg_config *cfg,
                     const struct sg_relay_facts *f,
                     struct sg_relay_decision *d);

/* True when `a` (plus-addressing stripped too) is in local_addresses. */
bool sg_relay_address_known(const struct sg_config *cfg,
                            const struct sg_mailaddr *a, char *matched,
                            size_t size);

/*
 * Log relay_policy_warning for each way the relay policy cannot be right
 * as configured (open relay, no local domains, a local domain whose every
 * recipient is unknown, ...). At start and reload; nothing when both the
 * relay check and the directory harvest check are off.
 */
void sg_relay_lint(const struct sg_config *cfg, const struct sg_log *log);

#endif /* SG_RELAY_H */
