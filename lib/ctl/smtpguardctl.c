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
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "catalogue.h"
#include "config.h"
#include "dname.h"
#include "dnsbl.h"
#include "json.h"
#include "mailaddr.h"
#include "sg_config.h"
#include "store.h"

enum { EX_OK, EX_REFUSED, EX_USAGE, EX_DB };

static bool json;
static int wait_ms = 10000;
static sqlite3 *db;
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

static void die(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

static void die(int code, const char *fmt, ...)
{
    va_list ap;

    fputs("smtpguardctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (db != NULL)
        sqlite3_close(db);
    exit(code);
}

/* ---- database ---- */

static void db_fail(const char *what)
{
    int rc = sqlite3_extended_errcode(db) & 0xff;

    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        die(EX_DB, "%s: the database is locked by another writer (waited "
            "%d s); nothing changed, try again", what, wait_ms / 1000);
    die(EX_DB, "%s: %s", what, sqlite3_errmsg(db));
}

static void open_db(void)
{
    sqlite3_stmt *st;
    int version = -1;

    if (access(db_path, F_OK) < 0)
        die(EX_DB, "no database at %s (smtpguard creates it when it first "
            "starts; -d names another)", db_path);
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL)
        != SQLITE_OK)
        die(EX_DB, "%s: %s", db_path, db ? sqlite3_errmsg(db) : "no memory");
    {
        struct sg_err err;

        if (sg_store_harden(db, &err) != SG_OK)
            die(EX_DB, "%s: %s", db_path, err.msg);
    }
    sqlite3_busy_timeout(db, wait_ms);
    sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL)
        != SQLITE_OK)
        db_fail(db_path);
    if (sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version != SG_SCHEMA_VERSION)
        die(EX_DB, "%s has schema version %d, this smtpguardctl knows %d "
            "(start the matching smtpguard once to migrate it)", db_path,
            version, SG_SCHEMA_VERSION);
}

static sqlite3_stmt *prep(const char *sql)
{
    sqlite3_stmt *st;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        db_fail("query");
    return st;
}

static void exec_sql(const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        db_fail(sql);
}

static const char *col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);

    return t ? (const char *) t : "";
}

/* run - one write statement with text parameters; changes() */
static int run(const char *sql, int n, ...)
{
    sqlite3_stmt *st = prep(sql);
    va_list ap;
    int rc;

    va_start(ap, n);
    for (int i = 1; i <= n; i++) {
        const char *v = va_arg(ap, const char *);

        if (v == NULL)
            sqlite3_bind_null(st, i);
        else
            sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    }
    va_end(ap);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT)
        die(EX_REFUSED, "refused by the database: %s", sqlite3_errmsg(db));
    if (rc != SQLITE_DONE)
        db_fail("write");
    return sqlite3_changes(db);
}

/* ---- output: a table for people, JSON for scripts ---- */

static void json_str(const char *s)
{
    sg_json_str(stdout, s, strlen(s));
}

/*
 * rows - print every row of a query: as aligned columns under `heads`, or
 * as a JSON array of objects keyed by the column names.
 */
