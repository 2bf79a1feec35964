/*
 * test_client.c - the acquire path through the public API: stacked limits,
 * all or nothing, read-only denials, cooldowns, resets, waiting, resolved
 * requests across evictions and reloads, fork, and hostile segments.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common.h"
#include "unmatched.h"

struct fixture {
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];
	vrl_client *c;
	struct vrl_seg_config cfg;
};

#define TOKEN_T (720 * NS_PER_S)   /* the token limit's interval: 5 per hour */
#define PACE_T  (NS_PER_S / 5)     /* the pace limit's: 5 per second */

/* token: 5 per hour, bucket 5, per token; org: 1 per hour, bucket 8, per
 * org; both on api "samsara". A gate per vehicle on api "smartcar"; pace:
 * 5 per second, bucket 1, on api "pace". Only pace refills while a test
 * runs, so that no count depends on how fast the machine is. */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	test_add_rate(&f->cfg, "token", "samsara", 5, 3600 * NS_PER_S, 5,
		      (int[]){ VRL_FIELD_TOKEN, -1 });
	test_add_rate(&f->cfg, "org", "samsara", 1, 3600 * NS_PER_S, 8,
		      (int[]){ VRL_FIELD_ORG, -1 });
	test_add_gate(&f->cfg, "vehicle", "smartcar", (int[]){ VRL_FIELD_VEHICLE, -1 });
	test_add_rate(&f->cfg, "pace", "pace", 5, NS_PER_S, 1, (int[]){ -1 });
	test_segment("client", &f->cfg, 1000, &f->seg, f->name);
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

static const struct vrl_request req_a = { .api = "samsara", .token = "A", .org = "O" };
static const struct vrl_request req_b = { .api = "samsara", .token = "B", .org = "O" };

static void grants_until_burst(void **state)
{
	struct fixture *f = *state;
	struct vrl_verdict v;

	for (int i = 0; i < 5; i++) {
		assert_int_equal(vrl_acquire(f->c, &req_a, &v), 0);
		assert_int_equal(v.granted, 1);
		assert_int_equal(v.matched, 2);
	}
	assert_string_equal(v.limit_name, "token");   /* fewest remaining */
	assert_int_equal(v.remaining, 0);
	assert_int_equal(vrl_acquire(f->c, &req_a, &v), VRL_EDENIED);
	assert_int_equal(v.granted, 0);
	assert_string_equal(v.limit_name, "token");
	assert_int_equal(v.limit_value, 5);
	assert_true(v.retry_after_ns > 0 && v.retry_after_ns <= TOKEN_T);
}

/* org (8) binds across tokens A and B; B's denial by org takes nothing
 * from B's token bucket: all or nothing. */
static void stacked_all_or_nothing(void **state)
{
	struct fixture *f = *state;
	struct vrl_verdict v;
	vrl_resolved *rb;
	int granted = 0;

	for (int i = 0; i < 5; i++)
		granted += vrl_acquire(f->c, &req_a, NULL) == 0;
	for (int i = 0; i < 5; i++)
		granted += vrl_acquire(f->c, &req_b, NULL) == 0;
	assert_int_equal(granted, 8);
	assert_int_equal(vrl_acquire(f->c, &req_b, &v), VRL_EDENIED);
	assert_string_equal(v.limit_name, "org");
	assert_true(v.retry_after_ns > 3000 * NS_PER_S);
	/* token B granted 3: two permits left in its bucket, untouched by the
	 * denials */
	assert_int_equal(vrl_resolve(f->c, &req_b, &rb), 0);
	assert_int_equal(vrl_acquire_resolved(f->c, rb, 0, &v), VRL_EDENIED);
	assert_string_equal(v.limit_name, "org");
	vrl_resolved_free(rb);
	assert_int_equal(vrl_reset(f->c, &req_b, "org"), 0);
	assert_int_equal(vrl_acquire(f->c, &req_b, &v), 0);
	assert_int_equal(vrl_acquire(f->c, &req_b, &v), 0);
	assert_int_equal(vrl_acquire(f->c, &req_b, &v), VRL_EDENIED);
	assert_string_equal(v.limit_name, "token");
}

