/*
 * libaio.h - Linux native asynchronous I/O, the libaio API.
 *
 * The header of the aio project's libaio.so.1 (a Rust library that replaces the C libaio).
 * It is source-compatible with the system's <libaio.h> (libaio 0.3.113): the same types,
 * structure layouts, member names, functions and static inline helpers, so a program written
 * for libaio compiles against it unchanged, and a program compiled against either header runs
 * with either library.
 *
 * Functions return what the kernel returns: a count or 0 on success, -errno on failure (errno
 * itself is left alone). See io_setup(2), io_submit(2), io_getevents(2), io_cancel(2),
 * io_destroy(2) and aio(7).
 */
#ifndef __LIBAIO_H
#define __LIBAIO_H

/* What the system header brings in, and programs written against it rely on: size_t and
 * off_t, memset() and friends (the helpers below use memset), sigset_t. */
#include <sys/types.h>
#include <string.h>
#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

struct timespec;
struct sockaddr;
struct iovec;

/* A context: the kernel's aio_context_t, the address of the completion ring it maps. */
typedef struct io_context *io_context_t;

/* The request types (struct iocb's aio_lio_opcode): the kernel's IOCB_CMD_* values. */
typedef enum io_iocb_cmd {
	IO_CMD_PREAD = 0,
	IO_CMD_PWRITE = 1,
	IO_CMD_FSYNC = 2,
	IO_CMD_FDSYNC = 3,
	IO_CMD_POLL = 5,	/* since Linux 4.18 */
	IO_CMD_NOOP = 6,
	IO_CMD_PREADV = 7,
	IO_CMD_PWRITEV = 8
} io_iocb_cmd_t;

/*
 * The kernel's struct iocb and struct io_event have fixed 64-bit slots for pointers and longs.
 * These macros lay a C declaration (and, where it is narrower, its padding) into such a slot,
 * with the padding on the side the byte order needs:
 *   __AIO_SLOT(decl, pad)    a pointer or unsigned long and its padding
 *   __AIO_PAIR(a, pad)       two 32-bit fields sharing a slot (key and aio_rw_flags, in kernel
 *                            order: first on little-endian machines, second on big-endian ones)
 */
#if !defined(__BYTE_ORDER__) || !defined(__SIZEOF_LONG__)
#error "libaio.h needs a compiler that predefines __BYTE_ORDER__ and __SIZEOF_LONG__ (GCC, Clang)"
#endif

#if __SIZEOF_LONG__ == 8
#define __AIO_SLOT(decl, pad)		decl
#define __AIO_SLOT_UL(name, pad)	unsigned long name
#elif __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define __AIO_SLOT(decl, pad)		decl; unsigned pad
#define __AIO_SLOT_UL(name, pad)	unsigned long name; unsigned pad
#else
#define __AIO_SLOT(decl, pad)		unsigned pad; decl
#define __AIO_SLOT_UL(name, pad)	unsigned pad; unsigned long name
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define __AIO_PAIR(a, b)		a, b
#else
#define __AIO_PAIR(a, b)		unsigned b; a
#endif

/* IO_CMD_POLL: the poll events to wait for. The result is the ready events, or -errno. */
struct io_iocb_poll {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	int events, __pad1;
#else
	unsigned __pad1; int events;
#endif
};

/* Not used by the kernel (no socket commands); kept for source compatibility. */
struct io_iocb_sockaddr {
	__AIO_SLOT(struct sockaddr *addr, __pad1);
	__AIO_SLOT_UL(len, __pad2);
};

/* Reads, writes and syncs: the buffer (or, for the vectored commands, the iovec array and its
 * length), the file offset, IOCB_FLAG_* flags and the eventfd to signal. The result is the
 * byte count, or -errno. */
