/*
 * config.c - the refcounted policy snapshot: settings' values and the lists,
 * built entry by entry (the settings registry and parsing: settings.c)
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "dname.h"
#include "mailaddr.h"

static const char *const iplist_names[SG_IPLIST_COUNT] = {
    "denySMTPConnectionsFromAlways", "noProcessingIPs", "whiteListedIPs",
    "ispip", "relayNetworks",
};

const char *sg_iplist_name(enum sg_iplist list)
{
    return (int) list >= 0 && list < SG_IPLIST_COUNT ? iplist_names[list] : "?";
}

int sg_iplist_parse(const char *name)
{
    for (int i = 0; i < SG_IPLIST_COUNT; i++)
        if (strcmp(name, iplist_names[i]) == 0)
            return i;
    return -1;
}

const char *sg_config_text(const struct sg_config *cfg, enum sg_setting id)
{
    return cfg->text[id] != NULL ? cfg->text[id] : sg_setting_def(id)->def;
}

int sg_config_keep(struct sg_config *cfg, const struct sg_config *prev,
                   enum sg_setting id)
{
    char *copy = NULL;

    cfg->value[id] = prev->value[id];
    if (sg_setting_def(id)->type != SG_T_TEXT)
        return SG_OK;
    if (prev->text[id] != NULL && (copy = sg_strdup(prev->text[id])) == NULL)
        return SG_ENOMEM;
    sg_free(cfg->text[id]);
    cfg->text[id] = copy;
    return SG_OK;
}

struct sg_config *sg_config_new(void)
{
    struct sg_config *cfg = sg_calloc(1, sizeof(*cfg));

    if (cfg == NULL)
        return NULL;
    atomic_init(&cfg->refcnt, 1);
    for (int i = 0; i < SG_SET_COUNT; i++) {
        const struct sg_setting_def *d = sg_setting_def((enum sg_setting) i);
        struct sg_err err;

        if (sg_setting_parse(d, d->def, &cfg->value[i], &err) != SG_OK)
            abort();            /* a bad default is a build defect */
    }
    return cfg;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sg_free(v[i]);
    sg_free(v);
}

static void free_pairs(struct sg_pair *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sg_free(v[i].key);
        sg_free(v[i].value);
    }
    sg_free(v);
}

struct sg_config *sg_config_ref(struct sg_config *cfg)
{
    atomic_fetch_add(&cfg->refcnt, 1);
    return cfg;
}

void sg_config_unref(struct sg_config *cfg)
{
    if (cfg == NULL || atomic_fetch_sub(&cfg->refcnt, 1) != 1)
        return;
    sg_free(cfg->nets);
    for (size_t i = 0; i < cfg->ndomain_wl; i++)
        sg_free(cfg->domain_wl[i]);
    sg_free(cfg->domain_wl);
    for (size_t i = 0; i < cfg->nservices; i++)
        sg_free(cfg->services[i].service);
    sg_free(cfg->services);
    free_strings(cfg->local_domains, cfg->nlocal_domains);
    free_strings(cfg->local_addrs, cfg->nlocal_addrs);
    free_pairs(cfg->catchalls, cfg->ncatchalls);
    free_pairs(cfg->mailers, cfg->nmailers);
    for (size_t i = 0; i < cfg->ndnsbl; i++)
        sg_dnsbl_zone_clear(&cfg->dnsbl[i]);
    sg_free(cfg->dnsbl);
    for (int i = 0; i < SG_SET_COUNT; i++)
        sg_free(cfg->text[i]);
    sg_free(cfg);
}

/* log_invalid - setting_invalid with the value kept */
static void log_invalid(const struct sg_log *log, const char *name,
                        const char *value, const char *reason,
                        const char *kept)
{
    struct sg_args args;

    sg_args_init(&args);
    sg_args_add(&args, "setting", "%s", name);
    sg_args_add(&args, "value", "%s", value ? value : "NULL");
    sg_args_add(&args, "reason", "%s", reason);
    sg_args_add(&args, "kept", "%s", kept);
    sg_log_event(log, SG_EV_SETTING_INVALID, SG_ACT_NONE, NULL, &args);
}

