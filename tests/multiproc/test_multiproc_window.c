/*
 * test_multiproc_window.c - forked processes hammer one window key (small
 * N and W) for a couple of seconds, some of them through waiting acquires,
 * and a few are SIGKILLed mid-run. From the grant times the verdicts give:
 * no interval of length W may hold more than N grants, and every denial
 * sampled must have found N grants in the window before it. Both hold on
 * any machine, however loaded; the share of the window used is printed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"
#include "share.h"

enum { PROCS = 10, KILLED = 3, N = 40, MAX_GRANTS = 64 * 1024, SAMPLE = 4096 };

#define W_NS    (100 * 1000 * 1000ull)     /* 100 ms */
#define RUN_NS  (2 * NS_PER_S)
#define AHEAD   (W_NS / 4)                 /* a waiter reserves at most this far ahead */

struct record {
	_Atomic size_t n;
	struct test_grant g[MAX_GRANTS];
	size_t nd[PROCS];                      /* denials sampled, by process */
	struct test_denial d[PROCS][SAMPLE];
};

static void record(struct record *rec, uint32_t key, uint64_t at)
{
	size_t k = atomic_fetch_add(&rec->n, 1);

	if (k >= MAX_GRANTS)
		_exit(4);
	rec->g[k] = (struct test_grant){ .at = at, .key = key, .state = TEST_GRANTED };
}

/* Keep a uniform sample of SAMPLE denials (reservoir sampling). */
static void sample_denial(struct record *rec, int id, uint32_t key, const struct vrl_verdict *v,
			  uint64_t *seen)
{
	uint64_t k = (*seen)++, slot = k < SAMPLE ? k : (uint64_t)rand() % (k + 1);

	if (slot >= SAMPLE)
		return;
	rec->d[id][slot] = (struct test_denial){ .at = v->at_ns, .after = vrl_now_ns(),
						  .key = key };
	if (k < SAMPLE)
		rec->nd[id] = k + 1;
}

static void worker(const char *seg, int id, struct record *rec, uint64_t until)
{
	vrl_client *c = test_open(seg);
	struct vrl_request req = { .api = "evenergy", .token = "app", .user = "u" };
	struct vrl_request churn = { .api = "evenergy", .token = "app", .user = "v" };
	vrl_resolved *r;
	uint64_t seen = 0;

	srand((unsigned)id + 1);
	if (vrl_resolve(c, &req, &r) != 0)
		_exit(2);
	while (vrl_now_ns() < until) {
		struct vrl_verdict v;
		int rc;

		/* a third wait up to W/4 (reservations in the future), a third
		 * acquire by string keys, a third through a resolved request */
		rc = id % 3 == 0 ? vrl_acquire_wait(c, &req, AHEAD, &v) :
		     id % 3 == 1 ? vrl_acquire(c, &req, &v) : vrl_acquire_resolved(c, r, 0, &v);
		if (rc != 0 && rc != VRL_EDENIED)
			_exit(3);
		if (rc == 0)
			record(rec, 0, v.at_ns);
		else if (rc == VRL_EDENIED)
			sample_denial(rec, id, 0, &v, &seen);
		/* the churned key: active one third of each 3 W, idle after */
		if ((vrl_now_ns() / W_NS) % 3 != 0)
			continue;
		rc = vrl_acquire(c, &churn, &v);
		if (rc != 0 && rc != VRL_EDENIED)
			_exit(3);
		if (rc == 0)
			record(rec, 1, v.at_ns);
		else if (rc == VRL_EDENIED)
			sample_denial(rec, id, 1, &v, &seen);
	}
	vrl_resolved_free(r);
	vrl_close(c);
	_exit(0);
}

