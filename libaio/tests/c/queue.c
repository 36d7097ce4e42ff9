/* io_queue_init, io_queue_run (callbacks, callbacks that submit), io_queue_wait,
 * io_queue_release, and the io_poll/io_fsync/io_fdsync helpers. */
#include "common.h"

#define MAX_LOG 64
static struct { int tag; long res; long res2; } cb_log[MAX_LOG];
static int cb_count;
static io_context_t the_ctx;
static int ctx_matches = 1;

static struct iocb ios[8];
static char bufs[8][1024];
static int data_fd, out_fd;

static int tag_of(struct iocb *io)
{
	return io >= ios && io < ios + 8 ? (int)(io - ios) : -1;
}

static void on_done(io_context_t ctx, struct iocb *iocb, long res, long res2)
{
	if (ctx != the_ctx)
		ctx_matches = 0;
	if (cb_count < MAX_LOG) {
		cb_log[cb_count].tag = tag_of(iocb);
		cb_log[cb_count].res = iocb->aio_lio_opcode == IO_CMD_POLL && res > 0 && (res & POLLIN) ? POLLIN : res;
		cb_log[cb_count].res2 = res2;
	}
	cb_count++;
}

/* Like the seed's rd_done: turns a completed read into a write of the same bytes. */
static void read_then_write(io_context_t ctx, struct iocb *iocb, long res, long res2)
{
	struct iocb *w = &ios[7];
	on_done(ctx, iocb, res, res2);
	io_prep_pwrite(w, out_fd, iocb->u.c.buf, res, iocb->u.c.offset);
	io_set_callback(w, on_done);
	if (io_submit(ctx, 1, &w) != 1)
		printf("submit from callback failed\n");
}

static void print_log(const char *label)
{
	int i, j;
	/* Sorted by tag: completions of asynchronous ops (fsync) may come in any order. */
	for (i = 1; i < cb_count && i < MAX_LOG; i++)
		for (j = i; j > 0 && cb_log[j - 1].tag > cb_log[j].tag; j--) {
			typeof(cb_log[0]) t = cb_log[j];
			cb_log[j] = cb_log[j - 1];
			cb_log[j - 1] = t;
		}
	printf("%s: %d callbacks:", label, cb_count);
	for (i = 0; i < cb_count && i < MAX_LOG; i++)
		printf(" [%d res %ld res2 %ld]", cb_log[i].tag, cb_log[i].res, cb_log[i].res2);
	printf("\n");
	cb_count = 0;
}

/* Runs io_queue_run until `want` callbacks have run (asynchronous completions may need a
 * moment); returns the last io_queue_run result. */
static long run_until(int want)
{
	long r = 0;
	int tries = 0;
	while (tries++ < 5000) {
		r = io_queue_run(the_ctx);
		if (r < 0 || cb_count >= want)
			break;
		usleep(1000);
	}
	return r;
}

int main(int argc, char **argv)
{
	struct iocb *list[8];
	struct timespec zero = {0, 0}, t = ms(10);
	char check[1024];
	int pipefd[2], i;

	setup_common(argc, argv);
	data_fd = make_file("queue.dat", 4096, 7);
	out_fd = make_file("queue.out", 0, 0);
	CHECK(pipe(pipefd) == 0);

	SHOW(io_queue_init(16, &the_ctx));
	SHOW(io_queue_run(the_ctx)); /* nothing to do */
	SHOW(io_queue_wait(the_ctx, &zero));
	SHOW(io_queue_wait(the_ctx, &t));
	SHOW(io_queue_wait(the_ctx, NULL)); /* returns at once: it waits for nothing */
	SHOW(io_queue_wait(0, NULL));
	SHOW(io_queue_run(0));

	/* Three reads with callbacks. */
	for (i = 0; i < 3; i++) {
		io_prep_pread(&ios[i], data_fd, bufs[i], 1024, 1024 * i);
		io_set_callback(&ios[i], on_done);
		list[i] = &ios[i];
	}
	printf("data is the callback: %s\n", ios[0].data == (void *)on_done ? "yes" : "no");
	SHOW(io_submit(the_ctx, 3, list));
	SHOW(io_queue_run(the_ctx)); /* buffered reads are complete: their callbacks run */
	print_log("reads");
	SHOW(io_queue_run(the_ctx));
	print_log("again");

	/* The submit-and-callback helpers. */
	SHOW(io_fsync(the_ctx, &ios[3], on_done, data_fd));
	SHOW(io_fdsync(the_ctx, &ios[4], on_done, data_fd));
	SHOW(run_until(2));
	print_log("fsync, fdsync");
	SHOW(io_poll(the_ctx, &ios[5], on_done, pipefd[0], POLLIN));
	SHOW(io_queue_run(the_ctx));
	print_log("poll before the write");
	CHECK(write(pipefd[1], "x", 1) == 1);
	SHOW(run_until(1));
	print_log("poll after the write");

	/* A callback that submits: the write it queues completes within the same run. */
	io_prep_pread(&ios[6], data_fd, bufs[6], 1024, 2048);
	io_set_callback(&ios[6], read_then_write);
	list[0] = &ios[6];
	SHOW(io_submit(the_ctx, 1, list));
	SHOW(io_queue_run(the_ctx));
	print_log("read, then the write its callback submitted");
	CHECK(pread(out_fd, check, 1024, 2048) == 1024);
	printf("written copy ok: %s\n", matches_pattern((unsigned char *)check, 1024, 7, 2048) ? "yes" : "no");
	printf("callbacks got the context: %s\n", ctx_matches ? "yes" : "no");

	/* io_getevents sees the callback in data, as the seed program uses it. */
	io_prep_pread(&ios[0], data_fd, bufs[0], 1024, 0);
	io_set_callback(&ios[0], on_done);
	list[0] = &ios[0];
	SHOW(io_submit(the_ctx, 1, list));
	{
		struct io_event ev;
		long r = io_getevents(the_ctx, 1, 1, &ev, NULL);
		printf("io_getevents: %s, data is on_done: %s\n", rc(r),
		       ev.data == (void *)on_done ? "yes" : "no");
		((io_callback_t)ev.data)(the_ctx, ev.obj, ev.res, ev.res2);
		print_log("called by hand");
	}

	SHOW(io_queue_release(the_ctx));
	SHOW(io_queue_release(the_ctx));
	return 0;
}
