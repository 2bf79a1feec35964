/*
 * test_adapt.c - adaptive pacing's arithmetic, with time passed in by hand:
 * one cut per round trip under a burst of 429s, the recovery curve, the
 * ceiling and the floor, the word's encoding, saturation, and the bound an
 * adaptive charge keeps (adapt.h, AD.W3).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "adapt.h"

#define MS UINT64_C(1000000)
#define S  UINT64_C(1000000000)
#define T0 (UINT64_C(5000) * S)            /* an arbitrary monotonic start */
#define TICK (UINT64_C(1) << VRL_ADAPT_TICK_SHIFT)
#define ONE VRL_ADAPT_ONE

/* The default profile with beta 0.7 (CUBIC's): the figures below assume it. */
static struct vrl_adapt cubic07(void)
{
	struct vrl_adapt a;

	assert_int_equal(vrl_adapt_init(&a, VRL_ADAPT_RECOVER_DEFAULT_NS,
					VRL_ADAPT_HOLD_DEFAULT_NS, VRL_ADAPT_FLOOR_DEFAULT,
					45875), 0);
	return a;
}

/*
 * The cut a key at the figure takes at @now: one 429 a hold earlier
 * strikes, a second one, of a request granted after the strike, cuts.
 */
static uint32_t cut_at_figure(const struct vrl_adapt *a, uint64_t now)
{
	uint64_t strike = now - (uint64_t)a->hold_ticks * TICK - TICK;
	uint32_t w, next;

	assert_int_equal(vrl_adapt_cut(a, 0, strike, VRL_ADAPT_GRANTED_UNKNOWN, &w),
			 VRL_ADAPT_STRIKE);
	assert_int_equal(vrl_adapt_rate(a, w, strike), ONE);
	assert_int_equal(vrl_adapt_cut(a, w, now, strike + TICK, &next), VRL_ADAPT_CUT);
	return next;
}

/*
 * A key recovering from cut word @w at @now: a 429 a hold earlier strikes,
 * a second one, of a request granted in the window after the strike's,
 * cuts again; the cut word in *@out. Returns what the second call did.
 */
static int cut_again(const struct vrl_adapt *a, uint32_t w, uint64_t now, uint32_t *out)
{
	uint64_t strike = now - (uint64_t)a->hold_ticks * TICK - TICK;
	uint32_t s;
	int rc = VRL_ADAPT_ABSORBED;

	if (vrl_adapt_cut(a, w, strike, strike - MS, &s) != VRL_ADAPT_STRIKE) {
		*out = w;
		return vrl_adapt_cut(a, w, now, now - MS, out);
	}
	/* the first grant time in the window after the strike's */
	for (uint64_t g = strike + TICK; g <= now && rc != VRL_ADAPT_CUT; g += TICK)
		rc = vrl_adapt_cut(a, s, now, g, out);
	return rc;
}

static void profile_ranges(void **state)
{
	struct vrl_adapt a = cubic07();

	(void)state;
	assert_int_equal(a.recover_ticks, 1907);    /* 2 s in ticks of 1.048576 ms */
	assert_int_equal(a.hold_ticks, 96);         /* 100 ms, rounded up */
	assert_int_equal(vrl_adapt_init(NULL, S, 0, ONE / 8, 45875), -EINVAL);
	assert_int_equal(vrl_adapt_init(&a, VRL_ADAPT_RECOVER_MIN_NS - 1, 0, ONE / 8, 45875),
			 -ERANGE);
	assert_int_equal(vrl_adapt_init(&a, VRL_ADAPT_RECOVER_MAX_NS + 1, 0, ONE / 8, 45875),
			 -ERANGE);
	assert_int_equal(vrl_adapt_init(&a, S, S + 1, ONE / 8, 45875), -ERANGE);
	assert_int_equal(vrl_adapt_init(&a, S, 0, VRL_ADAPT_FLOOR_MIN - 1, 45875), -ERANGE);
	assert_int_equal(vrl_adapt_init(&a, S, 0, ONE + 1, 45875), -ERANGE);
	assert_int_equal(vrl_adapt_init(&a, S, 0, ONE / 8, VRL_ADAPT_BETA_MIN - 1), -ERANGE);
	assert_int_equal(vrl_adapt_init(&a, S, 0, ONE / 8, VRL_ADAPT_BETA_MAX + 1), -ERANGE);
	/* the extremes themselves are fine */
	assert_int_equal(vrl_adapt_init(&a, VRL_ADAPT_RECOVER_MIN_NS, VRL_ADAPT_RECOVER_MIN_NS,
					VRL_ADAPT_FLOOR_MIN, VRL_ADAPT_BETA_MIN), 0);
	assert_int_equal(vrl_adapt_init(&a, VRL_ADAPT_RECOVER_MAX_NS, 0, ONE,
					VRL_ADAPT_BETA_MAX), 0);
}

