/*
 * test_quota.c - calendar periods and counts as pure functions (times passed
 * by hand), then quota, slots, pools, overrides, release, refund, reconcile,
 * holder records and the sweep through the library, on a wall clock the
 * test sets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"
#include "client.h"   /* white box: vrl__reconcile */
#include "quota.h"

#define NS_PER_DAY (86400 * NS_PER_S)

/* CLOCK_REALTIME ns of a UTC date and time, by libc (independent of quota.c). */
static uint64_t utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			 .tm_hour = h, .tm_min = mi, .tm_sec = s };

	return (uint64_t)timegm(&tm) * NS_PER_S;
}

static struct vrl_seg_limit quota(uint32_t calendar, uint32_t anchor, uint64_t count,
				  uint32_t flags)
{
	struct vrl_seg_limit l = { .kind = VRL_KIND_QUOTA, .calendar = calendar,
				   .anchor = anchor, .count = count, .flags = flags };

	return l;
}

/* The period of @l at @t must be [@start, @end). Returns its id. */
static uint64_t expect_period(const struct vrl_seg_limit *l, uint64_t t, uint64_t start,
			      uint64_t end)
{
	uint64_t id, s, e;

	assert_int_equal(vrl_quota_period(l, t, &id, &s, &e), 0);
	assert_int_equal(s, start);
	assert_int_equal(e, end);
	return id;
}

/* ---- calendar periods --------------------------------------------------------- */

static void month_ends_at_the_first(void **state)
{
	struct vrl_seg_limit l = quota(VRL_CAL_MONTH, 0, 10, 0);
	uint64_t jan, feb, dec, jan27;

	(void)state;
	jan = expect_period(&l, utc(2026, 1, 31, 23, 59, 59), utc(2026, 1, 1, 0, 0, 0),
			    utc(2026, 2, 1, 0, 0, 0));
	feb = expect_period(&l, utc(2026, 2, 1, 0, 0, 0), utc(2026, 2, 1, 0, 0, 0),
			    utc(2026, 3, 1, 0, 0, 0));
	assert_int_equal(jan, (2026 - 1970) * 12);
	assert_int_equal(feb, jan + 1);
	dec = expect_period(&l, utc(2026, 12, 31, 12, 0, 0), utc(2026, 12, 1, 0, 0, 0),
			    utc(2027, 1, 1, 0, 0, 0));
	jan27 = expect_period(&l, utc(2027, 1, 1, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0),
			      utc(2027, 2, 1, 0, 0, 0));
	assert_int_equal(jan27, dec + 1);
}

static void leap_day_2028(void **state)
{
	struct vrl_seg_limit l = quota(VRL_CAL_MONTH, 1, 10, 0);
	struct vrl_seg_limit d = quota(VRL_CAL_DAY, 0, 10, 0);
	uint64_t a, b;

	(void)state;
	expect_period(&l, utc(2028, 2, 29, 12, 0, 0), utc(2028, 2, 1, 0, 0, 0),
		      utc(2028, 3, 1, 0, 0, 0));
	a = expect_period(&d, utc(2028, 2, 29, 23, 59, 59), utc(2028, 2, 29, 0, 0, 0),
			  utc(2028, 3, 1, 0, 0, 0));
	b = expect_period(&d, utc(2028, 3, 1, 0, 0, 0), utc(2028, 3, 1, 0, 0, 0),
			  utc(2028, 3, 2, 0, 0, 0));
	assert_int_equal(b, a + 1);
	assert_int_equal(a, utc(2028, 2, 29, 0, 0, 0) / NS_PER_DAY);
}

