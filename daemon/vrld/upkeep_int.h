/*
 * upkeep_int.h - what the segment upkeep's files share (upkeep.c: making,
 * adopting and publishing; reload_check.c: what a reload may change;
 * sweep.c: eviction, renumbering, settling, reaping). vrld's own; not for
 * its other parts, which call upkeep.h.
 */
#ifndef VRL_UPKEEP_INT_H
#define VRL_UPKEEP_INT_H

#include <string.h>

#include "upkeep.h"
#include "vrl_internal.h"

/* The name a limit's keys are hashed from: its pool, or its own name. */
static inline const char *vrl_upkeep_key_identity(const struct vrl_seg_limit *l)
{
	return l->pool[0] ? l->pool : l->name;
}

/* The wall clock that quota periods are judged by (client.h: tests set it). */
static inline uint64_t vrl_upkeep_realtime(void)
{
	return vrl__realtime_ns();
}

/* The limit of @cfg whose keys @l's are: the same identity and kind. */
static inline const struct vrl_seg_limit *vrl_upkeep_same_keys(const struct vrl_seg_config *cfg,
								  const struct vrl_seg_limit *l)
{
	for (uint32_t i = 0; cfg && i < cfg->nlimits; i++) {
		const struct vrl_seg_limit *o = &cfg->limits[i];

		if (o->kind == l->kind &&
		    strncmp(vrl_upkeep_key_identity(o), vrl_upkeep_key_identity(l),
			    VRL_NAME_MAX) == 0)
			return o;
	}
	return NULL;
}

/*
 * The config a new one is judged against and carries its reload records
 * from: vrld's own copy of the one in force, or, before vrld's first
 * publish into a segment it adopted, the segment's, as adoption read and
 * checked it (NULL for a segment vrld makes).
 */
static inline const struct vrl_seg_config *vrl_upkeep_in_force(const struct vrl_seg *s)
{
	return s->cfg ? s->cfg : s->prev;
}

/* Why a config whose window rings need @need bytes of segment, not the
 * @have it has, cannot be taken: by a reload, or by vrld adopting it. */
void vrl_upkeep_windows_resized(uint64_t need, uint64_t have, char *why, size_t whylen);

#endif /* VRL_UPKEEP_INT_H */
