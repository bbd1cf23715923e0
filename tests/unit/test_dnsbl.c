/*
 * test_dnsbl.c - DNSBL zone filters, weights, query names, and the
 * dnsbl_zones rows as the snapshot loads them
 */
#include <check.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"
#include "dname.h"
#include "dnsbl.h"
#include "testutil.h"

static bool counts(const struct sg_dnsbl_zone *z, const char *answer)
{
    struct sg_addr a;

    ck_assert_int_eq(sg_addr_parse(answer, &a), SG_OK);
    ck_assert_int_eq(a.family, AF_INET);
    return sg_dnsbl_answer_counts(z, a.b);
}

static void zone(struct sg_dnsbl_zone *z, const char *answers)
{
    struct sg_err err;

    ck_assert_msg(sg_dnsbl_zone_init(z, "bl.example.test", 1, answers, true,
                                     true, &err) == SG_OK, "%s: %s",
                  answers, err.msg);
}

START_TEST(test_filter_any)
{
    struct sg_dnsbl_zone z;

    zone(&z, "");
    ck_assert(counts(&z, "127.0.0.2"));
    ck_assert(counts(&z, "127.1.2.3"));
    /* Not a listing: outside 127/8, or the error range lists use. */
    ck_assert(!counts(&z, "192.0.2.1"));
    ck_assert(!counts(&z, "127.255.255.254"));
    ck_assert(!counts(&z, "127.255.255.252"));
    sg_dnsbl_zone_clear(&z);
}
END_TEST

START_TEST(test_filter_pattern)
{
    struct sg_dnsbl_zone z;

    zone(&z, "127.0.0.[2..11;20]");
    ck_assert(!counts(&z, "127.0.0.1"));
    ck_assert(counts(&z, "127.0.0.2"));
    ck_assert(counts(&z, "127.0.0.11"));
    ck_assert(!counts(&z, "127.0.0.12"));
    ck_assert(counts(&z, "127.0.0.20"));
    ck_assert(!counts(&z, "127.0.1.2"));
    sg_dnsbl_zone_clear(&z);

    zone(&z, "127.0.[0;1].2, 127.0.0.4");
    ck_assert(counts(&z, "127.0.1.2"));
    ck_assert(counts(&z, "127.0.0.4"));
    ck_assert(!counts(&z, "127.0.0.3"));
    ck_assert_str_eq(z.answers, "127.0.[0;1].2, 127.0.0.4");
    sg_dnsbl_zone_clear(&z);
}
END_TEST

START_TEST(test_filter_net_and_mask)
{
    struct sg_dnsbl_zone z;

    zone(&z, "127.0.2.0/24");
    ck_assert(counts(&z, "127.0.2.200"));
    ck_assert(!counts(&z, "127.0.3.1"));
    sg_dnsbl_zone_clear(&z);

    zone(&z, "&0x04");
    ck_assert(counts(&z, "127.0.0.4"));
    ck_assert(counts(&z, "127.0.0.6"));
    ck_assert(!counts(&z, "127.0.0.2"));
    /* A bitmask reads list answers only. */
    ck_assert(!counts(&z, "10.0.0.4"));
    sg_dnsbl_zone_clear(&z);
}
END_TEST

static const struct {
    const char *answers;
    const char *why;
} bad_filters[] = {
    { "127.0.0.[2..]", "a <= b <= 255" },
    { "127.0.0.[5..2]", "a <= b" },
    { "127.0.0.300", "0-255" },
    { "127.0.0", "four octets" },
    { "127.0.0.2.5", "trailing" },
    { "127.0.0.[2;3", "';' or ']'" },
    { "&0", "bitmask" },
    { "&0x100", "bitmask" },
    { "&x", "bitmask" },
    { "127.0.0.1/24", "host bits" },
    { "2001:db8::/32", "IPv4" },
    { "127.0.0.2x", "trailing" },
};

START_TEST(test_filter_refused)
{
    struct sg_dnsbl_zone z;
    struct sg_err err;

    ck_assert_int_eq(sg_dnsbl_zone_init(&z, "bl.example.test", 1,
                                        bad_filters[_i].answers, true, true,
                                        &err), SG_EINVAL);
    ck_assert_msg(strstr(err.msg, bad_filters[_i].why) != NULL,
                  "'%s': reason '%s' lacks '%s'", bad_filters[_i].answers,
                  err.msg, bad_filters[_i].why);
    ck_assert_ptr_null(z.zone);
}
END_TEST

