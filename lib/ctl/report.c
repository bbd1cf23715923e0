/*
 * report.c - smtpguardctl report: what smtpguard did, from mail.log
 *
 *   smtpguardctl report [--since T] [--until T] [--client ADDR] [--all]
 *                       [--top N] [--follow] [--json] [FILE...]
 *
 * Reads syslog files (plain or gzip, as logrotate leaves them; zlib reads
 * both), or standard input, and summarizes smtpguard's lines: every
 * refused or failed connection, one concise line each (seed 003's "all
 * failed connections ... for review"); counts by event and severity; the
 * clients, sender domains and senders refused most; relay attempts; DNSBL
 * hits by zone; SPF results; bans issued. --client shows every line of one
 * client. --follow then keeps reading the last file (plain, not standard
 * input) from where the report ended, as it grows, through truncation and
 * rotation as tail -F does, and prints each new refusal: a line for
 * people, or with --json one object per line (JSON Lines) after the
 * summary, which is then one line too.
 *
 * Lines of other programs are skipped at the cost of one memmem; a
 * malformed or truncated smtpguard line is counted and skipped. Times:
 * RFC 3339 (rsyslog's high-precision format) or the traditional
 * "Mmm dd hh:mm:ss" (this year assumed).
 */
/* memmem: _GNU_SOURCE comes from the build (CMakeLists.txt) */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "catalogue.h"
#include "htab.h"
#include "json.h"
#include "sg.h"

#define MAX_FIELDS 32
#define BUF_SIZE (1 << 20)

struct kv {
    const char *k, *v;
    size_t kl, vl;
};

struct line {
    time_t when;
    const char *stamp;
    size_t stamp_len;
    struct kv f[MAX_FIELDS];
    int n;
};

/* A counter keyed by a string. */
struct cnode {
    struct sg_hnode node;
    unsigned long count;
};

struct counter {
    struct sg_htab t;
};

struct opts {
    time_t since, until;
    const char *client;
    bool all, follow, json;
    int top;
};

struct report {
    unsigned long lines, ours, malformed, refusals, shown, relay;
    unsigned long by_event[SG_EV_COUNT + 1];
    unsigned long by_sev[8];
    struct counter clients, domains, senders, zones, spf, bans, relay_clients;
    char first[40], last[40];
};

static void counter_init(struct counter *c)
{
    if (sg_htab_init(&c->t, 256) != SG_OK) {
        fputs("smtpguardctl: out of memory\n", stderr);
        exit(3);
    }
}

static void free_node(struct sg_htab *t, struct sg_hnode *n, void *arg)
{
    (void) arg;
    sg_htab_remove(t, n);
    free(n->key);
    free(n);
}

static void counter_free(struct counter *c)
{
    sg_htab_walk(&c->t, free_node, NULL);
    sg_htab_destroy(&c->t);
}

static void count(struct counter *c, const char *key, size_t len)
{
    char buf[512];
    struct cnode *n;

    if (len == 0)
        return;
    if (len >= sizeof(buf))
        len = sizeof(buf) - 1;
    memcpy(buf, key, len);
    buf[len] = '\0';
    n = (struct cnode *) sg_htab_find(&c->t, buf);
    if (n == NULL) {
        n = calloc(1, sizeof(*n));
        if (n == NULL || (n->node.key = strdup(buf)) == NULL) {
            fputs("smtpguardctl: out of memory\n", stderr);
            exit(3);
        }
        n->node.hash = sg_hash(buf);
        sg_htab_insert(&c->t, &n->node);
    }
    n->count++;
}

/* ---- parsing ---- */

static const char *months = "JanFebMarAprMayJunJulAugSepOctNovDec";