static void log_entry_invalid(const struct sg_log *log, const char *list,
                              const char *entry, const char *reason)
{
    struct sg_args args;

    sg_args_init(&args);
    sg_args_add(&args, "list", "%s", list);
    sg_args_add(&args, "entry", "%s", entry ? entry : "NULL");
    sg_args_add(&args, "reason", "%s", reason);
    sg_log_event(log, SG_EV_LIST_ENTRY_INVALID, SG_ACT_NONE, NULL, &args);
}

int sg_config_apply_setting(struct sg_config *cfg, const char *name,
                            const char *value, const struct sg_log *log)
{
    return sg_config_apply_def(cfg, sg_setting_find(name), name, value, log);
}

int sg_config_apply_def(struct sg_config *cfg,
                        const struct sg_setting_def *def, const char *name,
                        const char *value, const struct sg_log *log)
{
    struct sg_err err;
    char kept[64];
    long v;

    if (def == NULL) {
        log_invalid(log, name, value, "unknown setting", "nothing");
        return SG_EINVAL;
    }
    if (sg_setting_parse(def, value, &v, &err) != SG_OK) {
        if (def->type == SG_T_TEXT)
            snprintf(kept, sizeof(kept), "%s",
                     sg_config_text(cfg, def->id));
        else
            sg_setting_format(def, cfg->value[def->id], kept, sizeof(kept));
        log_invalid(log, name, value, err.msg, kept);
        return SG_EINVAL;
    }
    if (def->type == SG_T_TEXT) {
        char *copy = sg_strdup(value);

        if (copy == NULL)
            return SG_ENOMEM;
        sg_free(cfg->text[def->id]);
        cfg->text[def->id] = copy;
    }
    cfg->value[def->id] = v;
    return SG_OK;
}

/* grow - make room for one more element in a dynamic array */
static int grow(void **arr, size_t n, size_t elsize)
{
    void *p;

    if ((n & (n - 1)) != 0 && n != 0)   /* capacity is the next power of 2 */
        return SG_OK;
    p = realloc(*arr, (n ? n * 2 : 4) * elsize);
    if (p == NULL)
        return SG_ENOMEM;
    *arr = p;
    return SG_OK;
}

int sg_config_add_net(struct sg_config *cfg, const char *list,
                      const char *network, const struct sg_log *log)
{
    int which = sg_iplist_parse(list);
    struct sg_net_entry e;
    struct sg_err err;

    if (which < 0) {
        log_entry_invalid(log, list, network, "unknown list name");
        return SG_EINVAL;
    }
    if (sg_cidr_parse(network, &e.net, &err) != SG_OK) {
        log_entry_invalid(log, list, network, err.msg);
        return SG_EINVAL;
    }
    e.list = (enum sg_iplist) which;
    sg_cidr_format(&e.net, e.text, sizeof(e.text));
    if (grow((void **) &cfg->nets, cfg->nnets, sizeof(e)) != SG_OK)
        return SG_ENOMEM;
    cfg->nets[cfg->nnets++] = e;
    cfg->entries++;
    return SG_OK;
}

int sg_config_add_domain(struct sg_config *cfg, const char *list,
                         const char *domain, const struct sg_log *log)
{
    char norm[256];
    char *copy;

    if (strcmp(list, "maxSMTPdomainIPWL") != 0) {
        log_entry_invalid(log, list, domain, "unknown list name");
        return SG_EINVAL;
    }
    if (domain == NULL || sg_dname_normalize(domain, norm, sizeof(norm))
        != SG_OK) {
        log_entry_invalid(log, list, domain, "not a domain name");
        return SG_EINVAL;
    }
    if ((copy = sg_strdup(norm)) == NULL
        || grow((void **) &cfg->domain_wl, cfg->ndomain_wl,
                sizeof(char *)) != SG_OK) {
        sg_free(copy);
        return SG_ENOMEM;
    }
    cfg->domain_wl[cfg->ndomain_wl++] = copy;
    cfg->entries++;
    return SG_OK;
}

