/*
 * share.h - the local side of a global rate key: the share word, a token
 * bucket of the host's share that only vrld fills and that the workers
 * take from, and why it keeps invariant 1 together with the other hosts;
 * and of a global window key, whose word is a cap (part "Window").
 * Pure functions of a word and the time. The acquire engine takes from it
 * (acquire.c AQ.S1 to S3), vrld fills it (daemon/vrld/gkeys.c).
 *
 * ---- The word ----------------------------------------------------------------
 *
 *     bits 24..63: until, in units of 2^20 ns (~1.05 ms) of CLOCK_MONOTONIC
 *     bits  0..23: credit, in 1/256 permits (at most 65535 + 255/256)
 *
 * One word per global key, in an array parallel to the key table (the
 * slot is one full cache line already). 40 bits of until cover 2^60 ns
 * (36 years) of uptime. A worker grants @cost permits at time now iff
 *
 *     (now >> 20) < until   and   credit >= cost * 256
 *
 * and CASes the word to credit - cost * 256 (vrl_share_take). vrld alone
 * adds credit and moves until (vrl_share_fill_word, vrl_share_set), with a CAS
 * loop from the word it loaded, so each change of vrld's and each take is
 * one step in the word's order of modification.
 *
 * ---- What vrld does, per global key ------------------------------------------
 *
 * The engine (daemon/global, lease.c) gives the host a share (r, b): a rate
 * r (permits/s x VRL_GLOBAL_RATE_UNIT) and a burst b, trusted until T
 * (local monotonic ns: the lease's expiry less the round trip and the
 * clock margin). vrld, at each tick t_k (and whenever a result comes):
 *
 *   F1  refill: credit := credit + min(r * (t_k - t_{k-1}), b * 256 -
 *       left_{k-1}), where left_{k-1} is the credit vrld left in the word
 *       at its previous change (the fill adds at most the room the bucket
 *       had then), the rate and burst being those of the share in force
 *       over (t_{k-1}, t_k], and the time counted only up to T
 *       (vrl_share_due: the fraction below 1/256 permit is carried in
 *       vrld's memory, never rounded up);
 *   F2  a new share (r', b', T'): credit := min(credit, b' * 256) and
 *       until := T' >> 20, in one CAS, before the share is reported to the
 *       engine as the one the key holds (vrl_share_set); a share that
 *       lapsed (now >= T) is applied from credit 0: vrl_share_set with
 *       @lapsed;
 *   F3  a release (vrld stopping, a key given back): until := 0, credit :=
 *       0 (vrl_share_set of none), then vrl_global_stop reports it.
 *
 * vrl_share_apply does F1 then F2 (or F3) for a result; vrl_share_tick F1.
 *
 * ---- Invariant 1, locally ----------------------------------------------------
 *
 * Claim. Let (r_h(t), b_h(t)) be the share host h enforces at t: the share
 * of the last lease vrld applied while t < its T, else none (0, 0). Then
 * the grants of host h with decision times in any [s, e] number at most
 * C_h(s) + integral_s^e r_h, where C_h(s) <= b_h(s) is its credit at s
 * (0 if its lease is not trusted at s).
 *
 * Proof. (a) No grant uses a lapsed lease: a take checks (now >> 20) <
 * until with until = floor(T / 2^20) (F2), so now < until * 2^20 <= T. A
 * take's CAS succeeds only from the very word it judged, so each take is
 * decided on the word in force at its step of the modification order: a
 * take that read the word before vrld changed it (a new until, a clamped
 * or a raised credit) fails its CAS and judges the new word.
 * (b) Credit enters only by F1, at the rate of the share in force and only
 * for time before T: the credit added over (t_{k-1}, t_k] is at most
 * integral r_h over it, and the cap keeps credit <= b_h. F2 never raises
 * credit; after a lapse it starts from 0 (a lease that runs out is a new
 * share of none: lease.c). (c) So the credit is a token bucket filled in
 * steps at the ends of intervals: at every t it holds no more than a
 * continuous bucket of (r_h, b_h) with the same takes. By induction over
 * vrld's changes: let x = left_{k-1} <= C(t_{k-1}), the continuous
 * bucket's content then, and g the takes in (t_{k-1}, t_k] (the word
 * reads x - g before the fill). The continuous bucket, from content at
 * least x, keeps the least at t_k when every take comes at the end of the
 * interval (a take that comes earlier makes room sooner: less passes the
 * cap): C(t_k) >= min(b, x + r dt) - g = (x - g) + min(r dt, b - x), the
 * word after F1. Without the room term (adding r dt up to the cap, as an
 * earlier version did) a bucket full at t_{k-1} and emptied at once
 * gains, at t_k, the fill of a time it was full: a grant over the bound
 * in a merged log of three hosts. F2 only lowers the credit, F3 empties
 * it. A token bucket's takes over [s, e] are at most its content at s
 * plus its fill over [s, e]; the step bucket's are bounded by the
 * continuous one's. QED. What the room term costs: a bucket full at a
 * fill gains nothing at the next, so a burst share of b permits used at
 * once loses up to r * (the time between two fills) each time it fills
 * up. vrld fills a key every vrl_share_fill_interval(): every
 * VRL_SHARE_FILL_NS while b / 16 comes faster than that, else when b / 16
 * has come (at most VRL_SHARE_FILL_MAX_NS): the loss stays below a
 * sixteenth of the burst per fill-up, or r * 1 ms (a tenth for b = 1 at
 * r = 50/s), and a large burst share is not touched every millisecond.
 *
 * Across hosts. lease.c proves G1: at every instant the shares hosts
 * enforce sum to at most the limit, for the rate and for the burst
 * (sum_h r_h <= r, sum_h b_h <= B). With the claim, grants in [s, e] over
 * all hosts are at most sum_h b_h(s) + integral_s^e sum_h r_h <= B + r (e -
 * s): the bound of one GCRA(r, B), invariant 1 for the global limit. The
 * local key's own GCRA of the configured figures applies besides, all or
 * nothing, so the key enforces min(config, share).
 *
 * A vrld that stops (SIGSTOP, a hang, a crash) stops F1: its workers keep
 * only the credit there is, and only until T.
 *
 * ---- Decision times: F0 ------------------------------------------------------
 *
 * A grant's time is its decision time d: the clock read of its acquire
 * (or the reservation a waiting acquire slept to), as for every kind. A
 * worker's clock read and its CAS may be far apart (a preempted worker),
 * and a pass of F1 between them adds credit for time after d: a grant
 * dated d would then spend credit of a later time, and the claim's
 * "C_h(s) + integral_s^e r_h" would not bound the grants dated in [s, e]
 * (two hosts' merged logs show it: one grant over in 15 ms). So:
 *
 *   F0 vrld stores each pass's time t_k in the segment's share_fill_ns
 *      (non-decreasing: one thread, a monotonic clock) and issues a
 *      release fence before the pass's first fill. A take decided at d
 *      issues an acquire fence after its CAS and loads share_fill_ns;
 *      above d, the acquire does not grant: it rolls back its commits
 *      and starts over (vrl_share_fresh), the credit taken lost to the
 *      host (never given back, above).
 *
 * Why it suffices: the value a take's CAS reads is later, in the word's
 * order of modification, than every fill whose credit it may spend; each
 * such fill, of pass k, follows pass k's release fence, and the take's
 * acquire fence follows the CAS, which reads that fill's value or a later
 * one of the word's read-modify-writes (its release sequence): the fences
 * synchronise, so the load sees t_k or a later value. A load <= d thus
 * shows every pass whose credit the take spent was for time <= d, and
 * the claim holds with grants dated by their decisions. A pass runs every
 * VRL_SHARE_FILL_NS (and at each tick and result): an acquire that
 * straddles one starts over, some 1 in 10^4 of them.
 *
 * ---- Window: the word as a cap ----------------------------------------------
 *
 * A global window key (at most N grants in any W) has a share of the
 * count: the host may make at most s grants in any W (lease.c "Window").
 * Its word holds until | s, s in whole grants in the credit field (24
 * bits: more than VRL_WINDOW_MAX_N), and is a cap, not a store of
 * credit: workers only load it, vrld alone writes it, by store
 * (vrl_share_set_cap):
 *
 *   FW1 a new share (s', T'): word := until(T') | s' in one store,
 *       after F0's mark, before the share is reported to the engine as
 *       the one the key holds. A shrink applies at once, a growth too; a
 *       lapse is a share of none (0 | 0).
 *   FW2 a worker's grant at decision time d: after the commit of its
 *       key's ring (window.c WIN.W7) it loads the word, requires it live
 *       at d (d < until * 2^20 <= T, as (a) above) and its grants counted
 *       at d, this one included, at most s (vrl_window_within); then F0:
 *       vrl_share_fresh shows no change of vrld's after d, else it
 *       undoes and starts over.
 *
 * Claim. Any I = (t - W, t] holds at most s(d) grants of the host's key,
 * d being the decision time of the one of them committed last, and s(d)
 * the share of a lease vrld applied before d and trusted at d. Proof.
 * window.c WIN.W7 bounds I's grants by the count that grant checked; it
 * checked them against the word it loaded, live at d. F0: vrld marks
 * share_fill_ns with its time before it stores a new share (its release
 * fence between), the worker loads share_fill_ns after its load of the
 * word and an acquire fence: a word stored after a mark later than d
 * shows that mark, and the grant is not made. So the word was applied at
 * or before d, from a lease granted before that, and is trusted at d. A
 * shrink stored after the worker's load only makes later checks
 * stricter; the lease it replaced was trusted at d, which is all lease.c
 * asks ("the lease of s_h(x) was trusted at x"): Redis counts the
 * larger promise until its expiry + W. The key's own ring keeps N beside.
 * vrld reports held = the positions counted at its scan (grants in the
 * trailing W) for a release (vrl.lua keeps them counted for W).
 *
 * Units. The worker reads the time it has (CLOCK_MONOTONIC ns) and shifts;
 * no division on its path. Costs above 65535 permits, or a burst share
 * above it, do not fit: vrl_share_set caps the burst, and such a limit is
 * to be refused at config time for scope: global.
 */
