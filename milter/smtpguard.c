/*
 * smtpguard.c - the smtpguard daemon: options, socket, privileges, logging
 *
 * Order of start-up: parse options; detach (the parent waits until the
 * child reports that it is ready, so a failed start is a failed command,
 * not a silent exit); open the milter socket as the invoking user (root
 * for a socket under /run); drop privileges; open the database as the
 * unprivileged user; start the reload and maintenance threads; serve.
 * SIGTERM: libmilter stops accepting, callbacks in flight finish, the
 * engine flushes its counters and closes the database.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "milter.h"
#include "policy.h"
#include "sg_config.h"
#include "spfpool.h"

#define SG_DEFAULT_SOCKET "inet:8894@127.0.0.1"
#define SG_DEFAULT_SPF_WORKERS 32

struct options {
    const char *socket;
    const char *db;
    const char *pidfile;
    const char *user;
    const char *facility;
    const char *dns_servers;
    mode_t socket_mode;
    unsigned spf_workers;
    bool foreground;
    bool stderr_log;
    bool check;
};

static bool log_to_stderr;
static struct sg_log *start_log;        /* set: die() logs start_failed */
static const char *pidfile_written;     /* die() removes it */

static const struct {
    const char *name;
    int value;
} facilities[] = {
    { "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "user", LOG_USER },
    { "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
    { "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
    { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
    { "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

static void usage(FILE *fp)
{
    fprintf(fp,
"usage: smtpguard [options]\n"
"\n"
"Policy milter for Postfix and Sendmail: SMTP session limits, relay\n"
"authorization, DNSBL, reverse DNS and SPF, logged as catalogue events\n"
"through syslog. Policies live in the SQLite database (smtpguardctl).\n"
"\n"
"  -p SOCKET    milter socket, libmilter syntax: unix:/path or\n"
"               inet:PORT@HOST, inet6:PORT@HOST (default %s)\n"
"  -d PATH      SQLite database; created with the default policies when\n"
"               missing (default %s)\n"
"  -u USER[:GROUP]  drop privileges to USER (and GROUP) after the socket\n"
"               is open; a unix socket is given to them. Required when\n"
"               started as root: smtpguard never keeps running as root\n"
"  -m MODE      permissions of a unix socket, octal (default 0660: give\n"
"               Postfix access through the group, e.g. -u smtpguard:postfix)\n"
"  -P PIDFILE   write the process ID to PIDFILE, as USER (its directory\n"
"               must be writable by USER, e.g. /run/smtpguard); removed\n"
"               at exit\n"
"  -f, --foreground  stay in the foreground\n"
"  -l           also log to standard error (syslog always)\n"
"  -L FACILITY  syslog facility (default mail)\n"
"  -w N         SPF worker processes at most (default %d, 1..%d): each SPF\n"
"               evaluation runs in one, so that a libspf2 crash costs one\n"
"               check; 0 evaluates in the daemon (not recommended)\n"
"  -r, --dns-servers LIST  resolvers for the DNS checks, space-separated\n"
"               ADDR[:PORT] or [ADDR6]:PORT; overrides the dnsServers\n"
"               setting and /etc/resolv.conf\n"
"  -n, --check  check: validate the options, the database and its policies,\n"
"               report problems and exit (0 good, 1 bad); with -u, as USER.\n"
"               Read-only: the database is never changed\n"
"  -V, --version  print the version and exit\n"
"  -h, --help   this help\n"
"\n"
"Signals: SIGHUP reloads the policies (changes in the database are also\n"
"picked up within 2 seconds); SIGTERM stops after writing all counters.\n",
            SG_DEFAULT_SOCKET, SG_DEFAULT_DB, SG_DEFAULT_SPF_WORKERS,
            SG_SPF_POOL_MAX);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2),
                                                     noreturn));

/*
 * die - a failed start: the reason on stderr and, once the options are
 * read, as the catalogue event daemon_start_failed through syslog (and on
 * stderr again in its catalogue form), then exit 1.
 */
static void die(const char *fmt, ...)
{
    va_list ap;
    char reason[1024];

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    fprintf(stderr, "smtpguard: %s\n", reason);
    if (start_log != NULL) {
        struct sg_args args;

        log_to_stderr = true;
        sg_args_init(&args);
        sg_args_add(&args, "reason", "%s", reason);
        sg_log_event(start_log, SG_EV_START_FAILED, SG_ACT_NONE, NULL, &args);
    }
    if (pidfile_written != NULL)
        unlink(pidfile_written);
    exit(1);
}

/* log_sink - the one place that calls syslog() */
static void log_sink(void *arg, enum sg_severity sev, const char *line)
{
    (void) arg;
    syslog((int) sev, "%s", line);
    if (log_to_stderr) {
        struct timespec ts;
        struct tm tm;
        char when[32];

        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s smtpguard[%ld]: %s\n", when, (long) getpid(),
                line);
    }
}

static int parse_facility(const char *name)
{
    for (size_t i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++)
        if (strcasecmp(name, facilities[i].name) == 0)
            return facilities[i].value;
    return -1;
}

/* check_socket_spec - refuse what libmilter would refuse, with a reason */
static void check_socket_spec(const char *spec)
{
    const char *at;

    if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "local:", 6) == 0) {
        const char *path = strchr(spec, ':') + 1;

        if (*path != '/')
            die("socket %s: a unix socket needs an absolute path", spec);
        return;
    }
    if (strncmp(spec, "inet:", 5) == 0 || strncmp(spec, "inet6:", 6) == 0) {
        const char *port = strchr(spec, ':') + 1;
        char *end;
        long n = strtol(port, &end, 10);

        at = strchr(port, '@');
        if (end == port || n < 1 || n > 65535 || (*end != '@' && *end))
            die("socket %s: the port must be a number 1-65535 "
                "(inet:PORT@HOST)", spec);
        if (at != NULL && at[1] == '\0')
            die("socket %s: empty host after '@'", spec);
        return;
    }
    die("socket %s: expected unix:/path, inet:PORT@HOST or inet6:PORT@HOST",
        spec);
}

static void parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "check", no_argument, NULL, 'n' },
        { "foreground", no_argument, NULL, 'f' },
        { "dns-servers", required_argument, NULL, 'r' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    char *end;

    o->socket = SG_DEFAULT_SOCKET;
    o->db = SG_DEFAULT_DB;
    o->facility = "mail";
    o->socket_mode = 0660;
    o->spf_workers = SG_DEFAULT_SPF_WORKERS;
    while ((c = getopt_long(argc, argv, "p:d:u:m:P:flL:r:w:nVh", longopts,
                            NULL)) != -1) {
        switch (c) {
        case 'p': o->socket = optarg; break;
        case 'd': o->db = optarg; break;
        case 'u': o->user = optarg; break;
        case 'P': o->pidfile = optarg; break;
        case 'f': o->foreground = true; break;
        case 'l': o->stderr_log = true; break;
        case 'L': o->facility = optarg; break;
        case 'n': o->check = true; break;
        case 'r': o->dns_servers = optarg; break;
        case 'm':
            errno = 0;
            o->socket_mode = (mode_t) strtol(optarg, &end, 8);
            if (*optarg == '\0' || *end || errno || o->socket_mode > 0777)
                die("-m %s: not an octal permission mode like 0660", optarg);
            break;
        case 'w':
            errno = 0;
            o->spf_workers = (unsigned) strtoul(optarg, &end, 10);
            if (*optarg == '\0' || *end || errno ||
                o->spf_workers > SG_SPF_POOL_MAX)
                die("-w %s: not a number of SPF workers from 0 to %d", optarg,
                    SG_SPF_POOL_MAX);
            break;
        case 'V':
            printf("smtpguard %s\n", SG_VERSION_STRING);
            exit(0);
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc)
        die("unexpected argument '%s' (see -h)", argv[optind]);
    if (*o->db == '\0')
        die("-d: empty database path");
    if (parse_facility(o->facility) < 0)
        die("-L %s: unknown syslog facility (mail, daemon, local0..local7)",
            o->facility);
    check_socket_spec(o->socket);
    if (o->dns_servers != NULL) {
        struct sg_err err;
        long v;

        if (sg_setting_parse(sg_setting_def(SG_SET_dns_servers),
                             o->dns_servers, &v, &err) != SG_OK)
            die("-r %s: %s", o->dns_servers, err.msg);
    }
}

struct ids {
    uid_t uid;
    gid_t gid;
    const char *name;
};

/* lookup_user - USER[:GROUP] to ids, or die naming what is missing */
static void lookup_user(const char *spec, struct ids *ids)
{
    char user[256];
    const char *colon = strchr(spec, ':');
    struct passwd *pw;

    snprintf(user, sizeof(user), "%.*s",
             (int) (colon ? (size_t) (colon - spec) : strlen(spec)), spec);
    if ((pw = getpwnam(user)) == NULL)
        die("-u %s: no such user '%s'", spec, user);
    ids->uid = pw->pw_uid;
    ids->gid = pw->pw_gid;
    ids->name = spec;
    if (colon != NULL) {
        struct group *gr = getgrnam(colon + 1);

        if (gr == NULL)
            die("-u %s: no such group '%s'", spec, colon + 1);
        ids->gid = gr->gr_gid;
    }
}

static void drop_privileges(const struct ids *ids, const char *user)
{
    char name[256];

    snprintf(name, sizeof(name), "%.*s", (int) strcspn(user, ":"), user);
    if (setgroups(0, NULL) < 0 && errno != EPERM)
        die("setgroups: %s", strerror(errno));
    if (initgroups(name, ids->gid) < 0 || setgid(ids->gid) < 0
        || setuid(ids->uid) < 0)
        die("cannot become %s: %s", user, strerror(errno));
    if (setuid(0) == 0)
        die("still able to regain root after dropping to %s", user);
}

/*
 * check_user - a daemon that reads the network never keeps root: as root,
 * -u must name an unprivileged user (dropped to after binding); as anyone
 * else, -u may only name that user.
 */
static void check_user(struct options *o, const struct ids *ids)
{
    if (geteuid() == 0) {
        if (ids == NULL)
            die("refusing to run as root: give -u USER[:GROUP], the user "
                "to run as once the socket is bound (create one with "
                "'adduser --system --group smtpguard')");
        if (ids->uid == 0)
            die("-u %s: refusing to run as root; name an unprivileged "
                "user", o->user);
        return;
    }
    if (ids != NULL && ids->uid != geteuid())
        die("-u %s: only root can change user (running as uid %ld)",
            o->user, (long) geteuid());
    o->user = NULL;             /* already that user: nothing to drop */
}

/* socket_path - the file of a unix socket spec, or NULL */
static const char *socket_path(const char *spec)
{
    if (strncmp(spec, "unix:", 5) == 0)
        return spec + 5;
    if (strncmp(spec, "local:", 6) == 0)
        return spec + 6;
    return NULL;
}

/*
 * tcp_nodelay - turn Nagle off on libmilter's listening TCP socket; Linux
 * passes it on to every accepted connection. At end of message smtpguard
 * answers with several small packets (headers, then the reply): with
 * Nagle each waits for the MTA's delayed ACK, about 40 ms a message.
 * libmilter keeps the socket to itself, so find it: the one listening
 * socket of ours that is TCP.
 */
static void tcp_nodelay(void)
{
    for (int fd = 0; fd < 1024; fd++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int listening = 0, one = 1;
        socklen_t il = sizeof(listening);

        if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0 ||
            (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) ||
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &il) < 0 ||
            !listening)
            continue;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
}

