/*
 * test_observe.c - vrl_observe(): what each provider's answers do to the
 * shared state, as the providers' pages describe them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "common.h"
#include "segment.h"

struct fixture {
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];
	vrl_client *c;
};

static int setup(void **state)
{
	static struct fixture f;
	static struct vrl_seg_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	/* Samsara: 150 per token and 200 per organisation, per hour here
	 * (per second upstream) so that nothing refills while a test runs */
	test_add_rate(&cfg, "samsara.token", "samsara", 150, 3600 * NS_PER_S, 150,
		      (int[]){ VRL_FIELD_TOKEN, -1 });
	test_add_rate(&cfg, "samsara.org", "samsara", 200, 3600 * NS_PER_S, 200,
		      (int[]){ VRL_FIELD_ORG, -1 });
	/* Smartcar: the app bucket, the per-vehicle limit and the OEM's */
	test_add_rate(&cfg, "smartcar.app", "smartcar", 2, 60 * NS_PER_S, 120, NULL);
	test_add_gate(&cfg, "smartcar.vehicle", "smartcar", (int[]){ VRL_FIELD_VEHICLE, -1 });
	test_add_gate(&cfg, "smartcar.upstream", "smartcar", (int[]){ VRL_FIELD_VEHICLE, -1 });
	/* CarsXE: a monthly unit quota per API key */
	test_add_quota(&cfg, "carsxe.specs", "carsxe", 5000, VRL_CAL_MONTH, 1, 0,
		       (int[]){ VRL_FIELD_TOKEN, -1 });
	/* ev.energy: 1000 per hour per user (a rate here; windows have their own tests) */
	test_add_rate(&cfg, "evenergy.user", "evenergy", 1000, 3600 * NS_PER_S, 1000,
		      (int[]){ VRL_FIELD_USER, -1 });
	test_segment("observe", &cfg, 1000, &f.seg, f.name);
	f.c = test_open(f.name);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vrl_close(f->c);
	test_segment_drop(&f->seg, f->name);
	return 0;
}

static struct vrl_response response(int status, const struct vrl_header *h, size_t nh,
				    const char *body)
{
	return (struct vrl_response){ .status = status, .headers = h, .nheaders = nh,
				      .body = body, .body_len = body ? strlen(body) : 0 };
}

/* Samsara: a 429 with Retry-After 0.40235 closes the token for every worker. */
static void test_samsara_fractional_retry_after(void **state)
{
	struct fixture *f = *state;
	const struct vrl_request a = { .api = "samsara", .token = "tA", .org = "acme" };
	const struct vrl_request b = { .api = "samsara", .token = "tB", .org = "acme" };
	const struct vrl_header h[] = { { "Retry-After", "0.40235" } };
	struct vrl_response r = response(429, h, 1, "{\"message\": \"rate limit\"}");
	struct vrl_feedback fb;
	struct vrl_verdict v;
	uint64_t t0;
	int rc;

	/* token A is the tighter key: it has used more of its bucket */
	for (int i = 0; i < 20; i++)
		assert_int_equal(vrl_acquire(f->c, &a, NULL), 0);
	assert_int_equal(vrl_acquire(f->c, &b, NULL), 0);
	r.limit = NULL;
	t0 = vrl_now_ns();
	assert_int_equal(vrl_observe(f->c, &a, &r, &fb), 0);
	assert_true(fb.actions & VRL_FB_COOLDOWN);
	assert_string_equal(vrl_limit_name(f->c, fb.limit), "samsara.token");

	/* closed for 0.40235 s from the answer, exactly, whenever this comes
	 * (a machine that stalled past it finds the key open again) */
	rc = vrl_acquire(f->c, &a, &v);
	if (rc == VRL_EDENIED) {
		assert_true(v.flags & VRL_VERDICT_COOLDOWN);
		assert_true(v.retry_after_ns <= 402350000u);
		assert_true(v.retry_after_ns >= t0 + 402350000u - v.at_ns);
	} else {
		assert_int_equal(rc, 0);
		assert_true(v.at_ns >= t0 + 402350000u);
	}
	/* the organisation stays open to the other token */
	assert_int_equal(vrl_acquire(f->c, &b, NULL), 0);
}

/* Smartcar: RATE_LIMIT:VEHICLE closes that vehicle, not the app or others. */
static void test_smartcar_vehicle_429(void **state)
{
	struct fixture *f = *state;
	const struct vrl_request v1 = { .api = "smartcar", .vehicle = "vin-1" };
	const struct vrl_request v2 = { .api = "smartcar", .vehicle = "vin-2" };
	const struct vrl_header h[] = { { "retry-after", "30" } };
	struct vrl_response r = response(429, h, 1,
		"{\"type\": \"RATE_LIMIT\", \"code\": \"VEHICLE\", \"description\": \"x\"}");
	struct vrl_feedback fb;
	struct vrl_verdict v;

	uint64_t t0;

	assert_int_equal(vrl_acquire(f->c, &v1, NULL), 0);
	t0 = vrl_now_ns();
	assert_int_equal(vrl_observe(f->c, &v1, &r, &fb), 0);
	assert_true(fb.actions & VRL_FB_COOLDOWN);
	assert_string_equal(vrl_limit_name(f->c, fb.limit), "smartcar.vehicle");
	assert_int_equal(vrl_acquire(f->c, &v1, &v), VRL_EDENIED);
	assert_string_equal(v.limit_name, "smartcar.vehicle");
	/* closed until 30 s after the answer was observed, whenever that was */
	assert_true(v.retry_after_ns <= 30 * NS_PER_S);
	assert_true(v.retry_after_ns >= t0 + 30 * NS_PER_S - v.at_ns);
	assert_int_equal(vrl_acquire(f->c, &v2, NULL), 0);

	/* UPSTREAM:RATE_LIMIT names the OEM's limit of that vehicle */
	r = response(429, h, 1, "{\"type\": \"UPSTREAM\", \"code\": \"RATE_LIMIT\"}");
	assert_int_equal(vrl_observe(f->c, &v2, &r, &fb), 0);
	assert_string_equal(vrl_limit_name(f->c, fb.limit), "smartcar.upstream");
	assert_int_equal(vrl_acquire(f->c, &v2, &v), VRL_EDENIED);
	assert_string_equal(v.limit_name, "smartcar.upstream");
}

