/*
 * acquire.c - the acquire engine: look, commit, roll back, the verdict.
 *
 * The acquire path, for n matched limits at time `now`:
 *
 *   1. Look:   for each key read tag, cooldown and state (no write) and
 *              compute the earliest time `at` at which all n conform.
 *              A denial ends here: it writes nothing.
 *   2. Commit: for each key CAS its state word from the value seen to the
 *              value after taking `cost` permits at `at`. A CAS that loses
 *              a race re-reads and retries while the key still conforms
 *              at `at`; if it no longer does, the keys already taken are
 *              rolled back and the acquire starts over.
 *   3. Check:  after each CAS, re-read the slot's tag. If vrld evicted the
 *              slot and another key took it between our look and our CAS,
 *              our permit landed on the wrong key: undo it and re-resolve.
 *
 * Invariants
 *   A1 Never over-grant. Each CAS moves a key's state by exactly the GCRA
 *      rule (gcra.h), which bounds any window whatever the order of grants.
 *      Rollback restores a key's state only when nobody took it after us
 *      (CAS from our value back to the one we replaced); otherwise our
 *      permits stay taken. So compensation can make a concurrent request
 *      wait, never let one through.
 *   A2 No lock: every step is a load or a single-word CAS. A process
 *      killed between two CASes of a stacked acquire leaves permits taken
 *      on some keys, which delays others by at most that cost, and never a
 *      word that anyone waits on.
 *   A3 A stale slot is detected. vrld evicts a key by CAS of the state word
 *      to EVICTED (keytable.c E1), so a CAS based on a value read before
 *      the eviction fails; if the slot was evicted and reused and its state
 *      word happens to be back at the value we read, the tag re-check after
 *      our CAS (acquire, pairing with the release in fill_slot) shows the
 *      slot's new owner, and we undo.
 *   A4 Denials are read-only on the shared line: step 1 only loads.
 *
 * Reloads (gcra.h has the proof). A rate key's word carries the epoch of
 * the parameters that wrote it, and a word of the epoch before is
 * converted by the acquire that first CASes it, keeping the key's fill:
 *   G1 An acquire never reads a word newer than its config: each word is
 *      loaded with acquire order and config_gen after it, and every CAS
 *      that writes a word is a release, by a process whose config was in
 *      force when it loaded config_gen; so a look whose config_gen is the
 *      handle's (its snapshot's gen_word) sees words of that config or
 *      older. A look that finds a newer config published starts over with
 *      it (VRL__RESTART).
 *   C1 No grant uses a clock read before the conversion of its word: take()
 *      reads rate_conversions, the clock, then its keys, and the count
 *      again; if it moved or was odd, or a word needs converting, it looks
 *      again with every key loaded before the clock read. A word it gets
 *      back from a failed CAS, or loads again for a waiting acquire, is
 *      used with that clock only if it has the tag of the word looked at,
 *      needs no conversion and the count did not move; else the acquire
 *      starts over. A converter adds 2 to the count between its clock read
 *      and its CAS. A waiting acquire checks its rate keys on waking
 *      (reservation_lost()).
 *   A new key's word is 0, full under any parameters: an acquire first
 *   writes a full word of its own epoch there and looks again, so it never
 *   CASes from a value that a reset or re-insert can bring back.
 * A handle that cannot copy a new config (vrld rewrote the area under it
 * every time) keeps its own, marked stale, and uses a rate word only as
 * gcra.h allows; after RESTARTS_MAX tries it denies what it cannot read.
 *
 * Counted kinds (quota, slots) follow the same three steps with a count in
 * the state word instead of a TAT: the CAS adds the cost to the count the
 * look saw, so A1 holds for them by the same argument (each grant moves the
 * word by exactly its cost from a value that had room for it). Their
 * rollback gives the cost back (a count is additive, so this is exact even
 * when others took units after us), never below zero. A quota or slots key
 * without room denies at once, even a waiting acquire: no time is known at
 * which units come back (a quota's next period is days away, a slot waits
 * for a release), so waiting there would only hold the caller.
 */
#include "client.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "alert.h"
#include "clock.h"
#include "quota.h"

/* CLOCK_REALTIME in ns: read only when a quota limit is looked at. */
uint64_t (*vrl__realtime_ns)(void) = vrl_wall_ns;

/* What step 1 saw of one key. */
struct look {
	struct vrl_seg_slot *s;
	uint64_t state;          /* the state word as loaded */
	uint64_t cd;             /* the cooldown as loaded */
	uint64_t gen;            /* config_gen, loaded after the state word */
	uint64_t conv;           /* rate_conversions, loaded before the clock (C1) */
	uint64_t tat;            /* rate: the word's TAT under the limit's parameters */
	uint64_t earliest;       /* earliest conforming time; UINT64_MAX: never */
	struct vrl_gcra_step r;   /* rate kinds: the decision at `at` */
	struct vrl_window_look w; /* window: where to take at `at` */
	uint64_t w_at;           /* window: the time its positions were taken at */
	struct vrl_quota_step q;  /* quota and slots: the decision */
	uint64_t pid;            /* quota: the current period's id */
	uint64_t end_rt;         /* quota: wall-clock end of the period; UINT64_MAX: once */
	uint64_t rt;             /* quota: the wall-clock time it was judged at */
	bool convert;            /* rate: a word of another epoch, converted at `now` */
	bool shadow_deny;        /* a shadow limit that would deny */
	bool cooled;             /* held back by a cooldown */
	bool final;              /* a count without room: waiting cannot help */
};

/*
 * LOOK_NEWER: a rate word that the handle's (stale) config cannot read;
 * LOOK_NEW: a rate key's word is 0, to be marked (mark_new_key());
 * LOOK_CONVERT: a rate word to convert, met by a look not yet careful (C1).
 */
