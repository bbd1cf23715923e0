/*
 * siphash.h - SipHash-2-4, the keyed hash of every table whose keys a
 * client chooses
 *
 * SipHash (Aumasson and Bernstein, 2012) is a pseudo-random function of
 * a 128-bit key: without the key, nobody can choose keys that collide, so
 * a table hashed with it keeps its chains short whatever the input. The
 * 64-bit output, two compression and four finalization rounds, is the
 * reference variant; tests/unit/test_state.c checks the paper's 64
 * vectors.
 *
 * Thread-safety: pure function.
 */
#ifndef SG_SIPHASH_H
#define SG_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SG_SIPHASH_KEY_LEN 16

uint64_t sg_siphash24(const uint8_t key[SG_SIPHASH_KEY_LEN], const void *in,
                      size_t len);

#endif /* SG_SIPHASH_H */
