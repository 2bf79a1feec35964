/*
 * test_reload.c - what a reload keeps, through the library, with reloads
 * published by vrl_seg_reload() (the call vrld makes): a rate key keeps its
 * fill in every direction of change, a quota its count (carried across a
 * calendar change, or the change refused), slots their count held; a
 * waiting acquire whose reservation a reload folded acquires again; and
 * the calls that used to give up with VRL_EBUSY no longer do.
 *
 * Rates here are per hour, so the time the test itself takes changes no
 * count; the refill arithmetic with time passed by hand is in test_gcra.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"
#include "keytable.h"
#include "quota.h"

#define HOUR (3600 * NS_PER_S)

static const struct vrl_request req = { .api = "x", .token = "t" };

/* A segment of the limits in @cfg, and a handle on it. */
struct fixture {
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];
	vrl_client *c;
	struct vrl_seg_config cfg;
};

static void fixture_drop(struct fixture *f)
{
	vrl_close(f->c);
	test_segment_drop(&f->seg, f->name);
	free(f);
}

/* Publish @f->cfg as a reload; 0 or the error, with the reason in @why. */
static int reload(struct fixture *f, char *why, size_t whylen)
{
	return vrl_seg_reload(&f->seg, &f->cfg, why, whylen);
}

/* Acquires of @r granted now, one at a time, until the first denial. */
static uint64_t drain(vrl_client *c, const struct vrl_request *r)
{
	uint64_t n = 0;
	int rc;

	while ((rc = vrl_acquire(c, r, NULL)) == 0)
		n++;
	assert_int_equal(rc, VRL_EDENIED);
	return n;
}

/* The state word of the first limit's key for @r. */
static uint64_t key_word(struct fixture *f, const struct vrl_request *r)
{
	struct vrl_snapshot *snap = malloc(sizeof(*snap));
	struct vrl_key k;
	char label[VRL_LABEL_MAX];
	uint64_t idx;

	assert_int_equal(vrl_snapshot_read(&f->seg.view, snap), 0);
	vrl_limit_key(&snap->limits[0], r, &k, label);
	free(snap);
	assert_int_equal(vrl_kt_find(&f->seg.view, &k, &idx), 0);
	return atomic_load(&f->seg.view.slots[idx].state);
}

/* ---- rate ------------------------------------------------------------------- */

struct rate_case {
	uint64_t count1, burst1, used;   /* per hour; permits taken before the reload */
	uint64_t count2, burst2;
	uint64_t left;                    /* permits the key has right after it */
};

/*
 * Every direction of change: the key keeps the permits it had, capped at
 * the new bucket. (Before, the TAT was kept and read under the new
 * interval: an empty bucket whose rate was lowered showed permits.)
 */
static void rate_keeps_fill(void **state)
{
	static const struct rate_case cases[] = {
		{ 10, 10, 10, 5, 10, 0 },    /* rate down, empty: stays empty */
		{ 10, 10, 4, 5, 10, 6 },     /* rate down, part used */
		{ 5, 10, 4, 20, 10, 6 },     /* rate up */
		{ 10, 10, 10, 10, 20, 0 },   /* burst up, empty */
		{ 10, 10, 3, 10, 20, 7 },    /* burst up */
		{ 10, 20, 2, 10, 5, 5 },     /* burst down: 18 capped at 5 */
		{ 10, 20, 17, 10, 5, 3 },    /* burst down below the bucket */
		{ 10, 8, 5, 2, 16, 3 },      /* rate down, burst up */
		{ 2, 16, 4, 10, 8, 8 },      /* rate up, burst down */
		{ 10, 10, 0, 3, 4, 4 },      /* a full bucket keeps min(b1, b2) */
	};
	char why[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct rate_case *k = &cases[i];
		struct fixture *f = calloc(1, sizeof(*f));
		struct vrl_request r = req;

		test_add_rate(&f->cfg, "rate", "x", k->count1, HOUR, k->burst1,
			      (int[]){ VRL_FIELD_TOKEN, -1 });
		test_segment("reload-rate", &f->cfg, 100, &f->seg, f->name);
		f->c = test_open(f->name);
		/* a full bucket: one taken and given back */
		r.cost = k->used ? k->used : 1;
		assert_int_equal(vrl_acquire(f->c, &r, NULL), 0);
		if (!k->used)
			assert_int_equal(vrl_refund(f->c, &req, NULL, 1), 0);
		memset(&f->cfg, 0, sizeof(f->cfg));
		test_add_rate(&f->cfg, "rate", "x", k->count2, HOUR, k->burst2,
			      (int[]){ VRL_FIELD_TOKEN, -1 });
		assert_int_equal(reload(f, why, sizeof(why)), 0);
		/* vrld converted the key right away: its word has the new epoch */
		assert_int_equal(vrl_gcra_tag(key_word(f, &req)), 1);
		assert_int_equal(drain(f->c, &req), k->left);
		fixture_drop(f);
	}
}

