/*
 * kind.h - a limit kind is a module: the operations every kind answers,
 * and one dispatch per operation.
 *
 * The kinds, each in its own file:
 *   kind_rate.h     rate: GCRA over the key's TAT (gcra.h)
 *   kind_window.h   window: an exact rolling window over a ring (window.h)
 *   kind_counted.h  quota (units per calendar period) and slots (held at
 *                   once): a count in the state word (quota.h)
 *   kind_gate.h     gate: a cooldown alone, never denies unless closed
 *
 * Beside them, kind_describe.h: a limit and a key describing themselves
 * for the displays (figures by name, a size's shape, a state word's parts,
 * a quota's period and overage), one dispatch each; the callers format.
 *
 * The acquire engine (lib/client/acquire.c) loads a key's words and hands
 * them to vrl_kind_judge(), which fills a tagged look result (struct
 * vrl_kind_look: the kind's part of it is set); every later step on that
 * key (commit, undo, the verdict's figures) reads the look through the
 * same dispatch. The engine owns the orderings (loads, the commit CAS, the
 * owner re-check: acquire.c AQ.A1-AQ.A4, AQ.G1, AQ.C1); a kind owns its arithmetic
 * and the words it writes beside the state word (the window's ring).
 * vrld and vrlctl read a key's state through the same operations (idle
 * for eviction, share used, grants between reads, figures for display).
 *
 * Nothing outside lib/kinds asks "which kind is this?" to compute: it
 * calls one of the vrl_kind_*() below, or of kind_upkeep.h (vrld's:
 * areas, reloads, eviction, settling).
 */
#ifndef VRL_KIND_H
#define VRL_KIND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "adapt.h"
#include "gcra.h"
#include "quota.h"
#include "segment.h"
#include "vrl.h"
#include "window.h"

/* One limit of a config snapshot, with its arithmetic ready
 * (vrl_limit_prepare). */
struct vrl_limit {
	struct vrl_seg_limit seg;   /* validated copy */
	struct vrl_gcra gcra;       /* rate: its parameters */
	struct vrl_gcra prev;       /* rate: the epoch before's; burst 0: unknown */
	struct vrl_adapt adapt;     /* rate, VRL_LIMIT_ADAPTIVE: its profile (adapt.h) */
	unsigned tag;               /* rate: the tag of its words (gcra.h) */
	bool carry;                 /* quota: a calendar change is recorded */
	uint64_t carry_from;        /* quota: its periods (vrl_quota_transition) */
	uint64_t carry_to;
	uint64_t name_len;
};

/* Bit of kind @k in a set of kinds; the sets the operations on keys use. */
#define VRL_KIND_BIT(k)      (1u << (k))
#define VRL_KINDS_ALL        UINT32_MAX
#define VRL_KINDS_HELD       VRL_KIND_BIT(VRL_KIND_SLOTS)   /* given back by a release */
/* given back by a refund, moved by a reconcile: what counts grants */
#define VRL_KINDS_SPENT      (VRL_KIND_BIT(VRL_KIND_RATE) | VRL_KIND_BIT(VRL_KIND_QUOTA) | \
			      VRL_KIND_BIT(VRL_KIND_WINDOW))
#define VRL_KINDS_PACED      (VRL_KIND_BIT(VRL_KIND_RATE))  /* refills with time */
#define VRL_KINDS_UPSTREAM   (VRL_KIND_BIT(VRL_KIND_RATE) | VRL_KIND_BIT(VRL_KIND_GATE))
#define VRL_KINDS_QUOTA      VRL_KIND_BIT(VRL_KIND_QUOTA)
#define VRL_KINDS_WINDOW     VRL_KIND_BIT(VRL_KIND_WINDOW)

/* The key a look is about. */
struct vrl_kind_key {
	const struct vrl_limit *l;
	struct vrl_seg_slot *s;          /* its slot */
	const struct vrl_seg_view *v;    /* the segment, for a kind's area */
	uint64_t ring;                   /* window: the ring the slot's aux names */
};

