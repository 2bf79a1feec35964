/*
 * test_config.c - the YAML config compiler: every good form, every kind of
 * bad config (with the line and field its message must name), the built-in
 * presets, durations and rates.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "adapt.h"

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vrl_internal.h"
#include "config.h"

#define NS_PER_S UINT64_C(1000000000) /* nanoseconds in a second */

static struct vrl_daemon_config cfg; /* large: kept off the stack */

static int parse(const char *yaml, char err[VRL_CONFIG_ERR_MAX])
{
	err[0] = '\0';
	return vrl_config_parse(yaml, strlen(yaml), "vrl.yaml", &cfg, err);
}

/* Parse @yaml, expecting success. */
static void parse_ok(const char *yaml)
{
	char err[VRL_CONFIG_ERR_MAX];
	int rc = parse(yaml, err);

	if (rc != 0)
		print_error("unexpected error: %s\n", err);
	assert_int_equal(rc, 0);
}

/*
 * Parse @yaml, expecting failure with a message that starts with @where
 * ("vrl.yaml:LINE:COL: field") and contains @what.
 */
static void parse_bad(const char *yaml, const char *where, const char *what)
{
	char err[VRL_CONFIG_ERR_MAX];
	int rc = parse(yaml, err);

	if (rc == 0 || strncmp(err, where, strlen(where)) != 0 || !strstr(err, what))
		print_error("yaml:\n%s\nerror: %s\nwanted: %s ... %s\n", yaml, err, where, what);
	assert_int_equal(rc, -1);
	assert_int_equal(strncmp(err, where, strlen(where)), 0);
	assert_non_null(strstr(err, what));
}

static const struct vrl_seg_limit *find(const char *name)
{
	for (uint32_t i = 0; i < cfg.cfg.nlimits; i++)
		if (strcmp(cfg.cfg.limits[i].name, name) == 0)
			return &cfg.cfg.limits[i];
	fail_msg("no limit %s", name);
	return NULL;
}

/* Every compiled limit must pass the check clients make on a segment. */
static void assert_clients_accept(void)
{
	struct vrl_limit l;

	for (uint32_t i = 0; i < cfg.cfg.nlimits; i++)
		assert_int_equal(vrl_limit_prepare(&cfg.cfg.limits[i], &l), 0);
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* ---- good configs ------------------------------------------------------------------ */

static void test_defaults(void **state)
{
	(void)state;
	parse_ok("limits:\n"
		 "  - name: one\n"
		 "    rate: 10/s\n");
	assert_string_equal(cfg.seg.name, "/vrl");
	assert_int_equal(cfg.seg.mode, 0660);
	assert_int_equal(cfg.seg.gid, (gid_t)-1);
	assert_int_equal(cfg.seg.keys, 65536);
	assert_string_equal(cfg.group, "");
	assert_int_equal(cfg.sweep_interval_ns, NS_PER_S);
	assert_int_equal(cfg.idle_evict_ns, 600 * NS_PER_S);
	assert_int_equal(cfg.cfg.flags, VRL_CFG_UNMATCHED_DENY);   /* fail closed, both */
	assert_string_equal(cfg.cfg.source, "vrl.yaml");
	assert_int_equal(cfg.cfg.nlimits, 1);
	assert_int_equal(cfg.cfg.seq, 0);
	assert_int_equal(cfg.cfg.generation, 0);
	assert_int_equal(cfg.cfg.loaded_realtime_ns, 0);

	const struct vrl_seg_limit *l = find("one");
	assert_int_equal(l->kind, VRL_KIND_RATE);
	assert_int_equal(l->flags, 0);
	assert_int_equal(l->nper, 0);
	assert_int_equal(l->nmatch, 0);
	assert_int_equal(l->count, 10);
	assert_int_equal(l->period_ns, NS_PER_S);
	assert_int_equal(l->burst, 1);
	assert_int_equal(l->emission_ns, 100000000);
	assert_int_equal(l->tolerance_ns, 100000000);
	assert_true(all_zero(l->reserved, sizeof(l->reserved)));
	assert_true(all_zero(&cfg.cfg.limits[1], sizeof(cfg.cfg.limits[1]) * (VRL_MAX_LIMITS - 1)));
	assert_clients_accept();
}

static void test_full_config(void **state)
{
	(void)state;
	parse_ok("segment:\n"
		 "  name: /vrl-test\n"
		 "  mode: \"0640\"\n"
		 "  group: root\n"
		 "  keys: 100000\n"
		 "  on_full: allow\n"
		 "daemon:\n"
		 "  sweep_interval: 250ms\n"
		 "  idle_evict: 1.5min\n"
		 "limits:\n"
		 "  - name: samsara.fleet\n"
		 "    description: \"fleet endpoints\"\n"
		 "    kind: rate\n"
		 "    match: {api: samsara, endpoint: \"GET /v1/fleet/*\", make: tesla}\n"
		 "    per: [token, model]\n"
		 "    rate: 5/1.5min\n"
		 "    burst: 3\n"
		 "    shadow: true\n"
		 "  - name: cool\n"
		 "    kind: gate\n"
		 "    per: [vehicle]\n");
	assert_string_equal(cfg.seg.name, "/vrl-test");
	assert_int_equal(cfg.seg.mode, 0640);
	assert_int_equal(cfg.seg.gid, 0);
	assert_string_equal(cfg.group, "root");
	assert_int_equal(cfg.seg.keys, 100000);
	assert_int_equal(cfg.cfg.flags, VRL_CFG_FAIL_OPEN | VRL_CFG_UNMATCHED_DENY);
	assert_int_equal(cfg.sweep_interval_ns, 250000000);
	assert_int_equal(cfg.idle_evict_ns, 90 * NS_PER_S);
	assert_int_equal(cfg.cfg.nlimits, 2);

	const struct vrl_seg_limit *l = find("samsara.fleet");
	assert_int_equal(l->flags, VRL_LIMIT_SHADOW);
	assert_int_equal(l->nmatch, 3);
	assert_int_equal(l->match[0].ref.field, VRL_FIELD_API);
	assert_string_equal(l->match[0].pattern, "samsara");
	assert_int_equal(l->match[0].glob, 0);
	assert_int_equal(l->match[1].ref.field, VRL_FIELD_ENDPOINT);
	assert_string_equal(l->match[1].pattern, "GET /v1/fleet/*");
	assert_int_equal(l->match[1].glob, 1);
	assert_int_equal(l->match[2].ref.field, VRL_FIELD_ATTR);
	assert_string_equal(l->match[2].ref.attr, "make");
	assert_string_equal(l->match[2].pattern, "tesla");
	assert_int_equal(l->nper, 2);
	assert_int_equal(l->per[0].field, VRL_FIELD_TOKEN);
	assert_int_equal(l->per[1].field, VRL_FIELD_ATTR);
	assert_string_equal(l->per[1].attr, "model");
	assert_int_equal(l->count, 5);
	assert_int_equal(l->period_ns, 90 * NS_PER_S);
	assert_int_equal(l->burst, 3);
	assert_int_equal(l->emission_ns, 18 * NS_PER_S);
	assert_int_equal(l->tolerance_ns, 54 * NS_PER_S);

	l = find("cool");
	assert_int_equal(l->kind, VRL_KIND_GATE);
	assert_int_equal(l->nper, 1);
	assert_int_equal(l->per[0].field, VRL_FIELD_VEHICLE);
	assert_int_equal(l->count, 0);
	assert_int_equal(l->emission_ns, 0);
	assert_clients_accept();
}

static void test_good_forms(void **state)
{
	(void)state;
	/* integer mode, numeric gid, bare-number durations, block lists, globs */
	parse_ok("segment: {mode: 0600, group: \"12345\", on_full: deny}\n"
		 "daemon: {sweep_interval: 2, idle_evict: 0.5}\n"
		 "limits:\n"
		 "  - name: a\n"
		 "    rate: 1/30s\n"
		 "    per:\n"
		 "      - org\n"
		 "      - user\n"
		 "    match:\n"
		 "      endpoint: \"GET /v?/items/[0-9]*\"\n"
		 "      region: eu-west\n");
	assert_int_equal(cfg.seg.mode, 0600);
	assert_int_equal(cfg.seg.gid, 12345);
	assert_int_equal(cfg.sweep_interval_ns, 2 * NS_PER_S);
	assert_int_equal(cfg.idle_evict_ns, NS_PER_S / 2);
	const struct vrl_seg_limit *l = find("a");
	assert_int_equal(l->emission_ns, 30 * NS_PER_S);
	assert_int_equal(l->match[0].glob, 1);
	assert_int_equal(l->match[1].glob, 0);
	assert_string_equal(l->match[1].ref.attr, "region");
	/* a rate with a non-integral emission rounds T up */
	parse_ok("limits: [{name: b, rate: 150/s}]\n");
	assert_int_equal(find("b")->emission_ns, 6666667);
	/* the largest names and patterns that fit */
	char yaml[1024], name[VRL_NAME_MAX], pat[VRL_PATTERN_MAX], attr[VRL_ATTR_MAX];
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	memset(pat, 'p', sizeof(pat) - 1);
	pat[sizeof(pat) - 1] = '\0';
	memset(attr, 'x', sizeof(attr) - 1);
	attr[sizeof(attr) - 1] = '\0';
	snprintf(yaml, sizeof(yaml), "limits: [{name: %s, rate: 1/s, per: [%s], match: {%s: %s}}]\n",
		 name, attr, attr, pat);
	parse_ok(yaml);
	assert_clients_accept();
}

static void test_presets_option(void **state)
{
	(void)state;
	parse_ok("presets: [smartcar]\n"
		 "limits:\n"
		 "  - name: mine\n"
		 "    rate: 1/s\n");
	assert_int_equal(cfg.cfg.nlimits, 6);
	assert_string_equal(cfg.cfg.limits[0].name, "smartcar.app");
	assert_string_equal(cfg.cfg.limits[5].name, "mine");
	/* presets come first even when written after limits */
	parse_ok("limits: [{name: mine, rate: 1/s}]\n"
		 "presets: [evenergy]\n");
	assert_string_equal(cfg.cfg.limits[0].name, "evenergy.user");
	/* an included default does not override this file's segment */
	parse_ok("segment: {name: /other}\npresets: [default]\n");
	assert_string_equal(cfg.seg.name, "/other");
	assert_int_equal(cfg.cfg.nlimits, 22);
}

/* ---- bad configs --------------------------------------------------------------------- */

static void test_bad_syntax(void **state)
{
	(void)state;
	parse_bad("limits:\n"
		  "  - name: a\n"
		  "    rate: [1/s\n"
		  "  - name: b\n", "vrl.yaml:4:", "syntax:");
	parse_bad("segment:\n  name: /a\n name: /b\n", "vrl.yaml:3:", "syntax:");
	parse_bad("limits: [{name: a, rate: 1/s}]\n---\nlimits: []\n", "vrl.yaml:3:1: syntax:",
		  "one document");
	parse_bad("limits: *nothing\n", "vrl.yaml:1:", "syntax:");
	parse_bad("limits: []\nx: \"\xff\"\n", "vrl.yaml:2:", "syntax:");
	parse_bad("", "vrl.yaml:1:1: limits:", "no limits");
	parse_bad("- a\n- b\n", "vrl.yaml:1:1: config:", "expected a mapping");
}

/* A YAML text of @depth nested flow sequences on line @line: "[[[...]]]". */
static char *nested(size_t depth, unsigned line, const char *open, const char *close)
{
	size_t lo = strlen(open), lc = strlen(close);
	char *y = malloc(16 + line + depth * (lo + lc));
	size_t n = 0;

	assert_non_null(y);
	for (unsigned i = 1; i < line; i++)
		y[n++] = '\n';
	n += (size_t)sprintf(y + n, "limits: ");
	for (size_t i = 0; i < depth; i++, n += lo)
		memcpy(y + n, open, lo);
	for (size_t i = 0; i < depth; i++, n += lc)
		memcpy(y + n, close, lc);
	y[n++] = '\n';
	y[n] = '\0';
	return y;
}

/*
 * Nesting is bounded: a config nested deeper than any valid one is refused
 * with the line where it goes too deep, without reading the rest (10^5
 * levels took libyaml tens of seconds).
 */
static void test_too_deep(void **state)
{
	static const size_t depths[] = { 40, 1000, 100000 };
	char *y;

	(void)state;
	for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
		y = nested(depths[i], 3, "[", "]");
		parse_bad(y, "vrl.yaml:3:", "nested deeper than 32 levels");
		free(y);
		y = nested(depths[i], 2, "{a: ", "}");
		parse_bad(y, "vrl.yaml:2:", "nested deeper than 32 levels");
		free(y);
	}
	/* block style: the same bound */
	y = malloc(64 * 64 * 2 + 64);
	strcpy(y, "limits:\n");
	for (int i = 0; i < 40; i++)
		sprintf(y + strlen(y), "%*s- \n", 2 * i, "");
	parse_bad(y, "vrl.yaml:", "nested deeper than 32 levels");
	free(y);
	/* the deepest valid config is far from the bound */
	parse_ok("limits:\n  - name: r\n    rate: 10/min\n    overrides:\n"
		 "      - match: {make: tesla}\n        rate: 1/min\n");
}