/* A reload that does not change (T, burst) keeps the epoch, and one that
 * changes it back to former figures still takes a new one. */
static void rate_epoch_follows_changes(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const struct vrl_seg_config *active;
	char why[256];

	(void)state;
	test_add_rate(&f->cfg, "rate", "x", 10, HOUR, 10, NULL);
	test_segment("reload-epoch", &f->cfg, 100, &f->seg, f->name);
	f->c = test_open(f->name);
	/* 20 per 2 hours is the same interval: not a change */
	f->cfg.limits[0].count = 20;
	f->cfg.limits[0].period_ns = 2 * HOUR;
	assert_int_equal(reload(f, why, sizeof(why)), 0);
	active = vrl_view_cfg(&f->seg.view, atomic_load(&f->seg.hdr->active_cfg));
	assert_int_equal(active->limits[0].rate_epoch, 0);
	f->cfg.limits[0].burst = 5;
	assert_int_equal(reload(f, why, sizeof(why)), 0);
	active = vrl_view_cfg(&f->seg.view, atomic_load(&f->seg.hdr->active_cfg));
	assert_int_equal(active->limits[0].rate_epoch, 1);
	assert_int_equal(active->limits[0].prev_burst, 10);
	assert_int_equal(active->limits[0].prev_emission_ns, HOUR / 10);
	f->cfg.limits[0].burst = 10;
	assert_int_equal(reload(f, why, sizeof(why)), 0);
	active = vrl_view_cfg(&f->seg.view, atomic_load(&f->seg.hdr->active_cfg));
	assert_int_equal(active->limits[0].rate_epoch, 2);
	assert_int_equal(active->limits[0].prev_burst, 5);
	/* a renamed limit has new keys: a new epoch count */
	strcpy(f->cfg.limits[0].name, "rate2");
	assert_int_equal(reload(f, why, sizeof(why)), 0);
	active = vrl_view_cfg(&f->seg.view, atomic_load(&f->seg.hdr->active_cfg));
	assert_int_equal(active->limits[0].rate_epoch, 0);
	assert_int_equal(active->limits[0].prev_burst, 0);
	fixture_drop(f);
}

/*
 * A segment cut by a group member is rebuilt and its config published anew
 * through the reload path (vrld's check_size: vrl_seg_regrow, then
 * vrl_seg_reload of the config in force). Keys before the cut keep their
 * words, written under the limit's epoch: the republish must keep that
 * epoch and the parameters before it, taken from vrld's own copy of the
 * config in force, not from the config areas, which the cut (or the
 * member) may have wiped. Here both areas are zeroed too: a key of the
 * epoch keeps its fill, and a word of the epoch before still converts.
 */
