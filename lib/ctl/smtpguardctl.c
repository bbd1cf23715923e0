/*
 * smtpguardctl - the operator's tool: policies, lists, bans and counters,
 * the event catalogue, in smtpguard's SQLite database, while the daemon
 * runs
 *
 *   smtpguardctl [-d DB] [--json] COMMAND ...     (smtpguardctl -h)
 *
 * Every value is validated with the daemon's own functions (settings.def,
 * CIDRs, domains, addresses, DNSBL sites) before anything is written; a
 * bad one is refused with the reason and nothing changes. Writes are one
 * transaction each; the table triggers bump the serial the daemon polls,
 * so changes take effect within 2 seconds. A database locked by another
 * writer is waited for (--wait, 10 s by default), then reported.
 *
 * Exit status: 0 done, 1 refused (invalid input, no such entry; nothing
 * changed), 2 usage, 3 database trouble (missing, locked, wrong version).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "catalogue.h"
#include "config.h"
#include "ctl.h"
#include "json.h"
#include "sg_config.h"
#include "store.h"

bool json;
struct sg_admin *adm;
static int wait_ms = 10000;
static const char *db_path = SG_DEFAULT_DB;

static void usage(FILE *fp)
{
    fprintf(fp,
"usage: smtpguardctl [-d DB] [--json] COMMAND ...\n"
"\n"
"Policies (the settings table; docs/settings.md):\n"
"  policy list                     every setting, its value and default\n"
"  policy get NAME\n"
"  policy set NAME VALUE           validated as the daemon validates it\n"
"  policy reset NAME               back to the default\n"
"Lists:\n"
"  list show LIST\n"
"  list add LIST ENTRY [VALUE]     catchalls: DOMAIN MAILBOX\n"
"  list add dnsbl ZONE [WEIGHT [ANSWERS]] [OPTIONS]\n"
"  list add dnsbl ZONE=ANSWERS*WEIGHT [OPTIONS]   (postscreen's form)\n"
"      --weight N        -1000000..1000000, not 0; negative: an allow list\n"
"                        (default 1)\n"
"      --answers A       which A answers count: '' any 127/8 but\n"
"                        127.255.255/24, '127.0.0.[2..11;20]', a network,\n"
"                        '&0x04' (default '')\n"
"      --txt yes|no      fetch the TXT reason (default yes)\n"
"      --ipv6 yes|no     ask for IPv6 clients too (default yes)\n"
"      --comment TEXT    kept when the zone is added again without it\n"
"                        (the others take their defaults)\n"
"  list remove LIST ENTRY\n"
"  LIST: deny, noprocessing, whitelist, ispip, relay, local-domains,\n"
"        local-addresses, catchalls, dnsbl, exempt-domains\n"
"State:\n"
"  bans                            bans in force, with reason and expiry\n"
"  unban KEY                       lift the bans of an address/network/domain\n"
"  counters KEY                    windows and bans for an IP, domain, sender\n"
"  purge                           delete expired bans and counters\n"
"Catalogue:\n"
"  events                          every event: ID, name, severity, action\n"
"  event ID|NAME                   one event, as the log reference shows it\n"
"  event-override ID|NAME [--severity SEV] [--action ACT]\n"
"  event-reset ID|NAME             drop the overrides\n"
"Report (mail.log files, .gz files or standard input; no database):\n"
"  report [--since T] [--until T] [--client ADDR] [--all] [--top N]\n"
"         [--follow] [FILE...|-]  refusals, counts by event, top lists;\n"
"                                  --follow goes on reading the last FILE\n"
"                                  (with --json: one object per line)\n"
"\n"
"Options: -d DB (default %s), --json (machine-readable output),\n"
"--wait SECONDS (for a database another writer holds; default 10),\n"
"-h, --help. Exit status: 0 done, 1 refused (nothing changed), 2 usage,\n"
"3 database trouble. Changes reach a running smtpguard within 2 seconds.\n",
            SG_DEFAULT_DB);
}

void die(int code, const char *fmt, ...)
{
    va_list ap;

    fputs("smtpguardctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    sg_admin_close(adm);
    exit(code);
}

/* ---- database ---- */

static void locked(const char *what) __attribute__((noreturn));

static void locked(const char *what)
{
    die(EX_DB, "%s: the database is locked by another writer (waited %d s); "
        "nothing changed, try again", what, wait_ms / 1000);
}

void db_die(int rc, const struct sg_err *err)
{
    if (rc == SG_EINVAL)
        die(EX_REFUSED, "refused by the database: %s", err->msg);
    if (rc == SG_ERETRY)
        locked(err->msg);
    die(EX_DB, "%s", err->msg);
}

