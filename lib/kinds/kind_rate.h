/*
 * kind_rate.h - the rate kind: GCRA over a key's theoretical arrival time
 * (gcra.h has the algorithm and the proof of its reload conversions).
 *
 * The state word is a TAT tagged with the epoch of the parameters that
 * wrote it; 0 is a new key, full under any parameters. A word of the
 * epoch before is read through the conversion that keeps its fill; a
 * stale handle reads only the words gcra.h allows it. Included by kind.h,
 * which dispatches to these. A key of a global rate limit (scope: global)
 * grants only within this GCRA and its share word besides (share.h), all
 * or nothing: the engine takes the share after the word's commit
 * (acquire.c AQ.S1 to S3 has the proof); nothing here changes for it.
 */
#ifndef VRL_KIND_RATE_H
#define VRL_KIND_RATE_H

#ifndef VRL_KIND_H
#error "include kind.h"
#endif

/* The arithmetic of rate limit @in, ready in @out (its parameters, and the
 * epoch before's as vrl_seg_publish() recorded them): 0, or -1 when they
 * are not valid. */
static inline int vrl_rate_prepare(const struct vrl_seg_limit *in, struct vrl_limit *out)
{
	if (vrl_gcra_init(&out->gcra, in->count, in->period_ns, in->burst) != 0)
		return -1;
	if (in->prev_burst && vrl_gcra_init(&out->prev, 1, in->prev_emission_ns, in->prev_burst) != 0)
		return -1;
	memset(&out->adapt, 0, sizeof(out->adapt));
	if ((in->flags & VRL_LIMIT_ADAPTIVE) && vrl_adapt_load(&out->adapt, in->adapt) != 0)
		return -1;
	return 0;
}

/* True when @l paces at an effective rate (adapt.h). */
static inline bool vrl_rate_adaptive(const struct vrl_limit *l)
{
	return l->seg.kind == VRL_KIND_RATE && (l->seg.flags & VRL_LIMIT_ADAPTIVE) != 0;
}

/* The parameters that wrote a rate word of tag @tag, as @l knows them. */
static inline const struct vrl_gcra *vrl_rate_params(const struct vrl_limit *l, unsigned tag)
{
	if (tag == l->tag)
		return &l->gcra;
	if (tag == vrl_gcra_epoch_tag(l->tag + VRL_GCRA_TAGS - 1) && l->prev.burst)
		return &l->prev;
	return NULL;   /* an older epoch: unknown */
}

/* The TAT of rate word @w under @l's parameters at @now (a word of the
 * epoch before converted, keeping its fill: gcra.h). */
static inline uint64_t vrl_rate_tat(const struct vrl_limit *l, uint64_t w, uint64_t now)
{
	if (w == 0 || vrl_gcra_tag(w) == l->tag)
		return vrl_gcra_tat(w);
	return vrl_gcra_convert(vrl_rate_params(l, vrl_gcra_tag(w)), &l->gcra, vrl_gcra_tat(w),
				now);
}

/*
 * A stale handle (its config could not be refreshed, or a reload storm
 * outran it: @newer configs were published since its own) may use rate
 * word @w only if @w is of its epoch or the one before and fewer than 7
 * configs were published since, so that the tag cannot have wrapped
 * (gcra.h).
 */
static inline bool vrl_rate_stale_ok(const struct vrl_limit *l, uint64_t w, uint64_t newer)
{
	unsigned tag = vrl_gcra_tag(w);

	return newer < VRL_GCRA_TAGS - 1 &&
	       (w == 0 || tag == l->tag || tag == vrl_gcra_epoch_tag(l->tag + VRL_GCRA_TAGS - 1));
}

/*
 * The TAT that rate word @w has under @l's parameters at @w->now: its own,
 * or, for a word of another epoch, the conversion that keeps its fill
 * (gcra.h); a word of 0 (a new key) is full. VRL_LOOK_NEWER when the
 * handle's config is stale and cannot read the word; VRL_LOOK_NEW for a
 * new key, which the engine marks first; VRL_LOOK_CONVERT for a word to
 * convert unless @w->careful (words loaded before the clock read).
 */