static void window_holds_across_processes_and_kills(void **state)
{
	struct vrl_seg_config cfg = { 0 };
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];
	struct record *rec = test_shared(sizeof(*rec));
	pid_t pids[PROCS];
	uint64_t start, until, first, last, worst, allowed, evicted = 0;
	size_t n, checked = 0;

	(void)state;
	test_add_window(&cfg, "ev", "evenergy", N, W_NS, 4,
			(int[]){ VRL_FIELD_TOKEN, VRL_FIELD_USER, -1 });
	test_segment("window-mp", &cfg, 100, &seg, name);
	start = vrl_now_ns();
	until = start + RUN_NS;
	for (int p = 0; p < PROCS; p++) {
		pids[p] = fork();
		assert_true(pids[p] >= 0);
		if (pids[p] == 0)
			worker(name, p, rec, until);
	}
	/* sweep as vrld does, and kill a few mid-run, wherever they are */
	for (int p = 0; vrl_now_ns() < until; ) {
		struct timespec ts = { 0, 2 * 1000 * 1000 };

		evicted += vrl_seg_sweep(&seg, 0, seg.view.nslots, vrl_now_ns(), 0);
		if (p < KILLED && vrl_now_ns() > start + (uint64_t)(p + 1) * RUN_NS / (KILLED + 2))
			kill(pids[PROCS - 1 - p++], SIGKILL);
		nanosleep(&ts, NULL);
	}
	for (int p = 0; p < PROCS; p++) {
		int st;

		assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
		if (p >= PROCS - KILLED)
			continue;
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	n = atomic_load(&rec->n);
	/* the churned key, idle since the workers stopped, goes at the next
	 * sweep once a window has passed (time must pass: a sleep) */
	{
		struct timespec ts = { 0, (long)W_NS + 1000000 };

		nanosleep(&ts, NULL);
		evicted += vrl_seg_sweep(&seg, 0, seg.view.nslots, vrl_now_ns(), 0);
	}
	/* never over: at most N in every half-open interval [t, t + W) */
	assert_int_equal(test_check_windows(rec->g, n, 1, N, UINT64_MAX, W_NS - 1, &worst), 0);
	printf("# churned key: %zu grants, %llu evictions, busiest window %llu of %u\n",
	       test_count_grants(rec->g, n, 1, &first, &last), (unsigned long long)evicted,
	       (unsigned long long)worst, N);
	assert_true(evicted > 0);
	assert_int_equal(test_check_windows(rec->g, n, 0, N, UINT64_MAX, W_NS - 1, &worst), 0);
	/* never under without a cause: each sampled denial found N grants in
	 * the window before it (a killed worker's last grant may be unseen) */
	for (int p = 0; p < PROCS; p++)
		for (uint32_t key = 0; key < 2; key++) {
			unsigned bad = test_check_window_denials(rec->g, n, key, N, W_NS, AHEAD,
								 KILLED, rec->d[p], rec->nd[p]);

			if (bad)
				fail_msg("%u of %zu denials of key %u not justified", bad,
					 rec->nd[p], key);
			checked += rec->nd[p];
		}
	/* the share used: a figure of this machine, printed */
	n = test_count_grants(rec->g, n, 0, &first, &last);
	allowed = N * ((last - first) / W_NS + 1);
	printf("# %zu grants, %llu allowed (%.1f%% used), busiest window %llu of %u, "
	       "%zu denials checked\n", n, (unsigned long long)allowed,
	       100.0 * (double)n / (double)allowed, (unsigned long long)worst, N, checked / 2);
	test_segment_drop(&seg, name);
}

/* ---- a global window key's cap (window.c WIN.W7, acquire.c AQ.S5) ---------- */

#define CAP1 20u                           /* the share before the shrink */
#define CAP2 8u                            /* and after */

static void capped_worker(const char *seg, int id, struct record *rec, uint64_t until)
{
	vrl_client *c = test_open(seg);
	struct vrl_request req = { .api = "evenergy", .token = "app", .user = "u" };

	while (vrl_now_ns() < until) {
		struct vrl_verdict v;
		int rc = id % 3 == 0 ? vrl_acquire_wait(c, &req, AHEAD, &v) :
			 vrl_acquire(c, &req, &v);

		if (rc != 0 && rc != VRL_EDENIED)
			_exit(3);
		if (rc == 0)
			record(rec, 0, v.at_ns);
	}
	vrl_close(c);
	_exit(0);
}

