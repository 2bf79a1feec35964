/*
 * test_adaptive.c - adaptive rate limits through the library: a 429 cuts
 * the key it is charged to for every handle, the cut only ever lowers
 * grants below the configured figure, echoes of a cut are absorbed, a
 * reset puts the key back at its figure, and which key a bare 429 is
 * charged to (adapt.h AD.W4). The arithmetic alone is test_adapt.c's.
 *
 * Rates are per hour so that nothing refills while a test runs, and the
 * recovery is long (100 s) so that a descheduled test still reads the
 * cut: nothing here depends on how fast the machine is.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "adapt.h"
#include "common.h"
#include "segment.h"

#define HOUR (3600 * NS_PER_S)

struct fixture {
	struct vrl_seg seg;
	struct vrl_seg_config cfg;    /* the config in force, for reloads */
	char name[VRL_SHM_NAME_MAX];
	vrl_client *c, *d;    /* two handles: the cut is pool-wide */
};

/* Mark @l adaptive: back at the figure 100 s after a cut at it, one cut
 * per @hold_ns at most. */
static void adaptive(struct vrl_seg_limit *l, uint64_t hold_ns)
{
	struct vrl_adapt a;

	assert_int_equal(vrl_adapt_init(&a, 100 * NS_PER_S, hold_ns, VRL_ADAPT_FLOOR_DEFAULT,
					45875), 0);   /* beta 0.7: the figures below assume it */
	vrl_adapt_store(&a, l->adapt);
	l->flags |= VRL_LIMIT_ADAPTIVE;
}

static int setup(void **state)
{
	static struct fixture f;
	static struct vrl_seg_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	/* Samsara's pair: a token under its organisation, both adaptive */
	adaptive(test_add_rate(&cfg, "samsara.token", "samsara", 150, HOUR, 150,
			       (int[]){ VRL_FIELD_TOKEN, -1 }), 0);
	adaptive(test_add_rate(&cfg, "samsara.org", "samsara", 200, HOUR, 200,
			       (int[]){ VRL_FIELD_ORG, -1 }), 0);
	/* one adaptive bucket with a hold, and one that does not adapt */
	adaptive(test_add_rate(&cfg, "held", "held", 100, HOUR, 100, (int[]){ VRL_FIELD_TOKEN, -1 }),
		 50 * NS_PER_S);
	test_add_rate(&cfg, "plain", "plain", 100, HOUR, 100, (int[]){ VRL_FIELD_TOKEN, -1 });
	/* a zero-burst pace, for waiting acquires */
	adaptive(test_add_rate(&cfg, "paced", "paced", 200, NS_PER_S, 1,
			       (int[]){ VRL_FIELD_TOKEN, -1 }), 0);
	test_segment("adaptive", &cfg, 1000, &f.seg, f.name);
	f.cfg = cfg;
	f.c = test_open(f.name);
	f.d = test_open(f.name);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vrl_close(f->c);
	vrl_close(f->d);
	test_segment_drop(&f->seg, f->name);
	return 0;
}

/*
 * One 429 at the figure is a strike that leaves the rate; a second one, of
 * a request granted after it, cuts (adapt.h): the tests below send two.
 *
 * A bare 429 also reconciles the key it names to "none remain" (observe.c,
 * rule 3), which would empty these long buckets; one with a Retry-After of
 * a millisecond closes the key that long instead, and adapts the same.
 */
static const struct vrl_response bare429 = { .status = 429 };
static const struct vrl_header ms_after[] = { { "Retry-After", "0.001" } };
static const struct vrl_response ra429 = { .status = 429, .headers = ms_after, .nheaders = 1 };

/* Wait, on the clock, until the cooldown @fb set is over. */
static void open_again(const struct vrl_feedback *fb)
{
	while (vrl_now_ns() <= fb->cooldown_until_ns)
		;
}

/* Spin until the adapt tick clock has moved past @t: a grant after a cut
 * made at @t counts as after it (adapt.h). Waits on the clock, no sleep. */
static void next_tick(uint64_t t)
{
	while (vrl_adapt_tick(vrl_now_ns()) == vrl_adapt_tick(t))
		;
}

/*
 * Requests granted one after another, each answered with @resp, until one
 * cuts: the first strikes, the next cuts (a bounded wait on events, not on
 * time). Returns the grants it took; *@fb the cut's feedback.
 */
static int cut_with(vrl_client *c, const struct vrl_request *r, const struct vrl_response *resp,
		    struct vrl_feedback *fb)
{
	struct vrl_verdict v;