/* A denial leaves every byte of the key slots as it was. */
static void denial_writes_nothing(void **state)
{
	struct fixture *f = *state;
	const struct vrl_seg_view *sv = &f->seg.view;
	size_t bytes = sv->nslots * sizeof(struct vrl_seg_slot);
	void *before = malloc(bytes);

	for (int i = 0; i < 5; i++)
		assert_int_equal(vrl_acquire(f->c, &req_a, NULL), 0);
	memcpy(before, sv->slots, bytes);
	for (int i = 0; i < 100; i++)
		assert_int_equal(vrl_acquire(f->c, &req_a, NULL), VRL_EDENIED);
	assert_memory_equal(before, sv->slots, bytes);
	free(before);
}

static void cost_above_burst_never_passes(void **state)
{
	struct fixture *f = *state;
	struct vrl_request r = req_a;
	struct vrl_verdict v;

	r.cost = 6;
	assert_int_equal(vrl_acquire(f->c, &r, &v), VRL_EDENIED);
	assert_true(v.retry_after_ns == VRL_NEVER);
	r.cost = 5;
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_int_equal(v.remaining, 0);
}

static void cooldown_closes_for_everyone(void **state)
{
	struct fixture *f = *state;
	struct vrl_request car = { .api = "smartcar", .vehicle = "VIN1" };
	struct vrl_request other = { .api = "smartcar", .vehicle = "VIN2" };
	struct vrl_verdict v;
	vrl_client *c2 = test_open(f->name);

	uint64_t t0;

	assert_int_equal(vrl_acquire(f->c, &car, &v), 0);
	t0 = vrl_now_ns();
	assert_int_equal(vrl_cooldown(f->c, &car, NULL, vrl_now_ns() + 30 * NS_PER_S), 0);
	assert_int_equal(vrl_acquire(c2, &car, &v), VRL_EDENIED);   /* another handle */
	assert_true(v.flags & VRL_VERDICT_COOLDOWN);
	assert_string_equal(v.limit_name, "vehicle");
	/* closed until 30 s after the call, whenever this one came */
	assert_true(v.retry_after_ns <= 30 * NS_PER_S);
	assert_true(v.retry_after_ns >= t0 + 30 * NS_PER_S - v.at_ns);
	assert_int_equal(vrl_acquire(c2, &other, &v), 0);           /* only that key */
	/* a shorter cooldown does not shorten it */
	assert_int_equal(vrl_cooldown(f->c, &car, "vehicle", vrl_now_ns() + NS_PER_S), 0);
	assert_int_equal(vrl_acquire(c2, &car, &v), VRL_EDENIED);
	assert_true(v.retry_after_ns >= t0 + 30 * NS_PER_S - v.at_ns);
	assert_int_equal(vrl_reset(f->c, &car, NULL), 0);
	assert_int_equal(vrl_acquire(c2, &car, &v), 0);
	assert_int_equal(vrl_cooldown(f->c, &car, "nope", 1), VRL_ENOLIMIT);
	vrl_close(c2);
}

/* Resetting every matching limit skips the ones that have no key yet. */
static void reset_all_skips_keyless_limits(void **state)
{
	struct fixture *f = *state;
	struct vrl_request r = { .api = "samsara", .token = "C", .org = "O2" };
	struct vrl_verdict v;

	assert_int_equal(vrl_reset(f->c, &r, NULL), VRL_ENOKEY);
	/* a cooldown on the token gives it a slot; org still has none */
	assert_int_equal(vrl_cooldown(f->c, &r, "token", vrl_now_ns() + 60 * NS_PER_S), 0);
	assert_int_equal(vrl_acquire(f->c, &r, &v), VRL_EDENIED);
	assert_int_equal(vrl_reset(f->c, &r, NULL), 0);
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
}

static void unmatched_request_passes(void **state)
{
	struct fixture *f = *state;
	struct vrl_request r = { .api = "other" };
	struct vrl_verdict v;
	struct vrl_unmatched_row rows[VRL_UNMATCHED_ROWS];

	/* unmatched: allow (no VRL_CFG_UNMATCHED_* bit): granted, not counted */
	assert_int_equal(vrl_acquire(f->c, &r, &v), 0);
	assert_int_equal(v.matched, 0);
	assert_true(v.flags & VRL_VERDICT_NO_LIMIT);
	assert_false(v.flags & VRL_VERDICT_UNMATCHED);
	assert_int_equal(v.limit, -1);
	assert_int_equal(vrl_unmatched_read(f->seg.hdr, rows), 0);
}

