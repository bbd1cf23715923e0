/*
 * state.c - in-memory session-limit state: concurrency, windows, domain
 * histories and bans, each map behind its own mutex
 *
 * Windows and histories are bounded (sg_state_set_limits): at the bound,
 * a new key first evicts the least recently used one. Concurrency counts
 * live only while their sessions do, and bans only until they expire;
 * neither is ever evicted.
 */
#include <stdlib.h>
#include <string.h>

#include "state.h"

struct conc_entry {
    struct sg_hnode node;       /* key: "s:<service>" or "i:<ipkey>" */
    long count;
};

struct rate_entry {
    struct sg_hnode node;
    sg_time_t start;
    sg_time_t window;           /* 0: unknown (loaded from an old row) */
    unsigned count;
    bool dirty;
};

struct subnet_seen {
    char subnet[SG_ADDR_STRLEN];
    sg_time_t last;
    bool dirty;
};

struct domain_entry {
    struct sg_hnode node;
    struct subnet_seen *seen;
    size_t n, cap;
    bool reset;
    bool dirty;
};

struct ban_entry {
    struct sg_hnode node;       /* key: "<kind>:<key>" */
    struct sg_ban ban;
};

struct sg_state {
    pthread_mutex_t conc_mu;
    struct sg_htab conc;
    long global;

    pthread_mutex_t rate_mu;
    struct sg_htab rate;
    size_t rate_max;            /* 0: no bound */
    unsigned long rate_evicted;

    pthread_mutex_t dom_mu;
    struct sg_htab doms;
    size_t dom_max;
    unsigned long dom_evicted;

    pthread_mutex_t ban_mu;
    struct sg_htab bans;
    uint64_t gen;
};

/* new_node - allocate an entry of `size` bytes with its key */
static void *new_node(size_t size, const char *key)
{
    struct sg_hnode *n = sg_calloc(1, size);

    if (n == NULL)
        return NULL;
    if ((n->key = sg_strdup(key)) == NULL) {
        sg_free(n);
        return NULL;
    }
    n->hash = sg_hash(key);
    return n;
}

static void free_node(struct sg_hnode *n)
{
    sg_free(n->key);
    sg_free(n);
}

static void free_domain(struct domain_entry *d)
{
    sg_free(d->seen);
    free_node(&d->node);
}

static void free_visit(struct sg_htab *t, struct sg_hnode *n, void *arg)
{
    (void) t;
    if (arg != NULL)
        free_domain((struct domain_entry *) n);
    else
        free_node(n);
}

struct sg_state *sg_state_new(void)
{
    struct sg_state *st = sg_calloc(1, sizeof(*st));

    if (st == NULL)
        return NULL;
    if (sg_htab_init(&st->conc, 256) < 0 || sg_htab_init(&st->rate, 1024) < 0
        || sg_htab_init(&st->doms, 256) < 0
        || sg_htab_init(&st->bans, 256) < 0) {
        sg_htab_destroy(&st->conc);
        sg_htab_destroy(&st->rate);
        sg_htab_destroy(&st->doms);
        sg_htab_destroy(&st->bans);
        sg_free(st);
        return NULL;
    }
    pthread_mutex_init(&st->conc_mu, NULL);
    pthread_mutex_init(&st->rate_mu, NULL);
    pthread_mutex_init(&st->dom_mu, NULL);
    pthread_mutex_init(&st->ban_mu, NULL);
    return st;
}

void sg_state_free(struct sg_state *st)
{
    if (st == NULL)
        return;
    sg_htab_walk(&st->conc, free_visit, NULL);
    sg_htab_walk(&st->rate, free_visit, NULL);
    sg_htab_walk(&st->doms, free_visit, st);
    sg_htab_walk(&st->bans, free_visit, NULL);
    sg_htab_destroy(&st->conc);
    sg_htab_destroy(&st->rate);
    sg_htab_destroy(&st->doms);
    sg_htab_destroy(&st->bans);
    pthread_mutex_destroy(&st->conc_mu);
    pthread_mutex_destroy(&st->rate_mu);
    pthread_mutex_destroy(&st->dom_mu);
    pthread_mutex_destroy(&st->ban_mu);
    sg_free(st);
}

/* ---- concurrency ---- */