/*
 * check_socket_file - what is at a unix socket's path before libmilter
 * removes it: nothing, or a stale socket (a daemon killed before it could
 * remove it), is fine; a socket somebody still listens on (another
 * smtpguard) is not taken over; a symlink or any other file is refused.
 */
static void check_socket_file(const char *path)
{
    struct sockaddr_un sun;
    struct stat st;
    int fd, rc;

    if (lstat(path, &st) < 0) {
        if (errno != ENOENT)
            die("socket %s: %s", path, strerror(errno));
        return;
    }
    if (S_ISLNK(st.st_mode))
        die("socket %s is a symlink: refusing to follow it (remove it)",
            path);
    if (!S_ISSOCK(st.st_mode))
        die("socket %s exists and is not a socket: refusing to replace it",
            path);
    if (strlen(path) >= sizeof(sun.sun_path))
        die("socket %s: path too long", path);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        die("socket: %s", strerror(errno));
    rc = connect(fd, (struct sockaddr *) &sun, sizeof(sun));
    close(fd);
    if (rc == 0)
        die("socket %s is in use: another process is listening on it", path);
    /* ECONNREFUSED: stale, libmilter replaces it. */
}

/*
 * own_socket - mode and owner of the socket libmilter just made, through
 * one descriptor of the file checked (O_PATH, never following a symlink):
 * what is changed is what was checked, whatever replaces the name
 * meanwhile.
 */
