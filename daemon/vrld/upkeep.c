/*
 * upkeep.c - segment creation, adoption and publication (vrld's side);
 * what a reload may change is in reload_check.c, the walk over the keys
 * (eviction, renumbering, settling, reaping) in sweep.c.
 *
 * Trust. Processes of the segment's group write the segment, and a buggy
 * or hostile one may write anything anywhere in it. So vrld reads nothing
 * back from the segment as a size, an offset or a count: where each area
 * is comes from the layout vrld computed itself (struct vrl_seg.view, for
 * a segment it created or one whose header matched that layout when it
 * adopted it), and the limits it sweeps by, window areas included, come
 * from its own copy of the config it published (struct vrl_seg.cfg), never
 * from the config areas. What it does read from the segment is data (tags,
 * state words, notes, ring links), and every index taken from that data
 * is checked against the private layout before use.
 */

#include "upkeep_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stddef.h>
#include <time.h>
#include <unistd.h>

#include "vrl_internal.h"
#include "clock.h"
#include "gstatus.h"
#include "guard.h"
#include "keytable.h"
#include "kind_upkeep.h"

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
		if (!vrl_kind_has_area(l))
			continue;
		bytes = vrl_kind_area_bytes(l);
		if (bytes == 0)
			return -EINVAL;
		l->area_off = off;
		if (__builtin_add_overflow(off, (bytes + 4095) / 4096 * 4096, &off))
			return -EOVERFLOW;
	}
	/* global: the engine's status for vrlctl, last (gstatus.h) */
	g->gstatus_off = 0;
	if (cfg->flags & VRL_CFG_GLOBAL) {
		g->gstatus_off = off;
		if (__builtin_add_overflow(off, (uint64_t)VRL_GSTATUS_BYTES, &off))
			return -EOVERFLOW;
	}
	g->size = off;
	return 0;
}