#ifndef VRL_SHARE_H
#define VRL_SHARE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define VRL_SHARE_FRAC_BITS   8u                      /* credit: 1/256 permits */
#define VRL_SHARE_CREDIT_BITS 24u
#define VRL_SHARE_CREDIT_MAX  ((UINT64_C(1) << VRL_SHARE_CREDIT_BITS) - 1u)
#define VRL_SHARE_BURST_MAX   (VRL_SHARE_CREDIT_MAX >> VRL_SHARE_FRAC_BITS)  /* 65535 */
#define VRL_SHARE_TIME_SHIFT  20u                     /* until: units of 2^20 ns */
#define VRL_SHARE_RATE_UNIT   UINT64_C(1000000)       /* = VRL_GLOBAL_RATE_UNIT */
#define VRL_SHARE_FILL_NS     UINT64_C(1000000)       /* vrld adds credit this often */
#define VRL_SHARE_RETRY_NS    VRL_SHARE_FILL_NS       /* credit comes by then */
#define VRL_SHARE_FILL_MAX_NS UINT64_C(20000000)      /* the longest between two fills */
#define VRL_SHARE_TICK_NS     UINT64_C(100000000)     /* vrld's tick: a round's results
							 * are applied at one (vrld.c) */

__extension__ typedef unsigned __int128 vrl_share_u128;