/* A mapping of 10^5 conditions is refused for its size at once, not after
 * comparing every key with every other. */
static void test_huge_match(void **state)
{
	enum { N = 100000 };
	char *y = malloc(N * 16 + 64);
	size_t n;

	(void)state;
	n = (size_t)sprintf(y, "limits:\n  - name: a\n    rate: 1/s\n    match: {");
	for (int i = 0; i < N; i++)
		n += (size_t)sprintf(y + n, "k%d: v, ", i);
	sprintf(y + n, "z: v}\n");
	parse_bad(y, "vrl.yaml:4:12: limits[0].match:", "conditions, expected at most");
	free(y);
}

static void test_unknown_key(void **state)
{
	(void)state;
	parse_bad("limits:\n"
		  "  - name: a\n"
		  "    rate: 1/s\n"
		  "    brust: 5\n", "vrl.yaml:4:5: limits[0].brust:", "unknown key");
	parse_bad("segmnet: {}\n", "vrl.yaml:1:1: segmnet:", "expected one of: segment, daemon");
	parse_bad("segment:\n  size: 10\n", "vrl.yaml:2:3: segment.size:", "unknown key");
	parse_bad("daemon:\n  sweep: 1s\n", "vrl.yaml:2:3: daemon.sweep:", "unknown key");
	parse_bad("segment:\n  keys: 1\n  keys: 2\n", "vrl.yaml:3:3: segment.keys:", "twice");
	parse_bad("limits: [{name: a, rate: 1/s, match: {api: x, api: y}}]\n",
		  "vrl.yaml:1:47: limits[0].match.api:", "twice");
}

static void test_wrong_type(void **state)
{
	(void)state;
	parse_bad("segment: [a]\n", "vrl.yaml:1:10: segment:", "expected a mapping");
	parse_bad("limits: {name: a}\n", "vrl.yaml:1:9: limits:", "expected a list");
	parse_bad("limits:\n  - a\n", "vrl.yaml:2:5: limits[0]:", "got \"a\"");
	parse_bad("limits: [{name: [a], rate: 1/s}]\n", "vrl.yaml:1:17: limits[0].name:",
		  "got a list");
	parse_bad("limits: [{name: a, rate: 1/s, per: token}]\n", "vrl.yaml:1:36: limits[0].per:",
		  "expected a list");
	parse_bad("limits: [{name: a, rate: 1/s, per: [{x: 1}]}]\n",
		  "vrl.yaml:1:37: limits[0].per[0]:", "got a mapping");
	parse_bad("limits: [{name: a, rate: 1/s, match: [api]}]\n",
		  "vrl.yaml:1:38: limits[0].match:", "expected a mapping");
	parse_bad("limits: [{name: a, rate: 1/s, match: {api: [x]}}]\n",
		  "vrl.yaml:1:44: limits[0].match.api:", "got a list");
	parse_bad("limits: [{name: a, rate: 1/s, shadow: maybe}]\n",
		  "vrl.yaml:1:39: limits[0].shadow:", "expected true or false");
	parse_bad("limits: [{name: a, rate: 1/s, burst: many}]\n",
		  "vrl.yaml:1:38: limits[0].burst:", "expected a whole number");
	parse_bad("segment: {keys: -5}\nlimits: [{name: a, rate: 1/s}]\n",
		  "vrl.yaml:1:17: segment.keys:", "expected a whole number");
	parse_bad("limits:\n  - name:\n    rate: 1/s\n", "vrl.yaml:2:", "limits[0].name: expected a limit name, got nothing");
	parse_bad("presets: smartcar\n", "vrl.yaml:1:10: presets:", "expected a list");
	parse_bad("limits: [{name: a, rate: 1/s, description: [x]}]\n",
		  "vrl.yaml:1:44: limits[0].description:", "expected a text");
}

