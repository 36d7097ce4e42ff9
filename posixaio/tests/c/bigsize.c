/* Lengths and timeouts at the edges: aio_nbytes beyond SSIZE_MAX, or reaching past the end of
 * the address space, fails without touching memory beyond the buffer or writing process memory
 * to the file; aio_suspend takes the largest timeouts as "wait". The 16-byte buffer ends at a
 * page that cannot be touched, so writing past it would crash the program. */
#include "common.h"

#include <sys/mman.h>

static const char *len_name(size_t n)
{
	return n == (size_t)SSIZE_MAX + 1 ? "SSIZE_MAX+1" :
	       n == SIZE_MAX ? "SIZE_MAX" :
	       n == (size_t)1 << 62 ? "2^62" : "?";
}

static void edge(int fd, char *buf, size_t n, int write)
{
	struct aiocb cb;
	prep(&cb, fd, buf, n, 0);
	errno = 0;
	printf("%s of %s = %s\n", write ? "aio_write" : "aio_read", len_name(n),
	       posix_rc(write ? aio_write(&cb) : aio_read(&cb), errno));
	if (aio_error(&cb) == EINPROGRESS)
		wait_done(&cb);
	printf("  status = %s, %ld\n", error_of(&cb), (long)aio_return(&cb));
}

static void *release_later(void *arg)
{
	sleep_ms(200);
	CHECK(write(*(int *)arg, "r", 1) == 1);
	return NULL;
}

int main(int argc, char **argv)
{
	const size_t lens[] = {(size_t)SSIZE_MAX + 1, SIZE_MAX, (size_t)1 << 62};
	struct aiocb lcb, *list[1];
	const struct aiocb *wl[1];
	long page = sysconf(_SC_PAGESIZE);
	char *region, *buf, c;
	struct stat st;
	struct timespec ts;
	pthread_t t;
	int fd, i, p[2];
	setup_common(argc, argv);
	region = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(region != MAP_FAILED);
	CHECK(mprotect(region + page, page, PROT_NONE) == 0);
	buf = region + page - 16;
	memset(buf, 'b', 16);
	fd = make_file("data", 1 << 20, 4);
	for (i = 0; i < 3; i++) {
		edge(fd, buf, lens[i], 0);
		edge(fd, buf, lens[i], 1);
	}
	prep(&lcb, fd, buf, SIZE_MAX, 0);
	lcb.aio_lio_opcode = LIO_READ;
	list[0] = &lcb;
	SHOW("lio_listio(LIO_WAIT) read of SIZE_MAX", lio_listio(LIO_WAIT, list, 1, NULL));
	printf("  status = %s\n", error_of(&lcb));
	CHECK(fstat(fd, &st) == 0);
	printf("file size after = %ld, first bytes intact = %d\n", (long)st.st_size,
	       ({ char h[16]; pread(fd, h, 16, 0) == 16 && matches_pattern(h, 16, 4, 0); }));
	printf("the buffer = %s\n", buf[0] == 'b' && buf[15] == 'b' ? "untouched" : "changed");

	/* The largest timeouts mean "wait". */
	CHECK(pipe(p) == 0);
	prep(&lcb, p[0], &c, 1, 0);
	CHECK(aio_read(&lcb) == 0);
	wl[0] = &lcb;
	CHECK(pthread_create(&t, NULL, release_later, &p[1]) == 0);
	ts.tv_sec = LONG_MAX;
	ts.tv_nsec = 0;
	SHOW("aio_suspend {LONG_MAX, 0} until a read completes", aio_suspend(wl, 1, &ts));
	CHECK(pthread_join(t, NULL) == 0);
	wait_done(&lcb);
	ts.tv_nsec = 999999999;
	SHOW("aio_suspend {LONG_MAX, 999999999} on a done request", aio_suspend(wl, 1, &ts));
	ts.tv_sec = 0;
	ts.tv_nsec = 1000000000;
	SHOW("aio_suspend {0, 1000000000}", aio_suspend(wl, 1, &ts));
	ts.tv_sec = -1;
	ts.tv_nsec = 0;
	SHOW("aio_suspend {-1, 0} on a done request", aio_suspend(wl, 1, &ts));
	return 0;
}
