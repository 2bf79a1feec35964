/*
 * test_global_acquire.c - the acquire path of a global rate key (acquire.c
 * AQ.S1 to S3): a grant needs the key's GCRA and its slot's share word,
 * all or nothing; a denial for want of share says so, writes nothing
 * else, hints a retry, and counts unmet demand; a grant counts used. The
 * share word is set here as vrld would (share.h), without vrld.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common.h"
#include "clock.h"
#include "share.h"
#include "gkeys.h"

#define MS UINT64_C(1000000)

static const int per_org[] = { VRL_FIELD_ORG, -1 };

struct fixture {
	struct vrl_seg_config cfg;
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];
	vrl_client *c;
};

/* g: global 100/s burst 4 on api "g"; h: a host limit 1/min burst 2 on
 * api "s" besides g (a request of api "s" matches both: see below). */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct vrl_seg_limit *l;

	l = test_add_rate(&f->cfg, "g", NULL, 100, NS_PER_S, 4, per_org);
	l->flags |= VRL_LIMIT_GLOBAL;
	test_add_rate(&f->cfg, "h", "s", 1, 60 * NS_PER_S, 2, per_org);
	test_segment("gacq", &f->cfg, 100, &f->seg, f->name);
	f->c = test_open(f->name);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vrl_close(f->c);
	test_segment_drop(&f->seg, f->name);
	free(f);
	return 0;
}

/* The slot of the one key of limit @lim (by its note) of the segment. */
static uint64_t slot_of(struct fixture *f, uint32_t lim)
{
	for (uint64_t i = 0; i < f->seg.view.nslots; i++) {
		uint64_t tag = atomic_load(&f->seg.view.slots[i].tag);

		if ((tag & VRL_TAG_LIVE) && !(tag & VRL_TAG_PENDING) &&
		    VRL_NOTE_INDEX(atomic_load(&f->seg.view.slots[i].limit)) == lim)
			return i;
	}
	fail_msg("no key of limit %u", lim);
	return 0;
}

static struct vrl_seg_share *share(struct fixture *f, uint32_t lim)
{
	return &f->seg.view.shares[slot_of(f, lim)];
}

/* A lease of @burst trusted for 10 s, filled with @credit permits (vrld's F2, F1). */
static void lease(struct vrl_seg_share *sh, uint64_t burst, uint64_t credit)
{
	vrl_share_set(&sh->word, burst, vrl_now_ns() + 10 * NS_PER_S, false);
	vrl_share_fill_word(&sh->word, credit << VRL_SHARE_FRAC_BITS, burst);
}

static int acquire(struct fixture *f, const char *api, uint64_t cost, struct vrl_verdict *v)
{
	struct vrl_request rq = { .api = api, .org = "o", .cost = cost };

	return vrl_acquire(f->c, &rq, v);
}

/* The share area exists with a global limit, one per slot; not without. */
static void area_only_with_global(void **state)
{
	struct fixture *f = *state;
	struct vrl_seg_config cfg = { 0 };
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];

	assert_non_null(f->seg.view.shares);
	assert_int_equal(f->seg.geom.nshares, f->seg.view.nslots);
	test_add_rate(&cfg, "h", NULL, 1, NS_PER_S, 1, per_org);
	test_segment("gacq-host", &cfg, 100, &seg, name);
	assert_null(seg.view.shares);
	assert_int_equal(seg.geom.nshares, 0);
	test_segment_drop(&seg, name);
}

/* No lease: denied for want of share (LAPSED), counted unmet, the GCRA
 * untouched; then a lease: granted, counted used, credit taken. */
static void lapsed_then_granted(void **state)
{
	struct fixture *f = *state;
	struct vrl_seg_share *sh;
	struct vrl_verdict v;
	uint64_t st;

	assert_int_equal(acquire(f, "g", 1, &v), VRL_EDENIED);
	assert_true(v.flags & VRL_VERDICT_SHARE);
	assert_string_equal(v.limit_name, "g");
	assert_int_equal(v.retry_after_ns, VRL_SHARE_RETRY_NS);
	sh = share(f, 0);
	assert_int_equal(atomic_load(&sh->unmet), 1);
	assert_int_equal(atomic_load(&sh->used), 0);
	/* the key's GCRA was not charged: its word is still a full bucket */
	st = atomic_load(&f->seg.view.slots[slot_of(f, 0)].state);
	lease(sh, 4, 2);
	assert_int_equal(acquire(f, "g", 1, &v), 0);
	assert_false(v.flags & VRL_VERDICT_SHARE);
	assert_int_equal(atomic_load(&sh->used), 1);
	assert_int_equal(vrl_share_credit(atomic_load(&sh->word)), 1u << VRL_SHARE_FRAC_BITS);
	assert_int_not_equal(atomic_load(&f->seg.view.slots[slot_of(f, 0)].state), st);
}

