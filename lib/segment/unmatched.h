/*
 * unmatched.h - the count of requests that matched no limit, by api.
 *
 * A request that matches no limit is decided by the config's `unmatched:`
 * policy (VRL_CFG_UNMATCHED_*). Under deny and warn the acquiring process
 * counts it in a small table of the segment's header, by the request's api,
 * so that `vrlctl status` and the metrics say which apis go unlimited (a
 * typo in a caller, or a limit missing from the config).
 *
 * The table has VRL_UNMATCHED_ROWS rows: the first VRL_UNMATCHED_ROWS - 1
 * name one api each, the last counts every api that found no row (the table
 * full, a name of VRL_UNMATCHED_NAME bytes or more, a row left half-claimed
 * by a process that died). So the api label of the metric takes at most
 * VRL_UNMATCHED_ROWS values, whatever callers send.
 */
#ifndef VRL_UNMATCHED_H
#define VRL_UNMATCHED_H

#include <stdint.h>

#include "segment.h"

/* One row as a reader sees it: a checked copy. */
struct vrl_unmatched_row {
	char api[VRL_UNMATCHED_NAME]; /* the api as sent (bytes outside [A-Za-z0-9_.:/@+-]
	                                 shown as '?'); "" for the row of the rest */
	uint64_t count;               /* unmatched requests with this api */
	int other;                    /* 1: the row of every api that found no row */
};

/*
 * Count one unmatched request of @api (NULL: no api, counted as "") in the
 * header's table. Lock-free: a CAS to claim a free row, relaxed adds to
 * count. Any process of the segment's group.
 */
void vrl_unmatched_count(struct vrl_seg_header *h, const char *api);

/*
 * Copy the rows that counted anything into @out, named rows first in table
 * order, the row of the rest last (only when it counted). Returns how many.
 * Safe against any content a group member wrote: names are bounded and
 * sanitised here.
 */
unsigned vrl_unmatched_read(const struct vrl_seg_header *h,
			    struct vrl_unmatched_row out[VRL_UNMATCHED_ROWS]);

#endif /* VRL_UNMATCHED_H */
