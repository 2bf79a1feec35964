/*
 * observe.c - feedback from the upstream: what vrl_observe() does with a
 * response that feedback.c parsed.
 *
 * The rules, in order:
 *   1. The limit acted on is the one the caller names (resp->limit); else
 *      the one the response names (Smartcar's type:code, CarsXE's usage
 *      body, ev.energy's problem type: see pick()); else the matching limit
 *      with the fewest permits left, the one most likely to be the cause.
 *   2. A 429 with a Retry-After closes that limit's key until then, for
 *      every worker (vrl_cooldown: a cooldown only ever extends).
 *   3. Figures the server gives (x-ratelimit-limit/-remaining, usage.*)
 *      move the local count toward the server's so that vrl never grants
 *      more than the server says remains (vrl__reconcile: never raises
 *      what remains). A 429 that names a quota with no figures counts as
 *      "none remain".
 *   4. A 400 is a request the upstream rejected before counting it (CarsXE:
 *      "Failed validation is free"): the request's units go back to its
 *      quotas. Rates and windows keep it: a rejected request still took its
 *      turn at the server.
 *   5. A 429 on an adaptive rate limit cuts its key's effective rate
 *      (adapt.h AD.W4, AD.W6), Retry-After or not. Charged: the limit the
 *      caller or the response names, if adaptive; else the keys that
 *      bound the grant (the verdict's binding mask, vrl_observe_granted);
 *      else the adaptive rate key with the fewest permits now. A first
 *      429 only strikes (the rate unchanged, no VRL_FB_ADAPT); a second,
 *      of a request granted after the strike, cuts; at most once per
 *      hold, and not for a request granted before the cut or strike in
 *      force (an echo of it): vrl_adapt_cut().
 * A malformed value is skipped: counted in the segment header
 * (feedback_ignored) and reported in the feedback, never an error. The
 * request is matched and keyed once a call: rules 2 and 3 act on the one
 * key target() found or target_key() placed.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "kind.h"
#include "look.h"
#include "clock.h"
#include "feedback.h"

/* True when limit @l is keyed by @field. */
static bool keyed_by(const struct vrl_limit *l, uint32_t field)
{
	for (uint32_t i = 0; i < l->seg.nper; i++)
		if (l->seg.per[i].field == field)
			return true;
	return false;
}

/* The last dot-separated part of a limit name: "vehicle" of smartcar.vehicle. */
static const char *last_part(const char *name)
{
	const char *dot = strrchr(name, '.');

	return dot ? dot + 1 : name;
}

/*
 * The limit a response's hint names, among those @req takes: first one
 * whose name ends in the hint's word (smartcar.app, smartcar.vehicle,
 * smartcar.upstream), then the first of the hint's kind and keying. -1 if
 * none.
 */
static int pick(struct vrl_client *c, const struct vrl_request *req, const struct vrl_parsed *p)
{
	const struct vrl_snapshot *cfg = c->cfg;
	const char *word = vrl_fb_hint_name(p->hint);
	uint32_t kinds = 0;
	int vehicle = -1;   /* -1: either; 0: not keyed by vehicle; 1: keyed by it */

	switch (p->hint) {
	case VRL_HINT_APP:           kinds = VRL_KINDS_PACED; vehicle = 0; break;
	case VRL_HINT_VEHICLE:
	case VRL_HINT_UPSTREAM:      kinds = VRL_KINDS_UPSTREAM; vehicle = 1; break;
	case VRL_HINT_VEHICLE_QUOTA: kinds = VRL_KINDS_QUOTA; vehicle = 1; break;
	case VRL_HINT_VEHICLE_COUNT: kinds = VRL_KINDS_HELD; break;
	case VRL_HINT_QUOTA:         kinds = VRL_KINDS_QUOTA; break;
	case VRL_HINT_WINDOW:        kinds = VRL_KINDS_WINDOW; break;
	default:                     return -1;
	}
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t i = 0; i < cfg->nlimits; i++) {
			const struct vrl_limit *l = &cfg->limits[i];

			if (!vrl_limit_selected(cfg, i, req) || !vrl_kind_in(l, kinds))
				continue;
			if (vehicle >= 0 && keyed_by(l, VRL_FIELD_VEHICLE) != (vehicle == 1))
				continue;
			if (pass == 1 || strcmp(last_part(l->seg.name), word) == 0)
				return (int)i;
		}
	return -1;
}