static void test_bad_rate(void **state)
{
	(void)state;
	parse_bad("limits:\n  - {name: a, rate: 1/s}\n  - name: b\n    rate: 150 per s\n",
		  "vrl.yaml:4:11: limits[1].rate:",
		  "expected N/period such as 150/s, 2/min or 1/30s, got \"150 per s\"");
	parse_bad("limits: [{name: a, rate: 0/s}]\n", "vrl.yaml:1:26: limits[0].rate:", "got \"0/s\"");
	parse_bad("limits: [{name: a, rate: 1/0s}]\n", "vrl.yaml:1:26: limits[0].rate:", "N/period");
	parse_bad("limits: [{name: a, rate: 150}]\n", "vrl.yaml:1:26: limits[0].rate:", "N/period");
	parse_bad("limits: [{name: a}]\n", "vrl.yaml:1:10: limits[0]:", "missing rate");
	parse_bad("limits: [{name: a, kind: gate, rate: 1/s}]\n", "vrl.yaml:1:38: limits[0].rate:",
		  "a gate has no rate");
	parse_bad("limits: [{name: a, kind: gate, burst: 2}]\n", "vrl.yaml:1:39: limits[0].burst:",
		  "a gate has no rate");
	parse_bad("limits: [{name: a, kind: window, rate: 1/s}]\n",
		  "vrl.yaml:1:40: limits[0].rate:", "a window has no rate");
	parse_bad("limits: [{name: a, kind: leaky, rate: 1/s}]\n",
		  "vrl.yaml:1:26: limits[0].kind:", "expected rate (GCRA), window");
	/* burst * T beyond 2^62 ns: what vrl_gcra_init refuses */
	parse_bad("limits: [{name: a, rate: 1/d, burst: 100000000}]\n",
		  "vrl.yaml:1:38: limits[0].burst:", "too large");
}

/* kind: window: limit, window and keys, each with its own file:line: error */
static void test_window(void **state)
{
	const struct vrl_seg_limit *l;

	(void)state;
	parse_ok("limits: [{name: w, kind: window, limit: 1000, window: 1h, keys: 64}]\n");
	l = find("w");
	assert_int_equal(l->kind, VRL_KIND_WINDOW);
	assert_int_equal(l->count, 1000);
	assert_int_equal(l->period_ns, 3600 * NS_PER_S);
	assert_int_equal(l->area_keys, 64);
	assert_clients_accept();
	parse_bad("limits: [{name: w, kind: window, window: 1h, keys: 64}]\n",
		  "vrl.yaml:1:10: limits[0]:", "missing limit:");
	parse_bad("limits: [{name: w, kind: window, limit: 10, keys: 64}]\n",
		  "vrl.yaml:1:10: limits[0]:", "missing window:");
	parse_bad("limits: [{name: w, kind: window, limit: 10, window: 1h}]\n",
		  "vrl.yaml:1:10: limits[0]:", "missing keys:");
	parse_bad("limits: [{name: w, kind: window, limit: 0, window: 1h, keys: 1}]\n",
		  "vrl.yaml:1:41: limits[0].limit:", "at least 1");
	parse_bad("limits: [{name: w, kind: window, limit: 2000000, window: 1h, keys: 1}]\n",
		  "vrl.yaml:1:41: limits[0].limit:", "too large a ring");
	parse_bad("limits: [{name: w, kind: window, limit: 10, window: 0s, keys: 1}]\n",
		  "vrl.yaml:1:53: limits[0].window:", "above zero");
	parse_bad("limits: [{name: w, kind: window, limit: 10, window: 1h, keys: 0}]\n",
		  "vrl.yaml:1:63: limits[0].keys:", "at least 1");
	parse_bad("limits: [{name: w, kind: window, limit: 10, window: 1h, keys: 1, burst: 2}]\n",
		  "vrl.yaml:1:73: limits[0].burst:", "a window has no rate or burst");
	parse_bad("limits: [{name: r, rate: 1/s, window: 1h}]\n",
		  "vrl.yaml:1:39: limits[0].window:",
		  "a rate limit has no window, expected it only with kind: window");
	/* the keys of other kinds, in the kinds' own words */
	parse_bad("limits: [{name: w, kind: window, limit: 10, window: 1h, keys: 1, count: 5}]\n",
		  "vrl.yaml:1:73: limits[0].count:",
		  "a window limit has no count, expected it only with kind: quota or slots");
	parse_bad("limits: [{name: q, kind: quota, count: 5, window: 1h}]\n",
		  "vrl.yaml:1:51: limits[0].window:",
		  "a quota limit has no window, expected it only with kind: window");
	parse_bad("limits: [{name: q, kind: slots, count: 5, keys: 8}]\n",
		  "vrl.yaml:1:49: limits[0].keys:",
		  "a slots limit has no keys, expected it only with kind: window");
	/* no pool, no overrides: a ring per key of its own limit */
	parse_bad("limits: [{name: w, kind: window, limit: 10, window: 1h, keys: 1, pool: p}]\n",
		  "vrl.yaml:1:72: limits[0].pool:",
		  "a window limit has no pool, expected it only with kind: rate or quota");
	parse_bad("limits: [{name: w, kind: window, limit: 10, window: 1h, keys: 1,\n"
		  "  overrides: [{match: {make: tesla}, limit: 5}]}]\n",
		  "vrl.yaml:2:14: limits[0].overrides:",
		  "a window limit has no overrides, expected it only with kind: rate or quota or slots");
}

static void test_zero_burst(void **state)
{
	(void)state;
	parse_bad("limits:\n  - name: a\n    rate: 1/s\n    burst: 0\n",
		  "vrl.yaml:4:12: limits[0].burst:", "at least 1");
}

/* adaptive: per rate limit, a top-level default for rate limits, a clear
 * error on any other kind. */
static void test_adaptive(void **state)
{
	(void)state;
	parse_ok("limits:\n  - name: a\n    rate: 150/s\n    adaptive: true\n"
		 "  - name: b\n    rate: 200/s\n");
	assert_true(cfg.cfg.limits[0].flags & VRL_LIMIT_ADAPTIVE);
	assert_int_equal(cfg.cfg.limits[0].adapt[0], VRL_ADAPT_BETA_DEFAULT);
	assert_false(cfg.cfg.limits[1].flags & VRL_LIMIT_ADAPTIVE);
	/* the default: every rate limit that says nothing; a gate is left alone */
	parse_ok("adaptive: true\nlimits:\n  - name: a\n    rate: 150/s\n"
		 "  - name: b\n    rate: 200/s\n    adaptive: false\n"
		 "  - name: g\n    kind: gate\n");
	assert_true(cfg.cfg.limits[0].flags & VRL_LIMIT_ADAPTIVE);
	assert_false(cfg.cfg.limits[1].flags & VRL_LIMIT_ADAPTIVE);
	assert_false(cfg.cfg.limits[2].flags & VRL_LIMIT_ADAPTIVE);
	parse_bad("limits:\n  - name: g\n    kind: gate\n    adaptive: true\n",
		  "vrl.yaml:4:15: limits[0].adaptive:", "only on a rate limit");
	parse_bad("limits:\n  - name: q\n    kind: quota\n    count: 5\n    adaptive: true\n",
		  "vrl.yaml:5:15: limits[0].adaptive:", "a quota limit does not adapt");
	parse_bad("adaptive: often\nlimits: []\n", "vrl.yaml:1:11: adaptive:", "");
}

