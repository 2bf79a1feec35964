/*
 * blocks.h - the local side of a global quota or slots key: the block
 * word, an account of the units Redis counts for this host (its
 * allocation), that the workers take from and give back to and that only
 * vrld grows or shrinks; and why the pool then keeps invariant 1.
 * Pure functions of the words. The acquire engine takes and gives back
 * (acquire.c AQ.B1, AQ.B2), a slots release, a refund and vrld's reaper
 * give back (keyops.c, handle.c), vrld applies the engine's results
 * (daemon/vrld/gkeys.c), the sweep drains (sweep.c).
 *
 * ---- The words ---------------------------------------------------------------
 *
 * The slot's struct vrl_seg_share, as for a rate key (share.h), read
 * another way:
 *
 *     word  bits 24..63: tag: 0 none; quota: the period id + 1; slots: 1
 *           bits  0..23: credit: whole units of the allocation not taken
 *     cap   the allocation A vrld applied (units), or more (B2)
 *
 * A worker takes @cost units for a grant of a key whose tag is T (quota:
 * the period its look judged the key in, kind_counted.h; slots: 1) iff
 *
 *     tag == T   and   credit >= cost
 *
 * with one CAS to credit - cost (vrl_block_take): the period and the room
 * are checked in the same step, so credit of period P is never spent by
 * a grant dated in another period. A worker gives @cost back (credit +
 * cost, vrl_block_give) only under the same tag, for units it took and
 * holds no more: its own take when its acquire then fails (AQ.B2), a
 * slot it releases, a dead holder's slot vrld reaps, units refunded (as
 * many as the key's count gave back, keyops.c). A give-back never
 * crosses a tag change: a unit taken in period P and given back in P + 1
 * is lost to P (counted used), never credited to P + 1.
 *
 * vrld alone changes the tag and the allocation, on its main thread:
 *   V1 take-up or a new period (quota): the word := (T', 0) by one store,
 *      then cap := 0; an allocation of a period before is left behind
 *      (Redis counts it in that period). The tag only moves forward: a
 *      wall clock stepped back keeps the word of the later period, which
 *      then denies the workers' looks of the earlier one.
 *   V2 a result of the engine (allocation a, spare to keep t): from the
 *      credit C it loaded, with A the allocation in force and
 *      consumed = A - C, the new credit is
 *          C' = min(C + max(0, a - A), t, 2^24 - 1)  (t: only for an OK
 *                                                      answer; else no cap)
 *      by one CAS from C, and A' = consumed + C'. cap is raised to A'
 *      before the CAS when A' > A, lowered to it after (B2).
 *   V3 drain (vrld stopping; the sweep before it evicts the key): credit
 *      := 0 by one CAS, then cap lowered by what it held: A' = consumed.
 *
 * ---- B1: the account is exact -------------------------------------------------
 *
 * While the tag is T, at every step of the word's modification order,
 *
 *     A = consumed + credit,   consumed = units taken and not given back.
 *
 * Proof: a take moves credit by -cost and consumed by +cost, a give-back
 * the other way, each one step. vrld's V2 and V3 are single CASes from
 * the very word it loaded; a take or a give-back between its load and its
 * CAS fails the CAS, and vrld computes again from the new word, so
 * consumed is the same before and after its step and A' - C' = A - C.
 * V1 starts T' at A = 0, credit 0, consumed 0 (a take of T that came
 * before the store is consumed in T, which Redis counts; one after it
 * fails on the tag). No handshake with the workers is needed: vrld
 * shrinks by taking away credit, which is by definition not consumed.
 *
 * B2: cap >= A at every instant (raised before a raise, lowered after a
 * lowering; a vrld killed between leaves cap above A, never below), and
 * cap is vrld's only memory of A: a vrld that starts on a segment reads
 * A <= cap and consumed <= cap - credit, and reports cap as what it
 * keeps: at least what its workers may use. (Its stores are all visible
 * to its successor, which starts after the kernel reaped it.)
 *
 * ---- Invariant 1 ------------------------------------------------------------------
 *
 * lease.c ("Quota and slots: blocks") needs of the host: its workers
 * consume at most the allocation Redis counts for it, A_h^R, and the
 * host shrinks its allocation before it reports the smaller one. Here,
 * A <= A_h^R at every instant: A rises only by V2, to at most a, which
 * Redis counts for the host when it answers (vrl.lua: used includes every
 * host's allocation, the answer is the one it wrote); A falls by V2's
 * clamp and by V3 before the next entry reports it (the entry's
 * share.count is cap, B2), and Redis lowers A_h^R only to a host's report
 * (the engine reports a result's allocation for an entry made before it
 * was applied: global.h, vrl_global_result.gen). So:
 *
 *   Quota (hard). Every grant of a global quota key dated in period P
 *   took its cost from a word tagged P (AQ.B1: the take comes after the
 *   commits, the grant only if it succeeded), and a take given back is no
 *   grant. So the grants of host h dated in P are at most consumed_P <=
 *   A_P <= A_h^R(P), and over all hosts at most Redis's used <= N.
 *
 *   Slots. A unit is held from its grant to its release; its take comes
 *   before the grant, its give-back after the release (or after vrld
 *   reaped its dead holder): holders_h(t) <= consumed(t) <= A(t) <=
 *   A_h^R(t) at every instant, and sum_h A_h^R <= N.
 *
 *   Soft quota: never short. Its workers take nothing; vrld reports as
 *   the allocation it keeps the larger of its allocation and the units
 *   the key counted in the period, so Redis counts every unit granted,
 *   overage included (invariant 1 does not apply: overage is granted).
 *
 * What is lost, never over-granted: a take whose acquire dies before it
 * gives back; a give-back after a period ended; credit drained when the
 * key is evicted or vrld stops (reported as a smaller allocation at the
 * next tick, so only a dead host strands a block: lease.c). The credit
 * word holds at most 2^24 - 1 units: V2 keeps the rest in Redis (as a
 * shrink), and a global slots limit is refused above that count.
 */
