/* lio_listio: LIO_WAIT and LIO_NOWAIT, LIO_NOP and null entries skipped, a bad opcode (EIO for
 * the list, EINVAL for the entry), a bad aio_reqprio in the list, an empty list, a bad mode,
 * the list's own notification by signal and by thread, and each entry's own notification. */
#include "common.h"

#define SIG (SIGRTMIN + 4)
#define SIG_ENTRY (SIGRTMIN + 5)

static sem_t list_done;
static struct aiocb *thread_list[4];
static int thread_value, thread_all_done;

static void list_thread(union sigval v)
{
	int i;
	thread_value = v.sival_int;
	thread_all_done = 1;
	for (i = 0; i < 4; i++)
		if (thread_list[i] && aio_error(thread_list[i]) == EINPROGRESS)
			thread_all_done = 0;
	sem_post(&list_done);
}

static const char *errors(struct aiocb *const *list, int n)
{
	static char out[256];
	int i;
	out[0] = 0;
	for (i = 0; i < n; i++) {
		if (i)
			strcat(out, " ");
		strcat(out, list[i] ? error_of(list[i]) : "null");
	}
	return out;
}

static int count_signals(int sig, int *value_sum)
{
	sigset_t set;
	siginfo_t info;
	int n = 0;
	sigemptyset(&set);
	sigaddset(&set, sig);
	while (sigtimedwait_retry(&set, &info, 200) == sig) {
		n++;
		if (info.si_code != SI_ASYNCIO)
			printf("a signal with si_code %d\n", info.si_code);
		if (value_sum)
			*value_sum += info.si_value.sival_int;
	}
	return n;
}

