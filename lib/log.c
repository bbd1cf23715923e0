/*
 * log.c - catalogue event rendering
 *
 * Input trust: parameter values may hold anything an SMTP client sent;
 * everything written into the line goes through put_value() or put_text().
 */
#include <stdio.h>
#include <string.h>

#include "log.h"

/* A bounded output cursor; `len` may exceed `size` (truncation). */
struct out {
    char *buf;
    size_t size;
    size_t len;
};

/* put_mem - append n bytes, as many as fit before the terminating NUL */
static void put_mem(struct out *o, const char *s, size_t n)
{
    if (o->len + 1 < o->size) {
        size_t room = o->size - 1 - o->len;

        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void put_char(struct out *o, char c)
{
    put_mem(o, &c, 1);
}

static void put_str(struct out *o, const char *s)
{
    put_mem(o, s, strlen(s));
}

/* What put_escaped() escapes; the NUL ends the string anyway. */
static const char escaped[] = "\"\\"
    "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
    "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f"
    "\x7f";

/* put_escaped - copy at most n bytes of `s`, escaping quote, backslash and
 * control bytes; the runs between them go in whole. */
static void put_escaped(struct out *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0;

    while (i < n && s[i]) {
        size_t run = strcspn(s + i, escaped);
        unsigned char c;

        if (run > n - i)
            run = n - i;
        put_mem(o, s + i, run);
        if ((i += run) == n || (c = (unsigned char) s[i]) == '\0')
            break;
        if (c == '"' || c == '\\') {
            put_char(o, '\\');
            put_char(o, (char) c);
        } else {
            char x[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };

            put_mem(o, x, sizeof(x));
        }
        i++;
    }
}

/* The bytes of a value written bare. */
static const char safe_chars[] = "abcdefghijklmnopqrstuvwxyz"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@/+-[]<>,*";

/* put_value - a value bare when it is safe, else quoted and escaped */
static void put_value(struct out *o, const char *v)
{
    size_t n = strlen(v);

    if (n > 0 && strspn(v, safe_chars) == n) {
        put_mem(o, v, n);
        return;
    }
    put_char(o, '"');
    put_escaped(o, v, n);
    put_char(o, '"');
}

static void put_kv(struct out *o, const char *k, const char *v)
{
    put_char(o, ' ');
    put_str(o, k);
    put_char(o, '=');
    put_value(o, v);
}

static void terminate(struct out *o)
{
    if (o->size == 0)
        return;
    o->buf[o->len < o->size ? o->len : o->size - 1] = '\0';
}

void sg_args_init(struct sg_args *args)
{
    args->n = 0;
}

void sg_args_add(struct sg_args *args, const char *key, const char *fmt, ...)
{
    va_list ap;

    if (args->n >= SG_ARGS_MAX)
        return;
    args->a[args->n].key = key;
    va_start(ap, fmt);
    vsnprintf(args->a[args->n].value, SG_ARG_VALUE_MAX, fmt, ap);
    va_end(ap);
    args->n++;
}

const char *sg_args_get(const struct sg_args *args, const char *key)
{
    if (args == NULL)
        return NULL;
    for (unsigned i = 0; i < args->n; i++)
        if (strcmp(args->a[i].key, key) == 0)
            return args->a[i].value;
    return NULL;
}

/* render_message - expand <name> placeholders of the template */
static void render_message(struct out *o, const struct sg_event_def *def,
                           const struct sg_args *args)
{
    const char *p = def->message;

    while (*p) {
        const char *end;

        /* A placeholder is <name> with name of [a-z0-9_]; any other '<'
         * is text ("mail from <<sender>>" quotes an address). */
        if (*p == '<' && (end = strchr(p + 1, '>')) != NULL
            && end - p - 1 < 64 && end > p + 1
            && strspn(p + 1, "abcdefghijklmnopqrstuvwxyz0123456789_")
               == (size_t) (end - p - 1)) {
            char key[64];
            const char *v;

            memcpy(key, p + 1, (size_t) (end - p - 1));
            key[end - p - 1] = '\0';
            v = sg_args_get(args, key);
            put_escaped(o, v ? v : "-", v ? strlen(v) : 1);
            p = end + 1;
        } else {
            /* Text up to the next '<' after this byte, in one piece. */
            size_t run = 1 + strcspn(p + 1, "<");

            put_mem(o, p, run);
            p += run;
        }
    }
}

size_t sg_log_render_message(char *buf, size_t size, enum sg_event ev,
                             const struct sg_args *args)
{
    struct out o = { buf, size, 0 };

    render_message(&o, sg_event_def(ev), args);
    terminate(&o);
    return o.len;
}

/* put_params - the event's declared parameters, in catalogue order */
static void put_params(struct out *o, const struct sg_event_def *def,
                       const struct sg_args *args)
{
    const char *p = def->params;

    while (*p) {
        char key[64];
        size_t n = strcspn(p, " ");
        const char *v;

        if (n > 0 && n < sizeof(key)) {
            memcpy(key, p, n);
            key[n] = '\0';
            v = sg_args_get(args, key);
            put_kv(o, key, v ? v : "-");
        }
        p += n;
        while (*p == ' ')
            p++;
    }
}

size_t sg_log_render(char *buf, size_t size, enum sg_event ev,
                     enum sg_action act, const struct sg_log_ctx *ctx,
                     const struct sg_args *args)
{
    const struct sg_event_def *def = sg_event_def(ev);
    struct out o = { buf, size, 0 };
    char tmp[32];

    if (act == SG_ACT_COUNT)
        act = sg_event_action(ev);
    put_str(&o, ctx && ctx->queue_id && *ctx->queue_id ? "" : "NOQUEUE");
    if (ctx && ctx->queue_id && *ctx->queue_id)
        put_escaped(&o, ctx->queue_id, 32);
    put_char(&o, ':');
    put_kv(&o, "id", def->id);
    put_kv(&o, "event", def->name);
    put_kv(&o, "severity", sg_severity_name(sg_event_severity(ev)));
    put_kv(&o, "action", sg_action_name(act));
    if (ctx && ctx->client)
        put_kv(&o, "client", ctx->client);
    if (ctx && ctx->service)
        put_kv(&o, "service", ctx->service);
    if (ctx && ctx->session) {
        snprintf(tmp, sizeof(tmp), "%lx", ctx->session);
        put_kv(&o, "session", tmp);
    }
    put_params(&o, def, args);
    put_str(&o, " msg=\"");
    render_message(&o, def, args);
    put_char(&o, '"');
    terminate(&o);
    return o.len;
}

void sg_log_event(const struct sg_log *log, enum sg_event ev,
                  enum sg_action act, const struct sg_log_ctx *ctx,
                  const struct sg_args *args)
{
    char line[SG_LOG_LINE_MAX];
    enum sg_severity sev = sg_event_severity(ev);

    if (log == NULL || log->sink == NULL || (int) sev > atomic_load_explicit(&log->max_severity,
                                                memory_order_relaxed))
        return;
    sg_log_render(line, sizeof(line), ev, act, ctx, args);
    log->sink(log->arg, sev, line);
}
