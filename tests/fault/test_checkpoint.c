/*
 * test_checkpoint.c - durable key state through a checkpoint file.
 *
 * Round trip (quota and persistent slots state, cooldowns converted through
 * wall-clock time, limits gone or changed skipped), refusal of damaged and
 * foreign files, and the loss bound: a writer process checkpoints every
 * INTERVAL while a consumer takes quota units at a known pace; both are
 * killed at once (a power cut), the segment is unlinked (a reboot), and the
 * counter restored into a fresh segment lags the truth by at most the units
 * taken since the last checkpoint written.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"
#include "checkpoint.h"
#include "clock.h"
#include "keytable.h"
#include "quota.h"

#define PERIOD_ID     UINT64_C(12345)           /* a quota period, as state << 40 */
#define INTERVAL_NS   (NS_PER_S / 10)           /* the writer's checkpoint interval */
#define UNIT_NS       (NS_PER_S / 1000)         /* the consumer's pace: 1000 units/s */

static char dir[256], path[300];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/vrl-ckpt-test-%d", (int)getpid());
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/vrl.ckpt", dir);
	unlink(path);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	rmdir(dir);
	return 0;
}

static struct vrl_seg_limit *add_kind(struct vrl_seg_config *cfg, const char *name,
				      uint32_t kind, uint32_t flags)
{
	struct vrl_seg_limit *l = test_add_gate(cfg, name, name, (int[]){ VRL_FIELD_VEHICLE, -1 });

	l->kind = kind;
	l->flags = flags;
	l->count = 1000;
	return l;
}

/* quota q, persistent slots s, per-process slots p, rate r, gate gone */
static void build(struct vrl_seg_config *cfg, bool with_gone)
{
	memset(cfg, 0, sizeof(*cfg));
	add_kind(cfg, "q", VRL_KIND_QUOTA, 0);
	add_kind(cfg, "s", VRL_KIND_SLOTS, VRL_LIMIT_PERSIST);
	add_kind(cfg, "p", VRL_KIND_SLOTS, 0);
	test_add_rate(cfg, "r", "r", 10, NS_PER_S, 1, (int[]){ VRL_FIELD_VEHICLE, -1 });
	if (with_gone)
		add_kind(cfg, "gone", VRL_KIND_QUOTA, 0);
}

static struct vrl_seg_slot *key_slot(struct vrl_seg *s, const char *limit,
				     const char *vin, bool insert)
{
	const struct vrl_seg_config *cfg = s->cfg;
	const char *parts[] = { vin };
	struct vrl_key k;
	uint64_t idx;
	int li = -1;

	vrl_key_hash(limit, parts, 1, &k);
	for (uint32_t i = 0; i < cfg->nlimits; i++)
		if (strcmp(cfg->limits[i].name, limit) == 0)
			li = (int)i;
	if (insert) {
		assert_true(li >= 0);
		assert_int_equal(vrl_kt_get(&s->view, &k,
					    vrl_slot_note((uint32_t)li, &cfg->limits[li],
							  cfg->generation),
					    vin, &idx), 0);
	} else if (vrl_kt_find(&s->view, &k, &idx) != 0) {
		return NULL;
	}
	return &s->view.slots[idx];
}

static void save(struct vrl_seg *s, uint64_t want)
{
	char why[512];
	uint64_t n = UINT64_MAX;

	assert_int_equal(vrl_ckpt_save(s, path, &n, why, sizeof(why)), 0);
	assert_int_equal(n, want);
}