/*
 * The limit of @req, among the kinds in the set @kinds, whose key has the
 * fewest permits left now: the one an upstream's 429 is most likely
 * about. Its index, with its take in *@pick (its key placed), -1 when none
 * matches, or an error. Places missing keys as an acquire would; writes
 * no key state.
 */
static int tightest(struct vrl_client *c, const struct vrl_request *req, uint32_t kinds,
		    bool adaptive, struct vrl_take *pick)
{
	struct vrl_take t[VRL_MAX_MATCHED];
	uint64_t now = vrl_now_ns(), rt = 0, best = UINT64_MAX;
	bool full;
	int n, found = -1;

	n = vrl__plan(c, req, t, &full);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		const struct vrl_limit *l = &c->cfg->limits[t[i].limit];
		uint64_t rem = UINT64_MAX;
		struct look lk;

		if (!vrl_kind_in(l, kinds) || (adaptive && !vrl_rate_adaptive(l)))
			continue;
		/* a look only reads the slot: nothing here writes shared state */
		if (t[i].slot != UINT64_MAX &&
		    vrl__look_at(c, &t[i], 1, now, now, &rt, &lk) == VRL_LOOK_OK)
			rem = vrl__look_remaining(c, &t[i], &lk, now);
		if (found < 0 || rem < best) {
			best = rem;
			found = i;
		}
	}
	if (found < 0)
		return -1;
	*pick = t[found];
	return (int)t[found].limit;
}

/*
 * The limit to act on (its index in *@idx, or -1 for a name the config
 * lacks). When the tightest limit is the target, the plan placed its key
 * in *@t; else t->slot is UINT64_MAX and target_key() places it on first
 * use: the request is planned once per call. NULL when @req matches none.
 */
static const char *target(struct vrl_client *c, const struct vrl_request *req,
			  const struct vrl_response *resp, const struct vrl_parsed *p, int *idx,
			  struct vrl_take *t)
{
	int i;

	t->slot = UINT64_MAX;
	*idx = -1;
	if (resp->limit) {
		*idx = vrl__limit_index(c, resp->limit);
		return resp->limit;
	}
	i = pick(c, req, p);
	if (i < 0)
		i = tightest(c, req, VRL_KINDS_ALL, false, t);
	if (i < 0)
		return NULL;
	*idx = i;
	return c->cfg->limits[i].seg.name;
}

/* The target's key in *@t, placed at most once a call (*@keyed: 1 until
 * then; after, 0 or why it could not be placed, vrl__key_named). */
static int target_key(struct vrl_client *c, const struct vrl_request *req, const char *name,
		      struct vrl_take *t, int *keyed)
{
	if (*keyed > 0)
		*keyed = t->slot != UINT64_MAX ? 0 : vrl__key_named(c, req, name, t);
	return *keyed;
}

/* Cut the key of limit @i of @req (rule 5), granted at @granted_at. */
static int cut_one(struct vrl_client *c, const struct vrl_request *req, uint32_t i,
		   uint64_t now, uint64_t granted_at, struct vrl_take *t, bool keyed,
		   struct vrl_feedback *fb)
{
	const struct vrl_limit *l = &c->cfg->limits[i];
	struct vrl_kind_key k;
	uint32_t before, cut;
	int rc, done;

