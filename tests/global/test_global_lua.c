/*
 * test_global_lua.c - vrl.lua, the Redis side of global limits, called
 * directly by simulated hosts (redis_fixture.c) on a private redis-server
 * per test: G1 through a randomized schedule, demand-following shares,
 * quota blocks, the fence and the re-seeding after Redis lost its data.
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

#define TERM_US   UINT64_C(300000)      /* the lease term of these tests */
#define MARGIN_US UINT64_C(15000)
#define RATE(n)   ((uint64_t)(n) * 1000000u)   /* n/s as a rate share */
#define HANG_NS   (UINT64_C(30) * 1000000000u) /* a deadline for hangs only */

struct fx {
	struct rfx r;
	redisContext *c;
};

/* A new Redis starts fenced (it cannot tell a first start from a loss):
 * a host calls until the fence is over. */
static void past_fence(redisContext *c)
{
	struct sim_host h;
	struct sim_entry e = { .kind = 'g', .key = "fence" };
	uint64_t deadline = rfx_now() + HANG_NS;

	sim_host_init(&h, "opener", TERM_US, MARGIN_US, 1);
	do {
		assert_int_equal(sim_call(c, &h, false, &e, 1, NULL), 0);
		assert_true(rfx_now() < deadline);
		if (h.fence_left)
			rfx_pace(10);
	} while (h.fence_left);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	rfx_start(&f->r);
	f->c = rfx_connect(&f->r);
	past_fence(f->c);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	redisFree(f->c);
	rfx_stop(&f->r);
	free(f);
	return 0;
}

/* A lease as the host trusts it: until t_send + rel - margin. */
struct lease {
	uint64_t a, b, until;
};

static void take(struct lease *l, const struct sim_host *h, const struct sim_answer *an)
{
	l->a = an->a;
	l->b = an->b;
	l->until = h->t_send + an->rel * 1000u - MARGIN_US * 1000u;
}

static uint64_t trusted(const struct lease *l, uint64_t now, bool b)
{
	return now < l->until ? (b ? l->b : l->a) : 0;
}

static struct sim_entry rate_entry(const char *key, uint64_t per_s, uint64_t burst)
{
	return (struct sim_entry){ .kind = 'r', .key = key, .cap = RATE(per_s), .per = 1000000,
				   .bst = burst };
}

/* Redis's ledger of @key: promises (or allocations) of every host. */
static void ledger(redisContext *c, const char *key, uint64_t *a, uint64_t *b, struct sim_state *s)
{
	assert_int_equal(sim_state(c, key, s), 0);
	*a = *b = 0;
	for (unsigned i = 0; i < s->nhosts; i++) {
		*a += s->h[i].a;
		*b += s->h[i].b;
	}
}

/* ---- G1 through a randomized schedule ------------------------------------------------ */

#define NH     4
#define R_CAP  300                      /* the rate: 300/s, burst 6 */
#define R_BST  6
#define W_CAP  50                       /* the window: 50 in any 500 ms */
#define W_NS   (UINT64_C(500) * RFX_NS_PER_MS)
#define GRANTS 65536

/* Every grant any host made, as times (local ns), for the end-to-end checks. */
struct grants {
	uint64_t t[GRANTS];
	size_t n;
};

struct shost {
	struct sim_host h;
	bool alive;                         /* vrld runs; its workers run either way */
	bool hot;
	struct lease rate, win;
	double fill;                        /* the local bucket, in permits */
	uint64_t filled_at;
	uint64_t wt[W_CAP];                 /* its own window grants, a ring */
	size_t wn;
	uint64_t used_r, unmet_r, used_w, unmet_w;   /* since its last call */
};

/* The local bucket: refill at the trusted rate, capped at the trusted
 * burst; a lease that ran out is a share of none (fill clamped to 0). */
static void refill(struct shost *s, uint64_t now)
{
	uint64_t until = s->rate.until < now ? s->rate.until : now;

	if (until > s->filled_at)
		s->fill += (double)s->rate.a / 1e6 * (double)(until - s->filled_at) / 1e9;
	if (s->fill > (double)trusted(&s->rate, now, true))
		s->fill = (double)trusted(&s->rate, now, true);
	s->filled_at = now;
}

