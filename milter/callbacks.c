/*
 * callbacks.c - libmilter callbacks: copy macros and arguments into plain
 * C, call libsmtpguard, turn its verdict into a reply (milter_apply is the
 * only place that knows SMFIS_* and smfi_setreply)
 *
 * Per-session state is the library's sg_session, kept with smfi_setpriv,
 * never in thread-locals: libmilter may run one session's callbacks on
 * different worker threads. Live sessions are also on one list: the ones
 * still open when the daemon stops are left to the exit, and stay
 * reachable (memcheck tells a leak from them).
 */
#include <arpa/inet.h>          /* inet_ntop */
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "milter.h"
#include "policy.h"

static pthread_rwlock_t engine_lock;
static struct sg_engine *engine;

struct live {
    struct live *prev, *next;
    struct sg_session *s;
};
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static struct live live_head = { &live_head, &live_head, NULL };

static struct live *live_add(struct sg_session *s)
{
    struct live *l = malloc(sizeof(*l));

    if (l == NULL)
        return NULL;
    l->s = s;
    pthread_mutex_lock(&live_mu);
    l->next = live_head.next;
    l->prev = &live_head;
    live_head.next->prev = l;
    live_head.next = l;
    pthread_mutex_unlock(&live_mu);
    return l;
}

static void live_remove(struct live *l)
{
    pthread_mutex_lock(&live_mu);
    l->prev->next = l->next;
    l->next->prev = l->prev;
    pthread_mutex_unlock(&live_mu);
    free(l);
}

/* session_of - the session of this connection, NULL before CONNECT */
static struct sg_session *session_of(SMFICTX *ctx)
{
    struct live *l = smfi_getpriv(ctx);

    return l != NULL ? l->s : NULL;
}

void milter_engine_set(struct sg_engine *eng)
{
    pthread_rwlockattr_t attr;

    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&engine_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    engine = eng;
}

struct sg_engine *milter_engine_retire(void)
{
    struct sg_engine *eng;

    pthread_rwlock_wrlock(&engine_lock);
    eng = engine;
    engine = NULL;
    pthread_rwlock_unlock(&engine_lock);
    return eng;
}

/* enter - pin the engine for one callback; NULL once it is retired */
static struct sg_engine *enter(void)
{
    pthread_rwlock_rdlock(&engine_lock);
    if (engine == NULL)
        pthread_rwlock_unlock(&engine_lock);
    return engine;
}

static void leave(void)
{
    pthread_rwlock_unlock(&engine_lock);
}

/* milter_apply - the one switch from verdicts to milter replies */
static sfsistat milter_apply(SMFICTX *ctx, const struct sg_verdict *v)
{
    switch (v->action) {
    case SG_ACT_REJECT:
        smfi_setreply(ctx, (char *) v->code, (char *) v->xcode,
                      (char *) v->text);
        return SMFIS_REJECT;
    case SG_ACT_TEMPFAIL:
    case SG_ACT_CLOSE:          /* 421: the MTA disconnects */
        smfi_setreply(ctx, (char *) v->code, (char *) v->xcode,
                      (char *) v->text);
        return SMFIS_TEMPFAIL;
    default:
        return SMFIS_CONTINUE;
    }
}

/* shutting_down - the reply while the daemon stops */
static sfsistat shutting_down(SMFICTX *ctx)
{
    struct sg_verdict v;

    sg_verdict_shutting_down(&v);
    return milter_apply(ctx, &v);
}

static sfsistat internal_error(SMFICTX *ctx, struct sg_engine *eng,
                               const char *where)
{
    struct sg_args args;
    struct sg_verdict v;

    sg_args_init(&args);
    sg_args_add(&args, "where", "%s", where);
    sg_args_add(&args, "detail", "no session state for this connection");
    sg_log_event(eng->log, SG_EV_INTERNAL_ERROR, SG_ACT_TEMPFAIL, NULL,
                 &args);
    sg_verdict_set(&v, SG_EV_INTERNAL_ERROR, SG_ACT_TEMPFAIL, SG_STAGE_OTHER,
                   NULL);
    return milter_apply(ctx, &v);
}

