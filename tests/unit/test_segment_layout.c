/*
 * test_segment_layout.c - the segment layout (lib/segment): where each area
 * lies for a key capacity (page aligned, in order, none over another, the
 * table's load factor), the header's fields and sizes as segment.h fixes
 * them, a view that points where the layout says, and vrl_seg_validate()
 * refusing every header it cannot trust, word by word, with the code that
 * says what is wrong. Nothing here maps shared memory: the segment is a
 * private buffer.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "segment.h"
#include "vrl.h"

#define PAGE 4096u

static void layout_in_order(uint64_t keys)
{
	struct vrl_seg_geometry g;

	assert_int_equal(vrl_seg_geometry(keys, &g), 0);
	assert_int_equal(g.keys, keys);
	/* every area starts on a page, in segment.h's order, none overlapping */
	assert_true(g.cfg_off[0] >= sizeof(struct vrl_seg_header));
	assert_int_equal(g.cfg_off[0] % PAGE, 0);
	assert_int_equal(g.cfg_off[1] % PAGE, 0);
	assert_int_equal(g.holder_off % PAGE, 0);
	assert_int_equal(g.slot_off % PAGE, 0);
	assert_int_equal(g.event_off % PAGE, 0);
	assert_int_equal(g.size % PAGE, 0);
	assert_true(g.cfg_off[1] >= g.cfg_off[0] + sizeof(struct vrl_seg_config));
	assert_true(g.holder_off >= g.cfg_off[1] + sizeof(struct vrl_seg_config));
	assert_true(g.slot_off >= g.holder_off + g.nholders * sizeof(struct vrl_seg_holder));
	assert_true(g.event_off >= g.slot_off + g.nslots * sizeof(struct vrl_seg_slot));
	assert_true(g.mark_off >= g.event_off + g.nevents * sizeof(struct vrl_seg_event));
	assert_true(g.size >= g.mark_off + g.nslots * sizeof(uint32_t));
	assert_int_equal(g.mark_off % sizeof(uint32_t), 0);
	/* the counts: every holder, every event, and a table kept under 0.85 full */
	assert_int_equal(g.nholders, VRL_MAX_HOLDERS);
	assert_int_equal(g.nevents, VRL_EVENTS);
	assert_true(g.nslots >= 64);
	assert_true(g.nslots * 85 >= keys * 100);
}

static void geometry_for_every_size(void **state)
{
	(void)state;
	layout_in_order(0);
	layout_in_order(1);
	layout_in_order(1000);
	layout_in_order(1000 * 1000);
	layout_in_order(UINT64_C(1) << 30);
}

static void geometry_refuses_absurd_sizes(void **state)
{
	struct vrl_seg_geometry g;

	(void)state;
	assert_int_equal(vrl_seg_geometry((UINT64_C(1) << 40) + 1, &g), -EOVERFLOW);
	assert_int_equal(vrl_seg_geometry(UINT64_MAX, &g), -EOVERFLOW);
	assert_int_equal(vrl_seg_geometry(UINT64_C(1) << 40, &g), 0);
}

/* What every process reads at a fixed place: checked at run time too, so a
 * changed layout shows here with the numbers, not only in a static assert. */
static void fixed_sizes_and_offsets(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct vrl_seg_slot), VRL_CACHELINE);
	assert_int_equal(offsetof(struct vrl_seg_slot, tag), 0);
	assert_int_equal(offsetof(struct vrl_seg_slot, state), 8);
	assert_int_equal(offsetof(struct vrl_seg_slot, cooldown), 16);
	assert_int_equal(_Alignof(struct vrl_seg_slot), VRL_CACHELINE);
	assert_int_equal(offsetof(struct vrl_seg_header, magic), 0);
	assert_int_equal(offsetof(struct vrl_seg_header, format), 8);
	assert_int_equal(offsetof(struct vrl_seg_header, header_size), 12);
	assert_int_equal(offsetof(struct vrl_seg_header, size), 16);
	assert_int_equal(sizeof(struct vrl_seg_header) % VRL_CACHELINE, 0);
	assert_true(sizeof(struct vrl_seg_header) <= PAGE);
	assert_int_equal(offsetof(struct vrl_seg_header, config_gen) % VRL_CACHELINE, 0);
	assert_int_equal(offsetof(struct vrl_seg_header, reclaim_seq) % VRL_CACHELINE, 0);
	assert_int_equal(offsetof(struct vrl_seg_header, event_head) % VRL_CACHELINE, 0);
	assert_int_equal(offsetof(struct vrl_seg_header, event_tail) % VRL_CACHELINE, 0);
	assert_int_equal(offsetof(struct vrl_seg_header, reload_seq) % VRL_CACHELINE, 0);
	assert_int_equal(sizeof(struct vrl_seg_holder) % VRL_CACHELINE, 0);
	assert_int_equal(sizeof(struct vrl_seg_config) % VRL_CACHELINE, 0);
	assert_int_equal(offsetof(struct vrl_seg_config, seq), 0);
	assert_int_equal(sizeof(struct vrl_seg_event) % VRL_CACHELINE, 0);
	/* "VRLSEG01" as bytes, whatever reads it */
	assert_memory_equal(&(uint64_t){ VRL_SEG_MAGIC }, "VRLSEG01", 8);
}