/* A new lease: the fill is kept, capped at the new burst (clamped first). */
static void take_rate(struct shost *s, const struct sim_answer *an, uint64_t now)
{
	refill(s, now);
	take(&s->rate, &s->h, an);
	if (s->fill > (double)an->b)
		s->fill = (double)an->b;
}

/* Workers of @s ask for up to @want permits of each key at @now. */
static void work(struct shost *s, struct grants *gr, struct grants *gw, unsigned want,
		 uint64_t now)
{
	size_t inw = 0;

	refill(s, now);
	for (unsigned i = 0; i < want; i++) {
		if (s->fill >= 1.0) {
			s->fill -= 1.0;
			gr->t[gr->n++ % GRANTS] = now;
			s->used_r++;
		} else {
			s->unmet_r++;
		}
	}
	for (size_t i = 0; i < W_CAP && i < s->wn; i++)
		inw += s->wt[(s->wn - 1 - i) % W_CAP] + W_NS > now;
	for (unsigned i = 0; i < want; i++) {
		if (inw < trusted(&s->win, now, false)) {
			s->wt[s->wn++ % W_CAP] = now;
			gw->t[gw->n++ % GRANTS] = now;
			inw++;
			s->used_w++;
		} else {
			s->unmet_w++;
		}
	}
}

/* G1 on Redis's ledger and on what hosts trust; and end to end: the
 * pool's grants in any window (ending now, at a grant) keep the limits. */
static void check_g1(redisContext *c, struct shost *hs, const struct grants *gr,
		     const struct grants *gw)
{
	struct sim_state s;
	uint64_t a, b, ra = 0, rb = 0, wa = 0, now = rfx_now();
	size_t inw = 0;

	ledger(c, "g1r", &a, &b, &s);
	assert_true(a <= RATE(R_CAP));
	assert_true(b <= R_BST);
	ledger(c, "g1w", &a, &b, &s);
	assert_true(a <= W_CAP);
	for (int i = 0; i < NH; i++) {
		ra += trusted(&hs[i].rate, now, false);
		rb += trusted(&hs[i].rate, now, true);
		wa += trusted(&hs[i].win, now, false);
	}
	assert_true(ra <= RATE(R_CAP));
	assert_true(rb <= R_BST);
	assert_true(wa <= W_CAP);
	for (size_t i = gw->n; i-- > 0 && i + GRANTS > gw->n && gw->t[i % GRANTS] + W_NS > now;)
		inw++;
	assert_true(inw <= W_CAP);
	/* GCRA(r, B): at most B + r (now - s) grants in [s, now] */
	for (size_t i = gr->n, k = 0; i-- > 0 && i + GRANTS > gr->n; ) {
		uint64_t t = gr->t[i % GRANTS];

		k++;
		if (now - t > 3000 * RFX_NS_PER_MS)
			break;
		assert_true((double)k <= R_BST + R_CAP * (double)(now - t) / 1e9 + 1e-6);
	}
}

/* Virtual time never gains on real time between two calls of any hosts:
 * what makes a lease last in Redis at least as long as its host trusts it. */
struct pace {
	uint64_t t_send, vnow;
	bool any;
};

static void check_pace(struct pace *p, const struct sim_host *h)
{
	uint64_t t_recv = rfx_now();

	if (p->any)
		assert_true(h->vnow - p->vnow <= (t_recv - p->t_send) / 1000u + 1);
	p->t_send = h->t_send;
	p->vnow = h->vnow;
	p->any = true;
}