/* Write @cfg into the inactive config area as generation @gen, then switch. */
static void publish_area(const struct vrl_seg_view *v, const struct vrl_seg_config *cfg,
			 uint64_t gen)
{
	struct vrl_seg_header *h = v->hdr;
	unsigned next = atomic_load_explicit(&h->active_cfg, memory_order_relaxed) ^ 1u;
	struct vrl_seg_config *area = vrl_view_cfg(v, next);
	uint64_t seq = atomic_load_explicit(&area->seq, memory_order_relaxed) & ~UINT64_C(1);
	/* SEG.W0: odd first; the release fence orders it before the data stores
	 * (pairs with SEG.R1, a reader's fence before its re-check) */
	atomic_store_explicit(&area->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	area->generation = gen;
	area->nlimits = cfg->nlimits;
	area->flags = cfg->flags;
	area->loaded_realtime_ns = vrl_wall_ns();
	memcpy(area->source, cfg->source, sizeof(area->source));
	memcpy(area->limits, cfg->limits, sizeof(area->limits));
	/* SEG.W1 release: pairs with SEG.R0, the data is complete before even */
	atomic_store_explicit(&area->seq, seq + 2, memory_order_release);
	atomic_store_explicit(&h->active_cfg, next, memory_order_relaxed);
	/* SEG.P1 release: pairs with SEG.C1, area and active_cfg before the new gen */
	atomic_store_explicit(&h->config_gen, gen, memory_order_release);
}

/* The generation after @gen: never 0 (never published), never wrapping. */
static uint64_t next_generation(uint64_t gen)
{
	return gen + 1 == 0 || gen + 1 > (UINT64_C(1) << 62) ? 1 : gen + 1;
}

uint64_t vrl_seg_next_gen(const struct vrl_seg *s)
{
	return next_generation(s->gen);
}

int vrl_seg_publish(struct vrl_seg *s, const struct vrl_seg_config *cfg)
{
	struct vrl_seg_config *now = malloc(sizeof(*now));
	uint64_t gen = next_generation(s->gen);

	if (!now)
		return -ENOMEM;
	*now = *cfg;
	now->generation = gen;
	if (now->nlimits > VRL_MAX_LIMITS)
		now->nlimits = VRL_MAX_LIMITS;
	/* each limit's reload record, from vrld's own copy of the config in
	 * force, never from the segment's areas (a cut or a group member may
	 * have rewritten them): a rebuild that publishes the same config keeps
	 * every epoch, and so every key's word reads as it did */
	for (uint32_t i = 0; i < now->nlimits; i++)
		vrl_kind_carry_reload(&now->limits[i],
				      vrl_upkeep_same_keys(vrl_upkeep_in_force(s), &now->limits[i]),
			     vrl_upkeep_realtime());
	publish_area(&s->view, now, gen);
	/* the one in force becomes the one before, whose keys are renoted (an
	 * adopted segment's first publish keeps the one adoption read) */
	if (s->cfg) {
		free(s->prev);
		s->prev = s->cfg;
	}
	s->cfg = now;
	s->gen = gen;
	for (uint32_t i = 0; i < VRL_MAX_LIMITS; i++)
		s->prev_map[i] = s->prev && i < s->prev->nlimits ?
				 vrl_seg_renumber(s->prev, i, s->cfg) : -1;
	return 0;
}

/* The words of the header that say what and where everything is. */
static void write_layout(struct vrl_seg_header *h, const struct vrl_seg_geometry *g)
{
	h->format = VRL_SEG_FORMAT;
	h->header_size = sizeof(*h);
	h->size = g->size;
	h->cfg_off[0] = g->cfg_off[0];
	h->cfg_off[1] = g->cfg_off[1];
	h->holder_off = g->holder_off;
	h->nholders = g->nholders;
	h->slot_off = g->slot_off;
	h->nslots = g->nslots;
	h->keys_configured = g->keys;
	h->event_off = g->event_off;
	h->nevents = g->nevents;
	h->mark_off = g->mark_off;
	h->gstatus_off = g->gstatus_off;
}

static void format(struct vrl_seg_header *h, const struct vrl_seg_geometry *g)
{
	/* a fresh ftruncate'd segment is all zeros: slots EMPTY, counters 0 */
	write_layout(h, g);
	h->created_realtime_ns = vrl_wall_ns();
}

bool vrl_seg_restore_header(struct vrl_seg *s)
{
	const volatile struct vrl_seg_header *h = s->hdr;
	const struct vrl_seg_geometry *g = &s->geom;
	bool same = h->format == VRL_SEG_FORMAT && h->header_size == sizeof(*h) &&
		    h->size == g->size && h->cfg_off[0] == g->cfg_off[0] &&
		    h->cfg_off[1] == g->cfg_off[1] && h->holder_off == g->holder_off &&
		    h->nholders == g->nholders && h->slot_off == g->slot_off &&
		    h->nslots == g->nslots && h->keys_configured == g->keys &&
		    h->event_off == g->event_off && h->nevents == g->nevents &&
		    h->mark_off == g->mark_off && h->gstatus_off == g->gstatus_off;
	_Atomic uint64_t *magic = (_Atomic uint64_t *)&s->hdr->magic;

	if (same && atomic_load_explicit(magic, memory_order_relaxed) == VRL_SEG_MAGIC)
		return false;
	write_layout(s->hdr, g);
	/* release: as at creation, the magic goes last */
	atomic_store_explicit(magic, VRL_SEG_MAGIC, memory_order_release);
	return true;
}

/* Whether what vrld published is still there: the config in force in its
 * area, and the head of every window limit's ring area. */
static bool published_intact(const struct vrl_seg *s)
{
	const struct vrl_seg_config *area =
		vrl_view_cfg(&s->view, atomic_load_explicit(&s->hdr->active_cfg,
							    memory_order_relaxed));

	if (atomic_load_explicit(&area->seq, memory_order_relaxed) == 0 ||
	    area->generation != s->gen)
		return false;
	for (uint32_t i = 0; i < s->cfg->nlimits; i++) {
		if (!vrl_kind_area_intact(&s->view, &s->cfg->limits[i]))
			return false;
	}
	return true;
}

int vrl_seg_shrunk(struct vrl_seg *s, struct stat *st)
{
	if (fstat(s->lock_fd, st) != 0)
		return -errno;
	if (st->st_size < 0 || (uint64_t)st->st_size < s->size)
		return 1;
	/* a shrink undone before vrld looked still wiped what lay past the
	 * cut: vrld's mapping faulted on it, or what vrld wrote is gone */
	return vrl_guard_damaged(vrl_guard_state(s->guard)) || !published_intact(s) ? 2 : 0;
}

/* Free the rings of each window limit whose area head a cut wiped. */
static void regrow_areas(const struct vrl_seg_view *v, const struct vrl_seg_config *cfg)
{
	for (uint32_t i = 0; i < cfg->nlimits; i++)
		vrl_kind_area_init(v, &cfg->limits[i], false);
}

int vrl_seg_regrow(struct vrl_seg *s, uint64_t *state)
{
	static const uint64_t zero;

	/* damaged until reopened: vrld's other threads (the checkpointer)
	 * must not take what they read now for the segment */
	vrl_guard_damage(s->guard);
	*state = vrl_guard_state(s->guard);
	/* no worker heals before the repair is done: the magic goes first, in
	 * the object itself (vrld's own mapping may be zero pages now) */
	if (pwrite(s->lock_fd, &zero, sizeof(zero), offsetof(struct vrl_seg_header, magic)) !=
	    (ssize_t)sizeof(zero))
		return errno ? -errno : -EIO;
	if (ftruncate(s->lock_fd, (off_t)s->size) != 0)
		return -errno;
	if (vrl_guard_heal(s->guard, s->lock_fd, s->size, false) != 0)
		return -EIO;
	/* what the cut wiped, from vrld's own copies: the header's words (the
	 * magic stays 0) and the window rings; the config is the caller's to
	 * publish anew, through the path its other readers know (vrld_prod) */
	write_layout(s->hdr, &s->geom);
	regrow_areas(&s->view, s->cfg);
	return 0;
}

bool vrl_seg_reopen(struct vrl_seg *s, uint64_t state)
{
	/* release: as at creation, the magic goes last; workers heal on it */
	atomic_store_explicit((_Atomic uint64_t *)&s->hdr->magic, VRL_SEG_MAGIC,
			      memory_order_release);
	return vrl_guard_healed(s->guard, state);
}

/* Free every ring of every window limit of @cfg (a fresh, zeroed segment). */
static void init_areas(const struct vrl_seg_view *v, const struct vrl_seg_config *cfg)
{
	for (uint32_t i = 0; i < cfg->nlimits; i++)
		vrl_kind_area_init(v, &cfg->limits[i], true);
}

/* Map the object read-write, its SIGBUS guard registered before any read. */
static int map_fd(int fd, uint64_t size, struct vrl_seg *out)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	out->guard = vrl_guard_add(p, size, PROT_READ | PROT_WRITE);
	if (!out->guard) {
		munmap(p, size);
		return -EMFILE;
	}
	out->hdr = p;
	return 0;
}

