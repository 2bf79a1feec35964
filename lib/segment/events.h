/*
 * events.h - the segment's ring of alert events. Internal.
 *
 * Workers append an event when a grant crosses an alert threshold
 * (alert.h); vrld drains the ring each tick; vrlctl reads it without
 * draining. The protocol and its invariants are at the top of events.c.
 */
#ifndef VRL_EVENTS_H
#define VRL_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "segment.h"

/* What one event says; stored in the ring as VRL_EVENT_WORDS words. */
struct vrl_alert_payload {
	uint64_t at_realtime_ns;     /* wall clock when it fired */
	uint64_t generation;         /* config generation the limit index belongs to */
	uint64_t period;             /* the caller's period id (quota: the period's number) */
	uint64_t used;               /* units used after the grant that crossed */
	uint64_t count;              /* the limit's count */
	uint32_t limit;              /* limit index */
	uint32_t threshold;          /* percent */
	char label[VRL_LABEL_MAX];   /* the key, as its slot shows it */
	char name[VRL_NAME_MAX];     /* the limit's name */
};

_Static_assert(sizeof(struct vrl_alert_payload) == VRL_EVENT_WORDS * 8,
	       "the payload fills the event's words exactly");

/* An event as read back, with the ticket that orders it. */
struct vrl_alert_event {
	uint64_t ticket;
	struct vrl_alert_payload p;
};

/*
 * Append one event (any producer). Returns its ticket. Lock-free: a fetch_add
 * and at most a few CASes on the entry.
 */
uint64_t vrl_alert_emit(const struct vrl_seg_view *v, const struct vrl_alert_payload *p);

/*
 * Copy text read from an event (written by any process of the segment's
 * group) into @dst of @cap bytes for a log value or an environment
 * variable: at most @srcmax bytes of @src, up to its first NUL, and every
 * byte outside printable ASCII, and each of " \ = $ ` ', becomes '?'. So a
 * key cannot end a log field or line, forge another variable, or reach a
 * terminal or a shell as an escape sequence or an expansion. Always
 * NUL-terminates (@cap > 0). The one filter for vrld's logs and its
 * alert_command's environment.
 */
void vrl_alert_text(char *dst, size_t cap, const char *src, size_t srcmax);

/* The consumer's private state between drains (vrld). */
struct vrl_alert_cursor {
	uint64_t stuck_ticket;       /* the unpublished entry being waited on */
	uint64_t stuck_since_ns;     /* monotonic ns it was first seen unpublished */
	int stuck;                   /* the two fields above are set */
};

/*
 * Read the next event for the single consumer (vrld) into @out, advancing
 * header.event_tail. An entry still unpublished @stuck_ns after it was
 * first seen is skipped and counted lost: its producer died or stalled
 * mid-write, and it must not wedge the ring. Returns 1 when @out holds an
 * event, 0 when there is none to read now.
 */
int vrl_alert_drain(const struct vrl_seg_view *v, struct vrl_alert_cursor *cur, uint64_t now_ns,
		    uint64_t stuck_ns, struct vrl_alert_event *out);

/*
 * Copy up to @max of the most recent published events into @out, oldest
 * first, without draining (vrlctl). Returns how many.
 */
size_t vrl_alert_recent(const struct vrl_seg_view *v, struct vrl_alert_event *out, size_t max);

#endif /* VRL_EVENTS_H */
