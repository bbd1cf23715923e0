/*
 * log.h - render catalogue events as one log line and hand them to a sink
 *
 * Line shape (fixed, like Postfix's log_whatsup(), so analyzers can rely on
 * it):
 *
 *   <queue-id|NOQUEUE>: id=<ID> event=<name> severity=<sev> action=<act>
 *       [client=<addr>] [service=<svc>] [session=<hex>] <param>=<value>...
 *       msg="<rendered message>"
 *
 * All on one line. Values that come from SMTP clients or the database are
 * escaped: a value with characters outside a safe set is double-quoted, and
 * quotes, backslashes and control characters (CR, LF, NUL...) are written
 * as \" \\ \xHH, so a hostile HELO cannot forge a line.
 *
 * The library never calls syslog(): the daemon installs a sink that does,
 * tests install one that captures. Severity filtering happens here.
 * Thread-safety: sg_log_event() is reentrant; the sink must be too.
 */
#ifndef SG_LOG_H
#define SG_LOG_H

#include <stdarg.h>
#include <stdatomic.h>

#include "catalogue.h"

#define SG_ARGS_MAX 10
#define SG_ARG_VALUE_MAX 256
#define SG_LOG_LINE_MAX 4096

typedef void (*sg_log_sink_fn)(void *arg, enum sg_severity sev,
                               const char *line);

struct sg_log {
    sg_log_sink_fn sink;
    void *arg;
    atomic_int max_severity;    /* log events at or above this priority */
};

/* Where an event happened: any field may be NULL / 0. */
struct sg_log_ctx {
    const char *queue_id;
    const char *client;
    const char *service;
    unsigned long session;
};

/* Named parameters of one event. Values are copied (and truncated). */
struct sg_args {
    unsigned n;
    struct {
        const char *key;
        char value[SG_ARG_VALUE_MAX];
    } a[SG_ARGS_MAX];
};

void sg_args_init(struct sg_args *args);
void sg_args_add(struct sg_args *args, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *sg_args_get(const struct sg_args *args, const char *key);

/*
 * Log event `ev` with the action actually taken (`act`; SG_ACT_COUNT means
 * the catalogue's effective action). Missing parameters render as "-".
 */
void sg_log_event(const struct sg_log *log, enum sg_event ev,
                  enum sg_action act, const struct sg_log_ctx *ctx,
                  const struct sg_args *args);

/* Render into `buf` without filtering or emitting; returns the length. */
size_t sg_log_render(char *buf, size_t size, enum sg_event ev,
                     enum sg_action act, const struct sg_log_ctx *ctx,
                     const struct sg_args *args);

/* Render the message template alone ("Maximum number ... (64) ..."). */
size_t sg_log_render_message(char *buf, size_t size, enum sg_event ev,
                             const struct sg_args *args);

#endif /* SG_LOG_H */
