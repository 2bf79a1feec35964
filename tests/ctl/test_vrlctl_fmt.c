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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rates),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_json_escape),
		cmocka_unit_test(test_json_writer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
