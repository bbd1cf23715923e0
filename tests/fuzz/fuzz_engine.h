/*
 * fuzz_engine.h - a policy engine on a fresh database for the harnesses
 * that run sessions, with a log sink that refuses forged lines and a clock
 * the harness moves
 */
#ifndef SG_FUZZ_ENGINE_H
#define SG_FUZZ_ENGINE_H

#include <stdbool.h>

#include "engine.h"

extern sg_time_t fuzz_now;

/* The process's engine on a database in a temporary directory, no
 * maintenance thread, its resolver the in-memory one (fakedns.h): opened
 * at the first call, the same engine at each later one. */
struct sg_engine *fuzz_engine_new(void);
/* Write one setting into the database; false when unknown or refused.
 * The engine loads what was written at the next fuzz_engine_apply(), so
 * that a run of settings costs one reload, not one each. */
bool fuzz_engine_set(struct sg_engine *eng, const char *name,
                     const char *value);
/* Reload when a setting was written since the last call. */
void fuzz_engine_apply(struct sg_engine *eng);
/* The end of an input: the engine is brought back to the state of a new
 * one (memory state, written rows, settings, resolver cache, clock) and
 * stays open for the next input; it is closed and its database removed at
 * exit. */
void fuzz_engine_free(struct sg_engine *eng);
/* Abort with a message when `s` holds a control character. */
void fuzz_clean(const char *what, const char *s);

#endif /* SG_FUZZ_ENGINE_H */
