/*
 * spf.c - libspf2 behind our own DNS layer and record checks (see spf.h):
 * one evaluation, its result and explanation, the in-process asker, the
 * Received-SPF and Authentication-Results values
 *
 * The DNS layer libspf2 asks through is spfdns.c; the macros we expand
 * ourselves (explanations, %{p}, what libspf2 gets wrong) are spfmacro.c.
 * All three share the evaluation's context (spf_int.h).
 */
#include <netinet/in.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include "dname.h"
#include "spf.h"
#include "spf_int.h"
#include "spfrecord.h"


const char *sg_spf_result_name(enum sg_spf_result r)
{
    static const char *const names[] = {
        "none", "neutral", "pass", "fail", "softfail", "temperror",
        "permerror",
    };

    return (unsigned) r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

/* libspf2 logs through globals; its error handler must not return. */
static void quiet(const char *file, int line, const char *msg)
{
    (void) file;
    (void) line;
    (void) msg;
}

static void fatal(const char *file, int line, const char *msg)
    __attribute__((noreturn));

static void fatal(const char *file, int line, const char *msg)
{
    fprintf(stderr, "smtpguard: libspf2 %s:%d: %s\n", file, line, msg);
    abort();
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_libspf2(void)
{
    SPF_error_handler = fatal;
    SPF_warning_handler = quiet;
    SPF_info_handler = quiet;
    SPF_debug_handler = quiet;
}

static enum sg_spf_result map(SPF_result_t r)
{
    switch (r) {
    case SPF_RESULT_PASS:
        return SG_SPF_PASS;
    case SPF_RESULT_FAIL:
        return SG_SPF_FAIL;
    case SPF_RESULT_SOFTFAIL:
        return SG_SPF_SOFTFAIL;
    case SPF_RESULT_NEUTRAL:
        return SG_SPF_NEUTRAL;
    case SPF_RESULT_NONE:
        return SG_SPF_NONE;
    case SPF_RESULT_TEMPERROR:
        return SG_SPF_TEMPERROR;
    default:
        return SG_SPF_PERMERROR;
    }
}

/* identity - what is checked: the sender, or postmaster@HELO */
static bool identity(const struct sg_mailaddr *sender, const char *helo,
                     struct sg_spf_outcome *out, char *from, size_t size)
{
    /* The identity is named in the headers even when it cannot be
     * checked ("domain of a@b does not provide an SPF record"). */
    if (sender != NULL && !sender->null) {
        snprintf(from, size, "%s%s%s", sender->local,
                 *sender->domain != '\0' ? "@" : "", sender->domain);
        sg_strlcpy(out->identity, from, sizeof(out->identity));
        if (!sender->domain_ok || !sg_dname_fqdn_ok(sender->domain) ||
            strlen(sender->local) > 64)
            return false;
        sg_strlcpy(out->domain, sender->domain, sizeof(out->domain));
        return true;
    }
    out->helo_identity = true;
    if (helo != NULL)
        sg_strlcpy(out->identity, helo, sizeof(out->identity));
    if (!sg_dname_fqdn_ok(helo))
        return false;
    snprintf(from, size, "postmaster@%s", helo);
    sg_strlcpy(out->identity, helo, sizeof(out->identity));
    sg_strlcpy(out->domain, helo, sizeof(out->domain));
    return true;
}

/* fixed_explanation - libspf2's default explanation (used when a record
 * has no exp=): a text without macros, so nothing is expanded. */
static bool fixed_explanation(SPF_server_t *srv)
{
    SPF_response_t *resp = NULL;
    SPF_errcode_t err = SPF_server_set_explanation(srv, "SPF fail", &resp);

    if (resp != NULL)
        SPF_response_free(resp);
    return err == SPF_E_SUCCESS;
}

void sg_spf_eval(const struct sg_spf_asker *asker,
                 const struct sg_addr *client, const char *helo,
                 const struct sg_mailaddr *sender, const char *receiver,
                 struct sg_spf_outcome *out)
{
    SPF_dns_server_t layer;
    SPF_server_t *srv = NULL;
    SPF_request_t *req = NULL;
    SPF_response_t *resp = NULL;
    struct ctx c;
    char from[SG_MAILADDR_KEYMAX + 16];

    pthread_once(&once, init_libspf2);
    memset(out, 0, sizeof(*out));
    memset(&c, 0, sizeof(c));
    c.out = out;
    c.asker = asker;
    c.client_v4 = client->family == AF_INET;
    memcpy(c.client_addr, client->b, c.client_v4 ? 4 : 16);
    sg_addr_format(client, out->ip, sizeof(out->ip));
    if (helo != NULL)
        sg_strlcpy(out->helo, helo, sizeof(out->helo));
    if (!identity(sender, helo, out, from, sizeof(from))) {
        out->result = SG_SPF_NONE;      /* RFC 7208 2.3, 4.3 */
        sg_strlcpy(out->reason, "no usable domain", sizeof(out->reason));
        return;
    }
    sg_dname_reverse(client, client->family == AF_INET ? "in-addr.arpa"
                        : "ip6.arpa", c.rev, sizeof(c.rev));
    memset(&layer, 0, sizeof(layer));
    layer.lookup = sg_spfi_lookup;
    layer.get_exp = sg_spfi_get_exp;
    layer.name = "smtpguard";
    layer.hook = &c;
    if ((srv = SPF_server_new_dns(&layer, 0)) == NULL ||
        !fixed_explanation(srv) || (req = SPF_request_new(srv)) == NULL) {
        out->result = SG_SPF_TEMPERROR;
        sg_strlcpy(out->reason, "out of memory", sizeof(out->reason));
        goto done;
    }
    c.req = req;
    /* Our own limits are the ones that count (over the whole check). */
    SPF_server_set_max_dns_mech(srv, 100);
    SPF_server_set_max_dns_mx(srv, MAX_SUBNAMES);
    SPF_server_set_max_dns_ptr(srv, MAX_SUBNAMES);
    if (client->family == AF_INET) {
        struct in_addr in;

        memcpy(&in, client->b, 4);
        SPF_request_set_ipv4(req, in);
    } else {
        struct in6_addr in6;

        memcpy(&in6, client->b, 16);
        SPF_request_set_ipv6(req, in6);
    }
    /* libspf2 gives up on a record whose %{h} expands to no domain; RFC
     * 7208 7.3 says such a name matches nothing: a name that cannot. */
    SPF_request_set_helo_dom(req, helo != NULL && sg_dname_fqdn_ok(helo)
                             ? helo : "helo.sg-not-a-domain.invalid");
    SPF_request_set_env_from(req, from);
    sg_spfi_macro_values(&c, client, helo, from);
    SPF_request_query_mailfrom(req, &resp);
    out->result = resp ? map(SPF_response_result(resp)) : SG_SPF_TEMPERROR;
    if (c.perm) {
        out->result = SG_SPF_PERMERROR;
        sg_strlcpy(out->reason, c.reason, sizeof(out->reason));
    } else if (c.temp) {
        out->result = SG_SPF_TEMPERROR;
        sg_strlcpy(out->reason, "DNS lookup failed or timed out",
                   sizeof(out->reason));
    } else if (out->result == SG_SPF_PERMERROR) {
        sg_strlcpy(out->reason, "record not usable", sizeof(out->reason));
    }
    if (out->result == SG_SPF_FAIL && sg_spfi_fetch_exp(&c))
        sg_spfi_explanation(&c, client, sender && !sender->null ? sender->local
                    : "postmaster", receiver);
done:
    out->dns_terms = c.terms;
    if (resp != NULL)
        SPF_response_free(resp);
    if (req != NULL)
        SPF_request_free(req);
    if (srv != NULL)
        SPF_server_free(srv);
}

/* The in-process asker: one batch of the shared resolver per check. */
struct batch_asker {
    struct sg_dns_batch *batch;
    int64_t deadline;
};

static const struct sg_dns_answer *batch_ask(void *arg, const char *name,
                                             uint16_t type, bool *refused)
{
    struct batch_asker *b = arg;
    int h = sg_dns_query(b->batch, name, type);

    *refused = h < 0;
    if (h < 0)
        return NULL;
    sg_dns_wait(b->batch, h, b->deadline);
    return sg_dns_result(b->batch, h);
}

void sg_spf_check(struct sg_dns *dns, int64_t deadline,
                  const struct sg_addr *client, const char *helo,
                  const struct sg_mailaddr *sender, const char *receiver,
                  struct sg_spf_outcome *out)
{
    struct batch_asker b = { sg_dns_batch_new(dns), deadline };
    struct sg_spf_asker asker = { batch_ask, &b };

    if (b.batch == NULL) {
        memset(out, 0, sizeof(*out));
        out->result = SG_SPF_TEMPERROR;
        sg_strlcpy(out->reason, "out of memory", sizeof(out->reason));
        return;
    }
    sg_spf_eval(&asker, client, helo, sender, receiver, out);
    sg_dns_batch_free(b.batch);
}

/* quoted - a quoted-string value (RFC 5322), specials escaped */
static void quoted(char *buf, size_t size, const char *v)
{
    size_t o = 0;

    if (size < 3)
        return;
    buf[o++] = '"';
    for (size_t i = 0; v[i] != '\0' && o + 3 < size; i++) {
        unsigned char c = (unsigned char) v[i];

        if (c < ' ' || c > '~')
            continue;
        if (c == '"' || c == '\\')
            buf[o++] = '\\';
        buf[o++] = (char) c;
    }
    buf[o++] = '"';
    buf[o] = '\0';
}

void sg_spf_received(const struct sg_spf_outcome *o, const char *receiver,
                     char *buf, size_t size)
{
    char comment[1200], from[SG_MAILADDR_KEYMAX + 4], helo[300];
    const char *who = o->helo_identity ? "" : "domain of ";

    switch (o->result) {
    case SG_SPF_PASS:
        snprintf(comment, sizeof(comment), "%s: %s%s designates %s as "
                 "permitted sender", receiver, who, o->identity, o->ip);
        break;
    case SG_SPF_FAIL:
        snprintf(comment, sizeof(comment), "%s: %s%s does not designate %s "
                 "as permitted sender", receiver, who, o->identity, o->ip);
        break;
    case SG_SPF_SOFTFAIL:
        snprintf(comment, sizeof(comment), "%s: %s%s discourages use of %s "
                 "as permitted sender", receiver, who, o->identity, o->ip);
        break;
    case SG_SPF_NEUTRAL:
        snprintf(comment, sizeof(comment), "%s: %s is neither permitted nor "
                 "denied by %s%s", receiver, o->ip, who, o->identity);
        break;
    case SG_SPF_NONE:
        snprintf(comment, sizeof(comment), "%s: %s%s does not provide an "
                 "SPF record", receiver, who, o->identity);
        break;
    default:
        snprintf(comment, sizeof(comment), "%s: %s in processing %s%s",
                 receiver, o->result == SG_SPF_TEMPERROR ? "temporary error"
                 : "permanent error", who, o->identity);
        break;
    }
    for (char *p = comment; *p; p++)
        if (*p == '(' || *p == ')' || *p == '\\' || (unsigned char) *p < ' '
            || (unsigned char) *p >= 0x7f)
            *p = ' ';
    quoted(from, sizeof(from), o->helo_identity ? "" : o->identity);
    quoted(helo, sizeof(helo), o->helo);
    snprintf(buf, size, "%s (%s) client-ip=%s; envelope-from=%s; helo=%s; "
             "receiver=%s; identity=%s;", sg_spf_result_name(o->result),
             comment, o->ip, from, helo, receiver,
             o->helo_identity ? "helo" : "mailfrom");
}

void sg_spf_authres(const struct sg_spf_outcome *o, char *buf, size_t size)
{
    char v[SG_MAILADDR_KEYMAX + 4];
    size_t n = strlen(o->identity);

    /* An address or a domain as it is when it is a dot-atom, else a
     * quoted-string (RFC 8601 2.2 pvalue). */
    if (n > 0 && strspn(o->identity, "abcdefghijklmnopqrstuvwxyz"
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                        "!#$&'*+-/=?^_`{|}~.@") == n)
        sg_strlcpy(v, o->identity, sizeof(v));
    else
        quoted(v, sizeof(v), o->identity);
    snprintf(buf, size, "spf=%s smtp.%s=%s", sg_spf_result_name(o->result),
             o->helo_identity ? "helo" : "mailfrom", v);
}