START_TEST(test_zone_names_and_weight)
{
    struct sg_dnsbl_zone z;
    struct sg_err err;

    ck_assert_int_eq(sg_dnsbl_zone_init(&z, "BL.Example.TEST.", -5, NULL,
                                        false, false, &err), SG_OK);
    ck_assert_str_eq(z.zone, "bl.example.test");
    ck_assert_int_eq(z.weight, -5);
    ck_assert(!z.txt && !z.ipv6);
    sg_dnsbl_zone_clear(&z);
    ck_assert_int_eq(sg_dnsbl_zone_init(&z, "localhost", 1, "", true, true,
                                        &err), SG_EINVAL);
    ck_assert_int_eq(sg_dnsbl_zone_init(&z, "bad zone.test", 1, "", true,
                                        true, &err), SG_EINVAL);
    ck_assert_int_eq(sg_dnsbl_zone_init(&z, "bl.example.test", 0, "", true,
                                        true, &err), SG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "weight 0"));
}
END_TEST

START_TEST(test_site_syntax)
{
    struct sg_dnsbl_zone z;
    struct sg_err err;

    ck_assert_int_eq(sg_dnsbl_site_parse(&z, "zen.example.test=127.0.0.[2..11]"
                                         "*3", &err), SG_OK);
    ck_assert_str_eq(z.zone, "zen.example.test");
    ck_assert_int_eq(z.weight, 3);
    ck_assert(counts(&z, "127.0.0.10"));
    ck_assert(!counts(&z, "127.0.0.12"));
    sg_dnsbl_zone_clear(&z);
    ck_assert_int_eq(sg_dnsbl_site_parse(&z, "wl.example.test*-2", &err),
                     SG_OK);
    ck_assert_int_eq(z.weight, -2);
    ck_assert(counts(&z, "127.0.0.2"));
    sg_dnsbl_zone_clear(&z);
    ck_assert_int_eq(sg_dnsbl_site_parse(&z, "bl.example.test*x", &err),
                     SG_EINVAL);
    ck_assert_int_eq(sg_dnsbl_site_parse(&z, "bl.example.test*", &err),
                     SG_EINVAL);
}
END_TEST

START_TEST(test_query_names)
{
    struct sg_addr a;
    char buf[128];

    ck_assert_int_eq(sg_addr_parse("192.0.2.7", &a), SG_OK);
    ck_assert_int_eq(sg_dname_reverse(&a, "bl.example.test", buf,
                                         sizeof(buf)), SG_OK);
    ck_assert_str_eq(buf, "7.2.0.192.bl.example.test");
    ck_assert_int_eq(sg_dname_reverse(&a, "bl.example.test", buf, 20),
                     SG_EINVAL);
    ck_assert_int_eq(sg_addr_parse("2001:db8::1:2", &a), SG_OK);
    ck_assert_int_eq(sg_dname_reverse(&a, "ip6.arpa", buf, sizeof(buf)),
                     SG_OK);
    ck_assert_str_eq(buf, "2.0.0.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
                     "8.b.d.0.1.0.0.2.ip6.arpa");
    ck_assert_int_eq(sg_dname_reverse(&a, "ip6.arpa", buf, 70),
                     SG_EINVAL);
    /* IPv4-mapped IPv6 is the IPv4 address. */
    ck_assert_int_eq(sg_addr_parse("::ffff:198.51.100.9", &a), SG_OK);
    ck_assert_int_eq(sg_dname_reverse(&a, "in-addr.arpa", buf,
                                         sizeof(buf)), SG_OK);
    ck_assert_str_eq(buf, "9.100.51.198.in-addr.arpa");
}
END_TEST

