/*
 * test_vrlctl_fmt.c - vrlctl's pure helpers: rate and time formatting, and
 * the JSON string escaper (durations: test_duration.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "json_writer.h"

#define NS_PER_S UINT64_C(1000000000)

static void test_rates(void **state)
{
	char b[64];

	(void)state;
	assert_string_equal(fmt_rate(b, sizeof(b), 150, NS_PER_S), "150/s");
	assert_string_equal(fmt_rate(b, sizeof(b), 2, 60 * NS_PER_S), "2/min");
	assert_string_equal(fmt_rate(b, sizeof(b), 1000, 3600 * NS_PER_S), "1000/h");
	assert_string_equal(fmt_rate(b, sizeof(b), 1, 30 * NS_PER_S), "1/30s");
	assert_string_equal(fmt_rate(b, sizeof(b), 1, 90 * NS_PER_S), "1/90s");
	assert_string_equal(fmt_rate(b, sizeof(b), 5, 120 * NS_PER_S), "5/2min");
	assert_string_equal(fmt_rate(b, sizeof(b), 10, 250000000u), "10/250ms");
	assert_string_equal(fmt_rate(b, sizeof(b), 7, 3), "7/3ns");
}

static void test_times(void **state)
{
	char b[64];

	(void)state;
	assert_string_equal(fmt_secs(b, sizeof(b), 1234567890u), "1.234 s");
	assert_string_equal(fmt_secs(b, sizeof(b), 0), "0.000 s");
	assert_string_equal(fmt_bytes(b, sizeof(b), 770048), "752.0 KiB");
	assert_string_equal(fmt_bytes(b, sizeof(b), 100), "100.0 B");
	assert_string_equal(fmt_printable(b, sizeof(b), "a\x1b[2Jb"), "a?[2Jb");
}

/* The escaper's output for @in. */
static char *escaped(const char *in)
{
	static char out[256];
	FILE *f = fmemopen(out, sizeof(out), "w");

	assert_non_null(f);
	json_escape(f, in);
	fclose(f);
	return out;
}

#define FFFD "\xef\xbf\xbd"   /* U+FFFD, as json-c prints it: raw UTF-8 */

static void test_json_escape(void **state)
{
	(void)state;
	assert_string_equal(escaped("plain"), "\"plain\"");
	assert_string_equal(escaped("q\"b\\s/"), "\"q\\\"b\\\\s/\"");
	assert_string_equal(escaped("\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\"");
	assert_string_equal(escaped("\x01\x1f"), "\"\\u0001\\u001f\"");
	assert_string_equal(escaped("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x97"),
			    "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x97\"");
	assert_string_equal(escaped("\xff"), "\"" FFFD "\"");
	assert_string_equal(escaped("\xc0\xaf"), "\"" FFFD FFFD "\"");         /* overlong */
	assert_string_equal(escaped("\xed\xa0\x80"), "\"" FFFD FFFD FFFD "\""); /* surrogate */
	assert_string_equal(escaped("ab\xe2\x82"), "\"ab" FFFD FFFD "\"");     /* cut short */
}

static void test_json_writer(void **state)
{
	char out[512];
	FILE *f = fmemopen(out, sizeof(out), "w");
	struct json j;

	(void)state;
	assert_non_null(f);
	json_init(&j, f);
	json_obj_begin(&j, NULL);
	json_str(&j, "s", "x");
	json_u64(&j, "u", UINT64_MAX);
	json_i64(&j, "i", -3);
	json_bool(&j, "b", true);
	json_null(&j, "n");
	json_secs(&j, "t", 1500000000u);
	json_pct10(&j, "p", 995);
	json_arr_begin(&j, "a");
	json_u64(&j, NULL, 1);
	json_obj_begin(&j, NULL);
	json_obj_end(&j);
	json_str(&j, NULL, NULL);
	json_arr_end(&j);
	json_obj_end(&j);
	json_finish(&j);
	fclose(f);
	assert_string_equal(out, "{\"s\":\"x\",\"u\":18446744073709551615,\"i\":-3,\"b\":true,"
			    "\"n\":null,\"t\":1.500000000,\"p\":99.5,\"a\":[1,{},null]}\n");
}

/* Durations and quota periods as people read them. */
static void test_human_times(void **state)
{
	char b[64];

	(void)state;
	assert_string_equal(fmt_dur(b, sizeof(b), 51138480000000u), "14h12m");
	assert_string_equal(fmt_dur(b, sizeof(b), 250000000u), "250ms");
	assert_string_equal(fmt_dur(b, sizeof(b), 12345000000u), "12.3s");
	assert_string_equal(fmt_dur(b, sizeof(b), 245 * NS_PER_S), "4m05s");
	assert_string_equal(fmt_dur(b, sizeof(b), 3 * 86400 * NS_PER_S + 4 * 3600 * NS_PER_S),
			    "3d04h");
	/* 2026-11-01T00:00:00Z */
	assert_string_equal(fmt_period(b, sizeof(b), VRL_CAL_MONTH, 1, 1793491200 * NS_PER_S),
			    "2026-11");
	assert_string_equal(fmt_period(b, sizeof(b), VRL_CAL_MONTH, 20,
				       (1793491200 + 19 * 86400) * NS_PER_S), "2026-11-20..");
	assert_string_equal(fmt_period(b, sizeof(b), VRL_CAL_DAY, 0,
				       (1793491200 + 25 * 86400) * NS_PER_S), "2026-11-26");
	assert_string_equal(fmt_period(b, sizeof(b), VRL_CAL_ONCE, 0, 0), "once");
}

/* A table wider than its width wraps its 'w' columns and its notes. */
static void test_table_wraps(void **state)
{
	static const char *const head[] = { "NAME", "KIND", "MATCH" };
	char out[1024], *line, *save;
	FILE *f = fmemopen(out, sizeof(out), "w");
	struct fmt_table t;
	unsigned lines = 0;

	(void)state;
	assert_non_null(f);
	assert_int_equal(fmt_table_init(&t, 3, "wlw", head), 0);
	t.width = 40;
	assert_int_equal(fmt_table_row(&t, (const char *const[]){ "samsara.legacy.get_dispatch_routes",
				       "rate", "api=samsara endpoint=GET /v1/fleet/dispatch/routes" }),
			 0);
	fmt_table_note(&t, "match api=samsara endpoint=GET /v1/fleet/dispatch/routes; overage");
	fmt_table_print(&t, f);
	fmt_table_free(&t);
	fclose(f);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strlen(line) > 40)
			fail_msg("line of %zu columns: \"%s\"", strlen(line), line);
		lines++;
	}
	assert_true(lines >= 5);   /* the heading, a row over lines, its note over lines */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rates),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_json_escape),
		cmocka_unit_test(test_json_writer),
		cmocka_unit_test(test_human_times),
		cmocka_unit_test(test_table_wraps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