static void g1_random(void **state)
{
	struct fx *f = *state;
	static struct grants gr, gw;
	struct shost hs[NH];
	struct sim_answer an[2];
	struct pace pace = { 0 };
	uint64_t deaths = 0;

	srand(7);
	gr.n = gw.n = 0;
	for (int i = 0; i < NH; i++) {
		char name[8];

		snprintf(name, sizeof(name), "h%d", i);
		memset(&hs[i], 0, sizeof(hs[i]));
		sim_host_init(&hs[i].h, name, TERM_US, MARGIN_US, NH);
		hs[i].alive = true;
	}
	for (int step = 0; step < 1500; step++) {
		struct shost *s = &hs[rand() % NH];
		int dice = rand() % 100;
		uint64_t now = rfx_now();
		struct sim_entry e[2] = { rate_entry("g1r", R_CAP, R_BST),
			{ .kind = 'w', .key = "g1w", .cap = W_CAP, .per = W_NS / 1000u } };

		if (s->hot || dice < 10)
			work(s, &gr, &gw, (unsigned)(rand() % 9), now);
		check_g1(f->c, hs, &gr, &gw);
		if (dice < 15)
			s->hot = !s->hot;
		if (!s->alive) {
			s->alive = dice < 10;        /* its vrld started again */
			continue;
		}
		if (dice < 2) {
			s->alive = false;            /* vrld killed: its leases run out on their own */
			deaths++;
			continue;
		}
		if (dice < 4) {
			/* a release: the host clamps to none first, then tells Redis,
			 * with its window grants that still count */
			for (size_t i = 0; i < W_CAP && i < s->wn; i++)
				e[1].hold += s->wt[(s->wn - 1 - i) % W_CAP] + W_NS > now;
			refill(s, now);
			s->rate = s->win = (struct lease){ 0 };
			s->fill = 0;
			assert_int_equal(sim_call(f->c, &s->h, true, e, 2, an), 0);
			check_pace(&pace, &s->h);
			check_g1(f->c, hs, &gr, &gw);
			continue;
		}
		e[0].sa = s->rate.a;
		e[0].sb = s->rate.b;
		e[1].sa = s->win.a;
		e[0].use = s->used_r;
		e[0].unmet = s->unmet_r;
		e[1].use = s->used_w;
		e[1].unmet = s->unmet_w;
		s->used_r = s->unmet_r = s->used_w = s->unmet_w = 0;
		assert_int_equal(sim_call(f->c, &s->h, false, e, 2, an), 0);
		check_pace(&pace, &s->h);
		if (dice >= 85) {
			/* the reply is lost: the host keeps trusting its older lease */
			check_g1(f->c, hs, &gr, &gw);
			continue;
		}
		take_rate(s, &an[0], rfx_now());
		take(&s->win, &s->h, &an[1]);
		check_g1(f->c, hs, &gr, &gw);
		rfx_pace((unsigned)(rand() % 3));
	}
	assert_true(gr.n > 100 && gw.n > 100);
	assert_true(deaths > 0);
}

/* A host without an answer in this epoch (a vrld just started) holds
 * virtual time still; the next host does not make up for it at once, or
 * the lease granted meanwhile would end early in Redis's eyes. */
static void vtime_no_catch_up(void **state)
{
	struct fx *f = *state;
	struct sim_host a, g;
	struct sim_entry e = rate_entry("vt", 100, 4);
	struct pace pace = { 0 };

	sim_host_init(&a, "a", TERM_US, MARGIN_US, 2);
	sim_host_init(&g, "g", TERM_US, MARGIN_US, 2);
	assert_int_equal(sim_call(f->c, &a, false, &e, 1, NULL), 0);
	rfx_pace(100);                       /* quiet, then a new host */
	assert_int_equal(sim_call(f->c, &g, false, &e, 1, NULL), 0);
	check_pace(&pace, &g);
	assert_int_equal(sim_call(f->c, &a, false, &e, 1, NULL), 0);
	check_pace(&pace, &a);
}

/* ---- demand-following shares ------------------------------------------------------- */

/* A host denied for want of share gets more within three renewals, from
 * the capacity nobody holds. */
static void denied_grows(void **state)
{
	struct fx *f = *state;
	struct sim_host a, b;
	struct sim_entry e = rate_entry("dg", 100, 10);
	struct sim_answer an;
	uint64_t first;
	bool grew = false;

	sim_host_init(&a, "a", TERM_US, MARGIN_US, 2);
	sim_host_init(&b, "b", TERM_US, MARGIN_US, 2);
	e.use = 1;                                   /* a: a modest load */
	assert_int_equal(sim_call(f->c, &a, false, &e, 1, &an), 0);
	assert_true(an.a > 0 && an.a < RATE(50));
	e.use = 0;
	assert_int_equal(sim_call(f->c, &b, false, &e, 1, &an), 0);
	first = an.a;
	for (int i = 0; i < 3 && !grew; i++) {
		e.sa = an.a;
		e.sb = an.b;
		e.unmet = 5;                         /* b was denied since its last call */
		assert_int_equal(sim_call(f->c, &b, false, &e, 1, &an), 0);
		grew = an.a > first;
	}
	assert_true(grew);
}

