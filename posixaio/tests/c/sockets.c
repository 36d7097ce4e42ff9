/* Descriptors without file positions ignore aio_offset, as glibc does (it falls back to read
 * and write): a socket, a pipe, a FIFO and character devices, alone and in lio_listio. */
#include "common.h"

#define N 8
#define LEN 1000

static void stream_pair(const char *what, int rfd, int wfd)
{
	static char out[N][LEN], in[N * LEN];
	struct aiocb cbs[N], *list[N], rd;
	long total = 0, got = 0;
	int i, ok = 1;
	for (i = 0; i < N; i++) {
		memset(out[i], 'a' + i, LEN);
		prep(&cbs[i], wfd, out[i], LEN, (off_t)i * LEN);
		cbs[i].aio_lio_opcode = LIO_WRITE;
		list[i] = &cbs[i];
	}
	/* One write alone at a non-zero offset, then the rest as a list. */
	printf("%s: aio_write at offset %d = %s\n", what, LEN, posix_rc(aio_write(&cbs[1]), errno));
	wait_done(&cbs[1]);
	printf("%s: its status = %s, %ld\n", what, error_of(&cbs[1]), (long)aio_return(&cbs[1]));
	list[1] = NULL;
	printf("%s: lio_listio(LIO_WAIT) of writes at offsets i*%d = %s\n", what, LEN,
	       posix_rc(lio_listio(LIO_WAIT, list, N, NULL), errno));
	for (i = 0; i < N; i++) {
		if (aio_error(&cbs[i]) != 0 || aio_return(&cbs[i]) != LEN)
			ok = 0;
		total += LEN;
	}
	printf("%s: every write done in full = %s\n", what, ok ? "yes" : "no");
	/* Read it all back with aio_read at a non-zero offset. */
	while (got < total) {
		long n;
		prep(&rd, rfd, in + got, (size_t)(total - got), 12345);
		if (aio_read(&rd) != 0) {
			printf("%s: aio_read at offset 12345 = %s\n", what, posix_rc(-1, errno));
			return;
		}
		wait_done(&rd);
		n = aio_return(&rd);
		if (n <= 0) {
			printf("%s: aio_read at offset 12345 = %s, %ld\n", what, error_of(&rd), n);
			return;
		}
		got += n;
	}
	{
		long counts[N] = {0};
		for (i = 0; i < total; i++)
			if (in[i] >= 'a' && in[i] < 'a' + N)
				counts[in[i] - 'a']++;
		for (i = 0; i < N; i++)
			ok &= counts[i] == LEN;
	}
	printf("%s: aio_read at offset 12345 got every byte = %s\n", what, ok ? "yes" : "no");
}

int main(int argc, char **argv)
{
	int sv[2], p[2], fifo_r, fifo_w, null_fd, zero_fd;
	struct aiocb cb;
	char buf[100];
	setup_common(argc, argv);

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	{
		/* Room for everything in flight at once. */
		int size = 1 << 20;
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
		setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	}
	stream_pair("socket", sv[1], sv[0]);
	CHECK(pipe(p) == 0);
	stream_pair("pipe", p[0], p[1]);
	CHECK(mkfifo(path_of("fifo"), 0600) == 0);
	fifo_r = open(path_of("fifo"), O_RDONLY | O_NONBLOCK);
	CHECK(fifo_r >= 0);
	fifo_w = open(path_of("fifo"), O_WRONLY);
	CHECK(fifo_w >= 0);
	CHECK(fcntl(fifo_r, F_SETFL, 0) == 0);
	stream_pair("fifo", fifo_r, fifo_w);

	/* Character devices: /dev/null and /dev/zero take any offset. */
	null_fd = open("/dev/null", O_WRONLY);
	zero_fd = open("/dev/zero", O_RDONLY);
	CHECK(null_fd >= 0 && zero_fd >= 0);
	memset(buf, 'x', sizeof(buf));
	prep(&cb, null_fd, buf, sizeof(buf), 99999);
	SHOW("/dev/null: aio_write at offset 99999", aio_write(&cb));
	wait_done(&cb);
	printf("/dev/null: its status = %s, %ld\n", error_of(&cb), (long)aio_return(&cb));
	prep(&cb, zero_fd, buf, sizeof(buf), 77777);
	SHOW("/dev/zero: aio_read at offset 77777", aio_read(&cb));
	wait_done(&cb);
	printf("/dev/zero: its status = %s, %ld, zeros = %d\n", error_of(&cb), (long)aio_return(&cb),
	       buf[0] == 0 && buf[99] == 0);
	return 0;
}
