/*
 * quota.h - calendar quotas and slot counts, as pure functions.
 *
 * A quota is N units per calendar period in UTC: a month from an anchor day
 * (1..31, clamped to the month's length, so 31 means Feb 28/29), a week from
 * an anchor weekday (1 Monday .. 7 Sunday), a day from 00:00, or `once`, a
 * trial allowance that never resets. Its whole state is one word:
 *
 *     state = period_id << 40 | used
 *
 * period_id is the index of the period since 1970 in the limit's calendar
 * (months, weeks or days; 0 for once), used the units counted in it. A hard
 * quota never counts past its count (at most 2^40 - 1, VRL_QUOTA_COUNT_MAX);
 * a soft one counts its overage on top and saturates at 2^40 - 1 units in
 * a period: from there its overage is understated, and every grant that
 * finds the count saturated says so (vrl_quota_step.saturated, the verdict
 * flag VRL_VERDICT_SATURATED). A word of an earlier period counts as used 0,
 * so a new period needs no reset: the first grant in it rewrites the word.
 * A word of a *later* period (the wall clock stepped back across a period
 * boundary) keeps its count and its period: a clock step never grants a
 * burst (DESIGN.md invariant 6). A word more than VRL_QUOTA_AHEAD_MAX
 * periods ahead is not a clock step but the word of another calendar (a
 * reload changed `calendar:` from day to month, whose ids are 30 times
 * smaller): it counts as 0, or the key would never reset again.
 *
 * A reload that changes the calendar or anchor (vrl_seg_limit.prev_calendar,
 * prev_anchor, calendar_changed_rt) carries the count of the period the old
 * calendar had at the reload into the period the new calendar had then,
 * while that period lasts (vrl_quota_carry). vrld accepts such a reload only
 * when the new period began no earlier than the old one (admin.c), so the
 * units it already holds were all counted in the old period's word: the new
 * period then counts at most max(count before, count after) units.
 *
 * Calendar periods are the only place vrl reads CLOCK_REALTIME; callers pass
 * it in, so tests drive it by hand.
 *
 * Slots: at most N held at once; the state word is the count held.
 */
#ifndef VRL_QUOTA_H
#define VRL_QUOTA_H

#include <stdbool.h>
#include <stdint.h>

#include "segment.h"

#define VRL_QUOTA_USED_BITS 40u
#define VRL_QUOTA_USED_MAX  ((UINT64_C(1) << VRL_QUOTA_USED_BITS) - 1) /* saturation */
#define VRL_QUOTA_COUNT_MAX VRL_QUOTA_USED_MAX   /* largest count a quota or slots limit may have */
#define VRL_NS_PER_DAY      (UINT64_C(86400) * 1000000000u)
#define VRL_QUOTA_AHEAD_MAX 2u     /* periods a word may be ahead of the clock and count */

static inline uint64_t vrl_quota_word(uint64_t id, uint64_t used)
{
	return id << VRL_QUOTA_USED_BITS | (used > VRL_QUOTA_USED_MAX ? VRL_QUOTA_USED_MAX : used);
}

static inline uint64_t vrl_quota_word_id(uint64_t state)
{
	return state >> VRL_QUOTA_USED_BITS;
}

static inline uint64_t vrl_quota_word_used(uint64_t state)
{
	return state & VRL_QUOTA_USED_MAX;
}

/*
 * The period of @l's calendar that contains the wall-clock time
 * @realtime_ns: its index since 1970 (@id), and its bounds [@start_ns,
 * @end_ns) in CLOCK_REALTIME ns. `once` gives id 0, start 0 and end
 * UINT64_MAX. Any output may be NULL. Returns 0, or -EINVAL for a limit
 * that is not a quota or has no valid calendar.
 */
int vrl_quota_period(const struct vrl_seg_limit *l, uint64_t realtime_ns, uint64_t *id,
		     uint64_t *start_ns, uint64_t *end_ns);

/* True when @state's count holds in period @id (see above). */
static inline bool vrl_quota_counts(uint64_t state, uint64_t id)
{
	uint64_t w = vrl_quota_word_id(state);

	return w >= id && w - id <= VRL_QUOTA_AHEAD_MAX;
}

