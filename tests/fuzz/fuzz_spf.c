/*
 * fuzz_spf.c - SPF records through our check and libspf2's compiler, then
 * through the whole check the daemon runs at MAIL FROM (sg_spf_check):
 * our DNS layer, our record checks, libspf2's evaluation and macro
 * expansion (where CVE-2021-20314, -33912, -33913 were), the explanation,
 * the headers. DNS answers come from memory (fakedns.h), no network.
 *
 * Input: the record on the first line, then optional lines
 *   ip ADDR          the client (default 192.0.2.10)
 *   helo NAME        (default mail.example.com)
 *   from ADDRESS     MAIL FROM as the MTA passes it (default
 *                    <Us.er+tag@example.com>; <> is the null sender)
 *   rcv NAME         the receiving host (%{r})
 *   NAME TYPE DATA   more of the zone (fakedns.h): includes, exp= texts,
 *                    A/MX/PTR records, faults
 * SG_FUZZ_VERBOSE=1 in the environment prints each check's outcome.
 * The record is the TXT record of the sender's domain (of the HELO name for
 * the null sender). Explanation strings go through their own check too.
 * The known attack records are in the seed corpus.
 */
#include <netinet/in.h>
#include <arpa/nameser.h>
#include <stdio.h>

#include <spf2/spf.h>
#include <spf2/spf_dns_null.h>

#include "fakedns.h"
#include "fuzz.h"
#include "spf.h"
#include "spfrecord.h"

static void quiet(const char *file, int line, const char *msg)
{
    (void) file;
    (void) line;
    (void) msg;
}

/* compile - the record through our check, then libspf2's compiler */
static void compile(const char *s)
{
    static SPF_server_t *srv;
    char out[2 * SG_SPF_RECORD_MAX], why[96];
    struct sg_spf_check chk;
    size_t len = strlen(s);

    if (srv == NULL) {
        SPF_warning_handler = quiet;
        SPF_info_handler = quiet;
        SPF_debug_handler = quiet;
        srv = SPF_server_new_dns(SPF_dns_null_new(NULL, "null", 0), 0);
    }
    sg_spf_exp_check(s, len, why, sizeof(why));
    sg_spf_record_check(s, len, &chk);
    if (chk.ok) {
        SPF_response_t *resp = SPF_response_new(NULL);
        SPF_record_t *rec = NULL;

        for (int v4 = 0; v4 < 2; v4++) {
            if (sg_spf_record_for_libspf2(s, len, v4, out, sizeof(out)) == 0)
                continue;
            SPF_record_compile(srv, resp, &rec, out);
            if (rec != NULL)
                SPF_record_free(rec);
            rec = NULL;
        }
        SPF_response_free(resp);
    }
}

/* clean - what goes into a header or a reply: no control characters */
static void clean(const char *what, const char *s)
{
    for (const unsigned char *p = (const unsigned char *) s; *p; p++)
        if (*p < ' ' || *p == 0x7f) {
            fprintf(stderr, "fuzz-spf: control character in %s: %s\n",
                    what, s);
            abort();
        }
}

static struct sg_dns *resolver(void)
{
    static struct sg_dns *dns;
    struct sg_dns_opts o = { 0 };
    struct sg_err err;

    if (dns != NULL)
        return dns;
    o.servers = "192.0.2.53:53 [2001:db8::53]:53";
    o.timeout_ms = 500;
    o.retries = 1;
    o.cache_max = 0;            /* every input asks afresh */
    if (sg_dns_new(&o, &dns, &err) != SG_OK) {
        fprintf(stderr, "fuzz-spf: %s\n", err.msg);
        abort();
    }
    return dns;
}

/* value - a "key VALUE" line's value as a C string (cut at a NUL) */
static bool value(const char *line, size_t len, const char *key, char *buf,
                  size_t size)
{
    size_t k = strlen(key);

    if (len <= k || memcmp(line, key, k) != 0 || line[k] != ' ')
        return false;
    len -= k + 1;
    if (len >= size)
        len = size - 1;
    memcpy(buf, line + k + 1, len);
    buf[len] = '\0';
    return true;
}

static void check(const uint8_t *data, size_t size)
{
    struct sg_dns *dns = resolver();
    const char *p = (const char *) data, *end = p + size;
    const char *rec = p, *rec_end = memchr(p, '\n', size);
    char ip[80] = "192.0.2.10", helo[300] = "mail.example.com";
    char from[600] = "<Us.er+tag@example.com>", rcv[300] = "mx.receiver.test";
    char zline[320], hdr[2048];
    struct sg_mailaddr sender;
    struct sg_spf_outcome out;
    struct sg_addr client;

    if (rec_end == NULL)
        rec_end = end;
    for (p = rec_end; p < end;) {
        const char *l = ++p, *e = memchr(l, '\n', (size_t) (end - l));
        size_t n;

        if (e == NULL)
            e = end;
        n = (size_t) (e - l);
        p = e;
        if (!value(l, n, "ip", ip, sizeof(ip)) &&
            !value(l, n, "helo", helo, sizeof(helo)) &&
            !value(l, n, "from", from, sizeof(from)) &&
            !value(l, n, "rcv", rcv, sizeof(rcv)))
            continue;
    }
    for (const char *c = rcv; *c; c++)
        if ((unsigned char) *c <= ' ' || *c == 0x7f) {
            snprintf(rcv, sizeof(rcv), "mx.receiver.test");
            break;              /* the MTA's own name: never hostile */
        }
    if (sg_addr_parse(ip, &client) != SG_OK ||
        sg_mailaddr_parse(from, &sender) != SG_OK)
        return;                 /* the policy never gets that far */
    fakedns_reset();
    /* The record first, then the zone lines. */
    snprintf(zline, sizeof(zline), "%s TXT ", sender.null ||
             !sender.domain_ok ? helo : sender.domain);
    {
        size_t zl = strlen(zline), rl = (size_t) (rec_end - rec);
        char *line = malloc(zl + rl);

        if (line == NULL)
            abort();
        memcpy(line, zline, zl);
        memcpy(line + zl, rec, rl);
        fakedns_line(line, zl + rl);
        free(line);
    }
    for (p = rec_end; p < end;) {
        const char *l = ++p, *e = memchr(l, '\n', (size_t) (end - l));

        if (e == NULL)
            e = end;
        p = e;
        fakedns_line(l, (size_t) (e - l));
    }
    sg_spf_check(dns, sg_dns_clock(dns) + 5000, &client, helo, &sender, rcv,
                 &out);
    if ((unsigned) out.result > SG_SPF_PERMERROR ||
        (out.record_refused && out.result != SG_SPF_PERMERROR)) {
        fprintf(stderr, "fuzz-spf: result %d, refused %d\n", out.result,
                out.record_refused);
        abort();
    }
    clean("the explanation", out.explanation);
    if (getenv("SG_FUZZ_VERBOSE") != NULL)
        fprintf(stderr, "fuzz-spf: %s reason=\"%s\" explanation=\"%s\" "
                "terms=%u queries=%u\n", sg_spf_result_name(out.result),
                out.reason, out.explanation, out.dns_terms,
                fakedns_queries());
    sg_spf_received(&out, rcv, hdr, sizeof(hdr));
    clean("Received-SPF", hdr);
    sg_spf_authres(&out, hdr, sizeof(hdr));
    clean("Authentication-Results", hdr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    char *s = fuzz_cstr(data, nl ? (size_t) (nl - data) : size);

    compile(s);
    free(s);
    check(data, size);
    return 0;
}
