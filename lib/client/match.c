/*
 * match.c - which limits a request takes and where their keys are: a
 * limit's match conditions and override group, the key of a request under
 * a limit (its hash and its label, label.c), and the key's slot in the
 * table, inserted when it has none.
 */
#include "client.h"

#include <fnmatch.h>
#include <string.h>

static const char *req_field(const struct vrl_request *r, const struct vrl_seg_fieldref *f)
{
	switch (f->field) {
	case VRL_FIELD_API:      return r->api;
	case VRL_FIELD_ENDPOINT: return r->endpoint;
	case VRL_FIELD_TOKEN:    return r->token;
	case VRL_FIELD_ORG:      return r->org;
	case VRL_FIELD_VEHICLE:  return r->vehicle;
	case VRL_FIELD_USER:     return r->user;
	case VRL_FIELD_ATTR:
		for (size_t i = 0; i < r->nattrs; i++)
			if (r->attrs[i].name && strcmp(r->attrs[i].name, f->attr) == 0)
				return r->attrs[i].value;
		return NULL;
	}
	return NULL;
}

bool vrl_limit_matches(const struct vrl_limit *l, const struct vrl_request *req)
{
	for (uint32_t i = 0; i < l->seg.nmatch; i++) {
		const struct vrl_seg_match *m = &l->seg.match[i];
		const char *v = req_field(req, &m->ref);

		if (!v)
			return false;
		if (m->glob ? fnmatch(m->pattern, v, 0) != 0 : strcmp(m->pattern, v) != 0)
			return false;
	}
	return true;
}

void vrl_limit_key(const struct vrl_limit *l, const struct vrl_request *req,
		   struct vrl_key *key, char label[VRL_LABEL_MAX])
{
	const char *parts[VRL_MAX_PER];

	for (uint32_t i = 0; i < l->seg.nper; i++) {
		const char *v = req_field(req, &l->seg.per[i]);

		parts[i] = v ? v : "";
	}
	/* secrets hashed here, before the label can reach a slot (label.h) */
	vrl_label_build(&l->seg, parts, label);
	/* a pool's members hash the pool's name: one key, one counter */
	vrl_key_hash(l->seg.pool[0] ? l->seg.pool : l->seg.name, parts, l->seg.nper, key);
}

bool vrl_limit_selected(const struct vrl_snapshot *cfg, uint32_t i, const struct vrl_request *req)
{
	uint32_t g = cfg->limits[i].seg.group;

	if (!vrl_limit_matches(&cfg->limits[i], req))
		return false;
	if (g == 0)
		return true;
	/* an override group: only its first matching member counts */
	for (uint32_t j = 0; j < i; j++)
		if (cfg->limits[j].seg.group == g && vrl_limit_matches(&cfg->limits[j], req))
			return false;
	return true;
}

int vrl__window_ring(struct vrl_client *c, const struct vrl_take *t, uint64_t *ring)
{
	const struct vrl_seg_limit *l = &c->cfg->limits[t->limit].seg;
	int rc = vrl_window_slot_ring(vrl_seg_area(&c->view, l), l->count, l->area_keys,
				      &c->view.slots[t->slot], ring);

	if (rc == VRL_EFULL) /* counted as a full table: same policy, same metric */
		atomic_fetch_add_explicit(&c->hdr->table_full, 1, memory_order_relaxed);
	return rc;
}

/*
 * An insert that finds vrld inside a reclaim bracket waits for it, and
 * vrl_kt_get() gives up after VRL_BRACKET_WAIT_NS twice. A vrld that stalls
 * there stops its heartbeat too, and after VRL_DAEMON_DEAD_NS any waiter
 * closes the bracket; so an acquire keeps waiting that long, and past it
 * (the bracket is held open by something that is not vrld) treats the key
 * as one the table has no room for: the config's on_full policy decides.
 */
#define PLACE_WAIT_NS (VRL_DAEMON_DEAD_NS + 2 * (uint64_t)VRL_BRACKET_WAIT_NS)

int vrl__kt_get(struct vrl_client *c, const struct vrl_key *key, uint32_t note,
		  const char *label, uint64_t *idx)
{
	uint64_t start = 0;
	int rc;

	while ((rc = vrl_kt_get(&c->view, key, note, label, idx)) == VRL_EBUSY) {
		uint64_t now = vrl_now_ns();

		if (start == 0)
			start = now;
		if (now - start > PLACE_WAIT_NS)
			return VRL_EFULL;
	}
	return rc;
}

int vrl__place(struct vrl_client *c, struct vrl_take *t, const char *label)
{
	int rc;

	if (c->readonly)
		return vrl_kt_find(&c->view, &t->key, &t->slot);
	rc = vrl__kt_get(c, &t->key,
		    vrl_slot_note(t->limit, &c->cfg->limits[t->limit].seg, c->cfg->generation),
		    label, &t->slot);
	if (rc == 0 && vrl_kind_has_area(&c->cfg->limits[t->limit].seg))
		rc = vrl__window_ring(c, t, &t->ring);
	if (rc == VRL_EFULL)
		t->slot = UINT64_MAX;
	return rc;
}

/* True when take @n has the key of an earlier take. */
static bool pooled_twice(const struct vrl_take *t, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (t[i].key.home == t[n].key.home && t[i].key.fp == t[n].key.fp)
			return true;
	return false;
}

int vrl__plan(struct vrl_client *c, const struct vrl_request *req, struct vrl_take *t,
		bool *full)
{
	unsigned n = 0;

	*full = false;
	for (uint32_t i = 0; i < c->cfg->nlimits; i++) {
		const struct vrl_limit *l = &c->cfg->limits[i];
		char label[VRL_LABEL_MAX];
		int rc;

		if (!vrl_limit_selected(c->cfg, i, req))
			continue;
		if (n == VRL_MAX_MATCHED)
			return VRL_ETOOMANY;
		t[n].limit = i;
		vrl_limit_key(l, req, &t[n].key, label);
		if (l->seg.pool[0] && pooled_twice(t, n))
			continue;   /* two members of one pool: one counter, taken once */
		rc = vrl__place(c, &t[n], label);
		if (rc == VRL_EFULL)
			*full = true;
		else if (rc)
			return rc;
		n++;
	}
	return (int)n;
}
