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
#include "blocks.h"
#include "share.h"
#include "gkeys.h"

#include <sys/wait.h>
#include <unistd.h>

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

/* The slot of the one key of limit @lim. */
static uint64_t slot_of(struct fixture *f, uint32_t lim)
{
	return test_slot_of(&f->seg, lim);
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
 * gkeys.c K7: a key whose sixteenth of a burst share takes longer than a
 * fill step is filled that much less often (here 64 permits at 100/s:
 * every 20 ms, the longest), the time of its next fill left for a
 * denial's retry hint (AQ.S6); a new share is filled at the next pass.
 */
static void fill_interval_follows_the_share(void **state)
{
	struct fixture *f = *state;
	struct vrld_gkeys g = { 0 };
	struct vrl_global_result r = { 0 };
	struct vrl_seg_share *sh;
	struct vrl_verdict v;
	uint64_t now, t, credit;

	assert_int_equal(acquire(f, "g", 1, &v), VRL_EDENIED);   /* makes the key */
	sh = &f->seg.view.shares[slot_of(f, 0)];
	now = vrl_mono_ns();
	assert_int_equal(vrld_gkeys_scan(&g, &f->seg, now), 0);
	memcpy(r.id, g.e[0].id, sizeof(r.id));
	r.apply = true;
	r.share.rate = 100 * VRL_SHARE_RATE_UNIT;
	r.share.burst = 64;
	r.expires = now + 100 * NS_PER_S;
	r.gen = 1;
	vrld_gkeys_apply(&g, &f->seg, &r, 1, now);
	t = clock_past(now + VRL_SHARE_FILL_NS);
	vrld_gkeys_fill(&g, &f->seg, t);                          /* due at once */
	credit = vrl_share_credit(atomic_load(&sh->word));
	assert_true(credit > 0 && credit < 1u << VRL_SHARE_FRAC_BITS);
	assert_int_equal(atomic_load(&sh->cap), t + VRL_SHARE_FILL_MAX_NS);
	/* a step later: not due, nothing added */
	vrld_gkeys_fill(&g, &f->seg, clock_past(t + VRL_SHARE_FILL_NS));
	assert_int_equal(vrl_share_credit(atomic_load(&sh->word)), credit);
	/* a denial meanwhile is told to come back after that fill */
	assert_int_equal(acquire(f, "g", 1, &v), VRL_EDENIED);
	assert_true(v.flags & VRL_VERDICT_SHARE);
	if (vrl_mono_ns() < t + VRL_SHARE_FILL_MAX_NS / 2)        /* not preempted long */
		assert_true(v.retry_after_ns > VRL_SHARE_FILL_MAX_NS / 4);
	assert_true(v.retry_after_ns <= VRL_SHARE_FILL_MAX_NS + VRL_SHARE_RETRY_NS);
	/* when due: two permits (20 ms at 100/s) on top */
	t = clock_past(t + VRL_SHARE_FILL_MAX_NS);
	vrld_gkeys_fill(&g, &f->seg, t);
	assert_true(vrl_share_credit(atomic_load(&sh->word)) >= credit + (2u << VRL_SHARE_FRAC_BITS));
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

/* ---- global quota and slots keys: blocks (blocks.h, gkeys.c B1 to B3) ------- */

enum { B_QUOTA, B_SLOTS, B_SOFT, B_RATE };

static uint64_t fake_rt;

static uint64_t fake_clock(void)
{
	return fake_rt;
}

/* q: a global quota of 10 a day on api "q"; s: 3 global slots on api
 * "s"; t: a soft global quota of 2 a day on api "t"; r: a host rate
 * 1/min burst 1 on api "q" besides q. The wall clock is the test's. */
static int setup_blocks(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	fake_rt = 20000 * 86400 * NS_PER_S + 3600 * NS_PER_S;   /* day 20000, 01:00 */
	vrl__realtime_ns = fake_clock;
	vrld_gkeys_realtime = fake_clock;
	test_add_quota(&f->cfg, "q", "q", 10, VRL_CAL_DAY, 0, VRL_LIMIT_GLOBAL, per_org);
	test_add_slots(&f->cfg, "s", "s", 3, VRL_LIMIT_GLOBAL, per_org);
	test_add_quota(&f->cfg, "t", "t", 2, VRL_CAL_DAY, 0, VRL_LIMIT_GLOBAL | VRL_LIMIT_SOFT,
		       per_org);
	test_add_rate(&f->cfg, "r", "q", 1, 60 * NS_PER_S, 1, per_org);
	test_segment("gacq-b", &f->cfg, 100, &f->seg, f->name);
	f->c = test_open(f->name);
	*state = f;
	return 0;
}

static int teardown_blocks(void **state)
{
	vrl__realtime_ns = vrl_wall_ns;
	vrld_gkeys_realtime = vrl_wall_ns;
	return teardown(state);
}

/* vrld's scan; the entry of limit @lim's key. */
static const struct vrl_global_entry *scan(struct fixture *f, struct vrld_gkeys *g, uint32_t lim)
{
	uint64_t slot = slot_of(f, lim);

	assert_int_equal(vrld_gkeys_scan(g, &f->seg, vrl_mono_ns()), 0);
	for (size_t i = 0; i < g->n; i++)
		if (g->slot_of[i] == slot)
			return &g->e[i];
	fail_msg("no entry of limit %u", lim);
	return NULL;
}

/* An engine's answer for @e: allocation @a, spare @target, status @st. */
static void answer(struct fixture *f, struct vrld_gkeys *g, const struct vrl_global_entry *e,
		   enum vrl_global_outcome st, uint64_t a, uint64_t target)
{
	static uint64_t gen;
	struct vrl_global_result r = { .status = st, .apply = true, .expires = UINT64_MAX };

	memcpy(r.id, e->id, sizeof(r.id));
	r.share.count = a;
	r.target = target;
	r.period_id = e->period_id;
	r.gen = ++gen;
	vrld_gkeys_apply(g, &f->seg, &r, 1, vrl_mono_ns());
}

/*
 * A global quota key grants as many units as the host's allocation holds,
 * in its period: before its first allocation it denies for want of share
 * and writes nothing; each grant takes from the allocation; the entry
 * reports the allocation kept and the units used of it; an answer that
 * shrinks the spare clamps it before the next report.
 */
static void quota_allocation(void **state)
{
	struct fixture *f = *state;
	struct vrld_gkeys g = { 0 };
	const struct vrl_global_entry *e;
	struct vrl_seg_share *sh;
	struct vrl_verdict v;
	uint64_t st;

	assert_int_equal(acquire(f, "q", 1, &v), VRL_EDENIED);      /* makes the key */
	assert_true(v.flags & VRL_VERDICT_SHARE);
	sh = share(f, B_QUOTA);
	st = atomic_load(&f->seg.view.slots[slot_of(f, B_QUOTA)].state);
	assert_int_equal(vrl_quota_word_used(st), 0);                /* nothing counted */
	assert_int_equal(atomic_load(&sh->unmet), 1);
	e = scan(f, &g, B_QUOTA);                                    /* K2: taken up */
	assert_int_equal(e->kind, VRL_GLOBAL_QUOTA);
	assert_int_equal(e->period_id, 20000);
	assert_int_equal(e->share.count, 0);
	assert_true(e->period_left_ns == 23 * 3600 * NS_PER_S);
	answer(f, &g, e, VRL_GLOBAL_OK, 4, 4);
	assert_int_equal(atomic_load(&sh->cap), 4);
	assert_int_equal(acquire(f, "q", 1, &v), 0);
	/* a request that r denies takes nothing from the share */
	assert_int_equal(acquire(f, "q", 1, &v), VRL_EDENIED);       /* r: 1/min */
	assert_false(v.flags & VRL_VERDICT_SHARE);
	assert_int_equal(vrl_block_credit(atomic_load(&sh->word)), 3);
	e = scan(f, &g, B_QUOTA);
	assert_int_equal(e->share.count, 4);
	assert_int_equal(e->held, 1);
	/* OK, keep a spare of 1: clamped to 1 used + 1 */
	answer(f, &g, e, VRL_GLOBAL_OK, 4, 1);
	assert_int_equal(atomic_load(&sh->cap), 2);
	assert_int_equal(vrl_block_credit(atomic_load(&sh->word)), 1);
	e = scan(f, &g, B_QUOTA);
	assert_int_equal(e->share.count, 2);
	/* seeding keeps the allocation (no clamp) */
	answer(f, &g, e, VRL_GLOBAL_SEEDING, 2, 0);
	assert_int_equal(vrl_block_credit(atomic_load(&sh->word)), 1);
	vrld_gkeys_free(&g);
}

/*
 * AQ.S6: a quota key denied for want of share is told to try again at
 * vrld's next tick, when an allocation can come (not every millisecond);
 * without a live heartbeat, or for a rate key, the share's refill time.
 */
static void retry_at_next_round(void **state)
{
	struct fixture *f = *state;
	struct vrl_verdict v;
	uint64_t hb;

	atomic_store(&f->seg.hdr->daemon_heartbeat_ns, 0);
	assert_int_equal(acquire(f, "q", 1, &v), VRL_EDENIED);
	assert_true(v.flags & VRL_VERDICT_SHARE);
	assert_int_equal(v.retry_after_ns, VRL_SHARE_RETRY_NS);
	for (int tries = 0;; tries++) {
		hb = vrl_now_ns();
		atomic_store(&f->seg.hdr->daemon_heartbeat_ns, hb);
		assert_int_equal(acquire(f, "q", 1, &v), VRL_EDENIED);
		assert_true(v.flags & VRL_VERDICT_SHARE);
		if (vrl_now_ns() - hb < VRL_SHARE_TICK_NS / 4)
			break;        /* not preempted for long: the hint is judged */
		assert_true(tries < 100);
	}
	assert_true(v.retry_after_ns > VRL_SHARE_TICK_NS / 2);
	assert_true(v.retry_after_ns <= VRL_SHARE_TICK_NS);
}

/*
 * A new day: the grants of the new period are not made from the credit of
 * the old one (its word's tag is the old period: denied), vrld's scan
 * starts the new period's allocation at none and reports it, and an
 * answer for the period over is not applied to the new one.
 */
static void quota_new_period(void **state)
{
	struct fixture *f = *state;
	struct vrld_gkeys g = { 0 };
	const struct vrl_global_entry *e, old;
	struct vrl_seg_share *sh;
	struct vrl_verdict v;

	assert_int_equal(acquire(f, "q", 1, &v), VRL_EDENIED);
	e = scan(f, &g, B_QUOTA);
	answer(f, &g, e, VRL_GLOBAL_OK, 5, 5);
	sh = share(f, B_QUOTA);
	assert_int_equal(vrl_block_credit(atomic_load(&sh->word)), 5);
	memcpy((void *)&old, e, sizeof(old));
	fake_rt += 23 * 3600 * NS_PER_S;                          /* day 20001 */
	assert_int_equal(acquire(f, "q", 1, &v), VRL_EDENIED);
	assert_true(v.flags & VRL_VERDICT_SHARE);
	assert_int_equal(vrl_block_credit(atomic_load(&sh->word)), 5);   /* untouched */
	e = scan(f, &g, B_QUOTA);
	assert_int_equal(e->period_id, 20001);
	assert_int_equal(e->share.count, 0);
	assert_int_equal(e->held, 0);
	assert_int_equal(vrl_block_tag(atomic_load(&sh->word)), vrl_block_tag_quota(20001));
	/* the answer of day 20000 lands nowhere */
	answer(f, &g, &old, VRL_GLOBAL_OK, 9, 9);
	assert_int_equal(vrl_block_credit(atomic_load(&sh->word)), 0);
	answer(f, &g, e, VRL_GLOBAL_OK, 2, 2);
	assert_int_equal(acquire(f, "q", 1, &v), 0);
	assert_int_equal(vrl_block_credit(atomic_load(&sh->word)), 1);
	vrld_gkeys_free(&g);
}

/*
 * Global slots: held units come out of the allocation and go back to it
 * on release and when vrld reaps a dead holder, so the allocation is
 * always the units held plus the credit (blocks.h B1).
 */
static void slots_allocation(void **state)
{
	struct fixture *f = *state;
	struct vrl_request rq = { .api = "s", .org = "o" };
	struct vrld_gkeys g = { 0 };
	const struct vrl_global_entry *e;
	struct vrl_seg_share *sh;
	struct vrl_verdict v;
	pid_t pid;
	int st;

	assert_int_equal(acquire(f, "s", 1, &v), VRL_EDENIED);
	assert_true(v.flags & VRL_VERDICT_SHARE);
	e = scan(f, &g, B_SLOTS);
	assert_int_equal(e->kind, VRL_GLOBAL_SLOTS);
	answer(f, &g, e, VRL_GLOBAL_OK, 2, 2);
	sh = share(f, B_SLOTS);
	assert_int_equal(acquire(f, "s", 1, &v), 0);
	assert_int_equal(acquire(f, "s", 1, &v), 0);
	/* the key has room for 3; the host's allocation is 2 */
	assert_int_equal(acquire(f, "s", 1, &v), VRL_EDENIED);
	assert_true(v.flags & VRL_VERDICT_SHARE);
	e = scan(f, &g, B_SLOTS);
	assert_int_equal(e->held, 2);
	assert_int_equal(e->share.count, 2);
	/* a release gives the unit back to the allocation */
	assert_int_equal(vrl_release(f->c, &rq, "s", 1), 0);
	assert_int_equal(vrl_block_credit(atomic_load(&sh->word)), 1);
	/* a release of more than is held gives back no more than was held */
	assert_int_equal(vrl_release(f->c, &rq, "s", 5), 0);
	assert_int_equal(vrl_block_credit(atomic_load(&sh->word)), 2);
	assert_int_equal(scan(f, &g, B_SLOTS)->held, 0);
	/* a holder that dies: vrld's reaping gives its unit back */
	pid = fork();
	if (pid == 0)
		_exit(vrl_acquire(f->c, &rq, NULL) == 0 ? 0 : 1);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(vrl_block_credit(atomic_load(&sh->word)), 1);
	assert_int_equal(vrl_seg_reap_holders(&f->seg), 1);
	assert_int_equal(vrl_block_credit(atomic_load(&sh->word)), 2);
	assert_int_equal(scan(f, &g, B_SLOTS)->held, 0);
	vrld_gkeys_free(&g);
}

/* An acquire that takes from a block and then grants nothing gives the
 * units back (acquire.c AQ.B2): here every try meets a pass of vrld's
 * fill dated after it (AQ.S4). */
static void failed_take_given_back(void **state)
{
	struct fixture *f = *state;
	struct vrld_gkeys g = { 0 };
	struct vrl_seg_share *sh;
	struct vrl_verdict v;

	assert_int_equal(acquire(f, "s", 1, &v), VRL_EDENIED);
	answer(f, &g, scan(f, &g, B_SLOTS), VRL_GLOBAL_OK, 2, 2);
	sh = share(f, B_SLOTS);
	vrl_share_mark(&f->seg.hdr->share_fill_ns, vrl_mono_ns() + NS_PER_S);
	assert_int_equal(acquire(f, "s", 1, &v), VRL_EDENIED);
	assert_int_equal(vrl_block_credit(atomic_load(&sh->word)), 2);
	assert_int_equal(atomic_load(&f->seg.view.slots[slot_of(f, B_SLOTS)].state), 0);
	atomic_store(&f->seg.hdr->share_fill_ns, vrl_mono_ns());
	assert_int_equal(acquire(f, "s", 1, &v), 0);
	assert_int_equal(vrl_block_credit(atomic_load(&sh->word)), 1);
	vrld_gkeys_free(&g);
}

/* A soft quota is never short: granted with no allocation, overage
 * counted, and vrld reports the units its key counted as its allocation
 * (Redis counts them all). */
static void soft_never_short(void **state)
{
	struct fixture *f = *state;
	struct vrld_gkeys g = { 0 };
	const struct vrl_global_entry *e;
	struct vrl_verdict v;

	for (int i = 0; i < 3; i++)
		assert_int_equal(acquire(f, "t", 1, &v), 0);
	assert_true(v.flags & VRL_VERDICT_OVERAGE);
	e = scan(f, &g, B_SOFT);
	assert_true(e->soft);
	assert_int_equal(e->held, 3);
	assert_int_equal(e->share.count, 3);
	answer(f, &g, e, VRL_GLOBAL_OK, 5, 1);
	e = scan(f, &g, B_SOFT);
	assert_int_equal(e->share.count, 4);
	vrld_gkeys_free(&g);
}

/*
 * A key with an allocation it has not used yet is not idle: the sweep
 * leaves it, or a key asked for less often than the sweep passes would be
 * evicted with its first allocation every time and never grant. Once the
 * engine's clamp took its spare (its load gone), it is idle again, and
 * evicted with its allocation drained (blocks.h V3).
 */
static void unused_allocation_kept(void **state)
{
	struct fixture *f = *state;
	struct vrld_gkeys g = { 0 };
	const struct vrl_global_entry *e;
	struct vrl_verdict v;
	uint64_t slot, later = vrl_now_ns() + 3600 * NS_PER_S;

	assert_int_equal(acquire(f, "s", 1, &v), VRL_EDENIED);
	e = scan(f, &g, B_SLOTS);
	answer(f, &g, e, VRL_GLOBAL_OK, 2, 2);
	slot = slot_of(f, B_SLOTS);
	assert_int_equal(vrl_seg_sweep_at(&f->seg, 0, f->seg.view.nslots, later, fake_rt,
					  NS_PER_S), 0);
	assert_true(atomic_load(&f->seg.view.slots[slot].tag) & VRL_TAG_LIVE);
	assert_int_equal(acquire(f, "s", 1, &v), 0);
	assert_int_equal(vrl_release(f->c, &(struct vrl_request){ .api = "s", .org = "o" }, "s",
				     1), 0);
	/* the spare clamped away: idle, evicted, nothing left in the word */
	answer(f, &g, scan(f, &g, B_SLOTS), VRL_GLOBAL_OK, 2, 0);
	assert_int_equal(vrl_seg_sweep_at(&f->seg, 0, f->seg.view.nslots, later, fake_rt,
					  NS_PER_S), 1);
	assert_int_equal(vrl_block_credit(atomic_load(&f->seg.view.shares[slot].word)), 0);
	assert_int_equal(atomic_load(&f->seg.view.shares[slot].cap), 0);
	vrld_gkeys_free(&g);
}

/* A refund (a validation failure's units) gives the units back to the
 * host's allocation too, within the period: not lost to the pool. */
static void refund_given_back(void **state)
{
	struct fixture *f = *state;
	struct vrl_request rq = { .api = "q", .org = "o" };
	struct vrld_gkeys g = { 0 };
	struct vrl_seg_share *sh;
	struct vrl_verdict v;

	assert_int_equal(acquire(f, "q", 1, &v), VRL_EDENIED);
	answer(f, &g, scan(f, &g, B_QUOTA), VRL_GLOBAL_OK, 3, 3);
	sh = share(f, B_QUOTA);
	assert_int_equal(acquire(f, "q", 1, &v), 0);
	assert_int_equal(vrl_block_credit(atomic_load(&sh->word)), 2);
	assert_int_equal(vrl_refund(f->c, &rq, "q", 1), 0);
	assert_int_equal(vrl_block_credit(atomic_load(&sh->word)), 3);
	assert_int_equal(scan(f, &g, B_QUOTA)->held, 0);
	/* no more than the key's count gave back */
	assert_int_equal(vrl_refund(f->c, &rq, "q", 1), 0);
	assert_int_equal(vrl_block_credit(atomic_load(&sh->word)), 3);
	vrld_gkeys_free(&g);
}

/* A reload keeps a global quota's calendar and anchor: refused, with why. */
static void quota_calendar_kept(void **state)
{
	struct fixture *f = *state;
	struct vrl_seg_config cfg = f->cfg;
	char why[256];

	cfg.limits[B_QUOTA].calendar = VRL_CAL_MONTH;
	cfg.limits[B_QUOTA].anchor = 1;
	assert_int_equal(vrl_seg_reload(&f->seg, &cfg, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "limit q: a global quota keeps its calendar"));
	cfg = f->cfg;
	cfg.limits[B_QUOTA].count = 20;
	assert_int_equal(vrl_seg_reload(&f->seg, &cfg, why, sizeof(why)), 0);
}

/*
 * vrld killed and started again on the segment: the block word and its
 * allocation are adopted, not reset, and reported as they are (blocks.h
 * B2); its stop drains the credit and reports the units used.
 */
static void restart_adopts(void **state)
{
	struct fixture *f = *state;
	struct vrld_gkeys g = { 0 }, g2 = { 0 };
	const struct vrl_global_entry *e;
	struct vrl_verdict v;

	assert_int_equal(acquire(f, "s", 1, &v), VRL_EDENIED);
	answer(f, &g, scan(f, &g, B_SLOTS), VRL_GLOBAL_OK, 3, 3);
	assert_int_equal(acquire(f, "s", 1, &v), 0);
	vrld_gkeys_free(&g);                                     /* killed */
	e = scan(f, &g2, B_SLOTS);
	assert_int_equal(e->share.count, 3);
	assert_int_equal(e->held, 1);
	assert_int_equal(acquire(f, "s", 1, &v), 0);              /* workers go on */
	vrld_gkeys_clamp_all(&g2, &f->seg);                        /* stopping */
	for (size_t i = 0; i < g2.n; i++)
		if (g2.slot_of[i] == slot_of(f, B_SLOTS))
			assert_int_equal(g2.e[i].share.count, 2);
	assert_int_equal(vrl_block_credit(atomic_load(&share(f, B_SLOTS)->word)), 0);
	vrld_gkeys_free(&g2);
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
		cmocka_unit_test_setup_teardown(fill_interval_follows_the_share, setup, teardown),
		cmocka_unit_test_setup_teardown(fill_between_scans, setup, teardown),
		cmocka_unit_test_setup_teardown(credit_of_a_later_pass, setup, teardown),
		cmocka_unit_test_setup_teardown(quota_allocation, setup_blocks, teardown_blocks),
		cmocka_unit_test_setup_teardown(retry_at_next_round, setup_blocks, teardown_blocks),
		cmocka_unit_test_setup_teardown(quota_new_period, setup_blocks, teardown_blocks),
		cmocka_unit_test_setup_teardown(slots_allocation, setup_blocks, teardown_blocks),
		cmocka_unit_test_setup_teardown(failed_take_given_back, setup_blocks,
						teardown_blocks),
		cmocka_unit_test_setup_teardown(soft_never_short, setup_blocks, teardown_blocks),
		cmocka_unit_test_setup_teardown(restart_adopts, setup_blocks, teardown_blocks),
		cmocka_unit_test_setup_teardown(quota_calendar_kept, setup_blocks, teardown_blocks),
		cmocka_unit_test_setup_teardown(unused_allocation_kept, setup_blocks,
						teardown_blocks),
		cmocka_unit_test_setup_teardown(refund_given_back, setup_blocks, teardown_blocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
