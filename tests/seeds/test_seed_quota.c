/*
 * test_seed_quota.c - the quota and slots limits of the seeds, as the
 * built-in presets compile them, on a wall clock the test sets.
 *
 * Each test is one sentence of a provider's published limits (quoted), run
 * against the preset that implements it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common.h"
#include "config.h"
#include "quota.h"

static uint64_t fake_rt;

static uint64_t fake_clock(void)
{
	return fake_rt;
}

static uint64_t utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			 .tm_hour = h, .tm_min = mi, .tm_sec = s };

	return (uint64_t)timegm(&tm) * NS_PER_S;
}

struct fixture {
	struct vrl_daemon_config dc;
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];
	vrl_client *c;
};

static struct vrl_seg_limit *limit(struct fixture *f, const char *name)
{
	for (uint32_t i = 0; i < f->dc.cfg.nlimits; i++)
		if (strcmp(f->dc.cfg.limits[i].name, name) == 0)
			return &f->dc.cfg.limits[i];
	fail_msg("no limit %s in the preset", name);
	return NULL;
}

/* The segment of preset @preset, after @edit changed its compiled config. */
static struct fixture *open_preset(const char *preset, void (*edit)(struct fixture *))
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *text = vrl_config_preset(preset);
	char err[VRL_CONFIG_ERR_MAX];

	assert_non_null(text);
	if (vrl_config_parse(text, strlen(text), preset, &f->dc, err) != 0)
		fail_msg("%s", err);
	if (edit)
		edit(f);
	test_segment("seed-quota", &f->dc.cfg, 10000, &f->seg, f->name);
	f->c = test_open(f->name);
	vrl__realtime_ns = fake_clock;
	return f;
}

static void close_preset(struct fixture *f)
{
	vrl_close(f->c);
	test_segment_drop(&f->seg, f->name);
	free(f);
}

/* "Disabled (opt-out) | Requests are rejected with a 429 until the period
 * resets": the preset's overage: true turned off, as a config would. */
static void overage_off(struct fixture *f)
{
	for (uint32_t i = 0; i < f->dc.cfg.nlimits; i++)
		f->dc.cfg.limits[i].flags &= ~VRL_LIMIT_SOFT;
}

/* "Before a bulk call, make sure the VIN count is at or below your remaining
 * units -- a rejected batch consumes nothing" */
static void carsxe_batch_over_remaining_is_denied_and_consumes_nothing(void **state)
{
	struct fixture *f;
	struct vrl_request r = { .api = "carsxe", .endpoint = "recalls-batch" };
	struct vrl_verdict v;

	(void)state;
	fake_rt = utc(2026, 6, 10, 12, 0, 0);
	f = open_preset("carsxe", overage_off);
	r.cost = 5000 - 499;
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_int_equal(v.remaining, 499);
	/* "a 500-VIN batch uses 500 units in a single request" */
	r.cost = 500;
	assert_int_equal(vrl_acquire(f->c, &r, &v), VRL_EDENIED);
	assert_string_equal(v.limit_name, "carsxe.recalls-batch");
	assert_int_equal(v.kind, VRL_QUOTA);
	assert_int_equal(v.remaining, 499);
	assert_int_equal(v.limit_value, 5000);
	assert_int_equal(v.cost, 500);
	/* "until the period resets": July 1st */
	assert_int_equal(v.retry_after_ns, utc(2026, 7, 1, 0, 0, 0) - fake_rt);
	/* it consumed nothing: a batch that fits still passes, to the unit */
	r.cost = 499;
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_int_equal(v.remaining, 0);
	close_preset(f);
}

/* "Enabled (default on plans with overage pricing) | Requests keep
 * succeeding. Each unit past your included volume is billed" */
static void carsxe_overage_grants_the_5001st_unit_as_overage(void **state)
{
	struct fixture *f;
	struct vrl_request r = { .api = "carsxe", .endpoint = "market-value" };
	struct vrl_verdict v;
	unsigned alerts = 0;

	(void)state;
	fake_rt = utc(2026, 6, 10, 12, 0, 0);
	f = open_preset("carsxe", NULL);
	for (unsigned i = 1; i <= 5000; i++) {
		assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
		assert_false(v.flags & VRL_VERDICT_OVERAGE);
		/* "when an API reaches 80%, 90%, and 100% of its included volume" */
		if (v.flags & VRL_VERDICT_ALERT) {
			alerts++;
			assert_true(i == 4000 || i == 4500 || i == 5000);
		}
	}
	assert_int_equal(alerts, 3);
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_true(v.flags & VRL_VERDICT_OVERAGE);
	assert_int_equal(v.overage, 1);
	assert_int_equal(v.remaining, 0);
	assert_string_equal(v.limit_name, "carsxe.market-value");
	close_preset(f);
}

/* "Trial allowances are one-time -- they do not reset monthly." */
static void carsxe_trial_allowance_never_resets(void **state)
{
	struct fixture *f;
	struct vrl_attr trial[] = { { "plan", "trial" } };
	struct vrl_request r = { .api = "carsxe", .endpoint = "history", .attrs = trial,
				 .nattrs = 1, .cost = 100 };
	struct vrl_verdict v;

	(void)state;
	fake_rt = utc(2026, 6, 10, 12, 0, 0);
	f = open_preset("carsxe", NULL);
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	r.cost = 1;
	/* "Please upgrade your tier to continue using the API." */
	assert_int_equal(vrl_acquire(f->c, &r, &v), VRL_EDENIED);
	assert_string_equal(v.limit_name, "carsxe.trial");
	assert_int_equal(v.retry_after_ns, VRL_NEVER);
	/* "Waiting won't help": not next month, not next year */
	fake_rt = utc(2026, 7, 1, 0, 0, 0);
	assert_int_equal(vrl_acquire(f->c, &r, &v), VRL_EDENIED);
	fake_rt = utc(2027, 6, 10, 0, 0, 0);
	assert_int_equal(vrl_acquire(f->c, &r, &v), VRL_EDENIED);
	assert_string_equal(v.limit_name, "carsxe.trial");
	close_preset(f);
}