	if (!vrl_rate_adaptive(l))
		return 0;
	if (!keyed && (rc = vrl__key_named(c, req, l->seg.name, t)) != 0)
		return rc;
	k = vrl__kind_key(c, t, &c->view.slots[t->slot]);
	if (!(done = vrl_rate_cut(&k, now, granted_at, &before, &cut)))
		return 0;
	/*
	 * The slot changed owner under the cut: put the word back. This check
	 * narrows the race and proves nothing: a cut that lands on a key that
	 * took the slot meanwhile is made harmless by the word's mark (adapt.h:
	 * a window key reads it as no ring, a rate key is only slowed), and is
	 * forgotten by the put-back, vrld's sweep or the key's next insertion.
	 * acquire: the owner re-check of AQ.A3, after the write
	 */
	if (atomic_load_explicit(&k.s->state, memory_order_acquire) == VRL_STATE_EVICTED ||
	    atomic_load_explicit(&k.s->tag, memory_order_acquire) != vrl_key_tag(&t->key)) {
		vrl_rate_uncut(&k, cut, before);
		return 0;
	}
	if (done != VRL_ADAPT_CUT)
		return 0;   /* a strike: the rate is unchanged */
	fb->actions |= VRL_FB_ADAPT;
	fb->adapted |= UINT64_C(1) << i;
	return 0;
}

/*
 * Rule 5: the adaptive rate keys a 429 is charged to. @named: the limit the
 * caller or the response named (-1: none); @v: the grant's verdict, or NULL.
 */
static int adapt_429(struct vrl_client *c, const struct vrl_request *req, int named,
		     const struct vrl_verdict *v, uint64_t now, struct vrl_feedback *fb)
{
	uint64_t granted_at = VRL_ADAPT_GRANTED_UNKNOWN, mask = 0;
	struct vrl_take t;
	int i, rc;

	if (v && v->granted) {
		granted_at = v->at_ns;
		mask = v->binding;
	}
	if (named >= 0)
		return cut_one(c, req, (uint32_t)named, now, granted_at, &t, false, fb);
	if (mask) {
		for (i = 0; i < (int)c->cfg->nlimits && i < 64; i++)
			if ((mask >> i & 1) && vrl_limit_selected(c->cfg, (uint32_t)i, req) &&
			    (rc = cut_one(c, req, (uint32_t)i, now, granted_at, &t, false, fb)))
				return rc;
		return 0;
	}
	i = tightest(c, req, VRL_KINDS_PACED, true, &t);
	if (i < 0)
		return i == -1 ? 0 : i;
	return cut_one(c, req, (uint32_t)i, now, granted_at, &t, t.slot != UINT64_MAX, fb);
}

/* vrl_observe() within the entry and exit checks of a call (@v: the
 * verdict of the grant answered, or NULL). */