/* The word packs k and the cut's tick and gives them back. */
static void word_round_trip(void **state)
{
	static const uint32_t ks[] = { 4, 8, 1024, 2048, 3000, 4088 };
	static const uint32_t ticks[] = { 0, 1, 12345, VRL_ADAPT_TICK_MASK };

	(void)state;
	for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++)
		for (size_t j = 0; j < sizeof(ticks) / sizeof(ticks[0]); j++) {
			uint32_t w = vrl_adapt_word(ks[i], ticks[j]);

			assert_int_equal(vrl_adapt_k(w), ks[i]);
			assert_int_equal(vrl_adapt_tick_of(w), ticks[j]);
			assert_false(vrl_adapt_at_figure(w));
		}
	/* k = 1 does not fit in 12 bits: kept as 4092, read back as 4096 */
	assert_int_equal(vrl_adapt_k(vrl_adapt_word(VRL_ADAPT_K_ONE, 7)), VRL_ADAPT_K_ONE);
	assert_int_equal(vrl_adapt_k(vrl_adapt_word(4095, 7)), VRL_ADAPT_K_ONE);
	/* k's two low bits hold the strike: k is kept in 1/1024, rounded down */
	assert_int_equal(vrl_adapt_k(vrl_adapt_word(4094, 7)), 4088);
	assert_int_equal(vrl_adapt_k(vrl_adapt_word(1027, 7)), 1024);
	assert_int_equal(vrl_adapt_k(vrl_adapt_word(1024, 7) | VRL_ADAPT_STRIKE_MASK), 1024);
	assert_false(vrl_adapt_at_figure(vrl_adapt_word(4, 7) | 1));
	/* the tick is kept modulo the clock's wrap */
	assert_int_equal(vrl_adapt_tick_of(vrl_adapt_word(1024, VRL_ADAPT_TICK_MASK + 3)), 2);
	assert_int_equal(vrl_adapt_tick(UINT64_C(1) << 40), 0);
	assert_int_equal(vrl_adapt_tick((UINT64_C(1) << 40) - 1), VRL_ADAPT_TICK_MASK);
	/* 0 is a new key: at the figure */
	assert_true(vrl_adapt_at_figure(0));
	assert_true(vrl_adapt_at_figure(vrl_adapt_word(0, 999)));
}

/*
 * Ten workers load the word and CAS what vrl_adapt_cut() gives them; a
 * failed CAS computes again from the word it found. Returns the cuts.
 */
static int burst(const struct vrl_adapt *a, _Atomic uint32_t *aux, uint64_t t, uint64_t granted)
{
	uint32_t seen[10], next;
	int cuts = 0, rc;

	for (int i = 0; i < 10; i++)
		seen[i] = atomic_load(aux);     /* all load before any CAS */
	for (int i = 0; i < 10; i++) {
		uint64_t g = granted + (uint64_t)i * 5 * MS;
		uint64_t now = t + (uint64_t)i * MS;

		for (;;) {
			if (!(rc = vrl_adapt_cut(a, seen[i], now, g, &next)))
				break;
			if (atomic_compare_exchange_strong(aux, &seen[i], next)) {
				cuts += rc == VRL_ADAPT_CUT;
				break;
			}
		}
	}
	return cuts;
}

/*
 * One congestion event, many 429s: ten workers' requests, granted under the
 * figure within 50 ms, all come back 429 over 10 ms. At the figure that is
 * one strike and no cut; a second event, of requests granted after the
 * strike, cuts once; a third, granted before that cut, is its echo.
 */
