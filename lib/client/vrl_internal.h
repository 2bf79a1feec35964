/*
 * vrl_internal.h - what vrld, vrlctl and the tests may use of libvrl beyond
 * vrl.h: a handle's validated view of the segment and its config snapshot,
 * read through calls, never through the handle's fields (struct
 * vrl_client is private to lib/client); the matching and keying of
 * requests; and the test hooks. Not installed; not exported by libvrl.so
 * (the tools link the static vrl_core).
 *
 * Calling context: as vrl.h's, one thread at a time per handle. Pointers a
 * call returns stay valid until the next call on the same handle.
 */
#ifndef VRL_INTERNAL_H
#define VRL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "gcra.h"
#include "keytable.h"
#include "kind.h"
#include "label.h"
#include "segment.h"
#include "vrl.h"

#define VRL_MAX_MATCHED 16u  /* limits one request may match */

/* A private, validated copy of the segment's config. */
struct vrl_snapshot {
	uint64_t generation;        /* the config area's: what keys are noted with */
	uint64_t gen_word;          /* the header's config_gen while it is in force:
	                               its generation, unless a group member wrote
	                               config_gen (vrl_snapshot_read) */
	/* vrl__refresh() could not read a newer config: this one is kept,
	 * and rate words are used only as gcra.h's "stale handle" allows */
	bool stale;
	uint32_t nlimits;
	uint32_t flags;
	uint32_t nadaptive;         /* adaptive rate limits among them */
	uint32_t nglobal;           /* global limits among them (VRL_LIMIT_GLOBAL) */
	char source[256];
	struct vrl_limit limits[VRL_MAX_LIMITS];
};

/* ---- a handle, as a tool sees it ------------------------------------------------ */

/* The layout vrl_open() validated: every area of the segment, reached
 * through private pointers and counts (segment.h, struct vrl_seg_view). */
const struct vrl_seg_view *vrl__view(const vrl_client *c);

/* The handle's config snapshot (as of its last call or vrl__refresh()). */
const struct vrl_snapshot *vrl__config(const vrl_client *c);

/* The index of the limit named @name in the handle's config, or -1. */
int vrl__limit_index(const vrl_client *c, const char *name);

/* The segment's descriptor the handle keeps open (for fstat and the
 * record lock query, vrl_seg_lock_pid()). */
int vrl__fd(const vrl_client *c);

/* The handle's holder record, NULL when it has none (tests). */
struct vrl_seg_holder *vrl__holder(const vrl_client *c);

/* Refresh the handle's snapshot if vrld published a new config. When the
 * new config cannot be read (vrld kept rewriting it), the handle keeps the
 * one it has, marked stale, and tries again on its next call. Returns 0,
 * -ENOMEM, or VRL_ECORRUPT when the new config is not valid. */
int vrl__refresh(vrl_client *c);

/* ---- config snapshots ------------------------------------------------------------- */

/*
 * Copy and validate the active config of the segment viewed by @v into
 * @out, window areas checked against the view. Returns 0, VRL_EBUSY if it
 * kept changing (or vrld has not published one yet), VRL_ECORRUPT if it is
 * not valid.
 */
int vrl_snapshot_read(const struct vrl_seg_view *v, struct vrl_snapshot *out);

/*
 * Check one limit record as read from a segment or built by a compiler, and
 * fill its arithmetic. Returns 0 or VRL_ECORRUPT.
 */
int vrl_limit_prepare(const struct vrl_seg_limit *in, struct vrl_limit *out);

/* ---- matching and keys ------------------------------------------------------------- */

/* True when limit @l matches @req. */
bool vrl_limit_matches(const struct vrl_limit *l, const struct vrl_request *req);

/* The key of @req under limit @l, and its display label (secret values
 * hashed, see label.h). */
void vrl_limit_key(const struct vrl_limit *l, const struct vrl_request *req,
		   struct vrl_key *key, char label[VRL_LABEL_MAX]);

/*
 * True when limit @i of @cfg is taken for @req: it matches, and no earlier
 * member of its override group (vrl_seg_limit.group) matches.
 */
bool vrl_limit_selected(const struct vrl_snapshot *cfg, uint32_t i, const struct vrl_request *req);

/* ---- what vrld does for a handle that is gone ---------------------------------------- */

/*
 * Give back the units that holder record @e says its handle holds, and
 * free the record: on vrl_close(), and by vrld for a dead process. The
 * record is zeroed before the count moves, so a caller killed in between
 * leaks the units and never gives them back twice. The caller owns @e: its
 * handle, or vrld for a process that is gone.
 */
void vrl_hold_give_back(const struct vrl_seg_view *v, struct vrl_seg_hold *e);

/*
 * Fold holder @a's counters into the header's: its totals into
 * retired_granted/denied, its per-limit counters into folded_granted/denied
 * for the generation they belong to (segment.h). Each counter is taken
 * (exchanged with 0) before it is added, so a caller killed in between
 * loses those counts and never counts them twice. The caller owns @a: its
 * handle at vrl_close(), or vrld for a process that is gone. Call before
 * freeing the slot (pid 0, release: HOLD.H1).
 */
void vrl_holder_fold(const struct vrl_seg_view *v, struct vrl_seg_holder *a);

/* ---- hooks -------------------------------------------------------------------------- */

/*
 * The wall clock that quota periods are judged by: CLOCK_REALTIME in ns.
 * Process-wide; tests point it at a clock of their own to cross a month.
 */
extern uint64_t (*vrl__realtime_ns)(void);

/*
 * Tests only: when set, called in the acquiring thread each time a stacked
 * acquire's rollback finds that others took a rate key after it (AQ.A1), so
 * its @cost permits of limit index @limit, taken at @at, stay taken. A test
 * counts them beside the grants it logs, to tell a justified denial from a
 * wrong one. Process-wide; NULL (the default) costs one load per rollback.
 */
extern void (*vrl__kept)(uint32_t limit, uint64_t at, uint64_t cost);

/*
 * Tests only: when set, called in a waiting acquire's thread once it has
 * slept until its reservation at @at, before it judges whether it woke too
 * late to use it (AD.W5). A test sleeps there to wake late. Process-wide;
 * NULL (the default) costs one load per waiting acquire that slept.
 */
extern void (*vrl__woke)(uint64_t at);

#endif /* VRL_INTERNAL_H */
