/*
 * kind_counted.h - the counted kinds: quota (units per calendar period)
 * and slots (at most N held at once), a count in the state word (quota.h
 * has the word and the calendar).
 *
 * A grant adds its cost to the count the look saw (one CAS, as a rate's),
 * so invariant 1 holds by the same argument: each grant moves the word by
 * exactly its cost from a value that had room for it. A rollback gives
 * the cost back (a count is additive, so this is exact even when others
 * took units after us), never below zero. A key without room denies at
 * once, even a waiting acquire: no time is known at which units come
 * back (a quota's next period is days away, a slot waits for a release).
 * Included by kind.h, which dispatches to these.
 */
#ifndef VRL_KIND_COUNTED_H
#define VRL_KIND_COUNTED_H

#ifndef VRL_KIND_H
#error "include kind.h"
#endif

#include <errno.h>

#include "blocks.h"

/* The arithmetic of quota or slots limit @in, ready in @out: a count that
 * fits the word, a valid calendar and its recorded change (quota.h).
 * 0, or -1 when not valid. */
static inline int vrl_counted_prepare(const struct vrl_seg_limit *in, struct vrl_limit *out)
{
	int rc;

	if (in->count == 0 || in->count > VRL_QUOTA_COUNT_MAX)
		return -1;
	if (in->kind != VRL_KIND_QUOTA)
		return 0;
	if (vrl_quota_period(in, 0, NULL, NULL, NULL) != 0)
		return -1;
	rc = vrl_quota_transition(in, &out->carry_from, &out->carry_to);
	if (rc == -EINVAL)
		return -1;
	out->carry = rc == 0;
	return 0;
}

/* Quota word @state as @l's calendar reads it in period @pid: a word of
 * the calendar before a reload's change carried into the new one. */
static inline uint64_t vrl_quota_view(const struct vrl_limit *l, uint64_t state, uint64_t pid)
{
	return l->carry ? vrl_quota_carry(state, l->carry_from, l->carry_to, pid) : state;
}

/* Units quota word @state of @l counts in period @pid: none for a word of
 * an earlier period. */
static inline uint64_t vrl_quota_view_used(const struct vrl_limit *l, uint64_t state,
					   uint64_t pid)
{
	return vrl_quota_used(vrl_quota_view(l, state, pid), pid);
}

/*
 * The decision of a quota or slots key in state @state; *@w->rt is read
 * once a look. A stale handle (@w->newer: its config is not the one in
 * force) reads only a quota word of its own current period, or one that
 * counts nothing: a newer config may have changed the calendar.
 * VRL_LOOK_NEWER otherwise.
 */
static inline int vrl_counted_judge(const struct vrl_limit *l, struct vrl_kind_look *lk,
				    uint64_t state, const struct vrl_kind_when *w)
{
	lk->r = (struct vrl_gcra_step){ .conforms = true };
	if (l->seg.kind == VRL_KIND_QUOTA) {
		uint64_t st;

		if (*w->rt == 0)
			*w->rt = w->realtime();
		lk->rt = *w->rt;
		vrl_quota_period(&l->seg, lk->rt, &lk->pid, NULL, &lk->end_rt);
		st = vrl_quota_view(l, state, lk->pid);
		if (w->newer && vrl_quota_word_used(st) && vrl_quota_word_id(st) != lk->pid)
			return VRL_LOOK_NEWER;
		lk->q = vrl_quota_take(&l->seg, st, lk->pid, w->cost);
	} else {
		lk->q = vrl_slots_take(&l->seg, state, w->cost);
	}
	lk->earliest = w->at;
	if (lk->q.conforms)
		return VRL_LOOK_OK;
	lk->final = true;
	if (w->cost > l->seg.count || l->seg.kind == VRL_KIND_SLOTS)
		lk->earliest = w->cost > l->seg.count ? UINT64_MAX : w->now;
	else
		lk->earliest = lk->end_rt == UINT64_MAX ? UINT64_MAX :
							  w->now + (lk->end_rt - lk->rt);
	return VRL_LOOK_OK;
}

/* The commit CAS lost a race and loaded @cur: the decision from it (a
 * count is judged from any word of the look's config). */
static inline bool vrl_counted_rejudge(const struct vrl_limit *l, struct vrl_kind_look *lk,
				       uint64_t cur, const struct vrl_kind_when *w)
{
	lk->q = l->seg.kind == VRL_KIND_QUOTA ?
		vrl_quota_take(&l->seg, vrl_quota_view(l, cur, lk->pid), lk->pid, w->cost) :
		vrl_slots_take(&l->seg, cur, w->cost);
	return true;
}

