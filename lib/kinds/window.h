/*
 * window.h - the exact rolling window: at most N grants in ANY interval of
 * length W (ev.energy: 1000 per rolling hour per (app, user)).
 *
 * Each key of a window limit owns a ring of N 64-bit positions in its
 * limit's ring area; each position holds the monotonic ns time of the last
 * grant made on it (0: never). The key's slot state word holds a hint (the
 * next position to try) and a version. The proof is at the top of window.c.
 *
 * Memory: a window limit with `limit: N` and `keys: K` costs
 *     64 + align64(4 K) + K * align64(8 N) bytes
 * in the segment (the 1000/hour preset with 100000 keys: about 800 MB;
 * size `keys:` to the (app, user) pairs you expect in one window).
 *
 * Pure functions take the time (`now`, `at`) as a parameter, so tests drive
 * time by hand. Internal: not installed.
 */
#ifndef VRL_WINDOW_H
#define VRL_WINDOW_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "segment.h"

#define VRL_WINDOW_MAX_N    (UINT64_C(1) << 20) /* positions of one ring */
#define VRL_WINDOW_MAX_KEYS (UINT64_C(1) << 31) /* rings of one limit */
#define VRL_WINDOW_PROBE    16u     /* remaining: taken positions skipped past the hint */
#define VRL_WINDOW_IDX_BITS 24u     /* state word: version << 24 | hint index */
#define VRL_WINDOW_IDX_MASK ((UINT64_C(1) << VRL_WINDOW_IDX_BITS) - 1)

_Static_assert(VRL_WINDOW_MAX_N < VRL_WINDOW_IDX_MASK,
	       "a hint index never fills its field, so no state is VRL_STATE_EVICTED");

/* Head of a ring area: a tagged free stack of ring indexes. */
struct vrl_window_area {
	/*
	 * Free stack head: ABA tag << 32 | (ring index + 1), 0 in the low
	 * half when empty. Popped by clients (a new key), pushed by clients
	 * (a lost race) and vrld (an evicted key). The tag changes on every
	 * push and pop, so a CAS based on a stale head fails.
	 */
	_Alignas(VRL_CACHELINE) _Atomic uint64_t free_head;
	uint64_t nkeys;              /* rings in the area (vrld writes at creation) */
	uint64_t n;                  /* positions per ring */
	_Atomic uint64_t empty;      /* pops refused: area full (relaxed counter) */
	uint64_t reserved[4];
	/* then: _Atomic uint32_t next[nkeys] (index + 1, 0 ends), cache-line
	 * aligned, then nkeys rings of align64(8 n) bytes */
};
_Static_assert(sizeof(struct vrl_window_area) == VRL_CACHELINE, "area head is one line");

/* One key's ring and its state word: what the step functions work on. */
struct vrl_window_ref {
	_Atomic uint64_t *state;     /* the slot's state word: version and hint */
	_Atomic uint64_t *ring;      /* n positions */
	uint64_t n;                  /* positions: the limit's count */
	uint64_t w;                  /* the window in ns */
};

/* What a look saw: where to take, or when it could. */
struct vrl_window_look {
	uint64_t first;              /* ring index of the first position to take */
	uint64_t earliest;           /* `at` if it conforms; later, or UINT64_MAX */
};

/* ---- the area ------------------------------------------------------------- */

/* Bytes of the ring area of @keys rings of @n positions; 0 on overflow. */
uint64_t vrl_window_area_bytes(uint64_t n, uint64_t keys);

/* vrld, on a zeroed area: all rings free. */
void vrl_window_area_init(void *area, uint64_t n, uint64_t keys);

/* The ring @idx of the area (no bounds check: callers validate idx). */
_Atomic uint64_t *vrl_window_ring(void *area, uint64_t n, uint64_t keys, uint64_t idx);

/*
 * Take a free ring. Returns 0 and its index in @idx, or VRL_EFULL when none
 * is free. Lock-free; a process killed after the pop loses that ring until
 * vrld restarts with a fresh segment (at most one ring per kill in the few
 * instructions between this pop and the slot's aux CAS).
 */
int vrl_window_ring_get(void *area, uint64_t n, uint64_t keys, uint64_t *idx);

/* Return ring @idx (a lost race, or vrld after an eviction). */
void vrl_window_ring_put(void *area, uint64_t n, uint64_t keys, uint64_t idx);

/*
 * Make sure slot @s has a ring: returns 0 and the ring index, VRL_EFULL
 * when the area has none left, VRL_ECORRUPT when aux is out of range.
 * A slot that vrld evicts while we attach a ring gives the ring back; only
 * if the slot is also reclaimed and re-inserted between our aux CAS and
 * our next load (a few instructions) is that ring lost until restart.
 */
int vrl_window_slot_ring(void *area, uint64_t n, uint64_t keys, struct vrl_seg_slot *s,
			 uint64_t *idx);

/*
 * Check a window limit's ring area against the view @v: in bounds after
 * the alert marks (the last fixed area), aligned, and its head agreeing
 * with the limit's count and area_keys. Returns 0 or VRL_ECORRUPT. @l must
 * be a private copy: its area_off is what the caller goes on using.
 */
