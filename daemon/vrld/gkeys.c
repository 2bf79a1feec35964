/*
 * gkeys.c - vrld's side of the keys of global limits (gkeys.h).
 *
 * Each tick, on the main loop, vrld walks the key table and keeps, in its
 * own memory, one struct vrld_gkey per slot that holds a key of a global
 * limit (rate; window: KW1 to KW3 below; quota and slots: B1 to B3
 * below): the key's id (the same bytes on every host), the limit's
 * figures, and the share in force (struct vrl_share_fill). The segment
 * holds only what the workers use: the slot's share word, and its used
 * and unmet counts.
 *
 * The key's id. The slot keeps the key's whole hash (tag: the
 * fingerprint; home: the high half), an unseeded XXH3-128 of the limit's
 * identity (its pool, else its name) and the request's fields
 * (keytable.h): the same on every host for the same key. The id is
 * vrl_global_key_id of that identity and the hash's two halves as text,
 * so two hosts name one key alike and a limit whose kind changes gets new
 * ids. The fields themselves (a token, say) never leave the host.
 *
 * The steps, per slot, per tick (share.h names F1 to F3):
 *   K1 A slot whose key vrld took up is gone (its tag changed, or its
 *      state word says evicted): its word is set to none (F3) and it
 *      leaves the batch; its lease lapses in Redis. Its credit went
 *      already: the sweep drains a key's credit before it evicts it, so a
 *      key that reuses the slot finds none.
 *   K2 A live key whose note names a global limit of the config in force
 *      is taken up: its word set to none, so it denies until its first
 *      lease, which starts from credit 0 (F2 after a lapse).
 *   K3 Every key taken up gets F1 (refill under the share in force, up to
 *      its trust time), after a release fence: a worker's acquire fence
 *      after its take orders its tag re-check after this tick's tag read
 *      (acquire.c AQ.S3). Then its entry: figures, the cumulative used and
 *      unmet counts, the share in force now, the gen last applied.
 *   K4 A round's results: a result whose gen is not the key's is applied
 *      (F1 then F2: vrl_share_apply), and its gen kept; before the next
 *      tick reports the share, so the engine hears of a share only once
 *      the word enforces it. A result without a lease (apply false) leaves
 *      the word at none. A partition's fallback comes as a lease like any
 *      other (expires UINT64_MAX; share none before static_from, the
 *      static share after): workers see only the word.
 *   K5 Stop: every word set to none (F3) before vrl_global_stop releases
 *      the shares in Redis.
 *   K6 Cooldowns: an entry carries the key's cooldown in force (a 429's
 *      vrl_cooldown on this host); the engine publishes it through Redis
 *      (only one it did not itself apply: lease.c), and every host's
 *      result brings the latest cooldown of the key, which vrld raises the
 *      slot's cooldown word to (never lowers). So a key closed on one host
 *      is closed on every host from its next round: a tick and a round
 *      trip later. A cooldown only ever delays grants: invariant 1 needs
 *      nothing of it.
 *   K7 Between two ticks, every VRL_SHARE_FILL_NS, the keys of the last
 *      scan that are due get F1 again (vrld_gkeys_fill), each after the
 *      same tag check and release fence as K3; a key gone since the scan
 *      is skipped until the next scan's K1. A key is due
 *      vrl_share_fill_interval() after its last fill (a sixteenth of its
 *      burst share's time, 1 to 20 ms; never with no rate share, until a
 *      new share; every key after a tick's results applied), judged by a
 *      dense array of due times before anything of the key is read, and
 *      vrld leaves that time in the share's cap word for the workers'
 *      retry hint (AQ.S6): a host with many idle or large-burst keys does
 *      not touch each every millisecond. So a host's share is added in steps of
 *      a few milliseconds, not of a tick: with a burst share of one
 *      permit, a host still grants its whole rate share (up to one
 *      permit per fill). share.h's claim holds for fills at any times;
 *      the fills run on the main loop's thread, as the scan, the
 *      results and the sweep do, so none of them interleave.
 * vrld changes a rate word only by CAS from the value it loaded
 * (share.h), so no take is lost.
 *
 * Window keys (share.h "Window": the word is a cap, workers only load
 * it). The steps above, but:
 *   KW1 The entry carries the cap in force (share.count, while trusted)
 *      and held: the positions of the key's ring counted at the scan
 *      (grants in the trailing W, reservations included), which a
 *      release keeps counted in Redis for W (vrl.lua).
 *   KW2 A result stores its cap and trust time in one store (FW1), after
 *      the apply's F0 mark, whose time vrld read after the result came:
 *      a worker whose decision precedes it does not use the new cap. A
 *      shrink and a growth apply alike, at once: lease.c's Window part
 *      asks only that each grant's lease be trusted at its decision
 *      time, and Redis counts the larger promise until it expired + W.
 *      Nothing is filled (K3, K7 skip the word).
 *   KW3 Stop (K5): every word set to none, a seq_cst fence, then each
 *      window key's held counted again for the release. A worker issues
 *      a seq_cst fence between its commit and its load of the word: if
 *      its fence comes first in the fences' single order, our count
 *      after ours sees its positions; else its load sees none and it
 *      undoes (a count of an undone grant only holds more). So what
 *      Redis keeps counted for W covers every grant of the host. A key
 *      whose limit vrld cannot read any more reports all N.
 *   K1, K2, K5 and the drain before an eviction set the word to none
 *   (cap 0) as for a rate: the key denies until its next lease.
 *
 * Quota and slots keys (blocks.h: the word is an account of the host's
 * allocation, no time in it) take the same steps with their own at K2,
 * K3, K4 and K5, and none at K7 (nothing is due with time):
 *   B1 K2 takes a key up keeping a word that has a tag (a vrld before
 *      this one left it: its allocation, cap, is the key's, and is
 *      reported as it is); a word without one starts at the tag of now,
 *      its allocation the units the key already counts, all used.
 *   B2 K3 starts a quota's new period (blocks.h V1: the tag only moves
 *      forward) and reports the allocation kept (cap), the units used of
 *      it (cap less the credit), the period and the time to its end.
 *   B3 K4 applies a result of the word's period only (global.h
 *      vrl_global_result.period_id): grown to what Redis counts for the
 *      host, clamped to the units used plus the spare to keep after an OK
 *      answer (blocks.h V2), before the next scan reports it. K5 drains
 *      the credit (V3) and vrl_global_stop reports the units used.
 * K1 and the sweep are the same for every kind: the sweep drains a block
 * key's credit with its allocation (V3) before it evicts the key, and K1
 * clears word and cap. blocks.h proves that a host then never consumes
 * more than the allocation Redis counts for it, which is what lease.c's
 * blocks need of it.
 */
