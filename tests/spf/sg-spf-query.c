/*
 * sg-spf-query - one SPF check through smtpguard's SPF layer and resolver,
 * for the RFC 7208 test-suite runner (rfc7208.py) and for operators who
 * want to see what smtpguard makes of a sender
 *
 *   sg-spf-query -s 127.0.0.1:5353 [-t TIMEOUT_MS] [-r RECEIVER]
 *                IP HELO MAILFROM
 *
 * MAILFROM "" is the null sender (the HELO identity is checked);
 * "@domain" has no local part (postmaster). Prints one line:
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
            "[-r RECEIVER] IP HELO MAILFROM\n");
    exit(2);
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

int main(int argc, char **argv)
{
    struct sg_dns_opts o = { 0 };
    struct sg_spf_outcome out;
    struct sg_mailaddr from;
    struct sg_addr ip;
    struct sg_dns *dns;
    struct sg_err err;
    const char *receiver = "receiver.test";
    char addr[600];
    int c;

    o.timeout_ms = 300;
    o.retries = 0;
    while ((c = getopt(argc, argv, "s:t:r:")) != -1) {
        switch (c) {
        case 's': o.servers = optarg; break;
        case 't': o.timeout_ms = atoi(optarg); break;
        case 'r': receiver = optarg; break;
        default: usage();
        }
    }
    if (argc - optind != 3 || o.servers == NULL)
        usage();
    if (sg_addr_parse(argv[optind], &ip) != SG_OK) {
        fprintf(stderr, "sg-spf-query: bad IP %s\n", argv[optind]);
        return 2;
    }
    snprintf(addr, sizeof(addr), "%s%s", argv[optind + 2][0] == '@'
             ? "postmaster" : "", argv[optind + 2]);
    if (sg_mailaddr_parse(addr, &from) != SG_OK) {
        /* What an MTA would refuse before SPF: no usable domain. */
        printf("result=none reason=\"malformed sender\"\n");
        return 0;
    }
    if (sg_dns_new(&o, &dns, &err) != SG_OK) {
        fprintf(stderr, "sg-spf-query: %s\n", err.msg);
        return 2;
    }
    sg_spf_check(dns, sg_dns_clock(dns) + 20 * o.timeout_ms + 2000, &ip,
                 argv[optind + 1], &from, receiver, &out);
    printf("result=%s", sg_spf_result_name(out.result));
    print_quoted("explanation", out.explanation);
    print_quoted("reason", out.reason);
    printf(" terms=%u\n", out.dns_terms);
    sg_dns_free(dns);
    return 0;
}
