/*
 * test_keyuse.c - what vrld's metrics and `vrlctl top` read from a key's
 * state word (lib/kinds/keyuse.h): a quota key's share of its limit counts
 * only the period in force, so a key last used in an earlier period shows
 * nothing used; a key whose count a calendar change carries shows it; and
 * grants are what a count moved by within one period; a soft quota's
 * overage (kind_describe.h) is what it counted past its limit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <time.h>

#include "../common.h"
#include "keyuse.h"
#include "kind_describe.h"
#include "quota.h"

/* CLOCK_REALTIME ns of a UTC date, by libc. */
static uint64_t utc(int y, int mo, int d, int h)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h };

	return (uint64_t)timegm(&tm) * NS_PER_S;
}

/* Quota @l of 10 units a month, prepared as a handle or vrld reads it. */
static void monthly(struct vrl_limit *l)
{
	struct vrl_seg_config cfg = { 0 };

	test_add_quota(&cfg, "q", "q", 10, VRL_CAL_MONTH, 1, 0, (int[]){ VRL_FIELD_VEHICLE, -1 });
	assert_int_equal(vrl_limit_prepare(&cfg.limits[0], l), 0);
}

/* A key that used its whole quota last month has used none of this one. */
static void old_period_counts_nothing(void **state)
{
	struct vrl_limit l;
	uint64_t march, feb;

	(void)state;
	monthly(&l);
	assert_int_equal(vrl_quota_period(&l.seg, utc(2026, 3, 10, 12), &march, NULL, NULL), 0);
	feb = march - 1;
	assert_true(vrl_key_used_ratio(&l, vrl_quota_word(march, 4), 0, 1, march) == 0.4);
	assert_true(vrl_key_used_ratio(&l, vrl_quota_word(feb, 10), 0, 1, march) == 0);
	assert_int_equal(vrl_key_quota_used(&l, vrl_quota_word(feb, 10), march), 0);
	/* its first grant of March is one grant, not February's 10 and one */
	assert_int_equal(vrl_key_grants(&l, vrl_quota_word(feb, 10), 0, vrl_quota_word(march, 1),
					1, march), 1);
	assert_int_equal(vrl_key_grants(&l, vrl_quota_word(march, 3), 0, vrl_quota_word(march, 5),
					1, march), 2);
}

/*
 * A key first seen in a frame (no earlier read: word 0) whose word is
 * still February's took no grant in March: its 10 units are last month's.
 */
static void old_period_no_grants(void **state)
{
	struct vrl_limit l;
	uint64_t march, feb;

	(void)state;
	monthly(&l);
	assert_int_equal(vrl_quota_period(&l.seg, utc(2026, 3, 10, 12), &march, NULL, NULL), 0);
	feb = march - 1;
	assert_int_equal(vrl_key_grants(&l, 0, 0, vrl_quota_word(feb, 10), 1, march), 0);
	assert_int_equal(vrl_key_grants(&l, vrl_quota_word(feb - 1, 2), 0, vrl_quota_word(feb, 10),
					1, march), 0);
	assert_int_equal(vrl_key_grants(&l, 0, 0, vrl_quota_word(march, 4), 1, march), 4);
}

/*
 * A reload on March 10th made the monthly quota daily: March's 7 units
 * count today (quota.h, the carry), and a grant today is one grant, not
 * the 8 of a word that changed calendars; tomorrow they count nothing.
 */
static void carried_count(void **state)
{
	struct vrl_seg_config cfg = { 0 };
	struct vrl_seg_limit *s;
	struct vrl_limit l;
	uint64_t from, to;

	(void)state;
	s = test_add_quota(&cfg, "q", "q", 10, VRL_CAL_DAY, 0, 0, (int[]){ VRL_FIELD_VEHICLE, -1 });
	s->prev_calendar = VRL_CAL_MONTH;
	s->prev_anchor = 1;
	s->calendar_changed_rt = utc(2026, 3, 10, 12);
	assert_int_equal(vrl_limit_prepare(s, &l), 0);
	assert_true(l.carry);
	assert_int_equal(vrl_quota_transition(s, &from, &to), 0);
	assert_true(vrl_key_used_ratio(&l, vrl_quota_word(from, 7), 0, 1, to) == 0.7);
	assert_int_equal(vrl_key_grants(&l, vrl_quota_word(from, 7), 0, vrl_quota_word(to, 8), 1,
					to), 1);
	assert_true(vrl_key_used_ratio(&l, vrl_quota_word(from, 7), 0, 1, to + 1) == 0);
}

