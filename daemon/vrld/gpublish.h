/*
 * gpublish.h - vrld publishes the global status area (lib/segment/
 * gstatus.h has its layout): each tick, what the multi-host engine knows
 * of its endpoints and of this host's global keys is published in the
 * segment for `vrlctl global`, and summed per limit for the metrics.
 * Main loop only, but vrld_gstatus_metrics(), which the metrics thread
 * calls.
 */
#ifndef VRLD_GPUBLISH_H
#define VRLD_GPUBLISH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "global.h"
#include "gstatus.h"          /* lib/segment: the layout */

/*
 * One global key of this host, as the main loop knows it when it applies
 * a round: its id and kind (the entry's), its limit's name and global
 * figures (the config's), the label its slot shows, and the engine's
 * status of it (vrl_global_key(), or the fields of the round's result).
 */
struct vrld_gstatus_row {
	uint8_t id[VRL_GLOBAL_ID_LEN];
	enum vrl_global_kind kind;
	const char *limit;              /* the limit's name */
	const char *label;              /* the slot's label: secrets already hashed
					 * (label.h), never a raw request value; NULL: none */
	uint64_t count;                 /* the global figures: the entry's count, */
	uint64_t period_ns;             /* and period (rate), for the share ratio */
	struct vrl_global_key_status ks;
};

/* Per limit, for the metrics: keys, and the sum of their shares' ratios. */
struct vrld_gstatus_limit {
	char name[VRL_NAME_MAX];
	uint64_t keys;
	double ratio_sum;               /* sum over keys of share / the global figure */
};

struct vrld_gstatus {
	struct vrl_gstatus_area *area;  /* in the segment; NULL: none (no global:, or a
					 * segment made without it) */
	char host[VRL_GSTATUS_HOST];
	uint64_t lease_ns;
	bool static_partition;
	uint64_t publishes;
	uint64_t seq;                   /* the area's sequence word: even, last written */
	/* the metrics thread's copy, under lock */
	_Atomic bool ready;             /* lock initialised (attach) */
	pthread_mutex_t lock;
	size_t nlimits;
	struct vrld_gstatus_limit limits[VRL_MAX_LIMITS];
};

/*
 * Find the area of segment @seg (vrld's own layout, never the header's)
 * and note @s's figures. @gs is zeroed before, once (struct vrld_glink's
 * start does it). Without an area (no global:, or a segment
 * adopted from before global: was added) every publish is a no-op.
 */
struct vrl_seg;
void vrld_gstatus_attach(struct vrld_gstatus *gs, const struct vrl_seg *seg,
			 const struct vrl_global_settings *s);

/*
 * Publish the engine's status @st and the host's global keys @rows (@n
 * of them; the first VRL_GSTATUS_KEYS are shown, all are counted) as of
 * monotonic @now, and keep the per-limit sums for the metrics.
 */
void vrld_gstatus_publish(struct vrld_gstatus *gs, const struct vrl_global_status *st,
			  const struct vrld_gstatus_row *rows, size_t n, uint64_t now);

/* vrld_gstatus_publish() with engine @g's status, now. */
void vrld_gstatus_tick(struct vrld_gstatus *gs, struct vrl_global *g,
		       const struct vrld_gstatus_row *rows, size_t n);

/* The share of @r as a fraction of its limit's global figure (0 when
 * the figure is 0). */
double vrld_gstatus_ratio(const struct vrld_gstatus_row *r);

/* The per-limit families (vrl_global_keys, vrl_global_share_ratio) into
 * @buf of @cap bytes; the length needed, as snprintf. Any thread. */
size_t vrld_gstatus_metrics(struct vrld_gstatus *gs, char *buf, size_t cap);

#endif /* VRLD_GPUBLISH_H */
