/*
 * admin.c - segment creation, publication and maintenance (vrld's side).
 */

#include "admin.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
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

/* The config in force in @h, or NULL when there is none worth reading (a
 * fresh segment, or an area vrld died writing). vrld is its only writer. */
static const struct vrl_seg_config *config_in_force(const struct vrl_seg_header *h)
{
	const struct vrl_seg_config *cfg =
		vrl_seg_cfg(h, atomic_load_explicit(&h->active_cfg, memory_order_relaxed));

	if (cfg->generation == 0 || (atomic_load_explicit(&cfg->seq, memory_order_relaxed) & 1u) ||
	    cfg->nlimits > VRL_MAX_LIMITS)
		return NULL;
	return cfg;
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
 * they change (quota.h). @old is read from the segment: values that do not
 * make a valid limit are dropped, never trusted.
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

void vrl_seg_publish(struct vrl_seg_header *h, const struct vrl_seg_config *cfg)
{
	unsigned next = atomic_load_explicit(&h->active_cfg, memory_order_relaxed) ^ 1u;
	const struct vrl_seg_config *old = config_in_force(h);
	struct vrl_seg_config *area = vrl_seg_cfg(h, next);
	uint64_t seq = atomic_load_explicit(&area->seq, memory_order_relaxed);
	uint64_t gen = atomic_load_explicit(&h->config_gen, memory_order_relaxed) + 1;
	struct timespec ts;

	/* W0: odd first; the release fence orders it before the data stores */
	atomic_store_explicit(&area->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	area->generation = gen;
	area->nlimits = cfg->nlimits;
	area->flags = cfg->flags;
	clock_gettime(CLOCK_REALTIME, &ts);
	area->loaded_realtime_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	memcpy(area->source, cfg->source, sizeof(area->source));
	memcpy(area->limits, cfg->limits, sizeof(area->limits));
	/* @old is the other area, untouched by the stores above */
	for (uint32_t i = 0; i < cfg->nlimits && i < VRL_MAX_LIMITS; i++)
		carry_reload(&area->limits[i], same_keys(old, &area->limits[i]), realtime_now());
	/* W1 release: pairs with R0, the data is complete before even */
	atomic_store_explicit(&area->seq, seq + 2, memory_order_release);
	atomic_store_explicit(&h->active_cfg, next, memory_order_relaxed);
	/* P1 release: pairs with C1, area and active_cfg before the new gen */
	atomic_store_explicit(&h->config_gen, gen, memory_order_release);
}

static void format(struct vrl_seg_header *h, const struct vrl_seg_geometry *g, uint64_t keys)
{
	struct timespec ts;

	/* a fresh ftruncate'd segment is all zeros: slots EMPTY, counters 0 */
	h->format = VRL_SEG_FORMAT;
	h->header_size = sizeof(*h);
	h->size = g->size;
	clock_gettime(CLOCK_REALTIME, &ts);
	h->created_realtime_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	h->cfg_off[0] = g->cfg_off[0];
	h->cfg_off[1] = g->cfg_off[1];
	h->holder_off = g->holder_off;
	h->nholders = g->nholders;
	h->slot_off = g->slot_off;
	h->nslots = g->nslots;
	h->keys_configured = keys;
	h->event_off = g->event_off;
	h->nevents = g->nevents;
	h->mark_off = g->mark_off;
}

/* Free every ring of every window limit of @cfg (a fresh, zeroed segment). */
static void init_areas(struct vrl_seg_header *h, const struct vrl_seg_config *cfg)
{
	for (uint32_t i = 0; i < cfg->nlimits; i++) {
		const struct vrl_seg_limit *l = &cfg->limits[i];

		if (l->kind == VRL_KIND_WINDOW && l->area_off)
			vrl_window_area_init(vrl_seg_area(h, l), l->count, l->area_keys);
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

int vrl_seg_reload_check(const struct vrl_seg_header *h, const struct vrl_seg_config *cfg,
			 char *why, size_t whylen)
{
	struct vrl_seg_config *next = malloc(sizeof(*next));
	const struct vrl_seg_config *active;
	struct vrl_seg_geometry g;
	int rc;

	why[0] = '\0';
	if (!next)
		return -ENOMEM;
	*next = *cfg;
	rc = vrl_seg_geometry_cfg(h->keys_configured, next, &g);
	if (rc) {
		snprintf(why, whylen, "cannot lay out the window rings: %s", strerror(-rc));
	} else if (g.size != h->size) {
		snprintf(why, whylen, "the segment would need %llu bytes instead of %llu: a "
			 "window limit changed; restart vrld with a fresh segment (--replace)",
			 (unsigned long long)g.size, (unsigned long long)h->size);
		rc = -EINVAL;
	} else {
		active = vrl_seg_cfg((struct vrl_seg_header *)h,
				     atomic_load_explicit(&h->active_cfg, memory_order_relaxed));
		rc = vrl_seg_areas_match(active, next, why, whylen);
		if (rc == 0)
			rc = kinds_match(active, next, why, whylen);
		if (rc == 0)
			rc = calendars_match(active, next, realtime_now(), why, whylen);
	}
	free(next);
	return rc;
}

int vrl_seg_reload(struct vrl_seg_header *h, const struct vrl_seg_config *cfg, char *why,
		   size_t whylen)
{
	struct vrl_seg_config *next = malloc(sizeof(*next));
	struct vrl_seg_geometry g;
	int rc;

	why[0] = '\0';
	if (!next)
		return -ENOMEM;
	rc = vrl_seg_reload_check(h, cfg, why, whylen);
	if (rc == 0) {
		/* the published copy carries where each window limit's rings are */
		*next = *cfg;
		vrl_seg_geometry_cfg(h->keys_configured, next, &g);
		vrl_seg_publish(h, next);
		vrl_seg_renote(h, 0, h->nslots);
		vrl_seg_settle(h, 0, h->nslots);
	}
	free(next);
	return rc;
}

static int map_fd(int fd, uint64_t size, struct vrl_seg_header **out)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
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
	/* a fresh object: no one else can hold its lock yet */
	if (rc == 0 && flock(fd, LOCK_EX | LOCK_NB) != 0)
		rc = -errno;
	if (rc == 0)
		rc = map_fd(fd, g->size, &out->hdr);
	if (rc) {
		close(fd);
		shm_unlink(spec->name);
		return rc;
	}
	out->size = g->size;
	out->adopted = false;
	out->locked = true;
	out->lock_fd = fd;
	format(out->hdr, g, spec->keys);
	init_areas(out->hdr, cfg);
	vrl_seg_publish(out->hdr, cfg);
	/* release: the magic is the last word written; pairs with the
	 * acquire load in vrl_open, which then sees a whole segment */
	atomic_store_explicit((_Atomic uint64_t *)&out->hdr->magic, VRL_SEG_MAGIC,
			      memory_order_release);
	return 0;
}

/* Why a segment of @size bytes is not the one this config needs, in @why. */
static void explain_mismatch(int fd, const struct vrl_seg_spec *spec, uint64_t size,
			     const struct vrl_seg_geometry *g, char *why, size_t whylen)
{
	struct vrl_seg_header *h = NULL;
	void *p = MAP_FAILED;

	if (size >= sizeof(*h))
		p = mmap(NULL, sizeof(*h), PROT_READ, MAP_SHARED, fd, 0);
	h = p == MAP_FAILED ? NULL : p;
	if (h && h->magic == VRL_SEG_MAGIC && h->format != VRL_SEG_FORMAT)
		snprintf(why, whylen, "segment %s is of format %u, made by another version of "
			 "vrl; this vrld makes format %u", spec->name, h->format, VRL_SEG_FORMAT);
	else if (h && h->magic != VRL_SEG_MAGIC)
		snprintf(why, whylen, "segment %s is not a vrl segment (or a half-made one)",
			 spec->name);
	else
		snprintf(why, whylen, "segment %s has %llu bytes; this config needs %llu "
			 "(segment.keys changed?)", spec->name, (unsigned long long)size,
			 (unsigned long long)g->size);
	if (h)
		munmap(h, sizeof(*h));
}

/* Take the segment's lock on @fd; -EBUSY when another vrld holds it. */
static int lock_segment(int fd, const struct vrl_seg_spec *spec, char *why, size_t whylen)
{
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno != EWOULDBLOCK)
		return -errno;
	snprintf(why, whylen, "segment %s is served by another vrld (it holds the segment's "
		 "lock)", spec->name);
	return -EBUSY;
}

static int adopt(const struct vrl_seg_spec *spec, const struct vrl_seg_config *cfg,
		 const struct vrl_seg_geometry *g, struct vrl_seg *out, char *why, size_t whylen)
{
	struct stat st;
	int fd = shm_open(spec->name, O_RDWR, 0);
	int rc;

	if (fd < 0)
		return -errno;
	rc = lock_segment(fd, spec, why, whylen);
	if (rc == 0 && fstat(fd, &st) != 0)
		rc = -errno;
	if (rc == 0 && (uint64_t)st.st_size != g->size) {
		explain_mismatch(fd, spec, (uint64_t)st.st_size, g, why, whylen);
		rc = -EEXIST;
	}
	if (rc == 0)
		rc = map_fd(fd, g->size, &out->hdr);
	if (rc == 0 && (spec->mode || spec->gid != (gid_t)-1)) {
		if (fchmod(fd, spec->mode & 0777) != 0 ||
		    (spec->gid != (gid_t)-1 && fchown(fd, (uid_t)-1, spec->gid) != 0))
			rc = -errno;
		if (rc)
			munmap(out->hdr, g->size);
	}
	if (rc) {
		close(fd);
		return rc;
	}
	out->size = g->size;
	rc = vrl_seg_validate(out->hdr, g->size);
	if (rc == 0 && out->hdr->nslots != g->nslots)
		rc = VRL_EFORMAT;
	if (rc == VRL_EFORMAT && out->hdr->format != VRL_SEG_FORMAT) {
		/* the same size, another format: say which, as for another size */
		explain_mismatch(fd, spec, g->size, g, why, whylen);
		munmap(out->hdr, g->size);
		close(fd);
		return -EEXIST;
	}
	if (rc) {
		snprintf(why, whylen, "segment %s: %s", spec->name, vrl_strerror(rc));
		munmap(out->hdr, g->size);
		close(fd);
		return -EEXIST;
	}
	if (vrl_seg_areas_match(vrl_seg_cfg(out->hdr, atomic_load_explicit(&out->hdr->active_cfg,
									   memory_order_relaxed)),
				cfg, why, whylen) != 0) {
		munmap(out->hdr, g->size);
		return -EEXIST;
	}
	out->adopted = true;
	out->locked = true;
	out->lock_fd = fd;
	vrl_kt_repair_bracket(out->hdr, UINT64_MAX);
	/* a vrld that died in its conversion pass left the count odd: this
	 * pass (vrl_seg_settle below) does its work again */
	if (atomic_load(&out->hdr->rate_conversions) & 1)
		atomic_fetch_add(&out->hdr->rate_conversions, 1);
	vrl_seg_publish(out->hdr, cfg);
	vrl_seg_renote(out->hdr, 0, out->hdr->nslots);
	vrl_seg_settle(out->hdr, 0, out->hdr->nslots);
	return 0;
}

int vrl_seg_open_or_create(const struct vrl_seg_spec *spec, const struct vrl_seg_config *cfg,
			   bool replace, struct vrl_seg *out, char *why, size_t whylen)
{
	struct vrl_seg_geometry g;
	struct vrl_seg_config *lay = malloc(sizeof(*lay));
	int rc;

	why[0] = '\0';
	out->locked = false;
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
		munmap(s->hdr, s->size);
	s->hdr = NULL;
	if (s->locked)
		close(s->lock_fd);
	s->locked = false;
}

int vrl_seg_unlink(const char *name)
{
	return shm_unlink(name) == 0 ? 0 : -errno;
}

/*
 * Evict window key @i if every position of its ring has been free for
 * @idle_ns at @now (every grant older than W + idle_ns; W2 in window.c),
 * and give its ring back. A ring the slot never got is none.
 */
static int sweep_window(struct vrl_seg_header *h, const struct vrl_seg_limit *l, uint64_t i,
			uint64_t now, uint64_t idle_ns)
{
	struct vrl_seg_slot *s = &vrl_seg_slots(h)[i];
	/* W2 acquire: pairs with the takers' commit, their positions are seen */
	uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
	uint32_t aux = atomic_load_explicit(&s->aux, memory_order_relaxed);
	void *area = vrl_seg_area(h, l);

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
	if (!vrl_kt_evict(h, i, st, now))
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

uint64_t vrl_seg_sweep(struct vrl_seg_header *h, uint64_t first, uint64_t count, uint64_t now,
		       uint64_t idle_ns)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return vrl_seg_sweep_by(h, first, count, now,
				(uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, idle_ns, NULL);
}

uint64_t vrl_seg_sweep_at(struct vrl_seg_header *h, uint64_t first, uint64_t count,
			  uint64_t now, uint64_t now_rt, uint64_t idle_ns)
{
	return vrl_seg_sweep_by(h, first, count, now, now_rt, idle_ns, NULL);
}

/* Count one eviction of the key noted @note against its limit of @cfg. */
static void count_eviction(uint64_t *by_limit, const struct vrl_seg_config *cfg, uint32_t note)
{
	int li = vrl_note_limit(note, cfg->generation, cfg->nlimits);

	if (by_limit && li >= 0)
		by_limit[li]++;
}

uint64_t vrl_seg_sweep_by(struct vrl_seg_header *h, uint64_t first, uint64_t count,
			  uint64_t now, uint64_t now_rt, uint64_t idle_ns,
			  uint64_t by_limit[VRL_MAX_LIMITS])
{
	struct vrl_seg_slot *slots = vrl_seg_slots(h);
	uint64_t end = first + count > h->nslots ? h->nslots : first + count, evicted = 0;

	const struct vrl_seg_config *cfg =
		vrl_seg_cfg(h, atomic_load_explicit(&h->active_cfg, memory_order_relaxed));

	/* the keys of this chunk carry the current numbering before they are
	 * counted, and the current parameters (a write that an acquire in
	 * flight across a reload made with the ones before) */
	vrl_seg_renote(h, first, count);
	vrl_seg_settle(h, first, count);
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
			    sweep_window(h, &cfg->limits[lim], i, now, idle_ns)) {
				evicted++;
				if (by_limit)
					by_limit[lim]++;
			}
			continue;
		}
		if (st == VRL_STATE_EVICTED || !idle(note, st, now, now_rt, idle_ns) ||
		    !vrl_kt_evict(h, i, st, now))
			continue;
		evicted++;
		count_eviction(by_limit, cfg, note);
	}
	vrl_kt_reclaim(h, first, count);
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

uint64_t vrl_seg_renote(struct vrl_seg_header *h, uint64_t first, uint64_t count)
{
	unsigned active = atomic_load_explicit(&h->active_cfg, memory_order_relaxed) & 1u;
	const struct vrl_seg_config *to = vrl_seg_cfg(h, active);
	const struct vrl_seg_config *from = vrl_seg_cfg(h, active ^ 1u);
	struct vrl_seg_slot *slots = vrl_seg_slots(h);
	uint64_t end = first + count > h->nslots ? h->nslots : first + count, renoted = 0;
	uint32_t from_gen = (uint32_t)from->generation & VRL_NOTE_GEN_MASK;
	int map[VRL_MAX_LIMITS];
	bool mapped = false;

	/* vrld alone writes the config areas, in this thread: both are stable
	 * here. The other area is the generation before, unless it was never
	 * written (generation 0) or a vrld died writing it (seq odd). */
	if (from->generation == 0 || (atomic_load_explicit(&from->seq, memory_order_relaxed) & 1u) ||
	    from->nlimits > VRL_MAX_LIMITS || to->nlimits > VRL_MAX_LIMITS ||
	    from_gen == ((uint32_t)to->generation & VRL_NOTE_GEN_MASK))
		return 0;
	for (uint64_t i = first; i < end; i++) {
		struct vrl_seg_slot *s = &slots[i];
		uint64_t t = atomic_load_explicit(&s->tag, memory_order_acquire);
		uint32_t note = atomic_load_explicit(&s->limit, memory_order_relaxed);
		uint32_t li = VRL_NOTE_INDEX(note);

		if (!(t & VRL_TAG_LIVE) || (t & VRL_TAG_PENDING) || VRL_NOTE_GEN(note) != from_gen ||
		    li >= from->nlimits)
			continue;
		if (!mapped) {
			for (uint32_t k = 0; k < from->nlimits; k++)
				map[k] = vrl_seg_renumber(from, k, to);
			mapped = true;
		}
		if (map[li] < 0)
			continue;   /* its limit is gone: the key ages out unattributed */
		/* relaxed: the note is read for attribution only, and a LIVE
		 * slot keeps its key while this thread (its only evictor) runs;
		 * the CAS leaves a note some inserter changed meanwhile alone */
		if (atomic_compare_exchange_strong_explicit(
			    &s->limit, &note,
			    vrl_slot_note((uint32_t)map[li], &to->limits[map[li]], to->generation),
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

uint64_t vrl_seg_settle(struct vrl_seg_header *h, uint64_t first, uint64_t count)
{
	const struct vrl_seg_config *cfg = config_in_force(h);
	struct vrl_seg_slot *slots = vrl_seg_slots(h);
	uint64_t end = first + count > h->nslots ? h->nslots : first + count, settled = 0;
	uint64_t now_rt = realtime_now();
	struct settle_rule rules[VRL_MAX_LIMITS];
	bool open = false;

	/* vrld alone writes the config areas, in this thread: cfg is stable */
	if (!cfg || !settle_rules(cfg, rules))
		return 0;
	for (uint64_t i = first; i < end; i++) {
		struct vrl_seg_slot *s = &slots[i];
		uint64_t t = atomic_load_explicit(&s->tag, memory_order_acquire);
		int li;

		if (!(t & VRL_TAG_LIVE) || (t & VRL_TAG_PENDING))
			continue;
		/* relaxed: the note names the key's limit for this walk only; a
		 * LIVE slot keeps its key while this thread, its only evictor, runs */
		li = vrl_note_limit(atomic_load_explicit(&s->limit, memory_order_relaxed),
				    cfg->generation, cfg->nlimits);
		if (li < 0)
			continue;
		if (rules[li].kind == VRL_KIND_RATE)
			settled += settle_rate(h, s, &rules[li], &open);
		else if (rules[li].kind == VRL_KIND_QUOTA)
			settled += settle_quota(s, &cfg->limits[li], &rules[li], now_rt);
	}
	/* C1: even again after the last conversion's CAS (seq_cst) */
	if (open)
		atomic_fetch_add(&h->rate_conversions, 1);
	return settled;
}

unsigned vrl_seg_reap_holders(struct vrl_seg_header *h)
{
	struct vrl_seg_holder *hs = vrl_seg_holders(h);
	unsigned reaped = 0;

	for (uint64_t i = 0; i < h->nholders; i++) {
		int32_t pid = atomic_load_explicit(&hs[i].pid, memory_order_acquire);

		if (pid <= 0 || kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		/* its process slots first: each record is zeroed before its
		 * units move, so a vrld killed here never gives them twice.
		 * Only vrld evicts, in this same thread, so no slot changes
		 * owner between a record's tag check and its give-back. */
		for (unsigned j = 0; j < VRL_HOLD_MAX; j++)
			vrl_hold_give_back(h, &hs[i].holds[j]);
		atomic_fetch_add_explicit(&h->retired_granted,
					  atomic_load_explicit(&hs[i].granted, memory_order_relaxed),
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&h->retired_denied,
					  atomic_load_explicit(&hs[i].denied, memory_order_relaxed),
					  memory_order_relaxed);
		atomic_store_explicit(&hs[i].granted, 0, memory_order_relaxed);
		atomic_store_explicit(&hs[i].denied, 0, memory_order_relaxed);
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
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	/* odd first; the release fence orders it before the block's stores */
	atomic_store_explicit(&h->reload_seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	h->reload_count++;
	if (error && error[0])
		h->reload_refused++;
	h->reload_realtime_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	snprintf(h->reload_error, sizeof(h->reload_error), "%s", error ? error : "");
	/* L1 release: the block is complete before the sequence is even */
	atomic_store_explicit(&h->reload_seq, seq + 2, memory_order_release);
}

int vrl_seg_read_reload(const struct vrl_seg_header *h, struct vrl_reload_status *out)
{
	for (int tries = 0; tries < 1000; tries++) {
		/* L2 acquire: pairs with L1, the block written before this even */
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
