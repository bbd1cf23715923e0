/*
 * sg.c - allocation hooks and small string helpers for libsmtpguard
 *
 * Thread-safety: the allocation-failure counter is atomic; everything else
 * is reentrant.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg.h"

static atomic_long alloc_budget = -1;

/* alloc_allowed - consume one unit of the test allocation budget */
static int alloc_allowed(void)
{
    long cur = atomic_load(&alloc_budget);

    while (cur >= 0) {
        if (cur == 0)
            return 0;
        if (atomic_compare_exchange_weak(&alloc_budget, &cur, cur - 1))
            return 1;
    }
    return 1;
}

void sg_alloc_fail_after(long n)
{
    atomic_store(&alloc_budget, n);
}

void *sg_calloc(size_t n, size_t size)
{
    return alloc_allowed() ? calloc(n, size) : NULL;
}

void *sg_malloc(size_t size)
{
    return alloc_allowed() ? malloc(size) : NULL;
}

char *sg_strdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *p = sg_malloc(len);

    if (p != NULL)
        memcpy(p, s, len);
    return p;
}

void sg_free(void *p)
{
    free(p);
}

int sg_strlcpy(char *dst, const char *src, size_t size)
{
    size_t len = strlen(src);

    if (size == 0)
        return -1;
    if (len >= size) {
        memcpy(dst, src, size - 1);
        dst[size - 1] = '\0';
        return -1;
    }
    memcpy(dst, src, len + 1);
    return 0;
}

void sg_err_set(struct sg_err *err, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}
