/*
 * keyuse.h - how much of its limit a key has used, and how many grants a
 * key took between two reads of its slot: shared by vrld's metrics and
 * `vrlctl top`. Pure functions of the slot words and the time. A quota
 * word is read through quota.h's accessors, in the period in force (@qid,
 * from vrl_key_periods()): a word of an earlier period counts nothing.
 */
#ifndef VRL_KEYUSE_H
#define VRL_KEYUSE_H

#include <stdint.h>

#include "vrl_internal.h"
#include "quota.h"
#include "window.h"

/*
 * The period in force of each quota limit of @cfg at the wall-clock time
 * @now_rt (vrl_quota_period); UINT64_MAX for the other limits. A pass over
 * the key table takes them once and gives each key its limit's.
 */
static inline void vrl_key_periods(const struct vrl_snapshot *cfg, uint64_t now_rt,
				   uint64_t qid[VRL_MAX_LIMITS])
{
	for (uint32_t i = 0; i < VRL_MAX_LIMITS; i++) {
		const struct vrl_seg_limit *s = &cfg->limits[i].seg;

		qid[i] = UINT64_MAX;
		if (i < cfg->nlimits && s->kind == VRL_KIND_QUOTA &&
		    vrl_quota_period(s, now_rt, &qid[i], NULL, NULL) != 0)
			qid[i] = UINT64_MAX;
	}
}

/* Quota word @state of limit @l as period @qid reads it: a word of the
 * calendar before a reload's change carried into the new one (quota.h). */
static inline uint64_t vrl_key_quota_word(const struct vrl_limit *l, uint64_t state, uint64_t qid)
{
	return l->carry ? vrl_quota_carry(state, l->carry_from, l->carry_to, qid) : state;
}

/* Units quota key word @state of @l counts in period @qid: none for a word
 * of an earlier period (quota.h). */
static inline uint64_t vrl_key_quota_used(const struct vrl_limit *l, uint64_t state, uint64_t qid)
{
	return vrl_quota_used(vrl_key_quota_word(l, state, qid), qid);
}

/* Share of its limit a key has used at @now (quota: in period @qid): 0
 * untouched, 1 at it (or closed). */
static inline double vrl_key_used_ratio(const struct vrl_limit *l, uint64_t state, uint64_t cd,
					uint64_t now, uint64_t qid)
{
	const struct vrl_seg_limit *s = &l->seg;
	double r = 0;

	if (cd > now)
		return 1;
	switch (s->kind) {
	case VRL_KIND_RATE:
		state = vrl_rate_tat(l, state, now);
		if (state > now && l->gcra.tolerance_ns)
			r = (double)(state - now) / (double)l->gcra.tolerance_ns;
		break;
	case VRL_KIND_QUOTA:
		r = s->count ? (double)vrl_key_quota_used(l, state, qid) / (double)s->count : 0;
		break;
	case VRL_KIND_SLOTS:
		r = s->count ? (double)state / (double)s->count : 0;
		break;
	default:
		break;
	}
	return r > 1 ? 1 : r;
}

/*
 * vrl_key_used_ratio() of the key in slot @slot of the segment viewed by @v, with a window key's
 * share read from its ring: grants in the last W over N, counted by
 * vrl_window_remaining() (O(log N); exact when grants come in time order,
 * which is what keeps a render over thousands of 1000-grant rings cheap).
 */
static inline double vrl_slot_used_ratio(const struct vrl_seg_view *v, const struct vrl_limit *l,
					 uint64_t slot, uint64_t state, uint64_t cd, uint64_t now,
					 uint64_t qid)
{
	struct vrl_window_ref r;
	uint64_t left;

	if (l->seg.kind != VRL_KIND_WINDOW || cd > now)
		return vrl_key_used_ratio(l, state, cd, now, qid);
	if (!l->seg.count || vrl_window_ref_of(v, &l->seg, slot, &r) != 0)
		return 0;
	left = vrl_window_remaining(&r, now);
	return left >= l->seg.count ? 0 : (double)(l->seg.count - left) / (double)l->seg.count;
}

/*
 * Grants a key took between reads (@s0 at @t0, @s1 at @t1) of its state.
 * Quota: the units added (in one period; a word of a period after @s0's
 * counts from 0; both read as period @qid reads them, so a calendar
 * change's carry is no grant). Rate: the bucket time consumed
 * from where the TAT stood (or @t0 if the bucket was full) over the
 * emission interval, at most what the rate allows in the span: exact for a
 * busy key, an overestimate for one idle at @t0. Other kinds: 0.
 */
static inline uint64_t vrl_key_grants(const struct vrl_limit *l, uint64_t s0, uint64_t t0,
				      uint64_t s1, uint64_t t1, uint64_t qid)
{
	uint64_t from, n, most;

	switch (l->seg.kind) {
	case VRL_KIND_QUOTA:
		s0 = vrl_key_quota_word(l, s0, qid);
		s1 = vrl_key_quota_word(l, s1, qid);
		if (vrl_quota_word_id(s0) != vrl_quota_word_id(s1))
			return vrl_quota_word_used(s1);
		return vrl_quota_word_used(s1) > vrl_quota_word_used(s0) ?
			       vrl_quota_word_used(s1) - vrl_quota_word_used(s0) : 0;
	case VRL_KIND_RATE:
		if (!l->gcra.emission_ns)
			return 0;
		s0 = vrl_rate_tat(l, s0, t0);   /* the TATs, under the current parameters */
		s1 = vrl_rate_tat(l, s1, t1);
		from = s0 > t0 ? s0 : t0;
		if (s1 <= from)
			return 0;
		n = (s1 - from) / l->gcra.emission_ns;
		most = l->gcra.burst + (t1 - t0) / l->gcra.emission_ns;
		return n < most ? n : most;
	default:
		return 0;
	}
}

#endif /* VRL_KEYUSE_H */
