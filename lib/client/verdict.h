/*
 * verdict.h - what an acquire answers: the verdict's limit, figures and
 * flags, from what the engine saw of each key (acquire.c, look.h), and
 * the handle's counters of grants and denials. A grant's verdict names
 * the key with the fewest units left (among those, one in overage); the
 * figures are the kind's (kind.h). Nothing here writes a key's words.
 * Static inline: it is the acquire path's tail, and acquire.c its only
 * includer.
 */
#ifndef VRL_VERDICT_H
#define VRL_VERDICT_H

#include <string.h>

#include "alert.h"
#include "kind.h"
#include "look.h"

static inline void vrl__fill_denied(struct vrl_client *c, const struct vrl_take *t,
				    const struct look *lk, uint64_t now, struct vrl_verdict *v)
{
	const struct vrl_kind_key k = vrl__kind_key(c, t, lk->s);

	v->granted = 0;
	v->limit = (int)t->limit;
	v->limit_name = k.l->seg.name;
	/* slots: no time is known (0: after a release); quota: the period's end */
	v->retry_after_ns = lk->k.earliest == UINT64_MAX ? VRL_NEVER : lk->k.earliest - now;
	vrl_kind_verdict(&k, &lk->k, now, false, v);
	if (lk->cooled)
		v->flags |= VRL_VERDICT_COOLDOWN;
}

/* A grant's flags from key @i of @t, and its alert, once per threshold,
 * key and period (alert.c). True when the key is in overage. */
static inline bool vrl__grant_flags(struct vrl_client *c, const struct vrl_take *t, const struct look *lk,
			struct vrl_verdict *v)
{
	const struct vrl_limit *l = &c->cfg->limits[t->limit];
	unsigned f;

	if (lk->shadow_deny) {
		v->flags |= VRL_VERDICT_SHADOW;
		if (c->holder)   /* what the limit would have denied */
			vrl__bump(&c->holder->limit_shadow[t->limit]);
		return false;
	}
	f = vrl_kind_grant_flags(l, &lk->k);
	v->flags |= f;
	if (f & VRL_VERDICT_ALERT)
		vrl_alert_check(&c->view, &l->seg, t->limit, c->cfg->generation, t->slot,
				lk->k.q.used - (v->cost < lk->k.q.used ? v->cost : lk->k.q.used),
				lk->k.q.used, lk->k.pid);
	return (f & VRL_VERDICT_OVERAGE) != 0;
}

/*
 * The verdict's adaptive figures (adapt.h AD.W4): the slowest pace among
 * the request's adaptive keys, and, for a grant of @cost at @at, the
 * adaptive rate limits whose keys bound it: least slack among the rate
 * keys, ties within VRL_ADAPT_TIE_Q16. Reads only what the look saw.
 */
static inline void vrl__adapt_fill(const struct vrl_client *c, const struct vrl_take *t,
				   const struct look *lk, unsigned n, uint64_t now, uint64_t at,
				   bool granted, struct vrl_verdict *v)
{
	uint64_t slack[VRL_MAX_MATCHED] = { 0 };
	unsigned idx[VRL_MAX_MATCHED], m = 0;
	uint32_t pace = 0, mask;
	bool any = false;

	for (unsigned i = 0; c->cfg->nadaptive && i < n && !any; i++)
		any = t[i].slot != UINT64_MAX && vrl_rate_adaptive(&c->cfg->limits[t[i].limit]);
	if (!any)
		return;   /* no adaptive key: no division on the grant's path */
	for (unsigned i = 0; i < n; i++) {
		const struct vrl_limit *l = &c->cfg->limits[t[i].limit];
		uint32_t p;

		if (t[i].slot == UINT64_MAX || !vrl_kind_timed(l) || lk[i].shadow_deny)
			continue;
		if (vrl_rate_adaptive(l)) {
			p = vrl_rate_pace(l, lk[i].k.adapt, now);
			pace = pace == 0 || p < pace ? p : pace;
		}
		if (granted && m < VRL_MAX_MATCHED) {
			uint64_t extra = vrl_rate_adaptive(l) && lk[i].k.charge > l->gcra.emission_ns ?
				lk[i].k.charge - l->gcra.emission_ns : 0;

			slack[m] = vrl_adapt_slack(&l->gcra, extra, lk[i].k.tat, at, v->cost);
			idx[m++] = i;
		}
	}
	v->pace_q16 = pace;
	if (pace && pace < VRL_ADAPT_ONE)
		v->flags |= VRL_VERDICT_PACED;
	mask = vrl_adapt_charged(slack, m);
	for (unsigned j = 0; j < m; j++)
		if ((mask >> j & 1) && t[idx[j]].limit < 64 &&
		    vrl_rate_adaptive(&c->cfg->limits[t[idx[j]].limit]))
			v->binding |= UINT64_C(1) << t[idx[j]].limit;
}

static inline void vrl__fill_granted(struct vrl_client *c, const struct vrl_take *t,
				     const struct look *lk, unsigned n, uint64_t now,
				     struct vrl_verdict *v)
{
	uint64_t best = UINT64_MAX;
	bool best_over = false;

	v->granted = 1;
	v->retry_after_ns = 0;
	for (unsigned i = 0; i < n; i++) {
		uint64_t rem = vrl__look_remaining(c, &t[i], &lk[i], now);
		struct vrl_kind_key k;
		bool over;

		if (t[i].slot == UINT64_MAX)
			continue;
		over = vrl__grant_flags(c, &t[i], &lk[i], v);
		/* the fewest left decides; among those, a key in overage */
		if (v->limit >= 0 && (rem > best || (rem == best && (best_over || !over))))
			continue;
		best = rem;
		best_over = over;
		k = vrl__kind_key(c, &t[i], lk[i].s);
		v->limit = (int)t[i].limit;
		v->limit_name = k.l->seg.name;
		v->remaining = rem == UINT64_MAX ? 0 : rem;
		vrl_kind_verdict(&k, &lk[i].k, now, true, v);
	}
	vrl__adapt_fill(c, t, lk, n, now, v->at_ns, true, v);
}

static inline void vrl__count(struct vrl_client *c, const struct vrl_take *t, unsigned n,
			      const struct vrl_verdict *v)
{
	struct vrl_seg_holder *h = c->holder;

	if (!h)
		return;
	if (v->granted) {
		vrl__bump(&h->granted);
		for (unsigned i = 0; i < n; i++)
			vrl__bump(&h->limit_granted[t[i].limit]);
	} else {
		vrl__bump(&h->denied);
		if (v->limit >= 0)
			vrl__bump(&h->limit_denied[v->limit]);
	}
}

static inline void vrl__verdict_init(struct vrl_verdict *v, unsigned n)
{
	memset(v, 0, sizeof(*v));
	v->limit = -1;
	v->matched = n;
}

#endif /* VRL_VERDICT_H */