#ifndef VRL_BLOCKS_H
#define VRL_BLOCKS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "share.h"

#define VRL_BLOCK_CREDIT_MAX VRL_SHARE_CREDIT_MAX    /* units of credit a word holds */
#define VRL_BLOCK_TAG_MAX    ((UINT64_C(1) << (64u - VRL_SHARE_CREDIT_BITS)) - 1u)
#define VRL_BLOCK_SLOTS_TAG  UINT64_C(1)              /* a slots key's tag */

/* The tag of quota period @pid (never 0: none). */
static inline uint64_t vrl_block_tag_quota(uint64_t pid)
{
	return pid >= VRL_BLOCK_TAG_MAX ? VRL_BLOCK_TAG_MAX : pid + 1u;
}

static inline uint64_t vrl_block_credit(uint64_t w)
{
	return vrl_share_credit(w);
}

static inline uint64_t vrl_block_tag(uint64_t w)
{
	return vrl_share_until(w);
}

/* What a take of @cost under tag @tag from word @w gives, by loads only. */
static inline enum vrl_share_verdict vrl_block_judge(uint64_t w, uint64_t tag, uint64_t cost)
{
	if (vrl_block_tag(w) != tag || tag == 0)
		return VRL_SHARE_LAPSED;
	return vrl_block_credit(w) < cost ? VRL_SHARE_SHORT : VRL_SHARE_GRANTED;
}

/*
 * A worker's take of @cost units under tag @tag. One CAS; on a CAS failure
 * the word is judged again. Relaxed, every access to the words here and
 * below: they carry no other data, and B1 uses only the single order of
 * the word's modifications, which every atomic read-modify-write has.
 */
static inline enum vrl_share_verdict vrl_block_take(_Atomic uint64_t *word, uint64_t tag,
						    uint64_t cost)
{
	uint64_t w = atomic_load_explicit(word, memory_order_relaxed);

	for (;;) {
		enum vrl_share_verdict r = vrl_block_judge(w, tag, cost);

		if (r != VRL_SHARE_GRANTED)
			return r;
		if (atomic_compare_exchange_weak_explicit(word, &w, w - cost, memory_order_relaxed,
							  memory_order_relaxed))
			return r;
	}
}