static void test_round_trip(void **state)
{
	static struct vrl_seg_config cfg;
	struct vrl_seg seg;
	struct vrl_ckpt ck;
	struct vrl_ckpt_stats st;
	char name[VRL_SHM_NAME_MAX], why[512];
	uint64_t now = vrl_now_ns();
	struct vrl_seg_slot *s;

	(void)state;
	build(&cfg, true);
	test_segment("ckpt", &cfg, 1000, &seg, name);
	atomic_store(&key_slot(&seg, "q", "V1", true)->state, PERIOD_ID << 40 | 77);
	atomic_store(&key_slot(&seg, "s", "V1", true)->state, 3);
	atomic_store(&key_slot(&seg, "p", "V1", true)->state, 5);      /* not durable */
	atomic_store(&key_slot(&seg, "r", "V1", true)->state, now + NS_PER_S);  /* not */
	atomic_store(&key_slot(&seg, "r", "V2", true)->cooldown, now + 3600 * NS_PER_S);
	atomic_store(&key_slot(&seg, "r", "V3", true)->cooldown, now + NS_PER_S / 100);
	atomic_store(&key_slot(&seg, "gone", "V1", true)->state, PERIOD_ID << 40 | 9);
	save(&seg, 5);       /* q, s, r/V2, r/V3, gone */
	test_segment_drop(&seg, name);

	/* a reboot later: V3's cooldown ended meanwhile, "gone" left the config */
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	build(&cfg, false);
	test_segment("ckpt", &cfg, 1000, &seg, name);
	/* a worker that attached before the restore took 2 units already */
	atomic_store(&key_slot(&seg, "q", "V1", true)->state, PERIOD_ID << 40 | 2);
	assert_int_equal(vrl_ckpt_load(path, &ck, why, sizeof(why)), 0);
	assert_int_equal(ck.n, 5);
	vrl_ckpt_apply(&seg, &ck, &st);
	vrl_ckpt_free(&ck);
	assert_int_equal(st.restored, 3);
	assert_int_equal(st.skipped, 1);
	assert_int_equal(st.expired, 1);
	assert_int_equal(st.failed, 0);

	s = key_slot(&seg, "q", "V1", false);
	assert_non_null(s);
	assert_int_equal(atomic_load(&s->state), PERIOD_ID << 40 | 79);
	assert_string_equal(s->label, "V1");
	assert_int_equal(atomic_load(&key_slot(&seg, "s", "V1", false)->state), 3);
	assert_null(key_slot(&seg, "p", "V1", false));
	assert_null(key_slot(&seg, "r", "V1", false));
	assert_null(key_slot(&seg, "r", "V3", false));
	s = key_slot(&seg, "r", "V2", false);
	assert_non_null(s);
	/* back in monotonic time, about an hour from now */
	assert_true(atomic_load(&s->cooldown) > vrl_now_ns() + 3500 * NS_PER_S);
	assert_true(atomic_load(&s->cooldown) < vrl_now_ns() + 3700 * NS_PER_S);
	assert_int_equal(atomic_load(&s->state), 0);
	test_segment_drop(&seg, name);
}

static void patch(long off, const void *bytes, size_t len)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, bytes, len, off), (ssize_t)len);
	close(fd);
}

static void expect_load(int want)
{
	struct vrl_ckpt ck;
	char why[512];

	assert_int_equal(vrl_ckpt_load(path, &ck, why, sizeof(why)), want);
	printf("# %s\n", why);
	vrl_ckpt_free(&ck);
}

static void fresh_checkpoint(void)
{
	static struct vrl_seg_config cfg;
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];

	build(&cfg, false);
	test_segment("ckpt", &cfg, 1000, &seg, name);
	atomic_store(&key_slot(&seg, "q", "V1", true)->state, PERIOD_ID << 40 | 1);
	atomic_store(&key_slot(&seg, "q", "V2", true)->state, PERIOD_ID << 40 | 2);
	save(&seg, 2);
	test_segment_drop(&seg, name);
	expect_load(0);
}

