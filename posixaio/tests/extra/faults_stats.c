/* For faults_stats.rs: the fault and statistics scenario of testkit/c/faults_scenario.h, each
 * request submitted with aio_read, aio_write or aio_fsync and waited for with aio_suspend; the
 * stats mode ends with a read of an empty pipe, cancelled (11 requests in all).
 *
 * Usage: ./faults_stats DIR faults|stats|writes */
#define _GNU_SOURCE
#include <aio.h>
#include <errno.h>

#include "../../../testkit/c/faults_scenario.h"

/* Submits (op: 'r', 'w', 's' fsync, 'd' fdatasync), waits, prints "label: res err". */
static long run(const char *label, int fd, char op, char *buf, size_t len, long long off)
{
	struct aiocb cb;
	const struct aiocb *list[1] = {&cb};
	int r, e;
	long ret;
	memset(&cb, 0, sizeof(cb));
	cb.aio_fildes = fd;
	cb.aio_buf = buf;
	cb.aio_nbytes = len;
	cb.aio_offset = (off_t)off;
	r = op == 'r' ? aio_read(&cb) : op == 'w' ? aio_write(&cb) :
	    aio_fsync(op == 's' ? O_SYNC : O_DSYNC, &cb);
	if (r != 0) {
		printf("%s: refused %d\n", label, errno);
		return -1;
	}
	while (aio_error(&cb) == EINPROGRESS)
		aio_suspend(list, 1, NULL);
	e = aio_error(&cb);
	ret = aio_return(&cb);
	printf("%s: %ld %s\n", label, ret, e == 0 ? "ok" : strerror(e));
	return ret;
}

int main(int argc, char **argv)
{
	static char buf[16384];
	struct aiocb cb;
	int pipes[2], r;
	char c;
	if (argc != 3)
		return 2;
	r = faults_scenario(argv[1], argv[2], buf, run);
	if (r != 1)
		return r;
	if (pipe(pipes) != 0)
		return 2;
	memset(&cb, 0, sizeof(cb));
	cb.aio_fildes = pipes[0];
	cb.aio_buf = &c;
	cb.aio_nbytes = 1;
	if (aio_read(&cb) != 0)
		return 2;
	printf("cancel of a pipe read: %s\n",
	       aio_cancel(pipes[0], &cb) == AIO_CANCELED ? "AIO_CANCELED" : "other");
	return 0;
}