static int rows(sqlite3_stmt *st, const char *const *heads)
{
    int n = sqlite3_column_count(st), count = 0, rc;
    char *cells[512][8];
    int width[8] = { 0 };

    if (n > 8)
        n = 8;
    if (json)
        putchar('[');
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (json) {
            printf("%s{", count ? ",\n " : "");
            for (int i = 0; i < n; i++) {
                printf("%s", i ? ", " : "");
                json_str(sqlite3_column_name(st, i));
                putchar(':');
                if (sqlite3_column_type(st, i) == SQLITE_INTEGER)
                    printf("%lld", (long long) sqlite3_column_int64(st, i));
                else if (sqlite3_column_type(st, i) == SQLITE_NULL)
                    printf("null");
                else
                    json_str(col(st, i));
            }
            putchar('}');
        } else if (count < 512) {
            for (int i = 0; i < n; i++) {
                int w;

                cells[count][i] = strdup(col(st, i));
                w = (int) strlen(cells[count][i]);
                if (w > width[i])
                    width[i] = w < 60 ? w : 60;
            }
        } else {
            for (int i = 0; i < n; i++)
                printf("%s%s", i ? "  " : "", col(st, i));
            putchar('\n');
        }
        count++;
    }
    if (rc != SQLITE_DONE)
        db_fail("read");
    if (json) {
        puts("]");
        return count;
    }
    for (int i = 0; i < n && heads != NULL; i++)
        if ((int) strlen(heads[i]) > width[i])
            width[i] = (int) strlen(heads[i]);
    for (int i = 0; i < n && heads != NULL && count > 0; i++)
        printf("%s%-*s", i ? "  " : "", i == n - 1 ? 0 : width[i], heads[i]);
    if (heads != NULL && count > 0)
        putchar('\n');
    for (int r = 0; r < count && r < 512; r++) {
        for (int i = 0; i < n; i++) {
            printf("%s%-*s", i ? "  " : "", i == n - 1 ? 0 : width[i],
                   cells[r][i]);
            free(cells[r][i]);
        }
        putchar('\n');
    }
    return count;
}

static void done(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* done - report a change (people: the sentence; JSON: {"ok": ...}) */
static void done(const char *fmt, ...)
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

    if (argc < 1)
        return EX_USAGE;
    if (strcmp(argv[0], "list") == 0 && argc == 1) {
        sqlite3_stmt *st = prep("SELECT s.name, s.value, i.default_value, "
                                "i.type FROM settings s JOIN setting_info i "
                                "USING (name) ORDER BY s.name COLLATE "
                                "NOCASE");

        rows(st, heads);
        sqlite3_finalize(st);
        return EX_OK;
    }
    if (argc < 2)
        return EX_USAGE;
    d = setting(argv[1]);
    if (strcmp(argv[0], "get") == 0 && argc == 2) {
        sqlite3_stmt *st = prep("SELECT s.name, s.value, i.default_value, "
                                "i.type FROM settings s JOIN setting_info i "
                                "USING (name) WHERE s.name = ?");

        sqlite3_bind_text(st, 1, d->name, -1, SQLITE_STATIC);
        rows(st, heads);
        sqlite3_finalize(st);
        return EX_OK;
    }
    if ((strcmp(argv[0], "set") == 0 && argc == 3) ||
        (strcmp(argv[0], "reset") == 0 && argc == 2)) {
        const char *value = argc == 3 ? argv[2] : d->def;

        if (sg_setting_parse(d, value, &v, &err) != SG_OK)
            die(EX_REFUSED, "%s = '%s' refused: %s; nothing changed",
                d->name, value, err.msg);
        if (run("UPDATE settings SET value = ?, updated = strftime('%s', "
                "'now') WHERE name = ?", 2, value, d->name) == 0)
            run("INSERT INTO settings (name, value) VALUES (?, ?)", 2,
                d->name, value);
        done("%s = %s", d->name, value);
        return EX_OK;
    }
    return EX_USAGE;
}

/* ---- lists ---- */

struct list {
    const char *name;           /* on the command line */
    const char *table;
    const char *list;           /* ip_lists/domain_lists list, or NULL */
    const char *column;         /* the entry column */
    const char *value_column;   /* catchalls mailbox, or NULL */
    char kind;                  /* n network, d domain, a address, z zone */
};

static const struct list lists[] = {
    { "deny", "ip_lists", "denySMTPConnectionsFromAlways", "network", NULL,
      'n' },
    { "noprocessing", "ip_lists", "noProcessingIPs", "network", NULL, 'n' },
    { "whitelist", "ip_lists", "whiteListedIPs", "network", NULL, 'n' },
    { "ispip", "ip_lists", "ispip", "network", NULL, 'n' },
    { "relay", "relay_networks", NULL, "network", NULL, 'n' },
    { "local-domains", "local_domains", NULL, "domain", NULL, 'd' },
    { "local-addresses", "local_addresses", NULL, "address", NULL, 'a' },
    { "catchalls", "catchalls", NULL, "domain", "mailbox", 'd' },
    { "dnsbl", "dnsbl_zones", NULL, "zone", NULL, 'z' },
    { "exempt-domains", "domain_lists", "maxSMTPdomainIPWL", "domain", NULL,
      'd' },
};