/* client_addr - address text from the connect info, else the macro */
static const char *client_addr(SMFICTX *ctx, struct sockaddr *sa, char *buf,
                               size_t size)
{
    if (sa != NULL && sa->sa_family == AF_INET
        && inet_ntop(AF_INET, &((struct sockaddr_in *) sa)->sin_addr, buf,
                     (socklen_t) size) != NULL)
        return buf;
    if (sa != NULL && sa->sa_family == AF_INET6
        && inet_ntop(AF_INET6, &((struct sockaddr_in6 *) sa)->sin6_addr, buf,
                     (socklen_t) size) != NULL)
        return buf;
    return smfi_getsymval(ctx, "{client_addr}");
}

static sfsistat mlfi_connect(SMFICTX *ctx, char *hostname,
                             struct sockaddr *hostaddr)
{
    struct sg_engine *eng = enter();
    struct sg_session_info info;
    struct sg_session *s;
    struct live *l = NULL;
    struct sg_verdict v;
    char buf[INET6_ADDRSTRLEN];
    sfsistat rc;

    if (eng == NULL)
        return shutting_down(ctx);
    info.client_addr = client_addr(ctx, hostaddr, buf, sizeof(buf));
    info.client_name = hostname;
    info.service = smfi_getsymval(ctx, "{daemon_name}");
    info.mta_host = smfi_getsymval(ctx, "j");
    s = sg_session_new(eng, &info);
    if (s != NULL && (l = live_add(s)) == NULL) {
        sg_session_free(s);
        s = NULL;
    }
    if (s == NULL) {
        sg_verdict_session_alloc(&v);
        rc = milter_apply(ctx, &v);
    } else {
        smfi_setpriv(ctx, l);
        sg_session_connect(s, &v);
        rc = milter_apply(ctx, &v);
    }
    leave();
    return rc;
}

/* A stage function gets the session and what its callback passed. */
typedef void (*stage_fn)(struct sg_session *s, const void *arg,
                         struct sg_verdict *v);

/* What RCPT hands to its stage function through run_stage's `arg`. */
struct rcpt_args {
    const char *rcpt;
    const char *mailer;
};

/* run_stage - one SMTP stage: session from the private data, verdict out */
static sfsistat run_stage(SMFICTX *ctx, const char *where, stage_fn fn,
                          const void *arg, const char *queue_id)
{
    struct sg_engine *eng = enter();
    struct sg_session *s = session_of(ctx);
    struct sg_verdict v;
    sfsistat rc;

    if (eng == NULL)
        return shutting_down(ctx);
    if (s == NULL) {
        rc = internal_error(ctx, eng, where);
    } else {
        if (queue_id != NULL)
            sg_session_set_queue_id(s, queue_id);
        fn(s, arg, &v);
        rc = milter_apply(ctx, &v);
    }
    leave();
    return rc;
}

static void helo_stage(struct sg_session *s, const void *arg,
                       struct sg_verdict *v)
{
    sg_session_helo(s, arg, v);
}

static void mail_stage(struct sg_session *s, const void *arg,
                       struct sg_verdict *v)
{
    sg_session_mail(s, arg, v);
}

static void unknown_stage(struct sg_session *s, const void *arg,
                          struct sg_verdict *v)
{
    sg_session_unknown(s, arg, v);
}

static sfsistat mlfi_helo(SMFICTX *ctx, char *helo)
{
    return run_stage(ctx, "helo", helo_stage, helo, NULL);
}

static sfsistat mlfi_envfrom(SMFICTX *ctx, char **argv)
{
    const char *qid = smfi_getsymval(ctx, "i");
    struct sg_session *s = session_of(ctx);

    /* Postfix and Sendmail both send {auth_authen} with MAIL FROM. */
    if (s != NULL)
        sg_session_set_auth(s, smfi_getsymval(ctx, "{auth_authen}"));
    return run_stage(ctx, "envfrom", mail_stage,
                     argv != NULL ? argv[0] : NULL, qid ? qid : "");
}