static void burst_of_429s_cuts_once(void **state)
{
	struct vrl_adapt a = cubic07();
	_Atomic uint32_t aux = 0;

	(void)state;
	assert_int_equal(burst(&a, &aux, T0, T0 - 50 * MS), 0);
	assert_int_equal(vrl_adapt_rate(&a, atomic_load(&aux), T0 + 10 * MS), ONE);
	assert_true(atomic_load(&aux) != 0);     /* the strike */
	assert_int_equal(burst(&a, &aux, T0 + 200 * MS, T0 + 150 * MS), 1);
	/* the one cut, made from the figure, left 0.7 of it (rounded down) */
	assert_int_equal(vrl_adapt_k(atomic_load(&aux)), VRL_ADAPT_K_ONE);
	assert_int_equal(vrl_adapt_rate(&a, atomic_load(&aux), T0 + 200 * MS), 45875);
	assert_int_equal(burst(&a, &aux, T0 + 400 * MS, T0 + 150 * MS), 0);
	assert_int_equal(vrl_adapt_k(atomic_load(&aux)), VRL_ADAPT_K_ONE);
}

/*
 * Without grant times the hold alone spaces them: a strike, then a cut a
 * hold later; in recovery a strike a hold after the cut, a cut in the
 * window after the strike's. A 429 every 10 ms for a second: a cut per
 * two holds at most.
 */
static void hold_spaces_cuts(void **state)
{
	struct vrl_adapt a = cubic07();
	uint32_t w = 0, next;
	int cuts = 0, rc;

	(void)state;
	for (uint64_t t = T0; t < T0 + S; t += 10 * MS)
		if ((rc = vrl_adapt_cut(&a, w, t, VRL_ADAPT_GRANTED_UNKNOWN, &next))) {
			w = next;
			cuts += rc == VRL_ADAPT_CUT;
		}
	assert_in_range(cuts, 4, 5);
	assert_true(vrl_adapt_rate(&a, w, T0 + S) >= a.floor_q16);
}

/* TCP's rule: a request granted after the cut that still draws a 429 cuts
 * again, once the hold is over; one granted before it never does. */
static void one_cut_per_round_trip(void **state)
{
	struct vrl_adapt a = cubic07();
	uint32_t w, next;
	uint64_t cut = T0;
	uint32_t after_first;

	(void)state;
	cut -= cut % TICK;
	/* at the figure: granted before the strike, or in its tick: an echo */
	assert_int_equal(vrl_adapt_cut(&a, 0, cut - 150 * MS, cut - 180 * MS, &w),
			 VRL_ADAPT_STRIKE);
	assert_int_equal(vrl_adapt_cut(&a, w, cut, cut - 151 * MS, &next), VRL_ADAPT_ABSORBED);
	assert_int_equal(vrl_adapt_cut(&a, w, cut, cut - 150 * MS, &next), VRL_ADAPT_ABSORBED);
	/* no grant time, within the hold: absorbed */
	assert_int_equal(vrl_adapt_cut(&a, w, cut - 60 * MS, VRL_ADAPT_GRANTED_UNKNOWN, &next),
			 VRL_ADAPT_ABSORBED);
	assert_int_equal(vrl_adapt_cut(&a, w, cut, cut - 30 * MS, &w), VRL_ADAPT_CUT);
	after_first = vrl_adapt_rate(&a, w, cut);
	/* granted before the cut, answered long after the hold: an echo */
	assert_int_equal(vrl_adapt_cut(&a, w, cut + 500 * MS, cut - 1 * MS, &next),
			 VRL_ADAPT_ABSORBED);
	assert_int_equal(next, w);
	/* granted in the cut's own tick: an echo too */
	assert_false(vrl_adapt_cut(&a, w, cut + 500 * MS, cut, &next));
	/* granted after the cut, answered within the hold: absorbed */
	assert_false(vrl_adapt_cut(&a, w, cut + 50 * MS, cut + 10 * MS, &next));
	/* granted after the cut, answered after the hold: a strike, the rate
	 * unchanged; 429s granted in the strike's window are its echoes */
	assert_int_equal(vrl_adapt_cut(&a, w, cut + 150 * MS, cut + 120 * MS, &next),
			 VRL_ADAPT_STRIKE);
	assert_int_equal(vrl_adapt_rate(&a, next, cut + 150 * MS),
			 vrl_adapt_rate(&a, w, cut + 150 * MS));
	w = next;
	assert_int_equal(vrl_adapt_cut(&a, w, cut + 160 * MS, cut + 140 * MS, &next),
			 VRL_ADAPT_ABSORBED);
	/* one granted in the window after the strike's: a new congestion */
	assert_int_equal(vrl_adapt_cut(&a, w, cut + 260 * MS, cut + 230 * MS, &next),
			 VRL_ADAPT_CUT);
	assert_true(vrl_adapt_rate(&a, next, cut + 260 * MS) < after_first);
	/* a grant time in the future (a reservation) counts as now */
	assert_int_equal(vrl_adapt_cut(&a, w, cut + 260 * MS, cut + 10 * S, &next),
			 VRL_ADAPT_CUT);
}

