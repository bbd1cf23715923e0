/*
 * docgen.c - write docs/log-reference.md and docs/settings.md from the
 * catalogue (events.def) and the settings table (settings.def)
 *
 * usage: sg-docgen log-reference|settings > FILE
 */
#include <stdio.h>
#include <string.h>

#include "catalogue.h"
#include "config.h"
#include "verdict.h"

static void upper(const char *s, char *out, size_t size)
{
    size_t i;

    for (i = 0; s[i] && i + 1 < size; i++)
        out[i] = (char) (s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
    out[i] = '\0';
}

/* list - "a b c" as "a, b, c" ("-" when empty) */
static void list(const char *params)
{
    int first = 1;

    if (*params == '\0') {
        fputs("-", stdout);
        return;
    }
    for (const char *p = params; *p;) {
        size_t n = strcspn(p, " ");

        printf("%s%.*s", first ? "" : ", ", (int) n, p);
        first = 0;
        p += n;
        while (*p == ' ')
            p++;
    }
}

/*
 * cell - text for a Markdown table cell: '|' escaped; as a code span
 * (code: a message template, whose <parameter> placeholders must survive
 * rendering to HTML) or with '<' and '>' as entities.
 */
static void cell(const char *text, int code)
{
    if (code)
        fputc('`', stdout);
    for (const char *p = text; *p; p++) {
        if (*p == '|')
            fputs("\\|", stdout);
        else if (!code && *p == '<')
            fputs("&lt;", stdout);
        else if (!code && *p == '>')
            fputs("&gt;", stdout);
        else
            fputc(*p, stdout);
    }
    if (code)
        fputc('`', stdout);
}

/*
 * smtp_reply - what the client is told when the event refuses: for its
 * default action, and for reject and tempfail where its row gives codes of
 * their own (checks whose action is a setting, such as SPF's)
 */
static void smtp_reply(const struct sg_event_def *e)
{
    static const enum sg_action acts[] = { SG_ACT_REJECT, SG_ACT_TEMPFAIL,
                                           SG_ACT_CLOSE };
    bool rej = false, temp = false, row = sg_verdict_row(e->event, &rej,
                                                         &temp);
    int shown = 0;

    for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
        char buf[600];

        if (e->action != acts[i] && !(row && acts[i] == SG_ACT_REJECT && rej)
            && !(row && acts[i] == SG_ACT_TEMPFAIL && temp))
            continue;
        sg_verdict_describe(e->event, acts[i], buf, sizeof(buf));
        fputs(shown++ ? "<br>" : "| SMTP Reply | ", stdout);
        printf("%s: ", sg_action_name(acts[i]));
        cell(buf, 1);
    }
    if (shown)
        puts(" |");
}