/* conc_add - add `delta` to one counter; locked by caller */
static long conc_add(struct sg_state *st, char tag, const char *name,
                     long delta)
{
    char key[SG_KEY_MAX + 2];
    struct conc_entry *e;

    key[0] = tag;
    key[1] = ':';
    sg_strlcpy(key + 2, name, sizeof(key) - 2);
    e = (struct conc_entry *) sg_htab_find(&st->conc, key);
    if (e == NULL) {
        if (delta <= 0 || (e = new_node(sizeof(*e), key)) == NULL)
            return -1;
        sg_htab_insert(&st->conc, &e->node);
    }
    e->count += delta;
    if (e->count <= 0) {
        long c = e->count;

        sg_htab_remove(&st->conc, &e->node);
        free_node(&e->node);
        return c;
    }
    return e->count;
}

int sg_state_conc_enter(struct sg_state *st, const char *service,
                        const char *ipkey, struct sg_conc_counts *counts)
{
    int rc = SG_OK;

    pthread_mutex_lock(&st->conc_mu);
    counts->global = ++st->global;
    counts->service = conc_add(st, 's', service, 1);
    counts->client = conc_add(st, 'i', ipkey, 1);
    if (counts->service < 0 || counts->client < 0) {
        /* Undo whatever was counted: the caller refuses the session. */
        st->global--;
        if (counts->service > 0)
            conc_add(st, 's', service, -1);
        if (counts->client > 0)
            conc_add(st, 'i', ipkey, -1);
        rc = SG_ENOMEM;
    }
    pthread_mutex_unlock(&st->conc_mu);
    return rc;
}

void sg_state_conc_leave(struct sg_state *st, const char *service,
                         const char *ipkey)
{
    pthread_mutex_lock(&st->conc_mu);
    if (st->global > 0)
        st->global--;
    conc_add(st, 's', service, -1);
    conc_add(st, 'i', ipkey, -1);
    pthread_mutex_unlock(&st->conc_mu);
}

long sg_state_conc_total(struct sg_state *st)
{
    long n;

    pthread_mutex_lock(&st->conc_mu);
    n = st->global;
    pthread_mutex_unlock(&st->conc_mu);
    return n;
}

/* ---- counting windows ---- */

static bool rate_expired(const struct rate_entry *e, sg_time_t now,
                         sg_time_t window)
{
    return e->count == 0 || now < e->start || now - e->start >= window;
}

/* rate_get - the window of `key`, made (and room made) when new */
static struct rate_entry *rate_get(struct sg_state *st, const char *key)
{
    struct rate_entry *e = (struct rate_entry *) sg_htab_find(&st->rate, key);
    struct sg_hnode *old;

    if (e != NULL) {
        sg_htab_touch(&st->rate, &e->node);
        return e;
    }
    while (st->rate_max > 0 && st->rate.count >= st->rate_max
           && (old = sg_htab_oldest(&st->rate)) != NULL) {
        sg_htab_remove(&st->rate, old);
        free_node(old);
        st->rate_evicted++;
    }
    if ((e = new_node(sizeof(*e), key)) != NULL)
        sg_htab_insert(&st->rate, &e->node);
    return e;
}

unsigned sg_state_rate_hit(struct sg_state *st, const char *key,
                           sg_time_t now, sg_time_t window)
{
    struct rate_entry *e;
    unsigned count = 0;

    pthread_mutex_lock(&st->rate_mu);
    if ((e = rate_get(st, key)) != NULL) {
        if (rate_expired(e, now, window)) {
            e->start = now;
            e->count = 0;
        }
        e->window = window;
        if (e->count < UINT32_MAX)
            e->count++;
        e->dirty = true;
        count = e->count;
    }
    pthread_mutex_unlock(&st->rate_mu);
    return count;
}

unsigned sg_state_rate_count(struct sg_state *st, const char *key,
                             sg_time_t now, sg_time_t window)
{
    struct rate_entry *e;
    unsigned count = 0;

    pthread_mutex_lock(&st->rate_mu);
    e = (struct rate_entry *) sg_htab_find(&st->rate, key);
    if (e != NULL && !rate_expired(e, now, window))
        count = e->count;
    pthread_mutex_unlock(&st->rate_mu);
    return count;
}

void sg_state_rate_reset(struct sg_state *st, const char *key, sg_time_t now)
{
    struct rate_entry *e;

    pthread_mutex_lock(&st->rate_mu);
    e = (struct rate_entry *) sg_htab_find(&st->rate, key);
    if (e != NULL) {
        e->start = now;
        e->count = 0;
        e->dirty = true;
    }
    pthread_mutex_unlock(&st->rate_mu);
}

