/*
 * test_global_vrlctl.c - `vrlctl global` against the real vrld with a
 * global: section: the endpoint shows up, with its round-trip times and
 * Redis's epoch, once vrld reached its private redis-server; an endpoint
 * that cannot be reached shows down, with the error; a config without
 * global: says so; a stopped vrld leaves its last figures, exit 1. And a
 * segment made without global: is not adopted by a vrld that has it (its
 * status area would be missing): vrld says so, and what to do.
 * Each test with its own redis-server (redis_fixture); skipped (exit 77)
 * when redis-server is missing. Every wait is for an event, bounded only
 * to fail instead of hanging.
 *
 * usage: test_global_vrlctl VRLD VRLCTL
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
#include <sys/wait.h>
#include <unistd.h>

#include "../common.h"
#include "../run_cmd.h"
#include "../fault/vrld_run.h"
#include "redis_fixture.h"

#define WAIT_NS (120 * NS_PER_S)     /* a deadline for hangs only (TSan, a busy machine) */
#define OUT_MAX 65536

static const char *vrlctl_path;
static char dir[256], conf[300], logpath[300], prom[300], seg[VRL_SHM_NAME_MAX];
static char out[OUT_MAX];
static struct rfx redis;

static int setup(void **state)
{
	(void)state;
	assert_int_equal(vrld_fresh_paths("gctl", dir, conf, logpath, prom, seg), 0);
	rfx_start(&redis);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vrld_kill_all();
	vrl_seg_unlink(seg);
	rfx_stop(&redis);
	return vrld_drop_dir(dir);
}

static void show_log(void)
{
	vrld_show_log(logpath);
}

/* A config with global: on @redis_spec, or none when NULL. */
static void config(const char *redis_spec)
{
	char text[1024], global[400] = "";

	if (redis_spec)
		snprintf(global, sizeof(global), "global: {redis: [\"%s\"], host: h-1, lease: 1s}\n",
			 redis_spec);
	snprintf(text, sizeof(text),
		 "segment: {name: \"%s\", keys: 1000}\n%s"
		 "limits:\n  - {name: r, rate: 5/s, per: [org], scope: host}\n", seg, global);
	vrld_write_file(conf, text);
}

static pid_t start(void)
{
	pid_t pid = vrld_start(conf, NULL, logpath);

	if (!vrld_wait_ready(seg, pid, WAIT_NS)) {
		show_log();
		fail_msg("vrld did not start");
	}
	return pid;
}

static void stop(pid_t pid)
{
	kill(pid, SIGTERM);
	assert_int_equal(vrld_wait_exit(pid, WAIT_NS), 0);
}

/* Run `vrlctl -s SEG @args`, stderr too; its exit status. */
static int ctl(const char *args)
{
	return run_vrlctl(vrlctl_path, seg, args, true, out, sizeof(out));
}

/* Run `vrlctl --json global` until its output holds @needle. */
static void wait_global(const char *needle)
{
	uint64_t until = vrl_now_ns() + WAIT_NS;

	while (vrl_now_ns() < until) {
		if (ctl("--json global") == 0 && strstr(out, needle))
			return;
		rfx_pace(50);
	}
	show_log();
	fail_msg("vrlctl global never showed %s:\n%s", needle, out);
}

static void assert_has(const char *needle)
{
	if (!strstr(out, needle))
		fail_msg("expected \"%s\" in:\n%s", needle, out);
}

/* The number after @prefix in the output. */
static double number_after(const char *prefix)
{
	const char *p = strstr(out, prefix);

	if (!p)
		fail_msg("expected \"%s\" in:\n%s", prefix, out);
	return strtod(p + strlen(prefix), NULL);
}

static void reachable(void **state)
{
	char want[300];
	pid_t pid;

	(void)state;
	config(redis.spec);
	pid = start();
	snprintf(want, sizeof(want), "{\"name\":\"%s\",\"up\":true", redis.spec);
	wait_global(want);
	assert_has("\"host\":\"h-1\"");
	assert_has("\"lease_s\":1.000000000");
	assert_has("\"fallback\":false");
	assert_has("\"error\":null");
	assert_true(number_after("\"rtt_max_s\":") > 0);
	assert_true(number_after("\"calls\":") >= 1);
	assert_true(strstr(out, "\"epoch\":\"") != NULL);
	assert_has("\"keys\":[]");
	assert_int_equal(ctl("global"), 0);
	assert_has("1 of 1 endpoints up");
	assert_has("fallback:  no");
	assert_has("vrld:      serving");
	assert_has(" up ");
	assert_has("no global keys on this host yet");
	/* stopped: the last figures, and exit 1 */
	stop(pid);
	assert_int_equal(ctl("global"), 1);
	assert_has("not serving (figures as last published)");
}