/* A private buffer laid out as vrld lays out a segment of @keys keys. */
struct fake {
	void *base;
	struct vrl_seg_geometry g;
};

static void fake_make(struct fake *f, uint64_t keys)
{
	struct vrl_seg_header *h;

	assert_int_equal(vrl_seg_geometry(keys, &f->g), 0);
	assert_int_equal(posix_memalign(&f->base, PAGE, f->g.size), 0);
	memset(f->base, 0, f->g.size);
	h = f->base;
	h->magic = VRL_SEG_MAGIC;
	h->format = VRL_SEG_FORMAT;
	h->header_size = sizeof(*h);
	h->size = f->g.size;
	memcpy(h->cfg_off, f->g.cfg_off, sizeof(h->cfg_off));
	h->holder_off = f->g.holder_off;
	h->nholders = f->g.nholders;
	h->slot_off = f->g.slot_off;
	h->nslots = f->g.nslots;
	h->keys_configured = keys;
	h->event_off = f->g.event_off;
	h->nevents = f->g.nevents;
	h->mark_off = f->g.mark_off;
}

static int fake_validate(const struct fake *f)
{
	struct vrl_seg_geometry g;

	return vrl_seg_validate(f->base, f->g.size, &g);
}

static void valid_header_gives_its_layout(void **state)
{
	struct vrl_seg_geometry g;
	struct vrl_seg_view v;
	struct fake f;
	char *b;

	(void)state;
	fake_make(&f, 100);
	b = f.base;
	assert_int_equal(vrl_seg_validate(f.base, f.g.size, &g), 0);
	assert_memory_equal(&g, &f.g, sizeof(g));
	vrl_seg_view_init(&v, f.base, &g);
	assert_ptr_equal(v.hdr, f.base);
	assert_int_equal(v.size, g.size);
	assert_int_equal(v.keys, 100);
	assert_ptr_equal(v.cfg[0], b + g.cfg_off[0]);
	assert_ptr_equal(v.cfg[1], b + g.cfg_off[1]);
	assert_ptr_equal(vrl_view_cfg(&v, 3), v.cfg[1]);
	assert_ptr_equal(v.holders, b + g.holder_off);
	assert_int_equal(v.nholders, g.nholders);
	assert_ptr_equal(v.slots, b + g.slot_off);
	assert_int_equal(v.nslots, g.nslots);
	assert_ptr_equal(v.events, b + g.event_off);
	assert_int_equal(v.nevents, g.nevents);
	assert_ptr_equal(v.marks, b + g.mark_off);
	assert_int_equal(v.areas_off, g.mark_off + g.nslots * sizeof(uint32_t));
	free(f.base);
}

/* Change one word of a valid header: validate says @want. */
#define REFUSED(want, change) do {                                            \
		struct fake f_;                                               \
		struct vrl_seg_header *h;                                     \
		fake_make(&f_, 100);                                          \
		h = f_.base;                                                  \
		(void)h;                                                      \
		change;                                                       \
		assert_int_equal(fake_validate(&f_), (want));                 \
		free(f_.base);                                                \
	} while (0)

