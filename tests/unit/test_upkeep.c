/*
 * test_upkeep.c - what vrld does to a segment (daemon/vrld/upkeep.h),
 * called by its public names in one process: create a segment whose
 * header says the layout vrld computed; refuse a second vrld; adopt one
 * left behind with its keys' state, or refuse (or replace) one of another
 * layout; publish a config and switch clients to it; settle keys written
 * under the config before; renote keys after a renumbering; sweep idle
 * keys by limit, never a closed one; put back a header a group member
 * scribbled; reap the holder record of a process that is gone.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "common.h"
#include "clock.h"
#include "gcra.h"
#include "gstatus.h"
#include "upkeep.h"
#include "vrl.h"
#include "vrl_internal.h"

#define HOUR (3600 * NS_PER_S)

static void spec_of(const char *tag, uint64_t keys, struct vrl_seg_spec *spec)
{
	*spec = (struct vrl_seg_spec){ .mode = 0600, .gid = (gid_t)-1, .keys = keys };
	snprintf(spec->name, sizeof(spec->name), "/vrl-test-upkeep-%s-%d", tag, (int)getpid());
	vrl_seg_unlink(spec->name);
}

/* "a" 1 per hour with a bucket of @burst, per token; "b" the same per org. */
static void two_rates(struct vrl_seg_config *cfg, uint64_t burst)
{
	memset(cfg, 0, sizeof(*cfg));
	test_add_rate(cfg, "a", "up", 1, HOUR, burst, (int[]){ VRL_FIELD_TOKEN, -1 });
	test_add_rate(cfg, "b", "up", 1, HOUR, burst, (int[]){ VRL_FIELD_ORG, -1 });
}

/* The indexes of the live slots of @s, in table order; how many. */
static unsigned live_slots(const struct vrl_seg *s, uint64_t *idx, unsigned max)
{
	unsigned n = 0;

	for (uint64_t i = 0; i < s->view.nslots && n < max; i++)
		if (atomic_load(&s->view.slots[i].tag) & VRL_TAG_LIVE)
			idx[n++] = i;
	return n;
}

static uint64_t take(vrl_client *c, const char *token, const char *org, unsigned n)
{
	struct vrl_request req = { .api = "up", .token = token, .org = org };
	struct vrl_verdict v = { 0 };

	for (unsigned i = 0; i < n; i++)
		assert_int_equal(vrl_acquire(c, &req, &v), 0);
	return v.remaining;
}

static void create_writes_its_layout(void **state)
{
	struct vrl_seg_config cfg, placed;
	struct vrl_seg_geometry g, seen;
	struct vrl_seg_spec spec;
	struct vrl_seg s;
	char why[256] = "";

	(void)state;
	two_rates(&cfg, 5);
	test_add_window(&cfg, "w", "win", 3, HOUR, 10, (int[]){ VRL_FIELD_USER, -1 });
	spec_of("create", 500, &spec);
	assert_int_equal(vrl_seg_open_or_create(&spec, &cfg, false, &s, why, sizeof(why)), 0);
	assert_false(s.adopted);
	assert_true(s.locked);
	/* the header holds what vrl_seg_geometry_cfg() computes, and validates */
	placed = cfg;
	assert_int_equal(vrl_seg_geometry_cfg(500, &placed, &g), 0);
	assert_int_equal(s.hdr->magic, VRL_SEG_MAGIC);
	assert_int_equal(s.hdr->format, VRL_SEG_FORMAT);
	assert_int_equal(s.hdr->header_size, sizeof(struct vrl_seg_header));
	assert_int_equal(s.size, g.size);
	assert_int_equal(vrl_seg_validate(s.hdr, s.size, &seen), 0);
	assert_int_equal(seen.slot_off, g.slot_off);
	assert_int_equal(seen.nslots, g.nslots);
	assert_int_equal(seen.mark_off, g.mark_off);
	assert_int_equal(seen.keys, 500);
	/* the window's ring area: page aligned, past the marks, inside */
	assert_int_equal(s.cfg->limits[2].area_off, placed.limits[2].area_off);
	assert_int_equal(s.cfg->limits[2].area_off % 4096, 0);
	assert_true(s.cfg->limits[2].area_off >= s.view.areas_off);
	assert_true(s.cfg->limits[2].area_off < s.size);
	/* the config in force, published */
	assert_int_equal(s.cfg->nlimits, 3);
	assert_int_equal(atomic_load(&s.hdr->config_gen), s.gen);
	assert_int_equal(vrl_seg_next_gen(&s), s.gen + 1);
	assert_int_equal(vrl_view_cfg(&s.view, atomic_load(&s.hdr->active_cfg))->generation, s.gen);
	vrl_seg_close(&s);
	vrl_seg_unlink(spec.name);
}

