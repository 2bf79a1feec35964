/*
 * unmatched.c - the table of unmatched requests by api (unmatched.h).
 *
 * A row's tag says what it holds:
 *
 *   0                      free
 *   LIVE | PENDING | hash  claimed by a process writing the name
 *   LIVE | hash            named: name[] holds the api, NUL-padded
 *
 * hash is 62 bits of the api's XXH3. A writer probes the named rows from
 * hash % (ROWS - 1), one after the other:
 *   - a named row with its hash and its name: add 1 to count;
 *   - a pending row with its hash: add 1 to count (its writer is naming it
 *     with the same api, or died doing so: see below);
 *   - a free row: claim it with a CAS 0 -> LIVE|PENDING|hash, store the
 *     name, then the tag LIVE|hash (U1), then add 1;
 *   - any other row: the next one.
 * Every row taken by another api: add 1 to the last row's count.
 *
 * U1 (release, the writer's tag store after the name) pairs with U2
 * (acquire, the reader's tag load before the name): a reader that sees a
 * named tag sees the name written before it. Names are atomic words so
 * that a row claimed under a reader is a value read, never a data race.
 *
 * Progress: lock-free. No one waits on a pending row; a process killed
 * between its claim and its publication leaves the row pending for good:
 * its api keeps counting there, and readers add it to the row of the rest.
 * Counts only grow (relaxed adds: a count is a figure, it orders nothing).
 *
 * Trust: a group member may write anything here. That can mislabel or
 * inflate counts, or fill the table so that later apis count in the last
 * row: figures, not safety. A reader copies each name into private memory,
 * ends it and replaces every byte outside a small set with '?', so a label
 * or a line of text built from it is well-formed whatever was written.
 */
#include "unmatched.h"

#include <stdbool.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define ROW_LIVE     (UINT64_C(1) << 63)
#define ROW_PENDING  (UINT64_C(1) << 62)
#define ROW_HASH     (ROW_PENDING - 1)
#define NAME_WORDS   (VRL_UNMATCHED_NAME / 8)
#define NAMED_ROWS   (VRL_UNMATCHED_ROWS - 1)

_Static_assert(VRL_UNMATCHED_NAME % 8 == 0, "a name is whole words");

static void add(struct vrl_seg_unmatched *r)
{
	/* a counter only: relaxed */
	atomic_fetch_add_explicit(&r->count, 1, memory_order_relaxed);
}

static bool same_name(const struct vrl_seg_unmatched *r, const uint64_t w[NAME_WORDS])
{
	for (unsigned i = 0; i < NAME_WORDS; i++)
		if (atomic_load_explicit(&r->name[i], memory_order_relaxed) != w[i])
			return false;
	return true;
}

static void name_row(struct vrl_seg_unmatched *r, uint64_t tag, const uint64_t w[NAME_WORDS])
{
	for (unsigned i = 0; i < NAME_WORDS; i++)
		atomic_store_explicit(&r->name[i], w[i], memory_order_relaxed);
	/* U1 release: the name before the tag that says it is there */
	atomic_store_explicit(&r->tag, tag, memory_order_release);
}

void vrl_unmatched_count(struct vrl_seg_header *h, const char *api)
{
	uint64_t w[NAME_WORDS] = { 0 }, tag;
	size_t len = api ? strlen(api) : 0;
	unsigned start;

	if (len >= VRL_UNMATCHED_NAME) {
		add(&h->unmatched[NAMED_ROWS]);
		return;
	}
	if (len)
		memcpy(w, api, len);
	tag = ROW_LIVE | (XXH3_64bits(w, sizeof(w)) & ROW_HASH);
	start = (unsigned)(tag % NAMED_ROWS);
	for (unsigned i = 0; i < NAMED_ROWS; i++) {
		struct vrl_seg_unmatched *r = &h->unmatched[(start + i) % NAMED_ROWS];
		/* U2 acquire: a named tag's name is readable after it */
		uint64_t seen = atomic_load_explicit(&r->tag, memory_order_acquire);

		/* acquire on failure: U2 again, for the tag `seen` becomes (the
		 * claim itself orders nothing: U1 publishes the name) */
		if (seen == 0 && atomic_compare_exchange_strong_explicit(&r->tag, &seen,
				tag | ROW_PENDING, memory_order_acquire, memory_order_acquire)) {
			name_row(r, tag, w);
			add(r);
			return;
		}
		if (seen == (tag | ROW_PENDING) || (seen == tag && same_name(r, w))) {
			add(r);
			return;
		}
	}
	add(&h->unmatched[NAMED_ROWS]);
}

static bool shown(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("_.:/@+-", c));
}

unsigned vrl_unmatched_read(const struct vrl_seg_header *h,
			    struct vrl_unmatched_row out[VRL_UNMATCHED_ROWS])
{
	uint64_t rest = atomic_load_explicit(&h->unmatched[NAMED_ROWS].count,
					     memory_order_relaxed);
	unsigned n = 0;

	for (unsigned i = 0; i < NAMED_ROWS; i++) {
		const struct vrl_seg_unmatched *r = &h->unmatched[i];
		/* U2 acquire: pairs with U1, the name before the tag */
		uint64_t tag = atomic_load_explicit(&r->tag, memory_order_acquire);
		uint64_t count = atomic_load_explicit(&r->count, memory_order_relaxed);
		uint64_t w[NAME_WORDS];
		struct vrl_unmatched_row *o = &out[n];

		if (!(tag & ROW_LIVE) || count == 0)
			continue;
		if (tag & ROW_PENDING) {
			rest += count;
			continue;
		}
		for (unsigned k = 0; k < NAME_WORDS; k++)
			w[k] = atomic_load_explicit(&r->name[k], memory_order_relaxed);
		memcpy(o->api, w, sizeof(o->api));
		o->api[sizeof(o->api) - 1] = '\0';
		for (char *c = o->api; *c; c++)
			if (!shown(*c))
				*c = '?';
		o->count = count;
		o->other = 0;
		n++;
	}
	if (rest) {
		out[n].api[0] = '\0';
		out[n].count = rest;
		out[n].other = 1;
		n++;
	}
	return n;
}
