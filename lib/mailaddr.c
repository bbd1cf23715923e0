/*
 * mailaddr.c - parse and normalize envelope addresses
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dname.h"
#include "mailaddr.h"

/* Characters that never appear in an unquoted local part. */
static bool local_special(unsigned char c)
{
    return strchr("\"<>()[]\\,;: ", c) != NULL;
}

/* parse_local - the local part up to '@' or the end; returns the rest */
static const char *parse_local(const char *p, const char *end, char *out,
                               size_t size)
{
    size_t n = 0;

    if (*p == '"') {
        for (p++;; p++) {
            if (p == end)
                return NULL;    /* unbalanced quote */
            if (*p == '"')
                break;
            if (*p == '\\' && ++p == end)
                return NULL;
            if (n + 1 >= size)
                return NULL;
            out[n++] = *p;
        }
        p++;
        if (p != end && *p != '@')
            return NULL;
    } else {
        for (; p < end && *p != '@'; p++) {
            if (local_special((unsigned char) *p) || n + 1 >= size)
                return NULL;
            out[n++] = *p;
        }
    }
    out[n] = '\0';
    return n > 0 ? p : NULL;
}

/* parse_domain - normalize a domain or an address literal */
static int parse_domain(const char *p, size_t len, struct sg_mailaddr *out)
{
    char tmp[SG_MAILADDR_DOMAINMAX];

    if (len == 0 || len >= sizeof(tmp) || memchr(p, '@', len) != NULL)
        return SG_EINVAL;
    memcpy(tmp, p, len);
    tmp[len] = '\0';
    if (tmp[0] == '[') {
        if (tmp[len - 1] != ']' || memchr(tmp + 1, '[', len - 1) != NULL)
            return SG_EINVAL;
        for (size_t i = 0; i < len; i++)
            out->domain[i] = (char) tolower((unsigned char) tmp[i]);
        out->domain[len] = '\0';
        out->domain_ok = true;
        return SG_OK;
    }
    if (sg_dname_normalize(tmp, out->domain, sizeof(out->domain)) == SG_OK) {
        out->domain_ok = true;
        return SG_OK;
    }
    /* Not a DNS name (UTF-8 under SMTPUTF8, stray characters): keep it,
     * lower-cased, so it compares equal to nothing local. */
    if (len > 1 && tmp[len - 1] == '.')
        tmp[--len] = '\0';
    for (size_t i = 0; i <= len; i++)
        out->domain[i] = (char) tolower((unsigned char) tmp[i]);
    out->domain_ok = false;
    return SG_OK;
}

int sg_mailaddr_parse(const char *arg, struct sg_mailaddr *out)
{
    const char *p, *end;
    size_t len;

    memset(out, 0, sizeof(*out));
    if (arg == NULL)
        return SG_EINVAL;
    len = strnlen(arg, SG_MAILADDR_KEYMAX + 64);
    if (len >= SG_MAILADDR_KEYMAX + 64)
        return SG_EINVAL;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) arg[i] < 0x20 || arg[i] == 0x7f)
            return SG_EINVAL;
    p = arg;
    end = arg + len;
    while (p < end && *p == ' ')
        p++;
    while (end > p && end[-1] == ' ')
        end--;
    if (p < end && *p == '<') {
        if (end - p < 2 || end[-1] != '>')
            return SG_EINVAL;
        p++;
        end--;
    } else if (p < end && end[-1] == '>') {
        return SG_EINVAL;
    }
    if (p == end) {
        out->null = true;
        return SG_OK;
    }
    if (*p == '@') {            /* source route: @a,@b:user@domain */
        const char *colon = memchr(p, ':', (size_t) (end - p));

        if (colon == NULL || colon + 1 == end)
            return SG_EINVAL;
        p = colon + 1;
    }
    if ((p = parse_local(p, end, out->local, sizeof(out->local))) == NULL)
        return SG_EINVAL;
    if (p == end)
        return SG_OK;           /* no domain: "postmaster" */
    p++;
    return parse_domain(p, (size_t) (end - p), out);
}

void sg_mailaddr_key(const struct sg_mailaddr *a, char *buf, size_t size)
{
    size_t n = 0;

    if (size == 0)
        return;
    for (const char *p = a->local; *p && n + 1 < size; p++)
        buf[n++] = (char) tolower((unsigned char) *p);
    buf[n] = '\0';
    if (a->domain[0] != '\0')
        snprintf(buf + n, size - n, "@%s", a->domain);
}

int sg_mailaddr_normalize(const char *text, char *buf, size_t size)
{
    struct sg_mailaddr a;

    if (sg_mailaddr_parse(text, &a) != SG_OK || a.null)
        return SG_EINVAL;
    sg_mailaddr_key(&a, buf, size);
    return SG_OK;
}

bool sg_mailaddr_is_postmaster(const struct sg_mailaddr *a)
{
    return !a->null && a->domain[0] == '\0'
        && strcasecmp(a->local, "postmaster") == 0;
}