static inline uint64_t vrl_share_credit(uint64_t w)
{
	return w & VRL_SHARE_CREDIT_MAX;
}

static inline uint64_t vrl_share_until(uint64_t w)
{
	return w >> VRL_SHARE_CREDIT_BITS;
}

static inline uint64_t vrl_share_word(uint64_t until, uint64_t credit)
{
	return until << VRL_SHARE_CREDIT_BITS | credit;
}

/* The until field of trusted-until @t_ns (rounded down: never later). */
static inline uint64_t vrl_share_until_of(uint64_t t_ns)
{
	uint64_t u = t_ns >> VRL_SHARE_TIME_SHIFT;
	const uint64_t max = (UINT64_C(1) << (64u - VRL_SHARE_CREDIT_BITS)) - 1u;

	return u > max ? max : u;
}

/* Whether word @w's lease is trusted at @now. */
static inline bool vrl_share_live(uint64_t w, uint64_t now)
{
	return (now >> VRL_SHARE_TIME_SHIFT) < vrl_share_until(w);
}

/* What a take of @cost at @now from word @w gives. */
enum vrl_share_verdict {
	VRL_SHARE_GRANTED = 0,
	VRL_SHARE_SHORT,        /* the share has no room now: unmet demand */
	VRL_SHARE_LAPSED,       /* no lease trusted now: on_partition */
};

