/*
 * fuzz_engine.c - the engine of the session harnesses (fuzz_engine.h)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fuzz_engine.h"

sg_time_t fuzz_now;

static char dir[64];
static char path[128];
static struct sg_log quiet_log;

void fuzz_clean(const char *what, const char *s)
{
    for (const unsigned char *p = (const unsigned char *) s; *p; p++)
        if (*p < ' ' || *p == 0x7f) {
            fprintf(stderr, "fuzz: control character in %s: %s\n", what, s);
            abort();
        }
}

/* sink - every line one line: a hostile value must never forge one */
static void sink(void *arg, enum sg_severity sev, const char *line)
{
    (void) arg;
    (void) sev;
    if (strlen(line) >= SG_LOG_LINE_MAX) {
        fprintf(stderr, "fuzz: log line too long\n");
        abort();
    }
    fuzz_clean("a log line", line);
}

static sg_time_t clock_fn(void *arg)
{
    (void) arg;
    return fuzz_now;
}

static void remove_db(const char *db)
{
    static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
    char f[160];

    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        snprintf(f, sizeof(f), "%s%s", db, suffix[i]);
        unlink(f);
    }
}

/* cleanup - at exit, also when libFuzzer stops in the middle of an input */
static void cleanup(void)
{
    char f[160];

    if (dir[0] == '\0')
        return;
    remove_db(path);
    snprintf(f, sizeof(f), "%s/template.db", dir);
    remove_db(f);
    rmdir(dir);
}

static struct sg_engine *open_at(const char *db)
{
    struct sg_engine_opts o;
    struct sg_engine *eng;
    struct sg_err err;

    quiet_log.sink = sink;
    atomic_store(&quiet_log.max_severity, SG_SEV_DEBUG);
    fuzz_now = 1700000000;
    o.db_path = db;
    o.log = &quiet_log;
    o.now = clock_fn;
    o.now_arg = NULL;
    o.dns_servers = "192.0.2.53:53";
    if (sg_engine_open(&o, &eng, &err) != SG_OK) {
        fprintf(stderr, "fuzz: engine: %s\n", err.msg);
        abort();
    }
    atomic_store(&quiet_log.max_severity, SG_SEV_DEBUG);
    return eng;
}

/* The database a new engine makes, made once: each input starts from a
 * copy (creating the schema costs more than a session). */
static char *tmpl;
static size_t tmpl_len;

static void load_template(void)
{
    char f[160], wal[170];
    FILE *fp;
    long n;

    snprintf(f, sizeof(f), "%s/template.db", dir);
    sg_engine_close(open_at(f), "template made");
    /* A -wal left by the close would hold part of the schema. */
    snprintf(wal, sizeof(wal), "%s-wal", f);
    if (access(wal, F_OK) == 0) {
        fprintf(stderr, "fuzz: %s left after close\n", wal);
        abort();
    }
    if ((fp = fopen(f, "rb")) == NULL || fseek(fp, 0, SEEK_END) != 0 ||
        (n = ftell(fp)) <= 0 || fseek(fp, 0, SEEK_SET) != 0 ||
        (tmpl = malloc((size_t) n)) == NULL ||
        fread(tmpl, 1, (size_t) n, fp) != (size_t) n) {
        perror("fuzz: template database");
        abort();
    }
    fclose(fp);
    tmpl_len = (size_t) n;
    unlink(f);
}

struct sg_engine *fuzz_engine_new(void)
{
    static unsigned seq;
    FILE *fp;

    if (dir[0] == '\0') {
        const char *tmp = getenv("TMPDIR");

        /* In memory when there is a tmpfs: no disk syncs per input. */
        if (tmp == NULL || *tmp == '\0' || strlen(tmp) > 40)
            tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof(dir), "%s/sg-fuzz.XXXXXX", tmp);
        if (mkdtemp(dir) == NULL) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(cleanup);
    }
    if (tmpl == NULL)
        load_template();
    snprintf(path, sizeof(path), "%s/e%u.db", dir, seq++);
    if ((fp = fopen(path, "wb")) == NULL ||
        fwrite(tmpl, 1, tmpl_len, fp) != tmpl_len || fclose(fp) != 0) {
        perror("fuzz: database copy");
        abort();
    }
    return open_at(path);
}

bool fuzz_engine_set(struct sg_engine *eng, const char *name,
                     const char *value)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    bool ok = false;

    if (sqlite3_open(path, &db) != SQLITE_OK) {
        sqlite3_close(db);
        return false;
    }
    sqlite3_busy_timeout(db, 2000);
    if (sqlite3_prepare_v2(db, "UPDATE settings SET value = ?1 WHERE "
                           "name = ?2", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, value, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
        /* The database's own checks refuse bad values: not an error. */
        ok = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(db) == 1;
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    if (ok)
        sg_engine_tick(eng);
    atomic_store(&quiet_log.max_severity, SG_SEV_DEBUG);
    return ok;
}

void fuzz_engine_free(struct sg_engine *eng)
{
    sg_engine_close(eng, "end of input");
    remove_db(path);
}