int sg_state_rate_load(struct sg_state *st, const char *key, sg_time_t start,
                       sg_time_t window, unsigned count)
{
    struct rate_entry *e;

    pthread_mutex_lock(&st->rate_mu);
    if ((e = rate_get(st, key)) != NULL) {
        e->start = start;
        e->window = window;
        e->count = count;
    }
    pthread_mutex_unlock(&st->rate_mu);
    return e ? SG_OK : SG_ENOMEM;
}

/* ---- sender domain histories ---- */

/* domain_get - the history of `key`, made (and room made) when new */
static struct domain_entry *domain_get(struct sg_state *st, const char *key)
{
    struct domain_entry *d =
        (struct domain_entry *) sg_htab_find(&st->doms, key);
    struct sg_hnode *old;

    if (d != NULL) {
        sg_htab_touch(&st->doms, &d->node);
        return d;
    }
    while (st->dom_max > 0 && st->doms.count >= st->dom_max
           && (old = sg_htab_oldest(&st->doms)) != NULL) {
        sg_htab_remove(&st->doms, old);
        free_domain((struct domain_entry *) old);
        st->dom_evicted++;
    }
    if ((d = new_node(sizeof(*d), key)) != NULL)
        sg_htab_insert(&st->doms, &d->node);
    return d;
}

/* domain_note - record one subnet; locked by caller */
static int domain_note(struct domain_entry *d, const char *subnet,
                       sg_time_t when, bool dirty)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->seen[i].subnet, subnet) == 0) {
            if (when > d->seen[i].last)
                d->seen[i].last = when;
            d->seen[i].dirty |= dirty;
            d->dirty |= dirty;
            return SG_OK;
        }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        struct subnet_seen *p = realloc(d->seen, cap * sizeof(*p));

        if (p == NULL)
            return SG_ENOMEM;
        d->seen = p;
        d->cap = cap;
    }
    sg_strlcpy(d->seen[d->n].subnet, subnet, sizeof(d->seen[0].subnet));
    d->seen[d->n].last = when;
    d->seen[d->n].dirty = dirty;
    d->n++;
    d->dirty |= dirty;
    return SG_OK;
}

/* domain_expire - forget subnets not seen within the window */
static void domain_expire(struct domain_entry *d, sg_time_t now,
                          sg_time_t window)
{
    size_t j = 0;

    for (size_t i = 0; i < d->n; i++)
        if (now - d->seen[i].last < window && d->seen[i].last <= now + 60)
            d->seen[j++] = d->seen[i];
    d->n = j;
}

unsigned sg_state_domain_hit(struct sg_state *st, const char *domain,
                             const char *subnet, sg_time_t now,
                             sg_time_t window)
{
    struct domain_entry *d;
    unsigned n = 0;

    pthread_mutex_lock(&st->dom_mu);
    if ((d = domain_get(st, domain)) != NULL) {
        domain_expire(d, now, window);
        if (domain_note(d, subnet, now, true) == SG_OK)
            n = (unsigned) d->n;
    }
    pthread_mutex_unlock(&st->dom_mu);
    return n;
}

void sg_state_domain_reset(struct sg_state *st, const char *domain)
{
    struct domain_entry *d;

    pthread_mutex_lock(&st->dom_mu);
    d = (struct domain_entry *) sg_htab_find(&st->doms, domain);
    if (d != NULL) {
        d->n = 0;
        d->reset = true;
        d->dirty = true;
    }
    pthread_mutex_unlock(&st->dom_mu);
}

int sg_state_domain_load(struct sg_state *st, const char *domain,
                         const char *subnet, sg_time_t last_seen)
{
    struct domain_entry *d;
    int rc = SG_ENOMEM;

    pthread_mutex_lock(&st->dom_mu);
    if ((d = domain_get(st, domain)) != NULL)
        rc = domain_note(d, subnet, last_seen, false);
    pthread_mutex_unlock(&st->dom_mu);
    return rc;
}

/* ---- bans ---- */

static void ban_key(char *buf, size_t size, char kind, const char *key)
{
    buf[0] = kind;
    buf[1] = ':';
    sg_strlcpy(buf + 2, key, size - 2);
}

bool sg_state_ban_find(struct sg_state *st, char kind, const char *key,
                       sg_time_t now, struct sg_ban *out)
{
    char k[SG_KEY_MAX + 2];
    struct ban_entry *e;
    bool found = false;

    ban_key(k, sizeof(k), kind, key);
    pthread_mutex_lock(&st->ban_mu);
    e = (struct ban_entry *) sg_htab_find(&st->bans, k);
    if (e != NULL && e->ban.expires > now) {
        *out = e->ban;
        found = true;
    }
    pthread_mutex_unlock(&st->ban_mu);
    return found;
}

