/*
 * gcra.c - GCRA arithmetic. See gcra.h for the algorithm and its proof.
 *
 * All arithmetic saturates instead of wrapping: a huge cost or a huge
 * interval yields "never conforms", not a small wrapped number.
 */
#include "gcra.h"

#include <errno.h>

__extension__ typedef unsigned __int128 u128;

int vrl_gcra_init(struct vrl_gcra *g, uint64_t count, uint64_t period_ns, uint64_t burst)
{
	uint64_t t, tau;

	if (count == 0 || period_ns == 0 || burst == 0)
		return -EINVAL;
	t = period_ns / count + (period_ns % count != 0);
	if (__builtin_mul_overflow(burst, t, &tau) || tau >= VRL_GCRA_TIME_MAX)
		return -ERANGE;
	g->emission_ns = t;
	g->tolerance_ns = tau;
	g->burst = burst;
	return 0;
}

struct vrl_gcra_result vrl_gcra_test(const struct vrl_gcra *g, uint64_t tat, uint64_t now,
				     uint64_t at, uint64_t n)
{
	struct vrl_gcra_step st = vrl_gcra_step(g, tat, now, at, n);
	struct vrl_gcra_result r = { .conforms = st.conforms, .new_tat = st.new_tat,
				     .retry_after = st.retry_after };
	uint64_t after = st.conforms ? st.new_tat : tat;

	r.remaining = vrl_gcra_available(g, after, now);
	r.reset = after > now ? after - now : 0;
	return r;
}

/* now + add, saturating at VRL_GCRA_TIME_MAX. */
static uint64_t time_after(uint64_t now, uint64_t add)
{
	return add > VRL_GCRA_TIME_MAX || now > VRL_GCRA_TIME_MAX - add ? VRL_GCRA_TIME_MAX :
									  now + add;
}

uint64_t vrl_gcra_convert(const struct vrl_gcra *from, const struct vrl_gcra *to, uint64_t tat,
			  uint64_t now)
{
	uint64_t used = tat > now ? tat - now : 0, fill_ns, keep;
	u128 f2;

	if (!from) /* unknown: a full bucket had at least one permit */
		return time_after(now, used == 0 ? to->tolerance_ns - to->emission_ns :
						   to->tolerance_ns);
	if (used >= from->tolerance_ns)
		return time_after(now, to->tolerance_ns);   /* empty: f = 0 */
	fill_ns = from->tolerance_ns - used;                /* f * T1 */
	/* f * T2 = fill_ns * T2 / T1, rounded down (fewer permits): both
	 * factors are below 2^60, so the product fits in 128 bits */
	f2 = (u128)fill_ns * to->emission_ns / from->emission_ns;
	keep = f2 >= to->tolerance_ns ? to->tolerance_ns : (uint64_t)f2;
	return time_after(now, to->tolerance_ns - keep);
}
