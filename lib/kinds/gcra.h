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
 * ---- The state word and reloads -------------------------------------------
 *
 * A reload may change a limit's T and burst while its keys keep their
 * state. The TAT alone does not survive that: an empty bucket, TAT = now +
 * b*T1, read under T2 > T1 shows (b*T2 - b*T1)/T2 permits that were never
 * there. So a key keeps its fill instead: the permits it has at the instant
 * of the change. The word in the segment is
 *
 *     bit 63: 0 | bits 60..62: tag | bits 0..59: TAT      (0: a new key, full)
 *
 * The tag is the low 3 bits of the limit's rate epoch, which vrld bumps each
 * time a reload changes the (T, burst) of that key identity (the limit's
 * name, or its pool); the compiled limit carries the epoch and the previous
 * epoch's (T, burst) (vrl_seg_limit.rate_epoch, prev_*). A word is converted
 * once, by whoever first CASes it under the new epoch (an acquire, or vrld,
 * which converts every key right after publishing and in its sweep):
 *
 *   fill f = (tau1 - (TAT - c)^+) / T1, a real number, kept in [0, b2]
 *   TAT'   = c + tau2 - f * T2, rounded up (fewer permits)     (convert())
 *
 * at time c, the converter's clock. A word of an older epoch than the one
 * before (parameters unknown) converts as full -> one permit, else empty.
 * The CAS from the old word to the converted-and-charged one makes the
 * conversion happen once. A partly used bucket keeps the permits it has
 * (a part of one included); a full one keeps min(b1, b2) and refills under
 * the new rate.
 *
 * Theorem. However a key's grants are split among parameter sets P_1..P_m
 * by reloads, the grants with time in any interval [s, e] number at most
 * max b_j + (e - s) / min T_j: with two configs, max(b1, b2) + max(r1, r2) *
 * (e - s), the looser of the two (r = 1/T, at most count/period).
 *
 * Setting. In the order of the CASes on the key's word, the grants fall in
 * phases: phase j's grants use P_j, and the word passes from phase j to
 * j+1 by one conversion at time c_j. We use two facts proved below:
 *   (C1) every grant of phase j has its time in [c_{j-1}, c_j];
 *   (C2) the conversion keeps at most the fill: phi_{j+1} <= max(psi_j, 0),
 *        where psi_j = min(b_j, b_j - (TAT_j - c_j)/T_j) is the fill of
 *        phase j's last word TAT_j at c_j, and phi_{j+1} = b_{j+1} -
 *        (TAT' - c_j)/T_{j+1} the fill of the converted word at c_j.
 * (C2) holds by construction: f <= psi^+ and rounding TAT' up only lowers
 * phi; unknown parameters give 1 <= b_j for a full bucket, 0 otherwise.
 *
 * Lemma (one phase). Let [u, v] lie in [c_{j-1}, c_j]. The phase's grants
 * with time in [u, v] occupy disjoint intervals (base_k, base_k + n_k T_j]
 * with base_k >= max(t_k, TAT') >= max(u, TAT') (TAT' the phase's first
 * word) and base_k + n_k T_j <= min(TAT_j, t_k + tau_j) <= min(TAT_j, v +
 * tau_j). Writing lambda(u) = min(b_j, b_j - (TAT' - u)/T_j), the fill at u
 * before any grant of the phase, their number n is at most
 *     (v - u)/T_j + lambda(u) - max(0, b_j - (TAT_j - v)/T_j):
 * at most (v - u)/T_j + lambda(u), less psi_j^+ when v = c_j; and
 * lambda(u) <= b_j, lambda(c_{j-1}) = phi_j.
 *
 * Proof of the theorem. Let [s, e] meet phases j..k (c_{j-1} <= s <= c_j,
 * c_{k-1} <= e <= c_k). By (C1) each grant in [s, e] counts in its own
 * phase's piece: [s, c_j], then [c_{i-1}, c_i], then [c_{k-1}, e]. Adding
 * the lemma over the pieces, the refill terms sum to at most (e - s) /
 * min T and the rest telescopes:
 *     b_j - psi_j^+ + (phi_{j+1} - psi_{j+1}^+) + ... + phi_k <= b_j
 * by (C2). So n <= max b + (e - s)/min T. (j = k: the lemma alone.)
 *
 * Why (C1) holds. (a) Every grant reads the clock (its `now`) before its
 * CAS, and a converter reads its clock c after loading the word it
 * converts: a grant CASed before the conversion has now <= c. (b) A grant
 * of phase j+1 must have now >= c_j, though an acquire reads its clock
 * before it loads its keys. So every conversion counts itself in the
 * segment's rate_conversions between its clock read and its CAS (vrld's
 * pass keeps the count odd from before its first clock read to after its
 * last CAS), and an acquire reads the count before its clock read and
 * again after its loads: even and unchanged, no word it loaded was
 * converted after its clock read. Else it looks again, carefully: every
 * key loaded first, then the clock read, which also holds for a word it
 * converts itself. A word it gets back from a failed CAS, or loads again
 * for a waiting acquire, is used with that clock only when it has the tag
 * of the word first loaded, needs no conversion and the count has not
 * moved; otherwise the acquire starts over. This rests on CLOCK_MONOTONIC
 * being one clock for the host, read in order with the loads around it:
 * two reads ordered by program order and a load that sees a store return
 * non-decreasing values. (c) Immediate grants have t = now. A
 * waiting acquire's reservation (t > now) made in phase j may lie past c_j:
 * on waking at t the waiter loads its key's word; if it is of a later
 * epoch, the reservation is not used (it stays consumed, which only lowers
 * psi) and the waiter acquires again; else it moves the word on by 1 ns,
 * so that a conversion that read its clock before t fails its CAS and is
 * done again after t (acquire.c). Either way a reservation that is used has
 * t <= c_j.
 *
 * Within a phase TATs only grow, but for a rollback, which removes a grant
 * nobody built on (acquire.c, AQ.A1), and a refund, which gives back a grant
 * the upstream did not count: the bound is on the grants that stand. A
 * rollback never undoes a conversion, only the grant made with it.
 *
 * Why phases are contiguous. An acquire writes words of its own snapshot's
 * epoch, and it uses a loaded word only when its snapshot was still the
 * config in force after that load (the config_gen check, acquire.c), so it
 * never loads a word newer than its snapshot; a word of its own epoch or
 * the one before it reads exactly. After a conversion, a CAS from an older
 * word fails. A handle that could not read a new config (vrld kept
 * rewriting it) keeps its old snapshot, and then uses only words of its own
 * epoch and the one before, while fewer than 7 configs were published
 * since (so the 3-bit tag cannot have wrapped); any other word it leaves
 * alone (acquire.c denies, writing nothing).
 *
 * The horizon of the tag. A tag names one of 8 epochs. vrld converts every
 * key of a changed limit right after publishing (vrl_seg_settle) and its
 * sweep catches keys that acquires in flight wrote with the epoch before,
 * so a live word is at most a few epochs old; an acquire that first loads
 * a new key (word 0) writes a full word of its epoch and starts over, so a
 * slot that becomes new again under it (reset, re-insert) cannot take its
 * stale write. What is left: an acquire descheduled between its load and
 * its CAS while 8 reloads change that limit's rate or burst, whose key's
 * word returns meanwhile to exactly the 60-bit value it loaded, would have
 * its grant read under the parameters of the later epoch.
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
	uint64_t new_tat;       /* the TAT to store when it conforms */
	uint64_t retry_after;   /* ns until it would conform; UINT64_MAX: never */
	uint64_t remaining;     /* permits left after it (or now, when denied) */
	uint64_t reset;         /* ns until the bucket is full again */
};

/* The decision alone, for the hot path: no division. */
struct vrl_gcra_step {
	bool conforms;
	uint64_t new_tat;       /* the TAT to store when it conforms */
	uint64_t retry_after;   /* ns until it would conform; UINT64_MAX: never */
};

/* ---- the state word ----------------------------------------------------- */

#define VRL_GCRA_TAG_SHIFT 60u
#define VRL_GCRA_TAGS      8u      /* rate epochs a word tells apart */
#define VRL_GCRA_TAT_MASK  ((UINT64_C(1) << VRL_GCRA_TAG_SHIFT) - 1)
#define VRL_GCRA_TIME_MAX  VRL_GCRA_TAT_MASK /* saturation bound of times, ~36 years */

_Static_assert((((uint64_t)VRL_GCRA_TAGS - 1) << VRL_GCRA_TAG_SHIFT | VRL_GCRA_TAT_MASK) <
	       UINT64_C(1) << 63, "bit 63 stays 0: no rate word is VRL_STATE_EVICTED (all ones)");

/* The tag of rate epoch @epoch. */
static inline unsigned vrl_gcra_epoch_tag(uint64_t epoch)
{
	return (unsigned)(epoch % VRL_GCRA_TAGS);
}

/* The word of TAT @tat (<= VRL_GCRA_TIME_MAX) under tag @tag. */
static inline uint64_t vrl_gcra_word(unsigned tag, uint64_t tat)
{
	return (uint64_t)(tag % VRL_GCRA_TAGS) << VRL_GCRA_TAG_SHIFT | tat;
}

/* The TAT of word @w, and its tag. */
static inline uint64_t vrl_gcra_tat(uint64_t w)
{
	return w & VRL_GCRA_TAT_MASK;
}

static inline unsigned vrl_gcra_tag(uint64_t w)
{
	return (unsigned)(w >> VRL_GCRA_TAG_SHIFT) % VRL_GCRA_TAGS;
}

/* ---- the algorithm, on TATs ----------------------------------------------- */

/*
 * Fill @g for @count permits per @period_ns with a bucket of @burst.
 * Returns 0, or -EINVAL for a zero count, period or burst, or -ERANGE when
 * burst * T reaches VRL_GCRA_TIME_MAX.
 */
int vrl_gcra_init(struct vrl_gcra *g, uint64_t count, uint64_t period_ns, uint64_t burst);

/*
 * Test @n permits at time @now (and reserved for time @at >= @now; pass
 * at == now for an immediate acquire) against state @tat.
 * A cost above the burst never conforms: retry_after is UINT64_MAX.
 */
struct vrl_gcra_result vrl_gcra_test(const struct vrl_gcra *g, uint64_t tat, uint64_t now,
				     uint64_t at, uint64_t n);

/*
 * The TAT under @to that keeps, at time @now, the fill that TAT @tat has
 * under @from (see above): f = (tau1 - (tat - now)^+) / T1 permits, capped
 * at @to's burst, gives now + tau2 - f * T2, rounded up. @from NULL: its
 * parameters are unknown, and a full bucket (tat <= now) keeps one permit,
 * any other none. Saturates at VRL_GCRA_TIME_MAX.
 */
uint64_t vrl_gcra_convert(const struct vrl_gcra *from, const struct vrl_gcra *to, uint64_t tat,
			  uint64_t now);

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
