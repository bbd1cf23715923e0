/*
 * test_log.c - the catalogue's integrity and the rendering of log lines
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "catalogue.h"
#include "log.h"
#include "testutil.h"

START_TEST(test_catalogue_integrity)
{
    for (int i = 0; i < SG_EV_COUNT; i++) {
        const struct sg_event_def *e = sg_event_def((enum sg_event) i);

        ck_assert_int_eq(e->event, i);
        ck_assert_msg(strlen(e->id) == 8, "%s: id %s not 8 digits", e->name,
                      e->id);
        for (int k = 0; k < 8; k++)
            ck_assert(isdigit((unsigned char) e->id[k]));
        ck_assert_ptr_eq(sg_event_find(e->id), e);
        ck_assert_ptr_eq(sg_event_find(e->name), e);
        if (i > 0)
            ck_assert_msg(strcmp(sg_event_def((enum sg_event) (i - 1))->id,
                                 e->id) < 0, "%s: ids not ascending", e->id);
        ck_assert(strlen(e->explanation) > 20);
        ck_assert(strlen(e->recommended) > 3);
        ck_assert(e->revision >= 1);
        /* Every <placeholder> of the message is a declared parameter. */
        for (const char *p = e->message; (p = strchr(p, '<')) != NULL;) {
            size_t n = strspn(p + 1, "abcdefghijklmnopqrstuvwxyz0123456789_");
            const char *end = p + 1 + n;
            char key[64];

            if (n == 0 || *end != '>') {        /* a literal '<' */
                p++;
                continue;
            }
            snprintf(key, sizeof(key), "%.*s", (int) n, p + 1);
            ck_assert_msg(strstr(e->params, key) != NULL,
                          "%s: <%s> is not a parameter", e->id, key);
            p = end;
        }
    }
}
END_TEST

/*
 * Seed 000 (D-Link's SMTPALG log reference) defines 00200150-00200152; the
 * catalogue keeps their IDs, names, default severities, revisions and the
 * seed's parameters. Where it deliberately differs:
 *   - messages: no "SMTPALG: " prefix (smtpguard is not an ALG; the
 *     event name and ID already say which check spoke);
 *   - context parameters: "service session" (the {daemon_name} service and
 *     smtpguard's session number) for the seed's "ALG Module Name" and
 *     "ALG Session ID";
 *   - 00200150: scope (global or service) added, as the limit exists for
 *     the whole daemon too;
 *   - 00200151: the seed's gateway action session_rejected is tempfail
 *     here: issue 3 asks for a temporary failure (451 4.7.1) of the
 *     transaction, so the sender retries and the session goes on; the
 *     message names the count, limit and key it counted by (key_type,
 *     key, count, max added), the seed's trailing period dropped;
 *   - 00200152: the seed's fixed "(out of memory)" is the <reason>
 *     parameter (allocating the session's state, or its counters), and
 *     "SMTPALG session" is "session".
 * The templates are pinned here so that a change to them is deliberate.
 */
START_TEST(test_seed_ids_fixed)
{
    const struct sg_event_def *e = sg_event_find("00200150");

    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e->name, "max_smtp_sessions_reached");
    ck_assert_int_eq(e->facility, SG_FAC_SESSION);
    ck_assert_int_eq(e->severity, SG_SEV_WARNING);
    ck_assert_int_eq(e->action, SG_ACT_CLOSE);
    ck_assert_int_eq(e->revision, 1);
    ck_assert_str_eq(e->params, "max_sessions scope");
    ck_assert_str_eq(e->message, "Maximum number of SMTP sessions "
                     "(<max_sessions>) for service reached. Closing "
                     "connection");
    ck_assert_ptr_nonnull(strstr(e->explanation, "The maximum number of "
                                 "concurrent SMTP sessions has been "
                                 "reached"));
    ck_assert_ptr_nonnull(strstr(e->recommended, "If the maximum number of "
                                 "SMTP sessions is too low, increase it."));

    e = sg_event_find("00200151");
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e->name, "maximum_email_per_minute_reached");
    ck_assert_int_eq(e->facility, SG_FAC_SESSION);
    ck_assert_int_eq(e->severity, SG_SEV_WARNING);
    ck_assert_int_eq(e->action, SG_ACT_TEMPFAIL);
    ck_assert_int_eq(e->revision, 2);
    ck_assert_str_eq(e->params, "sender_email_address key_type key count "
                     "max");
    ck_assert_str_eq(e->message, "Maximum number of emails per client and "
                     "minute reached (<count> of <max> for <key_type> "
                     "<key>)");
    ck_assert_ptr_nonnull(strstr(e->explanation, "Client is trying to send "
                                 "emails at a rate higher than the "
                                 "configured value."));
    ck_assert_ptr_nonnull(strstr(e->recommended, "This can be a possible "
                                 "DOS attack"));

    e = sg_event_find("00200152");
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e->name, "failed_create_new_session");
    ck_assert_int_eq(e->facility, SG_FAC_SESSION);
    ck_assert_int_eq(e->severity, SG_SEV_CRITICAL);
    ck_assert_int_eq(e->action, SG_ACT_TEMPFAIL);
    ck_assert_str_eq(e->params, "reason");
    ck_assert_str_eq(e->message, "Failed to create new session (<reason>)");
    ck_assert_ptr_nonnull(strstr(e->explanation, "An attempt to create the "
                                 "state of a new SMTP session failed"));
    ck_assert_ptr_null(sg_event_find("99999999"));
}
END_TEST

