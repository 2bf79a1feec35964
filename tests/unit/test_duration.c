/*
 * test_duration.c - the one parser of durations, rates and counts
 * (lib/common/duration.c) that vrld's config, vrlctl and the Retry-After
 * header share: every spelling each of them took before they shared it is
 * taken by all, and what none took is refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "duration.h"

#define NS_PER_S UINT64_C(1000000000)

/* ---- as vrld's config writes them ------------------------------------------------ */

static uint64_t dur(const char *s)
{
	uint64_t ns = 0;

	if (vrl_parse_duration(s, &ns) != 0)
		fail_msg("duration %s refused", s);
	return ns;
}

static void test_duration_good(void **state)
{
	(void)state;
	assert_int_equal(dur("30s"), 30 * NS_PER_S);
	assert_int_equal(dur("1.5min"), 90 * NS_PER_S);
	assert_int_equal(dur("250ms"), 250000000);
	assert_int_equal(dur("2h"), 7200 * NS_PER_S);
	assert_int_equal(dur("0.40235"), 402350000);
	assert_int_equal(dur("0.000000001"), 1);
	assert_int_equal(dur("1.999999999s"), 1999999999);
	assert_int_equal(dur("0.1s"), 100000000);
	assert_int_equal(dur("0.3"), 300000000);
	assert_int_equal(dur("1d"), 86400 * NS_PER_S);
	assert_int_equal(dur("3days"), 3 * 86400 * NS_PER_S);
	assert_int_equal(dur("10us"), 10000);
	assert_int_equal(dur("7ns"), 7);
	assert_int_equal(dur("1sec"), NS_PER_S);
	assert_int_equal(dur("2seconds"), 2 * NS_PER_S);
	assert_int_equal(dur("1minute"), 60 * NS_PER_S);
	assert_int_equal(dur("1hour"), 3600 * NS_PER_S);
	assert_int_equal(dur("0"), 0);
	/* finer than a nanosecond rounds up, never down */
	assert_int_equal(dur("1.5ns"), 2);
	assert_int_equal(dur("0.0000000001"), 1);
	assert_int_equal(dur("18446744073709551615ns"), UINT64_MAX);
}

static void test_duration_bad(void **state)
{
	static const char *const bad[] = {
		"", "-1s", "+1s", "s", "1.s", "1 s", " 1s", "1s ", "1sx", "1.2.3s",
		"1e3s", "0x10s", "18446744073709551616ns", "18446744073709551615s", "1/s", "abc",
		"300000000000000000000000000000h",
	};
	uint64_t ns;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (vrl_parse_duration(bad[i], &ns) == 0)
			fail_msg("duration \"%s\" accepted as %llu", bad[i], (unsigned long long)ns);
	assert_int_equal(vrl_parse_duration(NULL, &ns), -1);
}

static void test_rate_good(void **state)
{
	uint64_t n, p;

	(void)state;
	assert_int_equal(vrl_parse_rate("150/s", &n, &p), 0);
	assert_int_equal(n, 150);
	assert_int_equal(p, NS_PER_S);
	assert_int_equal(vrl_parse_rate("2/min", &n, &p), 0);
	assert_int_equal(n, 2);
	assert_int_equal(p, 60 * NS_PER_S);
	assert_int_equal(vrl_parse_rate("1/30s", &n, &p), 0);
	assert_int_equal(n, 1);
	assert_int_equal(p, 30 * NS_PER_S);
	assert_int_equal(vrl_parse_rate("5/1.5min", &n, &p), 0);
	assert_int_equal(n, 5);
	assert_int_equal(p, 90 * NS_PER_S);
	assert_int_equal(vrl_parse_rate("1000/hour", &n, &p), 0);
	assert_int_equal(p, 3600 * NS_PER_S);
	assert_int_equal(vrl_parse_rate("10/250ms", &n, &p), 0);
	assert_int_equal(p, 250000000);
}

static void test_rate_bad(void **state)
{
	static const char *const bad[] = {
		"", "150", "150/", "/s", "0/s", "1/0s", "150 per s", "150/ s", "150/30", "-1/s",
		"1.5/s", "150/sx", "150/s/s", "99999999999999999999/s",
	};
	uint64_t n, p;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (vrl_parse_rate(bad[i], &n, &p) == 0)
			fail_msg("rate \"%s\" accepted", bad[i]);
}

