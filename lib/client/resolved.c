/*
 * resolved.c - resolved requests: a request matched and keyed once, its
 * strings copied, acquired many times without a lookup; planned again
 * when a new config is published or a key found no slot.
 */
#include "client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RESOLVED_FIELDS 6

struct vrl_resolved {
	struct vrl_client *c;
	uint64_t generation;
	uint64_t cost;
	unsigned n;
	bool full;
	struct vrl_take t[VRL_MAX_MATCHED];
	struct vrl_request req;           /* points into strings below */
	struct vrl_attr *attrs;
	char *strings;
};

static char *copy_str(char **dst, const char *s)
{
	char *r;
	size_t len;

	if (!s)
		return NULL;
	len = strlen(s) + 1;
	r = memcpy(*dst, s, len);
	*dst += len;
	return r;
}

static size_t request_bytes(const struct vrl_request *q)
{
	const char *f[RESOLVED_FIELDS] = { q->api, q->endpoint, q->token, q->org, q->vehicle, q->user };
	size_t b = 0;

	for (int i = 0; i < RESOLVED_FIELDS; i++)
		b += f[i] ? strlen(f[i]) + 1 : 0;
	for (size_t i = 0; i < q->nattrs; i++)
		b += (q->attrs[i].name ? strlen(q->attrs[i].name) + 1 : 0) +
		     (q->attrs[i].value ? strlen(q->attrs[i].value) + 1 : 0);
	return b;
}

static int copy_request(struct vrl_resolved *r, const struct vrl_request *q)
{
	size_t b = request_bytes(q);
	char *p;

	r->strings = malloc(b ? b : 1);
	r->attrs = q->nattrs ? calloc(q->nattrs, sizeof(*r->attrs)) : NULL;
	if (!r->strings || (q->nattrs && !r->attrs))
		return -ENOMEM;
	p = r->strings;
	r->req.api = copy_str(&p, q->api);
	r->req.endpoint = copy_str(&p, q->endpoint);
	r->req.token = copy_str(&p, q->token);
	r->req.org = copy_str(&p, q->org);
	r->req.vehicle = copy_str(&p, q->vehicle);
	r->req.user = copy_str(&p, q->user);
	for (size_t i = 0; i < q->nattrs; i++) {
		r->attrs[i].name = copy_str(&p, q->attrs[i].name);
		r->attrs[i].value = copy_str(&p, q->attrs[i].value);
	}
	r->req.attrs = r->attrs;
	r->req.nattrs = q->nattrs;
	r->req.cost = q->cost;
	return 0;
}

static int replan(struct vrl_resolved *r)
{
	int n = vrl__plan(r->c, &r->req, r->t, &r->full);

	if (n < 0)
		return n;
	r->n = (unsigned)n;
	r->generation = r->c->cfg->generation;
	return 0;
}

int vrl_resolve(vrl_client *c, const struct vrl_request *req, vrl_resolved **out)
{
	struct vrl_resolved *r;
	uint64_t state;
	int rc = vrl__check(c, req);

	if (rc)
		return rc;
	if (!out)
		return VRL_ENULL;
	if (c->readonly)
		return VRL_EREADONLY;
	rc = vrl__enter(c, &state);
	if (rc)
		return rc;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->c = c;
	r->cost = req->cost ? req->cost : 1;
	rc = copy_request(r, req);
	if (rc == 0)
		rc = replan(r);
	rc = vrl__leave(c, state, rc, NULL);
	if (rc) {
		vrl_resolved_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void vrl_resolved_free(vrl_resolved *r)
{
	if (!r)
		return;
	free(r->strings);
	free(r->attrs);
	free(r);
}

/* One try of vrl_acquire_resolved(); @last as take(). */
static inline int acquire_resolved_once(vrl_client *c, vrl_resolved *r, uint64_t cost,
					bool last, struct vrl_verdict *v)
{
	uint64_t state;
	int rc;

	if (v)
		v->granted = 0;   /* whatever ends the call early grants nothing */
	rc = vrl__enter(c, &state);
	if (rc)
		return rc;
	if (__builtin_expect(r->generation != c->cfg->generation || r->full, 0)) {
		rc = replan(r);
		if (rc)
			return vrl__leave(c, state, rc, NULL);
	}
	rc = vrl__acquire_takes(c, r->req.api, r->t, r->n, r->full, cost ? cost : r->cost, 0,
				false, last, v);
	return vrl__leave(c, state, rc, v);
}

int vrl_acquire_resolved(vrl_client *c, vrl_resolved *r, uint64_t cost, struct vrl_verdict *v)
{
	int rc;

	if (__builtin_expect(!c || !r || r->c != c, 0)) {
		if (v)
			v->granted = 0;   /* as acquire_resolved_once() */
		return !c || !r ? VRL_ENULL : VRL_EHANDLE;
	}
	rc = acquire_resolved_once(c, r, cost, false, v);

	/* a config published under the call: plan again with it */
	for (unsigned tries = 1; __builtin_expect(rc == VRL__RESTART, 0); tries++)
		rc = acquire_resolved_once(c, r, cost, tries + 1 >= VRL__RESTARTS_MAX, v);
	return rc;
}

