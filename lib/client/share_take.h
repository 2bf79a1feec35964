/*
 * share_take.h - the global part of the acquire (acquire.c): what a key of
 * a global limit checks and takes besides its own kind, by the kind of its
 * share word: a rate key's bucket of this host's share (share.h), a quota
 * or slots key's block of the host's allocation (blocks.h), a window
 * key's cap (share.h "Window"). The steps and why they keep invariant 1
 * are acquire.c's AQ.S1 to AQ.S6 and AQ.B1, AQ.B2; this file holds the
 * functions that carry them out. Internal to acquire.c, which alone
 * includes it.
 */
#ifndef VRL_SHARE_TAKE_H
#define VRL_SHARE_TAKE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "look.h"
#include "verdict.h"
#include "kind.h"
#include "blocks.h"
#include "share.h"
#include "window.h"

/* ---- global keys: the share word (AQ.S1 to AQ.S4) -------------------------- */

/* AQ.S4: tries of an acquire whose takes met a newer pass of vrld's fill
 * (share.h F0) before it denies: a pass runs every few ms, so a second
 * try meets one only when the first was preempted long; a segment whose
 * fill time is out of reach (written by a hostile member) denies. */
#define SHARE_FRESH_TRIES 4u

/* Whether the key of @t takes from a share: its limit is global and not a
 * shadow (which denies nothing). A global limit in a segment without a
 * share area (a config area written so) has a share of none: it denies. */
static inline bool share_wanted(const struct vrl_client *c, const struct vrl_take *t)
{
	const struct vrl_limit *l = &c->cfg->limits[t->limit];

	return t->slot != UINT64_MAX && (l->seg.flags & VRL_LIMIT_GLOBAL) &&
	       !(l->seg.flags & VRL_LIMIT_SHADOW) &&
	       /* a soft quota is never short: it takes nothing (blocks.h) */
	       !(l->seg.kind == VRL_KIND_QUOTA && (l->seg.flags & VRL_LIMIT_SOFT));
}

/* ---- global quota and slots keys: blocks (blocks.h) --------------------------- */

/* Whether limit @l's share word is a block word (blocks.h): quota, slots. */
static inline bool share_blocks(const struct vrl_limit *l)
{
	return l->seg.kind == VRL_KIND_QUOTA || l->seg.kind == VRL_KIND_SLOTS;
}

/* AQ.B1: the tag a take of the key of @t is made under: a quota's, the
 * period its look judged it in (the period its grant is counted in). */
static inline uint64_t block_tag(const struct vrl_client *c, const struct vrl_take *t,
				 const struct look *lk)
{
	if (c->cfg->limits[t->limit].seg.kind == VRL_KIND_QUOTA)
		return vrl_block_tag_quota(lk->k.pid);
	return VRL_BLOCK_SLOTS_TAG;
}

static inline bool block_room(const struct vrl_client *c, const struct vrl_take *t,
			      const struct look *lk, uint64_t w, uint64_t cost)
{
	return vrl_block_judge(w, block_tag(c, t, lk), cost) == VRL_SHARE_GRANTED;
}

/* AQ.B2: give back the block takes of the global keys of @t[0..@upto),
 * all taken, of an acquire that grants nothing. */
static void blocks_give_back(const struct vrl_client *c, const struct vrl_take *t,
			     const struct look *lk, unsigned upto, uint64_t cost)
{
	for (unsigned i = 0; i < upto; i++)
		if (share_wanted(c, &t[i]) && share_blocks(&c->cfg->limits[t[i].limit]))
			vrl_block_give(&c->view.shares[t[i].slot].word, block_tag(c, &t[i], &lk[i]),
				       cost);
}

/* ---- global window keys: a cap (share.h "Window", AQ.S5) --------------------- */

/* AQ.S5: the ring of the window key of @t, as its look saw it. */
static struct vrl_window_ref window_ref(const struct vrl_client *c, const struct vrl_take *t,
					const struct look *lk)
{
	const struct vrl_kind_key k = vrl__kind_key(c, t, lk->s);

	return vrl_windowed_ref(&k);
}