/* parse_time - the line's time stamp; its end in *end; -1 if none */
static time_t parse_time(const char *s, size_t len, size_t *end)
{
    struct tm tm;
    const char *m;
    char buf[40];
    int off = 0;

    memset(&tm, 0, sizeof(tm));
    if (len >= 19 && isdigit((unsigned char) s[0]) && s[4] == '-' &&
        s[10] == 'T') {
        const char *sp = memchr(s, ' ', len);
        size_t n = sp ? (size_t) (sp - s) : len;

        /* The line is not NUL-terminated: scan copies, never the input. */
        if (n >= sizeof(buf))
            return -1;
        memcpy(buf, s, n);
        buf[n] = '\0';
        if (sscanf(buf, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
                   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
            return -1;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        /* Offset "+hh:mm" / "-hh:mm" / "Z" at the end. */
        if (n > 6 && (buf[n - 6] == '+' || buf[n - 6] == '-'))
            off = (buf[n - 6] == '-' ? -1 : 1) *
                (atoi(buf + n - 5) * 3600 + atoi(buf + n - 2) * 60);
        *end = n;
        return timegm(&tm) - off;
    }
    if (len >= 15 && (m = strstr(months, (char[]) { s[0], s[1], s[2], 0 }))
        != NULL && s[3] == ' ') {
        time_t now = time(NULL);
        struct tm lt;

        localtime_r(&now, &lt);
        memcpy(buf, s + 4, 11);         /* "dd hh:mm:ss" */
        buf[11] = '\0';
        if (sscanf(buf, "%2d %2d:%2d:%2d", &tm.tm_mday, &tm.tm_hour,
                   &tm.tm_min, &tm.tm_sec) != 4)
            return -1;
        tm.tm_mon = (int) (m - months) / 3;
        tm.tm_year = lt.tm_year;
        tm.tm_isdst = -1;
        *end = 15;
        return mktime(&tm);
    }
    return -1;
}

/* parse_fields - key=value pairs after "smtpguard[pid]: QID: " */
static bool parse_fields(const char *p, const char *end, struct line *l)
{
    l->n = 0;
    while (p < end && l->n < MAX_FIELDS) {
        struct kv *f = &l->f[l->n];

        while (p < end && *p == ' ')
            p++;
        if (p == end)
            break;
        f->k = p;
        while (p < end && *p != '=' && *p != ' ')
            p++;
        if (p == end || *p != '=')
            return false;
        f->kl = (size_t) (p - f->k);
        p++;
        if (p < end && *p == '"') {
            f->v = ++p;
            while (p < end && *p != '"')
                p += (*p == '\\' && p + 1 < end) ? 2 : 1;
            if (p >= end)
                return false;   /* truncated inside a quoted value */
            f->vl = (size_t) (p - f->v);
            p++;
        } else {
            f->v = p;
            while (p < end && *p != ' ')
                p++;
            f->vl = (size_t) (p - f->v);
        }
        l->n++;
    }
    return l->n >= 3;
}

static bool get(const struct line *l, const char *k, const char **v,
                size_t *vl)
{
    size_t kl = strlen(k);

    for (int i = 0; i < l->n; i++)
        if (l->f[i].kl == kl && memcmp(l->f[i].k, k, kl) == 0) {
            *v = l->f[i].v;
            *vl = l->f[i].vl;
            return true;
        }
    *v = "";
    *vl = 0;
    return false;
}

static bool is(const char *v, size_t vl, const char *s)
{
    return vl == strlen(s) && memcmp(v, s, vl) == 0;
}

/* ---- one line ---- */

/* put_text - n bytes of a log line for a terminal: a control byte (a
 * forged line's escape sequence, say) is shown as '?', not obeyed */
static void put_text(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];

        putchar(c < ' ' || c == 0x7f ? '?' : c);
    }
}

