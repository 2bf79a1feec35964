/*
 * window.c - the exact rolling window: at most N grants in any interval of
 * length W, lock-free, in shared memory.
 *
 * Each key has a ring of N positions; a position holds the monotonic time
 * of the last grant made on it (0: never). The key's slot state word holds
 * version << 24 | hint, the hint being the ring index to try first.
 *
 *   take:    for each of cost positions p: CAS p from v to `at`, allowed
 *            only if v == 0 or v + W <= at (vrl_window_free);
 *   commit:  CAS the state word from what it holds (not EVICTED) to
 *            version + 1 | hint past the positions taken;
 *   undo:    CAS each position from `at` to at - W; CAS the state word
 *            back to version + 1 | first if nobody committed since.
 *
 * Proof of "never over-grant" (WIN.W1). Take any interval I = (t - W, t]. Each
 * grant inside I wrote its time into one position by a CAS from a value v
 * with v + W <= its time. Two grants on one position are therefore at
 * least W apart, whatever the interleaving of processes, so each position
 * carries at most one grant inside I: at most N grants in I. Undo writes
 * at - W, and the grant it removes replaced a v <= at - W: the position is
 * never left freer than before that grant, so the argument still holds
 * with the removed grant left out. Credit (upstream feedback) is the same
 * step on a grant the server did not count. Stored times are only ever
 * rounded up (a future `at` for a waiting acquire is its grant time).
 *
 * Eviction (WIN.W2). vrld evicts a key only when every position is free: it
 * reads the state word (acquire, pairs with the commit's release), reads
 * every position, then CASes the state word from the value it read to
 * VRL_STATE_EVICTED. A taker commits by CAS on the same word, and the
 * commit changes the version, so either the commit came first (vrld's CAS
 * fails, or vrld read the commit and saw its positions taken) or the
 * eviction did (the commit sees EVICTED, undoes, and the acquire re-places
 * the key). A grant is never counted on a ring that is being given away.
 * A stale taker that wrote into a ring which meanwhile went to another key
 * only made that key stricter until its undo.
 *
 * Rings (WIN.W5). A limit's rings sit in its area in the segment, on a free
 * stack whose head carries an ABA tag: a new key pops one and CASes the
 * slot's aux from 0 to it (a loser pushes its ring back); vrld pushes the
 * ring of a key it evicted after swapping aux to 0 (WIN.R2), and a client whose
 * aux CAS landed on a just-evicted slot sees EVICTED and takes it back
 * (WIN.R1). A key evicted and re-inserted into the same slot passes the tag
 * check but may have another ring, so an acquire re-checks aux after its
 * commit (acquire.c). A process killed between its pop and its aux CAS
 * loses one ring until vrld restarts with a fresh segment.
 *
 * Progress and crashes (WIN.W3). Every step is a load or a single-word CAS; no
 * one waits on anyone. A process killed between its position CASes and its
 * commit leaves those positions taken (safe: they count as grants for W)
 * and the hint behind them; the next look steps past the taken positions
 * from the hint and its commit moves the hint on: the stale hint is
 * repaired by the next grant.
 *
 * Exactness the other way (WIN.W4). A look scans from the hint round the whole
 * ring for cost free positions in a row, stopping at the first such run:
 * when grants are taken in time order the free positions are one run
 * starting at the hint, so a grant reads cost positions and a look grants
 * exactly when fewer than N - cost + 1 grants lie in (now - W, now]; only a
 * denial reads all N. Out of order (a waiting acquire's reservation in the
 * future, a killed taker, an undo), one unit is still exact: any free
 * position is found, and a denial's retry time is the soonest position's.
 * A cost above one needs its positions in a row, so free positions
 * scattered between taken ones may wait for the run to form. The unit
 * tests check both directions against a reference model.
 *
 * A cap below N (WIN.W7: a global key's share, share.h "Window"). A key
 * whose host may make only c <= N grants in any W takes its positions as
 * above, commits, and only then asks vrl_window_within(at, c): do at most
 * c positions hold a time that counts at `at` (in (at - W, at], or later
 * than `at`: a reservation, or a grant that overwrote one of the window),
 * its own included? If not, it undoes and denies. Claim: then any I = (t -
 * W, t] holds at most c(d) grants of the key, d the decision time of the
 * one of them committed last. Proof. Commits are read-modify-writes of
 * the state word (acq_rel, as undo's, credit's and eviction's CASes are
 * RMWs too), so the last one's commit reads a value at or after every
 * other commit of I's grants in the word's order of modification and
 * synchronises with them: their position CASes happen before its loads,
 * which see each position's grant or a later value of it. A later value
 * is a later grant, at >= v + W > t >= d (counted: after d), a floor's
 * mark (counted), or an undo or credit of that very grant (then not a
 * grant). Each grant of I holds its own position (WIN.W1) and is within
 * W of d (both in I): counted. So the grants of I number at most the
 * count, which the check held to c(d). The check reads up to n positions
 * (not O(cost) as a grant without a cap does); it stops as soon as the
 * answer is known: n - c + cost free positions, or c + 1 taken.
 *
 * Trust (WIN.W6). Where a limit's area is, its count and its number of rings
 * come from the caller's private copy of the limit (vrld's compiled config,
 * a handle's checked snapshot), never from the area's head words, which the
 * group can rewrite. Links of the free stack and a slot's aux are data:
 * each is checked against the private number of rings before it indexes
 * anything, so a garbage value is an empty stack or VRL_ECORRUPT.
 */