/* global: the status area last, past the window rings, named by the
 * header; a segment without it is not adopted by a config with it */
static void global_status_area_last(void **state)
{
	struct vrl_seg_config cfg, placed, plain;
	struct vrl_seg_geometry g;
	struct vrl_seg_spec spec;
	struct vrl_seg s;
	char why[256] = "";

	(void)state;
	two_rates(&cfg, 5);
	test_add_window(&cfg, "w", "win", 3, HOUR, 10, (int[]){ VRL_FIELD_USER, -1 });
	plain = cfg;
	cfg.flags |= VRL_CFG_GLOBAL;
	spec_of("gstatus", 500, &spec);
	assert_int_equal(vrl_seg_open_or_create(&spec, &cfg, false, &s, why, sizeof(why)), 0);
	placed = cfg;
	assert_int_equal(vrl_seg_geometry_cfg(500, &placed, &g), 0);
	assert_int_equal(s.geom.gstatus_off, g.gstatus_off);
	assert_int_equal(s.hdr->gstatus_off, g.gstatus_off);
	assert_int_equal(g.gstatus_off % 4096, 0);
	assert_true(g.gstatus_off >= s.cfg->limits[2].area_off + 4096);
	assert_int_equal(s.size, g.gstatus_off + VRL_GSTATUS_BYTES);
	/* the header word, rewritten by a group member: vrld puts it back */
	s.hdr->gstatus_off = 4096;
	assert_true(vrl_seg_restore_header(&s));
	assert_int_equal(s.hdr->gstatus_off, g.gstatus_off);
	vrl_seg_close(&s);
	/* the same segment, a config without global: not adopted, saying why */
	assert_int_equal(vrl_seg_open_or_create(&spec, &plain, false, &s, why, sizeof(why)),
			 -EEXIST);
	assert_non_null(strstr(why, "made with a global: section"));
	assert_non_null(strstr(why, "--replace"));
	/* without global:, no area */
	assert_int_equal(vrl_seg_open_or_create(&spec, &plain, true, &s, why, sizeof(why)), 0);
	assert_int_equal(s.geom.gstatus_off, 0);
	assert_int_equal(s.hdr->gstatus_off, 0);
	vrl_seg_close(&s);
	vrl_seg_unlink(spec.name);
}

static void second_vrld_refused(void **state)
{
	struct vrl_seg_config cfg;
	struct vrl_seg_spec spec;
	struct vrl_seg s, t;
	char why[256] = "";

	(void)state;
	two_rates(&cfg, 5);
	spec_of("busy", 100, &spec);
	assert_int_equal(vrl_seg_open_or_create(&spec, &cfg, false, &s, why, sizeof(why)), 0);
	assert_int_equal(vrl_seg_open_or_create(&spec, &cfg, false, &t, why, sizeof(why)), -EBUSY);
	assert_true(why[0] != '\0');
	assert_int_equal(vrl_seg_open_or_create(&spec, &cfg, true, &t, why, sizeof(why)), -EBUSY);
	vrl_seg_close(&s);
	vrl_seg_unlink(spec.name);
}

