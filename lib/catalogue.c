/*
 * catalogue.c - the event table built from events.def, name tables and the
 * operator's overrides
 *
 * Thread-safety: overrides are atomic ints; the rest is constant.
 */
#include <stdatomic.h>
#include <string.h>
#include <strings.h>

#include "catalogue.h"

static const struct sg_event_def events[SG_EV_COUNT] = {
#define SG_EVENT(sym, id, name, fac, sev, act, params, ctx, msg, expl, rec, rev) \
    { SG_EV_##sym, id, name, fac, sev, act, params, ctx, msg, expl, rec, rev },
#include "events.def"
#undef SG_EVENT
};

static atomic_int sev_override[SG_EV_COUNT];
static atomic_int act_override[SG_EV_COUNT];
static atomic_int overrides_ready;

static const char *const severity_names[] = {
    "emergency", "alert", "critical", "error",
    "warning", "notice", "info", "debug",
};

static const char *const action_names[SG_ACT_COUNT] = {
    "none", "accept", "monitor", "score", "reject", "tempfail", "close",
};

static const char *const facility_names[SG_FAC_COUNT] = {
    "SMTP_SESSION", "RELAY", "DNS", "SPF", "SYSTEM",
};

static const char *const facility_titles[SG_FAC_COUNT] = {
    "SMTP session limits and rates",
    "Relay authorization",
    "DNS reputation",
    "SPF",
    "Daemon, configuration and database",
};

const struct sg_event_def *sg_event_def(enum sg_event ev)
{
    if ((int) ev < 0 || ev >= SG_EV_COUNT)
        return NULL;
    return &events[ev];
}

const struct sg_event_def *sg_event_find(const char *key)
{
    for (int i = 0; i < SG_EV_COUNT; i++)
        if (strcmp(events[i].id, key) == 0
            || strcasecmp(events[i].name, key) == 0)
            return &events[i];
    return NULL;
}

const char *sg_severity_name(enum sg_severity sev)
{
    if ((int) sev < 0 || sev > SG_SEV_DEBUG)
        return "unknown";
    return severity_names[sev];
}

const char *sg_action_name(enum sg_action act)
{
    if ((int) act < 0 || act >= SG_ACT_COUNT)
        return "unknown";
    return action_names[act];
}

const char *sg_facility_name(enum sg_facility fac)
{
    return (int) fac >= 0 && fac < SG_FAC_COUNT ? facility_names[fac] : "?";
}

const char *sg_facility_title(enum sg_facility fac)
{
    return (int) fac >= 0 && fac < SG_FAC_COUNT ? facility_titles[fac] : "?";
}

int sg_severity_parse(const char *s)
{
    for (int i = 0; i <= SG_SEV_DEBUG; i++)
        if (strcasecmp(s, severity_names[i]) == 0)
            return i;
    if (strcasecmp(s, "err") == 0)
        return SG_SEV_ERR;
    if (strcasecmp(s, "crit") == 0)
        return SG_SEV_CRITICAL;
    return -1;
}

int sg_action_parse(const char *s)
{
    for (int i = 0; i < SG_ACT_COUNT; i++)
        if (strcasecmp(s, action_names[i]) == 0)
            return i;
    return -1;
}

/* init_overrides - mark every override "not set" once */
static void init_overrides(void)
{
    int expected = 0;

    if (atomic_load(&overrides_ready) == 2)
        return;
    if (atomic_compare_exchange_strong(&overrides_ready, &expected, 1)) {
        for (int i = 0; i < SG_EV_COUNT; i++) {
            atomic_store(&sev_override[i], -1);
            atomic_store(&act_override[i], -1);
        }
        atomic_store(&overrides_ready, 2);
    }
    while (atomic_load(&overrides_ready) != 2)
        ;
}

enum sg_severity sg_event_severity(enum sg_event ev)
{
    int v;

    init_overrides();
    v = atomic_load(&sev_override[ev]);
    return v >= 0 ? (enum sg_severity) v : events[ev].severity;
}

enum sg_action sg_event_action(enum sg_event ev)
{
    int v;

    init_overrides();
    v = atomic_load(&act_override[ev]);
    return v >= 0 ? (enum sg_action) v : events[ev].action;
}

void sg_event_override(enum sg_event ev, int severity, int action)
{
    init_overrides();
    atomic_store(&sev_override[ev], severity);
    atomic_store(&act_override[ev], action);
}

void sg_event_clear_overrides(void)
{
    for (int i = 0; i < SG_EV_COUNT; i++)
        sg_event_override((enum sg_event) i, -1, -1);
}
