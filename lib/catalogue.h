/*
 * catalogue.h - the event catalogue, generated from events.def
 *
 * ID scheme. Every event has an eight-digit ID that never changes meaning:
 *
 *   0020xxxx  SMTP_SESSION: session limits and mail rates. 00200150-00200152
 *             keep the IDs of the firewall log reference we follow
 *             (max_smtp_sessions_reached, maximum_email_per_minute_reached,
 *             failed_create_new_session); 00200151 is reserved for the
 *             per-sender mail rate, further rate events use 002001[7-9]x.
 *   0021xxxx  RELAY: relay authorization. 0021NNNN carries the number of
 *             the MailEnable code it corresponds to (ME-I0101 local delivery
 *             -> 00210101, ME-E0109 -> 00210109); events without such a code
 *             (directory harvest, relay attempt in the Kerio form) 002102xx.
 *   0023xxxx  DNS: DNSBL/DNSWL and reverse DNS. The last three digits carry
 *             the Isode MTA_SMTP event ID (DNSBLfailed 106 -> 00230106,
 *             rDNSfailed 107 -> 00230107); others 002302xx.
 *   0024xxxx  SPF: Isode IDs again (SPFfail 108 -> 00240108 ... SPFpermerror
 *             114 -> 00240114); others 002402xx.
 *   0029xxxx  SYSTEM: daemon, configuration, database.
 *
 * Thread-safety: the table is constant; overrides are atomics, so any
 * thread may read them while the reloader sets them.
 */
#ifndef SG_CATALOGUE_H
#define SG_CATALOGUE_H

enum sg_severity {      /* the syslog priorities, same numbers */
    SG_SEV_EMERG = 0,
    SG_SEV_ALERT = 1,
    SG_SEV_CRITICAL = 2,
    SG_SEV_ERR = 3,
    SG_SEV_WARNING = 4,
    SG_SEV_NOTICE = 5,
    SG_SEV_INFO = 6,
    SG_SEV_DEBUG = 7,
};

/* What a verdict does to the SMTP session. */
enum sg_action {
    SG_ACT_NONE = 0,    /* informational event, no verdict */
    SG_ACT_ACCEPT,      /* explicitly let through (exemption) */
    SG_ACT_MONITOR,     /* check fired in monitor mode: logged only */
    SG_ACT_SCORE,       /* check fired in score mode: adds to the score */
    SG_ACT_REJECT,      /* 5xx */
    SG_ACT_TEMPFAIL,    /* 4xx */
    SG_ACT_CLOSE,       /* 421: temporary failure and disconnect */
    SG_ACT_COUNT
};

enum sg_facility {
    SG_FAC_SESSION,
    SG_FAC_RELAY,
    SG_FAC_DNS,
    SG_FAC_SPF,
    SG_FAC_SYSTEM,
    SG_FAC_COUNT
};

enum sg_event {
#define SG_EVENT(sym, id, name, fac, sev, act, params, ctx, msg, expl, rec, rev) \
    SG_EV_##sym,
#include "events.def"
#undef SG_EVENT
    SG_EV_COUNT
};

struct sg_event_def {
    enum sg_event event;
    const char *id;
    const char *name;
    enum sg_facility facility;
    enum sg_severity severity;  /* default */
    enum sg_action action;      /* default, in block mode */
    const char *params;         /* space-separated */
    const char *context;        /* space-separated */
    const char *message;        /* template with <param> */
    const char *explanation;
    const char *recommended;
    int revision;
};

const struct sg_event_def *sg_event_def(enum sg_event ev);
/* Look up by ID ("00200150") or name; NULL when unknown. */
const struct sg_event_def *sg_event_find(const char *id_or_name);

const char *sg_severity_name(enum sg_severity sev);
const char *sg_action_name(enum sg_action act);
const char *sg_facility_name(enum sg_facility fac);
const char *sg_facility_title(enum sg_facility fac);
/* Parse names as printed by the functions above; -1 when unknown. */
int sg_severity_parse(const char *s);
int sg_action_parse(const char *s);

/* Effective severity and action: the default or the operator's override. */
enum sg_severity sg_event_severity(enum sg_event ev);
enum sg_action sg_event_action(enum sg_event ev);

/* Set (value >= 0) or clear (-1) an override. Called by the reloader. */
void sg_event_override(enum sg_event ev, int severity, int action);
void sg_event_clear_overrides(void);

#endif /* SG_CATALOGUE_H */
