/*
 * policy.h - one SMTP session as the policy sees it
 *
 * Lifecycle (mirrors the milter callbacks, OpenDMARC style): a session is
 * created at connect with the client's facts, fed each stage, and freed at
 * close. Every stage fills a verdict; the milter layer turns it into a
 * reply. The session pins the policy snapshot that was current when it
 * connected.
 *
 * Thread-safety: one session is used by one thread at a time (libmilter
 * serializes a connection's callbacks, possibly on different threads);
 * sessions share only the engine, which is thread-safe.
 * Input trust: every string argument may come from an SMTP client.
 */
#ifndef SG_POLICY_H
#define SG_POLICY_H

#include "catalogue.h"
#include "engine.h"
#include "verdict.h"

struct sg_session_info {
    const char *client_addr;    /* {client_addr} / connect address text */
    const char *client_name;    /* may be NULL */
    const char *service;        /* {daemon_name}; NULL -> "default" */
    const char *mta_host;       /* the MTA's host name (macro j), or NULL */
};

struct sg_session;

/*
 * Create a session. On allocation failure logs failed_create_new_session
 * (00200152) and returns NULL: the caller answers with a temporary failure.
 */
struct sg_session *sg_session_new(struct sg_engine *eng,
                                  const struct sg_session_info *info);
void sg_session_free(struct sg_session *s);

void sg_session_connect(struct sg_session *s, struct sg_verdict *v);
void sg_session_helo(struct sg_session *s, const char *helo,
                     struct sg_verdict *v);
void sg_session_mail(struct sg_session *s, const char *sender,
                     struct sg_verdict *v);
/*
 * The authenticated user of the coming transaction ({auth_authen}, which
 * Postfix and Sendmail both send at MAIL FROM); NULL or "" when none. Call
 * before sg_session_mail(); reset with the transaction.
 */
void sg_session_set_auth(struct sg_session *s, const char *user);
/*
 * RCPT TO: relay authorization, local recipient, directory harvest and
 * recipient limits. `mailer` is the MTA's mailer for the recipient
 * ({rcpt_mailer}), or NULL.
 */
void sg_session_rcpt(struct sg_session *s, const char *rcpt,
                     const char *mailer, struct sg_verdict *v);
void sg_session_unknown(struct sg_session *s, const char *command,
                        struct sg_verdict *v);
/* End of message accepted: counts it for the mail rate limits. */
void sg_session_message_done(struct sg_session *s);
/* End of a transaction (abort or end of message): message-level reset. */
void sg_session_reset(struct sg_session *s);
void sg_session_set_queue_id(struct sg_session *s, const char *qid);

/*
 * The headers smtpguard adds to an accepted message (Received-SPF,
 * Authentication-Results with the SPF result and the penalty score as a
 * comment): fn is called for each, in the order to prepend them. Call at
 * end of message, before sg_session_message_done().
 */
typedef void (*sg_header_fn)(void *arg, const char *name, const char *value);
void sg_session_headers(struct sg_session *s, sg_header_fn fn, void *arg);

unsigned sg_session_errors(const struct sg_session *s);
unsigned sg_session_score(const struct sg_session *s);

/* The failed_create_new_session verdict, for the caller of _new(). */
void sg_verdict_session_alloc(struct sg_verdict *v);

#endif /* SG_POLICY_H */