#include "gkeys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "clock.h"
#include "keytable.h"
#include "quota.h"
#include "window.h"

/* The key of slot @i's id, from its limit's identity and its hash. */
static void key_id(const struct vrl_seg_limit *l, enum vrl_global_kind kind, uint64_t tag,
		   uint64_t home, uint8_t id[VRL_GLOBAL_ID_LEN])
{
	char h[2][17];
	const char *parts[2] = { h[0], h[1] };

	snprintf(h[0], sizeof(h[0]), "%016llx", (unsigned long long)home);
	snprintf(h[1], sizeof(h[1]), "%016llx", (unsigned long long)(tag & VRL_TAG_FP_MASK));
	vrl_global_key_id(kind, l->pool[0] ? l->pool : l->name, parts, 2, id);
}

static void set_none(struct vrl_seg_share *sh)
{
	vrl_share_set(&sh->word, 0, 0, true);
	/* relaxed: vrld's own memory of a block key's allocation (blocks.h B2) */
	atomic_store_explicit(&sh->cap, 0, memory_order_relaxed);
}

static int grow(struct vrld_gkeys *g, size_t want)
{
	size_t cap = 64;
	void *e, *so;

	while (cap < want)
		cap *= 2;
	e = realloc(g->e, cap * sizeof(*g->e));
	if (!e)
		return -ENOMEM;
	g->e = e;
	so = realloc(g->slot_of, cap * sizeof(*g->slot_of));
	if (!so)
		return -ENOMEM;
	g->slot_of = so;
	so = realloc(g->due, cap * sizeof(*g->due));
	if (!so)
		return -ENOMEM;
	g->due = so;
	return 0;
}

static uint64_t id_hash(const uint8_t id[VRL_GLOBAL_ID_LEN])
{
	uint64_t x;

	memcpy(&x, id, sizeof(x));
	return x;
}

