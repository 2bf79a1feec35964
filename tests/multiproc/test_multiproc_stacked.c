/*
 * test_multiproc_stacked.c - 16 forked processes hammer one stacked limit (per
 * organisation and per token, like Samsara's) for a few seconds and record
 * every grant with the time it counts at, and a sample of their denials.
 * The limits must hold over every window (never over), and every denial
 * sampled must be justified by what its key had taken (never under without
 * a cause). Both hold however slow or busy the machine is; the share of
 * the allowance used is printed, not asserted: it depends on the machine.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common.h"

enum { PROCS = 16, TOKENS = 4, MAX_GRANTS = 64 * 1024, SAMPLE = 4096 };

#define RUN_NS      (3 * NS_PER_S)
#define ORG_RATE    3000u      /* per second: binds, the tokens add up to 4000 */
#define ORG_BURST   60u
#define TOKEN_RATE  1000u
#define TOKEN_BURST 20u

enum { L_ORG, L_TOKEN };   /* limit indexes, in the order they are added */

struct record {
	_Atomic size_t n;
	struct test_grant g[MAX_GRANTS];           /* grants, and permits kept */
	size_t nd[PROCS][2];                       /* denials sampled, by limit */
	struct test_denial d[PROCS][2][SAMPLE];    /* by process and limit */
};

static const char *token_name[TOKENS] = { "t0", "t1", "t2", "t3" };
static struct record *rec;
static int cur_tok;         /* the token of the worker's acquire in progress */

static void log_taken(uint64_t at, uint32_t key, uint32_t state)
{
	size_t k = atomic_fetch_add(&rec->n, 1);

	if (k >= MAX_GRANTS)
		_exit(4);
	rec->g[k] = (struct test_grant){ .at = at, .key = key, .state = state };
}

/* vrl__kept: a rollback left permits taken; the org key is key TOKENS */
static void kept(uint32_t limit, uint64_t at, uint64_t cost)
{
	for (uint64_t i = 0; i < cost; i++)
		log_taken(at, limit == L_ORG ? TOKENS : (uint32_t)cur_tok, TEST_KEPT);
}

/* Keep a uniform sample of SAMPLE denials per limit (reservoir sampling). */
static void sample_denial(int id, const struct vrl_verdict *v, uint64_t seen[2])
{
	int l = v->limit == L_ORG ? L_ORG : L_TOKEN;
	uint64_t k = seen[l]++, slot = k < SAMPLE ? k : (uint64_t)rand() % (k + 1);

	if (slot >= SAMPLE)
		return;
	rec->d[id][l][slot] = (struct test_denial){ .at = v->at_ns, .after = vrl_now_ns(),
						     .key = l == L_ORG ? TOKENS : (uint32_t)cur_tok };
	if (k < SAMPLE)
		rec->nd[id][l] = k + 1;
}

/* Half the workers acquire by string keys, half through resolved requests. */
static void worker(const char *seg, int id, uint64_t until)
{
	vrl_client *c = test_open(seg);
	vrl_resolved *res[TOKENS];
	struct vrl_request req = { .api = "samsara", .org = "acme" };
	uint64_t seen[2] = { 0, 0 };

	srand((unsigned)id + 1);
	vrl__kept = kept;
	for (int t = 0; t < TOKENS; t++) {
		req.token = token_name[t];
		if (vrl_resolve(c, &req, &res[t]) != 0)
			_exit(2);
	}
	for (unsigned i = (unsigned)id; vrl_now_ns() < until; i++) {
		struct vrl_verdict v;
		int rc;

		cur_tok = (int)(i % TOKENS);
		req.token = token_name[cur_tok];
		rc = id % 2 ? vrl_acquire(c, &req, &v) :
			      vrl_acquire_resolved(c, res[cur_tok], 0, &v);
		if (rc == VRL_EDENIED) {
			sample_denial(id, &v, seen);
			continue;
		}
		if (rc != 0)
			_exit(3);
		log_taken(v.at_ns, (uint32_t)cur_tok, TEST_GRANTED);
	}
	for (int t = 0; t < TOKENS; t++)
		vrl_resolved_free(res[t]);
	vrl_close(c);
	_exit(0);
}

/*
 * Every sampled denial of limit @l is justified by what its key had taken:
 * the org key every grant and the org permits rollbacks kept, a token key
 * its own. Returns how many denials were checked.
 */
static size_t check_denials(int l, const struct vrl_seg_limit *lim)
{
	size_t n = atomic_load(&rec->n), m = 0, total = 0;
	struct test_grant *view = malloc((n ? n : 1) * sizeof(*view));

	assert_non_null(view);
	for (size_t i = 0; i < n; i++)
		if (l == L_TOKEN || rec->g[i].state == TEST_GRANTED || rec->g[i].key == TOKENS)
			view[m++] = rec->g[i];
	for (int p = 0; p < PROCS; p++) {
		for (uint32_t key = 0; key < TOKENS; key++) {
			unsigned bad = test_check_denials(view, m, l == L_ORG ? UINT32_MAX : key,
							  lim->burst, lim->emission_ns,
							  rec->d[p][l], rec->nd[p][l]);

			if (bad)
				fail_msg("%u of %zu denials by %s not justified", bad,
					 rec->nd[p][l], lim->name);
			if (l == L_ORG)
				break;   /* the org's denials are checked at once */
		}
		total += rec->nd[p][l];
	}
	free(view);
	return total;
}