static const struct list *find_list(const char *name)
{
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        if (strcmp(lists[i].name, name) == 0)
            return &lists[i];
    die(EX_USAGE, "no list %s (deny, noprocessing, whitelist, ispip, relay, "
        "local-domains, local-addresses, catchalls, dnsbl, exempt-domains)",
        name);
}

/* normalize - check an entry as the daemon will; the text to store */
static void normalize(const struct list *l, const char *entry, char *out,
                      size_t size)
{
    struct sg_err err;

    switch (l->kind) {
    case 'n': {
        struct sg_cidr net;

        if (sg_cidr_parse(entry, &net, &err) != SG_OK)
            die(EX_REFUSED, "'%s' refused: %s; nothing changed", entry,
                err.msg);
        sg_cidr_format(&net, out, size);
        return;
    }
    case 'd':
        if (sg_dname_normalize(entry, out, size) != SG_OK)
            die(EX_REFUSED, "'%s' refused: not a domain name (letters, "
                "digits, '-', dots; IDNs in their xn-- form); nothing "
                "changed", entry);
        return;
    case 'a':
        if (sg_mailaddr_normalize(entry, out, size) != SG_OK ||
            strchr(out, '@') == NULL)
            die(EX_REFUSED, "'%s' refused: not an address of the form "
                "local-part@domain; nothing changed", entry);
        return;
    default:
        snprintf(out, size, "%s", entry);
        return;
    }
}

/* parse_weight - a DNSBL weight, as the dnsbl_zones CHECK allows it */
static long parse_weight(const char *s)
{
    char *end;
    long w;

    errno = 0;
    w = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0)
        die(EX_REFUSED, "weight '%s' is not a whole number; nothing changed",
            s);
    if (w == 0 || w < -1000000 || w > 1000000)
        die(EX_REFUSED, "weight '%s' refused: from -1000000 to 1000000, not "
            "0 (a negative weight makes an allow list); nothing changed", s);
    return w;
}

/* parse_flag - yes/no and its usual spellings */
static bool parse_flag(const char *opt, const char *s)
{
    static const char *const yes[] = { "yes", "on", "true", "1" };
    static const char *const no[] = { "no", "off", "false", "0" };

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return true;
        if (strcasecmp(s, no[i]) == 0)
            return false;
    }
    die(EX_REFUSED, "%s '%s' refused: yes or no; nothing changed", opt, s);
}

/*
 * list add dnsbl ZONE [WEIGHT [ANSWERS]] | ZONE=ANSWERS*WEIGHT, then
 * [--weight N] [--answers A] [--txt yes|no] [--ipv6 yes|no]
 * [--comment TEXT]: every column of dnsbl_zones. The row is replaced
 * (what is not given takes its default), except that the comment stays
 * unless --comment is given.
 */
