/* For faults_stats.rs: requests whose outcome the fault rules decide, and a known mix of
 * requests for the statistics line. Prints one line per request: what it asked, what it got.
 *
 * Usage: ./faults_stats DIR faults|stats|writes */
#define _GNU_SOURCE
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *dir;

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

/* Submits (op: 'r', 'w', 's' fsync, 'd' fdatasync), waits, prints "label: res err". */
static long run(const char *label, int fd, char op, char *buf, size_t len, off_t off)
{
	struct aiocb cb;
	const struct aiocb *list[1] = {&cb};
	int r, e;
	long ret;
	memset(&cb, 0, sizeof(cb));
	cb.aio_fildes = fd;
	cb.aio_buf = buf;
	cb.aio_nbytes = len;
	cb.aio_offset = off;
	r = op == 'r' ? aio_read(&cb) : op == 'w' ? aio_write(&cb) :
	    aio_fsync(op == 's' ? O_SYNC : O_DSYNC, &cb);
	if (r != 0) {
		printf("%s: refused %d\n", label, errno);
		return -1;
	}
	while (aio_error(&cb) == EINPROGRESS)
		aio_suspend(list, 1, NULL);
	e = aio_error(&cb);
	ret = aio_return(&cb);
	printf("%s: %ld %s\n", label, ret, e == 0 ? "ok" : strerror(e));
	return ret;
}

int main(int argc, char **argv)
{
	static char buf[16384];
	int good, bad, torn, crash, pipes[2], i;
	if (argc != 3)
		return 2;
	dir = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(argv[2], "faults") == 0) {
		/* AIO_FAULT="op=read,path=*.bad,errno=EIO;op=write,path=*.good,nth=2,errno=ENOSPC;
		 * op=read,path=*.good,offset=8192-12288,short=100;op=write,path=*.torn,torn=512;
		 * op=fsync,path=*.good,delay=300ms;op=write,path=*.crash,action=crash" */
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
		/* 40 writes, for a rule with a probability: which fail depends on the seed only. */
		good = open_file("writes", 0);
		for (i = 0; i < 40; i++)
			run("write", good, 'w', buf, 512, i * 512);
		return 0;
	}
	/* stats: 5 reads (1 of a bad descriptor), 3 writes, 1 fsync, 1 fdatasync, 1 cancelled
	 * read of an empty pipe: 11 requests. */
	good = open_file("stats", 16384);
	for (i = 0; i < 4; i++)
		run("read", good, 'r', buf, 4096, i * 4096);
	run("read of a bad descriptor", 1000, 'r', buf, 4096, 0);
	for (i = 0; i < 3; i++)
		run("write", good, 'w', buf, 4096, i * 4096);
	run("fsync", good, 's', NULL, 0, 0);
	run("fdatasync", good, 'd', NULL, 0, 0);
	if (pipe(pipes) != 0)
		return 2;
	{
		struct aiocb cb;
		char c;
		memset(&cb, 0, sizeof(cb));
		cb.aio_fildes = pipes[0];
		cb.aio_buf = &c;
		cb.aio_nbytes = 1;
		if (aio_read(&cb) != 0)
			return 2;
		printf("cancel of a pipe read: %s\n",
		       aio_cancel(pipes[0], &cb) == AIO_CANCELED ? "AIO_CANCELED" : "other");
	}
	return 0;
}