	for (int i = 1; i <= 8; i++) {
		next_tick(vrl_now_ns());
		assert_int_equal(vrl_acquire(c, r, &v), 0);
		assert_int_equal(vrl_observe_granted(c, r, &v, resp, fb), 0);
		if (fb->actions & VRL_FB_ADAPT)
			return i;
		open_again(fb);
	}
	fail_msg("no cut after 8 429s");
	return 0;
}

/* vrl__woke: the first waiting acquire after a reset wakes 20 ms late */
static uint64_t late_at;
static void wake_late(uint64_t at)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	if (late_at)
		return;
	late_at = at;
	nanosleep(&ts, NULL);
}

static int limit_of(vrl_client *c, const char *name)
{
	for (int i = 0; i < vrl_limit_count(c); i++)
		if (strcmp(vrl_limit_name(c, i), name) == 0)
			return i;
	fail_msg("no limit %s", name);
	return -1;
}

/*
 * A cut lowers the pace the other handle sees, and the bucket then grants
 * fewer than its configured burst, never more: Invariant 1 with the
 * effective rate below the figure.
 */
static void test_cut_lowers_never_raises(void **state)
{
	struct fixture *f = *state;
	const struct vrl_request r = { .api = "held", .token = "cut" };
	struct vrl_verdict v;
	struct vrl_feedback fb;
	int held = limit_of(f->c, "held"), granted;

	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_int_equal(v.pace_q16, VRL_ADAPT_ONE);
	assert_false(v.flags & VRL_VERDICT_PACED);
	assert_true(v.binding & (UINT64_C(1) << held));
	/* one 429: a strike, the pace unchanged */
	assert_int_equal(vrl_observe_granted(f->c, &r, &v, &ra429, &fb), 0);
	assert_false(fb.actions & VRL_FB_ADAPT);
	open_again(&fb);
	assert_int_equal(vrl_acquire(f->d, &r, &v), 0);
	assert_int_equal(v.pace_q16, VRL_ADAPT_ONE);
	granted = 2 + cut_with(f->c, &r, &ra429, &fb);
	assert_true(fb.adapted & (UINT64_C(1) << held));
	open_again(&fb);
	/* every handle paces at about 0.7 of the figure now */
	assert_int_equal(vrl_acquire(f->d, &r, &v), 0);
	granted++;
	assert_true(v.flags & VRL_VERDICT_PACED);
	assert_in_range(v.pace_q16, VRL_ADAPT_ONE * 6 / 10, VRL_ADAPT_ONE * 71 / 100);
	while (vrl_acquire(f->d, &r, NULL) == 0)
		granted++;
	/* 100 per hour, burst 100: at 0.7 of the figure about 70 of them */
	assert_true(granted < 100);
	assert_true(granted >= 60);
}

/* A 429 of a request granted before the cut in force is its echo: it cuts
 * nothing more; one granted after it cuts again. */
static void test_echo_absorbed(void **state)
{
	struct fixture *f = *state;
	const struct vrl_request r = { .api = "samsara", .token = "echo", .org = "o-echo" };
	struct vrl_verdict before, after;
	struct vrl_feedback fb;
	uint32_t p1, p2;
	uint64_t cut;

	assert_int_equal(vrl_acquire(f->c, &r, &before), 0);
	cut_with(f->c, &r, &ra429, &fb);
	open_again(&fb);
	cut = vrl_now_ns();
	/* another worker's request, granted before the cut, answered after */
	assert_int_equal(vrl_observe_granted(f->d, &r, &before, &ra429, &fb), 0);
	assert_false(fb.actions & VRL_FB_ADAPT);
	next_tick(cut);
	open_again(&fb);
	assert_int_equal(vrl_acquire(f->d, &r, &after), 0);
	p1 = after.pace_q16;
	cut_with(f->d, &r, &ra429, &fb);
	open_again(&fb);
	assert_int_equal(vrl_acquire(f->c, &r, &after), 0);
	p2 = after.pace_q16;
	assert_true(p2 < p1);
}

/* A hold: without grant times (a caller that cannot say when its request
 * was granted) a second 429 within it is absorbed: the strike stands, the
 * key stays at its figure. */
static void test_hold(void **state)
{
	struct fixture *f = *state;
	const struct vrl_request r = { .api = "held", .token = "hold" };
	struct vrl_verdict v;
	struct vrl_feedback fb;

	assert_int_equal(vrl_acquire(f->c, &r, NULL), 0);
	assert_int_equal(vrl_observe(f->c, &r, &ra429, &fb), 0);
	assert_false(fb.actions & VRL_FB_ADAPT);
	open_again(&fb);
	next_tick(vrl_now_ns());
	assert_int_equal(vrl_observe(f->d, &r, &ra429, &fb), 0);
	assert_false(fb.actions & VRL_FB_ADAPT);
	open_again(&fb);
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_int_equal(v.pace_q16, VRL_ADAPT_ONE);
}

