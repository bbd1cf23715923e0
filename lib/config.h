/*
 * config.h - the policy snapshot: settings and lists as the daemon uses them
 * (the settings themselves, their types and parsing: settings.h)
 *
 * A snapshot is built whole from the database (store.c), validated entry by
 * entry, and then published; it is immutable afterwards and refcounted:
 * each session pins the snapshot it started with (OpenDKIM's conf_refcnt).
 * A bad value never replaces a good one: the builder starts from the
 * previous snapshot's value and logs setting_invalid.
 *
 * Thread-safety: snapshots are read-only once published; sg_confhold_*
 * swap and pin them under a mutex held for a pointer copy only.
 */
#ifndef SG_CONFIG_H
#define SG_CONFIG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "dnsbl.h"
#include "log.h"
#include "settings.h"

/* The IP lists, named as ASSP names them (ip_lists.list). */
enum sg_iplist {
    SG_LIST_DENY,               /* denySMTPConnectionsFromAlways */
    SG_LIST_NOPROCESSING,       /* noProcessingIPs */
    SG_LIST_WHITELIST,          /* whiteListedIPs */
    SG_LIST_ISPIP,              /* ispip: ISP / secondary MX hosts */
    SG_LIST_RELAY,              /* relay_networks: may relay (ME-I0107) */
    SG_IPLIST_COUNT
};

struct sg_net_entry {
    struct sg_cidr net;
    enum sg_iplist list;
    char text[SG_ADDR_STRLEN];
};

struct sg_service_limit {
    char *service;
    long max_sessions;
};

/* A catch-all (catchalls) or an MTA mailer class (mta_mailers). */
struct sg_pair {
    char *key;                  /* lower case */
    char *value;
};

struct sg_config {
    atomic_int refcnt;
    long value[SG_SET_COUNT];
    char *text[SG_SET_COUNT];   /* SG_T_TEXT values; NULL: the default */
    struct sg_net_entry *nets;
    size_t nnets;
    char **domain_wl;           /* maxSMTPdomainIPWL, lower case, sorted */
    size_t ndomain_wl;
    struct sg_service_limit *services;
    size_t nservices;
    char **local_domains;       /* lower case, sorted */
    size_t nlocal_domains;
    char **local_addrs;         /* local@domain, lower case, sorted */
    size_t nlocal_addrs;
    struct sg_pair *catchalls;  /* domain -> mailbox, sorted by domain */
    size_t ncatchalls;
    struct sg_pair *mailers;    /* mailer -> "local" / "remote", sorted */
    size_t nmailers;
    struct sg_dnsbl_zone *dnsbl;        /* dnsbl_zones, in table order */
    size_t ndnsbl;
    size_t entries;             /* list entries accepted, for the log */
};

const char *sg_iplist_name(enum sg_iplist list);
int sg_iplist_parse(const char *name);  /* -1 when unknown */

/* A snapshot with every setting at its default and empty lists. */
struct sg_config *sg_config_new(void);
struct sg_config *sg_config_ref(struct sg_config *cfg);
void sg_config_unref(struct sg_config *cfg);

static inline long sg_config_get(const struct sg_config *cfg,
                                 enum sg_setting id)
{
    return cfg->value[id];
}

/* The value of a SG_T_TEXT setting (never NULL). */
const char *sg_config_text(const struct sg_config *cfg, enum sg_setting id);
/* Take over `prev`'s value of setting `id` (start of a reload). */
int sg_config_keep(struct sg_config *cfg, const struct sg_config *prev,
                   enum sg_setting id);

/*
 * Builders used while a new snapshot is assembled. Each validates and, on a
 * bad value, logs the catalogue event and keeps what `cfg` already holds.
 * Return SG_OK, SG_EINVAL (refused, logged) or SG_ENOMEM.
 */
int sg_config_apply_setting(struct sg_config *cfg, const char *name,
                            const char *value, const struct sg_log *log);
/* The same with the setting already looked up (NULL: unknown `name`). */
int sg_config_apply_def(struct sg_config *cfg,
                        const struct sg_setting_def *def, const char *name,
                        const char *value, const struct sg_log *log);
int sg_config_add_net(struct sg_config *cfg, const char *list,
                      const char *network, const struct sg_log *log);
int sg_config_add_domain(struct sg_config *cfg, const char *list,
                         const char *domain, const struct sg_log *log);
int sg_config_add_service(struct sg_config *cfg, const char *service,
                          long max_sessions, const struct sg_log *log);
/*
 * Relay tables. list: "local_domains" (entry = domain), "local_addresses"
 * (entry = local@domain), "catchalls" (entry = domain, value = mailbox),
 * "mta_mailers" (entry = mailer, value = local or remote).
 */
int sg_config_add_relay(struct sg_config *cfg, const char *list,
                        const char *entry, const char *value,
                        const struct sg_log *log);
/* A row of dnsbl_zones; a bad row is logged and skipped. */
int sg_config_add_dnsbl(struct sg_config *cfg, const char *zone, long weight,
                        const char *answers, bool txt, bool ipv6,
                        const struct sg_log *log);
/* Sort lists for lookup; call once after the last add. */
void sg_config_finish(struct sg_config *cfg);

/* Lookups on a finished snapshot. `entry` (may be NULL) gets the match. */
bool sg_config_ip_listed(const struct sg_config *cfg, enum sg_iplist list,
                         const struct sg_addr *a, const char **entry);
bool sg_config_domain_exempt(const struct sg_config *cfg, const char *domain);
bool sg_config_local_domain(const struct sg_config *cfg, const char *domain);
/* `address` normalized as sg_mailaddr_key() makes it. */
bool sg_config_local_address(const struct sg_config *cfg,
                             const char *address);
/* The catch-all mailbox of a local domain, or NULL. */
const char *sg_config_catchall(const struct sg_config *cfg,
                               const char *domain);
/* 1 when the MTA mailer is listed local, 0 remote, -1 unlisted. */
int sg_config_mailer_local(const struct sg_config *cfg, const char *mailer);
/* Limit for a service: its service_limits row, else the default. */
long sg_config_service_limit(const struct sg_config *cfg, const char *service);

/* The published snapshot. */
struct sg_confhold {
    pthread_mutex_t mu;
    struct sg_config *cur;
};

void sg_confhold_init(struct sg_confhold *h, struct sg_config *cfg);
void sg_confhold_destroy(struct sg_confhold *h);
/* Pin the current snapshot; release with sg_config_unref(). */
struct sg_config *sg_confhold_get(struct sg_confhold *h);
/* Publish `cfg` (takes the caller's reference). */
void sg_confhold_set(struct sg_confhold *h, struct sg_config *cfg);

#endif /* SG_CONFIG_H */
