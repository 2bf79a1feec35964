/*
 * keytable.c - a lock-free, fixed-size hash table in shared memory.
 *
 * Open addressing with linear probing over struct vrl_seg_slot, one cache
 * line each. Workers insert keys themselves; only vrld removes them.
 *
 * Slot life cycle (tag word, see segment.h):
 *
 *     EMPTY --claim--> PENDING --promote--> LIVE --evict(vrld)--> DEAD
 *     FREE  --claim--> PENDING --demote---> DEAD --reclaim(vrld)--> FREE
 *
 * Guarantees
 *   KT.G1 Lookups and inserts are lock-free. No step waits on another process
 *      except a brief wait on a PENDING slot, which any waiter demotes after
 *      VRL_PENDING_TIMEOUT_NS, so a process killed mid-insert wedges nobody.
 *   KT.G2 A key is LIVE in at most one slot. Two live slots of one key would
 *      split its bucket and over-grant; the protocol below rules it out.
 *   KT.G3 Eviction never loses state: vrld evicts only a key whose state word
 *      it saw idle, by CAS on that very word; an acquire that raced it fails
 *      its CAS and re-resolves the key into a fresh slot. A cooldown set
 *      while the key is evicted is not lost either: the Dekker pair KT.E2
 *      gives it to the key's next slot (vrl_kt_evict).
 *
 * Why KT.G2 holds. Slots become claimable (EMPTY or FREE) only in two ways:
 * EMPTY is the initial state and never comes back, and FREE is made by vrld
 * alone inside the reclaim bracket (reclaim_seq odd). An inserter reads
 * reclaim_seq = s0 (even) before it scans, scans the whole probe sequence up
 * to the first EMPTY (a match ends the insert), claims the *first*
 * claimable slot by CAS to PENDING, then re-reads reclaim_seq: it promotes
 * its claim only if the word is still s0, and demotes it to DEAD otherwise.
 * All of these are seq_cst, so they fall in one total order.
 *
 * Suppose inserters A and B both promote slots a and b of one key, a
 * before b in its probe sequence. B claimed b, the first claimable slot of
 * its scan, so B read a as not claimable; A read it claimable and claimed
 * it. B cannot have read a after A's claim (it would have found A's pending
 * key and waited). So a became claimable between B's read of a and A's
 * claim, which only a reclaim bracket does. That bracket cannot end before
 * B's window [s0, s1] starts (B read a inside it) nor start after A's window
 * ends (A claimed inside it). If it overlaps either window, that inserter
 * saw reclaim_seq move and demoted. Otherwise B promoted before the bracket
 * opened and A read s0 after it closed: A's scan then passed a (FREE, not
 * EMPTY) and reached b, since no EMPTY lies before b (B would have claimed
 * it and EMPTY never returns), found the key live there and never claimed.
 * Either way one of them did not promote.
 *
 * Pending slots are not usable: anyone who finds its key PENDING waits for
 * the promotion (normally well under a microsecond) and demotes the slot
 * after the timeout. A demoted claim costs one DEAD slot until vrld's next
 * reclaim; its owner, if alive, fails to promote and starts over.
 *
 * Why a crash is safe anywhere: a claim is one CAS; everything written
 * between claim and promotion is invisible to users of the key; promotion
 * is one CAS; eviction is two CASes, and a LIVE slot whose state is EVICTED
 * is treated by everyone as DEAD (they help by writing DEAD). A reclaim
 * bracket left odd by a dead vrld is closed by whoever notices that the
 * heartbeat stopped.
 *
 * Trust: the table's place and size come from the caller's private view
 * of the segment (segment.h), never from the header, and every index is
 * a probe position reduced modulo that size; tags and state words are
 * data, and a garbage one is at worst a key that is not found or a slot
 * that is not claimable.
 */
#include "keytable.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "clock.h"
#include "vrl.h"

#define SEP 0x1f /* unit separator between hashed parts */

static uint64_t now_ns(void)
{
	return vrl_mono_ns();
}

void vrl_key_hash(const char *limit, const char *const *parts, size_t nparts,
		  struct vrl_key *k)
{
	XXH3_state_t st;
	XXH128_hash_t hv;
	unsigned char sep = SEP;

	XXH3_128bits_reset(&st);
	XXH3_128bits_update(&st, limit, strlen(limit));
	for (size_t i = 0; i < nparts; i++) {
		const char *p = parts[i] ? parts[i] : "";
		uint32_t len = (uint32_t)strlen(p);

		XXH3_128bits_update(&st, &sep, 1);
		XXH3_128bits_update(&st, &len, sizeof(len));
		XXH3_128bits_update(&st, p, len);
	}
	hv = XXH3_128bits_digest(&st);
	k->home = hv.high64;
	k->fp = hv.low64 & VRL_TAG_FP_MASK;
	if (k->fp == 0)
		k->fp = 1;
}

