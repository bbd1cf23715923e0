/*
 * verdict.h - what the SMTP client is told: the one writer of reply codes,
 * enhanced status codes and texts
 *
 * Every refusal names a catalogue event; its reply comes from that event's
 * SG_REPLY row of events.def (codes by action, a text template), so the
 * log reference shows exactly what a client reads. The milter layer only
 * copies a verdict into smfi_setreply().
 */
#ifndef SG_VERDICT_H
#define SG_VERDICT_H

#include <stdbool.h>
#include <stddef.h>

#include "catalogue.h"
#include "log.h"

/* Where in the session a verdict is given: the codes depend on it. */
enum sg_stage { SG_STAGE_CONNECT, SG_STAGE_MAIL, SG_STAGE_RCPT,
                SG_STAGE_OTHER };

struct sg_verdict {
    enum sg_action action;      /* NONE/ACCEPT/MONITOR/SCORE: go on */
    enum sg_event event;        /* the event behind a refusal */
    char code[4];               /* "421", "451", "452", "501", "550" */
    char xcode[8];              /* "4.7.0", "5.1.1" */
    char text[200];             /* reply text, carries the event ID */
};

/* True when the verdict refuses what the client asked. */
static inline int sg_verdict_refuses(const struct sg_verdict *v)
{
    return v->action >= SG_ACT_REJECT;
}

/* Nothing decided yet: go on. */
void sg_verdict_clear(struct sg_verdict *v);

/*
 * The verdict of `ev` refused with `act` (reject, tempfail, close) at
 * `stage`: codes and text from the event's reply row, the template's
 * <name>s from `args` (NULL: none). Values are made safe for a reply
 * line: control bytes, 8-bit bytes, '%' and '\' become '_'. A text too
 * long is cut; the event ID after it always stays.
 */
void sg_verdict_set(struct sg_verdict *v, enum sg_event ev,
                    enum sg_action act, enum sg_stage stage,
                    const struct sg_args *args);

/* While the daemon stops: 421 4.3.2, no event (nothing was checked). */
void sg_verdict_shutting_down(struct sg_verdict *v);

/*
 * Whether `ev` has a reply row, and which actions it gives codes of their
 * own (the others take the defaults).
 */
bool sg_verdict_row(enum sg_event ev, bool *reject, bool *tempfail);

/*
 * The reply row for people (the log reference): "550 5.7.1 TEXT" for each
 * action that has codes of its own or the default, the template as it is.
 * Returns the length written, as snprintf().
 */
int sg_verdict_describe(enum sg_event ev, enum sg_action act, char *buf,
                        size_t size);

#endif /* SG_VERDICT_H */
