/* aio_error and aio_return are async-signal-safe: a handler that calls them, arriving every
 * few microseconds while the program is inside aio_write, aio_fsync, aio_suspend or aio_error,
 * never deadlocks, and sees each status either in progress or final with its right result.
 * The writes are O_DIRECT where the filesystem allows it, so they are still in flight when the
 * fsync after each comes, and the fsync is held until they complete. (glibc starts threads
 * as requests come, which a signal every 20 microseconds keeps from ever starting — and even
 * one every 500 stalls it: it gets one every 5 ms, which is enough to give the transcript. And
 * glibc's aio_error takes the mutex its aio_write holds, so under glibc a handler that calls
 * it can deadlock — what this program shows ours never does: under glibc the handler only
 * counts.) */
#include "common.h"

#define ROUNDS 8000
#define LEN 512

static struct aiocb *volatile watched;
#define watched_len LEN
static volatile sig_atomic_t handled, bad;
/* Whether the library is ours (see above). */
static int ours;

static void on_timer(int sig)
{
	struct aiocb *cb = watched;
	int saved = errno;
	(void)sig;
	if (cb && ours) {
		int e = aio_error(cb);
		if (e == 0) {
			if (aio_return(cb) != watched_len)
				bad = 1;
		} else if (e != EINPROGRESS) {
			bad = 1;
		}
	}
	handled = handled + 1;
	errno = saved;
}

/* Ends the program if the main thread stops making progress (a deadlock). */
static volatile long progress;

static void *watchdog(void *arg)
{
	long last = -1;
	(void)arg;
	for (;;) {
		sleep_ms(10000);
		if (progress == last) {
			printf("FATAL: no progress in 10 s (deadlock) at round %ld\n", last);
			fflush(stdout);
			_exit(1);
		}
		last = progress;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static char bufs[4][LEN] __attribute__((aligned(4096)));
	struct aiocb cbs[4], sync_cb;
	struct sigaction sa;
	struct sigevent sev;
	struct itimerspec its;
	timer_t timer;
	pthread_t dog;
	long i, ok = 0;
	int fd, k;
	(void)sync_cb;
	setup_common(argc, argv);
	ours = dlsym(RTLD_DEFAULT, "posixaio_engine") != NULL;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_timer;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR2, &sa, NULL) == 0);
	CHECK(pthread_create(&dog, NULL, watchdog, NULL) == 0);

	/* A timer signal to this thread every 20 microseconds. */
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGUSR2;
	sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	CHECK(timer_create(CLOCK_MONOTONIC, &sev, &timer) == 0);
	its.it_interval.tv_sec = 0;
	its.it_interval.tv_nsec = ours ? 20000 : 5000000;
	its.it_value = its.it_interval;
	CHECK(timer_settime(timer, 0, &its, NULL) == 0);

	fd = open(path_of("data"), O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0644);
	if (fd < 0)
		fd = open(path_of("data"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	/* Four writes in flight at a time, an fsync behind every fourth: each new write takes the
	 * completions of earlier ones, which releases the fsync held behind them. */
	for (i = 0; i < ROUNDS; i++) {
		k = i % 4;
		/* The handler looks at the previous write (in flight, or done) while this one is
		 * waited for, reused and submitted. */
		watched = i > 0 ? &cbs[(k + 3) % 4] : NULL;
		if (i >= 4) {
			wait_done(&cbs[k]);
			ok += aio_error(&cbs[k]) == 0 && aio_return(&cbs[k]) == LEN;
		}
		memset(bufs[k], (int)(i & 0xff), LEN);
		prep(&cbs[k], fd, bufs[k], LEN, (off_t)(i % 64) * LEN);
		CHECK(aio_write(&cbs[k]) == 0);
		if (k == 3) {
			if (i > 3) {
				wait_done(&sync_cb);
				CHECK(aio_error(&sync_cb) == 0);
			}
			prep(&sync_cb, fd, NULL, 0, 0);
			CHECK(aio_fsync(O_SYNC, &sync_cb) == 0);
		}
		progress = i;
	}
	watched = NULL;
	for (k = 0; k < 4; k++) {
		wait_done(&cbs[k]);
		ok += aio_error(&cbs[k]) == 0 && aio_return(&cbs[k]) == LEN;
	}
	wait_done(&sync_cb);
	CHECK(aio_error(&sync_cb) == 0);
	its.it_value.tv_nsec = 0;
	its.it_interval.tv_nsec = 0;
	CHECK(timer_settime(timer, 0, &its, NULL) == 0);
	printf("rounds = %d, an fsync every 4 writes\n", ROUNDS);
	printf("writes completed = %s\n", ok == ROUNDS ? "all" : "NOT ALL");
	printf("the handler ran = %s\n", handled > 0 ? "yes" : "no");
	printf("the handler saw only valid statuses = %s\n", bad ? "no" : "yes");
	return 0;
}
