/*
 * htab.h - intrusive chained hash table with string keys, keyed hash and
 * an order of use
 *
 * Entries embed struct sg_hnode as their first member; the table never
 * allocates entries, only its bucket array. Not thread-safe: callers lock.
 *
 * Keys come from clients (addresses, envelope senders, domains), so the
 * hash is SipHash-2-4 under a key drawn from getrandom() once per process
 * (sg_hash_init): nobody outside can choose keys that share a chain, and
 * every operation stays O(1) on average whatever the input.
 *
 * Besides the buckets, the table keeps its nodes in one list from least
 * to most recently used: insert puts a node at the recent end, touch
 * moves it there, oldest names the other end. A caller that bounds a
 * table evicts from there (O(1) per operation).
 */
#ifndef SG_HTAB_H
#define SG_HTAB_H

#include <stddef.h>
#include <stdint.h>

struct sg_hnode {
    struct sg_hnode *next;
    uint64_t hash;
    char *key;                  /* owned by the entry */
    struct sg_hnode *older, *newer;     /* order of use */
};

struct sg_htab {
    struct sg_hnode **bucket;
    size_t nbuckets;
    size_t count;
    struct sg_hnode *oldest, *newest;
};

/*
 * Draw the process's hash key; idempotent and thread-safe. -1 with errno
 * set when getrandom() failed: the tables then refuse to be made
 * (sg_htab_init fails), rather than hash with a key an attacker could
 * guess.
 */
int sg_hash_init(void);
/* The keyed hash of `key`; sg_hash_init() must have succeeded. */
uint64_t sg_hash(const char *key);

/* -1 when out of memory or without a hash key (see sg_hash_init). */
int sg_htab_init(struct sg_htab *t, size_t nbuckets);
void sg_htab_destroy(struct sg_htab *t);    /* the array, not the entries */
struct sg_hnode *sg_htab_find(const struct sg_htab *t, const char *key);
/* Insert a node whose key and hash are set, as the most recently used;
 * grows the table if it can. */
void sg_htab_insert(struct sg_htab *t, struct sg_hnode *node);
void sg_htab_remove(struct sg_htab *t, struct sg_hnode *node);
/* Mark a node of the table as the most recently used. */
void sg_htab_touch(struct sg_htab *t, struct sg_hnode *node);
/* The least recently used node, NULL when empty. */
static inline struct sg_hnode *sg_htab_oldest(const struct sg_htab *t)
{
    return t->oldest;
}

/* Visit every node; `fn` may remove the node it is given. */
typedef void (*sg_htab_visit_fn)(struct sg_htab *t, struct sg_hnode *node,
                                 void *arg);
void sg_htab_walk(struct sg_htab *t, sg_htab_visit_fn fn, void *arg);

#endif /* SG_HTAB_H */
