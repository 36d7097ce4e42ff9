/* aio_fsync: O_SYNC and O_DSYNC, each covering every write to the descriptor queued before it.
 * When an fsync has completed, the writes queued before it have too: on a file, and on a pipe
 * where the write is held up until the pipe is drained. */
#include "common.h"

#define WRITES 16

static int pipe_capacity_fill(int wfd)
{
	static char junk[4096];
	int flags = fcntl(wfd, F_GETFL), total = 0;
	ssize_t n;
	CHECK(fcntl(wfd, F_SETFL, flags | O_NONBLOCK) == 0);
	while ((n = write(wfd, junk, sizeof(junk))) > 0)
		total += n;
	CHECK(errno == EAGAIN);
	CHECK(fcntl(wfd, F_SETFL, flags) == 0);
	return total;
}

int main(int argc, char **argv)
{
	static struct aiocb writes[WRITES], sync, dsync;
	static char data[WRITES][4096], check[4096];
	int fd, i, j;
	setup_common(argc, argv);
	fd = make_file("data", WRITES * 4096, 4);

	for (j = 0; j < 2; j++) {
		struct aiocb *s = j == 0 ? &sync : &dsync;
		int op = j == 0 ? O_SYNC : O_DSYNC;
		const char *name = j == 0 ? "O_SYNC" : "O_DSYNC";
		int done = 0, ok = 0;
		for (i = 0; i < WRITES; i++) {
			memset(data[i], 'a' + i + j, 4096);
			prep(&writes[i], fd, data[i], 4096, (WRITES - 1 - i) * 4096);
			CHECK(aio_write(&writes[i]) == 0);
		}
		prep(s, fd, NULL, 0, 0);
		printf("%s: aio_fsync = %s\n", name, posix_rc(aio_fsync(op, s), errno));
		wait_done(s);
		for (i = 0; i < WRITES; i++)
			if (aio_error(&writes[i]) != EINPROGRESS)
				done++;
		printf("%s: writes complete when the fsync completed = %d of %d\n", name, done,
		       WRITES);
		printf("%s: fsync error = %s\n", name, error_of(s));
		printf("%s: fsync return = %s\n", name, posix_rc(aio_return(s), errno));
		for (i = 0; i < WRITES; i++) {
			wait_done(&writes[i]);
			CHECK(pread(fd, check, 4096, (WRITES - 1 - i) * 4096) == 4096);
			if (aio_error(&writes[i]) == 0 && aio_return(&writes[i]) == 4096 &&
			    memcmp(check, data[i], 4096) == 0)
				ok++;
		}
		printf("%s: writes correct = %d\n", name, ok);
	}

	/* An fsync right away, with no writes before it. */
	prep(&sync, fd, NULL, 0, 0);
	SHOW("lone fsync", aio_fsync(O_SYNC, &sync));
	wait_done(&sync);
	printf("lone fsync error = %s\n", error_of(&sync));

	/* A pipe: the write waits until the pipe is drained, and the fsync queued after it waits
	 * for the write (then fails: a pipe cannot be synced). */
	{
		int p[2], capacity;
		struct aiocb w;
		const struct aiocb *list[1] = {&sync};
		struct timespec ts = ms(200);
		static char buf[65536];
		CHECK(pipe(p) == 0);
		capacity = pipe_capacity_fill(p[1]);
		prep(&w, p[1], "0123456789", 10, 0);
		SHOW("pipe write", aio_write(&w));
		prep(&sync, p[1], NULL, 0, 0);
		SHOW("pipe fsync", aio_fsync(O_SYNC, &sync));
		SHOW("pipe fsync suspend 200ms", aio_suspend(list, 1, &ts));
		printf("pipe write error while full = %s\n", error_of(&w));
		printf("pipe fsync error while full = %s\n", error_of(&sync));
		/* Drain what was there; the write then goes through. */
		{
			int left = capacity;
			while (left > 0) {
				ssize_t n = read(p[0], buf, left < (int)sizeof(buf) ? left : (int)sizeof(buf));
				CHECK(n > 0);
				left -= n;
			}
		}
		wait_done(&sync);
		printf("pipe write done when the fsync completed = %s\n",
		       aio_error(&w) != EINPROGRESS ? "yes" : "no");
		wait_done(&w);
		printf("pipe write error = %s\n", error_of(&w));
		printf("pipe write return = %s\n", posix_rc(aio_return(&w), errno));
		printf("pipe fsync error = %s\n", error_of(&sync));
		memset(buf, 0, 16);
		CHECK(read(p[0], buf, 10) == 10);
		printf("pipe data = %s\n", buf);
	}
	return 0;
}