static void test_refuses_damage(void **state)
{
	struct stat st;
	uint32_t version = 99;
	char byte = 'x';

	(void)state;
	unlink(path);
	expect_load(-ENOENT);

	fresh_checkpoint();
	assert_int_equal(stat(path, &st), 0);
	patch(st.st_size - 3, &byte, 1);               /* a flipped byte in a record */
	expect_load(-EBADMSG);

	fresh_checkpoint();
	assert_int_equal(truncate(path, st.st_size - 10), 0);   /* a torn write */
	expect_load(-EBADMSG);

	fresh_checkpoint();
	assert_int_equal(truncate(path, 5), 0);
	expect_load(-EBADMSG);

	fresh_checkpoint();
	patch(0, "NOTVRL!!", 8);
	expect_load(-EBADMSG);

	fresh_checkpoint();
	patch(8, &version, sizeof(version));
	expect_load(-EPROTONOSUPPORT);
}

/* ---- the loss bound ------------------------------------------------------- */

struct shared {
	_Atomic uint64_t saves;          /* checkpoints the writer completed */
};

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / NS_PER_S), (long)(ns % NS_PER_S) };

	nanosleep(&ts, NULL);
}

static void writer(struct vrl_seg *s, struct shared *sh)
{
	char why[512];

	for (;;) {
		if (vrl_ckpt_save(s, path, NULL, why, sizeof(why)) != 0)
			_exit(3);
		atomic_fetch_add(&sh->saves, 1);
		sleep_ns(INTERVAL_NS);
	}
}

/* One unit per UNIT_NS at most: a unit is taken no sooner than UNIT_NS
 * after the previous one, so any span w holds at most w / UNIT_NS + 1. */
static void consumer(struct vrl_seg_slot *s)
{
	for (;;) {
		atomic_fetch_add(&s->state, 1);
		sleep_ns(UNIT_NS);
	}
}

static uint64_t realtime_ns(void)
{
	return vrl_wall_ns();
}

static void test_loss_bound(void **state)
{
	static struct vrl_seg_config cfg;
	struct shared *sh = test_shared(sizeof(*sh));
	struct vrl_seg seg;
	struct vrl_ckpt ck;
	struct vrl_ckpt_stats st;
	char name[VRL_SHM_NAME_MAX], why[512];
	struct vrl_seg_slot *s;
	uint64_t truth, restored, killed_rt, age, bound;
	pid_t w, c;

	(void)state;
	unlink(path);
	build(&cfg, false);
	test_segment("ckpt", &cfg, 1000, &seg, name);
	s = key_slot(&seg, "q", "V1", true);
	atomic_store(&s->state, PERIOD_ID << 40);
	if ((c = fork()) == 0)
		consumer(s);
	if ((w = fork()) == 0)
		writer(&seg, sh);
	/* run for several intervals: at least 5 checkpoints, two of them
	 * begun after the consumer's first unit (so one holds units), and a
	 * second; however slow the machine, only a hang reaches the bound */
	sleep_ns(NS_PER_S);
	{
		uint64_t until = vrl_now_ns() + 120 * NS_PER_S, s0;

		while ((atomic_load(&s->state) & 0xffu) == 0 && vrl_now_ns() < until)
			sleep_ns(NS_PER_S / 100);
		s0 = atomic_load(&sh->saves);
		while (atomic_load(&sh->saves) < (s0 + 2 > 5 ? s0 + 2 : 5) && vrl_now_ns() < until)
			sleep_ns(NS_PER_S / 100);
	}
	/* the power cut: both stop at once, the writer wherever it was */
	kill(w, SIGKILL);
	kill(c, SIGKILL);
	waitpid(w, NULL, 0);
	waitpid(c, NULL, 0);
	killed_rt = realtime_ns();
	truth = atomic_load(&s->state) & ((UINT64_C(1) << 40) - 1);
	/* the reboot: the segment is gone; a fresh one gets the checkpoint */
	test_segment_drop(&seg, name);
	test_segment("ckpt", &cfg, 1000, &seg, name);
	assert_int_equal(vrl_ckpt_load(path, &ck, why, sizeof(why)), 0);
	vrl_ckpt_apply(&seg, &ck, &st);
	assert_int_equal(st.restored, 1);
	s = key_slot(&seg, "q", "V1", false);
	assert_non_null(s);
	assert_int_equal(atomic_load(&s->state) >> 40, PERIOD_ID);
	restored = atomic_load(&s->state) & ((UINT64_C(1) << 40) - 1);
	/*
	 * Lost: the units since the last checkpoint, whose age is the
	 * interval when the writer keeps its schedule. On a loaded machine it
	 * may be late; the bound is then its real age x the rate, + 1.
	 */
	age = killed_rt - ck.written_rt;
	bound = (age > INTERVAL_NS ? age : INTERVAL_NS) / UNIT_NS + 1;
	printf("# %llu checkpoints, %llu units taken, %llu restored, lost %llu; last "
	       "checkpoint %.3f s old, bound %llu\n", (unsigned long long)atomic_load(&sh->saves),
	       (unsigned long long)truth, (unsigned long long)restored,
	       (unsigned long long)(truth - restored), (double)age / 1e9,
	       (unsigned long long)bound);
	vrl_ckpt_free(&ck);
	assert_true(restored <= truth);
	assert_true(truth - restored <= bound);
	assert_true(restored > 0);
	test_segment_drop(&seg, name);
}