static inline struct vrl_seg_slot *slot_at(const struct vrl_seg_view *v, uint64_t idx)
{
	return &v->slots[idx];
}

static inline uint64_t probe_idx(uint64_t home, uint64_t i, uint64_t n)
{
	uint64_t x = home + i;

	return x >= n ? x - n : x;
}

static inline uint64_t probe_len(const struct vrl_seg_view *v)
{
	return v->nslots < VRL_MAX_PROBE ? v->nslots : VRL_MAX_PROBE;
}

/*
 * A live slot whose state word says EVICTED is logically deleted; finish the
 * deletion for vrld (it may have died between its two CASes).
 */
static void help_evicted(struct vrl_seg_slot *s, uint64_t tag)
{
	/* seq_cst: a tag transition, ordered with the inserters' scans */
	atomic_compare_exchange_strong(&s->tag, &tag, VRL_TAG_DEAD);
}

/*
 * Wait for a pending slot to settle. Returns when the tag changed, or after
 * demoting it once the timeout passed.
 */
static void wait_pending(struct vrl_seg_header *h, struct vrl_seg_slot *s, uint64_t tag)
{
	uint64_t start = 0;

	for (unsigned spins = 0;; spins++) {
		if (atomic_load_explicit(&s->tag, memory_order_relaxed) != tag)
			return;
		if (spins < 64)
			continue;
		if (start == 0)
			start = now_ns();
		if (now_ns() - start > VRL_PENDING_TIMEOUT_NS) {
			/* seq_cst: demotion is a tag transition like a claim */
			if (atomic_compare_exchange_strong(&s->tag, &tag, VRL_TAG_DEAD))
				atomic_fetch_add_explicit(&h->abandoned, 1, memory_order_relaxed);
			return;
		}
		sched_yield();
	}
}

/* What a scan of the probe sequence found. */
struct scan {
	int found;              /* 1: live key at idx; -1: must rescan */
	uint64_t idx;
	uint64_t claim;         /* first claimable slot, or UINT64_MAX */
	uint64_t claim_tag;     /* its tag (EMPTY or FREE) */
};

static struct scan scan_for(const struct vrl_seg_view *v, const struct vrl_key *k)
{
	struct scan r = { .found = 0, .claim = UINT64_MAX };
	uint64_t live = vrl_key_tag(k), pend = live | VRL_TAG_PENDING;
	uint64_t n = v->nslots, home = vrl_key_home(k, n), len = probe_len(v);

	for (uint64_t i = 0; i < len; i++) {
		uint64_t idx = probe_idx(home, i, n);
		struct vrl_seg_slot *s = slot_at(v, idx);
		/* seq_cst: the scan is ordered with claims and brackets (KT.G2) */
		uint64_t t = atomic_load(&s->tag);

		if (t == VRL_TAG_EMPTY || t == VRL_TAG_FREE) {
			if (r.claim == UINT64_MAX) {
				r.claim = idx;
				r.claim_tag = t;
			}
			if (t == VRL_TAG_EMPTY)
				return r;
			continue;
		}
		if (t == pend) {
			wait_pending(v->hdr, s, t);
			r.found = -1;
			return r;
		}
		if (t != live)
			continue;
		/* acquire: pairs with the eviction CAS (KT.E1), its tag is seen */
		if (atomic_load_explicit(&s->state, memory_order_acquire) == VRL_STATE_EVICTED) {
			help_evicted(s, t);
			continue;
		}
		r.found = 1;
		r.idx = idx;
		return r;
	}
	return r;
}

int vrl_kt_find(const struct vrl_seg_view *v, const struct vrl_key *k, uint64_t *idx)
{
	uint64_t live = vrl_key_tag(k), pend = live | VRL_TAG_PENDING;
	uint64_t n = v->nslots, home = vrl_key_home(k, n), len = probe_len(v);

	for (uint64_t i = 0; i < len; i++) {
		struct vrl_seg_slot *s = slot_at(v, probe_idx(home, i, n));
		/* acquire: pairs with the release of promotion (KT.K2) */
		uint64_t t = atomic_load_explicit(&s->tag, memory_order_acquire);

		if (t == VRL_TAG_EMPTY)
			break;
		if (t == pend) {
			/* read-only callers may not demote; a short wait then retry */
			for (unsigned spin = 0; spin < 1000 && atomic_load_explicit(
				&s->tag, memory_order_acquire) == pend; spin++)
				sched_yield();
			t = atomic_load_explicit(&s->tag, memory_order_acquire);
		}
		if (t != live)
			continue;
		if (atomic_load_explicit(&s->state, memory_order_relaxed) == VRL_STATE_EVICTED)
			continue;
		*idx = probe_idx(home, i, n);
		return 0;
	}
	return VRL_ENOKEY;
}

