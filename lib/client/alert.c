/*
 * alert.c - alert thresholds and the lock-free event ring.
 *
 * The ring: nevents entries (a power of two), many producers (any worker
 * whose grant crosses a threshold), one consumer (vrld), and readers that
 * only look (vrlctl).
 *
 *   produce  t = fetch_add(head)             a ticket: the entry t % n
 *            claim  CAS seq: older -> (t+1)<<1|1       (writing)
 *            write  the payload and its check word
 *            publish CAS seq: (t+1)<<1|1 -> (t+1)<<1   (published)
 *   consume  at tail: seq == (t+1)<<1 -> read, re-check seq, verify check
 *
 * Invariants
 *   E1 A ticket is written only into its own entry, and an entry only moves
 *      forward: a producer claims it from a seq of an older ticket only, so
 *      a slow producer of ticket t can never overwrite the newer t + n.
 *      Its publish CAS then fails and its event is counted lost.
 *   E2 A reader never trusts a read it cannot prove whole: it reads seq
 *      (acquire), the payload, then seq again after an acquire fence; a
 *      change means a writer was there. The check word (a hash of the
 *      ticket and the payload) catches the one case seq cannot: a lapped
 *      producer whose late stores landed in a newer ticket's entry.
 *   E3 Nobody waits on anyone. A producer killed between claim and publish
 *      leaves its entry "writing" forever; the consumer skips it once it
 *      has stayed so for stuck_ns (and counts it lost), and the next lap's
 *      producer claims over it. The ring is lossy by design: alerts must
 *      never slow an acquire, so a full ring overwrites, and the loss is
 *      counted in header.events_lost.
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

#include <string.h>
#include <time.h>

#include "client.h"
#include "clock.h"

#define MARK_FIRED_MASK  0xfu                  /* bit i: threshold i fired */
#define MARK_PERIOD_SHIFT 4
#define MARK_PERIOD_MASK 0xfffu                /* period id modulo 4096 */
#define MARK_FP_SHIFT    16                    /* 16 bits of the key's fingerprint */
#define CLAIM_TRIES      8u                    /* CASes before a producer gives up */

_Static_assert(VRL_MAX_ALERTS <= 4, "four fired bits per mark");

static inline uint64_t seq_writing(uint64_t t)
{
	return ((t + 1) << 1) | 1u;
}

static inline uint64_t seq_published(uint64_t t)
{
	return (t + 1) << 1;
}

/* The ticket + 1 an entry's seq word belongs to (0: never written). */
static inline uint64_t seq_ticket1(uint64_t s)
{
	return s >> 1;
}

static uint64_t check_of(uint64_t t, const uint64_t w[VRL_EVENT_WORDS])
{
	uint64_t x = t ^ UINT64_C(0x9e3779b97f4a7c15);

	for (unsigned i = 0; i < VRL_EVENT_WORDS; i++) {
		x ^= w[i];
		x *= UINT64_C(0xff51afd7ed558ccd);
		x ^= x >> 32;
	}
	return x;
}

static struct vrl_seg_event *entry(const struct vrl_seg_view *v, uint64_t t)
{
	return &v->events[t & (v->nevents - 1)];
}

static void lost(struct vrl_seg_header *h, uint64_t n)
{
	atomic_fetch_add_explicit(&h->events_lost, n, memory_order_relaxed);
}

uint64_t vrl_alert_emit(const struct vrl_seg_view *v, const struct vrl_alert_payload *p)
{
	struct vrl_seg_header *h = v->hdr;
	/* relaxed: the ticket only has to be unique; seq orders the entry */
	uint64_t t = atomic_fetch_add_explicit(&h->event_head, 1, memory_order_relaxed);
	struct vrl_seg_event *e = entry(v, t);
	uint64_t w[VRL_EVENT_WORDS], s = atomic_load_explicit(&e->seq, memory_order_relaxed);
	unsigned tries = 0;

	memcpy(w, p, sizeof(w));
	for (;;) {
		if (seq_ticket1(s) >= t + 1 || ++tries > CLAIM_TRIES) {
			lost(h, 1);  /* E1: a newer ticket owns it */
			return t;
		}
		/* relaxed: the fence below orders the claim before the payload */
		if (atomic_compare_exchange_weak_explicit(&e->seq, &s, seq_writing(t),
							  memory_order_relaxed, memory_order_relaxed))
			break;
	}
	/* W0 release fence: the "writing" seq is visible before any payload store,
	 * so a reader that saw a payload store also sees seq change (pairs R1) */
	atomic_thread_fence(memory_order_release);
	for (unsigned i = 0; i < VRL_EVENT_WORDS; i++)
		atomic_store_explicit(&e->w[i], w[i], memory_order_relaxed);
	atomic_store_explicit(&e->check, check_of(t, w), memory_order_relaxed);
	s = seq_writing(t);
	/* W1 release: the payload is complete before "published" (pairs R0) */
	if (!atomic_compare_exchange_strong_explicit(&e->seq, &s, seq_published(t),
						     memory_order_release, memory_order_relaxed))
		lost(h, 1);  /* a newer lap claimed over us mid-write */
	return t;
}

