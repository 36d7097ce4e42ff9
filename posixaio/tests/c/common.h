/*
 * Helpers for the C suite (see ../c_suite.rs). Every program prints a transcript that must be
 * the same with glibc's POSIX AIO and with libposixaio.so under LD_PRELOAD: return values as
 * numbers or "-1 ENAME", errors by name, never pointers, times or anything else that varies
 * between runs. Lines that differ on purpose are listed, with the reason, in c_suite.rs.
 *
 * Usage: ./program DIR   (DIR: a directory on a real filesystem for the program's files)
 *
 * At exit each program says on stderr which implementation served it ("engine: glibc", or
 * libposixaio's posixaio_engine(), e.g. "engine: uring"), so the harness can check that
 * LD_PRELOAD and AIO_ENGINE took effect.
 */
#ifndef POSIXAIO_TEST_COMMON_H
#define POSIXAIO_TEST_COMMON_H

#define _GNU_SOURCE
#include <aio.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Helpers not every program uses. */
#define HELPER static __attribute__((unused))

static const char *test_dir = ".";

/* An errno value by name: "0", "EINVAL", "EINPROGRESS". */
HELPER const char *errname(int e)
{
	static char bufs[8][32];
	static int next;
	static const struct { int e; const char *name; } names[] = {
		{EPERM, "EPERM"}, {ENOENT, "ENOENT"}, {ESRCH, "ESRCH"}, {EINTR, "EINTR"},
		{EIO, "EIO"}, {EBADF, "EBADF"}, {EAGAIN, "EAGAIN"}, {ENOMEM, "ENOMEM"},
		{EFAULT, "EFAULT"}, {EBUSY, "EBUSY"}, {EEXIST, "EEXIST"}, {EINVAL, "EINVAL"},
		{ENOSPC, "ENOSPC"}, {ESPIPE, "ESPIPE"}, {EPIPE, "EPIPE"}, {ENOSYS, "ENOSYS"},
		{EOPNOTSUPP, "EOPNOTSUPP"}, {EINPROGRESS, "EINPROGRESS"}, {ECANCELED, "ECANCELED"},
		{EALREADY, "EALREADY"}, {EOVERFLOW, "EOVERFLOW"}, {EISDIR, "EISDIR"},
		{ETIMEDOUT, "ETIMEDOUT"},
	};
	size_t i;
	char *b;
	if (e == 0)
		return "0";
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (e == names[i].e)
			return names[i].name;
	b = bufs[next++ % 8];
	snprintf(b, 32, "E%d", e);
	return b;
}

/* What a POSIX call returned: "0", "1024", or "-1 EINVAL" (-1 with errno). */
HELPER const char *posix_rc(long r, int e)
{
	static char bufs[8][48];
	static int next;
	char *b = bufs[next++ % 8];
	if (r == -1)
		snprintf(b, 48, "-1 %s", errname(e));
	else
		snprintf(b, 48, "%ld", r);
	return b;
}

/* Prints `label = <result>`; errno is cleared first so that -1 shows the call's own errno. */
#define SHOW(label, expr)                                                            \
	do {                                                                         \
		long _r;                                                             \
		errno = 0;                                                           \
		_r = (long)(expr);                                                   \
		printf("%s = %s\n", (label), posix_rc(_r, errno));                   \
	} while (0)

/* aio_error as a name ("EINPROGRESS", "0", "ECANCELED"), or "-1 EINVAL" if it fails. */
HELPER const char *error_of(const struct aiocb *cb)
{
	int r;
	errno = 0;
	r = aio_error(cb);
	if (r == -1)
		return posix_rc(-1, errno);
	return errname(r);
}

/* Setup that must work: prints the failure and exits 1 (the Rust harness reports it). */
#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			printf("FATAL %s:%d: %s (errno %s)\n", __FILE__, __LINE__, #cond,   \
			       errname(errno));                                          \
			fflush(stdout);                                                  \
			exit(1);                                                         \
		}                                                                        \
	} while (0)

/* A pointer the compiler cannot see through (so it does not warn about what we do on purpose). */
HELPER void *opaque_ptr(long value)
{
	void *volatile p = (void *)value;
	return p;
}

#include "../../../testkit/c/files.h"

/* A zeroed aiocb for fd. */
HELPER void prep(struct aiocb *cb, int fd, void *buf, size_t len, off_t offset)
{
	memset(cb, 0, sizeof(*cb));
	cb->aio_fildes = fd;
	cb->aio_buf = buf;
	cb->aio_nbytes = len;
	cb->aio_offset = offset;
	cb->aio_sigevent.sigev_notify = SIGEV_NONE;
}

HELPER void sleep_ms(long n)
{
	struct timespec ts = ms(n);
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Waits (aio_suspend, up to 10 s in all) until cb is no longer in progress; fatal otherwise. */
HELPER void wait_done(const struct aiocb *cb)
{
	const struct aiocb *list[1] = {cb};
	double give_up = now_ms() + 10000;
	while (aio_error(cb) == EINPROGRESS) {
		struct timespec ts = ms(100);
		CHECK(now_ms() < give_up);
		if (aio_suspend(list, 1, &ts) == -1)
			CHECK(errno == EAGAIN || errno == EINTR);
	}
}

/* Waits until every non-null entry of list is done. */
HELPER void wait_all(struct aiocb *const *list, int n)
{
	int i;
	for (i = 0; i < n; i++)
		if (list[i])
			wait_done(list[i]);
}

/* sigtimedwait, again after EINTR. With io_uring, the kernel interrupts the system calls of a
 * thread that submitted requests when it needs that thread's help (to start an io_uring
 * worker, to complete a request that waited for a pipe): calls it does not restart, such as
 * sigtimedwait, then fail with EINTR although no signal arrived. Programs retry on EINTR (a
 * signal handler does the same to them); so do the tests. */
HELPER int sigtimedwait_retry(const sigset_t *set, siginfo_t *info, long timeout_ms)
{
	double give_up = now_ms() + timeout_ms;
	for (;;) {
		double left = give_up - now_ms();
		struct timespec ts = ms(left > 0 ? (long)left : 0);
		int r = sigtimedwait(set, info, &ts);
		if (r >= 0 || errno != EINTR)
			return r;
	}
}

/* Runs fn in a child process (so a crash is reported, not fatal) and prints its result as a
 * POSIX return value. */
HELPER void guarded(const char *what, long (*fn)(void))
{
	pid_t pid;
	int status;
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		long r;
		errno = 0;
		r = fn();
		printf("%s = %s\n", what, posix_rc(r, errno));
		fflush(stdout);
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	if (WIFSIGNALED(status))
		printf("%s = CRASH(%s)\n", what,
		       WTERMSIG(status) == SIGSEGV ? "SIGSEGV" :
		       WTERMSIG(status) == SIGBUS ? "SIGBUS" :
		       WTERMSIG(status) == SIGABRT ? "SIGABRT" : "other signal");
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		printf("%s = EXIT(%d)\n", what, WEXITSTATUS(status));
}

/* Says on stderr which implementation served the program (see the top of this file). */
static void report_engine(void)
{
	const char *(*engine)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "posixaio_engine");
	fprintf(stderr, "engine: %s\n", engine ? engine() : "glibc");
}

HELPER void setup_common(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1)
		test_dir = argv[1];
	atexit(report_engine);
}

#endif