/* w(s) = Wmax + (1 - beta)(s - k)^3 in double, from the stored k. */
static double reference(const struct vrl_adapt *a, uint32_t word, uint64_t elapsed_ns)
{
	double k = vrl_adapt_k(word) / 4096.0;
	double s = (double)elapsed_ns / (double)((uint64_t)a->recover_ticks * TICK);
	double beta = a->beta_q16 / 65536.0;
	double d = s - k;
	double w = k * k * k + (1 - beta) * d * d * d;
	double floor = a->floor_q16 / 65536.0;

	return w > 1 ? 1 : w < floor ? floor : w;
}

/* The curve: down to beta Wmax, back to Wmax after k K0, then to the figure. */
static void recovery_curve(void **state)
{
	struct vrl_adapt a = cubic07();
	uint64_t cut = T0 + 123 * TICK;        /* on a tick: elapsed is exact */
	uint32_t w, prev = 0, at_k;
	uint64_t k0 = (uint64_t)a.recover_ticks * TICK;

	(void)state;
	cut -= cut % TICK;
	/* from the figure: Wmax = 1, k = 1 */
	w = cut_at_figure(&a, cut);
	assert_int_equal(vrl_adapt_k(w), VRL_ADAPT_K_ONE);
	assert_in_range(vrl_adapt_rate(&a, w, cut), ONE * 7 / 10 - 2, ONE * 7 / 10);
	assert_int_equal(vrl_adapt_rate(&a, w, cut + k0), ONE);   /* back after K0 */
	assert_true(vrl_adapt_rate(&a, w, cut + k0 - TICK) < ONE);
	/* monotone, within rounding of the real curve, never above it by more
	 * than the last bit */
	for (uint64_t e = 0; e <= 2 * k0; e += TICK / 2) {
		uint32_t r = vrl_adapt_rate(&a, w, cut + e);
		double ref = reference(&a, w, e - e % TICK);

		assert_true(r >= prev);
		assert_true(r <= ref * 65536.0 + 1.0);
		assert_true(r >= ref * 65536.0 - 0.002 * 65536.0);
		prev = r;
	}

	/* from Wmax = 0.8 (k = cbrt(0.8) = 3802/4096, kept in 1/1024 as
	 * 3800/4096, Wmax 0.7985): 0.56 at the cut, 0.8 again at k K0, a
	 * plateau there, then up to the figure */
	cut += 10 * S;
	cut -= cut % TICK;
	w = vrl_adapt_word(3802, vrl_adapt_tick(cut));
	at_k = vrl_adapt_rate(&a, w, cut + 3802 * k0 / 4096);
	assert_in_range(vrl_adapt_rate(&a, w, cut), ONE * 56 / 100 - 100, ONE * 56 / 100);
	assert_in_range(at_k, ONE * 8 / 10 - 120, ONE * 8 / 10);
	/* the plateau: within 1% of Wmax for 0.2 K0 either side of k K0 */
	assert_in_range(vrl_adapt_rate(&a, w, cut + 3802 * k0 / 4096 - k0 / 5),
			at_k - ONE / 100, at_k);
	assert_in_range(vrl_adapt_rate(&a, w, cut + 3802 * k0 / 4096 + k0 / 5),
			at_k, at_k + ONE / 100);
	/* the figure again at k + cbrt(0.2 / 0.3) = 1.80 K0 */
	assert_true(vrl_adapt_rate(&a, w, cut + 17 * k0 / 10) < ONE);
	assert_int_equal(vrl_adapt_rate(&a, w, cut + 19 * k0 / 10), ONE);
	assert_int_equal(vrl_adapt_settle(&a, w, cut + 19 * k0 / 10), 0);
	assert_int_equal(vrl_adapt_settle(&a, w, cut + k0), w);
	assert_int_equal(vrl_adapt_settle(&a, 0, cut), 0);
}

