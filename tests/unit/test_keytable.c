/*
 * test_keytable.c - the lock-free key table: collisions, a full table,
 * eviction and reclaim, abandoned inserts, and concurrent inserts of the
 * same keys from many processes (never two live slots for one key).
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
#include <unistd.h>

#include "../common.h"

struct fixture {
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];
};

static int setup_small(void **state)
{
	static struct vrl_seg_config cfg;
	struct fixture *f = calloc(1, sizeof(*f));

	memset(&cfg, 0, sizeof(cfg));
	test_add_rate(&cfg, "r", NULL, 1, NS_PER_S, 1, (int[]){ VRL_FIELD_TOKEN, -1 });
	test_segment("kt", &cfg, 10, &f->seg, f->name);   /* 10 keys: 64 slots */
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	test_segment_drop(&f->seg, f->name);
	free(f);
	return 0;
}

static void key_of(int i, struct vrl_key *k)
{
	char buf[32];
	const char *parts[1] = { buf };

	snprintf(buf, sizeof(buf), "token-%d", i);
	vrl_key_hash("r", parts, 1, k);
}

/* Different field splits never hash alike: ("ab","c") vs ("a","bc"). */
static void hash_separates_fields(void **state)
{
	struct vrl_key a, b;
	const char *pa[2] = { "ab", "c" }, *pb[2] = { "a", "bc" };

	(void)state;
	vrl_key_hash("l", pa, 2, &a);
	vrl_key_hash("l", pb, 2, &b);
	assert_true(a.home != b.home || a.fp != b.fp);
	vrl_key_hash("l1", pa, 1, &a);
	vrl_key_hash("l2", pa, 1, &b);
	assert_true(a.home != b.home || a.fp != b.fp);
}

/* 64 keys in 64 slots: every probe sequence collides; each key keeps its
 * own slot and is found again; the 65th finds the table full. */
static void collisions_and_full(void **state)
{
	struct fixture *f = *state;
	struct vrl_seg_header *h = f->seg.hdr;
	const struct vrl_seg_view *v = &f->seg.view;
	uint64_t idx[64], again;
	struct vrl_key k;

	assert_int_equal(v->nslots, 64);
	for (int i = 0; i < 64; i++) {
		key_of(i, &k);
		assert_int_equal(vrl_kt_get(v, &k, 0, "x", &idx[i]), 0);
		for (int j = 0; j < i; j++)
			assert_true(idx[i] != idx[j]);
	}
	for (int i = 0; i < 64; i++) {
		key_of(i, &k);
		assert_int_equal(vrl_kt_find(v, &k, &again), 0);
		assert_int_equal(again, idx[i]);
		assert_int_equal(vrl_kt_get(v, &k, 0, "x", &again), 0);
		assert_int_equal(again, idx[i]);
	}
	key_of(64, &k);
	assert_int_equal(vrl_kt_get(v, &k, 0, "x", &again), VRL_EFULL);
	assert_int_equal(vrl_kt_find(v, &k, &again), VRL_ENOKEY);
	assert_int_equal(atomic_load(&h->table_full), 1);
}

/* vrld evicts only keys whose state is idle and whose cooldown is over;
 * reclaimed slots are reused; an evicted key is re-inserted fresh. */
static void eviction_and_reclaim(void **state)
{
	struct fixture *f = *state;
	struct vrl_seg_header *h = f->seg.hdr;
	const struct vrl_seg_view *v = &f->seg.view;
	struct vrl_seg_slot *slots = v->slots;
	uint64_t now = 1000 * NS_PER_S, idx[3], i2;
	struct vrl_key k;

	for (int i = 0; i < 3; i++) {
		key_of(i, &k);
		assert_int_equal(vrl_kt_get(v, &k, 0, "x", &idx[i]), 0);
	}
	atomic_store(&slots[idx[1]].state, now + NS_PER_S);       /* in use */
	atomic_store(&slots[idx[2]].cooldown, now + NS_PER_S);    /* closed */
	assert_int_equal(vrl_seg_sweep(&f->seg, 0, v->nslots, now, 0), 1);
	assert_int_equal(atomic_load(&slots[idx[0]].tag), VRL_TAG_FREE);
	key_of(0, &k);
	assert_int_equal(vrl_kt_find(v, &k, &i2), VRL_ENOKEY);
	key_of(1, &k);
	assert_int_equal(vrl_kt_find(v, &k, &i2), 0);
	assert_int_equal(i2, idx[1]);
	/* the closed key goes once its cooldown is over; the key in use
	 * stays until it has been idle for idle_ns */
	assert_int_equal(vrl_seg_sweep(&f->seg, 0, v->nslots, now + 2 * NS_PER_S, 5 * NS_PER_S), 1);
	assert_int_equal(vrl_seg_sweep(&f->seg, 0, v->nslots, now + 5 * NS_PER_S, 5 * NS_PER_S), 0);
	assert_int_equal(vrl_seg_sweep(&f->seg, 0, v->nslots, now + 7 * NS_PER_S, 5 * NS_PER_S), 1);
	/* a re-inserted key starts full (state 0) */
	key_of(0, &k);
	assert_int_equal(vrl_kt_get(v, &k, 0, "x", &i2), 0);
	assert_int_equal(atomic_load(&slots[i2].state), 0);
	assert_int_equal(atomic_load(&h->evictions), 3);
}

/* A worker's cooldown that lands between vrld's check of the cooldown and
 * its eviction CAS: the worker read the state before the CAS (not evicted)
 * and took its cooldown as set, so the key must still be closed after the
 * sweep, in whatever slot it now lives. */
