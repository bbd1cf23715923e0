/*
 * test_config.c - settings validation, lists and the policy snapshot
 */
#include <string.h>

#include "config.h"
#include "testutil.h"

static const struct {
    const char *label;
    const char *name;
    const char *value;
    int want_ok;
    long want;
    const char *want_err;
} setting_cases[] = {
    { "plain number", "maxSMTPipSessions", "7", 1, 7, NULL },
    { "zero means no limit", "maxSMTPipSessions", "0", 1, 0, NULL },
    { "spaces around", "maxSMTPipSessions", " 12 ", 1, 12, NULL },
    { "negative", "maxSMTPipSessions", "-1", 0, 0, "non-negative" },
    { "not a number", "maxSMTPipSessions", "five", 0, 0, "non-negative" },
    { "trailing", "maxSMTPipSessions", "5x", 0, 0, "trailing" },
    { "over max", "maxSMTPipSessions", "100001", 0, 0, "out of range 0-100000" },
    { "huge", "maxSMTPipSessions", "99999999999999999999999", 0, 0,
      "too large" },
    { "mode block", "DoFrequencyIP", "1", 1, 1, NULL },
    { "mode score", "DoFrequencyIP", "3", 1, 3, NULL },
    { "mode 4", "DoFrequencyIP", "4", 0, 0, "0 off, 1 block" },
    { "deny score mode", "DoDenyConnect", "3", 1, 3, NULL },
    { "deny mode 4", "DoDenyConnect", "4", 0, 0, "0 off, 1 block" },
    { "seconds plain", "maxSMTPipDuration", "90", 1, 90, NULL },
    { "seconds with s", "maxSMTPipDuration", "90s", 1, 90, NULL },
    { "minutes", "maxSMTPipDuration", "15m", 1, 900, NULL },
    { "hours", "maxSMTPipExpiration", "2h", 1, 7200, NULL },
    { "days", "maxSMTPipExpiration", "1d", 1, 86400, NULL },
    { "bad unit", "maxSMTPipDuration", "15w", 0, 0, "trailing" },
    { "seconds zero below min", "maxSMTPipDuration", "0", 0, 0,
      "out of range 1-86400" },
    { "severity name", "logLevel", "debug", 1, SG_SEV_DEBUG, NULL },
    { "severity number", "logLevel", "4", 1, SG_SEV_WARNING, NULL },
    { "severity bad", "logLevel", "loud", 0, 0, "not a severity" },
    { "empty", "MaxErrors", "", 0, 0, "non-negative" },
};

START_TEST(test_setting_parse)
{
    const struct sg_setting_def *d = sg_setting_find(setting_cases[_i].name);
    struct sg_err err = { "" };
    long v = -42;
    int ok;

    ck_assert_ptr_nonnull(d);
    ok = sg_setting_parse(d, setting_cases[_i].value, &v, &err) == SG_OK;
    ck_assert_msg(ok == setting_cases[_i].want_ok, "%s: got ok=%d (%s)",
                  setting_cases[_i].label, ok, err.msg);
    if (ok)
        ck_assert_msg(v == setting_cases[_i].want, "%s: got %ld, want %ld",
                      setting_cases[_i].label, v, setting_cases[_i].want);
    else
        ck_assert_msg(strstr(err.msg, setting_cases[_i].want_err) != NULL,
                      "%s: error '%s' lacks '%s'", setting_cases[_i].label,
                      err.msg, setting_cases[_i].want_err);
}
END_TEST

START_TEST(test_defaults_valid)
{
    struct sg_config *cfg = sg_config_new();

    /* sg_config_new() aborts on a bad default; spot-check some values. */
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(sg_config_get(cfg, SG_SET_max_ip_sessions), 5);
    ck_assert_int_eq(sg_config_get(cfg, SG_SET_ipv6_prefix), 64);
    ck_assert_int_eq(sg_config_get(cfg, SG_SET_do_domain_ip), SG_MODE_MONITOR);
    ck_assert_int_eq(sg_config_get(cfg, SG_SET_log_level), SG_SEV_INFO);
    for (int i = 0; i < SG_SET_COUNT; i++) {
        const struct sg_setting_def *d = sg_setting_def((enum sg_setting) i);

        ck_assert_ptr_eq(sg_setting_find(d->name), d);
        ck_assert_msg(d->min <= d->max, "%s: min > max", d->name);
        ck_assert_msg(strlen(d->doc) > 10, "%s: undocumented", d->name);
    }
    /* Names match exactly: no prefix, no other case, nothing unknown. */
    ck_assert_ptr_null(sg_setting_find(""));
    ck_assert_ptr_null(sg_setting_find("MaxError"));
    ck_assert_ptr_null(sg_setting_find("maxerrors"));
    ck_assert_ptr_null(sg_setting_find("MaxErrorsX"));
    ck_assert_ptr_null(sg_setting_find("zzz"));
    sg_config_unref(cfg);
}
END_TEST

START_TEST(test_bad_value_keeps_last_good)
{
    struct sg_config *cfg = sg_config_new();

    capture_reset();
    ck_assert_int_eq(sg_config_apply_setting(cfg, "MaxErrors", "3",
                                             &test_log), SG_OK);
    ck_assert_int_eq(sg_config_apply_setting(cfg, "MaxErrors", "lots",
                                             &test_log), SG_EINVAL);
    ck_assert_int_eq(sg_config_get(cfg, SG_SET_max_errors), 3);
    ck_assert_int_eq(capture_count("id=00290004"), 1);
    ck_assert_ptr_nonnull(capture_find("setting=MaxErrors"));
    ck_assert_ptr_nonnull(capture_find("kept=3"));
    ck_assert_int_eq(sg_config_apply_setting(cfg, "NoSuchSetting", "1",
                                             &test_log), SG_EINVAL);
    ck_assert_ptr_nonnull(capture_find("reason=\"unknown setting\""));
    sg_config_unref(cfg);
}
END_TEST

