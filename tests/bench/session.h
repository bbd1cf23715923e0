/*
 * session.h - one MTA-side milter session as Postfix 3.7 (or, with
 * --sendmail, Sendmail 8.17) would run it for one SMTP connection with one
 * message: OPTNEG, CONNECT, HELO, [UNKNOWN...], MAIL, RCPT..., DATA,
 * HEADER..., EOH, BODY, EOM, QUIT.
 */
#ifndef SG_BENCH_SESSION_H
#define SG_BENCH_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "milterproto.h"

enum lc_mode { LC_POSTFIX, LC_SENDMAIL };

struct lc_kv {
    const char *name;
    const char *value;
};

/* Read-only after option parsing; shared by all threads. */
struct lc_config {
    struct mp_addr addr;
    int timeout_ms;
    int trace;
    enum lc_mode mode;
    unsigned clients;       /* distinct client addresses to cycle through */
    unsigned ipv6_percent;  /* share of IPv6 among them */
    const char *client;     /* forced client address, or NULL */
    int client_v6;
    const char *daemon_name;
    struct lc_kv *macros;   /* extra connect-stage macros */
    size_t nmacros;
    const char *mail;       /* fixed sender, or NULL: bench@dN.example.com */
    unsigned domains;
    const char **rcpt_list; /* --rcpt addresses, cycled */
    size_t nrcpt_list;
    unsigned rcpts;         /* recipients per message */
    const char *helo;       /* fixed HELO name, or NULL */
    const char *auth;       /* SASL user, or NULL */
    const char *rcpt_mailer; /* {rcpt_mailer}, NULL: "local" */
    const char **unknown;   /* SMTP commands sent as SMFIC_UNKNOWN */
    size_t nunknown;
};

/* How a session ended. "accepted": the message was accepted (continue or
 * accept at end of message, or an earlier accept); "closed": the milter
 * asked for the connection to be closed (421 reply, shutdown, conn_fail). */
enum lc_outcome {
    LC_ACCEPTED, LC_REJECTED, LC_TEMPFAILED, LC_DISCARDED, LC_CLOSED,
    LC_ERROR, LC_NOUTCOMES
};

/* Per-session trace text (one "stage=... reply=..." line per stage),
 * printed in one piece so concurrent sessions do not interleave. */
struct lc_trace {
    char *buf;
    size_t len, cap;
};

const char *lc_outcome_name(enum lc_outcome o);

/* Run session number `seq` over connection `c` (connect included). On
 * LC_ERROR, err holds the reason. */
enum lc_outcome lc_session(const struct lc_config *cfg, uint64_t seq,
                           struct mp_conn *c, struct lc_trace *tr,
                           char *err, size_t errlen);

/* Trace helpers, also used by the reply parser. */
void lc_trace_add(struct lc_trace *tr, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append text as a double-quoted string with \" \\ \r \n \t \xNN escapes. */
void lc_trace_quoted(struct lc_trace *tr, const char *s, size_t n);

#endif