static void limits_hold_across_16_processes(void **state)
{
	struct vrl_seg_config cfg = { 0 };
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];
	struct vrl_seg_limit *org, *tok;
	pid_t pids[PROCS];
	uint64_t until, first, last, worst, allowed;
	size_t n, granted, denials;

	(void)state;
	rec = test_shared(sizeof(*rec));
	org = test_add_rate(&cfg, "org", "samsara", ORG_RATE, NS_PER_S, ORG_BURST,
			    (int[]){ VRL_FIELD_ORG, -1 });
	tok = test_add_rate(&cfg, "token", "samsara", TOKEN_RATE, NS_PER_S, TOKEN_BURST,
			    (int[]){ VRL_FIELD_TOKEN, -1 });
	test_segment("multiproc", &cfg, 1000, &seg, name);
	until = vrl_now_ns() + RUN_NS;
	for (int p = 0; p < PROCS; p++) {
		pids[p] = fork();
		assert_true(pids[p] >= 0);
		if (pids[p] == 0)
			worker(name, p, until);
	}
	for (int p = 0; p < PROCS; p++) {
		int st;

		assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	n = atomic_load(&rec->n);
	/* never over: every window from one interval to the whole run */
	const uint64_t windows[] = { org->emission_ns, NS_PER_S / 100, NS_PER_S / 10,
				     NS_PER_S, RUN_NS };
	for (size_t w = 0; w < sizeof(windows) / sizeof(windows[0]); w++) {
		assert_int_equal(test_check_windows(rec->g, n, UINT32_MAX, ORG_BURST,
						    org->emission_ns, windows[w], &worst), 0);
		for (uint32_t t = 0; t < TOKENS; t++)
			assert_int_equal(test_check_windows(rec->g, n, t, TOKEN_BURST,
							    tok->emission_ns, windows[w], &worst), 0);
	}
	/* never under without a cause: each denial had its key's bucket empty */
	denials = check_denials(L_ORG, org) + check_denials(L_TOKEN, tok);
	/* the share of the allowance used: a figure of this machine, printed */
	granted = test_count_grants(rec->g, n, UINT32_MAX, &first, &last);
	allowed = ORG_BURST + (last - first) / org->emission_ns;
	printf("# %zu grants, %llu allowed (%.2f%% used), %zu permits kept by rollbacks, "
	       "%zu denials checked\n", granted, (unsigned long long)allowed,
	       100.0 * (double)granted / (double)allowed, n - granted, denials);
	test_segment_drop(&seg, name);
}

/* The denial check has teeth: a denial with the bucket not empty fails it. */
static void unjustified_denials_are_caught(void **state)
{
	const uint64_t T = 1000, t0 = 1000000;
	struct test_grant g[3];
	struct test_denial d;

	(void)state;
	/* burst 3: three grants at t0 empty the bucket until t0 + T */
	for (int i = 0; i < 3; i++)
		g[i] = (struct test_grant){ .at = t0, .key = 0, .state = TEST_GRANTED };
	d = (struct test_denial){ .at = t0 + T / 2, .after = t0 + T / 2, .key = 0 };
	assert_int_equal(test_check_denials(g, 3, 0, 3, T, &d, 1), 0);
	/* one of them kept by a rollback instead: still empty */
	g[2].state = TEST_KEPT;
	assert_int_equal(test_check_denials(g, 3, 0, 3, T, &d, 1), 0);
	/* a permit has come back by t0 + T */
	d.at = d.after = t0 + T;
	assert_int_equal(test_check_denials(g, 3, 0, 3, T, &d, 1), 1);
	/* two grants leave room for a third */
	d.at = d.after = t0 + T / 2;
	assert_int_equal(test_check_denials(g, 2, 0, 3, T, &d, 1), 1);
	/* nothing taken: never a reason to deny */
	assert_int_equal(test_check_denials(g, 0, 0, 3, T, &d, 1), 1);
	/* a grant logged after the denial returned does not justify it */
	g[2] = (struct test_grant){ .at = t0 + T, .key = 0, .state = TEST_GRANTED };
	assert_int_equal(test_check_denials(g, 3, 0, 3, T, &d, 1), 1);

	/* a window of 3 in T: three grants within T before the denial */
	for (int i = 0; i < 3; i++)
		g[i] = (struct test_grant){ .at = t0 + (uint64_t)i, .key = 0,
					    .state = TEST_GRANTED };
	d = (struct test_denial){ .at = t0 + T / 2, .after = t0 + T / 2, .key = 0 };
	assert_int_equal(test_check_window_denials(g, 3, 0, 3, T, 0, 0, &d, 1), 0);
	assert_int_equal(test_check_window_denials(g, 2, 0, 3, T, 0, 0, &d, 1), 1);
	assert_int_equal(test_check_window_denials(g, 2, 0, 3, T, 0, 1, &d, 1), 0);
	d.at = d.after = t0 + T;     /* the first grant has left the window */
	assert_int_equal(test_check_window_denials(g, 3, 0, 3, T, 0, 0, &d, 1), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unjustified_denials_are_caught),
		cmocka_unit_test(limits_hold_across_16_processes),
	};

	return cmocka_run_group_tests_name("multiproc_stacked", tests, NULL, NULL);
}
