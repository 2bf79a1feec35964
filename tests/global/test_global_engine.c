/*
 * test_global_engine.c - the engine (daemon/global): several engines in
 * one process are several hosts, each test with its own redis-server.
 * Leases and their renewal, a Redis stopped past a lease (deny, static), a
 * Redis restarted empty, a killed host's quota block, several endpoints,
 * a release; and the pure helpers.
 *
 * The Redis tests are skipped (exit 77) when redis-server is missing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lease.h"
#include "redis_fixture.h"

#define LEASE_NS (UINT64_C(400) * RFX_NS_PER_MS)
#define HANG_NS  (UINT64_C(30) * 1000000000u)   /* a deadline for hangs only */
#define MAXE 24

/* A host: its engine and the local keys it hands over each tick. */
struct host {
	struct vrl_global *g;
	struct vrl_global_entry e[MAXE];
	struct vrl_global_result last[MAXE];    /* the last result of each entry */
	uint64_t expires[MAXE];
	size_t n;
	uint64_t seen;                          /* results collected */
	uint64_t quota_want;                    /* quota keys: units asked for each tick */
	bool quiet;                             /* rate keys: no load */
};

static struct vrl_global *start(const char *const *redis, size_t n, const char *name,
				enum vrl_global_partition p, uint32_t hosts)
{
	struct vrl_global_config cfg = { .redis = redis, .nredis = n, .host = name,
					 .lease_ns = LEASE_NS, .timeout_ns = 80 * RFX_NS_PER_MS,
					 .hosts = hosts, .on_partition = p };
	struct vrl_global *g;
	char err[256];

	assert_int_equal(vrl_global_start(&cfg, &g, err, sizeof(err)), 0);
	return g;
}

static struct vrl_global_entry rate_entry(const char *key, uint64_t count, uint64_t burst)
{
	struct vrl_global_entry e = { .kind = VRL_GLOBAL_RATE, .count = count,
				      .period_ns = 1000000000u, .burst = burst };

	vrl_global_key_id(VRL_GLOBAL_RATE, "test", (const char *[]){ key }, 1, e.id);
	return e;
}

static struct vrl_global_entry quota_entry(const char *key, uint64_t count)
{
	struct vrl_global_entry e = { .kind = VRL_GLOBAL_QUOTA, .count = count, .period_id = 3,
				      .period_left_ns = 3600u * 1000000000ull };

	vrl_global_key_id(VRL_GLOBAL_QUOTA, "test", (const char *[]){ key }, 1, e.id);
	return e;
}

/* One tick: hand every entry over, apply whatever results came back. */
static void tick(struct host *h)
{
	const struct vrl_global_result *r;
	size_t n;

	/* rate keys: a steady load of 2 permits a tick, denied without a share */
	for (size_t k = 0; k < h->n; k++) {
		if (h->e[k].kind == VRL_GLOBAL_QUOTA)
			h->e[k].unmet_total += h->quota_want;
		if (h->e[k].kind != VRL_GLOBAL_RATE || h->quiet)
			continue;
		if (h->e[k].share.rate > 0 && rfx_now() < h->expires[k])
			h->e[k].used_total += 2;
		else
			h->e[k].unmet_total += 2;
	}
	assert_int_equal(vrl_global_submit(h->g, h->e, h->n), 0);
	n = vrl_global_collect(h->g, &r);
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < h->n; k++) {
			if (memcmp(r[i].id, h->e[k].id, VRL_GLOBAL_ID_LEN) != 0)
				continue;
			h->last[k] = r[i];
			h->seen++;
			if (!r[i].apply || r[i].gen == h->e[k].gen)
				break;
			h->e[k].share = r[i].share;
			h->e[k].gen = r[i].gen;
			h->expires[k] = r[i].expires;
			break;
		}
}

/* Tick @h (and @o) until result @k of @h satisfies @ok, or a hang. */
static void until(struct host *h, struct host *o, size_t k,
		  bool (*ok)(const struct vrl_global_result *))
{
	uint64_t deadline = rfx_now() + HANG_NS;

	for (;;) {
		tick(h);
		if (o)
			tick(o);
		if (h->seen && ok(&h->last[k]))
			return;
		assert_true(rfx_now() < deadline);
		rfx_pace(20);
	}
}

