/*
 * fuzz_dns.c - DNS replies as our resolver reads them: the first two
 * bytes of the input choose the query type and the name asked, the rest
 * is the reply; the ID asked is the reply's own, so the parser goes past
 * the header checks
 */
#include "dns.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint16_t types[] = {
        SG_DNS_T_A, SG_DNS_T_AAAA, SG_DNS_T_PTR, SG_DNS_T_MX, SG_DNS_T_TXT,
        SG_DNS_T_CNAME,
    };
    static const char *const names[] = {
        "x.test", "2.0.0.127.bl.test", "1.2.0.192.in-addr.arpa",
        "example.com", "a.b.c.d.e.f.g.test",
    };
    struct sg_dns_answer *a;
    bool tc;
    uint16_t id;

    if (size < 2)
        return 0;
    id = size >= 4 ? (uint16_t) (data[2] << 8 | data[3]) : 0;
    sg_dns_parse_reply(data + 2, size - 2, id,
                       names[data[1] % (sizeof(names) / sizeof(names[0]))],
                       types[data[0] % (sizeof(types) / sizeof(types[0]))],
                       &a, &tc);
    if (a != NULL) {
        for (size_t i = 0; i < a->nrr; i++)
            if (a->rr[i].text != NULL && a->rr[i].len != strlen(a->rr[i].text)
                && a->rr[i].type != SG_DNS_T_TXT)
                abort();        /* names are NUL-free text */
        sg_dns_answer_unref(a);
    }
    return 0;
}
