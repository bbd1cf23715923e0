/*
 * test_spf.c - the SPF record checks that stand between DNS and libspf2,
 * the rewriting for libspf2, and the headers
 */
#include <check.h>
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ldns/ldns.h>
#include <spf2/spf.h>

#include "spf.h"
#include "spfrecord.h"
#include "testutil.h"
#include "txtpeer.h"

/*
 * What libspf2's macro compiler is given. libspf2 calls its own exported
 * SPF_record_compile_macro() through the PLT, so this definition in the
 * test program stands in front of it: it notes the string and calls the
 * real one.
 */
static char compiled[8][128];
static int ncompiled;

SPF_errcode_t SPF_record_compile_macro(SPF_server_t *srv,
                                       SPF_response_t *resp,
                                       SPF_macro_t **out, const char *text)
{
    SPF_errcode_t (*real)(SPF_server_t *, SPF_response_t *, SPF_macro_t **,
                          const char *);

    *(void **) &real = dlsym(RTLD_NEXT, "SPF_record_compile_macro");
    if (real == NULL) {         /* also in SPF workers: no ck_assert */
        fprintf(stderr, "dlsym: %s\n", dlerror());
        abort();
    }
    if (ncompiled < 8)
        snprintf(compiled[ncompiled++], sizeof(compiled[0]), "%s", text);
    return real(srv, resp, out, text);
}

static const char *const good[] = {
    "v=spf1",
    "v=spf1 -all",
    "V=SPF1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all",
    "v=spf1 a mx ptr include:_spf.example.com -all",
    "v=spf1 a:example.com/24//64 mx:example.com//0 ?all",
    "v=spf1 ip4:192.0.2.1/0 -all",
    "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all",
    "v=spf1 redirect=_spf.example.com",
    "v=spf1 -all exp=explain._spf.%{d}",
    "v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all",
    "v=spf1 a:%{d}. -all",
    "v=spf1   -all  ",
    "v=spf1 -ip4:192.0.2.1 ~ip6:2001:db8::1 +a -all",
    "v=spf1 a:foo:bar/baz.example.com mx:a/b.example.com/24//64",
};

static const struct {
    const char *record;
    const char *why;
} bad[] = {
    { "v=spf10", "not an SPF record" },
    { "v=spf1 foo:bar.example.com", "unknown mechanism" },
    { "v=spf1 -all.", "junk after a term" },
    { "v=spf1 ip4:192.0.2.300", "bad ip4" },
    { "v=spf1 ip4:192.0.2.1/33", "bad prefix" },
    { "v=spf1 ip4:192.0.2.1/08", "bad prefix" },
    { "v=spf1 ip6:2001:db8::zz", "junk after a term" },
    { "v=spf1 ip6:2001:db8:::1", "bad ip6" },
    { "v=spf1 a:example.com/24//129", "bad prefix" },
    { "v=spf1 include:", "empty domain-spec" },
    { "v=spf1 include:example", "no dot" },
    { "v=spf1 a:example.123", "top label" },
    { "v=spf1 exists:%{q}.example.com", "unknown macro letter" },
    { "v=spf1 exists:%{c}.example.com", "unknown macro letter" },
    { "v=spf1 exists:%{d0}.example.com", "1-128" },
    { "v=spf1 exists:%{d1000}.example.com", "too large" },
    { "v=spf1 exists:%{d.example.com", "unterminated" },
    { "v=spf1 exists:%x.example.com", "'%' not followed" },
    { "v=spf1 redirect=a.example.com redirect=b.example.com", "twice" },
    { "v=spf1 exp=a.example.com exp=b.example.com", "twice" },
    { "v=spf1 -all\x01", "junk after a term" },
    { "v=spf1 a:exa\x01mple.com", "visible ASCII" },
    { "v=spf1 =foo", "start with a letter" },
};

START_TEST(test_good_records)
{
    struct sg_spf_check c;

    sg_spf_record_check(good[_i], strlen(good[_i]), &c);
    ck_assert_msg(c.ok, "%s: %s", good[_i], c.reason);
}
END_TEST

START_TEST(test_bad_records)
{
    struct sg_spf_check c;

    sg_spf_record_check(bad[_i].record, strlen(bad[_i].record), &c);
    ck_assert_msg(!c.ok, "%s accepted", bad[_i].record);
    ck_assert_msg(strstr(c.reason, bad[_i].why) != NULL, "%s: '%s' lacks "
                  "'%s'", bad[_i].record, c.reason, bad[_i].why);
}
END_TEST

