/* aio_cancel: a request that is done (AIO_ALLDONE), a pipe read waiting for data, every request
 * on a descriptor (a null aiocb), a bad descriptor (EBADF), an aiocb for another descriptor
 * (EINVAL). A cancelled request's status is ECANCELED, and its notification is still sent. */
#include "common.h"

#define SIG (SIGRTMIN + 3)

static int pending_signals(void)
{
	sigset_t set;
	int n = 0;
	sigemptyset(&set);
	sigaddset(&set, SIG);
	while (sigtimedwait_retry(&set, NULL, 0) == SIG)
		n++;
	return n;
}

int main(int argc, char **argv)
{
	struct aiocb cb, a, b, other;
	char buf[64], ca = 0, cbyte = 0;
	int fd, fd2, p[2], q[2], r;
	sigset_t set;
	setup_common(argc, argv);
	/* The completion signal stays pending until collected. */
	sigemptyset(&set);
	sigaddset(&set, SIG);
	CHECK(pthread_sigmask(SIG_BLOCK, &set, NULL) == 0);

	fd = make_file("data", 4096, 6);
	fd2 = make_file("other", 4096, 7);

	/* Done already. */
	prep(&cb, fd, buf, sizeof(buf), 0);
	CHECK(aio_read(&cb) == 0);
	wait_done(&cb);
	SHOW("cancel done request", aio_cancel(fd, &cb));
	printf("done request error = %s\n", error_of(&cb));
	SHOW("cancel all on fd, none in flight", aio_cancel(fd, NULL));

	/* Bad descriptor, mismatched descriptor. */
	close(999);
	SHOW("cancel fd -1", aio_cancel(-1, NULL));
	SHOW("cancel closed fd", aio_cancel(999, NULL));
	prep(&other, fd2, buf, sizeof(buf), 0);
	SHOW("cancel aiocb of another fd", aio_cancel(fd, &other));
	prep(&other, 999, buf, sizeof(buf), 0);
	SHOW("cancel closed fd with aiocb", aio_cancel(999, &other));

	/* A pipe read waiting for data, with a completion signal. */
	CHECK(pipe(p) == 0);
	prep(&a, p[0], &ca, 1, 0);
	a.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
	a.aio_sigevent.sigev_signo = SIG;
	a.aio_sigevent.sigev_value.sival_int = 1;
	CHECK(aio_read(&a) == 0);
	/* Time for glibc's thread to be in read(2), and for io_uring to wait on the pipe. */
	sleep_ms(200);
	r = aio_cancel(p[0], &a);
	printf("cancel pipe read = %s\n", r == AIO_CANCELED ? "AIO_CANCELED" :
	       r == AIO_NOTCANCELED ? "AIO_NOTCANCELED" : r == AIO_ALLDONE ? "AIO_ALLDONE" :
	       posix_rc(r, errno));
	printf("pipe read error after cancel = %s\n", error_of(&a));
	/* Whatever was not cancelled completes once there is data. */
	CHECK(write(p[1], "z", 1) == 1);
	wait_done(&a);
	printf("pipe read error at the end = %s\n", error_of(&a));
	printf("pipe read return at the end = %s\n", posix_rc(aio_return(&a), errno));
	sleep_ms(50);
	printf("pipe read signals = %d\n", pending_signals());
	SHOW("cancel it again", aio_cancel(p[0], &a));

	/* Every request on a descriptor: two pipe reads. */
	CHECK(pipe(q) == 0);
	prep(&a, q[0], &ca, 1, 0);
	prep(&b, q[0], &cbyte, 1, 0);
	CHECK(aio_read(&a) == 0);
	CHECK(aio_read(&b) == 0);
	sleep_ms(200);
	r = aio_cancel(q[0], NULL);
	printf("cancel two pipe reads = %s\n", r == AIO_CANCELED ? "AIO_CANCELED" :
	       r == AIO_NOTCANCELED ? "AIO_NOTCANCELED" : r == AIO_ALLDONE ? "AIO_ALLDONE" :
	       posix_rc(r, errno));
	printf("after cancel: first = %s, second = %s\n", error_of(&a), error_of(&b));
	/* A byte for each read that was not cancelled (an extra one stays in the pipe). */
	CHECK(write(q[1], "ww", 2) == 2);
	wait_done(&a);
	wait_done(&b);
	printf("at the end: first = %s, second = %s\n", error_of(&a), error_of(&b));
	SHOW("cancel all again", aio_cancel(q[0], NULL));
	return 0;
}
