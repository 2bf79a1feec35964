/*
 * gcra.c - GCRA arithmetic. See gcra.h for the algorithm and its proof.
 *
 * All arithmetic saturates instead of wrapping: a huge cost or a huge
 * interval yields "never conforms", not a small wrapped number.
 */
#include "gcra.h"

#include <errno.h>

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
