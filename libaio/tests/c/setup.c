/* io_setup, io_destroy, io_queue_init, io_queue_release: results for good and bad arguments,
 * many contexts, an unaligned ctxp, and a forked child (which inherits no context). */
#include "common.h"

int main(int argc, char **argv)
{
	io_context_t ctx = 0, ctx2, zero_ctx = 0, q, many[32];
	struct io_event ev[4];
	struct timespec zero = {0, 0};
	struct iocb io, *list[1] = {&io};
	char buf[4096], raw[16];
	io_context_t *unaligned = (io_context_t *)(raw + 1);
	int i, ok, fd, status;
	long r;
	pid_t pid;

	setup_common(argc, argv);

	SHOW(io_setup(8, &ctx));
	printf("ctx set: %s\n", ctx ? "yes" : "no");
	ctx2 = ctx;
	SHOW(io_setup(8, &ctx2)); /* *ctxp must be 0 */
	printf("ctx2 unchanged: %s\n", ctx2 == ctx ? "yes" : "no");
	SHOW(io_setup(0, &zero_ctx));
	SHOW(io_setup(-1, &zero_ctx));
	SHOW(io_setup(INT_MAX, &zero_ctx));
	SHOW(io_setup(8, NULL));
	SHOW(io_setup(8, (io_context_t *)8));
	SHOW(io_setup(8, (io_context_t *)-1L));
	printf("zero_ctx still 0: %s\n", zero_ctx == 0 ? "yes" : "no");

	SHOW(io_destroy(ctx));
	SHOW(io_destroy(ctx));
	SHOW(io_destroy(0));
	SHOW(io_destroy((io_context_t)1));
	SHOW(io_destroy((io_context_t)-1L));

	/* Errors are returned, errno is left alone. */
	errno = EDOM;
	r = io_destroy(0);
	printf("io_destroy(0) = %s, errno kept: %s\n", rc(r), errno == EDOM ? "yes" : "no");
	errno = EDOM;
	r = io_getevents(0, 1, 1, ev, NULL);
	printf("io_getevents(0, ...) = %s, errno kept: %s\n", rc(r), errno == EDOM ? "yes" : "no");
	errno = EDOM;
	r = io_submit(0, 1, list);
	printf("io_submit(0, ...) = %s, errno kept: %s\n", rc(r), errno == EDOM ? "yes" : "no");

	SHOW(io_queue_init(0, &zero_ctx));
	SHOW(io_queue_init(-3, &zero_ctx));
	q = (io_context_t)0x1234; /* io_queue_init clears it first */
	SHOW(io_queue_init(4, &q));
	printf("q set: %s\n", q && q != (io_context_t)0x1234 ? "yes" : "no");
	SHOW(io_queue_release(q));
	SHOW(io_queue_release(q));
	SHOW(io_queue_release(0));

	/* An unaligned ctxp works, as the kernel allows it. */
	memset(raw, 0, sizeof(raw));
	SHOW(io_setup(4, unaligned));
	memcpy(&q, raw + 1, sizeof(q));
	printf("unaligned ctx set: %s\n", q ? "yes" : "no");
	SHOW(io_destroy(q));
	memset(raw, 0, sizeof(raw));
	SHOW(io_queue_init(4, unaligned));
	memcpy(&q, raw + 1, sizeof(q));
	SHOW(io_queue_release(q));

	/* Many contexts at once, destroyed in another order. */
	ok = 0;
	for (i = 0; i < 32; i++) {
		many[i] = 0;
		ok += io_setup(4, &many[i]) == 0;
	}
	printf("contexts created: %d\n", ok);
	for (i = 0; i < 32; i += 2)
		ok -= io_destroy(many[i]) == 0;
	for (i = 1; i < 32; i += 2)
		ok -= io_destroy(many[i]) == 0;
	printf("contexts left: %d\n", ok);

	/* fork: the child has no AIO context (the kernel does not inherit them); whatever the
	 * library remembers about the parent's must not make it touch the parent's ring. */
	fd = make_file("setup.dat", 4096, 1);
	ctx = new_ctx(8);
	io_prep_pread(&io, fd, buf, 4096, 0);
	SHOW(io_submit(ctx, 1, list)); /* buffered: complete on return */
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		io_context_t c = 0;
		printf("child: io_getevents zero timeout = %s\n",
		       rc(io_getevents(ctx, 0, 4, ev, &zero)));
		printf("child: io_getevents wait = %s\n", rc(io_getevents(ctx, 1, 4, ev, NULL)));
		printf("child: io_queue_run = %s\n", rc(io_queue_run(ctx)));
		printf("child: io_destroy = %s\n", rc(io_destroy(ctx)));
		printf("child: io_setup = %s\n", rc(io_setup(4, &c)));
		io_prep_pread(&io, fd, buf, 512, 0);
		printf("child: io_submit = %s\n", rc(io_submit(c, 1, list)));
		r = io_getevents(c, 1, 4, ev, NULL);
		printf("child: io_getevents = %s res %ld\n", rc(r), r == 1 ? (long)ev[0].res : 0L);
		printf("child: io_destroy = %s\n", rc(io_destroy(c)));
		fflush(stdout);
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	printf("child exit: %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
	r = io_getevents(ctx, 1, 4, ev, NULL);
	printf("parent: io_getevents = %s res %ld\n", rc(r), r == 1 ? (long)ev[0].res : 0L);
	SHOW(io_destroy(ctx));
	close(fd);
	return 0;
}
