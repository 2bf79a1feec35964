/*
 * kind_window.h - the window kind: at most N grants in any window of W,
 * exactly, over a ring of N grant times in the limit's area (window.h has
 * the ring, window.c the proof, WIN.W1-WIN.W5).
 *
 * A grant writes ring positions, then the state word (version and hint):
 * the engine commits it through vrl_windowed_place() and re-checks the
 * slot's owner after. Included by kind.h, which dispatches to these.
 */
#ifndef VRL_KIND_WINDOW_H
#define VRL_KIND_WINDOW_H

#ifndef VRL_KIND_H
#error "include kind.h"
#endif

/* 0 when window limit @in has a window and room for its rings, else -1. */
static inline int vrl_windowed_prepare(const struct vrl_seg_limit *in)
{
	return in->period_ns == 0 || vrl_window_area_bytes(in->count, in->area_keys) == 0 ? -1 : 0;
}

/* The ring of the key of @k (the ring its slot's aux named at placement). */
static inline struct vrl_window_ref vrl_windowed_ref(const struct vrl_kind_key *k)
{
	const struct vrl_seg_limit *l = &k->l->seg;

	return (struct vrl_window_ref){
		.state = &k->s->state, .n = l->count, .w = l->period_ns,
		.ring = vrl_window_ring(vrl_seg_area(k->v, l), l->count, l->area_keys, k->ring),
	};
}

/* The decision for @w->cost at @w->at from state word @state. */
static inline int vrl_windowed_judge(const struct vrl_kind_key *k, struct vrl_kind_look *lk,
				     uint64_t state, const struct vrl_kind_when *w)
{
	struct vrl_window_ref r = vrl_windowed_ref(k);

	/* WIN.W2: the position reads come after the state word's (acquire)
	 * load */
	atomic_thread_fence(memory_order_acquire);
	vrl_window_look(&r, state, w->cost, w->at, &lk->w);
	lk->r = (struct vrl_gcra_step){ .conforms = lk->w.earliest == w->at };
	lk->earliest = lk->w.earliest;
	return VRL_LOOK_OK;
}

/* Take the positions @lk found for @cost at @at (vrl_window_take: 0,
 * 1 when the look no longer holds, or an error); *@after is the state
 * word written. */
static inline int vrl_windowed_place(const struct vrl_kind_key *k, struct vrl_kind_look *lk,
				     uint64_t cost, uint64_t at, uint64_t *after)
{
	struct vrl_window_ref r = vrl_windowed_ref(k);
	int rc = vrl_window_take(&r, lk->w.first, cost, at, after);

	if (rc == 0)
		lk->w_at = at;
	return rc;
}

/* Free the positions a grant took (state word @after written by it). */
static inline bool vrl_windowed_undo(const struct vrl_kind_key *k, const struct vrl_kind_look *lk,
				     uint64_t cost, uint64_t after)
{
	struct vrl_window_ref r = vrl_windowed_ref(k);

	vrl_window_undo(&r, lk->w.first, cost, lk->w_at, after);
	return true;
}

/* Grants left now (O(log n)). */
static inline uint64_t vrl_windowed_remaining(const struct vrl_kind_key *k, uint64_t now)
{
	struct vrl_window_ref r = vrl_windowed_ref(k);

	return vrl_window_remaining(&r, now);
}

/* A verdict's figures: the count, what is left, when the oldest grant
 * leaves the window (off the CAS path; O(log n)). */
static inline void vrl_windowed_verdict(const struct vrl_kind_key *k, uint64_t now,
					struct vrl_verdict *v)
{
	struct vrl_window_ref r = vrl_windowed_ref(k);
	uint64_t reset = vrl_window_reset_est(&r, now);

	v->limit_value = r.n;
	v->remaining = vrl_window_remaining(&r, now);
	v->reset_ns = reset > now ? reset - now : 0;
}

/*
 * Share used of the key in slot @slot of @v: grants in the last W over N,
 * counted by vrl_window_remaining() (O(log N); exact when grants come in
 * time order, which keeps a render over thousands of 1000-grant rings
 * cheap). 0 for a key without a ring.
 */
static inline double vrl_windowed_used_ratio(const struct vrl_seg_view *v,
					     const struct vrl_limit *l, uint64_t slot,
					     uint64_t now)
{
	struct vrl_window_ref r;
	uint64_t left;

	if (!l->seg.count || vrl_window_ref_of(v, &l->seg, slot, &r) != 0)
		return 0;
	left = vrl_window_remaining(&r, now);
	return left >= l->seg.count ? 0 : (double)(l->seg.count - left) / (double)l->seg.count;
}