/* "A few related APIs share a combined quota." */
static void carsxe_two_apis_of_one_shared_quota_draw_from_one_counter(void **state)
{
	struct fixture *f;
	struct vrl_request one = { .api = "carsxe", .endpoint = "recalls", .cost = 3000 };
	struct vrl_request batch = { .api = "carsxe", .endpoint = "recalls-batch", .cost = 2000 };
	struct vrl_request specs = { .api = "carsxe", .endpoint = "specs", .cost = 1 };
	struct vrl_verdict v;

	(void)state;
	fake_rt = utc(2026, 6, 10, 12, 0, 0);
	f = open_preset("carsxe", overage_off);
	assert_int_equal(vrl_acquire(f->c, &one, &v), 0);
	assert_int_equal(v.remaining, 2000);
	assert_int_equal(vrl_acquire(f->c, &batch, &v), 0);
	assert_int_equal(v.remaining, 0);
	one.cost = batch.cost = 1;
	assert_int_equal(vrl_acquire(f->c, &one, &v), VRL_EDENIED);
	assert_int_equal(vrl_acquire(f->c, &batch, &v), VRL_EDENIED);
	/* an API outside the pool keeps its own volume */
	assert_int_equal(vrl_acquire(f->c, &specs, &v), 0);
	assert_int_equal(v.remaining, 4999);
	close_preset(f);
}

/* "you have been allocated 500 API calls per vehicle per month, but you made
 * the 501st call to a single vehicle during the billing period." */
static void smartcar_501st_request_of_a_vehicle_waits_for_next_month(void **state)
{
	struct fixture *f;
	struct vrl_request r = { .api = "smartcar", .vehicle = "VIN1" };
	struct vrl_request other = { .api = "smartcar", .vehicle = "VIN2" };
	struct vrl_verdict v;

	(void)state;
	fake_rt = utc(2026, 2, 27, 8, 0, 0);
	f = open_preset("smartcar", NULL);
	/* 500 calls through the month: the app-wide bucket (120, 2/min) is
	 * refilled between calls, as if they were spread over days */
	for (unsigned i = 1; i <= 500; i++) {
		(void)vrl_reset(f->c, &r, "smartcar.app");
		assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	}
	assert_int_equal(vrl_reset(f->c, &r, "smartcar.app"), 0);
	assert_int_equal(vrl_acquire(f->c, &r, &v), VRL_EDENIED);
	assert_string_equal(v.limit_name, "smartcar.vehicle.monthly");
	assert_int_equal(v.remaining, 0);
	assert_int_equal(v.limit_value, 500);
	/* until the first of next month */
	assert_int_equal(v.retry_after_ns, utc(2026, 3, 1, 0, 0, 0) - fake_rt);
	/* another vehicle has its own 500 */
	assert_int_equal(vrl_acquire(f->c, &other, &v), 0);
	fake_rt = utc(2026, 2, 28, 23, 59, 59);
	vrl_reset(f->c, &r, "smartcar.app");
	assert_int_equal(vrl_acquire(f->c, &r, &v), VRL_EDENIED);
	fake_rt = utc(2026, 3, 1, 0, 0, 0);
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	close_preset(f);
}

/* "a maximum number of vehicles that you may have connected at any one
 * time": held across processes, given back on disconnect. */
static void smartcar_connected_vehicles_are_capped_until_one_disconnects(void **state)
{
	struct fixture *f;
	struct vrl_request r = { .api = "smartcar.connect" };
	struct vrl_verdict v;
	uint64_t cap;

	(void)state;
	fake_rt = utc(2026, 2, 27, 8, 0, 0);
	f = open_preset("smartcar", NULL);
	cap = limit(f, "smartcar.connected")->count;
	for (uint64_t i = 0; i < cap; i++)
		assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_int_equal(vrl_acquire(f->c, &r, &v), VRL_EDENIED);
	assert_string_equal(v.limit_name, "smartcar.connected");
	assert_int_equal(v.kind, VRL_SLOTS);
	/* persistent: the connections outlive the handle that made them */
	vrl_close(f->c);
	f->c = test_open(f->name);
	assert_int_equal(vrl_acquire(f->c, &r, &v), VRL_EDENIED);
	assert_int_equal(vrl_release(f->c, &r, NULL, 1), 0);
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	close_preset(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(carsxe_batch_over_remaining_is_denied_and_consumes_nothing),
		cmocka_unit_test(carsxe_overage_grants_the_5001st_unit_as_overage),
		cmocka_unit_test(carsxe_trial_allowance_never_resets),
		cmocka_unit_test(carsxe_two_apis_of_one_shared_quota_draw_from_one_counter),
		cmocka_unit_test(smartcar_501st_request_of_a_vehicle_waits_for_next_month),
		cmocka_unit_test(smartcar_connected_vehicles_are_capped_until_one_disconnects),
	};

	return cmocka_run_group_tests_name("seed-quota", tests, NULL, NULL);
}
