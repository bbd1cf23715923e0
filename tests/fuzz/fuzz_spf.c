/*
 * fuzz_spf.c - SPF records through our check, and what passes it through
 * libspf2's compiler: no record that our check lets through may crash
 * libspf2 (CVE-2021-20314, -33912, -33913, -2023-42118 are in the seed
 * corpus). Explanation strings through their own check.
 */
#include <netinet/in.h>
#include <arpa/nameser.h>

#include <spf2/spf.h>
#include <spf2/spf_dns_null.h>

#include "fuzz.h"
#include "spfrecord.h"

static void quiet(const char *file, int line, const char *msg)
{
    (void) file;
    (void) line;
    (void) msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static SPF_server_t *srv;
    char *s = fuzz_cstr(data, size), out[2 * SG_SPF_RECORD_MAX], why[96];
    struct sg_spf_check chk;
    size_t len = strlen(s);

    if (srv == NULL) {
        SPF_warning_handler = quiet;
        SPF_info_handler = quiet;
        SPF_debug_handler = quiet;
        srv = SPF_server_new_dns(SPF_dns_null_new(NULL, "null", 0), 0);
    }
    sg_spf_exp_check(s, len, why, sizeof(why));
    sg_spf_record_check(s, len, &chk);
    if (chk.ok) {
        SPF_response_t *resp = SPF_response_new(NULL);
        SPF_record_t *rec = NULL;

        for (int v4 = 0; v4 < 2; v4++) {
            if (sg_spf_record_for_libspf2(s, len, v4, out, sizeof(out)) == 0)
                continue;
            SPF_record_compile(srv, resp, &rec, out);
            if (rec != NULL)
                SPF_record_free(rec);
            rec = NULL;
        }
        SPF_response_free(resp);
    }
    free(s);
    return 0;
}