/* The limit slot @s's note names in the active config, or NULL. */
static const char *noted(struct vrl_seg *seg, struct vrl_seg_slot *s)
{
	const struct vrl_seg_config *cfg = seg->cfg;
	int li = vrl_note_limit(atomic_load(&s->limit), cfg->generation, cfg->nlimits);

	return li < 0 ? NULL : cfg->limits[li].name;
}

/*
 * A reload that renumbers limits: every key stays attributed to its own
 * limit (the checkpoint saves a quota key under its name and kind, the
 * sweep counts an eviction against the right limit), including a key a
 * worker inserted under the old numbering after the reload.
 */
static void test_reload_renumbers(void **state)
{
	static struct vrl_seg_config a, b;
	struct vrl_seg seg;
	struct vrl_ckpt ck;
	char name[VRL_SHM_NAME_MAX], why[512];
	uint64_t by_limit[VRL_MAX_LIMITS] = { 0 }, now = vrl_now_ns(), idx, old_gen;
	struct vrl_seg_slot *q, *r, *late;
	struct vrl_key k;
	const char *parts[] = { "V9" };

	(void)state;
	memset(&a, 0, sizeof(a));
	test_add_rate(&a, "r", "r", 10, NS_PER_S, 1, (int[]){ VRL_FIELD_VEHICLE, -1 });
	add_kind(&a, "q", VRL_KIND_QUOTA, 0)->calendar = VRL_CAL_DAY;
	memset(&b, 0, sizeof(b));
	add_kind(&b, "q", VRL_KIND_QUOTA, 0)->calendar = VRL_CAL_DAY;
	add_kind(&b, "new", VRL_KIND_QUOTA, 0)->calendar = VRL_CAL_DAY;
	test_add_rate(&b, "r", "r", 10, NS_PER_S, 1, (int[]){ VRL_FIELD_VEHICLE, -1 });

	test_segment("ckpt", &a, 1000, &seg, name);
	q = key_slot(&seg, "q", "V1", true);
	atomic_store(&q->state, PERIOD_ID << 40 | 77);
	r = key_slot(&seg, "r", "V1", true);
	atomic_store(&r->state, now - 2 * NS_PER_S);        /* idle: full for 2 s */
	old_gen = seg.cfg->generation;
	assert_string_equal(noted(&seg, q), "q");

	/* q moves from index 1 to 0, r from 0 to 2, and "new" takes q's old 1 */
	assert_int_equal(vrl_seg_reload(&seg, &b, why, sizeof(why)), 0);
	assert_string_equal(noted(&seg, q), "q");
	assert_string_equal(noted(&seg, r), "r");

	/* a worker still on the old numbering inserts q/V9 as limit 1 of a */
	vrl_key_hash("q", parts, 1, &k);
	assert_int_equal(vrl_kt_get(&seg.view, &k, vrl_slot_note(1, &a.limits[1], old_gen), "V9",
				    &idx), 0);
	late = &seg.view.slots[idx];
	atomic_store(&late->state, PERIOD_ID << 40 | 5);
	assert_null(noted(&seg, late));        /* not trusted until renoted */

	/* the checkpoint renotes first: both quota keys saved as q */
	save(&seg, 2);
	assert_string_equal(noted(&seg, late), "q");
	assert_int_equal(vrl_ckpt_load(path, &ck, why, sizeof(why)), 0);
	for (uint64_t i = 0; i < ck.n; i++) {
		assert_string_equal(ck.recs[i].limit, "q");
		assert_int_equal(ck.recs[i].kind, VRL_KIND_QUOTA);
	}
	vrl_ckpt_free(&ck);

	/* the idle rate key goes, and so do both quota keys: at a wall clock of
	 * 1970-01-01 their day (PERIOD_ID) is not the current one. Each
	 * eviction counts against its own limit */
	assert_int_equal(vrl_seg_sweep_by(&seg, 0, seg.view.nslots, now, NS_PER_S, NS_PER_S,
					  by_limit), 3);
	assert_int_equal(by_limit[0], 2);
	assert_int_equal(by_limit[1], 0);
	assert_int_equal(by_limit[2], 1);
	test_segment_drop(&seg, name);
}

