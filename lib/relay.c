/*
 * relay.c - local delivery, catch-all and relay authorization
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>             /* bsearch */
#include <string.h>
#include <strings.h>

#include "relay.h"

static void set(struct sg_relay_decision *d, enum sg_relay_outcome o,
                const char *source, const char *detail)
{
    d->outcome = o;
    d->source = source;
    sg_strlcpy(d->detail, detail ? detail : "", sizeof(d->detail));
}

bool sg_relay_address_known(const struct sg_config *cfg,
                            const struct sg_mailaddr *a, char *matched,
                            size_t size)
{
    char key[SG_MAILADDR_KEYMAX];
    char *plus, *at;

    if (a == NULL || a->null || a->domain[0] == '\0')
        return false;
    sg_mailaddr_key(a, key, sizeof(key));
    if (sg_config_local_address(cfg, key))
        goto found;
    /* Sub-addressing: user+tag@domain is user@domain's mailbox. */
    at = strrchr(key, '@');
    plus = strchr(key, '+');
    if (plus == NULL || at == NULL || plus > at || plus == key)
        return false;
    memmove(plus, at, strlen(at) + 1);
    if (!sg_config_local_address(cfg, key))
        return false;
found:
    if (matched != NULL)
        sg_strlcpy(matched, key, size);
    return true;
}

/* classify_local - true when the recipient is delivered here */
static bool classify_local(const struct sg_config *cfg,
                           const struct sg_relay_facts *f,
                           struct sg_relay_decision *d)
{
    const struct sg_mailaddr *r = f->rcpt;
    char key[SG_MAILADDR_KEYMAX];
    const char *catchall;
    int mailer;

    if (sg_mailaddr_is_postmaster(r)) {
        set(d, SG_RCPT_LOCAL, "postmaster", "postmaster");
        return true;
    }
    if (r->domain[0] == '\0') {
        /* The MTA qualifies it with its own domain: never relayed. */
        sg_mailaddr_key(r, key, sizeof(key));
        set(d, SG_RCPT_LOCAL, "no domain", key);
        return true;
    }
    if (cfg->nlocal_domains == 0) {
        if (f->rcpt_mailer == NULL || *f->rcpt_mailer == '\0') {
            set(d, SG_RCPT_LOCAL, "unclassified", "no {rcpt_mailer}");
            return true;
        }
        mailer = sg_config_mailer_local(cfg, f->rcpt_mailer);
        if (mailer == 0)
            return false;
        set(d, SG_RCPT_LOCAL, mailer > 0 ? "mta" : "mta unlisted mailer",
            f->rcpt_mailer);
        return true;
    }
    if (!r->domain_ok || !sg_config_local_domain(cfg, r->domain))
        return false;
    if (sg_relay_address_known(cfg, r, key, sizeof(key))) {
        set(d, SG_RCPT_LOCAL, "local_addresses", key);
        return true;
    }
    if (strcasecmp(r->local, "postmaster") == 0) {
        set(d, SG_RCPT_LOCAL, "postmaster", "postmaster");
        return true;
    }
    if ((catchall = sg_config_catchall(cfg, r->domain)) != NULL) {
        set(d, SG_RCPT_CATCHALL, "catchalls", catchall);
        return true;
    }
    if (cfg->nlocal_addrs == 0) {
        /* No address map at all: the MTA knows its mailboxes. */
        set(d, SG_RCPT_LOCAL, "local_domains", r->domain);
        return true;
    }
    sg_mailaddr_key(r, key, sizeof(key));
    set(d, SG_RCPT_UNKNOWN, "local_addresses", key);
    return true;
}

void sg_relay_decide(const struct sg_config *cfg,
                     const struct sg_relay_facts *f,
                     struct sg_relay_decision *d)
{
    char matched[SG_MAILADDR_KEYMAX];
    const char *entry;
    bool sender_local;

    if (classify_local(cfg, f, d))
        return;
    switch (sg_config_get(cfg, SG_SET_relay_policy)) {
    case SG_RELAY_POLICY_DENY:
        set(d, SG_RELAY_DENY_DISABLED, "relayPolicy", "deny");
        return;
    case SG_RELAY_POLICY_ALLOW:
        set(d, SG_RELAY_OPEN, "relayPolicy", "allow");
        return;
    default:
        break;
    }
    sender_local = sg_relay_address_known(cfg, f->sender, matched,
                                          sizeof(matched));
    if (f->client == NULL)
        set(d, SG_RELAY_NETWORK, "local submission", "no client address");
    else if (sg_config_get(cfg, SG_SET_relay_authenticated)
             && f->auth_user != NULL && *f->auth_user != '\0')
        set(d, SG_RELAY_AUTH, "relayAuthenticated", f->auth_user);
    else if (sg_config_ip_listed(cfg, SG_LIST_RELAY, f->client, &entry))
        set(d, SG_RELAY_NETWORK, "relay_networks", entry);
    else if (sg_config_get(cfg, SG_SET_relay_local_sender) && sender_local)
        set(d, SG_RELAY_LOCAL_SENDER, "relayLocalSender", matched);
    else {
        set(d, SG_RELAY_DENY, "rules", "");
        return;
    }
    /* A DSN (null sender) has no address to check. */
    if (sg_config_get(cfg, SG_SET_relay_require_local_sender) && !sender_local
        && !(f->sender != NULL && f->sender->null)) {
        char key[SG_MAILADDR_KEYMAX] = "";

        if (f->sender != NULL)
            sg_mailaddr_key(f->sender, key, sizeof(key));
        set(d, SG_RELAY_DENY_SENDER, "relayRequireLocalSender", key);
    }
}

