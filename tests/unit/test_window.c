/*
 * test_window.c - the exact rolling window: the step functions of window.c
 * with time passed by hand, then the window kind through the client on a
 * private segment.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common.h"
#include "client.h"   /* white box: vrl__reconcile */
#include "window.h"

#define W      UINT64_C(1000)          /* the window of the hand-timed tests */
#define T0     (UINT64_C(5) * W)       /* a start well after boot */

/* A ring of @n positions and its state word, zeroed. */
struct ring {
	_Atomic uint64_t state;
	_Atomic uint64_t pos[64];
	struct vrl_window_ref r;
};

static void ring_init(struct ring *g, uint64_t n)
{
	memset(g, 0, sizeof(*g));
	g->r = (struct vrl_window_ref){ .state = &g->state, .ring = g->pos, .n = n, .w = W };
}

/* Look then take @cost at @at; returns 0 granted, 1 denied, 2 evicted. */
static int grant(struct ring *g, uint64_t cost, uint64_t at, uint64_t *earliest)
{
	struct vrl_window_look lk;
	uint64_t committed;

	vrl_window_look(&g->r, atomic_load(&g->state), cost, at, &lk);
	if (earliest)
		*earliest = lk.earliest;
	if (lk.earliest != at)
		return 1;
	return vrl_window_take(&g->r, lk.first, cost, at, &committed);
}

