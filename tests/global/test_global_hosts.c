/*
 * test_global_hosts.c - three hosts end to end: three vrld (a, b, c) and
 * one redis-server on this machine, a pool of worker processes per host
 * asking for the same global keys. The grants of all hosts, merged by
 * their decision times (one clock), keep each global limit over EVERY
 * interval: while the load is spread, while it moves between hosts,
 * while a vrld is SIGKILLed and restarted, while Redis is stopped for
 * 5 s (twenty lease terms), and after Redis restarts with its data
 * wiped. Progress: a host denied for want of share gets a larger share
 * within three lease terms, and a host without demand holds no share,
 * rate or burst, three terms after its demand stopped (a window: W
 * later again, as its promises count W longer); both
 * measured in Redis's virtual time (the time leases are counted in), so
 * a loaded machine that runs everyone slower does not fail them.
 *
 * Kinds: those in global_kind[] below, the kinds vrld holds across hosts
 * so far; a kind it still refuses with scope: global is not run here.
 * Skipped (exit 77) when redis-server is missing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fault/vrld_run.h"
#include "clock.h"
#include "global.h"
#include "hosts.h"
#include "vrl.h"

#define MS          GH_NS_PER_MS
#define LEASE_NS    (250 * MS)
#define TERM_US     (LEASE_NS / 1000u)
#define HANG_NS     (UINT64_C(120) * VRL_NS_PER_S)   /* a deadline for hangs only */
#define WORKERS     2u                               /* per host */
#define ALL_HOSTS   ((1u << GH_HOSTS) - 1u)

/* The kinds vrld holds across hosts: set a kind once vrld takes it with
 * scope: global, and its limits below run in every test. */
static const bool global_kind[] = {
	[GH_RATE] = true,
	[GH_WINDOW] = true,
	[GH_QUOTA] = true,
	[GH_SLOTS] = true,
};

/* Every limit the tests know; those of kinds not yet global are left out. */
static const struct gh_limit all_limits[] = {
	/* burst = hosts: the smallest a global rate may have */
	{ .name = "r3", .kind = GH_RATE, .count = 90, .period_ns = VRL_NS_PER_S, .burst = 3 },
	/* burst > hosts */
	{ .name = "r8", .kind = GH_RATE, .count = 60, .period_ns = VRL_NS_PER_S, .burst = 8 },
	{ .name = "w", .kind = GH_WINDOW, .count = 40, .period_ns = 500 * MS },
	{ .name = "q", .kind = GH_QUOTA, .count = 400, .pace = "40/s" },
	{ .name = "s", .kind = GH_SLOTS, .count = 6, .hold_ns = 20 * MS },
};

static struct gh_limit lim[GH_LIMITS_MAX];
static unsigned nlim;
static struct gh_run run;

static int start_hosts(void);

static int setup(void **state)
{
	(void)state;
	nlim = 0;
	memset(&run, 0, sizeof(run));
	for (size_t i = 0; i < sizeof(all_limits) / sizeof(all_limits[0]); i++)
		if (global_kind[all_limits[i].kind])
			lim[nlim++] = all_limits[i];
	if (nlim == 0) {
		printf("# no kind is held across hosts yet: nothing to run\n");
		return 0;
	}
	return start_hosts();
}

static int start_hosts(void)
{
	if (gh_start(&run, lim, nlim, LEASE_NS) != 0) {
		gh_stop(&run);
		fail_msg("the three hosts did not start (their logs are above)");
	}
	gh_workers(&run, WORKERS);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (nlim > 0)
		gh_stop(&run);
	return 0;
}

static void demand_all(uint32_t mask)
{
	for (unsigned h = 0; h < GH_HOSTS; h++)
		gh_demand(&run, h, mask);
}

static uint32_t all_mask(void)
{
	return (1u << nlim) - 1u;
}

/* The share's size a host must reach or fall to, in Redis's terms. */
static uint64_t figure(unsigned l)
{
	const struct gh_limit *x = &lim[l];

	return x->kind == GH_RATE ? vrl_global_rate_units(x->count, x->period_ns) : x->count;
}

static bool has_share(unsigned l)
{
	return lim[l].kind == GH_RATE || lim[l].kind == GH_WINDOW;
}

static struct gh_share share_of(unsigned l)
{
	struct gh_share s;

	assert_int_equal(gh_share(&run, l, &s), 0);
	return s;
}

