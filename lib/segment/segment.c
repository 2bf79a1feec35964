/*
 * segment.c - geometry and validation of the segment layout, and what any
 * process may read of vrld's: its last reload, and which process holds the
 * segment's lock.
 */
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "vrl.h"

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
	g->keys = keys;
	g->gstatus_off = 0;         /* vrld's: vrl_seg_geometry_cfg() */
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

void vrl_seg_view_init(struct vrl_seg_view *v, void *base, const struct vrl_seg_geometry *g)
{
	char *b = base;

	*v = (struct vrl_seg_view){
		.hdr = base, .size = g->size, .keys = g->keys,
		.cfg = { (struct vrl_seg_config *)(b + g->cfg_off[0]),
			 (struct vrl_seg_config *)(b + g->cfg_off[1]) },
		.holders = (struct vrl_seg_holder *)(b + g->holder_off), .nholders = g->nholders,
		.slots = (struct vrl_seg_slot *)(b + g->slot_off), .nslots = g->nslots,
		.events = (struct vrl_seg_event *)(b + g->event_off), .nevents = g->nevents,
		.marks = (_Atomic uint32_t *)(b + g->mark_off),
		.areas_off = g->mark_off + g->nslots * sizeof(uint32_t),
	};
}

/*
 * The areas lie in the order vrl_seg_geometry() gives them, none over
 * another: clients write holders, slots, events and marks, so a slot laid
 * over the header would let an insert rewrite the offsets it indexes by.
 * Called once each area is known to be in bounds (no sum overflows).
 */
static bool in_order(const struct vrl_seg_geometry *g)
{
	const uint64_t cfg = sizeof(struct vrl_seg_config);

	return g->cfg_off[0] >= sizeof(struct vrl_seg_header) &&
	       g->cfg_off[1] >= g->cfg_off[0] + cfg &&
	       g->holder_off >= g->cfg_off[1] + cfg &&
	       g->slot_off >= g->holder_off + g->nholders * sizeof(struct vrl_seg_holder) &&
	       g->event_off >= g->slot_off + g->nslots * sizeof(struct vrl_seg_slot) &&
	       g->mark_off >= g->event_off + g->nevents * sizeof(struct vrl_seg_event);
}

/* Copy the layout words of @h once: each is read a single time. */
static void read_layout(const struct vrl_seg_header *h, struct vrl_seg_geometry *g)
{
	const volatile struct vrl_seg_header *vh = h;

	*g = (struct vrl_seg_geometry){
		.cfg_off = { vh->cfg_off[0], vh->cfg_off[1] },
		.holder_off = vh->holder_off, .nholders = vh->nholders,
		.slot_off = vh->slot_off, .nslots = vh->nslots,
		.event_off = vh->event_off, .nevents = vh->nevents,
		.mark_off = vh->mark_off, .gstatus_off = vh->gstatus_off,
		.size = vh->size, .keys = vh->keys_configured,
	};
}

static int check_layout(const struct vrl_seg_geometry *g)
{
	uint64_t bytes;

	for (int i = 0; i < 2; i++)
		if (g->cfg_off[i] % VRL_CACHELINE ||
		    !in_bounds(g->cfg_off[i], sizeof(struct vrl_seg_config), g->size))
			return VRL_ECORRUPT;
	if (g->holder_off % VRL_CACHELINE || g->nholders > VRL_MAX_HOLDERS ||
	    !in_bounds(g->holder_off, g->nholders * sizeof(struct vrl_seg_holder), g->size))
		return VRL_ECORRUPT;
	if (g->slot_off % VRL_CACHELINE || g->nslots == 0 ||
	    __builtin_mul_overflow(g->nslots, (uint64_t)sizeof(struct vrl_seg_slot), &bytes) ||
	    !in_bounds(g->slot_off, bytes, g->size))
		return VRL_ECORRUPT;
	if (g->event_off % VRL_CACHELINE || g->nevents == 0 || g->nevents > (1u << 20) ||
	    (g->nevents & (g->nevents - 1)) ||
	    !in_bounds(g->event_off, g->nevents * sizeof(struct vrl_seg_event), g->size))
		return VRL_ECORRUPT;
	if (g->mark_off % sizeof(uint32_t) ||
	    !in_bounds(g->mark_off, g->nslots * sizeof(uint32_t), g->size))
		return VRL_ECORRUPT;
	return in_order(g) ? 0 : VRL_ECORRUPT;
}

int vrl_seg_validate(const void *base, uint64_t mapped, struct vrl_seg_geometry *g)
{
	const volatile struct vrl_seg_header *h = base;

	if (mapped < sizeof(struct vrl_seg_header))
		return VRL_EMAGIC;
	if (h->magic != VRL_SEG_MAGIC)
		return VRL_EMAGIC;
	if (h->format != VRL_SEG_FORMAT || h->header_size != sizeof(struct vrl_seg_header))
		return VRL_EFORMAT;
	read_layout(base, g);
	if (g->size > mapped || g->size < sizeof(struct vrl_seg_header))
		return VRL_ECORRUPT;
	return check_layout(g);
}

pid_t vrl_seg_lock_pid(int fd, bool take)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };

	errno = 0;
	if (take)
		return fcntl(fd, F_SETLK, &fl) == 0 ? 0 : -1;
	if (fcntl(fd, F_GETLK, &fl) != 0)
		return -1;
	return fl.l_type == F_UNLCK ? 0 : fl.l_pid;
}

int vrl_seg_read_reload(const struct vrl_seg_header *h, struct vrl_reload_status *out)
{
	for (int tries = 0; tries < 1000; tries++) {
		/* SEG.L2 acquire: pairs with SEG.L1, the block written before this even */
		uint64_t seq = atomic_load_explicit(&h->reload_seq, memory_order_acquire);

		if (seq & 1)
			continue;
		out->count = h->reload_count;
		out->refused = h->reload_refused;
		out->realtime_ns = h->reload_realtime_ns;
		memcpy(out->error, h->reload_error, sizeof(out->error));
		out->error[sizeof(out->error) - 1] = '\0';
		/* the copy above is done before the re-check */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&h->reload_seq, memory_order_relaxed) == seq)
			return 0;
	}
	return VRL_EBUSY;
}

void vrl_user_name(uid_t uid, char *out, size_t cap)
{
	struct passwd pw, *res = NULL;
	char buf[2048];

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		snprintf(out, cap, "%s", res->pw_name);
	else
		snprintf(out, cap, "no such user");
}
