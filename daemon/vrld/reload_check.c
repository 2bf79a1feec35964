/*
 * reload_check.c - what a reload may change in a segment vrld keeps, and
 * the reload itself (vrld's side, upkeep.h).
 *
 * Keys outlive a reload: a limit that keeps its name keeps its keys'
 * state, so a reload is refused when that state would be misread (a
 * window's rings moved, a kind changed under the same name) or would lose
 * what it counts (a quota's calendar moved back: kind_counted.h). Checks
 * use vrld's own copy of the config in force, never the segment's (the
 * trust argument of upkeep.c).
 */
#include "upkeep_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "kind_upkeep.h"

int vrl_seg_areas_match(const struct vrl_seg_config *now, const struct vrl_seg_config *next,
			char *why, size_t whylen)
{
	uint32_t n = now->nlimits > next->nlimits ? now->nlimits : next->nlimits;

	for (uint32_t i = 0; i < n && i < VRL_MAX_LIMITS; i++) {
		const struct vrl_seg_limit *a = &now->limits[i], *b = &next->limits[i];
		bool wa = i < now->nlimits && vrl_kind_has_area(a);
		bool wb = i < next->nlimits && vrl_kind_has_area(b);

		if (!wa && !wb)
			continue;
		if (wa && wb && strcmp(a->name, b->name) == 0 && a->count == b->count &&
		    a->area_keys == b->area_keys && a->area_off == b->area_off)
			continue;
		snprintf(why, whylen, "window limit %s (limit %u) changed its place, limit or "
			 "keys: its rings are laid out in the segment, so this needs a vrld "
			 "restart with a fresh segment (--replace)", wa ? a->name : b->name, i);
		return -EINVAL;
	}
	return 0;
}

/*
 * Keys outlive a reload: they are found by the name they were hashed from,
 * so a limit that keeps its name keeps its state. That state word means
 * something different for each kind (a TAT, a period and count, a count
 * held, a ring hint): a kind change under the same name would misread it.
 */
static int kinds_match(const struct vrl_seg_config *now, const struct vrl_seg_config *next,
		       char *why, size_t whylen)
{
	for (uint32_t i = 0; i < next->nlimits; i++)
		for (uint32_t j = 0; j < now->nlimits; j++) {
			const struct vrl_seg_limit *b = &next->limits[i], *a = &now->limits[j];

			if (strcmp(vrl_upkeep_key_identity(a), vrl_upkeep_key_identity(b)) != 0 ||
			    a->kind == b->kind)
				continue;
			snprintf(why, whylen, "limit %s changes kind from %s to %s under the same "
				 "name: its keys' state would be misread; give it a new name, or "
				 "restart vrld with a fresh segment (--replace)", b->name,
				 vrl_kind_name(a->kind), vrl_kind_name(b->kind));
			return -EINVAL;
		}
	return 0;
}

/* @ns (CLOCK_REALTIME) as a UTC date, YYYY-MM-DD. */
static void utc_date(uint64_t ns, char out[16])
{
	time_t t = (time_t)(ns / 1000000000u);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(out, 16, "%Y-%m-%d", &tm) == 0)
		snprintf(out, 16, "?");
}

/*
 * A quota key counts only its current period. A reload that changes a
 * quota's calendar or anchor carries that count into the new calendar's
 * period (quota.h), which is sound only when the new period began no
 * earlier than the old one: else units counted before, in the new period,
 * would be unknown to it. Such a reload is refused at @now_rt.
 */
static int calendars_match(const struct vrl_seg_config *now, const struct vrl_seg_config *next,
			   uint64_t now_rt, char *why, size_t whylen)
{
	for (uint32_t i = 0; i < next->nlimits && i < VRL_MAX_LIMITS; i++) {
		const struct vrl_seg_limit *b = &next->limits[i], *a;
		uint64_t a_start, b_start, b_end;
		char d1[16], d2[16], d3[16];

		if (!(a = vrl_upkeep_same_keys(now, b)) ||
		    !vrl_kind_reload_loses(a, b, now_rt, &b_start, &a_start, &b_end))
			continue;
		if (b_end == UINT64_MAX) {
			snprintf(why, whylen, "limit %s becomes a once quota: it would count every "
				 "unit since its keys began, but they hold only the current "
				 "period's count; give it a new name (fresh counts)", b->name);
			return -EINVAL;
		}
		utc_date(b_start, d1);
		utc_date(a_start, d2);
		utc_date(b_end, d3);
		snprintf(why, whylen, "limit %s changes its calendar or anchor: its period would "
			 "begin on %s, before the period its keys count from (%s), so the units "
			 "between would be unknown; apply it on or after %s, or give the limit a "
			 "new name (fresh counts)", b->name, d1, d2, d3);
		return -EINVAL;
	}
	return 0;
}

void vrl_upkeep_windows_resized(uint64_t need, uint64_t have, char *why, size_t whylen)
{
	snprintf(why, whylen, "the segment would need %llu bytes instead of %llu: a window "
		 "limit changed; restart vrld with a fresh segment (--replace)",
		 (unsigned long long)need, (unsigned long long)have);
}

/*
 * A reload keeps each limit's scope, and the segment keeps its share area
 * (present with a global limit, laid out at start). A limit that turned
 * global would count as global only once every worker has the new config,
 * its grants under the old one uncounted by the other hosts; one that
 * turned host would leave its lease to lapse unreleased. So either is a
 * restart, with a fresh segment; a new limit (a new name) may be global
 * when the segment has the area. A global quota keeps its calendar and
 * anchor: its periods are numbered alike on every host and in Redis.
 */