/* An idle host's share is reclaimed within three lease terms (of Redis's
 * virtual time, which runs no faster than real time): it holds none, rate
 * or burst, and another host with demand holds nearly all of it. */
static void idle_reclaimed(void **state)
{
	struct fx *f = *state;
	struct sim_host a, b;
	struct sim_entry e = rate_entry("ir", 100, 10);
	struct sim_answer an;
	struct sim_state s;
	uint64_t v0, sa, sb, deadline = rfx_now() + HANG_NS, ashare, bshare = 0;

	sim_host_init(&a, "a", TERM_US, MARGIN_US, 2);
	sim_host_init(&b, "b", TERM_US, MARGIN_US, 2);
	e.use = 50;
	for (int i = 0; i < 3; i++)
		assert_int_equal(sim_call(f->c, &a, false, &e, 1, &an), 0);
	assert_true(an.a >= RATE(90));               /* a holds nearly all */
	v0 = a.vnow;
	ashare = an.a;
	for (;;) {
		uint64_t amax = 0, bmax = 0;

		e.use = e.unmet = 0;                 /* a: idle */
		e.sa = ashare;
		assert_int_equal(sim_call(f->c, &a, false, &e, 1, &an), 0);
		ashare = an.a;
		e.use = 2;
		e.unmet = 5;                         /* b: wants more */
		e.sa = bshare;
		assert_int_equal(sim_call(f->c, &b, false, &e, 1, &an), 0);
		bshare = an.a;
		ledger(f->c, "ir", &sa, &sb, &s);
		for (unsigned i = 0; i < s.nhosts; i++)
			if (strcmp(s.h[i].host, "a") == 0) {
				amax = s.h[i].a;
				bmax = s.h[i].b;
			}
		if (amax == 0 && bmax == 0 && bshare >= RATE(90))
			break;
		if (b.vnow - v0 > 3 * TERM_US)
			fail_msg("three terms idle, a still holds %llu (burst %llu), b %llu",
				 (unsigned long long)amax, (unsigned long long)bmax,
				 (unsigned long long)bshare);
		assert_true(rfx_now() < deadline);
		rfx_pace(10);
	}
}

/* A host's vrld comes back with a shorter lease term (a reload): its next
 * promise, as large as the last but ending sooner, must not end the older
 * one, which the host trusts until its own end if the new reply is lost. */
static void term_shrinks(void **state)
{
	struct fx *f = *state;
	struct sim_host a, b;
	struct sim_entry e = rate_entry("ts", 100, 10), g = { .kind = 'g', .key = "ts-gate" };
	struct sim_answer an;
	struct lease l1;
	uint64_t deadline = rfx_now() + HANG_NS;

	sim_host_init(&a, "a", 5 * TERM_US, MARGIN_US, 2);
	sim_host_init(&b, "b", TERM_US, MARGIN_US, 2);
	assert_int_equal(sim_call(f->c, &b, false, &g, 1, NULL), 0);   /* b knows the epoch */
	e.use = e.unmet = 100;
	assert_int_equal(sim_call(f->c, &a, false, &e, 1, &an), 0);
	assert_int_equal(an.a, RATE(100));
	assert_int_equal(an.b, 10);
	take(&l1, &a, &an);
	a.term_us = TERM_US;                 /* the same share again, for a shorter term */
	e.sa = an.a;
	e.sb = an.b;
	assert_int_equal(sim_call(f->c, &a, false, &e, 1, &an), 0);
	assert_int_equal(an.a, RATE(100));   /* and its reply is lost: a keeps l1 */
	e.sa = e.sb = 0;
	do {                                 /* b, busy, while a trusts l1 */
		rfx_pace(20);
		assert_int_equal(sim_call(f->c, &b, false, &e, 1, &an), 0);
		assert_true(an.a + trusted(&l1, b.t_send, false) <= RATE(100));
		assert_true(an.b + trusted(&l1, b.t_send, true) <= 10);
		e.sa = an.a;
		e.sb = an.b;
		assert_true(rfx_now() < deadline);
	} while (b.t_send < l1.until || an.a == 0);
}

/* ---- quota blocks ------------------------------------------------------------------ */

struct qhost {
	struct sim_host h;
	uint64_t alloc, used;
};

/* One tick of host @q on quota @key: it uses up to @want units of what it
 * holds, then renews. Checks the ledger: used = sum of allocations <= N,
 * and no host holds more than a block of spare. */