/* Anchor 31: the period starts on the month's last day when it is shorter. */
static void anchor_31_in_february(void **state)
{
	struct vrl_seg_limit l = quota(VRL_CAL_MONTH, 31, 10, 0);
	uint64_t a, b, c;

	(void)state;
	a = expect_period(&l, utc(2028, 2, 28, 23, 0, 0), utc(2028, 1, 31, 0, 0, 0),
			  utc(2028, 2, 29, 0, 0, 0));
	b = expect_period(&l, utc(2028, 2, 29, 0, 0, 0), utc(2028, 2, 29, 0, 0, 0),
			  utc(2028, 3, 31, 0, 0, 0));
	assert_int_equal(b, a + 1);
	expect_period(&l, utc(2027, 2, 28, 0, 0, 0), utc(2027, 2, 28, 0, 0, 0),
		      utc(2027, 3, 31, 0, 0, 0));
	c = expect_period(&l, utc(2027, 4, 30, 8, 0, 0), utc(2027, 4, 30, 0, 0, 0),
			  utc(2027, 5, 31, 0, 0, 0));
	assert_true(c > b - 13);
}

static void anchor_15(void **state)
{
	struct vrl_seg_limit l = quota(VRL_CAL_MONTH, 15, 10, 0);
	uint64_t a, b, c, d;

	(void)state;
	a = expect_period(&l, utc(2026, 3, 14, 23, 59, 59), utc(2026, 2, 15, 0, 0, 0),
			  utc(2026, 3, 15, 0, 0, 0));
	b = expect_period(&l, utc(2026, 3, 15, 0, 0, 0), utc(2026, 3, 15, 0, 0, 0),
			  utc(2026, 4, 15, 0, 0, 0));
	assert_int_equal(b, a + 1);
	c = expect_period(&l, utc(2026, 12, 20, 0, 0, 0), utc(2026, 12, 15, 0, 0, 0),
			  utc(2027, 1, 15, 0, 0, 0));
	d = expect_period(&l, utc(2027, 1, 10, 0, 0, 0), utc(2026, 12, 15, 0, 0, 0),
			  utc(2027, 1, 15, 0, 0, 0));
	assert_int_equal(c, d);
}

/* 2026-11-23 is a Monday. */
static void week_boundaries(void **state)
{
	struct vrl_seg_limit mon = quota(VRL_CAL_WEEK, 1, 10, 0);
	struct vrl_seg_limit sun = quota(VRL_CAL_WEEK, 7, 10, 0);
	struct vrl_seg_limit dflt = quota(VRL_CAL_WEEK, 0, 10, 0);
	uint64_t a, b;

	(void)state;
	a = expect_period(&mon, utc(2026, 11, 22, 23, 59, 59), utc(2026, 11, 16, 0, 0, 0),
			  utc(2026, 11, 23, 0, 0, 0));
	b = expect_period(&mon, utc(2026, 11, 23, 0, 0, 0), utc(2026, 11, 23, 0, 0, 0),
			  utc(2026, 11, 30, 0, 0, 0));
	assert_int_equal(b, a + 1);
	expect_period(&dflt, utc(2026, 11, 25, 0, 0, 0), utc(2026, 11, 23, 0, 0, 0),
		      utc(2026, 11, 30, 0, 0, 0));
	expect_period(&sun, utc(2026, 11, 22, 0, 0, 0), utc(2026, 11, 22, 0, 0, 0),
		      utc(2026, 11, 29, 0, 0, 0));
	expect_period(&sun, utc(2026, 11, 21, 23, 0, 0), utc(2026, 11, 15, 0, 0, 0),
		      utc(2026, 11, 22, 0, 0, 0));
	/* a week across a year end */
	expect_period(&mon, utc(2027, 1, 1, 0, 0, 0), utc(2026, 12, 28, 0, 0, 0),
		      utc(2027, 1, 4, 0, 0, 0));
	/* the first week of 1970 starts before the epoch: clamped, id 0 */
	expect_period(&mon, 0, 0, utc(1970, 1, 5, 0, 0, 0));
}

static void day_and_once(void **state)
{
	struct vrl_seg_limit d = quota(VRL_CAL_DAY, 0, 10, 0);
	struct vrl_seg_limit o = quota(VRL_CAL_ONCE, 0, 10, 0);
	struct vrl_seg_limit bad = quota(VRL_CAL_MONTH, 32, 10, 0);
	uint64_t id = 7;

	(void)state;
	expect_period(&d, utc(2026, 11, 23, 10, 0, 0), utc(2026, 11, 23, 0, 0, 0),
		      utc(2026, 11, 24, 0, 0, 0));
	assert_int_equal(expect_period(&o, utc(2026, 11, 23, 10, 0, 0), 0, UINT64_MAX), 0);
	assert_int_equal(vrl_quota_period(&bad, 0, &id, NULL, NULL), -EINVAL);
	bad = quota(0, 0, 10, 0);
	assert_int_equal(vrl_quota_period(&bad, 0, &id, NULL, NULL), -EINVAL);
}