/* A global quota whose periods a reload would number anew: Redis's count
 * and the keys' block words (blocks.h) are of the old numbering. */
static bool global_calendar_moved(const struct vrl_seg_limit *a, const struct vrl_seg_limit *b)
{
	return a->kind == VRL_KIND_QUOTA && b->kind == VRL_KIND_QUOTA &&
	       (a->flags & b->flags & VRL_LIMIT_GLOBAL) &&
	       (a->calendar != b->calendar || a->anchor != b->anchor);
}

static int scopes_match(const struct vrl_seg *s, const struct vrl_seg_config *now,
			const struct vrl_seg_config *next, char *why, size_t whylen)
{
	bool want = vrl_upkeep_has_global(next);

	for (uint32_t i = 0; now && i < next->nlimits && i < VRL_MAX_LIMITS; i++) {
		const struct vrl_seg_limit *b = &next->limits[i];

		for (uint32_t j = 0; j < now->nlimits && j < VRL_MAX_LIMITS; j++) {
			const struct vrl_seg_limit *a = &now->limits[j];

			if (strcmp(a->name, b->name) == 0 && global_calendar_moved(a, b)) {
				snprintf(why, whylen, "limit %s: a global quota keeps its calendar "
					 "and anchor (every host and Redis count its periods so); "
					 "give the limit a new name (fresh counts)", b->name);
				return -EINVAL;
			}
			if (strcmp(a->name, b->name) != 0 ||
			    ((a->flags ^ b->flags) & VRL_LIMIT_GLOBAL) == 0)
				continue;
			snprintf(why, whylen, "limit %s: scope changed from %s to %s: a limit's "
				 "scope is set at start; restart vrld with a fresh segment "
				 "(--replace)", b->name, a->flags & VRL_LIMIT_GLOBAL ? "global" :
				 "host", b->flags & VRL_LIMIT_GLOBAL ? "global" : "host");
			return -EINVAL;
		}
	}
	if (want && !s->view.shares) {
		snprintf(why, whylen, "scope: global on a limit needs the segment's share area, "
			 "laid out at start when the config has a global limit; restart vrld "
			 "with a fresh segment (--replace)");
		return -EINVAL;
	}
	if (!want && s->view.shares) {
		snprintf(why, whylen, "the config has no global limit left: the segment's share "
			 "area is laid out at start; restart vrld with a fresh segment (--replace)");
		return -EINVAL;
	}
	return 0;
}

int vrl_seg_reload_check(const struct vrl_seg *s, const struct vrl_seg_config *cfg,
			 char *why, size_t whylen)
{
	struct vrl_seg_config *next = malloc(sizeof(*next));
	const struct vrl_seg_config *now;
	struct vrl_seg_geometry g;
	int rc;

	why[0] = '\0';
	if (!next)
		return -ENOMEM;
	*next = *cfg;
	rc = scopes_match(s, vrl_upkeep_in_force(s), next, why, whylen);
	if (rc == 0)
		rc = vrl_seg_geometry_cfg(s->view.keys, next, &g);
	if (rc == -EINVAL && why[0]) {
		/* said */
	} else if (rc) {
		snprintf(why, whylen, "cannot lay out the window rings: %s", strerror(-rc));
	} else if (g.size != s->view.size) {
		vrl_upkeep_windows_resized(g.size, s->view.size, why, whylen);
		rc = -EINVAL;
	} else if ((now = vrl_upkeep_in_force(s)) != NULL) {
		/* vrld's own copy of the config in force, not the segment's */
		rc = vrl_seg_areas_match(now, next, why, whylen);
		if (rc == 0)
			rc = kinds_match(now, next, why, whylen);
		if (rc == 0)
			rc = calendars_match(now, next, vrl_upkeep_realtime(), why, whylen);
	}
	free(next);
	return rc;
}

int vrl_seg_reload(struct vrl_seg *s, const struct vrl_seg_config *cfg, char *why, size_t whylen)
{
	struct vrl_seg_config *next = malloc(sizeof(*next));
	struct vrl_seg_geometry g;
	int rc;

	why[0] = '\0';
	if (!next)
		return -ENOMEM;
	rc = vrl_seg_reload_check(s, cfg, why, whylen);
	if (rc == 0) {
		/* the published copy carries where each window limit's rings are */
		*next = *cfg;
		vrl_seg_geometry_cfg(s->view.keys, next, &g);
		rc = vrl_seg_publish(s, next);
		if (rc) {
			snprintf(why, whylen, "out of memory");
		} else {
			vrl_seg_renote(s, 0, s->view.nslots);
			vrl_seg_settle(s, 0, s->view.nslots);
		}
	}
	free(next);
	return rc;
}

void vrl_seg_note_reload(struct vrl_seg_header *h, const char *error)
{
	uint64_t seq = atomic_load_explicit(&h->reload_seq, memory_order_relaxed);
	/* odd first; the release fence orders it before the block's stores */
	atomic_store_explicit(&h->reload_seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	h->reload_count++;
	if (error && error[0])
		h->reload_refused++;
	h->reload_realtime_ns = vrl_wall_ns();
	snprintf(h->reload_error, sizeof(h->reload_error), "%s", error ? error : "");
	/* SEG.L1 release: the block is complete before the sequence is even */
	atomic_store_explicit(&h->reload_seq, seq + 2, memory_order_release);
}
