/*
 * gkeys.c - vrld's side of the keys of global limits (gkeys.h).
 *
 * Each tick, on the main loop, vrld walks the key table and keeps, in its
 * own memory, one struct vrld_gkey per slot that holds a key of a global
 * rate or window limit: the key's id (the same bytes on every host), the
 * limit's figures, and the share in force (struct vrl_share_fill). The segment
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
 *      scan get F1 again (vrld_gkeys_fill), each after the same tag check
 *      and release fence as K3; a key gone since the scan is skipped
 *      until the next scan's K1. So a host's share is added in steps of
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
 */
#include "gkeys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "keytable.h"
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

/* The engine's kind of global limit @l, 0 for a kind vrld does not hold
 * across hosts: the one dispatch on the kind of a limit. */
static enum vrl_global_kind global_kind(const struct vrl_seg_limit *l)
{
	if (!(l->flags & VRL_LIMIT_GLOBAL))
		return 0;
	switch (l->kind) {
	case VRL_KIND_RATE: return VRL_GLOBAL_RATE;
	case VRL_KIND_WINDOW: return VRL_GLOBAL_WINDOW;
	default: return 0;
	}
}

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

/* K3, K7: F1 for a rate key; a window's word is a cap, not filled. */
static void key_tick(struct vrld_gkey *k, struct vrl_seg_share *sh, uint64_t now)
{
	if (k->kind == VRL_GLOBAL_RATE)
		vrl_share_tick(&k->f, &sh->word, now);
}

/* K4: apply result @r to key @k's word: the one dispatch on the kind. */
static void key_apply(struct vrld_gkey *k, struct vrl_seg_share *sh,
		      const struct vrl_global_result *r, uint64_t now)
{
	if (k->kind == VRL_GLOBAL_WINDOW) {
		/* KW2: FW1, the cap stored at once, a shrink as a growth */
		vrl_share_set_cap(&sh->word, r->share.count, r->expires);
		k->f.count = r->share.count;
		k->f.trusted = r->expires;
		return;
	}
	/* F1 under the share in force, then F2 */
	vrl_share_apply(&k->f, &sh->word, r->share.rate, r->share.burst, r->expires, now);
}

static void set_none(struct vrl_seg_share *sh)
{
	vrl_share_set(&sh->word, 0, 0, true);
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

int vrld_gkeys_scan(struct vrld_gkeys *g, struct vrl_seg *s, uint64_t now)
{
	const struct vrl_seg_view *v = &s->view;
	const struct vrl_seg_config *cfg = s->cfg;

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
		if (li >= 0 && global_kind(&cfg->limits[li])) {
			const struct vrl_seg_limit *l = &cfg->limits[li];

			if (!k->tag) {                             /* K2 */
				k->kind = global_kind(l);
				key_id(l, k->kind, tag, atomic_load_explicit(&sl->home,
									     memory_order_relaxed),
				       k->id);
				k->tag = tag;
				set_none(sh);
			}
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
		key_tick(k, sh, now);
		entry(&g->e[g->n], k, sl, sh, now);
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
		uint64_t i = g->slot_of[j];
		struct vrld_gkey *k = &g->k[i];
		struct vrl_seg_slot *sl = &v->slots[i];
		/* acquire: as the scan's (KT.K2) */
		uint64_t tag = atomic_load_explicit(&sl->tag, memory_order_acquire);
		uint64_t st = atomic_load_explicit(&sl->state, memory_order_relaxed);

		/* K7: a key gone since the scan waits for the next scan's K1 */
		if (!k->tag || tag != k->tag || st == VRL_STATE_EVICTED)
			continue;
		/* K3's release fence: the tag read above before the fill (AQ.S3) */
		atomic_thread_fence(memory_order_release);
		key_tick(k, &v->shares[i], now);
	}
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
		key_apply(k, &v->shares[slot], &r[i], now);      /* K4 */
	}
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

void vrld_gkeys_clamp_all(struct vrld_gkeys *g, struct vrl_seg *s)
{
	const struct vrl_seg_view *v = &s->view;
	uint64_t now = vrl_mono_ns();

	for (size_t i = 0; v->shares && g->k && i < g->n; i++) {
		uint64_t slot = g->slot_of[i];

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
	free(g->map);
	memset(g, 0, sizeof(*g));
}