/* The seed's edge, to the nanosecond: full at t0, denied at t0+W-1, free at t0+W. */
static void exact_edge(void **state)
{
	struct ring g;
	uint64_t e;

	(void)state;
	ring_init(&g, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(grant(&g, 1, T0, NULL), 0);
	assert_int_equal(grant(&g, 1, T0, &e), 1);
	assert_int_equal(e, T0 + W);
	assert_int_equal(grant(&g, 1, T0 + W - 1, &e), 1);
	assert_int_equal(e, T0 + W);
	assert_int_equal(vrl_window_free_count(&g.r, T0 + W - 1), 0);
	assert_int_equal(grant(&g, 1, T0 + W, NULL), 0);
	assert_int_equal(vrl_window_free_count(&g.r, T0 + W), 2);
	assert_int_equal(vrl_window_remaining(&g.r, T0 + W), 2);
}

/* Grants spread over the window free one by one, oldest first. */
static void rolling(void **state)
{
	struct ring g;
	uint64_t e;

	(void)state;
	ring_init(&g, 3);
	assert_int_equal(grant(&g, 1, T0, NULL), 0);
	assert_int_equal(grant(&g, 1, T0 + 100, NULL), 0);
	assert_int_equal(grant(&g, 1, T0 + 200, NULL), 0);
	assert_int_equal(grant(&g, 1, T0 + 300, &e), 1);
	assert_int_equal(e, T0 + W);
	assert_int_equal(grant(&g, 1, T0 + W, NULL), 0);
	assert_int_equal(grant(&g, 1, T0 + W, &e), 1);
	assert_int_equal(e, T0 + 100 + W);
	assert_int_equal(vrl_window_reset_at(&g.r, T0 + W), T0 + 2 * W);
	assert_int_equal(vrl_window_reset_est(&g.r, T0 + W), T0 + 2 * W);
	assert_int_equal(vrl_window_reset_est(&g.r, T0 + 3 * W), 0);
}

/* cost > 1 takes cost positions at once, or none; more than N never fits. */
static void cost_above_one(void **state)
{
	struct ring g;
	uint64_t e;

	(void)state;
	ring_init(&g, 4);
	assert_int_equal(grant(&g, 3, T0, NULL), 0);
	assert_int_equal(vrl_window_free_count(&g.r, T0), 1);
	assert_int_equal(grant(&g, 2, T0 + 10, &e), 1);
	assert_int_equal(e, T0 + W);
	assert_int_equal(vrl_window_free_count(&g.r, T0 + 10), 1); /* a denial takes nothing */
	assert_int_equal(grant(&g, 1, T0 + 10, NULL), 0);
	assert_int_equal(grant(&g, 4, T0 + W + 10, NULL), 0);
	assert_int_equal(grant(&g, 5, T0 + 10 * W, &e), 1);
	assert_int_equal(e, UINT64_MAX);
}

/* An undone take frees its positions from `at` on, and puts the hint back. */
static void undo(void **state)
{
	struct ring g;
	struct vrl_window_look lk;
	uint64_t committed, before;

	(void)state;
	ring_init(&g, 3);
	assert_int_equal(grant(&g, 1, T0, NULL), 0);
	before = atomic_load(&g.state);
	vrl_window_look(&g.r, before, 2, T0 + 5, &lk);
	assert_int_equal(lk.earliest, T0 + 5);
	assert_int_equal(vrl_window_take(&g.r, lk.first, 2, T0 + 5, &committed), 0);
	assert_int_equal(vrl_window_free_count(&g.r, T0 + 5), 0);
	vrl_window_undo(&g.r, lk.first, 2, T0 + 5, committed);
	assert_int_equal(vrl_window_free_count(&g.r, T0 + 5), 2);
	assert_int_equal(vrl_window_hint(atomic_load(&g.state), 3), lk.first);
	assert_int_not_equal(atomic_load(&g.state), committed); /* the version moved on */
	assert_int_equal(grant(&g, 2, T0 + 5, NULL), 0);
	/* an undo that comes after another grant on the word leaves the hint */
	ring_init(&g, 3);
	vrl_window_look(&g.r, 0, 1, T0, &lk);
	assert_int_equal(vrl_window_take(&g.r, lk.first, 1, T0, &committed), 0);
	assert_int_equal(grant(&g, 1, T0, NULL), 0);
	before = atomic_load(&g.state);
	vrl_window_undo(&g.r, lk.first, 1, T0, committed);
	assert_int_equal(atomic_load(&g.state), before);
	assert_int_equal(vrl_window_free_count(&g.r, T0), 2);
}

/*
 * A taker killed after its position CASes and before its commit: the hint
 * points at a taken position. The next look steps past it, so with fewer
 * than N grants in the window a grant is still made, and its commit
 * repairs the hint.
 */
static void stale_hint_repair(void **state)
{
	struct ring g;
	uint64_t e;

	(void)state;
	ring_init(&g, 8);
	assert_int_equal(grant(&g, 2, T0, NULL), 0);              /* positions 0, 1 */
	/* the killed taker: positions 2..4 at T0 + 1, no commit */
	for (int i = 2; i < 5; i++)
		atomic_store(&g.pos[i], T0 + 1);
	assert_int_equal(vrl_window_hint(atomic_load(&g.state), 8), 2);
	for (int i = 0; i < 3; i++)                                /* 5 of 8 taken */
		assert_int_equal(grant(&g, 1, T0 + 2, NULL), 0);
	assert_int_equal(vrl_window_hint(atomic_load(&g.state), 8), 0);
	assert_int_equal(grant(&g, 1, T0 + 3, &e), 1);             /* and now full */
	assert_int_equal(e, T0 + W);
	/* the killed taker's positions count for one window, no more */
	assert_int_equal(vrl_window_free_count(&g.r, T0 + W + 1), 5);
	assert_int_equal(vrl_window_free_count(&g.r, T0 + W + 2), 8);
}

/* A killed taker of a large cost does not hold back the rest of the ring. */
static void killed_large_cost(void **state)
{
	struct ring g;
	uint64_t e;

	(void)state;
	ring_init(&g, 40);
	for (int i = 0; i < 30; i++)                 /* its 30 positions, no commit */
		atomic_store(&g.pos[i], T0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(grant(&g, 1, T0 + 1, NULL), 0);
	assert_int_equal(grant(&g, 1, T0 + 1, &e), 1);
	assert_int_equal(e, T0 + W);
}

/* A waiting acquire's reservation in the future breaks time order; the
 * probe still finds the free positions after it. */
static void reservation(void **state)
{
	struct ring g;
	uint64_t e;

	(void)state;
	ring_init(&g, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(grant(&g, 1, T0 + (uint64_t)i, NULL), 0);
	assert_int_equal(grant(&g, 1, T0 + 10, &e), 1);
	assert_int_equal(e, T0 + W);
	/* reserved at its earliest time, and a later one at T0 + W + 500 */
	assert_int_equal(grant(&g, 1, T0 + W, NULL), 0);
	assert_int_equal(grant(&g, 1, T0 + W + 500, NULL), 0);
	/* at T0 + W + 3 two positions are free (2 and 3), one behind the
	 * reservation at position 1 */
	assert_int_equal(vrl_window_free_count(&g.r, T0 + W + 3), 2);
	assert_int_equal(grant(&g, 1, T0 + W + 3, NULL), 0);
	assert_int_equal(grant(&g, 1, T0 + W + 3, NULL), 0);
	assert_int_equal(grant(&g, 1, T0 + W + 3, &e), 1);
	assert_int_equal(e, T0 + 2 * W);
}

/* A grant under a cap of @cap grants in any W (WIN.W7): look, take, then
 * the check, and an undo when it fails. 0 granted, 1 denied. */
static int grant_capped(struct ring *g, uint64_t cost, uint64_t at, uint64_t cap)
{
	struct vrl_window_look lk;
	uint64_t committed;

	vrl_window_look(&g->r, atomic_load(&g->state), cost, at, &lk);
	if (lk.earliest != at || vrl_window_take(&g->r, lk.first, cost, at, &committed) != 0)
		return 1;
	if (vrl_window_within(&g->r, at, cap))
		return 0;
	vrl_window_undo(&g->r, lk.first, cost, at, committed);
	return 1;
}

/* A cap below N: at most cap grants in any W, the ring's room beside;
 * a cap that shrinks counts the grants already in the window; a cost
 * above one counts whole; a reservation counts before its time. */
static void capped(void **state)
{
	struct ring g;

	(void)state;
	ring_init(&g, 8);
	assert_true(vrl_window_within(&g.r, T0, 0));
	for (uint64_t i = 0; i < 3; i++)
		assert_int_equal(grant_capped(&g, 1, T0 + 10 * i, 3), 0);
	assert_true(vrl_window_within(&g.r, T0 + 20, 3));
	assert_false(vrl_window_within(&g.r, T0 + 20, 2));
	/* the ring has room for 5 more, the cap none: denied, nothing kept */
	assert_int_equal(grant_capped(&g, 1, T0 + 30, 3), 1);
	assert_int_equal(vrl_window_free_count(&g.r, T0 + 30), 5);
	assert_int_equal(grant_capped(&g, 1, T0 + W - 1, 3), 1);
	/* the first grant leaves the window at T0 + W, to the nanosecond */
	assert_int_equal(grant_capped(&g, 1, T0 + W, 3), 0);       /* T0+10, +20, W */
	/* the cap shrinks to 2: the grants in the window count at once */
	assert_int_equal(grant_capped(&g, 1, T0 + W + 5, 2), 1);
	assert_int_equal(grant_capped(&g, 1, T0 + W + 10, 2), 1);  /* T0+20, W held */
	assert_int_equal(grant_capped(&g, 1, T0 + W + 20, 2), 0);  /* W, W+20 */
	assert_int_equal(grant_capped(&g, 1, T0 + W + 21, 2), 1);
	/* a cost of 3: whole or not at all (W+20 held) */
	assert_int_equal(grant_capped(&g, 3, T0 + 2 * W + 10, 3), 1);
	assert_int_equal(vrl_window_free_count(&g.r, T0 + 2 * W + 10), 7);
	assert_int_equal(grant_capped(&g, 3, T0 + 2 * W + 10, 4), 0);
	assert_int_equal(grant_capped(&g, 1, T0 + 2 * W + 11, 4), 1);
	assert_int_equal(grant_capped(&g, 1, T0 + 2 * W + 20, 4), 0);  /* W+20 left */
	/* a reservation dated later counts now: cap 1, one reserved ahead */
	ring_init(&g, 8);
	assert_int_equal(grant_capped(&g, 1, T0 + 500, 1), 0);
	assert_int_equal(grant_capped(&g, 1, T0, 1), 1);
	assert_int_equal(grant_capped(&g, 1, T0 + 500 + W, 1), 0);
	/* a cap at or above N is the ring's own limit */
	assert_true(vrl_window_within(&g.r, T0, 8));
}

/* Grants in (t - W, t] as a reference model counts them. */
static uint64_t ref_count(const uint64_t *g, size_t n, uint64_t t)
{
	uint64_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += g[i] <= t && t - g[i] < W;
	return c;
}

/*
 * Against a reference model, with random times in order and costs 1..3:
 * the window grants exactly when fewer than N - cost + 1 grants lie in the
 * last W (W4), and never holds more than N in any W. Then with killed
 * takers (positions taken, no commit) mixed in: one unit at a time is
 * still granted exactly when fewer than N lie in the last W.
 */
static void matches_reference(void **state)
{
	enum { N = 8, STEPS = 4000 };
	static uint64_t g[STEPS * 3];
	struct ring r;
	uint64_t t = T0;
	size_t ng = 0;

	(void)state;
	srand(7);
	ring_init(&r, N);
	for (int i = 0; i < STEPS; i++) {
		uint64_t cost = 1 + (uint64_t)(rand() % 3), e;
		bool can, got;

		t += (uint64_t)(rand() % 40);
		can = ref_count(g, ng, t) + cost <= N;
		got = grant(&r, cost, t, &e) == 0;
		assert_int_equal(got, can);
		if (!got) {
			assert_true(e > t);
			continue;
		}
		for (uint64_t k = 0; k < cost; k++)
			g[ng++] = t;
		assert_true(ref_count(g, ng, t) <= N);
	}
	/* killed takers: a position CASed to t, no commit; they count */
	ring_init(&r, N);
	ng = 0;
	for (int i = 0; i < STEPS; i++) {
		struct vrl_window_look lk;

		t += (uint64_t)(rand() % 40);
		if (rand() % 10 == 0) {
			vrl_window_look(&r.r, atomic_load(&r.state), 1, t, &lk);
			if (lk.earliest == t) {
				atomic_store(&r.pos[lk.first], t);
				g[ng++] = t;
			}
			continue;
		}
		/* one unit stays exact out of order (W4) */
		bool can = ref_count(g, ng, t) + 1 <= N;

		assert_int_equal(grant(&r, 1, t, NULL) == 0, can);
		if (can)
			g[ng++] = t;
		assert_true(ref_count(g, ng, t) <= N);
	}
}

/* The most grants of @g[0..n) (sorted) in any interval shorter than @w. */
static uint64_t most_within(const uint64_t *g, size_t n, uint64_t w)
{
	uint64_t most = 0;

	for (size_t i = 0, j = 0; j < n; j++) {
		while (g[j] - g[i] >= w)
			i++;
		if (j - i + 1 > most)
			most = j - i + 1;
	}
	return most;
}

/*
 * A reload that changes W keeps the ring: positions hold grant times, and
 * each grant is checked against the W of its own config, from the last
 * grant on its position whichever config made it. So grants stay at most N
 * in any interval of the shorter of the two windows, and at most N in any
 * interval of the new W that begins at the reload or later. W shorter and
 * W longer, costs 1 and 2.
 */
static void window_length_change(void **state)
{
	enum { N = 5, STEPS = 3000 };
	static uint64_t g[STEPS * 3];
	const uint64_t w2s[] = { W / 3, 2 * W + 7 };

	(void)state;
	for (size_t k = 0; k < sizeof(w2s) / sizeof(w2s[0]); k++) {
		uint64_t w2 = w2s[k], t = T0, c = 0, wmin = w2 < W ? w2 : W;
		size_t ng = 0, from = 0;
		struct ring r;

		srand((unsigned)k + 11);
		ring_init(&r, N);
		for (int i = 0; i < STEPS; i++) {
			uint64_t cost = 1 + (uint64_t)(rand() % 2);

			t += (uint64_t)(rand() % 60);
			if (i == STEPS / 2) {
				r.r.w = w2;      /* the reload */
				c = t;
				from = ng;
			}
			if (grant(&r, cost, t, NULL) != 0)
				continue;
			for (uint64_t u = 0; u < cost; u++)
				g[ng++] = t;
		}
		assert_true(c > 0 && ng > from);
		assert_true(most_within(g, ng, wmin) <= N);
		assert_true(most_within(g + from, ng - from, w2) <= N);
		/* and it grants: the ring is not stuck either way */
		assert_true(most_within(g, ng, w2) >= (w2 < W ? N : 1));
	}
}

/* A commit that finds the key evicted takes nothing. */
static void evicted(void **state)
{
	struct ring g;

	(void)state;
	ring_init(&g, 2);
	atomic_store(&g.state, VRL_STATE_EVICTED);
	assert_int_equal(grant(&g, 2, T0, NULL), 2);
	assert_int_equal(vrl_window_free_count(&g.r, T0), 2);
	assert_true(vrl_window_idle(&g.r, T0));
}

/* Upstream feedback: credit gives back the newest, floor takes to match. */
static void credit_and_floor(void **state)
{
	struct ring g;

	(void)state;
	ring_init(&g, 5);
	assert_int_equal(grant(&g, 2, T0, NULL), 0);
	assert_int_equal(grant(&g, 2, T0 + 100, NULL), 0);
	assert_int_equal(vrl_window_free_count(&g.r, T0 + 100), 1);
	/* one of the grants at T0 + 100 was not counted upstream */
	assert_int_equal(vrl_window_credit(&g.r, 1, T0 + 100), 1);
	assert_int_equal(vrl_window_free_count(&g.r, T0 + 100), 2);
	/* only grants at or after `since` are given back */
	assert_int_equal(vrl_window_credit(&g.r, 5, T0 + 50), 1);
	assert_int_equal(vrl_window_free_count(&g.r, T0 + 100), 3);
	assert_int_equal(vrl_window_remaining(&g.r, T0 + 100), 3);
	/* the server says 1 left: take 2 at now */
	assert_int_equal(vrl_window_floor(&g.r, 1, T0 + 200), 2);
	assert_int_equal(vrl_window_free_count(&g.r, T0 + 200), 1);
	assert_int_equal(vrl_window_floor(&g.r, 1, T0 + 200), 0);
	assert_int_equal(vrl_window_floor(&g.r, 5, T0 + 200), 0);
	assert_int_equal(grant(&g, 1, T0 + 200, NULL), 0);
	assert_int_equal(grant(&g, 1, T0 + 200, NULL), 1);
}

/* The ring area: a free stack of K rings; full is VRL_EFULL; a ring comes back. */
static void area_full(void **state)
{
	uint64_t bytes = vrl_window_area_bytes(4, 2), a, b, c;
	void *area = aligned_alloc(64, bytes);
	struct vrl_seg_slot s1, s2;

	(void)state;
	assert_int_equal(bytes, 64 + 64 + 2 * 64);
	memset(area, 0, bytes);
	vrl_window_area_init(area, 4, 2);
	assert_int_equal(vrl_window_ring_get(area, 4, 2, &a), 0);
	assert_int_equal(vrl_window_ring_get(area, 4, 2, &b), 0);
	assert_int_not_equal(a, b);
	assert_int_equal(vrl_window_ring_get(area, 4, 2, &c), VRL_EFULL);
	vrl_window_ring_put(area, 4, 2, b);
	assert_int_equal(vrl_window_ring_get(area, 4, 2, &c), 0);
	assert_int_equal(c, b);
	vrl_window_ring_put(area, 4, 2, a);
	vrl_window_ring_put(area, 4, 2, c);
	/* a slot takes one ring and keeps it */
	memset(&s1, 0, sizeof(s1));
	memset(&s2, 0, sizeof(s2));
	assert_int_equal(vrl_window_slot_ring(area, 4, 2, &s1, &a), 0);
	assert_int_equal(vrl_window_slot_ring(area, 4, 2, &s1, &b), 0);
	assert_int_equal(a, b);
	assert_int_equal(vrl_window_slot_ring(area, 4, 2, &s2, &c), 0);
	assert_int_not_equal(a, c);
	memset(&s2, 0, sizeof(s2));
	assert_int_equal(vrl_window_slot_ring(area, 4, 2, &s2, &c), VRL_EFULL);
	free(area);
	assert_int_equal(vrl_window_area_bytes(0, 1), 0);
	assert_int_equal(vrl_window_area_bytes(VRL_WINDOW_MAX_N + 1, 1), 0);
}

/* ---- through the client ---------------------------------------------------------- */

static struct vrl_request user(const char *u)
{
	return (struct vrl_request){ .api = "evenergy", .token = "app", .user = u };
}

/* N at once, then denied with retry-after about W; figures in the verdict. */
static void client_window(void **state)
{
	struct vrl_seg_config cfg = { 0 };
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];
	struct vrl_request req = user("u1");
	struct vrl_verdict v;
	uint64_t first = 0;
	vrl_client *c;

	(void)state;
	test_add_window(&cfg, "ev", "evenergy", 5, 3600 * NS_PER_S, 8,
			(int[]){ VRL_FIELD_TOKEN, VRL_FIELD_USER, -1 });
	test_segment("window", &cfg, 100, &seg, name);
	c = test_open(name);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(vrl_acquire(c, &req, &v), 0);
		assert_int_equal(v.limit_value, 5);
		assert_int_equal(v.remaining, 4 - i);
		if (i == 0)
			first = v.at_ns;
	}
	assert_int_equal(vrl_acquire(c, &req, &v), VRL_EDENIED);
	assert_string_equal(v.limit_name, "ev");
	assert_int_equal(v.kind, VRL_WINDOW);
	assert_int_equal(v.cost, 1);
	assert_int_equal(v.remaining, 0);
	/* the first grant leaves the window an hour after it was made */
	assert_true(v.retry_after_ns <= 3600 * NS_PER_S);
	assert_true(v.retry_after_ns >= first + 3600 * NS_PER_S - v.at_ns);
	/* upstream feedback: the server did not count one of them */
	{
		struct vrl_key key;
		struct vrl_window_ref r;
		char label[VRL_LABEL_MAX];
		uint64_t slot;

		vrl_limit_key(&vrl__config(c)->limits[0], &req, &key, label);
		assert_int_equal(vrl_kt_find(&seg.view, &key, &slot), 0);
		assert_int_equal(vrl_window_ref_of(&seg.view, &vrl__config(c)->limits[0].seg, slot, &r), 0);
		assert_int_equal(vrl_window_credit(&r, 1, 0), 1);
		assert_int_equal(vrl_acquire(c, &req, &v), 0);
		assert_int_equal(vrl_acquire(c, &req, &v), VRL_EDENIED);
		/* the server says 0 left for a fresh user: floor takes all 5 */
		req = user("u3");
		assert_int_equal(vrl_acquire(c, &req, &v), 0);
		vrl_limit_key(&vrl__config(c)->limits[0], &req, &key, label);
		assert_int_equal(vrl_kt_find(&seg.view, &key, &slot), 0);
		assert_int_equal(vrl_window_ref_of(&seg.view, &vrl__config(c)->limits[0].seg, slot, &r), 0);
		assert_int_equal(vrl_window_floor(&r, 0, vrl_now_ns()), 4);
		assert_int_equal(vrl_acquire(c, &req, &v), VRL_EDENIED);
	}
	/* another user has its own window */
	req = user("u2");
	req.cost = 5;
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	req.cost = 6;
	assert_int_equal(vrl_acquire(c, &req, &v), VRL_EDENIED);
	assert_int_equal(v.retry_after_ns, VRL_NEVER);
	/* reset forgets the window */
	req = user("u1");
	assert_int_equal(vrl_reset(c, &req, NULL), 0);
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	assert_int_equal(v.remaining, 4);
	vrl_close(c);
	test_segment_drop(&seg, name);
}

/* A stacked acquire denied by another limit leaves the window untouched. */
static void client_stacked(void **state)
{
	struct vrl_seg_config cfg = { 0 };
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];
	struct vrl_request req = user("u1");
	struct vrl_verdict v;
	vrl_client *c;

	(void)state;
	test_add_window(&cfg, "ev", "evenergy", 10, 3600 * NS_PER_S, 4,
			(int[]){ VRL_FIELD_USER, -1 });
	test_add_rate(&cfg, "app", "evenergy", 1, 3600 * NS_PER_S, 3,
		      (int[]){ VRL_FIELD_TOKEN, -1 });
	test_segment("window-stack", &cfg, 100, &seg, name);
	c = test_open(name);
	for (int i = 0; i < 3; i++)
		assert_int_equal(vrl_acquire(c, &req, &v), 0);
	assert_int_equal(vrl_acquire(c, &req, &v), VRL_EDENIED);
	assert_string_equal(v.limit_name, "app");
	req.token = "other";
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	assert_string_equal(v.limit_name, "app");
	assert_int_equal(v.remaining, 2);
	/* the window counted exactly the 4 grants: 6 more, then no more */
	assert_int_equal(vrl_reset(c, &req, "app"), 0);
	req.cost = 3;
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	assert_int_equal(vrl_reset(c, &req, "app"), 0);
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	assert_int_equal(vrl_reset(c, &req, "app"), 0);
	req.cost = 1;
	assert_int_equal(vrl_acquire(c, &req, &v), VRL_EDENIED);
	assert_string_equal(v.limit_name, "ev");
	assert_int_equal(v.limit_value, 10);
	assert_int_equal(v.remaining, 0);
	vrl_close(c);
	test_segment_drop(&seg, name);
}

