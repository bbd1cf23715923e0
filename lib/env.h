/*
 * env.h - what the library takes from the machine it runs on, in one
 * struct: the wall clock, a monotonic clock, the socket calls of the
 * resolver, this host's name, and the log sink
 *
 * The library reads no clock and asks no system call for these itself
 * (the lib-boundaries test rejects time() and gethostname() anywhere but
 * env.c): the daemon passes the machine's (sg_env_system()), a test a
 * clock it moves, a fuzzer a DNS server in memory behind sg_dns_ops
 * instead of wrapping libc at link time.
 *
 * Every member may be NULL: sg_env_complete() fills it from the machine's.
 * `arg` is handed to every function.
 */
#ifndef SG_ENV_H
#define SG_ENV_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "sg.h"

struct sg_log;

/*
 * The resolver's socket calls, with the meaning of their libc namesakes.
 * socket() returns a descriptor poll() can wait on (the resolver polls
 * it), non-blocking and close-on-exec when `type` asks for it.
 */
struct sg_dns_ops {
    int (*socket)(void *arg, int family, int type, int protocol);
    int (*bind)(void *arg, int fd, const struct sockaddr *sa, socklen_t len);
    int (*connect)(void *arg, int fd, const struct sockaddr *sa,
                   socklen_t len);
    ssize_t (*send)(void *arg, int fd, const void *buf, size_t len,
                    int flags);
    ssize_t (*recv)(void *arg, int fd, void *buf, size_t len, int flags);
    int (*close)(void *arg, int fd);
    void *arg;
};

struct sg_env {
    sg_time_t (*now)(void *arg);        /* wall clock, seconds */
    int64_t (*now_ms)(void *arg);       /* monotonic, milliseconds */
    /* This host's name into buf (NUL-terminated); 0, or -1. */
    int (*hostname)(void *arg, char *buf, size_t size);
    void *arg;                          /* for now, now_ms, hostname */
    const struct sg_dns_ops *dns;       /* the resolver's sockets */
    struct sg_log *log;                 /* where events go */
};

/* The machine's socket calls. */
extern const struct sg_dns_ops sg_dns_ops_system;

/* Fill every NULL function (and dns) of *env with the machine's; the log
 * is left as it is. */
void sg_env_complete(struct sg_env *env);

static inline sg_time_t sg_env_now(const struct sg_env *env)
{
    return env->now(env->arg);
}

static inline int64_t sg_env_now_ms(const struct sg_env *env)
{
    return env->now_ms(env->arg);
}

/* This host's name, or "" when there is none to be had. */
void sg_env_hostname(const struct sg_env *env, char *buf, size_t size);

#endif /* SG_ENV_H */