/*
 * Give @cost units back to the word of @s: within period @pid (@quota),
 * or slots held. Never below zero; a word that vrld evicted is left alone
 * (nothing is held there any more). Lock-free: a CAS loop on the word.
 * Returns the units the count went down by.
 */
static inline uint64_t vrl_counted_credit(struct vrl_seg_slot *s, bool quota, uint64_t pid,
					  uint64_t cost)
{
	uint64_t cur = atomic_load_explicit(&s->state, memory_order_relaxed), next;

	do {
		if (cur == VRL_STATE_EVICTED)
			return 0;
		next = quota ? vrl_quota_credit(cur, pid, cost) : vrl_slots_release(cur, cost);
		if (next == cur)
			return 0;
		/* relaxed: only the count moves; no other data rides on it */
	} while (!atomic_compare_exchange_weak_explicit(&s->state, &cur, next,
							memory_order_relaxed, memory_order_relaxed));
	return quota ? vrl_quota_word_used(cur) - vrl_quota_word_used(next) : cur - next;
}

/* Give @cost units of limit @l back to the key of @s: the rollback of a
 * grant, a release, a refund (quota: within period @pid). */
static inline void vrl_counted_give_back(struct vrl_seg_slot *s, const struct vrl_seg_limit *l,
					 uint64_t pid, uint64_t cost)
{
	vrl_counted_credit(s, l->kind == VRL_KIND_QUOTA, pid, cost);
}

/* Give @cost slots back to the key of @s (a dead holder's, a release);
 * the slots it gave back (fewer when fewer were held). A global key's
 * block word gets those back too: vrl_slots_give_share(). */
static inline uint64_t vrl_slots_give_back(struct vrl_seg_slot *s, uint64_t cost)
{
	return vrl_counted_credit(s, false, 0, cost);
}

/*
 * The block word @sh of a global slots key gets back the @units its key
 * gave back (blocks.h: a release or a dead holder's, after the count
 * went down). A key of scope host has a word of no tag: nothing moves.
 * No more than the count went down by: a release of more than is held
 * gives the share nothing for the difference.
 */
static inline void vrl_slots_give_share(struct vrl_seg_share *sh, uint64_t units)
{
	if (sh && units)
		vrl_block_give(&sh->word, VRL_BLOCK_SLOTS_TAG, units);
}

/* A verdict's figures: the count, and when it is whole again (quota: the
 * period's end, VRL_NEVER for `once`; slots: 0, after its holders
 * release); a denial's remaining too. */
static inline void vrl_counted_verdict(const struct vrl_limit *l, const struct vrl_kind_look *lk,
				       bool granted, struct vrl_verdict *v)
{
	if (!granted)
		v->remaining = lk->q.remaining;
	v->limit_value = l->seg.count;
	if (l->seg.kind == VRL_KIND_SLOTS) {
		v->reset_ns = 0;
		return;
	}
	v->reset_ns = lk->end_rt == UINT64_MAX ? VRL_NEVER : lk->end_rt - lk->rt;
	v->overage = lk->q.overage;
}

/* The flags a grant raises: overage, a saturated count, a crossed alert
 * threshold (the engine then records the alert: alert.c). */
static inline unsigned vrl_counted_grant_flags(const struct vrl_kind_look *lk)
{
	return (lk->q.overage > 0 ? VRL_VERDICT_OVERAGE : 0) |
	       (lk->q.saturated ? VRL_VERDICT_SATURATED : 0) | (lk->q.alert ? VRL_VERDICT_ALERT : 0);
}

/* Share of the count used (quota: in period @qid). */
static inline double vrl_counted_used_ratio(const struct vrl_limit *l, uint64_t state,
					    uint64_t qid)
{
	if (!l->seg.count)
		return 0;
	if (l->seg.kind == VRL_KIND_QUOTA)
		return (double)vrl_quota_view_used(l, state, qid) / (double)l->seg.count;
	return (double)state / (double)l->seg.count;
}

/*
 * Grants a quota key took between reads @s0 and @s1: the units added in
 * period @qid (a word of a period after @s0's counts from 0, a word of an
 * earlier period than @qid took none; both read as period @qid reads
 * them, so a calendar change's carry is no grant).
 */
