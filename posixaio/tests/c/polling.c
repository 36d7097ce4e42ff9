/* A program that submits and polls, and never waits, sees its requests end. A read of an
 * empty pipe is in flight; the pipe is written; from then on the program only submits reads
 * of a cached file, and looks at the pipe read's status in its aiocb (the __error_code field,
 * which aio_error returns: reading it asks the library nothing). With glibc a thread finishes
 * the read. With ours, every submission takes what the engine has finished — also the ones
 * served at once from the page cache — so the pipe read ends without a wait, an aio_error
 * call or the helper thread (fio's posixaio engine polls like this between its submissions).
 * The file reads are checked once they are all done. */
#include "common.h"

#define LEN 512
#define BLOCKS 64
#define TRIES 2000

int main(int argc, char **argv)
{
	static char data[LEN * BLOCKS];
	static char bufs[TRIES][LEN];
	static struct aiocb reads[TRIES];
	struct aiocb piped;
	char byte = 0, path[4096];
	int p[2], fd, i, n = 0, seen = 0, bad = 0;
	setup_common(argc, argv);

	for (i = 0; i < (int)sizeof(data); i++)
		data[i] = (char)(i * 7 + i / LEN);
	snprintf(path, sizeof(path), "%s/polling.dat", test_dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, data, sizeof(data)) == (ssize_t)sizeof(data));
	/* Cached: read once. */
	CHECK(pread(fd, bufs[0], LEN, 0) == LEN);

	CHECK(pipe(p) == 0);
	prep(&piped, p[0], &byte, 1, 0);
	SHOW("aio_read(pipe)", aio_read(&piped));
	printf("pipe read before the write = %s\n", error_of(&piped));
	CHECK(write(p[1], "x", 1) == 1);

	/* Submissions only; the status read straight from the aiocb. */
	while (n < TRIES) {
		prep(&reads[n], fd, bufs[n], LEN, (off_t)(n % BLOCKS) * LEN);
		CHECK(aio_read(&reads[n]) == 0);
		n++;
		if (__atomic_load_n(&piped.__error_code, __ATOMIC_ACQUIRE) != EINPROGRESS) {
			seen = 1;
			break;
		}
		sleep_ms(1);
	}
	printf("pipe read ended while the program only submitted = %s\n", seen ? "yes" : "no");

	wait_done(&piped);
	printf("pipe read = %s, %s\n", error_of(&piped), posix_rc(aio_return(&piped), errno));
	printf("pipe byte = %c\n", byte);
	for (i = 0; i < n; i++) {
		wait_done(&reads[i]);
		if (aio_error(&reads[i]) != 0 || aio_return(&reads[i]) != LEN ||
		    memcmp(bufs[i], data + (size_t)(i % BLOCKS) * LEN, LEN) != 0)
			bad++;
	}
	printf("file reads wrong = %d\n", bad);
	close(p[0]);
	close(p[1]);
	close(fd);
	unlink(path);
	return 0;
}
