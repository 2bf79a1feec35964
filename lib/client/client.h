/*
 * client.h - the handle and what the files of lib/client share. Private to
 * lib/client: vrld, vrlctl and the tests use vrl_internal.h.
 *
 *   handle.c    open, close, fork, the holder record and the SIGBUS guard
 *   errors.c    vrl_strerror, vrl_err_name
 *   snapshot.c  the config snapshot: read, validated, refreshed
 *   match.c     matching a request and placing its keys (labels: label.c)
 *   acquire.c   the acquire engine: look, commit, roll back (look.h)
 *               (its verdict: verdict.h)
 *   resolved.c  resolved requests
 *   keyops.c    cooldown, reset, release, refund, reconcile
 *   observe.c   vrl_observe (feedback.c parses, alert.c: thresholds)
 */
#ifndef VRL_CLIENT_H
#define VRL_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "guard.h"
#include "quota.h"
#include "vrl_internal.h"
#include "window.h"

struct vrl_client {
	struct vrl_seg_header *hdr;
	uint64_t mapped;                /* bytes mapped at hdr */
	int fd;                         /* the segment's descriptor, kept to heal; its
	                                   open file description holds the holder
	                                   record's lock (handle.c, HOLD.L) */
	pid_t fd_pid;                   /* the process that opened that description */
	struct vrl_guard *guard;        /* the mapping's SIGBUS guard (guard.h) */
	bool readonly;
	char name[VRL_SHM_NAME_MAX];
	struct vrl_snapshot *cfg;       /* current */
	struct vrl_snapshot *prev;      /* kept one call longer: verdict names */
	struct vrl_seg_holder *holder;  /* NULL: no counter slot */
	uint64_t holder_idx;            /* its index, the byte of its lock */
	uint64_t fork_epoch;            /* vrl__fork_epoch when registered */
	struct vrl_seg_view view;       /* the layout vrl_seg_validate() passed: every
	                                   area is reached through it, never through
	                                   the header's words */
};

/* One key an acquire takes: which limit, where its slot is. */
struct vrl_take {
	uint32_t limit;                 /* index into the snapshot */
	struct vrl_key key;
	uint64_t slot;                  /* UINT64_MAX: none (table full, fail-open) */
	uint64_t ring;                  /* window: ring index in its limit's area */
};

/* ---- handle.c ------------------------------------------------------------------ */

/* Bumped in every forked child: a handle registered under another epoch
 * belongs to the parent's pid and must re-register. Process-local. */
extern _Atomic uint64_t vrl__fork_epoch;

/* Take a holder record for @c (NULL when none is free, or read-only). */
void vrl__holder_register(struct vrl_client *c);

/* Start the handle's per-limit counters over for config @generation. */
void vrl__holder_new_config(struct vrl_client *c, uint64_t generation);

/* Heal a mapping a shrunk segment damaged (guard.c): 0 or VRL_ECORRUPT. */
int vrl__heal(struct vrl_client *c);

/* Record and unrecord @units of a process-bound slots key held at @slot
 * (key @tag) in the handle's holder record. Single writer: the handle. */
void vrl__hold_add(struct vrl_client *c, uint64_t slot, uint64_t tag, uint64_t units);
void vrl__hold_sub(struct vrl_client *c, uint64_t slot, uint64_t tag, uint64_t units);