/*
 * AD.W5: a waiter that wakes late gives its reservation up and reserves
 * again only on a key paced below its figure, where the cut says the
 * upstream refuses requests closer than the spacing. On a key at its
 * figure (never cut: no 429 said so, as against a tolerant upstream) it
 * sends: re-reserving there only loses the turn.
 */
static void test_late_waiter(void **state)
{
	struct fixture *f = *state;
	const struct vrl_request r = { .api = "paced", .token = "late" };
	struct vrl_verdict v;
	struct vrl_feedback fb;

	vrl__woke = wake_late;
	/* at the figure: the reservation is used, late */
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	late_at = 0;
	assert_int_equal(vrl_acquire_wait(f->c, &r, NS_PER_S, &v), 0);
	assert_true(late_at != 0);          /* it waited */
	assert_int_equal(v.at_ns, late_at);
	/* cut (a strike, then a second 429): the late reservation is given
	 * up, and a later one used */
	assert_int_equal(vrl_observe_granted(f->c, &r, &v, &bare429, &fb), 0);
	assert_false(fb.actions & VRL_FB_ADAPT);
	next_tick(vrl_now_ns());
	assert_int_equal(vrl_acquire_wait(f->c, &r, NS_PER_S, &v), 0);
	assert_int_equal(vrl_observe_granted(f->c, &r, &v, &bare429, &fb), 0);
	assert_true(fb.actions & VRL_FB_ADAPT);
	assert_int_equal(vrl_acquire(f->c, &r, &v), VRL_EDENIED);
	late_at = 0;
	assert_int_equal(vrl_acquire_wait(f->c, &r, NS_PER_S, &v), 0);
	assert_true(late_at != 0);
	assert_true(v.at_ns > late_at);
	vrl__woke = NULL;
}

/* A reset puts the key back at its figure; a limit that does not adapt is
 * never cut and reports no pace. */
static void test_reset_and_plain(void **state)
{
	struct fixture *f = *state;
	const struct vrl_request r = { .api = "held", .token = "reset" };
	const struct vrl_request p = { .api = "plain", .token = "plain" };
	struct vrl_verdict v;
	struct vrl_feedback fb;

	cut_with(f->c, &r, &ra429, &fb);
	open_again(&fb);
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_true(v.pace_q16 < VRL_ADAPT_ONE);
	assert_int_equal(vrl_reset(f->c, &r, "held"), 0);
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_int_equal(v.pace_q16, VRL_ADAPT_ONE);

	assert_int_equal(vrl_acquire(f->c, &p, &v), 0);
	assert_int_equal(v.pace_q16, 0);
	assert_int_equal(v.binding, 0);
	assert_int_equal(vrl_observe_granted(f->c, &p, &v, &bare429, &fb), 0);
	assert_false(fb.actions & VRL_FB_ADAPT);
}

/*
 * Attribution (AD.W4). Two tokens under one organisation: the token that
 * bound the grant takes a bare 429, not the organisation; a 429 that
 * names the organisation cuts it; a caller without the verdict charges the
 * adaptive key with the fewest permits now.
 */
static void test_attribution(void **state)
{
	struct fixture *f = *state;
	const struct vrl_request a = { .api = "samsara", .token = "tokA", .org = "org1" };
	const struct vrl_request b = { .api = "samsara", .token = "tokB", .org = "org1" };
	int tok = limit_of(f->c, "samsara.token"), org = limit_of(f->c, "samsara.org");
	struct vrl_response named = ra429;
	struct vrl_verdict v;
	struct vrl_feedback fb;

	named.limit = "samsara.org";
	/* token A nearly spent: 140 of 150, the organisation 140 of 200; a
	 * strike, then a cut, each on the token */
	for (int i = 0; i < 138; i++)
		assert_int_equal(vrl_acquire(f->c, &a, NULL), 0);
	for (int i = 0; i < 2; i++) {
		next_tick(vrl_now_ns());
		assert_int_equal(vrl_acquire(f->c, &a, &v), 0);
		assert_int_equal(v.binding, UINT64_C(1) << tok);
		assert_int_equal(vrl_observe_granted(f->c, &a, &v, &ra429, &fb), 0);
		assert_int_equal(fb.adapted, i ? UINT64_C(1) << tok : 0);
		open_again(&fb);
	}

	/* token B fresh (150 left), the organisation has 58: it binds B */
	for (int i = 0; i < 2; i++) {
		next_tick(vrl_now_ns());
		assert_int_equal(vrl_acquire(f->c, &b, &v), 0);
		assert_int_equal(v.binding, UINT64_C(1) << org);
		assert_int_equal(vrl_observe_granted(f->c, &b, &v, &ra429, &fb), 0);
		assert_int_equal(fb.adapted, i ? UINT64_C(1) << org : 0);
		open_again(&fb);
	}

	/* named by the caller: that limit, whatever the slack */
	cut_with(f->c, &b, &named, &fb);
	assert_int_equal(fb.adapted, UINT64_C(1) << org);
	open_again(&fb);

	/* no verdict: the adaptive key with the fewest permits now, token A */
	fb.actions = 0;
	for (int i = 0; i < 8 && !(fb.actions & VRL_FB_ADAPT); i++) {
		next_tick(vrl_now_ns());
		assert_int_equal(vrl_observe(f->c, &a, &bare429, &fb), 0);
	}
	assert_int_equal(fb.adapted, UINT64_C(1) << tok);
}

