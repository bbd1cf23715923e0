/*
 * spfrecord.c - RFC 7208 section 12 grammar, with bounds (see spfrecord.h)
 *
 * A small recursive-descent parser over (pointer, end). Each function
 * consumes what it recognises and returns false with a reason otherwise.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "spfrecord.h"

struct p {
    const char *s, *end;
    int macros;
    bool exp;                   /* macro letters c r t allowed */
    char *reason;
    size_t rsize;
};

static bool fail(struct p *p, const char *what)
{
    if (p->reason[0] == '\0')
        snprintf(p->reason, p->rsize, "%s", what);
    return false;
}

static bool alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool digit(int c)
{
    return c >= '0' && c <= '9';
}

bool sg_spf_is_record(const char *text, size_t len)
{
    return len >= 6 && strncasecmp(text, "v=spf1", 6) == 0 &&
        (len == 6 || text[6] == ' ');
}

/* macro_expand - "%{" letter *DIGIT ["r"] *delimiter "}" / %% %_ %- */
static bool macro_expand(struct p *p)
{
    const char *s = p->s;
    int n = 0, digits = 0;
    char c;

    if (s + 1 >= p->end || s[0] != '%')
        return fail(p, "bad macro");
    if (s[1] == '%' || s[1] == '_' || s[1] == '-') {
        p->s = s + 2;
        return true;
    }
    if (s[1] != '{' || s + 3 >= p->end)
        return fail(p, "'%' not followed by {, %, _ or -");
    if (++p->macros > SG_SPF_MACROS_MAX)
        return fail(p, "too many macros");
    c = (char) tolower((unsigned char) s[2]);
    if (strchr("slodiphv", c) == NULL &&
        !(p->exp && strchr("crt", c) != NULL))
        return fail(p, "unknown macro letter");
    s += 3;
    while (s < p->end && digit(*s)) {
        n = n * 10 + (*s++ - '0');
        if (++digits > 3)
            return fail(p, "macro transformer too large");
    }
    if (digits > 0 && (n == 0 || n > 128))
        return fail(p, "macro transformer must be 1-128");
    if (s < p->end && (*s == 'r' || *s == 'R'))
        s++;
    while (s < p->end && strchr(".-+,/_=", *s) != NULL && *s != '\0')
        s++;
    if (s >= p->end || *s != '}')
        return fail(p, "unterminated macro");
    p->s = s + 1;
    return true;
}

/* macro_string - up to a space or `stop` (exclusive); never empty-checks */
static bool macro_string(struct p *p, const char *stop)
{
    while (p->s < p->end && *p->s != ' ' && strchr(stop, *p->s) == NULL) {
        unsigned char c = (unsigned char) *p->s;

        if (c == '%') {
            if (!macro_expand(p))
                return false;
            continue;
        }
        if (c < 0x21 || c > 0x7e)
            return fail(p, "character outside visible ASCII");
        p->s++;
    }
    return true;
}