static void log_reference(void)
{
    char sev[16];

    puts("# smtpguard log reference\n");
    puts("<!-- Generated from lib/events.def by sg-docgen: do not edit. -->\n");
    puts("Every verdict and every notable condition of smtpguard is an event "
         "of this catalogue, logged\nthrough syslog (facility mail by "
         "default) as one line:\n");
    puts("    <queue-id|NOQUEUE>: id=<ID> event=<name> severity=<severity> "
         "action=<action>\n        [client=<address>] [service=<service>] "
         "[session=<hex>] <parameter>=<value>... msg=\"<message>\"\n");
    puts("`action` is what was done: the event's action below when its check "
         "runs in block mode;\n`monitor` (logged only) or `score` (added to "
         "the penalty score) in those modes; `none` for\ninformational "
         "events. Values holding spaces or special characters are quoted, "
         "with `\\\"`, `\\\\`\nand `\\xHH` escapes. Operators may override "
         "an event's severity and action in the\n`catalogue` table.\n");
    puts("`SMTP Reply` is what the client is told when the event refuses: "
         "for the event's action,\nand for reject and tempfail where the "
         "check's action is a setting (SPF's, for one).\n`<name>` is a "
         "value of the session (made safe for a reply line), `{A}` is A "
         "only\nwhen its values are there, `{A|B}` A if so, else B. A long "
         "text is cut so that it\nand its `[smtpguard ID]` fit in 200 "
         "characters; a syntax refusal of the sender (MAIL) says\nX.1.7 where the table "
         "says X.1.3 (RFC 3463).\n");
    puts("## ID scheme\n");
    puts("| Range | Facility | Notes |\n|---|---|---|");
    puts("| 0020xxxx | SMTP_SESSION | Session limits and mail rates. "
         "00200150-00200152 as in the firewall log reference smtpguard "
         "follows; 00200151 (maximum_email_per_minute_reached) is reserved "
         "for the per-sender mail rate; further rate events 002001[7-9]x. |");
    puts("| 0021xxxx | RELAY | Relay authorization: 0021NNNN carries the "
         "MailEnable code number (ME-I0101 -> 00210101); others 002102xx. |");
    puts("| 0023xxxx | DNS | DNSBL/DNSWL and reverse DNS: the last digits "
         "carry the Isode MTA_SMTP ID (DNSBLfailed 106 -> 00230106); "
         "others 002302xx. |");
    puts("| 0024xxxx | SPF | Isode IDs (SPFfail 108 -> 00240108 ... "
         "SPFpermerror 114 -> 00240114); others 002402xx. |");
    puts("| 0029xxxx | SYSTEM | Daemon, configuration and database. |\n");
    puts("## Index\n");
    puts("| Name | Severity | ID | Description |\n|---|---|---|---|");
    for (int i = 0; i < SG_EV_COUNT; i++) {
        const struct sg_event_def *e = sg_event_def((enum sg_event) i);

        printf("| [%s](#%s) | %s | %s | ", e->name, e->id,
               sg_severity_name(e->severity), e->id);
        cell(e->message, 1);
        puts(" |");
    }
    for (int f = 0; f < SG_FAC_COUNT; f++) {
        int any = 0;

        for (int i = 0; i < SG_EV_COUNT; i++) {
            const struct sg_event_def *e = sg_event_def((enum sg_event) i);

            if (e->facility != (enum sg_facility) f)
                continue;
            if (!any)
                printf("\n## %s (%s)\n", sg_facility_title(e->facility),
                       sg_facility_name(e->facility));
            any = 1;
            upper(sg_severity_name(e->severity), sev, sizeof(sev));
            printf("\n<a id=\"%s\"></a>\n### %s (ID: %s)\n\n", e->id,
                   e->name, e->id);
            printf("| | |\n|---|---|\n");
            printf("| Default Severity | %s |\n", sev);
            fputs("| Log Message | ", stdout);
            cell(e->message, 1);
            fputs(" |\n| Explanation | ", stdout);
            cell(e->explanation, 0);
            printf(" |\n| Gateway Action | %s |\n",
                   sg_action_name(e->action));
            fputs("| Recommended Action | ", stdout);
            cell(e->recommended, 0);
            puts(" |");
            smtp_reply(e);
            printf("| Revision | %d |\n", e->revision);
            fputs("| Parameters | ", stdout);
            list(e->params);
            fputs(" |\n| Context Parameters | ", stdout);
            list(e->context);
            puts(" |");
        }
    }
}

static void settings(void)
{
    puts("# smtpguard settings\n");
    puts("<!-- Generated from lib/settings.def by sg-docgen: do not edit. "
         "-->\n");
    puts("Settings live in the `settings` table of the database (name, "
         "value); the daemon adds\nmissing rows with their defaults and "
         "picks up changes within 2 seconds, or at once on\nSIGHUP. "
         "`setting_info` holds this table in SQL. Modes: 0 off, 1 block, 2 "
         "monitor (log\nonly), 3 score. Seconds may carry a unit: `90`, "
         "`90s`, `15m`, `2h`, `1d`. Booleans: yes/no, on/off,\ntrue/false "
         "or 1/0. Choices: one of the names listed. Text: checked by the daemon.\n");
    puts("| Setting | Type | Default | Range | Description |\n"
         "|---|---|---|---|---|");
    for (int i = 0; i < SG_SET_COUNT; i++) {
        const struct sg_setting_def *d = sg_setting_def((enum sg_setting) i);

        const char *const *names = sg_setting_choices(d);

        printf("| `%s` | %s | %s | ", d->name, sg_setting_type_name(d->type),
               d->def[0] != '\0' ? d->def : "(empty)");
        if (d->type == SG_T_TEXT)
            printf("up to %d characters", SG_SETTING_TEXT_MAX - 1);
        else if (d->type == SG_T_BOOL)
            fputs("yes/no", stdout);
        else if (names != NULL)
            for (int k = 0; names[k] != NULL; k++)
                printf("%s%s", k ? ", " : "", names[k]);
        else
            printf("%ld-%ld", d->min, d->max);
        printf(" | %s |\n", d->doc);
    }
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "log-reference") == 0)
        log_reference();
    else if (argc == 2 && strcmp(argv[1], "settings") == 0)
        settings();
    else {
        fprintf(stderr, "usage: sg-docgen log-reference|settings\n");
        return 2;
    }
    return ferror(stdout) ? 1 : 0;
}