static void unmap(struct vrl_seg *s, uint64_t size)
{
	vrl_guard_remove(s->guard);
	s->guard = NULL;
	munmap(s->hdr, size);
	s->hdr = NULL;
}

static void forget_configs(struct vrl_seg *s)
{
	free(s->cfg);
	free(s->prev);
	s->cfg = s->prev = NULL;
}

static int create(const struct vrl_seg_spec *spec, const struct vrl_seg_config *cfg,
		  const struct vrl_seg_geometry *g, struct vrl_seg *out)
{
	int fd = shm_open(spec->name, O_RDWR | O_CREAT | O_EXCL, spec->mode & 0777);
	int rc = 0;

	if (fd < 0)
		return -errno;
	/* shm_open applies the umask; the config's mode is meant exactly */
	if (fchmod(fd, spec->mode & 0777) != 0 ||
	    (spec->gid != (gid_t)-1 && fchown(fd, (uid_t)-1, spec->gid) != 0) ||
	    ftruncate(fd, (off_t)g->size) != 0)
		rc = -errno;
	/* a fresh object: no one else can hold its locks yet (a process that
	 * opened it this instant may, and then this vrld gives it up) */
	if (rc == 0 && (flock(fd, LOCK_EX | LOCK_NB) != 0 || vrl_seg_lock_pid(fd, true) != 0))
		rc = errno ? -errno : -EBUSY;
	if (rc == 0)
		rc = map_fd(fd, g->size, out);
	if (rc == 0) {
		out->size = g->size;
		vrl_seg_view_init(&out->view, out->hdr, g);
		out->gen = 0;
		out->geom = *g;
		format(out->hdr, g);
		init_areas(&out->view, cfg);
		rc = vrl_seg_publish(out, cfg);
		if (rc)
			unmap(out, g->size);
	}
	if (rc) {
		close(fd);
		shm_unlink(spec->name);
		return rc;
	}
	out->adopted = false;
	out->locked = true;
	out->lock_fd = fd;
	/* release: the magic is the last word written; pairs with the
	 * acquire load in vrl_open, which then sees a whole segment */
	atomic_store_explicit((_Atomic uint64_t *)&out->hdr->magic, VRL_SEG_MAGIC,
			      memory_order_release);
	return 0;
}