static void test_bad_segment(void **state)
{
	(void)state;
	parse_bad("segment: {mode: \"0999\"}\n", "vrl.yaml:1:17: segment.mode:", "octal mode");
	parse_bad("segment: {mode: rw-rw----}\n", "vrl.yaml:1:17: segment.mode:", "octal mode");
	parse_bad("segment: {mode: \"01777\"}\n", "vrl.yaml:1:17: segment.mode:", "at most 0777");
	parse_bad("segment: {mode: \"0440\"}\n", "vrl.yaml:1:17: segment.mode:", "read and write");
	parse_bad("segment: {name: vrl}\n", "vrl.yaml:1:17: segment.name:", "such as /vrl");
	parse_bad("segment: {name: /a/b}\n", "vrl.yaml:1:17: segment.name:", "such as /vrl");
	parse_bad("segment: {name: /}\n", "vrl.yaml:1:17: segment.name:", "such as /vrl");
	parse_bad("segment:\n  name: /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		  "vrl.yaml:2:9: segment.name:", "at most 63 bytes");
	parse_bad("segment: {group: vrl-no-such-group}\n", "vrl.yaml:1:18: segment.group:",
		  "unknown group");
	parse_bad("segment: {keys: 0}\n", "vrl.yaml:1:17: segment.keys:", "at least 1");
	parse_bad("segment: {keys: 99999999999999999999}\n", "vrl.yaml:1:17: segment.keys:",
		  "whole number");
	parse_bad("segment: {keys: 18446744073709551615}\n", "vrl.yaml:1:17: segment.keys:",
		  "fewer keys");
	parse_bad("segment: {on_full: open}\n", "vrl.yaml:1:20: segment.on_full:", "deny");
	parse_bad("daemon: {sweep_interval: 0s}\n", "vrl.yaml:1:26: daemon.sweep_interval:",
		  "above zero");
	parse_bad("daemon: {idle_evict: 10 minutes}\n", "vrl.yaml:1:22: daemon.idle_evict:",
		  "got \"10 minutes\"");
}

static void test_daemon_prod(void **state)
{
	(void)state;
	parse_ok("presets: [samsara]\n");
	assert_string_equal(cfg.prod.checkpoint, "");
	assert_int_equal(cfg.prod.checkpoint_interval_ns, 10 * NS_PER_S);
	assert_string_equal(cfg.prod.metrics, "");
	assert_int_equal(cfg.prod.metrics_top, 20);
	parse_ok("daemon:\n  checkpoint: /var/lib/vrl/vrl.ckpt\n  checkpoint_interval: 2s\n"
		 "  metrics: 127.0.0.1:9477\n  metrics_textfile: /tmp/vrl.prom\n"
		 "  metrics_top: 5\npresets: [samsara]\n");
	assert_string_equal(cfg.prod.checkpoint, "/var/lib/vrl/vrl.ckpt");
	assert_int_equal(cfg.prod.checkpoint_interval_ns, 2 * NS_PER_S);
	assert_string_equal(cfg.prod.metrics, "127.0.0.1:9477");
	assert_string_equal(cfg.prod.metrics_textfile, "/tmp/vrl.prom");
	assert_int_equal(cfg.prod.metrics_top, 5);
	parse_bad("daemon: {metrics: localhost}\n", "vrl.yaml:1:19: daemon.metrics:", "no port");
	parse_bad("daemon: {checkpoint_interval: 0s}\n",
		  "vrl.yaml:1:31: daemon.checkpoint_interval:", "above zero");
}

/* The textfile's mode: 0644 unless set, never writable by others. */
static void test_textfile_mode(void **state)
{
	(void)state;
	parse_ok("presets: [samsara]\n");
	assert_int_equal(cfg.prod.metrics_textfile_mode, 0644);
	parse_ok("daemon: {metrics_textfile: /x/vrl.prom, metrics_textfile_mode: \"0640\"}\n"
		 "presets: [samsara]\n");
	assert_int_equal(cfg.prod.metrics_textfile_mode, 0640);
	parse_ok("daemon: {metrics_textfile_mode: 600}\npresets: [samsara]\n");
	assert_int_equal(cfg.prod.metrics_textfile_mode, 0600);
	parse_bad("daemon: {metrics_textfile_mode: \"0666\"}\n",
		  "vrl.yaml:1:33: daemon.metrics_textfile_mode:", "lets the group or others write");
	parse_bad("daemon: {metrics_textfile_mode: rw}\n",
		  "vrl.yaml:1:33: daemon.metrics_textfile_mode:", "expected an octal mode");
}

static void test_duplicate_name(void **state)
{
	(void)state;
	parse_bad("limits:\n"
		  "  - name: a\n"
		  "    rate: 1/s\n"
		  "  - name: a\n"
		  "    rate: 2/s\n", "vrl.yaml:4:11: limits[1].name:",
		  "duplicate limit name \"a\" (first defined at vrl.yaml:2:5)");
	parse_bad("presets: [samsara]\nlimits: [{name: samsara.token, rate: 1/s}]\n",
		  "vrl.yaml:2:17: limits[0].name:", "first defined at built-in:samsara.yaml:");
	parse_bad("presets: [default, smartcar]\n", "vrl.yaml:1:20: presets[1]:",
		  "already included");
}

static void test_too_many(void **state)
{
	char *yaml = malloc(64 * (VRL_MAX_LIMITS + 2));
	size_t used = 0;

	(void)state;
	used += (size_t)sprintf(yaml, "limits:\n");
	for (unsigned i = 0; i <= VRL_MAX_LIMITS; i++)
		used += (size_t)sprintf(yaml + used, "  - {name: l%u, rate: 1/s}\n", i);
	parse_bad(yaml, "vrl.yaml:66:5: limits[64]:", "too many limits, expected at most 64");
	/* the same count is fine without the last */
	*strrchr(yaml, '-') = '\0';
	parse_ok(yaml);
	assert_int_equal(cfg.cfg.nlimits, VRL_MAX_LIMITS);
	free(yaml);

	parse_bad("limits: [{name: a, rate: 1/s, per: [api, endpoint, token, org, user]}]\n",
		  "vrl.yaml:1:36: limits[0].per:", "expected at most 4");
	parse_bad("limits: [{name: a, rate: 1/s, match: {a: 1, b: 2, c: 3, d: 4, e: 5}}]\n",
		  "vrl.yaml:1:38: limits[0].match:", "expected at most 4");
}

static void test_name_too_long(void **state)
{
	char yaml[512], name[VRL_NAME_MAX + 1];

	(void)state;
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	snprintf(yaml, sizeof(yaml), "limits:\n  - name: %s\n    rate: 1/s\n", name);
	parse_bad(yaml, "vrl.yaml:2:11: limits[0].name:", "at most 63 bytes, got 64 bytes");
	parse_bad("limits: [{name: \"a b\", rate: 1/s}]\n", "vrl.yaml:1:17: limits[0].name:",
		  "letters, digits");
	char pat[VRL_PATTERN_MAX + 1];
	memset(pat, 'p', VRL_PATTERN_MAX);
	pat[VRL_PATTERN_MAX] = '\0';
	snprintf(yaml, sizeof(yaml), "limits: [{name: a, rate: 1/s, match: {api: %s}}]\n", pat);
	parse_bad(yaml, "vrl.yaml:1:44: limits[0].match.api:", "at most 95 bytes");
	snprintf(yaml, sizeof(yaml),
		 "limits: [{name: a, rate: 1/s, per: [aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]}]\n");
	parse_bad(yaml, "vrl.yaml:1:37: limits[0].per[0]:", "at most 31 bytes");
}

static void test_unknown_field(void **state)
{
	(void)state;
	parse_bad("limits: [{name: a, rate: 1/s, per: [tokn]}]\n", "vrl.yaml:1:37: limits[0].per[0]:",
		  "unknown field \"tokn\": did you mean token?");
	parse_bad("limits: [{name: a, rate: 1/s, per: [Vehicle]}]\n",
		  "vrl.yaml:1:37: limits[0].per[0]:", "expected vehicle");
	parse_bad("limits: [{name: a, rate: 1/s, per: [orgs]}]\n",
		  "vrl.yaml:1:37: limits[0].per[0]:", "expected org");
	parse_bad("limits: [{name: a, rate: 1/s, per: [\"vehicle id\"]}]\n",
		  "vrl.yaml:1:37: limits[0].per[0]:", "unknown field \"vehicle id\"");
	parse_bad("limits: [{name: a, rate: 1/s, per: [cost]}]\n", "vrl.yaml:1:37: limits[0].per[0]:",
		  "cost is the units");
	parse_bad("limits: [{name: a, rate: 1/s, per: [token, token]}]\n",
		  "vrl.yaml:1:44: limits[0].per[1]:", "twice");
	parse_bad("limits: [{name: a, rate: 1/s, match: {endpont: x}}]\n",
		  "vrl.yaml:1:39: limits[0].match.endpont:", "expected endpoint");
	parse_ok("limits: [{name: a, rate: 1/s, per: [make], match: {model: x}}]\n");
}

/* unmatched: deny unless the config says otherwise; warn and allow as written. */
static void test_unmatched_policy(void **state)
{
	const uint32_t both = VRL_CFG_UNMATCHED_DENY | VRL_CFG_UNMATCHED_WARN;
	char err[VRL_CONFIG_ERR_MAX];

	(void)state;
	parse_ok("limits: [{name: a, rate: 1/s}]\n");
	assert_int_equal(cfg.cfg.flags & both, VRL_CFG_UNMATCHED_DENY);
	parse_ok("unmatched: warn\nlimits: [{name: a, rate: 1/s}]\n");
	assert_int_equal(cfg.cfg.flags & both, VRL_CFG_UNMATCHED_WARN);
	parse_ok("unmatched: allow\nsegment: {on_full: allow}\nlimits: [{name: a, rate: 1/s}]\n");
	assert_int_equal(cfg.cfg.flags & both, 0);
	assert_true(cfg.cfg.flags & VRL_CFG_FAIL_OPEN);
	parse_ok("unmatched: deny\nlimits: [{name: a, rate: 1/s}]\n");
	assert_int_equal(cfg.cfg.flags & both, VRL_CFG_UNMATCHED_DENY);
	parse_bad("unmatched: grant\nlimits: [{name: a, rate: 1/s}]\n", "vrl.yaml:1:12: unmatched:",
		  "expected deny");
	parse_bad("unmatched: [deny]\nlimits: [{name: a, rate: 1/s}]\n", "vrl.yaml:1:12: unmatched:",
		  "got a list");
	assert_int_equal(vrl_config_default(&cfg, err), 0);
	assert_int_equal(cfg.cfg.flags & both, VRL_CFG_UNMATCHED_DENY);
}

/* A near-miss of a built-in field, whatever its length or case, is an error
 * with the suggestion; declared under attributes:, it is an attribute. */
static void test_near_miss_field(void **state)
{
	(void)state;
	parse_bad("limits: [{name: a, rate: 1/s, match: {Api: samsara}}]\n",
		  "vrl.yaml:1:39: limits[0].match.Api:", "did you mean api?");
	parse_bad("limits: [{name: a, rate: 1/s, match: {apy: samsara}}]\n",
		  "vrl.yaml:1:39: limits[0].match.apy:", "did you mean api?");
	parse_bad("limits: [{name: a, rate: 1/s, match: {API: samsara}}]\n",
		  "vrl.yaml:1:39: limits[0].match.API:", "did you mean api?");
	parse_bad("limits: [{name: a, rate: 1/s, per: [vehicel]}]\n",
		  "vrl.yaml:1:37: limits[0].per[0]:", "did you mean vehicle?");
	parse_bad("limits: [{name: a, rate: 1/s, per: [Token]}]\n",
		  "vrl.yaml:1:37: limits[0].per[0]:", "did you mean token?");
	parse_bad("limits: [{name: a, rate: 1/s, per: [ORG]}]\n",
		  "vrl.yaml:1:37: limits[0].per[0]:", "did you mean org?");
	parse_bad("limits: [{name: a, rate: 1/s, per: [usr]}]\n",
		  "vrl.yaml:1:37: limits[0].per[0]:", "did you mean user?");
	parse_bad("limits: [{name: a, rate: 1/s, per: [app]}]\n",
		  "vrl.yaml:1:37: limits[0].per[0]:", "attributes: [app]");
	parse_bad("limits: [{name: a, rate: 1/s, overrides: [{match: {Api: x}, rate: 2/s}]}]\n",
		  "vrl.yaml:1:52: limits[0].overrides[0].match.Api:", "did you mean api?");
	parse_bad("labels: {clear: [Org]}\nlimits: [{name: a, rate: 1/s}]\n",
		  "vrl.yaml:1:18: labels.clear[0]:", "did you mean org?");
	/* declared attributes are taken as written */
	parse_ok("attributes: [app, Vehicle]\n"
		 "limits: [{name: a, rate: 1/s, per: [app, Vehicle], match: {app: x}}]\n");
	assert_int_equal(cfg.cfg.limits[0].per[0].field, VRL_FIELD_ATTR);
	assert_string_equal(cfg.cfg.limits[0].per[0].attr, "app");
	assert_string_equal(cfg.cfg.limits[0].per[1].attr, "Vehicle");
	/* a declaration names an attribute, never a built-in field */
	parse_bad("attributes: [api]\nlimits: [{name: a, rate: 1/s}]\n",
		  "vrl.yaml:1:14: attributes[0]:", "api is a built-in field");
	parse_bad("attributes: [make, make]\nlimits: [{name: a, rate: 1/s}]\n",
		  "vrl.yaml:1:20: attributes[1]:", "twice");
}

static void test_unknown_preset(void **state)
{
	(void)state;
	parse_bad("presets: [smartcar, tesla]\n", "vrl.yaml:1:21: presets[1]:",
		  "unknown preset \"tesla\", expected one of: default, smartcar, samsara, carsxe, "
		  "evenergy");
}

static void test_refused_whole(void **state)
{
	char err[VRL_CONFIG_ERR_MAX];

	(void)state;
	parse_ok("segment: {name: /kept}\nlimits: [{name: kept, rate: 1/s}]\n");
	/* a bad config leaves the previous result untouched */
	assert_int_equal(parse("segment: {name: /new}\nlimits: [{name: a, rate: 1/s}, "
			       "{name: b, rate: x}]\n", err), -1);
	assert_string_equal(cfg.seg.name, "/kept");
	assert_int_equal(cfg.cfg.nlimits, 1);
	assert_string_equal(cfg.cfg.limits[0].name, "kept");
}

/* ---- built-in presets ------------------------------------------------------------- */

static void test_default_config(void **state)
{
	char err[VRL_CONFIG_ERR_MAX];
	int rc = vrl_config_default(&cfg, err);

	(void)state;
	if (rc != 0)
		print_error("%s\n", err);
	assert_int_equal(rc, 0);
	assert_string_equal(cfg.cfg.source, "built-in");
	assert_string_equal(cfg.seg.name, "/vrl");
	assert_int_equal(cfg.seg.mode, 0660);
	assert_int_equal(cfg.seg.keys, 65536);
	assert_int_equal(cfg.cfg.flags, VRL_CFG_UNMATCHED_DENY);
	assert_int_equal(cfg.cfg.nlimits, 22);
	assert_clients_accept();

	const struct vrl_seg_limit *l = find("smartcar.app");
	assert_int_equal(l->kind, VRL_KIND_RATE);
	assert_int_equal(l->count, 2);
	assert_int_equal(l->period_ns, 60 * NS_PER_S);
	assert_int_equal(l->burst, 120);
	assert_int_equal(l->emission_ns, 30 * NS_PER_S);
	assert_int_equal(l->tolerance_ns, 3600 * NS_PER_S);
	assert_int_equal(find("smartcar.vehicle")->kind, VRL_KIND_GATE);
	assert_int_equal(find("smartcar.upstream")->per[0].field, VRL_FIELD_VEHICLE);

	l = find("samsara.token");
	assert_int_equal(l->count, 150);
	assert_int_equal(l->burst, 1);
	assert_int_equal(l->per[0].field, VRL_FIELD_TOKEN);
	assert_int_equal(find("samsara.org")->per[0].field, VRL_FIELD_ORG);
	l = find("samsara.legacy.post_driver_dispatch_routes");
	assert_int_equal(l->count, 50);
	assert_string_equal(l->match[1].pattern, "POST /v1/fleet/drivers/*/dispatch/routes");
	assert_int_equal(l->match[1].glob, 1);
	assert_int_equal(find("samsara.legacy.get_hos_logs_summary")->count, 30);
	assert_int_equal(find("samsara.legacy.get_drivers_summary")->count, 75);

	/* "The hour is a rolling period": an exact window, not a rate */
	l = find("evenergy.user");
	assert_int_equal(l->kind, VRL_KIND_WINDOW);
	assert_int_equal(l->count, 1000);
	assert_int_equal(l->period_ns, 3600 * NS_PER_S);
	assert_int_equal(l->area_keys, 4096);
	assert_int_equal(l->nper, 2);
	assert_int_equal(l->per[1].field, VRL_FIELD_USER);

	l = find("smartcar.vehicle.monthly");
	assert_int_equal(l->kind, VRL_KIND_QUOTA);
	assert_int_equal(l->count, 500);
	assert_int_equal(l->calendar, VRL_CAL_MONTH);
	assert_int_equal(l->flags, 0);
	assert_int_equal(l->per[0].field, VRL_FIELD_VEHICLE);
	l = find("smartcar.connected");
	assert_int_equal(l->kind, VRL_KIND_SLOTS);
	assert_int_equal(l->flags, VRL_LIMIT_PERSIST);

	l = find("carsxe.market-value");
	assert_int_equal(l->kind, VRL_KIND_QUOTA);
	assert_int_equal(l->count, 5000);
	assert_int_equal(l->flags, VRL_LIMIT_SOFT);
	assert_int_equal(l->nalerts, 3);
	assert_int_equal(l->alert_pct[2], 100);
	assert_string_equal(find("carsxe.recalls")->pool, "carsxe.recalls-shared");
	assert_string_equal(find("carsxe.recalls-batch")->pool, "carsxe.recalls-shared");
	l = find("carsxe.trial");
	assert_int_equal(l->calendar, VRL_CAL_ONCE);
	assert_int_equal(l->flags, 0);
	assert_int_equal(l->match[1].ref.field, VRL_FIELD_ATTR);
	assert_string_equal(l->match[1].ref.attr, "plan");
}

static void test_each_preset(void **state)
{
	static const struct {
		const char *name;
		uint32_t nlimits;
	} presets[] = {
		{ "smartcar", 5 }, { "samsara", 10 }, { "carsxe", 6 }, { "evenergy", 1 },
		{ "default", 22 },
	};
	char yaml[64];

	(void)state;
	for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++) {
		const char *text = vrl_config_preset(presets[i].name);

		assert_non_null(text);
		snprintf(yaml, sizeof(yaml), "presets: [%s]\n", presets[i].name);
		parse_ok(yaml);
		assert_int_equal(cfg.cfg.nlimits, presets[i].nlimits);
		assert_clients_accept();
		/* a preset's text is itself a config */
		parse_ok(text);
		assert_int_equal(cfg.cfg.nlimits, presets[i].nlimits);
	}
	assert_null(vrl_config_preset("tesla"));
	assert_null(vrl_config_preset(NULL));
}

