/*
 * test_vrlctl.c - vrlctl end to end: each test creates its own segment
 * with a known config (no vrld needed), runs the built vrlctl binary on it
 * and checks its output and exit status.
 *
 * Usage: test_vrlctl PATH-TO-VRLCTL
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "upkeep.h"
#include "events.h"
#include "gcra.h"
#include "label.h"
#include "clock.h"
#include "quota.h"
#include "vrl.h"

#define NS_PER_S UINT64_C(1000000000)
#define OUT_MAX  65536

extern char **environ;

static const char *vrlctl_path;
static char seg_name[VRL_SHM_NAME_MAX];
static struct vrl_seg seg;   /* the test's own mapping, as vrld would hold it */

/* What one run of vrlctl printed and how it ended. */
struct run {
	int status;
	char out[OUT_MAX];
	char err[OUT_MAX];
};

static struct run R;   /* large: static, one run at a time */

/* ---- segment fixture ---------------------------------------------------------- */

static void add_rate(struct vrl_seg_limit *l, const char *name, uint64_t count,
		     uint64_t period_ns, uint64_t burst)
{
	assert_int_equal(vrl_limit_set_rate(l, count, period_ns, burst), 0);
	snprintf(l->name, sizeof(l->name), "%s", name);
}

static void add_per(struct vrl_seg_limit *l, enum vrl_field f, const char *attr)
{
	struct vrl_seg_fieldref *r = &l->per[l->nper++];

	r->field = (uint32_t)f;
	if (attr)
		snprintf(r->attr, sizeof(r->attr), "%s", attr);
}

static void add_match(struct vrl_seg_limit *l, enum vrl_field f, const char *attr,
		      const char *pattern)
{
	struct vrl_seg_match *m = &l->match[l->nmatch++];

	m->ref.field = (uint32_t)f;
	if (attr)
		snprintf(m->ref.attr, sizeof(m->ref.attr), "%s", attr);
	snprintf(m->pattern, sizeof(m->pattern), "%s", pattern);
}

/*
 * The test config:
 *   t.token  1/h, burst 3, per token, for api=test
 *   t.org    100/s, burst 100, per org, every request
 *   t.gate   gate per vehicle, for make=tesla
 *   t.window window of 5 per hour, per user, for api=win
 */
static void build_config(struct vrl_seg_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->source, sizeof(cfg->source), "test_vrlctl");
	add_rate(&cfg->limits[0], "t.token", 1, 3600 * NS_PER_S, 3);
	add_per(&cfg->limits[0], VRL_FIELD_TOKEN, NULL);
	add_match(&cfg->limits[0], VRL_FIELD_API, NULL, "test");
	add_rate(&cfg->limits[1], "t.org", 100, NS_PER_S, 100);
	add_per(&cfg->limits[1], VRL_FIELD_ORG, NULL);
	cfg->limits[1].per[0].flags = VRL_REF_CLEAR;   /* labels show orgs as written */
	snprintf(cfg->limits[2].name, sizeof(cfg->limits[2].name), "t.gate");
	cfg->limits[2].kind = VRL_KIND_GATE;
	add_per(&cfg->limits[2], VRL_FIELD_VEHICLE, NULL);
	cfg->limits[2].per[0].flags = VRL_REF_CLEAR;   /* and vehicles */
	add_match(&cfg->limits[2], VRL_FIELD_ATTR, "make", "tesla");
	snprintf(cfg->limits[3].name, sizeof(cfg->limits[3].name), "t.window");
	cfg->limits[3].kind = VRL_KIND_WINDOW;
	cfg->limits[3].count = 5;
	cfg->limits[3].period_ns = 3600 * NS_PER_S;
	cfg->limits[3].area_keys = 8;
	add_per(&cfg->limits[3], VRL_FIELD_USER, NULL);
	add_match(&cfg->limits[3], VRL_FIELD_API, NULL, "win");
	cfg->nlimits = 4;
}

static int setup(void **state)
{
	static unsigned serial;
	static struct vrl_seg_config cfg;
	struct vrl_seg_spec spec;
	char why[256];

	(void)state;
	snprintf(seg_name, sizeof(seg_name), "/vrl-test-ctl-%d-%u", (int)getpid(), serial++);
	memset(&spec, 0, sizeof(spec));
	snprintf(spec.name, sizeof(spec.name), "%s", seg_name);
	spec.mode = 0600;
	spec.gid = (gid_t)-1;
	spec.keys = 1000;
	build_config(&cfg);
	return vrl_seg_open_or_create(&spec, &cfg, true, &seg, why, sizeof(why)) == 0 ? 0 : -1;
}

