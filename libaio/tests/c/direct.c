/* O_DIRECT: 16 writes and 16 vectored reads in flight at once, alignment errors, sync. */
#include "common.h"

#define BLOCKS 16
#define BS 4096

int main(int argc, char **argv)
{
	io_context_t ctx;
	static struct iocb ios[BLOCKS];
	struct iocb *list[BLOCKS], io;
	struct io_event ev[BLOCKS];
	struct iovec iov[BLOCKS][2];
	struct timespec ts = ms(10000);
	unsigned char *mem;
	int fd, i, ok, seen[BLOCKS];
	long r, res;

	setup_common(argc, argv);
	fd = open(path_of("direct.dat"), O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0644);
	if (fd < 0) {
		/* The Rust harness turns this into a SKIP. */
		printf("SKIP O_DIRECT not supported in %s: %s\n", test_dir, rc(-errno));
		return 0;
	}
	CHECK(posix_memalign((void **)&mem, BS, 2 * BLOCKS * BS) == 0);
	ctx = new_ctx(BLOCKS);

	for (i = 0; i < BLOCKS; i++) {
		long j;
		for (j = 0; j < BS; j++)
			mem[i * BS + j] = pattern_byte(i, j);
		io_prep_pwrite(&ios[i], fd, mem + i * BS, BS, (long long)i * BS);
		ios[i].data = (void *)(long)i;
		list[i] = &ios[i];
	}
	SHOW(io_submit(ctx, BLOCKS, list));
	r = io_getevents(ctx, BLOCKS, BLOCKS, ev, &ts);
	ok = 0;
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < r; i++) {
		seen[(long)ev[i].data]++;
		ok += (long)ev[i].res == BS;
	}
	printf("writes: %s completed, %d with res %d\n", rc(r), ok, BS);

	/* Read back, each block as two 2 KiB halves, into the second half of the buffer. */
	memset(mem + BLOCKS * BS, 0, BLOCKS * BS);
	for (i = 0; i < BLOCKS; i++) {
		iov[i][0].iov_base = mem + (BLOCKS + i) * BS;
		iov[i][0].iov_len = BS / 2;
		iov[i][1].iov_base = mem + (BLOCKS + i) * BS + BS / 2;
		iov[i][1].iov_len = BS / 2;
		io_prep_preadv(&ios[i], fd, iov[i], 2, (long long)i * BS);
		ios[i].data = (void *)(long)i;
	}
	SHOW(io_submit(ctx, BLOCKS, list));
	r = 0;
	while (r < BLOCKS) {
		long n = io_getevents(ctx, 1, BLOCKS, ev, &ts);
		CHECK(n > 0);
		for (i = 0; i < n; i++)
			CHECK((long)ev[i].res == BS);
		r += n;
	}
	ok = 0;
	for (i = 0; i < BLOCKS; i++)
		ok += matches_pattern(mem + (BLOCKS + i) * BS, BS, i, 0);
	printf("reads: %ld completed, %d blocks verified\n", r, ok);

	/* Alignment errors come back in the completion. */
	io_prep_pread(&io, fd, mem + 1, BS, 0);
	res = 0;
	r = submit_wait(ctx, &io, &res);
	printf("misaligned buffer: submit %s res %s\n", rc(r), rc(res));
	io_prep_pread(&io, fd, mem, BS, 1);
	r = submit_wait(ctx, &io, &res);
	printf("misaligned offset: submit %s res %s\n", rc(r), rc(res));
	io_prep_pread(&io, fd, mem, 100, 0);
	r = submit_wait(ctx, &io, &res);
	printf("misaligned length: submit %s res %s\n", rc(r), rc(res));
	io_prep_pread(&io, fd, mem, BS, (long long)BLOCKS * BS);
	r = submit_wait(ctx, &io, &res);
	printf("read at EOF: submit %s res %s\n", rc(r), rc(res));
	io_prep_fsync(&io, fd);
	r = submit_wait(ctx, &io, &res);
	printf("fsync: submit %s res %s\n", rc(r), rc(res));
	io_prep_fdsync(&io, fd);
	r = submit_wait(ctx, &io, &res);
	printf("fdsync: submit %s res %s\n", rc(r), rc(res));
	io_prep_pread(&io, fd, mem, BS, 0);
	io.aio_rw_flags = RWF_NOWAIT;
	r = submit_wait(ctx, &io, &res);
	printf("RWF_NOWAIT read: submit %s res %s\n", rc(r), res == BS || res == -EAGAIN ? "4096 or -EAGAIN" : rc(res));
	SHOW(io_destroy(ctx));
	close(fd);
	return 0;
}
