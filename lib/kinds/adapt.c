/*
 * adapt.c - the arithmetic of adaptive pacing. See adapt.h for the law,
 * the word and how the rest of vrl takes them up.
 *
 * Integers only, and every rounding goes the same way, toward a lower
 * rate: the elapsed time in units of K0 is rounded down, so is the rate,
 * and T / w is rounded up. Every process therefore computes the same w
 * from the same word and time, and no rounding can raise it above 1.
 *
 * Ranges, for the overflow checks below: k <= 4096 (2^12); the elapsed
 * time in 1/4096 of K0 is below 2^32 (elapsed ticks < 2^20); x = s - k is
 * clamped to [-k, 3] (in 1/4096: [-2^12, 3 * 2^12]) before it is cubed, so
 * |x|^3 < 2^41; (1 - beta) <= 2^15 in 1/65536; the curve in 2^-52 fits in
 * 57 bits.
 */
#include "adapt.h"

#include <errno.h>

__extension__ typedef unsigned __int128 u128;

#define X_MAX  (3 * (int64_t)VRL_ADAPT_K_ONE) /* s - k = 3: (1 - beta) * 27 > 1 for any beta */

int vrl_adapt_init(struct vrl_adapt *a, uint64_t recover_ns, uint64_t hold_ns,
		   uint32_t floor_q16, uint32_t beta_q16)
{
	if (!a)
		return -EINVAL;
	if (recover_ns < VRL_ADAPT_RECOVER_MIN_NS || recover_ns > VRL_ADAPT_RECOVER_MAX_NS ||
	    hold_ns > recover_ns || floor_q16 < VRL_ADAPT_FLOOR_MIN ||
	    floor_q16 > VRL_ADAPT_ONE || beta_q16 < VRL_ADAPT_BETA_MIN ||
	    beta_q16 > VRL_ADAPT_BETA_MAX)
		return -ERANGE;
	a->beta_q16 = beta_q16;
	a->floor_q16 = floor_q16;
	/* to the nearest tick: K0 >= 16 ticks, so the error is under 4% */
	a->recover_ticks = (uint32_t)((recover_ns + (1u << (VRL_ADAPT_TICK_SHIFT - 1))) >>
				      VRL_ADAPT_TICK_SHIFT);
	/* a hold rounds up: at most one cut per hold, never two */
	a->hold_ticks = (uint32_t)((hold_ns + (1u << VRL_ADAPT_TICK_SHIFT) - 1) >>
				   VRL_ADAPT_TICK_SHIFT);
	return 0;
}

int vrl_adapt_load(struct vrl_adapt *a, const uint32_t words[4])
{
	uint64_t recover = (uint64_t)words[2] << VRL_ADAPT_TICK_SHIFT;

	if (words[2] < (VRL_ADAPT_RECOVER_MIN_NS >> VRL_ADAPT_TICK_SHIFT) ||
	    recover > VRL_ADAPT_RECOVER_MAX_NS + (1u << VRL_ADAPT_TICK_SHIFT) ||
	    words[3] > words[2] || words[1] < VRL_ADAPT_FLOOR_MIN || words[1] > VRL_ADAPT_ONE ||
	    words[0] < VRL_ADAPT_BETA_MIN || words[0] > VRL_ADAPT_BETA_MAX)
		return -ERANGE;
	a->beta_q16 = words[0];
	a->floor_q16 = words[1];
	a->recover_ticks = words[2];
	a->hold_ticks = words[3];
	return 0;
}

/* Ticks from the cut of @word to @now, modulo the tick clock. */
static uint32_t elapsed_ticks(uint32_t word, uint64_t now)
{
	return (vrl_adapt_tick(now) - vrl_adapt_tick_of(word)) & VRL_ADAPT_TICK_MASK;
}

/*
 * w = k^3 + (1 - beta) (s - k)^3 at @elapsed ticks after a cut with k
 * @k_q12, in 1/65536 of the figure, rounded down, before the clamp to
 * [floor, 1]: at most VRL_ADAPT_ONE.
 */