/*
 * Fast convergence (RFC 9438 4.7): a 429 that comes before the key is back
 * at the rate of its last cut says the upstream takes less than that now:
 * the cut also remembers a lower rate to return to, w (1 + beta) / 2. A 429
 * above it (the key probing past its last cut) is an ordinary cut.
 */
static void fast_convergence(void **state)
{
	struct vrl_adapt a = cubic07();
	uint64_t k0 = (uint64_t)a.recover_ticks * TICK, cut = T0, again;
	uint32_t w, next, r, wmax;

	(void)state;
	cut -= cut % TICK;
	w = cut_at_figure(&a, cut);
	/* half way back: 1 - 0.3 / 8 = 0.9625 of the figure, under Wmax = 1 */
	again = cut + k0 / 2;
	again -= again % TICK;
	r = vrl_adapt_rate(&a, w, again);
	assert_in_range(r, ONE * 96 / 100, ONE * 97 / 100);
	assert_int_equal(cut_again(&a, w, again, &next), VRL_ADAPT_CUT);
	/* Wmax = 0.9625 * 0.85 = 0.818: 0.573 at the cut, 0.818 at k K0 */
	wmax = (uint32_t)((uint64_t)r * (ONE + a.beta_q16) / (2 * ONE));
	assert_in_range(vrl_adapt_k(next), 3828, 3831);   /* cbrt(0.818), in 1/1024 */
	assert_in_range(vrl_adapt_rate(&a, next, again), wmax * 7 / 10 - 100, wmax * 7 / 10);
	assert_in_range(vrl_adapt_rate(&a, next, again + vrl_adapt_k(next) * k0 / 4096),
			wmax - 200, wmax);   /* k rounded down: 12 / 4096 of Wmax at most */

	/* past Wmax = 0.8 (probing above it): Wmax is the rate at the 429 */
	w = vrl_adapt_word(3802, vrl_adapt_tick(cut));
	again = cut + 3 * k0 / 2;
	r = vrl_adapt_rate(&a, w, again);
	assert_true(r > ONE * 8 / 10);
	assert_int_equal(cut_again(&a, w, again, &next), VRL_ADAPT_CUT);
	assert_in_range(vrl_adapt_rate(&a, next, again), r * 7 / 10 - 100, r * 7 / 10);   /* k in 1/1024 */
}

/*
 * The default profile: an isolated 429 at the figure leaves 0.85 of it and
 * the key is whole again 2 s later; a second 429 on the way back cuts
 * deeper, to 0.85 * 0.925 = 0.79 of the rate it came at.
 */
static void default_profile(void **state)
{
	struct vrl_adapt a;
	uint64_t cut = T0, again;
	uint32_t w, next, r;

	(void)state;
	assert_int_equal(vrl_adapt_init(&a, VRL_ADAPT_RECOVER_DEFAULT_NS,
					VRL_ADAPT_HOLD_DEFAULT_NS, VRL_ADAPT_FLOOR_DEFAULT,
					VRL_ADAPT_BETA_DEFAULT), 0);
	cut -= cut % TICK;
	w = cut_at_figure(&a, cut);
	assert_in_range(vrl_adapt_rate(&a, w, cut), ONE * 85 / 100 - 2, ONE * 85 / 100);
	assert_true(vrl_adapt_rate(&a, w, cut + 1900 * MS) < ONE);
	assert_int_equal(vrl_adapt_rate(&a, w, cut + 2100 * MS), ONE);
	again = cut + 500 * MS;
	r = vrl_adapt_rate(&a, w, again);
	assert_int_equal(cut_again(&a, w, again, &next), VRL_ADAPT_CUT);
	assert_in_range(vrl_adapt_rate(&a, next, again), r * 786 / 1000 - 100, r * 786 / 1000);
}