static bool granted(const struct vrl_global_result *r)
{
	return r->status == VRL_GLOBAL_OK && (r->share.rate > 0 || r->share.count > 0);
}

static bool partitioned(const struct vrl_global_result *r)
{
	return r->status == VRL_GLOBAL_PARTITIONED;
}

struct fx {
	struct rfx r;
	const char *spec[1];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	rfx_start(&f->r);
	f->spec[0] = f->r.spec;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	rfx_stop(&f->r);
	free(f);
	return 0;
}

/* ---- leases ----------------------------------------------------------------------- */

static void renews(void **state)
{
	struct fx *f = *state;
	struct host h = { .g = start(f->spec, 1, "a", VRL_GLOBAL_DENY, 1), .n = 1 };
	struct vrl_global_key_status ks;
	struct vrl_global_status st;

	h.e[0] = rate_entry("r", 100, 4);
	h.e[0].used_total = 0;
	until(&h, NULL, 0, granted);
	assert_true(h.last[0].expires > rfx_now());
	assert_true(h.last[0].expires <= rfx_now() + LEASE_NS);
	assert_int_equal(vrl_global_key(h.g, h.e[0].id, &ks), 0);
	assert_true(ks.renewals >= 1);
	vrl_global_status(h.g, &st);
	assert_true(st.ep[0].up);
	assert_true(st.ep[0].calls >= 1 && st.ep[0].rtt_last_ns > 0 && st.ep[0].epoch[0]);
	assert_int_equal(st.ep[0].keys, 1);
	vrl_global_stop(h.g, NULL, 0);
}

/* Two hosts: what they trust never sums past the limit. */
static void two_hosts(void **state)
{
	struct fx *f = *state;
	struct host a = { .g = start(f->spec, 1, "a", VRL_GLOBAL_DENY, 2), .n = 1 };
	struct host b = { .g = start(f->spec, 1, "b", VRL_GLOBAL_DENY, 2), .n = 1 };

	a.e[0] = b.e[0] = rate_entry("r2", 100, 4);
	until(&a, &b, 0, granted);
	for (int i = 0; i < 40; i++) {
		uint64_t now, rate = 0, burst = 0;

		a.e[0].used_total += 5;
		b.e[0].unmet_total += (uint64_t)(i % 3);
		tick(&a);
		tick(&b);
		now = rfx_now();
		if (now < a.expires[0]) {
			rate += a.e[0].share.rate;
			burst += a.e[0].share.burst;
		}
		if (now < b.expires[0]) {
			rate += b.e[0].share.rate;
			burst += b.e[0].share.burst;
		}
		assert_true(rate <= 100 * VRL_GLOBAL_RATE_UNIT);
		assert_true(burst <= 4);
		rfx_pace(20);
	}
	vrl_global_stop(a.g, NULL, 0);
	vrl_global_stop(b.g, NULL, 0);
}

/* Redis stopped for longer than a lease: the lease holds until it expires
 * (locally), then the key denies; it renews once Redis is back. */
static void partition_deny(void **state)
{
	struct fx *f = *state;
	struct host h = { .g = start(f->spec, 1, "a", VRL_GLOBAL_DENY, 1), .n = 1 };
	struct vrl_global_status st;
	uint64_t exp;

	h.e[0] = rate_entry("p", 100, 4);
	until(&h, NULL, 0, granted);
	rfx_pause(&f->r);
	exp = h.expires[0];
	/* the results before it are PENDING: the share stays */
	for (uint64_t deadline = rfx_now() + HANG_NS;;) {
		tick(&h);
		if (h.last[0].status == VRL_GLOBAL_PARTITIONED)
			break;
		assert_true(h.e[0].share.rate > 0);
		assert_true(rfx_now() < deadline);
		rfx_pace(20);
	}
	assert_true(rfx_now() >= exp);
	assert_int_equal(h.e[0].share.rate, 0);
	assert_int_equal(h.e[0].share.burst, 0);
	vrl_global_status(h.g, &st);
	assert_false(st.ep[0].up);
	assert_true(st.ep[0].down_since > 0 && st.partitioned == 1);
	rfx_resume(&f->r);
	until(&h, NULL, 0, granted);
	vrl_global_stop(h.g, NULL, 0);
}