/* What the engine knows around one look. */
struct vrl_kind_when {
	uint64_t cost;
	uint64_t now;
	uint64_t at;                     /* the time judged (>= now) */
	uint64_t *rt;                    /* the wall clock, read once a look (0: not yet) */
	uint64_t (*realtime)(void);      /* how to read it */
	uint64_t newer;                  /* configs published since the handle's: 0 in force */
	bool careful;                    /* words loaded before the clock read (acquire.c AQ.C1) */
};

/*
 * The tagged look result: what a kind decided of one key at one time.
 * @kind says which part is set; @earliest and @final are every kind's.
 */
struct vrl_kind_look {
	uint32_t kind;
	bool final;                      /* a count without room: waiting cannot help */
	bool convert;                    /* rate: a word of another epoch, converted at now */
	uint64_t earliest;               /* earliest conforming time; UINT64_MAX: never */
	uint64_t tat;                    /* rate: the word's TAT under the limit's parameters */
	uint64_t charge;                 /* rate: ns a permit is charged (T, or T / w) */
	uint32_t adapt;                  /* rate, adaptive: the slot's adapt word as loaded */
	struct vrl_gcra_step r;          /* rate: the decision at `at` */
	struct vrl_window_look w;        /* window: where to take at `at` */
	uint64_t w_at;                   /* window: the time its positions were taken at */
	struct vrl_quota_step q;         /* quota and slots: the decision */
	uint64_t pid;                    /* quota: the current period's id */
	uint64_t end_rt;                 /* quota: wall-clock end of the period; UINT64_MAX: once */
	uint64_t rt;                     /* quota: the wall-clock time it was judged at */
};

/*
 * vrl_kind_judge() results besides VRL_LOOK_OK. VRL_LOOK_STALE is the
 * engine's (the slot changed owner); VRL_LOOK_NEWER: a word that the
 * handle's (stale) config cannot read; VRL_LOOK_NEW: a rate key's word is
 * 0, to be marked (vrl_kind_new_word); VRL_LOOK_CONVERT: a rate word to
 * convert, met by a look not yet careful (acquire.c AQ.C1).
 */
enum { VRL_LOOK_OK = 0, VRL_LOOK_STALE = 1, VRL_LOOK_NEWER = 2, VRL_LOOK_NEW = 3,
       VRL_LOOK_CONVERT = 4 };

/* How a kind writes a grant (vrl_kind_commits). */
enum vrl_kind_commit {
	VRL_COMMIT_NONE = 0,   /* nothing to write: a gate */
	VRL_COMMIT_WORD,       /* one CAS of the state word: rate, quota, slots */
	VRL_COMMIT_RING,       /* positions of the key's ring, then the word: window */
};

/* The figures of one key for a display (vrlctl, metrics): all in units
 * of the limit, times in ns from now. */
struct vrl_kind_figures {
	uint64_t size;         /* a full key: burst, count */
	uint64_t available;    /* units left now */
	uint64_t used;         /* counted kinds: units counted (past size: overage) */
	uint64_t overage;      /* soft quota: units past the limit */
	uint64_t used_ns;      /* rate, window: time until the key is whole */
	uint64_t period_ns;    /* quota: time until the period ends; UINT64_MAX: never */
	uint64_t used10;       /* rate, window: tenths of a percent used */
	uint64_t tat;          /* rate: the TAT under the limit's parameters; else the word */
	bool counted;          /* used/size figures (quota, slots) */
	bool paced;            /* refills with time (rate, window) */
};

/*
 * Put @before back in the state word of @s if it still holds @ours: the
 * undo of a CAS (acquire.c AQ.A1). A failed put-back leaves permits taken,
 * which is safe.
 */
