/*
 * upkeep.c - segment creation, publication and maintenance (vrld's side).
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

#include "upkeep.h"

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
#include "guard.h"
#include "keytable.h"
#include "window.h"
#include "quota.h"

/* The name a limit's keys are hashed from: its pool, or its own name. */
static const char *key_identity(const struct vrl_seg_limit *l)
{
	return l->pool[0] ? l->pool : l->name;
}

/* The wall clock that quota periods are judged by (client.h: tests set it). */
static uint64_t realtime_now(void)
{
	return vrl__realtime_ns();
}

/* The limit of @cfg whose keys @l's are: the same identity and kind. */
static const struct vrl_seg_limit *same_keys(const struct vrl_seg_config *cfg,
					     const struct vrl_seg_limit *l)
{
	for (uint32_t i = 0; cfg && i < cfg->nlimits; i++) {
		const struct vrl_seg_limit *o = &cfg->limits[i];

		if (o->kind == l->kind && strncmp(key_identity(o), key_identity(l),
						  VRL_NAME_MAX) == 0)
			return o;
	}
	return NULL;
}

/*
 * Fill @l's reload record from @old, the same keys' limit in the config in
 * force (NULL: none): a rate limit keeps its epoch while its (T, burst)
 * stay, and takes the next one, noting the old (T, burst), when they
 * change (gcra.h); a quota notes its calendar and anchor, and when, when
 * they change (quota.h). @old is vrld's own copy of the config in force
 * (struct vrl_seg.cfg), or before its first publish into an adopted
 * segment, the segment's as adoption read and checked it: values that do
 * not make a valid limit are dropped all the same.
 */
