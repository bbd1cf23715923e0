/* fuzz_mailaddr.c - MAIL FROM / RCPT TO arguments as the MTA hands them */
#include "fuzz.h"
#include "mailaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size), key[SG_MAILADDR_KEYMAX];
    struct sg_mailaddr a;

    if (sg_mailaddr_parse(s, &a) == SG_OK)
        sg_mailaddr_key(&a, key, sizeof(key));
    sg_mailaddr_normalize(s, key, sizeof(key));
    free(s);
    return 0;
}
