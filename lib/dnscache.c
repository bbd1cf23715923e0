/*
 * dnscache.c - the resolver's cache: answers kept for their TTL (clamped
 * by the settings), in SHARDS shards by the hash of name and type, each
 * behind its own mutex and bounded by count and by bytes, the least
 * recently used making room; and the resolver's counters as
 * sg_dns_get_stats() reads them (see dns.h)
 *
 * A shard's mutex is held only for the table and list operations, never
 * across network I/O. Answers are shared by reference with the batches.
 */
#include <stdio.h>
#include <string.h>

#include "dns_int.h"

/* ---- cache ---- */

struct centry {
    struct sg_hnode node;       /* first */
    struct sg_dns_answer *ans;
    int64_t expires;            /* cache clock, milliseconds */
    size_t bytes;               /* accounted to the shard */
    struct centry *older, *newer;
};

static int64_t cache_now(const struct sg_dns *dns)
{
    return dns->clock ? dns->clock(dns->clock_arg) : mono_ms();
}

static void cache_key(char *buf, size_t size, const char *name,
                      uint16_t type)
{
    snprintf(buf, size, "%u/%s", type, name);
}

static void lru_unlink(struct shard *s, struct centry *e)
{
    if (e->older)
        e->older->newer = e->newer;
    else
        s->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        s->newest = e->older;
    e->older = e->newer = NULL;
}

static void lru_append(struct shard *s, struct centry *e)
{
    e->newer = NULL;
    e->older = s->newest;
    if (s->newest)
        s->newest->newer = e;
    else
        s->oldest = e;
    s->newest = e;
}

static void centry_drop(struct sg_dns *dns, struct shard *s, struct centry *e)
{
    sg_htab_remove(&s->tab, &e->node);
    lru_unlink(s, e);
    s->count--;
    s->bytes -= e->bytes;
    atomic_fetch_sub(&dns->st_entries, 1);
    atomic_fetch_sub(&dns->st_bytes, e->bytes);
    sg_dns_answer_unref(e->ans);
    sg_free(e->node.key);
    sg_free(e);
}

struct sg_dns_answer *sg_dnsc_get(struct sg_dns *dns, const char *name,
                                  uint16_t type)
{
    char key[SG_DNS_NAME_MAX + 8];
    struct sg_dns_answer *a = NULL;
    struct centry *e;
    struct shard *s;
    uint64_t h;

    if (dns->shard_max == 0)
        return NULL;
    cache_key(key, sizeof(key), name, type);
    h = sg_hash(key);
    s = &dns->shard[h % SHARDS];
    pthread_mutex_lock(&s->mu);
    e = (struct centry *) sg_htab_find(&s->tab, key);
    if (e != NULL && e->expires <= cache_now(dns))
        centry_drop(dns, s, e);
    else if (e != NULL) {
        a = sg_dnsw_answer_ref(e->ans);
        lru_unlink(s, e);       /* now the most recently used */
        lru_append(s, e);
    }
    pthread_mutex_unlock(&s->mu);
    return a;
}

static uint32_t clamp_ttl(const struct sg_dns *dns,
                          const struct sg_dns_answer *a)
{
    uint32_t ttl = a->ttl;

    if (a->status == SG_DNS_OK) {
        if (ttl < dns->ttl_min)
            ttl = dns->ttl_min;
        if (ttl > dns->ttl_max)
            ttl = dns->ttl_max;
    } else if (ttl > dns->neg_ttl_max) {
        ttl = dns->neg_ttl_max;
    }
    return ttl;
}

/* answer_bytes - the memory an entry of the answer holds (allocator
 * overhead aside) */
static size_t answer_bytes(const struct sg_dns_answer *a, size_t keylen)
{
    size_t n = sizeof(struct centry) + keylen + 1 + sizeof(*a) +
        a->nrr * sizeof(*a->rr);

    for (size_t i = 0; i < a->nrr; i++)
        n += a->rr[i].text ? a->rr[i].len + 1 : 0;
    return n;
}

/* sg_dnsc_put - keep a definite answer; temporary failures are not cached,
 * so one lost packet does not stick to every session for a TTL. The
 * least recently used entries of the shard make room, by count and by
 * bytes. */
