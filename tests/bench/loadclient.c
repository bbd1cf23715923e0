/*
 * sg-loadclient - milter load generator: plays the MTA (Postfix 3.7 by
 * default, Sendmail with --sendmail) against a milter socket, with N
 * threads each running sessions back to back, and reports throughput and
 * session latency. With --trace it prints every stage's reply, which makes
 * it usable as a protocol-level test client.
 *
 * Exit status: 0 when every session completed the protocol (a reject is a
 * completed session), 1 on protocol or I/O errors, 2 on usage errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "milterproto.h"
#include "session.h"

#define MAX_ERROR_MESSAGES 10

struct worker {
    pthread_t tid;
    double *lat;            /* latency (ms) of each completed session */
    size_t nlat, caplat;
    uint64_t count[LC_NOUTCOMES];
};

static struct lc_config cfg;
static uint64_t opt_total;       /* -n: 0 = unlimited */
static double opt_seconds;       /* -t: 0 = unlimited */
static double opt_rate;          /* --rate: sessions/s, 0 = back to back */
static double start_ms;
static unsigned opt_concurrency = 8;
static int opt_json;
static double deadline_ms;
static atomic_ullong next_seq;
static atomic_int stop_flag;
static atomic_int error_messages;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void usage(FILE *fp)
{
    fprintf(fp,
"usage: sg-loadclient -s SOCKET [options]\n"
"Plays the MTA side of the milter protocol (version 6) against SOCKET.\n"
"\n"
"  -s, --socket SOCKET     inet:PORT@HOST, inet6:PORT@HOST or unix:/path\n"
"  -c, --concurrency N     threads, each running sessions back to back (8)\n"
"  -n, --sessions N        stop after N sessions in total (default 1000\n"
"                          unless -t is given)\n"
"  -t, --time SECONDS      stop starting sessions after SECONDS\n"
"      --rate N            start N sessions per second in all (a steady\n"
"                          offered load; default: back to back)\n"
"      --clients N         distinct client addresses to cycle through (1000)\n"
"      --ipv6-percent P    share of IPv6 clients in percent (25)\n"
"      --client ADDR       use this one client address for every session\n"
"      --daemon-name NAME  {daemon_name} (smtpd; MTA with --sendmail)\n"
"      --macro NAME=VALUE  extra connect-stage macro (repeatable)\n"
"      --mail ADDR         envelope sender (default bench@dN.example.com)\n"
"      --domains N         sender domains to cycle through (100)\n"
"      --rcpt ADDR         recipient (repeatable; cycled)\n"
"      --rcpts N           recipients per message (1, or the --rcpt count)\n"
"      --helo NAME         HELO name (default: client name or [address])\n"
"      --auth USER         authenticated session: {auth_type}, {auth_authen}\n"
"      --rcpt-mailer NAME  {rcpt_mailer} of every recipient (local; smtp or\n"
"                          esmtp is what the MTA says of a remote one)\n"
"      --sendmail          send Sendmail's macros instead of Postfix's\n"
"      --unknown CMD       send SMFIC_UNKNOWN CMD after HELO (repeatable)\n"
"      --timeout SECONDS   timeout for connect and for each reply (10)\n"
"  -v, --trace             print one line per stage of every session\n"
"      --json              print the summary as one JSON object\n"
"  -h, --help              this text\n"
"\n"
"Trace: per session \"session=N client=ADDR ...\", then one line per stage,\n"
"  stage=NAME reply=WORD [code=\"550 5.7.1 ...\"] [rcpt=<ADDR>|header=H]\n"
"WORD: continue accept reject tempfail discard skip shutdown conn_fail,\n"
"noreply (SMFIP_NR_*), notsent (SMFIP_NO*), skipped (after a skip), error;\n"
"end-of-message changes as \"stage=eom action=addheader arg=... value=...\";\n"
"last \"session=N result=R\", R one of accepted, rejected, tempfailed,\n"
"discarded, closed, error (the summary counters).\n"
"\n"
"Clients come from 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 and\n"
"2001:db8::/32. The summary has sessions, seconds, sessions_per_sec,\n"
"p50_ms, p90_ms, p99_ms, max_ms (connect to close, completed sessions),\n"
"accepted, rejected, tempfailed, closed (421/shutdown), errors, discarded.\n"
"Exit status: 0 all sessions completed the protocol, 1 protocol or I/O\n"
"errors, 2 usage error.\n");
}

static void die_usage(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void die_usage(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "sg-loadclient: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(try --help)\n");
    exit(2);
}

