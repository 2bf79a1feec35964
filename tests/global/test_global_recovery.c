/*
 * test_global_recovery.c - a Redis restarted with its data wiped, seen by
 * simulated hosts calling vrl.lua directly: no share is granted before the
 * fence ends; quota counters are seeded from what the live hosts report;
 * a quota whose holder does not report stays fenced until it does, or an
 * operator re-seeds it (vrl_reseed) or forgets the host (vrl_forget).
 *
 * Skipped (exit 77) when redis-server is not installed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_fixture.h"

#define TERM_US   UINT64_C(300000)
#define MARGIN_US UINT64_C(15000)
#define HANG_NS   (UINT64_C(30) * 1000000000u)  /* a deadline for hangs only */
#define NKEYS 5

enum { WR, Q1, Q2, Q4, Q5 };
static const char *const KEY[NKEYS] = { "wr", "q1", "q2", "q4", "q5" };

/* A host and what it holds of each key. */
struct rhost {
	struct sim_host h;
	bool has[NKEYS];
	uint64_t alloc[NKEYS], used[NKEYS], rate, burst;
	char holders[NKEYS][256];
	struct sim_answer an[NKEYS];
	int idx[NKEYS];         /* answer index of each key in the last call */
};

/* One tick: every key the host has, quotas used by up to 2 units each. */
static void tick(redisContext *c, struct rhost *r)
{
	struct sim_entry e[NKEYS];
	struct sim_answer an[NKEYS];
	size_t n = 0;

	for (int k = 0; k < NKEYS; k++) {
		uint64_t want = 2, got;

		r->idx[k] = -1;
		if (!r->has[k])
			continue;
		if (k == WR) {
			e[n] = (struct sim_entry){ .kind = 'r', .key = KEY[k], .cap = 100000000,
				.per = 1000000, .bst = 10, .use = 1, .unmet = 1, .sa = r->rate,
				.sb = r->burst };
		} else {
			if (k == Q4 || (k == Q5 && strcmp(r->h.name, "d") != 0))
				want = 0;        /* these only follow the key */
			got = r->alloc[k] - r->used[k] < want ? r->alloc[k] - r->used[k] : want;
			r->used[k] += got;
			e[n] = (struct sim_entry){ .kind = 'q', .key = KEY[k], .cap = 100, .sb = 7,
				.use = got, .unmet = want - got, .sa = r->alloc[k],
				.hold = r->used[k], .known = r->holders[k], .ttl = 60000 };
		}
		r->idx[k] = (int)n++;
	}
	assert_int_equal(sim_call(c, &r->h, false, e, n, an), 0);
	for (int k = 0; k < NKEYS; k++) {
		if (r->idx[k] < 0)
			continue;
		r->an[k] = an[r->idx[k]];
		if (k == WR) {
			/* no share is granted before the fence ends */
			if (r->an[k].a > 0 || r->an[k].b > 0)
				assert_int_equal(r->h.fence_left, 0);
			r->rate = r->an[k].a;
			r->burst = r->an[k].b;
			continue;
		}
		/* an allocation is never taken away by Redis */
		assert_true(r->an[k].a >= r->alloc[k]);
		r->alloc[k] = r->an[k].a;
		snprintf(r->holders[k], sizeof(r->holders[k]), "%s", r->an[k].holders);
	}
}

static void host(struct rhost *r, const char *name, const int *keys)
{
	memset(r, 0, sizeof(*r));
	sim_host_init(&r->h, name, TERM_US, MARGIN_US, 4);
	for (; *keys >= 0; keys++)
		r->has[*keys] = true;
}

static uint64_t ledger_used(redisContext *c, const char *key, uint64_t *sum)
{
	struct sim_state s;

	assert_int_equal(sim_state(c, key, &s), 0);
	*sum = 0;
	for (unsigned i = 0; i < s.nhosts; i++)
		*sum += s.h[i].a;
	return s.used;
}

/* Tick @a and @b until key @k answers @code to both, or a hang. */
static void until_code(redisContext *c, struct rhost *a, struct rhost *b, int k, int code)
{
	uint64_t deadline = rfx_now() + HANG_NS;

	for (;;) {
		tick(c, a);
		tick(c, b);
		if (a->an[k].code == code && (!b->has[k] || b->an[k].code == code))
			return;
		assert_true(rfx_now() < deadline);
		rfx_pace(10);
	}
}