/* rcpt_stage - sg_session_rcpt with the MTA's mailer for the recipient */
static void rcpt_stage(struct sg_session *s, const void *arg,
                       struct sg_verdict *v)
{
    const struct rcpt_args *a = arg;

    sg_session_rcpt(s, a->rcpt, a->mailer, v);
}

static sfsistat mlfi_envrcpt(SMFICTX *ctx, char **argv)
{
    struct rcpt_args a;
    const char *qid = smfi_getsymval(ctx, "i");

    a.rcpt = argv != NULL ? argv[0] : NULL;
    a.mailer = smfi_getsymval(ctx, "{rcpt_mailer}");
    return run_stage(ctx, "envrcpt", rcpt_stage, &a, qid);
}

static sfsistat mlfi_unknown(SMFICTX *ctx, const char *cmd)
{
    return run_stage(ctx, "unknown", unknown_stage, cmd, NULL);
}

/* end_message - end of a transaction that was not accepted */
static sfsistat end_message(SMFICTX *ctx)
{
    struct sg_engine *eng = enter();
    struct sg_session *s = session_of(ctx);

    if (eng == NULL)
        return SMFIS_CONTINUE;
    if (s != NULL)
        sg_session_reset(s);
    leave();
    return SMFIS_CONTINUE;
}

/*
 * add_header - prepend one of the policy's headers to the message. It fails
 * only when the MTA did not grant SMFIF_ADDHDRS or the connection is gone;
 * either way the message goes on without the header.
 */
static void add_header(void *arg, const char *name, const char *value)
{
    (void) smfi_insheader((SMFICTX *) arg, 0, (char *) name, (char *) value);
}

/* mlfi_eom - the message is accepted: headers, count it, end the
 * transaction */
static sfsistat mlfi_eom(SMFICTX *ctx)
{
    struct sg_engine *eng = enter();
    struct sg_session *s = session_of(ctx);

    if (eng == NULL)
        return SMFIS_CONTINUE;
    if (s != NULL) {
        sg_session_headers(s, add_header, ctx);
        sg_session_message_done(s);
    }
    leave();
    return SMFIS_CONTINUE;
}

static sfsistat mlfi_abort(SMFICTX *ctx)
{
    return end_message(ctx);
}

static sfsistat mlfi_close(SMFICTX *ctx)
{
    struct sg_engine *eng = enter();
    struct live *l = smfi_getpriv(ctx);

    /* close may come without connect: no private data then. Once the
     * engine is retired the process is exiting: leave the memory. */
    if (eng == NULL)
        return SMFIS_CONTINUE;
    smfi_setpriv(ctx, NULL);
    if (l != NULL) {
        sg_session_free(l->s);
        live_remove(l);
    }
    leave();
    return SMFIS_CONTINUE;
}

/* mlfi_negotiate - skip what the policy never looks at */
static sfsistat mlfi_negotiate(SMFICTX *ctx, unsigned long f0,
                               unsigned long f1, unsigned long f2,
                               unsigned long f3, unsigned long *pf0,
                               unsigned long *pf1, unsigned long *pf2,
                               unsigned long *pf3)
{
    unsigned long want = SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOBODY
        | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY;

    (void) ctx;
    (void) f2;
    (void) f3;
    *pf0 = f0 & SMFIF_ADDHDRS;   /* Received-SPF, Authentication-Results */
    *pf1 = f1 & want;
    *pf2 = 0;
    *pf3 = 0;
    return SMFIS_CONTINUE;
}

struct smfiDesc milter_desc = {
    .xxfi_name = "smtpguard",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = SMFIF_ADDHDRS,
    .xxfi_connect = mlfi_connect,
    .xxfi_helo = mlfi_helo,
    .xxfi_envfrom = mlfi_envfrom,
    .xxfi_envrcpt = mlfi_envrcpt,
    .xxfi_header = NULL,
    .xxfi_eoh = NULL,
    .xxfi_body = NULL,
    .xxfi_eom = mlfi_eom,
    .xxfi_abort = mlfi_abort,
    .xxfi_close = mlfi_close,
    .xxfi_unknown = mlfi_unknown,
    .xxfi_data = NULL,
    .xxfi_negotiate = mlfi_negotiate,
};