static int observe(vrl_client *c, const struct vrl_request *req, const struct vrl_verdict *v,
		   const struct vrl_response *resp, struct vrl_feedback *fb)
{
	struct vrl_parsed p;
	struct vrl_take t;
	const char *name;
	uint64_t now, cost;
	int rc, idx, keyed;

	now = vrl_now_ns();
	vrl_parse_response(resp, vrl_wall_ns(), &p);
	if (p.nignored) {
		fb->actions |= VRL_FB_IGNORED;
		fb->ignored = p.ignored;
		atomic_fetch_add_explicit(&c->hdr->feedback_ignored, p.nignored,
					  memory_order_relaxed);
	}
	if (p.found & VRL_PARSED_REMAINING) {
		fb->server_remaining = p.server_remaining;
		fb->server_limit = p.found & VRL_PARSED_LIMIT ? p.server_limit : UINT64_MAX;
	} else if ((p.found & VRL_PARSED_USAGE) && p.usage_remaining != VRL_ABSENT) {
		fb->server_remaining = p.usage_remaining;
		fb->server_limit = p.usage_limit;
	} else if (resp->status == 429 && (p.found & (VRL_PARSED_TRIAL_OVER |
						      VRL_PARSED_OVERAGE_OFF))) {
		fb->server_remaining = 0;
	}

	cost = req->cost ? req->cost : 1;
	if (resp->status == 400) {
		/* rule 4: the quotas of the request get its units back */
		for (uint32_t i = 0; i < c->cfg->nlimits; i++) {
			const struct vrl_limit *l = &c->cfg->limits[i];

			if (!vrl_kind_in(l, VRL_KINDS_QUOTA) || !vrl_limit_selected(c->cfg, i, req))
				continue;
			rc = vrl_refund(c, req, l->seg.name, cost);
			if (rc == 0) {
				fb->actions |= VRL_FB_REFUND;
				fb->limit = (int)i;
			} else if (rc != VRL_ENOKEY) {
				return rc;
			}
		}
		return 0;
	}
	if (resp->status != 429 && fb->server_remaining == UINT64_MAX)
		return 0;
	if (resp->status == 429 && c->cfg->nadaptive) {
		int named = resp->limit ? vrl__limit_index(c, resp->limit) : pick(c, req, &p);

		if (resp->limit && named < 0)
			named = INT32_MAX;   /* a name the config lacks: nothing to cut */
		rc = named == INT32_MAX ? 0 : adapt_429(c, req, named, v, now, fb);
		if (rc && rc != VRL_ENOLIMIT && rc != VRL_ENOKEY)
			return rc;
	}

	name = target(c, req, resp, &p, &idx, &t);
	keyed = 1;
	if (!name)
		return 0;
	fb->limit = idx;
	if (resp->status == 429 && (p.found & VRL_PARSED_RETRY_AFTER) && p.retry_after_ns > 0) {
		/* rule 2 */
		uint64_t until = p.retry_after_ns > UINT64_MAX - now ? UINT64_MAX - 1 :
			now + p.retry_after_ns;

		rc = target_key(c, req, name, &t, &keyed);
		if (rc == 0)
			rc = vrl__cooldown_key(c, &t, until);
		if (rc)
			return rc;
		fb->actions |= VRL_FB_COOLDOWN;
		fb->cooldown_until_ns = until;
	}
	if (resp->status == 429 && fb->server_remaining == UINT64_MAX &&
	    !(fb->actions & VRL_FB_COOLDOWN))
		fb->server_remaining = 0;   /* a 429 with nothing more: none remain */
	if (fb->server_remaining != UINT64_MAX) {
		/* rule 3 */
		if (idx >= 0 && !vrl_kind_in(&c->cfg->limits[idx], VRL_KINDS_SPENT))
			rc = VRL_ENOLIMIT;   /* no key of its kinds to move */
		else if ((rc = target_key(c, req, name, &t, &keyed)) == 0)
			rc = vrl__reconcile_key(c, &t, fb->server_limit, fb->server_remaining);
		if (rc == 0)
			fb->actions |= VRL_FB_RECONCILE;
		else if (rc != VRL_ENOLIMIT && rc != VRL_ENOKEY)
			return rc;
	}
	return 0;
}

int vrl_observe(vrl_client *c, const struct vrl_request *req, const struct vrl_response *resp,
		struct vrl_feedback *fb)
{
	return vrl_observe_granted(c, req, NULL, resp, fb);
}

int vrl_observe_granted(vrl_client *c, const struct vrl_request *req,
			const struct vrl_verdict *v, const struct vrl_response *resp,
			struct vrl_feedback *fb)
{
	struct vrl_feedback local;
	uint64_t state;
	int rc;

	if (!fb)
		fb = &local;
	memset(fb, 0, sizeof(*fb));
	fb->limit = -1;
	fb->server_limit = fb->server_remaining = UINT64_MAX;
	rc = vrl__check(c, req);
	if (rc)
		return rc;
	if (!resp)
		return VRL_ENULL;
	if (!vrl__zeroed(resp->reserved, sizeof(resp->reserved) / sizeof(resp->reserved[0])))
		return VRL_ERESERVED;
	if (c->readonly)
		return VRL_EREADONLY;
	rc = vrl__enter(c, &state);
	if (rc)
		return rc;
	return vrl__leave(c, state, observe(c, req, v, resp, fb), NULL);
}
