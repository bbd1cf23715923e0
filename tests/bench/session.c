/*
 * session.c - the MTA side of one milter session.
 *
 * Protocol notes (Postfix milter8.c and libmilter engine.c behaviour):
 *  - OPTNEG: we offer version 6, actions 0x1FF and protocol 0x1FFFFF like
 *    Postfix; the milter answers with what it wants. Its protocol flags
 *    say which events not to send (SMFIP_NO*) and which events it will
 *    not answer (SMFIP_NR_*). Extra data after the 12 bytes is a list of
 *    (u32 macro stage, "names") pairs: macro lists set by smfi_setsymlist,
 *    which replace the MTA's lists for those stages.
 *  - Each event is preceded by SMFIC_MACRO, sent even when the event
 *    itself is not (Postfix does the same). Postfix also sends the EOH
 *    macros before every header and the EOM macros before every body
 *    chunk; libmilter ignores macro packets for those commands.
 *  - SMFIC_MACRO, SMFIC_ABORT and SMFIC_QUIT get no reply. Others get
 *    zero or more SMFIR_PROGRESS, (at end of message) modification
 *    requests, then one decision: continue, accept, reject, tempfail,
 *    discard, skip, replycode "4xx/5xx text", or shutdown/conn_fail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessionint.h"

/* ---- macros ---------------------------------------------------------- */

/* Is `name` in the milter's list for the stage? Braces are ignored, so
 * "{client_addr}" matches "client_addr". */
static int symlist_has(const char *list, const char *name)
{
    size_t nlen;
    const char *p = list;

    if (*name == '{')
        name++;
    nlen = strcspn(name, "}");
    while (*p != '\0') {
        size_t len;

        p += strspn(p, " ,\t");
        if (*p == '{')
            p++;
        len = strcspn(p, "} ,\t");
        if (len == nlen && len > 0 && strncmp(p, name, len) == 0)
            return 1;
        p += len;
        p += strspn(p, "}");
    }
    return 0;
}

static int is_extra(const struct lc_config *cfg, const char *name)
{
    size_t i;

    for (i = 0; i < cfg->nmacros; i++)
        if (cfg->macros[i].name == name)
            return 1;
    return 0;
}

/* SMFIC_MACRO: the command byte of the event, then name\0value\0 pairs. */
static void send_macros(struct sess *s, char cmd, int stage,
                        const char *rcpt)
{
    struct lc_kv kv[48];
    int n = lc_stage_macros(s->cfg, &s->id, stage, rcpt, kv, 48), i;
    const char *list = s->symlist[stage];

    if (n < 0)
        return;
    mp_begin(s->c, SMFIC_MACRO);
    mp_put(s->c, &cmd, 1);
    for (i = 0; i < n; i++) {
        if (list != NULL && !symlist_has(list, kv[i].name) &&
            !is_extra(s->cfg, kv[i].name))
            continue;
        mp_put_str(s->c, kv[i].name);
        mp_put_str(s->c, kv[i].value);
    }
    mp_end(s->c);
}

/* Start an event: honour SMFIR_SKIP, send its macros (stage < 0: none),
 * then honour SMFIP_NO*. Returns 1 when the event itself is to be sent. */
static int begin_event(struct sess *s, const char *name, char cmd,
                       int stage, const char *rcpt, uint32_t noflag,
                       const char *what)
{
    if (s->skip_cmd != 0) {
        if (s->skip_cmd == cmd) {
            sess_trace_stage(s, name, "skipped", NULL, what);
            return 0;
        }
        s->skip_cmd = 0;
    }
    if (stage >= 0)
        send_macros(s, cmd, stage, rcpt);
    if ((s->pflags & noflag) != 0) {
        sess_trace_stage(s, name, "notsent", NULL, what);
        return 0;
    }
    return 1;
}

/* ---- stages ------------------------------------------------------------ */

/* Map a decision to the end of the session, or 0 to go on. Accept ends
 * the milter's part (connection or message accepted). */
static int ends(enum verdict v, enum lc_outcome *o)
{
    switch (v) {
    case V_ACCEPT: *o = LC_ACCEPTED; return 1;
    case V_REJECT: *o = LC_REJECTED; return 1;
    case V_TEMPFAIL: *o = LC_TEMPFAILED; return 1;
    case V_DISCARD: *o = LC_DISCARDED; return 1;
    case V_CLOSED: *o = LC_CLOSED; return 1;
    case V_ERROR: *o = LC_ERROR; return 1;
    default: return 0;
    }
}

