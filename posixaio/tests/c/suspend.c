/* aio_suspend: returns at once when an entry is done, ignores null entries, waits for the
 * first of several, times out with EAGAIN, is interrupted by a signal with EINTR, and rejects a
 * negative count. */
#include "common.h"

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	(void)sig;
	got_signal = 1;
}

struct delayed {
	pthread_t target;
	int fd;		/* write a byte to it after the delay, or -1: signal the target */
	long delay_ms;
	volatile int stop;
};

static void *helper(void *arg)
{
	struct delayed *d = arg;
	sleep_ms(d->delay_ms);
	if (d->fd >= 0) {
		CHECK(write(d->fd, "x", 1) == 1);
		return NULL;
	}
	/* Again and again until the target says it is back, in case the first signal came
	 * before it was waiting (a loaded machine). */
	while (!d->stop) {
		pthread_kill(d->target, SIGUSR1);
		sleep_ms(d->delay_ms);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct aiocb done_cb, pend, pend2, never;
	const struct aiocb *list[4];
	struct timespec ts;
	char buf[64], b1, b2;
	int fd, p[2], q[2];
	double t0;
	struct sigaction sa;
	setup_common(argc, argv);

	/* SIGUSR1 without SA_RESTART, so a wait it interrupts fails with EINTR. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);

	fd = make_file("data", 4096, 5);
	CHECK(pipe(p) == 0 && pipe(q) == 0);
	prep(&done_cb, fd, buf, sizeof(buf), 0);
	CHECK(aio_read(&done_cb) == 0);
	wait_done(&done_cb);
	prep(&pend, p[0], &b1, 1, 0);
	CHECK(aio_read(&pend) == 0);
	prep(&pend2, q[0], &b2, 1, 0);
	CHECK(aio_read(&pend2) == 0);
	memset(&never, 0, sizeof(never));

	/* Returns at once when one is done; null entries are ignored. */
	list[0] = NULL;
	list[1] = &pend;
	list[2] = &done_cb;
	list[3] = NULL;
	SHOW("done among pending, no timeout", aio_suspend(list, 4, NULL));
	ts = ms(0);
	SHOW("done, zero timeout", aio_suspend(list, 4, &ts));
	SHOW("only null entries", aio_suspend((const struct aiocb *[]){NULL, NULL}, 2, NULL));
	SHOW("no entries", aio_suspend(list, 0, NULL));
	/* An aiocb that was never submitted counts as done. */
	list[0] = &never;
	list[1] = &pend;
	SHOW("never submitted", aio_suspend(list, 2, NULL));

	/* Times out: EAGAIN, after the time asked for. */
	list[0] = &pend;
	list[1] = NULL;
	list[2] = &pend2;
	ts = ms(100);
	t0 = now_ms();
	SHOW("pending, 100 ms", aio_suspend(list, 3, &ts));
	printf("waited at least 90 ms = %s\n", now_ms() - t0 >= 90 ? "yes" : "no");
	ts = ms(0);
	SHOW("pending, zero timeout", aio_suspend(list, 3, &ts));

	/* A signal interrupts the wait: EINTR. */
	{
		pthread_t t;
		struct delayed d = {pthread_self(), -1, 100, 0};
		CHECK(pthread_create(&t, NULL, helper, &d) == 0);
		SHOW("pending, signal", aio_suspend(list, 3, NULL));
		d.stop = 1;
		printf("handler ran = %d\n", (int)got_signal);
		pthread_join(t, NULL);
		got_signal = 0;
		d.stop = 0;
		CHECK(pthread_create(&t, NULL, helper, &d) == 0);
		ts = ms(5000);
		SHOW("pending, signal, 5 s timeout", aio_suspend(list, 3, &ts));
		d.stop = 1;
		printf("handler ran = %d\n", (int)got_signal);
		pthread_join(t, NULL);
	}

	/* Wakes when the second of two completes. */
	{
		pthread_t t;
		struct delayed d = {pthread_self(), q[1], 100, 0};
		CHECK(pthread_create(&t, NULL, helper, &d) == 0);
		ts = ms(10000);
		SHOW("pending, one completes", aio_suspend(list, 3, &ts));
		printf("first = %s, second = %s\n", error_of(&pend), error_of(&pend2));
		pthread_join(t, NULL);
		SHOW("second return", aio_return(&pend2));
	}

	/* A negative count. */
	SHOW("nent -1", aio_suspend(list, -1, NULL));

	CHECK(write(p[1], "y", 1) == 1);
	wait_done(&pend);
	SHOW("first return", aio_return(&pend));
	printf("data = %c%c\n", b1, b2);
	return 0;
}
