/* Notification: SIGEV_NONE (nothing), SIGEV_SIGNAL (si_code SI_ASYNCIO, si_value, si_pid,
 * the status final when the signal arrives; also through a handler), SIGEV_THREAD (the
 * function runs with sigev_value on a new thread, detached, with no signal blocked; with
 * sigev_notify_attributes, on a thread made with them), SIGEV_THREAD_ID (the signal goes to
 * that thread). */
#include "common.h"
#include <stddef.h>

#define SIG (SIGRTMIN + 1)
#define SIG2 (SIGRTMIN + 2)

static int fd;
static char buf[256];

struct seen {
	sem_t done;
	int value;
	int status_final;
	int detached;
	size_t stack;
	int sig_blocked;
	pid_t tid;
};

static struct seen seen;
static struct aiocb *watched;

static void thread_fn(union sigval v)
{
	pthread_attr_t attr;
	sigset_t mask;
	int state = -1;
	seen.value = v.sival_int;
	seen.status_final = aio_error(watched) == 0 && aio_return(watched) == sizeof(buf);
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		pthread_attr_getdetachstate(&attr, &state);
		pthread_attr_getstacksize(&attr, &seen.stack);
		pthread_attr_destroy(&attr);
	}
	seen.detached = state == PTHREAD_CREATE_DETACHED;
	pthread_sigmask(SIG_BLOCK, NULL, &mask);
	seen.sig_blocked = sigismember(&mask, SIG2);
	seen.tid = (pid_t)syscall(SYS_gettid);
	sem_post(&seen.done);
}

static volatile sig_atomic_t handler_code, handler_value, handler_status, handler_tid_ok;
static pid_t main_tid;

static void handler(int sig, siginfo_t *info, void *ctx)
{
	(void)sig;
	(void)ctx;
	handler_code = info->si_code;
	handler_value = info->si_value.sival_int;
	handler_status = aio_error(watched);
	handler_tid_ok = (pid_t)syscall(SYS_gettid) == main_tid;
}

static void show_siginfo(const char *what, const siginfo_t *info, int r)
{
	if (r < 0) {
		printf("%s: no signal (%s)\n", what, errname(errno));
		return;
	}
	printf("%s: signo ok = %d, si_code = %s, si_value = %d, si_pid ok = %d\n", what,
	       info->si_signo == r, info->si_code == SI_ASYNCIO ? "SI_ASYNCIO" : "other",
	       info->si_value.sival_int, info->si_pid == getpid());
}

