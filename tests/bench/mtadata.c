/*
 * mtadata.c - client identities, per-stage macros, headers and body.
 *
 * Client addresses come only from the documentation ranges 192.0.2.0/24,
 * 198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32. Client i is IPv6
 * when floor((i+1)*P/100) > floor(i*P/100) (P = --ipv6-percent), which
 * spreads exactly round-down(N*P/100) IPv6 clients evenly over the N.
 * IPv4 client k gets host k/3%254+1 in range k%3 (762 distinct addresses);
 * IPv6 client m gets its own /64, 2001:db8:HI:LO::25, so per-/64
 * aggregation still sees m distinct clients.
 */
#include "mtadata.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MYHOSTNAME "mx.example.com"
#define POSTFIX_VERSION "Postfix 3.7.11"

static const char *const v4_ranges[3] = {"192.0.2", "198.51.100",
                                         "203.0.113"};

/* splitmix64: a cheap, stateless mixer for deterministic "random" values
 * (ports, queue ids) derived from the session number. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static void make_addr(const struct lc_config *cfg, struct lc_ident *id)
{
    uint64_t i = id->client, p = cfg->ipv6_percent;
    uint64_t before = i * p / 100, upto = (i + 1) * p / 100;

    if (cfg->client != NULL) {
        snprintf(id->addr, sizeof id->addr, "%s", cfg->client);
        id->v6 = cfg->client_v6;
    } else if (upto > before) { /* the `before`-th IPv6 client */
        struct in6_addr a6;

        memset(&a6, 0, sizeof a6);
        a6.s6_addr[0] = 0x20;
        a6.s6_addr[1] = 0x01;
        a6.s6_addr[2] = 0x0d;
        a6.s6_addr[3] = 0xb8;
        a6.s6_addr[4] = (unsigned char)(before >> 24);
        a6.s6_addr[5] = (unsigned char)(before >> 16);
        a6.s6_addr[6] = (unsigned char)(before >> 8);
        a6.s6_addr[7] = (unsigned char)before;
        a6.s6_addr[15] = 0x25;
        inet_ntop(AF_INET6, &a6, id->addr, sizeof id->addr);
        id->v6 = 1;
    } else {
        uint64_t k = i - before; /* the k-th IPv4 client */

        snprintf(id->addr, sizeof id->addr, "%s.%u", v4_ranges[k % 3],
                 (unsigned)((k / 3) % 254 + 1));
        id->v6 = 0;
    }
}

static void make_names(const struct lc_config *cfg, struct lc_ident *id)
{
    int sendmail = cfg->mode == LC_SENDMAIL;

    /* Three clients in four have a (pretend) PTR name. */
    id->resolved = (id->client % 4) != 3;
    if (id->resolved) {
        snprintf(id->name, sizeof id->name, "host-%u.clients.example.net",
                 id->client);
        snprintf(id->conn_host, sizeof id->conn_host, "%s", id->name);
        snprintf(id->underscore, sizeof id->underscore, "%s [%s]", id->name,
                 id->addr);
    } else {
        snprintf(id->name, sizeof id->name, "unknown");
        /* Both MTAs send an unresolved client as "[addr]". */
        snprintf(id->conn_host, sizeof id->conn_host, "[%s]", id->addr);
        snprintf(id->underscore, sizeof id->underscore,
                 sendmail ? "[%s]" : "unknown [%s]", id->addr);
    }
    if (cfg->helo != NULL)
        snprintf(id->helo, sizeof id->helo, "%s", cfg->helo);
    else if (id->resolved)
        snprintf(id->helo, sizeof id->helo, "%s", id->name);
    else
        snprintf(id->helo, sizeof id->helo, id->v6 ? "[IPv6:%s]" : "[%s]",
                 id->addr);
}

