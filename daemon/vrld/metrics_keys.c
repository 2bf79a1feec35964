/*
 * metrics_keys.c - what vrld's metrics read of the key table (see
 * metrics_keys.h).
 */
#include "metrics_keys.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "vrl_internal.h"
#include "clock.h"
#include "keytable.h"
#include "keyuse.h"
#include "kind_describe.h"

static uint64_t load64(const _Atomic uint64_t *w)
{
	return atomic_load_explicit(w, memory_order_relaxed);
}

static int by_ratio(const void *pa, const void *pb)
{
	const struct key_ratio *a = pa, *b = pb;

	if (a->ratio != b->ratio)
		return a->ratio > b->ratio ? -1 : 1;
	return strcmp(a->label, b->label);
}

/* Keep the @top highest ratios in @best (sorted when the scan ends). */
static void offer(struct key_ratio *best, unsigned top, unsigned *n, const struct key_ratio *k)
{
	unsigned low = 0;

	if (*n < top) {
		best[(*n)++] = *k;
		return;
	}
	for (unsigned i = 1; i < top; i++)
		if (best[i].ratio < best[low].ratio)
			low = i;
	if (top && k->ratio > best[low].ratio)
		best[low] = *k;
}

void vrl_metrics_scan_keys(const struct vrl_seg_view *v, const struct vrl_snapshot *snap,
			   unsigned top, uint64_t *keys, uint64_t *overage, uint64_t *live,
			   uint64_t *unattributed, struct key_ratio *best, unsigned *nbest)
{
	const struct vrl_seg_slot *slots = v->slots;
	uint64_t now = vrl_now_ns(), period[VRL_MAX_LIMITS];

	vrl_key_periods(snap, vrl__realtime_ns(), period);
	memset(keys, 0, VRL_MAX_LIMITS * sizeof(*keys));
	memset(overage, 0, VRL_MAX_LIMITS * sizeof(*overage));
	*live = 0;
	*unattributed = 0;
	*nbest = 0;
	for (uint64_t i = 0; i < v->nslots; i++) {
		const struct vrl_seg_slot *s = &slots[i];
		uint64_t tag = load64(&s->tag), state;
		struct key_ratio k;
		int li;

		if (!(tag & VRL_TAG_LIVE) || (tag & VRL_TAG_PENDING))
			continue;
		state = load64(&s->state);
		if (state == VRL_STATE_EVICTED)
			continue;
		(*live)++;
		li = vrl_note_limit(atomic_load_explicit(&s->limit, memory_order_relaxed),
				    snap->generation, snap->nlimits);
		if (li < 0) {
			/* its limit is gone, or it was inserted under a numbering
			 * that vrld has not renoted yet */
			(*unattributed)++;
			continue;
		}
		k.limit = (uint32_t)li;
		keys[k.limit]++;
		overage[k.limit] += vrl_kind_overage(&snap->limits[k.limit], state,
						     period[k.limit]);
		k.ratio = vrl_slot_used_ratio(v, &snap->limits[k.limit], i, state,
					      load64(&s->cooldown), now, period[k.limit]);
		if (k.ratio <= 0)
			continue;
		memcpy(k.label, s->label, sizeof(k.label));
		k.label[sizeof(k.label) - 1] = '\0';
		offer(best, top, nbest, &k);
	}
	qsort(best, *nbest, sizeof(*best), by_ratio);
}

void vrl_metrics_scan_adaptive(const struct vrl_seg_view *v, const struct vrl_snapshot *snap,
			       uint64_t *cut, uint64_t *lowest)
{
	uint64_t now = vrl_now_ns();

	for (unsigned l = 0; l < VRL_MAX_LIMITS; l++) {
		cut[l] = 0;
		lowest[l] = 1000;
	}
	if (!snap->nadaptive)
		return;
	for (uint64_t i = 0; i < v->nslots; i++) {
		const struct vrl_seg_slot *s = &v->slots[i];
		uint64_t tag = load64(&s->tag), pm;
		const struct vrl_limit *l;
		uint32_t pace;
		int li;

		if (!(tag & VRL_TAG_LIVE) || (tag & VRL_TAG_PENDING))
			continue;
		li = vrl_note_limit(atomic_load_explicit(&s->limit, memory_order_relaxed),
				    snap->generation, snap->nlimits);
		if (li < 0 || !vrl_rate_adaptive(l = &snap->limits[li]))
			continue;
		/* relaxed: a display of the adapt word (adapt.h AD.W2) */
		pace = vrl_rate_pace(l, atomic_load_explicit(&s->aux, memory_order_relaxed), now);
		if (pace >= VRL_ADAPT_ONE)
			continue;
		cut[li]++;
		pm = (uint64_t)pace * 1000 / VRL_ADAPT_ONE;
		lowest[li] = pm < lowest[li] ? pm : lowest[li];
	}
}