/* ---- quota, slots, pools, overrides ---------------------------------------------- */

static void test_quota_and_slots(void **state)
{
	const struct vrl_seg_limit *l;

	(void)state;
	parse_ok("limits:\n"
		 "  - {name: m, kind: quota, count: 500, per: [vehicle]}\n"
		 "  - {name: w, kind: quota, count: 7, calendar: week, anchor: sunday}\n"
		 "  - {name: b, kind: quota, count: 9, anchor: 31, overage: true,"
		 " alerts: [80, 90, 100]}\n"
		 "  - {name: d, kind: quota, count: 1, calendar: day}\n"
		 "  - {name: t, kind: quota, count: 100, calendar: once}\n"
		 "  - {name: s, kind: slots, count: 3}\n"
		 "  - {name: p, kind: slots, count: 3, persistent: true}\n");
	assert_clients_accept();
	l = find("m");
	assert_int_equal(l->kind, VRL_KIND_QUOTA);
	assert_int_equal(l->calendar, VRL_CAL_MONTH);
	assert_int_equal(l->anchor, 0);
	assert_int_equal(l->flags, 0);
	assert_int_equal(find("w")->anchor, 7);
	assert_int_equal(find("w")->calendar, VRL_CAL_WEEK);
	l = find("b");
	assert_int_equal(l->anchor, 31);
	assert_int_equal(l->flags, VRL_LIMIT_SOFT);
	assert_int_equal(l->nalerts, 3);
	assert_int_equal(find("d")->calendar, VRL_CAL_DAY);
	assert_int_equal(find("t")->calendar, VRL_CAL_ONCE);
	assert_int_equal(find("s")->kind, VRL_KIND_SLOTS);
	assert_int_equal(find("s")->flags, 0);
	assert_int_equal(find("p")->flags, VRL_LIMIT_PERSIST);

	parse_bad("limits: [{name: q, kind: quota}]\n", "vrl.yaml:1:10: limits[0]:",
		  "missing count:");
	parse_bad("limits: [{name: q, kind: quota, count: 0}]\n",
		  "vrl.yaml:1:40: limits[0].count:", "at least 1");
	parse_bad("limits: [{name: q, kind: quota, count: 5, calendar: year}]\n",
		  "vrl.yaml:1:53: limits[0].calendar:", "unknown calendar \"year\"");
	parse_bad("limits: [{name: q, kind: quota, count: 5, anchor: 32}]\n",
		  "vrl.yaml:1:51: limits[0].anchor:", "1 .. 31");
	parse_bad("limits: [{name: q, kind: quota, count: 5, calendar: week, anchor: 8}]\n",
		  "vrl.yaml:1:67: limits[0].anchor:", "weekday");
	parse_bad("limits: [{name: q, kind: quota, count: 5, calendar: once, anchor: 1}]\n",
		  "vrl.yaml:1:67: limits[0].anchor:", "no anchor");
	parse_bad("limits: [{name: q, kind: quota, count: 5, rate: 1/s}]\n",
		  "vrl.yaml:1:49: limits[0].rate:", "a quota limit has no rate, expected it only with kind: rate");
	parse_bad("limits: [{name: q, rate: 1/s, count: 5}]\n",
		  "vrl.yaml:1:38: limits[0].count:", "a rate limit has no count, expected it only with kind: quota or slots");
	parse_bad("limits: [{name: s, kind: slots, count: 5, overage: true}]\n",
		  "vrl.yaml:1:52: limits[0].overage:", "a slots limit has no overage");
	parse_bad("limits: [{name: q, kind: quota, count: 5, alerts: [90, 80]}]\n",
		  "vrl.yaml:1:56: limits[0].alerts[1]:", "ascending");
}