static void rebuild_keeps_epochs(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const struct vrl_request r2 = { .api = "x", .token = "t2" };
	struct vrl_request r = req;
	const struct vrl_seg_config *active;
	uint64_t idx, dstate, w2;
	struct vrl_snapshot *snap = malloc(sizeof(*snap));
	struct vrl_key k;
	char why[256], label[VRL_LABEL_MAX];
	struct stat st;
	int fd;

	(void)state;
	test_add_rate(&f->cfg, "rate", "x", 10, HOUR, 10, (int[]){ VRL_FIELD_TOKEN, -1 });
	test_segment("reload-rebuild", &f->cfg, 100, &f->seg, f->name);
	f->c = test_open(f->name);
	r.cost = 4;
	assert_int_equal(vrl_acquire(f->c, &r, NULL), 0);          /* t: 6 left */
	f->cfg.limits[0].burst = 20;
	assert_int_equal(reload(f, why, sizeof(why)), 0);          /* epoch 1 */
	assert_int_equal(vrl_gcra_tag(key_word(f, &req)), 1);
	/* t2: a word of epoch 0, 7 left of 10, as an acquire in flight across
	 * the reload leaves one (vrld's sweep would convert it) */
	assert_int_equal(vrl_snapshot_read(&f->seg.view, snap), 0);
	vrl_limit_key(&snap->limits[0], &r2, &k, label);
	free(snap);
	assert_int_equal(vrl_kt_get(&f->seg.view, &k, vrl_slot_note(0, &f->seg.cfg->limits[0],
								      f->seg.cfg->generation),
				    label, &idx), 0);
	w2 = vrl_gcra_word(0, vrl_now_ns() + 3 * (HOUR / 10));
	atomic_store(&f->seg.view.slots[idx].state, w2);
	/* both config areas wiped, and the object cut past the keys' slots */
	memset(vrl_view_cfg(&f->seg.view, 0), 0, sizeof(struct vrl_seg_config));
	memset(vrl_view_cfg(&f->seg.view, 1), 0, sizeof(struct vrl_seg_config));
	assert_int_equal(vrl_kt_find(&f->seg.view, &k, &idx), 0);
	fd = shm_open(f->name, O_RDWR, 0);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (char *)&f->seg.view.slots[f->seg.view.nslots - 1] -
					   (char *)f->seg.hdr), 0);
	close(fd);
	/* vrld's rebuild, with the config as compiled (no reload record) */
	assert_int_equal(vrl_seg_shrunk(&f->seg, &st), 1);
	assert_int_equal(vrl_seg_regrow(&f->seg, &dstate), 0);
	assert_int_equal(reload(f, why, sizeof(why)), 0);
	assert_true(vrl_seg_reopen(&f->seg, dstate));
	active = vrl_view_cfg(&f->seg.view, atomic_load(&f->seg.hdr->active_cfg));
	assert_int_equal(active->limits[0].rate_epoch, 1);
	assert_int_equal(active->limits[0].prev_burst, 10);
	/* t kept its 6; t2 was converted from epoch 0 with its 7 */
	assert_int_equal(vrl_gcra_tag(key_word(f, &r2)), 1);
	assert_int_equal(drain(f->c, &req), 6);
	assert_int_equal(drain(f->c, &r2), 7);
	fixture_drop(f);
}

/* ---- a waiting acquire across a reload ---------------------------------------- */

static uint64_t tat_of(struct fixture *f)
{
	return vrl_gcra_tat(key_word(f, &req));
}

/*
 * A waiter reserves the key's next permit; a reload then raises the rate.
 * The conversion counts the reservation among the permits used, and the
 * new, faster rate refills them: had the waiter kept its reservation, it
 * and a grant made under the new config just before could land closer than
 * the new interval allows (2 permits where the bucket holds 1). It acquires
 * again instead: the two grants are at least one new interval apart.
 */
static void waiter_across_rate_raise(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	uint64_t *shared = test_shared(2 * sizeof(uint64_t)), reserved, parent_at;
	const uint64_t t1 = NS_PER_S, t2 = 300 * (NS_PER_S / 1000);
	struct vrl_verdict v;
	char why[256];
	pid_t pid;
	int st;

	(void)state;
	test_add_rate(&f->cfg, "rate", "x", 1, t1, 1, (int[]){ VRL_FIELD_TOKEN, -1 });
	test_segment("reload-wait", &f->cfg, 100, &f->seg, f->name);
	f->c = test_open(f->name);
	assert_int_equal(vrl_acquire(f->c, &req, NULL), 0);      /* empty until +1 s */
	reserved = tat_of(f);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		vrl_client *c = test_open(f->name);
		int rc = vrl_acquire_wait(c, &req, 10 * NS_PER_S, &v);

		shared[0] = (uint64_t)rc + 1;
		shared[1] = v.at_ns;
		_exit(0);
	}
	/* the child's reservation shows as a second interval in the TAT */
	while (tat_of(f) < reserved + t1) {
		struct timespec ms = { 0, 1000000 };

		nanosleep(&ms, NULL);
	}
	memset(&f->cfg, 0, sizeof(f->cfg));
	test_add_rate(&f->cfg, "rate", "x", 1, t2, 1, (int[]){ VRL_FIELD_TOKEN, -1 });
	assert_int_equal(reload(f, why, sizeof(why)), 0);
	/* take a permit of the new config shortly before the reservation's time */
	while (vrl_now_ns() + t2 / 6 < reserved) {
		struct timespec ms = { 0, 1000000 };

		nanosleep(&ms, NULL);
	}
	assert_int_equal(vrl_acquire_wait(f->c, &req, 10 * NS_PER_S, &v), 0);
	parent_at = v.at_ns;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(shared[0], 1);                         /* granted */
	printf("# grants %lld ms apart\n",
	       (long long)((int64_t)(shared[1] - parent_at) / 1000000));
	assert_true(shared[1] >= parent_at ? shared[1] - parent_at >= t2 :
					   parent_at - shared[1] >= t2);
	fixture_drop(f);
}

