/*
 * dnsbl.c - DNSBL/DNSWL zone configuration and answer matching
 *
 * See dnsbl.h for the filter syntax. Parsing is strict: an operator's typo
 * ("127.0.0.[2..]", "127.0.0.300") is refused with a reason rather than
 * read as something that lists everybody or nobody.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>         /* AF_INET */

#include "dname.h"
#include "dnsbl.h"

#define MAX_ALTERNATIVES 32

static void bit_set(uint8_t set[32], unsigned v)
{
    set[v >> 3] |= (uint8_t) (1u << (v & 7));
}

static bool bit_get(const uint8_t set[32], unsigned v)
{
    return (set[v >> 3] >> (v & 7)) & 1;
}

/* number - a decimal 0-255 at *pp; advances *pp */
static int number(const char **pp, unsigned *out)
{
    const char *p = *pp;
    unsigned v = 0;
    int digits = 0;

    while (isdigit((unsigned char) *p) && digits < 4) {
        v = v * 10 + (unsigned) (*p++ - '0');
        digits++;
    }
    if (digits == 0 || digits > 3 || v > 255)
        return SG_EINVAL;
    *pp = p;
    *out = v;
    return SG_OK;
}

/* octet - "N" or "[a;b..c;...]" at *pp into set */
static int octet(const char **pp, uint8_t set[32], struct sg_err *err)
{
    const char *p = *pp;
    unsigned lo, hi;

    if (*p != '[') {
        if (number(&p, &lo) != SG_OK) {
            sg_err_set(err, "'%.20s': an octet must be 0-255 or [list]", *pp);
            return SG_EINVAL;
        }
        bit_set(set, lo);
        *pp = p;
        return SG_OK;
    }
    p++;
    for (;;) {
        if (number(&p, &lo) != SG_OK) {
            sg_err_set(err, "'%.20s': a [list] holds numbers 0-255 and "
                       "ranges a..b separated by ';'", *pp);
            return SG_EINVAL;
        }
        hi = lo;
        if (p[0] == '.' && p[1] == '.') {
            p += 2;
            if (number(&p, &hi) != SG_OK || hi < lo) {
                sg_err_set(err, "'%.20s': a range a..b needs a <= b <= 255",
                           *pp);
                return SG_EINVAL;
            }
        }
        for (unsigned v = lo; v <= hi; v++)
            bit_set(set, v);
        if (*p == ']')
            break;
        if (*p != ';') {
            sg_err_set(err, "'%.20s': expected ';' or ']'", *pp);
            return SG_EINVAL;
        }
        p++;
    }
    *pp = p + 1;
    return SG_OK;
}

static int parse_pattern(const char *text, struct sg_dnsbl_match *m,
                         struct sg_err *err)
{
    const char *p = text;

    m->kind = SG_DNSBL_PATTERN;
    for (int i = 0; i < 4; i++) {
        if (octet(&p, m->octet[i], err) != SG_OK)
            return SG_EINVAL;
        if (i < 3 && *p++ != '.') {
            sg_err_set(err, "'%s': four octets separated by dots expected",
                       text);
            return SG_EINVAL;
        }
    }
    if (*p != '\0') {
        sg_err_set(err, "'%s': trailing characters", text);
        return SG_EINVAL;
    }
    return SG_OK;
}

static int parse_mask(const char *text, struct sg_dnsbl_match *m,
                      struct sg_err *err)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(text + 1, &end, 0);
    if (text[1] == '\0' || !isdigit((unsigned char) text[1]) ||
        *end != '\0' || errno != 0 || v == 0 || v > 255) {
        sg_err_set(err, "'%s': a bitmask is &1-255 (&0x04, &12)", text);
        return SG_EINVAL;
    }
    m->kind = SG_DNSBL_MASK;
    m->mask = (unsigned) v;
    return SG_OK;
}

/* parse_one - one alternative of a filter */
static int parse_one(const char *text, struct sg_dnsbl_match *m,
                     struct sg_err *err)
{
    memset(m, 0, sizeof(*m));
    if (text[0] == '&')
        return parse_mask(text, m, err);
    if (strchr(text, '/') != NULL) {
        struct sg_err e;

        if (sg_cidr_parse(text, &m->net, &e) != SG_OK ||
            m->net.addr.family != AF_INET) {
            sg_err_set(err, "'%s': not an IPv4 network (%s)", text,
                       m->net.addr.family == AF_INET6 ? "DNSBL answers are "
                       "IPv4" : e.msg);
            return SG_EINVAL;
        }
        m->kind = SG_DNSBL_NET;
        return SG_OK;
    }
    return parse_pattern(text, m, err);
}

int sg_dnsbl_answers_parse(struct sg_dnsbl_zone *z, const char *text,
                           struct sg_err *err)
{
    struct sg_dnsbl_match *m;
    char buf[256], *tok, *save;
    size_t n = 0;

