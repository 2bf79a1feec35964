/*
 * metrics_keys.h - what vrld's metrics read of the key table: live keys
 * per limit, the keys nearest their limit, adaptive keys paced below their
 * figure. Relaxed loads of a table other processes change: figures for
 * display, a torn view across slots is harmless.
 */
#ifndef VRL_METRICS_KEYS_H
#define VRL_METRICS_KEYS_H

#include <stdint.h>

#include "segment.h"
#include "vrl_internal.h"

/* A key and how near its limit it is (vrl_slot_used_ratio). */
struct key_ratio {
	double ratio;
	uint32_t limit;
	char label[VRL_LABEL_MAX];
};

/* Count live keys per limit and their overage (arrays of VRL_MAX_LIMITS),
 * the live keys and those whose limit is not in @snap, and put in
 * @best[0..*nbest) the @top keys nearest their limit, nearest first. */
void vrl_metrics_scan_keys(const struct vrl_seg_view *v, const struct vrl_snapshot *snap,
			   unsigned top, uint64_t *keys, uint64_t *overage, uint64_t *live,
			   uint64_t *unattributed, struct key_ratio *best, unsigned *nbest);

/*
 * Adaptive rate limits (adapt.h): by limit, the keys paced below their
 * figure now, and the lowest effective rate among its keys in permille of
 * the figure (1000: none cut; a limit that does not adapt reads 1000),
 * shown as a ratio. Bounded cardinality: one series per limit, never per
 * key.
 */
void vrl_metrics_scan_adaptive(const struct vrl_seg_view *v, const struct vrl_snapshot *snap,
			       uint64_t *cut, uint64_t *lowest);

#endif
