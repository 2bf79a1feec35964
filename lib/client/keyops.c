/*
 * keyops.c - what a caller does to a request's keys besides acquiring:
 * close them (cooldown), make them whole (reset), give units back
 * (release, refund) and move them toward an upstream's figures
 * (reconcile). Each is lock-free: CAS loops on one word per key.
 */
#include "client.h"

#include <errno.h>
#include <string.h>

#include "clock.h"
#include "quota.h"

/* Give units back (client.h). */
void vrl__give_back(struct vrl_seg_slot *s, uint32_t kind, uint64_t pid, uint64_t cost)
{
	uint64_t cur = atomic_load_explicit(&s->state, memory_order_relaxed), next;

	do {
		if (cur == VRL_STATE_EVICTED)
			return;
		next = kind == VRL_KIND_QUOTA ? vrl_quota_credit(cur, pid, cost) :
						vrl_slots_release(cur, cost);
		if (next == cur)
			return;
		/* relaxed: only the count moves; no other data rides on it */
	} while (!atomic_compare_exchange_weak_explicit(&s->state, &cur, next,
							memory_order_relaxed, memory_order_relaxed));
}

#define KINDS_ALL    UINT32_MAX

/*
 * Apply @op to the key of each limit of a kind in @kinds that matches @req
 * (or the limit named @limit). Of an override group only the member that
 * an acquire would take is selected.
 */
static int keys_do(struct vrl_client *c, const struct vrl_request *req, const char *limit,
		   bool insert, uint32_t kinds,
		   int (*op)(struct vrl_client *, struct vrl_take *, uint64_t), uint64_t arg)
{
	int matched = 0, keyed = 0, rc;

	for (uint32_t i = 0; i < c->cfg->nlimits; i++) {
		const struct vrl_limit *l = &c->cfg->limits[i];
		struct vrl_take t = { .limit = i };
		char label[VRL_LABEL_MAX];

		if (!(kinds & VRL__KIND_BIT(l->seg.kind)))
			continue;
		if (limit ? strcmp(limit, l->seg.name) != 0 : !vrl_limit_selected(c->cfg, i, req))
			continue;
		matched++;
		vrl_limit_key(l, req, &t.key, label);
		rc = insert ? vrl__kt_get(c, &t.key, vrl_slot_note(i, &l->seg, c->cfg->generation),
					 label, &t.slot) :
			      vrl_kt_find(&c->view, &t.key, &t.slot);
		if (rc == VRL_ENOKEY)
			continue;   /* no slot: nothing to do for this limit */
		if (rc == 0)
			rc = op(c, &t, arg);
		if (rc)
			return rc;
		keyed++;
	}
	if (matched == 0)
		return VRL_ENOLIMIT;
	return keyed ? 0 : VRL_ENOKEY;
}

static int for_keys(struct vrl_client *c, const struct vrl_request *req, const char *limit,
		    bool insert, uint32_t kinds,
		    int (*op)(struct vrl_client *, struct vrl_take *, uint64_t), uint64_t arg)
{
	uint64_t state;
	int rc;

	if (c->readonly)
		return VRL_EREADONLY;
	rc = vrl__enter(c, &state);
	if (rc)
		return rc;
	return vrl__leave(c, state, keys_do(c, req, limit, insert, kinds, op, arg), NULL);
}

static int op_cooldown(struct vrl_client *c, struct vrl_take *t, uint64_t until)
{
	for (;;) {
		struct vrl_seg_slot *s = &c->view.slots[t->slot];
		uint64_t cur = atomic_load_explicit(&s->cooldown, memory_order_relaxed);

		/* seq_cst: the cooldown store and the eviction check below form
		 * a Dekker pair with vrld's state CAS (E1) and its cooldown load:
		 * either vrld sees the cooldown, or we see the eviction */
		while (cur < until && !atomic_compare_exchange_weak(&s->cooldown, &cur, until))
			;
		if (atomic_load(&s->state) != VRL_STATE_EVICTED &&
		    atomic_load_explicit(&s->tag, memory_order_acquire) == vrl_key_tag(&t->key)) {
			if (c->holder)
				vrl__bump(&c->holder->limit_cooldowns[t->limit]);
			return 0;
		}
		int rc = vrl__kt_get(c, &t->key,
				    vrl_slot_note(t->limit, &c->cfg->limits[t->limit].seg,
						  c->cfg->generation),
				    "", &t->slot);

		if (rc)
			return rc;
	}
}

static int op_reset(struct vrl_client *c, struct vrl_take *t, uint64_t unused)
{
	struct vrl_seg_slot *s = &c->view.slots[t->slot];
	uint64_t cur = atomic_load_explicit(&s->state, memory_order_relaxed);

	(void)unused;
	if (c->cfg->limits[t->limit].seg.kind == VRL_KIND_WINDOW &&
	    vrl__window_ring(c, t, &t->ring) == 0) {
		struct vrl_window_ref w = vrl__window_ref(c, t, s);

		/* relaxed: an operator's act; every grant of the window forgotten */
		for (uint64_t i = 0; i < w.n; i++)
			atomic_store_explicit(&w.ring[i], 0, memory_order_relaxed);
	}
	/* relaxed: a reset is an operator's act with no ordering to keep; the
	 * CAS keeps it from resurrecting an evicted slot */
	while (cur != VRL_STATE_EVICTED &&
	       !atomic_compare_exchange_weak_explicit(&s->state, &cur, 0, memory_order_relaxed,
						      memory_order_relaxed))
		;
	atomic_store_explicit(&s->cooldown, 0, memory_order_relaxed);
	return 0;
}

