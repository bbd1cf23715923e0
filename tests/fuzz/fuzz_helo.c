/*
 * fuzz_helo.c - HELO/EHLO names, as libmilter hands them to mlfi_helo (a C
 * string), through everything that reads them: the session
 * (sg_session_helo, then MAIL FROM:<> whose SPF check is of the HELO
 * identity, and the headers), and sg_spf_check directly, with the null
 * sender and with a sender whose record expands %{h}. DNS answers come from
 * memory (fakedns.h): every name publishes a record full of HELO macros,
 * and a failing check fetches an explanation that expands them again.
 *
 * Checked: the HELO identity is only ever a host name (RFC 7208 2.3: else
 * "none"); headers, replies and log lines carry no control character.
 */
#include <stdio.h>

#include "fakedns.h"
#include "fuzz.h"
#include "fuzz_engine.h"
#include "policy.h"
#include "spf.h"

static const char *const zone[] = {
    "* TXT v=spf1 mx:%{h} ptr:%{h} -exists:%{h}.%{hr}.%{h1r-}.%{ir}.x.test "
    "exp=exp.x.test",
    "* MX 10 mx.x.test",
    "* A 192.0.2.99",
    "mx.x.test A 192.0.2.98",
    "exp.x.test TXT %{h} (%{hr} %{H} %{h2}) said %{s} %{l} %{o} %{d} for "
    "%{i} %{p} %{v} %{c} %{r} %{t}",
};

static void load_zone(void)
{
    fakedns_reset();
    for (size_t i = 0; i < sizeof(zone) / sizeof(zone[0]); i++)
        if (!fakedns_line(zone[i], strlen(zone[i])))
            abort();
}

static struct sg_dns *resolver(void)
{
    static struct sg_dns *dns;
    struct sg_dns_opts o = { 0 };
    struct sg_err err;

    if (dns == NULL) {
        o.servers = "192.0.2.53:53";
        o.timeout_ms = 500;
        o.ops = &fakedns_ops;
        if (sg_dns_new(&o, &dns, &err) != SG_OK) {
            fprintf(stderr, "fuzz-helo: %s\n", err.msg);
            abort();
        }
    }
    return dns;
}

static struct sg_engine *engine(void)
{
    static struct sg_engine *eng;
    static const char *const off[] = {
        "DoFrequencyIP", "DoMaxErrors", "DoDomainIP", "DoEmailRate",
        "DoRcptRate", "DoHarvestCheck", "DoMaxSMTPipSessions",
    };

    if (eng == NULL) {
        eng = fuzz_engine_new();
        /* One client, again and again: no limit may refuse it. */
        for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++)
            if (!fuzz_engine_set(eng, off[i], "0"))
                abort();
        fuzz_engine_apply(eng);
    }
    return eng;
}

static bool host_name(const char *s)
{
    return strchr(s, '.') != NULL &&
        strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
               "0123456789-._") == strlen(s);
}

static void outcome(const struct sg_spf_outcome *o, bool helo_id,
                    const char *helo)
{
    char hdr[2048];

    if (helo_id && o->result != SG_SPF_NONE && !host_name(helo)) {
        fprintf(stderr, "fuzz-helo: '%s' checked as a HELO identity\n",
                helo);
        abort();
    }
    fuzz_clean("the explanation", o->explanation);
    sg_spf_received(o, "mx.receiver.test", hdr, sizeof(hdr));
    fuzz_clean("Received-SPF", hdr);
    sg_spf_authres(o, hdr, sizeof(hdr));
    fuzz_clean("Authentication-Results", hdr);
}

static void header(void *arg, const char *name, const char *value)
{
    (void) arg;
    fuzz_clean("a header name", name);
    fuzz_clean("a header value", value);
}

static void session(const char *helo)
{
    struct sg_session_info info = { "198.51.100.7", "client.example",
                                    "smtpd", "mx.receiver.test" };
    struct sg_session *s = sg_session_new(engine(), &info);
    struct sg_verdict v;

    if (s == NULL)
        return;
    sg_session_connect(s, &v);
    sg_session_helo(s, helo, &v);
    fuzz_clean("the HELO reply", v.text);
    sg_session_mail(s, "<>", &v);
    fuzz_clean("the MAIL reply", v.text);
    if (!sg_verdict_refuses(&v)) {
        sg_session_rcpt(s, "<postmaster@example.com>", "smtp", &v);
        sg_session_headers(s, header, NULL);
    }
    sg_session_reset(s);
    sg_session_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *helo = fuzz_cstr(data, size);
    struct sg_dns *dns = resolver();
    struct sg_spf_outcome o;
    struct sg_mailaddr null_sender, sender;
    struct sg_addr client;

    load_zone();
    if (sg_addr_parse("198.51.100.7", &client) != SG_OK ||
        sg_mailaddr_parse("<>", &null_sender) != SG_OK ||
        sg_mailaddr_parse("<u.s-e+r@example.com>", &sender) != SG_OK)
        abort();
    sg_spf_check(dns, sg_dns_clock(dns) + 5000, &client, helo, &null_sender,
                 "mx.receiver.test", &o);
    outcome(&o, true, helo);
    sg_spf_check(dns, sg_dns_clock(dns) + 5000, &client, helo, &sender,
                 "mx.receiver.test", &o);
    outcome(&o, false, helo);
    session(helo);
    free(helo);
    return 0;
}