/* ban_put - insert or overwrite; locked by caller. Returns gen or 0. */
static uint64_t ban_put(struct sg_state *st, const struct sg_ban *ban)
{
    char k[SG_KEY_MAX + 2];
    struct ban_entry *e;

    ban_key(k, sizeof(k), ban->kind, ban->key);
    e = (struct ban_entry *) sg_htab_find(&st->bans, k);
    if (e == NULL) {
        if ((e = new_node(sizeof(*e), k)) == NULL)
            return 0;
        sg_htab_insert(&st->bans, &e->node);
    }
    e->ban = *ban;
    e->ban.gen = ++st->gen;
    return e->ban.gen;
}

uint64_t sg_state_ban_add(struct sg_state *st, const struct sg_ban *ban)
{
    uint64_t gen;

    pthread_mutex_lock(&st->ban_mu);
    gen = ban_put(st, ban);
    pthread_mutex_unlock(&st->ban_mu);
    return gen;
}

void sg_state_ban_persisted(struct sg_state *st, char kind, const char *key,
                            uint64_t gen)
{
    char k[SG_KEY_MAX + 2];
    struct ban_entry *e;

    ban_key(k, sizeof(k), kind, key);
    pthread_mutex_lock(&st->ban_mu);
    e = (struct ban_entry *) sg_htab_find(&st->bans, k);
    if (e != NULL && e->ban.gen == gen)
        e->ban.persisted = true;
    pthread_mutex_unlock(&st->ban_mu);
}

uint64_t sg_state_ban_gen(struct sg_state *st)
{
    uint64_t g;

    pthread_mutex_lock(&st->ban_mu);
    g = st->gen;
    pthread_mutex_unlock(&st->ban_mu);
    return g;
}

struct keep_arg {
    struct sg_htab *keep;
    uint64_t gen_before;
};

/* move_kept - move bans that must survive a reload into another table */
static void move_kept(struct sg_htab *t, struct sg_hnode *n, void *arg)
{
    struct keep_arg *k = arg;
    struct ban_entry *e = (struct ban_entry *) n;

    sg_htab_remove(t, n);
    if (e->ban.gen > k->gen_before || !e->ban.persisted)
        sg_htab_insert(k->keep, n);
    else
        free_node(n);
}

int sg_state_bans_replace(struct sg_state *st, const struct sg_ban *rows,
                          size_t n, uint64_t gen_before)
{
    struct sg_htab keep;
    struct keep_arg ka;
    int rc = SG_OK;

    if (sg_htab_init(&keep, 64) < 0)
        return SG_ENOMEM;
    ka.keep = &keep;
    ka.gen_before = gen_before;
    pthread_mutex_lock(&st->ban_mu);
    sg_htab_walk(&st->bans, move_kept, &ka);
    for (size_t i = 0; i < n; i++) {
        struct sg_ban b = rows[i];

        b.persisted = true;
        if (ban_put(st, &b) == 0)
            rc = SG_ENOMEM;
    }
    /* Newer in-memory bans win over what the database said. */
    for (size_t i = 0; i < keep.nbuckets; i++) {
        struct sg_hnode *node = keep.bucket[i], *next;

        for (; node != NULL; node = next) {
            struct ban_entry *e = (struct ban_entry *) node, *old;

            next = node->next;
            old = (struct ban_entry *) sg_htab_find(&st->bans, node->key);
            if (old != NULL) {
                sg_htab_remove(&st->bans, &old->node);
                free_node(&old->node);
            }
            sg_htab_insert(&st->bans, node);
            (void) e;
        }
    }
    pthread_mutex_unlock(&st->ban_mu);
    sg_htab_destroy(&keep);
    return rc;
}

/* ---- flush ---- */

struct collect_arg {
    struct sg_flush_batch *b;
    size_t cap;
    int rc;
};

static void *grow_array(void *arr, size_t n, size_t *cap, size_t elsize)
{
    void *p;

    if (n < *cap)
        return arr;
    *cap = *cap ? *cap * 2 : 64;
    p = realloc(arr, *cap * elsize);
    return p;
}