static void own_socket(const char *path, mode_t mode, const struct ids *ids)
{
    char proc[64];
    struct stat st;
    int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)
        || st.st_uid != geteuid())
        die("%s is not the socket just created (replaced by a symlink "
            "or another file?)", path);
    /* chmod has no AT_EMPTY_PATH: the descriptor's /proc link names
     * exactly this inode. */
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    if (chmod(proc, mode) < 0)
        die("chmod %s: %s", path, strerror(errno));
    if (ids != NULL && fchownat(fd, "", ids->uid, ids->gid,
                                AT_EMPTY_PATH) < 0)
        die("chown %s: %s", path, strerror(errno));
    close(fd);
}

static void open_socket(const struct options *o, const struct ids *ids)
{
    const char *path = socket_path(o->socket);

    if (path != NULL) {
        char dir[4096];
        char *slash;
        struct stat st;

        snprintf(dir, sizeof(dir), "%s", path);
        slash = strrchr(dir, '/');
        if (slash != NULL && slash != dir)
            *slash = '\0';
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
            die("socket directory %s does not exist (create it, e.g. "
                "/run/smtpguard owned by the daemon's user)", dir);
        check_socket_file(path);
    }
    if (smfi_setconn((char *) o->socket) == MI_FAILURE)
        die("socket %s: rejected by libmilter", o->socket);
    {
        /* Created owner-only: nobody connects before the mode is set. */
        mode_t mask = umask(0177);
        int rc = smfi_opensocket(true), e = errno;

        umask(mask);
        if (rc == MI_FAILURE)
            die("cannot listen on %s: %s (in use, or no permission)",
                o->socket, strerror(e));
    }
    if (path == NULL)
        tcp_nodelay();
    else
        own_socket(path, o->socket_mode, ids);
}