int main(int argc, char **argv)
{
	struct aiocb cb;
	sigset_t set, both;
	siginfo_t info;
	struct timespec ts;
	int r;
	setup_common(argc, argv);
	main_tid = (pid_t)syscall(SYS_gettid);
	CHECK(sem_init(&seen.done, 0, 0) == 0);
	fd = make_file("data", 4096, 8);
	watched = &cb;
	/* SIG is taken with sigtimedwait, SIG2 stays blocked here (notification threads must
	 * not inherit that). */
	sigemptyset(&set);
	sigaddset(&set, SIG);
	sigemptyset(&both);
	sigaddset(&both, SIG);
	sigaddset(&both, SIG2);
	CHECK(pthread_sigmask(SIG_BLOCK, &both, NULL) == 0);

	/* SIGEV_NONE. */
	prep(&cb, fd, buf, sizeof(buf), 0);
	CHECK(aio_read(&cb) == 0);
	wait_done(&cb);
	r = sigtimedwait_retry(&set, &info, 100);
	printf("SIGEV_NONE: %s\n", r < 0 ? "no signal" : "a signal");

	/* SIGEV_SIGNAL, an int value; the status is final when the signal is queued. */
	prep(&cb, fd, buf, sizeof(buf), 0);
	cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
	cb.aio_sigevent.sigev_signo = SIG;
	cb.aio_sigevent.sigev_value.sival_int = 4242;
	SHOW("SIGEV_SIGNAL read", aio_read(&cb));
	r = sigtimedwait_retry(&set, &info, 5000);
	show_siginfo("SIGEV_SIGNAL", &info, r);
	printf("SIGEV_SIGNAL status at the signal = %s, return = %ld\n", error_of(&cb),
	       (long)aio_return(&cb));

	/* A pointer value, on a write. */
	{
		static char out[100];
		struct aiocb w;
		prep(&w, fd, out, sizeof(out), 8192);
		w.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
		w.aio_sigevent.sigev_signo = SIG;
		w.aio_sigevent.sigev_value.sival_ptr = &w;
		SHOW("SIGEV_SIGNAL write", aio_write(&w));
		r = sigtimedwait_retry(&set, &info, 5000);
		printf("SIGEV_SIGNAL write: signal = %d, si_value is the aiocb = %d, status = %s\n",
		       r == SIG, info.si_value.sival_ptr == &w, error_of(&w));
	}

	/* Through a handler (SA_SIGINFO), the signal unblocked. */
	{
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = handler;
		sa.sa_flags = SA_SIGINFO;
		sigemptyset(&sa.sa_mask);
		CHECK(sigaction(SIG, &sa, NULL) == 0);
		prep(&cb, fd, buf, sizeof(buf), 0);
		cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
		cb.aio_sigevent.sigev_signo = SIG;
		cb.aio_sigevent.sigev_value.sival_int = 77;
		CHECK(aio_read(&cb) == 0);
		wait_done(&cb);
		/* Only this thread takes SIG: the library's threads block it. */
		CHECK(pthread_sigmask(SIG_UNBLOCK, &set, NULL) == 0);
		for (r = 0; r < 500 && handler_code == 0; r++)
			sleep_ms(10);
		CHECK(pthread_sigmask(SIG_BLOCK, &set, NULL) == 0);
		printf("handler: si_code = %s, si_value = %d, status = %s, on this thread = %d\n",
		       handler_code == SI_ASYNCIO ? "SI_ASYNCIO" : "other", (int)handler_value,
		       errname(handler_status), (int)handler_tid_ok);
		signal(SIG, SIG_DFL);
	}

	/* SIGEV_THREAD, no attributes: a detached thread. */
	prep(&cb, fd, buf, sizeof(buf), 0);
	cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
	cb.aio_sigevent.sigev_notify_function = thread_fn;
	cb.aio_sigevent.sigev_value.sival_int = 31337;
	SHOW("SIGEV_THREAD read", aio_read(&cb));
	ts.tv_sec = time(NULL) + 5;
	ts.tv_nsec = 0;
	r = sem_timedwait(&seen.done, &ts);
	printf("SIGEV_THREAD: ran = %d, value = %d, status final = %d, detached = %d, "
	       "SIG2 blocked = %d, new thread = %d\n",
	       r == 0, seen.value, seen.status_final, seen.detached, seen.sig_blocked,
	       seen.tid != main_tid);

	/* SIGEV_THREAD with attributes: a 1 MiB stack, joinable. */
	{
		pthread_attr_t attr;
		CHECK(pthread_attr_init(&attr) == 0);
		CHECK(pthread_attr_setstacksize(&attr, 1 << 20) == 0);
		CHECK(pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_JOINABLE) == 0);
		memset(&seen.value, 0, sizeof(seen) - offsetof(struct seen, value));
		prep(&cb, fd, buf, sizeof(buf), 0);
		cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
		cb.aio_sigevent.sigev_notify_function = thread_fn;
		cb.aio_sigevent.sigev_notify_attributes = &attr;
		cb.aio_sigevent.sigev_value.sival_int = 2024;
		SHOW("SIGEV_THREAD attributes read", aio_read(&cb));
		ts.tv_sec = time(NULL) + 5;
		r = sem_timedwait(&seen.done, &ts);
		printf("SIGEV_THREAD attributes: ran = %d, value = %d, status final = %d, "
		       "detached = %d, stack 1 MiB = %d\n",
		       r == 0, seen.value, seen.status_final, seen.detached,
		       seen.stack >= (1 << 20) && seen.stack < (2 << 20));
		wait_done(&cb);
		pthread_attr_destroy(&attr);
	}

	/* SIGEV_THREAD_ID: the signal goes to this thread. */
	prep(&cb, fd, buf, sizeof(buf), 0);
	cb.aio_sigevent.sigev_notify = SIGEV_THREAD_ID;
	cb.aio_sigevent.sigev_signo = SIG;
	cb.aio_sigevent.sigev_value.sival_int = 99;
	cb.aio_sigevent._sigev_un._tid = main_tid;
	SHOW("SIGEV_THREAD_ID read", aio_read(&cb));
	wait_done(&cb);
	r = sigtimedwait_retry(&set, &info, 500);
	show_siginfo("SIGEV_THREAD_ID", &info, r);
	return 0;
}