static void collect_rate(struct sg_htab *t, struct sg_hnode *n, void *arg)
{
    struct collect_arg *c = arg;
    struct rate_entry *e = (struct rate_entry *) n;
    struct sg_rate_row *p;

    (void) t;
    if (!e->dirty || c->rc != SG_OK)
        return;
    p = grow_array(c->b->rates, c->b->nrates, &c->cap, sizeof(*p));
    if (p == NULL) {
        c->rc = SG_ENOMEM;
        return;
    }
    c->b->rates = p;
    p = &c->b->rates[c->b->nrates++];
    sg_strlcpy(p->key, n->key, sizeof(p->key));
    p->start = e->start;
    p->window = e->window;
    p->count = e->count;
    e->dirty = false;
}

static void collect_domain(struct sg_htab *t, struct sg_hnode *n, void *arg)
{
    struct collect_arg *c = arg;
    struct domain_entry *d = (struct domain_entry *) n;
    bool reset = d->reset;

    (void) t;
    if (!d->dirty || c->rc != SG_OK)
        return;
    for (size_t i = 0; i <= d->n; i++) {
        struct sg_domain_row *p;

        /* Index d->n stands for a reset of a now-empty history. */
        if (i == d->n && !(reset && d->n == 0))
            break;
        if (i < d->n && !d->seen[i].dirty && !reset)
            continue;
        p = grow_array(c->b->domains, c->b->ndomains, &c->cap, sizeof(*p));
        if (p == NULL) {
            c->rc = SG_ENOMEM;
            return;
        }
        c->b->domains = p;
        p = &c->b->domains[c->b->ndomains++];
        sg_strlcpy(p->domain, n->key, sizeof(p->domain));
        p->subnet[0] = '\0';
        p->last_seen = 0;
        if (i < d->n) {
            sg_strlcpy(p->subnet, d->seen[i].subnet, sizeof(p->subnet));
            p->last_seen = d->seen[i].last;
            d->seen[i].dirty = false;
        }
        p->reset = reset;
        reset = false;
    }
    d->reset = false;
    d->dirty = false;
}

static void collect_ban(struct sg_htab *t, struct sg_hnode *n, void *arg)
{
    struct collect_arg *c = arg;
    struct ban_entry *e = (struct ban_entry *) n;
    struct sg_ban *p;

    (void) t;
    if (e->ban.persisted || c->rc != SG_OK)
        return;
    p = grow_array(c->b->bans, c->b->nbans, &c->cap, sizeof(*p));
    if (p == NULL) {
        c->rc = SG_ENOMEM;
        return;
    }
    c->b->bans = p;
    c->b->bans[c->b->nbans++] = e->ban;
}

int sg_state_collect(struct sg_state *st, struct sg_flush_batch *b)
{
    struct collect_arg c;
    int rc;

    memset(b, 0, sizeof(*b));
    c.b = b;
    c.rc = SG_OK;
    c.cap = 0;
    pthread_mutex_lock(&st->rate_mu);
    sg_htab_walk(&st->rate, collect_rate, &c);
    pthread_mutex_unlock(&st->rate_mu);
    c.cap = 0;
    pthread_mutex_lock(&st->dom_mu);
    sg_htab_walk(&st->doms, collect_domain, &c);
    pthread_mutex_unlock(&st->dom_mu);
    c.cap = 0;
    pthread_mutex_lock(&st->ban_mu);
    sg_htab_walk(&st->bans, collect_ban, &c);
    pthread_mutex_unlock(&st->ban_mu);
    rc = c.rc;
    if (rc != SG_OK)
        sg_state_flush_failed(st, b);
    return rc;
}

void sg_state_flush_failed(struct sg_state *st,
                           const struct sg_flush_batch *b)
{
    pthread_mutex_lock(&st->rate_mu);
    for (size_t i = 0; i < b->nrates; i++) {
        struct rate_entry *e =
            (struct rate_entry *) sg_htab_find(&st->rate, b->rates[i].key);

        if (e != NULL)
            e->dirty = true;
    }
    pthread_mutex_unlock(&st->rate_mu);
    pthread_mutex_lock(&st->dom_mu);
    for (size_t i = 0; i < b->ndomains; i++) {
        struct domain_entry *d = (struct domain_entry *)
            sg_htab_find(&st->doms, b->domains[i].domain);

        if (d == NULL)
            continue;
        d->dirty = true;
        d->reset |= b->domains[i].reset;
        for (size_t j = 0; j < d->n; j++)
            if (strcmp(d->seen[j].subnet, b->domains[i].subnet) == 0)
                d->seen[j].dirty = true;
    }
    pthread_mutex_unlock(&st->dom_mu);
    /* Bans stay unpersisted until sg_state_ban_persisted(). */
}