/*
 * Give @cost units taken under tag @tag back: credit + cost while the tag
 * is still @tag, else nothing (the period ended: the units stay counted in
 * it). Returns the units given back (fewer only where the credit would
 * pass 2^24 - 1: those stay consumed, a loss).
 */
static inline uint64_t vrl_block_give(_Atomic uint64_t *word, uint64_t tag, uint64_t cost)
{
	uint64_t w = atomic_load_explicit(word, memory_order_relaxed);

	for (;;) {
		uint64_t c = vrl_block_credit(w);
		uint64_t add = cost > VRL_BLOCK_CREDIT_MAX - c ? VRL_BLOCK_CREDIT_MAX - c : cost;

		if (vrl_block_tag(w) != tag || tag == 0 || add == 0)
			return 0;
		if (atomic_compare_exchange_weak_explicit(word, &w, w + add, memory_order_relaxed,
							  memory_order_relaxed))
			return add;
	}
}

/* ---- vrld ----------------------------------------------------------------------- */

/* V1: the word starts tag @tag with nothing, then cap := 0. */
static inline void vrl_block_start(_Atomic uint64_t *word, _Atomic uint64_t *cap, uint64_t tag)
{
	atomic_store_explicit(word, vrl_share_word(tag, 0), memory_order_relaxed);
	atomic_store_explicit(cap, 0, memory_order_relaxed);
}

/* The allocation in force (cap, B2) and the units consumed of it, from
 * word @w: credit above cap (a word written by a hostile member) counts
 * as cap. */
static inline uint64_t vrl_block_consumed(uint64_t w, uint64_t cap)
{
	uint64_t c = vrl_block_credit(w);

	return c < cap ? cap - c : 0;
}

/*
 * V2: apply allocation @a of the engine, and when @clamp the spare to keep
 * @target, to the word of tag @tag (a word of another tag is left: the
 * result is of another period). Returns the allocation now in force (cap).
 */
static inline uint64_t vrl_block_apply(_Atomic uint64_t *word, _Atomic uint64_t *cap,
				       uint64_t tag, uint64_t a, uint64_t target, bool clamp)
{
	uint64_t w = atomic_load_explicit(word, memory_order_relaxed);
	uint64_t A = atomic_load_explicit(cap, memory_order_relaxed), hi = A;

	for (;;) {
		uint64_t c = vrl_block_credit(w), used = vrl_block_consumed(w, A), n, next;

		if (vrl_block_tag(w) != tag || tag == 0)
			return A;
		n = a > A ? c + (a - A) : c;
		if (n < c)
			n = VRL_BLOCK_CREDIT_MAX;     /* overflow: capped below */
		if (clamp && n > target)
			n = target;
		if (n > VRL_BLOCK_CREDIT_MAX)
			n = VRL_BLOCK_CREDIT_MAX;
		next = used + n;
		if (next > hi) {                      /* B2: cap raised first */
			hi = next;
			atomic_store_explicit(cap, hi, memory_order_relaxed);
		}
		if (atomic_compare_exchange_weak_explicit(word, &w, vrl_share_word(tag, n),
							  memory_order_relaxed,
							  memory_order_relaxed)) {
			atomic_store_explicit(cap, next, memory_order_relaxed);   /* B2: then exact */
			return next;
		}
	}
}

/* V3: credit := 0, then cap lowered by it (never below 0: a rate key's cap
 * is 0). Returns the allocation now in force. */
static inline uint64_t vrl_block_drain(_Atomic uint64_t *word, _Atomic uint64_t *cap)
{
	uint64_t w = atomic_load_explicit(word, memory_order_relaxed);
	uint64_t A = atomic_load_explicit(cap, memory_order_relaxed), c;

	do {
		c = vrl_block_credit(w);
		if (c == 0)
			return A;
	} while (!atomic_compare_exchange_weak_explicit(word, &w, vrl_share_word(vrl_share_until(w), 0),
							memory_order_relaxed, memory_order_relaxed));
	A = A > c ? A - c : 0;
	atomic_store_explicit(cap, A, memory_order_relaxed);
	return A;
}

#endif /* VRL_BLOCKS_H */