static void test_pools(void **state)
{
	(void)state;
	parse_ok("limits:\n"
		 "  - {name: a, kind: quota, count: 5, pool: shared, match: {endpoint: a}}\n"
		 "  - {name: b, kind: quota, count: 5, pool: shared, match: {endpoint: b}}\n");
	assert_string_equal(find("a")->pool, "shared");
	assert_string_equal(find("b")->pool, "shared");
	parse_bad("limits:\n"
		  "  - {name: a, kind: quota, count: 5, pool: shared}\n"
		  "  - {name: b, kind: quota, count: 6, pool: shared}\n",
		  "vrl.yaml:3:44: limits[1].pool:",
		  "member b differs in count from member a (at vrl.yaml:2:5)");
	parse_bad("limits:\n"
		  "  - {name: a, kind: quota, count: 5, pool: shared}\n"
		  "  - {name: b, kind: quota, count: 5, calendar: week, pool: shared}\n",
		  "vrl.yaml:3:", "differs in calendar and anchor");
	parse_bad("limits:\n"
		  "  - {name: a, kind: quota, count: 5, pool: shared}\n"
		  "  - {name: b, rate: 5/s, pool: shared}\n",
		  "vrl.yaml:3:", "differs in kind");
	parse_bad("limits:\n"
		  "  - {name: a, kind: quota, count: 5, pool: shared, per: [org]}\n"
		  "  - {name: b, kind: quota, count: 5, pool: shared}\n",
		  "vrl.yaml:3:", "differs in per fields");
	parse_bad("limits: [{name: s, kind: slots, count: 5, pool: x}]\n",
		  "vrl.yaml:1:49: limits[0].pool:", "a slots limit has no pool, expected it only with kind: rate or quota");
}

static void test_overrides(void **state)
{
	const struct vrl_seg_limit *t, *f, *d;

	(void)state;
	parse_ok("limits:\n"
		 "  - name: smartcar.vehicle\n"
		 "    match: {api: smartcar}\n"
		 "    per: [vehicle]\n"
		 "    rate: 10/min\n"
		 "    burst: 5\n"
		 "    overrides:\n"
		 "      - {match: {make: tesla}, rate: 1/min}\n"
		 "      - {match: {make: ford}, burst: 2}\n");
	assert_int_equal(cfg.cfg.nlimits, 3);
	assert_clients_accept();
	/* the overrides first, then the default, one group */
	t = &cfg.cfg.limits[0];
	f = &cfg.cfg.limits[1];
	d = &cfg.cfg.limits[2];
	assert_string_equal(t->name, "smartcar.vehicle[make=tesla]");
	assert_string_equal(f->name, "smartcar.vehicle[make=ford]");
	assert_string_equal(d->name, "smartcar.vehicle");
	assert_true(t->group != 0 && t->group == f->group && f->group == d->group);
	assert_int_equal(t->count, 1);
	assert_int_equal(t->burst, 5);          /* the base's */
	assert_int_equal(t->nmatch, 2);         /* the base's match and its own */
	assert_string_equal(t->match[1].pattern, "tesla");
	assert_int_equal(f->count, 10);
	assert_int_equal(f->burst, 2);
	assert_int_equal(f->emission_ns, 6 * NS_PER_S);
	assert_int_equal(d->burst, 5);
	/* quota overrides change the count */
	parse_ok("limits:\n"
		 "  - {name: q, kind: quota, count: 500, overrides: [{match: {make: bmw}, count: 50}]}\n");
	assert_int_equal(find("q[make=bmw]")->count, 50);
	assert_int_equal(find("q[make=bmw]")->kind, VRL_KIND_QUOTA);
	parse_bad("limits: [{name: q, rate: 1/s, overrides: [{rate: 2/s}]}]\n",
		  "vrl.yaml:1:43: limits[0].overrides[0]:", "missing match:");
	parse_bad("limits: [{name: q, rate: 1/s, overrides: [{match: {make: a}, count: 2}]}]\n",
		  "vrl.yaml:1:69: limits[0].overrides[0].count:", "a rate limit has no count");
	parse_bad("limits: [{name: q, rate: 1/s, overrides: [{match: {make: a}}, "
		  "{match: {make: a}}]}]\n", "vrl.yaml:1:", "duplicate override q[make=a]");
}

static void test_load_file(void **state)
{
	char path[] = "/tmp/vrl-config-XXXXXX", err[VRL_CONFIG_ERR_MAX];
	const char *text = "limits:\n  - name: f\n    rate: 3/s\n    burst: two\n";
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(vrl_config_load(path, &cfg, err), -1);
	assert_non_null(strstr(err, ":4:12: limits[0].burst: expected a whole number"));
	assert_int_equal(strncmp(err, path, strlen(path)), 0);
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, text, 35), 35);
	close(fd);
	assert_int_equal(vrl_config_load(path, &cfg, err), 0);
	assert_string_equal(cfg.cfg.source, path);
	assert_int_equal(find("f")->count, 3);
	unlink(path);
	assert_int_equal(vrl_config_load(path, &cfg, err), -1);
	assert_non_null(strstr(err, "No such file"));
}

/* Load @path in a child; its exit: 0 loaded, 1 refused naming the file and
 * saying @what, 2 refused otherwise. A child that hangs fails the test. */
static int load_in_child(const char *path, const char *what)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		char err[VRL_CONFIG_ERR_MAX];
		int rc = vrl_config_load(path, &cfg, err);

		printf("# %s\n", rc ? err : "loaded");
		_exit(rc == 0 ? 0 : strstr(err, path) && strstr(err, what) ? 1 : 2);
	}
	for (int i = 0; i < 3000; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	fail_msg("loading %s hung", path);
	return -1;
}

