/*
 * test_vrlctl_global.c - `vrlctl global` on a segment whose global status
 * area this test publishes as vrld's tick does (vrld_gstatus_publish,
 * with endpoint and key rows made up here): what an operator relies on
 * reading. Each key's limit, its label (a token only as its hash), its
 * share, expiry, renewals and status; each endpoint up or down with its
 * error; the fallback line; numbers as JSON numbers; a table within 100
 * columns; exit 0 while vrld serves, 1 when it does not, when nothing is
 * published, or when the config has no global: section. And the
 * per-limit metric families vrld adds from the same rows.
 *
 * usage: test_vrlctl_global VRLCTL
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"
#include "../run_cmd.h"
#include "clock.h"
#include "gpublish.h"
#include "label.h"

#define OUT_MAX 65536
#define TOKEN   "sk-live-4f9a0c11d2e3"      /* a secret: never printed */

static const char *vrlctl_path;
static char seg_name[VRL_SHM_NAME_MAX];
static struct vrl_seg seg;
static struct vrld_gstatus gs;
static char out[OUT_MAX];
static unsigned serial;

static int make_segment(bool global, bool global_limit)
{
	static struct vrl_seg_config cfg;
	struct vrl_global_settings s = { .on = global, .lease_ns = NS_PER_S, .hosts = 3 };
	char tag[32];

	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.source, sizeof(cfg.source), "test_vrlctl_global");
	test_add_rate(&cfg, "g.rate", NULL, 150, NS_PER_S, 6, (const int[]){ VRL_FIELD_TOKEN, -1 });
	if (global)
		cfg.flags |= VRL_CFG_GLOBAL;
	if (global_limit)
		cfg.limits[0].flags |= VRL_LIMIT_GLOBAL;
	snprintf(tag, sizeof(tag), "ctlg%u", serial++);
	test_segment(tag, &cfg, 1000, &seg, seg_name);
	snprintf(s.host, sizeof(s.host), "web-1");
	memset(&gs, 0, sizeof(gs));
	vrld_gstatus_attach(&gs, &seg, &s);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	return make_segment(true, false);
}

/* g.rate is global: its keys take from a share word vrld has not filled */
static int setup_global_limit(void **state)
{
	(void)state;
	return make_segment(true, true);
}

static int setup_plain(void **state)
{
	(void)state;
	return make_segment(false, false);
}

static void heartbeat_stop(void);

static int teardown(void **state)
{
	(void)state;
	heartbeat_stop();
	test_segment_drop(&seg, seg_name);
	return 0;
}

/* ---- vrld, as far as vrlctl sees it: its pid and a heartbeat ------------------ */

static _Atomic int beating;
static pthread_t beat;