/* Short: the share has less than the cost; the GCRA has room. */
static void short_and_cost(void **state)
{
	struct fixture *f = *state;
	struct vrl_seg_share *sh;
	struct vrl_verdict v;
	uint64_t st;

	assert_int_equal(acquire(f, "g", 1, &v), VRL_EDENIED);   /* makes the key */
	sh = share(f, 0);
	lease(sh, 4, 2);
	st = atomic_load(&f->seg.view.slots[slot_of(f, 0)].state);
	/* cost 3 > credit 2: denied, nothing written but the unmet count */
	assert_int_equal(acquire(f, "g", 3, &v), VRL_EDENIED);
	assert_true(v.flags & VRL_VERDICT_SHARE);
	assert_int_equal(v.remaining, 0);
	assert_int_equal(atomic_load(&sh->unmet), 1 + 3);
	assert_int_equal(atomic_load(&f->seg.view.slots[slot_of(f, 0)].state), st);
	assert_int_equal(vrl_share_credit(atomic_load(&sh->word)), 2u << VRL_SHARE_FRAC_BITS);
	/* cost 2 == credit: granted, the credit all taken */
	assert_int_equal(acquire(f, "g", 2, &v), 0);
	assert_int_equal(atomic_load(&sh->used), 2);
	assert_int_equal(vrl_share_credit(atomic_load(&sh->word)), 0);
	assert_int_equal(acquire(f, "g", 1, &v), VRL_EDENIED);
	assert_true(v.flags & VRL_VERDICT_SHARE);
	/* a lease that ran out: lapsed, whatever the credit */
	vrl_share_set(&sh->word, 4, vrl_now_ns() - MS, false);
	vrl_share_fill_word(&sh->word, 4u << VRL_SHARE_FRAC_BITS, 4);
	assert_int_equal(acquire(f, "g", 1, &v), VRL_EDENIED);
	assert_true(v.flags & VRL_VERDICT_SHARE);
	assert_int_equal(atomic_load(&sh->used), 2);
}

/* Stacked with a host limit: all or nothing either way. */
static void stacked_all_or_nothing(void **state)
{
	struct fixture *f = *state;
	struct vrl_seg_share *sh;
	struct vrl_verdict v;
	uint64_t hst;

	/* api "s" matches g (no api) and h (api s) */
	assert_int_equal(acquire(f, "s", 1, &v), VRL_EDENIED);
	assert_true(v.flags & VRL_VERDICT_SHARE);
	assert_int_equal(v.matched, 2);
	/* the host key was not charged by the denial: its 2 permits are there */
	sh = share(f, 0);
	lease(sh, 4, 4);
	assert_int_equal(acquire(f, "s", 1, &v), 0);
	assert_int_equal(acquire(f, "s", 1, &v), 0);
	assert_int_equal(vrl_share_credit(atomic_load(&sh->word)), 2u << VRL_SHARE_FRAC_BITS);
	/* now the host key denies: the share is not taken */
	hst = atomic_load(&f->seg.view.slots[slot_of(f, 1)].state);
	assert_int_equal(acquire(f, "s", 1, &v), VRL_EDENIED);
	assert_string_equal(v.limit_name, "h");
	assert_false(v.flags & VRL_VERDICT_SHARE);
	assert_int_equal(vrl_share_credit(atomic_load(&sh->word)), 2u << VRL_SHARE_FRAC_BITS);
	assert_int_equal(atomic_load(&sh->used), 2);
	assert_int_equal(atomic_load(&f->seg.view.slots[slot_of(f, 1)].state), hst);
}

/* A waiting acquire whose deadline is shorter than a refill is denied at
 * once; one whose deadline allows waits for the share and gets it. */