#include "window.h"

#include <errno.h>
#include <string.h>

#include "vrl.h"

static uint64_t align64(uint64_t x)
{
	return (x + VRL_CACHELINE - 1) / VRL_CACHELINE * VRL_CACHELINE;
}

/* The free-stack links follow the head line; the rings follow the links. */
#define NEXT_OFF ((uint64_t)sizeof(struct vrl_window_area))

static uint64_t rings_off(uint64_t keys)
{
	return NEXT_OFF + align64(keys * sizeof(uint32_t));
}

static uint64_t ring_bytes(uint64_t n)
{
	return align64(n * sizeof(uint64_t));
}

uint64_t vrl_window_area_bytes(uint64_t n, uint64_t keys)
{
	uint64_t rings;

	if (n == 0 || n > VRL_WINDOW_MAX_N || keys == 0 || keys > VRL_WINDOW_MAX_KEYS)
		return 0;
	if (__builtin_mul_overflow(keys, ring_bytes(n), &rings) || rings > UINT64_MAX / 2)
		return 0;
	return rings_off(keys) + rings;
}

static _Atomic uint32_t *next_of(void *area, uint64_t keys)
{
	(void)keys;
	return (_Atomic uint32_t *)((char *)area + NEXT_OFF);
}

_Atomic uint64_t *vrl_window_ring(void *area, uint64_t n, uint64_t keys, uint64_t idx)
{
	return (_Atomic uint64_t *)((char *)area + rings_off(keys) + idx * ring_bytes(n));
}

void vrl_window_area_init(void *area, uint64_t n, uint64_t keys)
{
	struct vrl_window_area *a = area;
	_Atomic uint32_t *next = next_of(area, keys);

	a->nkeys = keys;
	a->n = n;
	for (uint64_t i = 0; i < keys; i++)
		atomic_store_explicit(&next[i], i + 1 < keys ? (uint32_t)(i + 2) : 0,
				      memory_order_relaxed);
	/* release: pairs with the pop's acquire, the links are written */
	atomic_store_explicit(&a->free_head, 1, memory_order_release);
}