/* ---- quota --------------------------------------------------------------------- */

static uint64_t fake_rt;
static uint64_t (*real_clock)(void);

static uint64_t fake_clock(void)
{
	return fake_rt;
}

/* CLOCK_REALTIME ns of a UTC date, by libc. */
static uint64_t utc(int y, int mo, int d, int h)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h };

	return (uint64_t)timegm(&tm) * NS_PER_S;
}

static const struct vrl_request qreq = { .api = "q", .vehicle = "V1" };

static struct fixture *quota_fixture(uint64_t count, uint32_t calendar, uint32_t anchor,
				     uint32_t flags)
{
	struct fixture *f = calloc(1, sizeof(*f));

	vrl__realtime_ns = fake_clock;
	test_add_quota(&f->cfg, "q", "q", count, calendar, anchor, flags,
		       (int[]){ VRL_FIELD_VEHICLE, -1 });
	test_segment("reload-quota", &f->cfg, 100, &f->seg, f->name);
	f->c = test_open(f->name);
	return f;
}

/* A count change keeps what the period used: lowered under it, nothing
 * is left; raised, the difference is. */
static void quota_count_change(void **state)
{
	struct fixture *f;
	struct vrl_request r = qreq;
	char why[256];

	(void)state;
	fake_rt = utc(2026, 3, 10, 12);
	f = quota_fixture(10, VRL_CAL_MONTH, 1, 0);
	r.cost = 7;
	assert_int_equal(vrl_acquire(f->c, &r, NULL), 0);
	f->cfg.limits[0].count = 5;
	assert_int_equal(reload(f, why, sizeof(why)), 0);
	assert_int_equal(drain(f->c, &qreq), 0);
	f->cfg.limits[0].count = 12;
	assert_int_equal(reload(f, why, sizeof(why)), 0);
	assert_int_equal(drain(f->c, &qreq), 5);
	vrl__realtime_ns = real_clock;
	fixture_drop(f);
}

/*
 * A calendar change carries the count of the period in force into the new
 * calendar's period that contains it: monthly -> daily on March 10th, the
 * 7 units of March count today (before, the word of another calendar was
 * read as an old period: 10 more today). Tomorrow is a new day.
 */
static void quota_calendar_carry(void **state)
{
	struct fixture *f;
	struct vrl_request r = qreq;
	char why[256];

	(void)state;
	fake_rt = utc(2026, 3, 10, 12);
	f = quota_fixture(10, VRL_CAL_MONTH, 1, 0);
	r.cost = 7;
	assert_int_equal(vrl_acquire(f->c, &r, NULL), 0);
	f->cfg.limits[0].calendar = VRL_CAL_DAY;
	f->cfg.limits[0].anchor = 0;
	assert_int_equal(reload(f, why, sizeof(why)), 0);
	assert_int_equal(drain(f->c, &qreq), 3);
	fake_rt = utc(2026, 3, 11, 0);
	assert_int_equal(drain(f->c, &qreq), 10);
	vrl__realtime_ns = real_clock;
	fixture_drop(f);
}