static void waiting(void **state)
{
	struct fixture *f = *state;
	struct vrl_request rq = { .api = "g", .org = "o" };
	struct vrl_seg_share *sh;
	struct vrl_verdict v;

	assert_int_equal(vrl_acquire_wait(f->c, &rq, VRL_SHARE_RETRY_NS / 2, &v), VRL_EDENIED);
	assert_true(v.flags & VRL_VERDICT_SHARE);
	sh = share(f, 0);
	lease(sh, 4, 1);
	assert_int_equal(vrl_acquire_wait(f->c, &rq, 10 * NS_PER_S, &v), 0);
	assert_int_equal(atomic_load(&sh->used), 1);
}

/* vrld's sweep drains a global key's credit before it evicts the key: a
 * key that reuses the slot finds none of it. */
static void eviction_drains(void **state)
{
	struct fixture *f = *state;
	struct vrl_verdict v;
	uint64_t i, later = vrl_now_ns() + 3600 * NS_PER_S;

	assert_int_equal(acquire(f, "g", 1, &v), VRL_EDENIED);
	i = slot_of(f, 0);
	lease(&f->seg.view.shares[i], 4, 4);
	vrl_share_set(&f->seg.view.shares[i].word, 4, later + 10 * NS_PER_S, false);
	assert_int_equal(vrl_seg_sweep_at(&f->seg, 0, f->seg.view.nslots, later, vrl_wall_ns(),
					  NS_PER_S), 1);
	assert_false(atomic_load(&f->seg.view.slots[i].tag) & VRL_TAG_LIVE);
	assert_int_equal(vrl_share_credit(atomic_load(&f->seg.view.shares[i].word)), 0);
}

/* A reload keeps each limit's scope, and the share area: refused with why. */
static void reload_scope(void **state)
{
	struct fixture *f = *state;
	struct vrl_seg_config cfg = f->cfg;
	struct vrl_seg_config host = { 0 };
	struct vrl_seg seg;
	char why[256], name[VRL_SHM_NAME_MAX];

	/* g turned host: refused, naming it */
	cfg.limits[0].flags &= ~VRL_LIMIT_GLOBAL;
	assert_int_equal(vrl_seg_reload(&f->seg, &cfg, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "limit g: scope changed from global to host"));
	/* h turned global: refused */
	cfg = f->cfg;
	cfg.limits[1].flags |= VRL_LIMIT_GLOBAL;
	assert_int_equal(vrl_seg_reload(&f->seg, &cfg, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "limit h: scope changed from host to global"));
	/* a new global limit: accepted */
	cfg = f->cfg;
	test_add_rate(&cfg, "g2", "n", 10, NS_PER_S, 2, per_org)->flags |= VRL_LIMIT_GLOBAL;
	assert_int_equal(vrl_seg_reload(&f->seg, &cfg, why, sizeof(why)), 0);
	/* a segment without a share area takes no global limit */
	test_add_rate(&host, "h", NULL, 1, NS_PER_S, 1, per_org);
	test_segment("gacq-host2", &host, 100, &seg, name);
	test_add_rate(&host, "g", "n", 10, NS_PER_S, 2, per_org)->flags |= VRL_LIMIT_GLOBAL;
	assert_int_equal(vrl_seg_reload(&seg, &host, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "share area"));
	test_segment_drop(&seg, name);
}

/* Spin on the clock until @t: an event of the clock, no sleep. */
static uint64_t clock_past(uint64_t t)
{
	uint64_t now;

	while ((now = vrl_mono_ns()) < t)
		;
	return now;
}

/*
 * gkeys.c K7: between two scans vrld adds each key's credit every fill,
 * so a host whose burst share is one permit grants its rate share, not
 * one permit a tick; a key gone since the scan gets none.
 */