static void adoption_keeps_state(void **state)
{
	struct vrl_seg_config cfg;
	struct vrl_seg_spec spec;
	struct vrl_seg s;
	char why[256] = "";
	vrl_client *c;

	(void)state;
	two_rates(&cfg, 5);
	spec_of("adopt", 100, &spec);
	assert_int_equal(vrl_seg_open_or_create(&spec, &cfg, false, &s, why, sizeof(why)), 0);
	c = test_open(spec.name);
	assert_int_equal(take(c, "t", "o", 3), 2);
	vrl_close(c);
	vrl_seg_close(&s);
	/* the same layout: adopted, the keys' fill kept */
	assert_int_equal(vrl_seg_open_or_create(&spec, &cfg, false, &s, why, sizeof(why)), 0);
	assert_true(s.adopted);
	c = test_open(spec.name);
	assert_int_equal(take(c, "t", "o", 1), 1);
	vrl_close(c);
	vrl_seg_close(&s);
	/* another key capacity: refused, untouched, unless replaced */
	spec.keys = 200;
	why[0] = '\0';
	assert_int_equal(vrl_seg_open_or_create(&spec, &cfg, false, &s, why, sizeof(why)), -EEXIST);
	assert_true(why[0] != '\0');
	spec.keys = 100;
	assert_int_equal(vrl_seg_open_or_create(&spec, &cfg, false, &s, why, sizeof(why)), 0);
	assert_true(s.adopted);
	vrl_seg_close(&s);
	spec.keys = 200;
	assert_int_equal(vrl_seg_open_or_create(&spec, &cfg, true, &s, why, sizeof(why)), 0);
	assert_false(s.adopted);
	c = test_open(spec.name);
	assert_int_equal(take(c, "t", "o", 1), 4);   /* a fresh segment: full again */
	vrl_close(c);
	vrl_seg_close(&s);
	vrl_seg_unlink(spec.name);
}

static void publish_switches_clients(void **state)
{
	struct vrl_seg_config cfg, next;
	struct vrl_seg_spec spec;
	struct vrl_seg s;
	char why[256] = "";
	uint64_t gen;
	uint32_t active;
	vrl_client *c;

	(void)state;
	two_rates(&cfg, 5);
	spec_of("publish", 100, &spec);
	assert_int_equal(vrl_seg_open_or_create(&spec, &cfg, false, &s, why, sizeof(why)), 0);
	c = test_open(spec.name);
	assert_int_equal(vrl_limit_count(c), 2);
	gen = vrl_seg_next_gen(&s);
	active = atomic_load(&s.hdr->active_cfg);
	next = cfg;
	test_add_gate(&next, "g", "up", (int[]){ VRL_FIELD_VEHICLE, -1 });
	assert_int_equal(vrl_seg_publish(&s, &next), 0);
	assert_int_equal(atomic_load(&s.hdr->config_gen), gen);
	assert_int_equal(s.gen, gen);
	assert_int_equal(atomic_load(&s.hdr->active_cfg), active ^ 1);
	assert_int_equal(vrl_view_cfg(&s.view, active ^ 1)->generation, gen);
	assert_non_null(s.prev);
	assert_int_equal(s.prev->nlimits, 2);
	assert_int_equal(s.cfg->nlimits, 3);
	assert_int_equal(vrl_limit_count(c), 3);
	assert_string_equal(vrl_limit_name(c, 2), "g");
	vrl_close(c);
	vrl_seg_close(&s);
	vrl_seg_unlink(spec.name);
}

/* A changed burst takes the next rate epoch: vrl_seg_settle() converts the
 * keys written under the one before, once, keeping their fill. */