START_TEST(test_config_rows)
{
    struct sg_config *cfg = sg_config_new();

    capture_reset();
    ck_assert_int_eq(sg_config_add_dnsbl(cfg, "bl.example.test", 2,
                                         "127.0.0.2", true, true,
                                         &test_log), SG_OK);
    ck_assert_int_eq(sg_config_add_dnsbl(cfg, "BL.example.test.", 1, "",
                                         true, true, &test_log), SG_EINVAL);
    ck_assert_ptr_nonnull(capture_find("listed twice"));
    ck_assert_int_eq(sg_config_add_dnsbl(cfg, "wl.example.test", -3,
                                         "127.0.[0..9].[0..255]", false,
                                         false, &test_log), SG_OK);
    ck_assert_int_eq(sg_config_add_dnsbl(cfg, "x.example.test", 1,
                                         "127.0.0.[2", true, true,
                                         &test_log), SG_EINVAL);
    ck_assert_ptr_nonnull(capture_find("id=00290005"));
    ck_assert_ptr_nonnull(capture_find("list=dnsbl_zones"));
    ck_assert_int_eq(cfg->ndnsbl, 2);
    ck_assert_str_eq(cfg->dnsbl[1].zone, "wl.example.test");
    sg_config_unref(cfg);
}
END_TEST

START_TEST(test_text_settings)
{
    const struct sg_setting_def *d = sg_setting_find("dnsServers");
    struct sg_config *cfg = sg_config_new();
    struct sg_err err;
    long v;

    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(d->type, SG_T_TEXT);
    ck_assert_str_eq(sg_config_text(cfg, SG_SET_dns_servers), "");
    ck_assert_int_eq(sg_setting_parse(d, "127.0.0.1:5353 [::1]:53 192.0.2.1",
                                      &v, &err), SG_OK);
    ck_assert_int_eq(sg_setting_parse(d, "ns.example.test", &v, &err),
                     SG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "not an IPv4 or IPv6 address"));
    ck_assert_int_eq(sg_setting_parse(d, "127.0.0.1:0", &v, &err), SG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "port"));
    ck_assert_int_eq(sg_setting_parse(d, "[::1", &v, &err), SG_EINVAL);
    ck_assert_int_eq(sg_setting_parse(d, "127.0.0.1\n", &v, &err), SG_EINVAL);

    capture_reset();
    ck_assert_int_eq(sg_config_apply_setting(cfg, "dnsServers",
                                             "127.0.0.1:5353", &test_log),
                     SG_OK);
    ck_assert_str_eq(sg_config_text(cfg, SG_SET_dns_servers),
                     "127.0.0.1:5353");
    /* A bad value keeps the last good one and says so. */
    ck_assert_int_eq(sg_config_apply_setting(cfg, "dnsServers", "nonsense",
                                             &test_log), SG_EINVAL);
    ck_assert_str_eq(sg_config_text(cfg, SG_SET_dns_servers),
                     "127.0.0.1:5353");
    ck_assert_ptr_nonnull(capture_find("kept=127.0.0.1:5353"));
    ck_assert_int_eq(sg_config_apply_setting(cfg, "authservId",
                                             "mx.example.test", &test_log),
                     SG_OK);
    ck_assert_int_eq(sg_config_apply_setting(cfg, "authservId", "a b",
                                             &test_log), SG_EINVAL);
    ck_assert_str_eq(sg_config_text(cfg, SG_SET_authserv_id),
                     "mx.example.test");
    ck_assert_int_eq(sg_config_apply_setting(cfg, "dnsCheckStage", "helo",
                                             &test_log), SG_OK);
    ck_assert_int_eq(sg_config_get(cfg, SG_SET_dns_stage),
                     SG_DNS_STAGE_HELO);
    ck_assert_int_eq(sg_config_apply_setting(cfg, "spfFailAction", "tempfail",
                                             &test_log), SG_OK);
    ck_assert_int_eq(sg_config_get(cfg, SG_SET_spf_fail_action),
                     SG_SPF_ACT_TEMPFAIL);
    sg_config_unref(cfg);
}
END_TEST

Suite *dnsbl_suite(void)
{
    Suite *s = suite_create("dnsbl");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_filter_any);
    tcase_add_test(tc, test_filter_pattern);
    tcase_add_test(tc, test_filter_net_and_mask);
    tcase_add_loop_test(tc, test_filter_refused, 0,
                        sizeof(bad_filters) / sizeof(bad_filters[0]));
    tcase_add_test(tc, test_zone_names_and_weight);
    tcase_add_test(tc, test_site_syntax);
    tcase_add_test(tc, test_query_names);
    tcase_add_test(tc, test_config_rows);
    tcase_add_test(tc, test_text_settings);
    suite_add_tcase(s, tc);
    return s;
}
