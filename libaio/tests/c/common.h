/*
 * Helpers for the C suite (see ../c_suite.rs). Every program prints a transcript that must be
 * the same with the system libaio and with ours: return values as numbers or -ENAME, never
 * pointers, times or anything else that varies between runs.
 *
 * Usage: ./program DIR   (DIR: a directory on a real filesystem for the program's files)
 */
#ifndef AIO_TEST_COMMON_H
#define AIO_TEST_COMMON_H

#define _GNU_SOURCE
#include <libaio.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The system header leaves this declaration commented out; ours has it. Compatible either way. */
int io_queue_wait(io_context_t ctx, struct timespec *timeout);

/* Helpers not every program uses. */
#define HELPER static __attribute__((unused))

static const char *test_dir = ".";

/* A pointer the compiler cannot see through (so it does not warn about what we do on purpose). */
HELPER void *bad_ptr(long value)
{
	void *volatile p = (void *)value;
	return p;
}

/* A return value as text: "3", "0", "-EINVAL". Eight rotating buffers. */
HELPER const char *rc(long r)
{
	static char bufs[8][48];
	static int next;
	char *b = bufs[next++ % 8];
	static const struct { int e; const char *name; } names[] = {
		{EPERM, "EPERM"}, {ENOENT, "ENOENT"}, {ESRCH, "ESRCH"}, {EINTR, "EINTR"},
		{EIO, "EIO"}, {EBADF, "EBADF"}, {EAGAIN, "EAGAIN"}, {ENOMEM, "ENOMEM"},
		{EFAULT, "EFAULT"}, {EBUSY, "EBUSY"}, {EEXIST, "EEXIST"}, {EINVAL, "EINVAL"},
		{ENOSPC, "ENOSPC"}, {ENOSYS, "ENOSYS"}, {EOPNOTSUPP, "EOPNOTSUPP"},
		{EINPROGRESS, "EINPROGRESS"}, {ECANCELED, "ECANCELED"}, {EALREADY, "EALREADY"},
	};
	size_t i;
	if (r >= 0) {
		snprintf(b, 48, "%ld", r);
		return b;
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (-r == names[i].e) {
			snprintf(b, 48, "-%s", names[i].name);
			return b;
		}
	snprintf(b, 48, "-E%ld", -r);
	return b;
}

/* A poll result: the kernel reports either the requested events or the waker's (POLLIN with
 * POLLRDNORM), depending on which path completed the request, so only POLLIN is printed. */
HELPER const char *pollres(long res)
{
	if (res > 0 && (res & POLLIN))
		return "POLLIN";
	return rc(res);
}

/* Prints the expression and its value. */
#define SHOW(expr) printf("%s = %s\n", #expr, rc((long)(expr)))

/* Setup that must work: prints the failure and exits 1 (the Rust harness reports it). */
#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			printf("FATAL %s:%d: %s (errno %s)\n", __FILE__, __LINE__, #cond,   \
			       rc(-errno));                                              \
			fflush(stdout);                                                  \
			exit(1);                                                         \
		}                                                                        \
	} while (0)

#include "../../../testkit/c/files.h"

HELPER io_context_t new_ctx(int nr)
{
	io_context_t ctx = 0;
	CHECK(io_setup(nr, &ctx) == 0);
	return ctx;
}

/* Submits one request and waits for its completion; returns the submit result, stores the
 * completion's res in *res (or leaves it when the submit failed). */
HELPER long submit_wait(io_context_t ctx, struct iocb *io, long *res)
{
	struct io_event ev;
	struct timespec ts = ms(5000);
	long r = io_submit(ctx, 1, &io);
	if (r != 1)
		return r;
	CHECK(io_getevents(ctx, 1, 1, &ev, &ts) == 1);
	CHECK(ev.obj == io);
	*res = (long)ev.res;
	return r;
}

/* Runs fn in a child process (so a crash is reported, not fatal) and prints its result. The
 * child has none of the parent's AIO contexts: fn creates what it needs. */
HELPER void guarded(const char *what, long (*fn)(void))
{
	pid_t pid;
	int status;
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		long r = fn();
		printf("%s = %s\n", what, rc(r));
		fflush(stdout);
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	if (WIFSIGNALED(status))
		printf("%s = CRASH(%s)\n", what,
		       WTERMSIG(status) == SIGSEGV ? "SIGSEGV" :
		       WTERMSIG(status) == SIGBUS ? "SIGBUS" : "other signal");
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		printf("%s = EXIT(%d)\n", what, WEXITSTATUS(status));
}

HELPER void setup_common(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1)
		test_dir = argv[1];
}

#endif