/* toplabel_ok - the last label of a literal domain end (RFC 7208 7.1) */
static bool toplabel_ok(const char *l, size_t n)
{
    bool has_alpha = false;

    if (n == 0 || n > 63 || l[0] == '-' || l[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (alpha(l[i]))
            has_alpha = true;
        else if (!digit(l[i]) && l[i] != '-')
            return false;
    }
    /* all-digit labels only with a hyphen (1*alphanum "-" ...) */
    return has_alpha || memchr(l, '-', n) != NULL;
}

/* cidr_suffix - where a term's dual-cidr-length starts (or its end) */
static const char *cidr_suffix(const char *t, const char *end,
                               const char **v4, const char **v6)
{
    const char *p = end;

    *v4 = *v6 = NULL;
    while (p > t && digit(p[-1]))
        p--;
    if (p == end || p == t || p[-1] != '/')
        return end;
    p--;
    if (p > t && p[-1] == '/') {
        *v6 = --p;
        end = p;
        while (p > t && digit(p[-1]))
            p--;
        if (p == end || p == t || p[-1] != '/')
            return *v6;
        p--;
    }
    *v4 = p;
    return p;
}

/* domain_spec_to - macro-string domain-end, up to `limit` (a space) */
static bool domain_spec_to(struct p *p, const char *limit)
{
    const char *start = p->s, *end, *dot, *saved = p->end;

    p->end = limit;
    if (!macro_string(p, "")) {
        p->end = saved;
        return false;
    }
    p->end = saved;
    end = p->s;
    if (end == start)
        return fail(p, "empty domain-spec");
    if (end - start > 253 + 64)
        return fail(p, "domain-spec too long");
    /* domain-end: a macro-expand, or "." toplabel ["."] (a trailing dot
     * after a macro too, as the RFC 7208 test suite has it) */
    if (end[-1] == '.' && end - start > 1)
        end--;
    if (end[-1] == '}' || (end - start >= 2 && end[-2] == '%'))
        return true;
    for (dot = end - 1; dot >= start && *dot != '.'; dot--)
        ;
    if (dot < start)
        return fail(p, "domain-spec is not a domain (no dot)");
    if (!toplabel_ok(dot + 1, (size_t) (end - dot - 1)))
        return fail(p, "domain-spec ends in an invalid top label");
    return true;
}

/* domain_spec - a domain-spec that no prefix length may follow */
static bool domain_spec(struct p *p)
{
    const char *e = p->s;

    while (e < p->end && *e != ' ')
        e++;
    return domain_spec_to(p, e);
}

/* cidr - "/" digits without a leading zero, at most max */
static bool cidr(struct p *p, int max)
{
    const char *s = p->s + 1;
    int v = 0, n = 0;

    while (s < p->end && digit(*s)) {
        v = v * 10 + (*s++ - '0');
        if (++n > 3)
            return fail(p, "prefix length too long");
    }
    if (n == 0 || (n > 1 && p->s[1] == '0') || v > max)
        return fail(p, "bad prefix length");
    p->s = s;
    return true;
}

/* dual_cidr - [ip4-cidr] ["/" ip6-cidr] */
static bool dual_cidr(struct p *p)
{
    if (p->s < p->end && *p->s == '/' && p->s + 1 < p->end &&
        p->s[1] != '/') {
        if (!cidr(p, 32))
            return false;
    }
    if (p->s + 1 < p->end && p->s[0] == '/' && p->s[1] == '/') {
        p->s++;
        if (!cidr(p, 128))
            return false;
    }
    return true;
}

static bool ip4_network(struct p *p)
{
    const char *s = p->s;

    for (int i = 0; i < 4; i++) {
        int v = 0, n = 0;

        while (s < p->end && digit(*s)) {
            v = v * 10 + (*s++ - '0');
            if (++n > 3)
                return fail(p, "bad ip4 address");
        }
        if (n == 0 || v > 255 || (n > 1 && s[-n] == '0'))
            return fail(p, "bad ip4 address");
        if (i < 3 && (s >= p->end || *s++ != '.'))
            return fail(p, "bad ip4 address");
    }
    p->s = s;
    return true;
}

static bool ip6_network(struct p *p)
{
    const char *s = p->s;
    char buf[64];
    size_t n;
    unsigned char tmp[16];

    while (s < p->end && (isxdigit((unsigned char) *s) || *s == ':' ||
                          *s == '.'))
        s++;
    n = (size_t) (s - p->s);
    if (n == 0 || n >= sizeof(buf))
        return fail(p, "bad ip6 address");
    memcpy(buf, p->s, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET6, buf, tmp) != 1)
        return fail(p, "bad ip6 address");
    p->s = s;
    return true;
}

/* at_term_end - the term ends here (space or end of record) */
static bool at_term_end(struct p *p)
{
    return p->s == p->end || *p->s == ' ' || fail(p, "junk after a term");
}

