/* For faults_stats.rs: the fault and statistics scenario of testkit/c/faults_scenario.h, each
 * request submitted with io_submit and reaped with io_getevents.
 *
 * Usage: ./faults_stats DIR faults|stats|writes */
#define _GNU_SOURCE
#include <libaio.h>
#include <errno.h>

#include "../../../testkit/c/faults_scenario.h"

static io_context_t ctx;

/* Submits (op: 'r', 'w', 's' fsync, 'd' fdatasync), waits, prints "label: res". */
static long run(const char *label, int fd, char op, char *buf, size_t len, long long off)
{
	struct iocb cb, *list[1] = {&cb};
	struct io_event ev;
	int r;
	if (op == 'r')
		io_prep_pread(&cb, fd, buf, len, off);
	else if (op == 'w')
		io_prep_pwrite(&cb, fd, buf, len, off);
	else if (op == 's')
		io_prep_fsync(&cb, fd);
	else
		io_prep_fdsync(&cb, fd);
	r = io_submit(ctx, 1, list);
	if (r != 1) {
		printf("%s: refused %d\n", label, r);
		return r;
	}
	r = io_getevents(ctx, 1, 1, &ev, NULL);
	if (r != 1 || ev.obj != &cb) {
		printf("%s: io_getevents = %d\n", label, r);
		return -1;
	}
	if ((long)ev.res < 0)
		printf("%s: %s\n", label, strerror(-(long)ev.res));
	else
		printf("%s: %ld\n", label, (long)ev.res);
	return (long)ev.res;
}

int main(int argc, char **argv)
{
	static char buf[16384] __attribute__((aligned(4096)));
	int r;
	if (argc != 3 || io_setup(64, &ctx) != 0)
		return 2;
	/* stats: of the 5 reads, the kernel refuses the one of a bad descriptor: 9 requests
	 * taken, 1 refused. */
	r = faults_scenario(argv[1], argv[2], buf, run);
	io_destroy(ctx);
	return r == 1 ? 0 : r;
}
