/*
 * test_gcra.c - GCRA arithmetic with time passed in by hand.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>

#include "gcra.h"

#define S UINT64_C(1000000000)
#define T0 (UINT64_C(1000) * S) /* an arbitrary monotonic start */

/* Smartcar: a bucket of 120 refilling 2 per minute. */
static void smartcar_bucket(void **state)
{
	struct vrl_gcra g;
	uint64_t tat = 0;
	struct vrl_gcra_result r;

	(void)state;
	assert_int_equal(vrl_gcra_init(&g, 2, 60 * S, 120), 0);
	assert_int_equal(g.emission_ns, 30 * S);
	for (int i = 0; i < 120; i++) {
		r = vrl_gcra_test(&g, tat, T0, T0, 1);
		assert_true(r.conforms);
		assert_int_equal(r.remaining, 119 - i);
		tat = r.new_tat;
	}
	r = vrl_gcra_test(&g, tat, T0, T0, 1);
	assert_false(r.conforms);
	assert_int_equal(r.retry_after, 30 * S);
	assert_int_equal(r.remaining, 0);
	/* one permit back after exactly 30 s, not a nanosecond earlier */
	assert_false(vrl_gcra_test(&g, tat, T0 + 30 * S - 1, T0 + 30 * S - 1, 1).conforms);
	assert_true(vrl_gcra_test(&g, tat, T0 + 30 * S, T0 + 30 * S, 1).conforms);
	/* the whole bucket back after 60 minutes */
	assert_int_equal(vrl_gcra_available(&g, tat, T0 + 3600 * S), 120);
	assert_int_equal(r.reset, 3600 * S);
}

/* Rates that do not divide the period round the interval up: never faster. */
static void rounding_is_conservative(void **state)
{
	struct vrl_gcra g;

	(void)state;
	assert_int_equal(vrl_gcra_init(&g, 150, S, 1), 0);
	assert_int_equal(g.emission_ns, 6666667);        /* ceil(1e9 / 150) */
	assert_true(g.emission_ns * 150 >= S);
	assert_int_equal(vrl_gcra_init(&g, 3, 1, 1), 0);  /* 3 per ns: one ns each */
	assert_int_equal(g.emission_ns, 1);
}

static void weighted_costs(void **state)
{
	struct vrl_gcra g;
	struct vrl_gcra_result r;

	(void)state;
	assert_int_equal(vrl_gcra_init(&g, 10, S, 10), 0);
	r = vrl_gcra_test(&g, 0, T0, T0, 7);
	assert_true(r.conforms);
	assert_int_equal(r.remaining, 3);
	r = vrl_gcra_test(&g, r.new_tat, T0, T0, 4);   /* 4 > 3 left */
	assert_false(r.conforms);
	assert_int_equal(r.retry_after, S / 10);       /* one permit short */
	assert_int_equal(r.remaining, 3);
	/* a cost above the bucket can never pass */
	r = vrl_gcra_test(&g, 0, T0, T0, 11);
	assert_false(r.conforms);
	assert_int_equal(r.retry_after, UINT64_MAX);
}

/* Huge costs, rates and intervals saturate instead of wrapping. */
static void no_overflow(void **state)
{
	struct vrl_gcra g;
	struct vrl_gcra_result r;

	(void)state;
	assert_int_equal(vrl_gcra_init(&g, 1, UINT64_MAX / 2, 2), -ERANGE);
	assert_int_equal(vrl_gcra_init(&g, 0, S, 1), -EINVAL);
	assert_int_equal(vrl_gcra_init(&g, 1, S, 0), -EINVAL);
	assert_int_equal(vrl_gcra_init(&g, UINT64_MAX, S, UINT64_MAX / 4), 0);
	r = vrl_gcra_test(&g, 0, T0, T0, UINT64_MAX / 4);
	assert_true(r.conforms);
	assert_int_equal(vrl_gcra_init(&g, 1, 365 * 24 * 3600 * S, 3), 0);
	r = vrl_gcra_test(&g, UINT64_MAX / 8, T0, T0, 1);
	assert_false(r.conforms);
	assert_true(r.retry_after > 0 && r.retry_after < UINT64_MAX);
}

/* Burst then steady rate: exactly burst + W/T in any window. */
static void window_bound(void **state)
{
	struct vrl_gcra g;
	uint64_t tat = 0, granted = 0;

	(void)state;
	assert_int_equal(vrl_gcra_init(&g, 100, S, 5), 0);
	for (uint64_t t = T0; t < T0 + S; t += S / 1000) {   /* try every ms for 1 s */
		for (;;) {
			struct vrl_gcra_result r = vrl_gcra_test(&g, tat, t, t, 1);

			if (!r.conforms)
				break;
			tat = r.new_tat;
			granted++;
		}
	}
	/* window [T0, T0 + 1 s - 1 ms]: 5 + floor(0.999 s / 10 ms) = 104 */
	assert_int_equal(granted, 104);
}

/* A reservation at a future time counts there: the wait path. */
static void reserve_future(void **state)
{
	struct vrl_gcra g;
	struct vrl_gcra_result r;

	(void)state;
	assert_int_equal(vrl_gcra_init(&g, 1, S, 1), 0);
	r = vrl_gcra_test(&g, 0, T0, T0, 1);
	assert_true(r.conforms);
	/* now denied with 1 s to wait; reserved at T0 + 1 s it conforms */
	assert_false(vrl_gcra_test(&g, r.new_tat, T0, T0, 1).conforms);
	r = vrl_gcra_test(&g, r.new_tat, T0, T0 + S, 1);
	assert_true(r.conforms);
	assert_int_equal(r.new_tat, T0 + 2 * S);
	/* and the next one waits until T0 + 2 s */
	r = vrl_gcra_test(&g, r.new_tat, T0, T0, 1);
	assert_int_equal(r.retry_after, 2 * S);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(smartcar_bucket),
		cmocka_unit_test(rounding_is_conservative),
		cmocka_unit_test(weighted_costs),
		cmocka_unit_test(no_overflow),
		cmocka_unit_test(window_bound),
		cmocka_unit_test(reserve_future),
	};

	return cmocka_run_group_tests_name("gcra", tests, NULL, NULL);
}