int vrl_cooldown(vrl_client *c, const struct vrl_request *req, const char *limit,
		 uint64_t until_ns)
{
	int rc = vrl__check(c, req);

	if (rc)
		return rc;
	return for_keys(c, req, limit, true, KINDS_ALL, op_cooldown, until_ns);
}

int vrl_reset(vrl_client *c, const struct vrl_request *req, const char *limit)
{
	int rc = vrl__check(c, req);

	if (rc)
		return rc;
	return for_keys(c, req, limit, false, KINDS_ALL, op_reset, 0);
}

/* ---- operations: release, refund, reconcile ------------------------------------------------ */

static int op_release(struct vrl_client *c, struct vrl_take *t, uint64_t cost)
{
	struct vrl_seg_slot *s = &c->view.slots[t->slot];

	/* unrecord first: a crash in between leaks, never gives back twice */
	if (vrl__process_slots(&c->cfg->limits[t->limit]))
		vrl__hold_sub(c, t->slot, vrl_key_tag(&t->key), cost);
	vrl__give_back(s, VRL_KIND_SLOTS, 0, cost);
	return 0;
}

int vrl_release(vrl_client *c, const struct vrl_request *req, const char *limit, uint64_t cost)
{
	int rc = vrl__check(c, req);

	if (rc)
		return rc;
	return for_keys(c, req, limit, false, VRL__KIND_BIT(VRL_KIND_SLOTS), op_release,
			cost ? cost : 1);
}

/*
 * True when rate word @w, just loaded (acquire), can be moved with @c's
 * config: a new key's, or one of its epoch, loaded while that config was
 * in force (G1). Feedback moves only such words; a word of another
 * epoch is left for its next acquire to convert, which a refund or a
 * reconcile can miss without harm (they only give room back, or are
 * repeated by the next answer).
 */
static bool rate_word_ours(const struct vrl_client *c, const struct vrl_limit *l, uint64_t w)
{
	/* relaxed: ordered after the word's load by its acquire */
	return w != VRL_STATE_EVICTED && (w == 0 || vrl_gcra_tag(w) == l->tag) &&
	       atomic_load_explicit(&c->hdr->config_gen, memory_order_relaxed) ==
		       c->cfg->gen_word;
}

/* Move the TAT of rate key @s back by @cost permits, never past a full bucket. */
static void refund_rate(const struct vrl_client *c, const struct vrl_limit *l,
			struct vrl_seg_slot *s, uint64_t cost)
{
	/* G1 acquire, as look_load() */
	uint64_t cur = atomic_load_explicit(&s->state, memory_order_acquire), next, back, now, tat;

	if (__builtin_mul_overflow(cost, l->gcra.emission_ns, &back))
		back = UINT64_MAX;
	do {
		if (cur == 0 || !rate_word_ours(c, l, cur))
			return;   /* new, gone, or of another epoch */
		now = vrl_now_ns();
		tat = vrl_gcra_tat(cur);
		if (tat <= now)
			return;   /* already full */
		next = vrl_gcra_word(l->tag, tat - now > back ? tat - back : now);
		/* release (G1); acquire on failure, as the load above. No other
		 * data rides on it: a refund only makes room */
	} while (!atomic_compare_exchange_weak_explicit(&s->state, &cur, next,
							memory_order_release, memory_order_acquire));
}

/*
 * Give back @cost grants of window key @t that still hold a position: the
 * newest ones (vrl_window_credit). A key without a ring took nothing yet.
 */
static void refund_window(struct vrl_client *c, const struct vrl_take *t, uint64_t cost)
{
	const struct vrl_seg_limit *l = &c->cfg->limits[t->limit].seg;
	struct vrl_window_ref w;
	uint64_t now = vrl_now_ns();

	if (vrl_window_ref_of(&c->view, l, t->slot, &w) != 0)
		return;
	/* a position at or before now - W is free already: crediting it would
	 * spend the refund on room that is there anyway */
	vrl_window_credit(&w, cost, now >= w.w ? now - w.w + 1 : 1);
}

static int op_refund(struct vrl_client *c, struct vrl_take *t, uint64_t cost)
{
	const struct vrl_limit *l = &c->cfg->limits[t->limit];
	struct vrl_seg_slot *s = &c->view.slots[t->slot];
	uint64_t pid;

	if (l->seg.kind == VRL_KIND_RATE) {
		refund_rate(c, l, s, cost);
		return 0;
	}
	if (l->seg.kind == VRL_KIND_WINDOW) {
		refund_window(c, t, cost);
		return 0;
	}
	vrl_quota_period(&l->seg, vrl__realtime(), &pid, NULL, NULL);
	vrl__give_back(s, VRL_KIND_QUOTA, pid, cost);
	return 0;
}