enum { LOOK_OK = 0, LOOK_STALE = 1, LOOK_NEWER = 2, LOOK_NEW = 3, LOOK_CONVERT = 4 };


static bool counted(uint32_t kind)
{
	return kind == VRL_KIND_QUOTA || kind == VRL_KIND_SLOTS;
}

/*
 * The decision of a quota or slots key in state @state; *@rt is read once.
 * A stale handle (@stale: its config is not the one in force) reads only a
 * quota word of its own current period, or one that counts nothing: a
 * newer config may have changed the calendar. LOOK_NEWER otherwise.
 */
static int look_counted(const struct vrl_limit *l, uint64_t cost, uint64_t now, uint64_t at,
			uint64_t *rt, bool stale, struct look *lk)
{
	if (l->seg.kind == VRL_KIND_QUOTA) {
		uint64_t st;

		if (*rt == 0)
			*rt = vrl__realtime();
		lk->rt = *rt;
		vrl_quota_period(&l->seg, *rt, &lk->pid, NULL, &lk->end_rt);
		st = vrl__quota_view(l, lk->state, lk->pid);
		if (stale && vrl_quota_word_used(st) && vrl_quota_word_id(st) != lk->pid)
			return LOOK_NEWER;
		lk->q = vrl_quota_take(&l->seg, st, lk->pid, cost);
	} else {
		lk->q = vrl_slots_take(&l->seg, lk->state, cost);
	}
	lk->earliest = at;
	if (lk->q.conforms)
		return LOOK_OK;
	lk->final = true;
	if (cost > l->seg.count || l->seg.kind == VRL_KIND_SLOTS)
		lk->earliest = cost > l->seg.count ? UINT64_MAX : now;
	else
		lk->earliest = lk->end_rt == UINT64_MAX ? UINT64_MAX : now + (lk->end_rt - lk->rt);
	return LOOK_OK;
}

/*
 * A stale handle (its config could not be refreshed, or a reload storm
 * outran it: @gen is not its generation) may use rate word @w only if @w
 * is of its epoch or the one before and fewer than 7 configs were published
 * since its own, so that the tag cannot have wrapped (gcra.h).
 */
static bool stale_word_ok(const struct vrl_snapshot *cfg, const struct vrl_limit *l,
			  uint64_t w, uint64_t gen)
{
	unsigned tag = vrl_gcra_tag(w);

	return gen - cfg->gen_word < VRL_GCRA_TAGS - 1 &&
	       (w == 0 || tag == l->tag || tag == vrl_gcra_epoch_tag(l->tag + VRL_GCRA_TAGS - 1));
}

/* The parameters that wrote a rate word of tag @tag, as @l knows them. */
static const struct vrl_gcra *rate_params(const struct vrl_limit *l, unsigned tag)
{
	if (tag == l->tag)
		return &l->gcra;
	if (tag == vrl_gcra_epoch_tag(l->tag + VRL_GCRA_TAGS - 1) && l->prev.burst)
		return &l->prev;
	return NULL;   /* an older epoch: unknown */
}

uint64_t vrl_rate_tat(const struct vrl_limit *l, uint64_t w, uint64_t now)
{
	if (w == 0 || vrl_gcra_tag(w) == l->tag)
		return vrl_gcra_tat(w);
	return vrl_gcra_convert(rate_params(l, vrl_gcra_tag(w)), &l->gcra, vrl_gcra_tat(w), now);
}

/*
 * The TAT that rate word @lk->state has under @l's parameters at @now:
 * its own, or, for a word of another epoch, the conversion that keeps its
 * fill (gcra.h); a word of 0 (a new key) is full. LOOK_NEWER when the
 * handle's config is stale and cannot read the word; LOOK_NEW for a new
 * key, which take() marks first; LOOK_CONVERT for a word to convert
 * unless @careful (take(): words loaded before the clock read).
 */
static inline int rate_view(const struct vrl_client *c, const struct vrl_limit *l,
			    struct look *lk, uint64_t now, bool careful)
{
	uint64_t w = lk->state;
	unsigned tag = vrl_gcra_tag(w);

	lk->convert = false;
	lk->tat = vrl_gcra_tat(w);
	if (__builtin_expect(lk->gen != c->cfg->gen_word, 0) &&
	    !stale_word_ok(c->cfg, l, w, lk->gen))
		return LOOK_NEWER;
	if (__builtin_expect(tag == l->tag && w != 0, 1))
		return LOOK_OK;
	if (w == 0)
		return LOOK_NEW;
	if (!careful)
		return LOOK_CONVERT;
	lk->convert = true;
	lk->tat = vrl_gcra_convert(rate_params(l, tag), &l->gcra, lk->tat, now);
	return LOOK_OK;
}

/*
 * Step 1, loads: the tag (the key still owns the slot), the state word and
 * the cooldown, then config_gen. No write. LOOK_STALE when the slot no
 * longer holds the key.
 */
static inline __attribute__((always_inline)) int look_load(struct vrl_client *c,
							   const struct vrl_take *t,
							   struct look *lk)
{
	struct vrl_seg_slot *s = &c->view.slots[t->slot];

	/* every field is set by look_judge() on the LOOK_OK path; a stale
	 * look is never read (take() re-places the key and looks again) */
	lk->s = s;
	/* acquire: pairs with promotion (K2), the slot's fields are ready */
	if (atomic_load_explicit(&s->tag, memory_order_acquire) != vrl_key_tag(&t->key))
		return LOOK_STALE;
	/* G1 acquire: pairs with the release of the CAS that wrote the word,
	 * so the config_gen load below sees the config its writer used
	 * (gcra.h: an acquire never reads a word newer than its config) */
	lk->state = atomic_load_explicit(&s->state, memory_order_acquire);
	if (lk->state == VRL_STATE_EVICTED)
		return LOOK_STALE;
	lk->cd = atomic_load_explicit(&s->cooldown, memory_order_relaxed);
	/* relaxed: ordered after the state word by G1 */
	lk->gen = atomic_load_explicit(&c->hdr->config_gen, memory_order_relaxed);
	return LOOK_OK;
}

