/*
 * test_global_vrld.c - vrld with a global: section: it starts the engine,
 * says in its log whether Redis is reachable and holds vrl's library,
 * keeps serving its host limits while Redis is away or refuses the
 * library, refuses a reload that changes global:, and stops cleanly. And
 * a global rate key held by two vrlds (two hosts on one Redis), each
 * serving forked workers on its own segment: their grants together never
 * exceed the limit in any interval, and they progress. A global quota
 * held by two vrlds: its count granted whole, never more, across a clean
 * stop of one of them.
 * Each test with its own redis-server (redis_fixture); skipped (exit 77)
 * when redis-server is missing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"
#include "../fault/vrld_run.h"
#include "../run_cmd.h"
#include "redis_fixture.h"
#include "share.h"

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

/* ---- a global rate key on two hosts --------------------------------------- */

#define G_COUNT   20u                  /* the global limit: 20/s burst 2 */
#define G_BURST   2u
#define G_OV_COUNT 12u                 /* its override for make tesla: 12/s burst 2 */
#define G_WORKERS 2u                   /* forked workers per host */
#define G_TARGET  60u                  /* grants, all hosts together */
#define G_MAX     4096u

struct grants {
	_Atomic uint32_t n;                /* grants recorded (may pass G_MAX: not kept) */
	_Atomic uint32_t share_denials;    /* denials for want of share */
	struct test_grant g[G_MAX];
};

static void global_config(const char *path, const char *segname, const char *host,
			  const char *promfile)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "segment: {name: \"%s\", keys: 1000}\n"
		 "daemon: {metrics_textfile: \"%s\"}\n"
		 "global: {redis: [\"%s\"], host: %s, lease: 1s, hosts: 2}\n"
		 "limits:\n  - {name: g, rate: %u/s, burst: %u, per: [org], scope: global,\n"
		 "     overrides: [{match: {make: tesla}, rate: %u/s}]}\n",
		 segname, promfile, redis.spec, host, G_COUNT, G_BURST, G_OV_COUNT);
	vrld_write_file(path, text);
}

/* A worker: immediate acquires on key o (of make @make, NULL: none) until
 * the hosts together granted G_TARGET, each grant recorded at the time it
 * was decided at. A denial waits what its verdict says (a pace, the
 * share's refill tick at most). */
static void worker(const char *segname, const char *make, struct grants *rec, uint64_t until)
{
	vrl_client *c = test_open(segname);
	const struct vrl_attr attr = { .name = "make", .value = make };
	struct vrl_request rq = { .api = "x", .org = "o", .attrs = make ? &attr : NULL,
				  .nattrs = make ? 1 : 0 };
	struct vrl_verdict v;

	while (atomic_load(&rec->n) < G_TARGET && vrl_now_ns() < until) {
		int rc = vrl_acquire(c, &rq, &v);

		if (rc == 0) {
			uint32_t i = atomic_fetch_add(&rec->n, 1);

			if (i < G_MAX)
				rec->g[i] = (struct test_grant){ .at = v.at_ns, .state = TEST_GRANTED };
			continue;
		}
		if (rc != VRL_EDENIED)
			_exit(2);
		if (v.flags & VRL_VERDICT_SHARE)
			atomic_fetch_add(&rec->share_denials, 1);
		struct timespec ts = { 0, (long)(v.retry_after_ns < 20000000u ?
						 v.retry_after_ns : 20000000u) };
		nanosleep(&ts, NULL);
	}
	vrl_close(c);
	_exit(0);
}

/* Every share word of @segname is none: vrld clamped them at stop. */
static void shares_clamped(const char *segname)
{
	int fd = shm_open(segname, O_RDONLY, 0);
	struct vrl_seg_geometry g;
	struct vrl_seg_view v;
	struct stat st;
	void *base;

	assert_true(fd >= 0 && fstat(fd, &st) == 0);
	base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	assert_true(base != MAP_FAILED);
	assert_int_equal(vrl_seg_validate(base, (uint64_t)st.st_size, &g), 0);
	vrl_seg_view_init(&v, base, &g);
	assert_non_null(v.shares);
	for (uint64_t i = 0; i < v.nslots; i++)
		assert_int_equal(atomic_load(&v.shares[i].word), 0);
	munmap(base, (size_t)st.st_size);
}

