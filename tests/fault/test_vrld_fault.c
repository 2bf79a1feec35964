/*
 * test_vrld_fault.c - the real vrld under faults: kill -9 and a reboot
 * (the segment unlinked) with a checkpoint, a damaged checkpoint, kill -9
 * while workers acquire, a storm of reloads, `vrlctl reload`, a second vrld
 * on a served segment, and a segment of an older format. Nothing here is timed:
 * waits are bounded only to fail instead of hanging.
 *
 * usage: test_vrld_fault VRLD VRLCTL
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"
#include "../run_cmd.h"
#include "checkpoint.h"
#include "vrld_run.h"

#define WAIT_NS  (60 * NS_PER_S)     /* only a hang takes this long */

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

static pid_t workers[8];             /* running workers, for teardown: 0 none */

static int teardown(void **state)
{
	(void)state;
	/* after a failed assertion: nothing the test started outlives it */
	for (size_t w = 0; w < sizeof(workers) / sizeof(workers[0]); w++)
		if (workers[w] > 0) {
			kill(workers[w], SIGKILL);
			waitpid(workers[w], NULL, 0);
			workers[w] = 0;
		}
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

/* ---- workers acquiring through vrld's faults -------------------------------------- */

enum { WORKERS = 8, MAX_GRANTS = 1 << 20 };

#define RATE     2000u     /* per second, one shared key */
#define BURST    40u
#define QUOTA    500u      /* units of a monthly quota, one shared key */

struct record {
	_Atomic int stop;
	_Atomic size_t n;
	_Atomic uint64_t units;    /* quota units granted */
	struct test_grant g[MAX_GRANTS];
};

/* Acquire until told to stop; any result but granted or denied is a failure. */
static void worker(struct record *rec)
{
	struct vrl_request hot = { .api = "hot", .org = "o" };
	struct vrl_request unit = { .api = "q", .org = "o" };
	vrl_client *c = test_open(seg);

	while (!atomic_load(&rec->stop)) {
		struct vrl_verdict v;
		int rc = vrl_acquire(c, &unit, NULL);

		if (rc == 0) {
			atomic_fetch_add(&rec->units, 1);
		} else if (rc != VRL_EDENIED) {
			fprintf(stderr, "# worker: quota: %s\n", vrl_strerror(rc));
			_exit(3);
		}
		rc = vrl_acquire(c, &hot, &v);

		if (rc == 0) {
			size_t k = atomic_fetch_add(&rec->n, 1);

			if (k < MAX_GRANTS)
				rec->g[k] = (struct test_grant){ .at = v.at_ns, .state = TEST_GRANTED };
		} else if (rc != VRL_EDENIED) {
			fprintf(stderr, "# worker: acquire: %s\n", vrl_strerror(rc));
			_exit(3);
		}
		sleep_ns(20 * 1000);   /* leave the shared machine some air */
	}
	vrl_close(c);
	_exit(0);
}

_Static_assert(WORKERS == sizeof(workers) / sizeof(workers[0]), "teardown sees every worker");

static void spawn_workers(struct record *rec, pid_t *pids)
{
	for (int w = 0; w < WORKERS; w++)
		if ((workers[w] = pids[w] = fork()) == 0)
			worker(rec);
}

/* Wait until the workers have drained the quota (however slowly they
 * run), stop them; each must have exited 0. Then check every window. */
static void reap_and_check(struct record *rec, pid_t *pids)
{
	struct vrl_seg_limit l = { 0 };
	uint64_t worst, until = vrl_now_ns() + WAIT_NS;
	size_t n;

	while (atomic_load(&rec->units) < QUOTA && vrl_now_ns() < until)
		sleep_ns(NS_PER_S / 50);
	atomic_store(&rec->stop, 1);
	for (int w = 0; w < WORKERS; w++) {
		int status;

		assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
		workers[w] = 0;
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	n = atomic_load(&rec->n);
	assert_true(n <= MAX_GRANTS);
	assert_true(n > 0);
	assert_int_equal(vrl_limit_set_rate(&l, RATE, NS_PER_S, BURST), 0);
	const uint64_t windows[] = { l.emission_ns, NS_PER_S / 10, NS_PER_S };
	for (size_t w = 0; w < sizeof(windows) / sizeof(windows[0]); w++) {
		unsigned broken = test_check_windows(rec->g, n, UINT32_MAX, BURST, l.emission_ns,
						     windows[w], &worst);

		printf("# window %llu ns: worst %llu grants\n", (unsigned long long)windows[w],
		       (unsigned long long)worst);
		assert_int_equal(broken, 0);
	}
	printf("# %zu grants\n", n);
	/* the quota lives in the segment: no unit lost, none granted twice */
	printf("# %llu quota units granted of %u\n",
	       (unsigned long long)atomic_load(&rec->units), QUOTA);
	assert_int_equal(atomic_load(&rec->units), QUOTA);
}

static void write_hot_config(bool extra_first, bool broken)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "segment: {name: \"%s\", keys: 1000}\n"
		 "daemon: {checkpoint: \"%s\", checkpoint_interval: 50ms}\n"
		 "limits:\n"
		 "%s"
		 "  - name: hot\n    match: {api: hot}\n    per: [org]\n    rate: %u/s\n"
		 "    burst: %u\n"
		 "  - {name: units, kind: quota, match: {api: q}, per: [org], count: %u}\n"
		 "%s",
		 seg, ckpt,
		 extra_first ? "  - name: extra\n    match: {api: x}\n    per: [org]\n"
			       "    rate: 1/s\n" : "",
		 RATE, BURST, QUOTA, broken ? "  - name: bad\n    rate: fast\n" : "");
	vrld_write_file(conf, text);
}