/*
 * A worker's take of @cost permits at @now (CLOCK_MONOTONIC ns). One CAS;
 * on a CAS failure the word is loaded again and judged again. A take whose
 * acquire then fails on another limit is not given back: a give-back could
 * cross vrld's clamp of a new share (F2) and put credit above it; the
 * permit is lost to the host, never granted twice.
 * Relaxed, every access to the word here and below: it carries no other
 * data, and the proof uses only the single order of its modifications,
 * which every atomic read-modify-write has.
 */
static inline enum vrl_share_verdict vrl_share_take(_Atomic uint64_t *word, uint64_t cost,
						    uint64_t now)
{
	uint64_t w = atomic_load_explicit(word, memory_order_relaxed);
	uint64_t need = cost > VRL_SHARE_BURST_MAX ? UINT64_MAX : cost << VRL_SHARE_FRAC_BITS;

	for (;;) {
		if (!vrl_share_live(w, now))
			return VRL_SHARE_LAPSED;
		if (vrl_share_credit(w) < need)
			return VRL_SHARE_SHORT;
		if (atomic_compare_exchange_weak_explicit(word, &w, w - need,
							  memory_order_relaxed,
							  memory_order_relaxed))
			return VRL_SHARE_GRANTED;
	}
}

/* F0, vrld: a pass adding credit for time up to @t begins. */
static inline void vrl_share_mark(_Atomic uint64_t *fill_ns, uint64_t t)
{
	/* relaxed: ordered before the pass's fills by the release fence */
	if (atomic_load_explicit(fill_ns, memory_order_relaxed) < t)
		atomic_store_explicit(fill_ns, t, memory_order_relaxed);
	/* release: F0, pairs with vrl_share_fresh's acquire fence */
	atomic_thread_fence(memory_order_release);
}

/* F0, worker: after its takes' CASes, whether a grant dated @d spent only
 * credit for time up to @d. */
static inline bool vrl_share_fresh(_Atomic uint64_t *fill_ns, uint64_t d)
{
	/* acquire: F0, pairs with vrl_share_mark's release fence */
	atomic_thread_fence(memory_order_acquire);
	/* relaxed: ordered by the fence above */
	return atomic_load_explicit(fill_ns, memory_order_relaxed) <= d;
}

/*
 * vrld's memory of one global rate key: the share in force and the time
 * credit was last added up to, and the part of a 1/256 permit carried.
 */
struct vrl_share_fill {
	uint64_t rate;          /* permits/s x VRL_SHARE_RATE_UNIT */
	uint64_t burst;         /* permits */
	uint64_t trusted;       /* local monotonic ns; 0: none */
	uint64_t filled_to;     /* local monotonic ns the credit covers */
	uint64_t carry;         /* credit not yet added: 1/256 permit x 1e15 */
	uint64_t left;          /* credit (1/256 permits) vrld left in the word at
				 * its last change: F1 adds at most the room there was */
	uint64_t count;         /* window: the cap in force (FW1), grants in any W */
};

