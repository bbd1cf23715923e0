/*
 * htab.c - intrusive chained hash table (FNV-1a, power-of-two buckets)
 */
#include <stdlib.h>
#include <string.h>

#include "htab.h"

uint64_t sg_hash(const char *key)
{
    uint64_t h = 1469598103934665603ULL;

    while (*key) {
        h ^= (unsigned char) *key++;
        h *= 1099511628211ULL;
    }
    return h;
}

int sg_htab_init(struct sg_htab *t, size_t nbuckets)
{
    size_t n = 16;

    while (n < nbuckets)
        n <<= 1;
    t->bucket = calloc(n, sizeof(*t->bucket));
    t->nbuckets = t->bucket ? n : 0;
    t->count = 0;
    return t->bucket ? 0 : -1;
}

void sg_htab_destroy(struct sg_htab *t)
{
    free(t->bucket);
    t->bucket = NULL;
    t->nbuckets = t->count = 0;
}

struct sg_hnode *sg_htab_find(const struct sg_htab *t, const char *key)
{
    uint64_t h = sg_hash(key);
    struct sg_hnode *n;

    for (n = t->bucket[h & (t->nbuckets - 1)]; n != NULL; n = n->next)
        if (n->hash == h && strcmp(n->key, key) == 0)
            return n;
    return NULL;
}

/* grow - double the buckets; on allocation failure keep the old ones */
static void grow(struct sg_htab *t)
{
    size_t nb = t->nbuckets * 2;
    struct sg_hnode **b = calloc(nb, sizeof(*b));

    if (b == NULL)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct sg_hnode *n = t->bucket[i], *next;

        for (; n != NULL; n = next) {
            next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
        }
    }
    free(t->bucket);
    t->bucket = b;
    t->nbuckets = nb;
}

void sg_htab_insert(struct sg_htab *t, struct sg_hnode *node)
{
    struct sg_hnode **head;

    if (t->count >= t->nbuckets)
        grow(t);
    head = &t->bucket[node->hash & (t->nbuckets - 1)];
    node->next = *head;
    *head = node;
    t->count++;
}

void sg_htab_remove(struct sg_htab *t, struct sg_hnode *node)
{
    struct sg_hnode **pp = &t->bucket[node->hash & (t->nbuckets - 1)];

    for (; *pp != NULL; pp = &(*pp)->next)
        if (*pp == node) {
            *pp = node->next;
            t->count--;
            return;
        }
}

void sg_htab_walk(struct sg_htab *t, sg_htab_visit_fn fn, void *arg)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct sg_hnode *n = t->bucket[i], *next;

        for (; n != NULL; n = next) {
            next = n->next;
            fn(t, n, arg);
        }
    }
}