static void dirty_rate(struct sg_htab *t, struct sg_hnode *n, void *arg)
{
    (void) t;
    (void) arg;
    ((struct rate_entry *) n)->dirty = true;
}

static void dirty_domain(struct sg_htab *t, struct sg_hnode *n, void *arg)
{
    struct domain_entry *d = (struct domain_entry *) n;

    (void) t;
    (void) arg;
    d->dirty = true;
    for (size_t i = 0; i < d->n; i++)
        d->seen[i].dirty = true;
}

static void dirty_ban(struct sg_htab *t, struct sg_hnode *n, void *arg)
{
    (void) t;
    (void) arg;
    ((struct ban_entry *) n)->ban.persisted = false;
}

void sg_state_mark_all_dirty(struct sg_state *st)
{
    pthread_mutex_lock(&st->rate_mu);
    sg_htab_walk(&st->rate, dirty_rate, NULL);
    pthread_mutex_unlock(&st->rate_mu);
    pthread_mutex_lock(&st->dom_mu);
    sg_htab_walk(&st->doms, dirty_domain, NULL);
    pthread_mutex_unlock(&st->dom_mu);
    pthread_mutex_lock(&st->ban_mu);
    sg_htab_walk(&st->bans, dirty_ban, NULL);
    pthread_mutex_unlock(&st->ban_mu);
}

void sg_flush_batch_free(struct sg_flush_batch *b)
{
    free(b->rates);
    free(b->domains);
    free(b->bans);
    memset(b, 0, sizeof(*b));
}

/* ---- purge ---- */

struct purge_arg {
    sg_time_t now;
    sg_time_t window;
};

static void purge_rate(struct sg_htab *t, struct sg_hnode *n, void *arg)
{
    struct purge_arg *p = arg;
    struct rate_entry *e = (struct rate_entry *) n;

    if (p->now - e->start >= (e->window > 0 ? e->window : p->window)
        && !e->dirty) {
        sg_htab_remove(t, n);
        free_node(n);
    }
}

static void purge_domain(struct sg_htab *t, struct sg_hnode *n, void *arg)
{
    struct purge_arg *p = arg;
    struct domain_entry *d = (struct domain_entry *) n;

    domain_expire(d, p->now, p->window);
    if (d->n == 0 && !d->dirty) {
        sg_htab_remove(t, n);
        free_domain(d);
    }
}

static void purge_ban(struct sg_htab *t, struct sg_hnode *n, void *arg)
{
    struct purge_arg *p = arg;
    struct ban_entry *e = (struct ban_entry *) n;

    if (e->ban.expires <= p->now) {
        sg_htab_remove(t, n);
        free_node(n);
    }
}

void sg_state_purge(struct sg_state *st, sg_time_t now, sg_time_t ip_window,
                    sg_time_t domain_window)
{
    struct purge_arg p = { now, ip_window };

    pthread_mutex_lock(&st->rate_mu);
    sg_htab_walk(&st->rate, purge_rate, &p);
    pthread_mutex_unlock(&st->rate_mu);
    p.window = domain_window;
    pthread_mutex_lock(&st->dom_mu);
    sg_htab_walk(&st->doms, purge_domain, &p);
    pthread_mutex_unlock(&st->dom_mu);
    pthread_mutex_lock(&st->ban_mu);
    sg_htab_walk(&st->bans, purge_ban, &p);
    pthread_mutex_unlock(&st->ban_mu);
}

void sg_state_stats(struct sg_state *st, struct sg_state_stats *out)
{
    pthread_mutex_lock(&st->ban_mu);
    out->bans = st->bans.count;
    pthread_mutex_unlock(&st->ban_mu);
    pthread_mutex_lock(&st->rate_mu);
    out->windows = st->rate.count;
    out->windows_max = st->rate_max;
    out->windows_evicted = st->rate_evicted;
    pthread_mutex_unlock(&st->rate_mu);
    pthread_mutex_lock(&st->dom_mu);
    out->domains = st->doms.count;
    out->domains_max = st->dom_max;
    out->domains_evicted = st->dom_evicted;
    pthread_mutex_unlock(&st->dom_mu);
}

void sg_state_set_limits(struct sg_state *st, size_t windows_max,
                         size_t domains_max)
{
    pthread_mutex_lock(&st->rate_mu);
    st->rate_max = windows_max;
    pthread_mutex_unlock(&st->rate_mu);
    pthread_mutex_lock(&st->dom_mu);
    st->dom_max = domains_max;
    pthread_mutex_unlock(&st->dom_mu);
}