/* ---- as vrlctl's arguments write them ------------------------------------------- */

static void test_vrlctl_spellings(void **state)
{
	(void)state;
	assert_true(dur("30s") == 30 * NS_PER_S);
	assert_true(dur("1.5min") == 90 * NS_PER_S);
	assert_true(dur("1.5m") == 90 * NS_PER_S);
	assert_true(dur("250ms") == 250000000u);
	assert_true(dur("0.40235") == 402350000u);
	assert_true(dur("2") == 2 * NS_PER_S);
	assert_true(dur("2h") == 7200 * NS_PER_S);
	assert_true(dur("1d") == 86400 * NS_PER_S);
	assert_true(dur("17ns") == 17);
	assert_true(dur("1.5us") == 1500);
	assert_true(dur(".5s") == NS_PER_S / 2);
	assert_true(dur("0.1234567891") == 123456790u);          /* rounds up */
	assert_true(dur("0.0000000000000000000001") == 1);        /* past 18 digits */
	assert_true(dur("0.1000000000000000000000") == 100000000u);
	assert_true(dur("18446744073709551615ns") == UINT64_MAX);
}

static void test_vrlctl_bad(void **state)
{
	static const char *const bad[] = {
		"", "s", ".", "-1", "1e3", "5x", "1 s", "1..2", "30S",
		"18446744073709551616ns", "18446744073709551615s", "99999999999999999999",
	};
	uint64_t ns;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (vrl_parse_duration(bad[i], &ns) == 0)
			fail_msg("duration \"%s\" accepted as %llu", bad[i], (unsigned long long)ns);
	assert_int_equal(vrl_parse_duration(NULL, &ns), -1);
}

static void test_counts(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(vrl_parse_count("42", NULL, &v), 0);
	assert_true(v == 42);
	assert_int_equal(vrl_parse_count("1.5", NULL, &v), -1);
	assert_int_equal(vrl_parse_count("", NULL, &v), -1);
	assert_int_equal(vrl_parse_count("4x", NULL, &v), -1);
	assert_int_equal(vrl_parse_count("-4", NULL, &v), -1);
}

/* ---- the union, and a header's seconds --------------------------------------------- */

/* The spellings one reader took and the other did not: both take them now. */
static void test_union(void **state)
{
	(void)state;
	assert_int_equal(dur("1m"), 60 * NS_PER_S);          /* vrlctl's */
	assert_int_equal(dur(".5s"), NS_PER_S / 2);          /* vrlctl's */
	assert_int_equal(dur("2minutes"), 120 * NS_PER_S);   /* the config's */
	assert_int_equal(dur("1day"), 86400 * NS_PER_S);     /* the config's */
	assert_int_equal(dur("3hours"), 3 * 3600 * NS_PER_S);
}

/* Seconds as a Retry-After sends them: no unit, digits both sides of a point. */
static void test_bare(void **state)
{
	static const char *const bad[] = { "1s", ".5", "1.", "", "s", "1 ", "-1", "+1", "1e3" };
	uint64_t ns;

	(void)state;
	assert_int_equal(vrl_parse_duration_n("30", 2, VRL_DUR_BARE, &ns), 0);
	assert_int_equal(ns, 30 * NS_PER_S);
	assert_int_equal(vrl_parse_duration_n("0.40235xyz", 7, VRL_DUR_BARE, &ns), 0);
	assert_int_equal(ns, 402350000);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (vrl_parse_duration_n(bad[i], __builtin_strlen(bad[i]), VRL_DUR_BARE, &ns) == 0)
			fail_msg("bare seconds \"%s\" accepted", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_good),
		cmocka_unit_test(test_duration_bad),
		cmocka_unit_test(test_rate_good),
		cmocka_unit_test(test_rate_bad),
		cmocka_unit_test(test_vrlctl_spellings),
		cmocka_unit_test(test_vrlctl_bad),
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_union),
		cmocka_unit_test(test_bare),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
