/* Many requests that cannot finish (reads of an empty pipe) do not starve the others: with
 * 8192 of them waiting, a read of a regular file either completes or is refused at once with
 * EAGAIN — it is never accepted and left waiting. Then the pipe's data releases them all. */
#include "common.h"

#define WAITING 8192

int main(int argc, char **argv)
{
	static struct aiocb cbs[WAITING];
	static char bytes[WAITING];
	static char fill[WAITING];
	struct aiocb file_cb;
	const struct aiocb *list[1] = {&file_cb};
	char buf[4096];
	int p[2], fd, i, r, refused = 0, all = 1;
	long written = 0;
	double give_up;
	setup_common(argc, argv);
	CHECK(pipe(p) == 0);
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	for (i = 0; i < WAITING; i++) {
		prep(&cbs[i], p[0], &bytes[i], 1, 0);
		if (aio_read(&cbs[i]) != 0) {
			CHECK(errno == EAGAIN);
			refused++;
		}
	}
	printf("pipe reads refused = %d\n", refused);
	fd = make_file("data", 4096, 3);
	prep(&file_cb, fd, buf, sizeof(buf), 0);
	r = aio_read(&file_cb);
	if (r != 0) {
		printf("file read while %d pipe reads wait = refused %s\n", WAITING, errname(errno));
	} else {
		give_up = now_ms() + 10000;
		while (aio_error(&file_cb) == EINPROGRESS && now_ms() < give_up) {
			struct timespec ts = ms(100);
			aio_suspend(list, 1, &ts);
		}
		printf("file read while %d pipe reads wait = %s\n", WAITING,
		       aio_error(&file_cb) == EINPROGRESS ? "NOT DONE after 10 s" : error_of(&file_cb));
		printf("its data = %s\n", aio_return(&file_cb) == 4096 &&
						  matches_pattern(buf, 4096, 3, 0) ? "right" : "wrong");
	}
	/* Release them all. */
	memset(fill, 'p', sizeof(fill));
	while (written < WAITING - refused) {
		long n = write(p[1], fill, (size_t)(WAITING - refused - written));
		CHECK(n > 0);
		written += n;
	}
	for (i = 0; i < WAITING; i++) {
		if (aio_error(&cbs[i]) == -1)
			continue;
		wait_done(&cbs[i]);
		all &= aio_error(&cbs[i]) == 0 && aio_return(&cbs[i]) == 1 && bytes[i] == 'p';
	}
	printf("the pipe reads then = %s\n", all ? "all done" : "NOT ALL DONE");
	return 0;
}
