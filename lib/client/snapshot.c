/*
 * snapshot.c - the config a handle works with: a private copy of the
 * segment's active config area, read under its sequence word, every
 * record checked before anything uses it, and refreshed when vrld
 * publishes a newer one.
 */
#include "client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "quota.h"

static bool terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

static bool fieldref_ok(const struct vrl_seg_fieldref *f)
{
	if (f->field >= VRL_FIELD__COUNT || !terminated(f->attr, sizeof(f->attr)))
		return false;
	return f->field != VRL_FIELD_ATTR || f->attr[0] != '\0';
}

_Static_assert((int)VRL_KIND_RATE == (int)VRL_RATE && (int)VRL_KIND_GATE == (int)VRL_GATE &&
	       (int)VRL_KIND_WINDOW == (int)VRL_WINDOW &&
	       (int)VRL_KIND_QUOTA == (int)VRL_QUOTA && (int)VRL_KIND_SLOTS == (int)VRL_SLOTS,
	       "segment kinds are the public kinds");

int vrl_limit_prepare(const struct vrl_seg_limit *in, struct vrl_limit *out)
{
	out->seg = *in;
	if (!terminated(in->name, sizeof(in->name)) || in->name[0] == '\0')
		return VRL_ECORRUPT;
	if (in->kind == 0 || in->kind >= VRL_KIND__COUNT)
		return VRL_ECORRUPT;
	if (in->nper > VRL_MAX_PER || in->nmatch > VRL_MAX_MATCH)
		return VRL_ECORRUPT;
	for (uint32_t i = 0; i < in->nper; i++)
		if (!fieldref_ok(&in->per[i]))
			return VRL_ECORRUPT;
	for (uint32_t i = 0; i < in->nmatch; i++)
		if (!fieldref_ok(&in->match[i].ref) ||
		    !terminated(in->match[i].pattern, sizeof(in->match[i].pattern)))
			return VRL_ECORRUPT;
	out->name_len = strlen(in->name);
	memset(&out->gcra, 0, sizeof(out->gcra));
	memset(&out->prev, 0, sizeof(out->prev));
	out->tag = vrl_gcra_epoch_tag(in->rate_epoch);
	if (in->kind == VRL_KIND_RATE &&
	    vrl_gcra_init(&out->gcra, in->count, in->period_ns, in->burst) != 0)
		return VRL_ECORRUPT;
	/* the epoch before's parameters, as vrl_seg_publish() recorded them */
	if (in->kind == VRL_KIND_RATE && in->prev_burst &&
	    vrl_gcra_init(&out->prev, 1, in->prev_emission_ns, in->prev_burst) != 0)
		return VRL_ECORRUPT;
	if (in->kind == VRL_KIND_WINDOW &&
	    (in->period_ns == 0 || vrl_window_area_bytes(in->count, in->area_keys) == 0))
		return VRL_ECORRUPT;
	if (!terminated(in->pool, sizeof(in->pool)))
		return VRL_ECORRUPT;
	if ((in->kind == VRL_KIND_QUOTA || in->kind == VRL_KIND_SLOTS) &&
	    (in->count == 0 || in->count > VRL_QUOTA_COUNT_MAX))
		return VRL_ECORRUPT;
	if (in->kind == VRL_KIND_QUOTA && vrl_quota_period(in, 0, NULL, NULL, NULL) != 0)
		return VRL_ECORRUPT;
	out->carry = false;
	if (in->kind == VRL_KIND_QUOTA) {
		int rc = vrl_quota_transition(in, &out->carry_from, &out->carry_to);

		if (rc == -EINVAL)
			return VRL_ECORRUPT;
		out->carry = rc == 0;
	}
	return 0;
}

int vrl_snapshot_read(const struct vrl_seg_view *v, struct vrl_snapshot *out)
{
	const struct vrl_seg_header *h = v->hdr;

	for (int tries = 0; tries < 1000; tries++) {
		/* C1 acquire: pairs with P1, the area is written before */
		uint64_t g = atomic_load_explicit(&h->config_gen, memory_order_acquire);
		unsigned idx = atomic_load_explicit(&h->active_cfg, memory_order_acquire);
		const struct vrl_seg_config *sc = vrl_view_cfg(v, idx);
		/* R0 acquire: pairs with W1, vrld's release after writing */
		uint64_t s1 = atomic_load_explicit(&sc->seq, memory_order_acquire), s2;
		uint32_t n = sc->nlimits;
		int rc = 0;

		if (s1 & 1)
			continue;
		if (s1 == 0)
			return VRL_EBUSY;   /* never published: vrld is still writing it */
		out->generation = sc->generation;
		out->stale = false;
		out->flags = sc->flags;
		out->nlimits = n <= VRL_MAX_LIMITS ? n : 0;
		memcpy(out->source, sc->source, sizeof(out->source));
		out->source[sizeof(out->source) - 1] = '\0';
		for (uint32_t i = 0; i < out->nlimits && rc == 0; i++) {
			rc = vrl_limit_prepare(&sc->limits[i], &out->limits[i]);
			if (rc == 0 && out->limits[i].seg.kind == VRL_KIND_WINDOW)
				rc = vrl_window_area_check(v, &out->limits[i].seg);
		}
		/* R1 acquire fence: the copy above is ordered before the re-check */
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&sc->seq, memory_order_relaxed);
		if (s1 != s2)
			continue;
		if (n > VRL_MAX_LIMITS || rc != 0)
			return VRL_ECORRUPT;
		/* vrld sets config_gen after the area it names (P1), so an area
		 * read after loading @g has a generation of at least @g. One
		 * below it means a group member wrote config_gen and no newer
		 * config exists: its value is then the one that says "this
		 * config is in force", so that the handle does not re-read for
		 * ever, nor (G1) take every key for newer than its config */
		out->gen_word = out->generation >= g ? out->generation : g;
		return 0;
	}
	return VRL_EBUSY;
}

int vrl__refresh(struct vrl_client *c)
{
	struct vrl_snapshot *s;
	int rc;

	/* C1 acquire: pairs with P1 */
	if (atomic_load_explicit(&c->hdr->config_gen, memory_order_acquire) ==
	    c->cfg->gen_word)
		return 0;
	s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	rc = vrl_snapshot_read(&c->view, s);
	if (rc == VRL_EBUSY) {
		/* vrld kept rewriting the config under the copy: go on with the
		 * one we have, stale; take() uses rate words as gcra.h allows */
		free(s);
		c->cfg->stale = true;
		return 0;
	}
	if (rc) {
		free(s);
		return rc;
	}
	free(c->prev);
	c->prev = c->cfg;
	c->cfg = s;
	vrl__holder_new_config(c, s->generation);
	return 0;
}
