/*
 * fuzz_milter.c - sequences of milter events fed to the library's session
 * API the way milter/callbacks.c feeds it, each input on an engine in its
 * starting state (fuzz_engine.h), DNS answered from memory (fakedns.h)
 *
 * Input: one event a line; an argument is what libmilter would hand the
 * callback, a C string (cut at the first NUL, as argv[0] is).
 *   C FAMILY ADDR PORT [HOST]  connect: FAMILY 4 or 6 (ADDR must parse, as
 *                   libmilter drops the connection otherwise), U (a unix
 *                   socket: the address comes from {client_addr}), - (no
 *                   address), or a number (an unknown family: the macro)
 *   H [HELO]  F [ARGS]  R [ARGS]  U [CMD]   HELO, MAIL, RCPT, unknown
 *   E  A  Q   end of message, abort, close
 *   X NAME [VALUE]  set the macro (no VALUE: unset) for what follows:
 *                   {client_addr} {daemon_name} j i {auth_authen}
 *                   {rcpt_mailer}
 *   S N       switch to connection N (0-7); each has its own session
 *   Z NAME TYPE DATA  a DNS record (fakedns.h)
 *   P NAME VALUE  a setting, written to the database; the engine reloads
 *                 before the next event that is not a P line
 *   W SECONDS  the clock moves;  T  one maintenance pass (a flush)
 *   N*EVENT   the event N times (P, T, X, S and Z once, as a repeat of
 *             them changes nothing more)
 * An input runs at most EVENTS_MAX events other than P, T, X, S and Z;
 * those past it are skipped. A 421 verdict drops its connection, as the
 * MTA disconnects on it (Postfix and Sendmail both do), so what follows on
 * that connection finds no session.
 * Every verdict must be well formed (a 4xx/5xx code, an enhanced code, a
 * reply text without control characters), as must every header and log
 * line; at the end the connections drop, and the live concurrency count
 * must be back to zero. SG_FUZZ_VERBOSE=1 prints every verdict.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "fakedns.h"
#include "fuzz.h"
#include "fuzz_engine.h"
#include "policy.h"

#define CONNS 8
#define MACROS 6
/*
 * The cost of an input is its number of events, and libFuzzer's corpus
 * drifts toward the heaviest inputs it is allowed. 600 keeps every limit
 * reachable at its default (maxRcptPerMessage is 500); P lines lower the
 * rest. Thousands of recipients in one transaction go through real
 * libmilter in tests/integration/test_milter_protocol.py.
 */
#define EVENTS_MAX 600

static const char *const macro_names[MACROS] = {
    "{client_addr}", "{daemon_name}", "j", "i", "{auth_authen}",
    "{rcpt_mailer}",
};

struct conn {
    struct sg_session *s;
    bool open;                  /* connected (libmilter took it) */
    char *macro[MACROS];
};

static struct conn conns[CONNS];

static const char *macro(const struct conn *c, const char *name)
{
    for (int i = 0; i < MACROS; i++)
        if (strcmp(macro_names[i], name) == 0)
            return c->macro[i];
    return NULL;
}

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz-milter: %s: %s\n", what, detail);
    abort();
}

/* verdict - what milter_apply() would turn into a reply; true when it
 * is a 421, on which the MTA disconnects */
static bool verdict(const struct sg_verdict *v)
{
    if (getenv("SG_FUZZ_VERBOSE") != NULL)
        fprintf(stderr, "fuzz-milter: %s %s %s %s\n",
                sg_action_name(v->action), v->code, v->xcode, v->text);
    if ((unsigned) v->action >= SG_ACT_COUNT)
        fail("verdict", "action out of range");
    if (!sg_verdict_refuses(v))
        return false;
    if (strlen(v->code) != 3 || (v->code[0] != '4' && v->code[0] != '5') ||
        v->code[1] < '0' || v->code[1] > '9' || v->code[2] < '0' ||
        v->code[2] > '9')
        fail("reply code", v->code);
    if (v->action == SG_ACT_CLOSE && strcmp(v->code, "421") != 0)
        fail("a close without 421", v->code);
    if (v->xcode[0] != v->code[0] || v->xcode[1] != '.' ||
        strchr(v->xcode + 2, '.') == NULL)
        fail("enhanced code", v->xcode);
    if (v->text[0] == '\0')
        fail("reply text", "empty");
    fuzz_clean("the reply text", v->text);
    return v->action == SG_ACT_CLOSE;
}