/*
 * F1: the credit (1/256 permits) due from @f->filled_to to @now under the
 * share in force, counting time only up to @f->trusted; advances
 * @f->filled_to and keeps the remainder in @f->carry (never rounded up).
 */
static inline uint64_t vrl_share_due(struct vrl_share_fill *f, uint64_t now)
{
	uint64_t end = now < f->trusted ? now : f->trusted;
	vrl_share_u128 x;
	uint64_t due = 0;

	if (f->rate == 0)
		f->carry = 0;
	if (f->rate != 0 && end > f->filled_to) {
		/* rate x 1e-6 permits/s x dt ns x 1e-9 s/ns x 256: rate x dt x 256 / 1e15 */
		x = (vrl_share_u128)f->rate * (end - f->filled_to) *
		    (1u << VRL_SHARE_FRAC_BITS) + f->carry;
		due = (uint64_t)(x / UINT64_C(1000000000000000));
		f->carry = (uint64_t)(x % UINT64_C(1000000000000000));
	}
	if (now > f->filled_to)
		f->filled_to = now;
	return due;
}

/*
 * F1 on the word: add @due credit, capped at @burst permits. One CAS
 * loop: takes between vrld's load and its CAS make it load again.
 */
static inline uint64_t vrl_share_fill_word(_Atomic uint64_t *word, uint64_t due, uint64_t burst)
{
	uint64_t w = atomic_load_explicit(word, memory_order_relaxed);
	uint64_t cap = (burst > VRL_SHARE_BURST_MAX ? VRL_SHARE_BURST_MAX : burst)
		       << VRL_SHARE_FRAC_BITS;

	for (;;) {
		uint64_t c = vrl_share_credit(w);
		uint64_t n = c >= cap ? c : (cap - c < due ? cap : c + due);

		if (n == c)
			return c;
		if (atomic_compare_exchange_weak_explicit(word, &w, vrl_share_word(vrl_share_until(w), n),
							  memory_order_relaxed,
							  memory_order_relaxed))
			return n;
	}
}

/*
 * F2, F3: a new share (@burst permits, trusted until @trusted ns; 0: none)
 * in one CAS: credit clamped to the new burst (0 when @lapsed: the lease
 * before ran out), until moved. vrld reports the share to the engine only
 * after this returns.
 */
static inline uint64_t vrl_share_set(_Atomic uint64_t *word, uint64_t burst, uint64_t trusted,
				     bool lapsed)
{
	uint64_t w = atomic_load_explicit(word, memory_order_relaxed);
	uint64_t cap = (burst > VRL_SHARE_BURST_MAX ? VRL_SHARE_BURST_MAX : burst)
		       << VRL_SHARE_FRAC_BITS;
	uint64_t until = trusted ? vrl_share_until_of(trusted) : 0;

	for (;;) {
		uint64_t c = lapsed || trusted == 0 ? 0 : vrl_share_credit(w);

		if (c > cap)
			c = cap;
		if (atomic_compare_exchange_weak_explicit(word, &w, vrl_share_word(until, c),
							  memory_order_relaxed,
							  memory_order_relaxed))
			return c;
	}
}

/* F1 on the word for @f's share: @due, but no more than the room the
 * bucket had when vrld last changed it (f->left); f->left follows. */
static inline void vrl_share_fill_room(struct vrl_share_fill *f, _Atomic uint64_t *word,
				       uint64_t due)
{
	uint64_t cap = (f->burst > VRL_SHARE_BURST_MAX ? VRL_SHARE_BURST_MAX : f->burst)
		       << VRL_SHARE_FRAC_BITS;
	uint64_t room = f->left >= cap ? 0 : cap - f->left;

	f->left = vrl_share_fill_word(word, due < room ? due : room, f->burst);
}

/*
 * vrld, before it evicts the key: credit := 0, until kept (a clamp to a
 * share of nothing for the moment; F1 refills it while the key stays).
 */