static enum verdict ev_connect(struct sess *s)
{
    if (!begin_event(s, "connect", SMFIC_CONNECT, MP_M_CONNECT, NULL,
                     SMFIP_NOCONNECT, NULL))
        return V_NOTSENT;
    /* host\0, family '4'/'6', port (u16, network order), address\0 */
    mp_begin(s->c, SMFIC_CONNECT);
    mp_put_str(s->c, s->id.conn_host);
    mp_put(s->c, s->id.v6 ? "6" : "4", 1);
    mp_put_u16(s->c, (uint16_t)atoi(s->id.port));
    mp_put_str(s->c, s->id.addr);
    mp_end(s->c);
    return sess_get_reply(s, "connect", SMFIC_CONNECT, SMFIP_NR_CONN, NULL);
}

static enum verdict ev_string(struct sess *s, const char *name, char cmd,
                              int stage, uint32_t noflag, uint32_t nrflag,
                              const char *arg, const char *what)
{
    if (!begin_event(s, name, cmd, stage, NULL, noflag, what))
        return V_NOTSENT;
    mp_begin(s->c, cmd);
    mp_put_str(s->c, arg);
    mp_end(s->c);
    return sess_get_reply(s, name, cmd, nrflag, what);
}

/* MAIL and RCPT: "<addr>\0" then ESMTP parameters, one string each. */
static enum verdict ev_envelope(struct sess *s, int rcpt, const char *addr)
{
    char what[300], arg[300];
    char cmd = rcpt ? SMFIC_RCPT : SMFIC_MAIL;
    const char *name = rcpt ? "rcpt" : "mail";

    snprintf(what, sizeof what, " %s=<%s>", name, addr);
    if (!begin_event(s, name, cmd, rcpt ? MP_M_RCPT : MP_M_MAIL, addr,
                     rcpt ? SMFIP_NORCPT : SMFIP_NOMAIL, what))
        return V_NOTSENT;
    snprintf(arg, sizeof arg, "<%s>", addr);
    mp_begin(s->c, cmd);
    mp_put_str(s->c, arg);
    if (!rcpt) {
        mp_put_str(s->c, "SIZE=1500");
        mp_put_str(s->c, "BODY=8BITMIME");
    }
    mp_end(s->c);
    return sess_get_reply(s, name, cmd,
                          rcpt ? SMFIP_NR_RCPT : SMFIP_NR_MAIL, what);
}

static enum verdict ev_empty(struct sess *s, const char *name, char cmd,
                             int stage, uint32_t noflag, uint32_t nrflag)
{
    if (!begin_event(s, name, cmd, stage, NULL, noflag, NULL))
        return V_NOTSENT;
    mp_simple(s->c, cmd);
    return sess_get_reply(s, name, cmd, nrflag, NULL);
}

static int postfix(const struct sess *s)
{
    return s->cfg->mode == LC_POSTFIX;
}

static enum verdict ev_headers(struct sess *s)
{
    struct lc_kv h[16];
    char scratch[2048], what[80];
    size_t n = lc_headers(s->cfg, &s->id, h, 16, scratch, sizeof scratch);
    size_t i;
    enum verdict v;
    enum lc_outcome o;

    for (i = 0; i < n; i++) {
        snprintf(what, sizeof what, " header=%s", h[i].name);
        if (!begin_event(s, "header", SMFIC_HEADER,
                         postfix(s) ? MP_M_EOH : -1, NULL, SMFIP_NOHDRS,
                         what))
            continue;
        mp_begin(s->c, SMFIC_HEADER);
        mp_put_str(s->c, h[i].name);
        if (s->pflags & SMFIP_HDR_LEADSPC) /* else the MTA eats it */
            mp_put(s->c, " ", 1);
        mp_put_str(s->c, h[i].value);
        mp_end(s->c);
        v = sess_get_reply(s, "header", SMFIC_HEADER, SMFIP_NR_HDR, what);
        if (ends(v, &o))
            return v;
    }
    return V_CONTINUE;
}

static enum verdict ev_body(struct sess *s)
{
    size_t len, off, n;
    const char *body = lc_body(&len);
    enum verdict v;
    enum lc_outcome o;

    for (off = 0; off < len; off += n) {
        n = len - off < MP_BODY_CHUNK ? len - off : MP_BODY_CHUNK;
        if (!begin_event(s, "body", SMFIC_BODY, postfix(s) ? MP_M_EOM : -1,
                         NULL, SMFIP_NOBODY, NULL))
            break;
        mp_begin(s->c, SMFIC_BODY);
        mp_put(s->c, body + off, n);
        mp_end(s->c);
        v = sess_get_reply(s, "body", SMFIC_BODY, SMFIP_NR_BODY, NULL);
        if (ends(v, &o))
            return v;
    }
    return V_CONTINUE;
}

/* RCPT for every recipient: a rejected one does not end the session
 * unless no recipient is left. */
