/* aio_read and aio_write: data in and out at offsets, short reads at end of file, zero-length
 * requests, aio_return once and again, O_APPEND, and 64 reads of one file in flight at once. */
#include "common.h"

#define SIZE 65536

int main(int argc, char **argv)
{
	struct aiocb cb;
	static char buf[SIZE], out[4096];
	int fd, i;
	setup_common(argc, argv);
	fd = make_file("data", SIZE, 1);

	/* A read at an offset. */
	prep(&cb, fd, buf, 4096, 8192);
	SHOW("read", aio_read(&cb));
	wait_done(&cb);
	printf("read error = %s\n", error_of(&cb));
	SHOW("read return", aio_return(&cb));
	SHOW("read return again", aio_return(&cb));
	printf("read data ok = %d\n", matches_pattern(buf, 4096, 1, 8192));

	/* A short read at the end of the file, and a read past it. */
	prep(&cb, fd, buf, 4096, SIZE - 100);
	SHOW("short read", aio_read(&cb));
	wait_done(&cb);
	printf("short read error = %s\n", error_of(&cb));
	SHOW("short read return", aio_return(&cb));
	printf("short read data ok = %d\n", matches_pattern(buf, 100, 1, SIZE - 100));
	prep(&cb, fd, buf, 4096, SIZE + 4096);
	SHOW("read past end", aio_read(&cb));
	wait_done(&cb);
	SHOW("read past end return", aio_return(&cb));

	/* Zero bytes. */
	prep(&cb, fd, buf, 0, 0);
	SHOW("zero read", aio_read(&cb));
	wait_done(&cb);
	printf("zero read error = %s\n", error_of(&cb));
	SHOW("zero read return", aio_return(&cb));

	/* A write, read back with pread. */
	for (i = 0; i < 4096; i++)
		out[i] = (char)(i * 13 + 5);
	prep(&cb, fd, out, 4096, 4096 * 3);
	SHOW("write", aio_write(&cb));
	wait_done(&cb);
	printf("write error = %s\n", error_of(&cb));
	SHOW("write return", aio_return(&cb));
	CHECK(pread(fd, buf, 4096, 4096 * 3) == 4096);
	printf("write data ok = %d\n", memcmp(buf, out, 4096) == 0);

	/* A write that extends the file. */
	prep(&cb, fd, out, 1000, SIZE + 24);
	SHOW("extending write", aio_write(&cb));
	wait_done(&cb);
	SHOW("extending write return", aio_return(&cb));
	{
		struct stat st;
		CHECK(fstat(fd, &st) == 0);
		printf("size after extending write = %ld\n", (long)st.st_size);
	}

	/* O_APPEND: the offset is ignored, every write goes to the end. */
	{
		int afd = open(path_of("append"), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
		struct stat st;
		char check[64];
		CHECK(afd >= 0);
		CHECK(write(afd, "head:", 5) == 5);
		prep(&cb, afd, "one,", 4, 0);
		SHOW("append write 1", aio_write(&cb));
		wait_done(&cb);
		SHOW("append write 1 return", aio_return(&cb));
		prep(&cb, afd, "two.", 4, 1);
		SHOW("append write 2", aio_write(&cb));
		wait_done(&cb);
		SHOW("append write 2 return", aio_return(&cb));
		CHECK(fstat(afd, &st) == 0);
		printf("append size = %ld\n", (long)st.st_size);
		close(afd);
		afd = open(path_of("append"), O_RDONLY);
		CHECK(afd >= 0);
		memset(check, 0, sizeof(check));
		CHECK(read(afd, check, sizeof(check) - 1) == 13);
		printf("append contents = %s\n", check);
		close(afd);
	}

	/* 64 reads of one file at once, all checked. */
	{
		static struct aiocb cbs[64];
		static char bufs[64][1024];
		const struct aiocb *list[64];
		int ok = 0, n;
		fd = make_file("many", 64 * 1024, 2);
		for (i = 0; i < 64; i++) {
			prep(&cbs[i], fd, bufs[i], 1024, (63 - i) * 1024);
			CHECK(aio_read(&cbs[i]) == 0);
			list[i] = &cbs[i];
		}
		for (n = 0; n < 64;) {
			struct timespec ts = ms(10000);
			CHECK(aio_suspend(list, 64, &ts) == 0);
			for (i = 0; i < 64; i++) {
				if (list[i] && aio_error(list[i]) != EINPROGRESS) {
					if (aio_error(list[i]) == 0 && aio_return(&cbs[i]) == 1024 &&
					    matches_pattern(bufs[i], 1024, 2, (63 - i) * 1024))
						ok++;
					list[i] = NULL;
					n++;
				}
			}
		}
		printf("64 reads in flight: %d correct\n", ok);
	}
	return 0;
}