static void print_refusal(const struct line *l, const char *raw_event,
                          size_t evl)
{
    static const char *const keys[] = {
        "action", "client", "sender", "recipient", "zone", "reason",
        "identity", "network", "domain", "remaining",
    };
    const char *v;
    size_t vl;

    put_text(l->stamp, l->stamp_len < 32 ? l->stamp_len : 32);
    putchar(' ');
    put_text(raw_event, evl);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (get(l, keys[i], &v, &vl) && vl > 0) {
            bool q = memchr(v, ' ', vl) != NULL;

            printf(" %s=%s", keys[i], q ? "\"" : "");
            put_text(v, vl < 80 ? vl : 80);
            if (q)
                putchar('"');
        }
    putchar('\n');
}

/* print_refusal_json - one line of --follow --json: the time stamp and
 * every field, values as logged (JSON Lines) */
static void print_refusal_json(const struct line *l)
{
    fputs("{\"time\": ", stdout);
    sg_json_str(stdout, l->stamp, l->stamp_len);
    for (int i = 0; i < l->n; i++) {
        fputs(", ", stdout);
        sg_json_str(stdout, l->f[i].k, l->f[i].kl);
        fputs(": ", stdout);
        sg_json_str(stdout, l->f[i].v, l->f[i].vl);
    }
    fputs("}\n", stdout);
}

static void handle(struct report *r, const struct opts *o, const char *s,
                   size_t len, bool live)
{
    const char *tag, *colon, *end = s + len, *ev, *id, *sev, *act, *cl;
    size_t evl, idl, sevl, actl, cll, tend = 0, vl;
    const struct sg_event_def *def;
    struct line l;
    const char *v;
    char idbuf[16];
    bool refused;

    r->lines++;
    tag = memmem(s, len, " smtpguard[", 11);
    if (tag == NULL)
        return;
    r->ours++;
    l.when = parse_time(s, len, &tend);
    l.stamp = s;
    l.stamp_len = tend;
    if ((o->since && l.when < o->since) || (o->until && l.when > o->until))
        return;
    colon = memmem(tag, (size_t) (end - tag), "]: ", 3);
    if (colon == NULL || (colon = memchr(colon + 3, ':', (size_t) (end -
        colon - 3))) == NULL || !parse_fields(colon + 1, end, &l) ||
        !get(&l, "id", &id, &idl) || !get(&l, "event", &ev, &evl)) {
        r->malformed++;
        return;
    }
    get(&l, "severity", &sev, &sevl);
    get(&l, "action", &act, &actl);
    get(&l, "client", &cl, &cll);
    if (o->client != NULL && !is(cl, cll, o->client))
        return;
    if (tend > 0) {
        size_t n = tend < sizeof(r->first) - 1 ? tend : sizeof(r->first) - 1;

        if (r->first[0] == '\0')
            memcpy(r->first, s, n);
        memcpy(r->last, s, n);
        r->last[n] = '\0';
    }
    snprintf(idbuf, sizeof(idbuf), "%.*s", (int) (idl < 15 ? idl : 15), id);
    def = sg_event_find(idbuf);
    r->by_event[def ? def->event : SG_EV_COUNT]++;
    for (int i = 0; i < 8; i++)
        if (is(sev, sevl, sg_severity_name((enum sg_severity) i)))
            r->by_sev[i]++;
    refused = is(act, actl, "reject") || is(act, actl, "tempfail") ||
        is(act, actl, "close");
    if (refused) {
        r->refusals++;
        count(&r->clients, cl, cll);
        if (get(&l, "sender", &v, &vl) && vl > 0) {
            const char *at = memchr(v, '@', vl);

            count(&r->senders, v, vl);
            if (at != NULL)
                count(&r->domains, at + 1, (size_t) (v + vl - at - 1));
        } else if (get(&l, "domain", &v, &vl)) {
            count(&r->domains, v, vl);
        }
    }
    if (is(ev, evl, "relay_attempt_rejected")) {
        r->relay++;
        count(&r->relay_clients, cl, cll);
    }
    if ((is(ev, evl, "dnsbl_listed") || is(ev, evl, "dnswl_listed")) &&
        get(&l, "zone", &v, &vl))
        count(&r->zones, v, vl);
    if (evl > 3 && memcmp(ev, "SPF", 3) == 0)
        count(&r->spf, ev + 3, evl - 3);
    if (get(&l, "ban_seconds", &v, &vl) && refused)
        count(&r->bans, ev, evl);
    if ((refused || o->client != NULL) && o->json && live) {
        print_refusal_json(&l);
    } else if ((refused || o->client != NULL) && !o->json &&
        (o->all || live || o->client != NULL || r->shown < 50)) {
        if (!live && r->shown == 0)
            printf("%s:\n", o->client ? "Lines of this client"
                   : "Refused or failed connections");
        print_refusal(&l, ev, evl);
        r->shown++;
    }
}

