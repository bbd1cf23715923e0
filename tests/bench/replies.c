/*
 * replies.c - what the milter answers: option negotiation, decisions and
 * end-of-message modification requests, and the trace output.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessionint.h"

/* ---- trace ----------------------------------------------------------- */

void lc_trace_add(struct lc_trace *tr, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        size_t room = tr->cap - tr->len;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(tr->buf ? tr->buf + tr->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            tr->len += (size_t)n;
            return;
        }
        tr->cap = (tr->cap + (size_t)n + 1) * 2;
        tr->buf = realloc(tr->buf, tr->cap);
        if (tr->buf == NULL)
            abort();
    }
}

void lc_trace_quoted(struct lc_trace *tr, const char *s, size_t n)
{
    size_t i;

    lc_trace_add(tr, "\"");
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch == '"' || ch == '\\')
            lc_trace_add(tr, "\\%c", ch);
        else if (ch == '\r')
            lc_trace_add(tr, "\\r");
        else if (ch == '\n')
            lc_trace_add(tr, "\\n");
        else if (ch == '\t')
            lc_trace_add(tr, "\\t");
        else if (ch < 0x20 || ch >= 0x7f)
            lc_trace_add(tr, "\\x%02x", ch);
        else
            lc_trace_add(tr, "%c", ch);
    }
    lc_trace_add(tr, "\"");
}

void sess_trace_stage(struct sess *s, const char *stage, const char *reply,
                      const char *code, const char *what)
{
    if (!s->cfg->trace)
        return;
    lc_trace_add(s->tr, "stage=%s reply=%s", stage, reply);
    if (code != NULL) {
        lc_trace_add(s->tr, " code=");
        lc_trace_quoted(s->tr, code, strlen(code));
    }
    lc_trace_add(s->tr, "%s\n", what != NULL ? what : "");
}

enum verdict sess_fail(struct sess *s, const char *stage, const char *fmt,
                       ...)
{
    va_list ap;
    int n = snprintf(s->err, s->errlen, "%s: ", stage);

    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < s->errlen)
        vsnprintf(s->err + n, s->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    if (s->cfg->trace) {
        lc_trace_add(s->tr, "stage=%s reply=error error=", stage);
        lc_trace_quoted(s->tr, s->err, strlen(s->err));
        lc_trace_add(s->tr, "\n");
    }
    return V_ERROR;
}

/* ---- reading reply payloads ------------------------------------------ */

struct rd {
    const unsigned char *p;
    size_t left;
};

static int rd_str(struct rd *r, const char **str, size_t *len)
{
    const unsigned char *nul = memchr(r->p, '\0', r->left);

    if (nul == NULL)
        return -1;
    *str = (const char *)r->p;
    *len = (size_t)(nul - r->p);
    r->left -= *len + 1;
    r->p = nul + 1;
    return 0;
}

static int rd_u32(struct rd *r, uint32_t *v)
{
    if (r->left < 4)
        return -1;
    *v = mp_get_u32(r->p);
    r->p += 4;
    r->left -= 4;
    return 0;
}

/* ---- negotiation ----------------------------------------------------- */

static int store_symlists(struct sess *s, struct rd *r)
{
    while (r->left > 0) {
        uint32_t idx;
        const char *names;
        size_t len;

        if (rd_u32(r, &idx) < 0 || rd_str(r, &names, &len) < 0)
            return -1;
        if (idx >= MP_M_COUNT)
            continue; /* unknown stage: ignored, as Postfix does */
        free(s->symlist[idx]);
        s->symlist[idx] = strndup(names, len);
        if (s->cfg->trace) {
            lc_trace_add(s->tr, "stage=optneg symlist=%u macros=",
                         (unsigned)idx);
            lc_trace_quoted(s->tr, names, len);
            lc_trace_add(s->tr, "\n");
        }
    }
    return 0;
}

/* Check the milter's OPTNEG answer; NULL if acceptable. */
static const char *check_optneg(const struct sess *s, char *buf, size_t len)
{
    uint32_t known = MP_OFFER_PROTOCOL | SMFIP_MDS_256K | SMFIP_MDS_1M;

    if (s->version < 2 || s->version > MP_OFFER_VERSION)
        snprintf(buf, len, "unsupported version %u", s->version);
    else if ((s->actions & ~MP_OFFER_ACTIONS) != 0)
        snprintf(buf, len, "actions 0x%x not offered", s->actions);
    else if ((s->pflags & ~known) != 0)
        snprintf(buf, len, "protocol flags 0x%x not offered", s->pflags);
    else
        return NULL;
    return buf;
}

