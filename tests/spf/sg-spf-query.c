/*
 * sg-spf-query - one SPF check through smtpguard's SPF layer and resolver,
 * for the RFC 7208 test-suite runner (rfc7208.py) and for operators who
 * want to see what smtpguard makes of a sender; in batch mode (-b) one
 * check per line of stdin, for the differential test (spfdiff.py)
 *
 *   sg-spf-query -s 127.0.0.1:5353 [-t TIMEOUT_MS] [-r RECEIVER]
 *                IP HELO MAILFROM
 *   sg-spf-query -s 127.0.0.1:5353 [-t TIMEOUT_MS] -b < LINES
 *
 * A batch line is IP, HELO, MAILFROM and optionally RECEIVER, separated
 * by tabs; its result line is written (and flushed) before the next line
 * is read. One resolver serves the batch, without a cache.
 *
 * MAILFROM "" is the null sender (the HELO identity is checked);
 * "@domain" has no local part (postmaster); a local part that is not a
 * dot-atom ("Macro Error@example.com") is quoted, as an MTA presents it
 * in MAIL FROM (RFC 5321 4.1.2). Prints one line:
 *   result=pass explanation="..." reason="..." terms=N
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dns.h"
#include "mailaddr.h"
#include "spf.h"

static void usage(void)
{
    fprintf(stderr, "usage: sg-spf-query -s SERVERS [-t TIMEOUT_MS] "
            "[-r RECEIVER] IP HELO MAILFROM\n"
            "       sg-spf-query -s SERVERS [-t TIMEOUT_MS] -b < LINES\n");
    exit(2);
}

/* envelope - MAILFROM as MAIL FROM carries it: the local part quoted when
 * it is not a dot-atom */
static void envelope(const char *arg, char *buf, size_t size)
{
    static const char atext[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
        "OPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~.";
    const char *at = strrchr(arg, '@');
    size_t llen = at ? (size_t) (at - arg) : strlen(arg), o = 0;

    if (llen == 0) {            /* "" stays the null sender */
        snprintf(buf, size, "%s%s", at ? "postmaster" : "", arg);
        return;
    }
    if (strspn(arg, atext) >= llen && arg[0] != '.' && arg[llen - 1] != '.' &&
        strstr(arg, "..") == NULL) {
        snprintf(buf, size, "%s", arg);
        return;
    }
    buf[o++] = '"';
    for (size_t i = 0; i < llen && o + 3 < size; i++) {
        if (arg[i] == '"' || arg[i] == '\\')
            buf[o++] = '\\';
        buf[o++] = arg[i];
    }
    buf[o++] = '"';
    snprintf(buf + o, size - o, "%s", at ? at : "");
}

static void print_quoted(const char *key, const char *v)
{
    printf(" %s=\"", key);
    for (; *v; v++)
        if (*v == '"' || *v == '\\')
            printf("\\%c", *v);
        else
            putchar(*v);
    putchar('"');
}

/* query - one check; its result line on stdout */
static void query(struct sg_dns *dns, int timeout_ms, const char *ipstr,
                  const char *helo, const char *mailfrom,
                  const char *receiver)
{
    struct sg_spf_outcome out;
    struct sg_mailaddr from;
    struct sg_addr ip;
    char addr[600];

    if (sg_addr_parse(ipstr, &ip) != SG_OK) {
        printf("result=error reason=\"bad IP\"\n");
        return;
    }
    envelope(mailfrom, addr, sizeof(addr));
    if (sg_mailaddr_parse(addr, &from) != SG_OK) {
        /* What an MTA would refuse before SPF: no usable domain. */
        printf("result=none reason=\"malformed sender\"\n");
        return;
    }
    sg_spf_check(dns, sg_dns_clock(dns) + 20 * timeout_ms + 2000, &ip,
                 helo, &from, receiver, &out);
    printf("result=%s", sg_spf_result_name(out.result));
    print_quoted("explanation", out.explanation);
    print_quoted("reason", out.reason);
    printf(" terms=%u\n", out.dns_terms);
}

/* batch - one check per line of stdin: IP TAB HELO TAB MAILFROM
 * [TAB RECEIVER] */
static void batch(struct sg_dns *dns, int timeout_ms, const char *receiver)
{
    char line[4096];

    while (fgets(line, sizeof(line), stdin) != NULL) {
        char *f[4] = { NULL, NULL, NULL, NULL }, *p = line;
        int n = 0;

        line[strcspn(line, "\r\n")] = '\0';
        while (n < 4) {
            f[n++] = p;
            if ((p = strchr(p, '\t')) == NULL)
                break;
            *p++ = '\0';
        }
        if (n < 3)
            printf("result=error reason=\"want IP, HELO, MAILFROM\"\n");
        else
            query(dns, timeout_ms, f[0], f[1], f[2],
                  n > 3 && *f[3] ? f[3] : receiver);
        fflush(stdout);
    }
}

int main(int argc, char **argv)
{
    struct sg_dns_opts o = { 0 };
    struct sg_dns *dns;
    struct sg_err err;
    const char *receiver = "receiver.test";
    bool batch_mode = false;
    int c;

    o.timeout_ms = 300;
    o.retries = 0;
    while ((c = getopt(argc, argv, "bs:t:r:")) != -1) {
        switch (c) {
        case 'b': batch_mode = true; break;
        case 's': o.servers = optarg; break;
        case 't': o.timeout_ms = atoi(optarg); break;
        case 'r': receiver = optarg; break;
        default: usage();
        }
    }
    if (argc - optind != (batch_mode ? 0 : 3) || o.servers == NULL)
        usage();
    if (!batch_mode) {
        struct sg_addr ip;

        if (sg_addr_parse(argv[optind], &ip) != SG_OK) {
            fprintf(stderr, "sg-spf-query: bad IP %s\n", argv[optind]);
            return 2;
        }
    }
    if (sg_dns_new(&o, &dns, &err) != SG_OK) {
        fprintf(stderr, "sg-spf-query: %s\n", err.msg);
        return 2;
    }
    if (batch_mode)
        batch(dns, o.timeout_ms, receiver);
    else
        query(dns, o.timeout_ms, argv[optind], argv[optind + 1],
              argv[optind + 2], receiver);
    sg_dns_free(dns);
    return 0;
}
