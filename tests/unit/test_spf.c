/*
 * test_spf.c - the SPF record checks that stand between DNS and libspf2,
 * the rewriting for libspf2, and the headers
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "spf.h"
#include "spfrecord.h"
#include "testutil.h"

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
    };
    char out[512];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sg_spf_record_for_libspf2(cases[i].in, strlen(cases[i].in),
                                  cases[i].v4, out, sizeof(out));
        ck_assert_str_eq(out, cases[i].out);
    }
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
    tcase_add_test(tc, test_headers);
    suite_add_tcase(s, tc);
    return s;
}
