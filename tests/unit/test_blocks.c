/*
 * test_blocks.c - the block word of a global quota or slots key
 * (lib/kinds/blocks.h): a take under the key's tag only, a give-back that
 * never crosses a tag change, vrld's growth and clamp of the allocation
 * and its drain, each from the very word it loaded; and workers on
 * threads taking and giving back while a vrld thread grows, clamps and
 * drains: the allocation always equals the units held plus the credit
 * (blocks.h B1), whatever the interleaving.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"

#define P 7u    /* a quota period id */

/* A take needs the tag and the room; a new period's word starts empty. */
static void take_and_tag(void **state)
{
	_Atomic uint64_t w = 0, cap = 0;
	uint64_t tp = vrl_block_tag_quota(P), tq = vrl_block_tag_quota(P + 1);

	(void)state;
	assert_int_not_equal(vrl_block_tag_quota(0), 0);    /* `once`: still a tag */
	assert_int_equal(vrl_block_take(&w, tp, 1), VRL_SHARE_LAPSED);   /* none */
	assert_int_equal(vrl_block_take(&w, 0, 1), VRL_SHARE_LAPSED);
	vrl_block_start(&w, &cap, tp);
	assert_int_equal(vrl_block_take(&w, tp, 1), VRL_SHARE_SHORT);
	assert_int_equal(vrl_block_apply(&w, &cap, tp, 5, 0, false), 5);
	assert_int_equal(vrl_block_credit(w), 5);
	/* a grant of another period: not from this credit */
	assert_int_equal(vrl_block_take(&w, tq, 1), VRL_SHARE_LAPSED);
	assert_int_equal(vrl_block_take(&w, tp, 6), VRL_SHARE_SHORT);
	assert_int_equal(vrl_block_take(&w, tp, 2), VRL_SHARE_GRANTED);
	assert_int_equal(vrl_block_credit(w), 3);
	assert_int_equal(vrl_block_consumed(w, cap), 2);
	/* given back under its tag: exact */
	assert_int_equal(vrl_block_give(&w, tp, 1), 1);
	assert_int_equal(vrl_block_consumed(w, cap), 1);
	/* a new period: empty, and a give-back of the old one lands nowhere */
	vrl_block_start(&w, &cap, tq);
	assert_int_equal(vrl_block_credit(w), 0);
	assert_int_equal(cap, 0);
	assert_int_equal(vrl_block_give(&w, tp, 1), 0);
	assert_int_equal(vrl_block_credit(w), 0);
	/* the credit tops out at 2^24 - 1: a give-back past it gives less */
	vrl_block_apply(&w, &cap, tq, VRL_BLOCK_CREDIT_MAX, 0, false);
	assert_int_equal(vrl_block_take(&w, tq, 2), VRL_SHARE_GRANTED);
	assert_int_equal(vrl_block_give(&w, tq, 3), 2);
}

/* vrld's steps: grown to what Redis counts, clamped to used + target after
 * an OK answer (never below what is used), left for another period,
 * drained to what is used. */
static void grow_clamp_drain(void **state)
{
	_Atomic uint64_t w = 0, cap = 0;
	uint64_t t = VRL_BLOCK_SLOTS_TAG;

	(void)state;
	vrl_block_start(&w, &cap, t);
	assert_int_equal(vrl_block_apply(&w, &cap, t, 10, 4, true), 4);   /* clamped */
	assert_int_equal(vrl_block_credit(w), 4);
	assert_int_equal(vrl_block_take(&w, t, 3), VRL_SHARE_GRANTED);
	/* Redis says 10 (it counts our report of 4 and grew it): 6 more,
	 * clamped to a spare of 5: 3 used + 5 */
	assert_int_equal(vrl_block_apply(&w, &cap, t, 10, 5, true), 8);
	assert_int_equal(vrl_block_credit(w), 5);
	/* a smaller target: the spare shrinks, never what is used */
	assert_int_equal(vrl_block_apply(&w, &cap, t, 8, 0, true), 3);
	assert_int_equal(vrl_block_credit(w), 0);
	/* not OK (seeding, fenced): the allocation kept, grown to what Redis
	 * counts, no clamp */
	assert_int_equal(vrl_block_apply(&w, &cap, t, 9, 0, false), 9);
	assert_int_equal(vrl_block_credit(w), 6);
	/* an answer of another period: nothing moves */
	assert_int_equal(vrl_block_apply(&w, &cap, vrl_block_tag_quota(P), 100, 50, true), 9);
	assert_int_equal(vrl_block_credit(w), 6);
	/* drained: the allocation is what is used */
	assert_int_equal(vrl_block_drain(&w, &cap), 3);
	assert_int_equal(vrl_block_credit(w), 0);
	assert_int_equal(vrl_block_tag(w), t);
	/* the holders give back: credit again, the allocation the same */
	assert_int_equal(vrl_block_give(&w, t, 3), 3);
	assert_int_equal(vrl_block_consumed(w, cap), 0);
	assert_int_equal(cap, 3);
	/* a rate key's word drained: its cap stays 0 */
	w = vrl_share_word(99, 5u << VRL_SHARE_FRAC_BITS);
	cap = 0;
	assert_int_equal(vrl_block_drain(&w, &cap), 0);
	assert_int_equal(vrl_share_credit(w), 0);
}

/* ---- threads: workers hold and release while vrld moves the allocation ------ */

struct shared {
	_Atomic uint64_t word, cap;
	_Atomic int stop;
	_Atomic uint64_t held;        /* units the workers hold at the end */
};

static void *worker(void *arg)
{
	struct shared *sh = arg;
	uint64_t mine = 0, n = 0;

	while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
		n++;
		if (mine > 0 && n % 3 == 0) {
			mine -= vrl_block_give(&sh->word, VRL_BLOCK_SLOTS_TAG, 1);
			continue;
		}
		mine += vrl_block_take(&sh->word, VRL_BLOCK_SLOTS_TAG, 1) == VRL_SHARE_GRANTED;
	}
	atomic_fetch_add_explicit(&sh->held, mine, memory_order_relaxed);
	return NULL;
}

/*
 * B1 under races: three workers take and give back slots while vrld grows
 * the allocation, clamps it to a target and drains it, each from the word
 * it loaded. At the end the allocation is exactly the units held plus the
 * credit: no unit was made or lost by a race.
 */
static void threads_exact(void **state)
{
	struct shared sh = { 0 };
	pthread_t th[3];
	uint64_t cap = 0;

	(void)state;
	vrl_block_start(&sh.word, &sh.cap, VRL_BLOCK_SLOTS_TAG);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker, &sh), 0);
	for (unsigned k = 0; k < 20000; k++) {
		uint64_t c = atomic_load(&sh.cap);

		if (k % 50 == 49)
			cap = vrl_block_drain(&sh.word, &sh.cap);
		else
			cap = vrl_block_apply(&sh.word, &sh.cap, VRL_BLOCK_SLOTS_TAG, c + k % 4,
					      k % 7, k % 2 == 0);
		/* never more allocated than Redis counts: at most c + k % 4 */
		assert_true(cap <= c + k % 4);
	}
	atomic_store(&sh.stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(cap, atomic_load(&sh.cap));
	assert_int_equal(atomic_load(&sh.held) + vrl_block_credit(sh.word), cap);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(take_and_tag),
		cmocka_unit_test(grow_clamp_drain),
		cmocka_unit_test(threads_exact),
	};

	return cmocka_run_group_tests_name("blocks", tests, NULL, NULL);
}