static void fill_between_scans(void **state)
{
	struct fixture *f = *state;
	struct vrld_gkeys g = { 0 };
	struct vrl_global_result r = { 0 };
	struct vrl_seg_share *sh;
	struct vrl_verdict v;
	uint64_t now, t, slot;

	assert_int_equal(acquire(f, "g", 1, &v), VRL_EDENIED);   /* makes the key */
	slot = slot_of(f, 0);
	sh = &f->seg.view.shares[slot];
	now = vrl_mono_ns();
	assert_int_equal(vrld_gkeys_scan(&g, &f->seg, now), 0);   /* K2: taken up */
	assert_int_equal(g.n, 1);
	/* a lease of 2000/s burst 1 (the engine's result), from credit 0:
	 * a fill step (1 ms, or later on a busy machine) is due two permits */
	memcpy(r.id, g.e[0].id, sizeof(r.id));
	r.apply = true;
	r.share.rate = 2000 * VRL_SHARE_RATE_UNIT;
	r.share.burst = 1;
	r.expires = now + 100 * NS_PER_S;
	r.gen = 1;
	vrld_gkeys_apply(&g, &f->seg, &r, 1, now);
	assert_int_equal(vrl_share_credit(atomic_load(&sh->word)), 0);
	/* one fill step later: one permit (capped at the burst) */
	t = clock_past(now + VRL_SHARE_FILL_NS);
	vrld_gkeys_fill(&g, &f->seg, t);
	assert_int_equal(vrl_share_credit(atomic_load(&sh->word)), 1u << VRL_SHARE_FRAC_BITS);
	assert_int_equal(acquire(f, "g", 1, &v), 0);
	/* with no scan between: the next step adds none (the bucket was full
	 * at the last: share.h F1's room), the one after a permit again */
	t = clock_past(t + VRL_SHARE_FILL_NS);
	vrld_gkeys_fill(&g, &f->seg, t);
	assert_int_equal(vrl_share_credit(atomic_load(&sh->word)), 0);
	t = clock_past(t + VRL_SHARE_FILL_NS);
	vrld_gkeys_fill(&g, &f->seg, t);
	assert_int_equal(vrl_share_credit(atomic_load(&sh->word)), 1u << VRL_SHARE_FRAC_BITS);
	assert_int_equal(acquire(f, "g", 1, &v), 0);
	/* the key evicted since the scan: no credit for the slot */
	atomic_store(&f->seg.view.slots[slot].state, VRL_STATE_EVICTED);
	t = clock_past(t + 2 * VRL_SHARE_FILL_NS);
	vrld_gkeys_fill(&g, &f->seg, t);
	assert_int_equal(vrl_share_credit(atomic_load(&sh->word)), 0);
	vrld_gkeys_free(&g);
}

/*
 * share.h F0, acquire.c AQ.S4: a grant is dated by its decision, so the
 * credit it spends must be of then. Credit added by a pass of vrld's fill
 * later than the acquire's clock read (as when the worker was preempted
 * between its read and its take) is not granted from: denied, and the
 * credit taken stays spent. Then a pass of the past: granted again.
 */
static void credit_of_a_later_pass(void **state)
{
	struct fixture *f = *state;
	struct vrl_seg_share *sh;
	struct vrl_verdict v;

	assert_int_equal(acquire(f, "g", 1, &v), VRL_EDENIED);   /* makes the key */
	sh = share(f, 0);
	lease(sh, 4, 4);
	/* a pass dated a second ahead of every decision below */
	vrl_share_mark(&f->seg.hdr->share_fill_ns, vrl_mono_ns() + NS_PER_S);
	assert_int_equal(acquire(f, "g", 1, &v), VRL_EDENIED);
	assert_true(v.flags & VRL_VERDICT_SHARE);
	/* each try took a permit and gave none back */
	assert_true(vrl_share_credit(atomic_load(&sh->word)) < 4u << VRL_SHARE_FRAC_BITS);
	/* the pass now in the past: grants again */
	atomic_store(&f->seg.hdr->share_fill_ns, vrl_mono_ns());
	lease(sh, 4, 4);
	assert_int_equal(acquire(f, "g", 1, &v), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(area_only_with_global, setup, teardown),
		cmocka_unit_test_setup_teardown(lapsed_then_granted, setup, teardown),
		cmocka_unit_test_setup_teardown(short_and_cost, setup, teardown),
		cmocka_unit_test_setup_teardown(stacked_all_or_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(waiting, setup, teardown),
		cmocka_unit_test_setup_teardown(eviction_drains, setup, teardown),
		cmocka_unit_test_setup_teardown(reload_scope, setup, teardown),
		cmocka_unit_test_setup_teardown(fill_between_scans, setup, teardown),
		cmocka_unit_test_setup_teardown(credit_of_a_later_pass, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