static inline __attribute__((always_inline)) int
vrl_rate_view(const struct vrl_limit *l, struct vrl_kind_look *lk, uint64_t word,
	      const struct vrl_kind_when *w)
{
	unsigned tag = vrl_gcra_tag(word);

	lk->tat = vrl_gcra_tat(word);
	if (__builtin_expect(w->newer != 0, 0) && !vrl_rate_stale_ok(l, word, w->newer))
		return VRL_LOOK_NEWER;
	if (__builtin_expect(tag == l->tag && word != 0, 1))
		return VRL_LOOK_OK;
	if (word == 0)
		return VRL_LOOK_NEW;
	if (!w->careful)
		return VRL_LOOK_CONVERT;
	lk->convert = true;
	lk->tat = vrl_gcra_convert(vrl_rate_params(l, tag), &l->gcra, lk->tat, w->now);
	return VRL_LOOK_OK;
}

/*
 * The decision for @w->cost at @w->at from rate word @word. An adaptive
 * limit (AD.W2) tests conformance under the configured (T, tau) and
 * charges each permit T / w >= T, w the key's effective rate at now.
 *
 * Why this never grants above the configured figure (Invariant 1): the
 * conformance test is exactly the configured GCRA's, and a grant only
 * moves the TAT further than GCRA would (charge >= T, vrl_adapt_emission
 * never returns less). adapt.h AD.W3 proves that any sequence of charges
 * T_k >= T keeps the grants in any [s, e] within b + (e - s) / T, in any
 * order of the CASes, with reservations and with gcra.h's reload phases;
 * the adapt word is read relaxed because any value of it gives a charge
 * >= T. A refund gives back n * T, never more than was charged.
 */
static inline __attribute__((always_inline)) int
vrl_rate_judge(const struct vrl_kind_key *k, struct vrl_kind_look *lk, uint64_t word,
	       const struct vrl_kind_when *w)
{
	const struct vrl_limit *l = k->l;
	int rc = vrl_rate_view(l, lk, word, w);

	if (rc != VRL_LOOK_OK)
		return rc;
	lk->charge = l->gcra.emission_ns;
	lk->adapt = 0;
	if (__builtin_expect(vrl_rate_adaptive(l), 0)) {
		/* relaxed: any value gives a charge >= T (AD.W2); the line is
		 * in cache, loaded with the state word */
		lk->adapt = atomic_load_explicit(&k->s->aux, memory_order_relaxed);
		lk->charge = vrl_adapt_emission(&l->adapt, lk->adapt, w->now, l->gcra.emission_ns);
	}
	lk->r = vrl_adapt_step(&l->gcra, lk->charge, lk->tat, w->now, w->at, w->cost);
	lk->earliest = lk->r.conforms ? w->at :
		lk->r.retry_after == UINT64_MAX ? UINT64_MAX : w->now + lk->r.retry_after;
	return VRL_LOOK_OK;
}

/*
 * The word a failed commit CAS loaded came after the look's clock read:
 * use it only as a word of the look's epoch that needs no conversion
 * (gcra.h, acquire.c AQ.C1; the engine checks the config and the conversion
 * count); else false, and the engine looks again.
 */
static inline bool vrl_rate_rejudge(const struct vrl_limit *l, struct vrl_kind_look *lk,
				    uint64_t cur, const struct vrl_kind_when *w)
{
	if (lk->convert || cur == 0 || vrl_gcra_tag(cur) != l->tag)
		return false;
	lk->tat = vrl_gcra_tat(cur);
	lk->r = vrl_adapt_step(&l->gcra, lk->charge, lk->tat, w->now, w->at, w->cost);
	return true;
}