static void test_kill_vrld_while_acquiring(void **state)
{
	struct record *rec = test_shared(sizeof(*rec));
	pid_t pids[WORKERS], pid;

	(void)state;
	write_hot_config(false, false);
	pid = start_ready(NULL);
	spawn_workers(rec, pids);
	for (int kill_no = 0; kill_no < 5; kill_no++) {
		sleep_ns(NS_PER_S / 5 + (uint64_t)(rand() % 200) * 1000 * 1000);
		stop(pid, SIGKILL, 128 + SIGKILL);
		/* the workers go on without vrld for a while */
		sleep_ns(NS_PER_S / 10);
		pid = start_ready(NULL);
		/* each restart adopts the segment (logged once it serves it) */
		assert_true(vrld_wait_log(logpath, "adopted=1", (unsigned)kill_no + 1, WAIT_NS));
	}
	sleep_ns(NS_PER_S / 5);
	reap_and_check(rec, pids);
	stop(pid, SIGTERM, 0);
}

static void test_reload_storm(void **state)
{
	struct record *rec = test_shared(sizeof(*rec));
	pid_t pids[WORKERS], pid;
	unsigned applied = 0, refused = 0;

	(void)state;
	write_hot_config(false, false);
	pid = start_ready(NULL);
	spawn_workers(rec, pids);
	for (int i = 0; i < 50; i++) {
		bool broken = i % 10 == 9;
		uint64_t gen = vrld_config_gen(seg);
		struct vrl_reload_status st;

		/* every other config moves "hot" to another index; every tenth
		 * is invalid and must be refused, keeping the running one.
		 * Each SIGHUP is followed by vrld's record of its outcome, so
		 * that one reload reads one config however slow vrld runs */
		write_hot_config(i % 2 == 0, broken);
		kill(pid, SIGHUP);
		assert_true(vrld_wait_reload(seg, (uint64_t)i + 1, WAIT_NS, &st));
		assert_int_equal(st.count, i + 1);
		assert_int_equal(st.refused, refused + broken);
		if (broken) {
			assert_int_equal(vrld_config_gen(seg), gen);
			assert_non_null(strstr(st.error, "limits[2].rate"));
			refused++;
			continue;
		}
		assert_true(vrld_config_gen(seg) > gen);
		applied++;
	}
	printf("# %u reloads applied, %u refused\n", applied, refused);
	reap_and_check(rec, pids);
	assert_true(vrld_wait_log(logpath, "reload refused", refused, WAIT_NS));
	stop(pid, SIGTERM, 0);

	/* vrld checkpointed every 50 ms while the limits moved: the quota key
	 * is still saved under its own limit, with every unit */
	struct vrl_ckpt ck;
	char why[512];

	assert_int_equal(vrl_ckpt_load(ckpt, &ck, why, sizeof(why)), 0);
	assert_int_equal(ck.n, 1);
	assert_string_equal(ck.recs[0].limit, "units");
	assert_int_equal(ck.recs[0].kind, VRL_KIND_QUOTA);
	assert_int_equal(ck.recs[0].state & ((UINT64_C(1) << 40) - 1), QUOTA);
	vrl_ckpt_free(&ck);
	assert_false(vrld_log_has(logpath, "checkpoint not written"));
}