/* A full ring area is VRL_EFULL; eviction of an idle key gives its ring back. */
static void client_full_and_evict(void **state)
{
	struct vrl_seg_config cfg = { 0 };
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];
	struct vrl_request req;
	struct vrl_verdict v;
	vrl_client *c;
	uint64_t w = 50 * 1000 * 1000, at_b;

	(void)state;
	test_add_window(&cfg, "ev", "evenergy", 3, w, 2, (int[]){ VRL_FIELD_USER, -1 });
	test_segment("window-full", &cfg, 100, &seg, name);
	c = test_open(name);
	req = user("a");
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	req = user("b");
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	at_b = v.at_ns;
	req = user("c");
	assert_int_equal(vrl_acquire(c, &req, &v), VRL_EFULL);
	assert_true(v.flags & VRL_VERDICT_TABLE_FULL);
	/* not idle when b was granted: only c's slot, which never got a ring,
	 * is evicted (a sweep judged at that time, however late it runs) */
	assert_int_equal(vrl_seg_sweep(&seg, 0, seg.view.nslots, at_b, 0), 1);
	/* a window later both keys are idle (time must pass: a sleep):
	 * evicted, rings back */
	usleep((useconds_t)(w / 1000) + 1000);
	/* ...unless they have not been idle for idle_evict on top of W */
	assert_int_equal(vrl_seg_sweep(&seg, 0, seg.view.nslots, vrl_now_ns(),
				       3600 * NS_PER_S), 0);
	assert_int_equal(vrl_seg_sweep(&seg, 0, seg.view.nslots, vrl_now_ns(), 0), 2);
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	req = user("a");
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	assert_int_equal(v.remaining, 2);
	vrl_close(c);
	test_segment_drop(&seg, name);
}

