/*
 * test_seed_rates.c - the rate limits of the seeds, as the built-in presets
 * compile them, with time passed by hand to the GCRA step.
 *
 * Smartcar (seeds/000): "The default Smartcar API Limit is a bucket of 120
 *   requests that refills at a rate of 2 requests per minute."
 * Samsara (seeds/001): "Each API access token may make 150 API requests per
 *   second", "an organization may only make 200 requests per second total",
 *   and the legacy endpoint table ("GET /v1/fleet/hos_logs_summary | 30").
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "vrl_internal.h"
#include "config.h"

#define NS_PER_S UINT64_C(1000000000)
#define MS       UINT64_C(1000000)
#define T0       (1000 * NS_PER_S)   /* any monotonic time */

static struct vrl_daemon_config cfg;

/* The preset limit @name, ready for the GCRA step. */
static struct vrl_limit limit(const char *name)
{
	struct vrl_limit l;

	for (uint32_t i = 0; i < cfg.cfg.nlimits; i++)
		if (strcmp(cfg.cfg.limits[i].name, name) == 0) {
			assert_int_equal(vrl_limit_prepare(&cfg.cfg.limits[i], &l), 0);
			return l;
		}
	fail_msg("no limit %s in the preset", name);
	return l;
}

/* One request on key state @tat at @now: granted (and stored) or not. */
static bool take(const struct vrl_limit *l, uint64_t *tat, uint64_t now, uint64_t *retry)
{
	struct vrl_gcra_step s = vrl_gcra_step(&l->gcra, *tat, now, now, 1);

	if (retry)
		*retry = s.retry_after;
	if (s.conforms)
		*tat = s.new_tat;
	return s.conforms;
}

static int setup(void **state)
{
	char err[VRL_CONFIG_ERR_MAX];
	const char *yaml = "presets: [smartcar, samsara]\n";

	(void)state;
	assert_int_equal(vrl_config_parse(yaml, strlen(yaml), "seed", &cfg, err), 0);
	return 0;
}

/* "a bucket of 120 requests that refills at a rate of 2 requests per
 * minute": the 121st request of a burst is denied and retry-after is 30 s. */
static void smartcar_121st_request_of_a_burst_waits_30s(void **state)
{
	struct vrl_limit app = limit("smartcar.app");
	uint64_t tat = 0, retry;

	(void)state;
	for (int i = 0; i < 120; i++)
		assert_true(take(&app, &tat, T0, NULL));
	assert_false(take(&app, &tat, T0, &retry));
	assert_int_equal(retry, 30 * NS_PER_S);
	/* one more every 30 s after that, never two */
	assert_false(take(&app, &tat, T0 + 30 * NS_PER_S - 1, NULL));
	assert_true(take(&app, &tat, T0 + 30 * NS_PER_S, NULL));
	assert_false(take(&app, &tat, T0 + 30 * NS_PER_S, NULL));
	assert_true(take(&app, &tat, T0 + 60 * NS_PER_S, NULL));
}

/* "a single API token may only make 150 requests per second" */
static void samsara_one_token_gets_at_most_150_per_second(void **state)
{
	struct vrl_limit token = limit("samsara.token");
	uint64_t tat = 0;
	int granted = 0;

	(void)state;
	/* a request every 100 us for one second */
	for (uint64_t t = T0; t < T0 + NS_PER_S; t += MS / 10)
		granted += take(&token, &tat, t, NULL);
	assert_int_equal(granted, 150);
}

/* "An organization may have multiple API tokens, but an organization may
 * only make 200 requests per second total": two tokens of one organisation
 * together get at most 200 per second, all or nothing on the three keys. */
static void samsara_two_tokens_of_one_org_get_at_most_200_per_second(void **state)
{
	struct vrl_limit token = limit("samsara.token"), org = limit("samsara.org");
	uint64_t tok_tat[2] = { 0, 0 }, org_tat = 0;
	int by_token[2] = { 0, 0 }, granted = 0;

	(void)state;
	/* every 100 us a worker of each token asks */
	for (uint64_t t = T0; t < T0 + NS_PER_S; t += MS / 10) {
		for (int k = 0; k < 2; k++) {
			struct vrl_gcra_step a = vrl_gcra_step(&token.gcra, tok_tat[k], t, t, 1);
			struct vrl_gcra_step b = vrl_gcra_step(&org.gcra, org_tat, t, t, 1);

			if (!a.conforms || !b.conforms)
				continue;   /* a denial takes nothing anywhere */
			tok_tat[k] = a.new_tat;
			org_tat = b.new_tat;
			by_token[k]++;
			granted++;
		}
	}
	assert_int_equal(granted, 200);
	assert_true(by_token[0] <= 150 && by_token[1] <= 150);
}

/* "GET /v1/fleet/hos_logs_summary | 30": the endpoint's own limit applies
 * on top of the token's, and only to that endpoint. */
static void samsara_hos_logs_summary_gets_30_per_second(void **state)
{
	struct vrl_limit hos = limit("samsara.legacy.get_hos_logs_summary");
	const struct vrl_request on = { .api = "samsara",
					.endpoint = "GET /v1/fleet/hos_logs_summary" };
	const struct vrl_request off = { .api = "samsara", .endpoint = "GET /fleet/vehicles" };
	uint64_t tat = 0;
	int granted = 0;

	(void)state;
	assert_true(vrl_limit_matches(&hos, &on));
	assert_false(vrl_limit_matches(&hos, &off));
	for (uint64_t t = T0; t < T0 + NS_PER_S; t += MS / 10)
		granted += take(&hos, &tat, t, NULL);
	assert_int_equal(granted, 30);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(smartcar_121st_request_of_a_burst_waits_30s),
		cmocka_unit_test(samsara_one_token_gets_at_most_150_per_second),
		cmocka_unit_test(samsara_two_tokens_of_one_org_get_at_most_200_per_second),
		cmocka_unit_test(samsara_hos_logs_summary_gets_30_per_second),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