static void open_db(void)
{
    struct sg_err err;
    int version;

    switch (sg_admin_open(db_path, wait_ms, &adm, &version, &err)) {
    case SG_OK:
        return;
    case SG_ENOENT:
        die(EX_DB, "no database at %s (smtpguard creates it when it first "
            "starts; -d names another)", db_path);
    case SG_ERETRY:
        locked(db_path);
    case SG_EINVAL:
        die(EX_DB, "%s has schema version %d, this smtpguardctl knows %d "
            "(start the matching smtpguard once to migrate it)", db_path,
            version, SG_SCHEMA_VERSION);
    default:
        die(EX_DB, "%s: %s", db_path, err.msg);
    }
}

/* ---- output: a table for people, JSON for scripts ---- */

static void json_str(const char *s)
{
    sg_json_str(stdout, s, strlen(s));
}

/* col - a value as the table shows it ('' for NULL) */
static const char *col(const struct sg_admin_row *row, int i)
{
    return row->value[i] ? row->value[i] : "";
}

void rows_start(struct rows *r, const char *const *heads)
{
    r->heads = heads;
    r->n = 0;
    r->count = 0;
    memset(r->width, 0, sizeof(r->width));
}

/* rows_add - an sg_admin_row_fn: the column names first, then each row */
void rows_add(void *arg, const struct sg_admin_row *row)
{
    struct rows *r = arg;
    int n = r->n;

    if (row->value == NULL) {
        r->n = row->ncol > ROWS_COLS ? ROWS_COLS : row->ncol;
        if (json)
            putchar('[');
        return;
    }
    if (json) {
        printf("%s{", r->count ? ",\n " : "");
        for (int i = 0; i < n; i++) {
            printf("%s", i ? ", " : "");
            json_str(row->name[i]);
            putchar(':');
            if (row->integer[i])
                printf("%s", row->value[i]);
            else if (row->value[i] == NULL)
                printf("null");
            else
                json_str(row->value[i]);
        }
        putchar('}');
    } else if (r->count < ROWS_KEPT) {
        for (int i = 0; i < n; i++) {
            int w;

            r->cells[r->count][i] = strdup(col(row, i));
            w = (int) strlen(r->cells[r->count][i]);
            if (w > r->width[i])
                r->width[i] = w < 60 ? w : 60;
        }
    } else {
        for (int i = 0; i < n; i++)
            printf("%s%s", i ? "  " : "", col(row, i));
        putchar('\n');
    }
    r->count++;
}

int rows_end(struct rows *r, int rc, const struct sg_err *err)
{
    const char *const *heads = r->heads;
    int n = r->n, count = r->count;

    if (rc != SG_OK)
        db_die(rc, err);
    if (json) {
        puts("]");
        return count;
    }
    for (int i = 0; i < n && heads != NULL; i++)
        if ((int) strlen(heads[i]) > r->width[i])
            r->width[i] = (int) strlen(heads[i]);
    for (int i = 0; i < n && heads != NULL && count > 0; i++)
        printf("%s%-*s", i ? "  " : "", i == n - 1 ? 0 : r->width[i],
               heads[i]);
    if (heads != NULL && count > 0)
        putchar('\n');
    for (int k = 0; k < count && k < ROWS_KEPT; k++) {
        for (int i = 0; i < n; i++) {
            printf("%s%-*s", i ? "  " : "", i == n - 1 ? 0 : r->width[i],
                   r->cells[k][i]);
            free(r->cells[k][i]);
        }
        putchar('\n');
    }
    return count;
}

/* rows - print the rows of query q */
static int rows(enum sg_admin_query q, const char *key,
                const char *const *heads)
{
    struct rows r;
    struct sg_err err;

    rows_start(&r, heads);
    return rows_end(&r, sg_admin_query(adm, q, key, rows_add, &r, &err),
                    &err);
}

/* done - report a change (people: the sentence; JSON: {"ok": ...}) */
void done(const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (json) {
        printf("{\"ok\": true, \"message\": ");
        json_str(msg);
        puts("}");
    } else {
        puts(msg);
    }
}

/* ---- policy ---- */

static const struct sg_setting_def *setting(const char *name)
{
    const struct sg_setting_def *d = sg_setting_find(name);

    if (d == NULL) {
        for (int i = 0; i < SG_SET_COUNT; i++) {
            d = sg_setting_def((enum sg_setting) i);
            if (strcasecmp(d->name, name) == 0)
                die(EX_REFUSED, "no setting %s; did you mean %s?", name,
                    d->name);
        }
        die(EX_REFUSED, "no setting %s ('smtpguardctl policy list' shows "
            "them)", name);
    }
    return d;
}

