/* Layout: sizes and offsets of every type and member of the header, and the constants. Built
 * against our header and against the system's, the transcripts must be identical. */
#include "common.h"
#include <stddef.h>

#define SIZE(t) printf("sizeof(%s) = %zu\n", #t, sizeof(t))
#define OFF(t, m) printf("offsetof(%s, %s) = %zu (size %zu)\n", #t, #m, offsetof(t, m), \
			 sizeof(((t *)0)->m))

int main(int argc, char **argv)
{
	setup_common(argc, argv);
	SHOW(io_destroy(0)); /* one call into the library, so that it is loaded */
	SIZE(io_context_t);
	SIZE(struct iocb);
	SIZE(struct io_event);
	SIZE(struct io_iocb_common);
	SIZE(struct io_iocb_vector);
	SIZE(struct io_iocb_poll);
	SIZE(struct io_iocb_sockaddr);
	SIZE(struct io_sigset);
	SIZE(struct io_sigset_compat);
	SIZE(io_iocb_cmd_t);
	SIZE(io_callback_t);

	OFF(struct iocb, data);
	OFF(struct iocb, key);
	OFF(struct iocb, aio_rw_flags);
	OFF(struct iocb, aio_lio_opcode);
	OFF(struct iocb, aio_reqprio);
	OFF(struct iocb, aio_fildes);
	OFF(struct iocb, u);
	OFF(struct iocb, u.c.buf);
	OFF(struct iocb, u.c.nbytes);
	OFF(struct iocb, u.c.offset);
	OFF(struct iocb, u.c.__pad3);
	OFF(struct iocb, u.c.flags);
	OFF(struct iocb, u.c.resfd);
	OFF(struct iocb, u.v.vec);
	OFF(struct iocb, u.v.nr);
	OFF(struct iocb, u.v.offset);
	OFF(struct iocb, u.poll.events);
	OFF(struct iocb, u.poll.__pad1);
	OFF(struct iocb, u.saddr.addr);
	OFF(struct iocb, u.saddr.len);

	OFF(struct io_event, data);
	OFF(struct io_event, obj);
	OFF(struct io_event, res);
	OFF(struct io_event, res2);
	OFF(struct io_sigset, ss);
	OFF(struct io_sigset, ss_len);
	OFF(struct io_sigset_compat, ss);
	OFF(struct io_sigset_compat, ss_len);

	/* Signedness as C sees it: res is unsigned long, key unsigned, opcode short. */
	{
		struct io_event ev;
		struct iocb io;
		memset(&ev, 0, sizeof(ev));
		memset(&io, 0, sizeof(io));
		ev.res = (unsigned long)-1;
		io.key = (unsigned)-1;
		io.aio_lio_opcode = -1;
		io.u.c.nbytes = (unsigned long)-1;
		printf("io_event.res unsigned: %s\n", ev.res > 0 ? "yes" : "no");
		printf("iocb.key unsigned: %s\n", io.key > 0 ? "yes" : "no");
		printf("iocb.aio_lio_opcode signed: %s\n", io.aio_lio_opcode < 0 ? "yes" : "no");
		printf("iocb.u.c.nbytes unsigned: %s\n", io.u.c.nbytes > 0 ? "yes" : "no");
	}

	printf("IO_CMD_PREAD=%d IO_CMD_PWRITE=%d IO_CMD_FSYNC=%d IO_CMD_FDSYNC=%d\n",
	       IO_CMD_PREAD, IO_CMD_PWRITE, IO_CMD_FSYNC, IO_CMD_FDSYNC);
	printf("IO_CMD_POLL=%d IO_CMD_NOOP=%d IO_CMD_PREADV=%d IO_CMD_PWRITEV=%d\n",
	       IO_CMD_POLL, IO_CMD_NOOP, IO_CMD_PREADV, IO_CMD_PWRITEV);

	/* What the helpers store, byte for byte. */
	{
		struct iocb io;
		struct iovec iov[2];
		char buf[16];
		unsigned char *p = (unsigned char *)&io;
		int i, k;
		for (k = 0; k < 12; k++) {
			memset(&io, 0xa5, sizeof(io));
			switch (k) {
			case 0: io_prep_pread(&io, 7, buf, 16, 4096); break;
			case 1: io_prep_pwrite(&io, 7, buf, 16, -1); break;
			case 2: io_prep_preadv(&io, 7, iov, 2, 512); break;
			case 3: io_prep_pwritev(&io, 7, iov, 2, 1024); break;
			case 4: io_prep_preadv2(&io, 7, iov, 2, 512, RWF_NOWAIT | RWF_HIPRI); break;
			case 5: io_prep_pwritev2(&io, 7, iov, 2, 0, RWF_DSYNC | RWF_APPEND); break;
			case 6: io_prep_fsync(&io, 7); break;
			case 7: io_prep_fdsync(&io, 7); break;
			case 8: io_prep_poll(&io, 7, POLLIN | POLLOUT); break;
			case 9: io_prep_pread(&io, 7, buf, 16, 0); io_set_eventfd(&io, 9); break;
			case 10: io_prep_fsync(&io, 7); io_set_callback(&io, (io_callback_t)0); break;
			case 11: io_prep_pread(&io, 7, 0, 0, 0); io_set_eventfd(&io, -1); break;
			}
			/* Pointers vary between runs: blank the buffer slot for the pointer cases. */
			if (k <= 5 || k == 9)
				memset(&io.u.c.buf, 0, sizeof(io.u.c.buf));
			printf("prep %2d:", k);
			for (i = 0; i < (int)sizeof(io); i++)
				printf("%s%02x", i % 8 ? "" : " ", p[i]);
			printf("\n");
		}
	}
	return 0;
}
