/*
 * gstatus_read.c - the reader's side of vrld's global status area (gstatus.h
 * has the layout, the ordering and the trust rules; vrld's writer is
 * daemon/vrld/gstatus.c).
 *
 * A copy is taken under the sequence word and checked after it: the
 * head's counts are read inside the copy, so a count a writer (vrld or a
 * hostile member of the group) changes meanwhile only makes the copy fail
 * the sequence check or reads rows that are clamped to the area's size.
 */
#include "gstatus.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "vrl.h"

#define GS_TRIES 200      /* copies tried before VRL_EBUSY: vrld writes once a tick */

const struct vrl_gstatus_area *vrl_gstatus_find(const struct vrl_seg_view *v, const char **why)
{
	/* one read of a word anyone in the group can write */
	uint64_t off = ((const volatile struct vrl_seg_header *)v->hdr)->gstatus_off;

	if (off == 0) {
		*why = "none";
		return NULL;
	}
	if (off % 4096 || off < v->areas_off || off > v->size ||
	    v->size - off < sizeof(struct vrl_gstatus_area)) {
		*why = "damaged";
		return NULL;
	}
	*why = "";
	return (const struct vrl_gstatus_area *)((const char *)v->hdr + off);
}

static void cut(char *s, size_t len)
{
	s[len - 1] = '\0';
}

/* Make the private copy @o safe to show: counts clamped, strings cut. */
static void sanitize(struct vrl_gstatus_area *o)
{
	if (o->nendpoints > VRL_GSTATUS_ENDPOINTS)
		o->nendpoints = VRL_GSTATUS_ENDPOINTS;
	if (o->nkeys > VRL_GSTATUS_KEYS)
		o->nkeys = VRL_GSTATUS_KEYS;
	cut(o->host, sizeof(o->host));
	for (uint32_t i = 0; i < o->nendpoints; i++) {
		cut(o->ep[i].name, sizeof(o->ep[i].name));
		cut(o->ep[i].epoch, sizeof(o->ep[i].epoch));
		cut(o->ep[i].error, sizeof(o->ep[i].error));
	}
	for (uint32_t i = 0; i < o->nkeys; i++) {
		cut(o->key[i].limit, sizeof(o->key[i].limit));
		cut(o->key[i].label, sizeof(o->key[i].label));
	}
}

/* One try: the head, the endpoint rows and the used key rows. */
static bool copy_once(const struct vrl_gstatus_area *a, struct vrl_gstatus_area *o)
{
	/* GS.R0 acquire: pairs with GS.W1, the data written before this even */
	uint64_t seq = atomic_load_explicit(&a->seq, memory_order_acquire);
	uint32_t n;

	if (seq & 1)
		return false;
	memcpy((char *)o + sizeof(o->seq), (const char *)a + sizeof(a->seq),
	       offsetof(struct vrl_gstatus_area, key) - sizeof(a->seq));
	n = o->nkeys < VRL_GSTATUS_KEYS ? o->nkeys : VRL_GSTATUS_KEYS;
	memcpy(o->key, a->key, n * sizeof(a->key[0]));
	/* GS.R1 acquire: pairs with GS.W0; the copy is done before the re-check */
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&a->seq, memory_order_relaxed) != seq)
		return false;
	atomic_store_explicit(&o->seq, seq, memory_order_relaxed);
	return true;
}

int vrl_gstatus_read(const struct vrl_gstatus_area *a, struct vrl_gstatus_area *out)
{
	const struct timespec pause = { 0, 1000000 };   /* 1 ms: vrld ticks every 100 */

	for (int tries = 0; tries < GS_TRIES; tries++) {
		if (!copy_once(a, out)) {
			nanosleep(&pause, NULL);
			continue;
		}
		if (out->magic == 0)
			return -EAGAIN;
		if (out->magic != VRL_GSTATUS_MAGIC || out->format != VRL_GSTATUS_FORMAT)
			return VRL_ECORRUPT;
		sanitize(out);
		return 0;
	}
	return VRL_EBUSY;
}
