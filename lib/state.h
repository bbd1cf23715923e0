/*
 * state.h - the shared, in-memory state of the session limits
 *
 * Live concurrency counts exist only here. Connection windows, sender
 * domain histories and bans are mirrored to SQLite: bans are written
 * through at once by the caller (store.c) and marked persisted here;
 * windows and histories are marked dirty and collected by the flusher in
 * one batch per flush interval, so no session ever waits for a database
 * write of a counter.
 *
 * Every map is keyed by what clients send, so every map is bounded:
 * windows and domain histories by sg_state_set_limits() (at the bound a
 * new key evicts the least recently used one: O(1), counted in the
 * stats); concurrency counts by the sessions open; bans are never evicted
 * (each costs a client a limit's worth of connections or subnets, and
 * expires). The tables hash with a random key (htab.h).
 *
 * Thread-safety: every function may be called from any thread. Each map
 * has its own mutex, held only for in-memory work, never across I/O.
 */
#ifndef SG_STATE_H
#define SG_STATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "htab.h"
#include "sg.h"

#define SG_KEY_MAX 260          /* a domain name, or an address key */
#define SG_RATE_KEY_MAX 600     /* "mail:sender:" and an envelope address */

enum sg_ban_kind {
    SG_BAN_IP = 'i',            /* key: client address key */
    SG_BAN_DOMAIN = 'd',        /* key: sender domain */
};

struct sg_ban {
    char kind;
    char key[SG_KEY_MAX];
    char reason[16];            /* ID of the event that issued it */
    sg_time_t created;
    sg_time_t expires;
    bool persisted;
    uint64_t gen;               /* insertion sequence, see bans_replace */
};

/* One flush: copies, so the writer needs no lock. */
struct sg_rate_row {
    char key[SG_RATE_KEY_MAX];
    sg_time_t start;
    sg_time_t window;
    unsigned count;
};

struct sg_domain_row {
    char domain[SG_KEY_MAX];
    char subnet[SG_ADDR_STRLEN];
    sg_time_t last_seen;
    bool reset;                 /* delete the domain's rows first */
};

struct sg_flush_batch {
    struct sg_rate_row *rates;
    size_t nrates;
    struct sg_domain_row *domains;
    size_t ndomains;
    struct sg_ban *bans;        /* bans not yet persisted */
    size_t nbans;
};

struct sg_state;

/* NULL when out of memory or without a hash key (sg_hash_init). A new
 * state has no bounds until sg_state_set_limits(). */
struct sg_state *sg_state_new(void);
void sg_state_free(struct sg_state *st);
/*
 * Bound the counting windows and the sender domain histories to so many
 * keys each (0: no bound). Lowering a bound shrinks the map at its next
 * new key.
 */
void sg_state_set_limits(struct sg_state *st, size_t windows_max,
                         size_t domains_max);

/* Concurrency. `counts` gets global, per-service and per-client values
 * after the increment. */
struct sg_conc_counts {
    long global;
    long service;
    long client;
};
int sg_state_conc_enter(struct sg_state *st, const char *service,
                        const char *ipkey, struct sg_conc_counts *counts);
void sg_state_conc_leave(struct sg_state *st, const char *service,
                         const char *ipkey);
long sg_state_conc_total(struct sg_state *st);

/*
 * Counting windows: connections per client ("conn:<ipkey>"), messages and
 * recipients per minute ("mail:sender:<address>", "rcpt:ip:<ipkey>"...),
 * unknown recipients ("harvest:<ipkey>"). Fixed windows of `window`
 * seconds (Postfix anvil's arithmetic; a clock going backwards restarts
 * the window); each key remembers its window length for purging.
 *
 * hit counts one more and returns the count including it (0 on ENOMEM);
 * count returns the current count without adding (0 when none or expired).
 */
unsigned sg_state_rate_hit(struct sg_state *st, const char *key,
                           sg_time_t now, sg_time_t window);
unsigned sg_state_rate_count(struct sg_state *st, const char *key,
                             sg_time_t now, sg_time_t window);
void sg_state_rate_reset(struct sg_state *st, const char *key, sg_time_t now);
int sg_state_rate_load(struct sg_state *st, const char *key,
                       sg_time_t start, sg_time_t window, unsigned count);

/*
 * Sender domain history: note `subnet` for `domain`, forget subnets not
 * seen for `window` seconds, and return how many distinct subnets remain
 * (0 on ENOMEM).
 */
unsigned sg_state_domain_hit(struct sg_state *st, const char *domain,
                             const char *subnet, sg_time_t now,
                             sg_time_t window);
void sg_state_domain_reset(struct sg_state *st, const char *domain);
int sg_state_domain_load(struct sg_state *st, const char *domain,
                         const char *subnet, sg_time_t last_seen);

/* Bans. find: true and a copy in `out` when an unexpired ban exists. */
bool sg_state_ban_find(struct sg_state *st, char kind, const char *key,
                       sg_time_t now, struct sg_ban *out);
/* Add or replace; returns the ban's generation (0 on ENOMEM). */
uint64_t sg_state_ban_add(struct sg_state *st, const struct sg_ban *ban);
void sg_state_ban_persisted(struct sg_state *st, char kind, const char *key,
                            uint64_t gen);
uint64_t sg_state_ban_gen(struct sg_state *st);
/*
 * Replace the bans with what the database holds (rows), keeping bans added
 * in memory after generation `gen_before` (read before the rows were
 * selected) and bans not yet persisted.
 */
int sg_state_bans_replace(struct sg_state *st, const struct sg_ban *rows,
                          size_t n, uint64_t gen_before);

/* Flush support. collect clears dirty marks; failed restores them. */
int sg_state_collect(struct sg_state *st, struct sg_flush_batch *batch);
void sg_state_flush_failed(struct sg_state *st,
                           const struct sg_flush_batch *batch);
void sg_flush_batch_free(struct sg_flush_batch *batch);

/* Drop expired windows, histories and bans from memory. Windows loaded
 * without a length use `ip_window`. */
void sg_state_purge(struct sg_state *st, sg_time_t now, sg_time_t ip_window,
                    sg_time_t domain_window);

/* Everything unsaved again: the next flush writes it all (a new file). */
void sg_state_mark_all_dirty(struct sg_state *st);

struct sg_state_stats {
    size_t bans;
    size_t windows;
    size_t domains;
    size_t windows_max, domains_max;    /* the bounds; 0: none */
    unsigned long windows_evicted;      /* since sg_state_new() */
    unsigned long domains_evicted;
};
void sg_state_stats(struct sg_state *st, struct sg_state_stats *out);

#endif /* SG_STATE_H */
