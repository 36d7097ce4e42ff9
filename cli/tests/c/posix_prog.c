/* A program that reads a file with POSIX AIO and says which library served it, what
 * environment `aio run` gave it, and then does what its second argument asks:
 *   posix_prog FILE exit=N      exit with status N
 *   posix_prog FILE signal=N    die by signal N (default action)
 *   posix_prog FILE wait        print "ready", then wait for a signal, print it and exit 100+N
 */
#define _GNU_SOURCE
#include <aio.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void on_signal(int sig)
{
    char msg[32];
    int n = snprintf(msg, sizeof msg, "got signal %d\n", sig);
    if (write(1, msg, n) < 0)
        _exit(99);
    _exit(100 + sig);
}

static const char *owner(const char *sym)
{
#ifdef STATIC
    (void)sym;
    return "(static)";
#else
    void *p = dlsym(RTLD_DEFAULT, sym);
    Dl_info info;
    if (!p || !dladdr(p, &info) || !info.dli_fname)
        return "?";
    return info.dli_fname;
#endif
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v ? v : "(unset)";
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s FILE exit=N|signal=N|wait\n", argv[0]);
        return 2;
    }
    printf("LD_PRELOAD=%s\n", env("LD_PRELOAD"));
    printf("AIO_ENGINE=%s\n", env("AIO_ENGINE"));
    printf("AIO_STATS=%s\n", env("AIO_STATS"));
    printf("AIO_FAULT=%s\n", env("AIO_FAULT"));
    struct sigaction old;
    sigaction(SIGPIPE, NULL, &old);
    printf("SIGPIPE %s\n", old.sa_handler == SIG_IGN ? "ignored" : "default");

    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        perror(argv[1]);
        return 3;
    }
    static char buf[1024];
    struct aiocb cb;
    memset(&cb, 0, sizeof cb);
    cb.aio_fildes = fd;
    cb.aio_buf = buf;
    cb.aio_nbytes = sizeof buf;
    if (aio_read(&cb) != 0) {
        perror("aio_read");
        return 4;
    }
    const struct aiocb *list[1] = {&cb};
    while (aio_error(&cb) == EINPROGRESS)
        aio_suspend(list, 1, NULL);
    printf("aio_read: %zd bytes\n", aio_return(&cb));
    printf("aio_read from %s\n", owner("aio_read"));
#ifndef STATIC
    const char *(*engine)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "posixaio_engine");
    printf("engine %s\n", engine ? engine() : "glibc");
#endif
    fflush(stdout);

    const char *what = argv[2];
    if (strncmp(what, "exit=", 5) == 0)
        return atoi(what + 5);
    if (strncmp(what, "signal=", 7) == 0) {
        int sig = atoi(what + 7);
        signal(sig, SIG_DFL);
        raise(sig);
        return 98;
    }
    if (strcmp(what, "wait") == 0) {
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        signal(SIGHUP, on_signal);
        printf("ready\n");
        fflush(stdout);
        for (int i = 0; i < 600; i++)
            sleep(1);
        return 97;
    }
    fprintf(stderr, "unknown action %s\n", what);
    return 2;
}