/* Wait for an even reclaim_seq. Returns it, or UINT64_MAX after too long. */
static uint64_t wait_even(struct vrl_seg_header *h)
{
	uint64_t start = 0;

	for (;;) {
		/* seq_cst: s0 of the insert protocol (KT.G2) */
		uint64_t s = atomic_load(&h->reclaim_seq);

		if ((s & 1) == 0)
			return s;
		if (start == 0)
			start = now_ns();
		if (now_ns() - start > VRL_BRACKET_WAIT_NS) {
			vrl_kt_repair_bracket(h, now_ns());
			/* a repair that closed it is seen at once: a waiter held
			 * off the CPU past the give-up time still takes it */
			s = atomic_load(&h->reclaim_seq);
			if ((s & 1) == 0)
				return s;
			if (now_ns() - start > 2 * VRL_BRACKET_WAIT_NS)
				return UINT64_MAX;
		}
		sched_yield();
	}
}

static void fill_slot(struct vrl_seg_slot *s, const struct vrl_key *k, uint32_t limit,
		      const char *label, int reused)
{
	size_t len = label ? strnlen(label, VRL_LABEL_MAX - 1) : 0;

	/* Nobody uses a pending slot; these stores are published by KT.K2. */
	if (reused || atomic_load_explicit(&s->state, memory_order_relaxed) != 0) {
		/* release: a stale acquirer whose CAS lands after this sees
		 * the pending tag on its re-check (see acquire.c, AQ.A3) */
		atomic_store_explicit(&s->state, 0, memory_order_release);
	}
	atomic_store_explicit(&s->cooldown, 0, memory_order_relaxed);
	atomic_store_explicit(&s->limit, limit, memory_order_relaxed);
	atomic_store_explicit(&s->aux, 0, memory_order_relaxed);
	atomic_store_explicit(&s->home, k->home, memory_order_relaxed);
	memcpy(s->label, label ? label : "", len);
	memset(s->label + len, 0, VRL_LABEL_MAX - len);
}

int vrl_kt_get(const struct vrl_seg_view *v, const struct vrl_key *k, uint32_t limit,
	       const char *label, uint64_t *idx)
{
	struct vrl_seg_header *h = v->hdr;
	uint64_t live = vrl_key_tag(k), pend = live | VRL_TAG_PENDING;

	for (;;) {
		uint64_t s0 = wait_even(h), s1;
		struct scan r;
		struct vrl_seg_slot *s;
		uint64_t expect;

		if (s0 == UINT64_MAX)
			return VRL_EBUSY;
		r = scan_for(v, k);
		if (r.found == 1) {
			*idx = r.idx;
			return 0;
		}
		if (r.found < 0)
			continue;
		if (r.claim == UINT64_MAX) {
			atomic_fetch_add_explicit(&h->table_full, 1, memory_order_relaxed);
			return VRL_EFULL;
		}
		s = slot_at(v, r.claim);
		expect = r.claim_tag;
		/* KT.K1 seq_cst: the claim, ordered with scans and brackets (KT.G2) */
		if (!atomic_compare_exchange_strong(&s->tag, &expect, pend))
			continue;
		fill_slot(s, k, limit, label, r.claim_tag == VRL_TAG_FREE);
		/* seq_cst: the re-read of the insert protocol (KT.G2) */
		s1 = atomic_load(&h->reclaim_seq);
		expect = pend;
		if (s1 != s0) {
			atomic_compare_exchange_strong(&s->tag, &expect, VRL_TAG_DEAD);
			continue;
		}
		/* KT.K2 seq_cst (at least release): publishes fill_slot's stores */
		if (!atomic_compare_exchange_strong(&s->tag, &expect, live))
			continue; /* demoted by a waiter that timed out */
		atomic_fetch_add_explicit(&h->inserts, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&h->keys_live, 1, memory_order_relaxed);
		*idx = r.claim;
		return 0;
	}
}

void (*vrl__kt_evicting)(struct vrl_seg_slot *s);

/*
 * Put evicted slot @s's key (live tag @tag) back with cooldown @until: the
 * key is idle (vrld evicts no other), so a fresh slot, full, is the same
 * key; only its cooldown would have been lost. The key is rebuilt from
 * the slot as a checkpoint does (home and fingerprint). When no slot is
 * free near its home the key cannot come back for anyone: a worker's own
 * insert then meets the table full, and `on_full` decides.
 */
