/* The *64 entry points: built with _FILE_OFFSET_BITS=64 the plain names resolve to aio_read64,
 * aio_error64, ... (as fio is built); struct aiocb64 is used with the *64 names directly too.
 * Every *64 function is called. */
#define _FILE_OFFSET_BITS 64
#include "common.h"

int main(int argc, char **argv)
{
	static char buf[4096], out[512];
	struct aiocb cb;
	struct aiocb64 cb64, s64;
	struct aiocb64 *list64[2];
	const struct aiocb64 *wait64[1];
	struct timespec ts;
	int fd, p[2];
	char c;
	setup_common(argc, argv);
	fd = make_file("data", 1 << 20, 15);

	/* Plain names, redirected to the *64 functions. */
	prep(&cb, fd, buf, 4096, 65536);
	SHOW("aio_read (aio_read64)", aio_read(&cb));
	wait_done(&cb);
	printf("error = %s, return = %ld, data ok = %d\n", error_of(&cb), (long)aio_return(&cb),
	       matches_pattern(buf, 4096, 15, 65536));

	/* The *64 names with struct aiocb64. */
	memset(out, 'q', sizeof(out));
	memset(&cb64, 0, sizeof(cb64));
	cb64.aio_fildes = fd;
	cb64.aio_buf = out;
	cb64.aio_nbytes = sizeof(out);
	cb64.aio_offset = (1 << 20) - 512;
	cb64.aio_sigevent.sigev_notify = SIGEV_NONE;
	SHOW("aio_write64", aio_write64(&cb64));
	wait64[0] = &cb64;
	ts = ms(5000);
	SHOW("aio_suspend64", aio_suspend64(wait64, 1, &ts));
	SHOW("aio_error64", aio_error64(&cb64));
	SHOW("aio_return64", aio_return64(&cb64));
	memset(&s64, 0, sizeof(s64));
	s64.aio_fildes = fd;
	SHOW("aio_fsync64", aio_fsync64(O_DSYNC, &s64));
	wait64[0] = &s64;
	while (aio_error64(&s64) == EINPROGRESS)
		CHECK(aio_suspend64(wait64, 1, NULL) == 0);
	SHOW("aio_fsync64 error", aio_error64(&s64));

	cb64.aio_buf = buf;
	cb64.aio_nbytes = 512;
	cb64.aio_offset = 512;
	cb64.aio_lio_opcode = LIO_READ;
	list64[0] = &cb64;
	list64[1] = NULL;
	SHOW("lio_listio64", lio_listio64(LIO_WAIT, list64, 2, NULL));
	SHOW("lio_listio64 return", aio_return64(&cb64));

	CHECK(pipe(p) == 0);
	memset(&cb64, 0, sizeof(cb64));
	cb64.aio_fildes = p[0];
	cb64.aio_buf = &c;
	cb64.aio_nbytes = 1;
	SHOW("aio_read64 pipe", aio_read64(&cb64));
	SHOW("aio_cancel64 bad fd", aio_cancel64(-1, &cb64));
	SHOW("aio_cancel64 done", aio_cancel64(fd, &s64));
	CHECK(write(p[1], "!", 1) == 1);
	wait64[0] = &cb64;
	while (aio_error64(&cb64) == EINPROGRESS)
		CHECK(aio_suspend64(wait64, 1, NULL) == 0);
	SHOW("aio_read64 pipe return", aio_return64(&cb64));
	return 0;
}