/* The count of unmatched requests by api, in the table's rows. */
static uint64_t unmatched_count(const struct fixture *f, const char *api)
{
	struct vrl_unmatched_row rows[VRL_UNMATCHED_ROWS];
	unsigned n = vrl_unmatched_read(f->seg.hdr, rows);

	for (unsigned i = 0; i < n; i++)
		if (api ? !rows[i].other && strcmp(rows[i].api, api) == 0 : rows[i].other)
			return rows[i].count;
	return 0;
}

static void publish_unmatched(struct fixture *f, uint32_t policy)
{
	f->cfg.flags = (f->cfg.flags & ~(VRL_CFG_UNMATCHED_DENY | VRL_CFG_UNMATCHED_WARN)) | policy;
	assert_int_equal(vrl_seg_publish(&f->seg, &f->cfg), 0);
}

/* unmatched: deny refuses with VRL_EUNMATCHED, warn grants; both count by
 * api; a reload changes the policy at the next call; matched requests are
 * untouched. */
static void unmatched_policy(void **state)
{
	struct fixture *f = *state;
	struct vrl_request typo = { .api = "samsra", .token = "A" };
	struct vrl_request none = { .token = "A" };
	struct vrl_verdict v;
	vrl_resolved *r;

	publish_unmatched(f, VRL_CFG_UNMATCHED_DENY);
	assert_int_equal(vrl_acquire(f->c, &typo, &v), VRL_EUNMATCHED);
	assert_int_equal(v.granted, 0);
	assert_int_equal(v.matched, 0);
	assert_int_equal(v.limit, -1);
	assert_true(v.flags & VRL_VERDICT_NO_LIMIT);
	assert_true(v.flags & VRL_VERDICT_UNMATCHED);
	assert_true(v.retry_after_ns == VRL_NEVER);
	assert_int_equal(vrl_acquire_wait(f->c, &typo, NS_PER_S, &v), VRL_EUNMATCHED);
	assert_int_equal(vrl_resolve(f->c, &typo, &r), 0);
	assert_int_equal(vrl_acquire_resolved(f->c, r, 1, &v), VRL_EUNMATCHED);
	assert_int_equal(vrl_acquire(f->c, &none, &v), VRL_EUNMATCHED);
	assert_int_equal(unmatched_count(f, "samsra"), 3);
	assert_int_equal(unmatched_count(f, ""), 1);
	assert_non_null(strstr(vrl_strerror(VRL_EUNMATCHED), "unmatched"));
	assert_string_equal(vrl_err_name(VRL_EUNMATCHED), "VRL_EUNMATCHED");
	/* a matched request is decided by its limits as before */
	assert_int_equal(vrl_acquire(f->c, &req_a, &v), 0);

	publish_unmatched(f, VRL_CFG_UNMATCHED_WARN);
	assert_int_equal(vrl_acquire_resolved(f->c, r, 1, &v), 0);
	assert_int_equal(v.granted, 1);
	assert_true(v.flags & VRL_VERDICT_NO_LIMIT);
	assert_true(v.flags & VRL_VERDICT_UNMATCHED);
	assert_int_equal(vrl_acquire(f->c, &typo, &v), 0);
	assert_int_equal(unmatched_count(f, "samsra"), 5);

	publish_unmatched(f, 0);
	assert_int_equal(vrl_acquire(f->c, &typo, &v), 0);
	assert_false(v.flags & VRL_VERDICT_UNMATCHED);
	assert_int_equal(unmatched_count(f, "samsra"), 5);
	vrl_resolved_free(r);
}

/* The table is bounded: past its named rows, and for names too long to
 * keep, apis count in the row of the rest; a hostile name reads back
 * sanitised and ended. */