/* Step 1, the decision for @cost at @at (>= @now) from what look_load() saw
 * (@careful: see rate_view()). */
static inline __attribute__((always_inline)) int
look_judge(struct vrl_client *c, const struct vrl_take *t, uint64_t cost, uint64_t now,
	   uint64_t at, uint64_t *rt, bool careful, struct look *lk)
{
	const struct vrl_limit *l = &c->cfg->limits[t->limit];

	lk->shadow_deny = false;
	lk->cooled = false;
	lk->final = false;
	lk->convert = false;
	lk->tat = 0;
	if (l->seg.kind == VRL_KIND_RATE) {
		int rc = rate_view(c, l, lk, now, careful);

		if (rc != LOOK_OK)
			return rc;
		lk->r = vrl_gcra_step(&l->gcra, lk->tat, now, at, cost);
		lk->earliest = lk->r.conforms ? at :
			lk->r.retry_after == UINT64_MAX ? UINT64_MAX : now + lk->r.retry_after;
	} else if (l->seg.kind == VRL_KIND_WINDOW) {
		struct vrl_window_ref w = vrl__window_ref(c, t, lk->s);

		/* W2 in window.c: the position reads come after the state
		 * word's (acquire) load */
		atomic_thread_fence(memory_order_acquire);
		vrl_window_look(&w, lk->state, cost, at, &lk->w);
		lk->r = (struct vrl_gcra_step){ .conforms = lk->w.earliest == at };
		lk->earliest = lk->w.earliest;
	} else if (counted(l->seg.kind)) {
		lk->r = (struct vrl_gcra_step){ .conforms = true };
		if (look_counted(l, cost, now, at, rt, lk->gen != c->cfg->gen_word, lk) ==
		    LOOK_NEWER)
			return LOOK_NEWER;
	} else {
		lk->r = (struct vrl_gcra_step){ .conforms = true };
		lk->earliest = at;
	}
	if (!lk->final && lk->cd > lk->earliest && lk->earliest != UINT64_MAX) {
		lk->earliest = lk->cd;
		lk->cooled = true;
	}
	if ((l->seg.flags & VRL_LIMIT_SHADOW) && (lk->earliest > at || lk->final)) {
		lk->shadow_deny = true;
		lk->final = false;
		lk->earliest = at;
	}
	return LOOK_OK;
}

/* Both steps of a look, for callers that write nothing (vrl__tightest). */
static int look_at(struct vrl_client *c, const struct vrl_take *t, uint64_t cost,
		   uint64_t now, uint64_t at, uint64_t *rt, struct look *lk)
{
	int rc = look_load(c, t, lk);

	return rc == LOOK_OK ? look_judge(c, t, cost, now, at, rt, true, lk) : rc;
}

/* Undo a CAS of ours if nobody moved the word since (A1). */
static bool undo(struct vrl_seg_slot *s, uint64_t ours, uint64_t before)
{
	/* release (G1): a reader of the word put back sees the config its
	 * first writer used; a failed undo leaves permits taken, which is safe */
	return atomic_compare_exchange_strong_explicit(&s->state, &ours, before,
						       memory_order_release, memory_order_relaxed);
}

/* True when a conversion may have come between @lk's clock read and a
 * word loaded now (C1): the count moved, or vrld's pass was on. */
static inline bool conv_moved(const struct vrl_client *c, const struct look *lk)
{
	/* relaxed: ordered after the word by its load's acquire (C1) */
	return (lk->conv & 1) ||
	       atomic_load_explicit(&c->hdr->rate_conversions, memory_order_relaxed) != lk->conv;
}

/* True when vrld published a config since @lk's look: a word loaded from
 * here on may be newer than the look's config (G1). */
static inline bool gen_moved(const struct vrl_client *c, const struct look *lk)
{
	/* relaxed: ordered after the state word by the failed CAS's acquire */
	return atomic_load_explicit(&c->hdr->config_gen, memory_order_relaxed) != lk->gen;
}

enum { COMMIT_OK = 0, COMMIT_RETRY = 1, COMMIT_STALE = 2 };

/* commit_one() for a window key: positions, then the state word (window.c). */
static int commit_window(struct vrl_client *c, const struct vrl_take *t, uint64_t cost,
			 uint64_t at, struct look *lk, uint64_t *before, uint64_t *after)
{
	struct vrl_window_ref w = vrl__window_ref(c, t, lk->s);
	int rc = vrl_window_take(&w, lk->w.first, cost, at, after);

	if (rc == 1)
		return COMMIT_RETRY;
	if (rc)
		return COMMIT_STALE;
	lk->w_at = at;
	*before = 0;
	/*
	 * A3: the commit's acquire orders these re-checks after it. A slot
	 * evicted and re-inserted for this very key passes the tag check but
	 * may hold another ring: the commit then read the new incarnation's
	 * state, which orders after vrld emptied aux, so aux tells.
	 */
	if (atomic_load_explicit(&lk->s->tag, memory_order_relaxed) != vrl_key_tag(&t->key) ||
	    atomic_load_explicit(&lk->s->aux, memory_order_relaxed) != t->ring + 1) {
		vrl_window_undo(&w, lk->w.first, cost, at, *after);
		return COMMIT_STALE;
	}
	return COMMIT_OK;
}