/* With on_full: allow, a key that finds no ring is granted, flagged. */
static void client_full_fail_open(void **state)
{
	struct vrl_seg_config cfg = { 0 };
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];
	struct vrl_request req;
	struct vrl_verdict v;
	vrl_client *c;

	(void)state;
	cfg.flags = VRL_CFG_FAIL_OPEN;
	test_add_window(&cfg, "ev", "evenergy", 1, 3600 * NS_PER_S, 1,
			(int[]){ VRL_FIELD_USER, -1 });
	test_segment("window-open", &cfg, 100, &seg, name);
	c = test_open(name);
	req = user("a");
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	assert_int_equal(vrl_acquire(c, &req, &v), VRL_EDENIED);
	req = user("b");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(vrl_acquire(c, &req, &v), 0);
		assert_true(v.flags & VRL_VERDICT_TABLE_FULL);
	}
	assert_true(atomic_load(&seg.hdr->table_full) >= 3);
	vrl_close(c);
	test_segment_drop(&seg, name);
}

/*
 * A resolved request keeps its slot and ring. When vrld evicts the key and
 * it comes back in the same slot with another ring, the tag still matches:
 * the grant must land on the key's new ring, not the old one.
 */
static void client_same_slot_new_ring(void **state)
{
	struct vrl_seg_config cfg = { 0 };
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];
	struct vrl_request a = user("a"), b = user("b");
	struct vrl_verdict v;
	vrl_resolved *ra;
	vrl_client *c;
	uint64_t w = 200 * 1000 * 1000, at[64];
	unsigned n = 0, inside = 0;
	int rc;

	(void)state;
	test_add_window(&cfg, "ev", "evenergy", 3, w, 4, (int[]){ VRL_FIELD_USER, -1 });
	test_segment("window-reuse", &cfg, 100, &seg, name);
	c = test_open(name);
	assert_int_equal(vrl_resolve(c, &a, &ra), 0);
	assert_int_equal(vrl_acquire_resolved(c, ra, 0, &v), 0);
	assert_int_equal(vrl_acquire(c, &b, &v), 0);
	usleep((useconds_t)(w / 1000) + 1000);   /* time must pass: both go idle */
	assert_int_equal(vrl_seg_sweep(&seg, 0, seg.view.nslots, vrl_now_ns(), 0), 2);
	/* a comes back by string: the same slot, the ring b gave back */
	assert_int_equal(vrl_acquire(c, &a, &v), 0);
	assert_int_equal(v.remaining, 2);
	at[n++] = v.at_ns;
	/* the resolved request counts on that ring too, until it is full */
	while (n < 64 && (rc = vrl_acquire_resolved(c, ra, 0, &v)) == 0)
		at[n++] = v.at_ns;
	assert_true(rc == VRL_EDENIED || n == 64);
	/* so the string path is denied as well, unless (on a slow machine)
	 * grants have left the window meanwhile: then fewer than 3 lie in it */
	rc = vrl_acquire(c, &a, &v);
	for (unsigned i = 0; i < n; i++)
		inside += at[i] + w > v.at_ns;
	assert_true(rc == VRL_EDENIED ? inside >= 3 : rc == 0 && inside < 3);
	vrl_resolved_free(ra);
	vrl_close(c);
	test_segment_drop(&seg, name);
}

