/* Many requests on one descriptor in flight at once. On one end of a socket pair, a read waits
 * for data that only comes back once a write queued after it on the same descriptor has gone
 * out: glibc runs the requests of a descriptor one after another, so its write waits behind
 * the read (the test then unblocks the read itself); this library runs both at once. */
#include "common.h"

int main(int argc, char **argv)
{
	struct aiocb r, w, more[16];
	char in[8] = {0}, echo[8] = {0}, more_buf[16];
	int s[2], i, ready;
	struct pollfd pfd;
	setup_common(argc, argv);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0);

	prep(&r, s[0], in, 5, 0);
	SHOW("read on s0", aio_read(&r));
	prep(&w, s[0], "ping!", 5, 0);
	SHOW("write on s0", aio_write(&w));
	pfd.fd = s[1];
	pfd.events = POLLIN;
	ready = poll(&pfd, 1, 2000);
	printf("the write went out while the read waited = %s\n", ready == 1 ? "yes" : "no");
	if (ready == 1) {
		CHECK(read(s[1], echo, 5) == 5);
		CHECK(write(s[1], "pong!", 5) == 5);
	} else {
		/* Serialised: feed the read, then the write goes. */
		CHECK(write(s[1], "pong!", 5) == 5);
		CHECK(read(s[1], echo, 5) == 5);
	}
	wait_done(&r);
	wait_done(&w);
	printf("read: error = %s, return = %ld, data = %s\n", error_of(&r), (long)aio_return(&r),
	       in);
	printf("write: error = %s, return = %ld, the peer got = %s\n", error_of(&w),
	       (long)aio_return(&w), echo);

	/* Sixteen reads waiting on one descriptor, then a write on it. */
	for (i = 0; i < 16; i++) {
		prep(&more[i], s[0], &more_buf[i], 1, 0);
		CHECK(aio_read(&more[i]) == 0);
	}
	prep(&w, s[0], "0123456789abcdef", 16, 0);
	SHOW("write behind 16 reads", aio_write(&w));
	ready = poll(&pfd, 1, 2000);
	printf("the write went out while 16 reads waited = %s\n", ready == 1 ? "yes" : "no");
	CHECK(write(s[1], "ABCDEFGHIJKLMNOP", 16) == 16);
	for (i = 0; i < 16; i++)
		wait_done(&more[i]);
	wait_done(&w);
	{
		char got[17] = {0};
		int ok = 0, sum = 0;
		CHECK(read(s[1], got, 16) == 16);
		for (i = 0; i < 16; i++) {
			ok += aio_error(&more[i]) == 0 && aio_return(&more[i]) == 1;
			sum += more_buf[i];
		}
		printf("16 reads done = %d, bytes = %d (sum %d), write return = %ld, peer got = %s\n",
		       ok, ok, sum, (long)aio_return(&w), got);
	}
	return 0;
}
