/*
 * test_addr.c - address parsing, prefix keys and CIDR matching; domain
 * names (dname.h): each use's rule, and reverse names
 */
#include <string.h>
#include <sys/socket.h>

#include "addr.h"
#include "dname.h"
#include "testutil.h"

static const struct {
    const char *label;
    const char *in;
    int want_ok;
    const char *want_text;
} parse_cases[] = {
    { "ipv4", "192.0.2.1", 1, "192.0.2.1" },
    { "ipv6", "2001:db8::1", 1, "2001:db8::1" },
    { "ipv6 brackets", "[2001:db8::1]", 1, "2001:db8::1" },
    { "sendmail IPv6: prefix", "IPv6:2001:db8::2", 1, "2001:db8::2" },
    { "ipv6 zone dropped", "fe80::1%eth0", 1, "fe80::1" },
    { "v4-mapped is ipv4", "::ffff:192.0.2.9", 1, "192.0.2.9" },
    { "empty", "", 0, NULL },
    { "garbage", "not-an-address", 0, NULL },
    { "unbalanced bracket", "[2001:db8::1", 0, NULL },
    { "octet overflow", "192.0.2.256", 0, NULL },
    { "trailing junk", "192.0.2.1x", 0, NULL },
    { "too long", "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:"
      "dddd", 0, NULL },
};

START_TEST(test_parse)
{
    struct sg_addr a;
    char buf[SG_ADDR_STRLEN];
    int got = sg_addr_parse(parse_cases[_i].in, &a) == SG_OK;

    ck_assert_msg(got == parse_cases[_i].want_ok, "%s: got ok=%d, want %d",
                  parse_cases[_i].label, got, parse_cases[_i].want_ok);
    if (got) {
        ck_assert_int_eq(sg_addr_format(&a, buf, sizeof(buf)), SG_OK);
        ck_assert_msg(strcmp(buf, parse_cases[_i].want_text) == 0,
                      "%s: got %s, want %s", parse_cases[_i].label, buf,
                      parse_cases[_i].want_text);
    }
}
END_TEST

START_TEST(test_parse_null)
{
    struct sg_addr a;

    ck_assert_int_eq(sg_addr_parse(NULL, &a), SG_EINVAL);
}
END_TEST

static const struct {
    const char *in;
    int v4, v6;
    const char *want;
} key_cases[] = {
    { "192.0.2.77", 32, 64, "192.0.2.77" },
    { "192.0.2.77", 24, 64, "192.0.2.0/24" },
    { "2001:db8:1:2:aaaa::1", 32, 64, "2001:db8:1:2::/64" },
    { "2001:db8:1:2:aaaa::1", 32, 48, "2001:db8:1::/48" },
    { "2001:db8:1:2:aaaa::1", 32, 128, "2001:db8:1:2:aaaa::1" },
    { "2001:db8:1:2:aaaa::1", 32, 0, "::/0" },
};

START_TEST(test_key)
{
    struct sg_addr a;
    char buf[SG_ADDR_STRLEN];

    ck_assert_int_eq(sg_addr_parse(key_cases[_i].in, &a), SG_OK);
    sg_addr_key(&a, key_cases[_i].v4, key_cases[_i].v6, buf, sizeof(buf));
    ck_assert_msg(strcmp(buf, key_cases[_i].want) == 0, "%s /%d /%d: got "
                  "%s, want %s", key_cases[_i].in, key_cases[_i].v4,
                  key_cases[_i].v6, buf, key_cases[_i].want);
}
END_TEST

START_TEST(test_ipv6_prefix_aggregates)
{
    struct sg_addr a, b, c;
    char ka[SG_ADDR_STRLEN], kb[SG_ADDR_STRLEN], kc[SG_ADDR_STRLEN];

    sg_addr_parse("2001:db8:1:2::1", &a);
    sg_addr_parse("2001:db8:1:2:ffff:ffff:ffff:ffff", &b);
    sg_addr_parse("2001:db8:1:3::1", &c);
    sg_addr_key(&a, 32, 64, ka, sizeof(ka));
    sg_addr_key(&b, 32, 64, kb, sizeof(kb));
    sg_addr_key(&c, 32, 64, kc, sizeof(kc));
    ck_assert_str_eq(ka, kb);
    ck_assert_str_ne(ka, kc);
}
END_TEST