/*
 * A word still the one the look loaded (@seen) was not converted since: a
 * conversion moves its tag on, and no write brings an older tag back (a
 * rollback never undoes a conversion). A word that moved (@cur) is used
 * only when both are of the limit's epoch.
 */
static inline bool vrl_rate_word_kept(const struct vrl_limit *l, uint64_t seen, uint64_t cur)
{
	return cur == seen ||
	       (cur != 0 && vrl_gcra_tag(cur) == l->tag && vrl_gcra_tag(seen) == l->tag);
}

/* A new key's first word: full (TAT = @now), of the limit's epoch. */
static inline uint64_t vrl_rate_new_word(const struct vrl_limit *l, uint64_t now)
{
	return vrl_gcra_word(l->tag, now < VRL_GCRA_TIME_MAX ? now : VRL_GCRA_TIME_MAX);
}

/* Permits left after what @lk decided. */
static inline uint64_t vrl_rate_remaining(const struct vrl_limit *l,
					  const struct vrl_kind_look *lk, uint64_t now)
{
	return vrl_gcra_available(&l->gcra, lk->r.conforms ? lk->r.new_tat : lk->tat, now);
}

/* A verdict's figures: the burst, and when the bucket is full again. */
static inline void vrl_rate_verdict(const struct vrl_limit *l, const struct vrl_kind_look *lk,
				    uint64_t now, bool granted, struct vrl_verdict *v)
{
	uint64_t tat = granted ? lk->r.new_tat : lk->tat;

	if (!granted)
		v->remaining = vrl_gcra_available(&l->gcra, tat, now);
	v->limit_value = l->gcra.burst;
	v->reset_ns = tat > now ? tat - now : 0;
}

/* Share of the bucket used: the TAT's lead on @now over the tolerance. */
static inline double vrl_rate_used_ratio(const struct vrl_limit *l, uint64_t state, uint64_t now)
{
	uint64_t tat = vrl_rate_tat(l, state, now);

	if (tat > now && l->gcra.tolerance_ns)
		return (double)(tat - now) / (double)l->gcra.tolerance_ns;
	return 0;
}

/*
 * Grants between reads (@s0 at @t0, @s1 at @t1): the bucket time consumed
 * from where the TAT stood (or @t0 if the bucket was full) over the
 * emission interval, at most what the rate allows in the span: exact for a
 * busy key, an overestimate for one idle at @t0.
 */
static inline uint64_t vrl_rate_grants(const struct vrl_limit *l, uint64_t s0, uint64_t t0,
				       uint64_t s1, uint64_t t1)
{
	uint64_t from, n, most;

	if (!l->gcra.emission_ns)
		return 0;
	s0 = vrl_rate_tat(l, s0, t0);   /* the TATs, under the current parameters */
	s1 = vrl_rate_tat(l, s1, t1);
	from = s0 > t0 ? s0 : t0;
	if (s1 <= from)
		return 0;
	n = (s1 - from) / l->gcra.emission_ns;
	most = l->gcra.burst + (t1 - t0) / l->gcra.emission_ns;
	return n < most ? n : most;
}

__extension__ typedef unsigned __int128 vrl_rate_u128;

/* Display figures: permits available of the burst, time until full. */
static inline void vrl_rate_figures(const struct vrl_limit *l, uint64_t state, uint64_t now,
				    struct vrl_kind_figures *f)
{
	f->paced = true;
	f->tat = vrl_rate_tat(l, state, now);
	f->size = l->gcra.burst;
	f->available = vrl_gcra_available(&l->gcra, f->tat, now);
	f->used_ns = f->tat > now ? f->tat - now : 0;
	if (f->used_ns > l->gcra.tolerance_ns)
		f->used_ns = l->gcra.tolerance_ns;
	if (l->gcra.tolerance_ns)
		f->used10 = (uint64_t)((vrl_rate_u128)f->used_ns * 1000 / l->gcra.tolerance_ns);
}