/* on_partition static: deny for a term past the lease, then limit / hosts. */
static void partition_static(void **state)
{
	struct fx *f = *state;
	struct host h = { .g = start(f->spec, 1, "a", VRL_GLOBAL_STATIC, 2), .n = 1 };
	uint64_t exp;

	h.e[0] = rate_entry("s", 100, 4);
	until(&h, NULL, 0, granted);
	exp = h.expires[0];
	rfx_pause(&f->r);
	until(&h, NULL, 0, partitioned);
	for (uint64_t deadline = rfx_now() + HANG_NS;; rfx_pace(20)) {
		assert_true(rfx_now() < deadline);
		tick(&h);
		assert_int_equal(h.last[0].status, VRL_GLOBAL_PARTITIONED);
		assert_true(h.last[0].static_from >= exp + LEASE_NS);
		if (rfx_now() < h.last[0].static_from) {
			assert_int_equal(h.e[0].share.rate, 0);
			continue;
		}
		if (h.e[0].share.rate == 0)
			continue;            /* decided just before static_from */
		assert_int_equal(h.e[0].share.rate, 50 * VRL_GLOBAL_RATE_UNIT);
		assert_int_equal(h.e[0].share.burst, 2);
		break;
	}
	rfx_resume(&f->r);
	vrl_global_stop(h.g, NULL, 0);
}

/* Wait for the engine's next round to end. */
static void next_round(struct host *h, uint64_t after)
{
	for (uint64_t deadline = rfx_now() + HANG_NS; vrl_global_rounds(h->g) <= after; rfx_pace(2))
		assert_true(rfx_now() < deadline);
}

/* Redis restarted empty: nothing is granted before the fence (a lease term
 * and the margin after the new epoch began); the quota allocation is kept
 * through it and counted again. */
static void wipe_fence(void **state)
{
	struct fx *f = *state;
	struct host a = { .g = start(f->spec, 1, "a", VRL_GLOBAL_DENY, 2), .n = 2 };
	struct host b = { .g = start(f->spec, 1, "b", VRL_GLOBAL_DENY, 2), .n = 1 };
	struct vrl_global_status st;
	uint64_t t_wipe, alloc;
	char old[64];

	a.e[0] = b.e[0] = rate_entry("w", 100, 4);
	a.e[1] = quota_entry("wq", 100);
	a.quota_want = 1;
	until(&a, &b, 0, granted);
	until(&a, &b, 1, granted);
	a.quota_want = 0;
	for (int i = 0; i < 3; i++) {              /* the rounds still asking, applied */
		uint64_t r = vrl_global_rounds(a.g);

		tick(&a);
		next_round(&a, r);
	}
	tick(&a);
	alloc = a.e[1].share.count;
	assert_true(alloc > 0);
	vrl_global_status(a.g, &st);
	snprintf(old, sizeof(old), "%s", st.ep[0].epoch);
	t_wipe = rfx_now();
	rfx_restart_empty(&f->r);
	for (uint64_t deadline = rfx_now() + HANG_NS;; rfx_pace(20)) {
		uint64_t seen = a.seen;

		assert_true(rfx_now() < deadline);
		/* status first: results collected after it are of its round or later */
		vrl_global_status(a.g, &st);
		tick(&a);
		tick(&b);
		if (a.seen == seen || strcmp(st.ep[0].epoch, old) == 0 ||
		    a.last[0].status == VRL_GLOBAL_PENDING ||
		    a.last[0].status == VRL_GLOBAL_PARTITIONED)
			continue;
		/* an answer of the new epoch */
		assert_int_equal(a.e[1].share.count, alloc);
		if (a.last[0].status == VRL_GLOBAL_FENCED) {
			assert_int_equal(a.e[0].share.rate, 0);
			continue;
		}
		assert_int_equal(a.last[0].status, VRL_GLOBAL_OK);
		assert_true(rfx_now() >= t_wipe + LEASE_NS);
		break;
	}
	a.e[1].held = a.e[1].share.count;          /* it uses all and asks for more */
	a.e[1].used_total += a.e[1].share.count;
	a.quota_want = 1;
	for (uint64_t deadline = rfx_now() + HANG_NS; a.e[1].share.count <= alloc; rfx_pace(20)) {
		assert_true(rfx_now() < deadline);
		tick(&a);
	}
	vrl_global_stop(a.g, NULL, 0);
	vrl_global_stop(b.g, NULL, 0);
}