static bool mechanism(struct p *p, const char *name, size_t n,
                      struct sg_spf_check *out)
{
    bool colon = p->s < p->end && *p->s == ':';

#define IS(m) (n == sizeof(m) - 1 && strncasecmp(name, m, n) == 0)
    if (IS("all"))
        out->has_all = true;
    else if (IS("include") || IS("exists")) {
        out->dns_terms++;
        if (!colon)
            return fail(p, "include/exists need a domain");
        p->s++;
        if (!domain_spec(p))
            return false;
    } else if (IS("a") || IS("mx")) {
        out->dns_terms++;
        if (colon) {
            /* Any visible character may be in the domain, '/' too (7.1):
             * the prefix lengths are what a valid suffix says they are. */
            const char *te = p->s, *v4, *v6;

            while (te < p->end && *te != ' ')
                te++;
            p->s++;
            if (!domain_spec_to(p, cidr_suffix(p->s, te, &v4, &v6)))
                return false;
        }
        if (!dual_cidr(p))
            return false;
    } else if (IS("ptr")) {
        out->dns_terms++;
        if (colon) {
            p->s++;
            if (!domain_spec(p))
                return false;
        }
    } else if (IS("ip4") || IS("ip6")) {
        bool v4 = IS("ip4");

        if (!colon)
            return fail(p, "ip4/ip6 need an address");
        p->s++;
        if (!(v4 ? ip4_network(p) : ip6_network(p)))
            return false;
        if (p->s < p->end && *p->s == '/' && !cidr(p, v4 ? 32 : 128))
            return false;
    } else {
        return fail(p, "unknown mechanism");
    }
#undef IS
    return at_term_end(p);
}

static bool modifier(struct p *p, const char *name, size_t n,
                     struct sg_spf_check *out)
{
    if (n == 8 && strncasecmp(name, "redirect", 8) == 0) {
        if (out->has_redirect)
            return fail(p, "redirect= twice");
        out->has_redirect = true;
        out->dns_terms++;
        return domain_spec(p) && at_term_end(p);
    }
    if (n == 3 && strncasecmp(name, "exp", 3) == 0) {
        if (out->has_exp)
            return fail(p, "exp= twice");
        out->has_exp = true;
        return domain_spec(p) && at_term_end(p);
    }
    /* unknown-modifier = name "=" macro-string: ignored, but checked */
    return macro_string(p, "") && at_term_end(p);
}

static bool term(struct p *p, struct sg_spf_check *out)
{
    const char *name;
    size_t n;

    if (*p->s == '+' || *p->s == '-' || *p->s == '?' || *p->s == '~') {
        p->s++;
        name = p->s;
        while (p->s < p->end && (alpha(*p->s) || digit(*p->s)))
            p->s++;
        return mechanism(p, name, (size_t) (p->s - name), out);
    }
    name = p->s;
    if (!alpha(*p->s))
        return fail(p, "a term must start with a letter");
    while (p->s < p->end && (alpha(*p->s) || digit(*p->s) || *p->s == '-' ||
                             *p->s == '_' || *p->s == '.'))
        p->s++;
    n = (size_t) (p->s - name);
    if (p->s < p->end && *p->s == '=') {
        p->s++;
        return modifier(p, name, n, out);
    }
    /* A mechanism name is letters and digits only (ip4, ip6). */
    for (size_t i = 0; i < n; i++)
        if (!alpha(name[i]) && !digit(name[i]))
            return fail(p, "unknown mechanism");
    return mechanism(p, name, n, out);
}

void sg_spf_record_check(const char *text, size_t len,
                         struct sg_spf_check *out)
{
    struct p p;
    int terms = 0;

    memset(out, 0, sizeof(*out));
    p.s = text;
    p.end = text + len;
    p.macros = 0;
    p.exp = false;
    p.reason = out->reason;
    p.rsize = sizeof(out->reason);
    if (len > SG_SPF_RECORD_MAX) {
        fail(&p, "record too long");
        return;
    }
    if (memchr(text, '\0', len) != NULL) {
        fail(&p, "NUL byte in the record");
        return;
    }
    if (!sg_spf_is_record(text, len)) {
        fail(&p, "not an SPF record");
        return;
    }
    p.s += 6;
    for (;;) {
        while (p.s < p.end && *p.s == ' ')
            p.s++;
        if (p.s == p.end)
            break;
        if (p.s[-1] != ' ') {
            fail(&p, "terms must be separated by spaces");
            return;
        }
        if (++terms > SG_SPF_TERMS_MAX) {
            fail(&p, "too many terms");
            return;
        }
        if (!term(&p, out))
            return;
    }
    out->ok = true;
}