static void carry_reload(struct vrl_seg_limit *l, const struct vrl_seg_limit *old,
			 uint64_t now_rt)
{
	struct vrl_gcra a, b;
	uint64_t from, to;

	l->rate_epoch = 0;
	l->prev_emission_ns = l->prev_burst = 0;
	l->prev_calendar = l->prev_anchor = 0;
	l->calendar_changed_rt = 0;
	if (!old)
		return;
	if (l->kind == VRL_KIND_RATE &&
	    vrl_gcra_init(&a, old->count, old->period_ns, old->burst) == 0 &&
	    vrl_gcra_init(&b, l->count, l->period_ns, l->burst) == 0) {
		l->rate_epoch = old->rate_epoch;
		if (a.emission_ns != b.emission_ns || a.burst != b.burst) {
			l->rate_epoch++;
			l->prev_emission_ns = a.emission_ns;
			l->prev_burst = a.burst;
		} else if (vrl_gcra_init(&a, 1, old->prev_emission_ns, old->prev_burst) == 0) {
			l->prev_emission_ns = old->prev_emission_ns;
			l->prev_burst = old->prev_burst;
		}
	}
	if (l->kind != VRL_KIND_QUOTA)
		return;
	if (old->calendar != l->calendar || old->anchor != l->anchor) {
		l->prev_calendar = old->calendar;
		l->prev_anchor = old->anchor;
		l->calendar_changed_rt = now_rt;
	} else {
		l->prev_calendar = old->prev_calendar;
		l->prev_anchor = old->prev_anchor;
		l->calendar_changed_rt = old->calendar_changed_rt;
	}
	if (l->calendar_changed_rt && vrl_quota_transition(l, &from, &to) != 0)
		l->calendar_changed_rt = 0;   /* not a calendar: forget it */
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
		if (__builtin_add_overflow(off, (bytes + 4095) / 4096 * 4096, &off))
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
	/* W0: odd first; the release fence orders it before the data stores */
	atomic_store_explicit(&area->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	area->generation = gen;
	area->nlimits = cfg->nlimits;
	area->flags = cfg->flags;
	area->loaded_realtime_ns = vrl_wall_ns();
	memcpy(area->source, cfg->source, sizeof(area->source));
	memcpy(area->limits, cfg->limits, sizeof(area->limits));
	/* W1 release: pairs with R0, the data is complete before even */
	atomic_store_explicit(&area->seq, seq + 2, memory_order_release);
	atomic_store_explicit(&h->active_cfg, next, memory_order_relaxed);
	/* P1 release: pairs with C1, area and active_cfg before the new gen */
	atomic_store_explicit(&h->config_gen, gen, memory_order_release);
}

/*
 * The config a new one is judged against and carries its reload records
 * from: vrld's own copy of the one in force, or, before vrld's first
 * publish into a segment it adopted, the segment's, as adoption read and
 * checked it (NULL for a segment vrld makes).
 */
static const struct vrl_seg_config *in_force(const struct vrl_seg *s)
{
	return s->cfg ? s->cfg : s->prev;
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
		carry_reload(&now->limits[i], same_keys(in_force(s), &now->limits[i]),
			     realtime_now());
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
		    h->mark_off == g->mark_off;
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
		const struct vrl_seg_limit *l = &s->cfg->limits[i];
		const struct vrl_window_area *a;

		if (l->kind != VRL_KIND_WINDOW || !l->area_off)
			continue;
		a = vrl_seg_area(&s->view, l);
		if (a->n == 0 && a->nkeys == 0)
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
	for (uint32_t i = 0; i < cfg->nlimits; i++) {
		const struct vrl_seg_limit *l = &cfg->limits[i];
		struct vrl_window_area *a;

		if (l->kind != VRL_KIND_WINDOW || !l->area_off)
			continue;
		a = vrl_seg_area(v, l);
		/* a head that survived keeps its stack: rings in use stay theirs */
		if (a->n == 0 && a->nkeys == 0)
			vrl_window_area_init(a, l->count, l->area_keys);
	}
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
	for (uint32_t i = 0; i < cfg->nlimits; i++) {
		const struct vrl_seg_limit *l = &cfg->limits[i];

		if (l->kind == VRL_KIND_WINDOW && l->area_off)
			vrl_window_area_init(vrl_seg_area(v, l), l->count, l->area_keys);
	}
}

int vrl_seg_areas_match(const struct vrl_seg_config *now, const struct vrl_seg_config *next,
			char *why, size_t whylen)
{
	uint32_t n = now->nlimits > next->nlimits ? now->nlimits : next->nlimits;

	for (uint32_t i = 0; i < n && i < VRL_MAX_LIMITS; i++) {
		const struct vrl_seg_limit *a = &now->limits[i], *b = &next->limits[i];
		bool wa = i < now->nlimits && a->kind == VRL_KIND_WINDOW;
		bool wb = i < next->nlimits && b->kind == VRL_KIND_WINDOW;

		if (!wa && !wb)
			continue;
		if (wa && wb && strcmp(a->name, b->name) == 0 && a->count == b->count &&
		    a->area_keys == b->area_keys && a->area_off == b->area_off)
			continue;
		snprintf(why, whylen, "window limit %s (limit %u) changed its place, limit or "
			 "keys: its rings are laid out in the segment, so this needs a vrld "
			 "restart with a fresh segment (--replace)", wa ? a->name : b->name, i);
		return -EINVAL;
	}
	return 0;
}

/*
 * Keys outlive a reload: they are found by the name they were hashed from,
 * so a limit that keeps its name keeps its state. That state word means
 * something different for each kind (a TAT, a period and count, a count
 * held, a ring hint): a kind change under the same name would misread it.
 */
static int kinds_match(const struct vrl_seg_config *now, const struct vrl_seg_config *next,
		       char *why, size_t whylen)
{
	static const char *const kinds[] = { "?", "rate", "gate", "window", "quota", "slots" };

	for (uint32_t i = 0; i < next->nlimits; i++)
		for (uint32_t j = 0; j < now->nlimits; j++) {
			const struct vrl_seg_limit *b = &next->limits[i], *a = &now->limits[j];

			if (strcmp(key_identity(a), key_identity(b)) != 0 || a->kind == b->kind)
				continue;
			snprintf(why, whylen, "limit %s changes kind from %s to %s under the same "
				 "name: its keys' state would be misread; give it a new name, or "
				 "restart vrld with a fresh segment (--replace)", b->name,
				 kinds[a->kind < 6 ? a->kind : 0], kinds[b->kind < 6 ? b->kind : 0]);
			return -EINVAL;
		}
	return 0;
}

/* @ns (CLOCK_REALTIME) as a UTC date, YYYY-MM-DD. */
static void utc_date(uint64_t ns, char out[16])
{
	time_t t = (time_t)(ns / 1000000000u);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(out, 16, "%Y-%m-%d", &tm) == 0)
		snprintf(out, 16, "?");
}