/* ---- reading ---- */

/* handle_lines - every whole line of buf; the bytes used (up to and with
 * the last newline) */
static size_t handle_lines(struct report *r, const struct opts *o,
                           const char *buf, size_t len, bool live)
{
    const char *p = buf, *nl, *end = buf + len;

    for (; (nl = memchr(p, '\n', (size_t) (end - p))) != NULL; p = nl + 1)
        handle(r, o, p, (size_t) (nl - p), live);
    return (size_t) (p - buf);
}

/* take_lines - handle the whole lines of buf[0..*have) and keep the
 * unfinished rest at its start; a line longer than the buffer is counted
 * malformed and dropped */
static void take_lines(struct report *r, const struct opts *o, char *buf,
                       size_t *have, bool live)
{
    size_t used = handle_lines(r, o, buf, *have, live);

    *have -= used;
    if (*have == BUF_SIZE) {            /* a 1 MB line: count, drop */
        r->malformed++;
        *have = 0;
    }
    memmove(buf, buf + used, *have);
}

/*
 * read_stream - every line of gz. A last line without its newline is
 * handled, unless `tail` (the file --follow goes on reading): then it is
 * left for the follower, and its length returned. -1: read error.
 */
static long read_stream(struct report *r, const struct opts *o, gzFile gz,
                        bool tail)
{
    static char buf[BUF_SIZE + 1];
    size_t have = 0;

    for (;;) {
        int n = gzread(gz, buf + have, (unsigned) (BUF_SIZE - have));

        if (n < 0)
            return -1;
        if (n == 0) {
            if (have > 0 && !tail)
                handle(r, o, buf, have, false);  /* last line, no newline */
            return tail ? (long) have : 0;
        }
        have += (size_t) n;
        take_lines(r, o, buf, &have, false);
    }
}

/*
 * follow - go on reading the file open on fd from byte `pos` (where the
 * report stopped: nothing is counted or shown twice) as it grows, like
 * tail -F: a line is handled once it is whole, however many polls it
 * takes to arrive; when the file is truncated (copytruncate) it is read
 * again from its start; when path becomes another file (rotated), the old
 * one is read to its end, one poll later (the writer may not have moved
 * yet), then the new one from its start. Returns on a read error only.
 */
