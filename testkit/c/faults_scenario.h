/*
 * The scenario both C libraries' faults_stats programs run (libaio/tests/extra and
 * posixaio/tests/extra, driven by their faults_stats.rs with the same AIO_FAULT rules and the
 * same checks, aio_testkit::check_seeded_faults): requests whose outcome the fault rules decide,
 * and a known mix of requests for the statistics line. Each program supplies `run`, which
 * submits one request through its library (op: 'r' read, 'w' write, 's' fsync, 'd'
 * fdatasync), waits for it, prints "label: what it got" and returns the result.
 *
 * Modes (the program's second argument):
 *   faults  AIO_FAULT="op=read,path=*.bad,errno=EIO;op=write,path=*.good,nth=2,errno=ENOSPC;
 *           op=read,path=*.good,offset=8192-12288,short=100;op=write,path=*.torn,torn=512;
 *           op=fsync,path=*.good,delay=300ms;op=write,path=*.crash,action=crash"
 *   writes  40 writes, for a rule with a probability: which fail depends on the seed only
 *   stats   5 reads (1 of a bad descriptor), 3 writes, 1 fsync, 1 fdatasync; the program may
 *           add its own after (faults_scenario returns 1 for this mode)
 */
#ifndef AIO_TESTKIT_FAULTS_SCENARIO_H
#define AIO_TESTKIT_FAULTS_SCENARIO_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef long (*faults_run_fn)(const char *label, int fd, char op, char *buf, size_t len,
			      long long off);

static int faults_open(const char *dir, const char *name, int size)
{
	char path[4096], *buf = malloc(size > 0 ? size : 1);
	int fd;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || !buf)
		exit(2);
	memset(buf, 'f', size);
	if (size > 0 && pwrite(fd, buf, size, 0) != size)
		exit(2);
	free(buf);
	return fd;
}

static double faults_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Runs `mode` in `dir` with `buf` (16 KiB, aligned as the library needs). Returns 0 when done,
 * 1 after the stats mode's requests (the program adds its own), 2 for a bad mode or setup. */
static int faults_scenario(const char *dir, const char *mode, char *buf, faults_run_fn run)
{
	int good, bad, torn, crash, i;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(mode, "faults") == 0) {
		char back[4096];
		double t0;
		int t = 0;
		good = faults_open(dir, "data.good", 16384);
		bad = faults_open(dir, "data.bad", 16384);
		torn = faults_open(dir, "data.torn", 4096);
		crash = faults_open(dir, "data.crash", 4096);
		run("read of data.bad", bad, 'r', buf, 4096, 0);
		run("read of data.good", good, 'r', buf, 4096, 0);
		run("write 1 of data.good", good, 'w', buf, 4096, 0);
		run("write 2 of data.good", good, 'w', buf, 4096, 0);
		run("write 3 of data.good", good, 'w', buf, 4096, 0);
		run("read of data.good at 8192", good, 'r', buf, 4096, 8192);
		run("read of data.good at 12288", good, 'r', buf, 4096, 12288);
		memset(buf, 't', 4096);
		run("write of data.torn", torn, 'w', buf, 4096, 0);
		if (pread(torn, back, 4096, 0) != 4096)
			return 2;
		for (i = 0; i < 4096; i++)
			t += back[i] == 't';
		printf("data.torn holds %d bytes of the write\n", t);
		t0 = faults_now_ms();
		run("fsync of data.good", good, 's', NULL, 0, 0);
		printf("the fsync took at least 300 ms: %s\n",
		       faults_now_ms() - t0 >= 300 ? "yes" : "no");
		run("write of data.crash", crash, 'w', buf, 4096, 0);
		run("read of data.good after the crash", good, 'r', buf, 4096, 0);
		return 0;
	}
	if (strcmp(mode, "writes") == 0) {
		good = faults_open(dir, "writes", 0);
		for (i = 0; i < 40; i++)
			run("write", good, 'w', buf, 512, i * 512);
		return 0;
	}
	if (strcmp(mode, "stats") != 0)
		return 2;
	good = faults_open(dir, "stats", 16384);
	for (i = 0; i < 4; i++)
		run("read", good, 'r', buf, 4096, i * 4096);
	run("read of a bad descriptor", 1000, 'r', buf, 4096, 0);
	for (i = 0; i < 3; i++)
		run("write", good, 'w', buf, 4096, i * 4096);
	run("fsync", good, 's', NULL, 0, 0);
	run("fdatasync", good, 'd', NULL, 0, 0);
	return 1;
}

#endif