/* The records known to break libspf2 1.2.10 never pass. */
START_TEST(test_attack_records)
{
    char rec[8192];
    struct sg_spf_check c;
    size_t n;

    /* CVE-2023-42118: a: with many %{d} and ~4 KB of text. */
    n = (size_t) snprintf(rec, sizeof(rec), "v=spf1 a:");
    for (int i = 0; i < 500; i++)
        n += (size_t) snprintf(rec + n, sizeof(rec) - n, "%%{d}");
    memset(rec + n, 'x', 2100);
    n += 2100;
    n += (size_t) snprintf(rec + n, sizeof(rec) - n, ".example.com");
    sg_spf_record_check(rec, n, &c);
    ck_assert(!c.ok);
    ck_assert_str_eq(c.reason, "record too long");
    /* The same macros in a record of legal length: too many macros. */
    n = (size_t) snprintf(rec, sizeof(rec), "v=spf1 a:");
    for (int i = 0; i < 100; i++)
        n += (size_t) snprintf(rec + n, sizeof(rec) - n, "%%{d}");
    n += (size_t) snprintf(rec + n, sizeof(rec) - n, ".example.com");
    sg_spf_record_check(rec, n, &c);
    ck_assert(!c.ok);
    ck_assert_str_eq(c.reason, "too many macros");
    /* CVE-2021-20314/-33912/-33913: reversed, long expansions of l, s. */
    snprintf(rec, sizeof(rec), "v=spf1 exists:%%{lr1000}.%%{sr-}.x.com");
    sg_spf_record_check(rec, strlen(rec), &c);
    ck_assert(!c.ok);
    /* A NUL inside a TXT string. */
    sg_spf_record_check("v=spf1 -all\0x", 13, &c);
    ck_assert(!c.ok);
    /* Terms bounded. */
    n = (size_t) snprintf(rec, sizeof(rec), "v=spf1");
    for (int i = 0; i < 50; i++)
        n += (size_t) snprintf(rec + n, sizeof(rec) - n, " ip4:192.0.2.%d",
                               i);
    sg_spf_record_check(rec, n, &c);
    ck_assert_str_eq(c.reason, "too many terms");
}
END_TEST

START_TEST(test_exp_strings)
{
    char why[96];
    const char *e = "%{i} is not one of %{d}'s servers. %{c} %{r} %{t} "
        "%%%_%-";

    ck_assert_msg(sg_spf_exp_check(e, strlen(e), why, sizeof(why)), "%s",
                  why);
    ck_assert(!sg_spf_exp_check("%{q}", 4, why, sizeof(why)));
    ck_assert(!sg_spf_exp_check("100%", 4, why, sizeof(why)));
}
END_TEST

/* An explanation of the attack's shape (CVE-2023-42118: many %{d}, then
 * text) never reaches libspf2's macro compiler; neither does a good one,
 * which our layer expands itself. */
START_TEST(test_explanations_kept_from_libspf2)
{
    static char attack[3000];
    static const struct zone_rr zone[] = {
        { "bad.test", "v=spf1 -all exp=exp.bad.test" },
        { "exp.bad.test", attack },
        { "good.test", "v=spf1 -all exp=exp.good.test" },
        { "exp.good.test", "%{i} is not one of %{d}'s servers" },
        { "other.test", "not an SPF record" },
        { "other.test", "v=spf1 -all" },
        { NULL, NULL },
    };
    struct txt_peer p;
    struct sg_dns *dns;
    struct sg_spf_outcome out;
    struct sg_mailaddr from;
    struct sg_addr ip;
    size_t n = 0;

    for (int i = 0; i < 500; i++)
        n += (size_t) snprintf(attack + n, sizeof(attack) - n, "%%{d}");
    memset(attack + n, 'x', sizeof(attack) - n - 1);
    dns = txt_peer_start(&p, zone);
    ck_assert_int_eq(sg_addr_parse("192.0.2.1", &ip), SG_OK);
    ncompiled = 0;
    ck_assert_int_eq(sg_mailaddr_parse("a@bad.test", &from), SG_OK);
    sg_spf_check(dns, sg_dns_clock(dns) + 3000, &ip, "helo.test", &from,
                 "mx.test", &out);
    ck_assert_int_eq(out.result, SG_SPF_FAIL);
    ck_assert_str_eq(out.explanation, "");      /* over our bounds */
    ck_assert_int_eq(sg_mailaddr_parse("a@good.test", &from), SG_OK);
    sg_spf_check(dns, sg_dns_clock(dns) + 3000, &ip, "helo.test", &from,
                 "mx.test", &out);
    ck_assert_int_eq(out.result, SG_SPF_FAIL);
    ck_assert_str_eq(out.explanation,
                     "192.0.2.1 is not one of good.test's servers");
    ck_assert_int_eq(sg_mailaddr_parse("a@other.test", &from), SG_OK);
    sg_spf_check(dns, sg_dns_clock(dns) + 3000, &ip, "helo.test", &from,
                 "mx.test", &out);
    ck_assert_int_eq(out.result, SG_SPF_FAIL);
    /* Only constant texts: libspf2's built-in default and ours. */
    ck_assert_int_ge(ncompiled, 1);
    for (int i = 0; i < ncompiled; i++)
        ck_assert_msg(strncmp(compiled[i], "Please%_see", 11) == 0 ||
                      strcmp(compiled[i], "SPF fail") == 0,
                      "libspf2 compiled '%s'", compiled[i]);
    txt_peer_stop(&p, dns);
}
END_TEST

/*
 * The explanation target of a fail is the network's text: an SPF-looking
 * record there (which passes our record check) once reached libspf2's
 * macro compiler, whose 511-byte stack buffer it overran (SIGABRT, every
 * session lost). libspf2 must compile none of it, whatever the exp=
 * target holds or where the exp= stands (redirect target, include).
 */