struct io_iocb_common {
	__AIO_SLOT(void *buf, __pad1);
	__AIO_SLOT_UL(nbytes, __pad2);
	long long offset;
	long long __pad3;
	unsigned flags;		/* IOCB_FLAG_RESFD (1 << 0), IOCB_FLAG_IOPRIO (1 << 1) */
	unsigned resfd;		/* the eventfd, with IOCB_FLAG_RESFD */
};

/* Another view of the vectored commands (the helpers below use u.c). */
struct io_iocb_vector {
	__AIO_SLOT(const struct iovec *vec, __pad1);
	__AIO_SLOT_UL(nr, __pad2);
	long long offset;
};

/* One request, 64 bytes: the kernel's struct iocb. */
struct iocb {
	__AIO_SLOT(void *data, __pad1);		/* returned in io_event.data */
	__AIO_PAIR(unsigned key, aio_rw_flags);	/* key: set by the kernel; aio_rw_flags: RWF_* */
	short aio_lio_opcode;			/* IO_CMD_* */
	short aio_reqprio;
	int aio_fildes;

	union {
		struct io_iocb_common c;
		struct io_iocb_vector v;
		struct io_iocb_poll poll;
		struct io_iocb_sockaddr saddr;
	} u;
};

/* One completion, 32 bytes: the kernel's struct io_event. */
struct io_event {
	__AIO_SLOT(void *data, __pad1);		/* the request's data */
	__AIO_SLOT(struct iocb *obj, __pad2);	/* the request, as submitted */
	__AIO_SLOT_UL(res, __pad3);		/* bytes, poll events, or -errno */
	__AIO_SLOT_UL(res2, __pad4);		/* 0 */
};

/* The kernel's struct __aio_sigset, the last argument of the io_pgetevents system call. */
struct io_sigset {
	unsigned long ss;
	unsigned long ss_len;
};

/* The same for a 32-bit program on a 64-bit kernel. */
struct io_sigset_compat {
	__AIO_SLOT(unsigned long ss, __ss_pad);
	unsigned long ss_len;
};

#undef __AIO_SLOT
#undef __AIO_SLOT_UL
#undef __AIO_PAIR

/* A completion callback, stored in iocb->data by io_set_callback and called by io_queue_run. */
typedef void (*io_callback_t)(io_context_t ctx, struct iocb *iocb, long res, long res2);

/* libaio's own functions. */
extern int io_queue_init(int maxevents, io_context_t *ctxp);	/* io_setup after *ctxp = 0 */
extern int io_queue_release(io_context_t ctx);			/* io_destroy */
extern int io_queue_run(io_context_t ctx);	/* calls each completed request's callback; 0 */
/* Checks ctx and timeout and returns 0 without waiting (the system header leaves this
 * declaration commented out; the function is exported by both libraries). */
extern int io_queue_wait(io_context_t ctx, struct timespec *timeout);

/* The system calls. */
extern int io_setup(int maxevents, io_context_t *ctxp);
extern int io_destroy(io_context_t ctx);
extern int io_submit(io_context_t ctx, long nr, struct iocb *ios[]);
extern int io_cancel(io_context_t ctx, struct iocb *iocb, struct io_event *evt);
extern int io_getevents(io_context_t ctx, long min_nr, long nr, struct io_event *events,
			struct timespec *timeout);
extern int io_pgetevents(io_context_t ctx, long min_nr, long nr, struct io_event *events,
			 struct timespec *timeout, sigset_t *sigmask);

/* Request preparation. Each io_prep_* clears the whole iocb first. */

static inline void io_set_callback(struct iocb *iocb, io_callback_t cb)
{
	/* __extension__: ISO C has no conversion from a function pointer to void *, every
	 * compiler for Linux does it, and -pedantic need not complain about ours. */
	iocb->data = __extension__ (void *)cb;
}

static inline void __io_prep(struct iocb *iocb, int fd, io_iocb_cmd_t cmd)
{
	memset(iocb, 0, sizeof(*iocb));
	iocb->aio_fildes = fd;
	iocb->aio_lio_opcode = cmd;
	iocb->aio_reqprio = 0;
}

