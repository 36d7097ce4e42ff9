/* io_cancel: a poll request cancels (EINPROGRESS, then its completion arrives once); file I/O
 * and requests not in flight do not; argument errors. */
#include "common.h"

static int cb_calls;
static long cb_res;
static struct iocb *cb_iocb;
static void on_done(io_context_t ctx, struct iocb *iocb, long res, long res2)
{
	(void)ctx;
	(void)res2;
	cb_calls++;
	cb_res = res;
	cb_iocb = iocb;
}

int main(int argc, char **argv)
{
	io_context_t ctx;
	struct iocb pollio, readio, fresh, *list[1];
	struct io_event ev[4], out;
	struct timespec ts = ms(5000), zero = {0, 0};
	char buf[4096];
	int fd, pipefd[2];
	long r;

	setup_common(argc, argv);
	fd = make_file("cancel.dat", 4096, 4);
	CHECK(pipe(pipefd) == 0);
	ctx = new_ctx(8);

	printf("-- a poll request\n");
	io_prep_poll(&pollio, pipefd[0], POLLIN);
	pollio.data = (void *)0x77;
	list[0] = &pollio;
	SHOW(io_submit(ctx, 1, list));
	SHOW(io_getevents(ctx, 0, 4, ev, &zero));
	memset(&out, 0xa5, sizeof(out));
	SHOW(io_cancel(ctx, &pollio, &out));
	printf("result event untouched: %s\n", out.res2 == (unsigned long)0xa5a5a5a5a5a5a5a5UL ? "yes" : "no");
	r = io_getevents(ctx, 1, 4, ev, &ts);
	printf("completion: %s data %lx res %ld res2 %ld is pollio: %s\n", rc(r),
	       (long)ev[0].data, (long)ev[0].res, (long)ev[0].res2,
	       ev[0].obj == &pollio ? "yes" : "no");
	SHOW(io_getevents(ctx, 0, 4, ev, &zero)); /* exactly once */
	SHOW(io_cancel(ctx, &pollio, &out)); /* no longer in flight */

	printf("-- cancel twice\n");
	SHOW(io_submit(ctx, 1, list));
	SHOW(io_cancel(ctx, &pollio, &out));
	SHOW(io_cancel(ctx, &pollio, &out));
	SHOW(io_getevents(ctx, 1, 4, ev, &ts));
	SHOW(io_getevents(ctx, 0, 4, ev, &zero));

	printf("-- a poll that completed before the cancel\n");
	SHOW(io_submit(ctx, 1, list));
	CHECK(write(pipefd[1], "x", 1) == 1);
	r = io_getevents(ctx, 1, 4, ev, &ts);
	printf("completion: %s res %s\n", rc(r), pollres((long)ev[0].res));
	SHOW(io_cancel(ctx, &pollio, &out));
	CHECK(read(pipefd[0], buf, 1) == 1);

	printf("-- file I/O\n");
	io_prep_pread(&readio, fd, buf, 4096, 0);
	list[0] = &readio;
	SHOW(io_submit(ctx, 1, list));
	SHOW(io_cancel(ctx, &readio, &out));
	r = io_getevents(ctx, 1, 4, ev, &ts);
	printf("completion: %s res %ld\n", rc(r), (long)ev[0].res);

	printf("-- arguments\n");
	io_prep_poll(&pollio, pipefd[0], POLLIN);
	list[0] = &pollio;
	SHOW(io_submit(ctx, 1, list));
	SHOW(io_cancel(ctx, NULL, &out));
	SHOW(io_cancel(ctx, (struct iocb *)8, &out));
	SHOW(io_cancel(0, &pollio, &out));
	SHOW(io_cancel((io_context_t)1, &pollio, &out));
	memset(&fresh, 0, sizeof(fresh));
	SHOW(io_cancel(ctx, &fresh, &out)); /* never submitted */
	fresh.key = 5;
	SHOW(io_cancel(ctx, &fresh, &out)); /* a key the kernel never sets */
	SHOW(io_cancel(ctx, &pollio, NULL)); /* current kernels do not write the event */
	SHOW(io_getevents(ctx, 1, 4, ev, &ts));

	printf("-- cancelled poll with a callback, through io_queue_run\n");
	SHOW(io_poll(ctx, &pollio, on_done, pipefd[0], POLLIN));
	SHOW(io_cancel(ctx, &pollio, &out));
	{
		int tries = 0;
		while (cb_calls == 0 && tries++ < 500) {
			r = io_queue_run(ctx);
			if (r < 0)
				break;
			if (cb_calls == 0)
				usleep(1000);
		}
	}
	printf("callback calls %d res %ld is pollio: %s\n", cb_calls, cb_res,
	       cb_iocb == &pollio ? "yes" : "no");
	SHOW(io_destroy(ctx));

	printf("-- destroy with a poll in flight\n");
	ctx = new_ctx(8);
	SHOW(io_submit(ctx, 1, list));
	SHOW(io_destroy(ctx)); /* cancels it */
	close(fd);
	return 0;
}
