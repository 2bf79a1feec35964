/*
 * test_vrld_check.c - `vrld --check` says everything start-up would: for
 * each config that vrld refuses to serve (a metrics address it will not
 * bind, a missing or foreign-writable state directory, a missing alert
 * command, a segment too large for its ceiling or for /dev/shm), --check
 * fails naming the same field, start-up refuses it with the same words,
 * and neither leaves a segment behind. A good config's --check prints the
 * segment's size and exits 0 (under ASan: without a leak).
 *
 * usage: test_vrld_check VRLD
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common.h"
#include "vrld_run.h"

#define WAIT_NS  (30 * NS_PER_S)

static char dir[256], conf[300], logpath[300], out[300], seg[VRL_SHM_NAME_MAX];

static int setup(void **state)
{
	static unsigned serial;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/vrl-check-%d-%u", (int)getpid(), serial);
	snprintf(seg, sizeof(seg), "/vrl-test-check-%d-%u", (int)getpid(), serial++);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(conf, sizeof(conf), "%s/vrl.yaml", dir);
	snprintf(logpath, sizeof(logpath), "%s/vrld.log", dir);
	snprintf(out, sizeof(out), "%s/check.out", dir);
	vrl_seg_unlink(seg);
	return 0;
}

static int teardown(void **state)
{
	char cmd[600];

	(void)state;
	vrld_kill_all();
	vrl_seg_unlink(seg);
	snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s'; rm -rf '%s'", dir, dir);
	return system(cmd) == 0 ? 0 : -1;
}

static bool segment_exists(void)
{
	int fd = shm_open(seg, O_RDONLY, 0);

	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

/* Write a config of @keys keys with @segment_extra and @daemon lines. */
static void config(unsigned long long keys, const char *segment_extra, const char *daemon)
{
	char text[2048];

	snprintf(text, sizeof(text),
		 "segment: {name: \"%s\", keys: %llu%s}\n"
		 "daemon: {%s}\n"
		 "limits:\n  - {name: r, rate: 10/s, per: [org]}\n",
		 seg, keys, segment_extra, daemon);
	vrld_write_file(conf, text);
}

static void show(const char *path)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "sed 's/^/#   /' '%s' >&2", path);
	if (system(cmd) != 0)
		fprintf(stderr, "#   (nothing)\n");
}

/*
 * The config written is refused: --check exits 78 saying @field and @what,
 * vrld itself exits 1 saying them too, and no segment is made.
 */
static void refused(const char *field, const char *what)
{
	pid_t pid;
	int st;

	st = vrld_check(conf, out);
	if (st != 78 || !vrld_log_has(out, field) || !vrld_log_has(out, what)) {
		fprintf(stderr, "# --check (exit %d), wanted %s ... %s:\n", st, field, what);
		show(out);
	}
	assert_int_equal(st, 78);
	assert_true(vrld_log_has(out, field));
	assert_true(vrld_log_has(out, what));
	assert_false(segment_exists());

	unlink(logpath);
	pid = vrld_start(conf, NULL, logpath);
	st = vrld_wait_exit(pid, WAIT_NS);
	if (st != 1 || !vrld_log_has(logpath, field) || !vrld_log_has(logpath, what)) {
		fprintf(stderr, "# start-up (exit %d), wanted %s ... %s:\n", st, field, what);
		show(logpath);
	}
	assert_int_equal(st, 1);
	assert_true(vrld_log_has(logpath, "refusing to start"));
	assert_true(vrld_log_has(logpath, field));
	assert_true(vrld_log_has(logpath, what));
	assert_false(segment_exists());
}

static void test_good_config(void **state)
{
	char daemon[1200];

	(void)state;
	snprintf(daemon, sizeof(daemon), "checkpoint: \"%s/vrl.ckpt\", metrics_textfile: "
		 "\"%s/vrl.prom\", alert_command: /bin/true, metrics: \"127.0.0.1:0\"", dir, dir);
	config(1000, "", daemon);
	assert_int_equal(vrld_check(conf, out), 0);
	show(out);
	assert_true(vrld_log_has(out, "config ok"));
	assert_true(vrld_log_has(out, " MiB"));          /* the segment's size */
	assert_true(vrld_log_has(out, "max_size 4.0 GiB"));
	assert_true(vrld_log_has(out, "/dev/shm"));
	assert_false(segment_exists());
}

