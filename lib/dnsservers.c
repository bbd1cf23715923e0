/*
 * dnsservers.c - the servers a resolver asks: the dnsServers list
 * ("addr", "addr:port", "[v6]:port"), else the nameserver lines of
 * resolv.conf, else the local host; and the list as text for the logs
 * (see dns.h)
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns_int.h"

/* ---- servers ---- */

static int parse_server(const char *tok, size_t len, struct sg_dns_server *s,
                        struct sg_err *err)
{
    char host[SG_ADDR_STRLEN + 8], *colon;
    const char *port = NULL;

    if (len >= sizeof(host)) {
        sg_err_set(err, "server '%.*s' too long", (int) len, tok);
        return SG_EINVAL;
    }
    memcpy(host, tok, len);
    host[len] = '\0';
    if (host[0] == '[') {
        char *close = strchr(host, ']');

        if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
            sg_err_set(err, "server '%s': '[' without ']' or junk after it",
                       host);
            return SG_EINVAL;
        }
        *close = '\0';
        port = close[1] == ':' ? close + 2 : NULL;
        memmove(host, host + 1, strlen(host + 1) + 1);
    } else if ((colon = strchr(host, ':')) != NULL &&
               colon == strrchr(host, ':')) {
        *colon = '\0';          /* one colon: IPv4 with a port */
        port = colon + 1;
    }
    if (sg_addr_parse(host, &s->addr) != SG_OK) {
        sg_err_set(err, "server '%s' is not an IPv4 or IPv6 address", host);
        return SG_EINVAL;
    }
    s->port = 53;
    if (port != NULL) {
        char *end;
        long p = strtol(port, &end, 10);

        if (*port == '\0' || *end != '\0' || p < 1 || p > 65535) {
            sg_err_set(err, "server '%.*s': port not 1-65535", (int) len,
                       tok);
            return SG_EINVAL;
        }
        s->port = (uint16_t) p;
    }
    return SG_OK;
}

int sg_dns_parse_servers(const char *text, struct sg_dns_server *out,
                         size_t max, size_t *n, struct sg_err *err)
{
    const char *p = text ? text : "";

    *n = 0;
    p += strspn(p, " ,\t");
    while (*p != '\0') {
        size_t len = strcspn(p, " ,\t");
        struct sg_dns_server s;

        if (*n == max) {
            sg_err_set(err, "more than %zu servers", max);
            return SG_EINVAL;
        }
        if (parse_server(p, len, &s, err) != SG_OK)
            return SG_EINVAL;
        if (out != NULL)
            out[*n] = s;
        (*n)++;
        p += len;
        p += strspn(p, " ,\t");
    }
    return SG_OK;
}

size_t sg_dns_parse_resolv_conf(const char *text, struct sg_dns_server *out,
                                size_t max)
{
    size_t n = 0;

    while (text != NULL && *text != '\0' && n < max) {
        size_t len = strcspn(text, "\n");
        char line[256], word[16], addr[SG_ADDR_STRLEN];

        snprintf(line, sizeof(line), "%.*s", (int) (len < 255 ? len : 255),
                 text);
        text += len + (text[len] == '\n');
        if (sscanf(line, " %15s %63s", word, addr) != 2 ||
            strcmp(word, "nameserver") != 0)
            continue;
        addr[strcspn(addr, "#;")] = '\0';
        if (sg_addr_parse(addr, &out[n].addr) == SG_OK) {
            out[n].port = 53;
            n++;
        }
    }
    return n;
}

static char *read_small_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *buf;
    size_t n;

    if (fp == NULL)
        return NULL;
    if ((buf = sg_malloc(65536)) == NULL) {
        fclose(fp);
        return NULL;
    }
    n = fread(buf, 1, 65535, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* sg_dnss_init - the servers of a new resolver: SG_EINVAL (err set) for a
 * dnsServers list that is not one */
int sg_dnss_init(struct sg_dns *dns, const struct sg_dns_opts *o,
                 struct sg_err *err)
{
    if (o->servers != NULL && o->servers[strspn(o->servers, " ,\t")]) {
        if (sg_dns_parse_servers(o->servers, dns->servers,
                                 SG_DNS_SERVERS_MAX, &dns->nservers, err)
            != SG_OK)
            return SG_EINVAL;
    } else {
        const char *path = o->resolv_conf ? o->resolv_conf
            : "/etc/resolv.conf";
        char *text = read_small_file(path);

        dns->nservers = sg_dns_parse_resolv_conf(text, dns->servers,
                                                 SG_DNS_SERVERS_MAX);
        sg_free(text);
        if (dns->nservers == 0) {
            /* As the stub resolver does: the local host. */
            sg_addr_parse("127.0.0.1", &dns->servers[0].addr);
            dns->servers[0].port = 53;
            dns->nservers = 1;
        }
    }
    return SG_OK;
}

void sg_dns_servers_text(const struct sg_dns *dns, char *buf, size_t size)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < dns->nservers && len + 1 < size; i++) {
        char a[SG_ADDR_STRLEN];
        const struct sg_dns_server *s = &dns->servers[i];
        int n;

        sg_addr_format(&s->addr, a, sizeof(a));
        n = snprintf(buf + len, size - len, s->addr.family == AF_INET6
                     ? "%s[%s]:%u" : "%s%s:%u", len ? " " : "", a, s->port);
        if (n < 0 || (size_t) n >= size - len)
            break;
        len += (size_t) n;
    }
}