/* ---- adaptive pacing: the key's adapt word (adapt.h) ------------------------ */

/*
 * A 429 charged to the key of @k at @now, for a request granted at
 * @granted_at (VRL_ADAPT_GRANTED_UNKNOWN: not known): cut its adapt word,
 * unless the cut in force answers it (adapt.h). Returns what this call
 * wrote (VRL_ADAPT_CUT or VRL_ADAPT_STRIKE; 0: nothing), with the word it
 * replaced in *@before and the one it wrote in *@cut; the caller checks
 * the slot's owner after and puts *@before back if it changed
 * (vrl_rate_uncut): a strike word carries the mark as a cut's does. Relaxed: the word orders with nothing
 * (AD.W2).
 */
static inline int vrl_rate_cut(const struct vrl_kind_key *k, uint64_t now, uint64_t granted_at,
			       uint32_t *before, uint32_t *cut)
{
	uint32_t cur = atomic_load_explicit(&k->s->aux, memory_order_relaxed), next;
	int rc;

	for (;;) {
		if (!(rc = vrl_adapt_cut(&k->l->adapt, cur, now, granted_at, &next)))
			return rc;
		if (atomic_compare_exchange_weak_explicit(&k->s->aux, &cur, next,
							  memory_order_relaxed,
							  memory_order_relaxed)) {
			*before = cur;
			*cut = next;
			return rc;
		}
	}
}

/* Undo a cut of @k that wrote @cut over @before, if nobody moved it since. */
static inline void vrl_rate_uncut(const struct vrl_kind_key *k, uint32_t cut, uint32_t before)
{
	/* relaxed: as the cut */
	atomic_compare_exchange_strong_explicit(&k->s->aux, &cut, before, memory_order_relaxed,
						memory_order_relaxed);
}

/* Put the key of @k back at its figure (a reset): a word a cut wrote is
 * emptied; any other value (none for a rate key) is left alone. */
static inline void vrl_rate_clear(const struct vrl_kind_key *k)
{
	uint32_t cur = atomic_load_explicit(&k->s->aux, memory_order_relaxed);

	/* relaxed: an operator's act, as the reset of the state word */
	while ((cur & VRL_ADAPT_MARK) &&
	       !atomic_compare_exchange_weak_explicit(&k->s->aux, &cur, 0, memory_order_relaxed,
						      memory_order_relaxed))
		;
}

/* The effective rate of adapt word @aux of a key of @l at @now, in 1/65536
 * of the figure; 0 when @l does not adapt. */
static inline uint32_t vrl_rate_pace(const struct vrl_limit *l, uint32_t aux, uint64_t now)
{
	return vrl_rate_adaptive(l) ? vrl_adapt_rate(&l->adapt, aux, now) : 0;
}

/* ---- feedback: moving a key's word toward what an upstream says -------------- */

/*
 * True when rate word @w, just loaded (acquire), can be moved with the
 * config of generation word @gen_word: a new key's, or one of its epoch,
 * loaded while that config was in force (AQ.G1). Feedback moves only such
 * words; a word of another epoch is left for its next acquire to convert,
 * which a refund or a reconcile can miss without harm (they only give room
 * back, or are repeated by the next answer).
 */
static inline bool vrl_rate_word_ours(const struct vrl_kind_key *k, uint64_t gen_word, uint64_t w)
{
	/* relaxed: ordered after the word's load by its acquire */
	return w != VRL_STATE_EVICTED && (w == 0 || vrl_gcra_tag(w) == k->l->tag) &&
	       atomic_load_explicit(&k->v->hdr->config_gen, memory_order_relaxed) == gen_word;
}

/* Move the TAT of the key of @k back by @cost permits, never past a full
 * bucket (@now: the clock, read on each try). */