/* Single-writer counter: a relaxed load and store, no locked instruction. */
static inline void vrl__bump(_Atomic uint64_t *x)
{
	atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* Single-writer add, as vrl__bump(). */
static inline void vrl__bump_by(_Atomic uint64_t *x, uint64_t n)
{
	atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* True when the @n reserved words at @w are all zero (vrl.h, a growing ABI). */
static inline bool vrl__zeroed(const uint64_t *w, size_t n)
{
	uint64_t any = 0;

	for (size_t i = 0; i < n; i++)
		any |= w[i];
	return any == 0;
}

/*
 * The argument checks every call of vrl.h makes first, the same in all
 * (vrl.h, "Entry checks"): VRL_ENULL for a NULL handle or request,
 * VRL_ERESERVED for a request with a reserved word set; 0 when both pass.
 */
static inline int vrl__check(const struct vrl_client *c, const struct vrl_request *req)
{
	if (__builtin_expect(!c || !req, 0))
		return VRL_ENULL;
	if (__builtin_expect(!vrl__zeroed(req->reserved, sizeof(req->reserved) / sizeof(req->reserved[0])), 0))
		return VRL_ERESERVED;
	return 0;
}

/*
 * Entry check of every call: a damaged mapping, fork and config changes.
 * *@state is the mapping's damage word, for vrl__leave().
 */
static inline int vrl__enter(struct vrl_client *c, uint64_t *state)
{
	uint64_t d = vrl_guard_state(c->guard);
	int rc;

	*state = d;
	if (__builtin_expect(vrl_guard_damaged(d), 0)) {
		rc = vrl__heal(c);
		if (rc)
			return rc;
		*state = vrl_guard_state(c->guard);
	}
	if (__builtin_expect(c->fork_epoch != atomic_load_explicit(&vrl__fork_epoch,
								   memory_order_relaxed), 0))
		vrl__holder_register(c);
	rc = vrl__refresh(c);
	/* a refresh that read zero pages failed for that alone */
	if (__builtin_expect(rc != 0, 0) && vrl_guard_state(c->guard) != *state)
		return VRL_ECORRUPT;
	return rc;
}

/*
 * Exit check of every call: if the mapping was damaged while the call ran
 * (zero pages stood in for a shrunk segment), whatever it did or saw is
 * void: VRL_ECORRUPT, and never a grant (@v, when given, is denied).
 */
static inline int vrl__leave(struct vrl_client *c, uint64_t state, int rc, struct vrl_verdict *v)
{
	if (__builtin_expect(vrl_guard_state(c->guard) == state, 1))
		return rc;
	if (v)
		v->granted = 0;
	return VRL_ECORRUPT;
}

/* ---- errors.c -------------------------------------------------------------------- */

/* What vrl_strerror(VRL_EOWNER) says on this thread: the last refusal. */
extern _Thread_local char vrl__owner_refusal[384];

/* ---- match.c --------------------------------------------------------------------- */

/* vrl_kt_get(), waiting out a reclaim bracket: 0, VRL_EFULL or an error. */
int vrl__kt_get(struct vrl_client *c, const struct vrl_key *key, uint32_t note,
		const char *label, uint64_t *idx);

/* Find or insert the slot of take @t (a window key gets its ring). */
int vrl__place(struct vrl_client *c, struct vrl_take *t, const char *label);

/* The ring of window key @t, taken from its limit's area on first use. */
int vrl__window_ring(struct vrl_client *c, const struct vrl_take *t, uint64_t *ring);

/* Match @req and place its keys. Returns the number of takes or an error;
 * *@full when a key found no slot. */
int vrl__plan(struct vrl_client *c, const struct vrl_request *req, struct vrl_take *t,
	      bool *full);

/* The key of take @t in slot @s, as its kind sees it (kind.h). */
static inline struct vrl_kind_key vrl__kind_key(const struct vrl_client *c,
					       const struct vrl_take *t, struct vrl_seg_slot *s)
{
	return (struct vrl_kind_key){ .l = &c->cfg->limits[t->limit], .s = s, .v = &c->view,
				      .ring = t->ring };
}

/* ---- acquire.c -------------------------------------------------------------------- */

/* take() asks its caller to refresh the config and start over. */
#define VRL__RESTART 1
#define VRL__RESTARTS_MAX 8u   /* then the handle's config is used as stale */

/* The wall clock quota periods are judged by (vrl__realtime_ns). */
static inline uint64_t vrl__realtime(void)
{
	return vrl__realtime_ns();
}

/*
 * Shared tail of the acquire calls: take @t[0..n) with @cost, waiting until
 * @deadline when @waiting; @n == 0, a request of api @api that matched no
 * limit, goes to vrl__unmatched(). VRL__RESTART when the caller must
 * refresh its config and plan again (never on its last try, @last).
 */
int vrl__acquire_takes(struct vrl_client *c, const char *api, struct vrl_take *t, unsigned n,
		       bool full, uint64_t cost, uint64_t deadline, bool waiting, bool last,
		       struct vrl_verdict *v);

/* unmatched.c: the verdict @v (zeroed but for cost) on a request of @api
 * that matched no limit, by the config's unmatched: policy. Returns 0
 * (granted) or VRL_EUNMATCHED. */
int vrl__unmatched(struct vrl_client *c, const char *api, struct vrl_verdict *v);

/* ---- keyops.c --------------------------------------------------------------------- */

/*
 * Move the local state of the rate, quota and window keys of @req (or of
 * the limit named @limit) so that they have at most @server_remaining left,
 * as the upstream reported (x-ratelimit-remaining, CarsXE's usage.remaining):
 * quota: used = max(used, count - server_remaining) in the current period;
 * rate: TAT at least now + (burst - server_remaining) * T; window: free
 * positions taken at now, as grants, until at most server_remaining are
 * free (a key without a ring gets one). It never raises what remains.
 * @server_limit is informational (the upstream's own size). Lock-free: one
 * CAS loop per key (a window: one CAS per position taken). Errors as
 * vrl_cooldown(), and VRL_EFULL when a window key finds no free ring.
 */
int vrl__reconcile(struct vrl_client *c, const struct vrl_request *req, const char *limit,
		   uint64_t server_limit, uint64_t server_remaining);

/*
 * The key of @req in the limit named @limit, placed (inserted) in @t, as
 * vrl_cooldown() and vrl__reconcile() key it: 0, VRL_ENOLIMIT when no
 * limit has that name, VRL_EFULL, or an error. For vrl_observe(), which
 * keys its target once and acts on it with the two calls below.
 */
int vrl__key_named(struct vrl_client *c, const struct vrl_request *req, const char *limit,
		   struct vrl_take *t);

/* vrl_cooldown() and vrl__reconcile() of the one key @t (placed). */
int vrl__cooldown_key(struct vrl_client *c, struct vrl_take *t, uint64_t until_ns);
int vrl__reconcile_key(struct vrl_client *c, struct vrl_take *t, uint64_t server_limit,
		       uint64_t server_remaining);

#endif /* VRL_CLIENT_H */