/* The id -> slot map of this tick's entries. */
static int build_map(struct vrld_gkeys *g)
{
	size_t cap = 16;

	while (cap < 2 * g->n)
		cap *= 2;
	if (cap > g->mapcap) {
		uint64_t *m = realloc(g->map, cap * sizeof(*m));

		if (!m)
			return -ENOMEM;
		g->map = m;
		g->mapcap = cap;
	}
	memset(g->map, 0, g->mapcap * sizeof(*g->map));
	for (size_t i = 0; i < g->n; i++) {
		size_t j = id_hash(g->e[i].id) & (g->mapcap - 1);

		while (g->map[j])
			j = (j + 1) & (g->mapcap - 1);
		g->map[j] = g->slot_of[i] + 1;
	}
	return 0;
}

/* The slot whose key has id @id this tick, or UINT64_MAX. */
static uint64_t find(const struct vrld_gkeys *g, const uint8_t id[VRL_GLOBAL_ID_LEN])
{
	if (!g->map)
		return UINT64_MAX;
	for (size_t j = id_hash(id) & (g->mapcap - 1); g->map[j]; j = (j + 1) & (g->mapcap - 1))
		if (memcmp(g->k[g->map[j] - 1].id, id, VRL_GLOBAL_ID_LEN) == 0)
			return g->map[j] - 1;
	return UINT64_MAX;
}

static void entry(struct vrl_global_entry *e, const struct vrld_gkey *k,
		  struct vrl_seg_slot *sl, const struct vrl_seg_share *sh, uint64_t now)
{
	/* relaxed: the engine publishes it; K6 */
	uint64_t cd = atomic_load_explicit(&sl->cooldown, memory_order_relaxed);

	memset(e, 0, sizeof(*e));
	memcpy(e->id, k->id, sizeof(e->id));
	e->kind = k->kind;
	e->count = k->count;
	e->period_ns = k->period_ns;
	/* relaxed: counts, ordered by nothing (segment.h) */
	e->used_total = atomic_load_explicit(&sh->used, memory_order_relaxed);
	e->unmet_total = atomic_load_explicit(&sh->unmet, memory_order_relaxed);
	if (k->kind == VRL_GLOBAL_WINDOW) {
		/* KW1: the cap in force, and the grants it counts for a release */
		e->share.count = now < k->f.trusted ? k->f.count : 0;
		e->held = k->held;
	} else {
		e->burst = k->burst;
		if (now < k->f.trusted) {
			e->share.rate = k->f.rate;
			e->share.burst = k->f.burst;
		}
	}
	e->cooldown_until = cd > now ? cd : 0;
	e->gen = k->gen;
}

/* K6: raise slot @sl's cooldown to @until (never lower it). */
static void close_until(struct vrl_seg_slot *sl, uint64_t until)
{
	uint64_t cur = atomic_load_explicit(&sl->cooldown, memory_order_relaxed);

	/* seq_cst: a cooldown store, as op_cooldown's (keyops.c); vrld alone
	 * evicts, on this thread, so the key is the one K1 saw this tick */
	while (cur < until && !atomic_compare_exchange_weak(&sl->cooldown, &cur, until))
		;
}

/* ---- quota and slots keys: blocks (blocks.h; B1 to B3 below) --------------- */

uint64_t (*vrld_gkeys_realtime)(void) = vrl_wall_ns;

/* The engine's kind of limit @l held across hosts; 0: not one vrld holds. */
static enum vrl_global_kind global_kind(const struct vrl_seg_limit *l)
{
	switch (l->kind) {
	case VRL_KIND_RATE:
		return VRL_GLOBAL_RATE;
	case VRL_KIND_WINDOW:
		return VRL_GLOBAL_WINDOW;
	case VRL_KIND_QUOTA:
		return VRL_GLOBAL_QUOTA;
	case VRL_KIND_SLOTS:
		return VRL_GLOBAL_SLOTS;
	default:
		return 0;
	}
}

static bool is_block(const struct vrld_gkey *k)
{
	return k->kind == VRL_GLOBAL_QUOTA || k->kind == VRL_GLOBAL_SLOTS;
}

static void block_figures(struct vrld_gkey *k, const struct vrl_seg_limit *l)
{
	k->soft = l->kind == VRL_KIND_QUOTA && (l->flags & VRL_LIMIT_SOFT);
	k->calendar = l->calendar;
	k->anchor = l->anchor;
}

/* The tag of key @k at wall clock @rt (quota: its period's, the period id
 * in @pid and the time to its end in @left; slots: one tag, ever). */