/*
 * A quota key counts only its current period. A reload that changes a
 * quota's calendar or anchor carries that count into the new calendar's
 * period (quota.h), which is sound only when the new period began no
 * earlier than the old one: else units counted before, in the new period,
 * would be unknown to it. Such a reload is refused at @now_rt.
 */
static int calendars_match(const struct vrl_seg_config *now, const struct vrl_seg_config *next,
			   uint64_t now_rt, char *why, size_t whylen)
{
	for (uint32_t i = 0; i < next->nlimits && i < VRL_MAX_LIMITS; i++) {
		const struct vrl_seg_limit *b = &next->limits[i], *a;
		uint64_t a_start, b_start, b_end;
		char d1[16], d2[16], d3[16];

		if (b->kind != VRL_KIND_QUOTA || !(a = same_keys(now, b)) ||
		    (a->calendar == b->calendar && a->anchor == b->anchor))
			continue;
		if (vrl_quota_period(a, now_rt, NULL, &a_start, NULL) != 0 ||
		    vrl_quota_period(b, now_rt, NULL, &b_start, &b_end) != 0 || b_start >= a_start)
			continue;
		if (b_end == UINT64_MAX) {
			snprintf(why, whylen, "limit %s becomes a once quota: it would count every "
				 "unit since its keys began, but they hold only the current "
				 "period's count; give it a new name (fresh counts)", b->name);
			return -EINVAL;
		}
		utc_date(b_start, d1);
		utc_date(a_start, d2);
		utc_date(b_end, d3);
		snprintf(why, whylen, "limit %s changes its calendar or anchor: its period would "
			 "begin on %s, before the period its keys count from (%s), so the units "
			 "between would be unknown; apply it on or after %s, or give the limit a "
			 "new name (fresh counts)", b->name, d1, d2, d3);
		return -EINVAL;
	}
	return 0;
}

/* Why a config whose window rings need @need bytes of segment, not the
 * @have it has, cannot be taken: by a reload, or by vrld adopting it. */
static void windows_resized(uint64_t need, uint64_t have, char *why, size_t whylen)
{
	snprintf(why, whylen, "the segment would need %llu bytes instead of %llu: a window "
		 "limit changed; restart vrld with a fresh segment (--replace)",
		 (unsigned long long)need, (unsigned long long)have);
}

int vrl_seg_reload_check(const struct vrl_seg *s, const struct vrl_seg_config *cfg,
			 char *why, size_t whylen)
{
	struct vrl_seg_config *next = malloc(sizeof(*next));
	const struct vrl_seg_config *now;
	struct vrl_seg_geometry g;
	int rc;

	why[0] = '\0';
	if (!next)
		return -ENOMEM;
	*next = *cfg;
	rc = vrl_seg_geometry_cfg(s->view.keys, next, &g);
	if (rc) {
		snprintf(why, whylen, "cannot lay out the window rings: %s", strerror(-rc));
	} else if (g.size != s->view.size) {
		windows_resized(g.size, s->view.size, why, whylen);
		rc = -EINVAL;
	} else if ((now = in_force(s)) != NULL) {
		/* vrld's own copy of the config in force, not the segment's */
		rc = vrl_seg_areas_match(now, next, why, whylen);
		if (rc == 0)
			rc = kinds_match(now, next, why, whylen);
		if (rc == 0)
			rc = calendars_match(now, next, realtime_now(), why, whylen);
	}
	free(next);
	return rc;
}

