/*
 * gcra.h - the Generic Cell Rate Algorithm, as pure functions of time.
 *
 * A rate limit of `count` permits per `period`, with a bucket of `burst`
 * permits, is run as GCRA (virtual scheduling). Its whole state is one word,
 * the theoretical arrival time (TAT) in monotonic nanoseconds:
 *
 *   T   = ceil(period / count)      ns per permit (emission interval)
 *   tau = burst * T                 the bucket, in ns
 *
 *   a request of n permits at time t:
 *     tat' = max(TAT, t) + n * T
 *     conforms iff tat' - t <= tau; then TAT := tat'
 *     else retry after tat' - tau - t
 *
 * Why it holds the limit: every grant k moves TAT to a distinct TAT_k with
 * TAT_k >= TAT_{k-1} + n*T, TAT_k >= t_k + T and TAT_k <= t_k + tau. So the
 * grants made in any window [s, s+W] have TATs inside [s+T, s+W+tau], spaced
 * by T: at most burst + W/T permits, whatever order the grants were made in.
 * That includes grants reserved for a future time t_k > now (the waiting
 * acquire), which is why reserving is safe.
 *
 * Rounding T up to a whole nanosecond can only slow the rate: the long-run
 * error is under one nanosecond per permit (150/s runs at 149.99998/s).
 *
 * Nothing here touches shared memory or reads a clock: callers pass the
 * time, so tests drive it by hand.
 */
#ifndef VRL_GCRA_H
#define VRL_GCRA_H

#include <stdbool.h>
#include <stdint.h>

struct vrl_gcra {
	uint64_t emission_ns;   /* T */
	uint64_t tolerance_ns;  /* tau = burst * T */
	uint64_t burst;
};

/* The outcome of one conformance test, for the verdict. */
struct vrl_gcra_result {
	bool conforms;
	uint64_t new_tat;       /* the state word to store when it conforms */
	uint64_t retry_after;   /* ns until it would conform; UINT64_MAX: never */
	uint64_t remaining;     /* permits left after it (or now, when denied) */
	uint64_t reset;         /* ns until the bucket is full again */
};

/* The decision alone, for the hot path: no division. */
struct vrl_gcra_step {
	bool conforms;
	uint64_t new_tat;       /* the state word to store when it conforms */
	uint64_t retry_after;   /* ns until it would conform; UINT64_MAX: never */
};

/*
 * Fill @g for @count permits per @period_ns with a bucket of @burst.
 * Returns 0, or -EINVAL for a zero count, period or burst, or -ERANGE when
 * burst * T does not fit in 63 bits.
 */
int vrl_gcra_init(struct vrl_gcra *g, uint64_t count, uint64_t period_ns, uint64_t burst);

/*
 * Test @n permits at time @now (and reserved for time @at >= @now; pass
 * at == now for an immediate acquire) against state @tat.
 * A cost above the burst never conforms: retry_after is UINT64_MAX.
 */
struct vrl_gcra_result vrl_gcra_test(const struct vrl_gcra *g, uint64_t tat, uint64_t now,
				     uint64_t at, uint64_t n);

#define VRL_GCRA_TIME_MAX (UINT64_C(1) << 62) /* saturation bound of times, ~146 years */

/* Permits available at @now with state @tat. */
static inline uint64_t vrl_gcra_available(const struct vrl_gcra *g, uint64_t tat, uint64_t now)
{
	uint64_t used;

	if (tat <= now)
		return g->burst;
	used = tat - now;
	if (used >= g->tolerance_ns)
		return 0;
	return (g->tolerance_ns - used) / g->emission_ns;
}

/*
 * The conformance decision of vrl_gcra_test() without the figures that
 * need a division; inline so the acquire path pays no call. Saturates
 * instead of wrapping: a huge cost or interval never conforms.
 */
static inline struct vrl_gcra_step vrl_gcra_step(const struct vrl_gcra *g, uint64_t tat,
						 uint64_t now, uint64_t at, uint64_t n)
{
	struct vrl_gcra_step r = { .conforms = false, .new_tat = 0, .retry_after = UINT64_MAX };
	uint64_t base, cost, tat2;

	if (at < now)
		at = now;
	if (n > g->burst)
		return r;
	base = tat > at ? tat : at;
	if (__builtin_mul_overflow(n, g->emission_ns, &cost) || cost > VRL_GCRA_TIME_MAX)
		cost = VRL_GCRA_TIME_MAX;
	tat2 = base + cost;
	if (tat2 < base || tat2 > VRL_GCRA_TIME_MAX)
		tat2 = VRL_GCRA_TIME_MAX;
	if (tat2 - at <= g->tolerance_ns) {
		r.conforms = true;
		r.new_tat = tat2;
		r.retry_after = 0;
		return r;
	}
	/* earliest time t with tat2(t) - t <= tau; tat2 is constant while t <= base */
	r.retry_after = tat2 - g->tolerance_ns - now;
	return r;
}

/* True when state @tat carries no information at @now: the bucket is full. */
static inline bool vrl_gcra_is_full(uint64_t tat, uint64_t now)
{
	return tat <= now;
}

#endif /* VRL_GCRA_H */
