/*
 * test_share.c - the share word of a global rate key (lib/kinds/share.h):
 * its arithmetic, and invariant 1 across three simulated hosts whose
 * shares a ledger moves as vrl.lua does (a host's promise counts until it
 * expires; a grant never makes the promises in force sum above the limit),
 * every interval of the merged grants checked against the global limit,
 * in virtual time. And workers on threads taking while a vrld thread
 * fills and changes the share: never more taken than filled.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "share.h"

#define MS UINT64_C(1000000)
#define S  UINT64_C(1000000000)
#define UNIT VRL_SHARE_RATE_UNIT

static void word_and_take(void **state)
{
	_Atomic uint64_t w = 0;
	uint64_t now = 5 * S;

	(void)state;
	/* no lease: lapsed */
	assert_int_equal(vrl_share_take(&w, 1, now), VRL_SHARE_LAPSED);
	/* until rounds down: a lease trusted to T is never used at T */
	assert_int_equal(vrl_share_until_of((UINT64_C(7) << 20) + 5), 7);
	vrl_share_set(&w, 4, now + 100 * MS, false);
	assert_int_equal(vrl_share_credit(w), 0);      /* a new lease starts empty */
	assert_int_equal(vrl_share_take(&w, 1, now), VRL_SHARE_SHORT);
	vrl_share_fill_word(&w, 10u << 8, 4);           /* capped at the burst */
	assert_int_equal(vrl_share_credit(w), 4u << 8);
	assert_int_equal(vrl_share_take(&w, 3, now), VRL_SHARE_GRANTED);
	assert_int_equal(vrl_share_take(&w, 2, now), VRL_SHARE_SHORT);
	assert_int_equal(vrl_share_take(&w, 1, now), VRL_SHARE_GRANTED);
	assert_int_equal(vrl_share_credit(w), 0);
	vrl_share_fill_word(&w, 3u << 8, 4);
	/* past the trusted time: lapsed, whatever the credit */
	assert_int_equal(vrl_share_take(&w, 1, now + 100 * MS), VRL_SHARE_LAPSED);
	/* a smaller share clamps the credit; none (F3) empties it */
	vrl_share_set(&w, 2, now + 200 * MS, false);
	assert_int_equal(vrl_share_credit(w), 2u << 8);
	vrl_share_set(&w, 0, 0, false);
	assert_int_equal(w, 0);
	assert_int_equal(vrl_share_take(&w, 1, now), VRL_SHARE_LAPSED);
	/* too large a cost never fits */
	vrl_share_set(&w, VRL_SHARE_BURST_MAX, now + S, false);
	vrl_share_fill_word(&w, VRL_SHARE_CREDIT_MAX, VRL_SHARE_BURST_MAX);
	assert_int_equal(vrl_share_take(&w, VRL_SHARE_BURST_MAX + 1, now), VRL_SHARE_SHORT);
}

static void due_exact(void **state)
{
	struct vrl_share_fill f = { .rate = 3 * UNIT / 2, .burst = 100, .trusted = 100 * S,
				    .filled_to = 0 };
	uint64_t sum = 0;

	(void)state;
	/* 1.5/s for 10 s in 1000 steps of 10 ms: 15 permits, exactly */
	for (uint64_t t = 10 * MS; t <= 10 * S; t += 10 * MS)
		sum += vrl_share_due(&f, t);
	assert_int_equal(sum, 15u << 8);
	/* nothing past the trusted time */
	f.trusted = 10 * S + 500 * MS;
	sum = vrl_share_due(&f, 20 * S);
	assert_int_equal(sum, (3u << 8) / 4);          /* 0.75 permits */
	assert_int_equal(vrl_share_due(&f, 30 * S), 0);
}

/* ---- three hosts and a ledger ------------------------------------------------- */

/*
 * F1's room term: a bucket full at a fill and emptied just before the
 * next one holds, after it, no more than a continuous bucket of the same
 * share with the same take: the fill of the time it was full is lost.
 * (Adding the whole interval's fill gave half a permit here.)
 */
static void fill_after_full(void **state)
{
	struct vrl_share_fill f = { 0 };
	_Atomic uint64_t w = 0;
	const uint64_t t0 = 1000 * S;

	(void)state;
	vrl_share_apply(&f, &w, 100 * UNIT, 1, t0 + S, t0);         /* 100/s, burst 1 */
	vrl_share_tick(&f, &w, t0 + 10 * MS);                       /* full */
	assert_int_equal(vrl_share_credit(w), 1u << 8);
	/* the take at 14.9 ms, a tenth of a ms before the fill at 15 ms */
	assert_int_equal(vrl_share_take(&w, 1, t0 + 14900 * 1000), VRL_SHARE_GRANTED);
	vrl_share_tick(&f, &w, t0 + 15 * MS);
	/* continuous: full to 14.9 ms, then 0.1 ms x 100/s = 0.01 permit */
	assert_true(vrl_share_credit(w) <= 3u);
	/* and from then on it fills at the share's rate */
	vrl_share_tick(&f, &w, t0 + 20 * MS);
	assert_int_equal(vrl_share_credit(w), 128u);               /* 5 ms x 100/s */
}