/* ev.energy: x-ratelimit-remaining brings the local count down to it. */
static void test_evenergy_headers_reconcile(void **state)
{
	struct fixture *f = *state;
	const struct vrl_request u = { .api = "evenergy", .user = "u1" };
	const struct vrl_header h[] = { { "x-ratelimit-limit", "1000" },
					{ "x-ratelimit-remaining", "3" } };
	struct vrl_response r = response(200, h, 2, NULL);
	struct vrl_feedback fb;
	struct vrl_verdict v;
	int granted = 0;

	assert_int_equal(vrl_acquire(f->c, &u, &v), 0);
	assert_true(v.remaining > 900);
	assert_int_equal(vrl_observe(f->c, &u, &r, &fb), 0);
	assert_true(fb.actions & VRL_FB_RECONCILE);
	assert_int_equal(fb.server_remaining, 3);
	assert_int_equal(fb.server_limit, 1000);
	while (vrl_acquire(f->c, &u, NULL) == 0)
		granted++;
	assert_true(granted <= 3);
	assert_true(granted >= 2);   /* a refill between calls may add at most one */
}

/* CarsXE: a quota 429 with usage.remaining 0 closes the API's quota here too. */
static void test_carsxe_usage_body(void **state)
{
	struct fixture *f = *state;
	const struct vrl_request q = { .api = "carsxe", .token = "k1" };
	struct vrl_response r = response(429, NULL, 0,
		"{\"success\": false, \"message\": \"API limit exceeded for specs (6/2026). "
		"Current usage: 5000, Limit: 5000.\", \"usage\": {\"current\": 5000, "
		"\"limit\": 5000, \"remaining\": 0}}");
	struct vrl_feedback fb;
	struct vrl_verdict v;

	assert_int_equal(vrl_acquire(f->c, &q, NULL), 0);
	assert_int_equal(vrl_observe(f->c, &q, &r, &fb), 0);
	assert_true(fb.actions & VRL_FB_RECONCILE);
	assert_string_equal(vrl_limit_name(f->c, fb.limit), "carsxe.specs");
	assert_int_equal(fb.server_remaining, 0);
	assert_int_equal(vrl_acquire(f->c, &q, &v), VRL_EDENIED);
	assert_int_equal(v.remaining, 0);
}

/* CarsXE: "Failed validation is free": a 400 gives the units back. */
static void test_carsxe_400_refunds(void **state)
{
	struct fixture *f = *state;
	const struct vrl_request q = { .api = "carsxe", .token = "k2", .cost = 500 };
	struct vrl_response r = response(400, NULL, 0, "{\"success\": false}");
	struct vrl_feedback fb;
	struct vrl_verdict v;

	assert_int_equal(vrl_acquire(f->c, &q, &v), 0);
	assert_int_equal(v.remaining, 4500);
	assert_int_equal(vrl_observe(f->c, &q, &r, &fb), 0);
	assert_true(fb.actions & VRL_FB_REFUND);
	assert_int_equal(vrl_acquire(f->c, &q, &v), 0);
	assert_int_equal(v.remaining, 4500);
}

/* A malformed value is skipped and counted; nothing else happens. */
static void test_malformed_ignored(void **state)
{
	struct fixture *f = *state;
	const struct vrl_request a = { .api = "samsara", .token = "tC", .org = "other" };
	const struct vrl_header h[] = { { "Retry-After", "soon" },
					{ "x-ratelimit-remaining", "-4" } };
	struct vrl_response r = response(200, h, 2, NULL);
	uint64_t before = atomic_load(&vrl__view(f->c)->hdr->feedback_ignored);
	struct vrl_feedback fb;

	assert_int_equal(vrl_acquire(f->c, &a, NULL), 0);
	assert_int_equal(vrl_observe(f->c, &a, &r, &fb), 0);
	assert_int_equal(fb.actions, VRL_FB_IGNORED);
	assert_non_null(fb.ignored);
	assert_int_equal(atomic_load(&vrl__view(f->c)->hdr->feedback_ignored), before + 2);
	assert_int_equal(vrl_acquire(f->c, &a, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_samsara_fractional_retry_after),
		cmocka_unit_test(test_smartcar_vehicle_429),
		cmocka_unit_test(test_evenergy_headers_reconcile),
		cmocka_unit_test(test_carsxe_usage_body),
		cmocka_unit_test(test_carsxe_400_refunds),
		cmocka_unit_test(test_malformed_ignored),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
