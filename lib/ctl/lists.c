/*
 * lists.c - smtpguardctl list show|add|remove: the entries of the
 * daemon's lists, each checked as the daemon will read it before it is
 * written (store_admin.c has the tables and their statements)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "ctl.h"
#include "dname.h"
#include "dnsbl.h"
#include "mailaddr.h"

static const struct sg_admin_list *find_list(const char *name)
{
    const struct sg_admin_list *l = sg_admin_list_find(name);

    if (l == NULL)
        die(EX_USAGE, "no list %s (deny, noprocessing, whitelist, ispip, "
            "relay, local-domains, local-addresses, catchalls, dnsbl, "
            "exempt-domains)", name);
    return l;
}

/* normalize - check an entry as the daemon will; the text to store */
static void normalize(enum sg_admin_entry kind, const char *entry,
                      char *out, size_t size)
{
    struct sg_err err;

    switch (kind) {
    case SG_ADMIN_NETWORK: {
        struct sg_cidr net;

        if (sg_cidr_parse(entry, &net, &err) != SG_OK)
            die(EX_REFUSED, "'%s' refused: %s; nothing changed", entry,
                err.msg);
        sg_cidr_format(&net, out, size);
        return;
    }
    case SG_ADMIN_DOMAIN:
        if (sg_dname_normalize(entry, out, size) != SG_OK)
            die(EX_REFUSED, "'%s' refused: not a domain name (letters, "
                "digits, '-', dots; IDNs in their xn-- form); nothing "
                "changed", entry);
        return;
    case SG_ADMIN_ADDRESS:
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
    if ((rc = sg_admin_dnsbl_put(adm, &z, comment, &err)) != SG_OK)
        db_die(rc, &err);
    done("dnsbl: %s weight %s answers '%s' txt %s ipv6 %s", z.zone, weight,
         z.answers, z.txt ? "yes" : "no", z.ipv6 ? "yes" : "no");
    sg_dnsbl_zone_clear(&z);
    return EX_OK;
}

/* list_show - the entries, or for dnsbl every column of the zones */
static int list_show(const struct sg_admin_list *l)
{
    static const char *const heads[] = {
        "ENTRY", "VALUE", "COMMENT", NULL,
    };
    static const char *const zh[] = {
        "ZONE", "WEIGHT", "ANSWERS", "TXT", "IPV6", "COMMENT",
    };
    struct rows r;
    struct sg_err err;

    rows_start(&r, l->entry == SG_ADMIN_ZONE ? zh : heads);
    rows_end(&r, sg_admin_list_show(adm, l, rows_add, &r, &err), &err);
    return EX_OK;
}

int cmd_list(int argc, char **argv)
{
    const struct sg_admin_list *l;
    struct sg_err err;
    char entry[512], value[512];
    int n, rc;

    if (argc < 2)
        return EX_USAGE;
    l = find_list(argv[1]);
    if (strcmp(argv[0], "show") == 0 && argc == 2)
        return list_show(l);
    if (argc < 3)
        return EX_USAGE;
    if (strcmp(argv[0], "add") == 0) {
        if (l->entry == SG_ADMIN_ZONE)
            return list_add_dnsbl(argc - 2, argv + 2);
        if (argc != (l->mapped ? 4 : 3))
            return EX_USAGE;
        normalize(l->entry, argv[2], entry, sizeof(entry));
        if (l->mapped)
            normalize(SG_ADMIN_ADDRESS, argv[3], value, sizeof(value));
        if ((rc = sg_admin_list_add(adm, l, entry, l->mapped ? value : NULL,
                                    &n, &err)) != SG_OK)
            db_die(rc, &err);
        done("%s: added %s%s%s", l->name, entry, l->mapped ? " -> " : "",
             l->mapped ? value : "");
        return EX_OK;
    }
    if (strcmp(argv[0], "remove") == 0 && argc == 3) {
        snprintf(entry, sizeof(entry), "%s", argv[2]);
        if (l->entry != SG_ADMIN_ZONE)
            normalize(l->entry, argv[2], entry, sizeof(entry));
        else
            sg_dname_normalize(argv[2], entry, sizeof(entry));
        if ((rc = sg_admin_list_remove(adm, l, entry, &n, &err)) != SG_OK)
            db_die(rc, &err);
        if (n == 0)
            die(EX_REFUSED, "%s has no entry %s", l->name, entry);
        done("%s: removed %s", l->name, entry);
        return EX_OK;
    }
    return EX_USAGE;
}
