/*
 * aio.h - POSIX asynchronous I/O, glibc's API and ABI.
 *
 * The header of the aio project's libposixaio.so (a Rust library that runs POSIX AIO on
 * io_uring, to LD_PRELOAD in front of glibc, or to link with -lposixaio). It declares what the
 * system's <aio.h> (glibc 2.34 and later) declares, with the same structure layouts, member
 * names, constants and function names, so a program written for <aio.h> compiles against it
 * unchanged, and a program compiled against either header runs with glibc or with this library:
 *
 *   struct aiocb, struct aiocb64    168 bytes on x86_64 (the same structure there)
 *   struct aioinit                  32 bytes (with _GNU_SOURCE), for aio_init()
 *   struct sigevent                 glibc's own (64 bytes), from <bits/types/sigevent_t.h>
 *
 * With _FILE_OFFSET_BITS=64 the functions resolve to their *64 names, as with glibc. The
 * functions return -1 and set errno on failure. See aio(7), aio_read(3), aio_write(3),
 * aio_fsync(3), aio_error(3), aio_return(3), aio_suspend(3), aio_cancel(3), lio_listio(3),
 * aio_init(3).
 *
 * The layouts are glibc's on 64-bit Linux; the project's tests compare them member by member
 * with the system header's.
 */
#ifndef _AIO_H
#define _AIO_H 1

#include <features.h>
#include <sys/types.h>
/* struct sigevent, union sigval, SIGEV_NONE/SIGNAL/THREAD/THREAD_ID and struct timespec, from
 * the same glibc headers the system <aio.h> takes them from (so nothing more is declared). */
#include <bits/types/sigevent_t.h>
#include <bits/sigevent-consts.h>
#include <bits/types/struct_timespec.h>

#if !defined(__GLIBC__) || !defined(__WORDSIZE) || __WORDSIZE != 64
#error "this aio.h describes glibc's ABI on 64-bit Linux"
#endif

__BEGIN_DECLS

/* The control block of one request. Members from __next_prio to __glibc_reserved belong to
 * the library: glibc keeps its queue links and the request's status there; this library keeps
 * the status in __error_code and __return_value, as glibc does, and marks the blocks it has
 * submitted in __glibc_reserved. */
struct aiocb
{
  int aio_fildes;		/* The file descriptor.  */
  int aio_lio_opcode;		/* LIO_READ, LIO_WRITE or LIO_NOP, for lio_listio.  */
  int aio_reqprio;		/* Priority offset: 0 to AIO_PRIO_DELTA_MAX.  */
  volatile void *aio_buf;	/* The buffer.  */
  size_t aio_nbytes;		/* Its length.  */
  struct sigevent aio_sigevent;	/* How completion is notified.  */

  /* Internal.  */
  struct aiocb *__next_prio;
  int __abs_prio;
  int __policy;
  int __error_code;
  __ssize_t __return_value;

  /* __off_t, or __off64_t with _FILE_OFFSET_BITS=64: on 64-bit targets both are 64 bits,
   * so glibc's padding after a 32-bit offset (__pad) has no bytes here and is left out.  */
#ifndef __USE_FILE_OFFSET64
  __off_t aio_offset;		/* The file offset.  */
#else
  __off64_t aio_offset;		/* The file offset.  */
#endif
  char __glibc_reserved[32];
};

#ifdef __USE_LARGEFILE64
/* The same with a 64-bit offset: on 64-bit targets, the same structure. The members up to
 * __return_value are those of struct aiocb.  */
struct aiocb64
{
  int aio_fildes;
  int aio_lio_opcode;
  int aio_reqprio;
  volatile void *aio_buf;
  size_t aio_nbytes;
  struct sigevent aio_sigevent;

  /* Internal.  */
  struct aiocb *__next_prio;
  int __abs_prio;
  int __policy;
  int __error_code;
  __ssize_t __return_value;

  __off64_t aio_offset;
  char __glibc_reserved[32];
};
#endif

#ifdef __USE_GNU
/* Sizing hints for aio_init. This library maps aio_threads onto its thread pool's size,
 * aio_num onto the depth of its io_uring and kernel AIO queues, aio_idle_time onto how long an
 * idle pool thread stays; the other members are unused, as in glibc.  */
struct aioinit
  {
    int aio_threads;		/* Most threads.  */
    int aio_num;		/* Requests expected at once.  */
    int aio_locks;		/* Unused.  */
    int aio_usedba;		/* Unused.  */
    int aio_debug;		/* Unused.  */
    int aio_numusers;		/* Unused.  */
    int aio_idle_time;		/* Seconds an idle thread waits before it exits.  */
    int aio_reserved;
  };
#endif

