/* aio_init: sizing hints before the first request (glibc: threads and request table; this
 * library: the pool's threads, the io_uring and kernel AIO queue depth, the idle time), then
 * requests work as usual; hints after the first request change nothing that can be seen. */
#include "common.h"

int main(int argc, char **argv)
{
	struct aioinit init;
	static char bufs[32][512];
	struct aiocb cbs[32];
	struct aiocb *list[32];
	int fd, i, ok = 0;
	setup_common(argc, argv);
	memset(&init, 0, sizeof(init));
	init.aio_threads = 4;
	init.aio_num = 64;
	init.aio_idle_time = 2;
	aio_init(&init);
	printf("aio_init before any request: done\n");
	fd = make_file("data", 32 * 512, 14);
	for (i = 0; i < 32; i++) {
		prep(&cbs[i], fd, bufs[i], 512, i * 512);
		cbs[i].aio_lio_opcode = LIO_READ;
		list[i] = &cbs[i];
	}
	SHOW("lio_listio 32 reads", lio_listio(LIO_WAIT, list, 32, NULL));
	for (i = 0; i < 32; i++)
		ok += aio_return(&cbs[i]) == 512 && matches_pattern(bufs[i], 512, 14, i * 512);
	printf("correct = %d\n", ok);

	/* Again, after requests: no effect on what a program sees. */
	init.aio_threads = 1;
	init.aio_num = 1;
	init.aio_idle_time = 1;
	aio_init(&init);
	memset(&init, 0, sizeof(init));
	aio_init(&init);
	printf("aio_init after requests: done\n");
	for (i = 0; i < 32; i++)
		prep(&cbs[i], fd, bufs[i], 512, i * 512);
	for (i = 0; i < 32; i++)
		CHECK(aio_read(&cbs[i]) == 0);
	wait_all(list, 32);
	ok = 0;
	for (i = 0; i < 32; i++)
		ok += aio_return(&cbs[i]) == 512 && matches_pattern(bufs[i], 512, 14, i * 512);
	printf("correct = %d\n", ok);
	return 0;
}