static uint64_t block_tag_at(const struct vrld_gkey *k, uint64_t rt, uint64_t *pid,
			     uint64_t *left)
{
	struct vrl_seg_limit q = { .kind = VRL_KIND_QUOTA, .calendar = k->calendar,
				   .anchor = k->anchor };
	uint64_t end = UINT64_MAX;

	*pid = 0;
	*left = UINT64_MAX;
	if (k->kind != VRL_GLOBAL_QUOTA)
		return VRL_BLOCK_SLOTS_TAG;
	if (vrl_quota_period(&q, rt, pid, NULL, &end) != 0)
		*pid = 0;
	if (end != UINT64_MAX)
		*left = end > rt ? end - rt : 0;
	return vrl_block_tag_quota(*pid);
}

/* Units the key of @sl counts in period @pid (quota) or holds (slots). */
static uint64_t block_counted(const struct vrld_gkey *k, const struct vrl_seg_slot *sl,
			      uint64_t pid)
{
	/* relaxed: a figure; B3 needs no order of it */
	uint64_t st = atomic_load_explicit(&sl->state, memory_order_relaxed);

	if (st == VRL_STATE_EVICTED)
		return 0;
	return k->kind == VRL_GLOBAL_QUOTA ? vrl_quota_used(st, pid) : st;
}

/*
 * B1 (K2 of a quota or slots key): a word with a tag is the key's own,
 * left by a vrld before this one (the tag is 0 only before the key's
 * first take-up: K1 clears it, and only vrld evicts): its allocation,
 * cap, is adopted as it is (blocks.h B2) and reported. A word without
 * one starts at the tag of now (blocks.h V1), with the units the key
 * already counts (a checkpoint's, a count kept from before) as its
 * allocation, all consumed: so its report counts them in Redis. No worker
 * commits meanwhile: a look that finds no credit denies before it writes
 * (acquire.c AQ.S1).
 */
static void block_take_up(struct vrld_gkey *k, const struct vrl_seg_limit *l,
			  const struct vrl_seg_slot *sl, struct vrl_seg_share *sh, uint64_t rt)
{
	uint64_t pid, left, tag;

	block_figures(k, l);
	tag = block_tag_at(k, rt, &pid, &left);
	/* relaxed: blocks.h, the words carry no other data */
	if (vrl_block_tag(atomic_load_explicit(&sh->word, memory_order_relaxed)) != 0)
		return;
	vrl_block_start(&sh->word, &sh->cap, tag);
	atomic_store_explicit(&sh->cap, block_counted(k, sl, pid), memory_order_relaxed);
}

/*
 * B2 (K3 of a quota or slots key): a new period starts the word at its
 * tag (blocks.h V1; only forward: a word of a later period, a clock
 * stepped back, stays, and reports that period); then the entry: the
 * allocation kept is cap (blocks.h B2), the units used of it cap less
 * the credit. A soft quota reports the units its key counted when more
 * (never short: its workers take nothing, and Redis counts them all).
 */
static void block_tick(struct vrld_gkey *k, struct vrl_seg_slot *sl, struct vrl_seg_share *sh,
		       uint64_t rt, struct vrl_global_entry *e)
{
	uint64_t pid, left, tag = block_tag_at(k, rt, &pid, &left), w, cap;
	/* relaxed: the engine publishes it; K6 */
	uint64_t cd = atomic_load_explicit(&sl->cooldown, memory_order_relaxed);

	w = atomic_load_explicit(&sh->word, memory_order_relaxed);
	if (vrl_block_tag(w) < tag || (k->kind == VRL_GLOBAL_SLOTS && vrl_block_tag(w) != tag)) {
		vrl_block_start(&sh->word, &sh->cap, tag);
		w = atomic_load_explicit(&sh->word, memory_order_relaxed);
	} else if (vrl_block_tag(w) != tag) {
		pid = vrl_block_tag(w) - 1;    /* a clock stepped back: the word's period */
		left = UINT64_MAX;
	}
	cap = atomic_load_explicit(&sh->cap, memory_order_relaxed);
	if (cap > VRL_QUOTA_COUNT_MAX)      /* a word a group member wrote: a bound */
		cap = VRL_QUOTA_COUNT_MAX;
	memset(e, 0, sizeof(*e));
	memcpy(e->id, k->id, sizeof(e->id));
	e->kind = k->kind;
	e->count = k->count;
	e->soft = k->soft;
	/* relaxed: counts, ordered by nothing (segment.h) */
	e->used_total = atomic_load_explicit(&sh->used, memory_order_relaxed);
	e->unmet_total = atomic_load_explicit(&sh->unmet, memory_order_relaxed);
	e->share.count = cap;
	e->held = vrl_block_consumed(w, cap);
	if (k->soft) {
		e->held = block_counted(k, sl, pid);
		e->share.count = cap > e->held ? cap : e->held;
	}
	e->period_id = pid;
	e->period_left_ns = left;
	e->cooldown_until = cd > vrl_mono_ns() ? cd : 0;
	e->gen = k->gen;
}

