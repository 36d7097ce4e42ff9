/* Bad arguments. Each case runs in a child process, so that a crash is a line of the
 * transcript. Where the C libaio dereferences a bad pointer itself and crashes, ours answers
 * -EFAULT or -EINVAL; c_suite.rs lists those lines and why they differ. Everything else must
 * be the same: the kernel's answer. */
#include "common.h"

static struct io_event ev[4];
static struct timespec zero_ts = {0, 0};

static io_context_t ready_ctx(void)
{
	/* A context with one completed read in its ring. */
	static char buf[512];
	struct iocb io, *list[1] = {&io};
	int fd = make_file("badargs.dat", 512, 10);
	io_context_t ctx = new_ctx(4);
	io_prep_pread(&io, fd, buf, 512, 0);
	CHECK(io_submit(ctx, 1, list) == 1);
	return ctx;
}

/* -- the C libaio crashes on these */
static long init_null(void) { return io_queue_init(4, NULL); }
static long init_bad(void) { return io_queue_init(4, (io_context_t *)bad_ptr(8)); }
static long getevents_bad_timeout(void) { return io_getevents(new_ctx(4), 0, 1, ev, (struct timespec *)bad_ptr(8)); }
static long pgetevents_bad_timeout(void) { return io_pgetevents(new_ctx(4), 0, 1, ev, (struct timespec *)bad_ptr(8), NULL); }
static long getevents_bad_ctx_zero(void) { return io_getevents((io_context_t)bad_ptr(8), 0, 1, ev, &zero_ts); }
static long getevents_bad_ctx(void) { return io_getevents((io_context_t)bad_ptr(8), 1, 1, ev, NULL); }
static long queue_wait_bad_timeout(void) { return io_queue_wait(new_ctx(4), (struct timespec *)bad_ptr(8)); }
static long queue_run_bad_ctx(void) { return io_queue_run((io_context_t)bad_ptr(8)); }
static long queue_run_no_callback(void) { return io_queue_run(ready_ctx()); }
static long getevents_kernel_timeout(void) { return io_getevents(ready_ctx(), 1, 1, ev, (struct timespec *)bad_ptr(-64L)); }
static long queue_run_after_release(void)
{
	io_context_t ctx = new_ctx(4);
	CHECK(io_queue_release(ctx) == 0);
	return io_queue_run(ctx);
}
static long getevents_after_destroy(void)
{
	io_context_t ctx = new_ctx(4);
	CHECK(io_destroy(ctx) == 0);
	return io_getevents(ctx, 0, 1, ev, &zero_ts);
}
static long getevents_0_1_bad_timeout(void)
{
	int (*f)(io_context_t, long, struct io_event *, const struct timespec *) =
		(int (*)(io_context_t, long, struct io_event *, const struct timespec *))
			dlvsym(RTLD_DEFAULT, "io_getevents", "LIBAIO_0.1");
	return f(new_ctx(4), 1, ev, (struct timespec *)bad_ptr(8));
}
static long queue_wait_0_1_bad_timeout(void)
{
	int (*f)(io_context_t, struct timespec *) = (int (*)(io_context_t, struct timespec *))
		dlvsym(RTLD_DEFAULT, "io_queue_wait", "LIBAIO_0.1");
	return f(new_ctx(4), (struct timespec *)bad_ptr(8));
}