/* Host b's files, beside the fixture's (host a). */
static char dir_b[256], conf_b[300], log_b[300], prom_b[300], seg_b[VRL_SHM_NAME_MAX];

/* Start vrld a (the fixture's paths) and b, both holding limit g. */
static void two_hosts(pid_t *a, pid_t *b)
{
	assert_int_equal(vrld_fresh_paths("gvrld-b", dir_b, conf_b, log_b, prom_b, seg_b), 0);
	global_config(conf, seg, "a", prom);
	global_config(conf_b, seg_b, "b", prom_b);
	*a = start();
	*b = vrld_start(conf_b, NULL, log_b);
	assert_true(vrld_wait_ready(seg_b, *b, WAIT_NS));
}

static void two_hosts_stop(pid_t a, pid_t b)
{
	char cmd[300];

	stop(a);
	kill(b, SIGTERM);
	assert_int_equal(vrld_wait_exit(b, WAIT_NS), 0);
	shares_clamped(seg);
	shares_clamped(seg_b);
	vrl_seg_unlink(seg_b);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir_b);
	assert_int_equal(system(cmd), 0);
}

/* Workers on both hosts on one key of make @make (NULL: none), whose
 * global limit is @count/s burst G_BURST: every interval of their merged
 * grants keeps it. */
static void two_hosts_on(const char *make, unsigned count)
{
	struct grants *rec = test_shared(sizeof(*rec));
	pid_t a, b, kids[2 * G_WORKERS];
	uint64_t until, worst = 0, first, last;
	const uint64_t T = NS_PER_S / count;
	size_t n;

	two_hosts(&a, &b);
	until = vrl_now_ns() + WAIT_NS;
	for (unsigned i = 0; i < 2 * G_WORKERS; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0)
			worker(i % 2 ? seg_b : seg, make, rec, until);
	}
	for (unsigned i = 0; i < 2 * G_WORKERS; i++) {
		int st;

		assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	n = atomic_load(&rec->n) < G_MAX ? atomic_load(&rec->n) : G_MAX;
	/* progress: the shares arrived and were used */
	if (n < G_TARGET)
		show_log();
	assert_true(n >= G_TARGET);
	test_count_grants(rec->g, n, UINT32_MAX, &first, &last);
	print_message("# %zu grants in %.2f s, %u denials for want of share\n", n,
		      (double)(last - first) / 1e9, atomic_load(&rec->share_denials));
	/* the global limit, over both hosts' grants, in every interval: each
	 * host alone could grant it all (its own bucket is the limit's) */
	const uint64_t windows[] = { T, NS_PER_S / 10, NS_PER_S / 2, NS_PER_S, 2 * NS_PER_S };
	for (size_t w = 0; w < sizeof(windows) / sizeof(windows[0]); w++)
		assert_int_equal(test_check_windows(rec->g, n, UINT32_MAX, G_BURST, T, windows[w],
						    &worst), 0);
	two_hosts_stop(a, b);
}

static void two_hosts_one_key(void **state)
{
	(void)state;
	two_hosts_on(NULL, G_COUNT);
}

/* An override of a global limit is held across hosts too, at its own
 * figures. */
static void two_hosts_override_key(void **state)
{
	(void)state;
	two_hosts_on("tesla", G_OV_COUNT);
}

/* vrld --forget-host: every endpoint of the config marks the host gone
 * (vrl.lua's g:<host> in the epoch), so counters waiting for its report
 * open without it; a bad host id or a config without global: is refused. */