START_TEST(test_exp_target_never_reaches_libspf2)
{
    static char spfish[800], cve[4200];
    static const struct zone_rr zone[] = {
        { "hostile.test", "v=spf1 -all exp=e.hostile.test" },
        { "e.hostile.test", spfish },
        { "cve.test", "v=spf1 -all exp=e.cve.test" },
        { "e.cve.test", cve },
        { "two.test", "v=spf1 -all exp=e.two.test" },
        { "e.two.test", "first" },
        { "e.two.test", "second" },
        { "macro.test", "v=spf1 -all exp=%{l}.e.macro.test" },
        { "a.e.macro.test", spfish },
        { "redir.test", "v=spf1 redirect=target.redir.test exp=x.redir.test" },
        { "x.redir.test", "not this one" },
        { "target.redir.test", "v=spf1 -all exp=e.target.redir.test" },
        { "e.target.redir.test", "%{d} refuses %{i}" },
        { "inc.test", "v=spf1 include:sub.inc.test -all" },
        { "sub.inc.test", "v=spf1 ?all exp=e.sub.inc.test" },
        { "e.sub.inc.test", spfish },
        { NULL, NULL },
    };
    static const struct {
        const char *from, *want;
    } cases[] = {
        { "a@hostile.test", "" },
        { "a@cve.test", "" },
        { "a@two.test", "" },          /* 6.2: more than one record */
        { "a@macro.test", "" },
        { "a@redir.test", "target.redir.test refuses 192.0.2.1" },
        { "a@inc.test", "" },          /* 6.2: an include's exp= unused */
    };
    struct txt_peer p;
    struct sg_dns *dns;
    struct sg_spf_outcome out;
    struct sg_mailaddr from;
    struct sg_addr ip;
    size_t n;

    memset(cve, 'a', sizeof(cve) - 1);
    n = (size_t) snprintf(spfish, sizeof(spfish), "v=spf1 exists:%.236s%%{d} "
                          "exists:%.232s%%{d} exists:%.200s.example -all",
                          cve, cve, cve);
    ck_assert_uint_gt(n, 700);
    n = (size_t) snprintf(cve, sizeof(cve), "v=spf1");
    while (n + 8 < sizeof(cve))
        n += (size_t) snprintf(cve + n, sizeof(cve) - n, " a:%%{d}");
    dns = txt_peer_start(&p, zone);
    ck_assert_int_eq(sg_addr_parse("192.0.2.1", &ip), SG_OK);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ncompiled = 0;
        ck_assert_int_eq(sg_mailaddr_parse(cases[i].from, &from), SG_OK);
        sg_spf_check(dns, sg_dns_clock(dns) + 3000, &ip, "helo.test", &from,
                     "mx.test", &out);
        ck_assert_msg(out.result == SG_SPF_FAIL, "%s: got %s, want fail",
                      cases[i].from, sg_spf_result_name(out.result));
        ck_assert_msg(strcmp(out.explanation, cases[i].want) == 0,
                      "%s: got explanation '%s', want '%s'", cases[i].from,
                      out.explanation, cases[i].want);
        for (int k = 0; k < ncompiled; k++)
            ck_assert_msg(strncmp(compiled[k], "Please%_see", 11) == 0 ||
                          strcmp(compiled[k], "SPF fail") == 0,
                          "%s: libspf2 compiled '%.40s'", cases[i].from,
                          compiled[k]);
    }
    txt_peer_stop(&p, dns);
}
END_TEST

/* A sender or HELO that SPF cannot check gives none, and the headers
 * still name what was not checked. */
START_TEST(test_unusable_identity_named)
{
    static const struct zone_rr zone[] = { { NULL, NULL } };
    struct txt_peer p;
    struct sg_dns *dns;
    struct sg_spf_outcome out;
    struct sg_mailaddr from;
    struct sg_addr ip;
    char buf[1024];

    dns = txt_peer_start(&p, zone);
    ck_assert_int_eq(sg_addr_parse("192.0.2.1", &ip), SG_OK);
    ck_assert_int_eq(sg_mailaddr_parse("a@b", &from), SG_OK);
    sg_spf_check(dns, sg_dns_clock(dns) + 3000, &ip, "helo.test", &from,
                 "mx.test", &out);
    ck_assert_int_eq(out.result, SG_SPF_NONE);
    ck_assert_str_eq(out.identity, "a@b");
    sg_spf_received(&out, "mx.test", buf, sizeof(buf));
    ck_assert_msg(strstr(buf, "domain of a@b does not provide") != NULL,
                  "%s", buf);
    sg_spf_authres(&out, buf, sizeof(buf));
    ck_assert_str_eq(buf, "spf=none smtp.mailfrom=a@b");
    ck_assert_int_eq(sg_mailaddr_parse("<>", &from), SG_OK);
    sg_spf_check(dns, sg_dns_clock(dns) + 3000, &ip, "[192.0.2.1]", &from,
                 "mx.test", &out);
    ck_assert_int_eq(out.result, SG_SPF_NONE);
    sg_spf_authres(&out, buf, sizeof(buf));
    ck_assert_str_eq(buf, "spf=none smtp.helo=\"[192.0.2.1]\"");
    txt_peer_stop(&p, dns);
}
END_TEST

/*
 * An answer that came but made no sense (a short or garbled reply over
 * TCP, records that do not parse) is a DNS error, RFC 7208 5: temperror,
 * at the top and below. Only a name no query can carry does not exist.
 */
struct fixed_asker {
    struct sg_dns_answer top, a_rec;
};

static const struct sg_dns_answer *fixed_ask(void *arg, const char *name,
                                             uint16_t type, bool *refused)
{
    struct fixed_asker *f = arg;

    *refused = false;
    if (type == SG_DNS_T_TXT && strcmp(name, f->top.name) == 0)
        return &f->top;
    f->a_rec.qtype = type;
    sg_strlcpy(f->a_rec.name, name, sizeof(f->a_rec.name));
    return &f->a_rec;
}

