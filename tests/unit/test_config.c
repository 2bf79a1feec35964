/*
 * test_config.c - the YAML config: good forms, and every kind of bad one
 * refused with file, line and field.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "config.h"

#define S UINT64_C(1000000000)

static struct vrl_daemon_config dc;
static char err[VRL_CONFIG_ERR_MAX];

static int parse(const char *text)
{
	return vrl_config_parse(text, strlen(text), "t.yaml", &dc, err);
}

static void durations_and_rates(void **state)
{
	uint64_t ns, count, period;

	(void)state;
	assert_int_equal(vrl_parse_duration("0.40235", &ns), 0);
	assert_int_equal(ns, 402350000);
	assert_int_equal(vrl_parse_duration("1.5min", &ns), 0);
	assert_int_equal(ns, 90 * S);
	assert_int_equal(vrl_parse_duration("250ms", &ns), 0);
	assert_int_equal(ns, 250000000);
	assert_int_equal(vrl_parse_duration("-1s", &ns), -1);
	assert_int_equal(vrl_parse_duration("5 parsecs", &ns), -1);
	assert_int_equal(vrl_parse_duration("", &ns), -1);
	assert_int_equal(vrl_parse_rate("150/s", &count, &period), 0);
	assert_true(count == 150 && period == S);
	assert_int_equal(vrl_parse_rate("2/min", &count, &period), 0);
	assert_true(count == 2 && period == 60 * S);
	assert_int_equal(vrl_parse_rate("1/30s", &count, &period), 0);
	assert_true(count == 1 && period == 30 * S);
	assert_int_equal(vrl_parse_rate("150 per s", &count, &period), -1);
	assert_int_equal(vrl_parse_rate("0/s", &count, &period), -1);
}

static void a_full_config(void **state)
{
	(void)state;
	assert_int_equal(parse("segment: {name: /x, mode: \"0640\", keys: 10, on_full: allow}\n"
			       "daemon: {sweep_interval: 250ms, idle_evict: 1h}\n"
			       "limits:\n"
			       "  - name: a\n"
			       "    match: {api: samsara, endpoint: \"GET /v1/*\", make: tesla}\n"
			       "    per: [token, region]\n"
			       "    rate: 150/s\n"
			       "    burst: 3\n"
			       "    shadow: true\n"
			       "  - {name: b, kind: gate, per: [vehicle]}\n"), 0);
	assert_string_equal(dc.seg.name, "/x");
	assert_int_equal(dc.seg.mode, 0640);
	assert_int_equal(dc.seg.keys, 10);
	assert_int_equal(dc.cfg.flags, VRL_CFG_FAIL_OPEN);
	assert_int_equal(dc.sweep_interval_ns, 250000000);
	assert_int_equal(dc.cfg.nlimits, 2);
	struct vrl_seg_limit *a = &dc.cfg.limits[0];
	assert_int_equal(a->kind, VRL_KIND_RATE);
	assert_int_equal(a->emission_ns, 6666667);
	assert_int_equal(a->tolerance_ns, 3 * 6666667);
	assert_int_equal(a->flags, VRL_LIMIT_SHADOW);
	assert_int_equal(a->nmatch, 3);
	assert_int_equal(a->match[1].glob, 1);
	assert_int_equal(a->match[2].ref.field, VRL_FIELD_ATTR);
	assert_string_equal(a->match[2].ref.attr, "make");
	assert_int_equal(a->per[1].field, VRL_FIELD_ATTR);
	assert_int_equal(dc.cfg.limits[1].kind, VRL_KIND_GATE);
}

static void default_and_presets(void **state)
{
	(void)state;
	assert_int_equal(vrl_config_default(&dc, err), 0);
	assert_string_equal(dc.cfg.source, "built-in");
	assert_true(dc.cfg.nlimits >= 12);
	struct vrl_seg_limit *app = &dc.cfg.limits[0];
	assert_string_equal(app->name, "smartcar.app");
	assert_int_equal(app->count, 2);
	assert_int_equal(app->period_ns, 60 * S);
	assert_int_equal(app->burst, 120);
	assert_int_equal(app->emission_ns, 30 * S);
	/* a file's segment settings override its presets', in any order */
	assert_int_equal(parse("segment: {name: /mine}\npresets: [default]\n"), 0);
	assert_string_equal(dc.seg.name, "/mine");
}

static void expect_error(const char *text, const char *where, const char *what)
{
	assert_int_equal(parse(text), -1);
	if (!strstr(err, where) || !strstr(err, what))
		fail_msg("error \"%s\" lacks \"%s\" or \"%s\"", err, where, what);
}

static void bad_configs(void **state)
{
	(void)state;
	expect_error("limits: [\n", "t.yaml:2:", "(yaml)");
	expect_error("limit:\n  - {name: a}\n", "t.yaml:1:1: limit", "unknown section");
	expect_error("limits:\n  - name: a\n    rat: 1/s\n", "t.yaml:3:10: limits[0].rat",
		     "unknown field");
	expect_error("limits:\n  - name: a\n    rate: 150 per s\n", "t.yaml:3:11: limits[0].rate",
		     "expected N/period");
	expect_error("limits:\n  - {name: a, rate: 1/s, burst: 0}\n", "limits[0].burst", ">= 1");
	expect_error("limits:\n  - {name: a, rate: 1/s}\n  - {name: a, rate: 2/s}\n",
		     "t.yaml:3:5: limits[1]", "exists already");
	expect_error("limits:\n  - {name: a}\n", "limits[0]", "needs rate");
	expect_error("limits:\n  - {name: a, rate: 1/s, per: {x: 1}}\n", "limits[0].per",
		     "expected a list");
	expect_error("limits:\n  - {name: a, rate: 1/s, kind: window}\n", "limits[0].kind",
		     "rate or gate");
	expect_error("segment: {mode: \"0999\"}\n", "segment.mode", "octal");
	expect_error("segment: {name: vrl}\n", "segment.name", "leading '/'");
	expect_error("segment: {group: no-such-group-here}\n", "segment.group", "no group");
	expect_error("segment: {keys: 0}\n", "segment.keys", "capacity");
	expect_error("presets: [nope]\n", "presets", "no preset \"nope\"");
	expect_error("limits:\n  - {name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,"
		     " rate: 1/s}\n", "limits[0].name", "1 to 63 bytes");
	expect_error("limits:\n  - {name: a, rate: 1/s, per: [a, b, c, d, e]}\n", "limits[0].per",
		     "at most 4");
}

static void too_many_limits(void **state)
{
	char text[8192] = "limits:\n";

	(void)state;
	for (unsigned i = 0; i <= VRL_MAX_LIMITS; i++) {
		char line[64];

		snprintf(line, sizeof(line), "  - {name: l%u, rate: 1/s}\n", i);
		strcat(text, line);
	}
	expect_error(text, "limits[64]", "at most 64 limits");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(durations_and_rates),
		cmocka_unit_test(a_full_config),
		cmocka_unit_test(default_and_presets),
		cmocka_unit_test(bad_configs),
		cmocka_unit_test(too_many_limits),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