static void settle_converts_once(void **state)
{
	struct vrl_seg_config cfg, next;
	struct vrl_seg_spec spec;
	struct vrl_seg s;
	char why[256] = "";
	uint64_t idx[4];
	vrl_client *c;

	(void)state;
	two_rates(&cfg, 5);
	spec_of("settle", 100, &spec);
	assert_int_equal(vrl_seg_open_or_create(&spec, &cfg, false, &s, why, sizeof(why)), 0);
	c = test_open(spec.name);
	take(c, "t", NULL, 2);
	assert_int_equal(live_slots(&s, idx, 4), 2);   /* a's and b's keys */
	two_rates(&next, 10);
	assert_int_equal(vrl_seg_publish(&s, &next), 0);
	assert_int_not_equal(s.cfg->limits[0].rate_epoch, s.prev->limits[0].rate_epoch);
	for (unsigned i = 0; i < 2; i++)
		assert_int_not_equal(vrl_gcra_tag(atomic_load(&s.view.slots[idx[i]].state)),
				     vrl_gcra_epoch_tag(s.cfg->limits[0].rate_epoch));
	/* settle moves keys noted under the config in force: renoted first,
	 * as vrl_seg_reload() does */
	assert_int_equal(vrl_seg_settle(&s, 0, s.view.nslots), 0);
	assert_int_equal(vrl_seg_renote(&s, 0, s.view.nslots), 2);
	assert_int_equal(vrl_seg_settle(&s, 0, s.view.nslots), 2);
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(vrl_gcra_tag(atomic_load(&s.view.slots[idx[i]].state)),
				 vrl_gcra_epoch_tag(s.cfg->limits[0].rate_epoch));
	assert_int_equal(vrl_seg_settle(&s, 0, s.view.nslots), 0);
	/* the fill carried over (gcra.h): the 3 permits the key had stay 3
	 * under the bucket of 10, not 8 */
	assert_int_equal(take(c, "t", NULL, 1), 2);
	vrl_close(c);
	vrl_seg_close(&s);
	vrl_seg_unlink(spec.name);
}

/* Limits renumbered by a publish: vrl_seg_renote() moves each live key's
 * note to the index its limit has now. */
static void renote_follows_the_names(void **state)
{
	struct vrl_seg_config cfg, swapped;
	struct vrl_seg_spec spec;
	struct vrl_seg s;
	char why[256] = "";
	uint64_t idx[4];
	int was[4];
	vrl_client *c;

	(void)state;
	two_rates(&cfg, 5);
	spec_of("renote", 100, &spec);
	assert_int_equal(vrl_seg_open_or_create(&spec, &cfg, false, &s, why, sizeof(why)), 0);
	c = test_open(spec.name);
	take(c, "t", "o", 1);
	assert_int_equal(live_slots(&s, idx, 4), 2);
	for (unsigned i = 0; i < 2; i++)
		was[i] = vrl_note_limit(atomic_load(&s.view.slots[idx[i]].limit), s.gen, 2);
	assert_true(was[0] >= 0 && was[1] >= 0 && was[0] != was[1]);
	memset(&swapped, 0, sizeof(swapped));
	swapped.nlimits = 2;
	swapped.limits[0] = cfg.limits[1];
	swapped.limits[1] = cfg.limits[0];
	assert_int_equal(vrl_seg_publish(&s, &swapped), 0);
	assert_int_equal(vrl_seg_renote(&s, 0, s.view.nslots), 2);
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(vrl_note_limit(atomic_load(&s.view.slots[idx[i]].limit), s.gen, 2),
				 1 - was[i]);
	assert_int_equal(vrl_seg_renote(&s, 0, s.view.nslots), 0);
	vrl_close(c);
	vrl_seg_close(&s);
	vrl_seg_unlink(spec.name);
}