    if (text == NULL)
        text = "";
    if (strlen(text) >= sizeof(buf)) {
        sg_err_set(err, "answer filter longer than %zu characters",
                   sizeof(buf) - 1);
        return SG_EINVAL;
    }
    m = sg_calloc(MAX_ALTERNATIVES, sizeof(*m));
    if (m == NULL) {
        sg_err_set(err, "out of memory");
        return SG_ENOMEM;
    }
    sg_strlcpy(buf, text, sizeof(buf));
    for (tok = strtok_r(buf, ", \t", &save); tok != NULL;
         tok = strtok_r(NULL, ", \t", &save)) {
        if (n == MAX_ALTERNATIVES) {
            sg_err_set(err, "more than %d alternatives", MAX_ALTERNATIVES);
            sg_free(m);
            return SG_EINVAL;
        }
        if (parse_one(tok, &m[n], err) != SG_OK) {
            sg_free(m);
            return SG_EINVAL;
        }
        n++;
    }
    if (n == 0)
        m[n++].kind = SG_DNSBL_ANY;
    if ((z->answers = sg_strdup(text)) == NULL) {
        sg_free(m);
        sg_err_set(err, "out of memory");
        return SG_ENOMEM;
    }
    z->match = m;
    z->nmatch = n;
    return SG_OK;
}

void sg_dnsbl_zone_clear(struct sg_dnsbl_zone *z)
{
    sg_free(z->zone);
    sg_free(z->answers);
    sg_free(z->match);
    memset(z, 0, sizeof(*z));
}

int sg_dnsbl_zone_init(struct sg_dnsbl_zone *z, const char *zone,
                       long weight, const char *answers, bool txt,
                       bool ipv6, struct sg_err *err)
{
    char name[SG_DNSBL_ZONE_MAX + 1];
    int rc;

    memset(z, 0, sizeof(*z));
    if (zone == NULL || sg_dname_normalize(zone, name, sizeof(name))
        != SG_OK || strchr(name, '.') == NULL) {
        sg_err_set(err, "zone '%s' is not a DNS name with at least two "
                   "labels", zone ? zone : "NULL");
        return SG_EINVAL;
    }
    if (weight == 0) {
        sg_err_set(err, "weight 0 counts nothing (negative weights make an "
                   "allow list)");
        return SG_EINVAL;
    }
    if ((z->zone = sg_strdup(name)) == NULL) {
        sg_err_set(err, "out of memory");
        return SG_ENOMEM;
    }
    rc = sg_dnsbl_answers_parse(z, answers, err);
    if (rc != SG_OK) {
        sg_dnsbl_zone_clear(z);
        return rc;
    }
    z->weight = weight;
    z->txt = txt;
    z->ipv6 = ipv6;
    return SG_OK;
}

int sg_dnsbl_site_parse(struct sg_dnsbl_zone *z, const char *site,
                        struct sg_err *err)
{
    char buf[SG_DNSBL_ZONE_MAX + 260], *eq, *star;
    long weight = 1;

    if (site == NULL || strlen(site) >= sizeof(buf)) {
        sg_err_set(err, "site missing or too long");
        return SG_EINVAL;
    }
    sg_strlcpy(buf, site, sizeof(buf));
    if ((star = strrchr(buf, '*')) != NULL) {
        char *end;

        *star = '\0';
        errno = 0;
        weight = strtol(star + 1, &end, 10);
        if (star[1] == '\0' || *end != '\0' || errno != 0 ||
            weight < -1000000 || weight > 1000000) {
            sg_err_set(err, "'%s': weight after '*' must be a whole number "
                       "(-1000000..1000000)", star + 1);
            return SG_EINVAL;
        }
    }
    if ((eq = strchr(buf, '=')) != NULL)
        *eq++ = '\0';
    return sg_dnsbl_zone_init(z, buf, weight, eq ? eq : "", true, true, err);
}

static bool match_one(const struct sg_dnsbl_match *m, const uint8_t a[4])
{
    struct sg_addr addr = { .family = AF_INET };

    switch (m->kind) {
    case SG_DNSBL_ANY:
        return a[0] == 127 && !(a[1] == 255 && a[2] == 255);
    case SG_DNSBL_PATTERN:
        for (int i = 0; i < 4; i++)
            if (!bit_get(m->octet[i], a[i]))
                return false;
        return true;
    case SG_DNSBL_NET:
        memcpy(addr.b, a, 4);
        return sg_cidr_match(&m->net, &addr);
    case SG_DNSBL_MASK:
        /* Only list answers (127/8) carry bits; anything else is junk. */
        return a[0] == 127 && (a[3] & m->mask) != 0;
    }
    return false;
}

bool sg_dnsbl_answer_counts(const struct sg_dnsbl_zone *z, const uint8_t a[4])
{
    for (size_t i = 0; i < z->nmatch; i++)
        if (match_one(&z->match[i], a))
            return true;
    return false;
}
