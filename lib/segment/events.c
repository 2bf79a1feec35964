/*
 * events.c - the lock-free ring of alert events in the segment.
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
 *   EV.E1 A ticket is written only into its own entry, and an entry only moves
 *      forward: a producer claims it from a seq of an older ticket only, so
 *      a slow producer of ticket t can never overwrite the newer t + n.
 *      Its publish CAS then fails and its event is counted lost.
 *   EV.E2 A reader never trusts a read it cannot prove whole: it reads seq
 *      (acquire), the payload, then seq again after an acquire fence; a
 *      change means a writer was there. The check word (a hash of the
 *      ticket and the payload) catches the one case seq cannot: a lapped
 *      producer whose late stores landed in a newer ticket's entry.
 *   EV.E3 Nobody waits on anyone. A producer killed between claim and publish
 *      leaves its entry "writing" forever; the consumer skips it once it
 *      has stayed so for stuck_ns (and counts it lost), and the next lap's
 *      producer claims over it. The ring is lossy by design: alerts must
 *      never slow an acquire, so a full ring overwrites, and the loss is
 *      counted in header.events_lost.
 *
 * Who writes: a worker whose grant crosses a threshold (alert.c), through
 * vrl_alert_emit(); vrld drains; vrlctl and tests read.
 */
#include "events.h"

#include <string.h>

#define CLAIM_TRIES      8u                    /* CASes before a producer gives up */

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
			lost(h, 1);  /* EV.E1: a newer ticket owns it */
			return t;
		}
		/* relaxed: the fence below orders the claim before the payload */
		if (atomic_compare_exchange_weak_explicit(&e->seq, &s, seq_writing(t),
							  memory_order_relaxed, memory_order_relaxed))
			break;
	}
	/* EV.W0 release fence: the "writing" seq is visible before any payload store,
	 * so a reader that saw a payload store also sees seq change (pairs EV.R1) */
	atomic_thread_fence(memory_order_release);
	for (unsigned i = 0; i < VRL_EVENT_WORDS; i++)
		atomic_store_explicit(&e->w[i], w[i], memory_order_relaxed);
	atomic_store_explicit(&e->check, check_of(t, w), memory_order_relaxed);
	s = seq_writing(t);
	/* EV.W1 release: the payload is complete before "published" (pairs EV.R0) */
	if (!atomic_compare_exchange_strong_explicit(&e->seq, &s, seq_published(t),
						     memory_order_release, memory_order_relaxed))
		lost(h, 1);  /* a newer lap claimed over us mid-write */
	return t;
}

enum read_result { READ_OK, READ_NOT_YET, READ_GONE, READ_TORN };

/* EV.E2: read ticket @t's entry, proving it whole. */
static enum read_result read_entry(const struct vrl_seg_view *v, uint64_t t,
				   struct vrl_alert_event *out)
{
	struct vrl_seg_event *e = entry(v, t);
	uint64_t w[VRL_EVENT_WORDS], check;
	/* EV.R0 acquire: pairs with EV.W1, the payload of a published seq is visible */
	uint64_t s = atomic_load_explicit(&e->seq, memory_order_acquire);

	if (seq_ticket1(s) > t + 1)
		return READ_GONE;
	if (s != seq_published(t))
		return READ_NOT_YET;
	for (unsigned i = 0; i < VRL_EVENT_WORDS; i++)
		w[i] = atomic_load_explicit(&e->w[i], memory_order_relaxed);
	check = atomic_load_explicit(&e->check, memory_order_relaxed);
	/* EV.R1 acquire fence: the payload loads happen before the re-read of seq;
	 * pairs with EV.W0, so a store of a newer writer forces a new seq here */
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
		/* EV.E3: not published yet; wait for it, but not forever */
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