static void warn(const struct sg_log *log, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void warn(const struct sg_log *log, const char *fmt, ...)
{
    struct sg_args args;
    char text[SG_ARG_VALUE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    sg_args_init(&args);
    sg_args_add(&args, "problem", "%s", text);
    sg_log_event(log, SG_EV_RELAY_POLICY_WARNING, SG_ACT_NONE, NULL, &args);
}

static int cmp_domain(const void *key, const void *elem)
{
    return strcmp(key, *(char *const *) elem);
}

/*
 * bare_domains - local domains that have neither an address in
 * local_addresses nor a catch-all, while local_addresses is in use: every
 * recipient there but postmaster is unknown. Returns how many; *first is
 * the first of them.
 */
static size_t bare_domains(const struct sg_config *cfg, const char **first)
{
    bool *used;
    size_t n = 0;

    *first = NULL;
    if (cfg->nlocal_addrs == 0 || cfg->nlocal_domains == 0
        || (used = sg_calloc(cfg->nlocal_domains, sizeof(*used))) == NULL)
        return 0;
    for (size_t i = 0; i < cfg->nlocal_addrs; i++) {
        const char *at = strrchr(cfg->local_addrs[i], '@');
        char *const *d;

        if (at != NULL && (d = bsearch(at + 1, cfg->local_domains,
                                       cfg->nlocal_domains, sizeof(char *),
                                       cmp_domain)) != NULL)
            used[d - cfg->local_domains] = true;
    }
    for (size_t i = 0; i < cfg->nlocal_domains; i++)
        if (!used[i]
            && sg_config_catchall(cfg, cfg->local_domains[i]) == NULL
            && n++ == 0)
            *first = cfg->local_domains[i];
    sg_free(used);
    return n;
}

void sg_relay_lint(const struct sg_config *cfg, const struct sg_log *log)
{
    bool relay = sg_config_get(cfg, SG_SET_do_relay) != SG_MODE_OFF;
    bool harvest = sg_config_get(cfg, SG_SET_do_harvest) != SG_MODE_OFF
        && sg_config_get(cfg, SG_SET_max_harvest) > 0;
    size_t outside = 0, bare;
    const char *first = NULL;

    /* The harvest check classifies recipients even without the relay
     * check: what makes the classification wrong matters to both. */
    if (!relay && !harvest)
        return;
    if (relay && sg_config_get(cfg, SG_SET_relay_policy)
        == SG_RELAY_POLICY_ALLOW)
        warn(log, "relayPolicy is allow: anyone may relay (open relay)");
    if (relay && sg_config_get(cfg, SG_SET_relay_policy)
        == SG_RELAY_POLICY_DENY)
        warn(log, "relayPolicy is deny: nobody may relay, authenticated "
             "users and relay_networks included");
    if (relay && sg_config_get(cfg, SG_SET_relay_local_sender))
        warn(log, "relayLocalSender is on: anyone who knows one local "
             "address can relay");
    if (cfg->nlocal_domains == 0)
        warn(log, "local_domains is empty: the MTA's routing "
             "({rcpt_mailer} and mta_mailers) decides what is local; "
             "unknown recipients and directory harvests go undetected");
    for (size_t i = 0; i < cfg->ncatchalls; i++)
        if (!sg_config_local_domain(cfg, cfg->catchalls[i].key))
            warn(log, "catch-all for %s, which is not in local_domains, "
                 "is never used", cfg->catchalls[i].key);
    if ((bare = bare_domains(cfg, &first)) > 0)
        warn(log, "%zu local_domains have no local_addresses and no "
             "catch-all (first: %s): every recipient there but postmaster "
             "is unknown, %s", bare, first, relay
             ? "refused 550 5.1.1 and counted towards a directory harvest "
             "ban" : "counted towards a directory harvest ban");
    for (size_t i = 0; relay && i < cfg->nlocal_addrs; i++) {
        const char *at = strrchr(cfg->local_addrs[i], '@');

        if (at != NULL && !sg_config_local_domain(cfg, at + 1)) {
            if (outside++ == 0)
                first = cfg->local_addrs[i];
        }
    }
    if (outside > 0 && cfg->nlocal_domains > 0)
        warn(log, "%zu local_addresses are outside local_domains (first: "
             "%s): they only serve as local senders", outside, first);
}
