/* For faults_stats.rs: libaio requests whose outcome the fault rules decide, and a known mix
 * of requests for the statistics line. Prints one line per request: what it asked, what it got.
 *
 * Usage: ./faults_stats DIR faults|stats|writes */
#define _GNU_SOURCE
#include <libaio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *dir;
static io_context_t ctx;

static int open_file(const char *name, int size)
{
	char path[4096], *buf = malloc(size > 0 ? size : 1);
	int fd;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || !buf)
		exit(2);
	memset(buf, 'f', size);
	if (size > 0 && pwrite(fd, buf, size, 0) != size)
		exit(2);
	free(buf);
	return fd;
}

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Submits (op: 'r', 'w', 's' fsync, 'd' fdatasync), waits, prints "label: res". */
static long run(const char *label, int fd, char op, char *buf, size_t len, long long off)
{
	struct iocb cb, *list[1] = {&cb};
	struct io_event ev;
	int r;
	if (op == 'r')
		io_prep_pread(&cb, fd, buf, len, off);
	else if (op == 'w')
		io_prep_pwrite(&cb, fd, buf, len, off);
	else if (op == 's')
		io_prep_fsync(&cb, fd);
	else
		io_prep_fdsync(&cb, fd);
	r = io_submit(ctx, 1, list);
	if (r != 1) {
		printf("%s: refused %d\n", label, r);
		return r;
	}
	r = io_getevents(ctx, 1, 1, &ev, NULL);
	if (r != 1 || ev.obj != &cb) {
		printf("%s: io_getevents = %d\n", label, r);
		return -1;
	}
	if ((long)ev.res < 0)
		printf("%s: %s\n", label, strerror(-(long)ev.res));
	else
		printf("%s: %ld\n", label, (long)ev.res);
	return (long)ev.res;
}

int main(int argc, char **argv)
{
	static char buf[16384] __attribute__((aligned(4096)));
	int good, bad, torn, crash, i;
	if (argc != 3 || io_setup(64, &ctx) != 0)
		return 2;
	dir = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(argv[2], "faults") == 0) {
		double t0;
		good = open_file("data.good", 16384);
		bad = open_file("data.bad", 16384);
		torn = open_file("data.torn", 4096);
		crash = open_file("data.crash", 4096);
		run("read of data.bad", bad, 'r', buf, 4096, 0);
		run("read of data.good", good, 'r', buf, 4096, 0);
		run("write 1 of data.good", good, 'w', buf, 4096, 0);
		run("write 2 of data.good", good, 'w', buf, 4096, 0);
		run("write 3 of data.good", good, 'w', buf, 4096, 0);
		run("read of data.good at 8192", good, 'r', buf, 4096, 8192);
		run("read of data.good at 12288", good, 'r', buf, 4096, 12288);
		memset(buf, 't', 4096);
		run("write of data.torn", torn, 'w', buf, 4096, 0);
		{
			char back[4096];
			int t = 0;
			if (pread(torn, back, 4096, 0) != 4096)
				return 2;
			for (i = 0; i < 4096; i++)
				t += back[i] == 't';
			printf("data.torn holds %d bytes of the write\n", t);
		}
		t0 = now_ms();
		run("fsync of data.good", good, 's', NULL, 0, 0);
		printf("the fsync took at least 300 ms: %s\n", now_ms() - t0 >= 300 ? "yes" : "no");
		run("write of data.crash", crash, 'w', buf, 4096, 0);
		run("read of data.good after the crash", good, 'r', buf, 4096, 0);
		return 0;
	}
	if (strcmp(argv[2], "writes") == 0) {
		good = open_file("writes", 0);
		for (i = 0; i < 40; i++)
			run("write", good, 'w', buf, 512, i * 512);
		return 0;
	}
	/* stats: 5 reads (1 of a bad descriptor, refused by the kernel), 3 writes, 1 fsync, 1
	 * fdatasync: 9 requests taken, 1 refused. */
	good = open_file("stats", 16384);
	for (i = 0; i < 4; i++)
		run("read", good, 'r', buf, 4096, i * 4096);
	run("read of a bad descriptor", 1000, 'r', buf, 4096, 0);
	for (i = 0; i < 3; i++)
		run("write", good, 'w', buf, 4096, i * 4096);
	run("fsync", good, 's', NULL, 0, 0);
	run("fdatasync", good, 'd', NULL, 0, 0);
	io_destroy(ctx);
	return 0;
}