/* Redis's time (us) a share of limit @l takes to follow the demand: three
 * lease terms, and for a window W more, since a promise counts W past its
 * expiry (lease.c): a larger share gives way only then. */
static uint64_t follow_us(unsigned l)
{
	return 3 * TERM_US + (lim[l].kind == GH_WINDOW ? lim[l].period_ns / 1000u : 0);
}

/* Wait until Redis's virtual time passed @v + @us. */
static void wait_us(unsigned l, uint64_t v, uint64_t us)
{
	uint64_t until = vrl_now_ns() + HANG_NS;

	while (share_of(l).vnow < v + us) {
		if (vrl_now_ns() > until)
			fail_msg("Redis's time stood still (no host renews)");
		gh_pace(10 * MS);
	}
}

/* Wait until host @h holds at least @min of limit @l's share; returns
 * Redis's time then. */
static uint64_t wait_share(unsigned l, unsigned h, uint64_t min)
{
	uint64_t until = vrl_now_ns() + HANG_NS;

	for (;;) {
		struct gh_share s = share_of(l);

		if (s.a[h] >= min)
			return s.vnow;
		if (vrl_now_ns() > until)
			fail_msg("%s: host %u never held %llu (holds %llu)", lim[l].name, h,
				 (unsigned long long)min, (unsigned long long)s.a[h]);
		gh_pace(5 * MS);
	}
}

/* Wait until each host in @hosts has a grant of limit @l after @t. */
static void wait_grants_after(unsigned l, uint32_t hosts, uint64_t t)
{
	uint64_t until = vrl_now_ns() + HANG_NS, latest;

	for (unsigned h = 0; h < GH_HOSTS; h++) {
		if (!(hosts >> h & 1u))
			continue;
		while (gh_grants(&run, l, h, &latest), latest <= t) {
			if (vrl_now_ns() > until)
				fail_msg("%s: host %u granted nothing after the fault", lim[l].name, h);
			gh_pace(5 * MS);
		}
	}
}

/*
 * Quota @l, asked for by every host until no grant came for four lease
 * terms: granted at least its count less the documented loss, a block
 * (max(1, N / (4 hosts)), lease.c) per host that died this period
 * (@died), never more than its count (check_all).
 */
static void quota_drained(unsigned l, unsigned died)
{
	uint64_t until = vrl_now_ns() + HANG_NS, n = gh_grants(&run, l, UINT32_MAX, NULL), m;
	uint64_t block = lim[l].count / (4 * GH_HOSTS), lost;

	block = block ? block : 1;
	for (;;) {
		gh_pace(4 * LEASE_NS);
		m = gh_grants(&run, l, UINT32_MAX, NULL);
		if (m == n)
			break;
		n = m;
		if (vrl_now_ns() > until)
			fail_msg("%s: still granting after %llu s", lim[l].name,
				 (unsigned long long)(HANG_NS / VRL_NS_PER_S));
	}
	lost = n < lim[l].count ? lim[l].count - n : 0;
	printf("# %s: %llu of %llu granted, %llu lost (at most %llu)\n", lim[l].name,
	       (unsigned long long)n, (unsigned long long)lim[l].count, (unsigned long long)lost,
	       (unsigned long long)(died * block));
	assert_true(lost <= died * block);
}

static void check_all(void)
{
	unsigned over = 0;

	gh_workers_stop(&run);
	for (unsigned l = 0; l < nlim; l++) {
		struct gh_check c = gh_check(&run, l);

		assert_true(c.grants > 0);
		over += c.over;
	}
	assert_int_equal(over, 0);
}

/* Log grants at @t[0 .. n) of limit 0 by host 0, in a run of no process. */
static void fake_log(const uint64_t *t, size_t n)
{
	static struct gh_shared sh;

	memset(&sh, 0, sizeof(sh));
	for (size_t i = 0; i < n; i++)
		sh.w[0].g[i] = (struct gh_grant){ .at = t[i] };
	atomic_store(&sh.w[0].n, n);
	memset(&run, 0, sizeof(run));
	run.sh = &sh;
	run.lim = lim;
	run.nlim = 1;
}

/*
 * The check is exact: GCRA(90/s, 3) allows 3 at once and one more every
 * 1/90 s, to the nanosecond: a fourth grant 1/9 ns early is over, as is
 * a sixth in 2/90 s; a window's interval is (t - W, t]; a slot is held
 * from its grant to its release.
 */
