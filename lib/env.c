/*
 * env.c - the machine's environment (env.h): the one place the library
 * reads the clocks and the host name and makes the resolver's socket calls
 */
#include <time.h>
#include <unistd.h>

#include "env.h"

static sg_time_t sys_now(void *arg)
{
    (void) arg;
    return (sg_time_t) time(NULL);
}

static int64_t sys_now_ms(void *arg)
{
    struct timespec ts;

    (void) arg;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int sys_hostname(void *arg, char *buf, size_t size)
{
    (void) arg;
    if (size == 0 || gethostname(buf, size) != 0)
        return -1;
    buf[size - 1] = '\0';
    return 0;
}

static int sys_socket(void *arg, int family, int type, int protocol)
{
    (void) arg;
    return socket(family, type, protocol);
}

static int sys_bind(void *arg, int fd, const struct sockaddr *sa,
                    socklen_t len)
{
    (void) arg;
    return bind(fd, sa, len);
}

static int sys_connect(void *arg, int fd, const struct sockaddr *sa,
                       socklen_t len)
{
    (void) arg;
    return connect(fd, sa, len);
}

static ssize_t sys_send(void *arg, int fd, const void *buf, size_t len,
                        int flags)
{
    (void) arg;
    return send(fd, buf, len, flags);
}

static ssize_t sys_recv(void *arg, int fd, void *buf, size_t len, int flags)
{
    (void) arg;
    return recv(fd, buf, len, flags);
}

static int sys_close(void *arg, int fd)
{
    (void) arg;
    return close(fd);
}

const struct sg_dns_ops sg_dns_ops_system = {
    .socket = sys_socket, .bind = sys_bind, .connect = sys_connect,
    .send = sys_send, .recv = sys_recv, .close = sys_close, .arg = NULL,
};

void sg_env_complete(struct sg_env *env)
{
    if (env->now == NULL)
        env->now = sys_now;
    if (env->now_ms == NULL)
        env->now_ms = sys_now_ms;
    if (env->hostname == NULL)
        env->hostname = sys_hostname;
    if (env->dns == NULL)
        env->dns = &sg_dns_ops_system;
}

void sg_env_hostname(const struct sg_env *env, char *buf, size_t size)
{
    if (size == 0)
        return;
    if (env->hostname(env->arg, buf, size) != 0)
        buf[0] = '\0';
    buf[size - 1] = '\0';
}
