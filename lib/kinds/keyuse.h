/*
 * keyuse.h - how much of its limit a key has used, and how many grants a
 * key took between two reads of its slot: shared by vrld's metrics and
 * `vrlctl top`. Pure functions of the slot words and the time, through
 * the kinds' operations (kind.h). A quota word is read in the period in
 * force (@qid, from vrl_key_periods()): a word of an earlier period counts
 * nothing.
 */
#ifndef VRL_KEYUSE_H
#define VRL_KEYUSE_H

#include <stdint.h>

#include "vrl_internal.h"
#include "kind.h"

/*
 * The period in force of each quota limit of @cfg at the wall-clock time
 * @now_rt (vrl_quota_period); UINT64_MAX for the other limits. A pass over
 * the key table takes them once and gives each key its limit's.
 */
static inline void vrl_key_periods(const struct vrl_snapshot *cfg, uint64_t now_rt,
				   uint64_t qid[VRL_MAX_LIMITS])
{
	for (uint32_t i = 0; i < VRL_MAX_LIMITS; i++)
		if (i >= cfg->nlimits ||
		    vrl_quota_period(&cfg->limits[i].seg, now_rt, &qid[i], NULL, NULL) != 0)
			qid[i] = UINT64_MAX;   /* not a quota: vrl_quota_period says so */
}

/* Units quota key word @state of @l counts in period @qid: none for a word
 * of an earlier period (quota.h). */
static inline uint64_t vrl_key_quota_used(const struct vrl_limit *l, uint64_t state, uint64_t qid)
{
	return vrl_quota_view_used(l, state, qid);
}

/* Share of its limit a key has used at @now (quota: in period @qid): 0
 * untouched, 1 at it (or closed). A window's counts 0 here: its ring is
 * read by vrl_slot_used_ratio(). */
static inline double vrl_key_used_ratio(const struct vrl_limit *l, uint64_t state, uint64_t cd,
					uint64_t now, uint64_t qid)
{
	return cd > now ? 1 : vrl_kind_used_ratio(NULL, l, 0, state, now, qid);
}

/* vrl_key_used_ratio() of the key in slot @slot of the segment viewed by
 * @v, with a window key's share read from its ring (kind_window.h). */
static inline double vrl_slot_used_ratio(const struct vrl_seg_view *v, const struct vrl_limit *l,
					 uint64_t slot, uint64_t state, uint64_t cd, uint64_t now,
					 uint64_t qid)
{
	return cd > now ? 1 : vrl_kind_used_ratio(v, l, slot, state, now, qid);
}

/* Grants a key took between reads (@s0 at @t0, @s1 at @t1) of its state;
 * quota: in period @qid (kind_counted.h), rate: estimated from the TAT
 * (kind_rate.h); other kinds: 0. */
static inline uint64_t vrl_key_grants(const struct vrl_limit *l, uint64_t s0, uint64_t t0,
				      uint64_t s1, uint64_t t1, uint64_t qid)
{
	return vrl_kind_grants(l, s0, t0, s1, t1, qid);
}

#endif /* VRL_KEYUSE_H */