static void check_is_exact(void **state)
{
	const uint64_t t0 = VRL_NS_PER_S, T = VRL_NS_PER_S / 90;   /* 11111111.1 ns */
	const uint64_t fits[] = { t0, t0, t0, t0 + T + 1, t0 + 2 * T + 1, t0 + 2 * T + 1 };
	const uint64_t over[] = { t0, t0, t0, t0 + T, t0 + 2 * T + 1 };
	const uint64_t over_w[] = { t0, t0 + 1, t0 + 500 * MS - 1, t0 + 500 * MS };

	(void)state;
	nlim = 1;
	lim[0] = (struct gh_limit){ .name = "x", .kind = GH_RATE, .count = 90,
				    .period_ns = VRL_NS_PER_S, .burst = 3 };
	fake_log(fits, 5);
	assert_false(gh_check(&run, 0).over);
	fake_log(fits, 6);
	assert_true(gh_check(&run, 0).over);
	fake_log(over, 4);
	assert_true(gh_check(&run, 0).over);
	/* a window of 2 in any 500 ms: (t - W, t] */
	lim[0] = (struct gh_limit){ .name = "y", .kind = GH_WINDOW, .count = 2,
				    .period_ns = 500 * MS };
	fake_log(over_w, 2);
	assert_false(gh_check(&run, 0).over);
	fake_log(over_w, 3);
	assert_true(gh_check(&run, 0).over);
	fake_log((const uint64_t[]){ t0, t0 + 500 * MS, t0 + 1000 * MS }, 3);
	assert_false(gh_check(&run, 0).over);
	/* slots: held from the grant to the release; a release first at one instant */
	lim[0] = (struct gh_limit){ .name = "z", .kind = GH_SLOTS, .count = 2 };
	fake_log((const uint64_t[]){ t0, t0 + 5, t0 + 10 }, 3);
	run.sh->w[0].g[0].end = t0 + 10;
	run.sh->w[0].g[1].end = t0 + 15;
	assert_false(gh_check(&run, 0).over);
	lim[0].count = 1;
	assert_true(gh_check(&run, 0).over);
	/* quota: the grants of the run */
	lim[0] = (struct gh_limit){ .name = "q", .kind = GH_QUOTA, .count = 2 };
	assert_true(gh_check(&run, 0).over);
	lim[0].count = 3;
	assert_false(gh_check(&run, 0).over);
	memset(&run, 0, sizeof(run));
}

/*
 * The check has teeth: the same figures held per host (scope: host) let
 * three hosts grant about three times the limit, and the check of the
 * merged log says so.
 */
static void host_limits_over(void **state)
{
	struct gh_check c;

	(void)state;
	nlim = 1;
	lim[0] = (struct gh_limit){ .name = "h3", .kind = GH_HOSTRATE, .count = 90,
				    .period_ns = VRL_NS_PER_S, .burst = 3 };
	start_hosts();
	demand_all(1);
	wait_grants_after(0, ALL_HOSTS, 0);
	gh_pace(2 * LEASE_NS);
	gh_workers_stop(&run);
	c = gh_check(&run, 0);
	assert_true(c.over);
	assert_true(c.worst > c.bound);
}

/*
 * A global rate needs burst >= hosts: less is refused, with a message that
 * names the limit and says how to write it.
 */