static void sweep_counts_by_limit(void **state)
{
	struct vrl_seg_config cfg;
	struct vrl_seg_spec spec;
	struct vrl_seg s;
	char why[256] = "";
	uint64_t by[VRL_MAX_LIMITS] = { 0 }, idx[8], later = vrl_now_ns() + 10 * HOUR;
	struct vrl_request closed = { .api = "up", .token = "closed" };
	vrl_client *c;

	(void)state;
	two_rates(&cfg, 5);
	spec_of("sweep", 100, &spec);
	assert_int_equal(vrl_seg_open_or_create(&spec, &cfg, false, &s, why, sizeof(why)), 0);
	c = test_open(spec.name);
	take(c, "t1", "o1", 1);
	take(c, "t2", NULL, 1);
	assert_int_equal(vrl_cooldown(c, &closed, "a", later + HOUR), 0);
	/* a:t1 a:t2 a:closed b:o1 b:"" */
	assert_int_equal(live_slots(&s, idx, 8), 5);
	/* nothing is idle yet */
	assert_int_equal(vrl_seg_sweep_by(&s, 0, s.view.nslots, vrl_now_ns(), vrl_wall_ns(),
					  HOUR, by), 0);
	/* hours later every key is whole, but the closed one stays */
	assert_int_equal(vrl_seg_sweep_by(&s, 0, s.view.nslots, later, vrl_wall_ns(), 0, by), 4);
	assert_int_equal(by[0], 2);
	assert_int_equal(by[1], 2);
	assert_int_equal(atomic_load(&s.hdr->evictions), 4);
	assert_int_equal(live_slots(&s, idx, 8), 1);
	assert_true(atomic_load(&s.view.slots[idx[0]].cooldown) > later);
	vrl_close(c);
	vrl_seg_close(&s);
	vrl_seg_unlink(spec.name);
}

static void header_restored(void **state)
{
	struct vrl_seg_config cfg;
	struct vrl_seg_geometry g;
	struct vrl_seg_spec spec;
	struct vrl_seg s;
	char why[256] = "";
	vrl_client *c;

	(void)state;
	two_rates(&cfg, 5);
	spec_of("restore", 100, &spec);
	assert_int_equal(vrl_seg_open_or_create(&spec, &cfg, false, &s, why, sizeof(why)), 0);
	assert_false(vrl_seg_restore_header(&s));
	s.hdr->slot_off = 64;
	s.hdr->nslots = UINT64_MAX;
	s.hdr->format = 0;
	assert_int_not_equal(vrl_seg_validate(s.hdr, s.size, &g), 0);
	assert_int_equal(vrl_open(spec.name, 0, &c), VRL_EFORMAT);
	assert_true(vrl_seg_restore_header(&s));
	assert_int_equal(vrl_seg_validate(s.hdr, s.size, &g), 0);
	assert_int_equal(g.nslots, s.view.nslots);
	assert_false(vrl_seg_restore_header(&s));
	c = test_open(spec.name);
	vrl_close(c);
	vrl_seg_close(&s);
	vrl_seg_unlink(spec.name);
}

/* A holder record whose pid no process has (pids stay below 2^22): its
 * counts are folded into the retired totals and the record freed. */
static void dead_holder_reaped(void **state)
{
	struct vrl_seg_config cfg;
	struct vrl_seg_spec spec;
	struct vrl_seg s;
	struct vrl_seg_holder *ho;
	char why[256] = "";
	uint64_t before;

	(void)state;
	two_rates(&cfg, 5);
	spec_of("reap", 100, &spec);
	assert_int_equal(vrl_seg_open_or_create(&spec, &cfg, false, &s, why, sizeof(why)), 0);
	assert_int_equal(vrl_seg_reap_holders(&s), 0);
	ho = &s.view.holders[s.view.nholders - 1];
	assert_int_equal(atomic_load(&ho->pid), 0);
	before = atomic_load(&s.hdr->retired_granted);
	atomic_store(&ho->granted, 7);
	atomic_store(&ho->denied, 3);
	atomic_store(&ho->pid, INT32_MAX);
	assert_int_equal(vrl_seg_reap_holders(&s), 1);
	assert_int_equal(atomic_load(&ho->pid), 0);
	assert_int_equal(atomic_load(&s.hdr->retired_granted), before + 7);
	assert_int_equal(atomic_load(&s.hdr->retired_denied), 3);
	assert_int_equal(atomic_load(&ho->granted), 0);
	/* a live process's record stays */
	atomic_store(&ho->pid, (int32_t)getpid());
	assert_int_equal(vrl_seg_reap_holders(&s), 0);
	atomic_store(&ho->pid, 0);
	vrl_seg_close(&s);
	vrl_seg_unlink(spec.name);
}