START_TEST(test_render_line)
{
    char buf[SG_LOG_LINE_MAX];
    struct sg_args args;
    struct sg_log_ctx ctx = { "4XyZ1", "192.0.2.1", "smtpd", 0x1f };

    sg_args_init(&args);
    sg_args_add(&args, "max_sessions", "%d", 64);
    sg_args_add(&args, "scope", "global");
    sg_log_render(buf, sizeof(buf), SG_EV_MAX_SESSIONS, SG_ACT_COUNT, &ctx,
                  &args);
    ck_assert_str_eq(buf, "4XyZ1: id=00200150 event=max_smtp_sessions_reached"
                     " severity=warning action=close client=192.0.2.1 "
                     "service=smtpd session=1f max_sessions=64 scope=global "
                     "msg=\"Maximum number of SMTP sessions (64) for service "
                     "reached. Closing connection\"");
}
END_TEST

START_TEST(test_render_noqueue_missing_param)
{
    char buf[SG_LOG_LINE_MAX];
    struct sg_args args;

    sg_args_init(&args);
    sg_log_render(buf, sizeof(buf), SG_EV_SESSION_ALLOC, SG_ACT_TEMPFAIL, NULL,
                  &args);
    ck_assert_str_eq(buf, "NOQUEUE: id=00200152 event=failed_create_new_"
                     "session severity=critical action=tempfail reason=- "
                     "msg=\"Failed to create new session (-)\"");
}
END_TEST

START_TEST(test_escaping)
{
    char buf[SG_LOG_LINE_MAX];
    struct sg_args args;
    struct sg_log_ctx ctx = { NULL, "192.0.2.1", "a b", 0 };

    sg_args_init(&args);
    sg_args_add(&args, "command", "X\r\nNOQUEUE: id=forged \"q\" \\");
    sg_args_add(&args, "errors", "1");
    sg_args_add(&args, "max_errors", "2");
    sg_log_render(buf, sizeof(buf), SG_EV_UNKNOWN_COMMAND, SG_ACT_NONE, &ctx,
                  &args);
    ck_assert_ptr_null(strchr(buf, '\r'));
    ck_assert_ptr_null(strchr(buf, '\n'));
    ck_assert_ptr_nonnull(strstr(buf, "service=\"a b\""));
    ck_assert_ptr_nonnull(strstr(buf, "command=\"X\\x0d\\x0aNOQUEUE: "
                                 "id=forged \\\"q\\\" \\\\\""));
}
END_TEST

START_TEST(test_truncation)
{
    char buf[64];
    struct sg_args args;
    size_t n;

    sg_args_init(&args);
    sg_args_add(&args, "reason", "%0200d", 1);
    n = sg_log_render(buf, sizeof(buf), SG_EV_SESSION_ALLOC, SG_ACT_COUNT,
                      NULL, &args);
    ck_assert_uint_gt(n, sizeof(buf));
    ck_assert_uint_eq(strlen(buf), sizeof(buf) - 1);
    /* Too many parameters are dropped, not overflowed. */
    for (int i = 0; i < SG_ARGS_MAX + 5; i++)
        sg_args_add(&args, "k", "v");
    ck_assert_uint_eq(args.n, SG_ARGS_MAX);
}
END_TEST

START_TEST(test_severity_filter_and_override)
{
    struct sg_args args;

    capture_reset();
    sg_args_init(&args);
    atomic_store(&test_log.max_severity, SG_SEV_INFO);
    sg_log_event(&test_log, SG_EV_EXEMPT, SG_ACT_ACCEPT, NULL, &args);
    ck_assert_int_eq(captured.n, 0);            /* debug filtered */
    sg_log_event(&test_log, SG_EV_MAX_SESSIONS, SG_ACT_COUNT, NULL, &args);
    ck_assert_int_eq(captured.n, 1);
    ck_assert_int_eq(captured.sev[0], SG_SEV_WARNING);

    sg_event_override(SG_EV_EXEMPT, SG_SEV_NOTICE, -1);
    sg_event_override(SG_EV_MAX_SESSIONS, SG_SEV_ERR, SG_ACT_MONITOR);
    sg_log_event(&test_log, SG_EV_EXEMPT, SG_ACT_ACCEPT, NULL, &args);
    sg_log_event(&test_log, SG_EV_MAX_SESSIONS, SG_ACT_COUNT, NULL, &args);
    ck_assert_int_eq(captured.n, 3);
    ck_assert_int_eq(captured.sev[1], SG_SEV_NOTICE);
    ck_assert_ptr_nonnull(strstr(captured.line[2], "severity=error "
                                 "action=monitor"));
    ck_assert_int_eq(sg_event_action(SG_EV_MAX_SESSIONS), SG_ACT_MONITOR);
    sg_event_clear_overrides();
    ck_assert_int_eq(sg_event_action(SG_EV_MAX_SESSIONS), SG_ACT_CLOSE);
}
END_TEST

START_TEST(test_names)
{
    ck_assert_int_eq(sg_severity_parse("WARNING"), SG_SEV_WARNING);
    ck_assert_int_eq(sg_severity_parse("err"), SG_SEV_ERR);
    ck_assert_int_eq(sg_severity_parse("nope"), -1);
    ck_assert_int_eq(sg_action_parse("close"), SG_ACT_CLOSE);
    ck_assert_int_eq(sg_action_parse("drop"), -1);
    ck_assert_str_eq(sg_action_name(SG_ACT_TEMPFAIL), "tempfail");
    ck_assert_str_eq(sg_severity_name(SG_SEV_CRITICAL), "critical");
}
END_TEST

Suite *log_suite(void)
{
    Suite *s = suite_create("catalogue+log");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_catalogue_integrity);
    tcase_add_test(tc, test_seed_ids_fixed);
    tcase_add_test(tc, test_render_line);
    tcase_add_test(tc, test_render_noqueue_missing_param);
    tcase_add_test(tc, test_escaping);
    tcase_add_test(tc, test_truncation);
    tcase_add_test(tc, test_severity_filter_and_override);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    return s;
}