static int cmd_policy(int argc, char **argv)
{
    static const char *const heads[] = { "NAME", "VALUE", "DEFAULT", "TYPE" };
    const struct sg_setting_def *d;
    struct sg_err err;
    long v;
    int rc;

    if (argc < 1)
        return EX_USAGE;
    if (strcmp(argv[0], "list") == 0 && argc == 1) {
        rows(SG_ADMIN_SETTINGS, NULL, heads);
        return EX_OK;
    }
    if (argc < 2)
        return EX_USAGE;
    d = setting(argv[1]);
    if (strcmp(argv[0], "get") == 0 && argc == 2) {
        rows(SG_ADMIN_SETTING, d->name, heads);
        return EX_OK;
    }
    if ((strcmp(argv[0], "set") == 0 && argc == 3) ||
        (strcmp(argv[0], "reset") == 0 && argc == 2)) {
        const char *value = argc == 3 ? argv[2] : d->def;

        if (sg_setting_parse(d, value, &v, &err) != SG_OK)
            die(EX_REFUSED, "%s = '%s' refused: %s; nothing changed",
                d->name, value, err.msg);
        if ((rc = sg_admin_setting_set(adm, d->name, value, &err)) != SG_OK)
            db_die(rc, &err);
        done("%s = %s", d->name, value);
        return EX_OK;
    }
    return EX_USAGE;
}

/* ---- state ---- */

static int cmd_bans(int argc, char **argv)
{
    static const char *const heads[] = {
        "KIND", "KEY", "REASON", "EVENT", "EXPIRES", "REMAINING_S",
    };

    (void) argv;
    if (argc != 0)
        return EX_USAGE;
    if (rows(SG_ADMIN_BANS, NULL, heads) == 0 && !json)
        puts("no bans in force");
    return EX_OK;
}

static int cmd_unban(int argc, char **argv)
{
    struct sg_err err;
    int n, rc;

    if (argc != 1)
        return EX_USAGE;
    if ((rc = sg_admin_unban(adm, argv[0], &n, &err)) != SG_OK)
        db_die(rc, &err);
    if (n == 0)
        die(EX_REFUSED, "no ban on %s ('smtpguardctl bans' lists them; an "
            "IPv6 client is banned by its network, e.g. 2001:db8:1:2::/64)",
            argv[0]);
    done("unbanned %s (%d ban%s lifted)", argv[0], n, n == 1 ? "" : "s");
    return EX_OK;
}

static int cmd_counters(int argc, char **argv)
{
    static const char *const heads[] = { "WHAT", "KEY", "COUNT", "SINCE",
                                         "WINDOW_S" };

    if (argc != 1)
        return EX_USAGE;
    if (rows(SG_ADMIN_COUNTERS, argv[0], heads) == 0 && !json)
        printf("nothing counted for %s\n", argv[0]);
    return EX_OK;
}

static int cmd_purge(int argc, char **argv)
{
    struct sg_admin_purged n;
    struct sg_err err;
    int rc;

    (void) argv;
    if (argc != 0)
        return EX_USAGE;
    if ((rc = sg_admin_purge(adm, &n, &err)) != SG_OK)
        db_die(rc, &err);
    done("purged %d expired ban%s, %d counting window%s, %d subnet record%s",
         n.bans, n.bans == 1 ? "" : "s", n.windows, n.windows == 1 ? "" : "s",
         n.subnets, n.subnets == 1 ? "" : "s");
    return EX_OK;
}

/* ---- catalogue ---- */

static const struct sg_event_def *event(const char *key)
{
    const struct sg_event_def *e = sg_event_find(key);

    if (e == NULL)
        die(EX_REFUSED, "no event %s ('smtpguardctl events' lists them)",
            key);
    return e;
}

static int cmd_events(int argc, char **argv)
{
    static const char *const heads[] = { "ID", "NAME", "SEVERITY", "ACTION",
                                         "OVERRIDE" };

    (void) argv;
    if (argc != 0)
        return EX_USAGE;
    rows(SG_ADMIN_EVENTS, NULL, heads);
    return EX_OK;
}

static void field(const char *name, const char *value, bool first)
{
    if (json) {
        printf("%s", first ? "{" : ", ");
        json_str(name);
        putchar(':');
        json_str(value);
    } else {
        printf("%-22s %s\n", name, value);
    }
}