/* Never above the figure: T_eff >= T, exactly T at the figure and after. */
static void ceiling(void **state)
{
	struct vrl_adapt a = cubic07();
	uint64_t t = 6666667;   /* 150/s */
	uint32_t w = 0, next;

	(void)state;
	assert_int_equal(vrl_adapt_emission(&a, 0, T0, t), t);
	w = cut_at_figure(&a, T0);
	assert_int_equal(vrl_adapt_emission(&a, w, T0, t), 9523852);   /* 150/s * 0.7, up */
	for (uint64_t e = 0; e < 10 * S; e += 7 * MS) {
		assert_true(vrl_adapt_rate(&a, w, T0 + e) <= ONE);
		assert_true(vrl_adapt_emission(&a, w, T0 + e, t) >= t);
	}
	assert_int_equal(vrl_adapt_emission(&a, w, T0 + 10 * S, t), t);
	/* a floor at the figure: nothing to cut */
	assert_int_equal(vrl_adapt_init(&a, S, 0, ONE, VRL_ADAPT_BETA_DEFAULT), 0);
	assert_false(vrl_adapt_cut(&a, 0, T0, VRL_ADAPT_GRANTED_UNKNOWN, &next));
	assert_int_equal(next, 0);
}

/* Cut after cut, each answered: down to the floor, never below it. */
static void floor_holds(void **state)
{
	struct vrl_adapt a = cubic07();
	uint64_t t = T0, T = 5 * MS;   /* 200/s */
	uint32_t w = 0, next, r = ONE;

	(void)state;
	for (int i = 0; i < 30; i++) {
		t += 150 * MS;
		if (vrl_adapt_cut(&a, w, t, t - 50 * MS, &next))
			w = next;
		r = vrl_adapt_rate(&a, w, t);
		assert_true(r >= a.floor_q16);
	}
	assert_int_equal(r, a.floor_q16);                   /* 1/8 */
	assert_int_equal(vrl_adapt_emission(&a, w, t, T), 8 * T);
	/* and the floor itself cuts to the floor */
	assert_int_equal(cut_again(&a, w, t + S, &next), VRL_ADAPT_CUT);
	assert_int_equal(vrl_adapt_rate(&a, next, t + S), a.floor_q16);
	assert_true(vrl_adapt_k(next) >= 1024);              /* cbrt(1/8) = 1/2 */
}

/* Saturation: huge intervals, clocks that wrap, costs that overflow. */
static void saturation(void **state)
{
	struct vrl_adapt a = cubic07();
	struct vrl_gcra g;
	struct vrl_gcra_step st;
	uint32_t w;
	uint64_t now = UINT64_MAX - 3 * MS;

	(void)state;
	w = cut_at_figure(&a, now);
	assert_int_equal(vrl_adapt_emission(&a, w, now, VRL_ADAPT_EMISSION_MAX),
			 VRL_ADAPT_EMISSION_MAX);
	assert_int_equal(vrl_adapt_emission(&a, w, now, VRL_ADAPT_EMISSION_MAX / 4 * 3),
			 VRL_ADAPT_EMISSION_MAX);
	assert_int_equal(vrl_adapt_emission(&a, w, now, 1), 2);   /* ceil(1 / 0.7) */
	/* a cut in the clock's last tick, read after it wraps: 6 ticks on */
	now = (UINT64_C(1) << 40) * 7 + 5 * TICK;    /* tick 5 of a later lap */
	assert_int_equal(vrl_adapt_rate(&a, vrl_adapt_word(VRL_ADAPT_K_ONE, VRL_ADAPT_TICK_MASK),
					now),
			 vrl_adapt_rate(&a, vrl_adapt_word(VRL_ADAPT_K_ONE, 0), now + TICK));
	assert_true(vrl_adapt_rate(&a, vrl_adapt_word(VRL_ADAPT_K_ONE, 0), now + TICK) <
		    vrl_adapt_rate(&a, vrl_adapt_word(VRL_ADAPT_K_ONE, 0), now + 100 * TICK));
	/* a word a whole lap old reads as a fresh cut: lower, never higher */
	assert_true(vrl_adapt_rate(&a, vrl_adapt_word(VRL_ADAPT_K_ONE, 5), now) < ONE);
	/* the step saturates the charge */
	assert_int_equal(vrl_gcra_init(&g, 150, S, 3), 0);
	st = vrl_adapt_step(&g, UINT64_MAX, 0, T0, T0, 2);
	assert_true(st.conforms);
	assert_true(st.new_tat == VRL_GCRA_TIME_MAX);
	st = vrl_adapt_step(&g, VRL_GCRA_TIME_MAX - 1, VRL_GCRA_TIME_MAX - 10, T0, T0, 1);
	assert_false(st.conforms);
	/* a charge at or under T is T */
	assert_int_equal(vrl_adapt_step(&g, 1, 0, T0, T0, 1).new_tat, T0 + g.emission_ns);
	/* slack saturates: a key of 1 ns per permit, idle since the clock began */
	assert_int_equal(vrl_gcra_init(&g, 1, 1, 1), 0);
	assert_true(vrl_adapt_slack(&g, 0, 0, UINT64_MAX - 1, 1) == UINT64_MAX);
}