/* Units counted against period @id by @state (0 for an earlier period). */
static inline uint64_t vrl_quota_used(uint64_t state, uint64_t id)
{
	return vrl_quota_counts(state, id) ? vrl_quota_word_used(state) : 0;
}

/* The period a grant in period @id writes into @state's word: its own
 * when it is ahead (a clock step back), else @id. */
static inline uint64_t vrl_quota_word_period(uint64_t state, uint64_t id)
{
	return vrl_quota_counts(state, id) ? vrl_quota_word_id(state) : id;
}

/*
 * One word that counts both @a and @b, two counts of the same key (vrld's
 * checkpoint restoring into a segment where workers counted meanwhile):
 * the units of one period add up, saturating at VRL_QUOTA_USED_MAX within
 * that period; of two periods, the later word stands.
 */
static inline uint64_t vrl_quota_merge(uint64_t a, uint64_t b)
{
	uint64_t ia = vrl_quota_word_id(a), ib = vrl_quota_word_id(b);

	if (ia != ib)
		return ia > ib ? a : b;
	/* both below 2^40: the sum fits; vrl_quota_word() saturates it */
	return vrl_quota_word(ia, vrl_quota_word_used(a) + vrl_quota_word_used(b));
}

/*
 * The period ids of @l's calendar change, if a reload recorded one: @from,
 * the period the old calendar had at the reload, and @to, the new one's.
 * Returns 0, -ENOENT when none is recorded, -EINVAL when the record is not
 * a valid calendar.
 */
int vrl_quota_transition(const struct vrl_seg_limit *l, uint64_t *from, uint64_t *to);

/*
 * @state as the current calendar reads it in period @id: a word of the old
 * calendar's period @from counts in @to while @id is @to; any other word is
 * left as it is. (@from, @to) from vrl_quota_transition().
 */
static inline uint64_t vrl_quota_carry(uint64_t state, uint64_t from, uint64_t to, uint64_t id)
{
	if (id != to || from == to || vrl_quota_word_id(state) != from)
		return state;
	return vrl_quota_word(to, vrl_quota_word_used(state));
}

/* The outcome of one quota or slots decision. */
struct vrl_quota_step {
	bool conforms;
	bool alert;             /* the grant crossed one of the limit's alert thresholds */
	bool saturated;         /* soft quota: the count is at 2^40 - 1, overage understated */
	uint64_t new_state;     /* the state word to store when it conforms */
	uint64_t used;          /* units counted after it (or now, when denied) */
	uint64_t remaining;     /* units left after it (or now, when denied) */
	uint64_t overage;       /* soft quota: units past the limit after it */
};

/*
 * Take @cost units of quota @l in period @id from @state. A hard quota
 * denies a cost that does not fit in what remains, whole; a soft one
 * (VRL_LIMIT_SOFT) grants it and counts the overage.
 */
struct vrl_quota_step vrl_quota_take(const struct vrl_seg_limit *l, uint64_t state, uint64_t id,
				     uint64_t cost);

/*
 * Give back @cost units in period @id: the new state word. Never below 0;
 * a word of another period is left as it is (a refund of last month's unit
 * credits nothing).
 */
uint64_t vrl_quota_credit(uint64_t state, uint64_t id, uint64_t cost);

/*
 * Move @state so that at most @server_remaining units of @l remain in
 * period @id: used becomes max(used, count - server_remaining). Never
 * lowers used.
 */
uint64_t vrl_quota_reconcile(const struct vrl_seg_limit *l, uint64_t state, uint64_t id,
			     uint64_t server_remaining);

/* Take @cost of slots limit @l from @held (the count held). */
struct vrl_quota_step vrl_slots_take(const struct vrl_seg_limit *l, uint64_t held,
				     uint64_t cost);

/* Give back @cost slots: never below 0. */
static inline uint64_t vrl_slots_release(uint64_t held, uint64_t cost)
{
	return held > cost ? held - cost : 0;
}

/* Days since 1970-01-01 of the civil date @y-@m-@d (proleptic Gregorian). */
int64_t vrl_days_from_civil(int64_t y, unsigned m, unsigned d);

#endif /* VRL_QUOTA_H */