/*
 * vrl_refund() gives back the newest grants still in the window, and no
 * more than it was asked; a key never acquired has nothing to give back.
 */
static void client_refund(void **state)
{
	struct vrl_seg_config cfg = { 0 };
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];
	struct vrl_request req = user("u1");
	struct vrl_verdict v;
	vrl_client *c;
	uint64_t brief = 50 * 1000 * 1000;

	(void)state;
	/* ev and short never expire while the test runs; brief does, where
	 * the test waits for it */
	test_add_window(&cfg, "ev", "evenergy", 5, 3600 * NS_PER_S, 4,
			(int[]){ VRL_FIELD_USER, -1 });
	test_add_window(&cfg, "short", "evenergy", 3, 1800 * NS_PER_S, 4,
			(int[]){ VRL_FIELD_TOKEN, -1 });
	test_add_window(&cfg, "brief", "brief", 3, brief, 4, (int[]){ VRL_FIELD_TOKEN, -1 });
	test_segment("window-refund", &cfg, 100, &seg, name);
	c = test_open(name);
	req.cost = 5;
	assert_int_equal(vrl_acquire(c, &req, &v), VRL_EDENIED); /* short holds 3 */
	req.cost = 3;
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	req.cost = 1;
	assert_int_equal(vrl_acquire(c, &req, &v), VRL_EDENIED);
	assert_string_equal(v.limit_name, "short");
	/* the upstream did not count two of them: both windows get them back */
	assert_int_equal(vrl_refund(c, &req, NULL, 2), 0);
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	assert_string_equal(v.limit_name, "short");
	assert_int_equal(v.remaining, 1);
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	assert_int_equal(vrl_acquire(c, &req, &v), VRL_EDENIED);
	/* "ev" alone: 3 of 5 taken; 5, then one given back */
	assert_int_equal(vrl_reset(c, &req, "short"), 0);
	req.cost = 2;
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	req.cost = 1;
	assert_int_equal(vrl_acquire(c, &req, &v), VRL_EDENIED);
	assert_string_equal(v.limit_name, "ev");
	assert_int_equal(vrl_refund(c, &req, "ev", 1), 0);
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	assert_int_equal(vrl_acquire(c, &req, &v), VRL_EDENIED);
	assert_string_equal(v.limit_name, "ev");
	/* grants already out of the window are not spent by a refund: 3
	 * expired (time must pass: a sleep of one brief window), 1 fresh; a
	 * refund of 3 frees the fresh one alone, and the ring is whole again */
	req = user("u9");
	req.api = "brief";
	req.cost = 3;
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	usleep((useconds_t)(brief / 1000) + 1000);
	req.cost = 1;
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	assert_int_equal(vrl_refund(c, &req, "brief", 3), 0);
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	assert_string_equal(v.limit_name, "brief");
	assert_int_equal(v.remaining, 2);
	/* nothing to refund where nothing was taken */
	req = user("nobody");
	req.token = "nobody";
	assert_int_equal(vrl_refund(c, &req, NULL, 1), VRL_ENOKEY);
	vrl_close(c);
	test_segment_drop(&seg, name);
}

