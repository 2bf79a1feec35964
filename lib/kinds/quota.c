/*
 * quota.c - calendar periods in UTC and the quota and slots decisions.
 *
 * Nothing here reads a clock or touches shared memory: client.c passes the
 * wall-clock time and does the compare-and-swap. See quota.h for the state
 * word.
 *
 * Dates are converted with Howard Hinnant's days_from_civil/civil_from_days
 * (proleptic Gregorian, exact for every year): integer arithmetic that
 * needs neither the process's time zone nor a libc call on the acquire path.
 */
#include "quota.h"

#include <errno.h>

int64_t vrl_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	*m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static unsigned month_days(int64_t y, unsigned m)
{
	static const unsigned days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/* The day of month @y-@m on which a period anchored at @anchor starts. */
static int64_t anchor_day(int64_t y, unsigned m, unsigned anchor)
{
	unsigned last = month_days(y, m);

	return vrl_days_from_civil(y, m, anchor < last ? anchor : last);
}

static void month_step(int64_t *y, unsigned *m, int dir)
{
	if (dir > 0 && ++*m > 12) {
		*m = 1;
		++*y;
	} else if (dir < 0 && --*m < 1) {
		*m = 12;
		--*y;
	}
}

static void month_period(unsigned anchor, int64_t day, uint64_t *id, int64_t *start,
			 int64_t *end)
{
	int64_t y, ny;
	unsigned m, d, nm;

	civil_from_days(day, &y, &m, &d);
	if (day < anchor_day(y, m, anchor))
		month_step(&y, &m, -1);
	ny = y;
	nm = m;
	month_step(&ny, &nm, +1);
	*start = anchor_day(y, m, anchor);
	*end = anchor_day(ny, nm, anchor);
	*id = y < 1970 ? 0 : (uint64_t)((y - 1970) * 12 + (m - 1));
}

static void week_period(unsigned anchor, int64_t day, uint64_t *id, int64_t *start,
			int64_t *end)
{
	/* 1970-01-01 was a Thursday (ISO weekday 4) */
	int64_t iso = (day + 3) % 7 + 1, first = ((int64_t)anchor - 4 + 7) % 7;

	*start = day - (iso - (int64_t)anchor + 7) % 7;
	*end = *start + 7;
	/* weeks since the week before the first anchor weekday of 1970: >= 0 */
	*id = (uint64_t)((*start - first + 7) / 7);
}

int vrl_quota_period(const struct vrl_seg_limit *l, uint64_t realtime_ns, uint64_t *id,
		     uint64_t *start_ns, uint64_t *end_ns)
{
	int64_t day = (int64_t)(realtime_ns / VRL_NS_PER_DAY), start, end;
	uint64_t pid;

	if (l->kind != VRL_KIND_QUOTA)
		return -EINVAL;
	switch (l->calendar) {
	case VRL_CAL_MONTH:
		if (l->anchor > 31)
			return -EINVAL;
		month_period(l->anchor ? l->anchor : 1, day, &pid, &start, &end);
		break;
	case VRL_CAL_WEEK:
		if (l->anchor > 7)
			return -EINVAL;
		week_period(l->anchor ? l->anchor : 1, day, &pid, &start, &end);
		break;
	case VRL_CAL_DAY:
		pid = (uint64_t)day;
		start = day;
		end = day + 1;
		break;
	case VRL_CAL_ONCE:
		if (id)
			*id = 0;
		if (start_ns)
			*start_ns = 0;
		if (end_ns)
			*end_ns = UINT64_MAX;
		return 0;
	default:
		return -EINVAL;
	}
	if (id)
		*id = pid;
	if (start_ns)
		*start_ns = start < 0 ? 0 : (uint64_t)start * VRL_NS_PER_DAY;
	if (end_ns)
		*end_ns = (uint64_t)end * VRL_NS_PER_DAY;
	return 0;
}

/* True when going from @before to @after units crosses an alert of @l. */
static bool crosses_alert(const struct vrl_seg_limit *l, uint64_t before, uint64_t after)
{
	for (uint32_t i = 0; i < l->nalerts && i < VRL_MAX_ALERTS; i++) {
		/* count <= 2^40 and pct < 2^32: no overflow */
		uint64_t at = (l->count * l->alert_pct[i] + 99) / 100;

		if (before < at && after >= at)
			return true;
	}
	return false;
}

struct vrl_quota_step vrl_quota_take(const struct vrl_seg_limit *l, uint64_t state, uint64_t id,
				     uint64_t cost)
{
	struct vrl_quota_step r = { .conforms = false };
	uint64_t used = vrl_quota_used(state, id), after;
	uint64_t pid = vrl_quota_word_period(state, id);
	uint64_t left = used < l->count ? l->count - used : 0;

	r.used = used;
	r.remaining = left;
	r.overage = used > l->count ? used - l->count : 0;
	if (cost > left && !(l->flags & VRL_LIMIT_SOFT))
		return r;
	if (__builtin_add_overflow(used, cost, &after) || after > VRL_QUOTA_USED_MAX)
		after = VRL_QUOTA_USED_MAX;
	/* only a soft quota counts past its count: at the ceiling, its overage
	 * stops growing with what it grants */
	r.saturated = after == VRL_QUOTA_USED_MAX && (l->flags & VRL_LIMIT_SOFT);
	r.conforms = true;
	r.new_state = vrl_quota_word(pid, after);
	r.used = after;
	r.remaining = after < l->count ? l->count - after : 0;
	r.overage = after > l->count ? after - l->count : 0;
	r.alert = crosses_alert(l, used, after);
	return r;
}

uint64_t vrl_quota_credit(uint64_t state, uint64_t id, uint64_t cost)
{
	uint64_t used = vrl_quota_word_used(state);

	if (vrl_quota_word_id(state) != id)
		return state;
	return vrl_quota_word(id, used > cost ? used - cost : 0);
}

uint64_t vrl_quota_reconcile(const struct vrl_seg_limit *l, uint64_t state, uint64_t id,
			     uint64_t server_remaining)
{
	uint64_t pid = vrl_quota_word_period(state, id);
	uint64_t floor;

	if (server_remaining >= l->count)
		return state;
	floor = l->count - server_remaining;
	if (vrl_quota_used(state, id) >= floor)
		return state;
	return vrl_quota_word(pid, floor);
}

struct vrl_quota_step vrl_slots_take(const struct vrl_seg_limit *l, uint64_t held,
				     uint64_t cost)
{
	struct vrl_quota_step r = { .conforms = false, .used = held };

	r.remaining = held < l->count ? l->count - held : 0;
	if (cost > r.remaining)
		return r;
	r.conforms = true;
	r.new_state = held + cost;
	r.used = held + cost;
	r.remaining -= cost;
	r.alert = crosses_alert(l, held, held + cost);
	return r;
}

int vrl_quota_transition(const struct vrl_seg_limit *l, uint64_t *from, uint64_t *to)
{
	struct vrl_seg_limit old = { .kind = VRL_KIND_QUOTA, .calendar = l->prev_calendar,
				     .anchor = l->prev_anchor };

	if (l->calendar_changed_rt == 0)
		return -ENOENT;
	if (vrl_quota_period(&old, l->calendar_changed_rt, from, NULL, NULL) != 0 ||
	    vrl_quota_period(l, l->calendar_changed_rt, to, NULL, NULL) != 0)
		return -EINVAL;
	return 0;
}
