/* Reaping without system calls. A seccomp filter makes io_getevents and io_pgetevents fail
 * with ENOSYS; what still works was done in user space. The C libaio returns 0 for a zero
 * timeout on an empty ring without a system call, and enters the kernel for everything else;
 * ours also takes completions that are already in the ring from user space (c_suite.rs lists
 * those lines as deliberate differences). Waiting always needs the kernel. */
#include "common.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>

static int callbacks;
static void on_done(io_context_t ctx, struct iocb *iocb, long res, long res2)
{
	(void)ctx;
	(void)iocb;
	(void)res2;
	callbacks += res == 512;
}

static void block_getevents(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_getevents, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_pgetevents, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
	};
	struct sock_fprog prog = {sizeof(filter) / sizeof(filter[0]), filter};
	CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
	CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0);
}

#define CASE(name, expr) printf("%s = %s\n", name, rc((long)(expr)))

int main(int argc, char **argv)
{
	io_context_t ctx, empty;
	struct iocb ios[4], *list[4];
	struct io_event ev[8];
	struct timespec zero = {0, 0}, t10 = ms(10);
	char bufs[4][512];
	sigset_t mask;
	int fd, i;

	setup_common(argc, argv);
#ifndef __x86_64__
	printf("SKIP the seccomp filter here is written for x86_64\n");
	return 0;
#endif
	fd = make_file("userspace.dat", 4096, 11);
	ctx = new_ctx(8);
	empty = new_ctx(8);
	for (i = 0; i < 4; i++) {
		io_prep_pread(&ios[i], fd, bufs[i], 512, 512 * i);
		io_set_callback(&ios[i], on_done);
		list[i] = &ios[i];
	}
	sigemptyset(&mask);
	block_getevents();
	errno = 0;
	CASE("raw io_getevents system call", syscall(__NR_io_getevents, ctx, 0, 1, ev, &zero) < 0 ? -errno : 0);

	CASE("zero_timeout_empty_ring", io_getevents(empty, 1, 8, ev, &zero));
	CASE("pgetevents_zero_timeout_empty_ring", io_pgetevents(empty, 1, 8, ev, &zero, NULL));
	CASE("queue_wait_zero_timeout", io_queue_wait(empty, &zero));
	CASE("wait_needs_the_kernel", io_getevents(empty, 1, 8, ev, &t10));

	CHECK(io_submit(ctx, 2, list) == 2); /* buffered reads: complete on return */
	CASE("ready_events", io_getevents(ctx, 1, 8, ev, NULL));
	CHECK(io_submit(ctx, 2, list) == 2);
	CASE("ready_events_zero_timeout", io_getevents(ctx, 2, 8, ev, &zero));
	CHECK(io_submit(ctx, 2, list) == 2);
	CASE("ready_events_pgetevents_without_mask", io_pgetevents(ctx, 2, 8, ev, &t10, NULL));
	CHECK(io_submit(ctx, 2, list) == 2);
	/* With a signal mask to apply, ours enters the kernel too. */
	CASE("ready_events_pgetevents_with_mask", io_pgetevents(ctx, 1, 8, ev, NULL, &mask));
	CASE("queue_run", io_queue_run(ctx));
	CASE("callbacks_run", callbacks);
	CASE("more_than_ready", io_getevents(ctx, 3, 8, ev, &t10));
	return 0;
}