static void test_metrics_address(void **state)
{
	(void)state;
	config(1000, "", "metrics: \"10.0.0.1:9477\"");
	refused("daemon.metrics", "only a loopback address");
	config(1000, "", "metrics: \"127.0.0.1:99999\"");
	refused("daemon.metrics", "expected host:port");
	config(1000, "", "metrics: \"nohost:80\"");
	refused("daemon.metrics", "expected host:port");
}

static void test_state_directories(void **state)
{
	char daemon[600], sub[400];

	(void)state;
	snprintf(daemon, sizeof(daemon), "checkpoint: \"%s/none/vrl.ckpt\"", dir);
	config(1000, "", daemon);
	refused("daemon.checkpoint", "does not exist");

	snprintf(daemon, sizeof(daemon), "metrics_textfile: \"%s/none/vrl.prom\"", dir);
	config(1000, "", daemon);
	refused("daemon.metrics_textfile", "does not exist");

	/* a directory others can write */
	snprintf(sub, sizeof(sub), "%s/open", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(chmod(sub, 0777), 0);
	snprintf(daemon, sizeof(daemon), "checkpoint: \"%s/vrl.ckpt\"", sub);
	config(1000, "", daemon);
	refused("daemon.checkpoint", "mode 0777");
	snprintf(daemon, sizeof(daemon), "metrics_textfile: \"%s/vrl.prom\"", sub);
	config(1000, "", daemon);
	refused("daemon.metrics_textfile", "can be written by others");
}

static void test_alert_command(void **state)
{
	char daemon[600], cmd[400];

	(void)state;
	snprintf(daemon, sizeof(daemon), "alert_command: \"%s/no-such-command\"", dir);
	config(1000, "", daemon);
	refused("daemon.alert_command", "No such file");

	snprintf(cmd, sizeof(cmd), "%s/not-executable", dir);
	vrld_write_file(cmd, "#!/bin/sh\n");
	assert_int_equal(chmod(cmd, 0600), 0);
	snprintf(daemon, sizeof(daemon), "alert_command: \"%s\"", cmd);
	config(1000, "", daemon);
	refused("daemon.alert_command", "not executable");
	snprintf(daemon, sizeof(daemon), "alert_command: \"%s\"", dir);
	config(1000, "", daemon);
	refused("daemon.alert_command", "not a regular file");
}

static void test_segment_too_large(void **state)
{
	(void)state;
	/* 2^40 keys: 150 TB, over the default ceiling and any /dev/shm */
	config(1099511627776ull, "", "");
	refused("segment.keys", "over segment.max_size 4.0 GiB");
	/* a ceiling of the config's own */
	config(1000000, ", max_size: 64MiB", "");
	refused("segment.keys", "over segment.max_size 64.0 MiB");
	/* under a ceiling raised past /dev/shm: /dev/shm refuses it */
	config(1099511627776ull, ", max_size: 1PiB", "");
	refused("segment.keys", "/dev/shm");
	config(1000000, ", max_size: 256MiB", "");
	assert_int_equal(vrld_check(conf, out), 0);
}

static void test_check_no_leak(void **state)
{
	(void)state;
	/* under ASan, a leak makes the run abort: --check must exit 0 */
	config(1000, "", "");
	assert_int_equal(vrld_check(conf, out), 0);
	assert_false(vrld_log_has(out, "LeakSanitizer"));
	config(1000, "", "metrics: \"10.0.0.1:1\"");
	assert_int_equal(vrld_check(conf, out), 78);
	assert_false(vrld_log_has(out, "LeakSanitizer"));
	vrld_write_file(conf, "limits: [");
	assert_int_equal(vrld_check(conf, out), 78);
	assert_false(vrld_log_has(out, "LeakSanitizer"));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_directories, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alert_command, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_too_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_no_leak, setup, teardown),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s VRLD\n", argv[0]);
		return 2;
	}
	vrld_path = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