static unsigned long parse_num(const char *s, unsigned long min,
                               unsigned long max, const char *what)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min ||
        v > max)
        die_usage("bad value for %s", what);
    return v;
}

static double parse_seconds(const char *s, const char *what)
{
    char *end;
    double v = strtod(s, &end);

    if (end == s || *end != '\0' || !(v > 0) || v > 1e7)
        die_usage("bad value for %s", what);
    return v;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);

    if (p == NULL) {
        fprintf(stderr, "sg-loadclient: out of memory\n");
        exit(1);
    }
    return p;
}

static const char **push(const char **list, size_t *n, const char *s)
{
    list = realloc(list, (*n + 1) * sizeof *list);
    if (list == NULL)
        exit(1);
    list[(*n)++] = s;
    return list;
}

static void add_macro(char *arg)
{
    char *eq = strchr(arg, '=');

    if (eq == NULL || eq == arg)
        die_usage("--macro needs NAME=VALUE, not \"%s\"", arg);
    *eq = '\0';
    cfg.macros = realloc(cfg.macros, (cfg.nmacros + 1) * sizeof *cfg.macros);
    if (cfg.macros == NULL)
        exit(1);
    cfg.macros[cfg.nmacros].name = arg;
    cfg.macros[cfg.nmacros].value = eq + 1;
    cfg.nmacros++;
}

static void set_client(const char *addr)
{
    unsigned char buf[sizeof(struct in6_addr)];

    if (inet_pton(AF_INET, addr, buf) == 1)
        cfg.client_v6 = 0;
    else if (inet_pton(AF_INET6, addr, buf) == 1)
        cfg.client_v6 = 1;
    else
        die_usage("--client: \"%s\" is not an IPv4 or IPv6 address", addr);
    cfg.client = addr;
}

enum { O_CLIENTS = 256, O_IPV6, O_CLIENT, O_DAEMON, O_MACRO, O_MAIL,
       O_DOMAINS, O_RCPT, O_RCPTS, O_HELO, O_AUTH, O_RCPT_MAILER, O_SENDMAIL, O_UNKNOWN,
       O_TIMEOUT, O_JSON, O_RATE };