/* ---- one vrld per segment; old segments ------------------------------------------- */

static void test_second_vrld_refused(void **state)
{
	pid_t a, b;

	(void)state;
	write_hot_config(false, false);
	a = start_ready(NULL);
	b = vrld_start(conf, NULL, logpath);
	assert_int_equal(vrld_wait_exit(b, WAIT_NS), 1);
	assert_true(vrld_log_has(logpath, "served by another vrld"));
	assert_true(vrld_wait_ready(seg, a, WAIT_NS));      /* a still serves it */
	/* a dies: its lock goes with it, and the stale segment is adopted */
	stop(a, SIGKILL, 128 + SIGKILL);
	b = start_ready(NULL);
	stop(b, SIGTERM, 0);
}

static void test_old_format_refused(void **state)
{
	struct vrl_seg_header old = { .magic = VRL_SEG_MAGIC, .format = 1 };
	int fd;
	pid_t pid;

	(void)state;
	write_hot_config(false, false);
	fd = shm_open(seg, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 65536), 0);
	assert_int_equal(pwrite(fd, &old, sizeof(old), 0), (ssize_t)sizeof(old));
	close(fd);
	pid = vrld_start(conf, NULL, logpath);
	assert_int_equal(vrld_wait_exit(pid, WAIT_NS), 1);
	assert_true(vrld_log_has(logpath, "is of format 1"));
	assert_true(vrld_log_has(logpath, "--replace"));
	pid = start_ready("--replace");
	stop(pid, SIGTERM, 0);
}

/* ---- vrlctl reload --------------------------------------------------------------- */

static const char *vrlctl_path;

/* Run vrlctl with @args; its stdout in @out, its exit status returned. */
static int vrlctl(const char *args, char *out, size_t len)
{
	int rc = run_vrlctl(vrlctl_path, seg, args, true, out, len);

	printf("# vrlctl %s -> %s", args, out);
	return rc;
}

static void test_vrlctl_reload(void **state)
{
	char out[4096];
	uint64_t gen;
	pid_t pid;

	(void)state;
	write_hot_config(false, false);
	pid = start_ready(NULL);
	gen = vrld_config_gen(seg);
	write_hot_config(true, false);
	assert_int_equal(vrlctl("reload --wait 60s", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "reloaded: config generation"));
	assert_true(vrld_config_gen(seg) > gen);

	gen = vrld_config_gen(seg);
	write_hot_config(true, true);
	assert_int_equal(vrlctl("reload --wait 60s", out, sizeof(out)), 1);
	assert_non_null(strstr(out, "reload refused"));
	assert_non_null(strstr(out, "limits[3]"));     /* where the error is */
	assert_int_equal(vrld_config_gen(seg), gen);
	assert_int_equal(vrlctl("--json reload --wait 60s", out, sizeof(out)), 1);
	assert_non_null(strstr(out, "\"reloaded\":false"));

	write_hot_config(false, false);
	assert_int_equal(vrlctl("--json reload --wait 60s", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "\"reloaded\":true"));

	/* no vrld: nothing to signal */
	stop(pid, SIGTERM, 0);
	assert_int_equal(vrlctl("reload --wait 60s", out, sizeof(out)), 1);
	assert_non_null(strstr(out, "no vrld serves this segment"));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reboot_keeps_cooldowns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_checkpoint_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kill_vrld_while_acquiring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_storm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vrlctl_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_vrld_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_format_refused, setup, teardown),
	};

	if (argc != 3) {
		fprintf(stderr, "usage: %s VRLD VRLCTL\n", argv[0]);
		return 2;
	}
	vrld_path = argv[1];
	vrlctl_path = argv[2];
	srand((unsigned)getpid());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
