/*
 * siphash.c - SipHash-2-4 (see siphash.h)
 */
#include "siphash.h"

#define ROTL(x, b) (uint64_t) (((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND(v0, v1, v2, v3) do { \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
    } while (0)

/* le64 - eight bytes, little-endian whatever the host */
static uint64_t le64(const uint8_t *p)
{
    return (uint64_t) p[0] | (uint64_t) p[1] << 8 | (uint64_t) p[2] << 16
        | (uint64_t) p[3] << 24 | (uint64_t) p[4] << 32
        | (uint64_t) p[5] << 40 | (uint64_t) p[6] << 48
        | (uint64_t) p[7] << 56;
}

uint64_t sg_siphash24(const uint8_t key[SG_SIPHASH_KEY_LEN], const void *in,
                      size_t len)
{
    const uint8_t *p = in, *end = p + (len & ~(size_t) 7);
    uint64_t k0 = le64(key), k1 = le64(key + 8);
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
    uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
    uint64_t v3 = k1 ^ 0x7465646279746573ULL;
    uint64_t b = (uint64_t) len << 56, m;

    for (; p != end; p += 8) {
        m = le64(p);
        v3 ^= m;
        SIPROUND(v0, v1, v2, v3);
        SIPROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    /* The last 0..7 bytes, and the length in the top byte. */
    for (size_t i = 0; i < (len & 7); i++)
        b |= (uint64_t) p[i] << (8 * i);
    v3 ^= b;
    SIPROUND(v0, v1, v2, v3);
    SIPROUND(v0, v1, v2, v3);
    v0 ^= b;
    v2 ^= 0xff;
    for (int i = 0; i < 4; i++)
        SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}