/*
 * vrl__reconcile(): the upstream says R left; the window then holds at most
 * R free positions (a fresh key gets its ring for it), and a figure above
 * what is left changes nothing.
 */
static void client_reconcile(void **state)
{
	struct vrl_seg_config cfg = { 0 };
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];
	struct vrl_request req = user("u1");
	struct vrl_verdict v;
	vrl_client *c;

	(void)state;
	test_add_window(&cfg, "ev", "evenergy", 5, 3600 * NS_PER_S, 4,
			(int[]){ VRL_FIELD_USER, -1 });
	test_segment("window-reconcile", &cfg, 100, &seg, name);
	c = test_open(name);
	/* a key never acquired: inserted, floored to 2 */
	assert_int_equal(vrl__reconcile(c, &req, NULL, 5, 2), 0);
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	assert_int_equal(v.remaining, 1);
	/* more than is left: nothing changes */
	assert_int_equal(vrl__reconcile(c, &req, "ev", 5, 4), 0);
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	assert_int_equal(v.remaining, 0);
	assert_int_equal(vrl_acquire(c, &req, &v), VRL_EDENIED);
	/* an acquired key: 4 left, the upstream says 1 */
	req = user("u2");
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	assert_int_equal(v.remaining, 4);
	assert_int_equal(vrl__reconcile(c, &req, "ev", 5, 1), 0);
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	assert_int_equal(v.remaining, 0);
	assert_int_equal(vrl_acquire(c, &req, &v), VRL_EDENIED);
	/* the floor's grants are grants: the key stays until they leave */
	assert_int_equal(vrl_seg_sweep(&seg, 0, seg.view.nslots, vrl_now_ns(), 0), 0);
	vrl_close(c);
	test_segment_drop(&seg, name);
}

