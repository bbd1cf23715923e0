/*
 * test_relay.c - envelope address parsing, the relay decision, and the
 * RCPT-stage checks end to end: relay, unknown recipients, directory
 * harvest, messages and recipients per minute
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "mailaddr.h"
#include "policy.h"
#include "relay.h"
#include "testutil.h"

/* ---- addresses ---- */

static const struct {
    const char *in;
    int rc;
    const char *key;            /* "" for <> */
    int domain_ok;
} addr_cases[] = {
    { "<user@example.org>", SG_OK, "user@example.org", 1 },
    { "User@Example.ORG", SG_OK, "user@example.org", 1 },
    { "<user@example.org.>", SG_OK, "user@example.org", 1 },
    { "<>", SG_OK, "", 0 },
    { "", SG_OK, "", 0 },
    { "<postmaster>", SG_OK, "postmaster", 0 },
    { "<\"john doe\"@example.org>", SG_OK, "john doe@example.org", 1 },
    { "<\"a\\\"b\"@example.org>", SG_OK, "a\"b@example.org", 1 },
    { "<\"john\"@example.org>", SG_OK, "john@example.org", 1 },
    { "<@relay.example,@b.example:user@example.org>", SG_OK,
      "user@example.org", 1 },
    { "<user@xn--bcher-kva.example>", SG_OK, "user@xn--bcher-kva.example",
      1 },
    { "<user@[192.0.2.1]>", SG_OK, "user@[192.0.2.1]", 1 },
    { "<user+tag@example.org>", SG_OK, "user+tag@example.org", 1 },
    { "<user@b\xc3\xbc" "cher.example>", SG_OK,
      "user@b\xc3\xbc" "cher.example", 0 },
    { "<\"unbalanced@example.org>", SG_EINVAL, NULL, 0 },
    { "<user@example.org", SG_EINVAL, NULL, 0 },
    { "user@example.org>", SG_EINVAL, NULL, 0 },
    { "<@example.org>", SG_EINVAL, NULL, 0 },
    { "<user@>", SG_EINVAL, NULL, 0 },
    { "<a@b@example.org>", SG_EINVAL, NULL, 0 },
    { "<us er@example.org>", SG_EINVAL, NULL, 0 },
    { "<user\r\n@example.org>", SG_EINVAL, NULL, 0 },
    { "<@relay.example>", SG_EINVAL, NULL, 0 },
    { "<user@[192.0.2.1>", SG_EINVAL, NULL, 0 },
};

START_TEST(test_mailaddr_parse)
{
    struct sg_mailaddr a;
    char key[SG_MAILADDR_KEYMAX];
    int rc = sg_mailaddr_parse(addr_cases[_i].in, &a);

    ck_assert_msg(rc == addr_cases[_i].rc, "%s: rc %d",
                  addr_cases[_i].in, rc);
    if (rc != SG_OK)
        return;
    sg_mailaddr_key(&a, key, sizeof(key));
    ck_assert_str_eq(key, addr_cases[_i].key);
    ck_assert_int_eq(a.null, addr_cases[_i].key[0] == '\0');
    ck_assert_int_eq(a.domain_ok, addr_cases[_i].domain_ok);
}
END_TEST

START_TEST(test_mailaddr_bounds)
{
    char big[2000];
    struct sg_mailaddr a;

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(sg_mailaddr_parse(big, &a), SG_EINVAL);
    ck_assert_int_eq(sg_mailaddr_parse(NULL, &a), SG_EINVAL);
    /* A 300-character local part is over the bound. */
    memset(big, 'a', 300);
    strcpy(big + 300, "@example.org");
    ck_assert_int_eq(sg_mailaddr_parse(big, &a), SG_EINVAL);
    ck_assert(sg_mailaddr_parse("<Postmaster>", &a) == SG_OK
              && sg_mailaddr_is_postmaster(&a));
    ck_assert(sg_mailaddr_parse("<postmaster@example.org>", &a) == SG_OK
              && !sg_mailaddr_is_postmaster(&a));
}
END_TEST

/* ---- the decision, on a hand-built snapshot ---- */

static struct sg_config *cfg;

static void relay_setup(void)
{
    cfg = sg_config_new();
    ck_assert_ptr_nonnull(cfg);
}

static void relay_teardown(void)
{
    sg_config_unref(cfg);
}

static void add(const char *list, const char *entry, const char *value)
{
    ck_assert_int_eq(sg_config_add_relay(cfg, list, entry, value, &test_log),
                     SG_OK);
}

static void standard_tables(void)
{
    add("local_domains", "Example.ORG.", NULL);
    add("local_domains", "catch.example", NULL);
    add("local_domains", "xn--bcher-kva.example", NULL);
    add("local_addresses", "alice@example.org", NULL);
    add("local_addresses", "\"john doe\"@example.org", NULL);
    add("local_addresses", "info@xn--bcher-kva.example", NULL);
    add("catchalls", "catch.example", "bucket@catch.example");
    ck_assert_int_eq(sg_config_add_net(cfg, "relayNetworks", "192.0.2.0/25",
                                       &test_log), SG_OK);
    ck_assert_int_eq(sg_config_add_net(cfg, "relayNetworks", "2001:db8:1::/48",
                                       &test_log), SG_OK);
    add("mta_mailers", "smtp", "remote");
    add("mta_mailers", "local", "local");
    sg_config_finish(cfg);
}

/* decide - run the decision for client/auth/sender/rcpt/mailer */
static enum sg_relay_outcome decide(const char *client, const char *auth,
                                    const char *sender, const char *rcpt,
                                    const char *mailer,
                                    struct sg_relay_decision *d)
{
    struct sg_addr a;
    struct sg_mailaddr s, r;
    struct sg_relay_facts f = { NULL, auth, NULL, &r, mailer };

    if (client != NULL) {
        ck_assert_int_eq(sg_addr_parse(client, &a), SG_OK);
        f.client = &a;
    }
    if (sender != NULL) {
        ck_assert_int_eq(sg_mailaddr_parse(sender, &s), SG_OK);
        f.sender = &s;
    }
    ck_assert_int_eq(sg_mailaddr_parse(rcpt, &r), SG_OK);
    sg_relay_decide(cfg, &f, d);
    return d->outcome;
}