/* The slot of the segment's one live key. */
static uint64_t live_slot(const struct vrl_seg *seg)
{
	for (uint64_t i = 0; i < seg->view.nslots; i++) {
		uint64_t tag = atomic_load(&seg->view.slots[i].tag);

		if ((tag & VRL_TAG_LIVE) && !(tag & VRL_TAG_PENDING))
			return i;
	}
	fail_msg("no live key");
	return 0;
}

/* Grants of @g[0 .. n) at or after @from, into @out; their count. */
static size_t grants_from(const struct test_grant *g, size_t n, uint64_t from,
			  struct test_grant *out)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++)
		if (g[i].at >= from)
			out[m++] = g[i];
	return m;
}

/*
 * Processes hammer one global window key (N = 40) whose share is a cap
 * of CAP1, shrunk to CAP2 halfway as vrld would store it: no interval of
 * W holds more than CAP1 grants, and none that starts after the shrink
 * (a millisecond after: the store's way to the other cores) more than
 * CAP2, however the grants and checks interleave.
 */
static void global_cap_holds_across_processes(void **state)
{
	struct vrl_seg_config cfg = { 0 };
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];
	struct record *rec = test_shared(sizeof(*rec));
	struct test_grant *after = calloc(MAX_GRANTS, sizeof(*after));
	struct vrl_request req = { .api = "evenergy", .token = "app", .user = "u" };
	struct vrl_verdict v;
	_Atomic uint64_t *word;
	pid_t pids[PROCS];
	uint64_t start, until, shrunk, worst1, worst2;
	vrl_client *c;
	size_t n, m;

	(void)state;
	test_add_window(&cfg, "ev", "evenergy", N, W_NS, 4,
			(int[]){ VRL_FIELD_TOKEN, VRL_FIELD_USER, -1 })->flags |= VRL_LIMIT_GLOBAL;
	test_segment("window-cap-mp", &cfg, 100, &seg, name);
	c = test_open(name);
	assert_int_equal(vrl_acquire(c, &req, &v), VRL_EDENIED);   /* the key, no share yet */
	vrl_close(c);
	word = &seg.view.shares[live_slot(&seg)].word;
	start = vrl_now_ns();
	vrl_share_mark(&seg.hdr->share_fill_ns, start);
	vrl_share_set_cap(word, CAP1, start + 60 * NS_PER_S);
	until = start + RUN_NS / 2;
	for (int p = 0; p < PROCS; p++) {
		pids[p] = fork();
		assert_true(pids[p] >= 0);
		if (pids[p] == 0)
			capped_worker(name, p, rec, until);
	}
	while (vrl_now_ns() < start + RUN_NS / 4)
		sched_yield();
	shrunk = vrl_now_ns();
	vrl_share_mark(&seg.hdr->share_fill_ns, shrunk);           /* FW1: mark, then store */
	vrl_share_set_cap(word, CAP2, shrunk + 60 * NS_PER_S);
	for (int p = 0; p < PROCS; p++) {
		int st;

		assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	n = atomic_load(&rec->n);
	assert_int_equal(test_check_windows(rec->g, n, 0, CAP1, UINT64_MAX, W_NS - 1, &worst1), 0);
	m = grants_from(rec->g, n, shrunk + 1000000, after);
	assert_true(m > 0);
	assert_int_equal(test_check_windows(after, m, 0, CAP2, UINT64_MAX, W_NS - 1, &worst2), 0);
	printf("# %zu grants, busiest window %llu of cap %u; after the shrink %zu, busiest %llu "
	       "of %u\n", n, (unsigned long long)worst1, CAP1, m, (unsigned long long)worst2,
	       CAP2);
	free(after);
	test_segment_drop(&seg, name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(window_holds_across_processes_and_kills),
		cmocka_unit_test(global_cap_holds_across_processes),
	};

	return cmocka_run_group_tests_name("multiproc_window", tests, NULL, NULL);
}
