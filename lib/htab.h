/*
 * htab.h - intrusive chained hash table with string keys
 *
 * Entries embed struct sg_hnode as their first member; the table never
 * allocates entries, only its bucket array. Not thread-safe: callers lock.
 */
#ifndef SG_HTAB_H
#define SG_HTAB_H

#include <stddef.h>
#include <stdint.h>

struct sg_hnode {
    struct sg_hnode *next;
    uint64_t hash;
    char *key;                  /* owned by the entry */
};

struct sg_htab {
    struct sg_hnode **bucket;
    size_t nbuckets;
    size_t count;
};

uint64_t sg_hash(const char *key);
int sg_htab_init(struct sg_htab *t, size_t nbuckets);
void sg_htab_destroy(struct sg_htab *t);    /* the array, not the entries */
struct sg_hnode *sg_htab_find(const struct sg_htab *t, const char *key);
/* Insert a node whose key and hash are set; grows the table if it can. */
void sg_htab_insert(struct sg_htab *t, struct sg_hnode *node);
void sg_htab_remove(struct sg_htab *t, struct sg_hnode *node);

/* Visit every node; `fn` may remove the node it is given. */
typedef void (*sg_htab_visit_fn)(struct sg_htab *t, struct sg_hnode *node,
                                 void *arg);
void sg_htab_walk(struct sg_htab *t, sg_htab_visit_fn fn, void *arg);

#endif /* SG_HTAB_H */
