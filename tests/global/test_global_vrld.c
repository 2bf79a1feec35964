/*
 * test_global_vrld.c - vrld with a global: section: it starts the engine,
 * says in its log whether Redis is reachable and holds vrl's library,
 * keeps serving its host limits while Redis is away or refuses the
 * library, refuses a reload that changes global:, and stops cleanly.
 * Each test with its own redis-server (redis_fixture); skipped (exit 77)
 * when redis-server is missing.
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
#include <time.h>
#include <unistd.h>

#include "../common.h"
#include "../fault/vrld_run.h"
#include "redis_fixture.h"

#define NS_PER_S   UINT64_C(1000000000)
#define WAIT_NS    (120 * NS_PER_S)     /* a deadline for hangs only (TSan, a busy machine) */

static char dir[256], conf[300], logpath[300], prom[300], seg[VRL_SHM_NAME_MAX];
static struct rfx redis;

static int setup(void **state)
{
	(void)state;
	assert_int_equal(vrld_fresh_paths("gvrld", dir, conf, logpath, prom, seg), 0);
	rfx_start(&redis);
	return 0;
}

static int teardown(void **state)
{
	char cmd[600];

	(void)state;
	vrld_kill_all();
	vrl_seg_unlink(seg);
	rfx_stop(&redis);
	if (getenv("VRL_KEEP_LOGS"))
		return 0;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void show_log(void)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "sed 's/^/# vrld: /' '%s' >&2", logpath);
	if (system(cmd) != 0)
		fprintf(stderr, "# (no vrld log)\n");
}

static void config(const char *redis_spec, const char *lease)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "segment: {name: \"%s\", keys: 1000}\n"
		 "daemon: {metrics_textfile: \"%s\"}\n"
		 "global: {redis: [\"%s\"], host: a, lease: %s}\n"
		 "limits:\n  - {name: r, rate: 5/s, per: [org], scope: host}\n",
		 seg, prom, redis_spec, lease);
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

static void wait_log(const char *needle)
{
	if (!vrld_wait_log(logpath, needle, 1, WAIT_NS)) {
		show_log();
		fail_msg("vrld's log never said: %s", needle);
	}
}

/* Wait until the metrics textfile holds @line (vrld rewrites it each second). */
static void wait_metric(const char *line)
{
	uint64_t until = vrl_now_ns() + WAIT_NS;
	char text[65536];

	while (vrl_now_ns() < until) {
		FILE *f = fopen(prom, "r");
		size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;

		if (f)
			fclose(f);
		text[n] = '\0';
		if (strstr(text, line))
			return;
		rfx_pace(50);
	}
	fail_msg("the metrics never said: %s\n%s", line, text);
}

static void stop(pid_t pid)
{
	kill(pid, SIGTERM);
	assert_int_equal(vrld_wait_exit(pid, WAIT_NS), 0);
}

/* A host limit is still served: one grant, then a denial past the burst. */
static void host_limit_served(void)
{
	vrl_client *c = test_open(seg);
	struct vrl_request rq = { .api = "x", .org = "o" };
	struct vrl_verdict v;
	unsigned granted = 0;

	for (int i = 0; i < 20; i++) {
		int rc = vrl_acquire(c, &rq, &v);

		assert_true(rc == 0 || rc == VRL_EDENIED);
		granted += rc == 0;
	}
	assert_true(granted >= 1 && granted < 20);
	vrl_close(c);
}

static void reachable(void **state)
{
	struct vrl_reload_status st = { 0 };
	char line[300];
	uint64_t until;
	pid_t pid;

	(void)state;
	config(redis.spec, "1s");
	pid = start();
	wait_log("Redis reachable, vrl library in place");
	host_limit_served();
	snprintf(line, sizeof(line), "vrl_global_redis_up{endpoint=\"%s\"} 1\n", redis.spec);
	wait_metric(line);
	/* global: is read at start only: a reload that changes it is refused */
	config(redis.spec, "2s");
	kill(pid, SIGHUP);
	until = vrl_now_ns() + WAIT_NS;
	while (vrl_now_ns() < until && st.count == 0) {
		assert_true(vrld_reload_status(seg, &st));
		rfx_pace(10);
	}
	assert_int_equal(st.count, 1);
	assert_int_equal(st.refused, 1);
	assert_non_null(strstr(st.error, "global: changed"));
	assert_non_null(strstr(st.error, "restart"));
	stop(pid);
}

/* Redis away: vrld serves its host limits all the same, and says why. */
static void unreachable(void **state)
{
	char spec[400], line[500];
	pid_t pid;

	(void)state;
	snprintf(spec, sizeof(spec), "unix:%s/none.sock", dir);
	config(spec, "1s");
	pid = start();
	wait_log("global: Redis unreachable");
	host_limit_served();
	snprintf(line, sizeof(line), "vrl_global_redis_up{endpoint=\"%s\"} 0\n", spec);
	wait_metric(line);
	stop(pid);
}

/* A TCP endpoint that refuses the connection is unreachable, not a Redis
 * that refuses the library. */
static void connection_refused(void **state)
{
	pid_t pid;

	(void)state;
	config("127.0.0.1:1", "1s");
	pid = start();
	wait_log("global: Redis unreachable");
	assert_false(vrld_log_has(logpath, "refuses vrl's library"));
	stop(pid);
}

/* Redis refuses vrl.lua (another library holds one of its names): an
 * error, with what to do. */
static void library_refused(void **state)
{
	redisContext *c = rfx_connect(&redis);
	redisReply *rep = redisCommand(c, "FUNCTION FLUSH");
	pid_t pid;

	(void)state;
	freeReplyObject(rep);
	rep = redisCommand(c, "FUNCTION LOAD %s", "#!lua name=squat\n"
			   "redis.register_function('vrl_renew', function() return 0 end)");
	assert_true(rep && rep->type != REDIS_REPLY_ERROR);
	freeReplyObject(rep);
	redisFree(c);
	config(redis.spec, "1s");
	pid = start();
	wait_log("global: Redis refuses vrl's library");
	assert_true(vrld_log_has(logpath, "already exists"));
	host_limit_served();
	stop(pid);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(reachable, setup, teardown),
		cmocka_unit_test_setup_teardown(unreachable, setup, teardown),
		cmocka_unit_test_setup_teardown(connection_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(library_refused, setup, teardown),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s VRLD\n", argv[0]);
		return 2;
	}
	vrld_path = argv[1];
	if (!rfx_available()) {
		printf("redis-server is not installed (Debian: redis-server): skipped\n");
		return 77;
	}
	return cmocka_run_group_tests_name("global_vrld", tests, NULL, NULL);
}
