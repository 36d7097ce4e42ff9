/* io_submit: counts and errors, partial submits (the first requests are taken, the first bad
 * one stops the batch), and EAGAIN when a small context is full. */
#include "common.h"

static int pin_to_one_cpu(void)
{
	/* The kernel hands out request slots to each CPU in batches: staying on one CPU makes
	 * the number of requests a context accepts before EAGAIN the same from run to run. */
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

int main(int argc, char **argv)
{
	io_context_t ctx, small;
	struct iocb good1, good2, bad, *list[3];
	struct iocb *null_list[1] = {NULL};
	struct io_event ev[8];
	static struct iocb polls[300];
	static struct iocb *plist[300];
	static struct io_event pev[300];
	char b1[4096], b2[4096], b3[4096];
	int fd, pipefd[2], i, n, accepted, batch;
	long r, res;
	struct timespec ts = ms(5000);

	setup_common(argc, argv);
	fd = make_file("submit.dat", 16384, 2);
	ctx = new_ctx(64);
	io_prep_pread(&good1, fd, b1, 4096, 0);
	io_prep_pread(&good2, fd, b2, 4096, 4096);
	list[0] = &good1;

	SHOW(io_submit(ctx, 0, list));
	SHOW(io_submit(ctx, -1, list));
	SHOW(io_submit(ctx, 1, NULL));
	SHOW(io_submit(ctx, 0, NULL));
	SHOW(io_submit(ctx, 1, null_list));
	SHOW(io_submit(0, 1, list));
	SHOW(io_submit((io_context_t)1, 1, list));

	/* Refused requests: the error of the first is the call's. */
	io_prep_pread(&bad, fd, b3, 4096, 0);
	bad.aio_lio_opcode = 99;
	list[0] = &bad;
	printf("bad opcode: %s\n", rc(io_submit(ctx, 1, list)));
	bad.aio_lio_opcode = IO_CMD_NOOP;
	printf("IO_CMD_NOOP: %s\n", rc(io_submit(ctx, 1, list)));
	io_prep_pread(&bad, -1, b3, 4096, 0);
	printf("fd -1: %s\n", rc(io_submit(ctx, 1, list)));
	io_prep_pread(&bad, 1000, b3, 4096, 0);
	printf("fd not open: %s\n", rc(io_submit(ctx, 1, list)));
	io_prep_pread(&bad, fd, b3, 4096, 0);
	bad.u.c.__pad3 = 1;
	printf("reserved field set: %s\n", rc(io_submit(ctx, 1, list)));
	io_prep_pread(&bad, fd, b3, 4096, 0);
	io_set_eventfd(&bad, 1000);
	printf("bad eventfd: %s\n", rc(io_submit(ctx, 1, list)));
	io_prep_pread(&bad, fd, b3, 4096, 0);
	bad.u.c.flags = 1 << 7;
	printf("unknown IOCB flag: %s\n", rc(io_submit(ctx, 1, list)));
	io_prep_pwrite(&bad, pipefd[0] = open(path_of("submit.dat"), O_RDONLY), b3, 16, 0);
	printf("write to read-only fd: %s\n", rc(io_submit(ctx, 1, list)));
	close(pipefd[0]);

	/* Partial submits: a bad request in the middle stops the batch after the good ones. */
	io_prep_pread(&bad, fd, b3, 4096, 0);
	bad.aio_lio_opcode = 99;
	list[0] = &good1;
	list[1] = &bad;
	list[2] = &good2;
	printf("good, bad, good: %s\n", rc(io_submit(ctx, 3, list)));
	r = io_getevents(ctx, 1, 8, ev, &ts);
	printf("completions: %s, first is good1: %s, res %ld\n", rc(r),
	       r >= 1 && ev[0].obj == &good1 ? "yes" : "no", r >= 1 ? (long)ev[0].res : 0L);
	list[0] = &good1;
	list[1] = &good2;
	list[2] = NULL;
	printf("good, good, NULL: %s\n", rc(io_submit(ctx, 3, list)));
	r = io_getevents(ctx, 2, 8, ev, &ts);
	printf("completions: %s\n", rc(r));
	printf("data ok: %s\n", matches_pattern((unsigned char *)b1, 4096, 2, 0) &&
	       matches_pattern((unsigned char *)b2, 4096, 2, 4096) ? "yes" : "no");

	/* Submit, then read the results in submission order. */
	for (i = 0; i < 3; i++) {
		static struct iocb ios[3];
		static char bufs[3][512];
		io_prep_pread(&ios[i], fd, bufs[i], 512, 512 * i + 100);
		ios[i].data = (void *)(long)(i + 1);
		list[i] = &ios[i];
	}
	SHOW(io_submit(ctx, 3, list));
	r = io_getevents(ctx, 3, 3, ev, &ts);
	printf("got %s:", rc(r));
	for (i = 0; i < r; i++)
		printf(" data=%ld res=%ld", (long)ev[i].data, (long)ev[i].res);
	printf("\n");

	/* The kernel takes the array and the iocbs at any address: an odd one works. */
	{
		static char raw_ios[sizeof(struct iocb *) + 1], raw_cb[sizeof(struct iocb) + 1];
		static char odd_buf[512];
		struct iocb *odd_cb = (struct iocb *)(raw_cb + 1), tmp;
		struct iocb **odd_list = (struct iocb **)(raw_ios + 1);
		io_prep_pread(&tmp, fd, odd_buf, 512, 1000);
		tmp.data = (void *)7L;
		memcpy(odd_cb, &tmp, sizeof(tmp));
		memcpy(odd_list, &odd_cb, sizeof(odd_cb));
		printf("unaligned array and iocb: %s\n", rc(io_submit(ctx, 1, odd_list)));
		r = io_getevents(ctx, 1, 1, ev, &ts);
		printf("its completion: %s data=%ld res=%ld obj ok: %s data ok: %s\n", rc(r),
		       (long)ev[0].data, (long)ev[0].res, ev[0].obj == odd_cb ? "yes" : "no",
		       matches_pattern((unsigned char *)odd_buf, 512, 2, 1000) ? "yes" : "no");
	}
	SHOW(io_destroy(ctx));

	/* EAGAIN: a context made for 1 request takes as many as its ring has slots for (the kernel
	 * rounds up), then refuses. Poll requests on an empty pipe stay in flight. */
	CHECK(pipe(pipefd) == 0);
	CHECK(pin_to_one_cpu() == 0);
	for (i = 0; i < 300; i++) {
		io_prep_poll(&polls[i], pipefd[0], POLLIN);
		polls[i].data = (void *)(long)i;
		plist[i] = &polls[i];
	}
	small = new_ctx(1);
	accepted = 0;
	for (i = 0; i < 300; i++) {
		r = io_submit(small, 1, &plist[i]);
		if (r != 1)
			break;
		accepted++;
	}
	printf("one at a time: %d accepted, then %s\n", accepted, rc(r));
	printf("more after EAGAIN: %s\n", rc(io_submit(small, 1, &plist[accepted])));
	/* Cancel them all; every cancelled poll still completes once. */
	n = 0;
	for (i = 0; i < accepted; i++)
		n += io_cancel(small, &polls[i], &pev[0]) == -EINPROGRESS;
	printf("cancelled (EINPROGRESS): %d\n", n);
	n = 0;
	while (n < accepted) {
		r = io_getevents(small, 1, 300, pev, &ts);
		if (r <= 0)
			break;
		for (i = 0; i < r; i++)
			if ((long)pev[i].res != 0)
				printf("unexpected res %ld\n", (long)pev[i].res);
		n += r;
	}
	printf("completions after cancel: %d\n", n);
	/* Once reaped, the slots are free again. */
	printf("after reaping: %s\n", rc(io_submit(small, 1, &plist[0])));
	SHOW(io_cancel(small, &polls[0], &pev[0]));
	SHOW(io_getevents(small, 1, 1, pev, &ts));
	SHOW(io_destroy(small));

	/* The same as one batch of 300: nr is capped at what the context can hold. */
	small = new_ctx(1);
	batch = io_submit(small, 300, plist);
	printf("batch of 300: %s accepted (same as one at a time: %s)\n", rc(batch),
	       batch == accepted ? "yes" : "no");
	SHOW(io_submit(small, 1, &plist[299]));
	/* Completing some makes room: write to the pipe, every poll completes. */
	CHECK(write(pipefd[1], "x", 1) == 1);
	n = 0;
	while (n < batch) {
		r = io_getevents(small, 1, 300, pev, &ts);
		if (r <= 0)
			break;
		for (i = 0; i < r; i++)
			if (strcmp(pollres((long)pev[i].res), "POLLIN") != 0)
				printf("unexpected res %ld\n", (long)pev[i].res);
		n += r;
	}
	printf("completions after write: %d (all POLLIN)\n", n);
	printf("room again: %s\n", rc(io_submit(small, 1, &plist[0])));
	r = io_getevents(small, 1, 1, pev, &ts);
	printf("poll on a readable pipe: %s res %s\n", rc(r), r == 1 ? pollres((long)pev[0].res) : "-");
	SHOW(io_destroy(small));
	(void)res;
	return 0;
}