int vrl_seg_reload(struct vrl_seg *s, const struct vrl_seg_config *cfg, char *why, size_t whylen)
{
	struct vrl_seg_config *next = malloc(sizeof(*next));
	struct vrl_seg_geometry g;
	int rc;

	why[0] = '\0';
	if (!next)
		return -ENOMEM;
	rc = vrl_seg_reload_check(s, cfg, why, whylen);
	if (rc == 0) {
		/* the published copy carries where each window limit's rings are */
		*next = *cfg;
		vrl_seg_geometry_cfg(s->view.keys, next, &g);
		rc = vrl_seg_publish(s, next);
		if (rc) {
			snprintf(why, whylen, "out of memory");
		} else {
			vrl_seg_renote(s, 0, s->view.nslots);
			vrl_seg_settle(s, 0, s->view.nslots);
		}
	}
	free(next);
	return rc;
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
	else if (h && h->keys_configured == g->keys && h->size == size)
		windows_resized(g->size, size, why, whylen);   /* as a reload says it */
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
	       a->mark_off == b->mark_off && a->size == b->size;
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

static void user_name(uid_t uid, char *out, size_t cap)
{
	struct passwd pw, *res = NULL;
	char buf[2048];

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		snprintf(out, cap, "%s", res->pw_name);
	else
		snprintf(out, cap, "no such user");
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
	user_name(st->st_uid, owner, sizeof(owner));
	user_name(geteuid(), me, sizeof(me));
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
	struct vrl_gcra g;
	int rc = vrl_gcra_init(&g, count, period_ns, burst);

	if (rc)
		return rc;
	l->kind = VRL_KIND_RATE;
	l->count = count;
	l->period_ns = period_ns;
	l->burst = burst;
	l->emission_ns = g.emission_ns;
	l->tolerance_ns = g.tolerance_ns;
	return 0;
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

/*
 * Evict window key @i if every position of its ring has been free for
 * @idle_ns at @now (every grant older than W + idle_ns; W2 in window.c),
 * and give its ring back. A ring the slot never got is none. @l is vrld's
 * own copy of the limit: its area, count and rings are what vrld laid out.
 */
static int sweep_window(const struct vrl_seg_view *v, const struct vrl_seg_limit *l, uint64_t i,
			uint64_t now, uint64_t idle_ns)
{
	struct vrl_seg_slot *s = &v->slots[i];
	/* W2 acquire: pairs with the takers' commit, their positions are seen */
	uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
	uint32_t aux = atomic_load_explicit(&s->aux, memory_order_relaxed);
	void *area = vrl_seg_area(v, l);

	if (st == VRL_STATE_EVICTED || l->area_off == 0 || aux > l->area_keys)
		return 0;
	if (aux) {
		struct vrl_window_ref r = {
			.state = &s->state, .n = l->count, .w = l->period_ns,
			.ring = vrl_window_ring(area, l->count, l->area_keys, aux - 1),
		};

		if (!vrl_window_idle(&r, now >= idle_ns ? now - idle_ns : 0))
			return 0;
	}
	if (!vrl_kt_evict(v, i, st, now))
		return 0;
	/* R2 acq_rel: whoever swaps a ring out of aux gives it back, once;
	 * a client's aux CAS that reads this sees the eviction (R1) */
	aux = atomic_exchange_explicit(&s->aux, 0, memory_order_acq_rel);
	if (aux && aux <= l->area_keys)
		vrl_window_ring_put(area, l->count, l->area_keys, aux - 1);
	return 1;
}

/*
 * True when a key's state word @st carries nothing worth keeping at @now
 * (monotonic) and @now_rt (wall clock), by the kind its slot noted. A rate
 * is idle when its bucket has been full for @idle_ns; a quota never within
 * its period (unless nothing is used: a fresh key is the same), a once
 * quota never; slots never while a unit is held.
 */
static bool idle(uint32_t note, uint64_t st, uint64_t now, uint64_t now_rt, uint64_t idle_ns)
{
	struct vrl_seg_limit q = { .kind = VRL_KIND_QUOTA };
	uint64_t pid;

	switch (VRL_NOTE_KIND(note)) {
	case VRL_KIND_QUOTA:
		if (vrl_quota_word_used(st) == 0)
			return true;
		q.calendar = VRL_NOTE_CALENDAR(note);
		q.anchor = VRL_NOTE_ANCHOR(note);
		if (q.calendar == VRL_CAL_ONCE ||
		    vrl_quota_period(&q, now_rt, &pid, NULL, NULL) != 0)
			return false;
		return !vrl_quota_counts(st, pid);
	case VRL_KIND_SLOTS:
		return st == 0;
	default:
		/* every other kind's idle state is "full": for GCRA, TAT long past,
		 * whatever its epoch (a full bucket is full under any parameters) */
		return st == 0 || vrl_gcra_tat(st) + idle_ns <= now;
	}
}

uint64_t vrl_seg_sweep(struct vrl_seg *s, uint64_t first, uint64_t count, uint64_t now,
		       uint64_t idle_ns)
{
	return vrl_seg_sweep_by(s, first, count, now, vrl_wall_ns(), idle_ns, NULL);
}

uint64_t vrl_seg_sweep_at(struct vrl_seg *s, uint64_t first, uint64_t count, uint64_t now,
			  uint64_t now_rt, uint64_t idle_ns)
{
	return vrl_seg_sweep_by(s, first, count, now, now_rt, idle_ns, NULL);
}

/* Count one eviction of the key noted @note against its limit of @cfg. */
static void count_eviction(uint64_t *by_limit, const struct vrl_seg_config *cfg, uint32_t note)
{
	int li = vrl_note_limit(note, cfg->generation, cfg->nlimits);

	if (by_limit && li >= 0)
		by_limit[li]++;
}

/* Slots [first, end) of a chunk of @count from @first, within the table. */
static uint64_t chunk_end(const struct vrl_seg_view *v, uint64_t first, uint64_t count)
{
	return first >= v->nslots || count > v->nslots - first ? v->nslots : first + count;
}

uint64_t vrl_seg_sweep_by(struct vrl_seg *s, uint64_t first, uint64_t count, uint64_t now,
			  uint64_t now_rt, uint64_t idle_ns, uint64_t by_limit[VRL_MAX_LIMITS])
{
	const struct vrl_seg_view *v = &s->view;
	const struct vrl_seg_config *cfg = s->cfg;
	struct vrl_seg_slot *slots = v->slots;
	uint64_t end = chunk_end(v, first, count), evicted = 0;

	/* the keys of this chunk carry the current numbering before they are
	 * counted, and the current parameters (a write that an acquire in
	 * flight across a reload made with the ones before) */
	vrl_seg_renote(s, first, count);
	vrl_seg_settle(s, first, count);
	for (uint64_t i = first; i < end; i++) {
		uint64_t t = atomic_load_explicit(&slots[i].tag, memory_order_acquire);
		uint64_t st = atomic_load_explicit(&slots[i].state, memory_order_relaxed);
		uint32_t note = atomic_load_explicit(&slots[i].limit, memory_order_relaxed);

		if (!(t & VRL_TAG_LIVE) || (t & VRL_TAG_PENDING))
			continue;
		if (VRL_NOTE_KIND(note) == VRL_KIND_WINDOW) {
			/* a window limit keeps its index over reloads (vrl_seg_reload) */
			uint32_t lim = VRL_NOTE_INDEX(note);

			if (lim < cfg->nlimits && cfg->limits[lim].kind == VRL_KIND_WINDOW &&
			    sweep_window(v, &cfg->limits[lim], i, now, idle_ns)) {
				evicted++;
				if (by_limit)
					by_limit[lim]++;
			}
			continue;
		}
		if (st == VRL_STATE_EVICTED || !idle(note, st, now, now_rt, idle_ns) ||
		    !vrl_kt_evict(v, i, st, now))
			continue;
		evicted++;
		count_eviction(by_limit, cfg, note);
	}
	vrl_kt_reclaim(v, first, count);
	return evicted;
}

int vrl_seg_renumber(const struct vrl_seg_config *from, uint32_t i,
		     const struct vrl_seg_config *to)
{
	const struct vrl_seg_limit *a = &from->limits[i];
	int pooled = -1;

	for (uint32_t j = 0; j < to->nlimits; j++) {
		const struct vrl_seg_limit *b = &to->limits[j];

		if (b->kind != a->kind)
			continue;
		if (strcmp(a->name, b->name) == 0)
			return (int)j;
		if (pooled < 0 && strcmp(key_identity(a), key_identity(b)) == 0)
			pooled = (int)j;
	}
	return pooled;
}

uint64_t vrl_seg_renote(struct vrl_seg *s, uint64_t first, uint64_t count)
{
	const struct vrl_seg_config *to = s->cfg, *from = s->prev;
	struct vrl_seg_slot *slots = s->view.slots;
	uint64_t end = chunk_end(&s->view, first, count), renoted = 0;
	uint32_t from_gen;

	/* vrld's own copies: the config in force and the one before it (the
	 * segment's, read and checked at adoption, or vrld's last) */
	if (!to || !from || from->generation == 0)
		return 0;
	from_gen = (uint32_t)from->generation & VRL_NOTE_GEN_MASK;
	if (from_gen == ((uint32_t)to->generation & VRL_NOTE_GEN_MASK))
		return 0;
	for (uint64_t i = first; i < end; i++) {
		struct vrl_seg_slot *sl = &slots[i];
		uint64_t t = atomic_load_explicit(&sl->tag, memory_order_acquire);
		uint32_t note = atomic_load_explicit(&sl->limit, memory_order_relaxed);
		uint32_t li = VRL_NOTE_INDEX(note);
		int to_li;

		if (!(t & VRL_TAG_LIVE) || (t & VRL_TAG_PENDING) || VRL_NOTE_GEN(note) != from_gen ||
		    li >= from->nlimits)
			continue;
		to_li = s->prev_map[li];
		if (to_li < 0)
			continue;   /* its limit is gone: the key ages out unattributed */
		/* relaxed: the note is read for attribution only, and a LIVE
		 * slot keeps its key while this thread (its only evictor) runs;
		 * the CAS leaves a note some inserter changed meanwhile alone */
		if (atomic_compare_exchange_strong_explicit(
			    &sl->limit, &note,
			    vrl_slot_note((uint32_t)to_li, &to->limits[to_li], to->generation),
			    memory_order_relaxed, memory_order_relaxed))
			renoted++;
	}
	return renoted;
}

/* What vrl_seg_settle() does to the keys of one limit. */
struct settle_rule {
	uint32_t kind;               /* 0: nothing to do */
	unsigned tag;                /* rate: the current epoch's tag */
	struct vrl_gcra cur, prev;   /* rate: parameters now and before (prev.burst 0: none) */
	uint64_t from, to;           /* quota: the calendar change (vrl_quota_transition) */
};

/* The rules of @cfg's limits; false when no key needs settling. */
static bool settle_rules(const struct vrl_seg_config *cfg, struct settle_rule *r)
{
	bool any = false;

	for (uint32_t i = 0; i < cfg->nlimits; i++) {
		const struct vrl_seg_limit *l = &cfg->limits[i];

		memset(&r[i], 0, sizeof(r[i]));
		if (l->kind == VRL_KIND_RATE && l->rate_epoch != 0 &&
		    vrl_gcra_init(&r[i].cur, l->count, l->period_ns, l->burst) == 0) {
			r[i].kind = VRL_KIND_RATE;
			r[i].tag = vrl_gcra_epoch_tag(l->rate_epoch);
			if (l->prev_burst &&
			    vrl_gcra_init(&r[i].prev, 1, l->prev_emission_ns, l->prev_burst) != 0)
				r[i].prev.burst = 0;
		} else if (l->kind == VRL_KIND_QUOTA &&
			   vrl_quota_transition(l, &r[i].from, &r[i].to) == 0) {
			r[i].kind = VRL_KIND_QUOTA;
		}
		any |= r[i].kind != 0;
	}
	return any;
}

/*
 * Convert rate key @s to the current epoch of @r (gcra.h). The first
 * conversion of a pass makes h->rate_conversions odd (*@open), before its
 * clock read; vrl_seg_settle() makes it even after the last.
 */
static bool settle_rate(struct vrl_seg_header *h, struct vrl_seg_slot *s,
			const struct settle_rule *r, bool *open)
{
	/* G1 acquire, as a client's look */
	uint64_t w = atomic_load_explicit(&s->state, memory_order_acquire);
	unsigned prev_tag = vrl_gcra_epoch_tag(r->tag + VRL_GCRA_TAGS - 1);

	for (;;) {
		uint64_t now, tat;

		if (w == VRL_STATE_EVICTED || w == 0 || vrl_gcra_tag(w) == r->tag)
			return false;
		if (!*open) {
			/* C1: odd before the clock read below; seq_cst orders it
			 * before the read and (release) before the CAS */
			atomic_fetch_add(&h->rate_conversions, 1);
			*open = true;
		}
		/* C1 (a): the clock is read after the word it converts */
		now = vrl_now_ns();
		tat = vrl_gcra_convert(vrl_gcra_tag(w) == prev_tag && r->prev.burst ? &r->prev : NULL,
				       &r->cur, vrl_gcra_tat(w), now);
		/* release (G1); acquire on failure, as the load above */
		if (atomic_compare_exchange_weak_explicit(&s->state, &w, vrl_gcra_word(r->tag, tat),
							  memory_order_release,
							  memory_order_acquire))
			return true;
	}
}

/* Carry quota key @s of @l's old calendar into the new one at @now_rt (quota.h). */
static bool settle_quota(struct vrl_seg_slot *s, const struct vrl_seg_limit *l,
			 const struct settle_rule *r, uint64_t now_rt)
{
	/* G1 acquire, as a client's look */
	uint64_t w = atomic_load_explicit(&s->state, memory_order_acquire), pid;

	if (vrl_quota_period(l, now_rt, &pid, NULL, NULL) != 0)
		return false;
	for (;;) {
		uint64_t next;

		if (w == VRL_STATE_EVICTED)
			return false;
		next = vrl_quota_carry(w, r->from, r->to, pid);
		if (next == w)
			return false;
		/* release (G1): a reader of the new word sees the new config */
		if (atomic_compare_exchange_weak_explicit(&s->state, &w, next,
							  memory_order_release,
							  memory_order_acquire))
			return true;
	}
}

uint64_t vrl_seg_settle(struct vrl_seg *s, uint64_t first, uint64_t count)
{
	/* vrld's own copy of the config in force: its epochs and the
	 * parameters before them are what vrld published, whatever the
	 * segment's config areas hold now */
	const struct vrl_seg_config *cfg = s->cfg;
	struct vrl_seg_header *h = s->hdr;
	struct vrl_seg_slot *slots = s->view.slots;
	uint64_t end = chunk_end(&s->view, first, count), settled = 0;
	uint64_t now_rt = realtime_now();
	struct settle_rule rules[VRL_MAX_LIMITS];
	bool open = false;

	if (!cfg || !settle_rules(cfg, rules))
		return 0;
	for (uint64_t i = first; i < end; i++) {
		struct vrl_seg_slot *sl = &slots[i];
		uint64_t t = atomic_load_explicit(&sl->tag, memory_order_acquire);
		int li;

		if (!(t & VRL_TAG_LIVE) || (t & VRL_TAG_PENDING))
			continue;
		/* relaxed: the note names the key's limit for this walk only; a
		 * LIVE slot keeps its key while this thread, its only evictor, runs.
		 * The index is bounded by vrld's copy (vrl_note_limit) */
		li = vrl_note_limit(atomic_load_explicit(&sl->limit, memory_order_relaxed),
				    cfg->generation, cfg->nlimits);
		if (li < 0)
			continue;
		if (rules[li].kind == VRL_KIND_RATE)
			settled += settle_rate(h, sl, &rules[li], &open);
		else if (rules[li].kind == VRL_KIND_QUOTA)
			settled += settle_quota(sl, &cfg->limits[li], &rules[li], now_rt);
	}
	/* C1: even again after the last conversion's CAS (seq_cst) */
	if (open)
		atomic_fetch_add(&h->rate_conversions, 1);
	return settled;
}

unsigned vrl_seg_reap_holders(struct vrl_seg *s)
{
	struct vrl_seg_holder *hs = s->view.holders;
	unsigned reaped = 0;

	for (uint64_t i = 0; i < s->view.nholders; i++) {
		int32_t pid = atomic_load_explicit(&hs[i].pid, memory_order_acquire);

		if (pid <= 0 || kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		/* its process slots first: each record is zeroed before its
		 * units move, so a vrld killed here never gives them twice.
		 * Only vrld evicts, in this same thread, so no slot changes
		 * owner between a record's tag check and its give-back. */
		for (unsigned j = 0; j < VRL_HOLD_MAX; j++)
			vrl_hold_give_back(&s->view, &hs[i].holds[j]);
		vrl_holder_fold(&s->view, &hs[i]);
		/* H1 release: the fold is done before the slot can be retaken */
		if (atomic_compare_exchange_strong_explicit(&hs[i].pid, &pid, 0,
							    memory_order_release,
							    memory_order_relaxed))
			reaped++;
	}
	return reaped;
}

void vrl_seg_note_reload(struct vrl_seg_header *h, const char *error)
{
	uint64_t seq = atomic_load_explicit(&h->reload_seq, memory_order_relaxed);
	/* odd first; the release fence orders it before the block's stores */
	atomic_store_explicit(&h->reload_seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	h->reload_count++;
	if (error && error[0])
		h->reload_refused++;
	h->reload_realtime_ns = vrl_wall_ns();
	snprintf(h->reload_error, sizeof(h->reload_error), "%s", error ? error : "");
	/* L1 release: the block is complete before the sequence is even */
	atomic_store_explicit(&h->reload_seq, seq + 2, memory_order_release);
}