static void unreachable(void **state)
{
	char spec[400], want[500];
	pid_t pid;

	(void)state;
	snprintf(spec, sizeof(spec), "unix:%s/none.sock", dir);
	config(spec);
	pid = start();
	/* down, with the error once the first connect failed */
	snprintf(want, sizeof(want), "{\"name\":\"%s\",\"up\":false", spec);
	wait_global("\"error\":\"connect");
	assert_has(want);
	assert_true(number_after("\"failures\":") >= 1);
	assert_has("\"rtt_last_s\":null");
	assert_int_equal(ctl("global"), 0);
	assert_has("0 of 1 endpoints up");
	assert_has(" down ");
	assert_has("error: connect");
	stop(pid);
}

static void no_global_section(void **state)
{
	pid_t pid;

	(void)state;
	config(NULL);
	pid = start();
	assert_int_equal(ctl("global"), 1);
	assert_has("vrld has no global: section");
	assert_int_equal(ctl("--json global"), 1);
	assert_has("\"global\":false");
	stop(pid);
}

/* global: added to a segment made without: not adopted, and vrld says why. */
static void added_to_a_segment_without(void **state)
{
	pid_t pid;

	(void)state;
	config(NULL);
	stop(start());
	config(redis.spec);
	pid = vrld_start(conf, NULL, logpath);
	assert_int_not_equal(vrld_wait_exit(pid, WAIT_NS), 0);
	if (!vrld_log_has(logpath, "made without a global: section") ||
	    !vrld_log_has(logpath, "--replace")) {
		show_log();
		fail_msg("vrld did not say why it cannot adopt the segment");
	}
	/* --replace makes it afresh, with the area */
	pid = vrld_start(conf, "--replace", logpath);
	if (!vrld_wait_ready(seg, pid, WAIT_NS)) {
		show_log();
		fail_msg("vrld --replace did not start");
	}
	wait_global("\"up\":true");
	stop(pid);
}

/* A global rate key shows, with its limit, its key text, its share. */
static void global_key_shown(void **state)
{
	struct vrl_request rq = { .api = "x", .org = "o" };
	struct vrl_verdict v;
	vrl_client *c;
	char text[1024];
	pid_t pid;

	(void)state;
	snprintf(text, sizeof(text),
		 "segment: {name: \"%s\", keys: 1000}\n"
		 "global: {redis: [\"%s\"], host: h-1, lease: 1s}\n"
		 "limits:\n  - {name: g, rate: 5/s, per: [org], scope: global}\n",
		 seg, redis.spec);
	vrld_write_file(conf, text);
	pid = start();
	c = test_open(seg);
	(void)vrl_acquire(c, &rq, &v);        /* the key: vrld takes it up */
	wait_global("\"limit\":\"g\",\"key\":\"o\",\"kind\":\"rate\"");
	wait_global("\"status\":\"ok\"");
	assert_int_equal(ctl("global"), 0);
	assert_has("g ");
	vrl_close(c);
	stop(pid);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(reachable, setup, teardown),
		cmocka_unit_test_setup_teardown(unreachable, setup, teardown),
		cmocka_unit_test_setup_teardown(no_global_section, setup, teardown),
		cmocka_unit_test_setup_teardown(added_to_a_segment_without, setup, teardown),
		cmocka_unit_test_setup_teardown(global_key_shown, setup, teardown),
	};

	if (argc < 3) {
		fprintf(stderr, "usage: %s VRLD VRLCTL\n", argv[0]);
		return 2;
	}
	vrld_path = argv[1];
	vrlctl_path = argv[2];
	if (!rfx_available()) {
		printf("redis-server is not installed (Debian: redis-server): skipped\n");
		return 77;
	}
	return cmocka_run_group_tests_name("global_vrlctl", tests, NULL, NULL);
}