static void small_burst_refused(void **state)
{
	char dir[256], conf[300], log[300], prom[300], seg[VRL_SHM_NAME_MAX], out[400], cmd[700];

	(void)state;
	if (!global_kind[GH_RATE])
		skip();
	assert_int_equal(vrld_fresh_paths("ge-burst", dir, conf, log, prom, seg), 0);
	snprintf(out, sizeof(out), "%s/check.out", dir);
	snprintf(cmd, sizeof(cmd),
		 "segment: {name: \"%s\", keys: 100}\n"
		 "global: {redis: [\"unix:%s/redis.sock\"], host: a, lease: 250ms, hosts: 3}\n"
		 "limits:\n  - {name: tight, match: {api: x}, rate: 150/s, burst: 1, "
		 "scope: global}\n", seg, dir);
	vrld_write_file(conf, cmd);
	assert_int_not_equal(vrld_check(conf, out), 0);
	if (!vrld_log_has(out, "tight") || !vrld_log_has(out, "burst 3")) {
		snprintf(cmd, sizeof(cmd), "cat '%s' >&2", out);
		(void)!system(cmd);
		fail_msg("vrld --check did not name the limit and a burst of 3");
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/*
 * The load spread, then moving: c starts asking while a and b hold the
 * whole limit, then a stops. Every interval stays within every limit.
 */
static void spread_and_moves(void **state)
{
	uint64_t v0[GH_LIMITS_MAX];

	(void)state;
	if (nlim == 0)
		skip();
	/* a and b alone take the shares */
	gh_demand(&run, 0, all_mask());
	gh_demand(&run, 1, all_mask());
	for (unsigned l = 0; l < nlim; l++)
		if (has_share(l)) {
			wait_share(l, 0, figure(l) / 4);
			wait_share(l, 1, figure(l) / 4);
		}
	/* c asks: within three lease terms (+ W) it holds a larger share */
	for (unsigned l = 0; l < nlim; l++)
		v0[l] = has_share(l) ? share_of(l).vnow : 0;
	gh_demand(&run, 2, all_mask());
	for (unsigned l = 0; l < nlim; l++) {
		uint64_t v1;

		if (!has_share(l))
			continue;
		v1 = wait_share(l, 2, figure(l) / (2 * GH_HOSTS));
		printf("# %s: c held %llu of %llu %.2f lease terms after it asked\n", lim[l].name,
		       (unsigned long long)share_of(l).a[2], (unsigned long long)figure(l),
		       (double)(v1 - v0[l]) / (double)TERM_US);
		assert_true(v1 - v0[l] <= follow_us(l));
	}
	/* a stops: three terms (+ W) later it holds nothing */
	for (unsigned l = 0; l < nlim; l++)
		v0[l] = has_share(l) ? share_of(l).vnow : 0;
	gh_demand(&run, 0, 0);
	for (unsigned l = 0; l < nlim; l++) {
		struct gh_share s;

		if (!has_share(l))
			continue;
		wait_us(l, v0[l], follow_us(l));
		s = share_of(l);
		printf("# %s: idle a holds %llu (burst %llu) of %llu, b %llu, c %llu\n", lim[l].name,
		       (unsigned long long)s.a[0], (unsigned long long)s.b[0],
		       (unsigned long long)figure(l), (unsigned long long)s.a[1],
		       (unsigned long long)s.a[2]);
		assert_int_equal(s.a[0], 0);
		assert_int_equal(s.b[0], 0);
	}
	check_all();
}

/*
 * Faults under a steady load on every host: vrld b SIGKILLed (and
 * restarted on its segment two terms later), Redis stopped (SIGSTOP) for
 * 5 s, twenty lease terms, Redis restarted with its data wiped. After each, every
 * host grants again; over the whole run, every interval stays within
 * every limit.
 */
static void faults(void **state)
{
	uint64_t t;

	(void)state;
	if (nlim == 0)
		skip();
	demand_all(all_mask());
	wait_grants_after(0, ALL_HOSTS, 0);
	gh_pace(2 * LEASE_NS);

	gh_kill_vrld(&run, 1);
	gh_pace(2 * LEASE_NS);
	t = vrl_now_ns();
	assert_int_equal(gh_restart_vrld(&run, 1), 0);
	wait_grants_after(0, ALL_HOSTS, t);

	gh_redis_pause(&run);                    /* SIGSTOP for 5 s: 20 lease terms */
	gh_pace(5 * VRL_NS_PER_S);
	gh_redis_resume(&run);
	t = vrl_now_ns();
	wait_grants_after(0, ALL_HOSTS, t);

	gh_redis_wipe(&run);
	t = vrl_now_ns();
	wait_grants_after(0, ALL_HOSTS, t);
	gh_pace(2 * LEASE_NS);
	for (unsigned l = 0; l < nlim; l++)
		if (lim[l].kind == GH_QUOTA)
			quota_drained(l, 1);
	check_all();
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(check_is_exact),
		cmocka_unit_test_teardown(host_limits_over, teardown),
		cmocka_unit_test(small_burst_refused),
		cmocka_unit_test_setup_teardown(spread_and_moves, setup, teardown),
		cmocka_unit_test_setup_teardown(faults, setup, teardown),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s VRLD\n", argv[0]);
		return 2;
	}
	vrld_path = argv[1];
	if (!rfx_available()) {
		printf("redis-server is not installed (Debian: redis-server): skipped\n");
		return 77;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests_name("global_hosts", tests, NULL, NULL);
}
