/* Invalid input: a bad descriptor, a negative offset, aio_reqprio out of range, a bad
 * aio_fsync operation, a bad sigevent, a null aiocb, and the status of aiocbs never submitted
 * or still in flight. Each answer is an errno, never a crash. */
#include "common.h"

static long read_null(void)
{
	return aio_read(opaque_ptr(0));
}

static long error_null(void)
{
	return aio_error(opaque_ptr(0));
}

static long thread_null_function(void)
{
	static char buf[16];
	struct aiocb cb;
	int fd = open(path_of("data"), O_RDONLY);
	CHECK(fd >= 0);
	prep(&cb, fd, buf, sizeof(buf), 0);
	cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
	cb.aio_sigevent.sigev_notify_function = NULL;
	if (aio_read(&cb) != 0)
		return -1;
	wait_done(&cb);
	sleep_ms(200); /* time for a notification thread to run */
	return aio_return(&cb);
}

int main(int argc, char **argv)
{
	struct aiocb cb;
	char buf[512];
	int fd, closed, p[2], prio;
	setup_common(argc, argv);
	fd = make_file("data", 4096, 3);
	/* A descriptor number nothing uses (a freed low number could be taken by the library's
	 * own descriptors, an io_uring, say). */
	closed = 999;
	close(closed);

	/* First, before any request: with glibc, a child forked while its idle worker threads
	 * wait for work would queue its requests for threads that do not exist in the child. */
	guarded("read SIGEV_THREAD null function", thread_null_function);
	guarded("aio_read(NULL)", read_null);
	guarded("aio_error(NULL)", error_null);

	/* A bad descriptor: accepted, fails with EBADF. */
	prep(&cb, -1, buf, sizeof(buf), 0);
	SHOW("read fd -1", aio_read(&cb));
	wait_done(&cb);
	printf("read fd -1 error = %s\n", error_of(&cb));
	SHOW("read fd -1 return", aio_return(&cb));
	prep(&cb, closed, buf, sizeof(buf), 0);
	SHOW("write closed fd", aio_write(&cb));
	wait_done(&cb);
	printf("write closed fd error = %s\n", error_of(&cb));
	SHOW("write closed fd return", aio_return(&cb));

	/* A read on a write-only descriptor and a write on a read-only one: EBADF. */
	{
		int ro = open(path_of("data"), O_RDONLY), wo = open(path_of("data"), O_WRONLY);
		CHECK(ro >= 0 && wo >= 0);
		prep(&cb, wo, buf, sizeof(buf), 0);
		SHOW("read write-only fd", aio_read(&cb));
		wait_done(&cb);
		printf("read write-only fd error = %s\n", error_of(&cb));
		prep(&cb, ro, buf, sizeof(buf), 0);
		SHOW("write read-only fd", aio_write(&cb));
		wait_done(&cb);
		printf("write read-only fd error = %s\n", error_of(&cb));
		close(ro);
		close(wo);
	}

	/* A negative offset: accepted, fails with EINVAL. */
	prep(&cb, fd, buf, sizeof(buf), -512);
	SHOW("read offset -512", aio_read(&cb));
	wait_done(&cb);
	printf("read offset -512 error = %s\n", error_of(&cb));
	SHOW("read offset -512 return", aio_return(&cb));
	prep(&cb, fd, buf, sizeof(buf), -1);
	SHOW("write offset -1", aio_write(&cb));
	wait_done(&cb);
	printf("write offset -1 error = %s\n", error_of(&cb));

	/* aio_reqprio: 0 to AIO_PRIO_DELTA_MAX (20) are valid. */
	for (prio = 0; prio <= AIO_PRIO_DELTA_MAX; prio++) {
		char label[64];
		prep(&cb, fd, buf, sizeof(buf), 0);
		cb.aio_reqprio = prio;
		snprintf(label, sizeof(label), "read reqprio %d", prio);
		SHOW(label, aio_read(&cb));
		wait_done(&cb);
		if (aio_error(&cb) != 0 || aio_return(&cb) != (ssize_t)sizeof(buf))
			printf("reqprio %d: error %s\n", prio, error_of(&cb));
	}
	/* ... anything else is refused at once, with the status set to EINVAL too. */
	prep(&cb, fd, buf, sizeof(buf), 0);
	cb.aio_reqprio = AIO_PRIO_DELTA_MAX + 1;
	SHOW("read reqprio 21", aio_read(&cb));
	printf("read reqprio 21 error = %s\n", error_of(&cb));
	SHOW("read reqprio 21 return", aio_return(&cb));
	prep(&cb, fd, buf, sizeof(buf), 0);
	cb.aio_reqprio = -1;
	SHOW("write reqprio -1", aio_write(&cb));
	printf("write reqprio -1 error = %s\n", error_of(&cb));
	/* aio_fsync does not look at aio_reqprio. */
	prep(&cb, fd, NULL, 0, 0);
	cb.aio_reqprio = 99;
	SHOW("fsync reqprio 99", aio_fsync(O_SYNC, &cb));
	wait_done(&cb);
	printf("fsync reqprio 99 error = %s\n", error_of(&cb));

	/* aio_fsync: a bad operation, a bad descriptor. */
	prep(&cb, fd, NULL, 0, 0);
	SHOW("fsync op 0", aio_fsync(0, &cb));
	SHOW("fsync op 12345", aio_fsync(12345, &cb));
	prep(&cb, closed, NULL, 0, 0);
	SHOW("fsync closed fd", aio_fsync(O_SYNC, &cb));
	prep(&cb, -1, NULL, 0, 0);
	SHOW("fdatasync fd -1", aio_fsync(O_DSYNC, &cb));

	/* A bad sigevent. */
	prep(&cb, fd, buf, sizeof(buf), 0);
	cb.aio_sigevent.sigev_notify = 99;
	SHOW("read sigev_notify 99", aio_read(&cb));
	wait_done(&cb);
	printf("read sigev_notify 99 error = %s\n", error_of(&cb));
	prep(&cb, fd, buf, sizeof(buf), 0);
	cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
	cb.aio_sigevent.sigev_signo = 1000;
	SHOW("read sigev_signo 1000", aio_read(&cb));
	wait_done(&cb);
	printf("read sigev_signo 1000 error = %s\n", error_of(&cb));

	/* The status of an aiocb never submitted, and of one still in flight. */
	memset(&cb, 0, sizeof(cb));
	printf("never submitted error = %s\n", error_of(&cb));
	SHOW("never submitted return", aio_return(&cb));
	CHECK(pipe(p) == 0);
	prep(&cb, p[0], buf, 1, 0);
	SHOW("pipe read", aio_read(&cb));
	printf("in flight error = %s\n", error_of(&cb));
	/* glibc returns its field, which its thread changes meanwhile (to -1 while it tries pread
	 * on the pipe, before falling back to read): only say whether it is EINPROGRESS. */
	{
		long r;
		errno = 0;
		r = aio_return(&cb);
		printf("in flight return = %s\n", r == -1 && errno == EINPROGRESS ?
		       "-1 EINPROGRESS" : "a value from the aiocb");
	}
	CHECK(write(p[1], "x", 1) == 1);
	wait_done(&cb);
	printf("pipe read error = %s\n", error_of(&cb));
	SHOW("pipe read return", aio_return(&cb));
	SHOW("pipe read return again", aio_return(&cb));
	printf("pipe read data = %c\n", buf[0]);
	return 0;
}