static inline bool vrl_slot_put_back(struct vrl_seg_slot *s, uint64_t ours, uint64_t before)
{
	/* release (AQ.G1): a reader of the word put back sees the config its
	 * first writer used */
	return atomic_compare_exchange_strong_explicit(&s->state, &ours, before,
						       memory_order_release, memory_order_relaxed);
}

/* What vrld does to one limit's keys after a reload (vrl_kind_settle_*). */
struct vrl_kind_settle {
	uint32_t kind;               /* 0: nothing to do */
	unsigned tag;                /* rate: the current epoch's tag */
	struct vrl_gcra cur, prev;   /* rate: parameters now and before (prev.burst 0: none) */
	uint64_t from, to;           /* quota: the calendar change (vrl_quota_transition) */
	uint64_t pid;                /* quota: the period in force */
};

/* The per-kind files use the types above. */
#include "kind_counted.h"
#include "kind_gate.h"
#include "kind_rate.h"
#include "kind_window.h"

/* ---- the dispatch: one switch per operation --------------------------------- */

/* The kinds of a segment are the public kinds of vrl.h. */
_Static_assert((int)VRL_KIND_RATE == (int)VRL_RATE && (int)VRL_KIND_GATE == (int)VRL_GATE &&
	       (int)VRL_KIND_WINDOW == (int)VRL_WINDOW &&
	       (int)VRL_KIND_QUOTA == (int)VRL_QUOTA && (int)VRL_KIND_SLOTS == (int)VRL_SLOTS,
	       "segment kinds are the public kinds");

/* True when @kind is a kind this library knows. */
static inline bool vrl_kind_known(uint32_t kind)
{
	return kind != 0 && kind < VRL_KIND__COUNT;
}

/* True when @l's kind is in the set @kinds (VRL_KIND_BIT). */
static inline bool vrl_kind_in(const struct vrl_limit *l, uint32_t kinds)
{
	return (kinds & VRL_KIND_BIT(l->seg.kind)) != 0;
}

/*
 * The kind's arithmetic of limit @in, ready in @out (whose seg is a copy
 * of @in): a rate's parameters, a window's ring size, a count's bounds and
 * a quota's calendar. 0, or -1 when @in is not valid for its kind.
 */
static inline int vrl_kind_prepare(const struct vrl_seg_limit *in, struct vrl_limit *out)
{
	memset(&out->gcra, 0, sizeof(out->gcra));
	memset(&out->prev, 0, sizeof(out->prev));
	out->tag = vrl_gcra_epoch_tag(in->rate_epoch);
	out->carry = false;
	switch (in->kind) {
	case VRL_KIND_RATE:
		return vrl_rate_prepare(in, out);
	case VRL_KIND_WINDOW:
		return vrl_windowed_prepare(in);
	case VRL_KIND_QUOTA:
	case VRL_KIND_SLOTS:
		return vrl_counted_prepare(in, out);
	default:
		return 0;
	}
}

/* The check of @l's area in the segment viewed by @v (the window's
 * rings: window.c): 0, or VRL_ECORRUPT. */
static inline int vrl_kind_area_check(const struct vrl_seg_view *v, const struct vrl_seg_limit *l)
{
	return l->kind == VRL_KIND_WINDOW ? vrl_window_area_check(v, l) : 0;
}

/* The kind's name in configs and displays. */
static inline const char *vrl_kind_name(uint32_t kind)
{
	switch (kind) {
	case VRL_KIND_RATE:   return "rate";
	case VRL_KIND_GATE:   return "gate";
	case VRL_KIND_WINDOW: return "window";
	case VRL_KIND_QUOTA:  return "quota";
	case VRL_KIND_SLOTS:  return "slots";
	}
	return "unknown";
}

/* Step 1 of an acquire: the decision for key @k whose state word is
 * @state, for @w->cost at @w->at. VRL_LOOK_OK or one of the results above. */
