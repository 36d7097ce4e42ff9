/* Per-request RWF_* flags through io_prep_preadv2/io_prep_pwritev2, and the vectored ops. */
#include "common.h"

static long size_of(int fd)
{
	struct stat st;
	CHECK(fstat(fd, &st) == 0);
	return (long)st.st_size;
}

int main(int argc, char **argv)
{
	io_context_t ctx;
	struct iocb io;
	struct iovec iov[2];
	static char a[2048], b[2048];
	int fd, i;
	long r, res;

	setup_common(argc, argv);
	fd = make_file("rwflags.dat", 8192, 6);
	ctx = new_ctx(8);
	iov[0].iov_base = a;
	iov[0].iov_len = sizeof(a);
	iov[1].iov_base = b;
	iov[1].iov_len = sizeof(b);

#define RUN(label)                                                                    \
	do {                                                                          \
		res = 0;                                                              \
		r = submit_wait(ctx, &io, &res);                                      \
		printf("%-28s submit %s res %s\n", label, rc(r), r == 1 ? rc(res) : "-"); \
	} while (0)

	io_prep_preadv(&io, fd, iov, 2, 1024);
	RUN("preadv");
	printf("preadv data ok: %s\n", matches_pattern((unsigned char *)a, 2048, 6, 1024) &&
	       matches_pattern((unsigned char *)b, 2048, 6, 3072) ? "yes" : "no");
	io_prep_preadv2(&io, fd, iov, 2, 0, 0);
	RUN("preadv2 no flags");
	io_prep_preadv2(&io, fd, iov, 2, 0, RWF_NOWAIT); /* cached: no waiting needed */
	RUN("preadv2 RWF_NOWAIT");
	io_prep_preadv2(&io, fd, iov, 2, 0, RWF_HIPRI);
	RUN("preadv2 RWF_HIPRI");
	io_prep_preadv2(&io, fd, iov, 2, 6144, 0);
	RUN("preadv2 short at EOF");

	for (i = 0; i < 2048; i++) {
		a[i] = (char)pattern_byte(9, i);
		b[i] = (char)pattern_byte(9, 2048 + i);
	}
	io_prep_pwritev(&io, fd, iov, 2, 0);
	RUN("pwritev");
	io_prep_pwritev2(&io, fd, iov, 2, 0, RWF_DSYNC);
	RUN("pwritev2 RWF_DSYNC");
	io_prep_pwritev2(&io, fd, iov, 2, 0, RWF_SYNC);
	RUN("pwritev2 RWF_SYNC");
	printf("size before append: %ld\n", size_of(fd));
	io_prep_pwritev2(&io, fd, iov, 2, 0, RWF_APPEND); /* the offset is ignored */
	RUN("pwritev2 RWF_APPEND");
	printf("size after append: %ld\n", size_of(fd));
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	io_prep_preadv(&io, fd, iov, 2, 8192);
	RUN("read back the appended part");
	printf("appended data ok: %s\n", matches_pattern((unsigned char *)a, 2048, 9, 0) &&
	       matches_pattern((unsigned char *)b, 2048, 9, 2048) ? "yes" : "no");
	io_prep_pwritev2(&io, fd, iov, 2, 0, RWF_NOWAIT);
	RUN("pwritev2 RWF_NOWAIT");
	io_prep_pwritev2(&io, fd, iov, 2, 0, 0x40000000);
	RUN("pwritev2 unknown flag");
	io_prep_preadv2(&io, fd, iov, 2, 0, -1);
	RUN("preadv2 all flags");
	io_prep_preadv(&io, fd, iov, 0, 0);
	RUN("preadv no iovecs");
	io_prep_preadv(&io, fd, iov, -1, 0);
	RUN("preadv -1 iovecs");
	io_prep_preadv(&io, fd, (struct iovec *)8, 2, 0);
	RUN("preadv bad iovec pointer");
	io_prep_pread(&io, fd, (void *)8, 16, 0);
	RUN("pread bad buffer");
	io_prep_pread(&io, fd, a, 16, -1);
	RUN("pread negative offset");
	io_prep_fsync(&io, fd);
	RUN("fsync");
	io_prep_fdsync(&io, fd);
	RUN("fdsync");
	SHOW(io_destroy(ctx));
	return 0;
}
