/*
 * test_multiproc_reload.c - reloads under load. Forked workers hammer one
 * rate key and log every grant; the test publishes new rates and bursts
 * mid-run through vrl_seg_reload(), the call vrld makes, and checks every
 * interval: never more than the loosest config in force during it allows
 * (gcra.h, the theorem), and, between two reloads, never more than that
 * config alone allows. A second test reloads in a storm while acquiring:
 * no call fails with VRL_EBUSY, and the limit still holds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"

enum { WORKERS = 8, STORM_WORKERS = 2, MAX_GRANTS = 64 * 1024 };

/* One grant: the caller's clock before and after the call, and the time
 * the library decided it at (verdict.at_ns, read inside the call). */
struct grant {
	uint64_t pre, at, post;
};

struct record {
	_Atomic size_t n;
	_Atomic int stop;
	_Atomic uint64_t errors;     /* calls that returned neither 0 nor VRL_EDENIED */
	_Atomic uint64_t busy;       /* of which VRL_EBUSY */
	_Atomic uint64_t denied;
	struct grant g[MAX_GRANTS];
};

/* A config of the sequence, and when it was in force. */
struct phase {
	uint64_t count, period_ns, burst;
	uint64_t emission;           /* its T, as vrl_gcra_init computes it */
	uint64_t start, done;        /* the parent's clock before / after publishing it */
};

static const struct vrl_request req = { .api = "samsara", .token = "t1" };

/* A config of one rate limit, and @pad limits that match nothing: they
 * make the config area long, so that copying it takes a while. */
static void make_config(struct vrl_seg_config *cfg, const struct phase *p, unsigned pad)
{
	memset(cfg, 0, sizeof(*cfg));
	test_add_rate(cfg, "token", "samsara", p->count, p->period_ns, p->burst,
		      (int[]){ VRL_FIELD_TOKEN, -1 });
	for (unsigned i = 0; i < pad; i++) {
		char name[32];

		snprintf(name, sizeof(name), "pad%u", i);
		test_add_rate(cfg, name, "nothing", 1, NS_PER_S, 1, (int[]){ VRL_FIELD_ORG, -1 });
	}
}

/* Half the workers acquire by fields, half through a resolved request. */
static void worker(const char *seg, int id, struct record *rec)
{
	vrl_client *c = test_open(seg);
	vrl_resolved *r = NULL;

	if (id % 2 && vrl_resolve(c, &req, &r) != 0)
		_exit(2);
	while (!atomic_load(&rec->stop)) {
		struct vrl_verdict v;
		uint64_t pre = vrl_now_ns(), post;
		int rc = r ? vrl_acquire_resolved(c, r, 0, &v) : vrl_acquire(c, &req, &v);

		post = vrl_now_ns();
		if (rc == VRL_EDENIED) {
			atomic_fetch_add(&rec->denied, 1);
			continue;
		}
		if (rc != 0) {
			atomic_fetch_add(&rec->errors, 1);
			if (rc == VRL_EBUSY)
				atomic_fetch_add(&rec->busy, 1);
			continue;
		}
		size_t k = atomic_fetch_add(&rec->n, 1);

		if (k >= MAX_GRANTS)
			_exit(4);
		rec->g[k] = (struct grant){ .pre = pre, .at = v.at_ns, .post = post };
	}
	vrl_resolved_free(r);
	vrl_close(c);
	_exit(0);
}

static void start_workers(const char *seg, struct record *rec, pid_t *pids, int workers)
{
	for (int p = 0; p < workers; p++) {
		pids[p] = fork();
		assert_true(pids[p] >= 0);
		if (pids[p] == 0)
			worker(seg, p, rec);
	}
}