static inline __attribute__((always_inline)) int
vrl_kind_judge(const struct vrl_kind_key *k, struct vrl_kind_look *lk, uint64_t state,
	       const struct vrl_kind_when *w)
{
	lk->kind = k->l->seg.kind;
	lk->final = false;
	lk->convert = false;
	lk->tat = 0;
	switch (lk->kind) {
	case VRL_KIND_RATE:
		return vrl_rate_judge(k, lk, state, w);
	case VRL_KIND_WINDOW:
		return vrl_windowed_judge(k, lk, state, w);
	case VRL_KIND_QUOTA:
	case VRL_KIND_SLOTS:
		return vrl_counted_judge(k->l, lk, state, w);
	default:
		return vrl_gate_judge(lk, w);
	}
}

/* How @l's kind writes a grant. */
static inline enum vrl_kind_commit vrl_kind_commits(const struct vrl_limit *l)
{
	switch (l->seg.kind) {
	case VRL_KIND_RATE:
	case VRL_KIND_QUOTA:
	case VRL_KIND_SLOTS:
		return VRL_COMMIT_WORD;
	case VRL_KIND_WINDOW:
		return VRL_COMMIT_RING;
	default:
		return VRL_COMMIT_NONE;
	}
}

/* VRL_COMMIT_RING: write the positions a grant of @cost at @at takes
 * (0; 1 when the look no longer holds; else the slot is not the key's);
 * *@after is the state word written. */
static inline int vrl_kind_place(const struct vrl_kind_key *k, struct vrl_kind_look *lk,
				 uint64_t cost, uint64_t at, uint64_t *after)
{
	switch (k->l->seg.kind) {
	case VRL_KIND_WINDOW:
		return vrl_windowed_place(k, lk, cost, at, after);
	default:
		*after = 0;
		return 0;
	}
}

/* VRL_COMMIT_WORD: the state word a grant of @lk writes, or false when the
 * look does not conform. */
static inline bool vrl_kind_next(const struct vrl_limit *l, const struct vrl_kind_look *lk,
				 uint64_t *next)
{
	if (lk->kind == VRL_KIND_RATE) {
		*next = vrl_gcra_word(l->tag, lk->r.new_tat);
		return lk->r.conforms;
	}
	*next = lk->q.new_state;
	return lk->q.conforms;
}

/*
 * VRL_COMMIT_WORD: the commit CAS lost a race and loaded @cur. Judge again
 * from @cur (for @w's cost and times) into @lk, or false when @cur may not
 * be judged with this look (a word a conversion or a newer config may have
 * written): the engine then looks again.
 */
static inline bool vrl_kind_rejudge(const struct vrl_limit *l, struct vrl_kind_look *lk,
				    uint64_t cur, const struct vrl_kind_when *w)
{
	if (lk->kind == VRL_KIND_RATE)
		return vrl_rate_rejudge(l, lk, cur, w);
	return vrl_counted_rejudge(l, lk, cur, w);
}

/* VRL_COMMIT_WORD: the word a rollback of the grant that replaced @cur
 * puts back: @cur, or for a rate word converted by the look, the
 * conversion (a rollback never undoes it: gcra.h). */
static inline uint64_t vrl_kind_before(const struct vrl_limit *l, const struct vrl_kind_look *lk,
				       uint64_t cur)
{
	return lk->convert ? vrl_gcra_word(l->tag, lk->tat) : cur;
}

/* True when @l's words hold a time, which a reload's conversion may move
 * (acquire.c AQ.C1): a word loaded after the clock read needs checking. */
static inline bool vrl_kind_timed(const struct vrl_limit *l)
{
	return l->seg.kind == VRL_KIND_RATE;
}

/* True when a grant of @l's kind reserved at a time later than the key's
 * earliest wastes the time between (acquire.c AQ.W1): a rate word's TAT
 * moves from the reserved time, so nobody can use the gap before it. A
 * window, a count or a gate loses nothing by a later grant. */
static inline bool vrl_kind_spaced(const struct vrl_limit *l)
{
	return l->seg.kind == VRL_KIND_RATE;
}