int vrl_window_ring_get(void *area, uint64_t n, uint64_t keys, uint64_t *idx)
{
	struct vrl_window_area *a = area;
	_Atomic uint32_t *next = next_of(area, keys);
	/* WIN.F1 acquire: pairs with WIN.F2, the pushed ring's link is visible */
	uint64_t head = atomic_load_explicit(&a->free_head, memory_order_acquire);

	(void)n;
	for (;;) {
		uint64_t top = head & UINT32_MAX, tag = head >> 32, nx;

		if (top == 0 || top > keys) {
			atomic_fetch_add_explicit(&a->empty, 1, memory_order_relaxed);
			return top == 0 ? VRL_EFULL : VRL_ECORRUPT;
		}
		/* may read the link of a ring someone popped meanwhile: then
		 * the tag has moved and the CAS below fails */
		nx = atomic_load_explicit(&next[top - 1], memory_order_relaxed);
		if (nx > keys)
			nx = 0;
		/* WIN.F1 acq_rel: as above on failure; the pop orders our use of
		 * the ring after its previous owner's last write */
		if (atomic_compare_exchange_weak_explicit(&a->free_head, &head,
							  (tag + 1) << 32 | nx,
							  memory_order_acq_rel,
							  memory_order_acquire)) {
			*idx = top - 1;
			return 0;
		}
	}
}

void vrl_window_ring_put(void *area, uint64_t n, uint64_t keys, uint64_t idx)
{
	struct vrl_window_area *a = area;
	_Atomic uint32_t *next = next_of(area, keys);
	uint64_t head = atomic_load_explicit(&a->free_head, memory_order_relaxed);

	(void)n;
	if (idx >= keys)
		return;
	do {
		atomic_store_explicit(&next[idx], (uint32_t)(head & UINT32_MAX),
				      memory_order_relaxed);
		/* WIN.F2 release: the link above is visible to the popper (WIN.F1) */
	} while (!atomic_compare_exchange_weak_explicit(&a->free_head, &head,
							((head >> 32) + 1) << 32 | (idx + 1),
							memory_order_release,
							memory_order_relaxed));
}

int vrl_window_slot_ring(void *area, uint64_t n, uint64_t keys, struct vrl_seg_slot *s,
			 uint64_t *idx)
{
	/* acquire: pairs with the aux CAS below in another process, so the
	 * ring it took is ours to read */
	uint32_t aux = atomic_load_explicit(&s->aux, memory_order_acquire), zero = 0;
	uint64_t mine;
	int rc;

	if (aux == 0) {
		rc = vrl_window_ring_get(area, n, keys, &mine);
		if (rc)
			return rc;
		/* acq_rel: publishes our pop (release), or orders our use of
		 * the winner's ring after its pop (acquire) */
		if (atomic_compare_exchange_strong_explicit(&s->aux, &zero, (uint32_t)(mine + 1),
							    memory_order_acq_rel,
							    memory_order_acquire)) {
			aux = (uint32_t)(mine + 1);
			/*
			 * WIN.R1: if vrld evicted the slot and emptied aux before
			 * our CAS, our CAS read its exchange (WIN.R2) and we see
			 * EVICTED here: take the ring back, or it would leak.
			 */
			if (atomic_load_explicit(&s->state, memory_order_relaxed) ==
			    VRL_STATE_EVICTED &&
			    atomic_exchange_explicit(&s->aux, 0, memory_order_acq_rel) == aux)
				vrl_window_ring_put(area, n, keys, mine);
		} else {
			vrl_window_ring_put(area, n, keys, mine);
			aux = zero;
		}
	}
	if (aux == 0 || aux > keys)
		return VRL_ECORRUPT;
	*idx = aux - 1;
	return 0;
}

int vrl_window_area_check(const struct vrl_seg_view *v, const struct vrl_seg_limit *l)
{
	uint64_t bytes = vrl_window_area_bytes(l->count, l->area_keys);
	const struct vrl_window_area *a;

	if (bytes == 0 || l->area_off % VRL_CACHELINE || l->area_off < v->areas_off ||
	    l->area_off > v->size || bytes > v->size - l->area_off)
		return VRL_ECORRUPT;
	a = (const struct vrl_window_area *)vrl_seg_area(v, l);
	if (a->n != l->count || a->nkeys != l->area_keys)
		return VRL_ECORRUPT;
	return 0;
}

