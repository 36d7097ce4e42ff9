/* Submission returns before large requests are done: lio_listio(LIO_NOWAIT) of ten 64 MiB
 * reads of a file in the page cache comes back while they are still in progress (copying 640
 * MiB takes far longer than queueing ten requests), and they all complete with the right data. */
#include "common.h"

#define N 10
#define LEN (64L << 20)

int main(int argc, char **argv)
{
	static struct aiocb cbs[N];
	struct aiocb *list[N];
	char *bufs[N], *warm;
	int fd, i, in_progress = 0, ok = 1;
	setup_common(argc, argv);
	fd = make_file("data", LEN, 9);
	/* In the page cache. */
	warm = malloc(LEN);
	CHECK(warm && pread(fd, warm, LEN, 0) == LEN);
	free(warm);
	for (i = 0; i < N; i++) {
		bufs[i] = malloc(LEN);
		CHECK(bufs[i]);
		memset(bufs[i], 0, LEN);
		prep(&cbs[i], fd, bufs[i], LEN, 0);
		cbs[i].aio_lio_opcode = LIO_READ;
		list[i] = &cbs[i];
	}
	SHOW("lio_listio(LIO_NOWAIT) of 10 reads of 64 MiB", lio_listio(LIO_NOWAIT, list, N, NULL));
	for (i = 0; i < N; i++)
		in_progress += aio_error(&cbs[i]) == EINPROGRESS;
	printf("in progress when it returned = %s\n", in_progress > 0 ? "some" : "none");
	for (i = 0; i < N; i++) {
		wait_done(&cbs[i]);
		ok &= aio_error(&cbs[i]) == 0 && aio_return(&cbs[i]) == LEN &&
		      matches_pattern(bufs[i], LEN, 9, 0);
		if (i > 0)
			free(bufs[i]);
	}
	printf("all read in full with the right data = %s\n", ok ? "yes" : "no");
	/* The same for one request alone. */
	{
		struct aiocb one;
		prep(&one, fd, bufs[0], LEN, 0);
		SHOW("aio_read of 64 MiB", aio_read(&one));
		printf("in progress when it returned = %s\n",
		       aio_error(&one) == EINPROGRESS ? "yes" : "no");
		wait_done(&one);
		printf("read in full = %s\n", aio_return(&one) == LEN ? "yes" : "no");
	}
	free(bufs[0]);
	return 0;
}