/*
 * One commit CAS of a key's state word from *@cur to @next, then the owner
 * check. COMMIT_OK, COMMIT_STALE (the slot changed owner: our CAS undone),
 * or COMMIT_RETRY when the CAS lost a race (*@cur is the word now).
 */
static inline int cas_checked(struct vrl_seg_slot *s, const struct vrl_take *t, uint64_t *cur,
			      uint64_t next)
{
	/* A1 acq_rel: the grant orders after every earlier grant on the key,
	 * and (A3) sees a reuse's state reset if it came first; the release
	 * half and the acquire on failure are G1's */
	if (!atomic_compare_exchange_weak_explicit(&s->state, cur, next, memory_order_acq_rel,
						   memory_order_acquire))
		return COMMIT_RETRY;
	/* A3: relaxed suffices after the acquire above */
	if (atomic_load_explicit(&s->tag, memory_order_relaxed) != vrl_key_tag(&t->key)) {
		undo(s, next, *cur);
		return COMMIT_STALE;
	}
	return COMMIT_OK;
}

/* Step 2 and 3 for a quota or slots key: add @cost to the count. */
static int commit_counted(const struct vrl_client *c, const struct vrl_limit *l,
			  const struct vrl_take *t, uint64_t cost, struct look *lk, uint64_t *before,
			  uint64_t *after)
{
	uint64_t cur = lk->state;
	struct vrl_quota_step q = lk->q;
	int rc;

	for (;;) {
		if (cur == VRL_STATE_EVICTED)
			return COMMIT_STALE;
		if (!q.conforms)
			return COMMIT_RETRY;
		rc = cas_checked(lk->s, t, &cur, q.new_state);
		if (rc == COMMIT_STALE)
			return rc;
		if (rc == COMMIT_OK) {
			lk->q = q;
			lk->state = cur;
			*before = cur;
			*after = q.new_state;
			return COMMIT_OK;
		}
		/* a word that a newer config may have written (a calendar
		 * change) is judged again from a fresh look */
		if (gen_moved(c, lk))
			return COMMIT_RETRY;
		q = l->seg.kind == VRL_KIND_QUOTA ?
			    vrl_quota_take(&l->seg, vrl__quota_view(l, cur, lk->pid), lk->pid, cost) :
			    vrl_slots_take(&l->seg, cur, cost);
	}
}

/*
 * Step 2 and 3 for one key: take @cost at @at. Returns COMMIT_OK with the
 * before/after values for rollback, COMMIT_RETRY if it no longer conforms,
 * COMMIT_STALE if the slot changed owner.
 */
static int commit_one(struct vrl_client *c, const struct vrl_take *t, uint64_t cost,
		      uint64_t now, uint64_t at, struct look *lk, uint64_t *before,
		      uint64_t *after)
{
	const struct vrl_limit *l = &c->cfg->limits[t->limit];
	uint64_t cur = lk->state;
	/* look_at() tested this very state at (now, at, cost): reuse it */
	struct vrl_gcra_step r = lk->r;
	int rc;

	*before = *after = 0;
	if (lk->shadow_deny)
		return COMMIT_OK;
	if (counted(l->seg.kind))
		return commit_counted(c, l, t, cost, lk, before, after);
	if (__builtin_expect(l->seg.kind == VRL_KIND_WINDOW, 0))
		return commit_window(c, t, cost, at, lk, before, after);
	if (l->seg.kind != VRL_KIND_RATE)
		return COMMIT_OK;
	/* C1 (a): a conversion is counted after its clock read, before its
	 * CAS; relaxed: the CAS's release publishes it with the word */
	if (lk->convert)
		atomic_fetch_add_explicit(&c->hdr->rate_conversions, 2, memory_order_relaxed);
	for (;;) {
		uint64_t next = vrl_gcra_word(l->tag, r.new_tat);

		if (cur == VRL_STATE_EVICTED)
			return COMMIT_STALE;
		if (!r.conforms)
			return COMMIT_RETRY;
		rc = cas_checked(lk->s, t, &cur, next);
		if (rc == COMMIT_STALE)
			return rc;
		if (rc == COMMIT_OK) {
			lk->r = r;
			/* a rollback undoes the grant, never the conversion: a
			 * word's epoch only moves forward (gcra.h) */
			*before = lk->convert ? vrl_gcra_word(l->tag, lk->tat) : cur;
			*after = next;
			return COMMIT_OK;
		}
		/* the word the failed CAS loaded came after our clock read: use
		 * it only as a word of our epoch that needs no conversion, under
		 * the config of the look, no conversion counted since (gcra.h,
		 * C1); else look again */
		if (lk->convert || cur == 0 || vrl_gcra_tag(cur) != l->tag || gen_moved(c, lk) ||
		    conv_moved(c, lk))
			return COMMIT_RETRY;
		r = vrl_gcra_step(&l->gcra, vrl_gcra_tat(cur), now, at, cost);
	}
}

void (*vrl__kept)(uint32_t limit, uint64_t at, uint64_t cost);

/* Roll back the grant of one key (A1), taken at @at. */
static void rollback(const struct vrl_client *c, const struct vrl_take *t, struct look *lk,
		     uint64_t cost, uint64_t at, uint64_t before, uint64_t after)
{
	uint32_t kind = c->cfg->limits[t->limit].seg.kind;

	if (kind == VRL_KIND_WINDOW) {
		struct vrl_window_ref w = vrl__window_ref(c, t, lk->s);

		/* a shadow key took nothing (commit_one) */
		if (!lk->shadow_deny)
			vrl_window_undo(&w, lk->w.first, cost, lk->w_at, after);
		return;
	}
	if (after == before)
		return;
	if (counted(kind))
		vrl__give_back(lk->s, kind, lk->pid, cost);
	else if (!undo(lk->s, after, before) && vrl__kept)
		vrl__kept(t->limit, at, cost);
}