static int list_add_dnsbl(int argc, char **argv)
{
    const char *pos[3], *weight_s = NULL, *answers = NULL, *comment = NULL;
    bool txt = true, ipv6 = true;
    struct sg_dnsbl_zone z;
    struct sg_err err;
    char weight[24];
    int npos = 0, rc;

    for (int i = 0; i < argc; i++) {
        const char *opt = argv[i];

        if (strncmp(opt, "--", 2) != 0) {
            if (npos == 3)
                return EX_USAGE;
            pos[npos++] = opt;
            continue;
        }
        if (i + 1 == argc)
            die(EX_USAGE, "%s needs a value", opt);
        if (strcmp(opt, "--weight") == 0 && weight_s == NULL)
            weight_s = argv[++i];
        else if (strcmp(opt, "--answers") == 0 && answers == NULL)
            answers = argv[++i];
        else if (strcmp(opt, "--txt") == 0)
            txt = parse_flag(opt, argv[++i]);
        else if (strcmp(opt, "--ipv6") == 0)
            ipv6 = parse_flag(opt, argv[++i]);
        else if (strcmp(opt, "--comment") == 0 && comment == NULL)
            comment = argv[++i];
        else
            die(EX_USAGE, "list add dnsbl: unknown or repeated option %s",
                opt);
    }
    if (npos == 0)
        return EX_USAGE;
    if ((npos >= 2 && weight_s != NULL) || (npos == 3 && answers != NULL))
        die(EX_USAGE, "list add dnsbl: weight or answers given twice");
    if (npos >= 2)
        weight_s = pos[1];
    if (npos == 3)
        answers = pos[2];
    if (comment != NULL) {
        for (const char *c = comment; *c; c++)
            if ((unsigned char) *c < 0x20 || *c == 0x7f)
                die(EX_REFUSED, "comment refused: it holds a control "
                    "character; nothing changed");
        if (strlen(comment) > 200)
            die(EX_REFUSED, "comment refused: longer than 200 bytes; "
                "nothing changed");
    }
    if (npos == 1 && (strchr(pos[0], '=') || strchr(pos[0], '*'))) {
        if (weight_s != NULL || answers != NULL)
            die(EX_USAGE, "list add dnsbl: %s already says the answers and "
                "the weight", pos[0]);
        rc = sg_dnsbl_site_parse(&z, pos[0], &err);
        z.txt = txt;
        z.ipv6 = ipv6;
    } else {
        rc = sg_dnsbl_zone_init(&z, pos[0], weight_s ? parse_weight(weight_s)
                                : 1, answers ? answers : "", txt, ipv6,
                                &err);
    }
    if (rc != SG_OK)
        die(EX_REFUSED, "'%s' refused: %s; nothing changed", pos[0],
            err.msg);
    snprintf(weight, sizeof(weight), "%ld", z.weight);
    run("INSERT INTO dnsbl_zones (zone, weight, answers, txt, ipv6, comment) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (zone) DO UPDATE SET weight = "
        "excluded.weight, answers = excluded.answers, txt = excluded.txt, "
        "ipv6 = excluded.ipv6, comment = coalesce(excluded.comment, "
        "comment)", 6, z.zone, weight, z.answers, z.txt ? "1" : "0",
        z.ipv6 ? "1" : "0", comment);
    done("dnsbl: %s weight %s answers '%s' txt %s ipv6 %s", z.zone, weight,
         z.answers, z.txt ? "yes" : "no", z.ipv6 ? "yes" : "no");
    sg_dnsbl_zone_clear(&z);
    return EX_OK;
}