START_TEST(test_relay_local_paths)
{
    struct sg_relay_decision d;

    standard_tables();
    ck_assert_int_eq(decide("203.0.113.9", NULL, "<x@remote.example>",
                            "<Alice@EXAMPLE.org.>", "smtp", &d),
                     SG_RCPT_LOCAL);
    ck_assert_str_eq(d.source, "local_addresses");
    ck_assert_str_eq(d.detail, "alice@example.org");
    /* Sub-address, quoted local part, IDN in ASCII form. */
    ck_assert_int_eq(decide("203.0.113.9", NULL, "<>",
                            "<alice+lists@example.org>", NULL, &d),
                     SG_RCPT_LOCAL);
    ck_assert_int_eq(decide("203.0.113.9", NULL, "<>",
                            "<\"John Doe\"@example.org>", NULL, &d),
                     SG_RCPT_LOCAL);
    ck_assert_int_eq(decide("203.0.113.9", NULL, "<>",
                            "<info@XN--BCHER-KVA.example>", NULL, &d),
                     SG_RCPT_LOCAL);
    /* postmaster: bare and at a local domain, always local. */
    ck_assert_int_eq(decide("203.0.113.9", NULL, "<>", "<postmaster>", NULL,
                            &d), SG_RCPT_LOCAL);
    ck_assert_str_eq(d.source, "postmaster");
    ck_assert_int_eq(decide("203.0.113.9", NULL, "<>",
                            "<PostMaster@example.org>", NULL, &d),
                     SG_RCPT_LOCAL);
    /* Catch-all, unknown. */
    ck_assert_int_eq(decide("203.0.113.9", NULL, "<>",
                            "<nobody@catch.example>", NULL, &d),
                     SG_RCPT_CATCHALL);
    ck_assert_str_eq(d.detail, "bucket@catch.example");
    ck_assert_int_eq(decide("203.0.113.9", NULL, "<>",
                            "<nobody@example.org>", NULL, &d),
                     SG_RCPT_UNKNOWN);
    /* A subdomain is not the local domain. */
    ck_assert_int_eq(decide("203.0.113.9", NULL, "<>",
                            "<alice@sub.example.org>", NULL, &d),
                     SG_RELAY_DENY);
}
END_TEST

START_TEST(test_relay_grants_and_denials)
{
    struct sg_relay_decision d;

    standard_tables();
    ck_assert_int_eq(decide("203.0.113.9", NULL, "<x@remote.example>",
                            "<y@far.example>", "smtp", &d), SG_RELAY_DENY);
    ck_assert_int_eq(decide("203.0.113.9", "alice", "<x@remote.example>",
                            "<y@far.example>", "smtp", &d), SG_RELAY_AUTH);
    ck_assert_str_eq(d.detail, "alice");
    ck_assert_int_eq(decide("203.0.113.9", "", "<x@remote.example>",
                            "<y@far.example>", "smtp", &d), SG_RELAY_DENY);
    ck_assert_int_eq(decide("192.0.2.100", NULL, "<>", "<y@far.example>",
                            NULL, &d), SG_RELAY_NETWORK);
    ck_assert_str_eq(d.detail, "192.0.2.0/25");
    ck_assert_int_eq(decide("192.0.2.200", NULL, "<>", "<y@far.example>",
                            NULL, &d), SG_RELAY_DENY);
    ck_assert_int_eq(decide("2001:db8:1:ff::7", NULL, "<>",
                            "<y@far.example>", NULL, &d), SG_RELAY_NETWORK);
    ck_assert_int_eq(decide("2001:db8:2::7", NULL, "<>", "<y@far.example>",
                            NULL, &d), SG_RELAY_DENY);
    /* IPv4-mapped IPv6 client in an IPv4 relay network. */
    ck_assert_int_eq(decide("::ffff:192.0.2.1", NULL, "<>",
                            "<y@far.example>", NULL, &d), SG_RELAY_NETWORK);
    /* No client address: local submission. */
    ck_assert_int_eq(decide(NULL, NULL, "<>", "<y@far.example>", NULL, &d),
                     SG_RELAY_NETWORK);
    /* Local sender grants only when switched on. */
    ck_assert_int_eq(decide("203.0.113.9", NULL, "<alice@example.org>",
                            "<y@far.example>", NULL, &d), SG_RELAY_DENY);
    cfg->value[SG_SET_relay_local_sender] = 1;
    ck_assert_int_eq(decide("203.0.113.9", NULL, "<alice@example.org>",
                            "<y@far.example>", NULL, &d),
                     SG_RELAY_LOCAL_SENDER);
    /* Authentication can be switched off as a criterion. */
    cfg->value[SG_SET_relay_authenticated] = 0;
    ck_assert_int_eq(decide("203.0.113.9", "bob", "<bob@remote.example>",
                            "<y@far.example>", NULL, &d), SG_RELAY_DENY);
    /* Required local sender: ME-E0109, but DSNs pass. */
    cfg->value[SG_SET_relay_authenticated] = 1;
    cfg->value[SG_SET_relay_require_local_sender] = 1;
    ck_assert_int_eq(decide("203.0.113.9", "bob", "<bob@remote.example>",
                            "<y@far.example>", NULL, &d),
                     SG_RELAY_DENY_SENDER);
    ck_assert_str_eq(d.detail, "bob@remote.example");
    ck_assert_int_eq(decide("203.0.113.9", "bob", "<Alice@example.org>",
                            "<y@far.example>", NULL, &d), SG_RELAY_AUTH);
    ck_assert_int_eq(decide("192.0.2.1", NULL, "<>", "<y@far.example>", NULL,
                            &d), SG_RELAY_NETWORK);
    /* relayPolicy allow / deny. */
    cfg->value[SG_SET_relay_policy] = SG_RELAY_POLICY_ALLOW;
    ck_assert_int_eq(decide("203.0.113.9", NULL, "<>", "<y@far.example>",
                            NULL, &d), SG_RELAY_OPEN);
    cfg->value[SG_SET_relay_policy] = SG_RELAY_POLICY_DENY;
    ck_assert_int_eq(decide("192.0.2.1", "alice", "<alice@example.org>",
                            "<y@far.example>", NULL, &d),
                     SG_RELAY_DENY_DISABLED);
    /* Local delivery never depends on relayPolicy. */
    ck_assert_int_eq(decide("203.0.113.9", NULL, "<>",
                            "<alice@example.org>", NULL, &d), SG_RCPT_LOCAL);
}
END_TEST

START_TEST(test_relay_without_local_domains)
{
    struct sg_relay_decision d;

    add("mta_mailers", "smtp", "remote");
    add("mta_mailers", "Local", "local");
    sg_config_finish(cfg);
    ck_assert_int_eq(decide("203.0.113.9", NULL, "<>", "<a@anything.example>",
                            "local", &d), SG_RCPT_LOCAL);
    ck_assert_str_eq(d.source, "mta");
    ck_assert_int_eq(decide("203.0.113.9", NULL, "<>", "<a@anything.example>",
                            "SMTP", &d), SG_RELAY_DENY);
    ck_assert_int_eq(decide("203.0.113.9", NULL, "<>", "<a@anything.example>",
                            "dovecot", &d), SG_RCPT_LOCAL);
    ck_assert_str_eq(d.source, "mta unlisted mailer");
    ck_assert_int_eq(decide("203.0.113.9", NULL, "<>", "<a@anything.example>",
                            NULL, &d), SG_RCPT_LOCAL);
    ck_assert_str_eq(d.source, "unclassified");
    /* Domains but no address map: the MTA knows the mailboxes. */
    sg_config_unref(cfg);
    cfg = sg_config_new();
    add("local_domains", "example.org", NULL);
    sg_config_finish(cfg);
    ck_assert_int_eq(decide("203.0.113.9", NULL, "<>", "<who@example.org>",
                            "smtp", &d), SG_RCPT_LOCAL);
    ck_assert_str_eq(d.source, "local_domains");
}
END_TEST