#define HOSTS 3
#define LIMIT_R 90u              /* permits/s */
#define LIMIT_B 3u
#define TERM (100 * MS)          /* lease term */
#define TICK (10 * MS)           /* vrld's tick */
#define STEP (MS / 4)            /* workers' pace */
#define RUN  (20 * S)
#define MAXG 8192u

struct promise {
	uint64_t r, b, exp;
};

struct ledger {
	struct promise p[HOSTS][8];  /* each host's promises not yet expired */
};

static struct promise held(const struct ledger *l, unsigned h, uint64_t v)
{
	struct promise m = { 0, 0, 0 };

	for (unsigned i = 0; i < 8; i++) {
		const struct promise *p = &l->p[h][i];

		if (p->exp > v) {
			m.r = p->r > m.r ? p->r : m.r;
			m.b = p->b > m.b ? p->b : m.b;
		}
	}
	return m;
}

/* Grant host @h what it asks, or what the others' promises leave (G1). */
static struct promise grant(struct ledger *l, unsigned h, uint64_t want_r, uint64_t want_b,
			    uint64_t v)
{
	uint64_t or = 0, ob = 0;
	struct promise g;
	unsigned slot = 0;

	for (unsigned o = 0; o < HOSTS; o++) {
		struct promise m = held(l, o, v);

		if (o != h) {
			or += m.r;
			ob += m.b;
		}
	}
	g.r = want_r < LIMIT_R * UNIT - or ? want_r : LIMIT_R * UNIT - or;
	g.b = want_b < LIMIT_B - ob ? want_b : LIMIT_B - ob;
	g.exp = v + TERM;
	for (unsigned i = 0; i < 8; i++)
		if (l->p[h][i].exp <= v || l->p[h][i].exp < l->p[h][slot].exp)
			slot = i;
	l->p[h][slot] = g;
	return g;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Host @h's vrld stopped at @t: each host for 400 ms, several times. */
static bool stopped(unsigned h, uint64_t t)
{
	uint64_t phase = (t + h * 2100 * MS) % (6 * S);

	return phase >= 3 * S && phase < 3 * S + 400 * MS;
}

static void three_hosts(void **state)
{
	static uint64_t grants[MAXG];
	_Atomic uint64_t word[HOSTS] = { 0 };
	struct vrl_share_fill f[HOSTS];
	struct ledger l;
	uint64_t seed = 0x9e3779b97f4a7c15u, want_r[HOSTS], want_b[HOSTS];
	unsigned pace[HOSTS] = { 0, 0, 0 };   /* 0: greedy; k: one try in k steps */
	size_t n = 0;
	uint64_t mx_i = 0;
	bool have = false;
	long double mx = 0;

	(void)state;
	memset(&l, 0, sizeof(l));
	memset(f, 0, sizeof(f));
	for (unsigned h = 0; h < HOSTS; h++) {
		want_r[h] = LIMIT_R * UNIT / HOSTS;
		want_b[h] = 1;
	}
	for (uint64_t t = STEP; t < RUN; t += STEP) {
		/* demand moves every 300 ms: any split of the rate and burst */
		if (t % (300 * MS) == 0)
			for (unsigned h = 0; h < HOSTS; h++) {
				want_r[h] = rnd(&seed) % (LIMIT_R * UNIT + 1);
				want_b[h] = rnd(&seed) % (LIMIT_B + 1);
				pace[h] = (unsigned[]){ 0, 64, 256, 1024 }[rnd(&seed) % 4];
			}
		/* each host's vrld ticks at its own phase: renew, then fill; a
		 * stopped vrld (SIGSTOP) does neither, its workers go on */
		for (unsigned h = 0; h < HOSTS; h++) {
			if ((t + h * 3 * MS) % TICK != 0 || stopped(h, t))
				continue;
			if ((t / TICK + h) % 3 == 0) {   /* a renewal every third tick */
				struct promise g = grant(&l, h, want_r[h], want_b[h], t);

				/* trusted until the expiry less a margin */
				vrl_share_apply(&f[h], &word[h], g.r, g.b, g.exp - 5 * MS, t);
			} else {
				vrl_share_tick(&f[h], &word[h], t);
			}
		}
		/* workers: at their demand's pace, or as many as the share allows */
		for (unsigned h = 0; h < HOSTS; h++)
			while ((pace[h] == 0 || rnd(&seed) % pace[h] == 0) &&
			       vrl_share_take(&word[h], 1, t) == VRL_SHARE_GRANTED) {
				assert_true(n < sizeof(grants) / sizeof(grants[0]));
				grants[n++] = t;
				if (pace[h])
					break;
			}
	}
	/* every interval [grants[i], grants[j]]: j - i + 1 <= B + r (t_j - t_i) */
	for (size_t j = 0; j < n; j++) {
		long double ri = (long double)LIMIT_R * grants[j] / S - (long double)j;

		if (!have || ri > mx) {
			mx = ri;
			mx_i = j;
			have = true;
		}
		{
			long double excess = (long double)(j + 1) -
				(long double)LIMIT_R * grants[j] / S + mx;

			if (excess > LIMIT_B + 1e-9L)
				fail_msg("grants %zu..%zu: %zu in %llu ns, above %u + %u/s",
					 (size_t)mx_i, j, (size_t)(j - mx_i + 1),
					 (unsigned long long)(grants[j] - grants[mx_i]), LIMIT_B,
					 LIMIT_R);
		}
	}
	/* the hosts did grant (the shares moved among them) */
	assert_true(n > 0);
}

/*
 * Host a's vrld stops with a full bucket; once its lease has expired in
 * the ledger, host b gets the whole limit. a's workers, still running,
 * must not spend what a held: at most B in any instant, all hosts.
 */
static void stopped_with_credit(void **state)
{
	_Atomic uint64_t wa = 0, wb = 0;
	struct vrl_share_fill fa = { 0 }, fb = { 0 };
	struct ledger l;
	struct promise g;
	uint64_t t = S, burst_at_once = 0;

	(void)state;
	memset(&l, 0, sizeof(l));
	g = grant(&l, 0, LIMIT_R * UNIT, LIMIT_B, t);
	vrl_share_apply(&fa, &wa, g.r, g.b, g.exp - 5 * MS, t);
	vrl_share_tick(&fa, &wa, t + 50 * MS);          /* full: 3 permits */
	assert_int_equal(vrl_share_credit(wa), LIMIT_B << 8);
	/* a's vrld stops here; b asks until the ledger lets it have all */
	for (t += 50 * MS; t < 2 * S; t += TICK) {
		g = grant(&l, 1, LIMIT_R * UNIT, LIMIT_B, t);
		if (g.b == LIMIT_B)
			break;
	}
	assert_true(t < 2 * S);
	vrl_share_apply(&fb, &wb, g.r, g.b, g.exp - 5 * MS, t);
	vrl_share_tick(&fb, &wb, t + 50 * MS);
	t += 50 * MS;
	/* at one instant: b's full bucket, and whatever a's workers get */
	while (vrl_share_take(&wb, 1, t) == VRL_SHARE_GRANTED)
		burst_at_once++;
	while (vrl_share_take(&wa, 1, t) == VRL_SHARE_GRANTED)
		burst_at_once++;
	assert_int_equal(burst_at_once, LIMIT_B);
	assert_int_equal(vrl_share_take(&wa, 1, t), VRL_SHARE_LAPSED);
}

/* ---- threads: workers take while vrld fills and moves the share ------------- */

struct shared {
	_Atomic uint64_t word;
	_Atomic int stop;
	_Atomic uint64_t taken;
};

static void *worker(void *arg)
{
	struct shared *sh = arg;
	uint64_t mine = 0, t = 1;

	while (!atomic_load_explicit(&sh->stop, memory_order_relaxed))
		mine += vrl_share_take(&sh->word, 1, t) == VRL_SHARE_GRANTED;
	atomic_fetch_add_explicit(&sh->taken, mine, memory_order_relaxed);
	return NULL;
}

static void threads(void **state)
{
	struct shared sh = { 0 };
	pthread_t th[3];
	uint64_t added = 0;

	(void)state;
	vrl_share_set(&sh.word, 8, UINT64_MAX >> 1, false);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker, &sh), 0);
	for (unsigned k = 0; k < 20000; k++) {
		/* at most 3 permits a fill (less when it met the cap) */
		vrl_share_fill_word(&sh.word, 3u << 8, 8);
		added += 3;
		if (k % 97 == 0)
			vrl_share_set(&sh.word, 1 + k % 8, UINT64_MAX >> 1, false);
	}
	atomic_store(&sh.stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	/* every permit taken came from a fill; the initial share was empty */
	assert_true(atomic_load(&sh.taken) <= added);
	assert_true(atomic_load(&sh.taken) + vrl_share_credit(sh.word) / 256 <= added);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(word_and_take),
		cmocka_unit_test(due_exact),
		cmocka_unit_test(fill_after_full),
		cmocka_unit_test(three_hosts),
		cmocka_unit_test(stopped_with_credit),
		cmocka_unit_test(threads),
	};

	return cmocka_run_group_tests_name("share", tests, NULL, NULL);
}