START_TEST(test_nonsense_answer_is_temperror)
{
    static const struct {
        enum sg_dns_status top;
        const char *record;
        enum sg_dns_status below;
        enum sg_spf_result want;
    } cases[] = {
        { SG_DNS_MALFORMED, NULL, SG_DNS_OK, SG_SPF_TEMPERROR },
        { SG_DNS_BADNAME, NULL, SG_DNS_OK, SG_SPF_NONE },
        { SG_DNS_OK, "v=spf1 a:x.m.test -all", SG_DNS_MALFORMED,
          SG_SPF_TEMPERROR },
        { SG_DNS_OK, "v=spf1 a:x.m.test -all", SG_DNS_NETERR,
          SG_SPF_TEMPERROR },
        { SG_DNS_OK, "v=spf1 a:x.m.test -all", SG_DNS_NXDOMAIN,
          SG_SPF_FAIL },
    };
    struct sg_spf_outcome out;
    struct sg_mailaddr from;
    struct sg_addr ip;

    ck_assert_int_eq(sg_addr_parse("192.0.2.1", &ip), SG_OK);
    ck_assert_int_eq(sg_mailaddr_parse("a@m.test", &from), SG_OK);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        static char text[64];
        static struct sg_dns_rr rr;
        struct fixed_asker f;
        struct sg_spf_asker asker = { fixed_ask, &f };

        memset(&f, 0, sizeof(f));
        sg_strlcpy(f.top.name, "m.test", sizeof(f.top.name));
        f.top.qtype = SG_DNS_T_TXT;
        f.top.status = cases[i].top;
        if (cases[i].record != NULL) {
            sg_strlcpy(text, cases[i].record, sizeof(text));
            rr.type = SG_DNS_T_TXT;
            rr.ttl = 60;
            rr.text = text;
            rr.len = strlen(text);
            f.top.nrr = 1;
            f.top.rr = &rr;
        }
        f.a_rec.status = cases[i].below;
        sg_spf_eval(&asker, &ip, "helo.test", &from, "mx.test", &out);
        ck_assert_msg(out.result == cases[i].want, "case %zu: got %s, want "
                      "%s", i, sg_spf_result_name(out.result),
                      sg_spf_result_name(cases[i].want));
    }
}
END_TEST

/* A zone in memory, through the asker interface: name, type, answer
 * (all the entries of a name and type, in order). An entry of type 0
 * makes every lookup of the name a SERVFAIL. */
struct zentry {
    const char *name;
    uint16_t type;
    const char *text;           /* TXT/MX/PTR: one record; A/AAAA: address */
};

#define ZONE_RRS 4              /* records per answer */

struct zone_asker {
    const struct zentry *z;
    struct sg_dns_answer ans[64];
    struct sg_dns_rr rr[64][ZONE_RRS];
    char text[64][ZONE_RRS][SG_DNS_NAME_MAX];
    size_t n, asked;
};

static const struct sg_dns_answer *zone_ask(void *arg, const char *name,
                                            uint16_t type, bool *refused)
{
    struct zone_asker *za = arg;
    size_t slot = za->n++ % 64;
    struct sg_dns_answer *a = &za->ans[slot];
    bool named = false;

    *refused = false;
    za->asked++;
    memset(a, 0, sizeof(*a));
    sg_strlcpy(a->name, name, sizeof(a->name));
    a->qtype = type;
    a->rr = za->rr[slot];
    for (const struct zentry *e = za->z; e->name != NULL; e++) {
        struct sg_dns_rr *r = &za->rr[slot][a->nrr];

        if (strcmp(e->name, name) != 0)
            continue;
        named = true;
        if (e->type == 0) {
            a->status = SG_DNS_SERVFAIL;
            a->nrr = 0;
            return a;
        }
        if (e->type != type || a->nrr == ZONE_RRS)
            continue;
        memset(r, 0, sizeof(*r));
        r->type = type;
        r->ttl = 60;
        if (type == SG_DNS_T_A || type == SG_DNS_T_AAAA) {
            ck_assert_int_eq(sg_addr_parse(e->text, &r->addr), SG_OK);
        } else {
            sg_strlcpy(za->text[slot][a->nrr], e->text,
                       sizeof(za->text[slot][a->nrr]));
            r->text = za->text[slot][a->nrr];
            r->len = strlen(r->text);
        }
        a->nrr++;
    }
    a->status = a->nrr > 0 ? SG_DNS_OK : named ? SG_DNS_NODATA
        : SG_DNS_NXDOMAIN;
    return a;
}

/* zone_check - one check of sender a@DOMAIN from ip in zone z */
static void zone_check(const struct zentry *z, const char *ip_text,
                       const char *domain, struct sg_spf_outcome *out)
{
    static struct zone_asker za;
    struct sg_spf_asker asker = { zone_ask, &za };
    struct sg_mailaddr from;
    struct sg_addr ip;
    char addr[300];

    memset(&za, 0, sizeof(za));
    za.z = z;
    snprintf(addr, sizeof(addr), "a@%s", domain);
    ck_assert_int_eq(sg_addr_parse(ip_text, &ip), SG_OK);
    ck_assert_int_eq(sg_mailaddr_parse(addr, &from), SG_OK);
    sg_spf_eval(&asker, &ip, "helo.test", &from, "mx.test", out);
}

/*
 * RFC 7208 5: a DNS error during the evaluation ends it with temperror,
 * whatever a later term (or another MX host) would have said; 5.4: every
 * MX host is looked up. Not so for ptr (5.5: an error of the PTR lookup
 * is no match, of a name's address lookup skips the name), nor for the
 * explanation after a fail (6.2: no explanation).
 */
