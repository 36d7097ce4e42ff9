/* Limits: this library takes up to AIO_MAX (65536) requests in flight at once and refuses more
 * with EAGAIN (aio_read, and lio_listio with the entry's status EAGAIN); lio_listio takes up to
 * AIO_LISTIO_MAX (65536) entries and refuses longer lists with EINVAL. glibc has neither limit
 * (its sysconf says -1 for both). The requests are pipe reads spread over 64 pipes; they are
 * cancelled or finished at the end, and the library works as before. */
#include "common.h"

#define MAX 65536
#define PIPES 64

static struct aiocb cbs[MAX + 1];
static struct aiocb *nulls[MAX + 1];
static char sink[MAX + 1];

int main(int argc, char **argv)
{
	int p[PIPES][2], i, refused_at = -1, r;
	struct aiocb extra[2];
	struct aiocb *list[2];
	char b[2];
	setup_common(argc, argv);
	for (i = 0; i < PIPES; i++)
		CHECK(pipe(p[i]) == 0);

	/* Lists: AIO_LISTIO_MAX entries are fine, one more is not. */
	SHOW("lio_listio 65536 null entries", lio_listio(LIO_WAIT, nulls, MAX, NULL));
	SHOW("lio_listio 65537 null entries", lio_listio(LIO_WAIT, nulls, MAX + 1, NULL));

	/* Requests in flight. */
	for (i = 0; i <= MAX; i++) {
		prep(&cbs[i], p[i % PIPES][0], &sink[i], 1, 0);
		if (aio_read(&cbs[i]) != 0) {
			refused_at = i;
			break;
		}
	}
	printf("requests taken before a refusal = %d\n", refused_at < 0 ? MAX + 1 : refused_at);
	if (refused_at >= 0) {
		printf("refused with = %s\n", errname(errno));
		printf("refused request's error = %s\n", error_of(&cbs[refused_at]));
	} else {
		printf("refused with = nothing\n");
		printf("refused request's error = nothing\n");
	}
	for (i = 0; i < 2; i++) {
		prep(&extra[i], p[0][0], &b[i], 1, 0);
		extra[i].aio_lio_opcode = LIO_READ;
		list[i] = &extra[i];
	}
	errno = 0;
	r = lio_listio(LIO_NOWAIT, list, 2, NULL);
	printf("lio_listio when full = %s\n", posix_rc(r, errno));
	printf("lio_listio when full, entries: %s %s\n", error_of(&extra[0]), error_of(&extra[1]));

	/* Cancel everything; what runs finishes when the pipes close. */
	for (i = 0; i < PIPES; i++) {
		r = aio_cancel(p[i][0], NULL);
		CHECK(r == AIO_CANCELED || r == AIO_NOTCANCELED);
	}
	for (i = 0; i < PIPES; i++)
		close(p[i][1]);
	{
		int cancelled = 0, eof = 0, other = 0;
		int n = refused_at < 0 ? MAX + 1 : refused_at;
		for (i = 0; i < n; i++) {
			wait_done(&cbs[i]);
			if (aio_error(&cbs[i]) == ECANCELED)
				cancelled++;
			else if (aio_error(&cbs[i]) == 0 && aio_return(&cbs[i]) == 0)
				eof++;
			else
				other++;
		}
		for (i = 0; i < 2; i++)
			if (aio_error(&extra[i]) == EINPROGRESS)
				wait_done(&extra[i]);
		printf("all finished (cancelled, or read end of file) = %s, other outcomes = %d\n",
		       cancelled + eof == n ? "yes" : "no", other);
	}

	/* And the library works as before. */
	{
		static char buf[512];
		struct aiocb rd;
		int fd = make_file("data", 4096, 13);
		prep(&rd, fd, buf, sizeof(buf), 0);
		SHOW("read afterwards", aio_read(&rd));
		wait_done(&rd);
		printf("read afterwards return = %ld\n", (long)aio_return(&rd));
	}
	return 0;
}