/* ---- the count ---------------------------------------------------------------- */

static void hard_quota_denies_whole(void **state)
{
	struct vrl_seg_limit l = quota(VRL_CAL_MONTH, 0, 10, 0);
	uint64_t st = vrl_quota_word(5, 8);
	struct vrl_quota_step r;

	(void)state;
	r = vrl_quota_take(&l, st, 5, 3);
	assert_false(r.conforms);
	assert_int_equal(r.remaining, 2);
	assert_int_equal(r.used, 8);
	r = vrl_quota_take(&l, st, 5, 2);
	assert_true(r.conforms);
	assert_int_equal(r.new_state, vrl_quota_word(5, 10));
	assert_int_equal(r.remaining, 0);
	assert_int_equal(r.overage, 0);
	/* a word of an earlier period counts as 0 */
	r = vrl_quota_take(&l, vrl_quota_word(4, 10), 5, 10);
	assert_true(r.conforms);
	assert_int_equal(r.new_state, vrl_quota_word(5, 10));
	/* a later one (the clock stepped back) keeps its count and period */
	r = vrl_quota_take(&l, vrl_quota_word(6, 9), 5, 2);
	assert_false(r.conforms);
	r = vrl_quota_take(&l, vrl_quota_word(6, 9), 5, 1);
	assert_true(r.conforms);
	assert_int_equal(r.new_state, vrl_quota_word(6, 10));
	/* far ahead: another calendar's word (day ids after month ids), not a step */
	r = vrl_quota_take(&l, vrl_quota_word(20000, 10), 5, 10);
	assert_true(r.conforms);
	assert_int_equal(r.new_state, vrl_quota_word(5, 10));
	/* more than the whole count */
	assert_false(vrl_quota_take(&l, 0, 5, 11).conforms);
}

static void soft_quota_counts_overage(void **state)
{
	struct vrl_seg_limit l = quota(VRL_CAL_MONTH, 0, 10, VRL_LIMIT_SOFT);
	struct vrl_quota_step r;

	(void)state;
	r = vrl_quota_take(&l, vrl_quota_word(5, 8), 5, 5);
	assert_true(r.conforms);
	assert_int_equal(r.used, 13);
	assert_int_equal(r.overage, 3);
	assert_int_equal(r.remaining, 0);
	/* saturates rather than wrapping */
	r = vrl_quota_take(&l, vrl_quota_word(5, VRL_QUOTA_USED_MAX - 1), 5, 10);
	assert_true(r.conforms);
	assert_int_equal(vrl_quota_word_used(r.new_state), VRL_QUOTA_USED_MAX);
	assert_int_equal(vrl_quota_word_id(r.new_state), 5);
}

static void alerts_fire_once_each(void **state)
{
	struct vrl_seg_limit l = quota(VRL_CAL_MONTH, 0, 10, VRL_LIMIT_SOFT);
	unsigned fired = 0;

	(void)state;
	l.nalerts = 3;
	l.alert_pct[0] = 80;
	l.alert_pct[1] = 90;
	l.alert_pct[2] = 100;
	for (uint64_t used = 0; used < 12; used++)
		fired += vrl_quota_take(&l, vrl_quota_word(1, used), 1, 1).alert;
	assert_int_equal(fired, 3);
	/* one grant over two thresholds is one alert */
	assert_true(vrl_quota_take(&l, vrl_quota_word(1, 7), 1, 3).alert);
}