static void follow(struct report *r, const struct opts *o, const char *path,
                   int fd, off_t pos)
{
    char *buf = malloc(BUF_SIZE);
    struct stat cur, st;
    size_t have = 0;
    bool rotated = false;

    if (buf == NULL || fstat(fd, &cur) < 0 || lseek(fd, pos, SEEK_SET) < 0) {
        fprintf(stderr, "smtpguardctl: cannot follow %s: %s\n", path,
                buf == NULL ? "out of memory" : strerror(errno));
        free(buf);
        close(fd);
        return;
    }
    fflush(stdout);
    for (;;) {
        ssize_t n = read(fd, buf + have, BUF_SIZE - have);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "smtpguardctl: %s: %s\n", path, strerror(errno));
            break;
        }
        if (n > 0) {
            pos += n;
            have += (size_t) n;
            take_lines(r, o, buf, &have, true);
            continue;
        }
        fflush(stdout);
        if (stat(path, &st) == 0 && (st.st_ino != cur.st_ino ||
                                     st.st_dev != cur.st_dev)) {
            int nfd;

            if (rotated && (nfd = open(path, O_RDONLY)) >= 0) {
                if (have > 0)           /* the old file's cut last line */
                    handle(r, o, buf, have, true);
                fflush(stdout);
                close(fd);
                fd = nfd;
                if (fstat(fd, &cur) < 0)
                    break;
                pos = 0;
                have = 0;
                rotated = false;
                fprintf(stderr, "smtpguardctl: %s was rotated; following "
                        "the new file\n", path);
                continue;
            }
            rotated = true;
        } else if (fstat(fd, &st) == 0 && st.st_size < pos) {
            fprintf(stderr, "smtpguardctl: %s was truncated; reading it "
                    "from its start\n", path);
            if (lseek(fd, 0, SEEK_SET) < 0)
                break;
            pos = 0;
            have = 0;
            continue;
        }
        usleep(500000);
    }
    free(buf);
    close(fd);
}

/* ---- output ---- */

struct top {
    const char *key;
    unsigned long count;
};

static int by_count(const void *a, const void *b)
{
    const struct top *x = a, *y = b;

    return x->count < y->count ? 1 : x->count > y->count ? -1
        : strcmp(x->key, y->key);
}

struct collect {
    struct top *v;
    size_t n;
};

static void collect_one(struct sg_htab *t, struct sg_hnode *n, void *arg)
{
    struct collect *c = arg;

    (void) t;
    c->v[c->n].key = n->key;
    c->v[c->n++].count = ((struct cnode *) n)->count;
}

static void print_top(const char *title, struct counter *c, int top,
                      bool json, const char *nl, bool *first)
{
    struct collect col = { calloc(c->t.count + 1, sizeof(struct top)), 0 };

    if (col.v == NULL)
        return;
    sg_htab_walk(&c->t, collect_one, &col);
    qsort(col.v, col.n, sizeof(*col.v), by_count);
    if (json) {
        printf("%s%s", *first ? "" : ",", nl);
        sg_json_str(stdout, title, strlen(title));
        printf(": [");
        for (size_t i = 0; i < col.n && (int) i < top; i++) {
            printf("%s[", i ? ", " : "");
            sg_json_str(stdout, col.v[i].key, strlen(col.v[i].key));
            printf(", %lu]", col.v[i].count);
        }
        printf("]");
        *first = false;
    } else if (col.n > 0) {
        printf("\n%s:\n", title);
        for (size_t i = 0; i < col.n && (int) i < top; i++) {
            printf("  %8lu  ", col.v[i].count);
            put_text(col.v[i].key, strlen(col.v[i].key));
            putchar('\n');
        }
    }
    free(col.v);
}

