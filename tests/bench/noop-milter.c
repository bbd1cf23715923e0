/*
 * noop-milter - the reference point for the benchmark: a libmilter milter
 * that registers every callback and lets everything through, doing only
 * the bookkeeping every real milter does (a per-connection private struct
 * set with smfi_setpriv, freed at close). Comparing smtpguard with it
 * isolates smtpguard's own cost from libmilter's.
 *
 * usage: noop-milter -p SOCKET [-f] [-s]
 *
 * -s asks the MTA to skip headers, end of headers and the body, and not to
 * wait for replies to them, exactly as smtpguard negotiates: with it the
 * reference and smtpguard make the same number of round trips per message.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <libmilter/mfapi.h>

static int skip_content;

struct conn_priv {
    unsigned long messages;
    unsigned long rcpts;
    unsigned long headers;
    size_t body_bytes;
};

static struct conn_priv *priv(SMFICTX *ctx)
{
    return smfi_getpriv(ctx);
}

static sfsistat nm_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
                             unsigned long f2, unsigned long f3,
                             unsigned long *pf0, unsigned long *pf1,
                             unsigned long *pf2, unsigned long *pf3)
{
    unsigned long want = SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOBODY
        | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY;

    (void)ctx, (void)f0, (void)f2, (void)f3;
    if (!skip_content)
        return SMFIS_ALL_OPTS; /* nothing special: all actions, all events */
    *pf0 = 0;
    *pf1 = f1 & want;
    *pf2 = 0;
    *pf3 = 0;
    return SMFIS_CONTINUE;
}

static sfsistat nm_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *addr)
{
    struct conn_priv *p = calloc(1, sizeof *p);

    (void)host, (void)addr;
    if (p == NULL)
        return SMFIS_TEMPFAIL;
    if (smfi_setpriv(ctx, p) != MI_SUCCESS) {
        free(p);
        return SMFIS_TEMPFAIL;
    }
    return SMFIS_CONTINUE;
}

static sfsistat nm_helo(SMFICTX *ctx, char *helo)
{
    (void)ctx, (void)helo;
    return SMFIS_CONTINUE;
}

static sfsistat nm_envfrom(SMFICTX *ctx, char **argv)
{
    struct conn_priv *p = priv(ctx);

    (void)argv;
    if (p != NULL)
        p->messages++;
    return SMFIS_CONTINUE;
}

static sfsistat nm_envrcpt(SMFICTX *ctx, char **argv)
{
    struct conn_priv *p = priv(ctx);

    (void)argv;
    if (p != NULL)
        p->rcpts++;
    return SMFIS_CONTINUE;
}

static sfsistat nm_data(SMFICTX *ctx)
{
    (void)ctx;
    return SMFIS_CONTINUE;
}

static sfsistat nm_unknown(SMFICTX *ctx, const char *cmd)
{
    (void)ctx, (void)cmd;
    return SMFIS_CONTINUE;
}

static sfsistat nm_header(SMFICTX *ctx, char *name, char *value)
{
    struct conn_priv *p = priv(ctx);

    (void)name, (void)value;
    if (p != NULL)
        p->headers++;
    return SMFIS_CONTINUE;
}

static sfsistat nm_eoh(SMFICTX *ctx)
{
    (void)ctx;
    return SMFIS_CONTINUE;
}

static sfsistat nm_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
    struct conn_priv *p = priv(ctx);

    (void)chunk;
    if (p != NULL)
        p->body_bytes += len;
    return SMFIS_CONTINUE;
}

static sfsistat nm_eom(SMFICTX *ctx)
{
    (void)ctx;
    return SMFIS_CONTINUE;
}

static sfsistat nm_abort(SMFICTX *ctx)
{
    (void)ctx;
    return SMFIS_CONTINUE;
}

static sfsistat nm_close(SMFICTX *ctx)
{
    free(priv(ctx));
    smfi_setpriv(ctx, NULL);
    return SMFIS_CONTINUE;
}

static struct smfiDesc noop_desc = {
    .xxfi_name = "noop-milter",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = SMFIF_NONE,
    .xxfi_connect = nm_connect,
    .xxfi_helo = nm_helo,
    .xxfi_envfrom = nm_envfrom,
    .xxfi_envrcpt = nm_envrcpt,
    .xxfi_header = nm_header,
    .xxfi_eoh = nm_eoh,
    .xxfi_body = nm_body,
    .xxfi_eom = nm_eom,
    .xxfi_abort = nm_abort,
    .xxfi_close = nm_close,
    .xxfi_unknown = nm_unknown,
    .xxfi_data = nm_data,
    .xxfi_negotiate = nm_negotiate,
};

static void usage(FILE *fp)
{
    fprintf(fp, "usage: noop-milter -p SOCKET [-f] [-s]\n"
                "  -p SOCKET  inet:PORT@HOST, inet6:PORT@HOST or unix:/path\n"
                "  -f         stay in the foreground (always the case)\n"
                "  -s         skip headers, EOH and body as smtpguard does\n");
}

int main(int argc, char **argv)
{
    const char *sock = NULL;
    int ch;

    while ((ch = getopt(argc, argv, "p:fsh")) != -1) {
        switch (ch) {
        case 'p': sock = optarg; break;
        case 'f': break;
        case 's': skip_content = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (sock == NULL || optind < argc) {
        usage(stderr);
        return 2;
    }
    if (smfi_setconn((char *)sock) != MI_SUCCESS ||
        smfi_register(noop_desc) != MI_SUCCESS) {
        fprintf(stderr, "noop-milter: cannot set up milter on %s\n", sock);
        return 1;
    }
    /* Open (and for unix sockets first remove a stale) socket now, so
     * that errors show up before smfi_main(). */
    if (smfi_opensocket(1) != MI_SUCCESS) {
        fprintf(stderr, "noop-milter: cannot open socket %s\n", sock);
        return 1;
    }
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
