/*
 * json.h - JSON strings for smtpguardctl's --json output (smtpguardctl.c
 * and report.c)
 *
 * Input trust: the text comes from the database or from mail.log, where
 * anyone who can write to syslog can forge a line: quotes, backslashes,
 * control bytes and bytes that are not UTF-8 are all possible. The output
 * is always a valid JSON string (RFC 8259): '"' and '\' escaped, control
 * bytes as \u00XX, valid UTF-8 copied, every other byte as U+FFFD.
 */
#ifndef SG_CTL_JSON_H
#define SG_CTL_JSON_H

#include <stddef.h>
#include <stdio.h>

/* sg_json_utf8 - the length of the UTF-8 sequence at p (RFC 3629), 0 if
 * it is not one */
static inline size_t sg_json_utf8(const unsigned char *p,
                                  const unsigned char *end)
{
    unsigned lo = 0x80, hi = 0xbf;
    size_t n;

    if (*p >= 0xc2 && *p <= 0xdf)
        n = 2;
    else if (*p >= 0xe0 && *p <= 0xef)
        n = 3, lo = *p == 0xe0 ? 0xa0 : lo, hi = *p == 0xed ? 0x9f : hi;
    else if (*p >= 0xf0 && *p <= 0xf4)
        n = 4, lo = *p == 0xf0 ? 0x90 : lo, hi = *p == 0xf4 ? 0x8f : hi;
    else
        return 0;
    if ((size_t) (end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* sg_json_str - `len` bytes of `s` as a quoted JSON string */
static inline void sg_json_str(FILE *fp, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *) s, *end = p + len;

    putc('"', fp);
    while (p < end) {
        size_t n;

        if (*p == '"' || *p == '\\') {
            putc('\\', fp);
            putc(*p++, fp);
        } else if (*p < 0x20 || *p == 0x7f) {
            fprintf(fp, "\\u%04x", *p++);
        } else if (*p < 0x80) {
            putc(*p++, fp);
        } else if ((n = sg_json_utf8(p, end)) > 0) {
            fwrite(p, 1, n, fp);
            p += n;
        } else {
            fputs("\\ufffd", fp);
            p++;
        }
    }
    putc('"', fp);
}

#endif
