/*
 * alert.c - alert thresholds: the events a grant that crosses one emits.
 *
 * Dedupe: one 32-bit mark per key slot records which thresholds fired, for
 * which period, for which key (16 bits of the slot's fingerprint, so a slot
 * reused by another key starts clean). A threshold fires when the CAS that
 * sets its bit succeeds: once per key, period and threshold, whatever
 * refunds do to usage in between, and whatever order processes report
 * crossings in. A mark never moves back to an earlier period: a crossing
 * reported for a period the key has already left (a process that read the
 * calendar just before the boundary) is not alerted; the period is over.
 * Corners left: the period is kept modulo 4096 and the key as 16
 * fingerprint bits, so a key silent for 2048 periods or more, or a new key
 * in a reused slot with the same 16 bits, can miss an alert; neither can
 * make one fire twice.
 */
#include "alert.h"

#include <stdbool.h>
#include <string.h>

#include "clock.h"
#include "events.h"

#define MARK_FIRED_MASK  0xfu                  /* bit i: threshold i fired */
#define MARK_PERIOD_SHIFT 4
#define MARK_PERIOD_MASK 0xfffu                /* period id modulo 4096 */
#define MARK_FP_SHIFT    16                    /* 16 bits of the key's fingerprint */

_Static_assert(VRL_MAX_ALERTS <= 4, "four fired bits per mark");

/* ceil(count * pct / 100), saturating. */
static uint64_t threshold_units(uint64_t count, uint32_t pct)
{
	uint64_t whole, part = ((count % 100) * pct + 99) / 100, th;

	if (__builtin_mul_overflow(count / 100, (uint64_t)pct, &whole) ||
	    __builtin_add_overflow(whole, part, &th))
		return UINT64_MAX;
	return th;
}

/*
 * Set fired bit @i in the mark of a slot for (@fp, @period). Returns true
 * when this call set it: the one caller that emits. Periods compare as
 * serial numbers modulo 4096: a mark of a later period is never moved back,
 * so a process still reporting a period that another has already left
 * cannot wipe that period's bits and fire them a second time.
 */
static bool mark_fire(_Atomic uint32_t *mark, uint32_t fp, uint32_t period, unsigned i)
{
	uint32_t m = atomic_load_explicit(mark, memory_order_relaxed), next;

	for (;;) {
		uint32_t mfp = m >> MARK_FP_SHIFT, mper = (m >> MARK_PERIOD_SHIFT) & MARK_PERIOD_MASK;
		uint32_t ahead = (period - mper) & MARK_PERIOD_MASK;

		if (mfp == fp && ahead == 0)
			next = m;                               /* this key, this period */
		else if (mfp == fp && ahead > MARK_PERIOD_MASK / 2)
			return false;                           /* a period already left */
		else
			next = (fp << MARK_FP_SHIFT) | (period << MARK_PERIOD_SHIFT); /* clean */
		if (next & (1u << i))
			return false;
		next |= 1u << i;
		/* relaxed: the mark orders nothing else; only its own value matters */
		if (atomic_compare_exchange_weak_explicit(mark, &m, next, memory_order_relaxed,
							  memory_order_relaxed))
			return true;
	}
}

void vrl_alert_check(const struct vrl_seg_view *v, const struct vrl_seg_limit *l,
		     uint32_t limit, uint64_t generation, uint64_t slot, uint64_t used_before,
		     uint64_t used_after, uint64_t period_id)
{
	struct vrl_seg_slot *s;
	struct vrl_alert_payload p;
	uint64_t tag;
	uint32_t fp, period;

	if (used_after <= used_before || l->nalerts == 0 || slot >= v->nslots)
		return;
	s = &v->slots[slot];
	/* acquire: pairs with the insert's release of a live tag, so the label
	 * read below is the one written for this key */
	tag = atomic_load_explicit(&s->tag, memory_order_acquire);
	if (!(tag & VRL_TAG_LIVE) || (tag & VRL_TAG_PENDING))
		return;
	fp = (uint32_t)(tag & 0xffffu);
	period = (uint32_t)(period_id & MARK_PERIOD_MASK);
	for (unsigned i = 0; i < l->nalerts && i < VRL_MAX_ALERTS; i++) {
		uint64_t th = threshold_units(l->count, l->alert_pct[i]);

		if (th == 0 || used_before >= th || used_after < th)
			continue;
		if (!mark_fire(&v->marks[slot], fp, period, i))
			continue;
		memset(&p, 0, sizeof(p));
		p.at_realtime_ns = vrl_wall_ns();
		p.generation = generation;
		p.period = period_id;
		p.used = used_after;
		p.count = l->count;
		p.limit = limit;
		p.threshold = l->alert_pct[i];
		memcpy(p.label, s->label, sizeof(p.label) - 1);
		memcpy(p.name, l->name, sizeof(p.name) - 1);
		vrl_alert_emit(v, &p);
	}
}
