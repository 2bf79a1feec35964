/*
 * kind_upkeep.h - the kinds' operations for vrld's upkeep of a segment:
 * a limit's area (the window's rings), the record a reload carries, what
 * a reload may not change, when a key is idle, and how a key is settled
 * to the config in force. One dispatch per operation, as in kind.h.
 */
#ifndef VRL_KIND_UPKEEP_H
#define VRL_KIND_UPKEEP_H

#include "kind.h"

/* Bytes of @l's area (vrl_kind_has_area); 0 when it has none, or cannot. */
static inline uint64_t vrl_kind_area_bytes(const struct vrl_seg_limit *l)
{
	return l->kind == VRL_KIND_WINDOW ? vrl_windowed_area_bytes(l) : 0;
}

/* Lay out @l's area in @v (@all: a fresh one; else only what a cut wiped). */
static inline void vrl_kind_area_init(const struct vrl_seg_view *v, const struct vrl_seg_limit *l,
				      bool all)
{
	if (l->kind == VRL_KIND_WINDOW)
		vrl_windowed_area_init(v, l, all);
}

/* False when a cut wiped the head of @l's area in @v. */
static inline bool vrl_kind_area_intact(const struct vrl_seg_view *v, const struct vrl_seg_limit *l)
{
	return l->kind != VRL_KIND_WINDOW || vrl_windowed_area_intact(v, l);
}

/*
 * Fill @l's reload record from @old, the same keys' limit in the config in
 * force (NULL: none): a rate's epoch (kind_rate.h), a quota's calendar
 * change (kind_counted.h). Values of @old that do not make a valid limit
 * are dropped all the same.
 */
static inline void vrl_kind_carry_reload(struct vrl_seg_limit *l, const struct vrl_seg_limit *old,
					 uint64_t now_rt)
{
	l->rate_epoch = 0;
	l->prev_emission_ns = l->prev_burst = 0;
	l->prev_calendar = l->prev_anchor = 0;
	l->calendar_changed_rt = 0;
	if (!old)
		return;
	switch (l->kind) {
	case VRL_KIND_RATE:
		vrl_rate_carry_reload(l, old);
		return;
	case VRL_KIND_QUOTA:
		vrl_quota_carry_reload(l, old, now_rt);
		return;
	default:
		return;
	}
}

/* True when a reload from @old to @l, the same keys' limit, would lose
 * what its keys count at @now_rt (kind_counted.h: a quota's calendar
 * change back in time); then the periods, for the refusal. */
static inline bool vrl_kind_reload_loses(const struct vrl_seg_limit *old,
					 const struct vrl_seg_limit *l, uint64_t now_rt,
					 uint64_t *begins, uint64_t *counted_from, uint64_t *ends)
{
	if (l->kind != VRL_KIND_QUOTA)
		return false;
	return vrl_quota_reload_loses(old, l, now_rt, begins, counted_from, ends);
}

/*
 * True when a key whose slot noted kind @kind (quota: @calendar, @anchor)
 * and whose state word is @st carries nothing worth keeping at @now
 * (monotonic) and @now_rt (wall clock). A rate is idle when its bucket has
 * been full for @idle_ns (whatever its epoch: a full bucket is full under
 * any parameters), a gate likewise; a quota never within its period
 * (unless nothing is used), a once quota never; slots never while a unit
 * is held. A window's ring says (vrl_window_idle).
 */
static inline bool vrl_kind_idle(uint32_t kind, uint32_t calendar, uint32_t anchor, uint64_t st,
				 uint64_t now, uint64_t now_rt, uint64_t idle_ns)
{
	switch (kind) {
	case VRL_KIND_QUOTA:
		return vrl_quota_idle(calendar, anchor, st, now_rt);
	case VRL_KIND_SLOTS:
		return st == 0;
	default:
		return st == 0 || vrl_gcra_tat(st) + idle_ns <= now;
	}
}

/* The rule that settles @l's keys to the config in force after a reload,
 * at the wall clock @now_rt; false (r->kind 0) when they need none. */
static inline bool vrl_kind_settle_rule(const struct vrl_seg_limit *l, uint64_t now_rt,
					struct vrl_kind_settle *r)
{
	bool any;

	memset(r, 0, sizeof(*r));
	switch (l->kind) {
	case VRL_KIND_RATE:
		any = vrl_rate_settle_rule(l, r);
		break;
	case VRL_KIND_QUOTA:
		any = vrl_quota_settle_rule(l, now_rt, r);
		break;
	default:
		any = false;
	}
	r->kind = any ? l->kind : 0;
	return any;
}

/* True when settling word @w by @r reads the clock: a conversion that
 * acquire.c's AQ.C1 counts (rate_conversions odd around it). */
static inline bool vrl_kind_settle_timed(const struct vrl_kind_settle *r)
{
	return r->kind == VRL_KIND_RATE;
}

/* True when word @w needs settling by @r. */
static inline bool vrl_kind_settle_needed(const struct vrl_kind_settle *r, uint64_t w)
{
	switch (r->kind) {
	case VRL_KIND_RATE:
		return w != 0 && vrl_gcra_tag(w) != r->tag;
	case VRL_KIND_QUOTA:
		return vrl_quota_carry(w, r->from, r->to, r->pid) != w;
	default:
		return false;
	}
}

/* Word @w settled by @r (rate: converted at @now, read after @w). */
static inline uint64_t vrl_kind_settle_word(const struct vrl_kind_settle *r, uint64_t w,
					    uint64_t now)
{
	if (r->kind == VRL_KIND_RATE)
		return vrl_rate_settle_word(r, w, now);
	return vrl_quota_carry(w, r->from, r->to, r->pid);
}

/*
 * vrld's sweep: the adapt word a rate key noted with kind @kind should hold
 * instead of @aux at @now, under limit @l (NULL: its limit is gone, or not
 * known in this generation): 0 once recovered to the figure, or when @l
 * no longer adapts (a reload that turned adaptive off; turned on again,
 * the key starts at the figure); else @aux. A word without the mark is
 * never touched (another kind's, adapt.h).
 */
static inline uint32_t vrl_kind_settle_adapt(uint32_t kind, const struct vrl_seg_limit *l,
					     uint32_t aux, uint64_t now)
{
	struct vrl_adapt a;

	if ((kind != VRL_KIND_RATE && kind != 0) || !(aux & VRL_ADAPT_MARK))
		return aux;
	if (!l || l->kind != VRL_KIND_RATE || !(l->flags & VRL_LIMIT_ADAPTIVE) ||
	    vrl_adapt_load(&a, l->adapt) != 0)
		return 0;
	return vrl_adapt_settle(&a, aux, now);
}

#endif /* VRL_KIND_UPKEEP_H */
