/* io_getevents and io_pgetevents: min_nr/nr/timeout semantics, argument errors, EINTR, signal
 * masks applied atomically, a context made with the raw system call, and several threads
 * reaping one context at once (every completion exactly once). */
#include "common.h"

static volatile sig_atomic_t handled;
static void on_signal(int sig)
{
	(void)sig;
	handled++;
}

static pthread_t main_thread;
static int helper_pipe;

/* Sends SIGUSR1 to the main thread, then makes the pipe readable. */
static void *signal_then_write(void *arg)
{
	(void)arg;
	usleep(30 * 1000);
	pthread_kill(main_thread, SIGUSR1);
	usleep(30 * 1000);
	CHECK(write(helper_pipe, "x", 1) == 1);
	return NULL;
}

static void *write_later(void *arg)
{
	(void)arg;
	usleep(50 * 1000);
	CHECK(write(helper_pipe, "y", 1) == 1);
	return NULL;
}

/* Concurrent reaping. */
#define REAP_TOTAL 4000
#define REAPERS 4
static io_context_t reap_ctx;
static int reap_counts[REAP_TOTAL];
static int reaped_total;
static int reap_zero_timeout;
static pthread_mutex_t reap_lock = PTHREAD_MUTEX_INITIALIZER;

static void *reaper(void *arg)
{
	struct io_event ev[16];
	struct timespec t = ms(10), zero = {0, 0};
	int mine = (int)(long)arg, i;
	long r;
	for (;;) {
		pthread_mutex_lock(&reap_lock);
		if (reaped_total >= REAP_TOTAL) {
			pthread_mutex_unlock(&reap_lock);
			break;
		}
		pthread_mutex_unlock(&reap_lock);
		/* Half the threads wait in the kernel, half poll the ring with a zero timeout. */
		r = io_getevents(reap_ctx, 1, 16, ev, reap_zero_timeout && mine % 2 ? &zero : &t);
		if (r < 0) {
			printf("reaper error %s\n", rc(r));
			break;
		}
		pthread_mutex_lock(&reap_lock);
		for (i = 0; i < r; i++) {
			long idx = (long)ev[i].data;
			if (idx >= 0 && idx < REAP_TOTAL && (long)ev[i].res == 512)
				reap_counts[idx]++;
			else
				printf("bad event data=%ld res=%ld\n", idx, (long)ev[i].res);
		}
		reaped_total += r;
		pthread_mutex_unlock(&reap_lock);
	}
	return NULL;
}

static void concurrent_reaping(int fd, int zero_timeout)
{
	static struct iocb ios[REAP_TOTAL];
	static char buf[512];
	pthread_t th[REAPERS];
	struct iocb *list[16];
	int i, j, submitted = 0, dup = 0, missing = 0;
	long r;

	reap_ctx = new_ctx(128);
	reaped_total = 0;
	reap_zero_timeout = zero_timeout;
	memset(reap_counts, 0, sizeof(reap_counts));
	for (i = 0; i < REAPERS; i++)
		CHECK(pthread_create(&th[i], NULL, reaper, (void *)(long)i) == 0);
	while (submitted < REAP_TOTAL) {
		int n = REAP_TOTAL - submitted < 16 ? REAP_TOTAL - submitted : 16;
		for (j = 0; j < n; j++) {
			/* All read into one buffer: only the completions matter here. */
			io_prep_pread(&ios[submitted + j], fd, buf, 512, 512 * ((submitted + j) % 8));
			ios[submitted + j].data = (void *)(long)(submitted + j);
			list[j] = &ios[submitted + j];
		}
		r = io_submit(reap_ctx, n, list);
		if (r == -EAGAIN) { /* the reapers are behind: the ring is full */
			sched_yield();
			continue;
		}
		CHECK(r > 0);
		submitted += r;
	}
	for (i = 0; i < REAPERS; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < REAP_TOTAL; i++) {
		dup += reap_counts[i] > 1;
		missing += reap_counts[i] == 0;
	}
	printf("%d reapers (%s): reaped %d of %d, duplicates %d, missing %d\n", REAPERS,
	       zero_timeout ? "half polling with zero timeouts" : "10 ms timeouts", reaped_total,
	       REAP_TOTAL, dup, missing);
	SHOW(io_destroy(reap_ctx));
}

