/*
 * test_verdict.c - SMTP replies from the catalogue's reply rows: codes by
 * action and stage, the text template, values made safe, the event ID kept
 */
#include <check.h>
#include <string.h>

#include "testutil.h"
#include "verdict.h"

START_TEST(test_codes_by_action_and_stage)
{
    struct sg_verdict v;

    sg_verdict_set(&v, SG_EV_DENY_STRICT, SG_ACT_REJECT, SG_STAGE_CONNECT,
                   NULL);
    ck_assert_str_eq(v.code, "554");
    ck_assert_str_eq(v.xcode, "5.7.1");
    ck_assert_str_eq(v.text, "Access denied [smtpguard 00200159]");
    ck_assert(sg_verdict_refuses(&v));
    sg_verdict_set(&v, SG_EV_DENY_STRICT, SG_ACT_REJECT, SG_STAGE_RCPT, NULL);
    ck_assert_str_eq(v.code, "550");
    sg_verdict_set(&v, SG_EV_IP_FREQUENCY, SG_ACT_CLOSE, SG_STAGE_CONNECT,
                   NULL);
    ck_assert_str_eq(v.code, "421");
    ck_assert_str_eq(v.xcode, "4.7.0");
    sg_verdict_set(&v, SG_EV_EMAIL_RATE, SG_ACT_TEMPFAIL, SG_STAGE_MAIL, NULL);
    ck_assert_str_eq(v.code, "451");
    ck_assert_str_eq(v.xcode, "4.7.1");
    /* A row's own codes; RFC 3463's sender variant at MAIL. */
    sg_verdict_set(&v, SG_EV_RCPT_PER_MESSAGE, SG_ACT_TEMPFAIL, SG_STAGE_RCPT,
                   NULL);
    ck_assert_str_eq(v.code, "452");
    ck_assert_str_eq(v.xcode, "4.5.3");
    sg_verdict_set(&v, SG_EV_ADDRESS_MALFORMED, SG_ACT_REJECT, SG_STAGE_RCPT,
                   NULL);
    ck_assert_str_eq(v.code, "501");
    ck_assert_str_eq(v.xcode, "5.1.3");
    sg_verdict_set(&v, SG_EV_ADDRESS_MALFORMED, SG_ACT_REJECT, SG_STAGE_MAIL,
                   NULL);
    ck_assert_str_eq(v.xcode, "5.1.7");
    /* System trouble is a local problem (X.3.0); no row: the fallback. */
    sg_verdict_set(&v, SG_EV_DB_ERROR, SG_ACT_TEMPFAIL, SG_STAGE_OTHER, NULL);
    ck_assert_str_eq(v.xcode, "4.3.0");
    ck_assert_str_eq(v.text, "Temporary local problem, try again later "
                     "[smtpguard 00290006]");
    sg_verdict_clear(&v);
    ck_assert(!sg_verdict_refuses(&v));
}
END_TEST

START_TEST(test_template)
{
    struct sg_verdict v;
    struct sg_args a;

    /* {A|B}: the explanation when there is one, else the result. */
    sg_args_init(&a);
    sg_args_add(&a, "identity", "%s", "x@fail.test");
    sg_args_add(&a, "ip", "%s", "192.0.2.1");
    sg_args_add(&a, "explanation", "%s", "");
    sg_args_add(&a, "reason", "%s", "");
    sg_verdict_set(&v, SG_EV_SPF_FAIL, SG_ACT_REJECT, SG_STAGE_MAIL, &a);
    ck_assert_str_eq(v.code, "550");
    ck_assert_str_eq(v.xcode, "5.7.23");
    ck_assert_str_eq(v.text, "SPF fail for x@fail.test from 192.0.2.1 "
                     "[smtpguard 00240108]");
    sg_args_init(&a);
    sg_args_add(&a, "explanation", "%s", "Not ours: 100%\r\n\\ bye");
    sg_verdict_set(&v, SG_EV_SPF_FAIL, SG_ACT_REJECT, SG_STAGE_MAIL, &a);
    ck_assert_str_eq(v.text, "Not ours: 100____ bye [smtpguard 00240108]");
    /* {: <reason>} only with a reason. */
    sg_args_init(&a);
    sg_args_add(&a, "identity", "%s", "x@t.test");
    sg_args_add(&a, "ip", "%s", "192.0.2.1");
    sg_args_add(&a, "reason", "%s", "SERVFAIL");
    sg_verdict_set(&v, SG_EV_SPF_TEMPERROR, SG_ACT_TEMPFAIL, SG_STAGE_MAIL,
                   &a);
    ck_assert_str_eq(v.code, "451");
    ck_assert_str_eq(v.xcode, "4.4.3");
    ck_assert_str_eq(v.text, "SPF temperror for x@t.test from 192.0.2.1: "
                     "SERVFAIL [smtpguard 00240113]");
    /* Too long: cut, and the event ID stays. */
    {
        char big[300];

        memset(big, 'z', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        sg_args_init(&a);
        sg_args_add(&a, "client", "%s", "192.0.2.1");
        sg_args_add(&a, "zone", "%s", "bl.test");
        sg_args_add(&a, "reason", "%s", big);
        sg_verdict_set(&v, SG_EV_DNSBL_FAILED, SG_ACT_REJECT,
                       SG_STAGE_CONNECT, &a);
        ck_assert_str_eq(v.code, "554");
        ck_assert_uint_eq(strlen(v.text), sizeof(v.text) - 1);
        ck_assert(strncmp(v.text, "Service unavailable; client [192.0.2.1] "
                          "blocked using bl.test; zzz", 66) == 0);
        ck_assert_str_eq(v.text + strlen(v.text) - 21,
                         " [smtpguard 00230106]");
    }
}
END_TEST

START_TEST(test_shutting_down)
{
    struct sg_verdict v;
    char buf[256];

    sg_verdict_shutting_down(&v);
    ck_assert_str_eq(v.code, "421");
    ck_assert_str_eq(v.xcode, "4.3.2");
    ck_assert(sg_verdict_refuses(&v));
    sg_verdict_describe(SG_EV_RCPT_UNKNOWN, SG_ACT_REJECT, buf, sizeof(buf));
    ck_assert_str_eq(buf, "550 5.1.1 Recipient address rejected: User unknown "
                     "[smtpguard 00210202]");
}
END_TEST

Suite *verdict_suite(void)
{
    Suite *s = suite_create("verdict");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_codes_by_action_and_stage);
    tcase_add_test(tc, test_template);
    tcase_add_test(tc, test_shutting_down);
    suite_add_tcase(s, tc);
    return s;
}
