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
 *   AQ.A1 Never over-grant. Each CAS moves a key's state by exactly the GCRA
 *      rule (gcra.h), which bounds any window whatever the order of grants.
 *      Rollback restores a key's state only when nobody took it after us
 *      (CAS from our value back to the one we replaced); otherwise our
 *      permits stay taken. So compensation can make a concurrent request
 *      wait, never let one through.
 *   AQ.A2 No lock: every step is a load or a single-word CAS. A process
 *      killed between two CASes of a stacked acquire leaves permits taken
 *      on some keys, which delays others by at most that cost, and never a
 *      word that anyone waits on.
 *   AQ.A3 A stale slot is detected. vrld evicts a key by CAS of the state word
 *      to EVICTED (keytable.c KT.E1), so a CAS based on a value read before
 *      the eviction fails; if the slot was evicted and reused and its state
 *      word happens to be back at the value we read, the tag re-check after
 *      our CAS (acquire, pairing with the release in fill_slot) shows the
 *      slot's new owner, and we undo.
 *   AQ.A4 Denials are read-only on the shared line: step 1 only loads.
 *
 * Reloads (gcra.h has the proof). A rate key's word carries the epoch of
 * the parameters that wrote it, and a word of the epoch before is
 * converted by the acquire that first CASes it, keeping the key's fill:
 *   AQ.G1 An acquire never reads a word newer than its config: each word is
 *      loaded with acquire order and config_gen after it, and every CAS
 *      that writes a word is a release, by a process whose config was in
 *      force when it loaded config_gen; so a look whose config_gen is the
 *      handle's (its snapshot's gen_word) sees words of that config or
 *      older. A look that finds a newer config published starts over with
 *      it (VRL__RESTART).
 *   AQ.C1 No grant uses a clock read before the conversion of its word: take()
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
 * Adaptive rate limits (adapt.h) change nothing above: the kind charges a
 * grant T / w >= T and tests the configured figure (kind_rate.h), so every
 * step and proof holds with that charge. One step is theirs: a waiting
 * acquire that wakes more than an eighth of the key's charged interval
 * after its reservation does not use it (reservation_stale(), AD.W5): it
 * gives it up as a dropped reservation is given up, and reserves again.
 * Stacked waits:
 *   AQ.W1 A waiting acquire reserves a time `at` only when no spaced key
 *      (a rate word, vrl_kind_spaced) among its keys could grant before
 *      it. Reserving a GCRA word at a time past its earliest moves its TAT
 *      from `at`: the time between is lost to every request (with burst 1,
 *      the organisation's turns a token-bound waiter reserved past). Such
 *      a waiter sleeps until `at` holding nothing and looks again, as a
 *      non-blocking caller sleeping on retry_after does; a waiter whose
 *      keys are all free at `at` alone (one key, or keys bound alike)
 *      keeps its place by reservation. Holding nothing while asleep takes
 *      no step above: invariant 1 is untouched, only the order of
 *      waiters changes.
 * A handle that cannot copy a new config (vrld rewrote the area under it
 * every time) keeps its own, marked stale, and uses a rate word only as
 * gcra.h allows; after RESTARTS_MAX tries it denies what it cannot read.
 *
 * Kinds. The steps above are every kind's; what a key's words mean is its
 * kind's (lib/kinds/kind.h, one dispatch per operation): look_judge()
 * hands the loaded words to vrl_kind_judge(), and commit, rollback and
 * the verdict read the tagged look result it fills. A kind whose grant is
 * one word (rate, quota, slots) is committed by commit_word(), the one
 * CAS loop, which asks the kind for the next word and, after a lost race,
 * to judge again from the word the CAS loaded (a rate word only under
 * AQ.C1's conditions); the window writes its ring first (commit_ring(), the
 * proof in window.c); a gate writes nothing. Counted kinds (quota, slots)
 * follow the same three steps with a count in the state word instead of a
 * TAT: the CAS adds the cost to the count the look saw, so AQ.A1 holds for
 * them by the same argument (each grant moves the word by exactly its
 * cost from a value that had room for it). Their rollback gives the cost
 * back (a count is additive, so this is exact even when others took units
 * after us), never below zero. A quota or slots key without room denies
 * at once, even a waiting acquire: no time is known at which units come
 * back (a quota's next period is days away, a slot waits for a release),
 * so waiting there would only hold the caller (kind_counted.h).
 *
 * Global keys (scope: global, share.h). A key of a global limit grants
 * only if its own GCRA of the configured figures grants AND its slot's
 * share word gives the cost (vrl_share_take), all or nothing:
 *   AQ.S1 The share is taken last, after every key's commit, at the
 *      decision time `at` the grant is dated by: `now` for an immediate
 *      grant, the reservation for a waiting one, taken after its wake-up
 *      (the take bounds grants by the time they are dated, share.h; AQ.S4
 *      makes sure the credit is of then). A look also peeks at the words
 *      (loads only, AQ.A4): a share that has no room denies before
 *      anything is written.
 *   AQ.S2 A take that fails (SHORT: no room; LAPSED: no lease trusted)
 *      rolls back the commits as any failed commit does (AQ.A1: what
 *      cannot be rolled back stays spent) and denies. A take that succeeded
 *      is never given back (share.h): when a later take of the same acquire
 *      fails, its permits are lost to the host, never granted twice.
 *   AQ.S3 The grant's keys still own their slots after the takes: vrld
 *      fills a word only for the key it read in the slot's tag (a release
 *      fence before the fill), and the take's acquire fence orders the
 *      tag re-check after it; a key evicted and replaced meanwhile undoes
 *      the grant and re-resolves (AQ.A3). The credit taken from the new
 *      key is lost to it: an under-grant. vrld clamps a word's credit
 *      before it evicts the key, so a key inserted into a reused slot
 *      finds none of its predecessor's.
 *   AQ.S4 The credit a grant spends is of its decision time (share.h F0):
 *      after the takes, vrl_share_fresh shows no pass of vrld's fill after
 *      `at` could have added to it; else the commits are rolled back and
 *      the acquire starts over, the credit taken lost (AQ.S2), and after
 *      SHARE_FRESH_TRIES it denies.
 *   AQ.S5 A global window key's word is a cap (share.h "Window"), not
 *      credit: at the same step, after its ring's commit, the share is
 *      checked, not taken: the word live at `at` and the key's grants
 *      counted at `at`, this one included, within the cap (window.c
 *      WIN.W7); else the commits are rolled back, the positions freed,
 *      and it denies as S2 does. F0 (S4) holds as for a rate: vrld marks
 *      before it stores a new cap. The peek estimates first (the free run
 *      from the hint) and counts at `at` only to deny. A seq_cst
 *      fence before the word's load pairs with vrld's at stop (gkeys.c
 *      KW3), so the grants it reports for the release miss none.
 * So the grants of a global key are those of its GCRA intersected with
 * those its share word allows, and share.h's claim bounds the latter:
 * with lease.c's G1, at most B + r (e - s) in any [s, e] over all hosts.
 * Global quota and slots keys take from a block word instead (blocks.h:
 * whole units of the host's allocation, tagged with the quota's period),
 * by the same steps, with two differences:
 *   AQ.B1 The take is made under the key's tag: a quota's, the period its
 *      look judged it in, the one its grant is counted in; a word of
 *      another period (or none) denies as LAPSED does. A soft quota takes
 *      nothing (never short; vrld counts its units: blocks.h).
 *   AQ.B2 A block take whose acquire then grants nothing is given back
 *      (vrl_block_give, under the tag it was taken with), before the
 *      commits are rolled back: the account stays exact (blocks.h B1),
 *      as a rate's share cannot (its clamp is a cap, not an account), and
 *      the key still counts the commit, so it is not evicted meanwhile.
 * A grant counts its cost in the slot's `used`, a denial for want of
 * share in `unmet` (relaxed adds on the word's line), for vrld's reports.
 *   AQ.S6 A denial for want of share says when to try again: a rate key's
 *      credit comes with vrld's next fill of it (the time vrld left in
 *      the share's cap word, clamped; else VRL_SHARE_RETRY_NS); a block
 *      key's allocation and a window's cap change only when vrld applies
 *      a round, at its next tick (its heartbeat + VRL_SHARE_TICK_NS,
 *      clamped: the heartbeat is a word any member can write), so their
 *      callers do not poll a hundred times for one change. A hint only:
 *      no decision reads it.
 */
#include "client.h"
#include "look.h"
#include "verdict.h"
#include "share_take.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "kind.h"
#include "blocks.h"
#include "share.h"

/* CLOCK_REALTIME in ns: read only when a quota limit is looked at. */
uint64_t (*vrl__realtime_ns)(void) = vrl_wall_ns;


/*
 * Step 1, loads: the tag (the key still owns the slot), the state word and
 * the cooldown, then config_gen. No write. VRL_LOOK_STALE when the slot no
 * longer holds the key.
 */
static inline __attribute__((always_inline)) int look_load(struct vrl_client *c,
							   const struct vrl_take *t,
							   struct look *lk)
{
	struct vrl_seg_slot *s = &c->view.slots[t->slot];

	/* every field is set by look_judge() on the VRL_LOOK_OK path; a stale
	 * look is never read (take() re-places the key and looks again) */
	lk->s = s;
	/* acquire: pairs with promotion (KT.K2), the slot's fields are ready */
	if (atomic_load_explicit(&s->tag, memory_order_acquire) != vrl_key_tag(&t->key))
		return VRL_LOOK_STALE;
	/* AQ.G1 acquire: pairs with the release of the CAS that wrote the word,
	 * so the config_gen load below sees the config its writer used
	 * (gcra.h: an acquire never reads a word newer than its config) */
	lk->state = atomic_load_explicit(&s->state, memory_order_acquire);
	if (lk->state == VRL_STATE_EVICTED)
		return VRL_LOOK_STALE;
	lk->cd = atomic_load_explicit(&s->cooldown, memory_order_relaxed);
	/* relaxed: ordered after the state word by AQ.G1 */
	lk->gen = atomic_load_explicit(&c->hdr->config_gen, memory_order_relaxed);
	return VRL_LOOK_OK;
}

/* Step 1, the decision for @cost at @at (>= @now) from what look_load() saw
 * (@careful: words loaded before the clock read, AQ.C1): the kind's, then the
 * cooldown and a shadow limit's, which are every kind's. */
static inline __attribute__((always_inline)) int
look_judge(struct vrl_client *c, const struct vrl_take *t, uint64_t cost, uint64_t now,
	   uint64_t at, uint64_t *rt, bool careful, struct look *lk)
{
	const struct vrl_kind_key k = vrl__kind_key(c, t, lk->s);
	const struct vrl_kind_when w = {
		.cost = cost, .now = now, .at = at, .rt = rt, .realtime = vrl__realtime_ns,
		.newer = lk->gen - c->cfg->gen_word, .careful = careful,
	};
	int rc;

	lk->shadow_deny = false;
	lk->cooled = false;
	rc = vrl_kind_judge(&k, &lk->k, lk->state, &w);
	if (rc != VRL_LOOK_OK)
		return rc;
	if (!lk->k.final && lk->cd > lk->k.earliest && lk->k.earliest != UINT64_MAX) {
		lk->k.earliest = lk->cd;
		lk->cooled = true;
	}
	if ((k.l->seg.flags & VRL_LIMIT_SHADOW) && (lk->k.earliest > at || lk->k.final)) {
		lk->shadow_deny = true;
		lk->k.final = false;
		lk->k.earliest = at;
	}
	return VRL_LOOK_OK;
}

/* Both steps of a look, for callers that write nothing (look.h). */
int vrl__look_at(struct vrl_client *c, const struct vrl_take *t, uint64_t cost, uint64_t now,
		 uint64_t at, uint64_t *rt, struct look *lk)
{
	int rc = look_load(c, t, lk);

	return rc == VRL_LOOK_OK ? look_judge(c, t, cost, now, at, rt, true, lk) : rc;
}

/* True when a conversion may have come between @lk's clock read and a
 * word loaded now (AQ.C1): the count moved, or vrld's pass was on. */
static inline bool conv_moved(const struct vrl_client *c, const struct look *lk)
{
	/* relaxed: ordered after the word by its load's acquire (AQ.C1) */
	return (lk->conv & 1) ||
	       atomic_load_explicit(&c->hdr->rate_conversions, memory_order_relaxed) != lk->conv;
}

/* True when vrld published a config since @lk's look: a word loaded from
 * here on may be newer than the look's config (AQ.G1). */
static inline bool gen_moved(const struct vrl_client *c, const struct look *lk)
{
	/* relaxed: ordered after the state word by the failed CAS's acquire */
	return atomic_load_explicit(&c->hdr->config_gen, memory_order_relaxed) != lk->gen;
}

enum { COMMIT_OK = 0, COMMIT_RETRY = 1, COMMIT_STALE = 2 };

/* Step 2 and 3 for a key whose grant writes its ring (a window): the
 * positions, then the state word (window.c), then the owner check. */
static int commit_ring(const struct vrl_kind_key *k, const struct vrl_take *t, uint64_t cost,
		       uint64_t at, struct look *lk, uint64_t *before, uint64_t *after)
{
	int rc = vrl_kind_place(k, &lk->k, cost, at, after);

	if (rc == 1)
		return COMMIT_RETRY;
	if (rc)
		return COMMIT_STALE;
	*before = 0;
	/*
	 * AQ.A3: the commit's acquire orders these re-checks after it. A slot
	 * evicted and re-inserted for this very key passes the tag check but
	 * may hold another ring: the commit then read the new incarnation's
	 * state, which orders after vrld emptied aux, so aux tells.
	 */
	if (atomic_load_explicit(&lk->s->tag, memory_order_relaxed) != vrl_key_tag(&t->key) ||
	    atomic_load_explicit(&lk->s->aux, memory_order_relaxed) != t->ring + 1) {
		vrl_kind_undo(k, &lk->k, cost, *before, *after);
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
	/* AQ.A1 acq_rel: the grant orders after every earlier grant on the key,
	 * and (AQ.A3) sees a reuse's state reset if it came first; the release
	 * half and the acquire on failure are AQ.G1's */
	if (!atomic_compare_exchange_weak_explicit(&s->state, cur, next, memory_order_acq_rel,
						   memory_order_acquire))
		return COMMIT_RETRY;
	/* AQ.A3: relaxed suffices after the acquire above */
	if (atomic_load_explicit(&s->tag, memory_order_relaxed) != vrl_key_tag(&t->key)) {
		vrl_slot_put_back(s, next, *cur);
		return COMMIT_STALE;
	}
	return COMMIT_OK;
}

/*
 * Step 2 and 3 for a key whose grant is one word (rate, quota, slots): CAS
 * the state word from the value the look saw to the kind's next one. A
 * CAS that loses a race judges again from the word it loaded, if the kind
 * may (kind.h vrl_kind_rejudge), under the look's config and, for a word
 * that holds a time, with no conversion counted since (AQ.G1, AQ.C1); else the
 * engine looks again.
 */
static int commit_word(struct vrl_client *c, const struct vrl_limit *l,
		       const struct vrl_take *t, uint64_t cost, uint64_t now, uint64_t at,
		       struct look *lk, uint64_t *before, uint64_t *after)
{
	const struct vrl_kind_when w = { .cost = cost, .now = now, .at = at };
	uint64_t cur = lk->state, next;
	int rc;

	/* AQ.C1 (a): a conversion is counted after its clock read, before its
	 * CAS; relaxed: the CAS's release publishes it with the word */
	if (lk->k.convert)
		atomic_fetch_add_explicit(&c->hdr->rate_conversions, 2, memory_order_relaxed);
	for (;;) {
		bool conforms = vrl_kind_next(l, &lk->k, &next);

		if (cur == VRL_STATE_EVICTED)
			return COMMIT_STALE;
		if (!conforms)
			return COMMIT_RETRY;
		rc = cas_checked(lk->s, t, &cur, next);
		if (rc == COMMIT_STALE)
			return rc;
		if (rc == COMMIT_OK) {
			/* a rollback undoes the grant, never a conversion: a
			 * word's epoch only moves forward (gcra.h) */
			*before = vrl_kind_before(l, &lk->k, cur);
			*after = next;
			return COMMIT_OK;
		}
		if (gen_moved(c, lk) || (vrl_kind_timed(l) && conv_moved(c, lk)) ||
		    !vrl_kind_rejudge(l, &lk->k, cur, &w))
			return COMMIT_RETRY;
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
	struct vrl_kind_key k;

	*before = *after = 0;
	if (lk->shadow_deny)
		return COMMIT_OK;
	switch (vrl_kind_commits(l)) {
	case VRL_COMMIT_WORD:
		return commit_word(c, l, t, cost, now, at, lk, before, after);
	case VRL_COMMIT_RING:
		k = vrl__kind_key(c, t, lk->s);
		return commit_ring(&k, t, cost, at, lk, before, after);
	default:
		return COMMIT_OK;
	}
}

void (*vrl__kept)(uint32_t limit, uint64_t at, uint64_t cost);
void (*vrl__woke)(uint64_t at);

/* Roll back the grant of one key (AQ.A1), taken at @at. */
static void rollback(const struct vrl_client *c, const struct vrl_take *t, struct look *lk,
		     uint64_t cost, uint64_t at, uint64_t before, uint64_t after)
{
	const struct vrl_kind_key k = vrl__kind_key(c, t, lk->s);

	/* a shadow key took nothing (commit_one) */
	if (lk->shadow_deny)
		return;
	if (!vrl_kind_undo(&k, &lk->k, cost, before, after) && vrl__kept)
		vrl__kept(t->limit, at, cost);
}

/* Record the process slots a grant took, after its CASes (handle.c). */
static void hold_grant(struct vrl_client *c, const struct vrl_take *t, const struct look *lk,
		       unsigned n, uint64_t cost)
{
	for (unsigned i = 0; i < n; i++)
		if (t[i].slot != UINT64_MAX && !lk[i].shadow_deny &&
		    vrl_kind_process_held(&c->cfg->limits[t[i].limit]))
			vrl__hold_add(c, t[i].slot, vrl_key_tag(&t[i].key), cost);
}

static void sleep_until(uint64_t at)
{
	struct timespec ts = vrl_ns_ts(at);

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/*
 * AQ.W1: whether reserving at @at would leave a gap on a spaced key: one
 * whose own earliest time is before @at (it could grant sooner, but the
 * reservation moves its TAT from @at, so the time between is nobody's).
 */
static bool leaves_gap(const struct vrl_client *c, const struct vrl_take *t,
		       const struct look *lk, unsigned n, uint64_t at)
{
	for (unsigned i = 0; i < n; i++)
		if (t[i].slot != UINT64_MAX && lk[i].k.earliest < at &&
		    vrl_kind_spaced(&c->cfg->limits[t[i].limit]))
			return true;
	return false;
}

/*
 * The order to commit in: fewest permits left first. The tightest key is
 * the one a concurrent acquire most likely takes first; losing that race
 * before taking the others spares a rollback, and a rollback that comes
 * too late to undo (AQ.A1) wastes permits of the looser keys.
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

		rem[i] = vrl__look_remaining(c, &t[i], &lk[i], now);
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

	/* as a commit: acq_rel, the owner re-checked after (AQ.A3) */
	cas_checked(lk->s, t, &zero, vrl_kind_new_word(&c->cfg->limits[t->limit], now));
}

/*
 * Step 1 again for key @k at @at > @now, just before its commit: its words
 * are loaded after the clock read, so a rate word is used only if it needs
 * no conversion, or is the very word the first look converted, under the
 * same config (gcra.h, AQ.C1). COMMIT_OK to go on, else what commit_one()
 * would return.
 */
static int relook(struct vrl_client *c, const struct vrl_take *t, uint64_t cost, uint64_t now,
		  uint64_t at, uint64_t *rt, struct look *lk)
{
	const struct vrl_limit *l = &c->cfg->limits[t->limit];
	uint64_t seen = lk->state, gen = lk->gen;

	if (look_load(c, t, lk) == VRL_LOOK_STALE)
		return COMMIT_STALE;
	/* a word still the one the look loaded was not converted since: a
	 * conversion moves its tag on, and no write brings an older tag back
	 * (a rollback never undoes a conversion). The count matters only for
	 * a word that moved, so one kept moving or odd by a group member costs
	 * retries under contention, not a waiting acquire's sleep */
	if (lk->gen != gen || (lk->state != seen && conv_moved(c, lk)))
		return COMMIT_RETRY;
	if (!vrl_kind_word_kept(l, seen, lk->state))
		return COMMIT_RETRY;
	return look_judge(c, t, cost, now, at, rt, true, lk) == VRL_LOOK_OK ? COMMIT_OK :
									     COMMIT_RETRY;
}

/*
 * A waiting acquire has slept until its reservation's time. A reload may
 * have converted one of its rate keys meanwhile (gcra.h, AQ.C1 (c)): then its
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
		    !vrl_kind_timed(&c->cfg->limits[t[i].limit]))
			continue;
		s = lk[i].s;
		/* AQ.G1 acquire: the config_gen load below sees every config
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
			/* release (AQ.G1); acquire on failure, for the loads above */
			if (atomic_compare_exchange_weak_explicit(&s->state, &w, w + 1,
								  memory_order_release,
								  memory_order_acquire))
				break;
		}
	}
	return false;
}

/*
 * AD.W5 (adapt.h): a waiting acquire whose caller woke later than a grace
 * after its reservation on an adaptive rate key paced below its figure
 * does not use it. Sent that late, its request would arrive closer than
 * the effective spacing to the next waiter's, which wakes on time, and a
 * zero-burst upstream refuses the second. The grace is an eighth of the
 * key's charged interval: the requests sent then arrive no closer than 7/8
 * of T / w apart, and T / w leaves that margin once a cut has found the
 * upstream's pace. A key at its figure (charged T: never cut, or whole
 * again) keeps a late reservation: no 429 has said the upstream refuses
 * that spacing, and against one that tolerates it giving the turn up only
 * loses it. True when the reservation made at @at for key @worst is stale
 * at @woke.
 */
static bool reservation_stale(const struct vrl_client *c, const struct vrl_take *t,
			      const struct look *lk, unsigned worst, uint64_t at, uint64_t woke)
{
	const struct vrl_limit *l = &c->cfg->limits[t[worst].limit];

	return vrl_rate_adaptive(l) && !lk[worst].shadow_deny &&
	       lk[worst].k.charge > l->gcra.emission_ns && woke > at &&
	       woke - at > lk[worst].k.charge / 8;
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
		if (!lk[k].shadow_deny && vrl_kind_process_held(&c->cfg->limits[t[k].limit]))
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
	v->limit_value = vrl_kind_size(l);
	return VRL_EDENIED;
}

/* A waiting acquire denied for want of share on key @t waits what AQ.S6
 * says and tries again when @deadline allows: true when it slept. */
static bool share_wait(const struct vrl_client *c, const struct vrl_take *t, uint64_t deadline,
		       bool waiting)
{
	uint64_t now = vrl_now_ns(), wait;

	if (!waiting || deadline < now)
		return false;
	wait = share_retry(c, t, now);
	if (deadline - now < wait)
		wait = deadline - now;
	if (wait < VRL_SHARE_RETRY_NS)
		return false;
	sleep_until(now + wait);
	return true;
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
	unsigned fills = 0;

	for (;;) {
		uint64_t now, at, rt = 0, conv;
		unsigned worst = 0, i, done;
		int stale = -1, final = -1, newer = -1, jr;
		bool again = false;

		/*
		 * Step 1: look. AQ.C1 (gcra.h): the clock is read first, as ever,
		 * and the words it judges must not have been converted after it:
		 * rate_conversions, read before the clock and again after the
		 * loads, shows none was. Else the look is done again carefully:
		 * every key loaded first, then the clock read.
		 */
		/* acquire: ordered before the clock read and the loads below */
		conv = atomic_load_explicit(&c->hdr->rate_conversions, memory_order_acquire);
		now = careful ? 0 : vrl_now_ns();
		for (i = 0; i < n; i++)
			if (t[i].slot != UINT64_MAX && look_load(c, &t[i], &lk[i]) == VRL_LOOK_STALE) {
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
				lk[i].k.earliest = now;
				continue;
			}
			lk[i].conv = conv;
			/* a config published since enter(): refresh and plan again */
			if (lk[i].gen != c->cfg->gen_word && !c->cfg->stale && !last)
				return VRL__RESTART;
			jr = look_judge(c, &t[i], cost, now, now, &rt, careful, &lk[i]);
			if (__builtin_expect(jr != VRL_LOOK_OK, 0)) {
				if (jr == VRL_LOOK_NEWER) {
					newer = (int)i;
					break;
				}
				if (jr == VRL_LOOK_NEW)   /* look again at the key marked */
					mark_new_key(c, &t[i], &lk[i], now);
				else                  /* VRL_LOOK_CONVERT: loads, then clock */
					careful = true;
				again = true;
				continue;
			}
			if (lk[i].k.final && final < 0)
				final = (int)i;
			if (lk[i].k.earliest > at) {
				at = lk[i].k.earliest;
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
			vrl__fill_denied(c, &t[final], &lk[final], now, v);
			vrl__adapt_fill(c, t, lk, n, now, now, false, v);
			return VRL_EDENIED;
		}
		if (stale < 0 && at > deadline) {
			v->at_ns = now;
			vrl__fill_denied(c, &t[worst], &lk[worst], now, v);
			vrl__adapt_fill(c, t, lk, n, now, now, false, v);
			return VRL_EDENIED;
		}
		/* AQ.S1: a share without room denies before any write */
		if (stale < 0 && c->cfg->nglobal &&
		    (jr = share_peek(c, t, lk, n, cost, now, at)) >= 0) {
			if (share_wait(c, &t[jr], deadline, waiting)) {
				careful = false;
				continue;
			}
			return share_denied(c, t, lk, n, (unsigned)jr, cost, now, v);
		}
		/* AQ.W1: a wait that would leave a gap on another key sleeps
		 * to `at` holding nothing, and looks again */
		if (stale < 0 && at > now && leaves_gap(c, t, lk, n, at)) {
			sleep_until(at);
			if (vrl__woke)
				vrl__woke(at);
			careful = false;
			continue;
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
				if (vrl__woke)
					vrl__woke(at);
				if (reservation_lost(c, t, lk, n, after)) {
					give_up(c, t, lk, n, cost, at, before, after);
					return start_over(c, &t[worst], at, last, v);
				}
				if (reservation_stale(c, t, lk, worst, at, vrl_now_ns())) {
					/* what cannot be rolled back stays spent: a
					 * gap the upstream sees, never an over-grant */
					give_up(c, t, lk, n, cost, at, before, after);
					careful = false;
					continue;
				}
			}
			if (c->cfg->nglobal) {
				/* AQ.S1: the share at the decision time: `at`, the
				 * time the grant is dated (a waiting one's after its
				 * wake; the credit it spends must be of then: F0) */
				bool lost;

				jr = share_take(c, t, lk, n, cost, at, &lost);
				if (jr < 0 && !vrl_share_fresh(&c->hdr->share_fill_ns, at)) {
					/* AQ.S4: credit of a pass after `at` may be
					 * in it: no grant; the credit stays spent
					 * (a block's goes back: AQ.B2) */
					blocks_give_back(c, t, lk, n, cost);
					give_up(c, t, lk, n, cost, at, before, after);
					careful = false;
					if (++fills < SHARE_FRESH_TRIES)
						continue;
					jr = share_first(c, t, n);
					return share_denied(c, t, lk, n, (unsigned)jr, cost, at, v);
				}
				if (jr >= 0) {
					/* AQ.S2: the commits rolled back, the takes kept */
					give_up(c, t, lk, n, cost, at, before, after);
					careful = false;
					if (lost || share_wait(c, &t[jr], deadline, waiting))
						continue;
					return share_denied(c, t, lk, n, (unsigned)jr, cost, at, v);
				}
			}
			vrl__fill_granted(c, t, lk, n, now, v);
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

/* Shared tail of the acquire calls (client.h). */
int vrl__acquire_takes(struct vrl_client *c, const char *api, struct vrl_take *t, unsigned n,
			 bool full, uint64_t cost, uint64_t deadline, bool waiting, bool last,
			 struct vrl_verdict *v)
{
	struct vrl_verdict local;
	int rc;

	if (!v)
		v = &local;
	vrl__verdict_init(v, n);
	if (cost == 0)
		cost = 1;
	v->cost = cost;
	if (full) {
		v->flags |= VRL_VERDICT_TABLE_FULL;
		if (!(c->cfg->flags & VRL_CFG_FAIL_OPEN)) {
			vrl__count(c, t, 0, v);
			return VRL_EFULL;
		}
	}
	if (n == 0) {
		rc = vrl__unmatched(c, api, v);   /* the config's unmatched: policy */
		vrl__count(c, t, 0, v);
		return rc;
	}
	/* an immediate acquire takes its deadline from take()'s own clock
	 * read: one clock read per call on the common path */
	rc = take(c, t, n, cost, deadline, waiting, last, v);
	if (rc == 0 || rc == VRL_EDENIED)
		vrl__count(c, t, n, v);
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
	rc = vrl__check(c, req);
	if (rc)
		return rc;
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