static void unmatched_table_bounded(void **state)
{
	struct fixture *f = *state;
	struct vrl_unmatched_row rows[VRL_UNMATCHED_ROWS];
	char api[64];
	unsigned n;

	for (unsigned i = 0; i < 2 * VRL_UNMATCHED_ROWS; i++) {
		snprintf(api, sizeof(api), "api%u", i);
		vrl_unmatched_count(f->seg.hdr, api);
	}
	memset(api, 'x', sizeof(api) - 1);
	api[sizeof(api) - 1] = '\0';
	vrl_unmatched_count(f->seg.hdr, api);
	n = vrl_unmatched_read(f->seg.hdr, rows);
	assert_int_equal(n, VRL_UNMATCHED_ROWS);
	assert_int_equal(rows[n - 1].other, 1);
	assert_int_equal(rows[n - 1].count, VRL_UNMATCHED_ROWS + 2);
	/* a group member writes a name with no end and bytes a label must not hold */
	memset((void *)f->seg.hdr->unmatched[0].name, '"', sizeof(f->seg.hdr->unmatched[0].name));
	n = vrl_unmatched_read(f->seg.hdr, rows);
	for (unsigned i = 0; i < n; i++) {
		assert_true(strlen(rows[i].api) < VRL_UNMATCHED_NAME);
		assert_null(strpbrk(rows[i].api, "\"\\\n"));
	}
}

/* Waiting reserves the next slot and sleeps until it; a timeout shorter
 * than the wait denies at once, without sleeping. */
static void wait_reserves_the_next_slot(void **state)
{
	struct fixture *f = *state;
	const struct vrl_request pace = { .api = "pace" };
	_Atomic uint64_t *slept = &vrl__holder(f->c)->limit_wait_ns[3];
	struct vrl_verdict v;
	uint64_t a1, a2;

	/* the token key is empty for 12 minutes: a 1 s timeout denies at once */
	for (int i = 0; i < 5; i++)
		assert_int_equal(vrl_acquire(f->c, &req_a, NULL), 0);
	assert_int_equal(vrl_acquire_wait(f->c, &req_a, NS_PER_S, &v), VRL_EDENIED);
	assert_string_equal(v.limit_name, "token");
	assert_true(v.retry_after_ns > NS_PER_S);
	assert_int_equal(atomic_load(&vrl__holder(f->c)->limit_wait_ns[0]), 0);   /* no sleep */

	/* pace, bucket 1: each waiter is granted one interval after the one
	 * before, however late it came, and returns only once that time came */
	assert_int_equal(vrl_acquire(f->c, &pace, &v), 0);
	a1 = v.at_ns;
	assert_int_equal(vrl_acquire_wait(f->c, &pace, NS_PER_S, &v), 0);
	assert_true(vrl_now_ns() >= v.at_ns);
	assert_true(v.at_ns >= a1 + PACE_T);
	a2 = v.at_ns;
	assert_int_equal(vrl_acquire_wait(f->c, &pace, NS_PER_S, &v), 0);
	assert_true(vrl_now_ns() >= v.at_ns);
	assert_true(v.at_ns >= a2 + PACE_T);
	/* the sleeps are counted against pace: at most the two waits reserved */
	assert_true(atomic_load(slept) <= 2 * PACE_T);
}

/* A resolved request survives eviction of its keys and a config reload,
 * and keeps counting against the same buckets. */
static void resolved_survives_eviction_and_reload(void **state)
{
	struct fixture *f = *state;
	struct vrl_seg_header *h = f->seg.hdr;
	struct vrl_verdict v;
	vrl_resolved *r;

	assert_int_equal(vrl_resolve(f->c, &req_a, &r), 0);
	assert_int_equal(vrl_acquire_resolved(f->c, r, 1, &v), 0);
	/* everything idle is evicted: org bucket used -> stays; token -> stays */
	vrl_seg_sweep(&f->seg, 0, f->seg.view.nslots, vrl_now_ns() + 7200 * NS_PER_S, 0);
	assert_int_equal(atomic_load(&h->evictions), 2);
	assert_int_equal(vrl_acquire_resolved(f->c, r, 1, &v), 0);
	assert_int_equal(v.remaining, 4);
	/* reload: token becomes 2 per hour, bucket 2; the key keeps its
	 * fill, 4 permits, capped at the new bucket: 2 */
	f->cfg.limits[0].burst = 2;
	f->cfg.limits[0].count = 2;
	f->cfg.limits[0].emission_ns = 1800 * NS_PER_S;
	f->cfg.limits[0].tolerance_ns = 3600 * NS_PER_S;
	vrl_seg_publish(&f->seg, &f->cfg);
	assert_int_equal(vrl_acquire_resolved(f->c, r, 1, &v), 0);
	assert_int_equal(vrl_acquire_resolved(f->c, r, 1, &v), 0);
	assert_int_equal(vrl_acquire_resolved(f->c, r, 1, &v), VRL_EDENIED);
	assert_string_equal(v.limit_name, "token");
	assert_int_equal(v.limit_value, 2);
	vrl_resolved_free(r);
}

