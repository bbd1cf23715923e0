/* fuzz_setting.c - a settings value, as every setting reads it */
#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size), buf[SG_SETTING_TEXT_MAX];
    struct sg_err err;
    long v;

    for (int i = 0; i < SG_SET_COUNT; i++) {
        const struct sg_setting_def *d = sg_setting_def((enum sg_setting) i);

        if (sg_setting_parse(d, s, &v, &err) == SG_OK &&
            d->type != SG_T_TEXT)
            sg_setting_format(d, v, buf, sizeof(buf));
    }
    free(s);
    return 0;
}