static void wipe(void **state)
{
	struct rfx r;
	redisContext *c;
	struct rhost a, b, hc, d;
	uint64_t seeded, sum, used, deadline;
	redisReply *rep;

	(void)state;
	rfx_start(&r);
	c = rfx_connect(&r);
	host(&a, "a", (const int[]){ WR, Q1, Q2, Q4, Q5, -1 });
	host(&b, "b", (const int[]){ WR, Q1, Q2, -1 });
	host(&hc, "c", (const int[]){ WR, Q2, -1 });
	host(&d, "d", (const int[]){ WR, Q5, -1 });
	a.has[Q4] = false;                          /* q4: a key nobody has yet */
	/* the old epoch: everyone leases units, once past its own fence */
	until_code(c, &d, &hc, WR, 0);
	for (int i = 0; i < 4; i++) {
		tick(c, &d);
		tick(c, &a);
		tick(c, &b);
		tick(c, &hc);
		rfx_pace(10);
	}
	assert_true(a.alloc[Q1] > 0 && b.alloc[Q1] > 0 && hc.alloc[Q2] > 0 && d.alloc[Q5] > 0);
	assert_non_null(strstr(a.holders[Q5], "d"));
	/* c and d go away; Redis loses everything */
	redisFree(c);
	rfx_restart_empty(&r);
	c = rfx_connect(&r);
	a.has[Q4] = true;
	/* fenced: shares 0 (tick asserts it), allocations kept */
	tick(c, &a);
	assert_true(a.h.lost && a.h.fence_left > 0);
	assert_int_equal(a.an[Q1].code, 1);
	/* q1's holders (a, b) both report: it opens, seeded from their reports */
	seeded = a.alloc[Q1] + b.alloc[Q1];
	until_code(c, &a, &b, Q1, 0);
	used = ledger_used(c, "q1", &sum);
	assert_true(used >= seeded);
	assert_int_equal(used, sum);
	/* and shares flow again */
	until_code(c, &a, &b, WR, 0);
	assert_true(a.rate > 0 || b.rate > 0);
	/* q2 waits for c, q5 for d, q4 (nobody knew it) for every host the old
	 * epoch knew: they stay fenced, with no more units, for a while */
	deadline = rfx_now() + 2 * TERM_US * 1000u;
	while (rfx_now() < deadline) {
		uint64_t before = a.alloc[Q2];

		tick(c, &a);
		tick(c, &b);
		assert_int_equal(a.an[Q2].code, 2);
		assert_int_equal(a.an[Q4].code, 2);
		assert_int_equal(a.an[Q5].code, 2);
		assert_int_equal(a.alloc[Q2], before);
		rfx_pace(10);
	}
	/* c comes back and reports: q2 opens with all three counted */
	seeded = a.alloc[Q2] + b.alloc[Q2] + hc.alloc[Q2];
	tick(c, &hc);
	until_code(c, &a, &b, Q2, 0);
	used = ledger_used(c, "q2", &sum);
	assert_true(used >= seeded);
	assert_int_equal(used, sum);
	assert_int_equal(a.an[Q4].code, 2);         /* d still missing */
	/* the operator re-seeds q5 with d's units: it opens */
	rep = redisCommand(c, "FCALL vrl_reseed 1 " RFX_KEY_PREFIX "q5 %llu",
			   (unsigned long long)(d.alloc[Q5] + a.alloc[Q5]));
	assert_true(rep && rep->type == REDIS_REPLY_INTEGER);
	freeReplyObject(rep);
	until_code(c, &a, &b, Q5, 0);
	assert_int_equal(a.an[Q4].code, 2);
	/* and forgets d for good: q4 opens too */
	rep = redisCommand(c, "FCALL vrl_forget 1 " RFX_EPOCH_KEY " d");
	assert_true(rep && rep->type == REDIS_REPLY_INTEGER);
	freeReplyObject(rep);
	until_code(c, &a, &b, Q4, 0);
	redisFree(c);
	rfx_stop(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(wipe),
	};

	if (!rfx_available()) {
		printf("redis-server is not installed (Debian: redis-server): skipped\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