static const struct option long_opts[] = {
    {"socket", required_argument, NULL, 's'},
    {"concurrency", required_argument, NULL, 'c'},
    {"sessions", required_argument, NULL, 'n'},
    {"time", required_argument, NULL, 't'},
    {"rate", required_argument, NULL, O_RATE},
    {"clients", required_argument, NULL, O_CLIENTS},
    {"ipv6-percent", required_argument, NULL, O_IPV6},
    {"client", required_argument, NULL, O_CLIENT},
    {"daemon-name", required_argument, NULL, O_DAEMON},
    {"macro", required_argument, NULL, O_MACRO},
    {"mail", required_argument, NULL, O_MAIL},
    {"domains", required_argument, NULL, O_DOMAINS},
    {"rcpt", required_argument, NULL, O_RCPT},
    {"rcpts", required_argument, NULL, O_RCPTS},
    {"helo", required_argument, NULL, O_HELO},
    {"auth", required_argument, NULL, O_AUTH},
    {"rcpt-mailer", required_argument, NULL, O_RCPT_MAILER},
    {"sendmail", no_argument, NULL, O_SENDMAIL},
    {"unknown", required_argument, NULL, O_UNKNOWN},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"trace", no_argument, NULL, 'v'},
    {"json", no_argument, NULL, O_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void parse_option(int ch, char *arg, const char **socket_spec)
{
    switch (ch) {
    case 's': *socket_spec = arg; break;
    case 'c': opt_concurrency = (unsigned)parse_num(arg, 1, 4096, "-c"); break;
    case 'n': opt_total = parse_num(arg, 1, ULONG_MAX, "-n"); break;
    case 't': opt_seconds = parse_seconds(arg, "-t"); break;
    case O_RATE: opt_rate = (double)parse_num(arg, 1, 1000000, "--rate");
        break;
    case O_CLIENTS:
        cfg.clients = (unsigned)parse_num(arg, 1, 100000000, "--clients");
        break;
    case O_IPV6:
        cfg.ipv6_percent = (unsigned)parse_num(arg, 0, 100, "--ipv6-percent");
        break;
    case O_CLIENT: set_client(arg); break;
    case O_DAEMON: cfg.daemon_name = arg; break;
    case O_MACRO: add_macro(arg); break;
    case O_MAIL: cfg.mail = arg; break;
    case O_DOMAINS:
        cfg.domains = (unsigned)parse_num(arg, 1, 100000000, "--domains");
        break;
    case O_RCPT: cfg.rcpt_list = push(cfg.rcpt_list, &cfg.nrcpt_list, arg);
        break;
    case O_RCPTS: cfg.rcpts = (unsigned)parse_num(arg, 1, 10000, "--rcpts");
        break;
    case O_HELO: cfg.helo = arg; break;
    case O_AUTH: cfg.auth = arg; break;
    case O_RCPT_MAILER: cfg.rcpt_mailer = arg; break;
    case O_SENDMAIL: cfg.mode = LC_SENDMAIL; break;
    case O_UNKNOWN: cfg.unknown = push(cfg.unknown, &cfg.nunknown, arg);
        break;
    case O_TIMEOUT:
        cfg.timeout_ms = (int)(parse_seconds(arg, "--timeout") * 1000);
        break;
    case 'v': cfg.trace = 1; break;
    case O_JSON: opt_json = 1; break;
    case 'h': usage(stdout); exit(0);
    default: die_usage("%s", "bad option");
    }
}

static void parse_args(int argc, char **argv)
{
    const char *socket_spec = NULL;
    char err[512];
    int ch;

    cfg.clients = 1000;
    cfg.ipv6_percent = 25;
    cfg.domains = 100;
    cfg.timeout_ms = 10000;
    while ((ch = getopt_long(argc, argv, "s:c:n:t:vh", long_opts, NULL)) != -1)
        parse_option(ch, optarg, &socket_spec);
    if (optind < argc)
        die_usage("unexpected argument \"%s\"", argv[optind]);
    if (socket_spec == NULL)
        die_usage("%s", "-s SOCKET is required");
    if (mp_parse_socket(socket_spec, &cfg.addr, err, sizeof err) < 0)
        die_usage("%s", err);
    if (cfg.rcpts == 0)
        cfg.rcpts = cfg.nrcpt_list > 0 ? (unsigned)cfg.nrcpt_list : 1;
    if (opt_total == 0 && opt_seconds == 0)
        opt_total = 1000;
    if (cfg.client == NULL &&
        (uint64_t)cfg.clients - (uint64_t)cfg.clients * cfg.ipv6_percent / 100
            > 762)
        fprintf(stderr, "sg-loadclient: warning: only 762 distinct IPv4 "
                "documentation addresses; IPv4 clients will repeat\n");
}

/* ---- workers ---------------------------------------------------------- */

static void record(struct worker *w, enum lc_outcome o, double ms)
{
    w->count[o]++;
    if (o == LC_ERROR)
        return;
    if (w->nlat == w->caplat) {
        w->caplat = w->caplat ? w->caplat * 2 : 4096;
        w->lat = realloc(w->lat, w->caplat * sizeof *w->lat);
        if (w->lat == NULL)
            abort();
    }
    w->lat[w->nlat++] = ms;
}

static void report_error(uint64_t seq, const char *err)
{
    int n = atomic_fetch_add(&error_messages, 1);

    if (n < MAX_ERROR_MESSAGES)
        fprintf(stderr, "sg-loadclient: session %llu: %s\n",
                (unsigned long long)seq, err);
    else if (n == MAX_ERROR_MESSAGES)
        fprintf(stderr, "sg-loadclient: further errors not shown\n");
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct mp_conn conn;
    struct lc_trace tr = {NULL, 0, 0};
    char err[512];

    mp_conn_init(&conn, cfg.timeout_ms);
    while (!atomic_load(&stop_flag)) {
        uint64_t seq = atomic_fetch_add(&next_seq, 1);
        double t0;
        enum lc_outcome o;

        if ((opt_total > 0 && seq >= opt_total) ||
            (opt_seconds > 0 && mp_now_ms() >= deadline_ms))
            break;
        if (opt_rate > 0) {
            /* Session seq starts seq / rate seconds into the run. */
            double due = start_ms + (double)seq * 1000.0 / opt_rate;
            double wait;

            while (!atomic_load(&stop_flag) &&
                   (wait = due - mp_now_ms()) > 0) {
                struct timespec ts;

                if (wait > 100)
                    wait = 100;
                ts.tv_sec = 0;
                ts.tv_nsec = (long)(wait * 1e6);
                nanosleep(&ts, NULL);
            }
            if (atomic_load(&stop_flag) ||
                (opt_seconds > 0 && mp_now_ms() >= deadline_ms))
                break;
        }
        tr.len = 0;
        t0 = mp_now_ms();
        o = lc_session(&cfg, seq, &conn, &tr, err, sizeof err);
        record(w, o, mp_now_ms() - t0);
        if (o == LC_ERROR)
            report_error(seq, err);
        if (cfg.trace && tr.len > 0) {
            pthread_mutex_lock(&out_lock);
            fwrite(tr.buf, 1, tr.len, stdout);
            fflush(stdout);
            pthread_mutex_unlock(&out_lock);
        }
    }
    mp_conn_free(&conn);
    free(tr.buf);
    return NULL;
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop_flag, 1);
}