/*
 * B3 (K4 of a quota or slots key): a result's allocation, of the period
 * of the word only, applied by blocks.h V2: grown to what Redis counts
 * for the host, and after an OK answer clamped to the units used plus
 * the spare to keep, before the next entry reports it. Other answers
 * (fenced, seeding, behind: global.h) keep the allocation as it is. A
 * soft quota keeps the allocation for its report alone.
 */
static void block_apply(struct vrld_gkey *k, const struct vrl_seg_slot *sl,
			struct vrl_seg_share *sh, const struct vrl_global_result *r)
{
	uint64_t w = atomic_load_explicit(&sh->word, memory_order_relaxed);
	uint64_t tag = k->kind == VRL_GLOBAL_QUOTA ? vrl_block_tag_quota(r->period_id) :
						     VRL_BLOCK_SLOTS_TAG;
	bool ok = r->status == VRL_GLOBAL_OK;
	uint64_t used, cap, next;

	if (vrl_block_tag(w) != tag)
		return;       /* an answer of a period over, or not begun here */
	if (!k->soft) {
		vrl_block_apply(&sh->word, &sh->cap, tag, r->share.count, r->target, ok);
		return;
	}
	used = block_counted(k, sl, r->period_id);
	cap = atomic_load_explicit(&sh->cap, memory_order_relaxed);
	next = r->share.count > cap ? r->share.count : cap;
	if (ok && next > used + r->target)
		next = used + r->target;
	atomic_store_explicit(&sh->cap, next > used ? next : used, memory_order_relaxed);
}

/* K5 of a quota or slots key: its credit drained (blocks.h V3) before
 * vrl_global_stop reports what it keeps, the units used (a soft quota:
 * those its key counted). */
static void block_stop(struct vrld_gkey *k, const struct vrl_seg_slot *sl,
		       struct vrl_seg_share *sh, struct vrl_global_entry *e)
{
	uint64_t cap = vrl_block_drain(&sh->word, &sh->cap);

	if (k->soft) {
		cap = block_counted(k, sl, e->period_id);
		atomic_store_explicit(&sh->cap, cap, memory_order_relaxed);
	}
	e->share.count = cap;
}

/* ---- window keys: a cap (share.h "Window"; KW1 to KW3 above) -------------- */

/* KW1: the positions of window key @l in slot @i counted at @now (its
 * grants in the trailing W, reservations included): what a release keeps
 * counted. A key without a ring yet has none. */
static uint64_t window_held(const struct vrl_seg_view *v, const struct vrl_seg_limit *l,
			    uint64_t i, uint64_t now)
{
	struct vrl_window_ref r;

	if (vrl_window_ref_of(v, l, i, &r) != 0)
		return 0;
	return r.n - vrl_window_free_count(&r, now);
}

/* KW2 (K4 of a window key): FW1, the cap stored at once, a shrink as a
 * growth. */
static void window_apply(struct vrld_gkey *k, struct vrl_seg_share *sh,
			 const struct vrl_global_result *r)
{
	vrl_share_set_cap(&sh->word, r->share.count, r->expires);
	k->f.count = r->share.count;
	k->f.trusted = r->expires;
}

/* KW3: window key @k in slot @i, its word set to none: its grants counted
 * now, or all N when its limit cannot be read (the config moved on). */
static uint64_t window_held_final(const struct vrl_seg *s, const struct vrld_gkey *k,
				  uint64_t i, uint64_t now)
{
	const struct vrl_seg_view *v = &s->view;
	int li = s->cfg ? vrl_note_limit(atomic_load_explicit(&v->slots[i].limit,
							      memory_order_relaxed),
					 s->cfg->generation, s->cfg->nlimits) : -1;

	if (li < 0 || s->cfg->limits[li].kind != VRL_KIND_WINDOW ||
	    atomic_load_explicit(&v->slots[i].tag, memory_order_relaxed) != k->tag)
		return k->count;
	return window_held(v, &s->cfg->limits[li], i, now);
}