/* AQ.S5, loads only: whether window key @t's cap could admit @cost at @at. */
static bool window_share_peek(const struct vrl_client *c, const struct vrl_take *t,
			      const struct look *lk, uint64_t cost, uint64_t now, uint64_t at)
{
	/* relaxed: share.h, the word carries no other data */
	uint64_t w = atomic_load_explicit(&c->view.shares[t->slot].word, memory_order_relaxed);
	const struct vrl_window_ref r = window_ref(c, t, lk);
	uint64_t cap = vrl_share_cap(w);

	if (!vrl_share_live(w, now) || cap < cost)
		return false;
	/* a cap of N or more: the ring's own look decided. Then the free run
	 * from the hint (O(log n), exact in time order, WIN.W4); only a
	 * denial by it is counted exactly, so no look denies what the check
	 * after the commit would grant */
	return cap >= r.n || r.n - vrl_window_remaining(&r, now) <= cap - cost ||
	       vrl_window_within(&r, at, cap - cost);
}

/* Whether the share of the key of @t (@lk its look) can give @cost at
 * @now (a window's grants counted at @at), by loads only: the kind's word
 * (rate, window: share.h; quota, slots: blocks.h). */
static bool share_room(const struct vrl_client *c, const struct vrl_take *t,
		       const struct look *lk, uint64_t cost, uint64_t now, uint64_t at)
{
	uint64_t need = cost > VRL_SHARE_BURST_MAX ? UINT64_MAX : cost << VRL_SHARE_FRAC_BITS;
	/* relaxed: share.h, blocks.h, the word carries no other data */
	uint64_t w = atomic_load_explicit(&c->view.shares[t->slot].word, memory_order_relaxed);

	if (share_blocks(&c->cfg->limits[t->limit]))
		return block_room(c, t, lk, w, cost);
	if (c->cfg->limits[t->limit].seg.kind == VRL_KIND_WINDOW)
		return window_share_peek(c, t, lk, cost, now, at);
	return vrl_share_live(w, now) && vrl_share_credit(w) >= need;
}

/* AQ.S1: the first global key of @t whose share cannot give @cost at @now,
 * by loads only; -1 when every one can. */
static int share_peek(const struct vrl_client *c, const struct vrl_take *t,
		      const struct look *lk, unsigned n, uint64_t cost, uint64_t now,
		      uint64_t at)
{
	for (unsigned i = 0; i < n; i++) {
		if (!share_wanted(c, &t[i]))
			continue;
		if (!c->view.shares || !share_room(c, &t[i], &lk[i], cost, now, at))
			return (int)i;
	}
	return -1;
}

/* AQ.S5: window key @t's grant of @cost committed at @at, checked against
 * its cap (share.h FW2): its ring's grants counted at @at within it. */
static enum vrl_share_verdict window_share_take(const struct vrl_client *c,
						const struct vrl_take *t, const struct look *lk,
						uint64_t at)
{
	const struct vrl_window_ref r = window_ref(c, t, lk);
	uint64_t w, cap;

	/* seq_cst: gkeys.c KW3, pairs with vrld's fence between its clamp to
	 * none at stop and its count of our positions for the release */
	atomic_thread_fence(memory_order_seq_cst);
	/* relaxed: share.h; F0's fence in vrl_share_fresh follows this load */
	w = atomic_load_explicit(&c->view.shares[t->slot].word, memory_order_relaxed);
	if (vrl_share_cap_at(w, at, &cap) != VRL_SHARE_GRANTED)
		return VRL_SHARE_LAPSED;
	return vrl_window_within(&r, at, cap) ? VRL_SHARE_GRANTED : VRL_SHARE_SHORT;
}

/* The take of @cost from the share of the key of @t at @now: the kind's. */
static enum vrl_share_verdict share_take_one(const struct vrl_client *c, const struct vrl_take *t,
					     const struct look *lk, uint64_t cost, uint64_t now)
{
	_Atomic uint64_t *word = &c->view.shares[t->slot].word;

	if (share_blocks(&c->cfg->limits[t->limit]))
		return vrl_block_take(word, block_tag(c, t, lk), cost);
	if (c->cfg->limits[t->limit].seg.kind == VRL_KIND_WINDOW)
		return window_share_take(c, t, lk, now);
	return vrl_share_take(word, cost, now);
}