static void bad_headers_refused(void **state)
{
	struct vrl_seg_geometry g;
	struct fake f;

	(void)state;
	/* not ours, or another format */
	REFUSED(VRL_EMAGIC, h->magic ^= 1);
	REFUSED(VRL_EFORMAT, h->format = VRL_SEG_FORMAT + 1);
	REFUSED(VRL_EFORMAT, h->format = VRL_SEG_FORMAT - 1);
	REFUSED(VRL_EFORMAT, h->header_size += 64);
	/* sizes */
	REFUSED(VRL_ECORRUPT, h->size += PAGE);
	REFUSED(VRL_ECORRUPT, h->size = sizeof(*h) - 1);
	fake_make(&f, 100);
	assert_int_equal(vrl_seg_validate(f.base, sizeof(struct vrl_seg_header) - 1, &g),
			 VRL_EMAGIC);
	assert_int_equal(vrl_seg_validate(f.base, f.g.size - PAGE, &g), VRL_ECORRUPT);
	free(f.base);
	/* config areas */
	REFUSED(VRL_ECORRUPT, h->cfg_off[0] += 8);
	REFUSED(VRL_ECORRUPT, h->cfg_off[1] = h->size);
	REFUSED(VRL_ECORRUPT, h->cfg_off[0] = 0);
	REFUSED(VRL_ECORRUPT, h->cfg_off[1] = h->cfg_off[0]);
	/* holders */
	REFUSED(VRL_ECORRUPT, h->holder_off += 8);
	REFUSED(VRL_ECORRUPT, h->nholders = VRL_MAX_HOLDERS + 1);
	REFUSED(VRL_ECORRUPT, h->holder_off = h->cfg_off[1]);
	/* the key table */
	REFUSED(VRL_ECORRUPT, h->slot_off += 8);
	REFUSED(VRL_ECORRUPT, h->nslots = 0);
	REFUSED(VRL_ECORRUPT, h->nslots = UINT64_MAX / 32);
	REFUSED(VRL_ECORRUPT, h->nslots = h->size / 64);
	REFUSED(VRL_ECORRUPT, h->slot_off = h->holder_off);
	REFUSED(VRL_ECORRUPT, h->slot_off = 0);
	/* events: a power of two, in bounds, after the table */
	REFUSED(VRL_ECORRUPT, h->nevents = 0);
	REFUSED(VRL_ECORRUPT, h->nevents = VRL_EVENTS - 1);
	REFUSED(VRL_ECORRUPT, h->nevents = UINT64_C(1) << 21);
	REFUSED(VRL_ECORRUPT, h->event_off += 8);
	REFUSED(VRL_ECORRUPT, h->event_off = h->slot_off);
	/* marks */
	REFUSED(VRL_ECORRUPT, h->mark_off += 2);
	REFUSED(VRL_ECORRUPT, h->mark_off = h->size);
	REFUSED(VRL_ECORRUPT, h->mark_off = h->event_off);
	/* counters and config words are not layout: a change there is fine */
	REFUSED(0, h->keys_configured = 7);
	REFUSED(0, atomic_store(&h->config_gen, 99));
	REFUSED(0, h->created_realtime_ns = UINT64_MAX);
}

/* The note a slot keeps of its limit: what vrld's sweep reads without the
 * config, and the index only for the generation it was written under. */
static void slot_note_round_trip(void **state)
{
	struct vrl_seg_limit q = { .kind = VRL_KIND_QUOTA, .calendar = VRL_CAL_WEEK, .anchor = 5 };
	struct vrl_seg_limit r = { .kind = VRL_KIND_RATE, .calendar = 3, .anchor = 9 };
	uint32_t n = vrl_slot_note(17, &q, 12345);

	(void)state;
	assert_int_equal(VRL_NOTE_INDEX(n), 17);
	assert_int_equal(VRL_NOTE_KIND(n), VRL_KIND_QUOTA);
	assert_int_equal(VRL_NOTE_CALENDAR(n), VRL_CAL_WEEK);
	assert_int_equal(VRL_NOTE_ANCHOR(n), 5);
	assert_int_equal(vrl_note_limit(n, 12345, 18), 17);
	assert_int_equal(vrl_note_limit(n, 12345, 17), -1);       /* no such limit */
	assert_int_equal(vrl_note_limit(n, 12346, 18), -1);       /* another generation */
	/* generations that agree in their low 13 bits are one to a note */
	assert_int_equal(vrl_note_limit(n, 12345 + (1u << VRL_NOTE_GEN_BITS), 18), 17);
	/* a rate's note carries no calendar */
	n = vrl_slot_note(3, &r, 1);
	assert_int_equal(VRL_NOTE_KIND(n), VRL_KIND_RATE);
	assert_int_equal(VRL_NOTE_CALENDAR(n), 0);
	assert_int_equal(VRL_NOTE_ANCHOR(n), 0);
	assert_int_equal(vrl_note_limit(n, 1, 4), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(geometry_for_every_size),
		cmocka_unit_test(geometry_refuses_absurd_sizes),
		cmocka_unit_test(fixed_sizes_and_offsets),
		cmocka_unit_test(valid_header_gives_its_layout),
		cmocka_unit_test(bad_headers_refused),
		cmocka_unit_test(slot_note_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