static void summary(struct report *r, const struct opts *o)
{
    /* --follow --json: the summary on one line, then a line per refusal */
    const char *nl = o->follow ? " " : "\n  ";
    bool first = true;

    if (o->json) {
        printf("{\"lines\": %lu, \"smtpguard_lines\": %lu, \"malformed\": "
               "%lu, \"refusals\": %lu, \"relay_attempts\": %lu, \"first\": ",
               r->lines, r->ours, r->malformed, r->refusals, r->relay);
        sg_json_str(stdout, r->first, strlen(r->first));
        printf(", \"last\": ");
        sg_json_str(stdout, r->last, strlen(r->last));
        printf(", \"events\": {");
        for (int i = 0; i <= SG_EV_COUNT; i++)
            if (r->by_event[i]) {
                const char *id = i < SG_EV_COUNT
                    ? sg_event_def((enum sg_event) i)->id : "unknown";

                printf("%s", first ? "" : ", ");
                sg_json_str(stdout, id, strlen(id));
                printf(": %lu", r->by_event[i]);
                first = false;
            }
        printf("}, \"severities\": {");
        first = true;
        for (int i = 0; i < 8; i++)
            if (r->by_sev[i]) {
                const char *sev = sg_severity_name((enum sg_severity) i);

                printf("%s", first ? "" : ", ");
                sg_json_str(stdout, sev, strlen(sev));
                printf(": %lu", r->by_sev[i]);
                first = false;
            }
        printf("}");
        first = false;
    } else {
        if (r->shown > 0 && r->refusals > r->shown && !o->all && !o->client)
            printf("  ... %lu more (--all shows every one)\n",
                   r->refusals - r->shown);
        printf("\n%lu lines read, %lu from smtpguard (%lu malformed), %lu "
               "refusals; ", r->lines, r->ours, r->malformed, r->refusals);
        put_text(r->first[0] ? r->first : "-",
                 r->first[0] ? strlen(r->first) : 1);
        fputs(" .. ", stdout);
        put_text(r->last[0] ? r->last : "-",
                 r->last[0] ? strlen(r->last) : 1);
        putchar('\n');
        printf("\nEvents:\n");
        for (int i = 0; i <= SG_EV_COUNT; i++)
            if (r->by_event[i]) {
                const struct sg_event_def *d = i < SG_EV_COUNT
                    ? sg_event_def((enum sg_event) i) : NULL;

                printf("  %8lu  %s %-34s %s\n", r->by_event[i],
                       d ? d->id : "????????", d ? d->name : "(unknown ID)",
                       d ? sg_severity_name(d->severity) : "");
            }
        printf("\nBy severity:");
        for (int i = 0; i < 8; i++)
            if (r->by_sev[i])
                printf(" %s %lu", sg_severity_name((enum sg_severity) i),
                       r->by_sev[i]);
        printf("\n\nRelay attempts: %lu\n", r->relay);
    }
    print_top("Clients refused", &r->clients, o->top, o->json, nl, &first);
    print_top("Sender domains refused", &r->domains, o->top, o->json,
              nl, &first);
    print_top("Senders refused", &r->senders, o->top, o->json, nl, &first);
    print_top("Relay attempts by client", &r->relay_clients, o->top, o->json,
              nl, &first);
    print_top("DNSBL/DNSWL hits by zone", &r->zones, o->top, o->json,
              nl, &first);
    print_top("SPF results", &r->spf, o->top, o->json, nl, &first);
    print_top("Bans issued", &r->bans, o->top, o->json, nl, &first);
    if (o->json)
        puts(o->follow ? "}" : "\n}");
}

/* parse_count - a whole number in [0, max], or exit 2 naming the option */
static long parse_count(const char *opt, const char *s, long max)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0 || v > max) {
        fprintf(stderr, "smtpguardctl: %s '%s' is not a whole number from 0 "
                "to %ld\n", opt, s, max);
        exit(2);
    }
    return v;
}

static time_t parse_arg_time(const char *s)
{
    size_t end;
    char buf[64];
    time_t t;

    /* "2026-11-22T10:00:00" (UTC unless an offset follows), a date, or
     * "-3600" seconds ago. */
    if (s[0] == '-' && isdigit((unsigned char) s[1]))
        return time(NULL) - parse_count("--since/--until -SECONDS", s + 1,
                                        100L * 366 * 86400);
    snprintf(buf, sizeof(buf), "%s%s", s, strchr(s, 'T') ? "" : "T00:00:00");
    t = parse_time(buf, strlen(buf), &end);
    if (t < 0) {
        fprintf(stderr, "smtpguardctl: '%s' is not a time (2026-11-22, "
                "2026-11-22T10:00:00, 2026-11-22T10:00:00+01:00, or -SECONDS "
                "for that long ago)\n", s);
        exit(2);
    }
    return t;
}

int sg_ctl_report(int argc, char **argv, bool json);