/* A reload that would move a ring is refused, with the reason; others pass. */
static void reload_layout(void **state)
{
	struct vrl_seg_config cfg = { 0 }, next;
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX], why[256];

	(void)state;
	test_add_window(&cfg, "ev", "evenergy", 3, NS_PER_S, 2, (int[]){ VRL_FIELD_USER, -1 });
	test_segment("window-reload", &cfg, 100, &seg, name);
	next = cfg;
	next.limits[0].period_ns = 2 * NS_PER_S;
	test_add_rate(&next, "r", NULL, 1, NS_PER_S, 1, NULL);
	assert_int_equal(vrl_seg_reload(&seg, &next, why, sizeof(why)), 0);
	next = cfg;
	next.limits[0].count = 4;
	assert_int_equal(vrl_seg_reload(&seg, &next, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "fresh segment"));
	next = cfg;
	next.limits[0].area_keys = 3;
	assert_int_equal(vrl_seg_reload(&seg, &next, why, sizeof(why)), -EINVAL);
	next = cfg;
	test_add_window(&next, "ev2", NULL, 3, NS_PER_S, 1, NULL);
	assert_int_equal(vrl_seg_reload(&seg, &next, why, sizeof(why)), -EINVAL);
	test_segment_drop(&seg, name);
}

/* Keys keep their state across a reload by name: a kind change under the
 * same name would misread it, and is refused. */
