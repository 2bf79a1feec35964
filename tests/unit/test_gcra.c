/*
 * test_gcra.c - GCRA arithmetic with time passed in by hand.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>

#include "gcra.h"

__extension__ typedef unsigned __int128 u128;

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
	/* a bucket of VRL_GCRA_TIME_MAX ns (~36 years) no longer fits a word */
	assert_int_equal(vrl_gcra_init(&g, 1, VRL_GCRA_TIME_MAX, 1), -ERANGE);
	assert_int_equal(vrl_gcra_init(&g, 0, S, 1), -EINVAL);
	assert_int_equal(vrl_gcra_init(&g, 1, S, 0), -EINVAL);
	assert_int_equal(vrl_gcra_init(&g, UINT64_MAX, S, VRL_GCRA_TIME_MAX / 2), 0);
	r = vrl_gcra_test(&g, 0, T0, T0, VRL_GCRA_TIME_MAX / 2);
	assert_true(r.conforms);
	assert_true(r.new_tat <= VRL_GCRA_TIME_MAX);
	assert_int_equal(vrl_gcra_init(&g, 1, 365 * 24 * 3600 * S, 3), 0);
	r = vrl_gcra_test(&g, VRL_GCRA_TIME_MAX / 2, T0, T0, 1);
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

/* ---- reloads: a key keeps its fill (gcra.h) ---------------------------------- */

struct params {
	uint64_t count, period, burst;
};

/* Every direction of change: rate down and up, burst up and down, both. */
static const struct params changes[][2] = {
	{ { 200, S, 10 }, { 50, S, 10 } },    /* rate down: the reported case */
	{ { 200, S, 10 }, { 100, S, 10 } },
	{ { 50, S, 10 }, { 200, S, 10 } },    /* rate up */
	{ { 50, S, 10 }, { 50, S, 20 } },     /* burst up */
	{ { 50, S, 20 }, { 50, S, 4 } },      /* burst down */
	{ { 200, S, 20 }, { 400, S, 2 } },    /* rate up, burst down */
	{ { 100, S, 2 }, { 20, S, 8 } },      /* rate down, burst up */
	{ { 100, S, 8 }, { 30, S, 3 } },      /* both down */
	{ { 3, S, 3 }, { 1000, S, 100 } },    /* both up */
	{ { 7, 3 * S, 5 }, { 11, 2 * S, 6 } },/* intervals that do not divide */
};
#define NCHANGES (sizeof(changes) / sizeof(changes[0]))

static void init2(size_t k, struct vrl_gcra *a, struct vrl_gcra *b)
{
	assert_int_equal(vrl_gcra_init(a, changes[k][0].count, changes[k][0].period,
				       changes[k][0].burst), 0);
	assert_int_equal(vrl_gcra_init(b, changes[k][1].count, changes[k][1].period,
				       changes[k][1].burst), 0);
}

/*
 * At the instant of a change the key has the permits it had, capped at the
 * new bucket: empty stays empty, full keeps min(b1, b2), and a part of a
 * permit already refilled is kept too (rounded toward fewer, by under 1 ns).
 */
static void convert_keeps_fill(void **state)
{
	(void)state;
	for (size_t k = 0; k < NCHANGES; k++) {
		struct vrl_gcra a, b;

		init2(k, &a, &b);
		for (uint64_t used = 0; used <= a.tolerance_ns + a.emission_ns;
		     used += a.emission_ns / 4 + 1) {
			uint64_t tat = T0 + used, f1 = vrl_gcra_available(&a, tat, T0);
			uint64_t t2 = vrl_gcra_convert(&a, &b, tat, T0);
			uint64_t want = f1 < b.burst ? f1 : b.burst;

			assert_int_equal(vrl_gcra_available(&b, t2, T0), want);
			assert_true(t2 >= T0 && t2 - T0 <= b.tolerance_ns);
			/* the real fill: f1 + part of a permit, as ns of the new bucket */
			if (used < a.tolerance_ns && (a.tolerance_ns - used) / a.emission_ns < b.burst) {
				u128 keep = (u128)(a.tolerance_ns - used) * b.emission_ns /
					    a.emission_ns;

				assert_int_equal(t2 - T0, b.tolerance_ns - (uint64_t)keep);
			}
		}
		/* a bucket full long ago, and an empty one */
		assert_int_equal(vrl_gcra_available(&b, vrl_gcra_convert(&a, &b, 1, T0), T0),
				 a.burst < b.burst ? a.burst : b.burst);
		assert_int_equal(vrl_gcra_available(&b, vrl_gcra_convert(&a, &b, T0 + a.tolerance_ns,
									 T0), T0), 0);
		/* unknown parameters: full keeps one permit, anything else none */
		assert_int_equal(vrl_gcra_available(&b, vrl_gcra_convert(NULL, &b, T0, T0), T0), 1);
		assert_int_equal(vrl_gcra_available(&b, vrl_gcra_convert(NULL, &b, T0 + 1, T0), T0),
				 0);
	}
	/* half a permit refilled stays half a permit: 2.5 permits of 10 ms
	 * become 2.5 of 20 ms, and the third is there 10 ms later */
	{
		struct vrl_gcra a, b;
		uint64_t t2;

		assert_int_equal(vrl_gcra_init(&a, 100, S, 10), 0);
		assert_int_equal(vrl_gcra_init(&b, 50, S, 10), 0);
		t2 = vrl_gcra_convert(&a, &b, T0 + a.tolerance_ns - 25 * (S / 1000), T0);
		assert_int_equal(vrl_gcra_available(&b, t2, T0), 2);
		assert_int_equal(vrl_gcra_available(&b, t2, T0 + 10 * (S / 1000) - 1), 2);
		assert_int_equal(vrl_gcra_available(&b, t2, T0 + 10 * (S / 1000)), 3);
	}
}

