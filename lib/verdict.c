/*
 * verdict.c - SMTP replies from the catalogue's reply rows (events.def)
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "verdict.h"

struct reply {
    const char *reject, *tempfail;      /* "CODE X.Y.Z" or "" */
    const char *text;                   /* template */
};

static const struct reply replies[SG_EV_COUNT] = {
#define SG_REPLY(sym, reject, tempfail, text) \
    [SG_EV_##sym] = { reject, tempfail, text },
#include "events.def"
#undef SG_REPLY
};

static const char fallback[] = "Temporary local problem, try again later";

void sg_verdict_clear(struct sg_verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->action = SG_ACT_NONE;
}

/* codes - "CODE X.Y.Z" of `ev` for `act` at `stage`, split */
static void codes(enum sg_event ev, enum sg_action act, enum sg_stage stage,
                  char *code, size_t csize, char *xcode, size_t xsize)
{
    const struct reply *r = &replies[ev];
    const char *row = act == SG_ACT_REJECT ? r->reject
        : act == SG_ACT_TEMPFAIL ? r->tempfail : NULL;
    const char *dflt;

    if (act == SG_ACT_CLOSE)
        dflt = "421 4.7.0";
    else if (act == SG_ACT_TEMPFAIL)
        dflt = sg_event_def(ev)->facility == SG_FAC_SYSTEM ? "451 4.3.0"
            : "451 4.7.1";
    else
        dflt = stage == SG_STAGE_CONNECT ? "554 5.7.1" : "550 5.7.1";
    if (row == NULL || *row == '\0')
        row = dflt;
    snprintf(code, csize, "%.3s", row);
    snprintf(xcode, xsize, "%s", row[3] == ' ' ? row + 4 : "");
    /* RFC 3463: X.1.3 is a bad destination address, X.1.7 a bad sender
     * address: a syntax refusal at MAIL names the sender. */
    if (stage == SG_STAGE_MAIL && strcmp(xcode + 1, ".1.3") == 0)
        xcode[4] = '7';
}

/* safe - a value as a reply line may carry it */
static void safe(char *out, size_t size, size_t *len, const char *in)
{
    for (; *in != '\0' && *len + 1 < size; in++) {
        unsigned char c = (unsigned char) *in;

        out[(*len)++] = c < ' ' || c > '~' || c == '%' || c == '\\' ? '_'
            : (char) c;
    }
    out[*len] = '\0';
}

/* group_end - the '}' closing the '{' before t, and the top-level '|' */
static const char *group_end(const char *t, const char **bar)
{
    int depth = 0;

    *bar = NULL;
    for (; *t != '\0'; t++) {
        if (*t == '{')
            depth++;
        else if (*t == '}' && depth-- == 0)
            return t;
        else if (*t == '|' && depth == 0 && *bar == NULL)
            *bar = t;
    }
    return t;
}

/*
 * render - template [t, end) into out; *missing when a <name> in it had no
 * value (an optional group then drops what it rendered)
 */
static void render(const char *t, const char *end, const struct sg_args *args,
                   char *out, size_t size, size_t *len, bool *missing)
{
    while (t < end && *t != '\0') {
        if (*t == '<') {
            const char *close = memchr(t, '>', (size_t) (end - t));
            char name[32];
            const char *val;

            if (close == NULL || (size_t) (close - t - 1) >= sizeof(name))
                goto literal;
            memcpy(name, t + 1, (size_t) (close - t - 1));
            name[close - t - 1] = '\0';
            val = args != NULL ? sg_args_get(args, name) : NULL;
            if (val == NULL || *val == '\0')
                *missing = true;
            else
                safe(out, size, len, val);
            t = close + 1;
            continue;
        }
        if (*t == '{') {
            const char *bar, *close = group_end(t + 1, &bar);
            size_t mark = *len;
            bool gone = false;

            render(t + 1, bar != NULL ? bar : close, args, out, size, len,
                   &gone);
            if (gone) {
                *len = mark;
                out[mark] = '\0';
                if (bar != NULL)
                    render(bar + 1, close, args, out, size, len, missing);
            }
            t = *close != '\0' ? close + 1 : close;
            continue;
        }
literal:
        if (*len + 1 < size) {
            out[(*len)++] = *t;
            out[*len] = '\0';
        }
        t++;
    }
}

void sg_verdict_set(struct sg_verdict *v, enum sg_event ev,
                    enum sg_action act, enum sg_stage stage,
                    const struct sg_args *args)
{
    const char *tpl = replies[ev].text != NULL ? replies[ev].text : fallback;
    char text[512], suffix[32];
    size_t len = 0, room;
    bool missing = false;

    v->action = act;
    v->event = ev;
    codes(ev, act, stage, v->code, sizeof(v->code), v->xcode,
          sizeof(v->xcode));
    text[0] = '\0';
    render(tpl, tpl + strlen(tpl), args, text, sizeof(text), &len,
           &missing);
    snprintf(suffix, sizeof(suffix), " [smtpguard %s]", sg_event_def(ev)->id);
    room = sizeof(v->text) - strlen(suffix);
    snprintf(v->text, room, "%s", text);
    memcpy(v->text + strlen(v->text), suffix, strlen(suffix) + 1);
}

void sg_verdict_shutting_down(struct sg_verdict *v)
{
    sg_verdict_clear(v);
    v->action = SG_ACT_CLOSE;
    snprintf(v->code, sizeof(v->code), "421");
    snprintf(v->xcode, sizeof(v->xcode), "4.3.2");
    snprintf(v->text, sizeof(v->text), "Policy service restarting, try "
             "again later");
}

bool sg_verdict_row(enum sg_event ev, bool *reject, bool *tempfail)
{
    const struct reply *r = &replies[ev];

    *reject = r->reject != NULL && *r->reject != '\0';
    *tempfail = r->tempfail != NULL && *r->tempfail != '\0';
    return r->text != NULL;
}

int sg_verdict_describe(enum sg_event ev, enum sg_action act, char *buf,
                        size_t size)
{
    const char *tpl = replies[ev].text != NULL ? replies[ev].text : fallback;
    char code[4], xcode[8];

    codes(ev, act, SG_STAGE_OTHER, code, sizeof(code), xcode, sizeof(xcode));
    return snprintf(buf, size, "%s %s %s [smtpguard %s]", code, xcode, tpl,
                    sg_event_def(ev)->id);
}
