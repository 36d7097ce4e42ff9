/* IOCB_FLAG_RESFD through io_set_eventfd: the eventfd counts completions. */
#include "common.h"

int main(int argc, char **argv)
{
	io_context_t ctx;
	struct iocb ios[3], pollio, bad, *list[3];
	struct io_event ev[4];
	struct timespec ts = ms(5000);
	struct pollfd pfd;
	char bufs[3][1024];
	uint64_t count;
	int fd, efd, efd_nb, pipefd[2], i;
	long r;

	setup_common(argc, argv);
	fd = make_file("eventfd.dat", 4096, 5);
	CHECK(pipe(pipefd) == 0);
	efd = eventfd(0, 0);
	efd_nb = eventfd(0, EFD_NONBLOCK);
	CHECK(efd >= 0 && efd_nb >= 0);
	ctx = new_ctx(8);

	for (i = 0; i < 3; i++) {
		io_prep_pread(&ios[i], fd, bufs[i], 1024, 1024 * i);
		io_set_eventfd(&ios[i], efd);
		list[i] = &ios[i];
	}
	printf("flags %u resfd is efd: %s\n", ios[0].u.c.flags,
	       ios[0].u.c.resfd == (unsigned)efd ? "yes" : "no");
	SHOW(io_submit(ctx, 3, list));
	r = read(efd, &count, sizeof(count));
	printf("eventfd read %ld bytes: count %llu\n", r, (unsigned long long)count);
	r = io_getevents(ctx, 3, 4, ev, &ts);
	printf("io_getevents: %s res %ld %ld %ld\n", rc(r), (long)ev[0].res, (long)ev[1].res,
	       (long)ev[2].res);

	/* A poll with the eventfd: nothing until the pipe is written. */
	io_prep_poll(&pollio, pipefd[0], POLLIN);
	io_set_eventfd(&pollio, efd_nb);
	list[0] = &pollio;
	SHOW(io_submit(ctx, 1, list));
	r = read(efd_nb, &count, sizeof(count));
	printf("eventfd before the write: %s\n", rc(r < 0 ? -errno : r));
	CHECK(write(pipefd[1], "x", 1) == 1);
	pfd.fd = efd_nb;
	pfd.events = POLLIN;
	r = poll(&pfd, 1, 5000);
	printf("eventfd readable: %s\n", r == 1 && (pfd.revents & POLLIN) ? "yes" : "no");
	r = read(efd_nb, &count, sizeof(count));
	printf("eventfd count %llu\n", (unsigned long long)count);
	r = io_getevents(ctx, 1, 4, ev, &ts);
	printf("poll completion: %s res %s\n", rc(r), pollres((long)ev[0].res));

	/* A descriptor that is not an eventfd, and one that is not open. */
	io_prep_pread(&bad, fd, bufs[0], 1024, 0);
	io_set_eventfd(&bad, pipefd[1]);
	list[0] = &bad;
	printf("resfd is a pipe: %s\n", rc(io_submit(ctx, 1, list)));
	io_set_eventfd(&bad, 999);
	printf("resfd not open: %s\n", rc(io_submit(ctx, 1, list)));
	SHOW(io_destroy(ctx));
	return 0;
}