int sess_negotiate(struct sess *s)
{
    struct mp_packet p;
    struct rd r;
    char buf[80];
    const char *problem;

    mp_begin(s->c, SMFIC_OPTNEG);
    mp_put_u32(s->c, MP_OFFER_VERSION);
    mp_put_u32(s->c, MP_OFFER_ACTIONS);
    mp_put_u32(s->c, MP_OFFER_PROTOCOL);
    mp_end(s->c);
    if (mp_read(s->c, &p) < 0) {
        sess_fail(s, "optneg", "%s", s->c->err);
        return -1;
    }
    if (p.cmd != SMFIC_OPTNEG || p.len < 12) {
        sess_fail(s, "optneg", "unexpected reply '%c' (%zu bytes)", p.cmd,
                  p.len);
        return -1;
    }
    r.p = p.data;
    r.left = p.len;
    rd_u32(&r, &s->version);
    rd_u32(&r, &s->actions);
    rd_u32(&r, &s->pflags);
    if ((problem = check_optneg(s, buf, sizeof buf)) != NULL) {
        sess_fail(s, "optneg", "%s", problem);
        return -1;
    }
    if (s->cfg->trace)
        lc_trace_add(s->tr,
                     "stage=optneg reply=ok version=%u actions=0x%03x "
                     "protocol=0x%06x\n", s->version, s->actions, s->pflags);
    if (store_symlists(s, &r) < 0) {
        sess_fail(s, "optneg", "malformed macro list");
        return -1;
    }
    /* Events that do not exist in an older protocol are not sent. */
    if (s->version < 3)
        s->pflags |= SMFIP_NOUNKNOWN;
    if (s->version < 4)
        s->pflags |= SMFIP_NODATA;
    return 0;
}

/* ---- replies ---------------------------------------------------------- */

static enum verdict replycode(struct sess *s, const char *stage,
                              const struct mp_packet *p, const char *what)
{
    const char *t = (const char *)p->data;
    enum verdict v;

    /* "ddd[ -]text\0", first digit 4 or 5, as Postfix checks it. */
    if (p->len < 5 || p->data[p->len - 1] != '\0' ||
        (t[0] != '4' && t[0] != '5') || t[1] < '0' || t[1] > '9' ||
        t[2] < '0' || t[2] > '9' || (t[3] != ' ' && t[3] != '-'))
        return sess_fail(s, stage, "malformed reply code \"%.*s\"",
                         (int)(p->len > 60 ? 60 : p->len), t);
    if (strncmp(t, "421", 3) == 0)
        v = V_CLOSED;
    else
        v = t[0] == '4' ? V_TEMPFAIL : V_REJECT;
    sess_trace_stage(s, stage, t[0] == '4' ? "tempfail" : "reject", t, what);
    return v;
}

/* The action flag that allows a modification request. */
static uint32_t mod_action(char cmd)
{
    switch (cmd) {
    case SMFIR_ADDHEADER: case SMFIR_INSHEADER: return 0x01;
    case SMFIR_REPLBODY: return 0x02;
    case SMFIR_ADDRCPT: return 0x04;
    case SMFIR_DELRCPT: return 0x08;
    case SMFIR_CHGHEADER: return 0x10;
    case SMFIR_QUARANTINE: return 0x20;
    case SMFIR_CHGFROM: return 0x40;
    case SMFIR_ADDRCPT_PAR: return 0x80;
    default: return 0;
    }
}

static const char *mod_name(char cmd)
{
    switch (cmd) {
    case SMFIR_ADDHEADER: return "addheader";
    case SMFIR_INSHEADER: return "insheader";
    case SMFIR_CHGHEADER: return "chgheader";
    case SMFIR_REPLBODY: return "replbody";
    case SMFIR_ADDRCPT: return "addrcpt";
    case SMFIR_ADDRCPT_PAR: return "addrcpt_par";
    case SMFIR_DELRCPT: return "delrcpt";
    case SMFIR_CHGFROM: return "chgfrom";
    default: return "quarantine";
    }
}