static int cmd_list(int argc, char **argv)
{
    const struct list *l;
    char sql[512], entry[512], value[512];

    if (argc < 2)
        return EX_USAGE;
    l = find_list(argv[1]);
    if (strcmp(argv[0], "show") == 0 && argc == 2) {
        sqlite3_stmt *st;
        static const char *const heads[] = {
            "ENTRY", "VALUE", "COMMENT", NULL,
        };

        if (l->kind == 'z')
            snprintf(sql, sizeof(sql), "SELECT zone, weight, answers, txt, "
                     "ipv6, coalesce(comment, '') AS comment FROM "
                     "dnsbl_zones ORDER BY rowid");
        else
            snprintf(sql, sizeof(sql), "SELECT %s AS entry, %s AS value, "
                     "coalesce(comment, '') AS comment FROM %s%s ORDER BY 1",
                     l->column, l->value_column ? l->value_column : "''",
                     l->table, l->list ? " WHERE list = ?" : "");
        st = prep(sql);
        if (l->list)
            sqlite3_bind_text(st, 1, l->list, -1, SQLITE_STATIC);
        if (l->kind == 'z') {
            static const char *const zh[] = {
                "ZONE", "WEIGHT", "ANSWERS", "TXT", "IPV6", "COMMENT",
            };
            rows(st, zh);
        } else {
            rows(st, heads);
        }
        sqlite3_finalize(st);
        return EX_OK;
    }
    if (argc < 3)
        return EX_USAGE;
    if (strcmp(argv[0], "add") == 0) {
        if (l->kind == 'z')
            return list_add_dnsbl(argc - 2, argv + 2);
        if (argc != (l->value_column ? 4 : 3))
            return EX_USAGE;
        normalize(l, argv[2], entry, sizeof(entry));
        if (l->value_column != NULL) {
            const struct list addr = { "", "", NULL, "", NULL, 'a' };

            normalize(&addr, argv[3], value, sizeof(value));
        }
        if (l->list)
            snprintf(sql, sizeof(sql), "INSERT OR IGNORE INTO %s (list, %s) "
                     "VALUES (?, ?)", l->table, l->column);
        else if (l->value_column)
            snprintf(sql, sizeof(sql), "INSERT INTO %s (%s, %s) VALUES (?, ?) "
                     "ON CONFLICT DO UPDATE SET %s = excluded.%s", l->table,
                     l->column, l->value_column, l->value_column,
                     l->value_column);
        else
            snprintf(sql, sizeof(sql), "INSERT OR IGNORE INTO %s (%s) "
                     "VALUES (?)", l->table, l->column);
        if (l->list)
            run(sql, 2, l->list, entry);
        else if (l->value_column)
            run(sql, 2, entry, value);
        else
            run(sql, 1, entry);
        done("%s: added %s%s%s", l->name, entry, l->value_column ? " -> "
             : "", l->value_column ? value : "");
        return EX_OK;
    }
    if (strcmp(argv[0], "remove") == 0 && argc == 3) {
        int n;

        snprintf(entry, sizeof(entry), "%s", argv[2]);
        if (l->kind != 'z')
            normalize(l, argv[2], entry, sizeof(entry));
        else
            sg_dname_normalize(argv[2], entry, sizeof(entry));
        snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE %s = ? COLLATE "
                 "NOCASE%s", l->table, l->column,
                 l->list ? " AND list = ?" : "");
        n = l->list ? run(sql, 2, entry, l->list) : run(sql, 1, entry);
        if (n == 0)
            die(EX_REFUSED, "%s has no entry %s", l->name, entry);
        done("%s: removed %s", l->name, entry);
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
    sqlite3_stmt *st;

    (void) argv;
    if (argc != 0)
        return EX_USAGE;
    st = prep("SELECT b.kind, b.key, b.reason, coalesce(c.name, '') AS "
              "event, datetime(b.expires, 'unixepoch') AS expires, "
              "b.expires - strftime('%s', 'now') AS remaining FROM bans b "
              "LEFT JOIN catalogue c ON c.id = b.reason WHERE b.expires > "
              "strftime('%s', 'now') ORDER BY b.expires");
    if (rows(st, heads) == 0 && !json)
        puts("no bans in force");
    sqlite3_finalize(st);
    return EX_OK;
}

static int cmd_unban(int argc, char **argv)
{
    int n;

    if (argc != 1)
        return EX_USAGE;
    n = run("DELETE FROM bans WHERE key = ? COLLATE NOCASE", 1, argv[0]);
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
    sqlite3_stmt *st;

    if (argc != 1)
        return EX_USAGE;
    /* The keys as the daemon builds them (sql/schema.sql, rate_windows):
     * whole keys, so that no character of KEY is a pattern and
     * "2001:db8::1" does not find the counters of "1". */
    st = prep("SELECT 'window' AS what, key, count, datetime(window_start, "
              "'unixepoch') AS since, window_seconds FROM rate_windows "
              "WHERE key COLLATE NOCASE IN ('conn:' || ?1, 'harvest:' || ?1, "
              "'mail:sender:' || ?1, 'mail:auth:' || ?1, 'mail:ip:' || ?1, "
              "'rcpt:sender:' || ?1, 'rcpt:auth:' || ?1, 'rcpt:ip:' || ?1) "
              "UNION ALL SELECT 'subnet', domain || ' ' || subnet, 1, "
              "datetime(last_seen, 'unixepoch'), NULL FROM domain_ip "
              "WHERE domain = ?1 COLLATE NOCASE "
              "UNION ALL SELECT 'ban ' || kind, key || ' ' || reason, NULL, "
              "datetime(created, 'unixepoch'), expires - created FROM bans "
              "WHERE key = ?1 COLLATE NOCASE");
    sqlite3_bind_text(st, 1, argv[0], -1, SQLITE_STATIC);
    if (rows(st, heads) == 0 && !json)
        printf("nothing counted for %s\n", argv[0]);
    sqlite3_finalize(st);
    return EX_OK;
}

