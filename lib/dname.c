/*
 * dname.c - domain-name normalisation, validation and reverse names
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "dname.h"
#include "sg.h"

int sg_dname_normalize(const char *in, char *out, size_t size)
{
    size_t len = strlen(in);

    if (len > 0 && in[len - 1] == '.')
        len--;
    if (len == 0 || len > 253 || len >= size)
        return SG_EINVAL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) in[i];

        if (!isalnum(c) && c != '-' && c != '.' && c != '_')
            return SG_EINVAL;
        out[i] = (char) tolower(c);
    }
    out[len] = '\0';
    return strstr(out, "..") != NULL || out[0] == '.' ? SG_EINVAL : SG_OK;
}

bool sg_dname_query_ok(const char *name)
{
    size_t n = strlen(name), label = 0;

    if (n == 0 || n >= SG_DNAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) name[i];

        if (c == '.') {
            if (label == 0 && !(i == n - 1 && n > 1))
                return false;
            label = 0;
            continue;
        }
        if (c < ' ' || c > '~' || c == '\\' || c == '"' || ++label > 63)
            return false;
    }
    return true;
}

bool sg_dname_host_ok(const char *name)
{
    size_t n = strlen(name);

    return n > 0 && n < SG_DNAME_MAX && name[0] != '.' && name[0] != '-'
        && strspn(name, "abcdefghijklmnopqrstuvwxyz"
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

bool sg_dname_fqdn_ok(const char *name)
{
    for (const char *p = name; p != NULL && *p != '\0';) {
        size_t l = strcspn(p, ".");

        if (l == 0 || l > 63)
            return false;
        p += l + (p[l] == '.');
    }
    return name != NULL && *name != '\0' && strchr(name, '.') != NULL &&
        strlen(name) < SG_DNAME_MAX && name[0] != '.' && name[0] != '[' &&
        strspn(name, "abcdefghijklmnopqrstuvwxyz"
               "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") == strlen(name);
}

int sg_dname_reverse(const struct sg_addr *client, const char *zone,
                     char *out, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    size_t len = 0;
    int n;

    if (client->family == AF_INET) {
        n = snprintf(out, size, "%u.%u.%u.%u.%s", client->b[3], client->b[2],
                     client->b[1], client->b[0], zone);
        return n > 0 && (size_t) n < size ? SG_OK : SG_EINVAL;
    }
    if (size < 64 + strlen(zone) + 1)
        return SG_EINVAL;
    for (int i = 15; i >= 0; i--) {
        out[len++] = hex[client->b[i] & 0xf];
        out[len++] = '.';
        out[len++] = hex[client->b[i] >> 4];
        out[len++] = '.';
    }
    memcpy(out + len, zone, strlen(zone) + 1);
    return SG_OK;
}