/* The word an acquire first writes on a new key (state 0) at @now, or 0
 * when the kind has no such step. */
static inline uint64_t vrl_kind_new_word(const struct vrl_limit *l, uint64_t now)
{
	return l->seg.kind == VRL_KIND_RATE ? vrl_rate_new_word(l, now) : 0;
}

/* True when a look may go on with @cur, the word loaded again before a
 * waiting acquire's commit, where the first look loaded @seen. */
static inline bool vrl_kind_word_kept(const struct vrl_limit *l, uint64_t seen, uint64_t cur)
{
	return l->seg.kind != VRL_KIND_RATE || vrl_rate_word_kept(l, seen, cur);
}

/*
 * Give a committed grant of @cost back (acquire.c AQ.A1): the word put
 * from @after back to @before if nobody moved it since (rate), the count
 * given back (quota, slots), the ring's positions freed (window). False
 * when the grant stays taken (rate: the word moved on).
 */
static inline bool vrl_kind_undo(const struct vrl_kind_key *k, const struct vrl_kind_look *lk,
				 uint64_t cost, uint64_t before, uint64_t after)
{
	switch (k->l->seg.kind) {
	case VRL_KIND_WINDOW:
		return vrl_windowed_undo(k, lk, cost, after);
	case VRL_KIND_QUOTA:
	case VRL_KIND_SLOTS:
		if (after != before)
			vrl_counted_give_back(k->s, &k->l->seg, lk->pid, cost);
		return true;
	case VRL_KIND_RATE:
		return after == before || vrl_slot_put_back(k->s, after, before);
	default:
		return true;
	}
}

/* Units the key of @k has left after what @lk decided (off the CAS path:
 * it may cost a division). A gate never runs out: UINT64_MAX. */
static inline uint64_t vrl_kind_remaining(const struct vrl_kind_key *k,
					  const struct vrl_kind_look *lk, uint64_t now)
{
	switch (k->l->seg.kind) {
	case VRL_KIND_RATE:
		return vrl_rate_remaining(k->l, lk, now);
	case VRL_KIND_WINDOW:
		return vrl_windowed_remaining(k, now);
	case VRL_KIND_QUOTA:
	case VRL_KIND_SLOTS:
		return lk->q.remaining;
	default:
		return UINT64_MAX;
	}
}

/*
 * A verdict's figures of the key of @k: kind, limit_value, reset_ns and
 * overage, and when @granted is false the remaining units too (a granted
 * verdict's come from vrl_kind_remaining). A window's are read from its
 * ring (O(log n)).
 */
static inline void vrl_kind_verdict(const struct vrl_kind_key *k, const struct vrl_kind_look *lk,
				    uint64_t now, bool granted, struct vrl_verdict *v)
{
	v->kind = k->l->seg.kind;
	v->overage = 0;
	switch (k->l->seg.kind) {
	case VRL_KIND_RATE:
		vrl_rate_verdict(k->l, lk, now, granted, v);
		return;
	case VRL_KIND_WINDOW:
		vrl_windowed_verdict(k, now, v);
		return;
	case VRL_KIND_QUOTA:
	case VRL_KIND_SLOTS:
		vrl_counted_verdict(k->l, lk, granted, v);
		return;
	default:
		v->limit_value = 0;
		v->reset_ns = 0;
		if (!granted)
			v->remaining = 0;
	}
}

/* The verdict flags a grant of @lk raises (VRL_VERDICT_OVERAGE,
 * _SATURATED, _ALERT: the counted kinds'). */
static inline unsigned vrl_kind_grant_flags(const struct vrl_limit *l,
					    const struct vrl_kind_look *lk)
{
	switch (l->seg.kind) {
	case VRL_KIND_QUOTA:
	case VRL_KIND_SLOTS:
		return vrl_counted_grant_flags(lk);
	default:
		return 0;
	}
}

/* ---- operations on a key besides acquiring (keyops.c) ---------------------- */