static int cmd_purge(int argc, char **argv)
{
    int bans, windows, subnets;

    (void) argv;
    if (argc != 0)
        return EX_USAGE;
    exec_sql("BEGIN IMMEDIATE");
    bans = run("DELETE FROM bans WHERE expires <= strftime('%s', 'now')", 0);
    windows = run("DELETE FROM rate_windows WHERE window_start + "
                  "window_seconds <= strftime('%s', 'now')", 0);
    subnets = run("DELETE FROM domain_ip WHERE last_seen < strftime('%s', "
                  "'now') - 31536000", 0);
    exec_sql("COMMIT");
    done("purged %d expired ban%s, %d counting window%s, %d subnet record%s",
         bans, bans == 1 ? "" : "s", windows, windows == 1 ? "" : "s",
         subnets, subnets == 1 ? "" : "s");
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
    sqlite3_stmt *st;

    (void) argv;
    if (argc != 0)
        return EX_USAGE;
    st = prep("SELECT id, name, coalesce(severity_override, severity) AS "
              "severity, coalesce(action_override, action) AS action, "
              "CASE WHEN severity_override IS NULL AND action_override IS "
              "NULL THEN '' ELSE 'yes' END AS override FROM catalogue "
              "ORDER BY id");
    rows(st, heads);
    sqlite3_finalize(st);
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
    sqlite3_stmt *st;
    char rev[16];
    const char *sev = NULL, *act = NULL;

    if (argc != 1)
        return EX_USAGE;
    e = event(argv[0]);
    st = prep("SELECT severity_override, action_override FROM catalogue "
              "WHERE id = ?");
    sqlite3_bind_text(st, 1, e->id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        sev = sqlite3_column_type(st, 0) == SQLITE_NULL ? NULL
            : strdup(col(st, 0));
        act = sqlite3_column_type(st, 1) == SQLITE_NULL ? NULL
            : strdup(col(st, 1));
    }
    sqlite3_finalize(st);
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
    free((void *) sev);
    free((void *) act);
    return EX_OK;
}

static int cmd_event_override(int argc, char **argv)
{
    const struct sg_event_def *e;
    const char *sev = NULL, *act = NULL;

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
    exec_sql("BEGIN IMMEDIATE");
    if (sev != NULL)
        run("UPDATE catalogue SET severity_override = ? WHERE id = ?", 2,
            sg_severity_name((enum sg_severity) sg_severity_parse(sev)),
            e->id);
    if (act != NULL)
        run("UPDATE catalogue SET action_override = ? WHERE id = ?", 2,
            act, e->id);
    exec_sql("COMMIT");
    done("%s %s:%s%s%s%s", e->id, e->name, sev ? " severity " : "",
         sev ? sev : "", act ? " action " : "", act ? act : "");
    return EX_OK;
}

static int cmd_event_reset(int argc, char **argv)
{
    const struct sg_event_def *e;

    if (argc != 1)
        return EX_USAGE;
    e = event(argv[0]);
    run("UPDATE catalogue SET severity_override = NULL, action_override = "
        "NULL WHERE id = ?", 1, e->id);
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
        sqlite3_close(db);
        if (rc == EX_USAGE)
            usage(stderr);
        return rc;
    }
    fprintf(stderr, "smtpguardctl: unknown command %s\n", argv[i]);
    usage(stderr);
    return EX_USAGE;
}
