/*
 * check_main.c - runs every unit-test suite of libsmtpguard
 */
#include <stdlib.h>
#include <string.h>

#include "spfpool.h"
#include "testutil.h"

int main(int argc, char **argv)
{
    SRunner *sr;
    int failed;

    /* The SPF pool's tests start this program as their workers. */
    if (argc == 2 && strcmp(argv[1], SG_SPF_WORKER_ARG) == 0)
        return sg_spf_worker_main(SG_SPF_WORKER_FD);
    sr = srunner_create(addr_suite());

    temp_db("init");          /* one directory for all forked tests */
    srunner_add_suite(sr, config_suite());
    srunner_add_suite(sr, log_suite());
    srunner_add_suite(sr, state_suite());
    srunner_add_suite(sr, store_suite());
    srunner_add_suite(sr, policy_suite());
    srunner_add_suite(sr, relay_suite());
    srunner_add_suite(sr, dnsbl_suite());
    srunner_add_suite(sr, dns_suite());
    srunner_add_suite(sr, spf_suite());
    srunner_add_suite(sr, spfpool_suite());
    srunner_add_suite(sr, verdict_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    temp_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