static const struct {
    const char *label;
    const char *net;
    const char *addr;
    int want_parse;
    int want_match;
    const char *want_err;
} cidr_cases[] = {
    { "v4 /24 inside", "192.0.2.0/24", "192.0.2.200", 1, 1, NULL },
    { "v4 /24 outside", "192.0.2.0/24", "192.0.3.1", 1, 0, NULL },
    { "v4 host", "192.0.2.7", "192.0.2.7", 1, 1, NULL },
    { "v4 /0 matches all v4", "0.0.0.0/0", "203.0.113.9", 1, 1, NULL },
    { "v4 net vs v6 addr", "0.0.0.0/0", "2001:db8::1", 1, 0, NULL },
    { "v6 /32 inside", "2001:db8::/32", "2001:db8:ffff::1", 1, 1, NULL },
    { "v6 /32 outside", "2001:db8::/32", "2001:db9::1", 1, 0, NULL },
    { "v6 /128", "2001:db8::5/128", "2001:db8::5", 1, 1, NULL },
    { "v6 odd prefix /61", "2001:db8:0:8::/61", "2001:db8:0:f::1", 1, 1,
      NULL },
    { "v6 odd prefix /61 outside", "2001:db8:0:8::/61", "2001:db8:0:10::1", 1,
      0, NULL },
    { "mapped net", "::ffff:192.0.2.0/120", "192.0.2.3", 1, 1, NULL },
    { "host bits", "192.0.2.1/24", NULL, 0, 0, "did you mean 192.0.2.0/24" },
    { "prefix too long", "192.0.2.0/33", NULL, 0, 0, "out of range 0-32" },
    { "v6 prefix too long", "2001:db8::/129", NULL, 0, 0,
      "out of range 0-128" },
    { "prefix not a number", "192.0.2.0/x", NULL, 0, 0, "not a number" },
    { "negative prefix", "192.0.2.0/-1", NULL, 0, 0, "not a number" },
    { "empty prefix", "192.0.2.0/", NULL, 0, 0, "not a number" },
    { "not an address", "example.com/24", NULL, 0, 0, "not an IPv4 or IPv6" },
    { "zone in list", "fe80::1%eth0/128", NULL, 0, 0, "not an IPv4 or IPv6" },
};

START_TEST(test_cidr)
{
    struct sg_cidr net;
    struct sg_addr a;
    struct sg_err err = { "" };
    int ok = sg_cidr_parse(cidr_cases[_i].net, &net, &err) == SG_OK;

    ck_assert_msg(ok == cidr_cases[_i].want_parse, "%s: parse got %d, want "
                  "%d (%s)", cidr_cases[_i].label, ok,
                  cidr_cases[_i].want_parse, err.msg);
    if (!ok) {
        ck_assert_msg(strstr(err.msg, cidr_cases[_i].want_err) != NULL,
                      "%s: error '%s' lacks '%s'", cidr_cases[_i].label,
                      err.msg, cidr_cases[_i].want_err);
        return;
    }
    ck_assert_int_eq(sg_addr_parse(cidr_cases[_i].addr, &a), SG_OK);
    ck_assert_msg(sg_cidr_match(&net, &a) == cidr_cases[_i].want_match,
                  "%s: match got %d, want %d", cidr_cases[_i].label,
                  !cidr_cases[_i].want_match, cidr_cases[_i].want_match);
}
END_TEST

START_TEST(test_cidr_format)
{
    struct sg_cidr net;
    char buf[SG_ADDR_STRLEN];

    ck_assert_int_eq(sg_cidr_parse("192.0.2.7", &net, NULL), SG_OK);
    sg_cidr_format(&net, buf, sizeof(buf));
    ck_assert_str_eq(buf, "192.0.2.7/32");
    ck_assert_int_eq(sg_cidr_parse("2001:db8::/32", &net, NULL), SG_OK);
    sg_cidr_format(&net, buf, sizeof(buf));
    ck_assert_str_eq(buf, "2001:db8::/32");
}
END_TEST