START_TEST(test_dns_error_is_temperror)
{
    static const struct zentry zone[] = {
        /* the MX host that fails comes after one that matches */
        { "mx.t", SG_DNS_T_TXT, "v=spf1 mx -all" },
        { "mx.t", SG_DNS_T_MX, "good.h.t" },
        { "mx.t", SG_DNS_T_MX, "bad.h.t" },
        { "good.h.t", SG_DNS_T_A, "192.0.2.1" },
        { "bad.h.t", 0, NULL },
        { "mx6.t", SG_DNS_T_TXT, "v=spf1 mx//0 -all" },
        { "mx6.t", SG_DNS_T_MX, "good.h.t" },
        { "mx6.t", SG_DNS_T_MX, "bad.h.t" },
        { "good.h.t", SG_DNS_T_AAAA, "2001:db8::1" },
        /* a failed term before the one that matches */
        { "first.t", SG_DNS_T_TXT, "v=spf1 a:bad.h.t ip4:192.0.2.1 -all" },
        { "inc.t", SG_DNS_T_TXT, "v=spf1 include:bad.h.t +all" },
        /* ptr: the PTR lookup fails: no match */
        { "ptr.t", SG_DNS_T_TXT, "v=spf1 ptr:ptr.t -all" },
        { "1.2.0.192.in-addr.arpa", 0, NULL },
        /* ptr: one name's address lookup fails: skipped */
        { "ptr2.t", SG_DNS_T_TXT, "v=spf1 ptr:ptr2.t -all" },
        { "2.2.0.192.in-addr.arpa", SG_DNS_T_PTR, "bad.h.t" },
        { "2.2.0.192.in-addr.arpa", SG_DNS_T_PTR, "n.ptr2.t" },
        { "n.ptr2.t", SG_DNS_T_A, "192.0.2.2" },
        /* %{p}: the PTR lookup fails: "unknown" */
        { "p.t", SG_DNS_T_TXT, "v=spf1 exists:%{p}.p.t -all" },
        { "unknown.p.t", SG_DNS_T_A, "127.0.0.2" },
        /* the explanation fails: a fail without one */
        { "exp.t", SG_DNS_T_TXT, "v=spf1 -all exp=bad.h.t" },
        { NULL, 0, NULL },
    };
    static const struct {
        const char *ip, *domain;
        enum sg_spf_result want;
    } cases[] = {
        { "192.0.2.1", "mx.t", SG_SPF_TEMPERROR },
        { "2001:db8::1", "mx6.t", SG_SPF_TEMPERROR },
        { "192.0.2.1", "first.t", SG_SPF_TEMPERROR },
        { "192.0.2.1", "inc.t", SG_SPF_TEMPERROR },
        { "192.0.2.1", "ptr.t", SG_SPF_FAIL },
        { "192.0.2.2", "ptr2.t", SG_SPF_PASS },
        { "192.0.2.1", "p.t", SG_SPF_PASS },
        { "192.0.2.1", "exp.t", SG_SPF_FAIL },
    };
    struct sg_spf_outcome out;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        zone_check(zone, cases[i].ip, cases[i].domain, &out);
        ck_assert_msg(out.result == cases[i].want, "%s: got %s (%s), want "
                      "%s", cases[i].domain, sg_spf_result_name(out.result),
                      out.reason, sg_spf_result_name(cases[i].want));
    }
    zone_check(zone, "192.0.2.1", "exp.t", &out);
    ck_assert_str_eq(out.explanation, "");
}
END_TEST

/*
 * RFC 7208 4.6.4: the address lookups of an mx term's names belong to
 * that term; the same name named again by a: is a term of its own, so a
 * record cannot hide more than 10 lookups behind its MX hosts.
 */
START_TEST(test_mx_names_counted_per_term)
{
    static char rec10[512], rec9[512];
    static const struct zentry zone[] = {
        { "nine.test", SG_DNS_T_TXT, rec9 },
        { "ten.test", SG_DNS_T_TXT, rec10 },
        { "nine.test", SG_DNS_T_MX, "mx1.hosts.test" },
        { "ten.test", SG_DNS_T_MX, "mx1.hosts.test" },
        { "mx1.hosts.test", SG_DNS_T_A, "198.51.100.1" },
        { NULL, 0, NULL },
    };
    struct zone_asker za;
    struct sg_spf_asker asker = { zone_ask, &za };
    struct sg_spf_outcome out;
    struct sg_mailaddr from;
    struct sg_addr ip;
    size_t n9, n10;

    n9 = (size_t) snprintf(rec9, sizeof(rec9), "v=spf1 mx");
    for (int i = 0; i < 9; i++)
        n9 += (size_t) snprintf(rec9 + n9, sizeof(rec9) - n9,
                                " a:mx1.hosts.test");
    snprintf(rec9 + n9, sizeof(rec9) - n9, " -all");
    n10 = (size_t) snprintf(rec10, sizeof(rec10), "%s", rec9);
    snprintf(rec10 + n10 - 5, sizeof(rec10) - n10 + 5,
             " a:mx1.hosts.test -all");
    ck_assert_int_eq(sg_addr_parse("192.0.2.1", &ip), SG_OK);
    memset(&za, 0, sizeof(za));
    za.z = zone;
    ck_assert_int_eq(sg_mailaddr_parse("a@nine.test", &from), SG_OK);
    sg_spf_eval(&asker, &ip, "helo.test", &from, "mx.test", &out);
    ck_assert_msg(out.result == SG_SPF_FAIL, "10 terms: %s (%s)",
                  sg_spf_result_name(out.result), out.reason);
    memset(&za, 0, sizeof(za));
    za.z = zone;
    ck_assert_int_eq(sg_mailaddr_parse("a@ten.test", &from), SG_OK);
    sg_spf_eval(&asker, &ip, "helo.test", &from, "mx.test", &out);
    ck_assert_msg(out.result == SG_SPF_PERMERROR, "11 terms: %s",
                  sg_spf_result_name(out.result));
}
END_TEST