static void carry_cooldown(const struct vrl_seg_view *v, struct vrl_seg_slot *s, uint64_t tag,
			   uint64_t until)
{
	const struct vrl_key k = {
		.home = atomic_load_explicit(&s->home, memory_order_relaxed),
		.fp = tag & VRL_TAG_FP_MASK,
	};
	uint32_t note = atomic_load_explicit(&s->limit, memory_order_relaxed);
	char label[VRL_LABEL_MAX];
	uint64_t idx;

	/* the slot is DEAD: only vrld reuses it, after a reclaim; a hostile
	 * writer's bytes are at worst a wrong label, ended here */
	memcpy(label, s->label, sizeof(label));
	label[sizeof(label) - 1] = 0;
	if (vrl_kt_get(v, &k, note, label, &idx))
		return;
	struct vrl_seg_slot *n = slot_at(v, idx);
	uint64_t cur = atomic_load_explicit(&n->cooldown, memory_order_relaxed);

	/* seq_cst: a cooldown store, as op_cooldown's */
	while (cur < until && !atomic_compare_exchange_weak(&n->cooldown, &cur, until))
		;
}

int vrl_kt_evict(const struct vrl_seg_view *v, uint64_t idx, uint64_t state, uint64_t now)
{
	struct vrl_seg_header *h = v->hdr;
	struct vrl_seg_slot *s;

	if (idx >= v->nslots)
		return 0;
	s = slot_at(v, idx);
	/* acquire: pairs with promotion (KT.K2), the slot's fields are ready */
	uint64_t t = atomic_load_explicit(&s->tag, memory_order_acquire);

	if (!(t & VRL_TAG_LIVE) || (t & VRL_TAG_PENDING) || state == VRL_STATE_EVICTED)
		return 0;
	if (atomic_load_explicit(&s->cooldown, memory_order_relaxed) > now)
		return 0;
	if (vrl__kt_evicting)
		vrl__kt_evicting(s);
	/* KT.E1 seq_cst: wins against every acquire that read @state (KT.G3),
	 * and is the store half of vrld's side of the KT.E2 pair */
	if (!atomic_compare_exchange_strong(&s->state, &state, VRL_STATE_EVICTED))
		return 0;
	help_evicted(s, t);
	atomic_fetch_add_explicit(&h->evictions, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&h->keys_live, 1, memory_order_relaxed);
	/* KT.E2 seq_cst: the load half. A worker's cooldown stores the
	 * cooldown, then loads the state (keyops.c, op_cooldown), both
	 * seq_cst: either it sees EVICTED and sets its cooldown on the key's
	 * next slot itself, or this load sees the cooldown, which then goes
	 * with the key. The check above is only a filter: a cooldown can land
	 * between it and the CAS. */
	uint64_t until = atomic_load(&s->cooldown);

	if (until > now)
		carry_cooldown(v, s, t, until);
	return 1;
}

uint64_t vrl_kt_reclaim(const struct vrl_seg_view *v, uint64_t first, uint64_t count)
{
	struct vrl_seg_header *h = v->hdr;
	uint64_t end = first >= v->nslots || count > v->nslots - first ? v->nslots : first + count;
	uint64_t done = 0;

	/* KT.B1 seq_cst: opens the bracket before any slot becomes FREE (KT.G2) */
	atomic_fetch_add(&h->reclaim_seq, 1);
	for (uint64_t i = first; i < end; i++) {
		struct vrl_seg_slot *s = slot_at(v, i);
		uint64_t t = VRL_TAG_DEAD;

		/* seq_cst: a slot becomes claimable inside the bracket */
		if (atomic_load_explicit(&s->tag, memory_order_relaxed) == VRL_TAG_DEAD &&
		    atomic_compare_exchange_strong(&s->tag, &t, VRL_TAG_FREE))
			done++;
	}
	/* KT.B2 seq_cst: closes the bracket after the last FREE (KT.G2) */
	atomic_fetch_add(&h->reclaim_seq, 1);
	return done;
}

void vrl_kt_repair_bracket(struct vrl_seg_header *h, uint64_t now)
{
	/* seq_cst: read as the bracket is written (KT.B1, KT.B2) */
	uint64_t s = atomic_load(&h->reclaim_seq);
	uint64_t beat = atomic_load_explicit(&h->daemon_heartbeat_ns, memory_order_relaxed);

	if ((s & 1) == 0 || (beat <= now && now - beat < VRL_DAEMON_DEAD_NS))
		return;
	/* seq_cst: closes a bracket whose owner is gone; the CAS keeps a
	 * concurrent repair from closing it twice */
	atomic_compare_exchange_strong(&h->reclaim_seq, &s, s + 1);
}
