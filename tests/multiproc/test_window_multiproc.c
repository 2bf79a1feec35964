/*
 * test_window_multiproc.c - forked processes hammer one window key (small
 * N and W) for a couple of seconds, some of them through waiting acquires,
 * and a few are SIGKILLed mid-run. From the grant times the verdicts give:
 * no interval of length W may hold more than N grants, and most of what the
 * window allowed must have been granted.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"

enum { PROCS = 10, KILLED = 3, N = 40, MAX_GRANTS = 64 * 1024 };

#define W_NS    (100 * 1000 * 1000ull)     /* 100 ms */
#define RUN_NS  (2 * NS_PER_S)

/*
 * Share of the allowed grants that must be made. The window is exact, but
 * on a loaded two-core machine every process may be off the CPU when
 * positions come free, and each kill may leave a position taken for one W;
 * the bound checks that the window is not starved, not how fast it is.
 */
#define MIN_USE_PERCENT 70u

struct record {
	_Atomic size_t n;
	struct test_grant g[MAX_GRANTS];
};

static void worker(const char *seg, int id, struct record *rec, uint64_t until)
{
	vrl_client *c = test_open(seg);
	struct vrl_request req = { .api = "evenergy", .token = "app", .user = "u" };

	while (vrl_now_ns() < until) {
		struct vrl_verdict v;
		int rc;

		/* a third wait up to W/4: reservations in the future */
		rc = id % 3 == 0 ? vrl_acquire_wait(c, &req, W_NS / 4, &v) :
				   vrl_acquire(c, &req, &v);
		if (rc == VRL_EDENIED)
			continue;
		if (rc != 0)
			_exit(3);
		size_t k = atomic_fetch_add(&rec->n, 1);

		if (k >= MAX_GRANTS)
			_exit(4);
		rec->g[k] = (struct test_grant){ .at = v.at_ns, .state = TEST_GRANTED };
	}
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
	uint64_t start, until, first, last, worst, allowed;
	size_t n;

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
	/* kill a few mid-run, wherever they are */
	for (int p = 0; p < KILLED; p++) {
		struct timespec ts = { 0, (long)(RUN_NS / (KILLED + 2)) };

		nanosleep(&ts, NULL);
		kill(pids[PROCS - 1 - p], SIGKILL);
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
	/* never over: at most N in every half-open interval [t, t + W) */
	assert_int_equal(test_check_windows(rec->g, n, UINT32_MAX, N, UINT64_MAX, W_NS - 1,
					    &worst), 0);
	assert_true(worst <= N);
	/* and not under */
	assert_int_equal(test_count_grants(rec->g, n, UINT32_MAX, &first, &last), n);
	allowed = N * ((last - first) / W_NS + 1);
	printf("# %zu grants, %llu allowed (%.1f%%), busiest window %llu of %u\n", n,
	       (unsigned long long)allowed, 100.0 * (double)n / (double)allowed,
	       (unsigned long long)worst, N);
	assert_true(n * 100 >= allowed * MIN_USE_PERCENT);
	test_segment_drop(&seg, name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(window_holds_across_processes_and_kills),
	};

	return cmocka_run_group_tests_name("window_multiproc", tests, NULL, NULL);
}