/* A forked child uses the parent's handle without doing anything, on its
 * own counter slot. */
static void fork_child_reregisters(void **state)
{
	struct fixture *f = *state;
	struct vrl_seg_holder *hs = f->seg.view.holders;
	pid_t pid;
	int st, holders = 0;

	assert_int_equal(vrl_acquire(f->c, &req_a, NULL), 0);
	pid = fork();
	if (pid == 0) {
		int ok = vrl_acquire(f->c, &req_a, NULL) == 0;
		int own = 0;

		for (unsigned i = 0; i < VRL_MAX_HOLDERS; i++)
			own += (atomic_load(&hs[i].pid) & VRL_HOLDER_PID_MASK) == getpid() &&
			       atomic_load(&hs[i].granted) == 1;
		_exit(ok && own == 1 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	for (unsigned i = 0; i < VRL_MAX_HOLDERS; i++)
		holders += (atomic_load(&hs[i].pid) & VRL_HOLDER_PID_MASK) == getpid();
	assert_int_equal(holders, 1);
	/* the dead child's slot is reaped and its counts kept */
	assert_int_equal(vrl_seg_reap_holders(&f->seg), 1);
	assert_int_equal(atomic_load(&f->seg.hdr->retired_granted), 1);
}

static void open_errors(void **state)
{
	struct fixture *f = *state;
	vrl_client *c = NULL;
	char junk[VRL_SHM_NAME_MAX];
	int fd;

	assert_int_equal(vrl_open("/vrl-test-does-not-exist", 0, &c), VRL_ENOSEG);
	assert_int_equal(vrl_open("no-slash", 0, &c), -EINVAL);
	/* something else under a shm name */
	snprintf(junk, sizeof(junk), "/vrl-test-junk-%d", (int)getpid());
	fd = shm_open(junk, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 8192), 0);
	assert_int_equal(write(fd, "not a segment", 13), 13);
	close(fd);
	assert_int_equal(vrl_open(junk, 0, &c), VRL_EMAGIC);
	shm_unlink(junk);
	/* a newer format, then an offset out of bounds */
	f->seg.hdr->format = VRL_SEG_FORMAT + 1;
	assert_int_equal(vrl_open(f->name, 0, &c), VRL_EFORMAT);
	f->seg.hdr->format = VRL_SEG_FORMAT;
	f->seg.hdr->slot_off = f->seg.hdr->size;
	assert_int_equal(vrl_open(f->name, 0, &c), VRL_ECORRUPT);
	assert_string_equal(vrl_err_name(VRL_ECORRUPT), "VRL_ECORRUPT");
	assert_non_null(strstr(vrl_strerror(VRL_ENOSEG), "vrld"));
}

/* A corrupt limit record in the config area is refused, not trusted. */
static void corrupt_config_refused(void **state)
{
	struct fixture *f = *state;
	vrl_client *c = NULL;

	f->cfg.limits[1].nper = 99;
	vrl_seg_publish(&f->seg, &f->cfg);
	assert_int_equal(vrl_open(f->name, 0, &c), VRL_ECORRUPT);
	assert_int_equal(vrl_acquire(f->c, &req_a, NULL), VRL_ECORRUPT);
}

/*
 * A handle reaches every area through the layout it validated at open, so
 * a writer that changes the header's layout words afterwards changes
 * nothing for it: calls, plain or resolved, go on exactly as before, and a
 * new key still lands in the table the handle knows.
 */
static void layout_change_ignored(void **state)
{
	struct fixture *f = *state;
	struct vrl_seg_header *h = f->seg.hdr;
	uint64_t *words[] = { &h->cfg_off[0], &h->cfg_off[1], &h->holder_off, &h->nholders,
			      &h->slot_off, &h->nslots, &h->event_off, &h->nevents,
			      &h->mark_off, &h->size, &h->keys_configured };
	uint64_t hostile[] = { 64, UINT64_C(1) << 40, UINT64_MAX };
	struct vrl_request fresh = req_a;
	vrl_resolved *r = NULL;
	char token[32];

	assert_int_equal(vrl_resolve(f->c, &req_a, &r), 0);
	fresh.token = token;
	fresh.org = token;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		uint64_t was = *words[i];

		for (size_t k = 0; k < sizeof(hostile) / sizeof(hostile[0]); k++) {
			int rc;

			*words[i] = hostile[k];
			/* a config generation bumped too, so the handle re-reads */
			atomic_fetch_add(&h->config_gen, 1);
			snprintf(token, sizeof(token), "w%zu-%zu", i, k);
			assert_int_equal(vrl_acquire(f->c, &fresh, NULL), 0);
			rc = vrl_acquire_resolved(f->c, r, 0, NULL);
			assert_true(rc == 0 || rc == VRL_EDENIED);
			assert_int_equal(vrl_cooldown(f->c, &fresh, "token", vrl_now_ns() + 1), 0);
		}
		*words[i] = was;
	}
	vrl_resolved_free(r);
	/* closing it gives back by its own layout too */
	vrl_close(f->c);
	f->c = test_open(f->name);
}

