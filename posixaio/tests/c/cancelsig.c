/* aio_cancel under a storm of signals (a timer every 20 microseconds), while another thread
 * waits in aio_suspend: whenever aio_cancel answers, the statuses it speaks for are final —
 * AIO_CANCELED means aio_error already says ECANCELED and the request moved no byte (the byte
 * written to the pipe afterwards is still there to read); AIO_NOTCANCELED means the request
 * runs to its end. The aiocb can then be submitted again. */
#include "common.h"

#define ROUNDS 3000

static volatile sig_atomic_t handled;

static void on_timer(int sig)
{
	(void)sig;
	handled = handled + 1;
}

static struct aiocb idle_cb;

static void *idle_waiter(void *arg)
{
	const struct aiocb *list[1] = {&idle_cb};
	(void)arg;
	while (aio_error(&idle_cb) == EINPROGRESS) {
		struct timespec ts = ms(50);
		aio_suspend(list, 1, &ts);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct aiocb cb;
	struct sigaction sa;
	struct sigevent sev;
	struct itimerspec its;
	timer_t timer;
	pthread_t waiter;
	long i, consistent = 0, canceled = 0, notcanceled = 0, resubmit_failed = 0;
	char c, idle_c;
	int p[2], q[2], r;
	setup_common(argc, argv);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_timer;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR2, &sa, NULL) == 0);
	CHECK(pipe(p) == 0 && pipe(q) == 0);

	prep(&idle_cb, q[0], &idle_c, 1, 0);
	CHECK(aio_read(&idle_cb) == 0);
	CHECK(pthread_create(&waiter, NULL, idle_waiter, NULL) == 0);

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGUSR2;
	sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	CHECK(timer_create(CLOCK_MONOTONIC, &sev, &timer) == 0);
	its.it_interval.tv_sec = 0;
	its.it_interval.tv_nsec = 20000;
	its.it_value = its.it_interval;
	CHECK(timer_settime(timer, 0, &its, NULL) == 0);

	for (i = 0; i < ROUNDS; i++) {
		prep(&cb, p[0], &c, 1, 0);
		c = 0;
		if (aio_read(&cb) != 0) {
			resubmit_failed++;
			continue;
		}
		r = aio_cancel(p[0], &cb);
		if (r == AIO_CANCELED) {
			char got = 0;
			canceled++;
			/* Final already, and nothing was read. */
			if (aio_error(&cb) != ECANCELED || aio_return(&cb) != -1)
				continue;
			CHECK(write(p[1], "z", 1) == 1);
			while (read(p[0], &got, 1) == -1 && errno == EINTR)
				;
			consistent += got == 'z';
		} else if (r == AIO_NOTCANCELED) {
			notcanceled++;
			CHECK(write(p[1], "n", 1) == 1);
			wait_done(&cb);
			consistent += aio_error(&cb) == 0 && aio_return(&cb) == 1 && c == 'n';
		}
	}
	its.it_value.tv_nsec = 0;
	its.it_interval.tv_nsec = 0;
	CHECK(timer_settime(timer, 0, &its, NULL) == 0);
	CHECK(write(q[1], "q", 1) == 1);
	CHECK(pthread_join(waiter, NULL) == 0);
	printf("rounds = %d\n", ROUNDS);
	printf("answers consistent with the statuses = %s\n",
	       consistent == canceled + notcanceled && canceled + notcanceled == ROUNDS ? "all"
										   : "NOT ALL");
	if (consistent != ROUNDS)
		fprintf(stderr, "canceled %ld notcanceled %ld consistent %ld resubmit failed %ld\n",
			canceled, notcanceled, consistent, resubmit_failed);
	printf("resubmissions refused = %ld\n", resubmit_failed);
	printf("the idle waiter's read = %s, %ld\n", error_of(&idle_cb), (long)aio_return(&idle_cb));
	printf("the handler ran = %s\n", handled > 0 ? "yes" : "no");
	return 0;
}