/* Parse (and trace) one modification request; they are only collected. */
static int modification(struct sess *s, const char *stage,
                        const struct mp_packet *p)
{
    struct rd r = {p->data, p->len};
    const char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    uint32_t idx = 0;
    int bad = 0;

    if ((s->actions & mod_action(p->cmd)) == 0) {
        sess_fail(s, stage, "%s request without negotiated action",
                  mod_name(p->cmd));
        return -1;
    }
    if (p->cmd == SMFIR_REPLBODY) {
        r.left = 0; /* raw body bytes */
    } else {
        /* [u32 index,] string [, string] */
        if (p->cmd == SMFIR_INSHEADER || p->cmd == SMFIR_CHGHEADER)
            bad |= rd_u32(&r, &idx);
        if (!bad)
            bad |= rd_str(&r, &a, &alen);
        if (!bad && r.left > 0)
            bad |= rd_str(&r, &b, &blen);
    }
    if (bad || r.left != 0) {
        sess_fail(s, stage, "malformed %s request", mod_name(p->cmd));
        return -1;
    }
    if (s->cfg->trace) {
        lc_trace_add(s->tr, "stage=%s action=%s", stage, mod_name(p->cmd));
        if (p->cmd == SMFIR_INSHEADER || p->cmd == SMFIR_CHGHEADER)
            lc_trace_add(s->tr, " index=%u", (unsigned)idx);
        if (p->cmd == SMFIR_REPLBODY)
            lc_trace_add(s->tr, " bytes=%zu", p->len);
        if (a != NULL) {
            lc_trace_add(s->tr, " arg=");
            lc_trace_quoted(s->tr, a, alen);
        }
        if (b != NULL) {
            lc_trace_add(s->tr, " value=");
            lc_trace_quoted(s->tr, b, blen);
        }
        lc_trace_add(s->tr, "\n");
    }
    return 0;
}

static enum verdict simple_reply(struct sess *s, const char *stage,
                                 const struct mp_packet *p, enum verdict v,
                                 const char *word, const char *what)
{
    if (p->len != 0)
        return sess_fail(s, stage, "reply '%c' followed by %zu data bytes",
                         p->cmd, p->len);
    sess_trace_stage(s, stage, word, NULL, what);
    return v;
}

/* Read replies until a decision. `event` is the command just sent. */
enum verdict sess_get_reply(struct sess *s, const char *stage, char event,
                            uint32_t nrflag, const char *what)
{
    struct mp_packet p;

    if ((s->pflags & nrflag) != 0) {
        sess_trace_stage(s, stage, "noreply", NULL, what);
        return V_NONE;
    }
    for (;;) {
        if (mp_read(s->c, &p) < 0)
            return sess_fail(s, stage, "%s", s->c->err);
        switch (p.cmd) {
        case SMFIR_PROGRESS:
            if (p.len != 0)
                return sess_fail(s, stage, "progress with %zu data bytes",
                                 p.len);
            continue; /* still working: wait for the decision */
        case SMFIR_CONTINUE:
            return simple_reply(s, stage, &p, V_CONTINUE, "continue", what);
        case SMFIR_ACCEPT:
            return simple_reply(s, stage, &p, V_ACCEPT, "accept", what);
        case SMFIR_REJECT:
            return simple_reply(s, stage, &p, V_REJECT, "reject", what);
        case SMFIR_TEMPFAIL:
            return simple_reply(s, stage, &p, V_TEMPFAIL, "tempfail", what);
        case SMFIR_DISCARD:
            return simple_reply(s, stage, &p, V_DISCARD, "discard", what);
        case SMFIR_SHUTDOWN:
            return simple_reply(s, stage, &p, V_CLOSED, "shutdown", what);
        case SMFIR_CONN_FAIL:
            return simple_reply(s, stage, &p, V_CLOSED, "conn_fail", what);
        case SMFIR_SKIP:
            s->skip_cmd = event;
            return simple_reply(s, stage, &p, V_SKIP, "skip", what);
        case SMFIR_REPLYCODE:
            return replycode(s, stage, &p, what);
        case SMFIR_QUARANTINE: /* allowed at any stage; not a decision */
            if (modification(s, stage, &p) < 0)
                return V_ERROR;
            continue;
        default:
            if (event == SMFIC_BODYEOB && mod_action(p.cmd) != 0) {
                if (modification(s, stage, &p) < 0)
                    return V_ERROR;
                continue;
            }
            return sess_fail(s, stage, "unexpected reply '%c' (0x%02x)",
                             p.cmd, (unsigned char)p.cmd);
        }
    }
}