static void header(void *arg, const char *name, const char *value)
{
    (void) arg;
    if (getenv("SG_FUZZ_VERBOSE") != NULL)
        fprintf(stderr, "fuzz-milter: header %s: %s\n", name, value);
    if (name[0] == '\0' || strpbrk(name, ": ") != NULL)
        fail("header name", name);
    fuzz_clean("a header name", name);
    fuzz_clean("a header value", value);
}

/* client_addr - as callbacks.c: the connect address, else the macro */
static const char *client_addr(const struct conn *c,
                               const struct sockaddr *sa, char *buf,
                               size_t size)
{
    if (sa != NULL && sa->sa_family == AF_INET &&
        inet_ntop(AF_INET, &((const struct sockaddr_in *) sa)->sin_addr, buf,
                  (socklen_t) size) != NULL)
        return buf;
    if (sa != NULL && sa->sa_family == AF_INET6 &&
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) sa)->sin6_addr,
                  buf, (socklen_t) size) != NULL)
        return buf;
    return macro(c, "{client_addr}");
}

static void drop(struct sg_engine *eng, struct conn *c)
{
    (void) eng;
    sg_session_free(c->s);      /* mlfi_close */
    c->s = NULL;
    c->open = false;
}

/* connect - "FAMILY ADDR PORT [HOST]" */
static void connect_event(struct sg_engine *eng, struct conn *c,
                          const char *arg)
{
    struct sockaddr_storage ss;
    struct sockaddr *sa = (struct sockaddr *) &ss;
    struct sg_session_info info;
    struct sg_verdict v;
    char fam[16] = "", addr[300] = "", host[300] = "", buf[INET6_ADDRSTRLEN];
    unsigned port = 0;
    int n = 0;

    if (c->open)
        drop(eng, c);           /* a new connection in this slot */
    if (arg == NULL)
        return;
    sscanf(arg, "%15s %299s %u %n", fam, addr, &port, &n);
    if (n > 0)
        snprintf(host, sizeof(host), "%s", arg + n);
    memset(&ss, 0, sizeof(ss));
    if (strcmp(fam, "4") == 0) {
        struct sockaddr_in *in = (struct sockaddr_in *) &ss;

        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t) port);
        if (inet_pton(AF_INET, addr, &in->sin_addr) != 1)
            return;             /* libmilter drops it */
    } else if (strcmp(fam, "6") == 0) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;

        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t) port);
        if (inet_pton(AF_INET6, addr, &in6->sin6_addr) != 1)
            return;
    } else if (strcmp(fam, "U") == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *) &ss;

        un->sun_family = AF_UNIX;
        /* Cut to what sun_path holds, as the milter layer does. */
        snprintf(un->sun_path, sizeof(un->sun_path), "%.*s",
                 (int) sizeof(un->sun_path) - 1, addr);
    } else if (strcmp(fam, "-") == 0) {
        sa = NULL;
    } else {
        ss.ss_family = (sa_family_t) atoi(fam);
    }
    info.client_addr = client_addr(c, sa, buf, sizeof(buf));
    info.client_name = n > 0 ? host : NULL;
    info.service = macro(c, "{daemon_name}");
    info.mta_host = macro(c, "j");
    c->open = true;
    if ((c->s = sg_session_new(eng, &info)) == NULL) {
        sg_verdict_session_alloc(&v);
        verdict(&v);
        return;
    }
    sg_session_connect(c->s, &v);
    if (verdict(&v))
        drop(eng, c);
}

static void set_macro(struct conn *c, const char *arg)
{
    char name[32];
    const char *sp;
    size_t n;

    if (arg == NULL)
        return;
    sp = strchr(arg, ' ');
    n = sp ? (size_t) (sp - arg) : strlen(arg);
    if (n >= sizeof(name))
        return;
    memcpy(name, arg, n);
    name[n] = '\0';
    for (int i = 0; i < MACROS; i++)
        if (strcmp(macro_names[i], name) == 0) {
            free(c->macro[i]);
            c->macro[i] = sp ? strdup(sp + 1) : NULL;
        }
}