static inline uint64_t vrl_quota_grants(const struct vrl_limit *l, uint64_t s0, uint64_t s1,
					uint64_t qid)
{
	uint64_t n;

	s0 = vrl_quota_view(l, s0, qid);
	s1 = vrl_quota_view(l, s1, qid);
	/* a word that counts nothing in period @qid took no grant in it */
	n = vrl_quota_used(s1, qid);
	if (vrl_quota_word_id(s0) != vrl_quota_word_id(s1))
		return n;
	return n > vrl_quota_word_used(s0) ? n - vrl_quota_word_used(s0) : 0;
}

/* Display figures: used of the count (quota: in the period in force at
 * the wall-clock time @rt, and the time until it ends). */
static inline void vrl_counted_figures(const struct vrl_limit *l, uint64_t state, uint64_t rt,
				       struct vrl_kind_figures *f)
{
	uint64_t pid = 0, end = UINT64_MAX;

	f->counted = true;
	f->size = l->seg.count;
	f->used = state;
	f->period_ns = 0;
	if (l->seg.kind == VRL_KIND_QUOTA) {
		vrl_quota_period(&l->seg, rt, &pid, NULL, &end);
		f->used = vrl_quota_view_used(l, state, pid);
		f->period_ns = end == UINT64_MAX ? UINT64_MAX : end - rt;
	}
	f->available = f->used < f->size ? f->size - f->used : 0;
	f->overage = f->used > f->size ? f->used - f->size : 0;
}

/* ---- vrld: reloads, eviction ------------------------------------------------ */

/* A reload's record of quota @l from @old, the same keys' limit in force:
 * its calendar and anchor before, and when they changed (quota.h). */
static inline void vrl_quota_carry_reload(struct vrl_seg_limit *l, const struct vrl_seg_limit *old,
					  uint64_t now_rt)
{
	uint64_t from, to;

	if (old->calendar != l->calendar || old->anchor != l->anchor) {
		l->prev_calendar = old->calendar;
		l->prev_anchor = old->anchor;
		l->calendar_changed_rt = now_rt;
	} else {
		l->prev_calendar = old->prev_calendar;
		l->prev_anchor = old->prev_anchor;
		l->calendar_changed_rt = old->calendar_changed_rt;
	}
	if (l->calendar_changed_rt && vrl_quota_transition(l, &from, &to) != 0)
		l->calendar_changed_rt = 0;   /* not a calendar: forget it */
}

/*
 * True when a reload from quota @old to @l, a new calendar or anchor,
 * would lose units at @now_rt: the new period (*@begins .. *@ends,
 * UINT64_MAX for `once`) begins before the one its keys count from
 * (*@counted_from), so the units between would be unknown (quota.h).
 */
static inline bool vrl_quota_reload_loses(const struct vrl_seg_limit *old,
					  const struct vrl_seg_limit *l, uint64_t now_rt,
					  uint64_t *begins, uint64_t *counted_from, uint64_t *ends)
{
	if (old->calendar == l->calendar && old->anchor == l->anchor)
		return false;
	if (vrl_quota_period(old, now_rt, NULL, counted_from, NULL) != 0 ||
	    vrl_quota_period(l, now_rt, NULL, begins, ends) != 0)
		return false;
	return *begins < *counted_from;
}

/* True when quota word @st, noted with @calendar and @anchor, counts
 * nothing worth keeping at the wall clock @now_rt: nothing used, or a word
 * of an earlier period (a once quota: only nothing used). */
static inline bool vrl_quota_idle(uint32_t calendar, uint32_t anchor, uint64_t st,
				  uint64_t now_rt)
{
	struct vrl_seg_limit q = { .kind = VRL_KIND_QUOTA, .calendar = calendar, .anchor = anchor };
	uint64_t pid;

	if (vrl_quota_word_used(st) == 0)
		return true;
	if (calendar == VRL_CAL_ONCE || vrl_quota_period(&q, now_rt, &pid, NULL, NULL) != 0)
		return false;
	return !vrl_quota_counts(st, pid);
}

/* The carry rule of quota @l's keys after a calendar change, in the period
 * at @now_rt (quota.h). False when its keys need none. */
static inline bool vrl_quota_settle_rule(const struct vrl_seg_limit *l, uint64_t now_rt,
					 struct vrl_kind_settle *r)
{
	return vrl_quota_transition(l, &r->from, &r->to) == 0 &&
	       vrl_quota_period(l, now_rt, &r->pid, NULL, NULL) == 0;
}

#endif /* VRL_KIND_COUNTED_H */