static int rcpt_stage(struct sess *s, enum lc_outcome *o)
{
    unsigned j, ok = 0, tempfailed = 0;
    char rcpt[256];

    for (j = 0; j < s->cfg->rcpts; j++) {
        enum verdict v = ev_envelope(
            s, 1, lc_rcpt(s->cfg, &s->id, j, rcpt, sizeof rcpt));

        if (v == V_REJECT)
            continue;
        if (v == V_TEMPFAIL) {
            tempfailed++;
            continue;
        }
        if (ends(v, o))
            return 1;
        ok++;
    }
    if (ok > 0)
        return 0;
    *o = tempfailed > 0 ? LC_TEMPFAILED : LC_REJECTED;
    return 1;
}

static enum lc_outcome run(struct sess *s)
{
    enum lc_outcome o;
    enum verdict v;
    size_t i;

    if (sess_negotiate(s) < 0)
        return LC_ERROR;
    /* Discard makes no sense for a connection: Postfix ignores it there. */
    v = ev_connect(s);
    if (v != V_DISCARD && ends(v, &o))
        return o;
    v = ev_string(s, "helo", SMFIC_HELO, MP_M_HELO, SMFIP_NOHELO,
                  SMFIP_NR_HELO, s->id.helo, NULL);
    if (v != V_DISCARD && ends(v, &o))
        return o;
    for (i = 0; i < s->cfg->nunknown; i++) {
        /* A rejected unknown command only fails that command. */
        v = ev_string(s, "unknown", SMFIC_UNKNOWN, -1, SMFIP_NOUNKNOWN,
                      SMFIP_NR_UNKN, s->cfg->unknown[i], NULL);
        if ((v == V_CLOSED || v == V_ERROR) && ends(v, &o))
            return o;
    }
    s->in_msg = 1;
    if (ends(ev_envelope(s, 0, s->id.sender), &o) || rcpt_stage(s, &o))
        return o;
    if (ends(ev_empty(s, "data", SMFIC_DATA, MP_M_DATA, SMFIP_NODATA,
                      SMFIP_NR_DATA), &o) ||
        ends(ev_headers(s), &o) ||
        ends(ev_empty(s, "eoh", SMFIC_EOH, MP_M_EOH, SMFIP_NOEOH,
                      SMFIP_NR_EOH), &o) ||
        ends(ev_body(s), &o))
        return o;
    s->skip_cmd = 0;
    v = ev_empty(s, "eom", SMFIC_BODYEOB, MP_M_EOM, 0, 0);
    s->in_msg = 0; /* the decision at end of message ends the transaction */
    if (ends(v, &o))
        return o;
    return LC_ACCEPTED;
}

const char *lc_outcome_name(enum lc_outcome o)
{
    static const char *const names[LC_NOUTCOMES] = {
        "accepted", "rejected", "tempfailed", "discarded", "closed", "error"};

    return (unsigned)o < LC_NOUTCOMES ? names[o] : "?";
}

enum lc_outcome lc_session(const struct lc_config *cfg, uint64_t seq,
                           struct mp_conn *c, struct lc_trace *tr,
                           char *err, size_t errlen)
{
    struct sess s;
    enum lc_outcome o;
    int i;

    memset(&s, 0, sizeof s);
    s.cfg = cfg;
    s.c = c;
    s.tr = tr;
    s.err = err;
    s.errlen = errlen;
    err[0] = '\0';
    lc_ident_make(cfg, seq, &s.id);
    if (cfg->trace)
        lc_trace_add(tr, "session=%llu client=%s port=%s name=%s helo=%s "
                     "sender=<%s>\n", (unsigned long long)seq, s.id.addr,
                     s.id.port, s.id.name, s.id.helo, s.id.sender);
    if (mp_connect(c, &cfg->addr) < 0) {
        sess_fail(&s, "connect", "%s", c->err);
        o = LC_ERROR;
    } else {
        o = run(&s);
    }
    if (o != LC_ERROR) {
        if (s.in_msg) /* transaction ended early */
            mp_simple(c, SMFIC_ABORT);
        mp_simple(c, SMFIC_QUIT);
        /* Wait for the milter to close: its close callback is part of
         * the session, and the TIME_WAIT state ends up on its side. */
        if (mp_wait_close(c) < 0) {
            sess_fail(&s, "quit", "%s", c->err);
            o = LC_ERROR;
        }
    }
    mp_close(c);
    for (i = 0; i < MP_M_COUNT; i++)
        free(s.symlist[i]);
    if (cfg->trace)
        lc_trace_add(tr, "session=%llu result=%s\n", (unsigned long long)seq,
                     lc_outcome_name(o));
    return o;
}