/* The local quota mechanics a main loop runs: use what the allocation
 * allows, count the rest unmet, give back spare above held + target. */
static uint64_t use_quota(struct host *h, size_t k, uint64_t want)
{
	struct vrl_global_entry *e = &h->e[k];
	uint64_t room = e->share.count - e->held, got = want < room ? want : room;

	e->held += got;
	e->used_total += got;
	e->unmet_total += want - got;
	if (h->last[k].apply && e->share.count > e->held + h->last[k].target)
		e->share.count = e->held + h->last[k].target;
	return got;
}

/* The allocation Redis counts for host @name of @e's key (and in *@used,
 * for all hosts). */
static uint64_t counted(const struct rfx *r, const struct vrl_global_entry *e, const char *name,
			uint64_t *used)
{
	redisContext *c = rfx_connect(r);
	struct sim_state s;
	uint64_t a = 0;
	char key[40];

	for (unsigned i = 0; i < VRL_GLOBAL_ID_LEN; i++)
		snprintf(key + 2 * i, 3, "%02x", e->id[i]);
	assert_int_equal(sim_state(c, key, &s), 0);
	for (unsigned i = 0; i < s.nhosts; i++)
		if (strcmp(s.h[i].host, name) == 0)
			a = s.h[i].a;
	if (used)
		*used = s.used;
	redisFree(c);
	return a;
}

/* A host killed with a quota block strands at most that block. */
static void killed_quota(void **state)
{
	struct fx *f = *state;
	struct host a = { .g = start(f->spec, 1, "a", VRL_GLOBAL_DENY, 2), .n = 1 };
	struct host b = { .g = start(f->spec, 1, "b", VRL_GLOBAL_DENY, 2), .n = 1 };
	const uint64_t bmax = 5;   /* max(1, 40 / (4 * 2)) */
	uint64_t alloc, used = 0;

	a.e[0] = b.e[0] = quota_entry("kq", 40);
	a.quota_want = 1;
	until(&a, NULL, 0, granted);
	use_quota(&a, 0, 1);
	vrl_global_stop(a.g, NULL, 0);             /* killed: no release */
	/* what Redis counts for a: its last lease may not have reached it */
	alloc = counted(&f->r, &a.e[0], "a", NULL);
	assert_true(alloc - a.e[0].held <= bmax);
	/* b takes all it can get: every unit leased, and all of its used */
	for (uint64_t deadline = rfx_now() + HANG_NS;; rfx_pace(10)) {
		assert_true(rfx_now() < deadline);
		use_quota(&b, 0, 3);
		tick(&b);
		if (b.e[0].held == b.e[0].share.count &&
		    counted(&f->r, &b.e[0], "b", &used) == b.e[0].share.count && used == 40)
			break;
	}
	assert_int_equal(used, alloc + b.e[0].share.count);
	/* a strands what it leased and did not use: at most a block */
	assert_true(b.e[0].held + a.e[0].held >= 40 - bmax);
	vrl_global_stop(b.g, NULL, 0);
}

/* The main loop hands its entries over before it collects: an entry made
 * before a growth was applied must not be taken as the host shrinking
 * back, or Redis would count less than the host then enforces. */
static void stale_allocation(void **state)
{
	struct fx *f = *state;
	struct host a = { .g = start(f->spec, 1, "a", VRL_GLOBAL_DENY, 1), .n = 1 };
	const struct vrl_global_result *res;
	struct vrl_global_entry old;
	uint64_t r, grown;

	a.e[0] = quota_entry("sa", 1000000000);   /* blocks never reach their cap */
	a.quota_want = 10;
	until(&a, NULL, 0, granted);
	a.quota_want = 0;
	/* it uses all it has and asks for more: a round grows it */
	a.e[0].held = a.e[0].share.count;
	a.e[0].used_total += a.e[0].share.count;
	a.e[0].unmet_total += 10;
	old = a.e[0];
	rfx_pace(50);                              /* a tick later */
	r = vrl_global_rounds(a.g);
	assert_int_equal(vrl_global_submit(a.g, &old, 1), 0);
	next_round(&a, r);
	assert_int_equal(vrl_global_collect(a.g, &res), 1);
	grown = res[0].share.count;
	assert_true(grown > old.share.count);
	/* the next tick hands the entry over as it was before the main loop
	 * applied the growth (as it does: hand over, then collect) */
	rfx_pace(50);                              /* a tick later */
	r = vrl_global_rounds(a.g);
	assert_int_equal(vrl_global_submit(a.g, &old, 1), 0);
	next_round(&a, r);
	assert_true(counted(&f->r, &a.e[0], "a", NULL) >= grown);
	vrl_global_stop(a.g, NULL, 0);
}