bool sg_spf_exp_check(const char *text, size_t len, char *reason,
                      size_t size)
{
    struct p p;

    reason[0] = '\0';
    p.s = text;
    p.end = text + len;
    p.macros = 0;
    p.exp = true;
    p.reason = reason;
    p.rsize = size;
    if (len > SG_SPF_EXP_MAX)
        return fail(&p, "explanation too long");
    if (memchr(text, '\0', len) != NULL)
        return fail(&p, "NUL byte in the explanation");
    while (p.s < p.end) {
        if (*p.s == ' ') {
            p.s++;
            continue;
        }
        if (!macro_string(&p, ""))
            return false;
    }
    return true;
}

/* emit - append n bytes and a space, if they fit */
static bool emit(char *out, size_t size, size_t *o, const char *s, size_t n)
{
    if (*o + n + 2 > size)
        return false;
    memcpy(out + *o, s, n);
    *o += n;
    out[(*o)++] = ' ';
    out[*o] = '\0';
    return true;
}

static bool emit2(char *out, size_t size, size_t *o, char q,
                  const char *mech)
{
    char buf[64];

    snprintf(buf, sizeof(buf), "%c%s", q, mech);
    return emit(out, size, o, buf, strlen(buf));
}

/* has_all - the record has an "all" mechanism (then redirect= is moot) */
static bool has_all(const char *p, const char *end)
{
    while (p < end) {
        const char *t;

        while (p < end && *p == ' ')
            p++;
        t = p;
        while (p < end && *p != ' ')
            p++;
        if (t < p && strchr("+-?~", *t) != NULL)
            t++;
        if (p - t == 3 && strncasecmp(t, "all", 3) == 0)
            return true;
    }
    return false;
}

/* lower_r - the macro transformer "R" as "r": ABNF is case-insensitive
 * (RFC 5234 2.3), so RFC 7208 7.1's "r" is also "R", which libspf2
 * refuses. After a macro's letter only digits, "r" and delimiters
 * follow, so every R before the "}" is the transformer. */
static void lower_r(char *s)
{
    for (char *p = s; *p != '\0'; p++) {
        if (*p != '%' || p[1] == '\0')
            continue;
        if (p[1] != '{') {
            p++;                /* %% %_ %- */
            continue;
        }
        for (p += 2; *p != '\0' && *p != '}'; p++)
            if (*p == 'R' && p[-1] != '{')
                *p = 'r';
        if (*p == '\0')
            break;
    }
}