/* A tiny deterministic generator for the patterns below. */
static uint64_t lcg(uint64_t *x)
{
	*x = *x * 6364136223846793005u + 1442695040888963407u;
	return *x >> 33;
}

/*
 * Grants with time passed in around a change at @c: under @a before it,
 * converted at @c, under @b after. Tries come every @step ns with a cost
 * of 1 (or 1..3 when @mixed), some reserving a future time before @c as a
 * waiting acquire does. Records each grant's time and cost.
 */
static size_t simulate(const struct vrl_gcra *a, const struct vrl_gcra *b, uint64_t c,
		       uint64_t end, uint64_t step, bool mixed, uint64_t seed, uint64_t *at,
		       uint64_t *cost, size_t cap)
{
	uint64_t tat = 0, x = seed;
	size_t n = 0;
	bool converted = false;

	for (uint64_t t = T0; t < end && n < cap; t += step) {
		const struct vrl_gcra *g = t < c ? a : b;
		uint64_t want = mixed ? 1 + lcg(&x) % 3 : 1, when = t;
		struct vrl_gcra_result r;

		if (t >= c && !converted) {
			tat = vrl_gcra_convert(a, b, tat, c);
			converted = true;
		}
		/* before the change, one try in 8 waits (its time at most c) */
		if (t < c && mixed && lcg(&x) % 8 == 0) {
			r = vrl_gcra_test(g, tat, t, t, want);
			if (!r.conforms && r.retry_after != UINT64_MAX && t + r.retry_after <= c)
				when = t + r.retry_after;
		}
		r = vrl_gcra_test(g, tat, t, when, want);
		if (!r.conforms)
			continue;
		tat = r.new_tat;
		at[n] = when;
		cost[n++] = want;
	}
	return n;
}

/*
 * Permits granted in [at[i], at[j]] against max(b1, b2) + (at[j] - at[i]) /
 * min(T1, T2), over every pair (so every interval); and, from @c on, the new
 * config alone. Returns how many intervals broke either.
 */
static size_t broken(const struct vrl_gcra *a, const struct vrl_gcra *b, uint64_t c,
		     const uint64_t *at, const uint64_t *cost, size_t n)
{
	uint64_t bmax = a->burst > b->burst ? a->burst : b->burst;
	uint64_t tmin = a->emission_ns < b->emission_ns ? a->emission_ns : b->emission_ns;
	size_t bad = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t sum = 0;

		for (size_t j = i; j < n; j++) {
			sum += cost[j];
			bad += sum > bmax + (at[j] - at[i]) / tmin;
			if (at[i] >= c)
				bad += sum > b->burst + (at[j] - at[i]) / b->emission_ns;
		}
	}
	return bad;
}

/*
 * Every direction, greedy and mixed patterns, the change at several points
 * of a refill: every interval keeps the looser bound, and from the change
 * on the new config alone (the new rate applies at once).
 */
static void reload_bound_every_direction(void **state)
{
	enum { CAP = 8192 };
	uint64_t *at = calloc(CAP, sizeof(*at)), *cost = calloc(CAP, sizeof(*cost));

	(void)state;
	for (size_t k = 0; k < NCHANGES; k++) {
		struct vrl_gcra a, b;
		uint64_t tmax;

		init2(k, &a, &b);
		tmax = a.emission_ns > b.emission_ns ? a.emission_ns : b.emission_ns;
		for (uint64_t off = 0; off < 4; off++)
			for (int mixed = 0; mixed < 2; mixed++) {
				uint64_t c = T0 + 20 * tmax + off * tmax / 4 + off;
				uint64_t step = (a.emission_ns < b.emission_ns ? a.emission_ns :
									     b.emission_ns) / 7 + 1;
				size_t n = simulate(&a, &b, c, c + 20 * tmax, step, mixed, k * 8 + off,
						    at, cost, CAP);

				/* by time: a reservation may come before grants made after it */
				for (size_t i = 1; i < n; i++)
					for (size_t j = i; j > 0 && at[j - 1] > at[j]; j--) {
						uint64_t x = at[j], y = cost[j];

						at[j] = at[j - 1];
						cost[j] = cost[j - 1];
						at[j - 1] = x;
						cost[j - 1] = y;
					}
				assert_true(n > 0);
				assert_int_equal(broken(&a, &b, c, at, cost, n), 0);
			}
	}
	free(at);
	free(cost);
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
		cmocka_unit_test(convert_keeps_fill),
		cmocka_unit_test(reload_bound_every_direction),
	};

	return cmocka_run_group_tests_name("gcra", tests, NULL, NULL);
}