static void forget_host(void **state)
{
	char cmd[1024], out[4096];
	redisContext *c;
	redisReply *rep;

	(void)state;
	config(redis.spec, "1s");
	snprintf(cmd, sizeof(cmd), "'%s' -c '%s' --forget-host d 2>&1", vrld_path, conf);
	assert_int_equal(run_capture(cmd, out, sizeof(out)), 0);
	if (!strstr(out, "host d forgotten"))
		fail_msg("vrld --forget-host said: %s", out);
	c = rfx_connect(&redis);
	rep = redisCommand(c, "HGET " RFX_EPOCH_KEY " g:d");
	assert_non_null(rep);
	assert_int_equal(rep->type, REDIS_REPLY_STRING);
	assert_string_equal(rep->str, "1");
	freeReplyObject(rep);
	redisFree(c);

	snprintf(cmd, sizeof(cmd), "'%s' -c '%s' --forget-host 'd e' 2>&1", vrld_path, conf);
	assert_int_equal(run_capture(cmd, out, sizeof(out)), 64);
	assert_non_null(strstr(out, "host \"d e\""));
	vrld_write_file(conf, "limits:\n  - {name: r, rate: 5/s, per: [org]}\n");
	snprintf(cmd, sizeof(cmd), "'%s' -c '%s' --forget-host d 2>&1", vrld_path, conf);
	assert_int_equal(run_capture(cmd, out, sizeof(out)), 78);
	assert_non_null(strstr(out, "no global: section"));
}

/* A cooldown (a 429's) on a global key on host a closes it on host b. */
static void cooldown_crosses_hosts(void **state)
{
	struct vrl_request rq = { .api = "x", .org = "o" };
	vrl_client *ca, *cb;
	struct vrl_verdict v;
	uint64_t until, closed_until;
	pid_t a, b;
	int rc = 0;

	(void)state;
	two_hosts(&a, &b);
	ca = test_open(seg);
	cb = test_open(seg_b);
	/* the key on both hosts (granted or not: the share may not be there) */
	(void)vrl_acquire(ca, &rq, &v);
	(void)vrl_acquire(cb, &rq, &v);
	closed_until = vrl_now_ns() + 60 * NS_PER_S;
	assert_int_equal(vrl_cooldown(ca, &rq, "g", closed_until), 0);
	until = vrl_now_ns() + WAIT_NS;
	while (vrl_now_ns() < until) {
		rc = vrl_acquire(cb, &rq, &v);
		if (rc == VRL_EDENIED && (v.flags & VRL_VERDICT_COOLDOWN))
			break;
		rfx_pace(20);
	}
	assert_int_equal(rc, VRL_EDENIED);
	assert_true(v.flags & VRL_VERDICT_COOLDOWN);
	/* closed until about when a closed it: host b's clock, not later
	 * than a's time plus what a round trip adds */
	assert_true(v.retry_after_ns > 30 * NS_PER_S && v.retry_after_ns <= 61 * NS_PER_S);
	vrl_close(ca);
	vrl_close(cb);
	two_hosts_stop(a, b);
}

/* A global key past its lease with Redis gone denies (on_partition: deny),
 * for want of share, until Redis answers again; then it grants again. */
static void lapsed_lease_denies(void **state)
{
	struct vrl_request rq = { .api = "x", .org = "o" };
	struct vrl_verdict v;
	vrl_client *c;
	uint64_t until;
	int rc = -1;
	pid_t pid;

	(void)state;
	global_config(conf, seg, "a", prom);
	pid = start();
	c = test_open(seg);
	until = vrl_now_ns() + WAIT_NS;
	while (vrl_now_ns() < until && (rc = vrl_acquire(c, &rq, &v)) != 0)
		rfx_pace(20);
	assert_int_equal(rc, 0);                  /* the share arrived */
	rfx_kill(&redis);
	wait_metric("vrl_global_partitioned_keys 1");
	for (int i = 0; i < 20; i++) {
		assert_int_equal(vrl_acquire(c, &rq, &v), VRL_EDENIED);
		assert_true(v.flags & VRL_VERDICT_SHARE);
		rfx_pace(20);
	}
	rfx_restart_empty(&redis);
	/* a wiped Redis fences its keys for a lease term, then grants again */
	until = vrl_now_ns() + WAIT_NS;
	while (vrl_now_ns() < until && (rc = vrl_acquire(c, &rq, &v)) != 0)
		rfx_pace(20);
	assert_int_equal(rc, 0);
	vrl_close(c);
	stop(pid);
}

/* ---- a global quota: its allocation over a vrld's clean stop ------------------- */

#define Q_COUNT 20u

