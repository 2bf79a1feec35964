/*
 * keytable.h - the lock-free key table of the segment.
 *
 * A key is one limit's bucket for one combination of request fields (the
 * limit `samsara.token` for token "abc"). Its identity is a 128-bit XXH3
 * hash of the limit name and the field values: the high half picks the home
 * slot, the low half (62 bits of it) is the slot's fingerprint.
 */
#ifndef VRL_KEYTABLE_H
#define VRL_KEYTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "segment.h"

struct vrl_key {
	uint64_t home;          /* high 64 bits of the hash */
	uint64_t fp;            /* fingerprint: low 62 bits, never 0 */
};

/* The live tag of a key (VRL_TAG_LIVE | fingerprint). */
static inline uint64_t vrl_key_tag(const struct vrl_key *k)
{
	return VRL_TAG_LIVE | k->fp;
}

/*
 * Hash a key: the limit name, then each of @nparts values (NULL counts as
 * ""), separated by a byte no value can forge (lengths are hashed too).
 */
void vrl_key_hash(const char *limit, const char *const *parts, size_t nparts,
		  struct vrl_key *k);

/* Home slot of @k in a table of @nslots. */
static inline uint64_t vrl_key_home(const struct vrl_key *k, uint64_t nslots)
{
	__extension__ typedef unsigned __int128 u128;

	return (uint64_t)(((u128)k->home * nslots) >> 64);
}

/*
 * Every function here takes the caller's view of the segment (segment.h):
 * the table's place and size are its private copy, never the header's.
 */

/*
 * Find the slot of @k. Returns 0 and the index in @idx, or VRL_ENOKEY.
 * Read-only: safe on a read-only mapping. Waits briefly on a key that is
 * being inserted by another process.
 */
int vrl_kt_find(const struct vrl_seg_view *v, const struct vrl_key *k, uint64_t *idx);

/*
 * Find the slot of @k, inserting it when absent. @limit (a vrl_slot_note())
 * and @label are kept in the slot. Returns 0 and the index in @idx, VRL_EFULL when
 * no slot is free within VRL_MAX_PROBE of its home, or VRL_EBUSY when vrld
 * has been inside a reclaim bracket for too long.
 *
 * Lock-free: a process killed anywhere inside leaves at worst a pending slot
 * that others demote after VRL_PENDING_TIMEOUT_NS.
 */
int vrl_kt_get(const struct vrl_seg_view *v, const struct vrl_key *k, uint32_t limit,
	       const char *label, uint64_t *idx);

/*
 * vrld only. Evict slot @idx if it holds a live key whose state word still
 * equals @state (the caller judged that state idle) and whose cooldown has
 * expired at @now. Returns 1 when evicted, 0 when the slot changed.
 */
int vrl_kt_evict(const struct vrl_seg_view *v, uint64_t idx, uint64_t state, uint64_t now);

/* Tests only: called by vrl_kt_evict between its cooldown check and its
 * state CAS, the window in which a worker's cooldown may land. NULL in
 * every program. */
extern void (*vrl__kt_evicting)(struct vrl_seg_slot *s);

/*
 * vrld only (one vrld per segment). Turn the DEAD slots among @count slots
 * from @first into FREE ones, inside one reclaim bracket (inserts retry
 * while it is open, so keep @count to a few thousand). Returns the number of
 * slots reclaimed.
 */
uint64_t vrl_kt_reclaim(const struct vrl_seg_view *v, uint64_t first, uint64_t count);

/*
 * Make the reclaim bracket even again if the vrld that opened it is dead
 * (its heartbeat is older than VRL_DAEMON_DEAD_NS). vrld calls it on
 * adoption; clients call it when a bracket stays open too long.
 */
void vrl_kt_repair_bracket(struct vrl_seg_header *h, uint64_t now);

#define VRL_PENDING_TIMEOUT_NS  (50u * 1000u * 1000u)    /* 50 ms */
#define VRL_BRACKET_WAIT_NS     (200u * 1000u * 1000u)   /* 200 ms */
#define VRL_DAEMON_DEAD_NS      (UINT64_C(3) * 1000000000u) /* 3 s without a tick */

#endif /* VRL_KEYTABLE_H */
