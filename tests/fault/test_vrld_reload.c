/*
 * test_vrld_reload.c - what a SIGHUP does to the real vrld beyond the
 * limits: a config slow to read is read off vrld's main loop (the
 * heartbeat keeps ticking meanwhile, and SIGHUPs sent meanwhile make one
 * reload more, not one each).
 *
 * Nothing is timed: the test waits for events (heartbeats, the reload
 * count, the config generation), each wait bounded only to fail instead of
 * hanging.
 *
 * usage: test_vrld_reload VRLD
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"
#include "vrld_run.h"

#define WAIT_NS    (120 * NS_PER_S)    /* a slow reload under TSan on a loaded machine */
#define ANCHORS    25000               /* a config libyaml takes seconds to read */

static char dir[256], conf[300], logpath[300], prom[300], seg[VRL_SHM_NAME_MAX];

static int setup(void **state)
{
	static unsigned serial;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/vrl-reload-%d-%u", (int)getpid(), serial);
	snprintf(seg, sizeof(seg), "/vrl-test-reload-%d-%u", (int)getpid(), serial++);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(conf, sizeof(conf), "%s/vrl.yaml", dir);
	snprintf(logpath, sizeof(logpath), "%s/vrld.log", dir);
	snprintf(prom, sizeof(prom), "%s/vrl.prom", dir);
	vrl_seg_unlink(seg);
	return 0;
}

static int teardown(void **state)
{
	char cmd[600];

	(void)state;
	vrld_kill_all();
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

/* A config of @keys keys: @segment_extra inside segment:, @daemon inside
 * daemon:. */
static void config_keys(unsigned keys, const char *segment_extra, const char *daemon)
{
	char text[2048];

	snprintf(text, sizeof(text),
		 "segment: {name: \"%s\", keys: %u%s}\n"
		 "daemon: {%s}\n"
		 "limits:\n  - {name: r, rate: 1/min, per: [org]}\n",
		 seg, keys, segment_extra, daemon);
	vrld_write_file(conf, text);
}

static void config(const char *segment_extra, const char *daemon)
{
	config_keys(1000, segment_extra, daemon);
}

/* A config that takes libyaml seconds to read (every anchor is compared
 * with every other), refused in the end for its unknown key. */
static void slow_config(void)
{
	FILE *f = fopen(conf, "w");

	assert_non_null(f);
	fprintf(f, "segment: {name: \"%s\", keys: 1000}\n"
		"limits:\n  - {name: r, rate: 1/min, per: [org]}\nslow:\n", seg);
	for (int i = 0; i < ANCHORS; i++)
		fprintf(f, "  - &anchor%d %d\n", i, i);
	assert_int_equal(fclose(f), 0);
}

static pid_t start_ready(void)
{
	pid_t pid = vrld_start(conf, NULL, logpath);

	if (!vrld_wait_ready(seg, pid, WAIT_NS)) {
		show_log();
		fail_msg("vrld did not come up");
	}
	return pid;
}

static void stop(pid_t pid)
{
	kill(pid, SIGTERM);
	assert_int_equal(vrld_wait_exit(pid, WAIT_NS), 0);
}

static struct vrl_reload_status reload_status(void)
{
	struct vrl_reload_status st;

	assert_true(vrld_reload_status(seg, &st));
	return st;
}

/* SIGHUP @pid and wait for the reload's outcome; true when applied. */
static bool reload(pid_t pid, struct vrl_reload_status *out)
{
	uint64_t before = reload_status().count, until = vrl_now_ns() + WAIT_NS;

	kill(pid, SIGHUP);
	while (vrl_now_ns() < until) {
		*out = reload_status();
		if (out->count != before) {
			printf("# reload: %s\n", out->error[0] ? out->error : "applied");
			return out->error[0] == '\0';
		}
		sleep_ns(NS_PER_S / 100);
	}
	show_log();
	fail_msg("vrld did not handle the reload");
	return false;
}

/* ---- a slow reload ------------------------------------------------------------ */

static void test_slow_reload_keeps_ticking(void **state)
{
	struct vrl_reload_status st;
	uint64_t before, beat, until, advanced = 0;
	bool burst_while_pending;
	pid_t pid;

	(void)state;
	config("", "");
	pid = start_ready();
	before = reload_status().count;
	slow_config();
	beat = vrld_heartbeat(seg);
	kill(pid, SIGHUP);
	/* the heartbeat moves while the reload's outcome is still to come */
	until = vrl_now_ns() + WAIT_NS;
	while (reload_status().count == before && advanced < 3 && vrl_now_ns() < until) {
		uint64_t now = vrld_heartbeat(seg);

		advanced += now != beat;
		beat = now;
		sleep_ns(NS_PER_S / 100);
	}
	printf("# %llu heartbeats before the slow reload's outcome\n",
	       (unsigned long long)advanced);
	assert_int_equal(advanced, 3);
	/* SIGHUPs while one is being read: one reload more, not one each */
	burst_while_pending = reload_status().count == before;
	for (int i = 0; burst_while_pending && i < 5; i++)
		kill(pid, SIGHUP);
	while (reload_status().count == before && vrl_now_ns() < until)
		sleep_ns(NS_PER_S / 100);
	st = reload_status();
	assert_int_equal(st.count, before + 1);
	assert_non_null(strstr(st.error, "slow: unknown key"));
	/* the burst's one reload, then a good config's: two more in all */
	while (reload_status().count == before + 1 && burst_while_pending &&
	       vrl_now_ns() < until)
		sleep_ns(NS_PER_S / 100);
	config("", "sweep_interval: 2s");
	assert_true(reload(pid, &st));
	assert_int_equal(st.count, before + (burst_while_pending ? 3 : 2));
	assert_true(vrld_log_has(logpath, "config reloaded"));
	stop(pid);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_slow_reload_keeps_ticking, setup, teardown),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s VRLD\n", argv[0]);
		return 2;
	}
	vrld_path = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