/* The three rules side by side: what each use accepts. */
START_TEST(test_dname_rules)
{
    static const struct {
        const char *name;
        bool normal, query, host;
    } cases[] = {
        { "mx.Example.COM", true, true, true },
        { "mx.example.com.", true, true, true },
        { "_spf.example.com", true, true, true },
        { "a b.example", false, true, false },      /* SPF macros do this */
        { "a..b", false, false, true },     /* host_ok: characters only */
        { ".a", false, false, false },
        { "-a.example", true, true, false },
        { "tab\tname", false, false, false },
        { "back\\slash", false, false, false },
        { "quo\"te", false, false, false },
        { "\xc3\xa9t\xc3\xa9.example", false, false, false },
        { "", false, false, false },
    };
    char out[SG_DNAME_MAX], label[70], big[300];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_msg((sg_dname_normalize(cases[i].name, out, sizeof(out))
                       == SG_OK) == cases[i].normal, "normalize '%s'",
                      cases[i].name);
        ck_assert_msg(sg_dname_query_ok(cases[i].name) == cases[i].query,
                      "query_ok '%s'", cases[i].name);
        ck_assert_msg(sg_dname_host_ok(cases[i].name) == cases[i].host,
                      "host_ok '%s'", cases[i].name);
    }
    ck_assert(sg_dname_fqdn_ok("mx.example.com"));
    ck_assert(!sg_dname_fqdn_ok("localhost"));
    ck_assert(!sg_dname_fqdn_ok("[192.0.2.1]"));
    ck_assert(!sg_dname_fqdn_ok("a..b"));
    ck_assert_int_eq(sg_dname_normalize("MX.Example.COM.", out, sizeof(out)),
                     SG_OK);
    ck_assert_str_eq(out, "mx.example.com");
    /* Labels of 63 and names of 253, not one more. */
    memset(label, 'a', 64);
    label[63] = '\0';
    ck_assert(sg_dname_query_ok(label));
    label[63] = 'a';
    label[64] = '\0';
    ck_assert(!sg_dname_query_ok(label));
    for (size_t n = 0; n < 253; n += 2)
        memcpy(big + n, "a.", 2);
    big[253] = '\0';
    big[252] = 'a';
    ck_assert(sg_dname_query_ok(big));
    ck_assert_int_eq(sg_dname_normalize(big, out, sizeof(out)), SG_OK);
    big[253] = 'a';
    big[254] = '\0';
    ck_assert(!sg_dname_query_ok(big));
    ck_assert_int_eq(sg_dname_normalize(big, out, sizeof(out)), SG_EINVAL);
}
END_TEST

START_TEST(test_dname_reverse)
{
    struct sg_addr a;
    char out[SG_DNAME_MAX];

    ck_assert_int_eq(sg_addr_parse("192.0.2.7", &a), SG_OK);
    ck_assert_int_eq(sg_dname_reverse(&a, "in-addr.arpa", out, sizeof(out)),
                     SG_OK);
    ck_assert_str_eq(out, "7.2.0.192.in-addr.arpa");
    ck_assert_int_eq(sg_dname_reverse(&a, "in-addr.arpa", out, 10),
                     SG_EINVAL);
    ck_assert_int_eq(sg_addr_parse("2001:db8::1", &a), SG_OK);
    ck_assert_int_eq(sg_dname_reverse(&a, "ip6.arpa", out, sizeof(out)),
                     SG_OK);
    ck_assert_str_eq(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
                     "8.b.d.0.1.0.0.2.ip6.arpa");
}
END_TEST

#define N(a) ((int) (sizeof(a) / sizeof((a)[0])))

Suite *addr_suite(void)
{
    Suite *s = suite_create("addr");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_parse, 0, N(parse_cases));
    tcase_add_test(tc, test_parse_null);
    tcase_add_loop_test(tc, test_key, 0, N(key_cases));
    tcase_add_test(tc, test_ipv6_prefix_aggregates);
    tcase_add_loop_test(tc, test_cidr, 0, N(cidr_cases));
    tcase_add_test(tc, test_cidr_format);
    tcase_add_test(tc, test_dname_rules);
    tcase_add_test(tc, test_dname_reverse);
    suite_add_tcase(s, tc);
    return s;
}
