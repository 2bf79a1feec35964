/*
 * gcra.c - GCRA arithmetic. See gcra.h for the algorithm and its proof.
 *
 * All arithmetic saturates instead of wrapping: a huge cost or a huge
 * interval yields "never conforms", not a small wrapped number.
 */
#include "gcra.h"

#include <errno.h>

#define TIME_MAX (UINT64_C(1) << 62) /* saturation bound of times, ~146 years of ns */

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
	uint64_t r;

	if (__builtin_mul_overflow(a, b, &r) || r > TIME_MAX)
		return TIME_MAX;
	return r;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	uint64_t r = a + b;

	return (r < a || r > TIME_MAX) ? TIME_MAX : r;
}

int vrl_gcra_init(struct vrl_gcra *g, uint64_t count, uint64_t period_ns, uint64_t burst)
{
	uint64_t t, tau;

	if (count == 0 || period_ns == 0 || burst == 0)
		return -EINVAL;
	t = period_ns / count + (period_ns % count != 0);
	if (__builtin_mul_overflow(burst, t, &tau) || tau >= TIME_MAX)
		return -ERANGE;
	g->emission_ns = t;
	g->tolerance_ns = tau;
	g->burst = burst;
	return 0;
}

uint64_t vrl_gcra_available(const struct vrl_gcra *g, uint64_t tat, uint64_t now)
{
	uint64_t used;

	if (tat <= now)
		return g->burst;
	used = tat - now;
	if (used >= g->tolerance_ns)
		return 0;
	return (g->tolerance_ns - used) / g->emission_ns;
}

struct vrl_gcra_result vrl_gcra_test(const struct vrl_gcra *g, uint64_t tat, uint64_t now,
				     uint64_t at, uint64_t n)
{
	struct vrl_gcra_result r = { 0 };
	uint64_t base, tat2;

	if (at < now)
		at = now;
	base = tat > at ? tat : at;
	if (n > g->burst) {
		r.retry_after = UINT64_MAX;
		r.remaining = vrl_gcra_available(g, tat, now);
		r.reset = tat > now ? tat - now : 0;
		return r;
	}
	tat2 = sat_add(base, sat_mul(n, g->emission_ns));
	if (tat2 - at <= g->tolerance_ns) {
		r.conforms = true;
		r.new_tat = tat2;
		r.remaining = vrl_gcra_available(g, tat2, now);
		r.reset = tat2 - now;
		return r;
	}
	/* earliest time t with tat2(t) - t <= tau; tat2 is constant while t <= base */
	r.retry_after = tat2 - g->tolerance_ns - now;
	r.remaining = vrl_gcra_available(g, tat, now);
	r.reset = tat > now ? tat - now : 0;
	return r;
}