static uint32_t curve(const struct vrl_adapt *a, uint32_t k_q12, uint32_t elapsed)
{
	int64_t x = (int64_t)(((uint64_t)elapsed << VRL_ADAPT_K_BITS) / a->recover_ticks) -
		    (int64_t)k_q12;
	uint64_t k3 = (uint64_t)k_q12 * k_q12 * k_q12;         /* 2^-36 */
	uint64_t c = VRL_ADAPT_ONE - a->beta_q16;               /* 2^-16 */
	uint64_t ax, term, w52;

	if (x >= X_MAX)
		return VRL_ADAPT_ONE;
	ax = (uint64_t)(x < 0 ? -x : x);
	term = c * ax * ax * ax;                                /* 2^-52 */
	/* before the plateau x >= -k, so term <= c k^3 < 2^16 k^3: no underflow */
	w52 = x < 0 ? (k3 << 16) - term : (k3 << 16) + term;
	w52 >>= 36;                                             /* to 2^-16, down */
	return w52 >= VRL_ADAPT_ONE ? VRL_ADAPT_ONE : (uint32_t)w52;
}

uint32_t vrl_adapt_rate(const struct vrl_adapt *a, uint32_t word, uint64_t now)
{
	uint32_t w;

	if (vrl_adapt_at_figure(word))
		return VRL_ADAPT_ONE;
	w = curve(a, vrl_adapt_k(word), elapsed_ticks(word, now));
	return w < a->floor_q16 ? a->floor_q16 : w;
}

uint64_t vrl_adapt__emission(const struct vrl_adapt *a, uint32_t word, uint64_t now,
			     uint64_t emission_ns)
{
	uint64_t w = vrl_adapt_rate(a, word, now), q, r, t;

	if (w >= VRL_ADAPT_ONE)
		return emission_ns;
	/* ceil(T * 65536 / w), as (T / w) * 65536 + ceil((T % w) * 65536 / w) */
	q = emission_ns / w;
	r = emission_ns % w;
	if (q > (VRL_ADAPT_EMISSION_MAX >> 16))
		return VRL_ADAPT_EMISSION_MAX;
	t = (q << 16) + ((r << 16) + w - 1) / w;
	return t > VRL_ADAPT_EMISSION_MAX ? VRL_ADAPT_EMISSION_MAX : t;
}