/*
 * AD.W3's theorem: tested against the configured (T, b) and charged any
 * T_k >= T, a key's grants in any [s, e] number at most b + (e - s) / T.
 * Random arrivals, reservations and T_k; every window checked.
 */
static void adaptive_charge_never_over_grants(void **state)
{
	enum { N = 3000 };
	static uint64_t times[N];
	struct vrl_gcra g;
	uint64_t T = 1000;
	unsigned seed = 12345;

	(void)state;
	for (uint64_t b = 1; b <= 4; b += 3) {
		uint64_t tat = 0, now = T0, ng = 0;

		assert_int_equal(vrl_gcra_init(&g, 1, T, b), 0);
		for (int i = 0; i < 20 * N && ng < N; i++) {
			uint64_t charge = T + (uint64_t)(rand_r(&seed) % 4) * (rand_r(&seed) % 700);
			uint64_t at = now + (rand_r(&seed) % 5 == 0 ? rand_r(&seed) % 3000 : 0);
			uint64_t n = 1 + (b > 1 && rand_r(&seed) % 3 == 0);
			struct vrl_gcra_step st = vrl_adapt_step(&g, charge, tat, now, at, n);

			if (st.conforms) {
				tat = st.new_tat;
				for (uint64_t j = 0; j < n && ng < N; j++)
					times[ng++] = at > now ? at : now;
			}
			now += (uint64_t)(rand_r(&seed) % 900);
		}
		assert_true(ng > N / 2);
		/* grants sorted by time: reservations may lie ahead of later grants */
		for (uint64_t i = 1; i < ng; i++)
			for (uint64_t j = i; j > 0 && times[j - 1] > times[j]; j--) {
				uint64_t x = times[j];

				times[j] = times[j - 1];
				times[j - 1] = x;
			}
		for (uint64_t i = 0; i < ng; i++)
			for (uint64_t j = i; j < ng; j++)
				if ((j - i + 1) * T > b * T + (times[j] - times[i]))
					fail_msg("b=%llu: %llu grants in %llu ns",
						 (unsigned long long)b,
						 (unsigned long long)(j - i + 1),
						 (unsigned long long)(times[j] - times[i]));
	}
}

/* At a steady w, burst 1: grants spaced T / w, the configured test's retry. */
static void steady_rate(void **state)
{
	struct vrl_adapt a;
	struct vrl_gcra g;
	uint64_t tat = 0, now = T0, last = 0, T;
	uint32_t w;
	int grants = 0;

	(void)state;
	/* the slowest recovery: w stays at 0.7 for the 50 ms looked at */
	assert_int_equal(vrl_adapt_init(&a, VRL_ADAPT_RECOVER_MAX_NS, 0, VRL_ADAPT_FLOOR_DEFAULT,
					45875), 0);   /* beta 0.7 */
	assert_int_equal(vrl_gcra_init(&g, 200, S, 1), 0);
	T = g.emission_ns;
	w = cut_at_figure(&a, T0);
	while (now < T0 + 50 * MS) {
		uint64_t te = vrl_adapt_emission(&a, w, now, T);
		struct vrl_gcra_step st = vrl_adapt_step(&g, te, tat, now, now, 1);

		if (!st.conforms) {
			assert_true(st.retry_after > 0);
			now += st.retry_after;          /* retry exactly when told */
			continue;
		}
		if (grants++)
			assert_true(now - last >= 7 * MS);   /* 5 ms / 0.7 = 7.14 ms */
		last = now;
		tat = st.new_tat;
	}
	assert_in_range(grants, 6, 8);
}