void sg_dnsc_put(struct sg_dns *dns, struct sg_dns_answer *a)
{
    char key[SG_DNS_NAME_MAX + 8];
    struct centry *e, *old;
    struct shard *s;
    uint32_t ttl;

    if (dns->shard_max == 0 || !sg_dns_definite(a->status))
        return;
    if ((ttl = clamp_ttl(dns, a)) == 0)
        return;
    cache_key(key, sizeof(key), a->name, a->qtype);
    if (answer_bytes(a, strlen(key)) > dns->shard_bytes_max)
        return;                 /* bigger than a shard may hold */
    if ((e = sg_calloc(1, sizeof(*e))) == NULL)
        return;
    e->bytes = answer_bytes(a, strlen(key));
    if ((e->node.key = sg_strdup(key)) == NULL) {
        sg_free(e);
        return;
    }
    e->node.hash = sg_hash(key);
    e->ans = sg_dnsw_answer_ref(a);
    s = &dns->shard[e->node.hash % SHARDS];
    pthread_mutex_lock(&s->mu);
    e->expires = cache_now(dns) + (int64_t) ttl * 1000;
    if ((old = (struct centry *) sg_htab_find(&s->tab, key)) != NULL)
        centry_drop(dns, s, old);
    while ((s->count >= dns->shard_max ||
            s->bytes + e->bytes > dns->shard_bytes_max) && s->oldest != NULL) {
        centry_drop(dns, s, s->oldest);
        atomic_fetch_add(&dns->st_evictions, 1);
    }
    sg_htab_insert(&s->tab, &e->node);
    lru_append(s, e);
    s->count++;
    s->bytes += e->bytes;
    atomic_fetch_add(&dns->st_entries, 1);
    atomic_fetch_add(&dns->st_bytes, e->bytes);
    pthread_mutex_unlock(&s->mu);
}

/*
 * sg_dnsc_init - the cache of a new resolver, by the options: entries per
 * shard and its bytes, the TTL bounds, the clock. SG_ENOMEM when a shard's
 * table could not be made (the others are undone).
 */
int sg_dnsc_init(struct sg_dns *dns, const struct sg_dns_opts *o)
{
    int i;

    dns->shard_max = o->cache_max ? (o->cache_max + SHARDS - 1) / SHARDS : 0;
    dns->shard_bytes_max = dns->shard_max * SG_DNS_CACHE_AVG;
    dns->ttl_min = o->ttl_min;
    dns->ttl_max = o->ttl_max ? o->ttl_max : 3600;
    dns->neg_ttl_max = o->neg_ttl_max;
    dns->clock = o->clock;
    dns->clock_arg = o->clock_arg;
    for (i = 0; i < SHARDS; i++) {
        pthread_mutex_init(&dns->shard[i].mu, NULL);
        if (sg_htab_init(&dns->shard[i].tab, 64) != SG_OK)
            break;
    }
    if (i < SHARDS) {
        while (i-- > 0)
            sg_htab_destroy(&dns->shard[i].tab);
        return SG_ENOMEM;
    }
    return SG_OK;
}

/* sg_dnsc_destroy - every entry dropped, the shards undone */
void sg_dnsc_destroy(struct sg_dns *dns)
{
    for (int i = 0; i < SHARDS; i++) {
        struct shard *s = &dns->shard[i];

        while (s->oldest != NULL)
            centry_drop(dns, s, s->oldest);
        sg_htab_destroy(&s->tab);
        pthread_mutex_destroy(&s->mu);
    }
}

/* ---- counters ---- */

void sg_dns_get_stats(struct sg_dns *dns, struct sg_dns_stats *st)
{
    st->queries = atomic_load(&dns->st_queries);
    st->cache_hits = atomic_load(&dns->st_hits);
    st->sent = atomic_load(&dns->st_sent);
    st->answers = atomic_load(&dns->st_answers);
    st->mismatched = atomic_load(&dns->st_mismatched);
    st->malformed = atomic_load(&dns->st_malformed);
    st->timeouts = atomic_load(&dns->st_timeouts);
    st->tcp = atomic_load(&dns->st_tcp);
    st->cache_entries = atomic_load(&dns->st_entries);
    st->cache_bytes = atomic_load(&dns->st_bytes);
    st->cache_evictions = atomic_load(&dns->st_evictions);
    st->local_failures = atomic_load(&dns->st_local);
    st->local_what = (enum sg_dns_local) atomic_load(&dns->local_what);
    st->local_errno = atomic_load(&dns->local_errno);
}