int vrl_refund(vrl_client *c, const struct vrl_request *req, const char *limit, uint64_t cost)
{
	int rc = vrl__check(c, req);

	if (rc)
		return rc;
	return for_keys(c, req, limit, false,
			VRL__KIND_BIT(VRL_KIND_RATE) | VRL__KIND_BIT(VRL_KIND_QUOTA) | VRL__KIND_BIT(VRL_KIND_WINDOW),
			op_refund, cost ? cost : 1);
}

struct server_figures {
	uint64_t limit;
	uint64_t remaining;
};

/* Raise the word of @s so that at most @remaining are left; never lowers it. */
static void raise_state(const struct vrl_client *c, struct vrl_seg_slot *s,
			const struct vrl_limit *l, uint64_t pid, uint64_t remaining)
{
	/* G1 acquire, as look_load() */
	uint64_t cur = atomic_load_explicit(&s->state, memory_order_acquire), next;

	do {
		if (cur == VRL_STATE_EVICTED)
			return;
		if (l->seg.kind == VRL_KIND_QUOTA) {
			/* relaxed: ordered after the word by its acquire; a newer
			 * config may have changed the calendar: leave it */
			if (atomic_load_explicit(&c->hdr->config_gen, memory_order_relaxed) !=
			    c->cfg->gen_word)
				return;
			next = vrl_quota_reconcile(&l->seg, vrl__quota_view(l, cur, pid), pid, remaining);
			if (next == vrl__quota_view(l, cur, pid))
				return;
		} else {
			uint64_t held, floor, now, tat;

			if (remaining >= l->gcra.burst || !rate_word_ours(c, l, cur))
				return;
			now = vrl_now_ns();
			tat = vrl_gcra_tat(cur);
			if (__builtin_mul_overflow(l->gcra.burst - remaining, l->gcra.emission_ns,
						   &held) || held > VRL_GCRA_TIME_MAX - now)
				held = VRL_GCRA_TIME_MAX - now;
			floor = now + held;
			if (tat >= floor)
				return;
			next = vrl_gcra_word(l->tag, floor);
		}
		/* release (G1); acquire on failure, as the load above. This only
		 * makes later grants wait; no other data rides on it */
	} while (!atomic_compare_exchange_weak_explicit(&s->state, &cur, next,
							memory_order_release, memory_order_acquire));
}

/*
 * Take free positions of window key @t until at most @remaining are free
 * (vrl_window_floor). The key gets its ring here if it has none yet (for_keys
 * inserted it). A key evicted meanwhile is re-placed and floored again.
 */
static int reconcile_window(struct vrl_client *c, struct vrl_take *t, uint64_t remaining)
{
	for (;;) {
		struct vrl_seg_slot *s = &c->view.slots[t->slot];
		const struct vrl_seg_limit *l = &c->cfg->limits[t->limit].seg;
		int rc = vrl__window_ring(c, t, &t->ring);

		if (rc)
			return rc;
		struct vrl_window_ref w = vrl__window_ref(c, t, s);

		/* acquire fence, as look_at(): the positions are read after the
		 * ring was settled (W2 in window.c) */
		atomic_thread_fence(memory_order_acquire);
		if (vrl_window_floor(&w, remaining, vrl_now_ns()) != -EAGAIN &&
		    atomic_load_explicit(&s->tag, memory_order_acquire) == vrl_key_tag(&t->key))
			return 0;
		rc = vrl__kt_get(c, &t->key, vrl_slot_note(t->limit, l, c->cfg->generation), "",
				&t->slot);
		if (rc)
			return rc;
	}
}

static int op_reconcile(struct vrl_client *c, struct vrl_take *t, uint64_t arg)
{
	const struct server_figures *f = (const struct server_figures *)(uintptr_t)arg;
	const struct vrl_limit *l = &c->cfg->limits[t->limit];
	uint64_t pid = 0;

	if (l->seg.kind == VRL_KIND_WINDOW)
		return reconcile_window(c, t, f->remaining);
	if (l->seg.kind == VRL_KIND_QUOTA)
		vrl_quota_period(&l->seg, vrl__realtime(), &pid, NULL, NULL);
	raise_state(c, &c->view.slots[t->slot], l, pid, f->remaining);
	return 0;
}

int vrl__reconcile(struct vrl_client *c, const struct vrl_request *req, const char *limit,
		   uint64_t server_limit, uint64_t server_remaining)
{
	struct server_figures f = { server_limit, server_remaining };

	return for_keys(c, req, limit, true,
			VRL__KIND_BIT(VRL_KIND_RATE) | VRL__KIND_BIT(VRL_KIND_QUOTA) | VRL__KIND_BIT(VRL_KIND_WINDOW),
			op_reconcile, (uint64_t)(uintptr_t)&f);
}