/* An idle key is renewed about twice a term, not every tick, and its
 * lease never lapses meanwhile; its share goes back (vrl.lua: a host
 * without demand wants nothing). */
static void idle_keys(void **state)
{
	struct fx *f = *state;
	struct host h = { .g = start(f->spec, 1, "a", VRL_GLOBAL_DENY, 1), .n = 1 };
	struct vrl_global_key_status ks;
	uint64_t before, rounds, t0;

	h.e[0] = rate_entry("idle", 100, 4);
	until(&h, NULL, 0, granted);
	h.quiet = true;
	tick(&h);
	assert_int_equal(vrl_global_key(h.g, h.e[0].id, &ks), 0);
	before = ks.renewals;
	rounds = vrl_global_rounds(h.g);
	for (t0 = rfx_now(); rfx_now() < t0 + 2 * LEASE_NS; rfx_pace(10)) {
		tick(&h);
		assert_true(rfx_now() < h.expires[0]);   /* still trusted */
	}
	assert_int_equal(h.e[0].share.rate, 0);
	assert_int_equal(h.e[0].share.burst, 0);
	assert_int_equal(vrl_global_key(h.g, h.e[0].id, &ks), 0);
	assert_true(vrl_global_rounds(h.g) - rounds > 20);
	assert_true(ks.renewals - before >= 2 && ks.renewals - before <= 8);
	vrl_global_stop(h.g, NULL, 0);
}

/* A wiped Redis, a quota key only one host knows of and leaves idle, and
 * another host new to the key: the key opens with the first one's units
 * counted, never as new. */
static void wipe_idle_holder(void **state)
{
	struct fx *f = *state;
	struct host a = { .g = start(f->spec, 1, "a", VRL_GLOBAL_DENY, 2), .n = 1 };
	struct host b = { .g = start(f->spec, 1, "b", VRL_GLOBAL_DENY, 2), .n = 1 };
	uint64_t alloc, used = 0;

	a.e[0] = quota_entry("wi", 100);
	b.e[0] = rate_entry("wi-b", 10, 2);          /* b: another key, for now */
	a.quota_want = 1;
	until(&a, &b, 0, granted);
	a.quota_want = 0;
	for (int i = 0; i < 3; i++) {                /* settled, then idle */
		uint64_t r = vrl_global_rounds(a.g);

		tick(&a);
		next_round(&a, r);
	}
	tick(&a);
	alloc = a.e[0].share.count;
	rfx_restart_empty(&f->r);
	b.e[0] = quota_entry("wi", 100);             /* b: new to the key */
	memset(&b.last[0], 0, sizeof(b.last[0]));
	b.seen = 0;
	b.quota_want = 1;
	until(&b, &a, 0, granted);
	assert_true(counted(&f->r, &b.e[0], "a", &used) >= alloc);
	assert_true(used >= alloc + b.e[0].share.count);
	vrl_global_stop(a.g, NULL, 0);
	vrl_global_stop(b.g, NULL, 0);
}