/* detach - fork; the parent exits with the status the child reports */
static int detach(void)
{
    int fds[2];
    pid_t pid;
    char status = 1;

    if (pipe(fds) < 0)
        die("pipe: %s", strerror(errno));
    if ((pid = fork()) < 0)
        die("fork: %s", strerror(errno));
    if (pid > 0) {
        close(fds[1]);
        if (read(fds[0], &status, 1) != 1)
            status = 1;
        _exit(status);
    }
    close(fds[0]);
    if (setsid() < 0)
        die("setsid: %s", strerror(errno));
    return fds[1];
}

static void ready(int fd, const struct options *o)
{
    int null;
    char ok = 0;

    if (fd < 0)
        return;
    if ((null = open("/dev/null", O_RDWR)) >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        if (!o->stderr_log)
            dup2(null, STDERR_FILENO);
        if (null > STDERR_FILENO)
            close(null);
    }
    if (write(fd, &ok, 1) != 1)
        _exit(1);
    close(fd);
}

/*
 * write_pidfile - as the daemon's user, after the privilege drop: the
 * user that writes it can remove it at exit (a file root wrote in a
 * directory only root may change would stay behind). Never through a
 * symlink; only a regular file is overwritten (a stale one from a killed
 * daemon).
 */
static void write_pidfile(const char *path)
{
    FILE *fp;
    struct stat st;
    int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);

    if (fd < 0)
        die("pid file %s: %s%s", path, strerror(errno),
            errno == ELOOP ? " (a symlink: refusing to follow it)"
            : errno == EACCES ? " (its directory must be writable by the "
            "daemon's user)" : "");
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || ftruncate(fd, 0) < 0)
        die("pid file %s: not a regular file", path);
    pidfile_written = path;
    if ((fp = fdopen(fd, "w")) == NULL)
        die("pid file %s: %s", path, strerror(errno));
    fprintf(fp, "%ld\n", (long) getpid());
    if (fclose(fp) != 0)
        die("pid file %s: %s", path, strerror(errno));
}

/*
 * check_only - -n: validate the database and its policies, read-only: an
 * older schema is migrated in a copy in memory, a damaged file reported,
 * not moved aside; the file is never changed.
 */
static int check_only(const struct options *o, struct sg_log *log)
{
    struct sg_engine_opts eo = { .db_path = o->db, .env = { .log = log },
                                 .dns_servers = o->dns_servers };
    struct sg_engine *eng;
    struct sg_err err;
    int version;

    if (access(o->db, F_OK) < 0) {
        printf("smtpguard: database %s does not exist yet; it will be "
               "created with the default policies\n", o->db);
        return 0;
    }
    if (access(o->db, R_OK) < 0) {
        fprintf(stderr, "smtpguard: database %s: %s\n", o->db,
                strerror(errno));
        return 1;
    }
    if (sg_engine_open_check(&eo, &version, &eng, &err) != SG_OK) {
        fprintf(stderr, "smtpguard: %s\n", err.msg);
        return 1;
    }
    if (version == 0)
        printf("smtpguard: database %s is empty; the daemon would create "
               "schema version %d in it\n", o->db, SG_SCHEMA_VERSION);
    else if (version < SG_SCHEMA_VERSION)
        printf("smtpguard: database %s: schema version %d, would migrate "
               "to %d\n", o->db, version, SG_SCHEMA_VERSION);
    else
        printf("smtpguard: database %s: schema version %d (current)\n",
               o->db, version);
    sg_engine_close(eng, "check");
    return -1;                  /* caller counts logged problems */
}