/* event - one line; `arg` is NULL when the line has no argument */
static void event(struct sg_engine *eng, struct conn **cur, char ev,
                  const char *arg, const char *raw, size_t rawlen)
{
    struct conn *c = *cur;
    struct sg_session *s = c->open ? c->s : NULL;
    struct sg_verdict v;
    const char *q;

    switch (ev) {
    case 'C':
        connect_event(eng, c, arg);
        return;
    case 'X':
        set_macro(c, arg);
        return;
    case 'S':
        *cur = &conns[arg ? (unsigned) atoi(arg) % CONNS : 0];
        return;
    case 'Z':
        if (rawlen > 2)
            fakedns_line(raw + 2, rawlen - 2);
        return;
    case 'P':
        if (arg != NULL && (q = strchr(arg, ' ')) != NULL) {
            char name[64];

            snprintf(name, sizeof(name), "%.*s", (int) (q - arg), arg);
            fuzz_engine_set(eng, name, q + 1);
        }
        return;
    case 'W':
        fuzz_now += arg ? strtol(arg, NULL, 10) % 100000000 : 1;
        return;
    case 'T':
        sg_engine_tick(eng);
        return;
    case 'Q':
        if (c->open)
            drop(eng, c);
        return;
    default:
        break;
    }
    if (s == NULL)
        return;                 /* internal_error(): no session, 451 */
    switch (ev) {
    case 'H':
        sg_session_helo(s, arg, &v);
        break;
    case 'F':
        q = macro(c, "i");
        sg_session_set_auth(s, macro(c, "{auth_authen}"));
        sg_session_set_queue_id(s, q ? q : "");
        sg_session_mail(s, arg, &v);
        break;
    case 'R':
        if ((q = macro(c, "i")) != NULL)
            sg_session_set_queue_id(s, q);
        sg_session_rcpt(s, arg, macro(c, "{rcpt_mailer}"), &v);
        break;
    case 'U':
        sg_session_unknown(s, arg, &v);
        break;
    case 'E':
        sg_session_headers(s, header, NULL);
        sg_session_message_done(s);
        return;
    case 'A':
        sg_session_reset(s);
        return;
    default:
        return;
    }
    if (verdict(&v))
        drop(eng, c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sg_engine *eng = fuzz_engine_new();
    struct conn *cur = &conns[0];
    const char *p = (const char *) data, *end = p + size;
    unsigned long budget = EVENTS_MAX;

    fakedns_reset();
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t) (end - p)), *l = p;
        unsigned long times = 1;
        char *line, *arg;
        size_t n;

        if (e == NULL)
            e = end;
        p = e + 1;
        if (l < e && *l >= '0' && *l <= '9') {
            const char *star = l;

            /* Any number of digits; the count saturates past the cap. */
            for (times = 0; star < e && *star >= '0' && *star <= '9'; star++)
                if (times <= EVENTS_MAX)
                    times = times * 10 + (unsigned long) (*star - '0');
            if (star == e || *star != '*')
                continue;
            l = star + 1;
        }
        n = (size_t) (e - l);
        if (n == 0)
            continue;
        if (strchr("PTXSZ", *l) != NULL)
            times = 1;
        else {
            if (times > budget)
                times = budget;
            budget -= times;
        }
        /* The settings of a run of P lines load before the next event. */
        if (*l != 'P')
            fuzz_engine_apply(eng);
        line = fuzz_cstr((const uint8_t *) l, n);
        arg = line[1] == ' ' ? line + 2 : NULL;
        for (unsigned long i = 0; i < times; i++)
            event(eng, &cur, line[0], arg, l, n);
        free(line);
    }
    fuzz_engine_apply(eng);
    /* The connections drop (libmilter calls close for each). */
    for (int i = 0; i < CONNS; i++) {
        if (conns[i].open)
            drop(eng, &conns[i]);
        for (int m = 0; m < MACROS; m++) {
            free(conns[i].macro[m]);
            conns[i].macro[m] = NULL;
        }
    }
    if (sg_state_conc_total(eng->state) != 0)
        fail("concurrency", "live sessions left after every close");
    sg_engine_tick(eng);
    fuzz_engine_free(eng);
    return 0;
}