static void setup_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* ---- summary ---------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values. */
static double percentile(const double *v, size_t n, double p)
{
    size_t rank;

    if (n == 0)
        return 0;
    rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    return v[(rank > n ? n : rank) - 1];
}

/* One format per output style, same arguments; literals so that the
 * compiler checks them. */
#define JSON_FMT \
    "{\"sessions\":%llu,\"seconds\":%.3f,\"sessions_per_sec\":%.1f," \
    "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f," \
    "\"accepted\":%llu,\"rejected\":%llu,\"tempfailed\":%llu," \
    "\"closed\":%llu,\"errors\":%llu,\"discarded\":%llu," \
    "\"concurrency\":%u}\n"
#define TEXT_FMT \
    "sessions=%llu\nseconds=%.3f\nsessions_per_sec=%.1f\n" \
    "p50_ms=%.3f\np90_ms=%.3f\np99_ms=%.3f\nmax_ms=%.3f\n" \
    "accepted=%llu\nrejected=%llu\ntempfailed=%llu\nclosed=%llu\n" \
    "errors=%llu\ndiscarded=%llu\nconcurrency=%u\n"

static void summary(struct worker *w, unsigned nw, double seconds)
{
    uint64_t cnt[LC_NOUTCOMES] = {0}, sessions = 0;
    size_t nlat = 0, i, k;
    double *lat;
    unsigned t;

    for (t = 0; t < nw; t++) {
        for (k = 0; k < LC_NOUTCOMES; k++)
            cnt[k] += w[t].count[k];
        nlat += w[t].nlat;
    }
    lat = xcalloc(nlat + 1, sizeof *lat);
    for (t = 0, i = 0; t < nw; t++) {
        if (w[t].nlat > 0)
            memcpy(lat + i, w[t].lat, w[t].nlat * sizeof *lat);
        i += w[t].nlat;
    }
    qsort(lat, nlat, sizeof *lat, cmp_double);
    for (k = 0; k < LC_NOUTCOMES; k++)
        sessions += cnt[k];

    printf(opt_json ? JSON_FMT : TEXT_FMT, (unsigned long long)sessions,
           seconds,
           seconds > 0 ? (double)sessions / seconds : 0.0,
           percentile(lat, nlat, 50), percentile(lat, nlat, 90),
           percentile(lat, nlat, 99), nlat ? lat[nlat - 1] : 0.0,
           (unsigned long long)cnt[LC_ACCEPTED],
           (unsigned long long)cnt[LC_REJECTED],
           (unsigned long long)cnt[LC_TEMPFAILED],
           (unsigned long long)cnt[LC_CLOSED],
           (unsigned long long)cnt[LC_ERROR],
           (unsigned long long)cnt[LC_DISCARDED], nw);
    fflush(stdout);
    free(lat);
}

int main(int argc, char **argv)
{
    struct worker *w;
    unsigned t, started = 0;
    double t0;
    uint64_t errors = 0;
    int rc;

    parse_args(argc, argv);
    setup_signals();
    w = xcalloc(opt_concurrency, sizeof *w);
    t0 = mp_now_ms();
    deadline_ms = t0 + opt_seconds * 1000.0;
    start_ms = t0;
    for (t = 0; t < opt_concurrency; t++, started++) {
        rc = pthread_create(&w[t].tid, NULL, worker_main, &w[t]);
        if (rc != 0) {
            fprintf(stderr, "sg-loadclient: pthread_create: %s\n",
                    strerror(rc));
            atomic_store(&stop_flag, 1);
            break;
        }
    }
    for (t = 0; t < started; t++)
        pthread_join(w[t].tid, NULL);
    summary(w, started, (mp_now_ms() - t0) / 1000.0);
    for (t = 0; t < opt_concurrency; t++) {
        errors += w[t].count[LC_ERROR];
        free(w[t].lat);
    }
    free(w);
    free(cfg.macros);
    free(cfg.rcpt_list);
    free(cfg.unknown);
    return errors > 0 || started < opt_concurrency ? 1 : 0;
}