int sg_config_add_service(struct sg_config *cfg, const char *service,
                          long max_sessions, const struct sg_log *log)
{
    char *copy;

    if (service == NULL || *service == '\0' || strlen(service) > 64) {
        log_entry_invalid(log, "service_limits", service,
                          "service name empty or longer than 64");
        return SG_EINVAL;
    }
    if (max_sessions < 0) {
        log_entry_invalid(log, "service_limits", service,
                          "max_sessions is negative");
        return SG_EINVAL;
    }
    if ((copy = sg_strdup(service)) == NULL
        || grow((void **) &cfg->services, cfg->nservices,
                sizeof(cfg->services[0])) != SG_OK) {
        sg_free(copy);
        return SG_ENOMEM;
    }
    cfg->services[cfg->nservices].service = copy;
    cfg->services[cfg->nservices++].max_sessions = max_sessions;
    cfg->entries++;
    return SG_OK;
}

/* push_string - append a copy of `text` to a string array */
static int push_string(char ***arr, size_t *n, const char *text)
{
    char *copy = sg_strdup(text);

    if (copy == NULL || grow((void **) arr, *n, sizeof(char *)) != SG_OK) {
        sg_free(copy);
        return SG_ENOMEM;
    }
    (*arr)[(*n)++] = copy;
    return SG_OK;
}

static int push_pair(struct sg_pair **arr, size_t *n, const char *key,
                     const char *value)
{
    char *k = sg_strdup(key), *v = sg_strdup(value);

    if (k == NULL || v == NULL
        || grow((void **) arr, *n, sizeof(struct sg_pair)) != SG_OK) {
        sg_free(k);
        sg_free(v);
        return SG_ENOMEM;
    }
    (*arr)[*n].key = k;
    (*arr)[(*n)++].value = v;
    return SG_OK;
}

/* mailer_normalize - a mailer (transport) name: [a-z0-9._-]{1,64} */
static int mailer_normalize(const char *in, char *out, size_t size)
{
    size_t len = in ? strlen(in) : 0;

    if (len == 0 || len > 64 || len >= size)
        return SG_EINVAL;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = (unsigned char) in[i];

        if (c != '\0' && !isalnum(c) && c != '-' && c != '_' && c != '.')
            return SG_EINVAL;
        out[i] = (char) tolower(c);
    }
    return SG_OK;
}

int sg_config_add_dnsbl(struct sg_config *cfg, const char *zone, long weight,
                        const char *answers, bool txt, bool ipv6,
                        const struct sg_log *log)
{
    struct sg_dnsbl_zone z;
    struct sg_err err;
    int rc;

    if (cfg->ndnsbl >= 64) {
        log_entry_invalid(log, "dnsbl_zones", zone, "more than 64 zones");
        return SG_EINVAL;
    }
    rc = sg_dnsbl_zone_init(&z, zone, weight, answers, txt, ipv6, &err);
    if (rc == SG_EINVAL)
        log_entry_invalid(log, "dnsbl_zones", zone, err.msg);
    if (rc != SG_OK)
        return rc;
    for (size_t i = 0; i < cfg->ndnsbl; i++)
        if (strcmp(cfg->dnsbl[i].zone, z.zone) == 0) {
            log_entry_invalid(log, "dnsbl_zones", zone, "zone listed twice "
                              "(a trailing dot or case makes no difference)");
            sg_dnsbl_zone_clear(&z);
            return SG_EINVAL;
        }
    if (grow((void **) &cfg->dnsbl, cfg->ndnsbl, sizeof(z)) != SG_OK) {
        sg_dnsbl_zone_clear(&z);
        return SG_ENOMEM;
    }
    cfg->dnsbl[cfg->ndnsbl++] = z;
    cfg->entries++;
    return SG_OK;
}

