/* Threads: requests submitted by a thread that exits before they complete still complete, with
 * their data (POSIX: a request belongs to the process, not to the thread); eight threads
 * submitting and waiting at once on one file each get their own results. */
#include "common.h"

#define SIG (SIGRTMIN + 6)

struct submit {
	int fd;
	struct aiocb *plain, *signalled;
	char *a, *b;
};

static void *submit_and_exit(void *arg)
{
	struct submit *s = arg;
	prep(s->plain, s->fd, s->a, 1, 0);
	CHECK(aio_read(s->plain) == 0);
	prep(s->signalled, s->fd, s->b, 1, 0);
	s->signalled->aio_sigevent.sigev_notify = SIGEV_SIGNAL;
	s->signalled->aio_sigevent.sigev_signo = SIG;
	s->signalled->aio_sigevent.sigev_value.sival_int = 6;
	CHECK(aio_read(s->signalled) == 0);
	return NULL;
}

static int shared_fd;

static void *reader(void *arg)
{
	long t = (long)arg, ok = 0;
	static __thread char buf[4096];
	int i;
	for (i = 0; i < 100; i++) {
		struct aiocb cb;
		long off = ((t * 977 + i * 131) % 250) * 4096;
		prep(&cb, shared_fd, buf, 4096, off);
		CHECK(aio_read(&cb) == 0);
		wait_done(&cb);
		ok += aio_return(&cb) == 4096 && matches_pattern(buf, 4096, 16, off);
	}
	return (void *)ok;
}

int main(int argc, char **argv)
{
	struct aiocb plain, signalled;
	char a = 0, b = 0;
	int p[2], i;
	pthread_t t, readers[8];
	sigset_t set;
	siginfo_t info;
	long total = 0;
	struct submit s;
	setup_common(argc, argv);
	sigemptyset(&set);
	sigaddset(&set, SIG);
	CHECK(pthread_sigmask(SIG_BLOCK, &set, NULL) == 0);

	/* Submitted by a thread that is gone when the data comes. */
	CHECK(pipe(p) == 0);
	s.fd = p[0];
	s.plain = &plain;
	s.signalled = &signalled;
	s.a = &a;
	s.b = &b;
	CHECK(pthread_create(&t, NULL, submit_and_exit, &s) == 0);
	CHECK(pthread_join(t, NULL) == 0);
	sleep_ms(100);
	printf("after the submitter exited: %s %s\n", error_of(&plain), error_of(&signalled));
	CHECK(write(p[1], "AB", 2) == 2);
	wait_done(&plain);
	wait_done(&signalled);
	printf("after the data: %s %s, returns %ld %ld, bytes %c%c\n", error_of(&plain),
	       error_of(&signalled), (long)aio_return(&plain), (long)aio_return(&signalled),
	       a < b ? a : b, a < b ? b : a);
	i = sigtimedwait_retry(&set, &info, 5000);
	printf("signal = %d, si_code = %s, si_value = %d\n", i == SIG,
	       info.si_code == SI_ASYNCIO ? "SI_ASYNCIO" : "other", info.si_value.sival_int);

	/* Eight threads at once. */
	shared_fd = make_file("shared", 250 * 4096, 16);
	for (i = 0; i < 8; i++)
		CHECK(pthread_create(&readers[i], NULL, reader, (void *)(long)i) == 0);
	for (i = 0; i < 8; i++) {
		void *ok;
		CHECK(pthread_join(readers[i], &ok) == 0);
		total += (long)ok;
	}
	printf("8 threads x 100 reads correct = %ld\n", total);
	return 0;
}
