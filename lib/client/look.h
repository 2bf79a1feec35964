/*
 * look.h - what the acquire engine (acquire.c) saw of a request's keys,
 * shared with the verdict it answers (verdict.h) and vrl__tightest
 * (observe.c). Private to lib/client.
 */
#ifndef VRL_LOOK_H
#define VRL_LOOK_H

#include "client.h"

/* What step 1 saw of one key: the engine's loads, and the kind's look
 * result (kind.h). */
struct look {
	struct vrl_seg_slot *s;
	uint64_t state;          /* the state word as loaded */
	uint64_t cd;             /* the cooldown as loaded */
	uint64_t gen;            /* config_gen, loaded after the state word */
	uint64_t conv;           /* rate_conversions, loaded before the clock (AQ.C1) */
	bool shadow_deny;        /* a shadow limit that would deny */
	bool cooled;             /* held back by a cooldown */
	struct vrl_kind_look k;  /* the kind's decision */
};

/* Permits the key of @t has left after what @lk decided (off the CAS path:
 * it may cost a division). A gate never runs out. */
static inline uint64_t vrl__look_remaining(const struct vrl_client *c,
					   const struct vrl_take *t, const struct look *lk,
					   uint64_t now)
{
	const struct vrl_kind_key k = vrl__kind_key(c, t, lk->s);

	if (t->slot == UINT64_MAX)
		return UINT64_MAX;
	return vrl_kind_remaining(&k, &lk->k, now);
}

/* Both steps of a look at the key of @t for @cost at @at, writing nothing
 * (acquire.c): VRL_LOOK_OK, or why not (kind.h). */
int vrl__look_at(struct vrl_client *c, const struct vrl_take *t, uint64_t cost, uint64_t now,
		 uint64_t at, uint64_t *rt, struct look *lk);

#endif /* VRL_LOOK_H */
