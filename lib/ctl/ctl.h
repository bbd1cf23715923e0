/*
 * ctl.h - what the commands of smtpguardctl share: the exit statuses, the
 * connection, how a failure ends the program, and the output (a table for
 * people, JSON for scripts)
 */
#ifndef SG_CTL_H
#define SG_CTL_H

#include <stdbool.h>

#include "store_admin.h"

enum { EX_OK, EX_REFUSED, EX_USAGE, EX_DB };

extern bool json;               /* --json */
extern struct sg_admin *adm;    /* the database, open for a command */

/* die - the message on stderr, after "smtpguardctl: "; exit(code) */
void die(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/* db_die - a failed store_admin call: refused (1), locked or broken (3) */
void db_die(int rc, const struct sg_err *err) __attribute__((noreturn));

/* done - report a change (people: the sentence; JSON: {"ok": ...}) */
void done(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * rows - the rows of a query, printed as aligned columns under `heads`
 * (the first 512 are kept to set the widths; any later ones are printed
 * as they come, ahead of the table), or as a JSON array of objects keyed
 * by the column names:
 *
 *     rows_start(&r, heads);
 *     rows_end(&r, sg_admin_query(adm, q, key, rows_add, &r, &err), &err);
 *
 * rows_end dies on a failed query and returns the number of rows.
 */
#define ROWS_KEPT 512
#define ROWS_COLS 8

struct rows {
    const char *const *heads;
    int n;                      /* columns printed */
    int count;
    int width[ROWS_COLS];
    char *cells[ROWS_KEPT][ROWS_COLS];
};

void rows_start(struct rows *r, const char *const *heads);
void rows_add(void *arg, const struct sg_admin_row *row);
int rows_end(struct rows *r, int rc, const struct sg_err *err);

int cmd_list(int argc, char **argv);

#endif /* SG_CTL_H */