int vrld_gkeys_scan(struct vrld_gkeys *g, struct vrl_seg *s, uint64_t now)
{
	const struct vrl_seg_view *v = &s->view;
	const struct vrl_seg_config *cfg = s->cfg;
	uint64_t rt = vrld_gkeys_realtime();

	g->n = 0;
	if (!v->shares || !cfg)
		return 0;
	vrl_share_mark(&s->hdr->share_fill_ns, now);     /* F0: K3 fills below */
	if (!g->k) {
		g->k = calloc(v->nslots, sizeof(*g->k));
		if (!g->k)
			return -ENOMEM;
		g->nslots = v->nslots;
	}
	for (uint64_t i = 0; i < g->nslots; i++) {
		struct vrld_gkey *k = &g->k[i];
		struct vrl_seg_slot *sl = &v->slots[i];
		struct vrl_seg_share *sh = &v->shares[i];
		/* acquire: pairs with promotion (KT.K2): the slot's home and note
		 * are the key's */
		uint64_t tag = atomic_load_explicit(&sl->tag, memory_order_acquire);
		uint64_t st = atomic_load_explicit(&sl->state, memory_order_relaxed);
		bool live = (tag & VRL_TAG_LIVE) && !(tag & VRL_TAG_PENDING) &&
			    st != VRL_STATE_EVICTED;
		int li;

		if (k->tag && (!live || tag != k->tag)) {      /* K1 */
			set_none(sh);
			memset(k, 0, sizeof(*k));
		}
		if (!live)
			continue;
		li = vrl_note_limit(atomic_load_explicit(&sl->limit, memory_order_relaxed),
				    cfg->generation, cfg->nlimits);
		if (li >= 0 && (cfg->limits[li].flags & VRL_LIMIT_GLOBAL) &&
		    global_kind(&cfg->limits[li]) != 0) {
			const struct vrl_seg_limit *l = &cfg->limits[li];

			if (!k->tag) {                             /* K2 */
				k->kind = global_kind(l);
				key_id(l, k->kind, tag, atomic_load_explicit(&sl->home,
									     memory_order_relaxed),
				       k->id);
				k->tag = tag;
				if (is_block(k))
					block_take_up(k, l, sl, sh, rt);
				else
					set_none(sh);
			}
			block_figures(k, l);
			if (k->kind == VRL_GLOBAL_WINDOW)
				k->held = window_held(v, l, i, now);
			k->count = l->count;
			k->period_ns = l->period_ns;
			k->burst = l->burst;
			memcpy(k->limit, l->name, sizeof(k->limit));
			k->limit[sizeof(k->limit) - 1] = '\0';
		}
		if (!k->tag)
			continue;
		if (g->n % 64 == 0 && grow(g, g->n + 64) != 0)
			return -ENOMEM;
		/* K3 release fence: the tag read above before the fill (AQ.S3) */
		atomic_thread_fence(memory_order_release);
		if (is_block(k)) {
			block_tick(k, sl, sh, rt, &g->e[g->n]);
		} else {
			if (k->kind == VRL_GLOBAL_RATE)    /* KW2: a window's is not filled */
				vrl_share_tick(&k->f, &sh->word, now);
			entry(&g->e[g->n], k, sl, sh, now);
		}
		g->due[g->n] = k->kind != VRL_GLOBAL_RATE || k->f.rate == 0 ? UINT64_MAX :
			       now + k->fill_every;
		g->slot_of[g->n++] = i;
	}
	return build_map(g);
}

