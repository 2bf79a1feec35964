/*
 * gkeys.h - vrld's side of the keys of global limits: which slots hold
 * one, the engine's entry of each, and the share word vrld fills from
 * each key's lease (rate, window: lib/kinds/share.h) or the allocation
 * it keeps there (quota, slots: lib/kinds/blocks.h). Main loop only; gkeys.c has
 * the protocol.
 */
#ifndef VRLD_GKEYS_H
#define VRLD_GKEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "global.h"
#include "share.h"
#include "upkeep.h"

/* What vrld keeps of one slot's global key, in its own memory. */
struct vrld_gkey {
	uint64_t tag;                    /* the key's live tag when it was taken up; 0: none */
	uint8_t id[VRL_GLOBAL_ID_LEN];   /* vrl_global_key_id of its identity and hash */
	uint64_t count, period_ns, burst;   /* the limit's figures */
	char limit[VRL_NAME_MAX];        /* its name, for vrlctl global and the metrics */
	uint64_t gen;                    /* the gen of the last result applied */
	struct vrl_share_fill f;         /* the share in force (share.h F1, F2) */
	enum vrl_global_kind kind;       /* rate, window, quota, slots (blocks.h) */
	uint64_t held;                   /* window: positions counted at the last scan */
	uint64_t fill_every;             /* rate: K7's interval for the share in force
	                                    (vrl_share_fill_interval); 0: every step */
	bool soft;                       /* quota: never short, counted all the same */
	uint32_t calendar, anchor;       /* quota: its periods */
};

struct vrld_gkeys {
	struct vrld_gkey *k;             /* one per slot; NULL until the first tick */
	uint64_t nslots;
	struct vrl_global_entry *e;      /* this tick's entries */
	uint64_t *slot_of;               /* entry i is slot slot_of[i] */
	uint64_t *due;                   /* entry i is filled again from due[i] (K7) */
	bool fill_all;                   /* a share was applied: K7 fills every key next */
	size_t n;                        /* entries this tick */
	uint64_t *map;                   /* id -> slot + 1, open addressing */
	size_t mapcap;                   /* a power of two, >= 2 n */
};

/*
 * The tick's entries: every live key of a global limit of @s (vrld's own
 * copy of the config in force). A slot whose key is gone (evicted, or
 * another key now) has its word set to none and leaves the batch (its
 * lease lapses); a new key starts with none until its first lease. Then
 * F1 on every key's word. Returns 0, or -ENOMEM (nothing submitted).
 */
int vrld_gkeys_scan(struct vrld_gkeys *g, struct vrl_seg *s, uint64_t now);

/* Between scans: F1 on the words of the last scan's keys still in their
 * slots (K7). */
void vrld_gkeys_fill(struct vrld_gkeys *g, struct vrl_seg *s, uint64_t now);

/* Apply the results @r[0..n) of a round to the keys' words (F2). */
void vrld_gkeys_apply(struct vrld_gkeys *g, struct vrl_seg *s, const struct vrl_global_result *r,
		      size_t n, uint64_t now);

/* Before vrl_global_stop: every key's word set to none, its entry saying
 * so (what vrl_global_stop releases). */
void vrld_gkeys_clamp_all(struct vrld_gkeys *g, struct vrl_seg *s);

void vrld_gkeys_free(struct vrld_gkeys *g);

/* The wall clock the quota periods of global keys are read from (tests
 * drive it). */
extern uint64_t (*vrld_gkeys_realtime)(void);

#endif /* VRLD_GKEYS_H */