/* Keys spread over two endpoints; each gets its share from its own. */
static void endpoints(void **state)
{
	struct rfx r2;
	struct fx *f = *state;
	const char *spec[2];
	struct host h = { .n = 20 };
	struct vrl_global_status st;
	uint64_t deadline = rfx_now() + HANG_NS;

	rfx_start(&r2);
	spec[0] = f->r.spec;
	spec[1] = r2.spec;
	h.g = start(spec, 2, "a", VRL_GLOBAL_DENY, 1);
	for (size_t k = 0; k < h.n; k++) {
		char name[8];

		snprintf(name, sizeof(name), "e%u", (unsigned)k);
		h.e[k] = rate_entry(name, 10, 2);
	}
	for (;; rfx_pace(20)) {
		size_t ok = 0;

		assert_true(rfx_now() < deadline);
		tick(&h);
		for (size_t k = 0; k < h.n; k++)
			ok += h.seen && granted(&h.last[k]);
		if (ok == h.n)
			break;
	}
	vrl_global_status(h.g, &st);
	assert_int_equal(st.nendpoints, 2);
	assert_true(st.ep[0].keys > 0 && st.ep[1].keys > 0);
	assert_int_equal(st.ep[0].keys + st.ep[1].keys, h.n);
	assert_true(st.ep[0].up && st.ep[1].up);
	vrl_global_stop(h.g, NULL, 0);
	rfx_stop(&r2);
}

/* A release at the stop drops the host's promises in Redis at once. */
static void release(void **state)
{
	struct fx *f = *state;
	struct host h = { .g = start(f->spec, 1, "a", VRL_GLOBAL_DENY, 1), .n = 1 };
	redisContext *c = rfx_connect(&f->r);
	struct sim_state s;
	char key[40];

	h.e[0] = rate_entry("rel", 100, 4);
	until(&h, NULL, 0, granted);
	for (unsigned i = 0; i < VRL_GLOBAL_ID_LEN; i++)
		snprintf(key + 2 * i, 3, "%02x", h.e[0].id[i]);
	assert_int_equal(sim_state(c, key, &s), 0);
	assert_int_equal(s.nhosts, 1);
	h.e[0].share = (struct vrl_global_share){ 0 };   /* clamped to none first */
	vrl_global_stop(h.g, h.e, 1);
	assert_int_equal(sim_state(c, key, &s), 0);
	assert_int_equal(s.nhosts, 0);
	redisFree(c);
}

/* A host without global keys: an empty batch every tick; the engine still
 * calls Redis (twice a lease term), so its status says the endpoint is up. */
static void no_keys(void **state)
{
	struct fx *f = *state;
	struct vrl_global *g = start(f->spec, 1, "a", VRL_GLOBAL_DENY, 1);
	const struct vrl_global_result *r;
	struct vrl_global_status st;
	uint64_t deadline = rfx_now() + HANG_NS;

	do {
		assert_int_equal(vrl_global_submit(g, NULL, 0), 0);
		assert_int_equal(vrl_global_collect(g, &r), 0);
		assert_true(rfx_now() < deadline);
		vrl_global_status(g, &st);
		if (!st.ep[0].up)
			rfx_pace(20);
	} while (!st.ep[0].up);
	assert_int_equal(st.keys, 0);
	vrl_global_stop(g, NULL, 0);
}

/* ---- a Redis that refuses the library ---------------------------------------------- */

/*
 * A Redis whose FUNCTION LOAD of vrl.lua is refused (here another library
 * holds one of its function names): the engine says so in its status at
 * its first round, naming the refusal, and its keys get no share.
 */
static void load_refused(void **state)
{
	struct fx *f = *state;
	redisContext *c = rfx_connect(&f->r);
	const char *squat = "#!lua name=squat\n"
			    "redis.register_function('vrl_renew', function() return 0 end)";
	redisReply *rep = redisCommand(c, "FUNCTION FLUSH");
	struct host h = { .n = 1 };
	struct vrl_global_status st;
	uint64_t deadline = rfx_now() + HANG_NS;

	freeReplyObject(rep);
	rep = redisCommand(c, "FUNCTION LOAD %s", squat);
	assert_true(rep && rep->type != REDIS_REPLY_ERROR);
	freeReplyObject(rep);
	h.g = start(f->spec, 1, "a", VRL_GLOBAL_DENY, 1);
	h.e[0] = rate_entry("refused", 100, 4);
	do {
		tick(&h);
		assert_true(rfx_now() < deadline);
		vrl_global_status(h.g, &st);
		if (!st.ep[0].error[0])
			rfx_pace(20);
	} while (!st.ep[0].error[0]);
	assert_non_null(strstr(st.ep[0].error, "FUNCTION LOAD"));
	assert_false(st.ep[0].up);
	vrl_global_stop(h.g, NULL, 0);
	redisFree(c);
}