static inline void vrl_share_drain(_Atomic uint64_t *word)
{
	uint64_t w = atomic_load_explicit(word, memory_order_relaxed);

	while (vrl_share_credit(w) != 0 &&
	       !atomic_compare_exchange_weak_explicit(word, &w, vrl_share_word(vrl_share_until(w), 0),
						      memory_order_relaxed, memory_order_relaxed))
		;
}

/*
 * What vrld does with a new share (@rate, @burst, trusted until @trusted;
 * all 0: none) of key @word at @now: F1 under the share in force up to
 * @now, then F2 (or F3), then @f holds the new share. After it returns the
 * share may be reported to the engine as the key's.
 */
static inline void vrl_share_apply(struct vrl_share_fill *f, _Atomic uint64_t *word,
				   uint64_t rate, uint64_t burst, uint64_t trusted, uint64_t now)
{
	bool lapsed = now >= f->trusted;

	vrl_share_fill_room(f, word, vrl_share_due(f, now));
	f->left = vrl_share_set(word, burst, trusted, lapsed);
	f->rate = rate;
	f->burst = burst;
	f->trusted = trusted;
	f->carry = lapsed ? 0 : f->carry;
}

/*
 * How long after a fill of @f vrld fills it again: the time a sixteenth
 * of its burst share takes to come at its rate share, within
 * [VRL_SHARE_FILL_NS, VRL_SHARE_FILL_MAX_NS]; UINT64_MAX with no rate
 * (nothing is due until a new share: vrl_share_apply).
 */
static inline uint64_t vrl_share_fill_interval(const struct vrl_share_fill *f)
{
	vrl_share_u128 t;

	if (f->rate == 0)
		return UINT64_MAX;
	/* burst / 16 permits at rate x 1e-6 permits/s: burst x 1e15 / (16 rate) ns */
	t = (vrl_share_u128)f->burst * UINT64_C(1000000000000000) / ((vrl_share_u128)f->rate * 16u);
	if (t < VRL_SHARE_FILL_NS)
		return VRL_SHARE_FILL_NS;
	return t > VRL_SHARE_FILL_MAX_NS ? VRL_SHARE_FILL_MAX_NS : (uint64_t)t;
}

/* F1 at a tick: the credit due under the share in force, added. */
static inline void vrl_share_tick(struct vrl_share_fill *f, _Atomic uint64_t *word, uint64_t now)
{
	vrl_share_fill_room(f, word, vrl_share_due(f, now));
}

/* ---- window keys (FW1, FW2) ------------------------------------------------ */

/* The cap of window word @w: grants in any W (whole, not 1/256). */
static inline uint64_t vrl_share_cap(uint64_t w)
{
	return w & VRL_SHARE_CREDIT_MAX;
}

/*
 * FW1, vrld: window key @word's share is now @count grants in any W,
 * trusted until @trusted ns (0: none; @count then ignored). Workers never
 * write a window word, so a store; vrld's only other writer of it (the
 * drain before an eviction) runs on the same thread.
 */
static inline void vrl_share_set_cap(_Atomic uint64_t *word, uint64_t count, uint64_t trusted)
{
	uint64_t until = trusted ? vrl_share_until_of(trusted) : 0;
	uint64_t cap = count > VRL_SHARE_CREDIT_MAX ? VRL_SHARE_CREDIT_MAX : count;

	/* relaxed: ordered for F0 by vrl_share_mark's release fence before it */
	atomic_store_explicit(word, until ? vrl_share_word(until, cap) : 0, memory_order_relaxed);
}

/* FW2, worker: the cap word @w allows at @d, or why not (no credit taken). */
static inline enum vrl_share_verdict vrl_share_cap_at(uint64_t w, uint64_t d, uint64_t *cap)
{
	*cap = vrl_share_cap(w);
	return vrl_share_live(w, d) ? VRL_SHARE_GRANTED : VRL_SHARE_LAPSED;
}

#endif /* VRL_SHARE_H */