START_TEST(test_lists)
{
    struct sg_config *cfg = sg_config_new();
    struct sg_addr a;
    const char *entry = NULL;

    capture_reset();
    ck_assert_int_eq(sg_config_add_net(cfg, "whiteListedIPs", "192.0.2.0/24",
                                       &test_log), SG_OK);
    ck_assert_int_eq(sg_config_add_net(cfg, "ispip", "2001:db8:5::/48",
                                       &test_log), SG_OK);
    ck_assert_int_eq(sg_config_add_net(cfg, "whiteListedIPs", "192.0.2.1/24",
                                       &test_log), SG_EINVAL);
    ck_assert_int_eq(sg_config_add_net(cfg, "noSuchList", "192.0.2.0/24",
                                       &test_log), SG_EINVAL);
    ck_assert_int_eq(capture_count("id=00290005"), 2);
    ck_assert_ptr_nonnull(capture_find("did you mean 192.0.2.0/24"));
    sg_config_finish(cfg);
    sg_addr_parse("192.0.2.99", &a);
    ck_assert(sg_config_ip_listed(cfg, SG_LIST_WHITELIST, &a, &entry));
    ck_assert_str_eq(entry, "192.0.2.0/24");
    ck_assert(!sg_config_ip_listed(cfg, SG_LIST_DENY, &a, NULL));
    sg_addr_parse("2001:db8:5:ffff::1", &a);
    ck_assert(sg_config_ip_listed(cfg, SG_LIST_ISPIP, &a, NULL));
    ck_assert_int_eq(cfg->entries, 2);
    sg_config_unref(cfg);
}
END_TEST

START_TEST(test_domain_exempt)
{
    struct sg_config *cfg = sg_config_new();

    capture_reset();
    ck_assert_int_eq(sg_config_add_domain(cfg, "maxSMTPdomainIPWL",
                                          "Example.COM.", &test_log), SG_OK);
    ck_assert_int_eq(sg_config_add_domain(cfg, "maxSMTPdomainIPWL",
                                          "mail.example.org", &test_log),
                     SG_OK);
    ck_assert_int_eq(sg_config_add_domain(cfg, "maxSMTPdomainIPWL",
                                          "bad domain", &test_log), SG_EINVAL);
    ck_assert_int_eq(sg_config_add_domain(cfg, "maxSMTPdomainIPWL", "a..b",
                                          &test_log), SG_EINVAL);
    sg_config_finish(cfg);
    ck_assert(sg_config_domain_exempt(cfg, "example.com"));
    ck_assert(sg_config_domain_exempt(cfg, "EXAMPLE.com."));
    ck_assert(sg_config_domain_exempt(cfg, "bulk.example.com"));
    ck_assert(!sg_config_domain_exempt(cfg, "notexample.com"));
    ck_assert(!sg_config_domain_exempt(cfg, "example.org"));
    ck_assert(sg_config_domain_exempt(cfg, "x.mail.example.org"));
    ck_assert(!sg_config_domain_exempt(cfg, ""));
    sg_config_unref(cfg);
}
END_TEST

START_TEST(test_service_limits)
{
    struct sg_config *cfg = sg_config_new();

    capture_reset();
    cfg->value[SG_SET_max_service_sessions] = 40;
    ck_assert_int_eq(sg_config_add_service(cfg, "submission", 10, &test_log),
                     SG_OK);
    ck_assert_int_eq(sg_config_add_service(cfg, "", 10, &test_log),
                     SG_EINVAL);
    ck_assert_int_eq(sg_config_add_service(cfg, "smtp", -1, &test_log),
                     SG_EINVAL);
    ck_assert_int_eq(sg_config_service_limit(cfg, "submission"), 10);
    ck_assert_int_eq(sg_config_service_limit(cfg, "smtp"), 40);
    ck_assert_int_eq(sg_config_service_limit(cfg, NULL), 40);
    sg_config_unref(cfg);
}
END_TEST

START_TEST(test_confhold_pins)
{
    struct sg_confhold h;
    struct sg_config *a = sg_config_new(), *b = sg_config_new(), *pinned;

    sg_confhold_init(&h, a);
    pinned = sg_confhold_get(&h);
    ck_assert_ptr_eq(pinned, a);
    sg_confhold_set(&h, b);         /* a survives: pinned holds it */
    ck_assert_int_eq(atomic_load(&pinned->refcnt), 1);
    ck_assert_int_eq(sg_config_get(pinned, SG_SET_max_ip_sessions), 5);
    sg_config_unref(pinned);
    sg_confhold_destroy(&h);
}
END_TEST

#define N(a) ((int) (sizeof(a) / sizeof((a)[0])))

Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_setting_parse, 0, N(setting_cases));
    tcase_add_test(tc, test_defaults_valid);
    tcase_add_test(tc, test_bad_value_keeps_last_good);
    tcase_add_test(tc, test_lists);
    tcase_add_test(tc, test_domain_exempt);
    tcase_add_test(tc, test_service_limits);
    tcase_add_test(tc, test_confhold_pins);
    suite_add_tcase(s, tc);
    return s;
}