/* Why a segment of @size bytes is not the one this config needs, in @why.
 * The header is read with pread: a mapping of an object that someone may
 * shrink meanwhile would fault. */
static void explain_mismatch(int fd, const struct vrl_seg_spec *spec, uint64_t size,
			     const struct vrl_seg_geometry *g, char *why, size_t whylen)
{
	struct vrl_seg_header hb, *h = NULL;

	if (size >= sizeof(hb) && pread(fd, &hb, sizeof(hb), 0) == (ssize_t)sizeof(hb))
		h = &hb;
	if (h && h->magic == VRL_SEG_MAGIC && h->format != VRL_SEG_FORMAT)
		snprintf(why, whylen, "segment %s is of format %u, made by another version of "
			 "vrl; this vrld makes format %u", spec->name, h->format, VRL_SEG_FORMAT);
	else if (h && h->magic != VRL_SEG_MAGIC)
		snprintf(why, whylen, "segment %s is not a vrl segment (or a half-made one)",
			 spec->name);
	else if (h && h->keys_configured == g->keys && h->size == size &&
		 (h->gstatus_off != 0) != (g->gstatus_off != 0))
		snprintf(why, whylen, "segment %s was made %s a global: section, and holds %s "
			 "global status area; restart vrld with a fresh segment (--replace)",
			 spec->name, g->gstatus_off ? "without" : "with",
			 g->gstatus_off ? "no" : "a");
	else if (h && h->keys_configured == g->keys && h->size == size)
		vrl_upkeep_windows_resized(g->size, size, why, whylen);   /* as a reload says it */
	else
		snprintf(why, whylen, "segment %s has %llu bytes; this config needs %llu "
			 "(segment.keys changed?)", spec->name, (unsigned long long)size,
			 (unsigned long long)g->size);
}

/*
 * Take the segment's locks on @fd: the flock that keeps it to one vrld, and
 * the record lock by which vrlctl knows vrld's pid. -EBUSY, naming the
 * holder when the kernel can, when another process holds either.
 */
static int lock_segment(int fd, const struct vrl_seg_spec *spec, char *why, size_t whylen)
{
	pid_t holder;

	if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
		if (vrl_seg_lock_pid(fd, true) == 0)
			return 0;
		if (errno != EAGAIN && errno != EACCES)
			return -errno;
	} else if (errno != EWOULDBLOCK) {
		return -errno;
	}
	holder = vrl_seg_lock_pid(fd, false);
	if (holder > 0)
		snprintf(why, whylen, "segment %s is served by another vrld (pid %d holds the "
			 "segment's lock)", spec->name, (int)holder);
	else
		snprintf(why, whylen, "segment %s is served by another vrld (it holds the "
			 "segment's lock)", spec->name);
	return -EBUSY;
}

/* Whether the layout a header showed is the one vrld computed. */
static bool same_layout(const struct vrl_seg_geometry *a, const struct vrl_seg_geometry *b)
{
	return a->cfg_off[0] == b->cfg_off[0] && a->cfg_off[1] == b->cfg_off[1] &&
	       a->holder_off == b->holder_off && a->nholders == b->nholders &&
	       a->slot_off == b->slot_off && a->nslots == b->nslots &&
	       a->event_off == b->event_off && a->nevents == b->nevents &&
	       a->mark_off == b->mark_off && a->gstatus_off == b->gstatus_off &&
	       a->size == b->size;
}