size_t sg_spf_record_for_libspf2(const char *in, size_t len, bool client_v4,
                                 char *out, size_t size)
{
    const char *p = in + 6, *end = in + len;
    const char *mod[2];
    size_t modlen[2], nmod = 0;
    bool all = has_all(p, end);
    size_t o = 0;

    out[0] = '\0';
    if (!emit(out, size, &o, "v=spf1", 6))
        return 0;
    while (p < end) {
        const char *t, *te, *n, *v4, *v6, *cut;
        char q = '+';
        size_t nl;

        while (p < end && *p == ' ')
            p++;
        if (p == end)
            break;
        t = p;
        while (p < end && *p != ' ')
            p++;
        te = p;
        n = t;
        if (*n == '+' || *n == '-' || *n == '?' || *n == '~')
            q = *n++;
        nl = 0;
        while (n + nl < te && (alpha(n[nl]) || digit(n[nl]) ||
                               strchr("-_.", n[nl]) != NULL))
            nl++;
        if (n + nl < te && n[nl] == '=') {
            /* Unknown modifiers mean nothing (6): libspf2 chokes on some.
             * With "all", redirect= is never used (6.1). The others go
             * last: they take effect after all mechanisms wherever they
             * stand (6, 6.1), and libspf2 follows a redirect= that
             * stands before a mechanism before evaluating it. Each is
             * there once at most (sg_spf_record_check). */
            if (((nl == 8 && strncasecmp(n, "redirect", 8) == 0 && !all) ||
                 (nl == 3 && strncasecmp(n, "exp", 3) == 0)) && nmod < 2) {
                mod[nmod] = t;
                modlen[nmod++] = (size_t) (te - t);
            }
            continue;
        }
        if ((nl == 3 && strncasecmp(n, "ip4", 3) == 0 && te - t > 2 &&
             strncmp(te - 2, "/0", 2) == 0 && te[-3] != '/')) {
            emit2(out, size, &o, q, "ip4:0.0.0.0/1");
            emit2(out, size, &o, q, "ip4:128.0.0.0/1");
            continue;
        }
        if (nl == 3 && strncasecmp(n, "ip6", 3) == 0 && te - t > 2 &&
            strncmp(te - 2, "/0", 2) == 0) {
            emit2(out, size, &o, q, "ip6:::/1");
            emit2(out, size, &o, q, "ip6:8000::/1");
            continue;
        }
        if ((nl == 1 && (*n == 'a' || *n == 'A')) ||
            (nl == 2 && strncasecmp(n, "mx", 2) == 0)) {
            /* Only the prefix of the client's family matters. libspf2
             * refuses /0, "any address of the family": an exists: on a
             * marked name that our DNS layer answers (SG_SPF_MARK_*). */
            char buf[SG_SPF_RECORD_MAX + 40];
            const char *keep, *mark = NULL;
            bool mx = nl == 2;

            cut = cidr_suffix(n + nl, te, &v4, &v6);
            keep = client_v4 ? v4 : v6;
            if (client_v4 && keep != NULL && strncmp(keep, "/0", 2) == 0 &&
                (keep + 2 == te || keep + 2 == v6))
                mark = mx ? SG_SPF_MARK_MX4 : "";
            else if (!client_v4 && keep != NULL && te - keep == 3 &&
                     strncmp(keep, "//0", 3) == 0)
                mark = mx ? SG_SPF_MARK_MX6 : SG_SPF_MARK_A6;
            if (mark != NULL) {
                snprintf(buf, sizeof(buf), "%cexists:%.*s%s", q,
                         n + nl < cut && n[nl] == ':'
                         ? (int) (cut - n - nl - 1) : 4,
                         n + nl < cut && n[nl] == ':' ? n + nl + 1 : "%{d}",
                         mark);
                emit(out, size, &o, buf, strlen(buf));
                continue;
            }
            snprintf(buf, sizeof(buf), "%.*s%.*s", (int) (cut - t), t,
                     keep == NULL ? 0 : client_v4
                     ? (int) ((v6 ? v6 : te) - keep) : (int) (te - keep),
                     keep ? keep : "");
            emit(out, size, &o, buf, strlen(buf));
            continue;
        }
        emit(out, size, &o, t, (size_t) (te - t));
    }
    for (size_t k = 0; k < nmod; k++)
        emit(out, size, &o, mod[k], modlen[k]);
    if (o > 0 && out[o - 1] == ' ')
        out[--o] = '\0';
    lower_r(out);
    return o;
}

/* parts - how many parts v has, split at any of delims (7.1) */
static unsigned long parts(const char *v, const char *delims, size_t nd)
{
    unsigned long n = 1;

    for (; *v != '\0'; v++)
        if (memchr(delims, *v, nd) != NULL)
            n++;
    return n;
}

void sg_spf_macro_digits(char *rec, const char *const values[26])
{
    for (char *p = rec; *p != '\0'; p++) {
        char *digits, *dend, *q, *close;
        const char *v;
        unsigned long want = 0;
        int letter;

        if (*p != '%' || p[1] == '\0')
            continue;
        if (p[1] != '{') {
            p++;                /* %% %_ %- */
            continue;
        }
        if ((close = strchr(p + 2, '}')) == NULL)
            return;
        letter = p[2] | 0x20;
        digits = dend = p + 3;
        while (dend < close && *dend >= '0' && *dend <= '9') {
            if (want < 100000)
                want = want * 10 + (unsigned long) (*dend - '0');
            dend++;
        }
        if (dend == digits || letter < 'a' || letter > 'z' ||
            (v = values[letter - 'a']) == NULL) {
            p = close;
            continue;
        }
        q = dend < close && (*dend == 'r' || *dend == 'R') ? dend + 1 : dend;
        if (want >= (q < close ? parts(v, q, (size_t) (close - q))
                     : parts(v, ".", 1))) {
            memmove(digits, dend, strlen(dend) + 1);
            close -= dend - digits;
        }
        p = close;
    }
}

/* expand_one - RFC 7208 7.3 for one macro of a known value: split at the
 * delimiters (empty parts kept), reversed if asked, the rightmost `keep`
 * parts, rejoined with "." ("and not the original splitting
 * characters"); URL-escaped for an upper-case letter. Written as record
 * text (% as %%, space as %_). False when it does not fit or a part
 * holds a byte no record can (or "/"). */