static inline void vrl_rate_refund(const struct vrl_kind_key *k, uint64_t gen_word, uint64_t cost,
				   uint64_t (*clock)(void))
{
	const struct vrl_limit *l = k->l;
	/* AQ.G1 acquire, as the engine's look */
	uint64_t cur = atomic_load_explicit(&k->s->state, memory_order_acquire), next, back, now, tat;

	if (__builtin_mul_overflow(cost, l->gcra.emission_ns, &back))
		back = UINT64_MAX;
	do {
		if (cur == 0 || !vrl_rate_word_ours(k, gen_word, cur))
			return;   /* new, gone, or of another epoch */
		now = clock();
		tat = vrl_gcra_tat(cur);
		if (tat <= now)
			return;   /* already full */
		next = vrl_gcra_word(l->tag, tat - now > back ? tat - back : now);
		/* release (AQ.G1); acquire on failure, as the load above. No
		 * other data rides on it: a refund only makes room */
	} while (!atomic_compare_exchange_weak_explicit(&k->s->state, &cur, next,
							memory_order_release, memory_order_acquire));
}

/* The word that leaves at most @remaining permits in @cur at @now, or
 * @cur when it has no more (never lowers the TAT). */
static inline uint64_t vrl_rate_floor(const struct vrl_limit *l, uint64_t cur, uint64_t remaining,
				      uint64_t now)
{
	uint64_t held, floor;

	if (__builtin_mul_overflow(l->gcra.burst - remaining, l->gcra.emission_ns, &held) ||
	    held > VRL_GCRA_TIME_MAX - now)
		held = VRL_GCRA_TIME_MAX - now;
	floor = now + held;
	return vrl_gcra_tat(cur) >= floor ? cur : vrl_gcra_word(l->tag, floor);
}

/* ---- vrld: reloads, conversions, eviction ------------------------------------- */

/* Make @l a rate limit of @count per @period_ns with bucket @burst:
 * 0, or the error of vrl_gcra_init(). */
static inline int vrl_rate_set(struct vrl_seg_limit *l, uint64_t count, uint64_t period_ns,
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

/* A reload's record of rate limit @l from @old, the same keys' limit in
 * force: @l keeps its epoch while its (T, burst) stay, and takes the next
 * one, noting the old (T, burst), when they change (gcra.h). */
static inline void vrl_rate_carry_reload(struct vrl_seg_limit *l, const struct vrl_seg_limit *old)
{
	struct vrl_gcra a, b;

	if (vrl_gcra_init(&a, old->count, old->period_ns, old->burst) != 0 ||
	    vrl_gcra_init(&b, l->count, l->period_ns, l->burst) != 0)
		return;
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

/* The conversion rule of rate limit @l's keys after a reload (gcra.h):
 * its epoch's tag and parameters, and the epoch before's. False when its
 * keys need none. */
static inline bool vrl_rate_settle_rule(const struct vrl_seg_limit *l, struct vrl_kind_settle *r)
{
	if (l->rate_epoch == 0 || vrl_gcra_init(&r->cur, l->count, l->period_ns, l->burst) != 0)
		return false;
	r->tag = vrl_gcra_epoch_tag(l->rate_epoch);
	if (l->prev_burst && vrl_gcra_init(&r->prev, 1, l->prev_emission_ns, l->prev_burst) != 0)
		r->prev.burst = 0;
	return true;
}

/* Rate word @w converted to the epoch of @r at @now, keeping its fill. */
static inline uint64_t vrl_rate_settle_word(const struct vrl_kind_settle *r, uint64_t w,
					    uint64_t now)
{
	unsigned prev_tag = vrl_gcra_epoch_tag(r->tag + VRL_GCRA_TAGS - 1);
	uint64_t tat = vrl_gcra_convert(vrl_gcra_tag(w) == prev_tag && r->prev.burst ? &r->prev : NULL,
					&r->cur, vrl_gcra_tat(w), now);

	return vrl_gcra_word(r->tag, tat);
}

#endif /* VRL_KIND_RATE_H */