/* A Retry-After 429 closes the key and still cuts it (AD.W6). */
static void test_retry_after_cuts_too(void **state)
{
	struct fixture *f = *state;
	const struct vrl_request r = { .api = "held", .token = "ra" };
	const struct vrl_header h[] = { { "Retry-After", "0.01" } };
	const struct vrl_response ra = { .status = 429, .headers = h, .nheaders = 1 };
	struct vrl_verdict v;
	struct vrl_feedback fb;

	(void)v;
	cut_with(f->c, &r, &ra, &fb);
	assert_true(fb.actions & VRL_FB_COOLDOWN);
	assert_true(fb.actions & VRL_FB_ADAPT);
}

/*
 * Reloads. adaptive: turned off paces the limit's keys at the figure at
 * once (nothing reads the word), and vrld's sweep empties the word, so
 * that turned on again a key starts at the figure; the limit's buckets
 * keep their fill throughout, as any reload that keeps the figures.
 */
static void test_reload_toggle(void **state)
{
	struct fixture *f = *state;
	const struct vrl_request r = { .api = "held", .token = "reload" };
	int held = limit_of(f->c, "held");
	struct vrl_verdict v;
	struct vrl_feedback fb;
	char why[256];

	cut_with(f->c, &r, &ra429, &fb);
	open_again(&fb);
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_true(v.pace_q16 < VRL_ADAPT_ONE);

	f->cfg.limits[held].flags &= ~VRL_LIMIT_ADAPTIVE;
	assert_int_equal(vrl_seg_reload(&f->seg, &f->cfg, why, sizeof(why)), 0);
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_int_equal(v.pace_q16, 0);
	assert_int_equal(v.binding, 0);
	/* a 429 now cuts nothing */
	assert_int_equal(vrl_observe(f->c, &r, &ra429, &fb), 0);
	assert_false(fb.actions & VRL_FB_ADAPT);
	open_again(&fb);

	/* the sweep empties the word of a limit that no longer adapts */
	vrl_seg_sweep(&f->seg, 0, f->seg.view.nslots, vrl_now_ns(), 3600 * NS_PER_S);
	f->cfg.limits[held].flags |= VRL_LIMIT_ADAPTIVE;
	assert_int_equal(vrl_seg_reload(&f->seg, &f->cfg, why, sizeof(why)), 0);
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_int_equal(v.pace_q16, VRL_ADAPT_ONE);
}

/* vrld's sweep settles a recovered word to 0 and keeps a recent cut. */
static void test_sweep_keeps_recent_cut(void **state)
{
	struct fixture *f = *state;
	const struct vrl_request r = { .api = "held", .token = "sweep" };
	struct vrl_verdict v;
	struct vrl_feedback fb;

	cut_with(f->c, &r, &ra429, &fb);
	open_again(&fb);
	vrl_seg_sweep(&f->seg, 0, f->seg.view.nslots, vrl_now_ns(), 3600 * NS_PER_S);
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_true(v.pace_q16 < VRL_ADAPT_ONE);
	/* 200 s on, far past the recovery: settled */
	vrl_seg_sweep(&f->seg, 0, f->seg.view.nslots, vrl_now_ns() + 200 * NS_PER_S,
		      3600 * NS_PER_S);
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_int_equal(v.pace_q16, VRL_ADAPT_ONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cut_lowers_never_raises),
		cmocka_unit_test(test_echo_absorbed),
		cmocka_unit_test(test_hold),
		cmocka_unit_test(test_reset_and_plain),
		cmocka_unit_test(test_late_waiter),
		cmocka_unit_test(test_attribution),
		cmocka_unit_test(test_retry_after_cuts_too),
		cmocka_unit_test(test_reload_toggle),
		cmocka_unit_test(test_sweep_keeps_recent_cut),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