/*
 * A change whose new period began before the one the keys count from is
 * refused: daily -> monthly on March 10th would not know March 1st..9th.
 * The reason says when it would be accepted; then the count carries.
 */
static void quota_calendar_refused(void **state)
{
	struct fixture *f;
	struct vrl_request r = qreq;
	char why[256];

	(void)state;
	fake_rt = utc(2026, 3, 10, 12);
	f = quota_fixture(10, VRL_CAL_DAY, 0, 0);
	r.cost = 4;
	assert_int_equal(vrl_acquire(f->c, &r, NULL), 0);
	f->cfg.limits[0].calendar = VRL_CAL_MONTH;
	f->cfg.limits[0].anchor = 1;
	f->cfg.limits[0].count = 100;
	assert_int_equal(reload(f, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "2026-03-01"));
	assert_non_null(strstr(why, "on or after 2026-04-01"));
	/* anchor 10 begins today: accepted, today's 4 carried */
	f->cfg.limits[0].anchor = 10;
	assert_int_equal(reload(f, why, sizeof(why)), 0);
	assert_int_equal(drain(f->c, &qreq), 96);
	/* and a once quota cannot know what came before */
	f->cfg.limits[0].calendar = VRL_CAL_ONCE;
	f->cfg.limits[0].anchor = 0;
	assert_int_equal(reload(f, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "once"));
	vrl__realtime_ns = real_clock;
	fixture_drop(f);
}

/*
 * A soft quota's count saturates at 2^40 - 1 units a period: a grant that
 * finds it there says so, and the overage stops growing.
 */
static void soft_quota_saturates(void **state)
{
	struct fixture *f;
	struct vrl_request r = qreq;
	struct vrl_verdict v;

	(void)state;
	fake_rt = utc(2026, 3, 10, 12);
	f = quota_fixture(VRL_QUOTA_COUNT_MAX - 10, VRL_CAL_MONTH, 1, VRL_LIMIT_SOFT);
	r.cost = VRL_QUOTA_COUNT_MAX - 2;
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_false(v.flags & VRL_VERDICT_SATURATED);
	assert_int_equal(v.overage, 8);
	r.cost = 2;
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);      /* exactly at the ceiling */
	assert_true(v.flags & VRL_VERDICT_SATURATED);
	assert_int_equal(v.overage, 10);
	r.cost = 5;
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);      /* past it: not counted */
	assert_true(v.flags & VRL_VERDICT_SATURATED);
	assert_true(v.flags & VRL_VERDICT_OVERAGE);
	assert_int_equal(v.overage, 10);
	vrl__realtime_ns = real_clock;
	fixture_drop(f);
}

/* ---- slots ---------------------------------------------------------------------- */

/* A count change keeps the units held: lowered under them, none is
 * granted until enough are released. */
static void slots_count_change(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct vrl_request r = { .api = "s", .org = "O", .cost = 3 };
	char why[256];

	(void)state;
	test_add_slots(&f->cfg, "s", "s", 5, VRL_LIMIT_PERSIST, (int[]){ VRL_FIELD_ORG, -1 });
	test_segment("reload-slots", &f->cfg, 100, &f->seg, f->name);
	f->c = test_open(f->name);
	assert_int_equal(vrl_acquire(f->c, &r, NULL), 0);
	f->cfg.limits[0].count = 2;
	assert_int_equal(reload(f, why, sizeof(why)), 0);
	r.cost = 1;
	assert_int_equal(drain(f->c, &r), 0);
	assert_int_equal(vrl_release(f->c, &r, NULL, 2), 0);
	assert_int_equal(drain(f->c, &r), 1);
	f->cfg.limits[0].count = 6;
	assert_int_equal(reload(f, why, sizeof(why)), 0);
	assert_int_equal(drain(f->c, &r), 4);
	fixture_drop(f);
}

/* ---- VRL_EBUSY ---------------------------------------------------------------------- */

/*
 * A config area that stays mid-write (a writer that never finishes, as a
 * hostile member of the group can leave it) cannot be copied: the handle
 * keeps the config it has and acquires with it. (Before: VRL_EBUSY.)
 */