START_TEST(test_relay_tables_validated)
{
    capture_reset();
    ck_assert_int_eq(sg_config_add_relay(cfg, "local_domains", "exa mple.org",
                                         NULL, &test_log), SG_EINVAL);
    ck_assert_int_eq(sg_config_add_relay(cfg, "local_addresses",
                                         "no-domain", NULL, &test_log),
                     SG_EINVAL);
    ck_assert_int_eq(sg_config_add_relay(cfg, "catchalls", "example.org",
                                         "not an address", &test_log),
                     SG_EINVAL);
    ck_assert_int_eq(sg_config_add_relay(cfg, "mta_mailers", "smtp",
                                         "sideways", &test_log), SG_EINVAL);
    ck_assert_int_eq(sg_config_add_relay(cfg, "nonsense", "x", NULL,
                                         &test_log), SG_EINVAL);
    ck_assert_int_eq(capture_count("id=00290005"), 5);
    ck_assert_ptr_nonnull(capture_find("class must be local or remote"));
    ck_assert_int_eq(cfg->entries, 0);
}
END_TEST

START_TEST(test_relay_lint)
{
    capture_reset();
    sg_relay_lint(cfg, &test_log);
    ck_assert_ptr_nonnull(capture_find("local_domains is empty"));
    add("local_domains", "example.org", NULL);
    add("catchalls", "other.example", "x@example.org");
    add("local_addresses", "a@elsewhere.example", NULL);
    sg_config_finish(cfg);
    cfg->value[SG_SET_relay_policy] = SG_RELAY_POLICY_ALLOW;
    cfg->value[SG_SET_relay_local_sender] = 1;
    capture_reset();
    sg_relay_lint(cfg, &test_log);
    ck_assert_int_eq(capture_count("id=00210204"), 5);
    ck_assert_ptr_nonnull(capture_find("open relay"));
    ck_assert_ptr_nonnull(capture_find("other.example"));
    ck_assert_ptr_nonnull(capture_find("first: a@elsewhere.example"));
    /* example.org has no address and no catch-all of its own. */
    ck_assert_ptr_nonnull(capture_find("1 local_domains have no "
                                       "local_addresses and no catch-all "
                                       "(first: example.org)"));
    /* Without the relay check only what the harvest check uses is left. */
    cfg->value[SG_SET_do_relay] = 0;
    capture_reset();
    sg_relay_lint(cfg, &test_log);
    ck_assert_int_eq(capture_count("id=00210204"), 2);
    ck_assert_ptr_nonnull(capture_find("other.example"));
    ck_assert_ptr_nonnull(capture_find("is unknown, counted towards a "
                                       "directory harvest ban"));
    cfg->value[SG_SET_do_harvest] = 0;
    capture_reset();
    sg_relay_lint(cfg, &test_log);
    ck_assert_int_eq(captured.n, 0);
}
END_TEST

/*
 * A local domain with neither local_addresses nor a catch-all, while other
 * domains have addresses: every recipient there is refused as unknown.
 */
START_TEST(test_relay_lint_bare_domain)
{
    add("local_domains", "example.org", NULL);
    add("local_domains", "second.example", NULL);
    add("local_domains", "third.example", NULL);
    add("local_domains", "catch.example", NULL);
    add("local_addresses", "alice@example.org", NULL);
    add("catchalls", "catch.example", "bucket@catch.example");
    sg_config_finish(cfg);
    capture_reset();
    sg_relay_lint(cfg, &test_log);
    ck_assert_int_eq(capture_count("id=00210204"), 1);
    ck_assert_ptr_nonnull(capture_find(
        "problem=\"2 local_domains have no local_addresses and no "
        "catch-all (first: second.example): every recipient there but "
        "postmaster is unknown, refused 550 5.1.1 and counted towards a "
        "directory harvest ban\""));
    /* And that is what the decision does with them. */
    {
        struct sg_relay_decision d;

        ck_assert_int_eq(decide("203.0.113.9", NULL, "<>",
                                "<anyone@third.example>", NULL, &d),
                         SG_RCPT_UNKNOWN);
    }
    /* Each domain with an address (sub-addressed or not) or a catch-all:
     * nothing to say. */
    sg_config_unref(cfg);
    cfg = sg_config_new();
    add("local_domains", "example.org", NULL);
    add("local_domains", "second.example", NULL);
    add("local_addresses", "alice@example.org", NULL);
    add("local_addresses", "bob@second.example", NULL);
    sg_config_finish(cfg);
    capture_reset();
    sg_relay_lint(cfg, &test_log);
    ck_assert_int_eq(captured.n, 0);
    /* No address map at all: the MTA knows the mailboxes, no warning. */
    sg_config_unref(cfg);
    cfg = sg_config_new();
    add("local_domains", "example.org", NULL);
    sg_config_finish(cfg);
    capture_reset();
    sg_relay_lint(cfg, &test_log);
    ck_assert_int_eq(captured.n, 0);
}
END_TEST

