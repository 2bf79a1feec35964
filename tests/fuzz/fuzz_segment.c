/*
 * fuzz_segment.c - libFuzzer target: the client against a corrupted segment.
 *
 * A worker maps a segment that another process writes, so everything it
 * reads there (offsets, counts, indices, the config, slot words, ring
 * areas, the event ring) may be wrong. It must fail with an error, never
 * crash, read out of bounds or loop forever.
 *
 * Once per process a real segment is made with the project's own functions
 * (one limit of every kind, alerts on, a small key table) and a pristine
 * copy of its image kept. Per input the image is restored, then patched:
 *
 *   repeated:  byte   region: header, config A, config B, slots, events,
 *                     marks, window area (modulo their count)
 *              2 bytes offset into the region (little-endian, modulo its size)
 *              byte   length n (modulo 64)
 *              n bytes written there
 *   a record of region byte 0xff ends the patches made before vrl_open();
 *   the ones after it are made to the open segment, as a hostile writer
 *   would, between two rounds of calls.
 *
 * and the client paths run on it: vrl_seg_validate(), and on an image it
 * accepts vrl_snapshot_read() (through the validated layout), then
 * vrl_open() and an acquire, a cooldown and an observe per request. Then
 * vrld's upkeep runs on the image whatever it holds, valid or not (a sweep,
 * a renote, a reap, a reload check, an alert drain, the header's repair):
 * vrld reads no layout back from the segment, so no patch may crash it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "vrl_internal.h"
#include "../common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { R_HEADER, R_CFG0, R_CFG1, R_SLOTS, R_EVENTS, R_MARKS, R_AREA, R__COUNT };

static struct vrl_seg seg;
static struct vrl_seg_config cfg;
static char seg_name[VRL_SHM_NAME_MAX];
static unsigned char *pristine;
static uint64_t region_off[R__COUNT], region_len[R__COUNT];

static void drop(void)
{
	test_segment_drop(&seg, seg_name);
}

static void make_segment(void)
{
	static const int per_vehicle[] = { VRL_FIELD_VEHICLE, -1 };
	static const int per_org[] = { VRL_FIELD_ORG, -1 };
	const struct vrl_seg_header *h;
	struct vrl_seg_limit *q;
	uint64_t area = 0;

	test_add_rate(&cfg, "rate", "a", 5, NS_PER_S, 5, per_vehicle);
	test_add_window(&cfg, "window", "a", 4, NS_PER_S, 8, per_vehicle);
	q = test_add_quota(&cfg, "quota", "a", 3, VRL_CAL_MONTH, 1, VRL_LIMIT_SOFT, per_org);
	q->nalerts = 2;
	q->alert_pct[0] = 50;
	q->alert_pct[1] = 100;
	test_add_gate(&cfg, "gate", NULL, per_org);
	test_add_slots(&cfg, "slots", "a", 2, 0, per_org);
	test_segment("fuzz-seg", &cfg, 16, &seg, seg_name);
	atexit(drop);
	h = seg.hdr;
	pristine = malloc(seg.size);
	if (!pristine)
		abort();
	memcpy(pristine, h, seg.size);
	for (unsigned i = 0; i < seg.cfg->nlimits; i++)
		if (seg.cfg->limits[i].kind == VRL_KIND_WINDOW)
			area = seg.cfg->limits[i].area_off;
	region_off[R_HEADER] = 0;
	region_len[R_HEADER] = sizeof(struct vrl_seg_header);
	for (int i = 0; i < 2; i++) {
		region_off[R_CFG0 + i] = h->cfg_off[i];
		region_len[R_CFG0 + i] = sizeof(struct vrl_seg_config);
	}
	region_off[R_SLOTS] = h->slot_off;
	region_len[R_SLOTS] = h->nslots * sizeof(struct vrl_seg_slot);
	region_off[R_EVENTS] = h->event_off;
	region_len[R_EVENTS] = 4 * sizeof(struct vrl_seg_event);
	region_off[R_MARKS] = h->mark_off;
	region_len[R_MARKS] = h->nslots * sizeof(uint32_t);
	region_off[R_AREA] = area;
	region_len[R_AREA] = seg.size - area;
}

/*
 * Write the input's patches over the image, up to a record whose region
 * byte is 0xff (or the end). Returns how many bytes were used.
 */