/* Permits the key of @t has left after what @lk decided (off the CAS path:
 * it costs a division). A gate never runs out. */
static uint64_t look_remaining(const struct vrl_client *c, const struct vrl_take *t,
			       const struct look *lk, uint64_t now)
{
	const struct vrl_limit *l = &c->cfg->limits[t->limit];

	if (t->slot == UINT64_MAX)
		return UINT64_MAX;
	if (counted(l->seg.kind))
		return lk->q.remaining;
	if (l->seg.kind == VRL_KIND_WINDOW) {
		struct vrl_window_ref w = vrl__window_ref(c, t, lk->s);

		return vrl_window_remaining(&w, now);
	}
	if (l->seg.kind != VRL_KIND_RATE)
		return UINT64_MAX;
	return vrl_gcra_available(&l->gcra, lk->r.conforms ? lk->r.new_tat : lk->tat, now);
}

/* limit, remaining and reset of a window key (off the CAS path; O(log n)) */
static void window_figures(struct vrl_client *c, const struct vrl_take *t, const struct look *lk,
			   uint64_t now, struct vrl_verdict *v)
{
	struct vrl_window_ref w = vrl__window_ref(c, t, lk->s);
	uint64_t reset = vrl_window_reset_est(&w, now);

	v->limit_value = w.n;
	v->remaining = vrl_window_remaining(&w, now);
	v->reset_ns = reset > now ? reset - now : 0;
}

/* The verdict's figures of the key of @t: its size and when it is whole. */
static void key_figures(const struct vrl_limit *l, const struct look *lk, uint64_t now,
			uint64_t tat, struct vrl_verdict *v)
{
	v->kind = l->seg.kind;
	v->overage = 0;
	switch (l->seg.kind) {
	case VRL_KIND_RATE:
		v->limit_value = l->gcra.burst;
		v->reset_ns = tat > now ? tat - now : 0;
		return;
	case VRL_KIND_QUOTA:
		v->limit_value = l->seg.count;
		v->reset_ns = lk->end_rt == UINT64_MAX ? VRL_NEVER : lk->end_rt - lk->rt;
		v->overage = lk->q.overage;
		return;
	case VRL_KIND_SLOTS:
		v->limit_value = l->seg.count;
		v->reset_ns = 0;   /* whole again when its holders release */
		return;
	default:
		v->limit_value = 0;
		v->reset_ns = 0;
	}
}

static void fill_denied(struct vrl_client *c, const struct vrl_take *t, const struct look *lk,
			uint64_t now, struct vrl_verdict *v)
{
	const struct vrl_limit *l = &c->cfg->limits[t->limit];

	v->granted = 0;
	v->limit = (int)t->limit;
	v->limit_name = l->seg.name;
	/* slots: no time is known (0: after a release); quota: the period's end */
	v->retry_after_ns = lk->earliest == UINT64_MAX ? VRL_NEVER : lk->earliest - now;
	if (l->seg.kind == VRL_KIND_RATE)
		v->remaining = vrl_gcra_available(&l->gcra, lk->tat, now);
	else
		v->remaining = counted(l->seg.kind) ? lk->q.remaining : 0;
	key_figures(l, lk, now, lk->tat, v);
	if (l->seg.kind == VRL_KIND_WINDOW)
		window_figures(c, t, lk, now, v);
	if (lk->cooled)
		v->flags |= VRL_VERDICT_COOLDOWN;
}

static void fill_granted(struct vrl_client *c, const struct vrl_take *t, const struct look *lk,
			 unsigned n, uint64_t now, struct vrl_verdict *v)
{
	uint64_t best = UINT64_MAX;
	bool best_over = false;

	v->granted = 1;
	v->retry_after_ns = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct vrl_limit *l = &c->cfg->limits[t[i].limit];
		uint64_t rem = look_remaining(c, &t[i], &lk[i], now);
		bool over = false;

		if (t[i].slot == UINT64_MAX)
			continue;
		if (lk[i].shadow_deny) {
			v->flags |= VRL_VERDICT_SHADOW;
			if (c->holder)   /* what the limit would have denied */
				vrl__bump(&c->holder->limit_shadow[t[i].limit]);
		} else if (counted(l->seg.kind)) {
			over = lk[i].q.overage > 0;
			if (over)
				v->flags |= VRL_VERDICT_OVERAGE;
			if (lk[i].q.saturated)
				v->flags |= VRL_VERDICT_SATURATED;
			if (lk[i].q.alert) {
				v->flags |= VRL_VERDICT_ALERT;
				/* one event per threshold, key and period: see alert.c */
				vrl_alert_check(&c->view, &l->seg, t[i].limit,
						c->cfg->generation, t[i].slot,
						 lk[i].q.used - (v->cost < lk[i].q.used ?
								 v->cost : lk[i].q.used),
						 lk[i].q.used, lk[i].pid);
			}
		}
		/* the fewest left decides; among those, a key in overage */
		if (v->limit >= 0 && (rem > best || (rem == best && (best_over || !over))))
			continue;
		best = rem;
		best_over = over;
		v->limit = (int)t[i].limit;
		v->limit_name = l->seg.name;
		v->kind = l->seg.kind;
		v->remaining = rem == UINT64_MAX ? 0 : rem;
		key_figures(l, &lk[i], now, lk[i].r.new_tat, v);
		if (l->seg.kind == VRL_KIND_WINDOW)
			window_figures(c, &t[i], &lk[i], now, v);
	}
}

