/*
 * guard.h - a shrunk segment kills no process: the SIGBUS guard of every
 * mapping of a segment (guard.c has the design and its reasons). Internal.
 *
 * A process registers each mapping once (vrl_open, vrld's open); a call
 * through it brackets its work with vrl_guard_state() and fails with
 * VRL_ECORRUPT when the state moved or is odd. A damaged mapping is healed
 * by vrl_guard_heal() once the object has its size again.
 */
#ifndef VRL_GUARD_H
#define VRL_GUARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One registered mapping. The damage word is even while the mapping shows
 * the segment, odd while zero pages stand in for it (or vrld repairs it). */
struct vrl_guard {
	_Atomic uintptr_t base;      /* 0: entry free */
	_Atomic size_t len;
	_Atomic int prot;
	_Atomic uint64_t damage;
};

/*
 * Register the mapping of @len bytes at @base (protection @prot) and
 * install the process's SIGBUS handler if it is not yet. Returns its
 * guard, or NULL when VRL_GUARD_MAX mappings are registered already.
 */
struct vrl_guard *vrl_guard_add(void *base, size_t len, int prot);
#define VRL_GUARD_MAX 1024u

/* Forget @g (before its mapping goes). NULL is allowed. */
void vrl_guard_remove(struct vrl_guard *g);

/* The damage word: compare it before and after a call's work. Relaxed: it
 * is process-local, and the SIGBUS handler runs on the faulting thread. */
static inline uint64_t vrl_guard_state(const struct vrl_guard *g)
{
	return atomic_load_explicit(&g->damage, memory_order_relaxed);
}

static inline bool vrl_guard_damaged(uint64_t state)
{
	return state & 1u;
}

/* Mark @g damaged, as the handler does: vrld, before it repairs a shrink
 * it found by fstat() before any of its threads faulted. */
void vrl_guard_damage(struct vrl_guard *g);

/*
 * Map the object @fd over @g's mapping again if the object holds at least
 * @need bytes (the part of the mapping past the object's end stays zero
 * pages, never touched). With @check, the header's magic must be there
 * too (a segment vrld has repaired), and @g becomes healthy: returns 0, or
 * VRL_ECORRUPT while it is still damaged. Without @check (vrld, which
 * repairs it, then calls vrl_guard_healed()), @g stays damaged: returns 0
 * when the object is mapped again. A healthy @g: 0, nothing done.
 */
int vrl_guard_heal(struct vrl_guard *g, int fd, uint64_t need, bool check);

/* vrld, after its repair: healthy again, unless a new fault came since it
 * read @state (then it stays damaged). */
bool vrl_guard_healed(struct vrl_guard *g, uint64_t state);

#endif /* VRL_GUARD_H */