static void credit_and_reconcile(void **state)
{
	struct vrl_seg_limit l = quota(VRL_CAL_MONTH, 0, 100, 0);

	(void)state;
	assert_int_equal(vrl_quota_credit(vrl_quota_word(3, 10), 3, 4), vrl_quota_word(3, 6));
	assert_int_equal(vrl_quota_credit(vrl_quota_word(3, 2), 3, 4), vrl_quota_word(3, 0));
	/* only within the current period */
	assert_int_equal(vrl_quota_credit(vrl_quota_word(2, 10), 3, 4), vrl_quota_word(2, 10));
	/* the server has 50 left: at least 50 used */
	assert_int_equal(vrl_quota_reconcile(&l, vrl_quota_word(3, 10), 3, 50),
			 vrl_quota_word(3, 50));
	/* never raises what remains */
	assert_int_equal(vrl_quota_reconcile(&l, vrl_quota_word(3, 10), 3, 95),
			 vrl_quota_word(3, 10));
	assert_int_equal(vrl_quota_reconcile(&l, vrl_quota_word(3, 10), 3, 500),
			 vrl_quota_word(3, 10));
	/* last period's word: the floor applies to the current one */
	assert_int_equal(vrl_quota_reconcile(&l, vrl_quota_word(2, 99), 3, 0),
			 vrl_quota_word(3, 100));
}

static void slots_count(void **state)
{
	struct vrl_seg_limit l = { .kind = VRL_KIND_SLOTS, .count = 3 };
	struct vrl_quota_step r;

	(void)state;
	r = vrl_slots_take(&l, 2, 1);
	assert_true(r.conforms);
	assert_int_equal(r.new_state, 3);
	assert_int_equal(r.remaining, 0);
	r = vrl_slots_take(&l, 2, 2);
	assert_false(r.conforms);
	assert_int_equal(r.remaining, 1);
	assert_false(vrl_slots_take(&l, 0, 4).conforms);
	assert_int_equal(vrl_slots_release(2, 5), 0);
	assert_int_equal(vrl_slots_release(5, 2), 3);
}

/* ---- through the library ------------------------------------------------------ */

static uint64_t fake_rt;

static uint64_t fake_clock(void)
{
	return fake_rt;
}

struct fixture {
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];
	vrl_client *c;
	struct vrl_seg_config cfg;
};

enum { L_MONTH, L_SOFT, L_ONCE, L_SLOTS, L_PERSIST, L_RATE, L_POOL_A, L_POOL_B, L_TESLA, L_VEH };

/*
 * month: 10 per vehicle per month on api "m"; soft: the same with overage
 * on api "s"; once: 3 per user, never reset, on api "o"; slots: 2 held per
 * org on api "slot", persist: 2 persistent on api "conn"; rate: 10/h bucket
 * 10 per token on api "m" (no refill while a test runs); a pool of 5 per month shared by endpoints a and
 * b of api "pool"; an override group on api "veh": tesla 1 at once, others 3.
 */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct vrl_seg_limit *l;

	fake_rt = utc(2026, 6, 30, 23, 59, 0);
	vrl__realtime_ns = fake_clock;
	test_add_quota(&f->cfg, "month", "m", 10, VRL_CAL_MONTH, 1, 0,
		       (int[]){ VRL_FIELD_VEHICLE, -1 });
	test_add_quota(&f->cfg, "soft", "s", 10, VRL_CAL_MONTH, 1, VRL_LIMIT_SOFT,
		       (int[]){ VRL_FIELD_VEHICLE, -1 });
	test_add_quota(&f->cfg, "once", "o", 3, VRL_CAL_ONCE, 0, 0, (int[]){ VRL_FIELD_USER, -1 });
	test_add_slots(&f->cfg, "slots", "slot", 2, 0, (int[]){ VRL_FIELD_ORG, -1 });
	test_add_slots(&f->cfg, "persist", "conn", 2, VRL_LIMIT_PERSIST, NULL);
	test_add_rate(&f->cfg, "rate", "m", 10, 3600 * NS_PER_S, 10,
		      (int[]){ VRL_FIELD_TOKEN, -1 });
	for (int i = 0; i < 2; i++) {
		l = test_add_quota(&f->cfg, i ? "pool.b" : "pool.a", "pool", 5, VRL_CAL_MONTH, 1, 0,
				   NULL);
		strcpy(l->pool, "shared");
		l->match[1].ref.field = VRL_FIELD_ENDPOINT;
		strcpy(l->match[1].pattern, i ? "b" : "a");
		l->nmatch = 2;
	}
	l = test_add_rate(&f->cfg, "veh[make=tesla]", "veh", 1, 3600 * NS_PER_S, 1,
			  (int[]){ VRL_FIELD_VEHICLE, -1 });
	l->group = 1;
	l->match[1].ref.field = VRL_FIELD_ATTR;
	strcpy(l->match[1].ref.attr, "make");
	strcpy(l->match[1].pattern, "tesla");
	l->nmatch = 2;
	l = test_add_rate(&f->cfg, "veh", "veh", 1, 3600 * NS_PER_S, 3,
			  (int[]){ VRL_FIELD_VEHICLE, -1 });
	l->group = 1;
	test_segment("quota", &f->cfg, 1000, &f->seg, f->name);
	f->c = test_open(f->name);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vrl_close(f->c);
	test_segment_drop(&f->seg, f->name);
	free(f);
	return 0;
}