static void quota_config(const char *path, const char *segname, const char *host,
			 const char *promfile)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "segment: {name: \"%s\", keys: 1000}\n"
		 "daemon: {metrics_textfile: \"%s\"}\n"
		 "global: {redis: [\"%s\"], host: %s, lease: 250ms, hosts: 2}\n"
		 "limits:\n  - {name: q, kind: quota, count: %u, calendar: once, per: [org], "
		 "scope: global}\n", segname, promfile, redis.spec, host, Q_COUNT);
	vrld_write_file(path, text);
}

/* One acquire on each of @c[0..2); the grants. */
static unsigned quota_round(vrl_client *const c[2])
{
	struct vrl_request rq = { .api = "x", .org = "o" };
	struct vrl_verdict v;
	unsigned n = 0;

	for (int h = 0; h < 2; h++) {
		int rc = vrl_acquire(c[h], &rq, &v);

		assert_true(rc == 0 || rc == VRL_EDENIED);
		n += rc == 0;
	}
	return n;
}

/* The block word of the only key of @segname holds no credit. */
static void credit_drained(const char *segname)
{
	int fd = shm_open(segname, O_RDONLY, 0);
	struct vrl_seg_geometry g;
	struct vrl_seg_view v;
	struct stat st;
	void *base;

	assert_true(fd >= 0 && fstat(fd, &st) == 0);
	base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	assert_true(base != MAP_FAILED);
	assert_int_equal(vrl_seg_validate(base, (uint64_t)st.st_size, &g), 0);
	vrl_seg_view_init(&v, base, &g);
	for (uint64_t i = 0; i < v.nslots; i++)
		assert_int_equal(atomic_load(&v.shares[i].word) & VRL_SHARE_CREDIT_MAX, 0);
	munmap(base, (size_t)st.st_size);
}

/*
 * A global quota of 20 held by two hosts: they grant 20 together, never
 * more, and a vrld stopped cleanly in between (its spare drained and
 * given back to Redis, its allocation kept by the segment) loses none:
 * started again, it goes on from the units its key used.
 */
static void quota_two_hosts(void **state)
{
	vrl_client *c[2];
	uint64_t until;
	unsigned total = 0;
	pid_t a, b;
	char cmd[300];

	(void)state;
	assert_int_equal(vrld_fresh_paths("gvrld-b", dir_b, conf_b, log_b, prom_b, seg_b), 0);
	quota_config(conf, seg, "a", prom);
	quota_config(conf_b, seg_b, "b", prom_b);
	a = start();
	b = vrld_start(conf_b, NULL, log_b);
	assert_true(vrld_wait_ready(seg_b, b, WAIT_NS));
	c[0] = test_open(seg);
	c[1] = test_open(seg_b);
	until = vrl_now_ns() + WAIT_NS;
	while (total < Q_COUNT / 3 && vrl_now_ns() < until) {
		total += quota_round(c);
		rfx_pace(2);
	}
	assert_true(total >= Q_COUNT / 3);
	stop(a);
	credit_drained(seg);
	a = start();
	while (total < Q_COUNT && vrl_now_ns() < until) {
		total += quota_round(c);
		rfx_pace(2);
	}
	if (total != Q_COUNT)
		show_log();
	assert_int_equal(total, Q_COUNT);
	/* the count is spent: nothing more on either host */
	for (int i = 0; i < 50; i++) {
		assert_int_equal(quota_round(c), 0);
		rfx_pace(5);
	}
	vrl_close(c[0]);
	vrl_close(c[1]);
	stop(a);
	stop(b);
	vrl_seg_unlink(seg_b);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir_b);
	assert_int_equal(system(cmd), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(reachable, setup, teardown),
		cmocka_unit_test_setup_teardown(unreachable, setup, teardown),
		cmocka_unit_test_setup_teardown(connection_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(library_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(two_hosts_one_key, setup, teardown),
		cmocka_unit_test_setup_teardown(two_hosts_override_key, setup, teardown),
		cmocka_unit_test_setup_teardown(forget_host, setup, teardown),
		cmocka_unit_test_setup_teardown(cooldown_crosses_hosts, setup, teardown),
		cmocka_unit_test_setup_teardown(lapsed_lease_denies, setup, teardown),
		cmocka_unit_test_setup_teardown(quota_two_hosts, setup, teardown),
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