static void config_unreadable_keeps_snapshot(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct vrl_seg_config *area;
	struct vrl_verdict v;
	char why[256];

	(void)state;
	test_add_rate(&f->cfg, "rate", "x", 10, HOUR, 10, (int[]){ VRL_FIELD_TOKEN, -1 });
	test_segment("reload-busy", &f->cfg, 100, &f->seg, f->name);
	f->c = test_open(f->name);
	assert_int_equal(vrl_acquire(f->c, &req, NULL), 0);
	f->cfg.limits[0].burst = 20;
	assert_int_equal(reload(f, why, sizeof(why)), 0);
	area = vrl_view_cfg(&f->seg.view, atomic_load(&f->seg.hdr->active_cfg));
	atomic_fetch_add(&area->seq, 1);                          /* odd: "being written" */
	/* the old config: burst 10, 1 used; its words (converted by vrld to
	 * the new epoch) are not its own, so it denies without writing */
	assert_int_equal(vrl_acquire(f->c, &req, &v), VRL_EDENIED);
	assert_int_equal(v.retry_after_ns, 0);
	/* a key of its own epoch it uses: a new key */
	assert_int_equal(vrl_acquire(f->c, &(struct vrl_request){ .api = "x", .token = "new" },
				     &v), 0);
	assert_int_equal(v.limit_value, 10);
	atomic_fetch_add(&area->seq, 1);                          /* written: readable again */
	assert_int_equal(vrl_acquire(f->c, &req, &v), 0);
	assert_int_equal(v.limit_value, 20);
	fixture_drop(f);
}

/*
 * vrld killed inside a reclaim bracket (reclaim_seq odd, its last
 * heartbeat just now): an acquire of a new key waits until the heartbeat
 * is old enough to close the bracket, and is granted. (Before: VRL_EBUSY
 * after 400 ms.)
 */
static void bracket_of_dead_vrld(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct vrl_verdict v;

	(void)state;
	test_add_rate(&f->cfg, "rate", "x", 10, HOUR, 10, (int[]){ VRL_FIELD_TOKEN, -1 });
	test_segment("reload-bracket", &f->cfg, 100, &f->seg, f->name);
	f->c = test_open(f->name);
	atomic_fetch_add(&f->seg.hdr->reclaim_seq, 1);
	atomic_store(&f->seg.hdr->daemon_heartbeat_ns, vrl_now_ns());
	assert_int_equal(vrl_acquire(f->c, &req, &v), 0);
	assert_int_equal(atomic_load(&f->seg.hdr->reclaim_seq) % 2, 0);
	fixture_drop(f);
}

/* ---- adoption: vrld restarted with another config --------------------------------- */

/* The limits of the adoption tests: a rate, a daily quota and a window,
 * with @change applied to the copy in @cfg. */
static void adoption_config(struct vrl_seg_config *cfg, int change)
{
	memset(cfg, 0, sizeof(*cfg));
	if (change == 1)            /* the rate under the same name becomes a gate */
		test_add_gate(cfg, "rate", "x", (int[]){ VRL_FIELD_TOKEN, -1 });
	else
		test_add_rate(cfg, "rate", "x", 10, HOUR, change == 4 ? 20 : 10,
			      (int[]){ VRL_FIELD_TOKEN, -1 });
	test_add_quota(cfg, "q", "q", 10, change == 2 ? VRL_CAL_MONTH : VRL_CAL_DAY,
		       change == 2 ? 1 : 0, 0, (int[]){ VRL_FIELD_VEHICLE, -1 });
	test_add_window(cfg, "w", "w", change == 3 ? 20 : 10, HOUR, change == 5 ? 4096 : 16,
			(int[]){ VRL_FIELD_ORG, -1 });
}

/*
 * vrld restarted over its segment with a changed config adopts it only if
 * a reload would take that config, and refuses it at start with the words
 * a reload refuses it with: a kind change under the same name, a quota
 * calendar change whose period began before the one the keys count, a
 * window layout change (in place, or one that resizes the segment). What
 * a reload keeps, adoption keeps: a rate key its fill (burst 10 -> 20, 4
 * taken: 6 left).
 */