static void *heartbeat(void *arg)
{
	struct vrl_seg_header *h = arg;

	while (atomic_load(&beating)) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		atomic_store(&h->daemon_heartbeat_ns, vrl_mono_ns());
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void heartbeat_start(void)
{
	atomic_store(&seg.hdr->daemon_pid, (int32_t)getpid());
	atomic_store(&seg.hdr->daemon_heartbeat_ns, 0);
	atomic_store(&beating, 1);
	assert_int_equal(pthread_create(&beat, NULL, heartbeat, seg.hdr), 0);
	while (atomic_load(&seg.hdr->daemon_heartbeat_ns) == 0)
		sched_yield();
}

static void heartbeat_stop(void)
{
	if (atomic_exchange(&beating, 0))
		pthread_join(beat, NULL);
}

/* ---- running vrlctl -------------------------------------------------------------- */

/* Run `vrlctl -s SEG @args` (stderr too when @with_err); its exit status.
 * A vrlctl killed by a signal fails the test. */
static int ctl(const char *args, bool with_err)
{
	return run_vrlctl(vrlctl_path, seg_name, args, with_err, out, sizeof(out));
}

static void expect_exit(int got, int want)
{
	if (got != want)
		fail_msg("vrlctl exited %d, expected %d:\n%s", got, want, out);
}

static void assert_has(const char *needle)
{
	if (!strstr(out, needle))
		fail_msg("expected \"%s\" in:\n%s", needle, out);
}

static void assert_lacks(const char *needle)
{
	if (strstr(out, needle))
		fail_msg("did not expect \"%s\" in:\n%s", needle, out);
}

/* ---- what the test publishes ---------------------------------------------------- */

static struct vrl_global_status st;
static struct vrld_gstatus_row rows[4];
static char token_label[VRL_LABEL_MAX];
static const char *long_limit;  /* test_text: a limit name as long as allowed */

static void fill(uint64_t now)
{
	const struct vrl_seg_limit *l = &seg.cfg->limits[0];
	const char *parts[] = { TOKEN };

	memset(&st, 0, sizeof(st));
	st.rounds = 42;
	st.keys = 3;
	st.partitioned = 1;
	st.nendpoints = 2;
	snprintf(st.ep[0].name, sizeof(st.ep[0].name), "unix:/run/redis/redis.sock");
	st.ep[0].up = true;
	st.ep[0].rtt_last_ns = 420000;
	st.ep[0].rtt_ewma_ns = 380000;
	st.ep[0].rtt_max_ns = 2500000;
	st.ep[0].calls = 17;
	st.ep[0].keys = 3;
	snprintf(st.ep[0].epoch, sizeof(st.ep[0].epoch), "e1f00d");
	snprintf(st.ep[1].name, sizeof(st.ep[1].name), "10.0.0.7:6379");
	st.ep[1].down_since = now - 2 * NS_PER_S;
	st.ep[1].failures = 5;
	snprintf(st.ep[1].error, sizeof(st.ep[1].error), "connect: Connection refused");

	memset(rows, 0, sizeof(rows));
	vrl_label_build(l, parts, token_label);
	rows[0] = (struct vrld_gstatus_row){
		.kind = VRL_GLOBAL_RATE, .limit = "g.rate", .label = token_label,
		.count = 150, .period_ns = NS_PER_S,
		.ks = { .status = VRL_GLOBAL_OK, .share = { .rate = 49500000, .burst = 2 },
			.expires = now + 30 * NS_PER_S, .renewals = 12, .endpoint = 0 },
	};
	rows[1] = (struct vrld_gstatus_row){
		.kind = VRL_GLOBAL_WINDOW, .limit = "g.window", .label = "acme",
		.count = 1000, .period_ns = 60 * NS_PER_S,
		.ks = { .status = VRL_GLOBAL_PARTITIONED, .share = { .count = 250 },
			.expires = now - NS_PER_S, .renewals = 3, .endpoint = 1 },
	};
	rows[2] = (struct vrld_gstatus_row){
		.kind = VRL_GLOBAL_QUOTA, .limit = "g.quota", .label = "acme",
		.count = 5000,
		.ks = { .status = VRL_GLOBAL_SEEDING, .share = { .count = 400 },
			.expires = UINT64_MAX, .renewals = 7, .endpoint = 0 },
	};
	rows[3] = rows[0];      /* a second key of g.rate */
	rows[3].label = "#00000000";
	rows[3].ks.share.rate = 100500000;
	if (long_limit)
		rows[2].limit = long_limit;
}

static void publish(void)
{
	uint64_t now = vrl_mono_ns();

	fill(now);
	vrld_gstatus_publish(&gs, &st, rows, 4, now);
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_json(void **state)
{
	(void)state;
	publish();
	heartbeat_start();
	expect_exit(ctl("--json global", false), 0);
	assert_has("\"global\":true");
	assert_has("\"daemon_running\":true");
	assert_has("\"host\":\"web-1\"");
	assert_has("\"lease_s\":1.000000000");
	assert_has("\"on_partition\":\"deny\"");
	assert_has("\"rounds\":42");
	assert_has("\"key_count\":4");
	assert_has("\"fallback\":true");
	/* endpoints: up with its times, down with its error */
	assert_has("{\"name\":\"unix:/run/redis/redis.sock\",\"up\":true,\"down_for_s\":null,"
		   "\"rtt_last_s\":0.000420000,\"rtt_avg_s\":0.000380000,\"rtt_max_s\":0.002500000,"
		   "\"epoch\":\"e1f00d\",\"lost\":false,\"fence_left_s\":0.000000000,\"calls\":17,"
		   "\"failures\":0,\"keys\":3,\"error\":null}");
	assert_has("\"name\":\"10.0.0.7:6379\",\"up\":false,\"down_for_s\":");
	assert_has("\"failures\":5,\"keys\":0,\"error\":\"connect: Connection refused\"");
	/* keys: numbers as numbers; a token only as its hash */
	assert_has("{\"limit\":\"g.rate\",\"key\":\"");
	assert_has(token_label);
	assert_true(token_label[0] == '#');
	assert_lacks(TOKEN);
	assert_has("\"kind\":\"rate\",\"share\":{\"rate\":49.500000,\"burst\":2},"
		   "\"expires_in_ms\":");
	assert_has("\"renewals\":12,\"status\":\"ok\",\"endpoint\":\"unix:/run/redis/redis.sock\"");
	assert_has("{\"limit\":\"g.window\",\"key\":\"acme\",\"kind\":\"window\","
		   "\"share\":{\"count\":250},\"expires_in_ms\":-");
	assert_has("\"status\":\"partitioned\",\"endpoint\":\"10.0.0.7:6379\"");
	assert_has("\"kind\":\"quota\",\"share\":{\"count\":400},\"expires_in_ms\":null,"
		   "\"renewals\":7,\"status\":\"seeding\"");
	heartbeat_stop();
}

static void test_text(void **state)
{
	char *line, *save;

	(void)state;
	long_limit = "quota.of.a.provider.whose.limit.names.run.long.0123456789abcdef";
	assert_int_equal(strlen(long_limit), VRL_NAME_MAX - 1);
	publish();
	long_limit = NULL;
	heartbeat_start();
	expect_exit(ctl("global", false), 0);
	assert_has("host web-1, lease 1.0s, on_partition deny");
	assert_has("1 of 2 endpoints up; 42 rounds; 4 global keys");
	assert_has("fallback:  yes: 1 key on the on_partition share (deny)");
	assert_has("vrld:      serving");
	assert_has("error: connect: Connection refused");
	assert_has("epoch e1f00d");
	assert_has("49.5/s burst 2");
	assert_has("100.5/s burst 2");
	assert_has("partitioned");
	assert_has("expired");
	assert_has(token_label);
	assert_lacks(TOKEN);
	heartbeat_stop();
	/* not a terminal: every line within 100 columns */
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strlen(line) > 100)
			fail_msg("a line of %zu columns:\n%s", strlen(line), line);
}

/* No vrld serves the segment: the last figures all the same, and exit 1. */
static void test_not_serving(void **state)
{
	(void)state;
	publish();
	expect_exit(ctl("global", false), 1);
	assert_has("not serving (figures as last published)");
	expect_exit(ctl("--json global", false), 1);
	assert_has("\"daemon_running\":false");
}

/* An acquire denied for want of this host's share says so, and its JSON
 * too: the limit itself has room, the share has none. */
static void test_acquire_share_denial(void **state)
{
	(void)state;
	expect_exit(ctl("acquire --token t1", true), 1);
	assert_has("denied by g.rate, retry after ");
	assert_has("(this host's share of the global limit)");
	expect_exit(ctl("--json acquire --token t1", false), 1);
	assert_has("\"share\":true");
}

/* An area vrld has not written yet. */
static void test_not_published(void **state)
{
	(void)state;
	heartbeat_start();
	expect_exit(ctl("global", false), 1);
	assert_has("vrld has not published its global status yet");
	heartbeat_stop();
}

/* A config without global: says so, and exits 1. */
static void test_no_global_section(void **state)
{
	(void)state;
	assert_int_equal(seg.geom.gstatus_off, 0);
	assert_int_equal(seg.hdr->gstatus_off, 0);
	heartbeat_start();
	expect_exit(ctl("global", false), 1);
	assert_has("vrld has no global: section");
	expect_exit(ctl("--json global", false), 1);
	assert_has("\"global\":false");
	heartbeat_stop();
}

/* More keys than rows: the first shown, the rest counted and said. */
static void test_more_keys_than_rows(void **state)
{
	size_t n = VRL_GSTATUS_KEYS + 5;
	struct vrld_gstatus_row *many = calloc(n, sizeof(*many));
	uint64_t now = vrl_mono_ns();

	(void)state;
	assert_non_null(many);
	fill(now);
	for (size_t i = 0; i < n; i++)
		many[i] = rows[2];
	vrld_gstatus_publish(&gs, &st, many, n, now);
	free(many);
	heartbeat_start();
	expect_exit(ctl("global | tail -n 3", false), 0);
	assert_has("(5 more global keys not shown)");
	heartbeat_stop();
}

/* The per-limit families: keys and mean share ratio, never a key. */
static void test_metrics(void **state)
{
	char page[4096];
	size_t need;

	(void)state;
	publish();
	need = vrld_gstatus_metrics(&gs, page, sizeof(page));
	assert_true(need < sizeof(page));
	assert_int_equal(strlen(page), need);
	snprintf(out, sizeof(out), "%s", page);
	assert_has("# TYPE vrl_global_keys gauge\n");
	assert_has("vrl_global_keys{limit=\"g.rate\"} 2\n");
	assert_has("vrl_global_keys{limit=\"g.window\"} 1\n");
	/* (49.5 + 100.5) / 150 / 2 keys */
	assert_has("vrl_global_share_ratio{limit=\"g.rate\"} 0.500000\n");
	assert_has("vrl_global_share_ratio{limit=\"g.window\"} 0.250000\n");
	assert_has("vrl_global_share_ratio{limit=\"g.quota\"} 0.080000\n");
	assert_lacks("acme");
	assert_lacks(token_label);
	/* asked with too little room: the length it needs, as snprintf */
	assert_int_equal(vrld_gstatus_metrics(&gs, page, 10), need);
	assert_int_equal(strlen(page), 9);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_serving, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_published, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acquire_share_denial, setup_global_limit,
						teardown),
		cmocka_unit_test_setup_teardown(test_no_global_section, setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_more_keys_than_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s VRLCTL\n", argv[0]);
		return 2;
	}
	vrlctl_path = argv[1];
	return cmocka_run_group_tests_name("vrlctl_global", tests, NULL, NULL);
}
