/* For the valgrind test (../valgrind.rs): copies a file with aio_read into a fresh (so,
 * uninitialised to memcheck) buffer, then looks at the bytes and writes them out with plain
 * write(2). Under memcheck both uses are errors unless memcheck knows the read filled the
 * buffer: with glibc it does (its thread calls pread); with ours the kernel fills it through
 * io_uring, which memcheck cannot follow, so the library must say so.
 *
 * Usage: ./valgrind_copy SRC DST */
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LEN 65536

int main(int argc, char **argv)
{
	struct aiocb cb;
	const struct aiocb *list[1] = {&cb};
	char *buf = malloc(LEN);
	long n, letters = 0, i;
	int in, out;
	if (argc != 3 || !buf)
		return 2;
	in = open(argv[1], O_RDONLY);
	out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (in < 0 || out < 0)
		return 2;
	memset(&cb, 0, sizeof(cb));
	cb.aio_fildes = in;
	cb.aio_buf = buf;
	cb.aio_nbytes = LEN;
	if (aio_read(&cb) != 0)
		return 3;
	while (aio_error(&cb) == EINPROGRESS)
		aio_suspend(list, 1, NULL);
	n = aio_return(&cb);
	if (n <= 0)
		return 4;
	for (i = 0; i < n; i++)
		if (buf[i] >= 'a' && buf[i] <= 'z')
			letters++;
	if (write(out, buf, (size_t)n) != n)
		return 5;
	printf("read %ld bytes, %ld letters\n", n, letters);
	free(buf);
	return 0;
}
