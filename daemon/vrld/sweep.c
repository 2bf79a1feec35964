/*
 * sweep.c - vrld's walk over the key table, a chunk at a time: keys that
 * carry nothing worth keeping are evicted (keytable.c), keys noted under
 * the config before a reload are renumbered to the one in force, words
 * written under the parameters before are settled to the current ones
 * (kind.h: a rate's epoch conversion, a quota's calendar carry), and the
 * holder records of dead processes are reaped. vrld is the only evictor,
 * and does all of it from one thread. The trust argument of upkeep.c
 * holds here: every limit swept by is vrld's own copy, and every index
 * read from the segment is checked before use.
 */
#include "upkeep_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>

#include "clock.h"
#include "keytable.h"
#include "kind_upkeep.h"
#include "blocks.h"
#include "share.h"

/*
 * Evict window key @i if every position of its ring has been free for
 * @idle_ns at @now (every grant older than W + idle_ns; WIN.W2 in window.c),
 * and give its ring back. A ring the slot never got is none. @l is vrld's
 * own copy of the limit: its area, count and rings are what vrld laid out.
 */
static int sweep_window(const struct vrl_seg_view *v, const struct vrl_seg_limit *l, uint64_t i,
			uint64_t now, uint64_t idle_ns)
{
	struct vrl_seg_slot *s = &v->slots[i];
	/* WIN.W2 acquire: pairs with the takers' commit, their positions are seen */
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
	/* WIN.R2 acq_rel: whoever swaps a ring out of aux gives it back, once;
	 * a client's aux CAS that reads this sees the eviction (WIN.R1) */
	aux = atomic_exchange_explicit(&s->aux, 0, memory_order_acq_rel);
	if (aux && aux <= l->area_keys)
		vrl_window_ring_put(area, l->count, l->area_keys, aux - 1);
	return 1;
}

/* True when a key's state word @st carries nothing worth keeping, by the
 * kind its slot noted (vrl_kind_idle). */
static bool idle(uint32_t note, uint64_t st, uint64_t now, uint64_t now_rt, uint64_t idle_ns)
{
	return vrl_kind_idle(VRL_NOTE_KIND(note), VRL_NOTE_CALENDAR(note), VRL_NOTE_ANCHOR(note),
			     st, now, now_rt, idle_ns);
}

/* A global quota or slots key with credit left of its allocation is not
 * idle: its first allocation comes after its first (denied) request, and
 * evicted with it the key would never grant; the engine's clamp takes an
 * unused spare away once its load is gone (blocks.h). */