/*
 * libspf2 stops compiling mechanisms once their data pass ~511 bytes,
 * silently: a record of 519 bytes lost its -all and was neutral. It is
 * a permerror of ours instead, and names the record.
 */
START_TEST(test_record_libspf2_would_cut)
{
    static char longrec[600], fits[400];
    static const struct zone_rr zone[] = {
        { "long.test", longrec },
        { "fits.test", fits },
        { NULL, NULL },
    };
    struct txt_peer p;
    struct sg_dns *dns;
    struct sg_spf_outcome out;
    struct sg_mailaddr from;
    struct sg_addr ip;
    char a[240];

    memset(a, 'a', sizeof(a));
    snprintf(longrec, sizeof(longrec), "v=spf1 exists:%.136s%%{d} "
             "exists:%.132s%%{d} exists:%.200s.example -all", a, a, a);
    ck_assert_uint_gt(strlen(longrec), 512);
    snprintf(fits, sizeof(fits), "v=spf1 exists:%.100s%%{d} "
             "exists:%.100s.example -all", a, a);
    dns = txt_peer_start(&p, zone);
    ck_assert_int_eq(sg_addr_parse("192.0.2.1", &ip), SG_OK);
    ck_assert_int_eq(sg_mailaddr_parse("x@long.test", &from), SG_OK);
    sg_spf_check(dns, sg_dns_clock(dns) + 3000, &ip, "helo.test", &from,
                 "mx.test", &out);
    ck_assert_msg(out.result == SG_SPF_PERMERROR, "long: %s (%s)",
                  sg_spf_result_name(out.result), out.reason);
    ck_assert(out.record_refused);
    ck_assert_msg(strstr(out.reason, "too long for libspf2") != NULL, "%s",
                  out.reason);
    ck_assert_str_eq(out.refused_domain, "long.test");
    ck_assert_int_eq(sg_mailaddr_parse("x@fits.test", &from), SG_OK);
    sg_spf_check(dns, sg_dns_clock(dns) + 3000, &ip, "helo.test", &from,
                 "mx.test", &out);
    ck_assert_msg(out.result == SG_SPF_FAIL, "fits: %s (%s)",
                  sg_spf_result_name(out.result), out.reason);
    ck_assert(!out.record_refused);
    txt_peer_stop(&p, dns);
}
END_TEST

START_TEST(test_rewrite_for_libspf2)
{
    static const struct {
        const char *in;
        bool v4;
        const char *out;
    } cases[] = {
        { "v=spf1 moo.cow=x ip4:1.2.3.4 -all", true,
          "v=spf1 ip4:1.2.3.4 -all" },
        { "v=spf1 -ip4:1.2.3.4/0", true,
          "v=spf1 -ip4:0.0.0.0/1 -ip4:128.0.0.0/1" },
        { "v=spf1 ip6:2001:db8::/0", false,
          "v=spf1 +ip6:::/1 +ip6:8000::/1" },
        { "v=spf1 a:e.example.com/24//64 -all", true,
          "v=spf1 a:e.example.com/24 -all" },
        { "v=spf1 a:e.example.com/24//64 -all", false,
          "v=spf1 a:e.example.com//64 -all" },
        { "v=spf1 ~a/0 -all", true, "v=spf1 ~exists:%{d} -all" },
        { "v=spf1 redirect=x.example.com exp=y.example.com", true,
          "v=spf1 redirect=x.example.com exp=y.example.com" },
        { "v=spf1 redirect=x.example.com ~all", true, "v=spf1 ~all" },
        { "v=spf1 mx/0 -all", true,
          "v=spf1 +exists:%{d}.sg-mx4.invalid -all" },
        { "v=spf1 a:e.example.com//0", false,
          "v=spf1 +exists:e.example.com.sg-a6.invalid" },
        { "v=spf1 -mx:e.example.com/24//0", false,
          "v=spf1 -exists:e.example.com.sg-mx6.invalid" },
        { "v=spf1 a:foo:bar/baz.example.com/24", true,
          "v=spf1 a:foo:bar/baz.example.com/24" },
        /* modifiers after the mechanisms, wherever they stood */
        { "v=spf1 redirect=x.example.com a:h.example.com", true,
          "v=spf1 a:h.example.com redirect=x.example.com" },
        { "v=spf1 exp=e.example.com -a redirect=x.example.com mx", true,
          "v=spf1 -a mx exp=e.example.com redirect=x.example.com" },
        /* the transformer R as r; a macro letter R stays */
        { "v=spf1 exists:%{oR}.%{VR}.%{d2R+-}.%%{R}.e.example.com", true,
          "v=spf1 exists:%{or}.%{Vr}.%{d2r+-}.%%{R}.e.example.com" },
    };
    char out[512];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sg_spf_record_for_libspf2(cases[i].in, strlen(cases[i].in),
                                  cases[i].v4, out, sizeof(out));
        ck_assert_str_eq(out, cases[i].out);
    }
}
END_TEST