int main(int argc, char **argv)
{
	static char bufs[8][512], out[512], nopbuf[512];
	struct aiocb cbs[8], nop;
	struct aiocb *list[8];
	struct sigevent sev;
	sigset_t set;
	int fd, i, p[2];
	setup_common(argc, argv);
	CHECK(sem_init(&list_done, 0, 0) == 0);
	sigemptyset(&set);
	sigaddset(&set, SIG);
	sigaddset(&set, SIG_ENTRY);
	CHECK(pthread_sigmask(SIG_BLOCK, &set, NULL) == 0);
	fd = make_file("data", 8 * 512, 9);
	memset(out, 'W', sizeof(out));

	/* LIO_WAIT: a read, a write, a null entry, a LIO_NOP. */
	prep(&cbs[0], fd, bufs[0], 512, 512);
	cbs[0].aio_lio_opcode = LIO_READ;
	prep(&cbs[1], fd, out, 512, 7 * 512);
	cbs[1].aio_lio_opcode = LIO_WRITE;
	prep(&nop, fd, nopbuf, 512, 0);
	nop.aio_lio_opcode = LIO_NOP;
	list[0] = &cbs[0];
	list[1] = &cbs[1];
	list[2] = NULL;
	list[3] = &nop;
	SHOW("LIO_WAIT read+write+null+nop", lio_listio(LIO_WAIT, list, 4, NULL));
	printf("  errors: %s %s\n", error_of(&cbs[0]), error_of(&cbs[1]));
	printf("  returns: %ld %ld\n", (long)aio_return(&cbs[0]), (long)aio_return(&cbs[1]));
	printf("  read data ok = %d, nop buffer untouched = %d\n",
	       matches_pattern(bufs[0], 512, 9, 512), nopbuf[0] == 0 && nopbuf[511] == 0);
	{
		char check[512];
		CHECK(pread(fd, check, 512, 7 * 512) == 512);
		printf("  write data ok = %d\n", memcmp(check, out, 512) == 0);
	}

	/* LIO_NOWAIT: eight reads. */
	for (i = 0; i < 8; i++) {
		prep(&cbs[i], fd, bufs[i], 512, i * 512);
		cbs[i].aio_lio_opcode = LIO_READ;
		list[i] = &cbs[i];
	}
	SHOW("LIO_NOWAIT 8 reads", lio_listio(LIO_NOWAIT, list, 8, NULL));
	wait_all(list, 8);
	{
		int ok = 0;
		for (i = 0; i < 7; i++)
			ok += aio_return(&cbs[i]) == 512 && matches_pattern(bufs[i], 512, 9, i * 512);
		printf("  errors: %s\n  correct = %d of 7, last = %ld\n", errors(list, 8), ok,
		       (long)aio_return(&cbs[7]));
	}

	/* A bad opcode: the list fails with EIO, the entry with EINVAL, the others run. */
	prep(&cbs[0], fd, bufs[0], 512, 0);
	cbs[0].aio_lio_opcode = LIO_READ;
	prep(&cbs[1], fd, bufs[1], 512, 0);
	cbs[1].aio_lio_opcode = 99;
	prep(&cbs[2], fd, out, 512, 6 * 512);
	cbs[2].aio_lio_opcode = LIO_WRITE;
	SHOW("LIO_WAIT bad opcode", lio_listio(LIO_WAIT, list, 3, NULL));
	printf("  errors: %s\n", errors(list, 3));
	printf("  returns: %ld %ld %ld\n", (long)aio_return(&cbs[0]), (long)aio_return(&cbs[1]),
	       (long)aio_return(&cbs[2]));
	cbs[1].aio_lio_opcode = -1;
	SHOW("LIO_NOWAIT bad opcode", lio_listio(LIO_NOWAIT, list, 3, NULL));
	wait_all(list, 3);
	printf("  errors: %s\n", errors(list, 3));

	/* A bad aio_reqprio in an entry: that entry fails at once with EINVAL, the others run. */
	for (i = 0; i < 3; i++) {
		prep(&cbs[i], fd, bufs[i], 512, i * 512);
		cbs[i].aio_lio_opcode = LIO_READ;
	}
	cbs[1].aio_reqprio = 21;
	SHOW("LIO_WAIT reqprio 21", lio_listio(LIO_WAIT, list, 3, NULL));
	printf("  errors: %s\n", errors(list, 3));
	cbs[1].aio_reqprio = -5;
	SHOW("LIO_NOWAIT reqprio -5", lio_listio(LIO_NOWAIT, list, 3, NULL));
	wait_all(list, 3);
	printf("  errors: %s\n", errors(list, 3));

	/* Nothing to do, a bad mode. */
	SHOW("LIO_WAIT empty", lio_listio(LIO_WAIT, list, 0, NULL));
	SHOW("LIO_WAIT only null and nop", lio_listio(LIO_WAIT, (struct aiocb *[]){NULL, &nop}, 2, NULL));
	SHOW("mode 7", lio_listio(7, list, 1, NULL));
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIG;
	sev.sigev_value.sival_int = 5;
	SHOW("LIO_NOWAIT empty, signal", lio_listio(LIO_NOWAIT, list, 0, &sev));
	printf("  list signals = %d\n", count_signals(SIG, NULL));

	/* The list's signal comes when the last entry completes: a pipe read holds it back. */
	CHECK(pipe(p) == 0);
	for (i = 0; i < 3; i++) {
		prep(&cbs[i], fd, bufs[i], 512, i * 512);
		cbs[i].aio_lio_opcode = LIO_READ;
	}
	prep(&cbs[3], p[0], bufs[3], 1, 0);
	cbs[3].aio_lio_opcode = LIO_READ;
	sev.sigev_value.sival_int = 1234;
	SHOW("LIO_NOWAIT with a list signal", lio_listio(LIO_NOWAIT, list, 4, &sev));
	wait_all(list, 3);
	printf("  list signals before the pipe read = %d\n", count_signals(SIG, NULL));
	CHECK(write(p[1], "p", 1) == 1);
	{
		siginfo_t info;
		sigset_t one;
		int r;
		sigemptyset(&one);
		sigaddset(&one, SIG);
		r = sigtimedwait_retry(&one, &info, 5000);
		printf("  list signal = %d, si_code = %s, si_value = %d, all done = %d\n", r == SIG,
		       info.si_code == SI_ASYNCIO ? "SI_ASYNCIO" : "other", info.si_value.sival_int,
		       aio_error(&cbs[3]) != EINPROGRESS && aio_error(&cbs[0]) != EINPROGRESS);
	}
	printf("  errors: %s\n", errors(list, 4));

	/* Each entry's own notification is sent too. */
	for (i = 0; i < 3; i++) {
		prep(&cbs[i], fd, bufs[i], 512, i * 512);
		cbs[i].aio_lio_opcode = LIO_READ;
		cbs[i].aio_sigevent.sigev_notify = SIGEV_SIGNAL;
		cbs[i].aio_sigevent.sigev_signo = SIG_ENTRY;
		cbs[i].aio_sigevent.sigev_value.sival_int = 10 << i;
	}
	sev.sigev_value.sival_int = 1;
	SHOW("LIO_NOWAIT entries with signals", lio_listio(LIO_NOWAIT, list, 3, &sev));
	wait_all(list, 3);
	{
		int sum = 0, n = count_signals(SIG_ENTRY, &sum);
		printf("  entry signals = %d (values %d), list signals = %d\n", n, sum,
		       count_signals(SIG, NULL));
	}
	SHOW("LIO_WAIT entries with signals", lio_listio(LIO_WAIT, list, 3, &sev));
	{
		int sum = 0, n = count_signals(SIG_ENTRY, &sum);
		printf("  entry signals = %d (values %d), list signals (none with LIO_WAIT) = %d\n", n,
		       sum, count_signals(SIG, NULL));
	}

	/* The list's notification by thread. */
	for (i = 0; i < 4; i++) {
		prep(&cbs[i], fd, bufs[i], 512, i * 512);
		cbs[i].aio_lio_opcode = LIO_READ;
		thread_list[i] = &cbs[i];
	}
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD;
	sev.sigev_notify_function = list_thread;
	sev.sigev_value.sival_int = 4321;
	SHOW("LIO_NOWAIT list thread", lio_listio(LIO_NOWAIT, list, 4, &sev));
	{
		struct timespec ts;
		int ran;
		ts.tv_sec = time(NULL) + 5;
		ts.tv_nsec = 0;
		ran = sem_timedwait(&list_done, &ts) == 0;
		printf("  thread ran = %d, value = %d, all done = %d\n", ran, thread_value,
		       thread_all_done);
	}
	return 0;
}