/* Forget what an area holds of the key of @k (a reset; the window's
 * ring; a rate's adapt word), beside the state word that the caller
 * empties. */
static inline void vrl_kind_clear(const struct vrl_kind_key *k)
{
	if (k->l->seg.kind == VRL_KIND_WINDOW)
		vrl_windowed_clear(k);
	else if (k->l->seg.kind == VRL_KIND_RATE)
		vrl_rate_clear(k);   /* back at the figure */
}

/*
 * Give @cost grants back to the key of @k (a refund): a rate's TAT moved
 * back, never past full, only for a word its config (@gen_word) can read;
 * a window's newest positions freed; a quota's units of the period at the
 * wall clock @realtime() given back. Others: nothing to give.
 */
static inline void vrl_kind_refund(const struct vrl_kind_key *k, uint64_t gen_word, uint64_t cost,
				   uint64_t (*clock)(void), uint64_t (*realtime)(void))
{
	uint64_t pid;

	switch (k->l->seg.kind) {
	case VRL_KIND_RATE:
		vrl_rate_refund(k, gen_word, cost, clock);
		return;
	case VRL_KIND_WINDOW:
		vrl_windowed_refund(k, cost, clock());
		return;
	case VRL_KIND_QUOTA:
		vrl_quota_period(&k->l->seg, realtime(), &pid, NULL, NULL);
		vrl_counted_give_back(k->s, &k->l->seg, pid, cost);
		return;
	case VRL_KIND_SLOTS:
		vrl_counted_give_back(k->s, &k->l->seg, 0, cost);
		return;
	default:
		return;
	}
}

/*
 * The word to CAS over @cur so that at most @remaining units are left (a
 * reconcile with an upstream's figures), or false to leave it: a quota's
 * used raised in the period at the wall clock @rt, under the config of
 * @gen_word only (a newer
 * one may have changed the calendar); a rate's TAT raised to hold the
 * rest, for a word that config can read. Never lowers what is used.
 */
static inline bool vrl_kind_floor_word(const struct vrl_kind_key *k, uint64_t gen_word,
				       uint64_t rt, uint64_t remaining, uint64_t (*clock)(void),
				       uint64_t cur, uint64_t *next)
{
	const struct vrl_limit *l = k->l;
	uint64_t pid = 0;

	switch (l->seg.kind) {
	case VRL_KIND_QUOTA:
		vrl_quota_period(&l->seg, rt, &pid, NULL, NULL);
		/* relaxed: ordered after the word by its acquire */
		if (atomic_load_explicit(&k->v->hdr->config_gen, memory_order_relaxed) != gen_word)
			return false;
		*next = vrl_quota_reconcile(&l->seg, vrl_quota_view(l, cur, pid), pid, remaining);
		return *next != vrl_quota_view(l, cur, pid);
	case VRL_KIND_RATE:
		if (remaining >= l->gcra.burst || !vrl_rate_word_ours(k, gen_word, cur))
			return false;
		*next = vrl_rate_floor(l, cur, remaining, clock());
		return *next != cur;
	default:
		return false;
	}
}

/* The area's part of a reconcile (the window's ring: positions taken until
 * at most @remaining are free at @now): 0, or -EAGAIN to place the key
 * again and retry. A kind without an area has nothing to do. */
static inline int vrl_kind_floor_area(const struct vrl_kind_key *k, uint64_t remaining,
				      uint64_t now)
{
	return k->l->seg.kind == VRL_KIND_WINDOW ? vrl_windowed_floor(k, remaining, now) : 0;
}

/* The size of a full key of @l: a rate's burst, the others' count. */
static inline uint64_t vrl_kind_size(const struct vrl_limit *l)
{
	return l->seg.kind == VRL_KIND_RATE ? l->gcra.burst : l->seg.count;
}

/* True when @l's units are held by a process, and go back when it dies. */
static inline bool vrl_kind_process_held(const struct vrl_limit *l)
{
	return l->seg.kind == VRL_KIND_SLOTS && !(l->seg.flags & VRL_LIMIT_PERSIST);
}