static void readonly_handle(void **state)
{
	struct fixture *f = *state;
	vrl_client *ro = NULL;

	assert_int_equal(vrl_open(f->name, VRL_OPEN_READONLY, &ro), 0);
	assert_int_equal(vrl_acquire(ro, &req_a, NULL), VRL_EREADONLY);
	assert_int_equal(vrl_limit_count(ro), 4);
	assert_string_equal(vrl_limit_name(ro, 1), "org");
	vrl_close(ro);
}

/* A resolved request whose key was evicted, re-placed into a full table:
 * the verdict says the table decided, as one at plan time does. */
static void replaced_into_full_table(void **state)
{
	struct vrl_seg_config cfg = { 0 };
	struct vrl_seg seg;
	struct vrl_verdict v;
	char name[VRL_SHM_NAME_MAX], token[32];
	struct vrl_request req = { .api = "samsara", .token = token };
	vrl_resolved *r;
	vrl_client *c;
	int rc = 0;

	(void)state;
	test_add_rate(&cfg, "token", "samsara", 5, NS_PER_S, 5, (int[]){ VRL_FIELD_TOKEN, -1 });
	test_segment("client-full", &cfg, 8, &seg, name);
	c = test_open(name);
	snprintf(token, sizeof(token), "first");
	assert_int_equal(vrl_resolve(c, &req, &r), 0);
	assert_int_equal(vrl_acquire_resolved(c, r, 1, &v), 0);
	vrl_seg_sweep(&seg, 0, seg.view.nslots, vrl_now_ns() + 7200 * NS_PER_S, 0);
	for (unsigned i = 0; rc == 0 && i < 10 * seg.view.nslots; i++) {
		snprintf(token, sizeof(token), "t%u", i);
		rc = vrl_acquire(c, &req, &v);
	}
	assert_int_equal(rc, VRL_EFULL);
	assert_int_equal(vrl_acquire_resolved(c, r, 1, &v), VRL_EFULL);
	assert_true(v.flags & VRL_VERDICT_TABLE_FULL);
	vrl_resolved_free(r);
	vrl_close(c);
	test_segment_drop(&seg, name);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(grants_until_burst),
		T(stacked_all_or_nothing),
		T(denial_writes_nothing),
		T(cost_above_burst_never_passes),
		T(cooldown_closes_for_everyone),
		T(reset_all_skips_keyless_limits),
		T(unmatched_request_passes),
		T(unmatched_policy),
		T(unmatched_table_bounded),
		T(wait_reserves_the_next_slot),
		T(resolved_survives_eviction_and_reload),
		T(fork_child_reregisters),
		T(open_errors),
		T(corrupt_config_refused),
		T(layout_change_ignored),
		T(readonly_handle),
		cmocka_unit_test(replaced_into_full_table),
	};
#undef T

	return cmocka_run_group_tests_name("client", tests, NULL, NULL);
}