/* A digit transformer asking for all parts or more is dropped where the
 * value is known; others, and unknown values (%{p}), stay. */
START_TEST(test_macro_digits)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        { "v=spf1 a:%{d2}.e.test", "v=spf1 a:%{d}.e.test" },
        { "v=spf1 a:%{d1}.e.test", "v=spf1 a:%{d1}.e.test" },
        { "v=spf1 a:%{d9r}.e.test -exists:%{D2R.}", "v=spf1 a:%{dr}.e.test "
          "-exists:%{DR.}" },
        { "v=spf1 exists:%{l2-}.%{l3-}.%{i4}.%{i3}.%{p1}.e.test",
          "v=spf1 exists:%{l2-}.%{l-}.%{i}.%{i3}.%{p1}.e.test" },
        { "v=spf1 exp=%%{d2}.%{o2}", "v=spf1 exp=%%{d2}.%{o}" },
    };
    const char *values[26] = { NULL };
    char buf[256];

    values['d' - 'a'] = "example.com";
    values['o' - 'a'] = "example.com";
    values['l' - 'a'] = "a-b-c";
    values['i' - 'a'] = "192.0.2.1";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(buf, sizeof(buf), "%s", cases[i].in);
        sg_spf_macro_digits(buf, values);
        ck_assert_str_eq(buf, cases[i].out);
    }
}
END_TEST

/* The delimiters "," and "/" (RFC 7208 7.1), which libspf2 refuses: such
 * macros of a known value are expanded (7.3: parts rejoined with ".",
 * empty parts kept), as record text; unknown ones are reported. */
START_TEST(test_macro_delims)
{
    static const struct {
        const char *in, *out;
        unsigned unknown;
    } cases[] = {
        { "v=spf1 exists:%{l1,}.x.test -all", "v=spf1 exists:c.x.test -all",
          0 },
        { "v=spf1 exists:%{lr,}.x.test", "v=spf1 exists:c.b..a.x.test", 0 },
        { "v=spf1 exists:%{l,/}.x.test", "v=spf1 exists:a.b..c.x.test", 0 },
        { "v=spf1 a:%{d/}.x.test a:%{d2,.}", "v=spf1 a:sub.example.com.x.test"
          " a:example.com", 0 },
        { "v=spf1 a:%{d.}.x.test", "v=spf1 a:%{d.}.x.test", 0 },
        { "v=spf1 exists:%{S,}.x.test", "v=spf1 exists:q%%20r%%25s%%40"
          "sub.example.com.x.test", 0 },
        { "v=spf1 exists:%{s,}.x.test", "v=spf1 exists:q%_r%%s@"
          "sub.example.com.x.test", 0 },
        { "v=spf1 exists:%{p,}.%{i/}.x.test", "v=spf1 exists:%{p,}.192.0.2.1"
          ".x.test", 1u << ('p' - 'a') },
        { "v=spf1 exp=%%{d,} exists:%{ir./}", "v=spf1 exp=%%{d,} exists:"
          "1.2.0.192", 0 },
        /* upper case: URL-escaped ("'" too); %{p} with a digit */
        { "v=spf1 a:%{D2} exists:%{L}.%{p1}.%{p}.x.test", "v=spf1 "
          "a:example.com exists:o%%27b.%{p1}.%{p}.x.test", 1u << ('p' - 'a') },
        { "v=spf1 exists:%{p}.x.test", "v=spf1 exists:%{p}.x.test",
          1u << ('p' - 'a') },
    };
    const char *values[26] = { NULL };
    char buf[256], small[40];

    values['d' - 'a'] = "sub.example.com";
    values['l' - 'a'] = "a,b/,c";
    values['i' - 'a'] = "192.0.2.1";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        values['s' - 'a'] = strstr(cases[i].in, "%{s") ||
            strstr(cases[i].in, "%{S") ? "q r%s@sub.example.com" : NULL;
        if (i < 3 || i >= 9)
            values['l' - 'a'] = i == 0 ? "a,b,c" : i == 1 ? "a,,b,c"
                : i == 2 ? "a,b/,c" : "o'b";
        snprintf(buf, sizeof(buf), "%s", cases[i].in);
        ck_assert_uint_eq(sg_spf_macro_delims(buf, sizeof(buf), values),
                          cases[i].unknown);
        ck_assert_str_eq(buf, cases[i].out);
    }
    /* an expansion that does not fit leaves the macro as it was */
    values['l' - 'a'] = "a-very-long-local-part,that-goes-on";
    snprintf(small, sizeof(small), "v=spf1 exists:%%{l,}.x.test");
    sg_spf_macro_delims(small, sizeof(small), values);
    ck_assert_str_eq(small, "v=spf1 exists:%{l,}.x.test");
}
END_TEST

/* %{p} with such a delimiter: found by our layer, the name under the
 * domain first (7.3), "unknown" without one */