static uint64_t racing_until;

static void cooldown_lands(struct vrl_seg_slot *s)
{
	atomic_store(&s->cooldown, racing_until);   /* seq_cst, as op_cooldown */
}

static void cooldown_racing_eviction(void **state)
{
	struct fixture *f = *state;
	const struct vrl_seg_view *v = &f->seg.view;
	uint64_t now = 1000 * NS_PER_S, idx, again;
	struct vrl_key k;

	key_of(7, &k);
	assert_int_equal(vrl_kt_get(v, &k, 0, "x", &idx), 0);
	racing_until = now + 60 * NS_PER_S;
	vrl__kt_evicting = cooldown_lands;
	vrl_seg_sweep(&f->seg, 0, v->nslots, now, 0);
	vrl__kt_evicting = NULL;
	assert_int_equal(vrl_kt_find(v, &k, &again), 0);
	assert_true(atomic_load(&v->slots[again].cooldown) >= racing_until);
	/* and a sweep while it is closed leaves it be */
	assert_int_equal(vrl_seg_sweep(&f->seg, 0, v->nslots, now + NS_PER_S, 0), 0);
	assert_int_equal(vrl_kt_find(v, &k, &again), 0);
}

/* An inserter killed between claim and promotion leaves a pending slot;
 * the next inserter of that key demotes it after the timeout and goes on. */
static void abandoned_insert(void **state)
{
	struct fixture *f = *state;
	struct vrl_seg_header *h = f->seg.hdr;
	const struct vrl_seg_view *v = &f->seg.view;
	struct vrl_seg_slot *slots = v->slots;
	uint64_t home, idx, t0;
	struct vrl_key k;

	key_of(7, &k);
	home = vrl_key_home(&k, v->nslots);
	atomic_store(&slots[home].tag, vrl_key_tag(&k) | VRL_TAG_PENDING);
	t0 = vrl_now_ns();
	assert_int_equal(vrl_kt_get(v, &k, 0, "x", &idx), 0);
	assert_true(vrl_now_ns() - t0 >= VRL_PENDING_TIMEOUT_NS);
	assert_int_equal(atomic_load(&h->abandoned), 1);
	assert_int_equal(atomic_load(&slots[home].tag), VRL_TAG_DEAD);
	assert_true(idx != home);
	/* vrld reclaims the dead slot */
	assert_int_equal(vrl_kt_reclaim(v, 0, v->nslots), 1);
	assert_int_equal(atomic_load(&slots[home].tag), VRL_TAG_FREE);
}

/* A reclaim bracket left open by a dead vrld is closed by an inserter. */
static void dead_daemon_bracket(void **state)
{
	struct fixture *f = *state;
	struct vrl_seg_header *h = f->seg.hdr;
	const struct vrl_seg_view *v = &f->seg.view;
	uint64_t idx;
	struct vrl_key k;

	atomic_store(&h->reclaim_seq, 7);            /* odd: a bracket open */
	atomic_store(&h->daemon_heartbeat_ns, 1);    /* and no tick for ages */
	key_of(3, &k);
	assert_int_equal(vrl_kt_get(v, &k, 0, "x", &idx), 0);
	assert_int_equal(atomic_load(&h->reclaim_seq), 8);
}

/* 8 processes insert the same 40 keys in different orders, with vrld-like
 * evictions and reclaims running beside them: every key ends with exactly
 * one live slot. */
static void concurrent_inserts_no_duplicates(void **state)
{
	struct fixture *f = *state;
	const struct vrl_seg_view *v = &f->seg.view;
	struct vrl_seg_slot *slots = v->slots;
	enum { PROCS = 8, KEYS = 40, ROUNDS = 300 };
	pid_t pids[PROCS];

	for (int p = 0; p < PROCS; p++) {
		pids[p] = fork();
		assert_true(pids[p] >= 0);
		if (pids[p] > 0)
			continue;
		srand((unsigned)getpid());
		for (int r = 0; r < ROUNDS; r++) {
			struct vrl_key k;
			uint64_t idx;

			key_of(rand() % KEYS, &k);
			if (vrl_kt_get(v, &k, 0, "x", &idx) != 0)
				_exit(1);
			if (p == 0 && r % 10 == 0)   /* one process plays vrld */
				vrl_seg_sweep(&f->seg, 0, v->nslots, vrl_now_ns(), 0);
		}
		_exit(0);
	}
	for (int p = 0; p < PROCS; p++) {
		int st;

		assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	for (int i = 0; i < KEYS; i++) {
		struct vrl_key k;
		int live = 0;

		key_of(i, &k);
		for (uint64_t s = 0; s < v->nslots; s++)
			live += atomic_load(&slots[s].tag) == vrl_key_tag(&k) &&
				atomic_load(&slots[s].state) != VRL_STATE_EVICTED;
		assert_true(live <= 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hash_separates_fields),
		cmocka_unit_test_setup_teardown(collisions_and_full, setup_small, teardown),
		cmocka_unit_test_setup_teardown(eviction_and_reclaim, setup_small, teardown),
		cmocka_unit_test_setup_teardown(cooldown_racing_eviction, setup_small, teardown),
		cmocka_unit_test_setup_teardown(abandoned_insert, setup_small, teardown),
		cmocka_unit_test_setup_teardown(dead_daemon_bracket, setup_small, teardown),
		cmocka_unit_test_setup_teardown(concurrent_inserts_no_duplicates, setup_small,
						teardown),
	};

	return cmocka_run_group_tests_name("keytable", tests, NULL, NULL);
}