/* Attribution: the binding key is the one granted at its earliest time. */
static void binding_key(void **state)
{
	struct vrl_gcra token, org;
	uint64_t s[3];

	(void)state;
	assert_int_equal(vrl_gcra_init(&token, 150, S, 1), 0);
	assert_int_equal(vrl_gcra_init(&org, 200, S, 1), 0);
	/* the token was due now; the organisation had been free 1.7 ms */
	s[0] = vrl_adapt_slack(&token, 0, T0, T0, 1);
	s[1] = vrl_adapt_slack(&org, 0, T0 - 1700000, T0, 1);
	assert_int_equal(s[0], 0);
	assert_in_range(s[1], ONE * 34 / 100 - 2, ONE * 34 / 100 + 2);
	assert_int_equal(vrl_adapt_charged(s, 2), 0x1);
	/* equal within 1/16 permit: both charged */
	s[1] = VRL_ADAPT_TIE_Q16;
	assert_int_equal(vrl_adapt_charged(s, 2), 0x3);
	s[1] = VRL_ADAPT_TIE_Q16 + 1;
	assert_int_equal(vrl_adapt_charged(s, 2), 0x1);
	/* a burst key with permits left, an idle key, a new key (TAT 0) */
	assert_int_equal(vrl_gcra_init(&org, 200, S, 4), 0);
	s[0] = vrl_adapt_slack(&org, 0, T0, T0, 1);                  /* 3 left */
	s[1] = vrl_adapt_slack(&org, 0, 0, T0, 1);
	s[2] = UINT64_MAX;
	assert_int_equal(s[0], 3 * ONE);
	assert_true(s[1] > s[0]);
	assert_int_equal(vrl_adapt_charged(s, 3), 0x1);
	s[0] = s[1] = UINT64_MAX;
	assert_int_equal(vrl_adapt_charged(s, 3), 0x7);
	assert_int_equal(vrl_adapt_charged(s, 0), 0);
	/*
	 * Slack is taken against the figure: a key paced below it (a token
	 * cut to 0.82 of 150/s, T_eff 8.13 ms) granted at its earliest time
	 * has the 1.46 ms it charged over T as slack, 0.22 permit; the
	 * organisation at its figure, free 0.3 ms, 0.06 permit, binds. A key
	 * once cut does not take every later 429 for being slower.
	 */
	assert_int_equal(vrl_gcra_init(&org, 200, S, 1), 0);
	s[0] = vrl_adapt_slack(&token, 8130081 - token.emission_ns, T0, T0, 1);
	s[1] = vrl_adapt_slack(&org, 0, T0 - 300000, T0, 1);
	assert_in_range(s[0], ONE * 21 / 100, ONE * 23 / 100);
	assert_in_range(s[1], ONE * 5 / 100, ONE * 7 / 100);
	assert_int_equal(vrl_adapt_charged(s, 2), 0x2);
	/* a TAT past what the grant allowed (never seen: a grant conforms) */
	assert_int_equal(vrl_adapt_slack(&org, 0, T0 + S, T0, 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(profile_ranges),
		cmocka_unit_test(word_round_trip),
		cmocka_unit_test(burst_of_429s_cuts_once),
		cmocka_unit_test(hold_spaces_cuts),
		cmocka_unit_test(one_cut_per_round_trip),
		cmocka_unit_test(recovery_curve),
		cmocka_unit_test(fast_convergence),
		cmocka_unit_test(default_profile),
		cmocka_unit_test(ceiling),
		cmocka_unit_test(floor_holds),
		cmocka_unit_test(saturation),
		cmocka_unit_test(adaptive_charge_never_over_grants),
		cmocka_unit_test(steady_rate),
		cmocka_unit_test(binding_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