static void heartbeat_stop(void);

static int teardown(void **state)
{
	(void)state;
	heartbeat_stop();
	vrl_seg_close(&seg);
	vrl_seg_unlink(seg_name);
	return 0;
}

/* ---- running vrlctl -------------------------------------------------------------- */

static void drain(int fds[2], char *bufs[2])
{
	size_t used[2] = { 0, 0 };
	struct pollfd p[2] = { { .fd = fds[0], .events = POLLIN },
			       { .fd = fds[1], .events = POLLIN } };
	int open_fds = 2;

	/* a minute: only a vrlctl that hangs takes that long */
	while (open_fds > 0 && poll(p, 2, 60000) > 0) {
		for (int i = 0; i < 2; i++) {
			ssize_t n;

			if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			n = read(p[i].fd, bufs[i] + used[i], OUT_MAX - 1 - used[i]);
			if (n > 0) {
				used[i] += (size_t)n;
				continue;
			}
			close(p[i].fd);
			p[i].fd = -1;
			open_fds--;
		}
	}
	bufs[0][used[0]] = '\0';
	bufs[1][used[1]] = '\0';
}

/* Run vrlctl with @args (NULL-terminated), on the test segment if @with_seg. */
static int run_v(bool with_seg, const char *const *args)
{
	const char *argv[32];
	int outp[2], errp[2], n = 0, st;
	posix_spawn_file_actions_t fa;
	pid_t pid;

	argv[n++] = vrlctl_path;
	if (with_seg) {
		argv[n++] = "-s";
		argv[n++] = seg_name;
	}
	while (*args && n < 31)
		argv[n++] = *args++;
	argv[n] = NULL;
	assert_int_equal(pipe(outp), 0);
	assert_int_equal(pipe(errp), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
	posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
	posix_spawn_file_actions_addclose(&fa, outp[0]);
	posix_spawn_file_actions_addclose(&fa, errp[0]);
	assert_int_equal(posix_spawn(&pid, vrlctl_path, &fa, NULL, (char *const *)argv,
				     environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(outp[1]);
	close(errp[1]);
	drain((int[2]){ outp[0], errp[0] }, (char *[2]){ R.out, R.err });
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	R.status = WEXITSTATUS(st);
	return R.status;
}

#define ctl(...) run_v(true, (const char *const[]){ __VA_ARGS__, NULL })
#define ctl_noseg(...) run_v(false, (const char *const[]){ __VA_ARGS__, NULL })

/* Check an exit status, showing what vrlctl printed when it differs. */
static void expect_exit(int got, int want)
{
	if (got != want)
		fail_msg("vrlctl exited %d, expected %d\nstdout:\n%s\nstderr:\n%s", got, want,
			 R.out, R.err);
}

static void assert_has(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("expected \"%s\" in:\n%s", needle, hay);
}

static void assert_lacks(const char *hay, const char *needle)
{
	if (strstr(hay, needle))
		fail_msg("did not expect \"%s\" in:\n%s", needle, hay);
}

/*
 * A structural check of one JSON object: it opens with '{', its strings
 * end, brackets balance outside strings, and a newline follows the close.
 */
static void assert_json_object(const char *s)
{
	int depth = 0;
	bool in_str = false;
	const char *p = s;

	if (*p != '{')
		fail_msg("not a JSON object:\n%s", s);
	for (; *p; p++) {
		if (in_str) {
			if ((unsigned char)*p < 0x20)
				fail_msg("raw control character in a JSON string:\n%s", s);
			if (*p == '\\')
				p++;
			else if (*p == '"')
				in_str = false;
			continue;
		}
		if (*p == '"')
			in_str = true;
		else if (*p == '{' || *p == '[')
			depth++;
		else if ((*p == '}' || *p == ']') && --depth == 0)
			break;
	}
	if (depth != 0 || !*p || strcmp(p + 1, "\n") != 0)
		fail_msg("malformed or trailing JSON:\n%s", s);
}

/* The number after @prefix in @s, as seconds. */
static double number_after(const char *s, const char *prefix)
{
	const char *p = strstr(s, prefix);

	if (!p)
		fail_msg("expected \"%s\" in:\n%s", prefix, s);
	return strtod(p + strlen(prefix), NULL);
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_status_shows_limits(void **state)
{
	(void)state;
	expect_exit(ctl("status"), 1);   /* no vrld serves it */
	assert_has(R.out, seg_name);
	assert_has(R.out, "1000 configured");
	assert_has(R.out, "test_vrlctl");
	assert_has(R.out, "vrld:      not running");
	assert_has(R.out, "LIMIT");
	assert_has(R.out, "t.token");
	assert_has(R.out, "1/h");
	assert_has(R.out, "api=test");
	assert_has(R.out, "100/s");
	assert_has(R.out, "gate");
	assert_has(R.out, "make=tesla");
}

static void test_status_counts(void **state)
{
	(void)state;
	expect_exit(ctl("acquire", "--api", "test", "--token", "a", "--org", "o"), 0);
	expect_exit(ctl("status", "--json"), 1);   /* no vrld serves it */
	assert_json_object(R.out);
	assert_has(R.out, "\"live\":2,");
	assert_has(R.out, "\"inserts\":2,");
	/* the acquiring process detached: its counts are in the retired totals */
	assert_has(R.out, "\"holders\":{\"attached\":0,\"granted\":1,\"denied\":0}");
	assert_has(R.out, "\"name\":\"t.token\"");
	assert_has(R.out, "\"rate\":\"1/h\"");
	assert_has(R.out, "\"per\":[\"token\"]");
	assert_has(R.out, "\"running\":false");
}

static _Atomic int beating;

/* vrld's heartbeat, every 10 ms, while beating. */
static void *heartbeat(void *arg)
{
	struct vrl_seg_header *h = arg;

	while (atomic_load(&beating)) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		atomic_store(&h->daemon_heartbeat_ns, vrl_now_ns());
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static pthread_t beat;

/* Stop the heartbeat thread, also when a failed check left it running
 * (the teardown unmaps the header it writes). */
static void heartbeat_stop(void)
{
	if (atomic_exchange(&beating, 0))
		pthread_join(beat, NULL);
}

static void test_status_daemon(void **state)
{
	struct vrl_seg_header *h = seg.hdr;
	char expect[128];

	(void)state;
	atomic_store(&h->daemon_pid, (int32_t)getpid());
	/* ticks as vrld would, however long vrlctl takes to start; vrlctl runs
	 * once the first tick is in, whenever the thread gets a core */
	atomic_store(&h->daemon_heartbeat_ns, 0);
	atomic_store(&beating, 1);
	assert_int_equal(pthread_create(&beat, NULL, heartbeat, h), 0);
	while (atomic_load(&h->daemon_heartbeat_ns) == 0)
		sched_yield();
	expect_exit(ctl("status"), 0);
	snprintf(expect, sizeof(expect), "vrld:      running pid %d, last tick ", (int)getpid());
	assert_has(R.out, expect);
	assert_true(number_after(R.out, "last tick ") < 3.0);
	expect_exit(ctl("status", "--json"), 0);
	assert_has(R.out, "\"running\":true");
	assert_true(number_after(R.out, "\"heartbeat_age_s\":") < 3.0);
	heartbeat_stop();
}

/* A wait of @total_s seconds set at @t0, read back as @seen seconds now:
 * no more than set, no less than set minus the time gone since. */
static void assert_left(double seen, double total_s, uint64_t t0)
{
	double gone = (double)(vrl_now_ns() - t0) / 1e9;

	if (seen > total_s + 0.001 || seen < total_s - gone - 0.001)
		fail_msg("%.3f s left of %.3f s set %.3f s ago", seen, total_s, gone);
}

static void test_acquire_until_denied(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		expect_exit(ctl("acquire", "--api", "test", "--token", "alice"), 0);
		assert_has(R.out, "granted by t.token");
	}
	expect_exit(ctl("acquire", "--api", "test", "--token", "alice"), 1);
	assert_has(R.out, "denied by t.token, retry after ");
	assert_true(number_after(R.out, "retry after ") > 3500.0);
	expect_exit(ctl("acquire", "--api", "test", "--token", "alice", "--json"), 1);
	assert_json_object(R.out);
	assert_has(R.out, "\"granted\":false");
	assert_has(R.out, "\"limit\":\"t.token\"");
	assert_true(number_after(R.out, "\"retry_after_s\":") > 3500.0);
	/* another token has its own bucket */
	expect_exit(ctl("acquire", "--api", "test", "--token", "bob", "--json"), 0);
	assert_json_object(R.out);
	assert_has(R.out, "\"granted\":true");
}

/* A request no limit matches: refused under unmatched: deny, granted with a
 * warning under warn, and counted by api in status either way. */
static void test_acquire_unmatched(void **state)
{
	static struct vrl_seg_config cfg;

	(void)state;
	build_config(&cfg);
	cfg.nlimits = 1;             /* t.token alone: api=test */
	cfg.flags = VRL_CFG_UNMATCHED_DENY;
	assert_int_equal(vrl_seg_publish(&seg, &cfg), 0);
	expect_exit(ctl("acquire", "--api", "typo"), 2);
	assert_has(R.err, "no limit matches api \"typo\"");
	assert_has(R.err, "unmatched: policy is deny");
	assert_true(strstr(R.out, "granted") == NULL);
	expect_exit(ctl("acquire", "--api", "typo", "--json"), 2);
	assert_has(R.out, "\"error\":\"VRL_EUNMATCHED\"");
	expect_exit(ctl("acquire", "--api", "test", "--token", "a"), 0);

	cfg.flags = VRL_CFG_UNMATCHED_WARN;
	assert_int_equal(vrl_seg_publish(&seg, &cfg), 0);
	expect_exit(ctl("acquire", "--api", "typo"), 0);
	assert_has(R.out, "granted: no limit matches the request (unmatched: warn");
	assert_has(R.err, "warning: no limit matches api \"typo\"");
	expect_exit(ctl("acquire", "--api", "other", "--json"), 0);
	assert_has(R.out, "\"unmatched\":true");

	expect_exit(ctl("status"), 1);   /* no vrld serves it */
	assert_has(R.out, "unmatched: warn; 4 requests matched no limit: typo 3, other 1");
	expect_exit(ctl("status", "--json"), 1);
	assert_json_object(R.out);
	assert_has(R.out, "\"unmatched\":{\"policy\":\"warn\",\"apis\":[");
	assert_has(R.out, "{\"api\":\"typo\",\"count\":3}");
}

static void test_acquire_cost_and_wait(void **state)
{
	uint64_t t0;
	int rc;

	(void)state;
	expect_exit(ctl("acquire", "--org", "w", "--cost", "101"), 1);
	assert_has(R.out, "denied by t.org, retry after never");
	t0 = vrl_now_ns();
	expect_exit(ctl("acquire", "--org", "w", "--cost", "100"), 0);
	/* 100/s: 50 more come back after 0.5 s, not before */
	rc = ctl("acquire", "--org", "w", "--cost", "50");
	if (rc == 0)
		assert_true(vrl_now_ns() - t0 >= NS_PER_S / 2);
	else
		expect_exit(rc, 1);
	expect_exit(ctl("acquire", "--org", "w", "--cost", "50", "--wait", "5s"), 0);
	assert_has(R.out, "granted by t.org");
}

/* The label of a hidden value @v (label.h); four kept at once. */
static const char *hashed(const char *v)
{
	static char h[4][VRL_LABEL_HASH_LEN + 1];
	static unsigned next;
	char *out = h[next++ % 4];

	vrl_label_hash(v, strlen(v), out);
	return out;
}

static void test_json_escapes(void **state)
{
	(void)state;
	/* orgs are shown as written (t.org), so the label holds the bytes */
	expect_exit(ctl("acquire", "--json", "--org", "q\"\\\n\x01"), 0);
	assert_json_object(R.out);
	expect_exit(ctl("keys", "--json", "--limit", "t.org"), 0);
	assert_json_object(R.out);
	assert_has(R.out, "\"label\":\"q\\\"\\\\\\n\\u0001\"");
	expect_exit(ctl("keys", "--limit", "t.org"), 0);
	assert_has(R.out, "q\"\\??");   /* control characters never reach a terminal */
}

static void test_cooldown_and_reset(void **state)
{
	char want[128];
	uint64_t t0;

	(void)state;
	expect_exit(ctl("acquire", "--api", "test", "--token", "bob"), 0);
	t0 = vrl_now_ns();
	expect_exit(ctl("cooldown", "t.token", "30s", "--api", "test", "--token", "bob"), 0);
	snprintf(want, sizeof(want), "closed t.token \"%s\" for 30.000 s", hashed("bob"));
	assert_has(R.out, want);
	expect_exit(ctl("acquire", "--api", "test", "--token", "bob"), 1);
	assert_has(R.out, "denied by t.token, retry after ");
	assert_left(number_after(R.out, "retry after "), 30, t0);
	assert_has(R.out, "(cooldown)");
	expect_exit(ctl("acquire", "--api", "test", "--token", "bob", "--json"), 1);
	assert_has(R.out, "\"cooldown\":true");
	expect_exit(ctl("show", "t.token", "--api", "test", "--token", "bob"), 0);
	assert_left(number_after(R.out, "closed for "), 30, t0);
	expect_exit(ctl("reset", "t.token", "--api", "test", "--token", "bob"), 0);
	snprintf(want, sizeof(want), "reset t.token \"%s\"", hashed("bob"));
	assert_has(R.out, want);
	assert_lacks(R.out, "bob");
	expect_exit(ctl("acquire", "--api", "test", "--token", "bob"), 0);
	assert_has(R.out, "granted by t.token: 2 of 3 left");
}

static void test_cooldown_all_and_gate(void **state)
{
	uint64_t t0 = vrl_now_ns();

	(void)state;
	expect_exit(ctl("cooldown", "--all", "1.5min", "--api", "test", "--token", "c",
			     "--org", "o1", "--vehicle", "v1", "--attr", "make=tesla", "--json"), 0);
	assert_json_object(R.out);
	assert_has(R.out, "\"duration_s\":90.000000000");
	assert_has(R.out, "\"limit\":\"t.token\"");
	assert_has(R.out, "\"limit\":\"t.org\"");
	assert_has(R.out, "\"limit\":\"t.gate\"");
	expect_exit(ctl("acquire", "--org", "o2", "--vehicle", "v1", "--attr", "make=tesla"), 1);
	assert_has(R.out, "denied by t.gate, retry after ");
	assert_left(number_after(R.out, "retry after "), 90, t0);
	expect_exit(ctl("keys", "--limit", "t.gate"), 0);
	assert_has(R.out, "closed");
	assert_has(R.out, "v1");
	expect_exit(ctl("reset", "--all", "--vehicle", "v1", "--attr", "make=tesla"), 0);
	expect_exit(ctl("acquire", "--org", "o2", "--vehicle", "v1", "--attr", "make=tesla"), 0);
}

static void test_keys_lists_labels(void **state)
{
	char want[128];

	(void)state;
	expect_exit(ctl("keys"), 0);
	assert_has(R.out, "no live keys");
	expect_exit(ctl("acquire", "--api", "test", "--token", "alice", "--org", "acme"), 0);
	expect_exit(ctl("acquire", "--api", "test", "--token", "alice", "--org", "acme"), 0);
	expect_exit(ctl("keys"), 0);
	assert_has(R.out, "LABEL");
	/* a token is shown as its hash, an org as written */
	assert_has(R.out, hashed("alice"));
	assert_lacks(R.out, "alice");
	assert_has(R.out, "acme");
	/* fewest permits left first: alice has 1 of 3, acme 98 of 100 */
	assert_true(strstr(R.out, hashed("alice")) < strstr(R.out, "acme"));
	expect_exit(ctl("keys", "--limit", "t.org"), 0);
	assert_has(R.out, "acme");
	assert_lacks(R.out, hashed("alice"));
	expect_exit(ctl("keys", "--top", "1", "--json"), 0);
	assert_json_object(R.out);
	assert_has(R.out, "\"count\":1,");
	snprintf(want, sizeof(want), "\"label\":\"%s\"", hashed("alice"));
	assert_has(R.out, want);
	assert_lacks(R.out, "alice");
	assert_has(R.out, "\"available\":1,\"burst\":3");
	expect_exit(ctl("keys", "--limit", "nope"), 2);
	assert_has(R.err, "no limit named nope");
}

static void test_show(void **state)
{
	(void)state;
	expect_exit(ctl("show", "t.token", "--api", "test", "--token", "dave"), 1);
	assert_has(R.out, "none: the key has no slot");
	expect_exit(ctl("acquire", "--api", "test", "--token", "dave"), 0);
	expect_exit(ctl("show", "t.token", "--api", "test", "--token", "dave"), 0);
	assert_has(R.out, "slot:");
	assert_has(R.out, "available: 2 of 3");
	assert_has(R.out, "(open)");
	expect_exit(ctl("show", "t.token", "--json", "--api", "test", "--token", "dave"), 0);
	assert_json_object(R.out);
	assert_has(R.out, "\"found\":true");
	assert_has(R.out, "\"matches\":true");
	assert_has(R.out, "\"available\":2");
	expect_exit(ctl("show", "nope"), 2);
}

/* A window key shows used of limit in the window. */
static void test_show_window(void **state)
{
	(void)state;
	expect_exit(ctl("acquire", "--api", "win", "--user", "eve", "--cost", "2"), 0);
	assert_has(R.out, "granted by t.window");
	expect_exit(ctl("show", "t.window", "--api", "win", "--user", "eve"), 0);
	assert_has(R.out, "(window)");
	assert_has(R.out, "used:      2 of 5 in the last ");
	assert_has(R.out, "available: 3 of 5");
	expect_exit(ctl("show", "t.window", "--json", "--api", "win", "--user", "eve"), 0);
	assert_json_object(R.out);
	assert_has(R.out, "\"used\":2,\"count\":5");
	expect_exit(ctl("keys", "--limit", "t.window", "--json"), 0);
	assert_json_object(R.out);
	assert_has(R.out, "\"kind\":\"window\"");
	assert_has(R.out, "\"available\":3,\"burst\":5");
	expect_exit(ctl("acquire", "--api", "win", "--user", "eve", "--cost", "4"), 1);
	assert_has(R.out, "denied by t.window");
}

/* Each kind describes its limit and its keys: status's rows and JSON
 * figures, show's state word and JSON, as a reader relies on them. */
static void test_kind_descriptions(void **state)
{
	(void)state;
	expect_exit(ctl("acquire", "--api", "win", "--user", "eve", "--cost", "2"), 0);
	expect_exit(ctl("acquire", "--api", "test", "--token", "dave"), 0);
	expect_exit(ctl("status", "--json"), 1);   /* no vrld serves it */
	assert_has(R.out, "\"name\":\"t.token\",\"kind\":\"rate\",\"shadow\":false,"
		   "\"rate\":\"1/h\",\"count\":1,\"period_ns\":3600000000000,\"burst\":3,"
		   "\"per\":");
	assert_has(R.out, "\"name\":\"t.gate\",\"kind\":\"gate\",\"shadow\":false,\"per\":");
	assert_has(R.out, "\"name\":\"t.window\",\"kind\":\"window\",\"shadow\":false,"
		   "\"limit\":5,\"window_ns\":3600000000000,\"keys\":8,\"per\":");
	expect_exit(ctl("status"), 1);
	assert_has(R.out, "t.token   rate    1/h        3  token");
	assert_has(R.out, "t.gate    gate    -          -  vehicle");
	assert_has(R.out, "t.window  window  5/h        -  user");
	expect_exit(ctl("show", "t.window", "--api", "win", "--user", "eve"), 0);
	assert_has(R.out, " (hint 2, version 1)\nused:      2 of 5 in the last 3600.000 s\n");
	expect_exit(ctl("show", "t.window", "--json", "--api", "win", "--user", "eve"), 0);
	assert_has(R.out, "\"cooldown\":0,\"open\":true,");
	assert_lacks(R.out, "tat_rel_ns");     /* a ring has no arrival time */
	assert_has(R.out, "\"cooldown_s\":0.000000000,\"used\":2,\"count\":5,"
		   "\"window_ns\":3600000000000,\"available\":3,\"burst\":5,\"reset_s\":");
	expect_exit(ctl("show", "t.token", "--api", "test", "--token", "dave"), 0);
	assert_has(R.out, " (TAT now + ");
	expect_exit(ctl("show", "t.token", "--json", "--api", "test", "--token", "dave"), 0);
	assert_has(R.out, "\"cooldown\":0,\"tat_rel_ns\":");
	assert_has(R.out, "\"cooldown_s\":0.000000000,\"available\":2,\"burst\":3,"
		   "\"reset_s\":");
}

/* Quota and slots keys show used/limit and overage; a quota its period end. */
static void quota_periods_by_date(const struct vrl_seg_limit *q);

static void test_quota_and_slots_keys(void **state)
{
	static struct vrl_seg_config cfg;
	struct vrl_seg_limit *q = &cfg.limits[0], *sl = &cfg.limits[1];

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	snprintf(q->name, sizeof(q->name), "t.quota");
	q->kind = VRL_KIND_QUOTA;
	q->count = 3;
	q->calendar = VRL_CAL_MONTH;
	q->flags = VRL_LIMIT_SOFT;
	snprintf(q->pool, sizeof(q->pool), "t.shared");
	add_per(q, VRL_FIELD_VEHICLE, NULL);
	add_match(q, VRL_FIELD_API, NULL, "q");
	snprintf(sl->name, sizeof(sl->name), "t.slots");
	sl->kind = VRL_KIND_SLOTS;
	sl->count = 2;
	sl->flags = VRL_LIMIT_PERSIST;
	add_match(sl, VRL_FIELD_API, NULL, "conn");
	cfg.nlimits = 2;
	vrl_seg_publish(&seg, &cfg);
	expect_exit(ctl("acquire", "--api", "q", "--vehicle", "V1", "--cost", "3"), 0);
	assert_has(R.out, "granted by t.quota: 0 of 3 left, resets in");
	expect_exit(ctl("acquire", "--api", "q", "--vehicle", "V1", "--cost", "2"), 0);
	assert_has(R.out, "granted by t.quota: 2 past its 3 (overage)");
	expect_exit(ctl("acquire", "--api", "conn"), 0);
	assert_has(R.out, "1 of 2 left (held until released)");
	expect_exit(ctl("keys"), 0);
	assert_has(R.out, "5/3 +2 over");
	assert_has(R.out, "1/2");
	expect_exit(ctl("show", "t.quota", "--api", "q", "--vehicle", "V1"), 0);
	assert_has(R.out, "t.quota (quota)");
	assert_has(R.out, "5 counted");
	assert_has(R.out, "used:      5/3 +2 over, 0 left, resets in");
	expect_exit(ctl("--json", "keys"), 0);
	assert_json_object(R.out);
	assert_has(R.out, "\"kind\":\"quota\",\"open\":true,\"available\":0,\"used\":5,"
		   "\"count\":3,\"overage\":2");
	expect_exit(ctl("status"), 1);   /* no vrld serves it */
	assert_has(R.out, "match api=q; overage");
	assert_has(R.out, "3/month");
	assert_has(R.out, "match api=conn; persistent");
	assert_has(R.out, "2 held");
	expect_exit(ctl("show", "t.slots", "--api", "conn"), 0);
	assert_has(R.out, "state:     1 (held)\nused:      1/2 held, 1 free\n");
	expect_exit(ctl("show", "t.slots", "--json", "--api", "conn"), 0);
	assert_has(R.out, "\"available\":1,\"used\":1,\"count\":2,\"open\":true,");
	assert_lacks(R.out, "tat_rel_ns");     /* nor a held count */
	expect_exit(ctl("show", "t.quota", "--json", "--api", "q", "--vehicle", "V1"), 0);
	assert_has(R.out, "\"count\":3,\"overage\":2,\"reset_s\":");
	assert_has(R.out, "\"period\":\"");
	expect_exit(ctl("--json", "keys"), 0);
	assert_has(R.out, "\"kind\":\"slots\",\"open\":true,\"available\":1,\"used\":1,"
		   "\"count\":2,\"cooldown_s\":");
	expect_exit(ctl("--json", "status"), 1);
	assert_has(R.out, "\"kind\":\"quota\",\"shadow\":false,\"count\":3,"
		   "\"pool\":\"t.shared\",\"per\":");
	assert_has(R.out, "\"kind\":\"slots\",\"shadow\":false,\"count\":2,\"per\":");
	expect_exit(ctl("status"), 1);
	assert_has(R.out, "match api=q; overage; pool t.shared\n");
	quota_periods_by_date(q);
}

/* A quota's period shows as the month it is (show, events), not its number. */
static void quota_periods_by_date(const struct vrl_seg_limit *q)
{
	struct vrl_alert_payload p;
	uint64_t now = vrl_wall_ns(), id, start;
	char month[16], want[64];
	time_t t;
	struct tm tm;

	assert_int_equal(vrl_quota_period(q, now, &id, &start, NULL), 0);
	t = (time_t)(start / NS_PER_S);
	gmtime_r(&t, &tm);
	strftime(month, sizeof(month), "%Y-%m", &tm);
	expect_exit(ctl("show", "t.quota", "--api", "q", "--vehicle", "V1"), 0);
	snprintf(want, sizeof(want), "(period %s, 5 counted)", month);
	assert_has(R.out, want);
	memset(&p, 0, sizeof(p));
	snprintf(p.name, sizeof(p.name), "t.quota");
	snprintf(p.label, sizeof(p.label), "V1");
	p.threshold = 100;
	p.used = 3;
	p.count = 3;
	p.period = id;
	p.at_realtime_ns = now;
	vrl_alert_emit(&seg.view, &p);
	expect_exit(ctl("events"), 0);
	snprintf(want, sizeof(want), " %s\n", month);   /* PERIOD, the last column */
	assert_has(R.out, want);
	expect_exit(ctl("--json", "events"), 0);
	snprintf(want, sizeof(want), "\"period_start\":\"%s\"", month);
	assert_has(R.out, want);
}

static void test_missing_segment(void **state)
{
	char expect[256];

	(void)state;
	expect_exit(ctl_noseg("-s", "/vrl-test-ctl-missing", "status"), 2);
	snprintf(expect, sizeof(expect), "vrlctl: segment /vrl-test-ctl-missing: no vrl segment "
		 "by that name: is vrld running, with the same segment name?");
	assert_has(R.err, expect);
	expect_exit(ctl_noseg("-s", "/vrl-test-ctl-missing", "acquire", "--json"), 2);
	assert_json_object(R.out);
	assert_has(R.out, "\"error\":\"VRL_ENOSEG\"");
	expect_exit(ctl_noseg("-s", "bad name", "status"), 2);
	assert_has(R.err, "not a valid segment name");
}

static void test_segment_from_env(void **state)
{
	(void)state;
	setenv("VRL_SEGMENT", seg_name, 1);
	expect_exit(ctl_noseg("status"), 1);   /* no vrld serves it */
	unsetenv("VRL_SEGMENT");
	assert_has(R.out, seg_name);
}

static void test_usage_errors(void **state)
{
	(void)state;
	expect_exit(ctl_noseg("--help"), 0);
	assert_has(R.out, "usage: vrlctl");
	expect_exit(ctl_noseg("--version"), 0);
	assert_has(R.out, "vrlctl ");
	expect_exit(ctl_noseg("keys", "--top=x"), 2);
	assert_has(R.err, "bad value for --top: x");
	expect_exit(ctl_noseg("status", "--json=1"), 2);
	assert_has(R.err, "option --json takes no value");
	expect_exit(ctl_noseg("frobnicate"), 2);
	assert_has(R.err, "usage: vrlctl");
	expect_exit(ctl("acquire", "--limit", "x"), 2);
	assert_has(R.err, "usage: vrlctl [-s NAME] [--json] acquire");
	expect_exit(ctl("cooldown", "t.token", "soon"), 2);
	assert_has(R.err, "DURATION looks like");
	expect_exit(ctl("acquire", "--cost", "0"), 2);
	expect_exit(ctl("acquire", "--token"), 2);
	expect_exit(ctl("show"), 2);
	expect_exit(ctl("reset", "--all", "t.token"), 2);
	expect_exit(ctl("reset", "nope", "--token", "x"), 2);
	assert_has(R.err, "no limit named nope");
}

/* events: the ring read without draining it, empty or not. */
static void test_events(void **state)
{
	struct vrl_alert_payload p;

	(void)state;
	expect_exit(ctl("events"), 0);
	assert_has(R.out, "no alert events");
	assert_has(R.out, "(0 produced, 0 drained by vrld, 0 lost)");
	expect_exit(ctl("--json", "events"), 0);
	assert_json_object(R.out);
	assert_has(R.out, "\"events\":[]");

	memset(&p, 0, sizeof(p));
	snprintf(p.name, sizeof(p.name), "t.token");
	snprintf(p.label, sizeof(p.label), "tok\"1");
	p.threshold = 90;
	p.used = 900;
	p.count = 1000;
	p.period = 3;
	vrl_alert_emit(&seg.view, &p);
	expect_exit(ctl("events"), 0);
	assert_has(R.out, "t.token");
	assert_has(R.out, "90%");
	assert_has(R.out, "(1 produced, 0 drained by vrld, 0 lost)");
	expect_exit(ctl("--json", "events"), 0);
	assert_json_object(R.out);
	assert_has(R.out, "\"key\":\"tok\\\"1\",\"threshold\":90,\"used\":900");
	expect_exit(ctl("events", "extra"), 2);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_status_shows_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_daemon, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acquire_until_denied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acquire_unmatched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acquire_cost_and_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_escapes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cooldown_and_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cooldown_all_and_gate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_lists_labels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_show, setup, teardown),
		cmocka_unit_test_setup_teardown(test_show_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kind_descriptions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_and_slots_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_segment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_from_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usage_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events, setup, teardown),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH-TO-VRLCTL\n", argv[0]);
		return 2;
	}
	vrlctl_path = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