/* The state word of @limit's key for @req, or UINT64_MAX when it has none. */
static uint64_t key_state(struct fixture *f, int limit, const struct vrl_request *req)
{
	const struct vrl_limit *l = &vrl__config(f->c)->limits[limit];
	struct vrl_key k;
	char label[VRL_LABEL_MAX];
	uint64_t idx;

	vrl_limit_key(l, req, &k, label);
	if (vrl_kt_find(&f->seg.view, &k, &idx) != 0)
		return UINT64_MAX;
	return atomic_load(&f->seg.view.slots[idx].state);
}

static void quota_denial_consumes_nothing(void **state)
{
	struct fixture *f = *state;
	struct vrl_request r = { .api = "m", .vehicle = "V1", .token = "T", .cost = 8 };
	struct vrl_verdict v;
	uint64_t before;

	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_int_equal(v.matched, 2);
	assert_int_equal(v.kind, VRL_QUOTA);
	assert_string_equal(v.limit_name, "month");
	assert_int_equal(v.remaining, 2);
	assert_int_equal(v.limit_value, 10);
	assert_int_equal(v.cost, 8);
	assert_int_equal(v.reset_ns, 60 * NS_PER_S);
	before = key_state(f, L_MONTH, &r);
	r.cost = 3;
	assert_int_equal(vrl_acquire(f->c, &r, &v), VRL_EDENIED);
	assert_int_equal(v.kind, VRL_QUOTA);
	assert_int_equal(v.remaining, 2);
	assert_int_equal(v.cost, 3);
	assert_int_equal(v.retry_after_ns, 60 * NS_PER_S);   /* to July 1st */
	assert_int_equal(key_state(f, L_MONTH, &r), before);
	/* nor on the rate it was stacked with: 8 taken, 2 left there */
	r.cost = 2;
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_string_equal(v.limit_name, "month");
	assert_int_equal(v.remaining, 0);
	r.cost = 1;
	assert_int_equal(vrl_acquire(f->c, &r, &v), VRL_EDENIED);
	/* a new month: the count starts over without a reset (the rate it
	 * is stacked with is reset: it refills in hours) */
	fake_rt = utc(2026, 7, 1, 0, 0, 0);
	assert_int_equal(vrl_reset(f->c, &r, "rate"), 0);
	r.cost = 10;
	assert_int_equal(vrl_acquire_wait(f->c, &r, 2 * NS_PER_S, &v), 0);
	assert_int_equal(v.remaining, 0);
	/* a waiting acquire is denied at once: no wait frees a quota */
	r.cost = 1;
	assert_int_equal(vrl_acquire_wait(f->c, &r, 3600 * NS_PER_S, &v), VRL_EDENIED);
	/* more than the whole quota: never */
	r.vehicle = "V2";
	r.cost = 11;
	assert_int_equal(vrl_acquire(f->c, &r, &v), VRL_EDENIED);
	assert_int_equal(v.retry_after_ns, VRL_NEVER);
}