/* ---- the pure helpers, and what start refuses -------------------------------------- */

static void helpers(void **state)
{
	char msg[512];
	struct vrl_global_entry e = rate_entry("x", 150, 6);
	struct vrl_global_share s;

	(void)state;
	assert_int_equal(vrl_global_check_rate("samsara.token", 150, 1000000000u, 3, 3, msg,
					       sizeof(msg)), 0);
	assert_int_equal(vrl_global_check_rate("samsara.token", 150, 1000000000u, 1, 3, msg,
					       sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "samsara.token"));
	assert_non_null(strstr(msg, "148/s with burst 3"));
	assert_non_null(strstr(msg, "at most 151 in any 1s"));
	assert_int_equal(vrl_global_check_rate("tiny", 1, 1000000000u, 1, 3, msg, sizeof(msg)),
			 -EINVAL);
	assert_non_null(strstr(msg, "scope: host"));
	assert_int_equal(vrl_global_rate_units(150, 1000000000u), 150000000u);
	assert_int_equal(vrl_global_rate_units(2, 60000000000u), 33333u);
	assert_int_equal(vrl_global_rate_emission(150000000u), 6666667u);
	assert_int_equal(vrl_global_rate_emission(0), UINT64_MAX);
	/* the lease is trusted to t_send + rel - margin */
	assert_int_equal(vrl_lease_local_expiry(1000000000u, 400000, 20000000u), 1380000000u);
	assert_int_equal(vrl_lease_local_expiry(1000000000u, 10, 20000000u), 1000000000u);
	/* a cooldown is published once, not echoed back */
	assert_int_equal(vrl_lease_cooldown_publish(5000000u, 0, 1000000u), 4000u);
	assert_int_equal(vrl_lease_cooldown_publish(5000000u, 5000000u, 1000000u), 0);
	assert_int_equal(vrl_lease_cooldown_publish(5000000u, 6000000u, 1000000u), 0);
	/* static: limit / hosts, and only from static_from */
	s = vrl_lease_fallback(&e, VRL_GLOBAL_STATIC, 3, 10, 20);
	assert_int_equal(s.rate, 0);
	s = vrl_lease_fallback(&e, VRL_GLOBAL_STATIC, 3, 20, 20);
	assert_int_equal(s.rate, 50000000u);
	assert_int_equal(s.burst, 2);
	s = vrl_lease_fallback(&e, VRL_GLOBAL_DENY, 3, 20, 20);
	assert_int_equal(s.rate, 0);
}

static void bad_config(void **state)
{
	const char *bad[] = { "localhost", "unix:relative", "host:0", "h:99999" };
	struct vrl_global_config cfg = { .nredis = 1 };
	struct vrl_global *g;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg.redis = &bad[i];
		assert_int_equal(vrl_global_start(&cfg, &g, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "global.redis"));
	}
	cfg.redis = (const char *[]){ "127.0.0.1:6379" };
	cfg.host = "no spaces";
	assert_int_equal(vrl_global_start(&cfg, &g, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "global.host"));
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(helpers),
		cmocka_unit_test(bad_config),
	};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(renews, setup, teardown),
		cmocka_unit_test_setup_teardown(two_hosts, setup, teardown),
		cmocka_unit_test_setup_teardown(partition_deny, setup, teardown),
		cmocka_unit_test_setup_teardown(partition_static, setup, teardown),
		cmocka_unit_test_setup_teardown(wipe_fence, setup, teardown),
		cmocka_unit_test_setup_teardown(killed_quota, setup, teardown),
		cmocka_unit_test_setup_teardown(stale_allocation, setup, teardown),
		cmocka_unit_test_setup_teardown(idle_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(wipe_idle_holder, setup, teardown),
		cmocka_unit_test_setup_teardown(endpoints, setup, teardown),
		cmocka_unit_test_setup_teardown(release, setup, teardown),
		cmocka_unit_test_setup_teardown(load_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(no_keys, setup, teardown),
	};
	int rc = cmocka_run_group_tests_name("pure", pure, NULL, NULL);

	if (!rfx_available()) {
		printf("redis-server is not installed (Debian: redis-server): skipped\n");
		return rc ? rc : 77;
	}
	return rc | cmocka_run_group_tests_name("redis", tests, NULL, NULL);
}
