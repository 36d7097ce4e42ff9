/*
 * What the C suites of libaio.so.1 (libaio/tests/c) and libposixaio.so (posixaio/tests/c)
 * share: test files named under the run's directory and filled with a pattern that differs with
 * every seed, and time helpers. Each suite's common.h includes it after defining HELPER, CHECK
 * (a fatal check) and test_dir.
 */
#ifndef AIO_TESTKIT_FILES_H
#define AIO_TESTKIT_FILES_H

HELPER const char *path_of(const char *name)
{
	static char bufs[4][4096];
	static int next;
	char *b = bufs[next++ % 4];
	snprintf(b, 4096, "%s/%s", test_dir, name);
	return b;
}

/* Byte i of test file `seed`. */
HELPER unsigned char pattern_byte(int seed, long i)
{
	return (unsigned char)((i * 7 + seed * 31 + (i >> 9)) & 0xff);
}

/* Creates (or truncates) a file of `size` pattern bytes, returns it opened read-write. */
HELPER int make_file(const char *name, long size, int seed)
{
	int fd = open(path_of(name), O_RDWR | O_CREAT | O_TRUNC, 0644);
	unsigned char *buf = malloc(size > 0 ? size : 1);
	long i;
	CHECK(fd >= 0 && buf);
	for (i = 0; i < size; i++)
		buf[i] = pattern_byte(seed, i);
	CHECK(pwrite(fd, buf, size, 0) == size);
	free(buf);
	return fd;
}

/* Whether the `len` bytes at p are those at `offset` of test file `seed`. */
HELPER int matches_pattern(const volatile void *p, long len, int seed, long offset)
{
	const volatile unsigned char *buf = p;
	long i;
	for (i = 0; i < len; i++)
		if (buf[i] != pattern_byte(seed, offset + i))
			return 0;
	return 1;
}

HELPER struct timespec ms(long n)
{
	struct timespec ts;
	ts.tv_sec = n / 1000;
	ts.tv_nsec = (n % 1000) * 1000000L;
	return ts;
}

HELPER double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

#endif
