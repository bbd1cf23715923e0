/*
 * settings.c - the settings registry built from settings.def: lookup by
 * name, the choice names, parsing, range checks and formatting
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "catalogue.h"
#include "dname.h"
#include "dns.h"
#include "settings.h"

static const struct sg_setting_def settings[SG_SET_COUNT] = {
#define SG_SETTING(field, name, type, def, min, max, doc) \
    { SG_SET_##field, name, type, def, min, max, doc },
#include "settings.def"
#undef SG_SETTING
};

static const char *const relay_policy_names[] = {
    "rules", "allow", "deny", NULL,
};
static const char *const db_fail_names[] = { "open", "tempfail", NULL };
static const char *const dns_stage_names[] = {
    "connect", "helo", "mail", "rcpt", NULL,
};
static const char *const spf_action_names[] = {
    "accept", "reject", "tempfail", NULL,
};

const struct sg_setting_def *sg_setting_def(enum sg_setting id)
{
    return (int) id >= 0 && id < SG_SET_COUNT ? &settings[id] : NULL;
}

/* The settings by name, for a binary search: a reload looks up every
 * row of the settings table. */
static const struct sg_setting_def *by_name[SG_SET_COUNT];
static pthread_once_t by_name_once = PTHREAD_ONCE_INIT;

static int def_cmp(const void *a, const void *b)
{
    return strcmp((*(const struct sg_setting_def *const *) a)->name,
                  (*(const struct sg_setting_def *const *) b)->name);
}

static void by_name_init(void)
{
    for (int i = 0; i < SG_SET_COUNT; i++)
        by_name[i] = &settings[i];
    qsort(by_name, SG_SET_COUNT, sizeof(by_name[0]), def_cmp);
}

const struct sg_setting_def *sg_setting_find(const char *name)
{
    struct sg_setting_def key = { .name = name };
    const struct sg_setting_def *kp = &key, *const *hit;

    pthread_once(&by_name_once, by_name_init);
    hit = bsearch(&kp, by_name, SG_SET_COUNT, sizeof(by_name[0]), def_cmp);
    return hit ? *hit : NULL;
}

const char *sg_setting_type_name(enum sg_setting_type type)
{
    switch (type) {
    case SG_T_MODE:
        return "mode";
    case SG_T_UINT:
        return "integer";
    case SG_T_SECONDS:
        return "seconds";
    case SG_T_SEVERITY:
        return "severity";
    case SG_T_BOOL:
        return "boolean";
    case SG_T_CHOICE:
        return "choice";
    case SG_T_TEXT:
        return "text";
    }
    return "?";
}

const char *const *sg_setting_choices(const struct sg_setting_def *def)
{
    if (def->type != SG_T_CHOICE)
        return NULL;
    switch (def->id) {
    case SG_SET_relay_policy:
        return relay_policy_names;
    case SG_SET_dns_stage:
        return dns_stage_names;
    case SG_SET_db_fail_mode:
        return db_fail_names;
    case SG_SET_spf_fail_action:
    case SG_SET_spf_softfail_action:
    case SG_SET_spf_neutral_action:
    case SG_SET_spf_none_action:
    case SG_SET_spf_temperror_action:
    case SG_SET_spf_permerror_action:
        return spf_action_names;
    default:
        return NULL;
    }
}

/* parse_word - a boolean or choice setting given by name */
static int parse_word(const struct sg_setting_def *def, const char *text,
                      long *out, struct sg_err *err)
{
    static const char *const bools[] = {
        "0", "no", "off", "false", "1", "yes", "on", "true", NULL,
    };
    const char *const *names = def->type == SG_T_BOOL ? bools
        : sg_setting_choices(def);
    char list[128] = "";

    for (int i = 0; names != NULL && names[i] != NULL; i++) {
        if (strcasecmp(text, names[i]) == 0) {
            *out = def->type == SG_T_BOOL ? (i >= 4) : i;
            return SG_OK;
        }
        if (def->type == SG_T_CHOICE || i == 0 || i == 4)
            snprintf(list + strlen(list), sizeof(list) - strlen(list),
                     "%s%s", list[0] ? ", " : "", names[i]);
    }
    if (def->type == SG_T_BOOL)
        sg_err_set(err, "not a boolean (yes/no, on/off, true/false, 1/0)");
    else
        sg_err_set(err, "not one of: %s", list);
    return SG_EINVAL;
}

