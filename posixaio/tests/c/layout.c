/* Layout: sizes and offsets of every member of struct aiocb, aiocb64, sigevent and aioinit, the
 * constants, and the limits sysconf reports. Built against the system <aio.h> and against ours,
 * the transcripts must be identical. */
#include "common.h"
#include <stddef.h>

#define SIZE(t) printf("sizeof(%s) = %zu, alignof = %zu\n", #t, sizeof(t), __alignof__(t))
#define OFF(t, m) printf("offsetof(%s, %s) = %zu (size %zu)\n", #t, #m, offsetof(t, m), \
			 sizeof(((t *)0)->m))
#define CONST(c) printf("%s = %ld\n", #c, (long)(c))

int main(int argc, char **argv)
{
	struct aiocb cb;
	setup_common(argc, argv);
	memset(&cb, 0, sizeof(cb));

	SIZE(struct aiocb);
	OFF(struct aiocb, aio_fildes);
	OFF(struct aiocb, aio_lio_opcode);
	OFF(struct aiocb, aio_reqprio);
	OFF(struct aiocb, aio_buf);
	OFF(struct aiocb, aio_nbytes);
	OFF(struct aiocb, aio_sigevent);
	OFF(struct aiocb, aio_sigevent.sigev_value);
	OFF(struct aiocb, aio_sigevent.sigev_signo);
	OFF(struct aiocb, aio_sigevent.sigev_notify);
	OFF(struct aiocb, aio_sigevent.sigev_notify_function);
	OFF(struct aiocb, aio_sigevent.sigev_notify_attributes);
	OFF(struct aiocb, __next_prio);
	OFF(struct aiocb, __abs_prio);
	OFF(struct aiocb, __policy);
	OFF(struct aiocb, __error_code);
	OFF(struct aiocb, __return_value);
	OFF(struct aiocb, aio_offset);
	OFF(struct aiocb, __glibc_reserved);

	SIZE(struct aiocb64);
	OFF(struct aiocb64, aio_fildes);
	OFF(struct aiocb64, aio_lio_opcode);
	OFF(struct aiocb64, aio_reqprio);
	OFF(struct aiocb64, aio_buf);
	OFF(struct aiocb64, aio_nbytes);
	OFF(struct aiocb64, aio_sigevent);
	OFF(struct aiocb64, __next_prio);
	OFF(struct aiocb64, __abs_prio);
	OFF(struct aiocb64, __policy);
	OFF(struct aiocb64, __error_code);
	OFF(struct aiocb64, __return_value);
	OFF(struct aiocb64, aio_offset);
	OFF(struct aiocb64, __glibc_reserved);

	SIZE(struct sigevent);
	SIZE(union sigval);
	OFF(struct sigevent, sigev_value);
	OFF(struct sigevent, sigev_value.sival_int);
	OFF(struct sigevent, sigev_value.sival_ptr);
	OFF(struct sigevent, sigev_signo);
	OFF(struct sigevent, sigev_notify);
	OFF(struct sigevent, _sigev_un);
	OFF(struct sigevent, _sigev_un._tid);
	OFF(struct sigevent, sigev_notify_function);
	OFF(struct sigevent, sigev_notify_attributes);

	SIZE(struct aioinit);
	OFF(struct aioinit, aio_threads);
	OFF(struct aioinit, aio_num);
	OFF(struct aioinit, aio_locks);
	OFF(struct aioinit, aio_usedba);
	OFF(struct aioinit, aio_debug);
	OFF(struct aioinit, aio_numusers);
	OFF(struct aioinit, aio_idle_time);
	OFF(struct aioinit, aio_reserved);

	/* Signedness as C sees it. */
	cb.aio_offset = -1;
	cb.aio_nbytes = (size_t)-1;
	cb.__return_value = -1;
	printf("aio_offset signed: %s\n", cb.aio_offset < 0 ? "yes" : "no");
	printf("aio_nbytes unsigned: %s\n", cb.aio_nbytes > 0 ? "yes" : "no");
	printf("__return_value signed: %s\n", cb.__return_value < 0 ? "yes" : "no");

	CONST(AIO_CANCELED);
	CONST(AIO_NOTCANCELED);
	CONST(AIO_ALLDONE);
	CONST(LIO_READ);
	CONST(LIO_WRITE);
	CONST(LIO_NOP);
	CONST(LIO_WAIT);
	CONST(LIO_NOWAIT);
	CONST(SIGEV_SIGNAL);
	CONST(SIGEV_NONE);
	CONST(SIGEV_THREAD);
	CONST(SIGEV_THREAD_ID);
	CONST(SI_ASYNCIO);
	CONST(AIO_PRIO_DELTA_MAX);

	/* The limits: glibc's sysconf answers (the same with our library loaded: it is glibc's
	 * sysconf); the library's own limits are documented in README and posix.rs. */
	CONST(sysconf(_SC_ASYNCHRONOUS_IO));
	CONST(sysconf(_SC_AIO_LISTIO_MAX));
	CONST(sysconf(_SC_AIO_MAX));
	CONST(sysconf(_SC_AIO_PRIO_DELTA_MAX));
	return 0;
}