/*
 * The active config of an adopted segment, copied and checked as a client
 * checks it (names terminated, counts in range, window areas in bounds):
 * vrld renotes the keys written under it, by name. Returns it, or NULL.
 */
static struct vrl_seg_config *read_active(const struct vrl_seg_view *v)
{
	struct vrl_snapshot *snap = malloc(sizeof(*snap));
	struct vrl_seg_config *cfg = calloc(1, sizeof(*cfg));

	if (!snap || !cfg || vrl_snapshot_read(v, snap) != 0) {
		free(snap);
		free(cfg);
		return NULL;
	}
	cfg->generation = snap->generation;
	cfg->nlimits = snap->nlimits;
	cfg->flags = snap->flags;
	memcpy(cfg->source, snap->source, sizeof(cfg->source));
	for (uint32_t i = 0; i < snap->nlimits; i++)
		cfg->limits[i] = snap->limits[i].seg;
	free(snap);
	return cfg;
}

/*
 * Map, check and take over an existing segment (vrld's side of adoption).
 * The config it brings is checked and published by vrl_seg_reload(), as a
 * reload's is, against the config the segment holds: what a reload refuses
 * (a window layout, a kind or a quota calendar change), adoption refuses
 * too, with the same words, and what a reload keeps (epochs, fills, quota
 * counts), adoption keeps.
 */
static int adopt_mapped(int fd, const struct vrl_seg_spec *spec, const struct vrl_seg_config *cfg,
			const struct vrl_seg_geometry *g, struct vrl_seg *out, char *why,
			size_t whylen)
{
	struct vrl_seg_geometry seen;
	int rc = vrl_seg_validate(out->hdr, g->size, &seen);

	if (rc == 0 && !same_layout(&seen, g))
		rc = VRL_EFORMAT;
	if (rc == VRL_EFORMAT && out->hdr->format != VRL_SEG_FORMAT) {
		/* the same size, another format: say which, as for another size */
		explain_mismatch(fd, spec, g->size, g, why, whylen);
		return -EEXIST;
	}
	if (rc) {
		snprintf(why, whylen, "segment %s: %s", spec->name, vrl_strerror(rc));
		return -EEXIST;
	}
	/* from here on vrld knows the layout from its own computation */
	out->size = g->size;
	out->geom = *g;
	vrl_seg_view_init(&out->view, out->hdr, g);
	out->prev = read_active(&out->view);
	if (!out->prev) {
		snprintf(why, whylen, "segment %s: its config area is damaged or was never "
			 "published", spec->name);
		return -EEXIST;
	}
	out->gen = atomic_load_explicit(&out->hdr->config_gen, memory_order_relaxed);
	if (out->gen < out->prev->generation)
		out->gen = out->prev->generation;
	vrl_kt_repair_bracket(out->hdr, UINT64_MAX);
	/* a vrld that died in its conversion pass left the count odd; its
	 * conversions are all done (it is gone), and vrl_seg_reload's pass
	 * below converts what it left */
	if (atomic_load(&out->hdr->rate_conversions) & 1)
		atomic_fetch_add(&out->hdr->rate_conversions, 1);
	rc = vrl_seg_reload(out, cfg, why, whylen);
	if (rc) {
		forget_configs(out);
		/* a config this segment cannot take: a fresh one (--replace) can */
		return rc == -EINVAL ? -EEXIST : rc;
	}
	return 0;
}

/*
 * Anyone may create a shm object under the segment's name before vrld
 * starts, keep owning it (chmod it 0666 at will) and fill it as they like:
 * vrld adopts only an object of its own user. -EPERM, saying whose it is,
 * otherwise; --replace does not remove it either.
 */
