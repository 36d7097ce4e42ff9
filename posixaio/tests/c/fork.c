/* fork: the child has none of the parent's requests and can submit and complete its own, while
 * a parent's request is still in flight; the parent's request then completes in the parent,
 * and the parent goes on using the library. */
#include "common.h"

static void child_io(void)
{
	static char buf[4096], out[100];
	struct aiocb r, w;
	int fd = make_file("child", 8192, 11), done = 0;
	memset(out, 'c', sizeof(out));
	prep(&r, fd, buf, 4096, 4096);
	prep(&w, fd, out, sizeof(out), 0);
	printf("child: read = %s\n", posix_rc(aio_read(&r), errno));
	printf("child: write = %s\n", posix_rc(aio_write(&w), errno));
	while (done < 2) {
		/* Waits for the ones still in progress (a done entry would end every wait at once). */
		const struct aiocb *list[2] = {aio_error(&r) == EINPROGRESS ? &r : NULL,
					       aio_error(&w) == EINPROGRESS ? &w : NULL};
		struct timespec ts = ms(10000);
		CHECK(aio_suspend(list, 2, &ts) == 0);
		done = (aio_error(&r) != EINPROGRESS) + (aio_error(&w) != EINPROGRESS);
	}
	printf("child: read error = %s, return = %ld, data ok = %d\n", error_of(&r),
	       (long)aio_return(&r), matches_pattern(buf, 4096, 11, 4096));
	printf("child: write error = %s, return = %ld\n", error_of(&w), (long)aio_return(&w));
	{
		struct aiocb s;
		prep(&s, fd, NULL, 0, 0);
		printf("child: fsync = %s\n", posix_rc(aio_fsync(O_SYNC, &s), errno));
		wait_done(&s);
		printf("child: fsync error = %s\n", error_of(&s));
	}
}

int main(int argc, char **argv)
{
	struct aiocb pending;
	char c = 0;
	int p[2], status;
	pid_t pid;
	setup_common(argc, argv);
	CHECK(pipe(p) == 0);
	prep(&pending, p[0], &c, 1, 0);
	SHOW("parent: pipe read", aio_read(&pending));
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* The parent's request is the parent's: the child's copy of the aiocb still says
		 * EINPROGRESS, and nothing completes it here. */
		printf("child: parent's request = %s\n", error_of(&pending));
		{
			/* A wait for it answers as its status does: it ends (the request is over for the
			 * child) or times out (still in progress) — never returns at once while the status
			 * says in progress, which would make a wait loop spin. */
			const struct aiocb *l[1] = {&pending};
			struct timespec ts = ms(200);
			int r;
			errno = 0;
			r = aio_suspend(l, 1, &ts);
			printf("child: aio_suspend on the parent's request = %s\n", posix_rc(r, errno));
			printf("child: it agrees with the status = %s\n",
			       (r == 0) == (aio_error(&pending) != EINPROGRESS) ? "yes" : "no");
		}
		child_io();
		printf("child: parent's request still = %s\n", error_of(&pending));
		fflush(stdout);
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	printf("child exited = %d, status = %d\n", WIFEXITED(status), WEXITSTATUS(status));
	printf("parent: pipe read = %s\n", error_of(&pending));
	CHECK(write(p[1], "P", 1) == 1);
	wait_done(&pending);
	printf("parent: pipe read error = %s, return = %ld, data = %c\n", error_of(&pending),
	       (long)aio_return(&pending), c);
	/* The parent goes on. */
	{
		static char buf[512];
		struct aiocb r;
		int fd = make_file("parent", 4096, 12);
		prep(&r, fd, buf, sizeof(buf), 512);
		SHOW("parent: read", aio_read(&r));
		wait_done(&r);
		printf("parent: read return = %ld, data ok = %d\n", (long)aio_return(&r),
		       matches_pattern(buf, 512, 12, 512));
	}
	return 0;
}
