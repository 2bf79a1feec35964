/*
 * client.h - libvrl internals shared by the library, vrld, vrlctl and tests.
 * Not installed.
 */
#ifndef VRL_CLIENT_H
#define VRL_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "gcra.h"
#include "keytable.h"
#include "segment.h"
#include "vrl.h"

#define VRL_MAX_MATCHED 16u  /* limits one request may match */

/* One limit of a config snapshot, with its arithmetic ready. */
struct vrl_limit {
	struct vrl_seg_limit seg;   /* validated copy */
	struct vrl_gcra gcra;       /* for VRL_KIND_RATE */
	struct vrl_gcra prev;       /* rate: the epoch before's; burst 0: unknown */
	unsigned tag;               /* rate: the tag of its words (gcra.h) */
	bool carry;                 /* quota: a calendar change is recorded */
	uint64_t carry_from;        /* quota: its periods (vrl_quota_transition) */
	uint64_t carry_to;
	uint64_t name_len;
};

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
	char source[256];
	struct vrl_limit limits[VRL_MAX_LIMITS];
};

struct vrl_client {
	struct vrl_seg_header *hdr;
	uint64_t mapped;                /* bytes mapped at hdr */
	int fd;                         /* the segment's descriptor, kept to heal */
	struct vrl_guard *guard;        /* the mapping's SIGBUS guard (guard.h) */
	bool readonly;
	char name[VRL_SHM_NAME_MAX];
	struct vrl_snapshot *cfg;       /* current */
	struct vrl_snapshot *prev;      /* kept one call longer: verdict names */
	struct vrl_seg_holder *holder;  /* NULL: no counter slot */
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

/*
 * The TAT that rate word @w has under rate limit @l's parameters at @now:
 * its own, or for a word of another epoch the conversion that keeps its
 * fill (gcra.h); 0 for a new key. For readers that show or weigh a key
 * (vrlctl, metrics); the acquire path does the same inline.
 */
uint64_t vrl_rate_tat(const struct vrl_limit *l, uint64_t w, uint64_t now);

/*
 * Give back the units that holder record @e says its handle holds, and
 * free the record: on vrl_close(), and by vrld for a dead process. The
 * record is zeroed before the count moves, so a caller killed in between
 * leaks the units and never gives them back twice. The caller owns @e: its
 * handle, or vrld for a process that is gone.
 */
void vrl_hold_give_back(const struct vrl_seg_view *v, struct vrl_seg_hold *e);

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
 * The limit of @req, among the kinds in the bit set @kinds (1 << kind),
 * whose key has the fewest permits left now: the one an upstream's 429 is
 * most likely about. Returns its index, -1 when none matches, or an error.
 * Places missing keys as an acquire would; writes no key state.
 */
int vrl__tightest(struct vrl_client *c, const struct vrl_request *req, uint32_t kinds);

/*
 * The wall clock that quota periods are judged by: CLOCK_REALTIME in ns.
 * Process-wide; tests point it at a clock of their own to cross a month.
 */
extern uint64_t (*vrl__realtime_ns)(void);

/*
 * Tests only: when set, called in the acquiring thread each time a stacked
 * acquire's rollback finds that others took a rate key after it (A1), so
 * its @cost permits of limit index @limit, taken at @at, stay taken. A test
 * counts them beside the grants it logs, to tell a justified denial from a
 * wrong one. Process-wide; NULL (the default) costs one load per rollback.
 */
extern void (*vrl__kept)(uint32_t limit, uint64_t at, uint64_t cost);

/* Refresh the handle's snapshot if vrld published a new config. When the
 * new config cannot be read (vrld kept rewriting it), the handle keeps the
 * one it has, marked stale, and tries again on its next call. Returns 0,
 * -ENOMEM, or VRL_ECORRUPT when the new config is not valid. */
int vrl__refresh(struct vrl_client *c);

/*
 * The checks every public call makes around its work: vrl__enter heals a
 * mapping a shrunk segment damaged (or fails with VRL_ECORRUPT while it
 * cannot), follows a fork and a new config, and gives the mapping's damage
 * word in *@state; vrl__leave returns @rc, or VRL_ECORRUPT when the mapping
 * was damaged since (guard.h).
 */
int vrl__enter(struct vrl_client *c, uint64_t *state);
int vrl__leave(struct vrl_client *c, uint64_t state, int rc);

#endif /* VRL_CLIENT_H */