/* A FIFO or a device as the config is refused at once, naming it; a link
 * to a regular file (a config managed elsewhere) is followed. */
static void test_load_special_files(void **state)
{
	char dir[] = "/tmp/vrl-config-XXXXXX", fifo[64], link[64], file[64], dev[64];
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/fifo.yaml", dir);
	snprintf(link, sizeof(link), "%s/link.yaml", dir);
	snprintf(file, sizeof(file), "%s/managed.yaml", dir);
	snprintf(dev, sizeof(dev), "%s/dev.yaml", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(load_in_child(fifo, "a FIFO, not a regular file"), 1);
	assert_int_equal(symlink("/dev/zero", dev), 0);
	assert_int_equal(load_in_child(dev, "a character device, not a regular file"), 1);
	assert_int_equal(load_in_child("/dev/null", "not a regular file"), 1);
	f = fopen(file, "w");
	assert_non_null(f);
	fputs("limits: [{name: a, rate: 1/s}]\n", f);
	fclose(f);
	assert_int_equal(symlink(file, link), 0);
	assert_int_equal(load_in_child(link, ""), 0);
	unlink(fifo);
	unlink(link);
	unlink(file);
	unlink(dev);
	rmdir(dir);
}

/* A config over the size bound is refused before it is parsed. */
static void test_load_too_large(void **state)
{
	char path[] = "/tmp/vrl-config-XXXXXX", err[VRL_CONFIG_ERR_MAX];
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)(2u << 20)), 0);
	close(fd);
	assert_int_equal(vrl_config_load(path, &cfg, err), -1);
	assert_non_null(strstr(err, "larger than"));
	assert_int_equal(strncmp(err, path, strlen(path)), 0);
	unlink(path);
}

/* alerts: thresholds in percent, ascending, at most four. */
static void test_alerts(void **state)
{
	const struct vrl_seg_limit *l;

	(void)state;
	parse_ok("daemon:\n  alert_command: /usr/local/bin/vrl-alert\n"
		 "limits:\n  - {name: q, kind: quota, count: 10, alerts: [80, 90, 100]}\n"
		 "  - {name: r, kind: quota, count: 10}\n");
	l = find("q");
	assert_int_equal(l->nalerts, 3);
	assert_int_equal(l->alert_pct[0], 80);
	assert_int_equal(l->alert_pct[1], 90);
	assert_int_equal(l->alert_pct[2], 100);
	assert_int_equal(find("r")->nalerts, 0);
	assert_string_equal(cfg.alert_command, "/usr/local/bin/vrl-alert");
	parse_ok("limits: [{name: q, kind: quota, count: 10, alerts: [50, 150]}]\n");
	assert_string_equal(cfg.alert_command, "");

	parse_bad("limits: [{name: q, kind: quota, count: 10, alerts: [90, 80]}]\n",
		  "vrl.yaml:1:", "limits[0].alerts[1]: expected percentages in ascending order");
	parse_bad("limits: [{name: q, kind: quota, count: 10, alerts: [80, 80]}]\n",
		  "vrl.yaml:1:", "ascending");
	parse_bad("limits: [{name: q, kind: quota, count: 10, alerts: [0]}]\n",
		  "vrl.yaml:1:", "at least 1");
	parse_bad("limits: [{name: q, kind: quota, count: 10, alerts: [1001]}]\n",
		  "vrl.yaml:1:", "at most 1000");
	parse_bad("limits: [{name: q, kind: quota, count: 10, alerts: [10, 20, 30, 40, 50]}]\n",
		  "vrl.yaml:1:", "5 thresholds, expected at most 4");
	parse_bad("limits: [{name: q, kind: quota, count: 10, alerts: 80}]\n",
		  "vrl.yaml:1:", "expected a list of percentages");
	parse_bad("limits: [{name: q, kind: quota, count: 10, alerts: [eighty]}]\n",
		  "vrl.yaml:1:", "expected a whole number");
	parse_bad("daemon: {alert_command: vrl-alert}\nlimits: [{name: q, rate: 1/s}]\n",
		  "vrl.yaml:1:", "daemon.alert_command: expected an absolute path");
}

/* shadow: true at the top puts every limit, presets included, in shadow. */
static void test_global_shadow(void **state)
{
	(void)state;
	parse_ok("shadow: true\npresets: [samsara]\nlimits: [{name: r, rate: 1/s}]\n");
	assert_true(find("r")->flags & VRL_LIMIT_SHADOW);
	assert_true(find("samsara.org")->flags & VRL_LIMIT_SHADOW);
	parse_ok("shadow: false\nlimits: [{name: r, rate: 1/s}, {name: s, rate: 1/s, "
		 "shadow: true}]\n");
	assert_false(find("r")->flags & VRL_LIMIT_SHADOW);
	assert_true(find("s")->flags & VRL_LIMIT_SHADOW);
	parse_bad("shadow: maybe\nlimits: [{name: r, rate: 1/s}]\n", "vrl.yaml:1:9: shadow:",
		  "expected");
}

/* global: the Redis endpoints and the lease; scope: per limit. */
static void test_global_section(void **state)
{
	static const char lim[] = "limits: [{name: r, rate: 1/s}]\n";
	char yaml[512];

	(void)state;
	parse_ok(lim);
	assert_false(cfg.global.on);
	parse_ok("global:\n  redis: [\"unix:/run/redis/redis.sock\", \"10.0.0.2:6379\"]\n"
		 "  host: web-1\n  lease: 2s\n  on_partition: static\n  hosts: 3\n"
		 "limits: [{name: r, rate: 1/s, scope: host}]\n");
	assert_true(cfg.global.on);
	assert_int_equal(cfg.global.nredis, 2);
	assert_string_equal(cfg.global.redis[1], "10.0.0.2:6379");
	assert_string_equal(cfg.global.host, "web-1");
	assert_int_equal(cfg.global.lease_ns, 2000000000u);
	assert_true(cfg.global.static_partition);
	assert_int_equal(cfg.global.hosts, 3);
	/* the defaults: one endpoint as a scalar, the hostname, 1s, deny */
	parse_ok("global: {redis: \"127.0.0.1:6379\"}\nlimits: [{name: r, rate: 1/s}]\n");
	assert_int_equal(cfg.global.nredis, 1);
	assert_string_equal(cfg.global.host, "");
	assert_int_equal(cfg.global.lease_ns, 1000000000u);
	assert_false(cfg.global.static_partition);
	assert_int_equal(cfg.global.hosts, 1);

	snprintf(yaml, sizeof(yaml), "global: {host: a}\n%s", lim);
	parse_bad(yaml, "vrl.yaml:1:9: global:", "missing redis:");
	snprintf(yaml, sizeof(yaml), "global: {redis: [localhost]}\n%s", lim);
	parse_bad(yaml, "vrl.yaml:1:18: global.redis[0]:", "\"localhost\"");
	snprintf(yaml, sizeof(yaml), "global: {redis: [\"h:1\", \"h:1\"]}\n%s", lim);
	parse_bad(yaml, "vrl.yaml:1:25: global.redis[1]:", "listed twice");
	snprintf(yaml, sizeof(yaml), "global: {redis: []}\n%s", lim);
	parse_bad(yaml, "vrl.yaml:1:17: global.redis:", "at least one");
	snprintf(yaml, sizeof(yaml), "global: {redis: \"h:1\", host: \"a b\"}\n%s", lim);
	parse_bad(yaml, "vrl.yaml:1:30: global.host:", "expected letters");
	snprintf(yaml, sizeof(yaml), "global: {redis: \"h:1\", lease: 10ms}\n%s", lim);
	parse_bad(yaml, "vrl.yaml:1:31: global.lease:", "100ms");
	snprintf(yaml, sizeof(yaml), "global: {redis: \"h:1\", on_partition: static}\n%s", lim);
	parse_bad(yaml, "vrl.yaml:1:38: global.on_partition:", "needs hosts:");
	snprintf(yaml, sizeof(yaml), "global: {redis: \"h:1\", on_partition: allow}\n%s", lim);
	parse_bad(yaml, "vrl.yaml:1:38: global.on_partition:", "deny or static");
	snprintf(yaml, sizeof(yaml), "global: {redis: \"h:1\", hosts: 0}\n%s", lim);
	parse_bad(yaml, "vrl.yaml:1:31: global.hosts:", "");
	snprintf(yaml, sizeof(yaml), "global: {redis: \"h:1\", port: 1}\n%s", lim);
	parse_bad(yaml, "vrl.yaml:1:24: global.port:", "");

	/* scope: global needs global:, and a kind this vrld holds so:
	 * none is ever held per host while the config says global */
	parse_bad("limits: [{name: r, rate: 1/s, scope: global}]\n",
		  "vrl.yaml:1:38: limits[0].scope:", "needs a global: section");
	parse_bad("limits: [{name: r, rate: 1/s, scope: everywhere}]\n",
		  "vrl.yaml:1:38: limits[0].scope:", "global or host");
	/* a rate can be global: burst >= hosts, a burst a share word holds */
	parse_ok("global: {redis: \"h:1\"}\nlimits: [{name: r, rate: 1/s, scope: global}]\n");
	assert_true(find("r")->flags & VRL_LIMIT_GLOBAL);
	parse_ok("global: {redis: \"h:1\", hosts: 3}\nlimits: [{name: r, rate: 150/s, burst: 3, "
		 "scope: global}, {name: h, rate: 1/s}]\n");
	assert_true(find("r")->flags & VRL_LIMIT_GLOBAL);
	assert_false(find("h")->flags & VRL_LIMIT_GLOBAL);
	parse_bad("global: {redis: \"h:1\", hosts: 3}\nlimits: [{name: r, rate: 150/s, "
		  "scope: global}]\n", "vrl.yaml:2:40: limits[0].scope:",
		  "write rate 148/s with burst 3");
	parse_bad("global: {redis: \"h:1\"}\nlimits: [{name: r, rate: 100000/s, burst: 70000, "
		  "scope: global}]\n", "vrl.yaml:2:57: limits[0].scope:", "above 65535");
	/* quota (hard, soft, once) and slots can be global: blocks.h */
	parse_ok("global: {redis: \"h:1\", hosts: 3}\nlimits: [{name: q, kind: quota, count: 5, "
		 "calendar: day, scope: global}, {name: t, kind: quota, count: 50, calendar: once, "
		 "overage: true, scope: global}, {name: s, kind: slots, count: 2, scope: global}]\n");
	assert_true(find("q")->flags & VRL_LIMIT_GLOBAL);
	assert_true((find("t")->flags & (VRL_LIMIT_GLOBAL | VRL_LIMIT_SOFT)) ==
		    (VRL_LIMIT_GLOBAL | VRL_LIMIT_SOFT));
	assert_true(find("s")->flags & VRL_LIMIT_GLOBAL);
	/* a slots count a host's block word cannot take back */
	parse_bad("global: {redis: \"h:1\"}\nlimits: [{name: s, kind: slots, count: 20000000, "
		  "scope: global}]\n", "vrl.yaml:2:", "above 16777215");
}

