/*
 * test_pidns.c - a worker in another PID namespace keeps the slots it
 * holds while it lives, and gets them back for the pool when it dies.
 *
 * A container that shares /dev/shm with vrld has its own PID namespace:
 * the pid a worker there has is not the one vrld's namespace gives it.
 * The worker here runs under `unshare --pid --fork` and forks until its
 * pid in the new namespace is one that vrld's namespace gives to no
 * process (vrld would take such a worker for dead), takes the one unit of
 * a slots limit and holds it. vrld sweeps; the unit must stay held (this
 * process is refused it). Then the worker's namespace is killed, and vrld
 * must give the unit back (this process gets it).
 *
 * Skipped (77) where a PID namespace cannot be made (not root, or a
 * container that forbids it).
 *
 * usage: test_pidns VRLD          (--hold SEG: the worker's side)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common.h"
#include "vrld_run.h"

#define WAIT_NS   (60 * NS_PER_S)   /* only a hang takes this long */
#define SWEEP_NS  (20 * 1000000ull)  /* the config's sweep_interval */

static char dir[256], conf[300], logpath[300], prom[300], seg[VRL_SHM_NAME_MAX];
static const char *self;
static pid_t vrld_pid, worker;

static const struct vrl_request conn = { .api = "conn" };

/* ---- the worker, in its own PID namespace ---------------------------------- */

/* Take the unit, say so on stdout, and hold it until killed. */
static int hold(const char *segment)
{
	struct vrl_verdict v = { 0 };
	vrl_client *c;

	if (vrl_open(segment, 0, &c) != 0 || vrl_acquire(c, &conn, &v) != 0)
		return 2;
	printf("held as pid %d\n", (int)getpid());
	fflush(stdout);
	for (;;)
		pause();
}

/* As the namespace's first process: fork until a child's pid is one that
 * no process has in the namespace /proc shows (the test's, left
 * mounted); that child holds. */
static int hold_in_namespace(const char *segment)
{
	for (int tries = 0; tries < 100000; tries++) {
		pid_t p = fork();
		int st;

		if (p < 0)
			return 3;
		if (p == 0) {
			char path[64];

			snprintf(path, sizeof(path), "/proc/%d", (int)getpid());
			_exit(access(path, F_OK) == 0 ? 100 : hold(segment));
		}
		if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 100)
			return 4;
	}
	return 5;
}

/* ---- the test ---------------------------------------------------------------- */

static bool namespaces_work(void)
{
	return system("unshare --pid --fork true >/dev/null 2>&1") == 0;
}

static int teardown(void **state)
{
	(void)state;
	if (worker > 0) {
		kill(worker, SIGKILL);
		waitpid(worker, NULL, 0);
		worker = 0;
	}
	vrld_kill_all();
	vrl_seg_unlink(seg);
	return vrld_drop_dir(dir);
}

/* Start the worker; wait for its line. */
static void start_worker(void)
{
	char line[128] = "";
	int fd[2];
	FILE *f;

	assert_int_equal(pipe(fd), 0);
	worker = fork();
	assert_true(worker >= 0);
	if (worker == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		/* --kill-child: the namespace dies with unshare */
		execlp("unshare", "unshare", "--pid", "--fork", "--kill-child", self, "--hold",
		       seg, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	f = fdopen(fd[0], "r");
	assert_non_null(f);
	if (!fgets(line, sizeof(line), f))
		fail_msg("the worker in its namespace did not take the unit");
	fclose(f);
	printf("# worker: %s", line);
	assert_non_null(strstr(line, "held as pid"));
}

/* Wait until vrld has swept @n more times: its heartbeat is past n sweep
 * intervals from now (a tick sweeps when the interval is due). */
static void wait_sweeps(unsigned n)
{
	uint64_t from = vrld_heartbeat(seg), until = vrl_now_ns() + WAIT_NS;

	while (vrld_heartbeat(seg) < from + (n + 1) * SWEEP_NS) {
		if (vrl_now_ns() > until)
			fail_msg("vrld's heartbeat did not move");
		usleep(1000);
	}
}

static void worker_in_other_namespace(void **state)
{
	char text[512];
	struct vrl_verdict v = { 0 };
	uint64_t until;
	vrl_client *c;
	int rc;

	(void)state;
	assert_int_equal(vrld_fresh_paths("pidns", dir, conf, logpath, prom, seg), 0);
	snprintf(text, sizeof(text),
		 "segment: {name: \"%s\", keys: 100}\n"
		 "daemon: {sweep_interval: 20ms}\n"
		 "limits:\n"
		 "  - {name: conn, kind: slots, match: {api: conn}, count: 1}\n", seg);
	vrld_write_file(conf, text);
	vrld_pid = vrld_start(conf, NULL, logpath);
	if (!vrld_wait_ready(seg, vrld_pid, WAIT_NS)) {
		vrld_show_log(logpath);
		fail_msg("vrld did not start");
	}
	start_worker();
	c = test_open(seg);
	wait_sweeps(3);
	/* the worker lives and holds the only unit */
	assert_int_equal(vrl_acquire(c, &conn, &v), VRL_EDENIED);

	kill(worker, SIGKILL);
	assert_int_equal(waitpid(worker, NULL, 0), worker);
	worker = 0;
	/* gone: vrld gives its unit back at a sweep */
	until = vrl_now_ns() + WAIT_NS;
	while ((rc = vrl_acquire(c, &conn, &v)) == VRL_EDENIED && vrl_now_ns() < until)
		usleep(1000);
	assert_int_equal(rc, 0);
	vrl_close(c);
	kill(vrld_pid, SIGTERM);
	assert_int_equal(vrld_wait_exit(vrld_pid, WAIT_NS), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(worker_in_other_namespace, teardown),
	};

	if (argc == 3 && strcmp(argv[1], "--hold") == 0)
		return hold_in_namespace(argv[2]);
	if (argc < 2) {
		fprintf(stderr, "usage: %s VRLD\n", argv[0]);
		return 2;
	}
	vrld_path = argv[1];
	self = realpath("/proc/self/exe", NULL);
	assert_non_null(self);
	if (!namespaces_work()) {
		printf("cannot make a PID namespace here (unshare --pid): skipped\n");
		return 77;
	}
	return cmocka_run_group_tests_name("pidns", tests, NULL, NULL);
}
