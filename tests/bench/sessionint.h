/*
 * sessionint.h - internals shared by session.c (what the MTA sends) and
 * replies.c (what the milter answers).
 */
#ifndef SG_BENCH_SESSIONINT_H
#define SG_BENCH_SESSIONINT_H

#include <stdint.h>

#include "mtadata.h"
#include "session.h"

enum verdict {
    V_CONTINUE, V_ACCEPT, V_REJECT, V_TEMPFAIL, V_DISCARD, V_CLOSED, V_SKIP,
    V_NONE,    /* no reply expected (SMFIP_NR_*) */
    V_NOTSENT, /* event not sent (SMFIP_NO*, or skipped after SMFIR_SKIP) */
    V_ERROR
};

struct sess {
    const struct lc_config *cfg;
    struct mp_conn *c;
    struct lc_trace *tr;
    struct lc_ident id;
    uint32_t version, actions, pflags;
    char *symlist[MP_M_COUNT];
    char skip_cmd;   /* event type the milter asked to skip */
    int in_msg;      /* inside a mail transaction: ABORT before QUIT */
    char *err;
    size_t errlen;
};

/* Trace line "stage=NAME reply=WORD[ code="..."]WHAT". */
void sess_trace_stage(struct sess *s, const char *stage, const char *reply,
                 const char *code, const char *what);
/* Record an error (in s->err and the trace); returns V_ERROR. */
enum verdict sess_fail(struct sess *s, const char *stage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* SMFIC_OPTNEG exchange; fills version, actions, pflags, symlist. */
int sess_negotiate(struct sess *s);
/* Read replies to `event` until a decision (V_NONE if the milter asked not
 * to reply to it). Modification requests are accepted at end of message. */
enum verdict sess_get_reply(struct sess *s, const char *stage, char event,
                       uint32_t nrflag, const char *what);

#endif
