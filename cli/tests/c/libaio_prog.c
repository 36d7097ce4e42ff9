/* A program that reads a file through libaio (io_setup, io_submit, io_getevents) and says which
 * library served it:  libaio_prog FILE  */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <libaio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        perror(argv[1]);
        return 3;
    }
    io_context_t ctx;
    memset(&ctx, 0, sizeof ctx);
    int r = io_setup(8, &ctx);
    if (r < 0) {
        fprintf(stderr, "io_setup: %s\n", strerror(-r));
        return 4;
    }
    static char buf[4096];
    struct iocb cb, *cbs[1] = {&cb};
    io_prep_pread(&cb, fd, buf, sizeof buf, 0);
    r = io_submit(ctx, 1, cbs);
    if (r != 1) {
        fprintf(stderr, "io_submit: %d\n", r);
        return 5;
    }
    struct io_event ev;
    r = io_getevents(ctx, 1, 1, &ev, NULL);
    printf("io_getevents: %d event, res %ld\n", r, (long)ev.res);
    void *p = dlsym(RTLD_DEFAULT, "io_submit");
    Dl_info info;
    printf("io_submit from %s\n", p && dladdr(p, &info) && info.dli_fname ? info.dli_fname : "?");
    io_destroy(ctx);
    return 0;
}