static void soft_quota_grants_and_flags(void **state)
{
	struct fixture *f = *state;
	struct vrl_request r = { .api = "s", .vehicle = "V1", .cost = 9 };
	struct vrl_verdict v;

	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_false(v.flags & VRL_VERDICT_OVERAGE);
	r.cost = 3;
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_true(v.flags & VRL_VERDICT_OVERAGE);
	assert_int_equal(v.overage, 2);
	assert_int_equal(v.remaining, 0);
	assert_int_equal(vrl_quota_word_used(key_state(f, L_SOFT, &r)), 12);
}

static void once_never_resets(void **state)
{
	struct fixture *f = *state;
	struct vrl_request r = { .api = "o", .user = "U", .cost = 3 };
	struct vrl_verdict v;

	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_int_equal(v.reset_ns, VRL_NEVER);
	fake_rt = utc(2031, 1, 1, 0, 0, 0);
	r.cost = 1;
	assert_int_equal(vrl_acquire(f->c, &r, &v), VRL_EDENIED);
	assert_int_equal(v.retry_after_ns, VRL_NEVER);
	/* the sweep keeps it, however long idle */
	vrl_seg_sweep_at(&f->seg, 0, f->seg.view.nslots, vrl_now_ns() + 400 * NS_PER_DAY,
			 fake_rt, 0);
	assert_int_equal(key_state(f, L_ONCE, &r), vrl_quota_word(0, 3));
	/* a refund gives a unit back */
	assert_int_equal(vrl_refund(f->c, &r, NULL, 1), 0);
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
}

static void refund_quota_and_rate(void **state)
{
	struct fixture *f = *state;
	struct vrl_request r = { .api = "m", .vehicle = "V1", .token = "T", .cost = 10 };
	struct vrl_verdict v;
	uint64_t tat;

	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_int_equal(vrl_refund(f->c, &r, NULL, 4), 0);
	assert_int_equal(vrl_quota_word_used(key_state(f, L_MONTH, &r)), 6);
	/* the rate got 4 permits back too: its TAT moved back by 4 T */
	tat = key_state(f, L_RATE, &r);
	assert_true(tat <= vrl_now_ns() + 6 * (3600 * NS_PER_S / 10));
	/* never below 0, never past a full bucket */
	assert_int_equal(vrl_refund(f->c, &r, "month", 100), 0);
	assert_int_equal(vrl_quota_word_used(key_state(f, L_MONTH, &r)), 0);
	assert_int_equal(vrl_refund(f->c, &r, "rate", 100), 0);
	assert_true(key_state(f, L_RATE, &r) <= vrl_now_ns());
	r.cost = 10;
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	r.cost = 1;
	assert_int_equal(vrl_acquire(f->c, &r, &v), VRL_EDENIED);
	/* only within the current period: last month's units stay spent */
	fake_rt = utc(2026, 7, 2, 0, 0, 0);
	assert_int_equal(vrl_refund(f->c, &r, "month", 5), 0);
	assert_int_equal(vrl_quota_word_used(key_state(f, L_MONTH, &r)), 10);
	/* slots and gates are not refunded: release is for slots */
	r.api = "slot";
	assert_int_equal(vrl_refund(f->c, &r, NULL, 1), VRL_ENOLIMIT);
	r.api = "m";
	r.vehicle = "nobody";
	r.token = "nobody";
	assert_int_equal(vrl_refund(f->c, &r, NULL, 1), VRL_ENOKEY);
}