/* What aio_cancel returns.  */
enum
{
  AIO_CANCELED,
#define AIO_CANCELED AIO_CANCELED
  AIO_NOTCANCELED,
#define AIO_NOTCANCELED AIO_NOTCANCELED
  AIO_ALLDONE
#define AIO_ALLDONE AIO_ALLDONE
};

/* aio_lio_opcode values.  */
enum
{
  LIO_READ,
#define LIO_READ LIO_READ
  LIO_WRITE,
#define LIO_WRITE LIO_WRITE
  LIO_NOP
#define LIO_NOP LIO_NOP
};

/* lio_listio modes.  */
enum
{
  LIO_WAIT,
#define LIO_WAIT LIO_WAIT
  LIO_NOWAIT
#define LIO_NOWAIT LIO_NOWAIT
};

#ifdef __USE_GNU
extern void aio_init (const struct aioinit *__init) __THROW __nonnull ((1));
#endif

#ifndef __USE_FILE_OFFSET64
extern int aio_read (struct aiocb *__aiocbp) __THROW __nonnull ((1));
extern int aio_write (struct aiocb *__aiocbp) __THROW __nonnull ((1));

extern int lio_listio (int __mode,
		       struct aiocb *const __list[__restrict_arr],
		       int __nent, struct sigevent *__restrict __sig)
  __THROW __nonnull ((2));

extern int aio_error (const struct aiocb *__aiocbp) __THROW __nonnull ((1));
extern __ssize_t aio_return (struct aiocb *__aiocbp) __THROW __nonnull ((1));

extern int aio_cancel (int __fildes, struct aiocb *__aiocbp) __THROW;

/* A cancellation point, so not __THROW.  */
extern int aio_suspend (const struct aiocb *const __list[], int __nent,
			const struct timespec *__restrict __timeout)
  __nonnull ((1));

extern int aio_fsync (int __operation, struct aiocb *__aiocbp)
  __THROW __nonnull ((2));
#else
/* _FILE_OFFSET_BITS=64: the plain names are the *64 functions.  */
# ifdef __REDIRECT_NTH
extern int __REDIRECT_NTH (aio_read, (struct aiocb *__aiocbp), aio_read64)
  __nonnull ((1));
extern int __REDIRECT_NTH (aio_write, (struct aiocb *__aiocbp), aio_write64)
  __nonnull ((1));

extern int __REDIRECT_NTH (lio_listio,
			   (int __mode,
			    struct aiocb *const __list[__restrict_arr],
			    int __nent, struct sigevent *__restrict __sig),
			   lio_listio64) __nonnull ((2));

extern int __REDIRECT_NTH (aio_error, (const struct aiocb *__aiocbp),
			   aio_error64) __nonnull ((1));
extern __ssize_t __REDIRECT_NTH (aio_return, (struct aiocb *__aiocbp),
				 aio_return64) __nonnull ((1));

extern int __REDIRECT_NTH (aio_cancel,
			   (int __fildes, struct aiocb *__aiocbp),
			   aio_cancel64);

extern int __REDIRECT_NTH (aio_suspend,
			   (const struct aiocb *const __list[], int __nent,
			    const struct timespec *__restrict __timeout),
			   aio_suspend64) __nonnull ((1));

extern int __REDIRECT_NTH (aio_fsync,
			   (int __operation, struct aiocb *__aiocbp),
			   aio_fsync64) __nonnull ((2));
# else
#  define aio_read aio_read64
#  define aio_write aio_write64
#  define lio_listio lio_listio64
#  define aio_error aio_error64
#  define aio_return aio_return64
#  define aio_cancel aio_cancel64
#  define aio_suspend aio_suspend64
#  define aio_fsync aio_fsync64
# endif
#endif

#ifdef __USE_LARGEFILE64
extern int aio_read64 (struct aiocb64 *__aiocbp) __THROW __nonnull ((1));
extern int aio_write64 (struct aiocb64 *__aiocbp) __THROW __nonnull ((1));

extern int lio_listio64 (int __mode,
			 struct aiocb64 *const __list[__restrict_arr],
			 int __nent, struct sigevent *__restrict __sig)
  __THROW __nonnull ((2));

extern int aio_error64 (const struct aiocb64 *__aiocbp)
  __THROW __nonnull ((1));
extern __ssize_t aio_return64 (struct aiocb64 *__aiocbp)
  __THROW __nonnull ((1));

extern int aio_cancel64 (int __fildes, struct aiocb64 *__aiocbp) __THROW;

extern int aio_suspend64 (const struct aiocb64 *const __list[], int __nent,
			  const struct timespec *__restrict __timeout)
  __THROW __nonnull ((1));

extern int aio_fsync64 (int __operation, struct aiocb64 *__aiocbp)
  __THROW __nonnull ((2));
#endif

__END_DECLS

#endif /* aio.h */
