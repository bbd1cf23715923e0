/*
 * mtadata.h - what the simulated MTA tells the milter: the client identity
 * of a session (derived deterministically from the session number), the
 * macros Postfix or Sendmail send at each stage, the headers and the body.
 */
#ifndef SG_BENCH_MTADATA_H
#define SG_BENCH_MTADATA_H

#include <stddef.h>
#include <stdint.h>

#include "session.h"

struct lc_ident {
    uint64_t seq;
    unsigned client;        /* index among cfg->clients */
    int v6;
    char addr[64];          /* 192.0.2.7, 2001:db8:0:7::25 */
    char port[8];
    int resolved;           /* has a (pretend) PTR name */
    char name[96];          /* PTR name, or "unknown" */
    char conn_host[96];     /* SMFIC_CONNECT host: name or "[addr]" */
    char underscore[200];   /* macro _ */
    char helo[128];
    char sender[192];       /* bare address */
    char sender_domain[96];
    char qid[24];           /* queue id, macro i */
    char msgid[128];
    char date[48];          /* RFC 5322 date */
    char daemon_addr[64];
};

/* Fill the identity of session `seq`. */
void lc_ident_make(const struct lc_config *cfg, uint64_t seq,
                   struct lc_ident *id);

/* The j-th recipient (bare address) of a session. */
const char *lc_rcpt(const struct lc_config *cfg, const struct lc_ident *id,
                    unsigned j, char *buf, size_t len);

/* Macros for a stage (enum mp_macro_stage). `rcpt` is the current
 * recipient at MP_M_RCPT. Returns the number of pairs stored in kv, or -1
 * when the MTA sends no macro packet at all for this stage. */
int lc_stage_macros(const struct lc_config *cfg, const struct lc_ident *id,
                    int stage, const char *rcpt, struct lc_kv *kv,
                    size_t max);

/* Message headers (name, value without leading space; continuation lines
 * separated by "\n\t" as Sendmail and Postfix send them). */
size_t lc_headers(const struct lc_config *cfg, const struct lc_ident *id,
                  struct lc_kv *kv, size_t max, char *scratch,
                  size_t scratchlen);

/* Message body in SMTP wire form (CRLF line ends). */
const char *lc_body(size_t *len);

#endif
