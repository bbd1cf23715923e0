/*
 * fuzz_logline.c - mail.log lines as smtpguardctl report reads them (the
 * report's own line handler, compiled in), then its summary
 */
#include "fuzz.h"

#include "../../lib/ctl/report.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct report *r;
    static struct opts o = { 0, 0, NULL, false, false, true, 10 };
    const char *p = (const char *) data, *end = p + size, *nl;

    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        counter_init(&r->clients);
        counter_init(&r->domains);
        counter_init(&r->senders);
        counter_init(&r->zones);
        counter_init(&r->spf);
        counter_init(&r->bans);
        counter_init(&r->relay_clients);
    }
    for (; p < end; p = nl + 1) {
        nl = memchr(p, '\n', (size_t) (end - p));
        if (nl == NULL)
            nl = end;
        handle(r, &o, p, (size_t) (nl - p), false);
    }
    return 0;
}