/*
 * Display figures, exact (every position read): what is free now of the
 * count, and the time until the newest grant leaves the window. A key
 * whose @aux names no ring (aux is the ring index + 1) is whole.
 */
static inline void vrl_windowed_figures(const struct vrl_seg_view *v, const struct vrl_limit *l,
					uint64_t slot, uint64_t aux, uint64_t now,
					struct vrl_kind_figures *f)
{
	struct vrl_window_ref r = { .state = &v->slots[slot].state,
				    .n = l->seg.count, .w = l->seg.period_ns };
	uint64_t reset;

	f->paced = true;
	f->size = l->seg.count;
	f->available = l->seg.count;
	f->used_ns = 0;
	if (aux && aux <= l->seg.area_keys && l->seg.area_off) {
		r.ring = vrl_window_ring(vrl_seg_area(v, &l->seg), l->seg.count,
					 l->seg.area_keys, aux - 1);
		f->available = vrl_window_free_count(&r, now);
		reset = vrl_window_reset_at(&r, now);
		f->used_ns = reset > now ? reset - now : 0;
	}
	if (f->size)
		f->used10 = (f->size - f->available) * 1000 / f->size;
}

/* ---- operations on a key besides acquiring ----------------------------------- */

/* Forget every grant of the key of @k (an operator's reset). */
static inline void vrl_windowed_clear(const struct vrl_kind_key *k)
{
	struct vrl_window_ref r = vrl_windowed_ref(k);

	/* relaxed: an operator's act; every grant of the window forgotten */
	for (uint64_t i = 0; i < r.n; i++)
		atomic_store_explicit(&r.ring[i], 0, memory_order_relaxed);
}

/*
 * Give back @cost grants of the key of @k that still hold a position: the
 * newest ones (vrl_window_credit). A key without a ring took nothing yet.
 */
static inline void vrl_windowed_refund(const struct vrl_kind_key *k, uint64_t cost, uint64_t now)
{
	struct vrl_window_ref r;

	if (vrl_window_ref_of(k->v, &k->l->seg, (uint64_t)(k->s - k->v->slots), &r) != 0)
		return;
	/* a position at or before now - W is free already: crediting it would
	 * spend the refund on room that is there anyway */
	vrl_window_credit(&r, cost, now >= r.w ? now - r.w + 1 : 1);
}

/* Take free positions of the key of @k until at most @remaining are free
 * at @now (vrl_window_floor): 0, or -EAGAIN when the ring moved under it. */
static inline int vrl_windowed_floor(const struct vrl_kind_key *k, uint64_t remaining,
				     uint64_t now)
{
	struct vrl_window_ref r = vrl_windowed_ref(k);

	/* acquire fence, as a look: the positions are read after the ring
	 * was settled (WIN.W2) */
	atomic_thread_fence(memory_order_acquire);
	return vrl_window_floor(&r, remaining, now);
}

/* ---- vrld: the area ------------------------------------------------------------ */

/* Bytes of window limit @l's area: its rings and their free stack. */
static inline uint64_t vrl_windowed_area_bytes(const struct vrl_seg_limit *l)
{
	return vrl_window_area_bytes(l->count, l->area_keys);
}

/* Lay out window limit @l's area in @v: every ring free. @all: a fresh
 * area; else only a head that a cut wiped (a head that survived keeps its
 * stack: rings in use stay theirs). */
static inline void vrl_windowed_area_init(const struct vrl_seg_view *v,
					  const struct vrl_seg_limit *l, bool all)
{
	struct vrl_window_area *a;

	if (!l->area_off)
		return;
	a = vrl_seg_area(v, l);
	if (all || (a->n == 0 && a->nkeys == 0))
		vrl_window_area_init(a, l->count, l->area_keys);
}

/* False when a cut wiped the head of window limit @l's area in @v. */
static inline bool vrl_windowed_area_intact(const struct vrl_seg_view *v,
					    const struct vrl_seg_limit *l)
{
	const struct vrl_window_area *a;

	if (!l->area_off)
		return true;
	a = vrl_seg_area(v, l);
	return a->n != 0 || a->nkeys != 0;
}

#endif /* VRL_KIND_WINDOW_H */
