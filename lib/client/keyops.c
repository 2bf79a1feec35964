/*
 * keyops.c - what a caller does to a request's keys besides acquiring:
 * close them (cooldown), make them whole (reset), give units back
 * (release, refund) and move them toward an upstream's figures
 * (reconcile). Each is lock-free: CAS loops on one word per key.
 */
#include "client.h"

#include <errno.h>
#include <string.h>

#include "blocks.h"
#include "clock.h"
#include "quota.h"


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

		if (!vrl_kind_in(l, kinds))
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
		 * a Dekker pair with vrld's state CAS (KT.E1) and its cooldown
		 * load after it (KT.E2): either vrld sees the cooldown and moves
		 * it with the key, or we see the eviction and set it again on
		 * the key's next slot */
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
	if (!vrl_kind_has_area(&c->cfg->limits[t->limit].seg) ||
	    vrl__window_ring(c, t, &t->ring) == 0) {
		const struct vrl_kind_key k = vrl__kind_key(c, t, s);

		vrl_kind_clear(&k);
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

int vrl__key_named(struct vrl_client *c, const struct vrl_request *req, const char *limit,
		   struct vrl_take *t)
{
	int i = vrl__limit_index(c, limit), rc;
	const struct vrl_limit *l;
	char label[VRL_LABEL_MAX];

	if (i < 0)
		return VRL_ENOLIMIT;
	l = &c->cfg->limits[i];
	*t = (struct vrl_take){ .limit = (uint32_t)i };
	vrl_limit_key(l, req, &t->key, label);
	rc = vrl__kt_get(c, &t->key, vrl_slot_note((uint32_t)i, &l->seg, c->cfg->generation), label,
			 &t->slot);
	return rc;
}

int vrl__cooldown_key(struct vrl_client *c, struct vrl_take *t, uint64_t until_ns)
{
	return op_cooldown(c, t, until_ns);
}

int vrl_cooldown(vrl_client *c, const struct vrl_request *req, const char *limit,
		 uint64_t until_ns)
{
	int rc = vrl__check(c, req);

	if (rc)
		return rc;
	return for_keys(c, req, limit, true, VRL_KINDS_ALL, op_cooldown, until_ns);
}

int vrl_reset(vrl_client *c, const struct vrl_request *req, const char *limit)
{
	int rc = vrl__check(c, req);

	if (rc)
		return rc;
	return for_keys(c, req, limit, false, VRL_KINDS_ALL, op_reset, 0);
}

/* ---- operations: release, refund, reconcile ------------------------------------------------ */

static int op_release(struct vrl_client *c, struct vrl_take *t, uint64_t cost)
{
	struct vrl_seg_slot *s = &c->view.slots[t->slot];

	/* unrecord first: a crash in between leaks, never gives back twice */
	if (vrl_kind_process_held(&c->cfg->limits[t->limit]))
		vrl__hold_sub(c, t->slot, vrl_key_tag(&t->key), cost);
	vrl_slots_give_share(c->view.shares ? &c->view.shares[t->slot] : NULL,
			     vrl_slots_give_back(s, cost));
	return 0;
}

int vrl_release(vrl_client *c, const struct vrl_request *req, const char *limit, uint64_t cost)
{
	int rc = vrl__check(c, req);

	if (rc)
		return rc;
	return for_keys(c, req, limit, false, VRL_KINDS_HELD, op_release,
			cost ? cost : 1);
}

/*
 * A refund of a global quota or slots key (blocks.h): the units its count
 * gave back go back to the host's allocation too, under the tag of the
 * period they were given back in (a quota's, as the key's own count
 * credits that period) or the slots' one; a period over since leaves
 * them counted. False for other keys (and a soft quota, which takes
 * nothing from it).
 */
static bool refund_block(struct vrl_client *c, struct vrl_take *t, uint64_t cost)
{
	const struct vrl_limit *l = &c->cfg->limits[t->limit];
	struct vrl_seg_slot *s = &c->view.slots[t->slot];
	uint64_t pid = 0, tag = VRL_BLOCK_SLOTS_TAG, units;

	if (!(l->seg.flags & VRL_LIMIT_GLOBAL) || !c->view.shares ||
	    (l->seg.kind != VRL_KIND_QUOTA && l->seg.kind != VRL_KIND_SLOTS) ||
	    (l->seg.kind == VRL_KIND_QUOTA && (l->seg.flags & VRL_LIMIT_SOFT)))
		return false;
	if (l->seg.kind == VRL_KIND_QUOTA) {
		vrl_quota_period(&l->seg, vrl__realtime_ns(), &pid, NULL, NULL);
		tag = vrl_block_tag_quota(pid);
	}
	units = vrl_counted_credit(s, l->seg.kind == VRL_KIND_QUOTA, pid, cost);
	if (units)
		vrl_block_give(&c->view.shares[t->slot].word, tag, units);
	return true;
}

static int op_refund(struct vrl_client *c, struct vrl_take *t, uint64_t cost)
{
	const struct vrl_kind_key k = vrl__kind_key(c, t, &c->view.slots[t->slot]);

	if (refund_block(c, t, cost))
		return 0;
	vrl_kind_refund(&k, c->cfg->gen_word, cost, vrl_now_ns, vrl__realtime_ns);
	return 0;
}

int vrl_refund(vrl_client *c, const struct vrl_request *req, const char *limit, uint64_t cost)
{
	int rc = vrl__check(c, req);

	if (rc)
		return rc;
	return for_keys(c, req, limit, false, VRL_KINDS_SPENT, op_refund, cost ? cost : 1);
}

struct server_figures {
	uint64_t limit;
	uint64_t remaining;
};

/* Raise the word of the key of @t so that at most @remaining are left, as
 * its kind reads it at the wall clock @rt; never lowers it. */
static void raise_state(const struct vrl_client *c, const struct vrl_take *t, uint64_t rt,
			uint64_t remaining)
{
	const struct vrl_kind_key k = vrl__kind_key(c, t, &c->view.slots[t->slot]);
	/* AQ.G1 acquire, as look_load() */
	uint64_t cur = atomic_load_explicit(&k.s->state, memory_order_acquire), next;

	do {
		if (cur == VRL_STATE_EVICTED ||
		    !vrl_kind_floor_word(&k, c->cfg->gen_word, rt, remaining, vrl_now_ns, cur, &next))
			return;
		/* release (AQ.G1); acquire on failure, as the load above. This
		 * only makes later grants wait; no other data rides on it */
	} while (!atomic_compare_exchange_weak_explicit(&k.s->state, &cur, next,
							memory_order_release, memory_order_acquire));
}

/*
 * Take free positions of window key @t until at most @remaining are free
 * (vrl_kind_floor_area). The key gets its ring here if it has none yet (for_keys
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
		const struct vrl_kind_key k = vrl__kind_key(c, t, s);

		/* acquire: pairs with promotion (KT.K2); the key still owns the
		 * slot after its positions were taken (AQ.A3) */
		if (vrl_kind_floor_area(&k, remaining, vrl_now_ns()) != -EAGAIN &&
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

	if (vrl_kind_has_area(&c->cfg->limits[t->limit].seg))
		return reconcile_window(c, t, f->remaining);
	raise_state(c, t, vrl__realtime(), f->remaining);
	return 0;
}

int vrl__reconcile(struct vrl_client *c, const struct vrl_request *req, const char *limit,
		   uint64_t server_limit, uint64_t server_remaining)
{
	struct server_figures f = { server_limit, server_remaining };

	return for_keys(c, req, limit, true, VRL_KINDS_SPENT, op_reconcile,
			(uint64_t)(uintptr_t)&f);
}

int vrl__reconcile_key(struct vrl_client *c, struct vrl_take *t, uint64_t server_limit,
		       uint64_t server_remaining)
{
	struct server_figures f = { server_limit, server_remaining };

	if (!vrl_kind_in(&c->cfg->limits[t->limit], VRL_KINDS_SPENT))
		return VRL_ENOLIMIT;   /* as vrl__reconcile(): no limit of its kinds */
	return op_reconcile(c, t, (uint64_t)(uintptr_t)&f);
}