static unsigned problems;

static void check_sink(void *arg, enum sg_severity sev, const char *line)
{
    (void) arg;
    if (sev <= SG_SEV_ERR)
        problems++;
    if (sev <= SG_SEV_WARNING)
        fprintf(stderr, "%s\n", line);
}

int main(int argc, char **argv)
{
    struct options o = { 0 };
    struct ids ids;
    struct sg_log log;
    struct sg_engine_opts eo = { 0 };
    struct sg_engine *eng;
    struct sg_spf_pool *spf_pool = NULL;
    struct sg_err err;
    struct sg_args args;
    int notify = -1, rc;

    /* An SPF worker (spfpool.h): this executable, started by the pool. */
    if (argc == 2 && strcmp(argv[1], SG_SPF_WORKER_ARG) == 0)
        return sg_spf_worker_main(SG_SPF_WORKER_FD);
    if (milter_signals_block() < 0)
        die("cannot block signals");
    parse_options(argc, argv, &o);
    log_to_stderr = o.stderr_log;
    atomic_init(&log.max_severity, SG_SEV_INFO);
    if (o.check) {
        /* As the daemon's user: files SQLite creates must stay its own. */
        if (o.user != NULL) {
            lookup_user(o.user, &ids);
            drop_privileges(&ids, o.user);
        }
        log.sink = check_sink;
        log.arg = NULL;
        rc = check_only(&o, &log);
        if (rc < 0)
            rc = problems ? 1 : 0;
        printf("smtpguard: %s\n", rc ? "configuration has problems"
               : "configuration OK");
        return rc;
    }
    log.sink = log_sink;
    log.arg = NULL;
    openlog("smtpguard", LOG_PID | LOG_NDELAY, parse_facility(o.facility));
    start_log = &log;
    if (o.user != NULL)
        lookup_user(o.user, &ids);
    check_user(&o, o.user ? &ids : NULL);
    if (smfi_register(milter_desc) == MI_FAILURE)
        die("smfi_register failed");
    if (!o.foreground)
        notify = detach();
    open_socket(&o, o.user ? &ids : NULL);
    if (o.user != NULL)
        drop_privileges(&ids, o.user);
    if (o.pidfile != NULL)
        write_pidfile(o.pidfile);

    eo.db_path = o.db;
    eo.env.log = &log;        /* the machine's clocks, name and sockets */
    eo.dns_servers = o.dns_servers;
    if (sg_engine_open(&eo, &eng, &err) != SG_OK)
        die("database %s: %s", o.db, err.msg);
    if (o.spf_workers > 0) {
        /* As the daemon's user, before any session: workers inherit
         * nothing of the database or the milter socket (CLOEXEC, and
         * they close what is left). */
        struct sg_spf_pool_opts po = { NULL, o.spf_workers,
                                       o.spf_workers < 2 ? o.spf_workers
                                       : 2, 0,
                                       !o.foreground && !o.stderr_log };

        if (sg_spf_pool_new(&po, &spf_pool, &err) != SG_OK)
            die("%s", err.msg);
        eng->spf_pool = spf_pool;
    }
    if (milter_signals_start(eng) < 0 || sg_engine_start(eng) != SG_OK)
        die("cannot start threads");
    milter_engine_set(eng);
    sg_args_init(&args);
    sg_args_add(&args, "version", "%s", SG_VERSION_STRING);
    sg_args_add(&args, "socket", "%s", o.socket);
    sg_args_add(&args, "database", "%s", o.db);
    sg_log_event(&log, SG_EV_STARTED, SG_ACT_NONE, NULL, &args);
    start_log = NULL;           /* running: later failures have their own */
    ready(notify, &o);

    rc = smfi_main();
    eng = milter_engine_retire();
    sg_engine_close(eng, rc == MI_SUCCESS ? "signal" : "milter error");
    sg_spf_pool_free(spf_pool);
    if (o.pidfile != NULL)
        unlink(o.pidfile);
    closelog();
    return rc == MI_SUCCESS ? 0 : 1;
}