/* AQ.S1 to S3: take @cost from the share of every global key of @t at
 * @now. -1 when all were taken (each counted as used); else the index of
 * the key whose share failed (@stale set when a key lost its slot), the
 * block takes before it given back (AQ.B2). */
static int share_take(const struct vrl_client *c, const struct vrl_take *t,
		      const struct look *lk, unsigned n, uint64_t cost, uint64_t now, bool *stale)
{
	*stale = false;
	for (unsigned i = 0; i < n; i++) {
		struct vrl_seg_share *sh;

		if (!share_wanted(c, &t[i]))
			continue;
		if (!c->view.shares)
			return (int)i;
		sh = &c->view.shares[t[i].slot];
		if (share_take_one(c, &t[i], &lk[i], cost, now) != VRL_SHARE_GRANTED) {
			blocks_give_back(c, t, lk, i, cost);
			return (int)i;
		}
		/* AQ.S3 acquire fence: pairs with vrld's release fence before a
		 * fill, so the tag below is no older than the one vrld filled for */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&c->view.slots[t[i].slot].tag, memory_order_relaxed) !=
		    vrl_key_tag(&t[i].key)) {
			*stale = true;
			blocks_give_back(c, t, lk, i + 1, cost);
			return (int)i;
		}
		/* relaxed: a count for vrld's reports, ordered by nothing */
		atomic_fetch_add_explicit(&sh->used, cost, memory_order_relaxed);
	}
	return -1;
}

/* The first global key of @t (one exists when the config has one and a
 * share was taken). */
static unsigned share_first(const struct vrl_client *c, const struct vrl_take *t, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (share_wanted(c, &t[i]))
			return i;
	return 0;
}

/* A denial for want of share on key @g of @t: counted as unmet demand,
 * retried after a tick of vrld's refill. */
/* AQ.S6: how long key @t's denial for want of share waits from @now. */
static uint64_t share_retry(const struct vrl_client *c, const struct vrl_take *t, uint64_t now)
{
	const struct vrl_limit *l = &c->cfg->limits[t->limit];
	uint64_t hb, next;

	if (l->seg.kind == VRL_KIND_RATE) {
		/* relaxed: vrld's next fill of the word, a hint (gkeys.c K7) */
		next = c->view.shares ?
		       atomic_load_explicit(&c->view.shares[t->slot].cap, memory_order_relaxed) : 0;
		if (next == 0 || next > now + VRL_SHARE_FILL_MAX_NS)
			return VRL_SHARE_RETRY_NS;     /* none due, or a word not vrld's */
		/* just after it; a fill that is late (vrld not yet woken) is
		 * close: look again soon rather than a whole step later */
		return next > now ? next - now + VRL_SHARE_RETRY_NS / 8 : VRL_SHARE_RETRY_NS / 8;
	}
	/* relaxed: a hint from vrld's heartbeat; nothing is decided on it */
	hb = atomic_load_explicit(&c->hdr->daemon_heartbeat_ns, memory_order_relaxed);
	next = hb + VRL_SHARE_TICK_NS + VRL_SHARE_RETRY_NS;
	if (hb > now || next <= now + VRL_SHARE_RETRY_NS)
		return VRL_SHARE_RETRY_NS;
	return next - now > VRL_SHARE_TICK_NS ? VRL_SHARE_TICK_NS : next - now;
}

static int share_denied(struct vrl_client *c, const struct vrl_take *t, const struct look *lk,
			unsigned n, unsigned g, uint64_t cost, uint64_t now, struct vrl_verdict *v)
{
	if (c->view.shares)
		/* relaxed: a count for vrld's reports */
		atomic_fetch_add_explicit(&c->view.shares[t[g].slot].unmet, cost,
					  memory_order_relaxed);
	v->at_ns = now;
	vrl__fill_denied(c, &t[g], &lk[g], now, v);
	vrl__adapt_fill(c, t, lk, n, now, now, false, v);
	v->retry_after_ns = share_retry(c, &t[g], now);
	v->remaining = 0;
	v->flags |= VRL_VERDICT_SHARE;
	return VRL_EDENIED;
}

#endif /* VRL_SHARE_TAKE_H */
