/* mount_probe FILE FLAGS OP...: opens FILE and runs each OP on it, printing one line per
 * operation with its result, so a test can see exactly which operations a fault rule hit.
 *
 * FLAGS: letters, or "-" for none: d = O_DIRECT, c = O_CREAT.
 * OP: r:OFFSET:LEN (pread), w:OFFSET:LEN:CHAR (pwrite LEN copies of CHAR), f (fsync),
 *     F (fdatasync).
 * Output: "open = 0" or "open = -ENAME", then "r OFFSET LEN = N MS" per operation, where N is
 * the byte count or -ENAME, and MS the milliseconds it took. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void result(const char *what, long r, double ms) {
    if (r < 0)
        printf("%s = -%s %.1f\n", what, strerrorname_np(errno), ms);
    else
        printf("%s = %ld %.1f\n", what, r, ms);
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: mount_probe FILE FLAGS OP...\n");
        return 2;
    }
    int flags = O_RDWR;
    if (strchr(argv[2], 'd')) flags |= O_DIRECT;
    if (strchr(argv[2], 'c')) flags |= O_CREAT;
    int fd = open(argv[1], flags, 0644);
    if (fd < 0) {
        printf("open = -%s\n", strerrorname_np(errno));
        return 0;
    }
    printf("open = 0\n");
    char *buf;
    if (posix_memalign((void **)&buf, 4096, 1 << 20)) return 3;
    for (int i = 3; i < argc; i++) {
        char *op = argv[i], what[64];
        long off = 0, len = 0, r;
        char c = 'x';
        double t0 = now_ms();
        if (op[0] == 'r' && sscanf(op, "r:%ld:%ld", &off, &len) == 2 && len <= (1 << 20)) {
            r = pread(fd, buf, len, off);
            snprintf(what, sizeof what, "r %ld %ld", off, len);
        } else if (op[0] == 'w' && sscanf(op, "w:%ld:%ld:%c", &off, &len, &c) == 3 &&
                   len <= (1 << 20)) {
            memset(buf, c, len);
            r = pwrite(fd, buf, len, off);
            snprintf(what, sizeof what, "w %ld %ld", off, len);
        } else if (strcmp(op, "f") == 0) {
            r = fsync(fd);
            snprintf(what, sizeof what, "f");
        } else if (strcmp(op, "F") == 0) {
            r = fdatasync(fd);
            snprintf(what, sizeof what, "F");
        } else {
            fprintf(stderr, "bad operation %s\n", op);
            return 2;
        }
        result(what, r, now_ms() - t0);
    }
    close(fd);
    return 0;
}
