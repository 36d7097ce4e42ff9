/* aio_suspend with no timeout, waiting on a read of an empty pipe, fails with EINTR when one
 * caught signal (no SA_RESTART) arrives, whenever it arrives: early, or after the wait has gone
 * on for more than a second; also while another thread waits too (and may be the one taking
 * completions). With SA_RESTART it either fails with EINTR or goes on waiting until the
 * request completes. */
#include "common.h"

static volatile sig_atomic_t caught;

static void on_signal(int sig)
{
	(void)sig;
	caught++;
}

struct shot {
	pthread_t target;
	long delay_ms;
	int release_fd; /* write a byte here 500 ms after the signal, or -1 */
	int directed;	/* to the target thread (else to the process) */
	volatile int back;
};

static void *shooter(void *arg)
{
	struct shot *s = arg;
	double give_up;
	sleep_ms(s->delay_ms);
	/* To the process, as kill(1) and most timers send it, or to the waiting thread. */
	if (s->directed)
		pthread_kill(s->target, SIGUSR1);
	else
		kill(getpid(), SIGUSR1);
	if (s->release_fd >= 0) {
		sleep_ms(500);
		CHECK(write(s->release_fd, "x", 1) == 1);
	}
	/* The wait must end soon after: otherwise the signal was lost. */
	give_up = now_ms() + 5000;
	while (!s->back) {
		if (now_ms() > give_up) {
			printf("FATAL: aio_suspend still waiting 5 s after the signal (%ld ms)\n",
			       s->delay_ms);
			fflush(stdout);
			_exit(1);
		}
		sleep_ms(5);
	}
	return NULL;
}

static struct aiocb other_cb;

static void *other_waiter(void *arg)
{
	const struct aiocb *list[1] = {&other_cb};
	(void)arg;
	while (aio_error(&other_cb) == EINPROGRESS)
		aio_suspend(list, 1, NULL);
	return NULL;
}

static void one(long delay_ms, int restart, int companion)
{
	struct aiocb cb;
	const struct aiocb *list[1] = {&cb};
	struct sigaction sa;
	struct shot s;
	pthread_t t, other;
	char c, oc;
	int p[2], q[2], r, e;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	CHECK(pipe(p) == 0 && pipe(q) == 0);
	if (companion) {
		sigset_t usr1;
		/* The other waiter leaves SIGUSR1 to this thread. */
		sigemptyset(&usr1);
		sigaddset(&usr1, SIGUSR1);
		prep(&other_cb, q[0], &oc, 1, 0);
		CHECK(aio_read(&other_cb) == 0);
		CHECK(pthread_sigmask(SIG_BLOCK, &usr1, NULL) == 0);
		CHECK(pthread_create(&other, NULL, other_waiter, NULL) == 0);
		CHECK(pthread_sigmask(SIG_UNBLOCK, &usr1, NULL) == 0);
		sleep_ms(100);
	}
	prep(&cb, p[0], &c, 1, 0);
	CHECK(aio_read(&cb) == 0);
	caught = 0;
	s.target = pthread_self();
	s.delay_ms = delay_ms;
	s.release_fd = restart ? p[1] : -1;
	s.directed = companion;
	s.back = 0;
	CHECK(pthread_create(&t, NULL, shooter, &s) == 0);
	errno = 0;
	r = aio_suspend(list, 1, NULL);
	e = errno;
	s.back = 1;
	CHECK(pthread_join(t, NULL) == 0);
	if (restart)
		printf("SA_RESTART, signal after %ld ms: aio_suspend = %s\n", delay_ms,
		       (r == -1 && e == EINTR) || (r == 0 && aio_error(&cb) == 0) ? "EINTR or done"
										: posix_rc(r, e));
	else
		printf("signal after %ld ms%s: aio_suspend = %s, caught = %d\n", delay_ms,
		       companion ? ", another thread waiting too" : "", posix_rc(r, e), caught > 0);
	if (aio_error(&cb) == EINPROGRESS) {
		CHECK(write(p[1], "y", 1) == 1);
		wait_done(&cb);
	}
	printf("  the read then = %s, %ld\n", error_of(&cb), (long)aio_return(&cb));
	if (companion) {
		CHECK(write(q[1], "o", 1) == 1);
		CHECK(pthread_join(other, NULL) == 0);
	}
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
}

int main(int argc, char **argv)
{
	setup_common(argc, argv);
	one(50, 0, 0);
	one(1100, 0, 0);
	one(1600, 0, 0);
	one(300, 0, 1);
	one(1200, 0, 1);
	one(300, 1, 0);
	return 0;
}
