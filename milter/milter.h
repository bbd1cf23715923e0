/*
 * milter.h - the daemon's glue between libmilter and libsmtpguard
 *
 * milter/ holds no policy: callbacks.c turns callbacks and macros into
 * library calls and verdicts into replies; smtpguard.c is the process
 * (options, socket, privileges, signals, logging).
 */
#ifndef SG_MILTER_H
#define SG_MILTER_H

#include <libmilter/mfapi.h>

#include "engine.h"

/* The filter description registered with libmilter. */
extern struct smfiDesc milter_desc;

/*
 * The engine callbacks use. Set before smfi_main(); milter_engine_retire()
 * waits for callbacks in flight and returns the engine for closing, after
 * which callbacks answer with a temporary failure.
 */
void milter_engine_set(struct sg_engine *eng);
struct sg_engine *milter_engine_retire(void);

/* Block SIGHUP, SIGTERM and SIGINT in this (the only) thread (signals.c). */
int milter_signals_block(void);
/* Start the thread that turns SIGHUP into a policy reload (signals.c). */
int milter_signals_start(struct sg_engine *eng);

#endif /* SG_MILTER_H */