static bool expand_one(const char *v, unsigned long keep, bool rev,
                       const char *delims, size_t nd, bool upper,
                       char *out, size_t size, size_t *len)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *part[512];
    size_t plen[512], n = 0, first, o = 0;

    part[0] = v;
    for (const char *p = v;; p++) {
        if (*p != '\0' && memchr(delims, *p, nd) == NULL)
            continue;
        plen[n] = (size_t) (p - part[n]);
        if (++n == sizeof(part) / sizeof(part[0]) && *p != '\0')
            return false;
        if (*p == '\0')
            break;
        part[n] = p + 1;
    }
    first = keep > 0 && keep < n ? n - keep : 0;
    for (size_t k = first; k < n; k++) {
        size_t i = rev ? n - 1 - k : k;     /* the k-th after reversal */

        if (k > first) {
            if (o + 1 >= size)
                return false;
            out[o++] = '.';
        }
        for (size_t j = 0; j < plen[i]; j++) {
            unsigned char ch = (unsigned char) part[i][j];
            char enc[3];
            size_t ne = 0;

            /* a "/" could read as a prefix length after a: or mx: */
            if (ch < 0x20 || ch > 0x7e || ch == '/')
                return false;
            if (upper && !alpha(ch) && !digit(ch) &&
                strchr("-._~", ch) == NULL) {
                enc[ne++] = '%';
                enc[ne++] = hex[ch >> 4];
                enc[ne++] = hex[ch & 0xf];
            } else {
                enc[ne++] = (char) ch;
            }
            for (size_t e = 0; e < ne; e++) {
                if (o + 2 >= size)
                    return false;
                if (enc[e] == '%' || enc[e] == ' ') {
                    out[o++] = '%';
                    out[o++] = enc[e] == '%' ? '%' : '_';
                } else {
                    out[o++] = enc[e];
                }
            }
        }
    }
    out[o] = '\0';
    *len = o;
    return true;
}

unsigned sg_spf_macro_delims(char *rec, size_t size,
                             const char *const values[26])
{
    unsigned unknown = 0;
    size_t i = 0;

    while (rec[i] != '\0') {
        char *p = rec + i, *m, *close, exp[2 * SG_SPF_RECORD_MAX];
        const char *v;
        unsigned long keep = 0;
        size_t nd, elen, tail;
        bool rev = false;
        int letter;

        if (p[0] != '%' || p[1] == '\0') {
            i++;
            continue;
        }
        if (p[1] != '{') {
            i += 2;             /* %% %_ %- */
            continue;
        }
        if ((close = strchr(p + 2, '}')) == NULL)
            break;
        i = (size_t) (close + 1 - rec);     /* unless expanded below */
        letter = p[2] | 0x20;
        for (m = p + 3; m < close && digit(*m); m++)
            if (keep < 100000)
                keep = keep * 10 + (unsigned long) (*m - '0');
        if (m < close && (*m == 'r' || *m == 'R'))
            rev = true, m++;
        nd = (size_t) (close - m);
        /* What libspf2 gets wrong: the delimiters "," and "/"; the URL
         * escaping of an upper-case letter (it keeps "'" and others
         * outside RFC 3986's unreserved set); %{p}, whose lookups it
         * counts as terms, and whose digits sg_spf_macro_digits cannot
         * fix (its value is unknown before). */
        if ((memchr(m, ',', nd) == NULL && memchr(m, '/', nd) == NULL &&
             !(p[2] >= 'A' && p[2] <= 'Z') && letter != 'p') ||
            letter < 'a' || letter > 'z')
            continue;
        if ((v = values[letter - 'a']) == NULL) {
            unknown |= 1u << (letter - 'a');
            continue;
        }
        if (!expand_one(v, keep, rev, nd > 0 ? m : ".", nd > 0 ? nd : 1,
                        p[2] >= 'A' && p[2] <= 'Z', exp, sizeof(exp), &elen))
            continue;
        tail = strlen(close + 1);
        if ((size_t) (p - rec) + elen + tail + 1 > size)
            continue;           /* does not fit: libspf2 refuses it */
        memmove(p + elen, close + 1, tail + 1);
        memcpy(p, exp, elen);
        i = (size_t) (p - rec) + elen;
    }
    return unknown;
}