static int check_owner(const struct vrl_seg_spec *spec, const struct stat *st, char *why,
		       size_t whylen)
{
	char owner[64], me[64];

	if (S_ISREG(st->st_mode) && st->st_uid == geteuid())
		return 0;
	vrl_user_name(st->st_uid, owner, sizeof(owner));
	vrl_user_name(geteuid(), me, sizeof(me));
	snprintf(why, whylen, "segment %s (/dev/shm%s) is owned by uid %u (%s), mode %04o, not "
		 "by vrld's user (uid %u, %s): someone else made it before vrld, and may still "
		 "hold it. Check who made it, remove it (rm /dev/shm%s, as root or its owner) "
		 "and start vrld again; --replace does not remove it: vrld never deletes what "
		 "it does not own (and in the sticky /dev/shm only root or the owner can)",
		 spec->name, spec->name, (unsigned)st->st_uid, owner,
		 (unsigned)(st->st_mode & 07777), (unsigned)geteuid(), me, spec->name);
	return -EPERM;
}

static int adopt(const struct vrl_seg_spec *spec, const struct vrl_seg_config *cfg,
		 const struct vrl_seg_geometry *g, struct vrl_seg *out, char *why, size_t whylen)
{
	struct stat st;
	int fd = shm_open(spec->name, O_RDWR, 0);
	int rc = 0;

	/* a foreign object we may not even open is still one to name */
	if (fd < 0 && errno == EACCES)
		fd = shm_open(spec->name, O_RDONLY, 0);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0)
		rc = -errno;
	if (rc == 0)
		rc = check_owner(spec, &st, why, whylen);
	if (rc == 0)
		rc = lock_segment(fd, spec, why, whylen);
	if (rc == 0 && (uint64_t)st.st_size != g->size) {
		explain_mismatch(fd, spec, (uint64_t)st.st_size, g, why, whylen);
		rc = -EEXIST;
	}
	if (rc == 0)
		rc = map_fd(fd, g->size, out);
	if (rc == 0 && (spec->mode || spec->gid != (gid_t)-1)) {
		if (fchmod(fd, spec->mode & 0777) != 0 ||
		    (spec->gid != (gid_t)-1 && fchown(fd, (uid_t)-1, spec->gid) != 0))
			rc = -errno;
		if (rc)
			unmap(out, g->size);
	}
	if (rc == 0) {
		rc = adopt_mapped(fd, spec, cfg, g, out, why, whylen);
		if (rc)
			unmap(out, g->size);
	}
	if (rc) {
		close(fd);
		return rc;
	}
	out->adopted = true;
	out->locked = true;
	out->lock_fd = fd;
	return 0;
}

int vrl_seg_open_or_create(const struct vrl_seg_spec *spec, const struct vrl_seg_config *cfg,
			   bool replace, struct vrl_seg *out, char *why, size_t whylen)
{
	struct vrl_seg_geometry g;
	struct vrl_seg_config *lay = malloc(sizeof(*lay));
	int rc;

	why[0] = '\0';
	memset(out, 0, sizeof(*out));
	out->lock_fd = -1;
	if (!lay)
		return -ENOMEM;
	/* the published copy carries where each window limit's rings are */
	*lay = *cfg;
	rc = vrl_seg_geometry_cfg(spec->keys, lay, &g);
	if (rc) {
		free(lay);
		return rc;
	}
	for (int tries = 0; tries < 3; tries++) {
		rc = create(spec, lay, &g, out);
		if (rc != -EEXIST)
			break;
		rc = adopt(spec, lay, &g, out, why, whylen);
		if (rc == -ENOENT)
			continue; /* removed between the two calls */
		if (rc != -EEXIST || !replace)
			break;
		shm_unlink(spec->name);
	}
	free(lay);
	return rc;
}

int vrl_limit_set_rate(struct vrl_seg_limit *l, uint64_t count, uint64_t period_ns,
		       uint64_t burst)
{
	return vrl_rate_set(l, count, period_ns, burst);
}

void vrl_seg_close(struct vrl_seg *s)
{
	if (s->hdr)
		unmap(s, s->size);
	if (s->locked)
		close(s->lock_fd);
	s->locked = false;
	forget_configs(s);
}

int vrl_seg_unlink(const char *name)
{
	return shm_unlink(name) == 0 ? 0 : -errno;
}