static void reconcile_moves_toward_the_server(void **state)
{
	struct fixture *f = *state;
	struct vrl_request r = { .api = "m", .vehicle = "V1", .token = "T", .cost = 1 };
	struct vrl_verdict v;

	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	/* the server says 4 of 10 remain: local used goes to 6 */
	assert_int_equal(vrl__reconcile(f->c, &r, "month", 10, 4), 0);
	assert_int_equal(vrl_quota_word_used(key_state(f, L_MONTH, &r)), 6);
	/* never raises remaining */
	assert_int_equal(vrl__reconcile(f->c, &r, "month", 10, 9), 0);
	assert_int_equal(vrl_quota_word_used(key_state(f, L_MONTH, &r)), 6);
	/* a rate with 2 left: TAT at least now + 8 T, so 2 more and no third */
	assert_int_equal(vrl__reconcile(f->c, &r, "rate", 10, 2), 0);
	r.api = "m";
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_int_equal(vrl_acquire(f->c, &r, &v), VRL_EDENIED);
	assert_string_equal(v.limit_name, "rate");
	/* a key never seen is inserted with the server's figure */
	r.vehicle = "fresh";
	assert_int_equal(vrl__reconcile(f->c, &r, "month", 10, 0), 0);
	assert_int_equal(vrl_acquire(f->c, &r, &v), VRL_EDENIED);
	assert_string_equal(v.limit_name, "month");
}

static void slots_release(void **state)
{
	struct fixture *f = *state;
	struct vrl_request r = { .api = "slot", .org = "O" };
	struct vrl_verdict v;

	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_int_equal(v.kind, VRL_SLOTS);
	assert_int_equal(v.remaining, 0);
	assert_int_equal(v.limit_value, 2);
	assert_int_equal(vrl_acquire(f->c, &r, &v), VRL_EDENIED);
	assert_int_equal(v.retry_after_ns, 0);
	assert_int_equal(vrl_release(f->c, &r, NULL, 1), 0);
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	/* never below zero */
	assert_int_equal(vrl_release(f->c, &r, "slots", 5), 0);
	assert_int_equal(key_state(f, L_SLOTS, &r), 0);
	/* only slots limits are released */
	r.api = "m";
	assert_int_equal(vrl_release(f->c, &r, NULL, 1), VRL_ENOLIMIT);
	/* a slots key with nothing held is swept; one with units held never */
	r.api = "slot";
	r.org = "P";
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	vrl_seg_sweep_at(&f->seg, 0, f->seg.view.nslots, vrl_now_ns() + 400 * NS_PER_DAY,
			 fake_rt, 0);
	assert_int_equal(key_state(f, L_SLOTS, &r), 1);
	r.org = "O";
	assert_int_equal(key_state(f, L_SLOTS, &r), UINT64_MAX);
}

/* A child that dies holding process slots: vrld's reaping gives them back;
 * persistent ones stay. vrl_close() gives back its own. */
static void dead_holder_slots_reaped(void **state)
{
	struct fixture *f = *state;
	struct vrl_request r = { .api = "slot", .org = "O", .cost = 2 };
	struct vrl_request p = { .api = "conn" };
	pid_t pid;
	int st;
	vrl_client *c2;

	pid = fork();
	if (pid == 0)
		_exit(vrl_acquire(f->c, &r, NULL) == 0 && vrl_acquire(f->c, &p, NULL) == 0 ?
		      0 : 1);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(key_state(f, L_SLOTS, &r), 2);
	assert_int_equal(key_state(f, L_PERSIST, &p), 1);
	assert_int_equal(vrl_acquire(f->c, &r, NULL), VRL_EDENIED);
	assert_int_equal(vrl_seg_reap_holders(&f->seg), 1);
	assert_int_equal(key_state(f, L_SLOTS, &r), 0);
	assert_int_equal(key_state(f, L_PERSIST, &p), 1);
	/* a second reap finds nothing to give twice */
	assert_int_equal(vrl_seg_reap_holders(&f->seg), 0);
	/* a closed handle gives back what it held */
	c2 = test_open(f->name);
	r.cost = 1;
	assert_int_equal(vrl_acquire(c2, &r, NULL), 0);
	assert_int_equal(vrl_acquire(c2, &r, NULL), 0);
	assert_int_equal(vrl_release(c2, &r, NULL, 1), 0);
	assert_int_equal(key_state(f, L_SLOTS, &r), 1);
	vrl_close(c2);
	assert_int_equal(key_state(f, L_SLOTS, &r), 0);
}

