/*
 * htab.c - intrusive chained hash table (SipHash-2-4 under a random key,
 * power-of-two buckets, a list in order of use)
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "htab.h"
#include "siphash.h"

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static uint8_t hash_key[SG_SIPHASH_KEY_LEN];
static bool key_ready;
static int key_errno;

/* draw_key - fill hash_key from the kernel's generator, once */
static void draw_key(void)
{
    size_t got = 0;

    while (got < sizeof(hash_key)) {
        ssize_t n = getrandom(hash_key + got, sizeof(hash_key) - got, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            key_errno = n < 0 ? errno : EIO;
            return;
        }
        got += (size_t) n;
    }
    key_ready = true;
}

int sg_hash_init(void)
{
    pthread_once(&key_once, draw_key);
    if (!key_ready) {
        errno = key_errno;
        return -1;
    }
    return 0;
}

uint64_t sg_hash(const char *key)
{
    return sg_siphash24(hash_key, key, strlen(key));
}

int sg_htab_init(struct sg_htab *t, size_t nbuckets)
{
    size_t n = 16;

    memset(t, 0, sizeof(*t));
    if (sg_hash_init() < 0)
        return -1;
    while (n < nbuckets)
        n <<= 1;
    t->bucket = calloc(n, sizeof(*t->bucket));
    t->nbuckets = t->bucket ? n : 0;
    return t->bucket ? 0 : -1;
}

void sg_htab_destroy(struct sg_htab *t)
{
    free(t->bucket);
    t->bucket = NULL;
    t->nbuckets = t->count = 0;
    t->oldest = t->newest = NULL;
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

static void use_unlink(struct sg_htab *t, struct sg_hnode *n)
{
    if (n->older)
        n->older->newer = n->newer;
    else
        t->oldest = n->newer;
    if (n->newer)
        n->newer->older = n->older;
    else
        t->newest = n->older;
    n->older = n->newer = NULL;
}

static void use_append(struct sg_htab *t, struct sg_hnode *n)
{
    n->newer = NULL;
    n->older = t->newest;
    if (t->newest)
        t->newest->newer = n;
    else
        t->oldest = n;
    t->newest = n;
}

void sg_htab_insert(struct sg_htab *t, struct sg_hnode *node)
{
    struct sg_hnode **head;

    if (t->count >= t->nbuckets)
        grow(t);
    head = &t->bucket[node->hash & (t->nbuckets - 1)];
    node->next = *head;
    *head = node;
    use_append(t, node);
    t->count++;
}

void sg_htab_remove(struct sg_htab *t, struct sg_hnode *node)
{
    struct sg_hnode **pp = &t->bucket[node->hash & (t->nbuckets - 1)];

    for (; *pp != NULL; pp = &(*pp)->next)
        if (*pp == node) {
            *pp = node->next;
            use_unlink(t, node);
            t->count--;
            return;
        }
}

void sg_htab_touch(struct sg_htab *t, struct sg_hnode *node)
{
    if (t->newest == node)
        return;
    use_unlink(t, node);
    use_append(t, node);
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