static void make_envelope(const struct lc_config *cfg, struct lc_ident *id,
                          uint64_t h)
{
    const char *at;
    struct tm tm;
    time_t now = time(NULL);

    if (cfg->mail != NULL)
        snprintf(id->sender, sizeof id->sender, "%s", cfg->mail);
    else
        snprintf(id->sender, sizeof id->sender, "bench@d%u.example.com",
                 (unsigned)(id->seq % cfg->domains));
    at = strrchr(id->sender, '@');
    snprintf(id->sender_domain, sizeof id->sender_domain, "%s",
             at != NULL ? at + 1 : MYHOSTNAME);
    if (cfg->mode == LC_SENDMAIL) /* e.g. 5A3F09C1004242 */
        snprintf(id->qid, sizeof id->qid, "%08llX%06u",
                 (unsigned long long)(h >> 32),
                 (unsigned)(id->seq % 1000000));
    else /* Postfix short queue id: 11 hex digits */
        snprintf(id->qid, sizeof id->qid, "%011llX",
                 (unsigned long long)(h & 0xFFFFFFFFFFFull));
    snprintf(id->msgid, sizeof id->msgid, "<%s.%llu@%s>", id->qid,
             (unsigned long long)id->seq, id->sender_domain);
    gmtime_r(&now, &tm);
    strftime(id->date, sizeof id->date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

void lc_ident_make(const struct lc_config *cfg, uint64_t seq,
                   struct lc_ident *id)
{
    uint64_t h = mix64(seq);

    memset(id, 0, sizeof *id);
    id->seq = seq;
    id->client = cfg->client != NULL ? 0 : (unsigned)(seq % cfg->clients);
    make_addr(cfg, id);
    snprintf(id->port, sizeof id->port, "%u",
             (unsigned)(1024 + (h >> 40) % 64000));
    snprintf(id->daemon_addr, sizeof id->daemon_addr, "%s",
             id->v6 ? "2001:db8:ffff::25" : "198.51.100.25");
    make_names(cfg, id);
    make_envelope(cfg, id, h);
}

const char *lc_rcpt(const struct lc_config *cfg, const struct lc_ident *id,
                    unsigned j, char *buf, size_t len)
{
    (void)id;
    if (cfg->nrcpt_list > 0)
        snprintf(buf, len, "%s", cfg->rcpt_list[j % cfg->nrcpt_list]);
    else
        snprintf(buf, len, "user%u@example.org", j + 1);
    return buf;
}

static const char *domain_of(const char *addr)
{
    const char *at = strrchr(addr, '@');

    return at != NULL ? at + 1 : MYHOSTNAME;
}

#define ADD(n, v)                                                            \
    do {                                                                     \
        if (cnt < max) {                                                     \
            kv[cnt].name = (n);                                              \
            kv[cnt].value = (v);                                             \
            cnt++;                                                           \
        }                                                                    \
    } while (0)

/* Postfix 3.7 defaults (milter_*_macros), plus the client macros most
 * policy milters ask the operator to add to milter_connect_macros. Postfix
 * sends a macro packet before every event, even an empty one. */
static int postfix_macros(const struct lc_config *cfg,
                          const struct lc_ident *id, int stage,
                          const char *rcpt, struct lc_kv *kv, size_t max)
{
    size_t cnt = 0, i;

    switch (stage) {
    case MP_M_CONNECT:
        ADD("j", MYHOSTNAME);
        ADD("{daemon_name}", cfg->daemon_name ? cfg->daemon_name : "smtpd");
        ADD("{daemon_addr}", id->daemon_addr);
        ADD("{daemon_port}", "25");
        ADD("v", POSTFIX_VERSION);
        ADD("_", id->underscore);
        ADD("{client_addr}", id->addr);
        ADD("{client_port}", id->port);
        ADD("{client_name}", id->name);
        ADD("{client_ptr}", id->name);
        ADD("{client_resolve}", id->resolved ? "OK" : "FAIL");
        for (i = 0; i < cfg->nmacros; i++)
            ADD(cfg->macros[i].name, cfg->macros[i].value);
        break;
    case MP_M_MAIL:
        ADD("i", id->qid);
        if (cfg->auth != NULL) {
            ADD("{auth_type}", "PLAIN");
            ADD("{auth_authen}", cfg->auth);
        }
        ADD("{mail_addr}", id->sender);
        ADD("{mail_host}", id->sender_domain);
        ADD("{mail_mailer}", "smtp");
        break;
    case MP_M_RCPT:
        ADD("i", id->qid);
        ADD("{rcpt_addr}", rcpt);
        ADD("{rcpt_host}", domain_of(rcpt));
        ADD("{rcpt_mailer}", cfg->rcpt_mailer ? cfg->rcpt_mailer : "local");
        break;
    case MP_M_DATA:
    case MP_M_EOH:
    case MP_M_EOM:
        ADD("i", id->qid);
        break;
    default: /* HELO: only TLS macros, and there is no TLS here */
        break;
    }
    return (int)cnt;
}

/* Sendmail 8.17 defaults (confMILTER_MACROS_*). Sendmail sends no macro
 * packet for stages without a macro list (DATA, EOH). */
static int sendmail_macros(const struct lc_config *cfg,
                           const struct lc_ident *id, int stage,
                           const char *rcpt, struct lc_kv *kv, size_t max)
{
    size_t cnt = 0, i;

    switch (stage) {
    case MP_M_CONNECT:
        ADD("j", MYHOSTNAME);
        ADD("_", id->underscore);
        ADD("{daemon_name}", cfg->daemon_name ? cfg->daemon_name : "MTA");
        ADD("{if_name}", MYHOSTNAME);
        ADD("{if_addr}", id->daemon_addr);
        for (i = 0; i < cfg->nmacros; i++)
            ADD(cfg->macros[i].name, cfg->macros[i].value);
        break;
    case MP_M_HELO:
        break; /* TLS macros only */
    case MP_M_MAIL:
        ADD("i", id->qid);
        if (cfg->auth != NULL) {
            ADD("{auth_type}", "PLAIN");
            ADD("{auth_authen}", cfg->auth);
            ADD("{auth_ssf}", "0");
        }
        ADD("{mail_mailer}", "esmtp");
        ADD("{mail_host}", id->sender_domain);
        ADD("{mail_addr}", id->sender);
        break;
    case MP_M_RCPT:
        ADD("{rcpt_mailer}", cfg->rcpt_mailer ? cfg->rcpt_mailer : "local");
        ADD("{rcpt_host}", domain_of(rcpt));
        ADD("{rcpt_addr}", rcpt);
        break;
    case MP_M_EOM:
        ADD("{msg_id}", id->msgid);
        break;
    default:
        return -1;
    }
    return (int)cnt;
}

int lc_stage_macros(const struct lc_config *cfg, const struct lc_ident *id,
                    int stage, const char *rcpt, struct lc_kv *kv,
                    size_t max)
{
    if (cfg->mode == LC_SENDMAIL)
        return sendmail_macros(cfg, id, stage, rcpt, kv, max);
    return postfix_macros(cfg, id, stage, rcpt, kv, max);
}

/* Append a formatted string to scratch and return it (or "" when full). */
static const char *scratch_fmt(char **pos, size_t *left, const char *fmt,
                               ...) __attribute__((format(printf, 3, 4)));

static const char *scratch_fmt(char **pos, size_t *left, const char *fmt,
                               ...)
{
    va_list ap;
    char *s = *pos;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(s, *left, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= *left)
        return "";
    *pos += n + 1;
    *left -= (size_t)n + 1;
    return s;
}

size_t lc_headers(const struct lc_config *cfg, const struct lc_ident *id,
                  struct lc_kv *kv, size_t max, char *scratch,
                  size_t scratchlen)
{
    size_t cnt = 0;
    char rcpt[256];
    char *pos = scratch;
    size_t left = scratchlen;

    /* An upstream hop's Received header (the MTA hides its own), folded
     * over three lines as a real one is. */
    ADD("Received", scratch_fmt(&pos, &left,
                                "from localhost (localhost [127.0.0.1])\n"
                                "\tby %s with ESMTP id %s;\n\t%s",
                                id->helo, id->qid, id->date));
    ADD("Date", id->date);
    ADD("From", scratch_fmt(&pos, &left, "Bench Sender <%s>", id->sender));
    ADD("To", scratch_fmt(&pos, &left, "<%s>",
                          lc_rcpt(cfg, id, 0, rcpt, sizeof rcpt)));
    ADD("Subject", scratch_fmt(&pos, &left, "smtpguard benchmark message %llu",
                               (unsigned long long)id->seq));
    ADD("Message-ID", id->msgid);
    ADD("MIME-Version", "1.0");
    ADD("Content-Type", "text/plain; charset=us-ascii");
    return cnt;
}

const char *lc_body(size_t *len)
{
    static const char body[] =
        "Hello,\r\n"
        "\r\n"
        "this is a benchmark message generated by sg-loadclient.\r\n"
        "It has a few lines of plain text so that the body stage\r\n"
        "carries a realistic amount of data without dominating the\r\n"
        "cost of the session.\r\n"
        "\r\n"
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit,\r\n"
        "sed do eiusmod tempor incididunt ut labore et dolore magna\r\n"
        "aliqua. Ut enim ad minim veniam, quis nostrud exercitation\r\n"
        "ullamco laboris nisi ut aliquip ex ea commodo consequat.\r\n"
        "Duis aute irure dolor in reprehenderit in voluptate velit\r\n"
        "esse cillum dolore eu fugiat nulla pariatur. Excepteur sint\r\n"
        "occaecat cupidatat non proident, sunt in culpa qui officia\r\n"
        "deserunt mollit anim id est laborum.\r\n"
        "\r\n"
        "-- \r\n"
        "sg-loadclient\r\n";

    *len = sizeof body - 1;
    return body;
}
