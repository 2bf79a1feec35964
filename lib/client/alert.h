/*
 * alert.h - alert thresholds. Internal.
 *
 * A limit may declare thresholds in percent of its count (alerts: [80, 90,
 * 100]). After a grant moves a key's usage from used_before to used_after,
 * the acquire engine calls vrl_alert_check(), which appends one event to
 * the segment's ring (events.h) per threshold crossed, once per key and
 * period.
 */
#ifndef VRL_ALERT_H
#define VRL_ALERT_H

#include <stdint.h>

#include "segment.h"

/*
 * After a grant took key @slot of limit @l (index @limit of the config of
 * @generation; a private, checked copy) from @used_before to @used_after
 * units in period @period_id: for each threshold t of the limit with
 * used_before < ceil(count * t / 100) <= used_after, emits one event,
 * unless this key already fired t in this period (a refund that lowers
 * usage and a grant that crosses again fire nothing). Never fails: an
 * event that does not fit is counted in header.events_lost. Lock-free.
 */
void vrl_alert_check(const struct vrl_seg_view *v, const struct vrl_seg_limit *l,
		     uint32_t limit, uint64_t generation, uint64_t slot, uint64_t used_before,
		     uint64_t used_after, uint64_t period_id);

#endif /* VRL_ALERT_H */
