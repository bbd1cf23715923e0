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
 *   exp TEXT         a TXT record TEXT at the record's exp= target: the
 *                    first line's exp= domain-spec as written when it has
 *                    no macro, else exp.DOMAIN (DOMAIN: the one checked);
 *                    several exp lines are several records
 *   ptr NAME         a PTR record NAME at the client's reverse name, and
 *                    the client's address at NAME (a validated name, for
 *                    %{p} and ptr:); "ptr- NAME": the PTR record only
 *   NAME TYPE DATA   more of the zone (fakedns.h): includes, exp= texts,
 *                    A/MX/PTR records, faults
 * The exp and ptr lines spare the fuzzer names it would have to keep in
 * step with the record and the client address by chance.
 * SG_FUZZ_VERBOSE=1 in the environment prints each check's outcome.
 * The record is the TXT record of the sender's domain (of the HELO name for
 * the null sender). Explanation strings go through their own check too.
 * The known attack records are in the seed corpus, the exp= attacks on
 * libspf2's macro compiler in regress/spf/exp-*.
 *
 * Beyond "no crash": libspf2's macro compiler must never see a string of
 * the network during an evaluation (SPF_record_compile_macro is stood in
 * front of, as in tests/unit/test_spf.c); an explanation only comes with a
 * fail; the result is one of ours.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE            /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <netinet/in.h>
#include <arpa/nameser.h>
#include <stdio.h>
#include <strings.h>

#include <spf2/spf.h>
#include <spf2/spf_dns_null.h>

#include "dname.h"
#include "fakedns.h"
#include "fuzz.h"
#include "spf.h"
#include "spfrecord.h"

/*
 * libspf2 calls its SPF_record_compile_macro() through the PLT, so this
 * definition stands in front of it. During sg_spf_check() it may compile
 * only constant texts: libspf2's default explanation and our "SPF fail".
 * Anything else is a string of the network reaching the compiler that
 * CVE-2023-42118 and the 511-byte stack buffer live in.
 */
static bool in_check;

SPF_errcode_t SPF_record_compile_macro(SPF_server_t *srv,
                                       SPF_response_t *resp,
                                       SPF_macro_t **out, const char *text)
{
    static SPF_errcode_t (*real)(SPF_server_t *, SPF_response_t *,
                                 SPF_macro_t **, const char *);

    if (real == NULL &&
        (*(void **) &real = dlsym(RTLD_NEXT, "SPF_record_compile_macro"))
        == NULL)
        abort();
    if (in_check && text != NULL && strcmp(text, "SPF fail") != 0 &&
        strncmp(text, "Please%_see", 11) != 0) {
        fprintf(stderr, "fuzz-spf: libspf2 compiles a text of the "
                "network: %.80s\n", text);
        abort();
    }
    return real(srv, resp, out, text);
}

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
    o.ops = &fakedns_ops;
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

/* exp_target - where the exp lines go (see the top) */
static void exp_target(const char *rec, size_t len, const char *domain,
                       char *buf, size_t size)
{
    for (size_t i = 0; i + 4 <= len; i++) {
        size_t n;

        if ((i > 0 && rec[i - 1] != ' ') || strncasecmp(rec + i, "exp=", 4))
            continue;
        for (n = 0; i + 4 + n < len && rec[i + 4 + n] != ' '; n++)
            ;
        if (n > 0 && memchr(rec + i + 4, '%', n) == NULL &&
            memchr(rec + i + 4, '\0', n) == NULL) {
            snprintf(buf, size, "%.*s", (int) n, rec + i + 4);
            return;
        }
        break;
    }
    snprintf(buf, size, "exp.%s", domain);
}

/* zone - one zone line from its parts (a NAME TYPE prefix, then data) */
static void zone(const char *name, const char *type, const char *data,
                 size_t len)
{
    size_t nl = strlen(name), tl = strlen(type);
    char *line = malloc(nl + tl + 2 + len);

    if (line == NULL)
        abort();
    memcpy(line, name, nl);
    line[nl] = ' ';
    memcpy(line + nl + 1, type, tl);
    line[nl + 1 + tl] = ' ';
    memcpy(line + nl + tl + 2, data, len);
    fakedns_line(line, nl + tl + 2 + len);
    free(line);
}

/* directive - an exp or ptr line into the zone; false: a zone line */
static bool directive(const char *l, size_t n, const char *exp_name,
                      const char *rev, const struct sg_addr *client)
{
    char name[300], addr[SG_ADDR_STRLEN];

    if (n >= 4 && memcmp(l, "exp ", 4) == 0) {
        zone(exp_name, "TXT", l + 4, n - 4);
        return true;
    }
    if (value(l, n, "ptr", name, sizeof(name)) ||
        value(l, n, "ptr-", name, sizeof(name))) {
        if (strpbrk(name, " \t") != NULL || name[0] == '\0')
            return true;        /* no zone line could hold it */
        zone(rev, "PTR", name, strlen(name));
        if (l[3] == ' ') {
            sg_addr_format(client, addr, sizeof(addr));
            zone(name, client->family == AF_INET ? "A" : "AAAA", addr,
                 strlen(addr));
        }
        return true;
    }
    return false;
}

static void check(const uint8_t *data, size_t size)
{
    struct sg_dns *dns = resolver();
    const char *p = (const char *) data, *end = p + size;
    const char *rec = p, *rec_end = memchr(p, '\n', size);
    char ip[80] = "192.0.2.10", helo[300] = "mail.example.com";
    char from[600] = "<Us.er+tag@example.com>", rcv[300] = "mx.receiver.test";
    char zline[320], hdr[2048], exp_name[300], rev[SG_DNS_NAME_MAX];
    const char *domain;
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
        /* (exp and ptr lines wait for the zone: they need the domain
         * and the client) */
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
    domain = sender.null || !sender.domain_ok ? helo : sender.domain;
    snprintf(zline, sizeof(zline), "%s TXT ", domain);
    exp_target(rec, (size_t) (rec_end - rec), domain, exp_name,
               sizeof(exp_name));
    if (sg_dname_reverse(&client, client.family == AF_INET
                            ? "in-addr.arpa" : "ip6.arpa", rev,
                            sizeof(rev)) != SG_OK)
        rev[0] = '\0';
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
        if (!directive(l, (size_t) (e - l), exp_name, rev, &client))
            fakedns_line(l, (size_t) (e - l));
    }
    in_check = true;
    sg_spf_check(dns, sg_dns_clock(dns) + 5000, &client, helo, &sender, rcv,
                 &out);
    in_check = false;
    if ((unsigned) out.result > SG_SPF_PERMERROR ||
        (out.record_refused && out.result != SG_SPF_PERMERROR) ||
        (out.explanation[0] != '\0' && out.result != SG_SPF_FAIL) ||
        strlen(out.explanation) >= sizeof(out.explanation)) {
        fprintf(stderr, "fuzz-spf: result %d, refused %d, explanation "
                "\"%.60s\"\n", out.result, out.record_refused,
                out.explanation);
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
