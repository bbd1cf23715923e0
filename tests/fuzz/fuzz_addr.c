/* fuzz_addr.c - client addresses, CIDRs, and the names built from them */
#include "addr.h"
#include "dname.h"
#include "dnsbl.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size), buf[SG_ADDR_STRLEN], name[300];
    struct sg_addr a;
    struct sg_cidr c;
    struct sg_err err;

    if (sg_addr_parse(s, &a) == SG_OK) {
        sg_addr_format(&a, buf, sizeof(buf));
        sg_addr_key(&a, 24, 64, buf, sizeof(buf));
        sg_dname_reverse(&a, "bl.example.test", name, sizeof(name));
    }
    if (sg_cidr_parse(s, &c, &err) == SG_OK) {
        sg_cidr_format(&c, buf, sizeof(buf));
        if (sg_addr_parse("192.0.2.1", &a) == SG_OK)
            sg_cidr_match(&c, &a);
    }
    free(s);
    return 0;
}