int sg_ctl_report(int argc, char **argv, bool json)
{
    struct opts o = { 0, 0, NULL, false, false, json, 10 };
    struct report *r = calloc(1, sizeof(*r));
    int i, files = 0, rc = 0;
    bool followed = false;

    if (r == NULL)
        return 3;
    for (i = 0; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
        if (strcmp(argv[i], "--since") == 0 && i + 1 < argc)
            o.since = parse_arg_time(argv[++i]);
        else if (strcmp(argv[i], "--until") == 0 && i + 1 < argc)
            o.until = parse_arg_time(argv[++i]);
        else if (strcmp(argv[i], "--client") == 0 && i + 1 < argc)
            o.client = argv[++i];
        else if (strcmp(argv[i], "--top") == 0 && i + 1 < argc)
            o.top = (int) parse_count("--top", argv[++i], 1000000);
        else if (strcmp(argv[i], "--all") == 0)
            o.all = true;
        else if (strcmp(argv[i], "--follow") == 0 || strcmp(argv[i], "-f")
                 == 0)
            o.follow = true;
        else if (strcmp(argv[i], "--json") == 0)
            o.json = true;
        else {
            fprintf(stderr, "usage: smtpguardctl report [--since T] "
                    "[--until T] [--client ADDR] [--all] [--top N] "
                    "[--follow] [--json] [FILE...|-]\n");
            return 2;
        }
    }
    if (o.follow && (i == argc || strcmp(argv[argc - 1], "-") == 0)) {
        fprintf(stderr, "smtpguardctl: report --follow follows the last "
                "FILE, not standard input\n");
        free(r);
        return 2;
    }
    counter_init(&r->clients);
    counter_init(&r->domains);
    counter_init(&r->senders);
    counter_init(&r->zones);
    counter_init(&r->spf);
    counter_init(&r->bans);
    counter_init(&r->relay_clients);
    files = argc - i;
    for (int k = 0; k < (files > 0 ? files : 1); k++) {
        const char *path = files > 0 ? argv[i + k] : "-";
        bool tail = o.follow && k == files - 1;
        int fd = strcmp(path, "-") == 0 ? dup(0) : open(path, O_RDONLY);
        unsigned char magic[2];
        gzFile gz;
        long left;

        if (fd < 0 || (gz = gzdopen(tail ? dup(fd) : fd, "rb")) == NULL) {
            fprintf(stderr, "smtpguardctl: cannot read %s\n", path);
            if (fd >= 0)
                close(fd);
            rc = 3;
            continue;
        }
        if (tail && pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f &&
            magic[1] == 0x8b) {
            fprintf(stderr, "smtpguardctl: %s is compressed: --follow "
                    "follows the live (plain) log\n", path);
            gzclose(gz);
            close(fd);
            rc = 2;
            followed = true;            /* no summary either */
            break;
        }
        gzbuffer(gz, 1 << 18);
        if ((left = read_stream(r, &o, gz, tail)) < 0) {
            fprintf(stderr, "smtpguardctl: %s: read error (a truncated "
                    "gzip file?); the report covers what was read\n", path);
            rc = 3;
        }
        if (tail && left >= 0) {
            /* Go on from the end of the last whole line read. */
            off_t pos = (off_t) gztell(gz) - left;

            gzclose(gz);
            summary(r, &o);
            if (!o.json)
                printf("\nFollowing %s (Ctrl-C ends):\n", path);
            follow(r, &o, path, fd, pos);
            followed = true;
            break;
        }
        gzclose(gz);
        if (tail)
            close(fd);
    }
    if (!followed)
        summary(r, &o);
    counter_free(&r->clients);
    counter_free(&r->domains);
    counter_free(&r->senders);
    counter_free(&r->zones);
    counter_free(&r->spf);
    counter_free(&r->bans);
    counter_free(&r->relay_clients);
    free(r);
    return rc;
}