int main(int argc, char **argv)
{
	io_context_t ctx, raw_ctx = 0;
	struct iocb io[4], *list[4], pollio, *plist[1] = {&pollio};
	struct io_event ev[8];
	struct timespec zero = {0, 0}, t20 = ms(20), t5s = ms(5000);
	char bufs[4][512];
	char evbuf[sizeof(struct io_event) * 2 + 1];
	struct io_event *odd_events = (struct io_event *)(evbuf + 1);
	struct sigaction sa;
	struct itimerval it;
	sigset_t block_usr1, empty, old, cur;
	pthread_t th;
	double t0;
	int fd, pipefd[2], i;
	long r;

	setup_common(argc, argv);
	main_thread = pthread_self();
	fd = make_file("getevents.dat", 8192, 3);
	CHECK(pipe(pipefd) == 0);
	helper_pipe = pipefd[1];
	ctx = new_ctx(32);
	for (i = 0; i < 4; i++) {
		io_prep_pread(&io[i], fd, bufs[i], 512, 512 * i);
		io[i].data = (void *)(long)(i + 10);
		list[i] = &io[i];
	}

	printf("-- empty ring\n");
	SHOW(io_getevents(ctx, 0, 8, ev, &zero));
	SHOW(io_getevents(ctx, 1, 8, ev, &zero));
	SHOW(io_getevents(ctx, 0, 8, ev, NULL)); /* min_nr 0: no waiting */
	SHOW(io_getevents(ctx, 0, 0, NULL, NULL));
	t0 = now_ms();
	r = io_getevents(ctx, 1, 8, ev, &t20);
	printf("io_getevents(ctx, 1, 8, ev, 20 ms) = %s, waited: %s\n", rc(r),
	       now_ms() - t0 >= 15 ? "yes" : "no");

	printf("-- arguments\n");
	SHOW(io_getevents(ctx, 2, 1, ev, &zero)); /* libaio returns 0 before looking */
	SHOW(io_getevents(ctx, 2, 1, ev, NULL));
	SHOW(io_getevents(ctx, -1, 1, ev, NULL));
	SHOW(io_getevents(ctx, 0, -1, ev, NULL));
	SHOW(io_getevents(ctx, 1, 1, NULL, &zero));
	SHOW(io_getevents(0, 1, 1, ev, &zero));
	SHOW(io_getevents(0, 1, 1, ev, NULL));
	SHOW(io_pgetevents(0, 1, 1, ev, NULL, NULL));

	printf("-- min_nr and nr\n");
	SHOW(io_submit(ctx, 3, list)); /* buffered reads: complete on return */
	r = io_getevents(ctx, 2, 2, ev, NULL);
	printf("min 2 nr 2: %s data %ld %ld\n", rc(r), (long)ev[0].data, (long)ev[1].data);
	r = io_getevents(ctx, 0, 8, ev, NULL);
	printf("min 0 nr 8: %s data %ld res %ld\n", rc(r), (long)ev[0].data, (long)ev[0].res);
	SHOW(io_getevents(ctx, 0, 8, ev, &zero));
	SHOW(io_submit(ctx, 1, list));
	t0 = now_ms();
	r = io_getevents(ctx, 2, 8, ev, &t20); /* one is there, the second never comes */
	printf("min 2 with 1 ready, 20 ms: %s data %ld, waited: %s\n", rc(r), (long)ev[0].data,
	       now_ms() - t0 >= 15 ? "yes" : "no");
	SHOW(io_submit(ctx, 2, list));
	SHOW(io_getevents(ctx, 1, 1, ev, &zero));
	SHOW(io_getevents(ctx, 1, 1, ev, &zero));
	SHOW(io_getevents(ctx, 1, 1, ev, &zero));
	SHOW(io_submit(ctx, 4, list));
	r = io_getevents(ctx, 1, 2, ev, &zero); /* zero timeout, min 1: up to nr */
	printf("zero timeout nr 2: %s data %ld %ld\n", rc(r), (long)ev[0].data, (long)ev[1].data);
	SHOW(io_getevents(ctx, 3, 8, ev, &zero)); /* 2 left: a zero timeout returns them */
	SHOW(io_getevents(ctx, 0, 8, ev, &zero));

	printf("-- events pointer\n");
	SHOW(io_submit(ctx, 1, list));
	SHOW(io_getevents(ctx, 1, 1, NULL, NULL)); /* the completion stays in the ring */
	SHOW(io_getevents(ctx, 1, 1, (struct io_event *)8, &zero));
	r = io_getevents(ctx, 1, 1, odd_events, NULL); /* unaligned, but valid memory */
	memcpy(&ev[0], odd_events, sizeof(ev[0]));
	printf("unaligned events: %s data %ld res %ld\n", rc(r), (long)ev[0].data,
	       (long)ev[0].res);

	printf("-- waiting for a completion from another thread\n");
	io_prep_poll(&pollio, pipefd[0], POLLIN);
	SHOW(io_submit(ctx, 1, plist));
	CHECK(pthread_create(&th, NULL, write_later, NULL) == 0);
	r = io_getevents(ctx, 1, 8, ev, NULL);
	printf("poll: %s res %s is pollio: %s\n", rc(r), pollres((long)ev[0].res),
	       ev[0].obj == &pollio ? "yes" : "no");
	pthread_join(th, NULL);
	CHECK(read(pipefd[0], bufs[0], 1) == 1);

	printf("-- EINTR\n");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	SHOW(io_submit(ctx, 1, plist)); /* never completes until cancelled */
	memset(&it, 0, sizeof(it));
	it.it_value.tv_usec = 30 * 1000;
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
	r = io_getevents(ctx, 1, 8, ev, NULL);
	printf("signal while waiting, no timeout: %s, handled %d\n", rc(r), (int)handled);
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
	r = io_getevents(ctx, 1, 8, ev, &t5s);
	printf("signal while waiting, 5 s timeout: %s, handled %d\n", rc(r), (int)handled);
	sa.sa_flags = SA_RESTART;
	CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
	r = io_getevents(ctx, 1, 8, ev, &t5s);
	printf("signal with SA_RESTART: %s, handled %d\n", rc(r), (int)handled);
	/* One completion ready and one being waited for: the ready one is returned, not EINTR. */
	SHOW(io_submit(ctx, 1, list));
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
	r = io_getevents(ctx, 2, 8, ev, &t5s);
	printf("signal with one completion taken: %s data %ld, handled %d\n", rc(r),
	       (long)ev[0].data, (int)handled);
	SHOW(io_cancel(ctx, &pollio, &ev[0]));
	SHOW(io_getevents(ctx, 1, 8, ev, &t5s));

	printf("-- io_pgetevents\n");
	handled = 0;
	sigemptyset(&empty);
	sigemptyset(&block_usr1);
	sigaddset(&block_usr1, SIGUSR1);
	CHECK(sigprocmask(SIG_BLOCK, &block_usr1, &old) == 0);
	/* The mask keeps SIGUSR1 blocked while waiting: the signal stays pending. */
	SHOW(io_submit(ctx, 1, plist));
	CHECK(pthread_create(&th, NULL, signal_then_write, NULL) == 0);
	r = io_pgetevents(ctx, 1, 8, ev, NULL, &block_usr1);
	printf("mask blocking SIGUSR1: %s res %s, handled %d\n", rc(r), pollres((long)ev[0].res),
	       (int)handled);
	pthread_join(th, NULL);
	CHECK(read(pipefd[0], bufs[0], 1) == 1);
	/* The mask unblocks it: the pending signal interrupts the wait at once. */
	SHOW(io_submit(ctx, 1, plist));
	r = io_pgetevents(ctx, 1, 8, ev, &t5s, &empty);
	printf("mask unblocking the pending SIGUSR1: %s, handled %d\n", rc(r), (int)handled);
	CHECK(sigprocmask(SIG_BLOCK, NULL, &cur) == 0);
	printf("SIGUSR1 blocked again after the call: %s\n",
	       sigismember(&cur, SIGUSR1) ? "yes" : "no");
	/* A completion ready and a signal the mask unblocks: both happen. */
	SHOW(io_submit(ctx, 1, list));
	pthread_kill(pthread_self(), SIGUSR1);
	r = io_pgetevents(ctx, 1, 8, ev, NULL, &empty);
	printf("completion ready, SIGUSR1 pending and unblocked: %s data %ld, handled %d\n", rc(r),
	       (long)ev[0].data, (int)handled);
	/* No mask: like io_getevents. */
	SHOW(io_submit(ctx, 1, list));
	r = io_pgetevents(ctx, 1, 8, ev, NULL, NULL);
	printf("no mask: %s data %ld\n", rc(r), (long)ev[0].data);
	SHOW(io_pgetevents(ctx, 0, 8, ev, &zero, NULL));
	SHOW(io_pgetevents(ctx, 1, 8, ev, &zero, &empty));
	SHOW(io_pgetevents(ctx, 1, 8, ev, &t20, (sigset_t *)8));
	SHOW(io_cancel(ctx, &pollio, &ev[0]));
	SHOW(io_pgetevents(ctx, 1, 8, ev, &t5s, &block_usr1));
	printf("handled %d\n", (int)handled);
	CHECK(sigprocmask(SIG_SETMASK, &old, NULL) == 0);
	SHOW(io_destroy(ctx));

	printf("-- a context made with the raw system call\n");
	SHOW(syscall(SYS_io_setup, 8, &raw_ctx));
	SHOW(io_getevents(raw_ctx, 0, 8, ev, &zero));
	SHOW(io_submit(raw_ctx, 2, list));
	SHOW(io_getevents(raw_ctx, 2, 8, ev, NULL));
	SHOW(io_getevents(raw_ctx, 1, 8, ev, &zero));
	SHOW(io_destroy(raw_ctx));

	printf("-- concurrent reapers\n");
	concurrent_reaping(fd, 0);
	concurrent_reaping(fd, 1);
	close(fd);
	return 0;
}