/*
 * Restored quota counts are merged with what workers counted in the fresh
 * segment by the words' periods: the same period adds up, saturating at
 * 2^40 - 1 units without spilling into the period's bits (it read as a
 * later period, which then never reset); of two periods the later stands.
 */
static void test_restore_merges_by_period(void **state)
{
	static struct vrl_seg_config cfg;
	const uint64_t max = VRL_QUOTA_USED_MAX;
	struct vrl_seg seg;
	struct vrl_ckpt ck;
	struct vrl_ckpt_stats st;
	char name[VRL_SHM_NAME_MAX], why[512];

	(void)state;
	build(&cfg, false);
	test_segment("ckpt-merge", &cfg, 1000, &seg, name);
	atomic_store(&key_slot(&seg, "q", "V1", true)->state, vrl_quota_word(PERIOD_ID, max - 1));
	atomic_store(&key_slot(&seg, "q", "V2", true)->state, vrl_quota_word(PERIOD_ID, 7));
	atomic_store(&key_slot(&seg, "q", "V3", true)->state, vrl_quota_word(PERIOD_ID - 1, 9));
	save(&seg, 3);
	test_segment_drop(&seg, name);
	test_segment("ckpt-merge", &cfg, 1000, &seg, name);
	/* what workers counted before the restore */
	atomic_store(&key_slot(&seg, "q", "V1", true)->state, vrl_quota_word(PERIOD_ID, 5));
	atomic_store(&key_slot(&seg, "q", "V2", true)->state, vrl_quota_word(PERIOD_ID - 1, 3));
	atomic_store(&key_slot(&seg, "q", "V3", true)->state, vrl_quota_word(PERIOD_ID, 2));
	assert_int_equal(vrl_ckpt_load(path, &ck, why, sizeof(why)), 0);
	vrl_ckpt_apply(&seg, &ck, &st);
	vrl_ckpt_free(&ck);
	assert_int_equal(st.restored, 3);
	assert_int_equal(atomic_load(&key_slot(&seg, "q", "V1", false)->state),
			 vrl_quota_word(PERIOD_ID, max));
	assert_int_equal(atomic_load(&key_slot(&seg, "q", "V2", false)->state),
			 vrl_quota_word(PERIOD_ID, 7));
	assert_int_equal(atomic_load(&key_slot(&seg, "q", "V3", false)->state),
			 vrl_quota_word(PERIOD_ID, 2));
	test_segment_drop(&seg, name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loss_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_renumbers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_merges_by_period, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