static void quota_tick(redisContext *c, struct qhost *q, const char *key, uint64_t n,
		       uint64_t want, uint64_t bmax)
{
	struct sim_entry e = { .kind = 'q', .key = key, .cap = n, .sb = 1, .ttl = 60000 };
	uint64_t got = q->alloc - q->used < want ? q->alloc - q->used : want, sum, b;
	struct sim_answer an;
	struct sim_state s;

	q->used += got;
	e.use = got;
	e.unmet = want - got;
	e.sa = q->alloc;
	e.hold = q->used;
	assert_int_equal(sim_call(c, &q->h, false, &e, 1, &an), 0);
	assert_int_equal(an.code, 0);
	assert_true(an.a >= q->alloc);               /* Redis never shrinks it */
	q->alloc = an.a;
	assert_true(q->alloc - q->used <= bmax);
	ledger(c, key, &sum, &b, &s);
	assert_int_equal(sum, s.used);
	assert_true(s.used <= n);
}

static void quota_blocks(void **state)
{
	struct fx *f = *state;
	struct qhost q[3];
	struct sim_state s;
	struct sim_entry e = { .kind = 'q', .key = "qb", .cap = 120, .sb = 1, .ttl = 60000 };
	uint64_t sum, b, consumed = 0;
	const uint64_t bmax = 10;                    /* max(1, 120 / (4 * 3)) */

	for (int i = 0; i < 3; i++) {
		char name[8];

		snprintf(name, sizeof(name), "q%d", i);
		memset(&q[i], 0, sizeof(q[i]));
		sim_host_init(&q[i].h, name, TERM_US, MARGIN_US, 3);
	}
	/* c leases a block, then is killed with it */
	quota_tick(f->c, &q[2], "qb", 120, 4, bmax);
	assert_true(q[2].alloc > 0);
	/* a and b use everything else */
	for (int i = 0; i < 200; i++) {
		quota_tick(f->c, &q[0], "qb", 120, 4, bmax);
		quota_tick(f->c, &q[1], "qb", 120, 3, bmax);
	}
	consumed = q[0].used + q[1].used + q[2].used;
	/* the dead host strands what it leased and did not use: at most a block */
	assert_true(q[2].alloc - q[2].used <= bmax);
	assert_true(consumed >= 120 - (q[2].alloc - q[2].used));
	assert_true(consumed <= 120);
	/* a gives back its spare: counted no more */
	ledger(f->c, "qb", &sum, &b, &s);
	e.sa = q[0].used;                            /* clamped to what it used */
	e.hold = q[0].used;
	assert_int_equal(sim_call(f->c, &q[0].h, true, &e, 1, NULL), 0);
	{
		uint64_t before = s.used;

		ledger(f->c, "qb", &sum, &b, &s);
		assert_int_equal(s.used, before - (q[0].alloc - q[0].used));
		assert_int_equal(sum, s.used);
	}
}

/* A late call (an older sequence) is refused whole: it cannot shrink what
 * a newer call leased. */
static void stale_refused(void **state)
{
	struct fx *f = *state;
	struct qhost q;
	struct sim_entry e = { .kind = 'q', .key = "st", .cap = 100, .sb = 1, .ttl = 60000 };
	struct sim_state s;
	uint64_t sum, b, seq;

	memset(&q, 0, sizeof(q));
	sim_host_init(&q.h, "a", TERM_US, MARGIN_US, 1);
	quota_tick(f->c, &q, "st", 100, 5, 25);
	seq = q.h.seq;
	quota_tick(f->c, &q, "st", 100, 5, 25);
	ledger(f->c, "st", &sum, &b, &s);
	q.h.fixed_seq = seq;                        /* the first call, arriving late */
	e.sa = 0;
	assert_int_equal(sim_call(f->c, &q.h, false, &e, 1, NULL), -1);
	assert_string_equal(q.h.status, "stale");
	{
		uint64_t before = s.used;

		ledger(f->c, "st", &sum, &b, &s);
		assert_int_equal(s.used, before);
	}
}

/* A quota held by more hosts than a 16-bit length can name (its holders
 * list past 64 KiB) stays readable: every host's call is answered. */
