/*
 * addr.c - client address parsing, masking and CIDR matching
 */
#include <arpa/inet.h>          /* inet_pton, inet_ntop */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>         /* AF_INET, AF_INET6 */

#include "addr.h"

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int sg_addr_bits(const struct sg_addr *a)
{
    return a->family == AF_INET ? 32 : 128;
}

int sg_addr_parse(const char *s, struct sg_addr *out)
{
    char buf[SG_ADDR_STRLEN];
    size_t len;
    char *p;

    if (s == NULL)
        return SG_EINVAL;
    if (strncasecmp(s, "IPv6:", 5) == 0)
        s += 5;
    len = strlen(s);
    if (len == 0 || len >= sizeof(buf))
        return SG_EINVAL;
    memcpy(buf, s, len + 1);
    p = buf;
    if (*p == '[') {
        if (buf[len - 1] != ']')
            return SG_EINVAL;
        buf[len - 1] = '\0';
        p++;
    }
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, p, out->b) == 1) {
        out->family = AF_INET;
        return SG_OK;
    }
    if ((s = strchr(p, '%')) != NULL)
        *(char *) s = '\0';
    if (inet_pton(AF_INET6, p, out->b) != 1)
        return SG_EINVAL;
    out->family = AF_INET6;
    if (memcmp(out->b, v4mapped, sizeof(v4mapped)) == 0) {
        memmove(out->b, out->b + 12, 4);
        memset(out->b + 4, 0, 12);
        out->family = AF_INET;
    }
    return SG_OK;
}

int sg_addr_format(const struct sg_addr *a, char *buf, size_t size)
{
    if (inet_ntop(a->family, a->b, buf, (socklen_t) size) == NULL)
        return SG_EINVAL;
    return SG_OK;
}

void sg_addr_mask(const struct sg_addr *in, int prefix, struct sg_addr *out)
{
    int bits = sg_addr_bits(in);

    *out = *in;
    if (prefix < 0)
        prefix = 0;
    if (prefix > bits)
        prefix = bits;
    for (int i = prefix; i < bits; i++)
        out->b[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
}

void sg_addr_key(const struct sg_addr *a, int v4prefix, int v6prefix,
                 char *buf, size_t size)
{
    int prefix = a->family == AF_INET ? v4prefix : v6prefix;
    struct sg_addr m;
    char text[INET6_ADDRSTRLEN];

    sg_addr_mask(a, prefix, &m);
    if (sg_addr_format(&m, text, sizeof(text)) != SG_OK)
        snprintf(text, sizeof(text), "?");
    if (prefix >= sg_addr_bits(a))
        snprintf(buf, size, "%s", text);
    else
        snprintf(buf, size, "%s/%d", text, prefix < 0 ? 0 : prefix);
}

int sg_cidr_parse(const char *s, struct sg_cidr *out, struct sg_err *err)
{
    char buf[SG_ADDR_STRLEN];
    char *slash, *end;
    long prefix;
    struct sg_addr masked;

    if (s == NULL || strlen(s) >= sizeof(buf)) {
        sg_err_set(err, "not an address or network (too long)");
        return SG_EINVAL;
    }
    strcpy(buf, s);
    slash = strchr(buf, '/');
    if (slash != NULL)
        *slash++ = '\0';
    if (strchr(buf, '%') != NULL || sg_addr_parse(buf, &out->addr) != SG_OK) {
        sg_err_set(err, "'%s' is not an IPv4 or IPv6 address", buf);
        return SG_EINVAL;
    }
    out->prefix = sg_addr_bits(&out->addr);
    if (slash == NULL)
        return SG_OK;
    errno = 0;
    prefix = strtol(slash, &end, 10);
    if (*slash == '\0' || !isdigit((unsigned char) *slash) || *end != '\0'
        || errno != 0 || prefix < 0) {
        sg_err_set(err, "prefix length '%s' is not a number", slash);
        return SG_EINVAL;
    }
    /* An IPv4-mapped network written in IPv6 form: shift the prefix. */
    if (out->addr.family == AF_INET && strchr(buf, ':') != NULL)
        prefix -= 96;
    if (prefix < 0 || prefix > sg_addr_bits(&out->addr)) {
        sg_err_set(err, "prefix length /%s out of range 0-%d for %s", slash,
                   sg_addr_bits(&out->addr),
                   out->addr.family == AF_INET ? "IPv4" : "IPv6");
        return SG_EINVAL;
    }
    out->prefix = (int) prefix;
    sg_addr_mask(&out->addr, out->prefix, &masked);
    if (memcmp(&masked, &out->addr, sizeof(masked)) != 0) {
        char text[INET6_ADDRSTRLEN];

        sg_addr_format(&masked, text, sizeof(text));
        sg_err_set(err, "%s has host bits set beyond /%d (did you mean "
                   "%s/%d?)", buf, out->prefix, text, out->prefix);
        return SG_EINVAL;
    }
    return SG_OK;
}

bool sg_cidr_match(const struct sg_cidr *net, const struct sg_addr *a)
{
    struct sg_addr m;

    if (net->addr.family != a->family)
        return false;
    sg_addr_mask(a, net->prefix, &m);
    return memcmp(m.b, net->addr.b, sizeof(m.b)) == 0;
}

void sg_cidr_format(const struct sg_cidr *net, char *buf, size_t size)
{
    sg_addr_key(&net->addr, net->prefix, net->prefix, buf, size);
    if (net->prefix == sg_addr_bits(&net->addr)) {
        size_t len = strlen(buf);

        snprintf(buf + len, size > len ? size - len : 0, "/%d", net->prefix);
    }
}