/* -- the same answer from both: the kernel's */
static long setup_bad_ctxp(void) { return io_setup(4, (io_context_t *)bad_ptr(8)); }
static long setup_kernel_ctxp(void) { return io_setup(4, (io_context_t *)bad_ptr(-8L)); }
static long getevents_bad_events(void) { return io_getevents(ready_ctx(), 1, 1, (struct io_event *)bad_ptr(8), NULL); }
static long getevents_kernel_events(void) { return io_getevents(ready_ctx(), 1, 1, (struct io_event *)bad_ptr(-64L), NULL); }
static long getevents_null_events(void) { return io_getevents(ready_ctx(), 1, 1, NULL, &zero_ts); }
static long getevents_events_past_end(void)
{
	/* An array that runs off the end of user space: the kernel writes the first event. */
	return io_getevents(ready_ctx(), 1, 1L << 40, ev, NULL);
}
static long getevents_huge_nr(void) { return io_getevents(ready_ctx(), 1, LONG_MAX, ev, NULL); }
static long getevents_min_gt_nr(void) { return io_getevents(ready_ctx(), 2, 1, ev, NULL); }
static long getevents_min_gt_nr_zero(void) { return io_getevents(new_ctx(4), 2, 1, ev, &zero_ts); }
static long getevents_neg_min(void) { return io_getevents(ready_ctx(), -1, 1, ev, NULL); }
static long getevents_neg_nr(void) { return io_getevents(ready_ctx(), 0, -5, ev, NULL); }
static long getevents_null_ctx(void) { return io_getevents(0, 1, 1, ev, &zero_ts); }
static long pgetevents_bad_mask(void) { return io_pgetevents(ready_ctx(), 1, 1, ev, NULL, (sigset_t *)bad_ptr(8)); }
static long pgetevents_bad_events(void) { return io_pgetevents(ready_ctx(), 1, 1, (struct io_event *)bad_ptr(8), NULL, NULL); }
static long submit_bad_list(void) { return io_submit(new_ctx(4), 1, (struct iocb **)bad_ptr(8)); }
static long submit_bad_iocb(void)
{
	struct iocb *list[1] = {(struct iocb *)bad_ptr(8)};
	return io_submit(new_ctx(4), 1, list);
}
static long submit_neg(void) { return io_submit(new_ctx(4), LONG_MIN, NULL); }
static long cancel_bad_iocb(void) { return io_cancel(new_ctx(4), (struct iocb *)bad_ptr(8), ev); }
static long cancel_bad_ctx(void)
{
	struct iocb io;
	memset(&io, 0, sizeof(io));
	return io_cancel((io_context_t)bad_ptr(8), &io, ev);
}
static long destroy_bad(void) { return io_destroy((io_context_t)bad_ptr(-1L)); }
static long release_bad(void) { return io_queue_release((io_context_t)bad_ptr(8)); }
static long queue_init_huge(void) { io_context_t c = 0; return io_queue_init(INT_MAX, &c); }

#define CASE(fn) guarded(#fn, fn)

int main(int argc, char **argv)
{
	setup_common(argc, argv);
	printf("-- where the C libaio dereferences the pointer itself\n");
	CASE(init_null);
	CASE(init_bad);
	CASE(getevents_bad_timeout);
	CASE(pgetevents_bad_timeout);
	CASE(getevents_bad_ctx_zero);
	CASE(getevents_bad_ctx);
	CASE(queue_wait_bad_timeout);
	CASE(queue_run_bad_ctx);
	CASE(queue_run_no_callback);
	CASE(getevents_0_1_bad_timeout);
	CASE(queue_wait_0_1_bad_timeout);
	CASE(getevents_kernel_timeout);
	CASE(queue_run_after_release);
	CASE(getevents_after_destroy);
	printf("-- the kernel's answer\n");
	CASE(setup_bad_ctxp);
	CASE(setup_kernel_ctxp);
	CASE(getevents_bad_events);
	CASE(getevents_kernel_events);
	CASE(getevents_null_events);
	CASE(getevents_events_past_end);
	CASE(getevents_huge_nr);
	CASE(getevents_min_gt_nr);
	CASE(getevents_min_gt_nr_zero);
	CASE(getevents_neg_min);
	CASE(getevents_neg_nr);
	CASE(getevents_null_ctx);
	CASE(pgetevents_bad_mask);
	CASE(pgetevents_bad_events);
	CASE(submit_bad_list);
	CASE(submit_bad_iocb);
	CASE(submit_neg);
	CASE(cancel_bad_iocb);
	CASE(cancel_bad_ctx);
	CASE(destroy_bad);
	CASE(release_bad);
	CASE(queue_init_huge);
	return 0;
}