static void reload_kind_change(void **state)
{
	struct vrl_seg_config cfg = { 0 }, next = { 0 };
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX], why[256];

	(void)state;
	test_add_rate(&cfg, "api", "x", 10, NS_PER_S, 10, NULL);
	test_segment("kind-reload", &cfg, 100, &seg, name);
	test_add_quota(&next, "api", "x", 10, VRL_CAL_MONTH, 1, 0, NULL);
	assert_int_equal(vrl_seg_reload(&seg, &next, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "changes kind from rate to quota"));
	/* a new name is a new set of keys: accepted */
	memset(&next, 0, sizeof(next));
	test_add_quota(&next, "api.monthly", "x", 10, VRL_CAL_MONTH, 1, 0, NULL);
	assert_int_equal(vrl_seg_reload(&seg, &next, why, sizeof(why)), 0);
	/* the same kind with new figures: accepted */
	next = cfg;
	next.limits[0].burst = 20;
	assert_int_equal(vrl_seg_reload(&seg, &next, why, sizeof(why)), 0);
	test_segment_drop(&seg, name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(exact_edge),
		cmocka_unit_test(rolling),
		cmocka_unit_test(cost_above_one),
		cmocka_unit_test(undo),
		cmocka_unit_test(stale_hint_repair),
		cmocka_unit_test(killed_large_cost),
		cmocka_unit_test(reservation),
		cmocka_unit_test(capped),
		cmocka_unit_test(matches_reference),
		cmocka_unit_test(window_length_change),
		cmocka_unit_test(evicted),
		cmocka_unit_test(credit_and_floor),
		cmocka_unit_test(area_full),
		cmocka_unit_test(client_window),
		cmocka_unit_test(client_stacked),
		cmocka_unit_test(client_full_and_evict),
		cmocka_unit_test(client_full_fail_open),
		cmocka_unit_test(client_same_slot_new_ring),
		cmocka_unit_test(client_refund),
		cmocka_unit_test(client_reconcile),
		cmocka_unit_test(reload_layout),
		cmocka_unit_test(reload_kind_change),
	};

	return cmocka_run_group_tests_name("window", tests, NULL, NULL);
}