static size_t patch(const uint8_t *data, size_t size)
{
	unsigned char *base = (unsigned char *)seg.hdr;
	size_t used = 0;

	while (size >= 4) {
		unsigned r = data[0] % R__COUNT;
		uint64_t off = (uint64_t)(data[1] | data[2] << 8) % region_len[r];
		size_t n = data[3] % 64;

		if (data[0] == 0xff)
			return used + 4;
		data += 4;
		size -= 4;
		used += 4;
		if (n > size)
			n = size;
		if (n > region_len[r] - off)
			n = (size_t)(region_len[r] - off);
		memcpy(base + region_off[r] + off, data, n);
		data += n;
		size -= n;
		used += n;
	}
	return used;
}

static void exercise(vrl_client *c)
{
	static const char *const vehicles[] = { "v1", "v2", "v3" };
	struct vrl_header hdr = { .name = "Retry-After", .value = "2" };
	struct vrl_response resp = { .status = 429, .headers = &hdr, .nheaders = 1 };

	for (unsigned i = 0; i < 3; i++) {
		struct vrl_request req = {
			.api = "a", .org = "o", .vehicle = vehicles[i], .cost = i + 1,
		};
		struct vrl_verdict v;
		struct vrl_feedback fb;

		(void)vrl_acquire(c, &req, &v);
		(void)vrl_cooldown(c, &req, i == 1 ? "gate" : NULL,
				   vrl_now_ns() + NS_PER_S);
		(void)vrl_observe(c, &req, &resp, &fb);
		(void)vrl_release(c, &req, "slots", 1);
	}
}

/* What vrld does to the segment besides serving it, on the image as it is. */
static void vrld_upkeep(void)
{
	uint64_t now = vrl_now_ns(), by_limit[VRL_MAX_LIMITS] = { 0 };
	struct vrl_alert_cursor cur = { 0 };
	struct vrl_alert_event ev;
	char why[256];

	vrl_seg_sweep_by(&seg, 0, seg.view.nslots, now, now, 0, by_limit);
	vrl_seg_renote(&seg, 0, seg.view.nslots);
	vrl_seg_reap_holders(&seg);
	(void)vrl_seg_reload_check(&seg, &cfg, why, sizeof(why));
	for (int i = 0; i < 64 && vrl_alert_drain(&seg.view, &cur, now, 0, &ev) == 1; i++)
		;
	(void)vrl_seg_restore_header(&seg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vrl_seg_geometry g;
	struct vrl_seg_view view;
	struct vrl_snapshot *snap;
	vrl_client *c = NULL;
	size_t used;

	if (!pristine)
		make_segment();
	memcpy(seg.hdr, pristine, seg.size);
	used = patch(data, size);
	data += used;
	size -= used;
	if (vrl_seg_validate(seg.hdr, seg.size, &g) != 0) {
		vrld_upkeep();
		return 0;  /* vrl_open() refuses it the same way */
	}
	vrl_seg_view_init(&view, seg.hdr, &g);
	snap = malloc(sizeof(*snap));
	if (!snap)
		abort();
	(void)vrl_snapshot_read(&view, snap);
	free(snap);
	if (vrl_open(seg_name, 0, &c) == 0) {
		exercise(c);
		/* a hostile writer after the checks at open: the rest of the
		 * patches, and a new config generation so clients re-read */
		if (size) {
			patch(data, size);
			atomic_fetch_add(&seg.hdr->config_gen, 1);
			exercise(c);
		}
		vrl_close(c);
	}
	if (vrl_open(seg_name, VRL_OPEN_READONLY, &c) == 0) {
		struct vrl_request req = { .api = "a", .org = "o", .vehicle = "v1" };
		struct vrl_verdict v;

		(void)vrl_acquire(c, &req, &v);
		vrl_close(c);
	}
	vrld_upkeep();
	return 0;
}