int vrl_window_ref_of(const struct vrl_seg_view *v, const struct vrl_seg_limit *l,
		      uint64_t slot, struct vrl_window_ref *out)
{
	struct vrl_seg_slot *s;
	uint32_t aux;

	if (l->kind != VRL_KIND_WINDOW || l->area_off == 0 || slot >= v->nslots)
		return VRL_ECORRUPT;
	s = &v->slots[slot];
	/* acquire: pairs with the aux CAS, the ring's owner is settled */
	aux = atomic_load_explicit(&s->aux, memory_order_acquire);
	if (aux == 0)
		return VRL_ENOKEY;
	if (aux > l->area_keys)
		return VRL_ECORRUPT;
	*out = (struct vrl_window_ref){
		.state = &s->state, .n = l->count, .w = l->period_ns,
		.ring = vrl_window_ring(vrl_seg_area(v, l), l->count, l->area_keys, aux - 1),
	};
	return 0;
}

/* ---- the steps -------------------------------------------------------------- */

static inline uint64_t pos_idx(uint64_t first, uint64_t k, uint64_t n)
{
	uint64_t x = first + k;

	return x >= n ? x - n : x;
}

static inline uint64_t load_pos(const struct vrl_window_ref *r, uint64_t i)
{
	/* relaxed: the caller's acquire load of the state word (or the
	 * position CAS itself) orders what matters; a stale value only makes
	 * a look deny or retry */
	return atomic_load_explicit(&r->ring[i], memory_order_relaxed);
}

/* When the position holding @v is free again (v taken). */
static inline uint64_t free_at(uint64_t v, uint64_t w)
{
	return v > UINT64_MAX - w ? UINT64_MAX : v + w;
}

void vrl_window_look(const struct vrl_window_ref *r, uint64_t state, uint64_t cost,
		     uint64_t at, struct vrl_window_look *lk)
{
	uint64_t n = r->n, h = vrl_window_hint(state, n), run = 0, latest = at;
	uint64_t soonest = UINT64_MAX;

	lk->first = h;
	if (cost > n) {
		lk->earliest = UINT64_MAX;
		return;
	}
	/* a grant in time order stops at h + cost - 1; a denial reads all n */
	for (uint64_t k = 0; k < n; k++) {
		uint64_t v = load_pos(r, pos_idx(h, k, n));

		if (vrl_window_free(v, at, r->w)) {
			if (++run == cost) {
				lk->first = pos_idx(h, k + 1 - cost, n);
				lk->earliest = at;
				return;
			}
			continue;
		}
		run = 0;
		/* the positions h .. h+cost-1 are the oldest in time order:
		 * all free at the latest of their free times */
		if (k < cost && free_at(v, r->w) > latest)
			latest = free_at(v, r->w);
		if (free_at(v, r->w) < soonest)
			soonest = free_at(v, r->w);
	}
	lk->first = h;
	/* one unit: the soonest free position of the ring is its exact time */
	lk->earliest = cost == 1 && soonest < latest ? soonest : latest;
}

/* Undo the first @taken positions of a take at @at. */
static void unwind(const struct vrl_window_ref *r, uint64_t first, uint64_t taken, uint64_t at)
{
	uint64_t back = at >= r->w ? at - r->w : 0;

	for (uint64_t k = 0; k < taken; k++) {
		uint64_t cur = at;

		/* relaxed: a failed undo leaves the position taken (safe, WIN.W1) */
		atomic_compare_exchange_strong_explicit(&r->ring[pos_idx(first, k, r->n)], &cur,
							back, memory_order_relaxed,
							memory_order_relaxed);
	}
}

