/*
 * test_vrld_reload.c - what a SIGHUP does to the real vrld beyond the
 * limits: a config slow to read is read off vrld's main loop (the
 * heartbeat keeps ticking meanwhile, and SIGHUPs sent meanwhile make one
 * reload more, not one each); a change of segment.mode or segment.group is
 * applied to the segment; a change that needs a restart (daemon.metrics,
 * segment.name, segment.keys) is refused, saying so, and recorded as
 * refused; a reload is checked as start-up checks a config, and a restart
 * over the segment as a reload checks its limits; a metrics
 * textfile, metrics_top or a shorter sweep_interval set by a reload is
 * applied.
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
	(void)state;
	assert_int_equal(vrld_fresh_paths("reload", dir, conf, logpath, prom, seg), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vrld_kill_all();
	vrl_seg_unlink(seg);
	return vrld_drop_dir(dir);
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / NS_PER_S), (long)(ns % NS_PER_S) };

	nanosleep(&ts, NULL);
}

static void show_log(void)
{
	vrld_show_log(logpath);
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

static mode_t seg_mode(void)
{
	char p[300];
	struct stat st;

	snprintf(p, sizeof(p), "/dev/shm%s", seg);
	assert_int_equal(stat(p, &st), 0);
	return st.st_mode & 0777;
}

static gid_t seg_gid(void)
{
	char p[300];
	struct stat st;

	snprintf(p, sizeof(p), "/dev/shm%s", seg);
	assert_int_equal(stat(p, &st), 0);
	return st.st_gid;
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

/* ---- segment fields ------------------------------------------------------------ */

/* A group vrld (this uid) may give the segment to, other than its own. */
static bool other_group(gid_t *gid)
{
	gid_t groups[64];
	int n;

	if (geteuid() == 0) {
		*gid = getgid() == 65534 ? 1 : 65534;
		return true;
	}
	n = getgroups(64, groups);
	for (int i = 0; i < n; i++)
		if (groups[i] != getegid()) {
			*gid = groups[i];
			return true;
		}
	return false;
}

static void test_reload_mode_and_group(void **state)
{
	struct vrl_reload_status st;
	char extra[64];
	gid_t gid;
	pid_t pid;

	(void)state;
	config(", mode: \"0660\"", "");
	pid = start_ready();
	assert_int_equal(seg_mode(), 0660);
	config(", mode: \"0600\"", "");
	assert_true(reload(pid, &st));
	assert_int_equal(seg_mode(), 0600);
	config(", mode: \"0640\"", "");
	assert_true(reload(pid, &st));
	assert_int_equal(seg_mode(), 0640);
	if (other_group(&gid)) {
		snprintf(extra, sizeof(extra), ", mode: \"0640\", group: \"%u\"", (unsigned)gid);
		config(extra, "");
		assert_true(reload(pid, &st));
		assert_int_equal(seg_gid(), gid);
	}
	stop(pid);
}

/* ---- what needs a restart ------------------------------------------------------- */

static void refused_for_restart(pid_t pid, const char *field)
{
	struct vrl_reload_status st;
	uint64_t gen = vrld_config_gen(seg);

	assert_false(reload(pid, &st));
	assert_non_null(strstr(st.error, field));
	assert_non_null(strstr(st.error, "restart"));
	assert_int_equal(vrld_config_gen(seg), gen);
}

static void test_reload_needs_restart(void **state)
{
	char text[1024];
	pid_t pid;

	(void)state;
	config("", "metrics: \"127.0.0.1:0\"");
	pid = start_ready();
	config("", "metrics: \"127.0.0.1:1\"");
	refused_for_restart(pid, "daemon.metrics");
	config("", "");
	refused_for_restart(pid, "daemon.metrics");
	config_keys(2000, "", "metrics: \"127.0.0.1:0\"");
	refused_for_restart(pid, "segment.keys");
	snprintf(text, sizeof(text), "segment: {name: \"%s-2\", keys: 1000}\n"
		 "daemon: {metrics: \"127.0.0.1:0\"}\n"
		 "limits:\n  - {name: r, rate: 1/min, per: [org]}\n", seg);
	vrld_write_file(conf, text);
	refused_for_restart(pid, "segment.name");
	stop(pid);
}

/* ---- a reload is checked as start-up is ------------------------------------------ */

static void test_reload_checked_like_start(void **state)
{
	struct vrl_reload_status st;
	char daemon[600];
	pid_t pid;

	(void)state;
	config("", "");
	pid = start_ready();
	snprintf(daemon, sizeof(daemon), "checkpoint: \"%s/none/vrl.ckpt\"", dir);
	config("", daemon);
	assert_false(reload(pid, &st));
	assert_non_null(strstr(st.error, "daemon.checkpoint"));
	assert_non_null(strstr(st.error, "does not exist"));
	snprintf(daemon, sizeof(daemon), "alert_command: \"%s/none\"", dir);
	config("", daemon);
	assert_false(reload(pid, &st));
	assert_non_null(strstr(st.error, "daemon.alert_command"));
	config(", max_size: 1MiB", "");
	assert_false(reload(pid, &st));
	assert_non_null(strstr(st.error, "segment.max_size"));
	stop(pid);
}

/* ---- a restart over the segment is checked as a reload is ------------------------- */