/* True when keys of kind @kind keep an area beside the key table (the
 * window's rings). */
static inline bool vrl_kind_keeps_area(uint32_t kind)
{
	return kind == VRL_KIND_WINDOW;
}

/* True when @l needs an area beside the key table. */
static inline bool vrl_kind_has_area(const struct vrl_seg_limit *l)
{
	return vrl_kind_keeps_area(l->kind);
}

/* True when @l's state words outlive vrld (its checkpoint keeps them). */
static inline bool vrl_kind_durable(const struct vrl_seg_limit *l)
{
	return l->kind == VRL_KIND_QUOTA ||
	       (l->kind == VRL_KIND_SLOTS && (l->flags & VRL_LIMIT_PERSIST));
}

/* The state to store over @cur, a worker's since the segment was made,
 * restoring @saved of a durable kind @kind (vrl_kind_durable). */
static inline uint64_t vrl_kind_merge(uint32_t kind, uint64_t cur, uint64_t saved)
{
	if (cur == 0)
		return saved;
	if (kind == VRL_KIND_SLOTS)
		return cur + saved;
	/* quota: units of the same period add up; a newer period wins */
	return vrl_quota_merge(cur, saved);
}

/*
 * Share of its limit the key in slot @slot of @v has used at @now (quota:
 * in period @qid, from vrl_key_periods): 0 untouched, 1 at it. A window's
 * is read from its ring when @v is given. The cooldown is the caller's.
 */
static inline double vrl_kind_used_ratio(const struct vrl_seg_view *v, const struct vrl_limit *l,
					 uint64_t slot, uint64_t state, uint64_t now, uint64_t qid)
{
	double r;

	switch (l->seg.kind) {
	case VRL_KIND_RATE:
		r = vrl_rate_used_ratio(l, state, now);
		break;
	case VRL_KIND_WINDOW:
		r = v ? vrl_windowed_used_ratio(v, l, slot, now) : 0;
		break;
	case VRL_KIND_QUOTA:
	case VRL_KIND_SLOTS:
		r = vrl_counted_used_ratio(l, state, qid);
		break;
	default:
		r = 0;
	}
	return r > 1 ? 1 : r;
}

/* Grants a key took between reads of its state (@s0 at @t0, @s1 at @t1;
 * quota: in period @qid): see each kind's. 0 for a kind that cannot tell. */
static inline uint64_t vrl_kind_grants(const struct vrl_limit *l, uint64_t s0, uint64_t t0,
				       uint64_t s1, uint64_t t1, uint64_t qid)
{
	switch (l->seg.kind) {
	case VRL_KIND_QUOTA:
		return vrl_quota_grants(l, s0, s1, qid);
	case VRL_KIND_RATE:
		return vrl_rate_grants(l, s0, t0, s1, t1);
	default:
		return 0;
	}
}

/*
 * The display figures of the key of @l in slot @slot of @v, whose words
 * read @state and @aux, at @now; a quota's by the wall clock @rt. A
 * window's are exact (every position of its ring read).
 */
static inline void vrl_kind_figures(const struct vrl_seg_view *v, const struct vrl_limit *l,
				    uint64_t slot, uint64_t state, uint64_t aux, uint64_t now,
				    uint64_t rt, struct vrl_kind_figures *f)
{
	*f = (struct vrl_kind_figures){ .tat = state };
	switch (l->seg.kind) {
	case VRL_KIND_RATE:
		vrl_rate_figures(l, state, now, f);
		return;
	case VRL_KIND_WINDOW:
		vrl_windowed_figures(v, l, slot, aux, now, f);
		return;
	case VRL_KIND_QUOTA:
	case VRL_KIND_SLOTS:
		vrl_counted_figures(l, state, rt, f);
		return;
	default:
		return;
	}
}

#endif /* VRL_KIND_H */