/* An override of a global limit is global too, and its own figures must
 * be ones a global limit may have. */
static void test_global_override(void **state)
{
	static const char fmt[] =
		"global: {redis: \"h:1\", hosts: 3}\n"
		"limits:\n"
		"  - name: v\n"
		"    scope: global\n"
		"    per: [vehicle]\n"
		"    rate: 30/s\n"
		"    burst: 3\n"
		"    overrides:\n"
		"      - {match: {make: tesla}, rate: 10/s%s}\n";
	char yaml[512];

	(void)state;
	snprintf(yaml, sizeof(yaml), fmt, "");
	parse_ok(yaml);
	assert_true(find("v")->flags & VRL_LIMIT_GLOBAL);
	assert_true(find("v[make=tesla]")->flags & VRL_LIMIT_GLOBAL);
	assert_int_equal(find("v[make=tesla]")->burst, 3);
	/* burst 1 of three hosts: refused where the override says it */
	snprintf(yaml, sizeof(yaml), fmt, ", burst: 1");
	parse_bad(yaml, "vrl.yaml:9:9: limits[0].overrides[0]:", "v[make=tesla]");
}

/* labels: which per fields key labels show as written; the rest hashed. */
static void test_labels(void **state)
{
	static const char limits[] =
		"limits:\n"
		"  - {name: a, per: [token, org, vehicle, user], rate: 1/s}\n"
		"  - {name: b, per: [make, endpoint, api], rate: 1/s}\n";
	char yaml[512];
	const struct vrl_seg_limit *a, *b;
	struct vrl_limit l;
	char label[VRL_LABEL_MAX];

	(void)state;
	/* by default: api, endpoint and org shown; token, vehicle, user and
	 * attributes hashed */
	parse_ok(limits);
	a = find("a");
	b = find("b");
	assert_int_equal(a->per[0].flags, 0);
	assert_int_equal(a->per[1].flags, VRL_REF_CLEAR);
	assert_int_equal(a->per[2].flags, 0);
	assert_int_equal(a->per[3].flags, 0);
	assert_int_equal(b->per[0].flags, 0);
	assert_int_equal(b->per[1].flags, VRL_REF_CLEAR);
	assert_int_equal(b->per[2].flags, VRL_REF_CLEAR);
	assert_clients_accept();

	/* the list replaces the default */
	snprintf(yaml, sizeof(yaml), "labels: {clear: [vehicle, make]}\n%s", limits);
	parse_ok(yaml);
	a = find("a");
	b = find("b");
	assert_int_equal(a->per[1].flags, 0);
	assert_int_equal(a->per[2].flags, VRL_REF_CLEAR);
	assert_int_equal(b->per[0].flags, VRL_REF_CLEAR);
	assert_int_equal(b->per[1].flags, 0);

	/* the label a worker writes: a hidden value as "#" and 8 hex digits */
	assert_int_equal(vrl_limit_prepare(find("a"), &l), 0);
	vrl_limit_key(&l, &(struct vrl_request){ .token = "secret-token", .org = "acme",
						  .vehicle = "VIN1", .user = "u1" },
		      &(struct vrl_key){ 0 }, label);
	/* token and org hashed, the vehicle shown but cut at 23 bytes */
	assert_int_equal(label[0], '#');
	assert_memory_equal(label + 9, "|#", 2);
	assert_string_equal(label + 19, "|VIN");
	assert_null(strstr(label, "secret"));
	assert_null(strstr(label, "acme"));
	/* with the default, "#........|acme|" and no room for the vehicle's
	 * whole hash, which is left out */
	parse_ok(limits);
	assert_int_equal(vrl_limit_prepare(find("a"), &l), 0);
	vrl_limit_key(&l, &(struct vrl_request){ .token = "secret-token", .org = "acme",
						  .vehicle = "VIN1", .user = "u1" },
		      &(struct vrl_key){ 0 }, label);
	assert_string_equal(label + 9, "|acme|");

	/* none shown; and the errors */
	snprintf(yaml, sizeof(yaml), "labels: {clear: []}\n%s", limits);
	parse_ok(yaml);
	assert_int_equal(find("a")->per[1].flags, 0);
	snprintf(yaml, sizeof(yaml), "labels: {clear: [org, token]}\n%s", limits);
	parse_bad(yaml, "vrl.yaml:1:23: labels.clear[1]", "a token is an API secret");
	snprintf(yaml, sizeof(yaml), "labels: {clear: [vehicles]}\n%s", limits);
	parse_bad(yaml, "vrl.yaml:1:18: labels.clear[0]", "expected vehicle");
	snprintf(yaml, sizeof(yaml), "labels: {clear: [model]}\n%s", limits);
	parse_bad(yaml, "vrl.yaml:1:18: labels.clear", "unknown field \"model\": no limit is "
		  "keyed by it");
	snprintf(yaml, sizeof(yaml), "labels: {clear: org}\n%s", limits);
	parse_bad(yaml, "vrl.yaml:1:17: labels.clear", "expected a list of fields");
	snprintf(yaml, sizeof(yaml), "labels: [org]\n%s", limits);
	parse_bad(yaml, "vrl.yaml:1:9: labels", "expected a mapping such as {clear: [org]}");
	snprintf(yaml, sizeof(yaml), "labels: {hide: [org]}\n%s", limits);
	parse_bad(yaml, "vrl.yaml:1:10: labels.hide", "unknown key, expected one of: clear");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full_config),
		cmocka_unit_test(test_good_forms),
		cmocka_unit_test(test_presets_option),
		cmocka_unit_test(test_bad_syntax),
		cmocka_unit_test(test_too_deep),
		cmocka_unit_test(test_huge_match),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_wrong_type),
		cmocka_unit_test(test_bad_rate),
		cmocka_unit_test(test_zero_burst),
		cmocka_unit_test(test_adaptive),
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_bad_segment),
		cmocka_unit_test(test_daemon_prod),
		cmocka_unit_test(test_textfile_mode),
		cmocka_unit_test(test_duplicate_name),
		cmocka_unit_test(test_quota_and_slots),
		cmocka_unit_test(test_pools),
		cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_too_many),
		cmocka_unit_test(test_name_too_long),
		cmocka_unit_test(test_unknown_field),
		cmocka_unit_test(test_unknown_preset),
		cmocka_unit_test(test_refused_whole),
		cmocka_unit_test(test_default_config),
		cmocka_unit_test(test_each_preset),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_load_special_files),
		cmocka_unit_test(test_load_too_large),
		cmocka_unit_test(test_alerts),
		cmocka_unit_test(test_global_shadow),
		cmocka_unit_test(test_labels),
		cmocka_unit_test(test_global_section),
		cmocka_unit_test(test_global_override),
		cmocka_unit_test(test_near_miss_field),
		cmocka_unit_test(test_unmatched_policy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
