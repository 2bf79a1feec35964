/*
 * kind_gate.h - the gate kind: a cooldown alone. Its key has no count and
 * never runs out; it denies only while closed (vrl_cooldown, an
 * upstream's 429), which the engine reads for every kind. Its state word
 * is never written. Included by kind.h, which dispatches to these.
 */
#ifndef VRL_KIND_GATE_H
#define VRL_KIND_GATE_H

#ifndef VRL_KIND_H
#error "include kind.h"
#endif

/* Conforms at any time: only the engine's cooldown check holds it. */
static inline int vrl_gate_judge(struct vrl_kind_look *lk, const struct vrl_kind_when *w)
{
	lk->r = (struct vrl_gcra_step){ .conforms = true };
	lk->earliest = w->at;
	return VRL_LOOK_OK;
}

#endif /* VRL_KIND_GATE_H */
