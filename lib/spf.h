/*
 * spf.h - SPF (RFC 7208) of the MAIL FROM identity, or of the HELO
 * identity for the null sender: libspf2 evaluates, through our DNS
 *
 * libspf2 gets a DNS layer of ours (an SPF_dns_server_t) that asks through
 * the shared resolver and cache (dns.h) within the check's deadline, and
 * that is where smtpguard enforces what libspf2 1.2.10 gets wrong or
 * cannot be trusted with: every SPF record is checked against RFC 7208's
 * grammar (spfrecord.h) before libspf2 sees it; more than one record is a
 * permerror; the 10 DNS-querying terms and the 2 void lookups are counted
 * over the whole evaluation, includes and redirects included; inputs are
 * bounded and normalized (IPv4-mapped IPv6 clients are IPv4, the null
 * sender is postmaster@HELO). A finding of ours overrides libspf2's result.
 *
 * Thread-safety: each check builds its own libspf2 server and request, so
 * concurrent checks share nothing but the resolver (thread-safe).
 */
#ifndef SG_SPF_H
#define SG_SPF_H

#include <stdint.h>

#include "addr.h"
#include "dns.h"
#include "mailaddr.h"

enum sg_spf_result {
    SG_SPF_NONE,
    SG_SPF_NEUTRAL,
    SG_SPF_PASS,
    SG_SPF_FAIL,
    SG_SPF_SOFTFAIL,
    SG_SPF_TEMPERROR,
    SG_SPF_PERMERROR,
};

const char *sg_spf_result_name(enum sg_spf_result r);   /* "pass" ... */

/* Why an evaluation in an SPF worker process was lost (spfpool.h); the
 * result is then a temperror that smtpguard, not the domain, caused. */
enum sg_spf_fault {
    SG_SPF_FAULT_NONE,
    SG_SPF_FAULT_DIED,          /* the worker crashed or was killed */
    SG_SPF_FAULT_TIMEOUT,       /* it overran the check's time */
    SG_SPF_FAULT_PROTOCOL,      /* it said something it must not */
    SG_SPF_FAULT_UNAVAILABLE,   /* no worker could be had in time */
    SG_SPF_FAULT_QUARANTINED,   /* the domain's records kill workers */
};

struct sg_spf_outcome {
    enum sg_spf_result result;
    bool helo_identity;         /* the HELO name was checked */
    char identity[SG_MAILADDR_KEYMAX];  /* address, or the HELO name */
    char domain[SG_DNS_NAME_MAX];       /* the domain checked */
    char helo[SG_DNS_NAME_MAX];
    char ip[SG_ADDR_STRLEN];
    char reason[128];           /* permerror/temperror: why */
    char explanation[256];      /* fail: the domain's explanation */
    unsigned dns_terms;         /* DNS-querying terms evaluated */
    bool record_refused;        /* a record failed our check */
    char refused_record[64];    /* its beginning, for the log */
    char refused_domain[SG_DNS_NAME_MAX];
    /* Set by the worker pool only (a worker's own are ignored): */
    enum sg_spf_fault fault;
    int fault_pid;              /* the worker lost, when there was one */
    char fault_reason[96];      /* "killed by signal 11 (SIGSEGV)" ... */
    unsigned quarantine_s;      /* the domain is now quarantined so long */
    int idle_lost_pid;          /* an idle worker found dead on the way
                                 * (not this check's doing), or 0 */
    char idle_lost_reason[96];
};

/*
 * Evaluate. sender: the MAIL FROM address as parsed (NULL or null: the
 * HELO identity). deadline: sg_dns_clock() milliseconds for all lookups.
 */
void sg_spf_check(struct sg_dns *dns, int64_t deadline,
                  const struct sg_addr *client, const char *helo,
                  const struct sg_mailaddr *sender, const char *receiver,
                  struct sg_spf_outcome *out);

/*
 * How an evaluation asks DNS. In the daemon's process: a batch of the
 * shared resolver (sg_spf_check); in an SPF worker process: the parent,
 * over the worker's socket (spfpool.h). ask() looks one name up and waits
 * until the check's deadline; NULL is no answer in time (a temporary
 * error), with *refused set when the check's lookup budget is spent. An
 * answer stays valid until the evaluation returns.
 */
struct sg_spf_asker {
    const struct sg_dns_answer *(*ask)(void *arg, const char *name,
                                       uint16_t type, bool *refused);
    void *arg;
};

/* The evaluation itself (libspf2 and our checks) through any asker. */
void sg_spf_eval(const struct sg_spf_asker *asker,
                 const struct sg_addr *client, const char *helo,
                 const struct sg_mailaddr *sender, const char *receiver,
                 struct sg_spf_outcome *out);

/* The value of a Received-SPF header (RFC 7208 9.1). */
void sg_spf_received(const struct sg_spf_outcome *o, const char *receiver,
                     char *buf, size_t size);
/* The "spf=..." result of an Authentication-Results header (RFC 8601). */
void sg_spf_authres(const struct sg_spf_outcome *o, char *buf, size_t size);

#endif /* SG_SPF_H */