static void adoption_checked_like_reload(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct vrl_seg_spec spec = { .mode = 0600, .gid = (gid_t)-1, .keys = 100 };
	struct vrl_seg_config *next = calloc(1, sizeof(*next));
	struct vrl_request r = req;
	char why[512], at_start[512];

	(void)state;
	vrl__realtime_ns = fake_clock;
	fake_rt = utc(2026, 3, 10, 12);
	adoption_config(&f->cfg, 0);
	test_segment("reload-adopt", &f->cfg, 100, &f->seg, f->name);
	snprintf(spec.name, sizeof(spec.name), "%s", f->name);
	f->c = test_open(f->name);
	r.cost = 4;
	assert_int_equal(vrl_acquire(f->c, &r, NULL), 0);
	for (int change = 1; change <= 5; change++) {
		if (change == 4)
			continue;           /* accepted: below */
		adoption_config(next, change);
		assert_int_equal(vrl_seg_reload_check(&f->seg, next, why, sizeof(why)), -EINVAL);
		vrl_seg_close(&f->seg);          /* vrld stopped: the segment stays */
		assert_int_equal(vrl_seg_open_or_create(&spec, next, false, &f->seg, at_start,
							sizeof(at_start)), -EEXIST);
		printf("# at start: %s\n", at_start);
		assert_string_equal(at_start, why);
		/* the config in force is adopted again, as it was */
		assert_int_equal(vrl_seg_open_or_create(&spec, &f->cfg, false, &f->seg, why,
							sizeof(why)), 0);
		assert_true(f->seg.adopted);
	}
	vrl_seg_close(&f->seg);
	adoption_config(next, 4);
	assert_int_equal(vrl_seg_open_or_create(&spec, next, false, &f->seg, why, sizeof(why)), 0);
	assert_int_equal(vrl_gcra_tag(key_word(f, &req)), 1);
	assert_int_equal(drain(f->c, &req), 6);
	vrl__realtime_ns = real_clock;
	free(next);
	fixture_drop(f);
}

/* ---- format -------------------------------------------------------------------------- */

/* A segment of the format before (its rate words are untagged) is refused
 * by vrld with the format named, and by a client as VRL_EFORMAT. */
static void older_format_refused(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct vrl_seg_spec spec = { .mode = 0600, .gid = (gid_t)-1, .keys = 100 };
	struct vrl_seg again;
	vrl_client *c = NULL;
	char why[256], want[32];

	(void)state;
	test_add_rate(&f->cfg, "rate", "x", 10, HOUR, 10, NULL);
	test_segment("reload-format", &f->cfg, 100, &f->seg, f->name);
	f->c = test_open(f->name);
	f->seg.hdr->format = VRL_SEG_FORMAT - 1;
	assert_int_equal(vrl_open(f->name, 0, &c), VRL_EFORMAT);
	snprintf(spec.name, sizeof(spec.name), "%s", f->name);
	vrl_seg_close(&f->seg);          /* drop the lock, as a stopped vrld */
	assert_int_equal(vrl_seg_open_or_create(&spec, &f->cfg, false, &again, why, sizeof(why)),
			 -EEXIST);
	snprintf(want, sizeof(want), "is of format %u", VRL_SEG_FORMAT - 1);
	assert_non_null(strstr(why, want));
	assert_int_equal(vrl_seg_open_or_create(&spec, &f->cfg, true, &again, why, sizeof(why)),
			 0);
	assert_int_equal(again.hdr->format, VRL_SEG_FORMAT);
	f->seg = again;
	fixture_drop(f);
}

int main(void)
{
	real_clock = vrl__realtime_ns;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rate_keeps_fill),
		cmocka_unit_test(rate_epoch_follows_changes),
		cmocka_unit_test(rebuild_keeps_epochs),
		cmocka_unit_test(waiter_across_rate_raise),
		cmocka_unit_test(quota_count_change),
		cmocka_unit_test(quota_calendar_carry),
		cmocka_unit_test(quota_calendar_refused),
		cmocka_unit_test(soft_quota_saturates),
		cmocka_unit_test(slots_count_change),
		cmocka_unit_test(config_unreadable_keeps_snapshot),
		cmocka_unit_test(bracket_of_dead_vrld),
		cmocka_unit_test(adoption_checked_like_reload),
		cmocka_unit_test(older_format_refused),
	};

	return cmocka_run_group_tests_name("reload", tests, NULL, NULL);
}