int vrl_window_area_check(const struct vrl_seg_view *v, const struct vrl_seg_limit *l);

/*
 * The ring of the window key in slot @slot of the segment viewed by @v
 * under limit @l (a private copy: a validated snapshot's, or vrld's own
 * compiled config), for the upstream-feedback calls below.
 * Returns 0, VRL_ENOKEY when the key has no ring yet (nothing to credit;
 * a floor needs an acquire first), VRL_ECORRUPT when its aux is out of
 * range. The caller re-checks the slot's tag after acting, as an acquire
 * does (acquire.c AQ.A3).
 */
int vrl_window_ref_of(const struct vrl_seg_view *v, const struct vrl_seg_limit *l,
		      uint64_t slot, struct vrl_window_ref *out);

/* ---- the steps ------------------------------------------------------------- */

/* True when a position holding @v may take a grant at @at. */
static inline bool vrl_window_free(uint64_t v, uint64_t at, uint64_t w)
{
	return v == 0 || (v <= at && at - v >= w);
}

/* The hint index of a state word (0 if out of range). */
static inline uint64_t vrl_window_hint(uint64_t state, uint64_t n)
{
	uint64_t i = state & VRL_WINDOW_IDX_MASK;

	return i < n ? i : 0;
}

/*
 * Read-only: can @cost grants be made at @at? Fills @lk: the first position
 * to take and the earliest time at which it conforms (== @at if it does).
 * @state is the state word as the caller read it.
 */
void vrl_window_look(const struct vrl_window_ref *r, uint64_t state, uint64_t cost,
		     uint64_t at, struct vrl_window_look *lk);

/*
 * Take positions first .. first+cost-1 at @at, each by CAS, then commit by
 * CAS of the state word (version + 1, hint past them). Returns 0, 1 if a
 * position was no longer free (nothing stays taken: retry), or 2 if the
 * state word says VRL_STATE_EVICTED (nothing stays taken: re-resolve).
 * On 0, *@committed is the state word written, for vrl_window_undo().
 */
int vrl_window_take(const struct vrl_window_ref *r, uint64_t first, uint64_t cost,
		    uint64_t at, uint64_t *committed);

/*
 * Give back a take that a stacked acquire could not complete: each position
 * still at @at goes back to at - W (never below the grant it replaced, so it
 * never frees a position early), and the hint goes back to @first if the
 * state word is still @committed.
 */
void vrl_window_undo(const struct vrl_window_ref *r, uint64_t first, uint64_t cost,
		     uint64_t at, uint64_t committed);

/* Positions free at @now, exactly (reads all n). */
uint64_t vrl_window_free_count(const struct vrl_window_ref *r, uint64_t now);

/*
 * WIN.W7: true when at most @most positions hold a time that counts at
 * @at (taken in (at - W, at], or dated after @at), so a key capped at
 * @most grants in any W may keep a grant taken at @at, its own positions
 * included: called after the commit (window.c says why that is exact).
 * Stops as soon as the answer is known.
 */
bool vrl_window_within(const struct vrl_window_ref *r, uint64_t at, uint64_t most);

/*
 * Positions free at @now as the acquire path estimates them: the run of
 * free positions from the hint (past at most VRL_WINDOW_PROBE taken ones),
 * found by binary search: O(log n). Exact when grants are taken in time
 * order (WIN.W4 in window.c); an estimate otherwise, for verdicts and the
 * commit order, never for a decision.
 */
uint64_t vrl_window_remaining(const struct vrl_window_ref *r, uint64_t now);

/* Time at which every position of the ring is free again: the newest grant + W
 * (0 when all are free at @now). Reads all n. */
uint64_t vrl_window_reset_at(const struct vrl_window_ref *r, uint64_t now);

/* The same, estimated from the position taken last (the one before the
 * hint): O(1), exact when grants are taken in time order. For verdicts. */
uint64_t vrl_window_reset_est(const struct vrl_window_ref *r, uint64_t now);

/* vrld: true when every position is free at @now (the key may be evicted). */
bool vrl_window_idle(const struct vrl_window_ref *r, uint64_t now);

/*
 * Upstream feedback: give back @units grants taken at or after @since (a
 * request the server did not count). The newest such positions are cleared
 * (set to their time - W: free at once, never before any earlier grant on
 * the position allows), and the hint moves back to the oldest of them so
 * the next grants find them. Returns the number of units given back (fewer
 * when fewer positions were taken at or after @since).
 */
int vrl_window_credit(const struct vrl_window_ref *r, uint64_t units, uint64_t since);

/*
 * Upstream feedback: make the local remaining (positions free at @now) at
 * most @server_remaining, by taking free positions at @now as grants, from
 * the hint on. Returns the number of positions taken (>= 0), or -EAGAIN when
 * the key was evicted meanwhile (nothing taken: re-resolve and call again).
 */
int vrl_window_floor(const struct vrl_window_ref *r, uint64_t server_remaining, uint64_t now);

#endif /* VRL_WINDOW_H */