/* A pid no process of this namespace has now: a child's, reaped. */
static pid_t gone_pid(void)
{
	pid_t p = fork();
	int st;

	assert_true(p >= 0);
	if (p == 0)
		_exit(0);
	assert_int_equal(waitpid(p, &st, 0), p);
	return p;
}

/* A worker in another PID namespace (a container) writes the pid it has
 * there, which vrld's namespace gives to no process or to another one:
 * its record, and the slots it holds, stay while its handle is open, and
 * go once the handle is gone. */
static void live_holder_kept_whatever_its_pid(void **state)
{
	struct vrl_seg_config cfg;
	struct vrl_seg_spec spec;
	struct vrl_seg s;
	struct vrl_seg_holder *ho;
	char why[256] = "";
	vrl_client *c;
	int32_t own;
	pid_t other;

	(void)state;
	two_rates(&cfg, 5);
	spec_of("ns", 100, &spec);
	assert_int_equal(vrl_seg_open_or_create(&spec, &cfg, false, &s, why, sizeof(why)), 0);
	c = test_open(spec.name);
	ho = vrl__holder(c);
	assert_non_null(ho);
	own = atomic_load(&ho->pid);
	other = gone_pid();
	/* the pid as another namespace shows it, the rest of the word kept */
	atomic_store(&ho->pid, (own & ~(int32_t)VRL_HOLDER_PID_MASK) | (int32_t)other);
	assert_int_equal(vrl_seg_reap_holders(&s), 0);
	assert_int_not_equal(atomic_load(&ho->pid), 0);
	atomic_store(&ho->pid, own);
	vrl_close(c);
	vrl_seg_close(&s);
	vrl_seg_unlink(spec.name);
}

/* A child that inherits an open handle and dies without closing it: its
 * own record is reaped, its parent's (the same handle, still open) is
 * kept. */
static void forked_child_reaped_parent_kept(void **state)
{
	struct vrl_seg_config cfg;
	struct vrl_seg_spec spec;
	struct vrl_seg s;
	char why[256] = "";
	vrl_client *c;
	pid_t p;
	int st;

	(void)state;
	two_rates(&cfg, 5);
	spec_of("forked", 100, &spec);
	assert_int_equal(vrl_seg_open_or_create(&spec, &cfg, false, &s, why, sizeof(why)), 0);
	c = test_open(spec.name);
	take(c, "t", "o", 1);
	p = fork();
	assert_true(p >= 0);
	if (p == 0) {
		struct vrl_request req = { .api = "up", .token = "t", .org = "o" };
		struct vrl_verdict v = { 0 };

		/* the first call in the child takes a record of its own */
		_exit(vrl_acquire(c, &req, &v) == 0 ? 0 : 1);
	}
	assert_int_equal(waitpid(p, &st, 0), p);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(vrl_seg_reap_holders(&s), 1);
	assert_int_equal(vrl_seg_reap_holders(&s), 0);
	assert_non_null(vrl__holder(c));
	assert_int_not_equal(atomic_load(&vrl__holder(c)->pid), 0);
	vrl_close(c);
	vrl_seg_close(&s);
	vrl_seg_unlink(spec.name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(create_writes_its_layout),
		cmocka_unit_test(global_status_area_last),
		cmocka_unit_test(second_vrld_refused),
		cmocka_unit_test(adoption_keeps_state),
		cmocka_unit_test(publish_switches_clients),
		cmocka_unit_test(settle_converts_once),
		cmocka_unit_test(renote_follows_the_names),
		cmocka_unit_test(sweep_counts_by_limit),
		cmocka_unit_test(header_restored),
		cmocka_unit_test(dead_holder_reaped),
		cmocka_unit_test(live_holder_kept_whatever_its_pid),
		cmocka_unit_test(forked_child_reaped_parent_kept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