static void stop_workers(struct record *rec, const pid_t *pids, int workers)
{
	atomic_store(&rec->stop, 1);
	for (int p = 0; p < workers; p++) {
		int st;

		assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
}

/* Wait (an event, not a time) until @n grants are recorded. */
static void wait_grants(struct record *rec, size_t n)
{
	struct timespec ms = { 0, 1000000 };

	while (atomic_load(&rec->n) < n)
		nanosleep(&ms, NULL);
}

static int by_at(const void *a, const void *b)
{
	const struct grant *x = a, *y = b;

	return x->at < y->at ? -1 : x->at > y->at;
}

static int by_pre(const void *a, const void *b)
{
	const struct grant *x = a, *y = b;

	return x->pre < y->pre ? -1 : x->pre > y->pre;
}

/*
 * The most grants that configs [@first, @last] of @ph allow in an interval
 * of @w: the loosest bucket plus the fastest rate.
 */
static uint64_t loosest(const struct phase *ph, size_t first, size_t last, uint64_t w)
{
	uint64_t b = 0, t = UINT64_MAX;

	for (size_t k = first; k <= last; k++) {
		b = ph[k].burst > b ? ph[k].burst : b;
		t = ph[k].emission < t ? ph[k].emission : t;
	}
	return b + w / t;
}

/* The configs in force at some time in [@a, @b]: config k from just before
 * its publication to just after the next one's (vrld converts every key
 * before vrl_seg_reload() returns). */
static void in_force(const struct phase *ph, size_t nph, uint64_t a, uint64_t b, size_t *first,
		     size_t *last)
{
	*first = 0;
	*last = nph - 1;
	for (size_t k = 0; k < nph; k++) {
		if (k + 1 < nph && ph[k + 1].done < a)
			*first = k + 1;
		if (ph[k].start > b && k > 0 && *last >= k)
			*last = k - 1;
	}
}

/*
 * Every interval between two grants, by the time the library decided them
 * at: the grants from the i-th to the j-th (sorted) number j - i + 1 and
 * span at least t_j - t_i, so checking these pairs checks every interval.
 * Returns how many pairs broke the bound; *@worst is the largest excess.
 */
static size_t check_at(struct grant *g, size_t n, const struct phase *ph, size_t nph,
		       int64_t *worst)
{
	size_t bad = 0;

	qsort(g, n, sizeof(*g), by_at);
	*worst = INT64_MIN;
	for (size_t i = 0; i < n; i++)
		for (size_t j = i; j < n; j++) {
			size_t first, last;
			uint64_t allowed;

			in_force(ph, nph, g[i].at, g[j].at, &first, &last);
			allowed = loosest(ph, first, last, g[j].at - g[i].at);
			if ((int64_t)(j - i + 1) - (int64_t)allowed > *worst)
				*worst = (int64_t)(j - i + 1) - (int64_t)allowed;
			bad += j - i + 1 > allowed;
		}
	return bad;
}

/*
 * The same bound from the callers' clocks alone, without trusting at_ns: a
 * grant whose call began at or after s and returned by e was decided in
 * [s, e]. For each pair (call i began first, call j returned last), count
 * the calls inside [pre_i, post_j].
 */
static size_t check_calls(struct grant *g, size_t n, const struct phase *ph, size_t nph)
{
	size_t bad = 0;

	qsort(g, n, sizeof(*g), by_pre);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i; j < n; j++) {
			uint64_t s = g[i].pre, e = g[j].post, inside = 0;
			size_t first, last;

			if (e < s)
				continue;
			for (size_t k = i; k < n && g[k].pre <= e; k++)
				inside += g[k].post <= e;
			in_force(ph, nph, s, e, &first, &last);
			bad += inside > loosest(ph, first, last, e - s);
		}
	return bad;
}

/* Between two reloads, the config in force alone: the key keeps at most a
 * full bucket across a reload, and the new rate applies at once. */
static size_t check_phases(struct grant *g, size_t n, const struct phase *ph, size_t nph)
{
	size_t bad = 0;

	qsort(g, n, sizeof(*g), by_at);
	for (size_t k = 0; k < nph; k++) {
		uint64_t from = ph[k].done, to = k + 1 < nph ? ph[k + 1].start : UINT64_MAX;

		for (size_t i = 0; i < n; i++) {
			if (g[i].at < from || g[i].at > to)
				continue;
			for (size_t j = i; j < n && g[j].at <= to; j++)
				bad += j - i + 1 > loosest(ph, k, k, g[j].at - g[i].at);
		}
	}
	return bad;
}

/*
 * The sequence: the reported case first (200/s -> 50/s, burst 10), then
 * burst up, rate up, burst down, rate up with burst down together. Each
 * reload waits for enough grants under the config before it.
 */
