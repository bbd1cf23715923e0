/*
 * settings.h - the settings registry: every setting of settings.def, its
 * type, default and range, how its text is parsed and written back
 *
 * Constant tables: thread-safe.
 */
#ifndef SG_SETTINGS_H
#define SG_SETTINGS_H

#include <stddef.h>

#include "sg.h"

enum sg_setting_type {
    SG_T_MODE,          /* 0 off, 1 block, 2 monitor, 3 score */
    SG_T_UINT,          /* decimal integer */
    SG_T_SECONDS,       /* decimal seconds, or with suffix s m h d */
    SG_T_SEVERITY,      /* severity name or 0-7 */
    SG_T_BOOL,          /* 0/1, yes/no, on/off, true/false */
    SG_T_CHOICE,        /* one of the names of sg_setting_choices() */
    SG_T_TEXT,          /* a short string, checked per setting */
};

#define SG_SETTING_TEXT_MAX 256 /* longest SG_T_TEXT value, NUL included */

enum sg_mode {
    SG_MODE_OFF = 0,
    SG_MODE_BLOCK = 1,
    SG_MODE_MONITOR = 2,
    SG_MODE_SCORE = 3,
};

/* dnsCheckStage */
enum sg_dns_stage {
    SG_DNS_STAGE_CONNECT = 0,
    SG_DNS_STAGE_HELO = 1,
    SG_DNS_STAGE_MAIL = 2,
    SG_DNS_STAGE_RCPT = 3,
};

/* spf*Action */
enum sg_spf_action {
    SG_SPF_ACT_ACCEPT = 0,
    SG_SPF_ACT_REJECT = 1,
    SG_SPF_ACT_TEMPFAIL = 2,
};

/* relayPolicy */
enum sg_relay_policy {
    SG_RELAY_POLICY_RULES = 0,
    SG_RELAY_POLICY_ALLOW = 1,
    SG_RELAY_POLICY_DENY = 2,
};

enum sg_setting {
#define SG_SETTING(field, name, type, def, min, max, doc) SG_SET_##field,
#include "settings.def"
#undef SG_SETTING
    SG_SET_COUNT
};

struct sg_setting_def {
    enum sg_setting id;
    const char *name;
    enum sg_setting_type type;
    const char *def;
    long min;
    long max;
    const char *doc;
};

const struct sg_setting_def *sg_setting_def(enum sg_setting id);
const struct sg_setting_def *sg_setting_find(const char *name);
const char *sg_setting_type_name(enum sg_setting_type type);
/* The names of a SG_T_CHOICE setting, NULL-terminated (value = index). */
const char *const *sg_setting_choices(const struct sg_setting_def *def);

/* Parse and range-check a setting's text; SG_EINVAL with a reason. */
int sg_setting_parse(const struct sg_setting_def *def, const char *text,
                     long *out, struct sg_err *err);
/*
 * Check the text of a SG_T_TEXT setting (length, characters, and what the
 * setting needs: addresses for dnsServers, a host name for authservId).
 */
int sg_setting_check_text(const struct sg_setting_def *def, const char *text,
                          struct sg_err *err);
/* Format a value back as text ("info" for severities). */
void sg_setting_format(const struct sg_setting_def *def, long value,
                       char *buf, size_t size);

#endif /* SG_SETTINGS_H */