/*
 * vrld stopped and started again with a changed config adopts its segment
 * only if a reload would take the change: a kind change under the same
 * name, refused by a reload, is refused at start with the same words (and
 * a hint to --replace), and the segment is left as it was; --replace makes
 * a fresh one.
 */
static void test_restart_checked_like_reload(void **state)
{
	struct vrl_reload_status st;
	char text[1024];
	uint64_t gen;
	pid_t pid;

	(void)state;
	config("", "");
	pid = start_ready();
	snprintf(text, sizeof(text), "segment: {name: \"%s\", keys: 1000}\n"
		 "limits:\n  - {name: r, kind: gate, per: [org]}\n", seg);
	vrld_write_file(conf, text);
	assert_false(reload(pid, &st));
	assert_non_null(strstr(st.error, "changes kind"));
	stop(pid);
	gen = vrld_config_gen(seg);
	pid = vrld_start(conf, NULL, logpath);
	assert_int_equal(vrld_wait_exit(pid, WAIT_NS), 1);
	assert_int_equal(vrld_config_gen(seg), gen);           /* nothing published */
	if (!vrld_log_has(logpath, st.error) || !vrld_log_has(logpath, "--replace")) {
		show_log();
		fail_msg("vrld did not refuse the kind change at start as a reload does");
	}
	pid = vrld_start(conf, "--replace", logpath);
	/* the first start made the segment too: the second "adopted=0" */
	if (!vrld_wait_ready(seg, pid, WAIT_NS) || !vrld_wait_log(logpath, "adopted=0", 2,
								    WAIT_NS)) {
		show_log();
		fail_msg("vrld --replace did not make a fresh segment");
	}
	stop(pid);
}

/* ---- the textfile --------------------------------------------------------------- */

/* Lines of the textfile starting with @prefix, once it holds @want of them. */
static void wait_textfile_lines(const char *prefix, int want)
{
	uint64_t until = vrl_now_ns() + WAIT_NS;
	int n = -1;

	while (vrl_now_ns() < until) {
		char line[512];
		FILE *f = fopen(prom, "r");

		if (f) {
			n = 0;
			while (fgets(line, sizeof(line), f))
				n += strncmp(line, prefix, strlen(prefix)) == 0;
			fclose(f);
			if (n == want)
				return;
		}
		sleep_ns(NS_PER_S / 20);
	}
	fail_msg("the textfile has %d lines of %s, expected %d", n, prefix, want);
}

static void test_reload_textfile(void **state)
{
	struct vrl_reload_status st;
	struct vrl_request req = { .api = "x" };
	char daemon[600], org[16];
	vrl_client *c;
	pid_t pid;

	(void)state;
	config("", "");          /* no metrics at all at start */
	pid = start_ready();
	c = test_open(seg);
	for (int i = 0; i < 3; i++) {
		snprintf(org, sizeof(org), "o%d", i);
		req.org = org;
		assert_int_equal(vrl_acquire(c, &req, NULL), 0);   /* each key at its limit */
	}
	vrl_close(c);
	snprintf(daemon, sizeof(daemon), "metrics_textfile: \"%s\", metrics_top: 1", prom);
	config("", daemon);
	assert_true(reload(pid, &st));
	wait_textfile_lines("vrl_key_used_ratio{", 1);
	snprintf(daemon, sizeof(daemon), "metrics_textfile: \"%s\", metrics_top: 3", prom);
	config("", daemon);
	assert_true(reload(pid, &st));
	wait_textfile_lines("vrl_key_used_ratio{", 3);
	stop(pid);
}

/* ---- the sweep ------------------------------------------------------------------- */

static void test_reload_sweep_interval(void **state)
{
	struct vrl_reload_status st;
	struct vrl_request req = { .api = "g", .org = "o" };
	char text[1024];
	uint64_t until;
	vrl_client *c;
	pid_t pid;

	(void)state;
	snprintf(text, sizeof(text), "segment: {name: \"%s\", keys: 1000}\n"
		 "daemon: {sweep_interval: 1h, idle_evict: 1ms}\n"
		 "limits:\n  - {name: g, kind: gate, per: [org]}\n", seg);
	vrld_write_file(conf, text);
	pid = start_ready();
	c = test_open(seg);
	/* vrld swept once at start; the next sweep is an hour away */
	while (atomic_load(&vrl__view(c)->hdr->daemon_heartbeat_ns) == 0)
		sleep_ns(NS_PER_S / 100);
	assert_int_equal(vrl_acquire(c, &req, NULL), 0);     /* an idle key */
	snprintf(text, sizeof(text), "segment: {name: \"%s\", keys: 1000}\n"
		 "daemon: {sweep_interval: 100ms, idle_evict: 1ms}\n"
		 "limits:\n  - {name: g, kind: gate, per: [org]}\n", seg);
	vrld_write_file(conf, text);
	assert_true(reload(pid, &st));
	/* a shorter interval applies now, not after the hour */
	until = vrl_now_ns() + WAIT_NS;
	while (atomic_load(&vrl__view(c)->hdr->evictions) == 0 && vrl_now_ns() < until)
		sleep_ns(NS_PER_S / 20);
	assert_int_equal(atomic_load(&vrl__view(c)->hdr->evictions), 1);
	vrl_close(c);
	stop(pid);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_slow_reload_keeps_ticking, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_mode_and_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_needs_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_checked_like_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_checked_like_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_textfile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_sweep_interval, setup, teardown),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s VRLD\n", argv[0]);
		return 2;
	}
	vrld_path = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