/* Commit by CAS of the state word: version + 1, hint @hint. */
static int commit(const struct vrl_window_ref *r, uint64_t hint, uint64_t *committed)
{
	uint64_t cur = atomic_load_explicit(r->state, memory_order_relaxed);

	for (;;) {
		uint64_t next;

		if (cur == VRL_STATE_EVICTED)
			return 2;
		next = (((cur >> VRL_WINDOW_IDX_BITS) + 1) << VRL_WINDOW_IDX_BITS) | hint;
		/* WIN.W2 acq_rel: release publishes our positions to vrld's acquire
		 * read of the state before it reads them; acquire orders us
		 * after the previous commit */
		if (atomic_compare_exchange_weak_explicit(r->state, &cur, next,
							  memory_order_acq_rel,
							  memory_order_relaxed)) {
			*committed = next;
			return 0;
		}
	}
}

int vrl_window_take(const struct vrl_window_ref *r, uint64_t first, uint64_t cost,
		    uint64_t at, uint64_t *committed)
{
	uint64_t n = r->n;
	int rc;

	if (cost > n || first >= n)
		return 1;
	for (uint64_t k = 0; k < cost; k++) {
		_Atomic uint64_t *p = &r->ring[pos_idx(first, k, n)];
		uint64_t v = atomic_load_explicit(p, memory_order_relaxed);

		do {
			if (!vrl_window_free(v, at, r->w)) {
				unwind(r, first, k, at);
				return 1;
			}
			/* WIN.W1 acq_rel: the grant orders after the position's
			 * previous grant, whose time we tested */
		} while (!atomic_compare_exchange_weak_explicit(p, &v, at, memory_order_acq_rel,
								memory_order_relaxed));
	}
	rc = commit(r, pos_idx(first, cost % n, n), committed);
	if (rc)
		unwind(r, first, cost, at);
	return rc;
}

void vrl_window_undo(const struct vrl_window_ref *r, uint64_t first, uint64_t cost,
		     uint64_t at, uint64_t committed)
{
	uint64_t back = ((committed >> VRL_WINDOW_IDX_BITS) + 1) << VRL_WINDOW_IDX_BITS | first;

	unwind(r, first, cost, at);
	/* relaxed: the hint is only a hint; the version change keeps an
	 * eviction that read `committed` from succeeding after this */
	atomic_compare_exchange_strong_explicit(r->state, &committed, back,
						memory_order_relaxed, memory_order_relaxed);
}

uint64_t vrl_window_free_count(const struct vrl_window_ref *r, uint64_t now)
{
	uint64_t free = 0;

	for (uint64_t i = 0; i < r->n; i++)
		free += vrl_window_free(load_pos(r, i), now, r->w);
	return free;
}

bool vrl_window_within(const struct vrl_window_ref *r, uint64_t at, uint64_t most)
{
	uint64_t n = r->n, taken = 0;

	if (most >= n)
		return true;
	for (uint64_t i = 0; i < n; i++) {
		if (vrl_window_free(load_pos(r, i), at, r->w))
			continue;
		if (++taken > most)
			return false;
		/* the positions left could not pass @most */
		if (taken + (n - 1 - i) <= most)
			return true;
	}
	return true;
}

uint64_t vrl_window_remaining(const struct vrl_window_ref *r, uint64_t now)
{
	uint64_t n = r->n, h, s = 0, lo, hi;
	uint64_t probe = VRL_WINDOW_PROBE < n ? VRL_WINDOW_PROBE : n;

	/* WIN.W2 acquire: pairs with the takers' commit, their positions are seen */
	h = vrl_window_hint(atomic_load_explicit(r->state, memory_order_acquire), n);
	while (s < probe && !vrl_window_free(load_pos(r, pos_idx(h, s, n)), now, r->w))
		s++;
	if (s == probe)
		return 0;
	/* the free run from h+s: [lo, hi) holds its end */
	lo = s + 1;
	hi = n + 1;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (mid < n && vrl_window_free(load_pos(r, pos_idx(h, mid, n)), now, r->w))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - s;
}