static void reload_keeps_the_looser_bound(void **state)
{
	struct phase ph[] = {
		{ .count = 200, .period_ns = NS_PER_S, .burst = 10 },
		{ .count = 50, .period_ns = NS_PER_S, .burst = 10 },   /* rate down */
		{ .count = 50, .period_ns = NS_PER_S, .burst = 20 },   /* burst up */
		{ .count = 200, .period_ns = NS_PER_S, .burst = 20 },  /* rate up */
		{ .count = 200, .period_ns = NS_PER_S, .burst = 4 },   /* burst down */
		{ .count = 400, .period_ns = NS_PER_S, .burst = 2 },   /* both */
		{ .count = 100, .period_ns = NS_PER_S, .burst = 8 },   /* rate down, burst up */
	};
	const size_t nph = sizeof(ph) / sizeof(ph[0]);
	struct vrl_seg_config *cfg = calloc(1, sizeof(*cfg));
	struct record *rec = test_shared(sizeof(*rec));
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX], why[256];
	pid_t pids[WORKERS];
	size_t n, bad;
	int64_t worst;

	(void)state;
	for (size_t k = 0; k < nph; k++) {
		struct vrl_gcra g;

		assert_int_equal(vrl_gcra_init(&g, ph[k].count, ph[k].period_ns, ph[k].burst), 0);
		ph[k].emission = g.emission_ns;
	}
	make_config(cfg, &ph[0], 0);
	ph[0].start = ph[0].done = vrl_now_ns();
	test_segment("reload-mp", cfg, 1000, &seg, name);
	start_workers(name, rec, pids, WORKERS);
	for (size_t k = 1; k < nph; k++) {
		/* enough grants that the key is emptied and runs at the rate */
		wait_grants(rec, atomic_load(&rec->n) + 3 * ph[k - 1].burst + 40);
		make_config(cfg, &ph[k], 0);
		ph[k].start = vrl_now_ns();
		assert_int_equal(vrl_seg_reload(&seg, cfg, why, sizeof(why)), 0);
		ph[k].done = vrl_now_ns();
	}
	wait_grants(rec, atomic_load(&rec->n) + 3 * ph[nph - 1].burst + 40);
	stop_workers(rec, pids, WORKERS);
	n = atomic_load(&rec->n);
	assert_int_equal(atomic_load(&rec->errors), 0);
	bad = check_at(rec->g, n, ph, nph, &worst);
	printf("# %zu grants over %zu configs; worst interval %+lld against the looser bound; "
	       "%zu intervals over it\n", n, nph, (long long)worst, bad);
	assert_int_equal(bad, 0);
	assert_int_equal(check_calls(rec->g, n, ph, nph), 0);
	assert_int_equal(check_phases(rec->g, n, ph, nph), 0);
	free(cfg);
	test_segment_drop(&seg, name);
}

/*
 * A reload storm: two configs published in turn as fast as vrld's publish
 * step goes (faster than a handle can copy one of them: each has 64
 * limits), while the workers acquire. A handle that cannot copy a config
 * keeps the one it has; no call returns VRL_EBUSY (nor any other error),
 * and the limit holds against the looser of the two. (The two configs
 * alternate, so a rate word's 3-bit epoch tag always names the parameters
 * it was written with, even without vrld's conversion pass.)
 */
static void reload_storm_never_busy(void **state)
{
	struct phase ph[2] = {
		{ .count = 200, .period_ns = NS_PER_S, .burst = 10 },
		{ .count = 100, .period_ns = NS_PER_S, .burst = 10 },
	};
	struct vrl_seg_config *cfg[2] = { calloc(1, sizeof(**cfg)), calloc(1, sizeof(**cfg)) };
	struct record *rec = test_shared(sizeof(*rec));
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];
	pid_t pids[WORKERS];
	struct phase all = { 0 };
	uint64_t reloads = 0;
	size_t n;
	int64_t worst;

	(void)state;
	for (size_t k = 0; k < 2; k++) {
		struct vrl_gcra g;

		assert_int_equal(vrl_gcra_init(&g, ph[k].count, ph[k].period_ns, ph[k].burst), 0);
		ph[k].emission = g.emission_ns;
		make_config(cfg[k], &ph[k], VRL_MAX_LIMITS - 1);
	}
	test_segment("reload-storm", cfg[0], 1000, &seg, name);
	/* few workers: the publisher keeps a core of its own */
	start_workers(name, rec, pids, STORM_WORKERS);
	/* reload until the workers have been granted a while under the storm */
	while (atomic_load(&rec->n) < 300)
		assert_int_equal(vrl_seg_publish(&seg, cfg[++reloads % 2]), 0);
	stop_workers(rec, pids, STORM_WORKERS);
	n = atomic_load(&rec->n);
	printf("# %llu reloads; %zu grants, %llu denials, %llu errors (%llu VRL_EBUSY)\n",
	       (unsigned long long)reloads, n, (unsigned long long)atomic_load(&rec->denied),
	       (unsigned long long)atomic_load(&rec->errors),
	       (unsigned long long)atomic_load(&rec->busy));
	assert_int_equal(atomic_load(&rec->busy), 0);
	assert_int_equal(atomic_load(&rec->errors), 0);
	/* both configs in force all along: the looser one bounds every interval */
	all = ph[0];
	all.start = 0;
	all.done = 0;
	assert_int_equal(check_at(rec->g, n, &all, 1, &worst), 0);
	free(cfg[0]);
	free(cfg[1]);
	test_segment_drop(&seg, name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reload_keeps_the_looser_bound),
		cmocka_unit_test(reload_storm_never_busy),
	};

	return cmocka_run_group_tests_name("multiproc_reload", tests, NULL, NULL);
}
