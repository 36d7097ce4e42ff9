/* The symbol versions programs bind to, looked up with dlvsym, and the LIBAIO_0.1 compat
 * functions (old io_getevents without min_nr, io_cancel without the event, io_queue_wait)
 * called through them. */
#include "common.h"

typedef int (*getevents_0_1_t)(io_context_t, long, struct io_event *, const struct timespec *);
typedef int (*cancel_0_1_t)(io_context_t, struct iocb *);
typedef int (*queue_wait_t)(io_context_t, struct timespec *);
typedef int (*submit_t)(io_context_t, long, struct iocb **);
typedef int (*queue_init_t)(int, io_context_t *);
typedef int (*ctx_only_t)(io_context_t);

static void *sym(const char *name, const char *version)
{
	void *p = dlvsym(RTLD_DEFAULT, name, version);
	printf("%s@%s: %s\n", name, version, p ? "found" : "missing");
	return p;
}

int main(int argc, char **argv)
{
	static const char *names[] = {"io_setup", "io_destroy", "io_submit", "io_cancel",
				      "io_getevents", "io_pgetevents", "io_queue_init",
				      "io_queue_release", "io_queue_run", "io_queue_wait"};
	static const char *versions[] = {"LIBAIO_0.1", "LIBAIO_0.4", "LIBAIO_0.5"};
	getevents_0_1_t getevents_0_1;
	cancel_0_1_t cancel_0_1;
	queue_wait_t wait_0_1, wait_0_4;
	submit_t submit_0_1;
	queue_init_t init_0_1;
	ctx_only_t run_0_1, release_0_1;
	io_context_t ctx = 0;
	struct iocb io, pollio, *list[1];
	struct io_event ev[4];
	struct timespec zero = {0, 0}, ts = ms(5000);
	char buf[512];
	int fd, pipefd[2];
	size_t n, v;
	long r;

	setup_common(argc, argv);
	for (n = 0; n < sizeof(names) / sizeof(names[0]); n++)
		for (v = 0; v < sizeof(versions) / sizeof(versions[0]); v++)
			sym(names[n], versions[v]);
	/* What a program linked today binds to: the default versions. */
	printf("io_getevents is the 0.4 one: %s\n",
	       dlvsym(RTLD_DEFAULT, "io_getevents", "LIBAIO_0.4") == (void *)io_getevents ? "yes" : "no");
	printf("io_cancel is the 0.4 one: %s\n",
	       dlvsym(RTLD_DEFAULT, "io_cancel", "LIBAIO_0.4") == (void *)io_cancel ? "yes" : "no");
	printf("io_submit is the 0.1 one: %s\n",
	       dlvsym(RTLD_DEFAULT, "io_submit", "LIBAIO_0.1") == (void *)io_submit ? "yes" : "no");
	printf("io_pgetevents is the 0.5 one: %s\n",
	       dlvsym(RTLD_DEFAULT, "io_pgetevents", "LIBAIO_0.5") == (void *)io_pgetevents ? "yes" : "no");
	printf("dlsym(io_getevents) is the default: %s\n",
	       dlsym(RTLD_DEFAULT, "io_getevents") == (void *)io_getevents ? "yes" : "no");

	getevents_0_1 = (getevents_0_1_t)dlvsym(RTLD_DEFAULT, "io_getevents", "LIBAIO_0.1");
	cancel_0_1 = (cancel_0_1_t)dlvsym(RTLD_DEFAULT, "io_cancel", "LIBAIO_0.1");
	wait_0_1 = (queue_wait_t)dlvsym(RTLD_DEFAULT, "io_queue_wait", "LIBAIO_0.1");
	wait_0_4 = (queue_wait_t)dlvsym(RTLD_DEFAULT, "io_queue_wait", "LIBAIO_0.4");
	submit_0_1 = (submit_t)dlvsym(RTLD_DEFAULT, "io_submit", "LIBAIO_0.1");
	init_0_1 = (queue_init_t)dlvsym(RTLD_DEFAULT, "io_queue_init", "LIBAIO_0.1");
	run_0_1 = (ctx_only_t)dlvsym(RTLD_DEFAULT, "io_queue_run", "LIBAIO_0.1");
	release_0_1 = (ctx_only_t)dlvsym(RTLD_DEFAULT, "io_queue_release", "LIBAIO_0.1");
	CHECK(getevents_0_1 && cancel_0_1 && wait_0_1 && wait_0_4 && submit_0_1 && init_0_1 &&
	      run_0_1 && release_0_1);

	fd = make_file("compat.dat", 4096, 8);
	CHECK(pipe(pipefd) == 0);
	printf("-- through the LIBAIO_0.1 symbols\n");
	printf("io_queue_init@0.1 = %s\n", rc(init_0_1(8, &ctx)));
	io_prep_pread(&io, fd, buf, 512, 512);
	io.data = (void *)0x42;
	list[0] = &io;
	printf("io_submit@0.1 = %s\n", rc(submit_0_1(ctx, 1, list)));
	r = getevents_0_1(ctx, 4, ev, &ts); /* at least one */
	printf("io_getevents@0.1(ctx, 4, ev, 5 s) = %s data %lx res %ld\n", rc(r),
	       (long)ev[0].data, (long)ev[0].res);
	printf("io_getevents@0.1(ctx, 4, ev, 0) = %s\n", rc(getevents_0_1(ctx, 4, ev, &zero)));
	printf("io_getevents@0.1(0, 4, ev, 0) = %s\n", rc(getevents_0_1(0, 4, ev, &zero)));
	printf("io_getevents@0.1(ctx, -1, ev, NULL) = %s\n", rc(getevents_0_1(ctx, -1, ev, NULL)));
	printf("io_getevents@0.1(ctx, 0, ev, NULL) = %s\n", rc(getevents_0_1(ctx, 0, ev, NULL)));
	io_prep_poll(&pollio, pipefd[0], POLLIN);
	list[0] = &pollio;
	printf("io_submit@0.1 poll = %s\n", rc(submit_0_1(ctx, 1, list)));
	printf("io_cancel@0.1 = %s\n", rc(cancel_0_1(ctx, &pollio)));
	r = getevents_0_1(ctx, 4, ev, NULL);
	printf("io_getevents@0.1 after cancel = %s res %ld\n", rc(r), (long)ev[0].res);
	printf("io_cancel@0.1 again = %s\n", rc(cancel_0_1(ctx, &pollio)));
	printf("io_cancel@0.1(ctx, NULL) = %s\n", rc(cancel_0_1(ctx, NULL)));
	printf("io_queue_wait@0.1(ctx, NULL) = %s\n", rc(wait_0_1(ctx, NULL)));
	printf("io_queue_wait@0.1(ctx, 0) = %s\n", rc(wait_0_1(ctx, &zero)));
	printf("io_queue_wait@0.1(0, NULL) = %s\n", rc(wait_0_1(0, NULL)));
	printf("io_queue_wait@0.4(ctx, NULL) = %s\n", rc(wait_0_4(ctx, NULL)));
	printf("io_queue_run@0.1 = %s\n", rc(run_0_1(ctx)));
	printf("io_queue_release@0.1 = %s\n", rc(release_0_1(ctx)));
	printf("io_queue_release@0.1 again = %s\n", rc(release_0_1(ctx)));
	return 0;
}