START_TEST(test_bool_and_choice_settings)
{
    const struct sg_setting_def *pol = sg_setting_find("relayPolicy");
    const struct sg_setting_def *b = sg_setting_find("relayAuthenticated");
    struct sg_err err;
    char buf[32];
    long v;

    ck_assert_int_eq(sg_setting_parse(pol, "Deny", &v, &err), SG_OK);
    ck_assert_int_eq(v, SG_RELAY_POLICY_DENY);
    ck_assert_int_eq(sg_setting_parse(pol, "1", &v, &err), SG_EINVAL);
    ck_assert_str_eq(err.msg, "not one of: rules, allow, deny");
    sg_setting_format(pol, SG_RELAY_POLICY_ALLOW, buf, sizeof(buf));
    ck_assert_str_eq(buf, "allow");
    ck_assert_int_eq(sg_setting_parse(b, "off", &v, &err), SG_OK);
    ck_assert_int_eq(v, 0);
    ck_assert_int_eq(sg_setting_parse(b, "TRUE", &v, &err), SG_OK);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(sg_setting_parse(b, "2", &v, &err), SG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a boolean"));
}
END_TEST

/* ---- the catalogue: each relay outcome names its MailEnable code ---- */

/* Seed 003: the MailEnable SMTP debug log codes, and the event of each. */
static const struct {
    const char *id;
    const char *code;
} me_codes[] = {
    { "00210101", "ME-I0101" },
    { "00210102", "ME-I0102" },
    { "00210106", "ME-I0106" },
    { "00210107", "ME-I0107" },
    { "00210108", "ME-I0108" },
    { "00210109", "ME-E0109" },
    { "00210110", "ME-I0110" },
    { "00210111", "ME-I0111" },
    { "00210112", "ME-I0112" },
};

START_TEST(test_relay_event_names_me_code)
{
    const struct sg_event_def *e = sg_event_find(me_codes[_i].id);
    char code[16];

    ck_assert_msg(e != NULL, "%s missing", me_codes[_i].id);
    ck_assert_int_eq(e->facility, SG_FAC_RELAY);
    ck_assert_msg(strstr(e->explanation, me_codes[_i].code) != NULL,
                  "%s (%s): explanation does not name %s", e->id, e->name,
                  me_codes[_i].code);
    /* Only its own code: "ME-I0101" must not also read "ME-I0110". */
    for (size_t k = 0; k < sizeof(me_codes) / sizeof(me_codes[0]); k++)
        if ((int) k != _i)
            ck_assert_msg(strstr(e->explanation, me_codes[k].code) == NULL,
                          "%s names %s too", e->id, me_codes[k].code);
    /* The ID scheme: 0021NNNN carries the code's number NNNN. */
    snprintf(code, sizeof(code), "0%s", me_codes[_i].code + 5);
    ck_assert_str_eq(e->id + 4, code);
}
END_TEST

/* Every event of the 002101xx block is one of the seed's codes. */
START_TEST(test_relay_me_block_complete)
{
    size_t n = 0;

    for (int i = 0; i < SG_EV_COUNT; i++) {
        const struct sg_event_def *e = sg_event_def((enum sg_event) i);
        bool found = false;

        if (strncmp(e->id, "002101", 6) != 0)
            continue;
        n++;
        for (size_t k = 0; k < sizeof(me_codes) / sizeof(me_codes[0]); k++)
            found = found || strcmp(me_codes[k].id, e->id) == 0;
        ck_assert_msg(found, "%s (%s) has no MailEnable code", e->id,
                      e->name);
    }
    ck_assert_uint_eq(n, sizeof(me_codes) / sizeof(me_codes[0]));
}
END_TEST

/* ---- end to end through the engine ---- */

static struct sg_engine *eng;

static void engine_setup(void)
{
    fake_now = 1700000000;
    eng = test_engine();
    /* A small MX: two local domains, a few mailboxes, one catch-all. */
    test_sql(temp_db_of(eng),
             "INSERT INTO local_domains (domain) VALUES ('example.org'), "
             "('catch.example');"
             "INSERT INTO local_addresses (address) VALUES "
             "('alice@example.org'), ('bob@example.org');"
             "INSERT INTO catchalls (domain, mailbox) VALUES "
             "('catch.example', 'bucket@catch.example');"
             "DELETE FROM relay_networks;"
             "INSERT INTO relay_networks (network) VALUES ('192.0.2.0/24');");
    sg_engine_tick(eng);
    capture_reset();
}

static void engine_teardown(void)
{
    if (getenv("SG_TEST_DUMP") != NULL)
        for (int i = 0; i < captured.n; i++)
            fprintf(stderr, "%s\n", captured.line[i]);
    sg_engine_close(eng, "test");
    sg_event_clear_overrides();
}

static struct sg_session *session(const char *addr)
{
    struct sg_session_info info = { addr, NULL, "smtpd", NULL };
    struct sg_session *s = sg_session_new(eng, &info);
    struct sg_verdict v;

    ck_assert_ptr_nonnull(s);
    sg_session_connect(s, &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    return s;
}

static void mail(struct sg_session *s, const char *sender, const char *auth,
                 struct sg_verdict *v)
{
    sg_session_set_auth(s, auth);
    sg_session_mail(s, sender, v);
}

START_TEST(test_rcpt_relay_events)
{
    struct sg_session *s = session("203.0.113.5");
    struct sg_verdict v;

    mail(s, "<spammer@remote.example>", NULL, &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    sg_session_rcpt(s, "<victim@far.example>", "smtp", &v);
    ck_assert_int_eq(v.action, SG_ACT_REJECT);
    ck_assert_str_eq(v.code, "550");
    ck_assert_str_eq(v.xcode, "5.7.1");
    ck_assert_ptr_nonnull(strstr(v.text, "00210111"));
    ck_assert_ptr_nonnull(capture_find("id=00210111 event=relay_denied"));
    ck_assert_ptr_nonnull(capture_find(
        "msg=\"Relay attempt from IP address 203.0.113.5, mail from "
        "<spammer@remote.example> to <victim@far.example> rejected\""));
    ck_assert_int_eq(sg_session_errors(s), 1);

    sg_session_rcpt(s, "<Alice@Example.org>", "local", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    ck_assert_ptr_nonnull(capture_find("id=00210101"));
    sg_session_rcpt(s, "<anyone@catch.example>", "local", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    ck_assert_ptr_nonnull(capture_find("mailbox=bucket@catch.example"));
    sg_session_rcpt(s, "<nobody@example.org>", "local", &v);
    ck_assert_int_eq(v.action, SG_ACT_REJECT);
    ck_assert_str_eq(v.xcode, "5.1.1");
    ck_assert_ptr_nonnull(capture_find("id=00210202"));
    sg_session_rcpt(s, "<bad\"@example.org>", "local", &v);
    ck_assert_str_eq(v.code, "501");
    ck_assert_str_eq(v.xcode, "5.1.3");
    ck_assert_int_eq(sg_session_errors(s), 3);
    sg_session_free(s);

    /* Authenticated and relay-network clients relay. */
    s = session("203.0.113.6");
    mail(s, "<alice@example.org>", "alice", &v);
    sg_session_rcpt(s, "<friend@far.example>", "smtp", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    ck_assert_ptr_nonnull(capture_find("id=00210108"));
    sg_session_message_done(s);
    /* The authentication belongs to that transaction only. */
    mail(s, "<alice@example.org>", NULL, &v);
    sg_session_rcpt(s, "<friend@far.example>", "smtp", &v);
    ck_assert_int_eq(v.action, SG_ACT_REJECT);
    sg_session_free(s);
    s = session("192.0.2.77");
    mail(s, "<>", NULL, &v);
    sg_session_rcpt(s, "<friend@far.example>", "smtp", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    ck_assert_ptr_nonnull(capture_find("entry=192.0.2.0/24"));
    sg_session_free(s);
}
END_TEST

START_TEST(test_relay_modes)
{
    struct sg_session *s;
    struct sg_verdict v;

    test_sql(temp_db_of(eng), "UPDATE settings SET value = '2' WHERE name = "
             "'DoRelayCheck'");
    sg_engine_tick(eng);
    s = session("203.0.113.5");
    mail(s, "<x@remote.example>", NULL, &v);
    sg_session_rcpt(s, "<victim@far.example>", "smtp", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    ck_assert_ptr_nonnull(capture_find("event=relay_denied severity=notice "
                                       "action=monitor"));
    ck_assert_ptr_nonnull(capture_find("event=relay_attempt_rejected "
                                       "severity=warning action=monitor"));
    sg_session_free(s);
    test_sql(temp_db_of(eng), "UPDATE settings SET value = '0' WHERE name = "
             "'DoRelayCheck'");
    sg_engine_tick(eng);
    capture_reset();
    s = session("203.0.113.5");
    mail(s, "<x@remote.example>", NULL, &v);
    sg_session_rcpt(s, "<victim@far.example>", "smtp", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    ck_assert_int_eq(capture_count("0021"), 0);
    sg_session_free(s);
}
END_TEST

/* The grants that need a setting: open relay and local sender. */
START_TEST(test_relay_grant_events_logged)
{
    struct sg_session *s;
    struct sg_verdict v;

    test_sql(temp_db_of(eng), "UPDATE settings SET value = 'on' WHERE name "
             "= 'relayLocalSender'");
    sg_engine_tick(eng);
    s = session("203.0.113.7");
    mail(s, "<Bob@Example.org>", NULL, &v);
    sg_session_rcpt(s, "<friend@far.example>", "smtp", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    ck_assert_ptr_nonnull(capture_find(
        "id=00210106 event=relay_granted_local_sender severity=info "
        "action=accept client=203.0.113.7 service=smtpd"));
    ck_assert_ptr_nonnull(capture_find(
        "recipient=friend@far.example sender=bob@example.org msg=\"Relay "
        "Granted: bob@example.org is in local address map\""));
    ck_assert_int_eq(capture_count("id=00210111"), 0);
    sg_session_message_done(s);
    /* A sender not in the map gets no such grant. */
    capture_reset();
    mail(s, "<mallory@remote.example>", NULL, &v);
    sg_session_rcpt(s, "<friend@far.example>", "smtp", &v);
    ck_assert_int_eq(v.action, SG_ACT_REJECT);
    ck_assert_int_eq(capture_count("id=00210106"), 0);
    ck_assert_int_eq(capture_count("id=00210111"), 1);
    sg_session_free(s);

    test_sql(temp_db_of(eng), "UPDATE settings SET value = 'allow' WHERE "
             "name = 'relayPolicy'");
    sg_engine_tick(eng);
    capture_reset();
    s = session("203.0.113.8");
    mail(s, "<mallory@remote.example>", NULL, &v);
    sg_session_rcpt(s, "<victim@far.example>", "smtp", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    ck_assert_ptr_nonnull(capture_find(
        "id=00210110 event=relay_granted_open severity=notice action=accept "
        "client=203.0.113.8 service=smtpd"));
    ck_assert_ptr_nonnull(capture_find(
        "recipient=victim@far.example sender=mallory@remote.example "
        "msg=\"Relay Granted: Server is configured to allow anyone to "
        "relay\""));
    ck_assert_int_eq(capture_count("id=00210201"), 0);
    /* Local delivery stays local delivery, not an open-relay grant. */
    sg_session_rcpt(s, "<alice@example.org>", "local", &v);
    ck_assert_int_eq(capture_count("id=00210110"), 1);
    ck_assert_int_eq(capture_count("id=00210101"), 1);
    sg_session_free(s);
}
END_TEST

START_TEST(test_harvest_bans_client)
{
    struct sg_session *s;
    struct sg_verdict v;
    char name[32];
    int i;

    test_sql(temp_db_of(eng), "UPDATE settings SET value = '5' WHERE name = "
             "'maxHarvestUnknown'; UPDATE settings SET value = '100' WHERE "
             "name = 'MaxErrors'");
    sg_engine_tick(eng);
    /* Spread over two sessions: the count is the client's, not the
     * session's. */
    s = session("198.51.100.20");
    mail(s, "<>", NULL, &v);
    for (i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "<guess%d@example.org>", i);
        sg_session_rcpt(s, name, "local", &v);
        ck_assert_int_eq(v.action, SG_ACT_REJECT);
    }
    sg_session_free(s);
    s = session("198.51.100.20");
    mail(s, "<>", NULL, &v);
    for (; i < 5; i++) {
        snprintf(name, sizeof(name), "<guess%d@example.org>", i);
        sg_session_rcpt(s, name, "local", &v);
        ck_assert_int_eq(v.action, SG_ACT_REJECT);
    }
    sg_session_rcpt(s, "<guess5@example.org>", "local", &v);
    ck_assert_int_eq(v.action, SG_ACT_CLOSE);
    ck_assert_str_eq(v.code, "421");
    ck_assert_ptr_nonnull(capture_find(
        "msg=\"Directory harvest attack from 198.51.100.20 detected (6 "
        "unknown recipients in 600 seconds, limit 5); banned for 3600 "
        "seconds\""));
    sg_session_free(s);
    ck_assert_int_eq(db_count_in(temp_db_of(eng), "SELECT count(*) FROM bans "
                                 "WHERE key = '198.51.100.20' AND reason = "
                                 "'00210203'"), 1);
    /* The next session is refused at connect while the ban lasts. */
    {
        struct sg_session_info info = { "198.51.100.20", NULL, "smtpd",
                                         NULL };

        s = sg_session_new(eng, &info);
        sg_session_connect(s, &v);
        ck_assert_int_eq(v.action, SG_ACT_CLOSE);
        ck_assert_ptr_nonnull(capture_find("ban_reason=00210203"));
        sg_session_free(s);
    }
    /* Other clients are not affected. */
    s = session("198.51.100.21");
    sg_session_free(s);
}
END_TEST

/* harvest_try - n unknown recipients from `client`, each refused 550 */
static void harvest_try(struct sg_session *s, int from, int n,
                        enum sg_action want)
{
    struct sg_verdict v;
    char name[48];

    for (int i = from; i < from + n; i++) {
        snprintf(name, sizeof(name), "<guess%d@example.org>", i);
        sg_session_rcpt(s, name, "local", &v);
        ck_assert_msg(v.action == want, "unknown recipient %d: action %d",
                      i, v.action);
    }
}

START_TEST(test_harvest_ban_expires)
{
    struct sg_session *s;
    struct sg_verdict v;
    struct sg_session_info info = { "198.51.100.30", NULL, "smtpd", NULL };

    test_sql(temp_db_of(eng), "UPDATE settings SET value = '3' WHERE name = "
             "'maxHarvestUnknown'; UPDATE settings SET value = '100' WHERE "
             "name = 'MaxErrors'; UPDATE settings SET value = '900' WHERE "
             "name = 'harvestExpiration'");
    sg_engine_tick(eng);
    s = session("198.51.100.30");
    mail(s, "<>", NULL, &v);
    harvest_try(s, 0, 3, SG_ACT_REJECT);
    harvest_try(s, 3, 1, SG_ACT_CLOSE);
    ck_assert_ptr_nonnull(capture_find("banned for 900 seconds"));
    sg_session_free(s);
    /* One second before the end: still refused, one second left. */
    fake_now += 899;
    s = sg_session_new(eng, &info);
    sg_session_connect(s, &v);
    ck_assert_int_eq(v.action, SG_ACT_CLOSE);
    ck_assert_ptr_nonnull(capture_find("remaining=1 ban_reason=00210203"));
    sg_session_free(s);
    /* Expired: accepted again, and the count starts over. */
    fake_now += 1;
    capture_reset();
    s = session("198.51.100.30");
    ck_assert_int_eq(capture_count("id=00200155"), 0);
    mail(s, "<>", NULL, &v);
    harvest_try(s, 10, 3, SG_ACT_REJECT);
    ck_assert_ptr_nonnull(capture_find("id=00210202"));
    ck_assert_ptr_nonnull(capture_find("unknown=3 msg="));
    ck_assert_int_eq(capture_count("id=00210203"), 0);
    harvest_try(s, 13, 1, SG_ACT_CLOSE);
    sg_session_free(s);
}
END_TEST

START_TEST(test_harvest_window_slides)
{
    struct sg_session *s;
    struct sg_verdict v;

    test_sql(temp_db_of(eng), "UPDATE settings SET value = '4' WHERE name = "
             "'maxHarvestUnknown'; UPDATE settings SET value = '100' WHERE "
             "name = 'MaxErrors'; UPDATE settings SET value = '300' WHERE "
             "name = 'harvestDuration'");
    sg_engine_tick(eng);
    s = session("198.51.100.31");
    mail(s, "<>", NULL, &v);
    harvest_try(s, 0, 3, SG_ACT_REJECT);
    sg_session_free(s);
    /* Still inside the window: the fourth is counted with the three. */
    fake_now += 299;
    s = session("198.51.100.31");
    mail(s, "<>", NULL, &v);
    harvest_try(s, 3, 1, SG_ACT_REJECT);
    ck_assert_ptr_nonnull(capture_find("unknown=4 msg="));
    sg_session_free(s);
    /* Past harvestDuration: the old ones do not count. Four more are
     * refused as unknown only (had the old four counted, the first of
     * them would be the fifth: a harvest); a fifth is one. */
    fake_now += 1;
    capture_reset();
    s = session("198.51.100.31");
    mail(s, "<>", NULL, &v);
    harvest_try(s, 4, 1, SG_ACT_REJECT);
    ck_assert_ptr_nonnull(capture_find("unknown=1 msg="));
    harvest_try(s, 5, 3, SG_ACT_REJECT);
    ck_assert_int_eq(capture_count("id=00210203"), 0);
    harvest_try(s, 8, 1, SG_ACT_CLOSE);
    ck_assert_ptr_nonnull(capture_find("(5 unknown recipients in 300 "
                                       "seconds, limit 4)"));
    sg_session_free(s);
}
END_TEST

/* DoRelayCheck=0 leaves unknown recipients to the MTA, but a client
 * guessing addresses is still caught. */
START_TEST(test_harvest_without_relay_check)
{
    struct sg_session *s;
    struct sg_verdict v;

    test_sql(temp_db_of(eng), "UPDATE settings SET value = '0' WHERE name = "
             "'DoRelayCheck'; UPDATE settings SET value = '3' WHERE name = "
             "'maxHarvestUnknown'");
    sg_engine_tick(eng);
    s = session("198.51.100.32");
    mail(s, "<>", NULL, &v);
    harvest_try(s, 0, 3, SG_ACT_NONE);
    /* Known and catch-all recipients are not counted. */
    sg_session_rcpt(s, "<alice@example.org>", "local", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    sg_session_rcpt(s, "<x@catch.example>", "local", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    sg_session_rcpt(s, "<victim@far.example>", "smtp", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    /* No relay events without the relay check. */
    ck_assert_int_eq(capture_count("id=002101"), 0);
    ck_assert_int_eq(capture_count("id=00210202"), 0);
    harvest_try(s, 3, 1, SG_ACT_CLOSE);
    ck_assert_ptr_nonnull(capture_find(
        "id=00210203 event=directory_harvest_attack severity=warning "
        "action=close client=198.51.100.32"));
    ck_assert_ptr_nonnull(capture_find("(4 unknown recipients in 600 "
                                       "seconds, limit 3)"));
    sg_session_free(s);
    ck_assert_int_eq(db_count_in(temp_db_of(eng), "SELECT count(*) FROM bans "
                                 "WHERE key = '198.51.100.32' AND reason = "
                                 "'00210203'"), 1);
    /* With the harvest check off too, nothing is counted. */
    test_sql(temp_db_of(eng), "UPDATE settings SET value = '0' WHERE name = "
             "'DoHarvestCheck'");
    sg_engine_tick(eng);
    capture_reset();
    s = session("198.51.100.33");
    mail(s, "<>", NULL, &v);
    harvest_try(s, 0, 6, SG_ACT_NONE);
    ck_assert_int_eq(captured.n, 0);
    sg_session_free(s);
}
END_TEST

START_TEST(test_email_rate_counts_accepted)
{
    struct sg_session *s;
    struct sg_verdict v;

    test_sql(temp_db_of(eng), "UPDATE settings SET value = '3' WHERE name = "
             "'maxEmailPerMinute'");
    sg_engine_tick(eng);
    s = session("203.0.113.40");
    /* Refused or aborted transactions do not count. */
    for (int i = 0; i < 5; i++) {
        mail(s, "<News@Sender.example>", NULL, &v);
        ck_assert_int_eq(v.action, SG_ACT_NONE);
        sg_session_reset(s);
    }
    for (int i = 0; i < 3; i++) {
        mail(s, "<news@sender.example>", NULL, &v);
        ck_assert_int_eq(v.action, SG_ACT_NONE);
        sg_session_rcpt(s, "<alice@example.org>", "local", &v);
        sg_session_message_done(s);
    }
    mail(s, "<news@sender.example>", NULL, &v);
    ck_assert_int_eq(v.action, SG_ACT_TEMPFAIL);
    ck_assert_str_eq(v.code, "451");
    ck_assert_str_eq(v.xcode, "4.7.1");
    ck_assert_ptr_nonnull(capture_find(
        "id=00200151 event=maximum_email_per_minute_reached "
        "severity=warning action=tempfail"));
    ck_assert_ptr_nonnull(capture_find(
        "sender_email_address=news@sender.example key_type=sender"));
    ck_assert_ptr_nonnull(capture_find("count=3 max=3"));
    /* Refused attempts are not counted: more of them, then one more
     * message allowed in the same minute lets exactly one through. Had
     * any refused attempt counted, the window would already be over 4. */
    for (int i = 0; i < 3; i++) {
        mail(s, "<news@sender.example>", NULL, &v);
        ck_assert_int_eq(v.action, SG_ACT_TEMPFAIL);
        sg_session_reset(s);
    }
    sg_session_free(s);
    /* A session keeps its policy: the new limit is the next session's. */
    test_sql(temp_db_of(eng), "UPDATE settings SET value = '4' WHERE name = "
             "'maxEmailPerMinute'");
    sg_engine_tick(eng);
    s = session("203.0.113.40");
    mail(s, "<news@sender.example>", NULL, &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    sg_session_rcpt(s, "<alice@example.org>", "local", &v);
    sg_session_message_done(s);
    capture_reset();
    mail(s, "<news@sender.example>", NULL, &v);
    ck_assert_int_eq(v.action, SG_ACT_TEMPFAIL);
    ck_assert_ptr_nonnull(capture_find("count=4 max=4"));
    sg_session_reset(s);
    /* Another sender has a window of its own. */
    mail(s, "<other@sender.example>", NULL, &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    sg_session_reset(s);
    /* A minute later the window has moved on. */
    fake_now += 60;
    mail(s, "<news@sender.example>", NULL, &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    sg_session_free(s);
}
END_TEST

START_TEST(test_email_rate_by_auth_and_ip_persists)
{
    struct sg_session *s;
    struct sg_verdict v;
    struct sg_engine_opts o = { .env = { .log = &test_log, .now = fake_clock },
                                .dns_servers = TEST_DNS_NOWHERE };
    struct sg_err err;
    char path[512];

    test_sql(temp_db_of(eng), "UPDATE settings SET value = '0' WHERE name = "
             "'maxEmailPerMinute'; UPDATE settings SET value = '2' WHERE "
             "name = 'maxEmailPerMinuteAuth'; UPDATE settings SET value = "
             "'3' WHERE name = 'maxEmailPerMinuteIP'");
    sg_engine_tick(eng);
    s = session("203.0.113.41");
    for (int i = 0; i < 2; i++) {
        mail(s, "<a@example.org>", "alice", &v);
        ck_assert_int_eq(v.action, SG_ACT_NONE);
        sg_session_message_done(s);
    }
    mail(s, "<b@example.org>", "alice", &v);
    ck_assert_int_eq(v.action, SG_ACT_TEMPFAIL);
    ck_assert_ptr_nonnull(capture_find("key_type=auth key=alice"));
    sg_session_reset(s);
    mail(s, "<b@example.org>", NULL, &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    sg_session_message_done(s);
    sg_session_free(s);
    /* The counters survive a restart. */
    snprintf(path, sizeof(path), "%s", temp_db_of(eng));
    sg_engine_close(eng, "test");
    o.db_path = path;
    ck_assert_int_eq(sg_engine_open(&o, &eng, &err), SG_OK);
    s = session("203.0.113.41");
    mail(s, "<c@example.org>", NULL, &v);
    ck_assert_int_eq(v.action, SG_ACT_TEMPFAIL);
    ck_assert_ptr_nonnull(capture_find("key_type=ip key=203.0.113.41"));
    sg_session_free(s);
}
END_TEST

START_TEST(test_rcpt_limits)
{
    struct sg_session *s;
    struct sg_verdict v;

    test_sql(temp_db_of(eng), "UPDATE settings SET value = '2' WHERE name = "
             "'maxRcptPerMessage'; UPDATE settings SET value = '3' WHERE "
             "name = 'maxRcptPerMinute'");
    sg_engine_tick(eng);
    s = session("203.0.113.42");
    mail(s, "<list@sender.example>", NULL, &v);
    sg_session_rcpt(s, "<alice@example.org>", "local", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    sg_session_rcpt(s, "<bob@example.org>", "local", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    sg_session_rcpt(s, "<x@catch.example>", "local", &v);
    ck_assert_int_eq(v.action, SG_ACT_TEMPFAIL);
    ck_assert_str_eq(v.code, "452");
    ck_assert_str_eq(v.xcode, "4.5.3");
    ck_assert_ptr_nonnull(capture_find("id=00200170"));
    sg_session_message_done(s);
    /* A new message: one more recipient fits the minute, then 451. */
    mail(s, "<list@sender.example>", NULL, &v);
    sg_session_rcpt(s, "<alice@example.org>", "local", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    sg_session_rcpt(s, "<bob@example.org>", "local", &v);
    ck_assert_int_eq(v.action, SG_ACT_TEMPFAIL);
    ck_assert_str_eq(v.code, "451");
    ck_assert_ptr_nonnull(capture_find(
        "id=00200171 event=maximum_rcpt_per_minute_reached"));
    sg_session_free(s);
}
END_TEST

START_TEST(test_rcpt_rate_by_auth_and_ip_persists)
{
    struct sg_session *s;
    struct sg_verdict v;
    struct sg_engine_opts o = { .env = { .log = &test_log, .now = fake_clock },
                                .dns_servers = TEST_DNS_NOWHERE };
    struct sg_err err;
    char path[512];

    test_sql(temp_db_of(eng), "UPDATE settings SET value = '0' WHERE name = "
             "'maxRcptPerMinute'; UPDATE settings SET value = '2' WHERE "
             "name = 'maxRcptPerMinuteAuth'; UPDATE settings SET value = "
             "'3' WHERE name = 'maxRcptPerMinuteIP'");
    sg_engine_tick(eng);
    /* By authenticated user: two recipients, whatever the sender. */
    s = session("203.0.113.43");
    mail(s, "<a@example.org>", "carol", &v);
    sg_session_rcpt(s, "<alice@example.org>", "local", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    sg_session_message_done(s);
    mail(s, "<b@example.org>", "carol", &v);
    sg_session_rcpt(s, "<bob@example.org>", "local", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    sg_session_rcpt(s, "<alice@example.org>", "local", &v);
    ck_assert_int_eq(v.action, SG_ACT_TEMPFAIL);
    ck_assert_str_eq(v.code, "451");
    ck_assert_str_eq(v.xcode, "4.7.1");
    ck_assert_ptr_nonnull(capture_find(
        "id=00200171 event=maximum_rcpt_per_minute_reached"));
    ck_assert_ptr_nonnull(capture_find("key_type=auth key=carol count=2 "
                                       "max=2"));
    sg_session_message_done(s);
    /* By client address: the refused recipient was not counted, so the
     * address has two and one more fits; the next is refused. */
    mail(s, "<c@example.org>", NULL, &v);
    sg_session_rcpt(s, "<alice@example.org>", "local", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    sg_session_rcpt(s, "<bob@example.org>", "local", &v);
    ck_assert_int_eq(v.action, SG_ACT_TEMPFAIL);
    ck_assert_ptr_nonnull(capture_find("key_type=ip key=203.0.113.43 "
                                       "count=3 max=3"));
    sg_session_message_done(s);
    sg_session_free(s);
    /* The same user elsewhere is still over its limit... */
    s = session("203.0.113.44");
    mail(s, "<d@example.org>", "carol", &v);
    sg_session_rcpt(s, "<alice@example.org>", "local", &v);
    ck_assert_int_eq(v.action, SG_ACT_TEMPFAIL);
    sg_session_free(s);

    /* ...and both counters survive a restart. */
    snprintf(path, sizeof(path), "%s", temp_db_of(eng));
    sg_engine_close(eng, "test");
    o.db_path = path;
    ck_assert_int_eq(sg_engine_open(&o, &eng, &err), SG_OK);
    capture_reset();
    s = session("203.0.113.43");
    mail(s, "<e@example.org>", NULL, &v);
    sg_session_rcpt(s, "<alice@example.org>", "local", &v);
    ck_assert_int_eq(v.action, SG_ACT_TEMPFAIL);
    ck_assert_ptr_nonnull(capture_find("key_type=ip key=203.0.113.43 "
                                       "count=3 max=3"));
    sg_session_free(s);
    s = session("203.0.113.45");
    mail(s, "<f@example.org>", "carol", &v);
    sg_session_rcpt(s, "<alice@example.org>", "local", &v);
    ck_assert_int_eq(v.action, SG_ACT_TEMPFAIL);
    ck_assert_ptr_nonnull(capture_find("key_type=auth key=carol count=2 "
                                       "max=2"));
    sg_session_free(s);
    /* A minute after the windows began they are empty again. */
    fake_now += 60;
    s = session("203.0.113.43");
    mail(s, "<g@example.org>", "carol", &v);
    sg_session_rcpt(s, "<alice@example.org>", "local", &v);
    ck_assert_int_eq(v.action, SG_ACT_NONE);
    sg_session_free(s);
}
END_TEST

START_TEST(test_exempt_and_local_submission)
{
    struct sg_session *s;
    struct sg_verdict v;

    test_sql(temp_db_of(eng), "UPDATE settings SET value = '1' WHERE name = "
             "'maxEmailPerMinute'; INSERT INTO ip_lists (list, network) "
             "VALUES ('whiteListedIPs', '198.51.100.0/24')");
    sg_engine_tick(eng);
    /* Exempt from rates, not from relay rules. */
    s = session("198.51.100.9");
    for (int i = 0; i < 3; i++) {
        mail(s, "<a@remote.example>", NULL, &v);
        ck_assert_int_eq(v.action, SG_ACT_NONE);
        sg_session_message_done(s);
    }
    mail(s, "<a@remote.example>", NULL, &v);
    sg_session_rcpt(s, "<b@far.example>", "smtp", &v);
    ck_assert_int_eq(v.action, SG_ACT_REJECT);
    sg_session_free(s);
    /* No client address: local submission relays, no rate limits. */
    {
        struct sg_session_info info = { NULL, NULL, NULL, NULL };

        s = sg_session_new(eng, &info);
        sg_session_connect(s, &v);
        for (int i = 0; i < 3; i++) {
            mail(s, "<a@remote.example>", NULL, &v);
            sg_session_rcpt(s, "<b@far.example>", "smtp", &v);
            ck_assert_int_eq(v.action, SG_ACT_NONE);
            sg_session_message_done(s);
        }
        sg_session_free(s);
    }
}
END_TEST

START_TEST(test_start_warning_without_local_domains)
{
    test_sql(temp_db_of(eng), "DELETE FROM local_domains");
    capture_reset();
    sg_engine_tick(eng);
    ck_assert_ptr_nonnull(capture_find("id=00210204"));
    ck_assert_ptr_nonnull(capture_find("local_domains is empty"));
}
END_TEST

Suite *relay_suite(void)
{
    Suite *su = suite_create("relay");
    TCase *tc = tcase_create("decision");

    tcase_add_loop_test(tc, test_mailaddr_parse, 0,
                        (int) (sizeof(addr_cases) / sizeof(addr_cases[0])));
    tcase_add_test(tc, test_mailaddr_bounds);
    tcase_add_checked_fixture(tc, relay_setup, relay_teardown);
    tcase_add_test(tc, test_relay_local_paths);
    tcase_add_test(tc, test_relay_grants_and_denials);
    tcase_add_test(tc, test_relay_without_local_domains);
    tcase_add_test(tc, test_relay_tables_validated);
    tcase_add_test(tc, test_relay_lint);
    tcase_add_test(tc, test_relay_lint_bare_domain);
    tcase_add_test(tc, test_bool_and_choice_settings);
    suite_add_tcase(su, tc);

    tc = tcase_create("catalogue");
    tcase_add_loop_test(tc, test_relay_event_names_me_code, 0,
                        (int) (sizeof(me_codes) / sizeof(me_codes[0])));
    tcase_add_test(tc, test_relay_me_block_complete);
    suite_add_tcase(su, tc);

    tc = tcase_create("session");
    tcase_add_checked_fixture(tc, engine_setup, engine_teardown);
    tcase_add_test(tc, test_rcpt_relay_events);
    tcase_add_test(tc, test_relay_modes);
    tcase_add_test(tc, test_relay_grant_events_logged);
    tcase_add_test(tc, test_harvest_bans_client);
    tcase_add_test(tc, test_harvest_ban_expires);
    tcase_add_test(tc, test_harvest_window_slides);
    tcase_add_test(tc, test_harvest_without_relay_check);
    tcase_add_test(tc, test_email_rate_counts_accepted);
    tcase_add_test(tc, test_email_rate_by_auth_and_ip_persists);
    tcase_add_test(tc, test_rcpt_limits);
    tcase_add_test(tc, test_rcpt_rate_by_auth_and_ip_persists);
    tcase_add_test(tc, test_exempt_and_local_submission);
    tcase_add_test(tc, test_start_warning_without_local_domains);
    suite_add_tcase(su, tc);
    return su;
}