/* floor(cbrt(@x)) for @x <= 2^36: the largest r with r^3 <= x. */
static uint32_t icbrt(uint64_t x)
{
	uint32_t lo = 0, hi = VRL_ADAPT_K_ONE + 1;   /* (2^12 + 1)^3 > 2^36 */

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;

		if ((uint64_t)mid * mid * mid <= x)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/*
 * True when a request granted at @granted_at was granted after @word's
 * cut: in a later tick. A grant older than the cut by the clock (which
 * also covers one older than the tick clock's wrap) or in its tick was
 * not; a grant time ahead of @now (a reservation) counts as now.
 */
static bool granted_after_cut(uint32_t word, uint64_t now, uint64_t granted_at)
{
	uint32_t since_cut = elapsed_ticks(word, now);

	if (granted_at == VRL_ADAPT_GRANTED_UNKNOWN)
		return true;
	if (granted_at >= now)
		granted_at = now;
	if ((now - granted_at) >> VRL_ADAPT_TICK_SHIFT >= since_cut)
		return false;
	return ((vrl_adapt_tick(now) - vrl_adapt_tick(granted_at)) & VRL_ADAPT_TICK_MASK) <
	       since_cut;
}

/*
 * The rate a cut from rate @w of @word returns to, in 1/65536 of the
 * figure: @w; or, when @w is under the rate the last cut returns to (the
 * key not yet back at it: the upstream takes less than that now), RFC
 * 9438's fast convergence, w (1 + beta) / 2, rounded down. At least
 * floor * 3/4 >= 1/86, so its cube root, stored as k, is at least 930/4096.
 */
static uint32_t wmax_after(const struct vrl_adapt *a, uint32_t word, uint32_t w)
{
	uint64_t k = vrl_adapt_k(word);

	if (vrl_adapt_at_figure(word) || w >= (k * k * k) >> 20)   /* k^3 in 2^-16 */
		return w;
	return (uint32_t)(((uint64_t)w * (VRL_ADAPT_ONE + a->beta_q16)) >> 17);
}

/* How long a strike at the figure waits for a second 429: K0 / 2 after the hold. */
static uint32_t evidence_ticks(const struct vrl_adapt *a)
{
	return a->recover_ticks / 2 + a->hold_ticks;
}

/* True when @word is a strike at the figure (no cut) still in force at @now. */
static bool strike_in_force(const struct vrl_adapt *a, uint32_t word, uint64_t now)
{
	return (word & VRL_ADAPT_MARK) && vrl_adapt_at_figure(word) &&
	       elapsed_ticks(word, now) < evidence_ticks(a);
}

/*
 * The strike code of time @t after @word's cut (@t not before it): 1 + the
 * index, modulo 3, of the hold-long window of the cut's recovery that @t
 * falls in. A grant time ahead of @now counts as now.
 */
static uint32_t window_code(const struct vrl_adapt *a, uint32_t word, uint64_t now, uint64_t t)
{
	uint32_t len = a->hold_ticks ? a->hold_ticks : 1;

	if (t == VRL_ADAPT_GRANTED_UNKNOWN || t > now)
		t = now;
	return 1 + (elapsed_ticks(word, t) / len) % 3;
}

int vrl_adapt_cut(const struct vrl_adapt *a, uint32_t word, uint64_t now, uint64_t granted_at,
		  uint32_t *out)
{
	uint32_t w = vrl_adapt_rate(a, word, now), s, g;

	*out = word;
	if (a->floor_q16 >= VRL_ADAPT_ONE)
		return VRL_ADAPT_ABSORBED;   /* a floor at the figure: nothing to cut */
	if (!vrl_adapt_at_figure(word) && w < VRL_ADAPT_ONE) {
		/* recovering from a cut */
		if (elapsed_ticks(word, now) < a->hold_ticks ||
		    !granted_after_cut(word, now, granted_at))
			return VRL_ADAPT_ABSORBED;   /* an echo of the cut in force */
		s = word & VRL_ADAPT_STRIKE_MASK;
		g = window_code(a, word, now, granted_at);
		if (s == g)
			return VRL_ADAPT_ABSORBED;   /* an echo of the strike */
		if (s == 0 || (g != s % 3 + 1 && g != window_code(a, word, now, now))) {
			/* the first 429 since the cut; or one granted in the
			 * window before the strike's or two after, answered in
			 * a later one: too old to tell: strike again, now */
			*out = (word & ~VRL_ADAPT_STRIKE_MASK) | window_code(a, word, now, now);
			return *out == word ? VRL_ADAPT_ABSORBED : VRL_ADAPT_STRIKE;
		}
		/* granted in the window after the strike's, or granted and
		 * answered two after it (not before it: the strike was
		 * earlier than now): a second congestion */
		*out = vrl_adapt_word(icbrt((uint64_t)wmax_after(a, word, w) << 20),
				      vrl_adapt_tick(now));
		return VRL_ADAPT_CUT;
	}
	if (strike_in_force(a, word, now)) {
		if ((granted_at == VRL_ADAPT_GRANTED_UNKNOWN &&
		     elapsed_ticks(word, now) < a->hold_ticks) ||
		    !granted_after_cut(word, now, granted_at))
			return VRL_ADAPT_ABSORBED;   /* an echo of the strike */
		*out = vrl_adapt_word(VRL_ADAPT_K_ONE, vrl_adapt_tick(now));
		return VRL_ADAPT_CUT;
	}
	*out = vrl_adapt_word(0, vrl_adapt_tick(now));   /* at the figure: strike */
	return VRL_ADAPT_STRIKE;
}

uint32_t vrl_adapt_settle(const struct vrl_adapt *a, uint32_t word, uint64_t now)
{
	if (strike_in_force(a, word, now))
		return word;
	if (vrl_adapt_at_figure(word) || vrl_adapt_rate(a, word, now) >= VRL_ADAPT_ONE)
		return 0;
	return word;
}

uint64_t vrl_adapt_slack(const struct vrl_gcra *g, uint64_t extra_ns, uint64_t tat_before,
			 uint64_t at, uint64_t n)
{
	u128 room, need;

	room = (u128)at + g->tolerance_ns + extra_ns;
	if (room <= tat_before)
		return 0;
	room = ((room - tat_before) << 16) / g->emission_ns;   /* permits before it, 2^-16 */
	need = (u128)n << 16;
	if (room <= need)
		return 0;
	room -= need;
	return room > UINT64_MAX ? UINT64_MAX : (uint64_t)room;
}

uint32_t vrl_adapt_charged(const uint64_t *slack, unsigned n)
{
	uint64_t min = UINT64_MAX, bound;
	uint32_t mask = 0;

	if (n > 32)
		n = 32;
	for (unsigned i = 0; i < n; i++)
		if (slack[i] < min)
			min = slack[i];
	bound = min > UINT64_MAX - VRL_ADAPT_TIE_Q16 ? UINT64_MAX : min + VRL_ADAPT_TIE_Q16;
	for (unsigned i = 0; i < n; i++)
		if (slack[i] <= bound)
			mask |= 1u << i;
	return mask;
}