int sg_config_add_relay(struct sg_config *cfg, const char *list,
                        const char *entry, const char *value,
                        const struct sg_log *log)
{
    char norm[SG_MAILADDR_KEYMAX], val[SG_MAILADDR_KEYMAX];
    int rc;

    if (list == NULL || entry == NULL) {
        log_entry_invalid(log, list ? list : "NULL", entry, "NULL entry");
        return SG_EINVAL;
    }
    if (strcmp(list, "local_domains") == 0) {
        if (sg_dname_normalize(entry, norm, sizeof(norm)) != SG_OK) {
            log_entry_invalid(log, list, entry, "not a domain name (IDNs "
                              "in their ASCII xn-- form)");
            return SG_EINVAL;
        }
        rc = push_string(&cfg->local_domains, &cfg->nlocal_domains, norm);
    } else if (strcmp(list, "local_addresses") == 0) {
        if (sg_mailaddr_normalize(entry, norm, sizeof(norm)) != SG_OK
            || strchr(norm, '@') == NULL) {
            log_entry_invalid(log, list, entry, "not an address of the "
                              "form local-part@domain");
            return SG_EINVAL;
        }
        rc = push_string(&cfg->local_addrs, &cfg->nlocal_addrs, norm);
    } else if (strcmp(list, "catchalls") == 0) {
        if (sg_dname_normalize(entry, norm, sizeof(norm)) != SG_OK) {
            log_entry_invalid(log, list, entry, "not a domain name");
            return SG_EINVAL;
        }
        if (value == NULL
            || sg_mailaddr_normalize(value, val, sizeof(val)) != SG_OK
            || strchr(val, '@') == NULL) {
            log_entry_invalid(log, list, entry, "mailbox is not an address "
                              "of the form local-part@domain");
            return SG_EINVAL;
        }
        rc = push_pair(&cfg->catchalls, &cfg->ncatchalls, norm, val);
    } else if (strcmp(list, "mta_mailers") == 0) {
        if (mailer_normalize(entry, norm, sizeof(norm)) != SG_OK) {
            log_entry_invalid(log, list, entry, "not a mailer name "
                              "(letters, digits, '.', '-', '_')");
            return SG_EINVAL;
        }
        if (value == NULL || (strcmp(value, "local") != 0
                              && strcmp(value, "remote") != 0)) {
            log_entry_invalid(log, list, entry, "class must be local or "
                              "remote");
            return SG_EINVAL;
        }
        rc = push_pair(&cfg->mailers, &cfg->nmailers, norm, value);
    } else {
        log_entry_invalid(log, list, entry, "unknown list name");
        return SG_EINVAL;
    }
    if (rc == SG_OK)
        cfg->entries++;
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static int cmp_pair(const void *a, const void *b)
{
    return strcmp(((const struct sg_pair *) a)->key,
                  ((const struct sg_pair *) b)->key);
}

void sg_config_finish(struct sg_config *cfg)
{
    if (cfg->ndomain_wl > 1)
        qsort(cfg->domain_wl, cfg->ndomain_wl, sizeof(char *), cmp_str);
    if (cfg->nlocal_domains > 1)
        qsort(cfg->local_domains, cfg->nlocal_domains, sizeof(char *),
              cmp_str);
    if (cfg->nlocal_addrs > 1)
        qsort(cfg->local_addrs, cfg->nlocal_addrs, sizeof(char *), cmp_str);
    if (cfg->ncatchalls > 1)
        qsort(cfg->catchalls, cfg->ncatchalls, sizeof(struct sg_pair),
              cmp_pair);
    if (cfg->nmailers > 1)
        qsort(cfg->mailers, cfg->nmailers, sizeof(struct sg_pair), cmp_pair);
}

static bool has_string(char *const *v, size_t n, const char *key)
{
    return n > 0 && bsearch(&key, v, n, sizeof(char *), cmp_str) != NULL;
}

static const struct sg_pair *find_pair(const struct sg_pair *v, size_t n,
                                       const char *key)
{
    struct sg_pair k = { (char *) key, NULL };

    return n > 0 ? bsearch(&k, v, n, sizeof(*v), cmp_pair) : NULL;
}

bool sg_config_local_domain(const struct sg_config *cfg, const char *domain)
{
    return domain != NULL
        && has_string(cfg->local_domains, cfg->nlocal_domains, domain);
}

bool sg_config_local_address(const struct sg_config *cfg,
                             const char *address)
{
    return address != NULL
        && has_string(cfg->local_addrs, cfg->nlocal_addrs, address);
}

const char *sg_config_catchall(const struct sg_config *cfg,
                               const char *domain)
{
    const struct sg_pair *p = domain ? find_pair(cfg->catchalls,
                                                 cfg->ncatchalls, domain)
        : NULL;

    return p ? p->value : NULL;
}

int sg_config_mailer_local(const struct sg_config *cfg, const char *mailer)
{
    char norm[72];
    const struct sg_pair *p;

    if (mailer_normalize(mailer, norm, sizeof(norm)) != SG_OK
        || (p = find_pair(cfg->mailers, cfg->nmailers, norm)) == NULL)
        return -1;
    return strcmp(p->value, "local") == 0;
}

bool sg_config_ip_listed(const struct sg_config *cfg, enum sg_iplist list,
                         const struct sg_addr *a, const char **entry)
{
    for (size_t i = 0; i < cfg->nnets; i++)
        if (cfg->nets[i].list == list && sg_cidr_match(&cfg->nets[i].net, a)) {
            if (entry != NULL)
                *entry = cfg->nets[i].text;
            return true;
        }
    return false;
}

bool sg_config_domain_exempt(const struct sg_config *cfg, const char *domain)
{
    char norm[256];
    const char *p;

    if (cfg->ndomain_wl == 0 || sg_dname_normalize(domain, norm, sizeof(norm))
        != SG_OK)
        return false;
    /* The domain itself, then each parent: a.b.example -> b.example ... */
    for (p = norm; p != NULL; p = strchr(p, '.') ? strchr(p, '.') + 1 : NULL)
        if (bsearch(&p, cfg->domain_wl, cfg->ndomain_wl, sizeof(char *),
                    cmp_str) != NULL)
            return true;
    return false;
}

long sg_config_service_limit(const struct sg_config *cfg, const char *service)
{
    if (service != NULL)
        for (size_t i = 0; i < cfg->nservices; i++)
            if (strcmp(cfg->services[i].service, service) == 0)
                return cfg->services[i].max_sessions;
    return cfg->value[SG_SET_max_service_sessions];
}

void sg_confhold_init(struct sg_confhold *h, struct sg_config *cfg)
{
    pthread_mutex_init(&h->mu, NULL);
    h->cur = cfg;
}

void sg_confhold_destroy(struct sg_confhold *h)
{
    sg_config_unref(h->cur);
    h->cur = NULL;
    pthread_mutex_destroy(&h->mu);
}

struct sg_config *sg_confhold_get(struct sg_confhold *h)
{
    struct sg_config *cfg;

    pthread_mutex_lock(&h->mu);
    cfg = sg_config_ref(h->cur);
    pthread_mutex_unlock(&h->mu);
    return cfg;
}

void sg_confhold_set(struct sg_confhold *h, struct sg_config *cfg)
{
    struct sg_config *old;

    pthread_mutex_lock(&h->mu);
    old = h->cur;
    h->cur = cfg;
    pthread_mutex_unlock(&h->mu);
    sg_config_unref(old);
}