START_TEST(test_p_with_delims)
{
    static const struct zentry zone[] = {
        { "p.t", SG_DNS_T_TXT, "v=spf1 exists:%{p1,}.x.t exists:%{p2/}.y.t "
          "-all" },
        { "1.2.0.192.in-addr.arpa", SG_DNS_T_PTR, "elsewhere.test" },
        { "1.2.0.192.in-addr.arpa", SG_DNS_T_PTR, "n.p.t" },
        { "elsewhere.test", SG_DNS_T_A, "192.0.2.1" },
        { "n.p.t", SG_DNS_T_A, "192.0.2.1" },
        { "n.p.t.x.t", SG_DNS_T_A, "127.0.0.2" },
        { "q.t", SG_DNS_T_TXT, "v=spf1 exists:%{p,}.x.t -all" },
        { "unknown.x.t", SG_DNS_T_A, "127.0.0.2" },
        { NULL, 0, NULL },
    };
    struct sg_spf_outcome out;

    zone_check(zone, "192.0.2.1", "p.t", &out);
    ck_assert_msg(out.result == SG_SPF_PASS, "%s (%s)",
                  sg_spf_result_name(out.result), out.reason);
    zone_check(zone, "192.0.2.9", "q.t", &out);     /* no PTR */
    ck_assert_msg(out.result == SG_SPF_PASS, "%s (%s)",
                  sg_spf_result_name(out.result), out.reason);
}
END_TEST

/* An explanation's macro with delimiters and no other transformer is
 * split and rejoined with "." too (7.3), empty parts kept. */
START_TEST(test_exp_delimiters)
{
    static const struct zentry zone[] = {
        { "e.t", SG_DNS_T_TXT, "v=spf1 -all exp=x.e.t" },
        { "x.e.t", SG_DNS_T_TXT, "%{l-} %{lr-} %{o_}" },
        { "f.t", SG_DNS_T_TXT, "v=spf1 -all exp=x.f.t" },
        { "x.f.t", SG_DNS_T_TXT, "%{Sr+}" },
        { NULL, 0, NULL },
    };
    static struct zone_asker za;
    struct sg_spf_asker asker = { zone_ask, &za };
    struct sg_spf_outcome out;
    struct sg_mailaddr from;
    struct sg_addr ip;

    memset(&za, 0, sizeof(za));
    za.z = zone;
    ck_assert_int_eq(sg_addr_parse("192.0.2.1", &ip), SG_OK);
    ck_assert_int_eq(sg_mailaddr_parse("strong--bad@e.t", &from), SG_OK);
    sg_spf_eval(&asker, &ip, "helo.test", &from, "mx.test", &out);
    ck_assert_int_eq(out.result, SG_SPF_FAIL);
    ck_assert_str_eq(out.explanation, "strong..bad bad..strong e.t");
    /* upper case: escaped after the split (7.3) */
    memset(&za, 0, sizeof(za));
    za.z = zone;
    ck_assert_int_eq(sg_mailaddr_parse("a+b@f.t", &from), SG_OK);
    sg_spf_eval(&asker, &ip, "helo.test", &from, "mx.test", &out);
    ck_assert_int_eq(out.result, SG_SPF_FAIL);
    ck_assert_str_eq(out.explanation, "b%40f.t.a");
}
END_TEST

START_TEST(test_headers)
{
    struct sg_spf_outcome o;
    char buf[1024];

    memset(&o, 0, sizeof(o));
    o.result = SG_SPF_FAIL;
    snprintf(o.identity, sizeof(o.identity), "a\"b@example.com");
    snprintf(o.ip, sizeof(o.ip), "192.0.2.1");
    snprintf(o.helo, sizeof(o.helo), "mail(x)");
    sg_spf_received(&o, "mx.example.net", buf, sizeof(buf));
    ck_assert_str_eq(buf, "fail (mx.example.net: domain of a\"b@example.com "
                     "does not designate 192.0.2.1 as permitted sender) "
                     "client-ip=192.0.2.1; envelope-from=\"a\\\"b@example."
                     "com\"; helo=\"mail(x)\"; receiver=mx.example.net; "
                     "identity=mailfrom;");
    sg_spf_authres(&o, buf, sizeof(buf));
    ck_assert_str_eq(buf, "spf=fail smtp.mailfrom=\"a\\\"b@example.com\"");
    o.helo_identity = true;
    o.result = SG_SPF_PASS;
    snprintf(o.identity, sizeof(o.identity), "mail.example.com");
    sg_spf_authres(&o, buf, sizeof(buf));
    ck_assert_str_eq(buf, "spf=pass smtp.helo=mail.example.com");
}
END_TEST

Suite *spf_suite(void)
{
    Suite *s = suite_create("spf");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_good_records, 0,
                        sizeof(good) / sizeof(good[0]));
    tcase_add_loop_test(tc, test_bad_records, 0,
                        sizeof(bad) / sizeof(bad[0]));
    tcase_add_test(tc, test_attack_records);
    tcase_add_test(tc, test_exp_strings);
    tcase_add_test(tc, test_rewrite_for_libspf2);
    tcase_add_test(tc, test_macro_digits);
    tcase_add_test(tc, test_macro_delims);
    tcase_add_test(tc, test_p_with_delims);
    tcase_add_test(tc, test_exp_delimiters);
    tcase_add_test(tc, test_explanations_kept_from_libspf2);
    tcase_add_test(tc, test_exp_target_never_reaches_libspf2);
    tcase_add_test(tc, test_headers);
    tcase_add_test(tc, test_unusable_identity_named);
    tcase_add_test(tc, test_nonsense_answer_is_temperror);
    tcase_add_test(tc, test_mx_names_counted_per_term);
    tcase_add_test(tc, test_record_libspf2_would_cut);
    tcase_add_test(tc, test_dns_error_is_temperror);
    suite_add_tcase(s, tc);
    return s;
}