/* Record the process slots a grant took, after its CASes (handle.c). */
static void hold_grant(struct vrl_client *c, const struct vrl_take *t, const struct look *lk,
		       unsigned n, uint64_t cost)
{
	for (unsigned i = 0; i < n; i++)
		if (t[i].slot != UINT64_MAX && !lk[i].shadow_deny &&
		    vrl__process_slots(&c->cfg->limits[t[i].limit]))
			vrl__hold_add(c, t[i].slot, vrl_key_tag(&t[i].key), cost);
}

static void count(struct vrl_client *c, const struct vrl_take *t, unsigned n,
		  const struct vrl_verdict *v)
{
	struct vrl_seg_holder *h = c->holder;

	if (!h)
		return;
	if (v->granted) {
		vrl__bump(&h->granted);
		for (unsigned i = 0; i < n; i++)
			vrl__bump(&h->limit_granted[t[i].limit]);
	} else {
		vrl__bump(&h->denied);
		if (v->limit >= 0)
			vrl__bump(&h->limit_denied[v->limit]);
	}
}

static void sleep_until(uint64_t at)
{
	struct timespec ts = vrl_ns_ts(at);

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/*
 * The order to commit in: fewest permits left first. The tightest key is
 * the one a concurrent acquire most likely takes first; losing that race
 * before taking the others spares a rollback, and a rollback that comes
 * too late to undo (A1) wastes permits of the looser keys.
 */
static void commit_order(const struct vrl_client *c, const struct vrl_take *t,
			 const struct look *lk, unsigned n, uint64_t now, unsigned order[])
{
	uint64_t rem[VRL_MAX_MATCHED];

	order[0] = 0;
	if (n == 1)
		return;
	for (unsigned i = 0; i < n; i++) {
		unsigned j = i;

		rem[i] = look_remaining(c, &t[i], &lk[i], now);
		for (; j > 0 && rem[order[j - 1]] > rem[i]; j--)
			order[j] = order[j - 1];
		order[j] = i;
	}
}

/*
 * A new key's word is 0. Before an acquire judges it, it writes a full word
 * of its own epoch there (TAT = @now) and looks again: so an acquire never
 * CASes from 0 to a charged word, and a slot that becomes new again under a
 * descheduled acquire (reset, re-insert) cannot take that acquire's write
 * (gcra.h, the horizon of the tag).
 */
static void mark_new_key(struct vrl_client *c, const struct vrl_take *t, struct look *lk,
			 uint64_t now)
{
	uint64_t zero = 0;

	/* as a commit: acq_rel, the owner re-checked after (A3) */
	cas_checked(lk->s, t, &zero,
		    vrl_gcra_word(c->cfg->limits[t->limit].tag,
				  now < VRL_GCRA_TIME_MAX ? now : VRL_GCRA_TIME_MAX));
}

/*
 * Step 1 again for key @k at @at > @now, just before its commit: its words
 * are loaded after the clock read, so a rate word is used only if it needs
 * no conversion, or is the very word the first look converted, under the
 * same config (gcra.h, C1). COMMIT_OK to go on, else what commit_one()
 * would return.
 */
static int relook(struct vrl_client *c, const struct vrl_take *t, uint64_t cost, uint64_t now,
		  uint64_t at, uint64_t *rt, struct look *lk)
{
	const struct vrl_limit *l = &c->cfg->limits[t->limit];
	uint64_t seen = lk->state, gen = lk->gen;

	if (look_load(c, t, lk) == LOOK_STALE)
		return COMMIT_STALE;
	/* a word still the one the look loaded was not converted since: a
	 * conversion moves its tag on, and no write brings an older tag back
	 * (a rollback never undoes a conversion). The count matters only for
	 * a word that moved, so one kept moving or odd by a group member costs
	 * retries under contention, not a waiting acquire's sleep */
	if (lk->gen != gen || (lk->state != seen && conv_moved(c, lk)))
		return COMMIT_RETRY;
	if (l->seg.kind == VRL_KIND_RATE && lk->state != seen &&
	    (lk->state == 0 || vrl_gcra_tag(lk->state) != l->tag || vrl_gcra_tag(seen) != l->tag))
		return COMMIT_RETRY;
	return look_judge(c, t, cost, now, at, rt, true, lk) == LOOK_OK ? COMMIT_OK :
									 COMMIT_RETRY;
}

/*
 * A waiting acquire has slept until its reservation's time. A reload may
 * have converted one of its rate keys meanwhile (gcra.h, C1 (c)): then its
 * reservation is dropped. Else the word is moved on by one nanosecond, so
 * that a conversion which read its clock before now fails its CAS and is
 * done again after this reservation's time. True when one is dropped.
 */
static bool reservation_lost(struct vrl_client *c, const struct vrl_take *t,
			     const struct look *lk, unsigned n, const uint64_t after[])
{
	for (unsigned i = 0; i < n; i++) {
		struct vrl_seg_slot *s;
		uint64_t w;

		if (t[i].slot == UINT64_MAX || lk[i].shadow_deny ||
		    c->cfg->limits[t[i].limit].seg.kind != VRL_KIND_RATE)
			continue;
		s = lk[i].s;
		/* G1 acquire: the config_gen load below sees every config
		 * that a converter of this word used */
		w = atomic_load_explicit(&s->state, memory_order_acquire);
		for (;;) {
			uint64_t gen = atomic_load_explicit(&c->hdr->config_gen,
							    memory_order_relaxed);

			if (w == VRL_STATE_EVICTED || vrl_gcra_tag(w) != vrl_gcra_tag(after[i]) ||
			    gen - lk[i].gen >= VRL_GCRA_TAGS - 1)
				return true;
			if (vrl_gcra_tat(w) >= VRL_GCRA_TIME_MAX)
				break;
			/* release (G1); acquire on failure, for the loads above */
			if (atomic_compare_exchange_weak_explicit(&s->state, &w, w + 1,
								  memory_order_release,
								  memory_order_acquire))
				break;
		}
	}
	return false;
}

/* Undo every take of a grant that was committed: rollback and records. */
static void give_up(struct vrl_client *c, const struct vrl_take *t, struct look *lk,
		    unsigned n, uint64_t cost, uint64_t at, const uint64_t before[],
		    const uint64_t after[])
{
	for (unsigned k = 0; k < n; k++) {
		if (t[k].slot == UINT64_MAX)
			continue;
		/* unrecord first: a crash in between leaks, never gives back twice */
		if (!lk[k].shadow_deny && vrl__process_slots(&c->cfg->limits[t[k].limit]))
			vrl__hold_sub(c, t[k].slot, vrl_key_tag(&t[k].key), cost);
		rollback(c, &t[k], &lk[k], cost, at, before[k], after[k]);
	}
}

/*
 * The key of @t cannot be judged with the handle's config (a newer one was
 * published, or a reservation was dropped): start over with a fresh config,
 * or, on the last try (@last), deny without writing, retry at once.
 */
static int start_over(struct vrl_client *c, const struct vrl_take *t, uint64_t now, bool last,
		      struct vrl_verdict *v)
{
	const struct vrl_limit *l = &c->cfg->limits[t->limit];

	if (!last)
		return VRL__RESTART;
	v->granted = 0;
	v->at_ns = now;
	v->limit = (int)t->limit;
	v->limit_name = l->seg.name;
	v->kind = l->seg.kind;
	v->retry_after_ns = 0;
	v->remaining = 0;
	v->limit_value = l->seg.kind == VRL_KIND_RATE ? l->gcra.burst : l->seg.count;
	return VRL_EDENIED;
}

/*
 * Acquire takes @t[0..n) with @cost, granting no later than @deadline
 * (deadline == now: immediately or not at all). Re-places stale keys.
 * VRL__RESTART when the caller must refresh its config and plan again
 * (never on its last try, @last: then the handle's config is used as
 * stale, and what it cannot read is denied).
 */
static int take(struct vrl_client *c, struct vrl_take *t, unsigned n, uint64_t cost,
		uint64_t deadline, bool waiting, bool last, struct vrl_verdict *v)
{
	struct look lk[VRL_MAX_MATCHED];
	uint64_t before[VRL_MAX_MATCHED], after[VRL_MAX_MATCHED];
	unsigned order[VRL_MAX_MATCHED];
	bool careful = false;

	for (;;) {
		uint64_t now, at, rt = 0, conv;
		unsigned worst = 0, i, done;
		int stale = -1, final = -1, newer = -1, jr;
		bool again = false;

		/*
		 * Step 1: look. C1 (gcra.h): the clock is read first, as ever,
		 * and the words it judges must not have been converted after it:
		 * rate_conversions, read before the clock and again after the
		 * loads, shows none was. Else the look is done again carefully:
		 * every key loaded first, then the clock read.
		 */
		/* acquire: ordered before the clock read and the loads below */
		conv = atomic_load_explicit(&c->hdr->rate_conversions, memory_order_acquire);
		now = careful ? 0 : vrl_now_ns();
		for (i = 0; i < n; i++)
			if (t[i].slot != UINT64_MAX && look_load(c, &t[i], &lk[i]) == LOOK_STALE) {
				stale = (int)i;
				break;
			}
		if (careful) {
			now = vrl_now_ns();
		} else if (stale < 0 && ((conv & 1) ||
					 /* relaxed: after the state words' acquire loads */
					 atomic_load_explicit(&c->hdr->rate_conversions,
							      memory_order_relaxed) != conv)) {
			careful = true;   /* a conversion may have come after the clock */
			continue;
		}
		at = now;
		if (!waiting)
			deadline = now;
		for (i = 0; stale < 0 && i < n; i++) {
			if (t[i].slot == UINT64_MAX) {
				memset(&lk[i], 0, sizeof(lk[i]));
				lk[i].earliest = now;
				continue;
			}
			lk[i].conv = conv;
			/* a config published since enter(): refresh and plan again */
			if (lk[i].gen != c->cfg->gen_word && !c->cfg->stale && !last)
				return VRL__RESTART;
			jr = look_judge(c, &t[i], cost, now, now, &rt, careful, &lk[i]);
			if (__builtin_expect(jr != LOOK_OK, 0)) {
				if (jr == LOOK_NEWER) {
					newer = (int)i;
					break;
				}
				if (jr == LOOK_NEW)   /* look again at the key marked */
					mark_new_key(c, &t[i], &lk[i], now);
				else                  /* LOOK_CONVERT: loads, then clock */
					careful = true;
				again = true;
				continue;
			}
			if (lk[i].final && final < 0)
				final = (int)i;
			if (lk[i].earliest > at) {
				at = lk[i].earliest;
				worst = i;
			}
		}
		if (again && newer < 0)
			continue;
		if (newer >= 0)
			return start_over(c, &t[newer], now, last, v);
		v->at_ns = at;
		if (stale < 0 && final >= 0) {
			v->at_ns = now;
			fill_denied(c, &t[final], &lk[final], now, v);
			return VRL_EDENIED;
		}
		if (stale < 0 && at > deadline) {
			v->at_ns = now;
			fill_denied(c, &t[worst], &lk[worst], now, v);
			return VRL_EDENIED;
		}
		/* step 2 and 3: commit at `at`, tightest key first (a stale look
		 * left the looks after it unwritten: nothing is committed then) */
		if (stale < 0)
			commit_order(c, t, lk, n, now, order);
		for (done = 0; stale < 0 && done < n; done++) {
			unsigned k = order[done];
			int rc = COMMIT_OK;

			if (t[k].slot == UINT64_MAX) {
				before[k] = after[k] = 0;
				continue;
			}
			if (at != now)
				rc = relook(c, &t[k], cost, now, at, &rt, &lk[k]);
			if (rc == COMMIT_OK)
				rc = commit_one(c, &t[k], cost, now, at, &lk[k], &before[k], &after[k]);
			if (rc == COMMIT_OK)
				continue;
			if (rc == COMMIT_STALE)
				stale = (int)k;
			break;
		}
		if (stale < 0 && done == n) {
			hold_grant(c, t, lk, n, cost);
			if (at > now) {
				if (c->holder)   /* the wait, on the limit that set it */
					vrl__bump_by(&c->holder->limit_wait_ns[t[worst].limit],
						at - now);
				sleep_until(at);
				if (reservation_lost(c, t, lk, n, after)) {
					give_up(c, t, lk, n, cost, at, before, after);
					return start_over(c, &t[worst], at, last, v);
				}
			}
			fill_granted(c, t, lk, n, now, v);
			return 0;
		}
		while (done-- > 0) {
			unsigned k = order[done];

			if (t[k].slot != UINT64_MAX)
				rollback(c, &t[k], &lk[k], cost, at, before[k], after[k]);
		}
		if (stale >= 0) {
			char label[VRL_LABEL_MAX];
			int rc;

			label[0] = '\0';
			rc = vrl__place(c, &t[stale], label);
			/* the policy decides this verdict as it does at plan time */
			if (rc == VRL_EFULL)
				v->flags |= VRL_VERDICT_TABLE_FULL;
			if (rc == VRL_EFULL && !(c->cfg->flags & VRL_CFG_FAIL_OPEN))
				return rc;
			if (rc && rc != VRL_EFULL)
				return rc;
		}
	}
}

static void verdict_init(struct vrl_verdict *v, unsigned n)
{
	memset(v, 0, sizeof(*v));
	v->limit = -1;
	v->matched = n;
}

/* Shared tail of the acquire calls (client.h). */
int vrl__acquire_takes(struct vrl_client *c, const char *api, struct vrl_take *t, unsigned n,
			 bool full, uint64_t cost, uint64_t deadline, bool waiting, bool last,
			 struct vrl_verdict *v)
{
	struct vrl_verdict local;
	int rc;

	if (!v)
		v = &local;
	verdict_init(v, n);
	if (cost == 0)
		cost = 1;
	v->cost = cost;
	if (full) {
		v->flags |= VRL_VERDICT_TABLE_FULL;
		if (!(c->cfg->flags & VRL_CFG_FAIL_OPEN)) {
			count(c, t, 0, v);
			return VRL_EFULL;
		}
	}
	if (n == 0) {
		rc = vrl__unmatched(c, api, v);   /* the config's unmatched: policy */
		count(c, t, 0, v);
		return rc;
	}
	/* an immediate acquire takes its deadline from take()'s own clock
	 * read: one clock read per call on the common path */
	rc = take(c, t, n, cost, deadline, waiting, last, v);
	if (rc == 0 || rc == VRL_EDENIED)
		count(c, t, n, v);
	return rc;
}

int vrl_acquire(vrl_client *c, const struct vrl_request *req, struct vrl_verdict *v)
{
	return vrl_acquire_wait(c, req, 0, v) ;
}

int vrl_acquire_wait(vrl_client *c, const struct vrl_request *req, uint64_t timeout_ns,
		     struct vrl_verdict *v)
{
	struct vrl_take t[VRL_MAX_MATCHED];
	uint64_t deadline = 0, state;
	bool full;
	int n, rc;

	if (v)
		v->granted = 0;   /* whatever ends the call early grants nothing */
	if (c->readonly)
		return VRL_EREADONLY;
	if (timeout_ns > 0)
		deadline = timeout_ns > UINT64_MAX / 2 ? UINT64_MAX : vrl_now_ns() + timeout_ns;
	/* a config published under the call: plan again with it */
	for (unsigned tries = 0;; tries++) {
		rc = vrl__enter(c, &state);
		if (rc)
			return rc;
		n = vrl__plan(c, req, t, &full);
		if (n < 0)
			return vrl__leave(c, state, n, NULL);
		rc = vrl__acquire_takes(c, req->api, t, (unsigned)n, full, req->cost, deadline,
				   timeout_ns > 0, tries + 1 >= VRL__RESTARTS_MAX, v);
		/* a try the mapping's damage voided ends the call (leave()) */
		rc = vrl__leave(c, state, rc, v);
		if (rc != VRL__RESTART)
			return rc;
	}
}

/* ---- for vrl_observe() -------------------------------------------------------------- */

int vrl__tightest(struct vrl_client *c, const struct vrl_request *req, uint32_t kinds)
{
	struct vrl_take t[VRL_MAX_MATCHED];
	uint64_t now = vrl_now_ns(), rt = 0, best = UINT64_MAX;
	uint64_t state;
	bool full;
	int n, rc, pick = -1;

	rc = vrl__enter(c, &state);
	if (rc)
		return rc;
	n = vrl__plan(c, req, t, &full);
	if (n < 0)
		return vrl__leave(c, state, n, NULL);
	for (int i = 0; i < n; i++) {
		const struct vrl_limit *l = &c->cfg->limits[t[i].limit];
		uint64_t rem = UINT64_MAX;
		struct look lk;

		if (!(kinds & VRL__KIND_BIT(l->seg.kind)))
			continue;
		/* a look only reads the slot: nothing here writes shared state */
		if (t[i].slot != UINT64_MAX &&
		    look_at(c, &t[i], 1, now, now, &rt, &lk) == LOOK_OK)
			rem = look_remaining(c, &t[i], &lk, now);
		if (pick < 0 || rem < best) {
			best = rem;
			pick = (int)t[i].limit;
		}
	}
	return vrl__leave(c, state, pick, NULL);
}