/* parse_number - a decimal integer with an optional time unit suffix */
static int parse_number(const char *text, int allow_unit, long *out,
                        struct sg_err *err)
{
    const char *p = text;
    char *end;
    long v, mult = 1;

    while (isspace((unsigned char) *p))
        p++;
    if (!isdigit((unsigned char) *p)) {
        sg_err_set(err, "not a non-negative whole number");
        return SG_EINVAL;
    }
    errno = 0;
    v = strtol(p, &end, 10);
    if (errno == ERANGE) {
        sg_err_set(err, "number too large");
        return SG_EINVAL;
    }
    if (allow_unit && *end != '\0' && end[1] == '\0') {
        switch (*end) {
        case 's': mult = 1; end++; break;
        case 'm': mult = 60; end++; break;
        case 'h': mult = 3600; end++; break;
        case 'd': mult = 86400; end++; break;
        default: break;
        }
    }
    while (isspace((unsigned char) *end))
        end++;
    if (*end != '\0') {
        sg_err_set(err, allow_unit ? "trailing characters (a number of "
                   "seconds, optionally with s, m, h or d)"
                   : "trailing characters after the number");
        return SG_EINVAL;
    }
    if (v > 0 && mult > 1 && v > __LONG_MAX__ / mult) {
        sg_err_set(err, "number too large");
        return SG_EINVAL;
    }
    *out = v * mult;
    return SG_OK;
}

int sg_setting_parse(const struct sg_setting_def *def, const char *text,
                     long *out, struct sg_err *err)
{
    long v;
    int rc;

    if (text == NULL) {
        sg_err_set(err, "no value (NULL)");
        return SG_EINVAL;
    }
    if (def->type == SG_T_SEVERITY && !isdigit((unsigned char) *text)) {
        int sev = sg_severity_parse(text);

        if (sev < 0) {
            sg_err_set(err, "not a severity (emergency, alert, critical, "
                       "error, warning, notice, info, debug)");
            return SG_EINVAL;
        }
        *out = sev;
        return SG_OK;
    }
    if (def->type == SG_T_BOOL || def->type == SG_T_CHOICE)
        return parse_word(def, text, out, err);
    if (def->type == SG_T_TEXT) {
        *out = 0;
        return sg_setting_check_text(def, text, err);
    }
    rc = parse_number(text, def->type == SG_T_SECONDS, &v, err);
    if (rc != SG_OK)
        return rc;
    if (v < def->min || v > def->max) {
        if (def->type == SG_T_MODE)
            sg_err_set(err, "mode out of range %ld-%ld (0 off, 1 block, "
                       "2 monitor%s)", def->min, def->max,
                       def->max >= 3 ? ", 3 score" : "");
        else
            sg_err_set(err, "out of range %ld-%ld", def->min, def->max);
        return SG_EINVAL;
    }
    *out = v;
    return SG_OK;
}

void sg_setting_format(const struct sg_setting_def *def, long value,
                       char *buf, size_t size)
{
    const char *const *names = sg_setting_choices(def);

    if (def->type == SG_T_SEVERITY)
        snprintf(buf, size, "%s", sg_severity_name((enum sg_severity) value));
    else if (def->type == SG_T_BOOL)
        snprintf(buf, size, "%s", value ? "yes" : "no");
    else if (names != NULL && value >= def->min && value <= def->max)
        snprintf(buf, size, "%s", names[value]);
    else
        snprintf(buf, size, "%ld", value);
}

int sg_setting_check_text(const struct sg_setting_def *def, const char *text,
                          struct sg_err *err)
{
    size_t n = strlen(text);

    if (n >= SG_SETTING_TEXT_MAX) {
        sg_err_set(err, "longer than %d characters", SG_SETTING_TEXT_MAX - 1);
        return SG_EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        if (text[i] < 0x20 || text[i] > 0x7e) {
            sg_err_set(err, "control or non-ASCII character at offset %zu",
                       i);
            return SG_EINVAL;
        }
    if (def->id == SG_SET_dns_servers) {
        size_t count;

        return sg_dns_parse_servers(text, NULL, SG_DNS_SERVERS_MAX, &count,
                                    err);
    } else if (def->id == SG_SET_authserv_id && n > 0) {
        char norm[SG_SETTING_TEXT_MAX];

        if (sg_dname_normalize(text, norm, sizeof(norm)) != SG_OK) {
            sg_err_set(err, "not a host name");
            return SG_EINVAL;
        }
    }
    return SG_OK;
}