uint64_t vrl_window_reset_at(const struct vrl_window_ref *r, uint64_t now)
{
	uint64_t newest = 0;

	for (uint64_t i = 0; i < r->n; i++) {
		uint64_t v = load_pos(r, i);

		if (!vrl_window_free(v, now, r->w) && v > newest)
			newest = v;
	}
	return newest ? free_at(newest, r->w) : 0;
}

uint64_t vrl_window_reset_est(const struct vrl_window_ref *r, uint64_t now)
{
	/* WIN.W2 acquire: pairs with the takers' commit, their positions are seen */
	uint64_t h = vrl_window_hint(atomic_load_explicit(r->state, memory_order_acquire), r->n);
	uint64_t v = load_pos(r, pos_idx(h, r->n - 1, r->n));

	return vrl_window_free(v, now, r->w) ? 0 : free_at(v, r->w);
}

bool vrl_window_idle(const struct vrl_window_ref *r, uint64_t now)
{
	for (uint64_t i = 0; i < r->n; i++)
		if (!vrl_window_free(load_pos(r, i), now, r->w))
			return false;
	return true;
}

int vrl_window_credit(const struct vrl_window_ref *r, uint64_t units, uint64_t since)
{
	uint64_t n = r->n, done = 0, oldest = UINT64_MAX;
	/* WIN.W2 acquire: pairs with the takers' commit, their positions are seen */
	uint64_t state = atomic_load_explicit(r->state, memory_order_acquire);
	uint64_t h = vrl_window_hint(state, n);

	if (state == VRL_STATE_EVICTED)
		return 0;
	/* newest first: walk back from the hint, the last position taken */
	for (uint64_t k = 1; k <= n && done < units; k++) {
		uint64_t i = pos_idx(h, n - k, n);
		uint64_t v = load_pos(r, i);

		if (v == 0 || v < since)
			continue;
		/* relaxed: a lost CAS means the position moved on; skip it */
		if (atomic_compare_exchange_strong_explicit(&r->ring[i], &v,
							    v >= r->w ? v - r->w : 0,
							    memory_order_relaxed,
							    memory_order_relaxed)) {
			done++;
			oldest = i;
		}
	}
	if (done) {
		uint64_t back = ((state >> VRL_WINDOW_IDX_BITS) + 1) << VRL_WINDOW_IDX_BITS |
				oldest;

		/* relaxed: only the hint moves; a lost CAS leaves the freed
		 * positions for the probe or the next round */
		atomic_compare_exchange_strong_explicit(r->state, &state, back,
							memory_order_relaxed,
							memory_order_relaxed);
	}
	return (int)done;
}

int vrl_window_floor(const struct vrl_window_ref *r, uint64_t server_remaining, uint64_t now)
{
	uint64_t n = r->n, free = vrl_window_free_count(r, now), want, done = 0, last = 0;
	/* WIN.W2 acquire: pairs with the takers' commit, their positions are seen */
	uint64_t h = vrl_window_hint(atomic_load_explicit(r->state, memory_order_acquire), n);
	uint64_t committed;

	if (free <= server_remaining)
		return 0;
	want = free - server_remaining;
	for (uint64_t k = 0; k < n && done < want; k++) {
		uint64_t i = pos_idx(h, k, n), v = load_pos(r, i);

		if (!vrl_window_free(v, now, r->w))
			continue;
		/* WIN.W1 acq_rel, as a grant: these count as the server's grants */
		if (atomic_compare_exchange_strong_explicit(&r->ring[i], &v, now,
							    memory_order_acq_rel,
							    memory_order_relaxed)) {
			done++;
			last = i;
		}
	}
	if (done == 0)
		return 0;
	/* evicted: the marks stay on a ring that vrld is giving away, which
	 * only makes its next key stricter for one window (WIN.W2) */
	if (commit(r, pos_idx(last, 1, n), &committed) != 0)
		return -EAGAIN;
	return (int)done;
}
