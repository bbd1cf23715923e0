/*
 * policy_int.h - what the policy modules share: the session as they all
 * see it and the helpers that turn a check's finding into events, scores
 * and verdicts. Internal to lib/ (session.c and the check_*.c files); the
 * milter layer sees only policy.h.
 *
 * Thread-safety: as policy.h: one session, one thread at a time.
 */
#ifndef SG_POLICY_INT_H
#define SG_POLICY_INT_H

#include "dns.h"
#include "mailaddr.h"
#include "policy.h"

#define SG_REP_ZONES 64         /* dnsbl_zones asked per client */
#define SG_REP_NAMES 5          /* PTR names forward-confirmed */

/* DNS reputation of the client: lookups started at connect. */
struct sg_rep {
    struct sg_dns_batch *batch; /* NULL: nothing asked */
    int h_bl[SG_REP_ZONES];     /* per cfg->dnsbl zone, -1: not asked */
    int h_txt[SG_REP_ZONES];    /* TXT reasons, asked on a hit */
    int h_ptr;
    int h_fwd[SG_REP_NAMES];
    size_t nfwd;
    bool fwd_asked, txt_asked;
    bool done;                  /* the verdict has been given */
    bool refused;               /* ... and it refused: repeated */
    struct sg_verdict verdict;
};

struct sg_session {
    struct sg_engine *eng;
    struct sg_config *cfg;      /* pinned at connect */
    struct sg_addr addr;
    bool addr_ok;
    bool exempt;
    bool counted;               /* holds concurrency counts */
    bool errors_fired;
    bool score_fired;
    char client[SG_ADDR_STRLEN];
    char ipkey[SG_ADDR_STRLEN];
    char service[65];
    char qid[32];
    char helo[SG_DNS_NAME_MAX];
    char mta_host[SG_DNS_NAME_MAX];
    unsigned long id;
    unsigned errors;
    unsigned score;
    char parts[160];
    struct sg_rep rep;
    int64_t dns_deadline;       /* this callback's DNS waits end here
                                 * (sg_dns_clock), set by sg_rep_stage */
    /* The current transaction. */
    bool in_mail;
    struct sg_mailaddr sender;  /* valid when sender_ok */
    bool sender_ok;
    char sender_key[SG_MAILADDR_KEYMAX];    /* "" for <> */
    char auth[256];
    unsigned rcpts;             /* recipients accepted */
    char spf_received[1600];    /* Received-SPF value, "" if none */
    char spf_ar[640];           /* the spf= part of Authentication-Results */
};

void sg_pol_emit(const struct sg_session *s, enum sg_event ev,
                 enum sg_action act, const struct sg_args *args);
void sg_pol_add_score(struct sg_session *s, const char *check, long weight);
/* A check fired: apply its mode; true when the verdict now refuses. */
bool sg_pol_fire(struct sg_session *s, enum sg_event ev, long mode,
                 const char *check, long weight, const struct sg_args *args,
                 enum sg_stage stage, struct sg_verdict *v);
bool sg_pol_score_check(struct sg_session *s, enum sg_stage stage,
                        struct sg_verdict *v);
void sg_pol_count_error(struct sg_session *s, struct sg_verdict *v);

/*
 * The checks (check_*.c), called by session.c stage by stage. Each returns
 * true when its verdict refuses (v is then set) and false to go on.
 */
/* check_limits.c */
bool sg_chk_lists(struct sg_session *s, struct sg_verdict *v);
bool sg_chk_db(struct sg_session *s, struct sg_verdict *v);
bool sg_chk_ban(struct sg_session *s, struct sg_verdict *v);
bool sg_chk_frequency(struct sg_session *s, struct sg_verdict *v);
bool sg_chk_concurrency(struct sg_session *s, struct sg_verdict *v);
bool sg_chk_domain(struct sg_session *s, const char *domain,
                   struct sg_verdict *v);
bool sg_chk_harvest(struct sg_session *s, struct sg_verdict *v);
/* check_rates.c: limits of rates apply to this client (an address, not
 * exempt); the per-minute rates; counting what was accepted; recipients
 * per message */
bool sg_chk_limited(const struct sg_session *s);
bool sg_chk_rates(struct sg_session *s, bool rcpt, enum sg_stage stage,
                  struct sg_verdict *v);
void sg_chk_count_rates(struct sg_session *s, bool rcpt);
bool sg_chk_rcpt_count(struct sg_session *s, struct sg_verdict *v);
/* check_relay.c */
bool sg_chk_relay(struct sg_session *s, const struct sg_mailaddr *rcpt,
                  const char *rcpt_mailer, const char *rcpt_text,
                  struct sg_verdict *v);
/* check_spf.c: the SPF verdict, and the header values it leaves; the name
 * this server reports results under (authservId, the MTA's, this host's) */
void sg_chk_spf(struct sg_session *s, struct sg_verdict *v);
void sg_chk_receiver(const struct sg_session *s, char *buf, size_t size);

/* check_dns.c: DNSBL/DNSWL and forward-confirmed reverse DNS. */
void sg_rep_start(struct sg_session *s);
/* Progress without waiting (follow-up queries); at the configured stage
 * (dnsCheckStage) or later, wait for the answers and give the verdict. */
void sg_rep_stage(struct sg_session *s, enum sg_dns_stage stage,
                  const char *rcpt, struct sg_verdict *v);
void sg_rep_free(struct sg_session *s);

#endif /* SG_POLICY_INT_H */
