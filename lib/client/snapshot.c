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

int vrl_limit_prepare(const struct vrl_seg_limit *in, struct vrl_limit *out)
{
	out->seg = *in;
	if (!terminated(in->name, sizeof(in->name)) || in->name[0] == '\0')
		return VRL_ECORRUPT;
	if (!vrl_kind_known(in->kind))
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
	if (!terminated(in->pool, sizeof(in->pool)))
		return VRL_ECORRUPT;
	if (vrl_kind_prepare(in, out) != 0)
		return VRL_ECORRUPT;
	return 0;
}

int vrl_snapshot_read(const struct vrl_seg_view *v, struct vrl_snapshot *out)
{
	const struct vrl_seg_header *h = v->hdr;

	for (int tries = 0; tries < 1000; tries++) {
		/* SEG.C1 acquire: pairs with SEG.P1, the area is written before */
		uint64_t g = atomic_load_explicit(&h->config_gen, memory_order_acquire);
		unsigned idx = atomic_load_explicit(&h->active_cfg, memory_order_acquire);
		const struct vrl_seg_config *sc = vrl_view_cfg(v, idx);
		/* SEG.R0 acquire: pairs with SEG.W1, vrld's release after writing */
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
		out->nadaptive = 0;
		out->nglobal = 0;
		for (uint32_t i = 0; i < out->nlimits && rc == 0; i++) {
			rc = vrl_limit_prepare(&sc->limits[i], &out->limits[i]);
			if (rc == 0)
				rc = vrl_kind_area_check(v, &out->limits[i].seg);
			if (rc == 0 && vrl_rate_adaptive(&out->limits[i]))
				out->nadaptive++;
			if (rc == 0 && (out->limits[i].seg.flags & VRL_LIMIT_GLOBAL))
				out->nglobal++;
		}
		/* SEG.R1 acquire fence: the copy above is ordered before the
		 * re-check (pairs with SEG.W0) */
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&sc->seq, memory_order_relaxed);
		if (s1 != s2)
			continue;
		if (n > VRL_MAX_LIMITS || rc != 0)
			return VRL_ECORRUPT;
		/* vrld sets config_gen after the area it names (SEG.P1), so an area
		 * read after loading @g has a generation of at least @g. One
		 * below it means a group member wrote config_gen and no newer
		 * config exists: its value is then the one that says "this
		 * config is in force", so that the handle does not re-read for
		 * ever, nor (AQ.G1) take every key for newer than its config */
		out->gen_word = out->generation >= g ? out->generation : g;
		return 0;
	}
	return VRL_EBUSY;
}

int vrl__refresh(struct vrl_client *c)
{
	struct vrl_snapshot *s;
	int rc;

	/* SEG.C1 acquire: pairs with SEG.P1 */
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