static void pool_shares_one_counter(void **state)
{
	struct fixture *f = *state;
	struct vrl_request a = { .api = "pool", .endpoint = "a", .cost = 3 };
	struct vrl_request b = { .api = "pool", .endpoint = "b", .cost = 2 };
	struct vrl_verdict v;

	assert_int_equal(vrl_acquire(f->c, &a, &v), 0);
	assert_int_equal(vrl_acquire(f->c, &b, &v), 0);
	assert_int_equal(v.remaining, 0);
	a.cost = b.cost = 1;
	assert_int_equal(vrl_acquire(f->c, &a, &v), VRL_EDENIED);
	assert_int_equal(vrl_acquire(f->c, &b, &v), VRL_EDENIED);
	assert_int_equal(key_state(f, L_POOL_A, &a), key_state(f, L_POOL_B, &b));
}

static void override_takes_first_member(void **state)
{
	struct fixture *f = *state;
	struct vrl_attr tesla[] = { { "make", "tesla" } }, ford[] = { { "make", "ford" } };
	struct vrl_request t = { .api = "veh", .vehicle = "V", .attrs = tesla, .nattrs = 1 };
	struct vrl_request o = { .api = "veh", .vehicle = "V", .attrs = ford, .nattrs = 1 };
	struct vrl_verdict v;

	assert_int_equal(vrl_acquire(f->c, &t, &v), 0);
	assert_int_equal(v.matched, 1);
	assert_string_equal(v.limit_name, "veh[make=tesla]");
	assert_int_equal(vrl_acquire(f->c, &t, &v), VRL_EDENIED);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(vrl_acquire(f->c, &o, &v), 0);
		assert_int_equal(v.matched, 1);
		assert_string_equal(v.limit_name, "veh");
	}
	assert_int_equal(vrl_acquire(f->c, &o, &v), VRL_EDENIED);
	/* operations pick the same member */
	assert_int_equal(vrl_reset(f->c, &t, NULL), 0);
	assert_int_equal(vrl_acquire(f->c, &t, &v), 0);
	assert_int_equal(vrl_acquire(f->c, &o, &v), VRL_EDENIED);
}

/* A quota key is swept only once its period is over (or nothing is used). */
static void sweep_keeps_quota_within_its_period(void **state)
{
	struct fixture *f = *state;
	struct vrl_request r = { .api = "m", .vehicle = "V1", .token = "T" };
	uint64_t far = vrl_now_ns() + 400 * NS_PER_DAY;

	assert_int_equal(vrl_acquire(f->c, &r, NULL), 0);
	vrl_seg_sweep_at(&f->seg, 0, f->seg.view.nslots, far, fake_rt, 0);
	assert_int_equal(vrl_quota_word_used(key_state(f, L_MONTH, &r)), 1);
	assert_int_equal(key_state(f, L_RATE, &r), UINT64_MAX);   /* the idle rate went */
	vrl_seg_sweep_at(&f->seg, 0, f->seg.view.nslots, far, utc(2026, 7, 1, 0, 0, 0), 0);
	assert_int_equal(key_state(f, L_MONTH, &r), UINT64_MAX);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(month_ends_at_the_first),
		cmocka_unit_test(leap_day_2028),
		cmocka_unit_test(anchor_31_in_february),
		cmocka_unit_test(anchor_15),
		cmocka_unit_test(week_boundaries),
		cmocka_unit_test(day_and_once),
		cmocka_unit_test(hard_quota_denies_whole),
		cmocka_unit_test(soft_quota_counts_overage),
		cmocka_unit_test(alerts_fire_once_each),
		cmocka_unit_test(credit_and_reconcile),
		cmocka_unit_test(slots_count),
		T(quota_denial_consumes_nothing),
		T(soft_quota_grants_and_flags),
		T(once_never_resets),
		T(refund_quota_and_rate),
		T(reconcile_moves_toward_the_server),
		T(slots_release),
		T(dead_holder_slots_reaped),
		T(pool_shares_one_counter),
		T(override_takes_first_member),
		T(sweep_keeps_quota_within_its_period),
	};
#undef T

	return cmocka_run_group_tests_name("quota", tests, NULL, NULL);
}
