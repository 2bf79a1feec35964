/*
 * segment.c - geometry and validation of the segment layout.
 */
#include "segment.h"

#include <errno.h>
#include <stdbool.h>

#include "vrl.h"
#include "window.h"

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

int vrl_seg_geometry(uint64_t keys, struct vrl_seg_geometry *g)
{
	uint64_t off = align_up(sizeof(struct vrl_seg_header), 4096);
	uint64_t nslots, bytes;

	if (keys > (UINT64_C(1) << 40))
		return -EOVERFLOW;
	nslots = keys + keys * 15 / 85 + 1;   /* load factor <= 0.85 */
	if (nslots < 64)
		nslots = 64;
	g->cfg_off[0] = off;
	off = align_up(off + sizeof(struct vrl_seg_config), 4096);
	g->cfg_off[1] = off;
	off = align_up(off + sizeof(struct vrl_seg_config), 4096);
	g->holder_off = off;
	g->nholders = VRL_MAX_HOLDERS;
	off = align_up(off + VRL_MAX_HOLDERS * sizeof(struct vrl_seg_holder), 4096);
	g->slot_off = off;
	g->nslots = nslots;
	if (__builtin_mul_overflow(nslots, (uint64_t)sizeof(struct vrl_seg_slot), &bytes))
		return -EOVERFLOW;
	off = align_up(off + bytes, 4096);
	g->event_off = off;
	g->nevents = VRL_EVENTS;
	off += VRL_EVENTS * sizeof(struct vrl_seg_event);
	g->mark_off = off;
	if (__builtin_mul_overflow(nslots, (uint64_t)sizeof(uint32_t), &bytes))
		return -EOVERFLOW;
	g->size = align_up(off + bytes, 4096);
	return 0;
}

static int in_bounds(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

int vrl_seg_geometry_cfg(uint64_t keys, struct vrl_seg_config *cfg, struct vrl_seg_geometry *g)
{
	int rc = vrl_seg_geometry(keys, g);
	uint64_t off = g->size;

	if (rc)
		return rc;
	for (uint32_t i = 0; i < cfg->nlimits && i < VRL_MAX_LIMITS; i++) {
		struct vrl_seg_limit *l = &cfg->limits[i];
		uint64_t bytes;

		l->area_off = 0;
		if (l->kind != VRL_KIND_WINDOW)
			continue;
		bytes = vrl_window_area_bytes(l->count, l->area_keys);
		if (bytes == 0)
			return -EINVAL;
		l->area_off = off;
		if (__builtin_add_overflow(off, align_up(bytes, 4096), &off))
			return -EOVERFLOW;
	}
	g->size = off;
	return 0;
}

int vrl_seg_area_check(const struct vrl_seg_header *h, uint64_t size,
		       const struct vrl_seg_limit *l)
{
	uint64_t bytes = vrl_window_area_bytes(l->count, l->area_keys);
	const struct vrl_window_area *a;

	if (bytes == 0 || l->area_off % VRL_CACHELINE ||
	    l->area_off < h->mark_off + h->nslots * sizeof(uint32_t) ||
	    !in_bounds(l->area_off, bytes, size))
		return VRL_ECORRUPT;
	a = (const struct vrl_window_area *)((const char *)h + l->area_off);
	if (a->n != l->count || a->nkeys != l->area_keys)
		return VRL_ECORRUPT;
	return 0;
}

/*
 * The areas lie in the order vrl_seg_geometry() gives them, none over
 * another: clients write holders, slots, events and marks, so a slot laid
 * over the header would let an insert rewrite the offsets it indexes by.
 * Called once each area is known to be in bounds (no sum overflows).
 */
static bool in_order(const struct vrl_seg_header *h)
{
	const uint64_t cfg = sizeof(struct vrl_seg_config);

	return h->cfg_off[0] >= sizeof(*h) &&
	       h->cfg_off[1] >= h->cfg_off[0] + cfg &&
	       h->holder_off >= h->cfg_off[1] + cfg &&
	       h->slot_off >= h->holder_off + h->nholders * sizeof(struct vrl_seg_holder) &&
	       h->event_off >= h->slot_off + h->nslots * sizeof(struct vrl_seg_slot) &&
	       h->mark_off >= h->event_off + h->nevents * sizeof(struct vrl_seg_event);
}

int vrl_seg_validate(const void *base, uint64_t mapped)
{
	const struct vrl_seg_header *h = base;
	uint64_t bytes;

	if (mapped < sizeof(*h))
		return VRL_EMAGIC;
	if (h->magic != VRL_SEG_MAGIC)
		return VRL_EMAGIC;
	if (h->format != VRL_SEG_FORMAT || h->header_size != sizeof(*h))
		return VRL_EFORMAT;
	if (h->size > mapped || h->size < sizeof(*h))
		return VRL_ECORRUPT;
	for (int i = 0; i < 2; i++)
		if (h->cfg_off[i] % VRL_CACHELINE ||
		    !in_bounds(h->cfg_off[i], sizeof(struct vrl_seg_config), h->size))
			return VRL_ECORRUPT;
	if (h->holder_off % VRL_CACHELINE || h->nholders > VRL_MAX_HOLDERS ||
	    !in_bounds(h->holder_off, h->nholders * sizeof(struct vrl_seg_holder), h->size))
		return VRL_ECORRUPT;
	if (h->slot_off % VRL_CACHELINE || h->nslots == 0 ||
	    __builtin_mul_overflow(h->nslots, (uint64_t)sizeof(struct vrl_seg_slot), &bytes) ||
	    !in_bounds(h->slot_off, bytes, h->size))
		return VRL_ECORRUPT;
	if (h->event_off % VRL_CACHELINE || h->nevents == 0 || h->nevents > (1u << 20) ||
	    (h->nevents & (h->nevents - 1)) ||
	    !in_bounds(h->event_off, h->nevents * sizeof(struct vrl_seg_event), h->size))
		return VRL_ECORRUPT;
	if (h->mark_off % sizeof(uint32_t) ||
	    !in_bounds(h->mark_off, h->nslots * sizeof(uint32_t), h->size))
		return VRL_ECORRUPT;
	return in_order(h) ? 0 : VRL_ECORRUPT;
}