static void many_holders(void **state)
{
	struct fx *f = *state;
	struct sim_entry e = { .kind = 'q', .key = "mh", .cap = 1000000, .sb = 1, .ttl = 60000,
			       .use = 1 };
	static struct sim_host h;
	struct sim_answer an;

	for (int i = 0; i < 1040; i++) {     /* 1040 names of 64 bytes */
		char name[VRL_GLOBAL_HOST_MAX + 1];

		snprintf(name, sizeof(name), "holder-%04d-%052d", i, 0);
		sim_host_init(&h, name, TERM_US, MARGIN_US, 2);
		assert_int_equal(sim_call(f->c, &h, false, &e, 1, &an), 0);
		assert_int_equal(an.code, 0);
		assert_true(an.a > 0);
	}
}

/* A cooldown one host publishes reaches the others. */
static void cooldown_shared(void **state)
{
	struct fx *f = *state;
	struct sim_host a, b;
	struct sim_entry e = { .kind = 'g', .key = "cd" };
	struct sim_answer an;

	sim_host_init(&a, "a", TERM_US, MARGIN_US, 2);
	sim_host_init(&b, "b", TERM_US, MARGIN_US, 2);
	e.cd = 500000;
	assert_int_equal(sim_call(f->c, &a, false, &e, 1, &an), 0);
	e.cd = 0;
	assert_int_equal(sim_call(f->c, &b, false, &e, 1, &an), 0);
	assert_true(an.cd > 0 && an.cd <= 500000);
}

/* A cooldown published by a host whose quota period is behind the key's
 * still reaches the others: the key lives at least as long as it. */
static void behind_cooldown_kept(void **state)
{
	struct fx *f = *state;
	struct sim_host a, b;
	struct sim_entry e = { .kind = 'q', .key = "bc", .cap = 100, .sb = 2, .ttl = 2000 };
	struct sim_answer an;
	redisReply *rep;

	sim_host_init(&a, "a", TERM_US, MARGIN_US, 2);
	sim_host_init(&b, "b", TERM_US, MARGIN_US, 2);
	assert_int_equal(sim_call(f->c, &a, false, &e, 1, &an), 0);   /* period 2, 2 s */
	e.sb = 1;
	e.cd = 60000000;                     /* b, still in period 1, saw a 429: 60 s */
	assert_int_equal(sim_call(f->c, &b, false, &e, 1, &an), 0);
	assert_int_equal(an.code, 3);        /* BEHIND */
	rep = redisCommand(f->c, "PTTL " RFX_KEY_PREFIX "bc");
	assert_true(rep && rep->type == REDIS_REPLY_INTEGER);
	assert_true(rep->integer > 50000);
	freeReplyObject(rep);
}

/* A window's released grants count for W: the others get the rest only. */
static void window_release(void **state)
{
	struct fx *f = *state;
	struct sim_host a, b;
	struct sim_entry e = { .kind = 'w', .key = "wr", .cap = 10, .per = 5000000 };
	struct sim_answer an;

	sim_host_init(&a, "a", TERM_US, MARGIN_US, 2);
	sim_host_init(&b, "b", TERM_US, MARGIN_US, 2);
	e.use = 10;
	e.unmet = 10;
	assert_int_equal(sim_call(f->c, &a, false, &e, 1, &an), 0);
	assert_int_equal(an.a, 10);
	e.hold = 3;                                 /* a made 3 grants in its window */
	assert_int_equal(sim_call(f->c, &a, true, &e, 1, NULL), 0);
	e.hold = 0;
	assert_int_equal(sim_call(f->c, &b, false, &e, 1, &an), 0);
	assert_int_equal(an.a, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(g1_random, setup, teardown),
		cmocka_unit_test_setup_teardown(vtime_no_catch_up, setup, teardown),
		cmocka_unit_test_setup_teardown(denied_grows, setup, teardown),
		cmocka_unit_test_setup_teardown(idle_reclaimed, setup, teardown),
		cmocka_unit_test_setup_teardown(term_shrinks, setup, teardown),
		cmocka_unit_test_setup_teardown(quota_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(stale_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(many_holders, setup, teardown),
		cmocka_unit_test_setup_teardown(cooldown_shared, setup, teardown),
		cmocka_unit_test_setup_teardown(behind_cooldown_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(window_release, setup, teardown),
	};

	if (!rfx_available()) {
		printf("redis-server is not installed (Debian: redis-server): skipped\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