static bool block_unused(const struct vrl_seg_view *v, uint32_t note, uint64_t i)
{
	uint32_t kind = VRL_NOTE_KIND(note);

	/* relaxed: blocks.h, the word carries no other data */
	return v->shares && (kind == VRL_KIND_QUOTA || kind == VRL_KIND_SLOTS) &&
	       vrl_block_credit(atomic_load_explicit(&v->shares[i].word, memory_order_relaxed));
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

/* A rate key's adapt word back to 0 once it is at the figure (adapt.h),
 * or when its limit no longer adapts. */
static void settle_adapt(struct vrl_seg_slot *sl, const struct vrl_seg_config *cfg, uint32_t note,
			 uint64_t now)
{
	/* relaxed: the adapt word orders with nothing (adapt.h AD.W2) */
	uint32_t aux = atomic_load_explicit(&sl->aux, memory_order_relaxed), next;
	int li = vrl_note_limit(note, cfg->generation, cfg->nlimits);

	next = vrl_kind_settle_adapt(VRL_NOTE_KIND(note), li >= 0 ? &cfg->limits[li] : NULL, aux,
				     now);
	/* a cut that came meanwhile fails the CAS and is kept */
	if (next != aux)
		atomic_compare_exchange_strong_explicit(&sl->aux, &aux, next, memory_order_relaxed,
							memory_order_relaxed);
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
		if (vrl_kind_keeps_area(VRL_NOTE_KIND(note))) {
			/* a window limit keeps its index over reloads (vrl_seg_reload) */
			uint32_t lim = VRL_NOTE_INDEX(note);

			if (lim < cfg->nlimits && vrl_kind_has_area(&cfg->limits[lim]) &&
			    sweep_window(v, &cfg->limits[lim], i, now, idle_ns)) {
				evicted++;
				if (by_limit)
					by_limit[lim]++;
			}
			continue;
		}
		settle_adapt(&slots[i], cfg, note, now);
		if (st == VRL_STATE_EVICTED || !idle(note, st, now, now_rt, idle_ns) ||
		    block_unused(v, note, i))
			continue;
		/* a global key's credit goes before the key does: a key that
		 * reuses the slot finds none of it (acquire.c AQ.S3); a block's
		 * allocation shrinks with it (blocks.h V3) */
		if (v->shares)
			vrl_block_drain(&v->shares[i].word, &v->shares[i].cap);
		if (!vrl_kt_evict(v, i, st, now))
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
		if (pooled < 0 &&
		    strcmp(vrl_upkeep_key_identity(a), vrl_upkeep_key_identity(b)) == 0)
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
		/* acquire: pairs with promotion (KT.K2), the slot's fields are ready */
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

/*
 * Settle key @s by rule @r (kind.h): a rate word converted to the current
 * epoch (gcra.h), a quota word carried into the new calendar (quota.h).
 * The first conversion of a pass makes h->rate_conversions odd (*@open),
 * before its clock read; vrl_seg_settle() makes it even after the last.
 */
static bool settle_key(struct vrl_seg_header *h, struct vrl_seg_slot *s,
		       const struct vrl_kind_settle *r, bool *open)
{
	/* AQ.G1 acquire, as a client's look */
	uint64_t w = atomic_load_explicit(&s->state, memory_order_acquire);

	for (;;) {
		uint64_t now = 0;

		if (w == VRL_STATE_EVICTED || !vrl_kind_settle_needed(r, w))
			return false;
		if (vrl_kind_settle_timed(r)) {
			if (!*open) {
				/* AQ.C1: odd before the clock read below; seq_cst
				 * orders it before the read and (release) before
				 * the CAS */
				atomic_fetch_add(&h->rate_conversions, 1);
				*open = true;
			}
			/* AQ.C1 (a): the clock is read after the word it converts */
			now = vrl_now_ns();
		}
		/* release (AQ.G1): a reader of the new word sees the new config;
		 * acquire on failure, as the load above */
		if (atomic_compare_exchange_weak_explicit(&s->state, &w,
							  vrl_kind_settle_word(r, w, now),
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
	uint64_t now_rt = vrl_upkeep_realtime();
	struct vrl_kind_settle rules[VRL_MAX_LIMITS];
	bool open = false, any = false;

	if (!cfg)
		return 0;
	for (uint32_t i = 0; i < cfg->nlimits; i++)
		any |= vrl_kind_settle_rule(&cfg->limits[i], now_rt, &rules[i]);
	if (!any)
		return 0;
	for (uint64_t i = first; i < end; i++) {
		struct vrl_seg_slot *sl = &slots[i];
		/* acquire: pairs with promotion (KT.K2), the slot's fields are ready */
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
		if (rules[li].kind)
			settled += settle_key(h, sl, &rules[li], &open);
	}
	/* AQ.C1: even again after the last conversion's CAS (seq_cst) */
	if (open)
		atomic_fetch_add(&h->rate_conversions, 1);
	return settled;
}

/*
 * Whether the owner of holder record @i, pid word @pid, is gone: by its
 * lock when it holds one (handle.c, HOLD.L: the kernel drops it with the
 * owner's description, in any PID namespace), else by its pid. A lock
 * that cannot be read keeps the record: units are never given back for
 * an owner that may be alive.
 */
static bool holder_gone(int fd, uint64_t i, int32_t pid)
{
	if (pid & VRL_HOLDER_LOCKED) {
		struct flock fl = {
			.l_type = F_WRLCK,
			.l_whence = SEEK_SET,
			.l_start = (off_t)(VRL_HOLDER_LOCK_BASE + (int64_t)i),
			.l_len = 1,
		};

		return fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type == F_UNLCK;
	}
	return kill(pid & VRL_HOLDER_PID_MASK, 0) != 0 && errno == ESRCH;
}

unsigned vrl_seg_reap_holders(struct vrl_seg *s)
{
	struct vrl_seg_holder *hs = s->view.holders;
	unsigned reaped = 0;

	for (uint64_t i = 0; i < s->view.nholders; i++) {
		/* HOLD.H2 acquire: pairs with the owner's claim (acq_rel) and its
		 * release at close, the record's counters are the owner's */
		int32_t pid = atomic_load_explicit(&hs[i].pid, memory_order_acquire);

		/* a record a vrld killed mid-reap left is reaped again: each
		 * step below is one that cannot give twice */
		if (pid != VRL_HOLDER_REAPING && (pid <= 0 || !holder_gone(s->lock_fd, i, pid)))
			continue;
		/* HOLD.L3 acq_rel: the record is ours before its units move; a
		 * record freed and retaken since the load fails here (relaxed
		 * would do for the claim, acquire keeps the H2 pairing with the
		 * word we replace) */
		if (pid != VRL_HOLDER_REAPING &&
		    !atomic_compare_exchange_strong_explicit(&hs[i].pid, &pid, VRL_HOLDER_REAPING,
							     memory_order_acq_rel,
							     memory_order_relaxed))
			continue;
		pid = VRL_HOLDER_REAPING;
		/* its process slots first: each record is zeroed before its
		 * units move, so a vrld killed here never gives them twice.
		 * Only vrld evicts, in this same thread, so no slot changes
		 * owner between a record's tag check and its give-back. */
		for (unsigned j = 0; j < VRL_HOLD_MAX; j++)
			vrl_hold_give_back(&s->view, &hs[i].holds[j]);
		/* its counters, totals and per limit (vrl_holder_fold) */
		vrl_holder_fold(&s->view, &hs[i]);
		/* HOLD.H1 release: the fold is done before the slot can be retaken */
		if (atomic_compare_exchange_strong_explicit(&hs[i].pid, &pid, 0,
							    memory_order_release,
							    memory_order_relaxed))
			reaped++;
	}
	return reaped;
}