void vrld_gkeys_fill(struct vrld_gkeys *g, struct vrl_seg *s, uint64_t now)
{
	const struct vrl_seg_view *v = &s->view;

	if (!v->shares || !g->k)
		return;
	vrl_share_mark(&s->hdr->share_fill_ns, now);     /* F0 */
	for (size_t j = 0; j < g->n; j++) {
		uint64_t i, tag, st;
		struct vrld_gkey *k;
		struct vrl_seg_slot *sl;

		/* K7: not due yet (vrl_share_fill_interval; no rate: not until a
		 * new share), by a dense array, before anything else is read */
		if (now < g->due[j] && !g->fill_all)
			continue;
		i = g->slot_of[j];
		k = &g->k[i];
		sl = &v->slots[i];
		g->due[j] = UINT64_MAX;
		if (k->kind != VRL_GLOBAL_RATE || k->f.rate == 0)
			continue;
		/* acquire: as the scan's (KT.K2) */
		tag = atomic_load_explicit(&sl->tag, memory_order_acquire);
		st = atomic_load_explicit(&sl->state, memory_order_relaxed);
		/* K7: a key gone since the scan waits for the next scan's K1 */
		if (!k->tag || tag != k->tag || st == VRL_STATE_EVICTED ||
		    k->kind != VRL_GLOBAL_RATE)
			continue;
		/* K3's release fence: the tag read above before the fill (AQ.S3) */
		atomic_thread_fence(memory_order_release);
		vrl_share_tick(&k->f, &v->shares[i].word, now);
		/* half a step early: a pass that woke late must not make the
		 * next one skip the key (every other step, for a 1 ms key) */
		g->due[j] = now + k->fill_every - VRL_SHARE_FILL_NS / 2;
		/* relaxed: a hint for a denial's retry (AQ.S6), the step the next
		 * fill is for; nothing is decided on it */
		atomic_store_explicit(&v->shares[i].cap, now + k->fill_every, memory_order_relaxed);
	}
	g->fill_all = false;
}

void vrld_gkeys_apply(struct vrld_gkeys *g, struct vrl_seg *s, const struct vrl_global_result *r,
		      size_t n, uint64_t now)
{
	const struct vrl_seg_view *v = &s->view;

	if (!v->shares || !g->k)
		return;
	vrl_share_mark(&s->hdr->share_fill_ns, now);     /* F0: F1 in the applies below */
	for (size_t i = 0; i < n; i++) {
		uint64_t slot = find(g, r[i].id);
		struct vrld_gkey *k;

		if (slot == UINT64_MAX)
			continue;      /* a key gone since its entry: its lease lapses */
		k = &g->k[slot];
		if (!k->tag)
			continue;
		if (r[i].cooldown_until > now)
			close_until(&v->slots[slot], r[i].cooldown_until);
		if (r[i].gen == k->gen)
			continue;
		k->gen = r[i].gen;
		if (!r[i].apply)
			continue;      /* no lease yet: the word stays at none */
		if (is_block(k)) {
			block_apply(k, &v->slots[slot], &v->shares[slot], &r[i]);
			continue;
		}
		if (k->kind == VRL_GLOBAL_WINDOW) {
			window_apply(k, &v->shares[slot], &r[i]);
			continue;
		}
		/* K4: F1 under the share in force, then F2; K7 fills the new
		 * share at its next pass */
		vrl_share_apply(&k->f, &v->shares[slot].word, r[i].share.rate, r[i].share.burst,
				r[i].expires, now);
		k->fill_every = vrl_share_fill_interval(&k->f);
		g->fill_all = true;
	}
}

void vrld_gkeys_clamp_all(struct vrld_gkeys *g, struct vrl_seg *s)
{
	const struct vrl_seg_view *v = &s->view;
	uint64_t now = vrl_mono_ns();

	for (size_t i = 0; v->shares && g->k && i < g->n; i++) {
		uint64_t slot = g->slot_of[i];

		if (is_block(&g->k[slot])) {
			block_stop(&g->k[slot], &v->slots[slot], &v->shares[slot], &g->e[i]);
			continue;
		}
		/* K5: F3 before the release */
		set_none(&v->shares[slot]);
		memset(&g->e[i].share, 0, sizeof(g->e[i].share));
	}
	/* KW3 seq_cst: pairs with the worker's fence before it loads the word
	 * (acquire.c AQ.S5): a grant our count misses saw none, and undoes */
	atomic_thread_fence(memory_order_seq_cst);
	for (size_t i = 0; v->shares && g->k && i < g->n; i++)
		if (g->k[g->slot_of[i]].kind == VRL_GLOBAL_WINDOW)
			g->e[i].held = window_held_final(s, &g->k[g->slot_of[i]], g->slot_of[i],
							 now);
}

void vrld_gkeys_free(struct vrld_gkeys *g)
{
	free(g->k);
	free(g->e);
	free(g->slot_of);
	free(g->due);
	free(g->map);
	memset(g, 0, sizeof(*g));
}