static int cmd_event(int argc, char **argv)
{
    const struct sg_event_def *e;
    struct sg_err err;
    char rev[16];
    char *sev, *act;
    int rc;

    if (argc != 1)
        return EX_USAGE;
    e = event(argv[0]);
    if ((rc = sg_admin_event_overrides(adm, e->id, &sev, &act, &err))
        != SG_OK)
        db_die(rc, &err);
    snprintf(rev, sizeof(rev), "%d", e->revision);
    /* The layout of the log reference (seed 000). */
    field("ID", e->id, true);
    field("Name", e->name, false);
    field("Facility", sg_facility_title(e->facility), false);
    field("Default Severity", sg_severity_name(e->severity), false);
    field("Severity override", sev ? sev : "", false);
    field("Log Message", e->message, false);
    field("Explanation", e->explanation, false);
    field("Gateway Action", sg_action_name(e->action), false);
    field("Action override", act ? act : "", false);
    field("Recommended Action", e->recommended, false);
    field("Revision", rev, false);
    field("Parameters", e->params, false);
    field("Context Parameters", e->context, false);
    if (json)
        puts("}");
    free(sev);
    free(act);
    return EX_OK;
}

static int cmd_event_override(int argc, char **argv)
{
    const struct sg_event_def *e;
    const char *sev = NULL, *act = NULL;
    struct sg_err err;
    int rc;

    if (argc < 3 || argc % 2 == 0)
        return EX_USAGE;
    e = event(argv[0]);
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--severity") == 0)
            sev = argv[i + 1];
        else if (strcmp(argv[i], "--action") == 0)
            act = argv[i + 1];
        else
            return EX_USAGE;
    }
    if (sev != NULL && sg_severity_parse(sev) < 0)
        die(EX_REFUSED, "severity '%s' refused: emergency, alert, critical, "
            "error, warning, notice, info or debug; nothing changed", sev);
    if (act != NULL) {
        int a = sg_action_parse(act);

        if (e->action < SG_ACT_REJECT)
            die(EX_REFUSED, "%s refuses nothing: its action cannot be "
                "overridden; nothing changed", e->name);
        if (a != SG_ACT_MONITOR && a < SG_ACT_REJECT)
            die(EX_REFUSED, "action '%s' refused: reject, tempfail, close or "
                "monitor; nothing changed", act);
    }
    rc = sg_admin_event_override(adm, e->id, sev ? sg_severity_name(
                                     (enum sg_severity) sg_severity_parse(sev))
                                 : NULL, act, &err);
    if (rc != SG_OK)
        db_die(rc, &err);
    done("%s %s:%s%s%s%s", e->id, e->name, sev ? " severity " : "",
         sev ? sev : "", act ? " action " : "", act ? act : "");
    return EX_OK;
}

static int cmd_event_reset(int argc, char **argv)
{
    const struct sg_event_def *e;
    struct sg_err err;
    int rc;

    if (argc != 1)
        return EX_USAGE;
    e = event(argv[0]);
    if ((rc = sg_admin_event_reset(adm, e->id, &err)) != SG_OK)
        db_die(rc, &err);
    done("%s %s: defaults (%s, %s)", e->id, e->name,
         sg_severity_name(e->severity), sg_action_name(e->action));
    return EX_OK;
}

int sg_ctl_report(int argc, char **argv, bool json_out);

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        { "policy", cmd_policy }, { "list", cmd_list },
        { "bans", cmd_bans }, { "unban", cmd_unban },
        { "counters", cmd_counters }, { "purge", cmd_purge },
        { "events", cmd_events }, { "event", cmd_event },
        { "event-override", cmd_event_override },
        { "event-reset", cmd_event_reset },
    };
    int i = 1, rc;

    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc)
            db_path = argv[++i];
        else if (strcmp(argv[i], "--wait") == 0 && i + 1 < argc) {
            char *end;
            long w = strtol(argv[++i], &end, 10);

            if (end == argv[i] || *end != '\0' || w < 0 || w > 3600) {
                fprintf(stderr, "smtpguardctl: --wait '%s' is not a number "
                        "of seconds from 0 to 3600\n", argv[i]);
                return EX_USAGE;
            }
            wait_ms = (int) w * 1000;
        }
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return usage(stdout), EX_OK;
        else
            return usage(stderr), EX_USAGE;
    }
    if (i == argc)
        return usage(stderr), EX_USAGE;
    if (strcmp(argv[i], "report") == 0)
        return sg_ctl_report(argc - i - 1, argv + i + 1, json);
    for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
        if (strcmp(argv[i], cmds[k].name) != 0)
            continue;
        open_db();
        rc = cmds[k].fn(argc - i - 1, argv + i + 1);
        sg_admin_close(adm);
        adm = NULL;
        if (rc == EX_USAGE)
            usage(stderr);
        return rc;
    }
    fprintf(stderr, "smtpguardctl: unknown command %s\n", argv[i]);
    usage(stderr);
    return EX_USAGE;
}