enum read_result { READ_OK, READ_NOT_YET, READ_GONE, READ_TORN };

/* E2: read ticket @t's entry, proving it whole. */
static enum read_result read_entry(const struct vrl_seg_view *v, uint64_t t,
				   struct vrl_alert_event *out)
{
	struct vrl_seg_event *e = entry(v, t);
	uint64_t w[VRL_EVENT_WORDS], check;
	/* R0 acquire: pairs with W1, the payload of a published seq is visible */
	uint64_t s = atomic_load_explicit(&e->seq, memory_order_acquire);

	if (seq_ticket1(s) > t + 1)
		return READ_GONE;
	if (s != seq_published(t))
		return READ_NOT_YET;
	for (unsigned i = 0; i < VRL_EVENT_WORDS; i++)
		w[i] = atomic_load_explicit(&e->w[i], memory_order_relaxed);
	check = atomic_load_explicit(&e->check, memory_order_relaxed);
	/* R1 acquire fence: the payload loads happen before the re-read of seq;
	 * pairs with W0, so a store of a newer writer forces a new seq here */
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&e->seq, memory_order_relaxed) != s)
		return seq_ticket1(atomic_load_explicit(&e->seq, memory_order_relaxed)) > t + 1 ?
		       READ_GONE : READ_TORN;
	if (check != check_of(t, w))
		return READ_TORN;
	out->ticket = t;
	memcpy(&out->p, w, sizeof(w));
	out->p.label[VRL_LABEL_MAX - 1] = '\0';
	out->p.name[VRL_NAME_MAX - 1] = '\0';
	return READ_OK;
}

static void advance(struct vrl_seg_header *h, struct vrl_alert_cursor *cur, uint64_t tail)
{
	/* relaxed: vrld alone writes the tail; vrlctl reads it for display */
	atomic_store_explicit(&h->event_tail, tail, memory_order_relaxed);
	cur->stuck = 0;
}

int vrl_alert_drain(const struct vrl_seg_view *v, struct vrl_alert_cursor *cur, uint64_t now_ns,
		    uint64_t stuck_ns, struct vrl_alert_event *out)
{
	struct vrl_seg_header *h = v->hdr;
	uint64_t tail = atomic_load_explicit(&h->event_tail, memory_order_relaxed);

	for (;;) {
		uint64_t head = atomic_load_explicit(&h->event_head, memory_order_relaxed);

		if (tail >= head)
			return 0;
		if (head - tail > v->nevents) {
			lost(h, head - v->nevents - tail);  /* lapped while vrld was away */
			tail = head - v->nevents;
			advance(h, cur, tail);
		}
		switch (read_entry(v, tail, out)) {
		case READ_OK:
			advance(h, cur, tail + 1);
			atomic_fetch_add_explicit(&h->events_sent, 1, memory_order_relaxed);
			return 1;
		case READ_GONE:
		case READ_TORN:
			/* overwritten by a newer lap, or a lapped writer scribbled on it */
			lost(h, 1);
			advance(h, cur, ++tail);
			continue;
		case READ_NOT_YET:
			break;
		}
		/* E3: not published yet; wait for it, but not forever */
		if (!cur->stuck || cur->stuck_ticket != tail) {
			cur->stuck = 1;
			cur->stuck_ticket = tail;
			cur->stuck_since_ns = now_ns;
			return 0;
		}
		if (now_ns - cur->stuck_since_ns < stuck_ns)
			return 0;
		lost(h, 1);
		advance(h, cur, ++tail);
	}
}

size_t vrl_alert_recent(const struct vrl_seg_view *v, struct vrl_alert_event *out, size_t max)
{
	uint64_t head = atomic_load_explicit(&v->hdr->event_head, memory_order_relaxed);
	uint64_t first = head > v->nevents ? head - v->nevents : 0;
	size_t n = 0;

	if (max == 0)
		return 0;
	if (head - first > max)
		first = head - max;
	for (uint64_t t = first; t < head && n < max; t++)
		if (read_entry(v, t, &out[n]) == READ_OK)
			n++;
	return n;
}

void vrl_alert_text(char *dst, size_t cap, const char *src, size_t srcmax)
{
	size_t i = 0;

	for (; i < srcmax && src[i] && i + 1 < cap; i++) {
		unsigned char b = (unsigned char)src[i];

		dst[i] = b < 0x20 || b > 0x7e || strchr("\"\\=$`'", b) ? '?' : (char)b;
	}
	dst[i] = '\0';
}

/* ---- thresholds -------------------------------------------------------------- */

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

void vrl__alert_check(struct vrl_client *c, uint32_t limit, uint64_t slot,
		      uint64_t used_before, uint64_t used_after, uint64_t period_id)
{
	const struct vrl_seg_limit *l;
	const struct vrl_seg_view *v;
	struct vrl_seg_slot *s;
	struct vrl_alert_payload p;
	uint64_t tag;
	uint32_t fp, period;

	if (!c || c->readonly || !c->cfg || limit >= c->cfg->nlimits || used_after <= used_before)
		return;
	l = &c->cfg->limits[limit].seg;
	v = &c->view;
	if (l->nalerts == 0 || slot >= v->nslots)
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
		p.generation = c->cfg->generation;
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
