/*
 * test_seed_evenergy.c - ev.energy's published limit, as the seed says it
 * (seeds/003):
 *
 *   "All authenticated clients are limited to 1000 requests per hour by
 *    default."
 *   "The hour is a rolling period, so if you make 1000 requests at 11:59,
 *    you cannot make any more until 12:59. (That is, the limit is not reset
 *    at the top of the hour.)"
 *   "Rate limiting is applied to each unique combination of OAuth
 *    application and user."
 *
 * The limit comes from the built-in preset (the config is the source of
 * truth); time is passed by hand to the window's step functions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "window.h"

#define NS_PER_S UINT64_C(1000000000)
#define MINUTE   (60 * NS_PER_S)
#define CLOCK(h, m) ((uint64_t)(h) * 60 * MINUTE + (uint64_t)(m) * MINUTE)

static struct vrl_daemon_config cfg;
static const struct vrl_seg_limit *limit;

/* One (app, user) key: its ring and state word. */
struct user_key {
	_Atomic uint64_t state;
	_Atomic uint64_t *pos;
	struct vrl_window_ref r;
};

static void key_init(struct user_key *k)
{
	memset(k, 0, sizeof(*k));
	k->pos = calloc(limit->count, sizeof(*k->pos));
	assert_non_null(k->pos);
	k->r = (struct vrl_window_ref){ .state = &k->state, .ring = k->pos, .n = limit->count,
					.w = limit->period_ns };
}

/* One request at @at: granted or not, and when it could be. */
static bool request(struct user_key *k, uint64_t at, uint64_t *retry_at)
{
	struct vrl_window_look lk;
	uint64_t committed;

	vrl_window_look(&k->r, atomic_load(&k->state), 1, at, &lk);
	*retry_at = lk.earliest;
	return lk.earliest == at && vrl_window_take(&k->r, lk.first, 1, at, &committed) == 0;
}

static int setup(void **state)
{
	char err[VRL_CONFIG_ERR_MAX];
	const char *yaml = "presets: [evenergy]\n";

	(void)state;
	assert_int_equal(vrl_config_parse(yaml, strlen(yaml), "seed", &cfg, err), 0);
	limit = &cfg.cfg.limits[0];
	assert_string_equal(limit->name, "evenergy.user");
	return 0;
}

/* "limited to 1000 requests per hour", "the hour is a rolling period" */
static void the_preset_is_1000_per_rolling_hour(void **state)
{
	(void)state;
	assert_int_equal(limit->kind, VRL_KIND_WINDOW);
	assert_int_equal(limit->count, 1000);
	assert_int_equal(limit->period_ns, 60 * MINUTE);
	assert_int_equal(limit->per[0].field, VRL_FIELD_TOKEN);
	assert_int_equal(limit->per[1].field, VRL_FIELD_USER);
}

/* "if you make 1000 requests at 11:59, you cannot make any more until 12:59" */
static void thousand_at_1159_then_none_until_1259(void **state)
{
	struct user_key k;
	uint64_t retry;

	(void)state;
	key_init(&k);
	for (int i = 0; i < 1000; i++)
		assert_true(request(&k, CLOCK(11, 59), &retry));
	/* "(That is, the limit is not reset at the top of the hour.)" */
	assert_false(request(&k, CLOCK(12, 0), &retry));
	assert_int_equal(retry, CLOCK(12, 59));
	assert_false(request(&k, CLOCK(12, 59) - 1, &retry));
	assert_true(request(&k, CLOCK(12, 59), &retry));
	free(k.pos);
}

/* The 429's retry-after counts down to the oldest request's hour. */
static void spread_requests_free_one_by_one(void **state)
{
	struct user_key k;
	uint64_t retry;

	(void)state;
	key_init(&k);
	for (int i = 0; i < 1000; i++)
		assert_true(request(&k, CLOCK(11, 0) + (uint64_t)i * NS_PER_S, &retry));
	assert_false(request(&k, CLOCK(11, 30), &retry));
	assert_int_equal(retry - CLOCK(11, 30), 30 * MINUTE);
	assert_true(request(&k, CLOCK(12, 0), &retry));
	assert_false(request(&k, CLOCK(12, 0), &retry));
	assert_int_equal(retry, CLOCK(12, 0) + NS_PER_S);
	free(k.pos);
}

/* "applied to each unique combination of OAuth application and user" */
static void each_user_has_its_own_hour(void **state)
{
	struct user_key alice, bob;
	uint64_t retry;

	(void)state;
	key_init(&alice);
	key_init(&bob);
	for (int i = 0; i < 1000; i++)
		assert_true(request(&alice, CLOCK(11, 59), &retry));
	assert_false(request(&alice, CLOCK(12, 30), &retry));
	assert_true(request(&bob, CLOCK(12, 30), &retry));
	free(alice.pos);
	free(bob.pos);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_preset_is_1000_per_rolling_hour),
		cmocka_unit_test(thousand_at_1159_then_none_until_1259),
		cmocka_unit_test(spread_requests_free_one_by_one),
		cmocka_unit_test(each_user_has_its_own_hour),
	};

	return cmocka_run_group_tests_name("seed_evenergy", tests, setup, NULL);
}
