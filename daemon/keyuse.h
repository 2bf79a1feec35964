/*
 * keyuse.h - how much of its limit a key has used, and how many grants a
 * key took between two reads of its slot: shared by vrld's metrics and
 * `vrlctl top`. Pure functions of the slot words and the time.
 */
#ifndef VRL_KEYUSE_H
#define VRL_KEYUSE_H

#include <stdint.h>

#include "client.h"
#include "window.h"

#define VRL_QUOTA_USED_MASK  ((UINT64_C(1) << 40) - 1) /* quota state: period << 40 | used */

/* Share of its limit a key has used at @now: 0 untouched, 1 at it (or closed). */
static inline double vrl_key_used_ratio(const struct vrl_limit *l, uint64_t state, uint64_t cd,
					uint64_t now)
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
		r = s->count ? (double)(state & VRL_QUOTA_USED_MASK) / (double)s->count : 0;
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
					 uint64_t slot, uint64_t state, uint64_t cd, uint64_t now)
{
	struct vrl_window_ref r;
	uint64_t left;

	if (l->seg.kind != VRL_KIND_WINDOW || cd > now)
		return vrl_key_used_ratio(l, state, cd, now);
	if (!l->seg.count || vrl_window_ref_of(v, &l->seg, slot, &r) != 0)
		return 0;
	left = vrl_window_remaining(&r, now);
	return left >= l->seg.count ? 0 : (double)(l->seg.count - left) / (double)l->seg.count;
}

/*
 * Grants a key took between reads (@s0 at @t0, @s1 at @t1) of its state.
 * Quota: the units added (same period). Rate: the bucket time consumed
 * from where the TAT stood (or @t0 if the bucket was full) over the
 * emission interval, at most what the rate allows in the span: exact for a
 * busy key, an overestimate for one idle at @t0. Other kinds: 0.
 */
static inline uint64_t vrl_key_grants(const struct vrl_limit *l, uint64_t s0, uint64_t t0,
				      uint64_t s1, uint64_t t1)
{
	uint64_t from, n, most;

	switch (l->seg.kind) {
	case VRL_KIND_QUOTA:
		if ((s0 >> 40) != (s1 >> 40))
			return s1 & VRL_QUOTA_USED_MASK;
		return s1 > s0 ? s1 - s0 : 0;
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