/*
 * What `vrlctl keys` shows of a key is what acquire counts: after the
 * reload on March 10th the 7 units March counted are used today (3 of
 * 10 left), not 0.
 */
static void figures_carry(void **state)
{
	struct vrl_seg_config cfg = { 0 };
	struct vrl_kind_figures f;
	struct vrl_seg_limit *s;
	struct vrl_limit l;
	uint64_t from, to, rt = utc(2026, 3, 10, 18);

	(void)state;
	s = test_add_quota(&cfg, "q", "q", 10, VRL_CAL_DAY, 0, 0, (int[]){ VRL_FIELD_VEHICLE, -1 });
	s->prev_calendar = VRL_CAL_MONTH;
	s->prev_anchor = 1;
	s->calendar_changed_rt = utc(2026, 3, 10, 12);
	assert_int_equal(vrl_limit_prepare(s, &l), 0);
	assert_int_equal(vrl_quota_transition(s, &from, &to), 0);
	vrl_kind_figures(NULL, &l, 0, vrl_quota_word(from, 7), 0, 1, rt, &f);
	assert_true(f.counted);
	assert_int_equal(f.used, 7);
	assert_int_equal(f.available, 3);
}

/*
 * metrics' overage: a soft quota's units past its limit in the period in
 * force; a hard quota, a word of an earlier period and a slots key count
 * none. Only a quota has a calendar period (an event's date).
 */
static void overage_of_soft_quota(void **state)
{
	struct vrl_seg_config cfg = { 0 };
	struct vrl_limit soft, hard, slots;
	uint64_t march, rt = utc(2026, 3, 10, 12);

	(void)state;
	test_add_quota(&cfg, "s", "s", 10, VRL_CAL_MONTH, 1, VRL_LIMIT_SOFT,
		       (int[]){ VRL_FIELD_VEHICLE, -1 });
	test_add_quota(&cfg, "h", "h", 10, VRL_CAL_MONTH, 1, 0, (int[]){ VRL_FIELD_VEHICLE, -1 });
	test_add_slots(&cfg, "c", "c", 10, 0, (int[]){ VRL_FIELD_VEHICLE, -1 });
	assert_int_equal(vrl_limit_prepare(&cfg.limits[0], &soft), 0);
	assert_int_equal(vrl_limit_prepare(&cfg.limits[1], &hard), 0);
	assert_int_equal(vrl_limit_prepare(&cfg.limits[2], &slots), 0);
	assert_int_equal(vrl_kind_period(&soft.seg, rt, &march, NULL), 0);
	assert_int_equal(vrl_kind_period(&slots.seg, rt, NULL, NULL), -1);
	assert_int_equal(vrl_kind_overage(&soft, vrl_quota_word(march, 13), march), 3);
	assert_int_equal(vrl_kind_overage(&soft, vrl_quota_word(march, 10), march), 0);
	assert_int_equal(vrl_kind_overage(&soft, vrl_quota_word(march - 1, 13), march), 0);
	assert_int_equal(vrl_kind_overage(&hard, vrl_quota_word(march, 13), march), 0);
	assert_int_equal(vrl_kind_overage(&slots, 13, UINT64_MAX), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(old_period_counts_nothing),
		cmocka_unit_test(carried_count),
		cmocka_unit_test(old_period_no_grants),
		cmocka_unit_test(figures_carry),
		cmocka_unit_test(overage_of_soft_quota),
	};

	return cmocka_run_group_tests_name("keyuse", tests, NULL, NULL);
}