static inline void io_prep_pread(struct iocb *iocb, int fd, void *buf, size_t count,
				 long long offset)
{
	__io_prep(iocb, fd, IO_CMD_PREAD);
	iocb->u.c.buf = buf;
	iocb->u.c.nbytes = count;
	iocb->u.c.offset = offset;
}

static inline void io_prep_pwrite(struct iocb *iocb, int fd, void *buf, size_t count,
				  long long offset)
{
	__io_prep(iocb, fd, IO_CMD_PWRITE);
	iocb->u.c.buf = buf;
	iocb->u.c.nbytes = count;
	iocb->u.c.offset = offset;
}

static inline void io_prep_preadv(struct iocb *iocb, int fd, const struct iovec *iov,
				  int iovcnt, long long offset)
{
	__io_prep(iocb, fd, IO_CMD_PREADV);
	iocb->u.c.buf = (void *)iov;
	iocb->u.c.nbytes = iovcnt;
	iocb->u.c.offset = offset;
}

static inline void io_prep_pwritev(struct iocb *iocb, int fd, const struct iovec *iov,
				   int iovcnt, long long offset)
{
	__io_prep(iocb, fd, IO_CMD_PWRITEV);
	iocb->u.c.buf = (void *)iov;
	iocb->u.c.nbytes = iovcnt;
	iocb->u.c.offset = offset;
}

/* preadv2/pwritev2: with per-request RWF_* flags (RWF_HIPRI, RWF_DSYNC, RWF_SYNC, RWF_NOWAIT,
 * RWF_APPEND from <sys/uio.h>). */
static inline void io_prep_preadv2(struct iocb *iocb, int fd, const struct iovec *iov,
				   int iovcnt, long long offset, int flags)
{
	io_prep_preadv(iocb, fd, iov, iovcnt, offset);
	iocb->aio_rw_flags = flags;
}

static inline void io_prep_pwritev2(struct iocb *iocb, int fd, const struct iovec *iov,
				    int iovcnt, long long offset, int flags)
{
	io_prep_pwritev(iocb, fd, iov, iovcnt, offset);
	iocb->aio_rw_flags = flags;
}

/* Completes when one of the poll events (POLLIN, ...) is ready on fd; cancellable. */
static inline void io_prep_poll(struct iocb *iocb, int fd, int events)
{
	__io_prep(iocb, fd, IO_CMD_POLL);
	iocb->u.poll.events = events;
}

static inline void io_prep_fsync(struct iocb *iocb, int fd)
{
	__io_prep(iocb, fd, IO_CMD_FSYNC);
}

static inline void io_prep_fdsync(struct iocb *iocb, int fd)
{
	__io_prep(iocb, fd, IO_CMD_FDSYNC);
}

/* Signal the eventfd when the request completes (IOCB_FLAG_RESFD). Call after io_prep_*. */
static inline void io_set_eventfd(struct iocb *iocb, int eventfd)
{
	iocb->u.c.flags |= (1 << 0);
	iocb->u.c.resfd = eventfd;
}

/* Prepare, set the callback and submit, in one call. */

static inline int io_poll(io_context_t ctx, struct iocb *iocb, io_callback_t cb, int fd,
			  int events)
{
	io_prep_poll(iocb, fd, events);
	io_set_callback(iocb, cb);
	return io_submit(ctx, 1, &iocb);
}

static inline int io_fsync(io_context_t ctx, struct iocb *iocb, io_callback_t cb, int fd)
{
	io_prep_fsync(iocb, fd);
	io_set_callback(iocb, cb);
	return io_submit(ctx, 1, &iocb);
}

static inline int io_fdsync(io_context_t ctx, struct iocb *iocb, io_callback_t cb, int fd)
{
	io_prep_fdsync(iocb, fd);
	io_set_callback(iocb, cb);
	return io_submit(ctx, 1, &iocb);
}

#ifdef __cplusplus
}
#endif

#endif /* __LIBAIO_H */
