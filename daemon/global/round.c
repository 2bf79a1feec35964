/*
 * round.c - one round of the engine: a batch's entries, grouped by Redis
 * endpoint (rendezvous hashing of the key id, so that adding an endpoint
 * moves only the keys it wins), sent as vrl_renew calls of at most
 * VRL_GLOBAL_CHUNK entries each, every call of every endpoint written
 * before any answer is read (pipelined), then the answers turned into
 * results.
 *
 * Times, per call: t_send is read before its arguments are built, so it
 * precedes the call's execution in Redis; the lease's local expiry is
 * t_send + rel - margin (lease.c, step 3). The call carries ub, an upper
 * bound of the real time since the endpoint's last answered call of ours
 * executed: t_send less that call's t_send, plus the command timeout
 * (step 2; a call executed later than its timeout only makes it smaller,
 * which holds virtual time back: safe).
 *
 * A call without an answer (no connection, a timeout, an error) leaves
 * its keys on their leases: PENDING while the lease holds, then
 * PARTITIONED with the on_partition share, recomputed each round (static
 * begins at its own time). Quota and slots allocations never lapse.
 */
#include "engine.h"
#include "lease.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define ENTRY_FIXED 83u   /* vrl.lua: ENTRY_FIXED, an entry's bytes before its known list */
#define ANSWER_FIXED 43u  /* bytes of an answer before its holders */
#define LUA_EXACT (UINT64_C(1) << 53)   /* vrl.lua's numbers are doubles */
#define QUOTA_GRACE_MS UINT64_C(86400000)  /* Redis keeps a quota count a day past its period */

struct call {
	unsigned ep;
	size_t first, n;        /* entries byep[first .. first + n) */
	uint64_t t_send;
	bool sent;
	bool full;              /* the last call of a round that left no key out */
};

struct ctx {
	struct vrl_global *g;
	const struct vrl_gbatch *b;
	struct vrl_gresults *out;
	size_t *byep;           /* entry indices grouped by endpoint */
	size_t *recof;          /* entry index -> its record in g->next */
	struct call *calls;
	size_t ncalls;
	bool release;
	uint64_t now;
	uint64_t gen;           /* of this round's results */
	bool full[VRL_GLOBAL_ENDPOINTS_MAX];  /* endpoints that get every key this round */
};

static const char KIND_CHAR[] = { 0, 'r', 'w', 'q', 's', 'g' };

static unsigned pick_endpoint(const struct vrl_global *g, const uint8_t *id)
{
	unsigned best = 0;
	uint64_t bw = 0;

	for (unsigned i = 0; i < g->nep; i++) {
		uint64_t w = XXH3_64bits_withSeed(id, VRL_GLOBAL_ID_LEN, g->ep[i].seed);

		if (i == 0 || w > bw) {
			bw = w;
			best = i;
		}
	}
	return best;
}

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
	void *q;

	if (n <= *cap)
		return 0;
	q = realloc(*p, n * size);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

static int cmp_order(const void *a, const void *b, void *arg)
{
	const struct vrl_global_entry *e = arg;

	return memcmp(e[*(const size_t *)a].id, e[*(const size_t *)b].id, VRL_GLOBAL_ID_LEN);
}

static int cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, VRL_GLOBAL_ID_LEN);
}

/* ---- encoding ------------------------------------------------------------------ */

static uint64_t us_up(uint64_t ns)
{
	return ns / 1000u + (ns % 1000u != 0);
}

/* ---- the entries: one packed argument (vrl.lua: ENTRY, little-endian) ---- */

static int blob_room(struct vrl_gblob *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 4096;
	uint8_t *p;

	if (b->len + n <= b->cap)
		return 0;
	while (cap < b->len + n)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* kind c1, nine u64 (I8), ttl (i8), known (H length, bytes) */
static int blob_entry(struct vrl_gblob *b, char kind, const uint64_t u[9], int64_t ttl,
		      const char *known)
{
	size_t kn = strlen(known);
	uint8_t *p;

	if (kn > UINT16_MAX || blob_room(b, ENTRY_FIXED + kn))
		return -ENOMEM;
	p = b->p + b->len;
	p[0] = (uint8_t)kind;
	for (unsigned i = 0; i < 9; i++)
		put_le(p + 1 + 8 * i, u[i], 8);
	put_le(p + 73, (uint64_t)ttl, 8);
	put_le(p + 81, kn, 2);
	memcpy(p + ENTRY_FIXED, known, kn);
	b->len += ENTRY_FIXED + kn;
	return 0;
}

static int encode_key(struct vrl_rargs *a, const char *prefix, const uint8_t *id)
{
	char s[128];
	int n = snprintf(s, sizeof(s), "%s%u:k:", prefix, vrl_global_lua_layout);

	for (unsigned i = 0; i < VRL_GLOBAL_ID_LEN; i++)
		n += snprintf(s + n, sizeof(s) - (size_t)n, "%02x", id[i]);
	return vrl_rargs_str(a, s, (size_t)n);
}

/*
 * The allocation a quota or slots key keeps, as reported: Redis takes it
 * as the host's own shrink, so it must never be lower than what the host
 * enforces or soon will. The main loop hands over its entries before it
 * collects a round: an entry whose gen is not the key's latest result's
 * predates that result, which it is about to apply (or applied after
 * copying the entry): its allocation is the result's. A release is the
 * host's last word: its entry, as is.
 */
static uint64_t block_kept(const struct ctx *x, const struct vrl_global_entry *e,
			   const struct vrl_grec *r)
{
	if (x->release || r->gen == 0 || e->gen == r->gen)
		return e->share.count;
	return r->share.count;
}

/* One entry of the call's last argument (vrl.lua: ENTRY). */
static int encode_entry(struct ctx *x, const struct vrl_global_entry *e, struct vrl_grec *r,
			uint64_t t_send)
{
	uint64_t cap = e->count, per = 0, bst = 0, sa = e->share.count, sb = 0, hold = e->held;
	uint64_t use = r->reported ? e->used_total - r->used_rep : 0;
	uint64_t unmet = r->reported ? e->unmet_total - r->unmet_rep : 0;
	int64_t ttl = 0;
	const char *known = "";

	switch (e->kind) {
	case VRL_GLOBAL_RATE:
		cap = vrl_global_rate_units(e->count, e->period_ns);
		per = us_up(e->period_ns);
		bst = e->burst;
		sa = e->share.rate;
		sb = e->share.burst;
		hold = 0;
		break;
	case VRL_GLOBAL_WINDOW:
		per = us_up(e->period_ns);
		break;
	case VRL_GLOBAL_QUOTA:
		bst = e->soft;
		sa = block_kept(x, e, r);
		sb = e->period_id;
		ttl = e->period_left_ns == UINT64_MAX ? -1 :
		      (int64_t)(e->period_left_ns / 1000000u + QUOTA_GRACE_MS);
		if (r->holders_pid == e->period_id)
			known = r->holders;
		break;
	case VRL_GLOBAL_SLOTS:
		sa = block_kept(x, e, r);
		ttl = -1;
		known = r->holders;
		break;
	case VRL_GLOBAL_GATE:
		cap = 0;
		sa = hold = use = unmet = 0;
		break;
	}
	/* a cumulative total that went back (a key made anew): report nothing */
	if (use > (UINT64_C(1) << 52) || unmet > (UINT64_C(1) << 52))
		use = unmet = 0;
	r->used_sent = e->used_total;
	r->unmet_sent = e->unmet_total;
	r->held_sent = e->held;
	return blob_entry(&x->g->blob, KIND_CHAR[e->kind], (const uint64_t[9]){ cap, per, bst, use,
			  unmet, sa, sb, hold, vrl_lease_cooldown_publish(e->cooldown_until,
									   r->cd_applied, t_send) },
			  ttl, known);
}

/* One call: FCALL vrl_renew|vrl_release, the keys, the header, the entries. */
static int encode_call(struct ctx *x, struct call *c)
{
	struct vrl_global *g = x->g;
	struct vrl_rconn *ep = &g->ep[c->ep];
	struct vrl_rargs *a = &g->args;
	uint64_t ub = ep->epoch[0] ? (c->t_send - ep->t_sent_prev + g->timeout) / 1000u : 0;
	char epoch_key[80];
	int rc, n = snprintf(epoch_key, sizeof(epoch_key), "%s%u:e", g->prefix,
			     vrl_global_lua_layout);

	vrl_rargs_reset(a);
	rc = vrl_rargs_str(a, "FCALL", 5);
	rc = rc ? rc : vrl_rargs_str(a, x->release ? "vrl_release" : "vrl_renew",
				     x->release ? 11 : 9);
	rc = rc ? rc : vrl_rargs_u64(a, c->n + 1);
	rc = rc ? rc : vrl_rargs_str(a, epoch_key, (size_t)n);
	for (size_t i = 0; i < c->n && !rc; i++)
		rc = encode_key(a, g->prefix, x->b->e[x->byep[c->first + i]].id);
	rc = rc ? rc : vrl_rargs_u64(a, vrl_global_lua_protocol);
	rc = rc ? rc : vrl_rargs_str(a, g->host, strlen(g->host));
	rc = rc ? rc : vrl_rargs_u64(a, ep->boot);
	rc = rc ? rc : vrl_rargs_u64(a, vrl_rconn_seq(ep, c->t_send / 1000u));
	rc = rc ? rc : vrl_rargs_str(a, ep->epoch, strlen(ep->epoch));
	rc = rc ? rc : vrl_rargs_str(a, ep->registry, strlen(ep->registry));
	rc = rc ? rc : vrl_rargs_u64(a, ub);
	rc = rc ? rc : vrl_rargs_u64(a, g->lease / 1000u);
	rc = rc ? rc : vrl_rargs_u64(a, us_up(g->margin));
	rc = rc ? rc : vrl_rargs_u64(a, g->hosts);
	rc = rc ? rc : vrl_rargs_str(a, c->full ? "1" : "0", 1);
	rc = rc ? rc : vrl_rargs_u64(a, c->n);
	g->blob.len = 0;
	for (size_t i = 0; i < c->n && !rc; i++) {
		size_t k = x->byep[c->first + i];

		rc = encode_entry(x, &x->b->e[k], &g->next[x->recof[k]], c->t_send);
	}
	/* no entry yet: an empty blob, not a null pointer */
	return rc ? rc : vrl_rargs_str(a, g->blob.p ? (const char *)g->blob.p : "",
				       g->blob.len);
}

/* ---- results ------------------------------------------------------------------- */

static bool is_block(enum vrl_global_kind k)
{
	return k == VRL_GLOBAL_QUOTA || k == VRL_GLOBAL_SLOTS;
}

/*
 * No answer for entry @k this round (not sent, or no answer): its result
 * carries the key's latest lease all the same, under that lease's gen, so
 * that a round whose results replace an uncollected one loses nothing.
 * Past the lease: the on_partition share, a new gen when it changes.
 */
static void unanswered(struct ctx *x, size_t k)
{
	struct vrl_global *g = x->g;
	const struct vrl_global_entry *e = &x->b->e[k];
	struct vrl_grec *r = &g->next[x->recof[k]];
	struct vrl_global_result *res = &x->out->r[k];
	uint64_t since = g->ep[r->ep].down_since;
	struct vrl_global_share fb;

	res->static_from = vrl_lease_static_from(r->lease_expires > since ? r->lease_expires : since,
						  g->lease, g->margin);
	if (is_block(e->kind) || e->kind == VRL_GLOBAL_GATE || x->now < r->expires) {
		res->status = VRL_GLOBAL_PENDING;
		res->apply = r->gen != 0;
		res->share = r->share;
		res->expires = r->expires;
		res->target = r->target;
		res->period_id = r->holders_pid;
		res->gen = r->gen;
		res->cooldown_until = r->cd_applied > x->now ? r->cd_applied : 0;
		return;
	}
	fb = vrl_lease_fallback(e, g->on_partition, g->hosts, x->now, res->static_from);
	if (r->status != VRL_GLOBAL_PARTITIONED || memcmp(&fb, &r->share, sizeof(fb)) != 0)
		r->gen = x->gen;
	res->status = VRL_GLOBAL_PARTITIONED;
	res->apply = true;
	res->share = fb;
	res->expires = UINT64_MAX;
	res->gen = r->gen;
	r->status = res->status;
	r->share = res->share;
}

static bool is_int(const redisReply *r)
{
	return r->type == REDIS_REPLY_INTEGER && r->integer >= 0;
}

/* One answer {code B, a b rel target cd I8, holders H s} at *@at of @blob. */
static int answer(struct ctx *x, size_t k, const redisReply *blob, size_t *at, uint64_t t_send,
		  uint64_t t_recv)
{
	const struct vrl_global_entry *e = &x->b->e[k];
	struct vrl_grec *r = &x->g->next[x->recof[k]];
	struct vrl_global_result *res = &x->out->r[k];
	const uint8_t *p = (const uint8_t *)blob->str + *at;
	uint64_t a, b, rel, target, cd;
	size_t hn;

	if (blob->len - *at < ANSWER_FIXED)
		return -EPROTO;
	hn = get_le(p + 41, 2);
	if (blob->len - *at - ANSWER_FIXED < hn || p[0] > VRL_GLOBAL_INVALID)
		return -EPROTO;
	*at += ANSWER_FIXED + hn;
	a = get_le(p + 1, 8);
	b = get_le(p + 9, 8);
	rel = get_le(p + 17, 8);
	target = get_le(p + 25, 8);
	cd = get_le(p + 33, 8);
	/* a figure no double of vrl.lua holds exactly (a negative one packs as
	 * one) is no answer: never a share */
	if ((a | b | rel | target | cd) >= LUA_EXACT)
		return -EPROTO;
	res->status = (enum vrl_global_outcome)p[0];
	res->apply = true;
	res->gen = x->gen;
	r->gen = x->gen;
	switch (e->kind) {
	case VRL_GLOBAL_RATE:
		res->share.rate = a;
		res->share.burst = b;
		res->expires = vrl_lease_local_expiry(t_send, rel, x->g->margin);
		break;
	case VRL_GLOBAL_WINDOW:
		res->share.count = a;
		res->expires = vrl_lease_local_expiry(t_send, rel, x->g->margin);
		break;
	case VRL_GLOBAL_QUOTA:
	case VRL_GLOBAL_SLOTS:
		res->share.count = a;
		res->target = target;
		r->target = res->target;
		res->expires = UINT64_MAX;
		snprintf(r->holders, sizeof(r->holders), "%.*s", (int)hn, (const char *)p +
			 ANSWER_FIXED);
		r->holders_pid = e->period_id;
		res->period_id = e->period_id;
		break;
	case VRL_GLOBAL_GATE:
		res->expires = UINT64_MAX;
		break;
	}
	res->static_from = vrl_lease_static_from(res->expires, x->g->lease, x->g->margin);
	res->cooldown_until = vrl_lease_cooldown_until(t_recv, cd);
	if (res->cooldown_until)
		r->cd_applied = res->cooldown_until;
	r->status = res->status;
	r->share = res->share;
	r->expires = res->expires;
	if (res->share.rate || res->share.burst || res->share.count)
		r->lease_expires = res->expires;
	if (res->status == VRL_GLOBAL_OK)
		r->renewals++;
	r->reported = true;
	r->used_rep = r->used_sent;
	r->unmet_rep = r->unmet_sent;
	r->held_rep = r->held_sent;
	r->sent_at = t_send;
	return 0;
}

/* The header {"ok", epoch, vnow, fence_left, lost, complete, registry}. */
static int header(struct ctx *x, struct call *c, const redisReply *h)
{
	struct vrl_rconn *ep = &x->g->ep[c->ep];

	if (h->type != REDIS_REPLY_ARRAY || h->elements < 5 ||
	    h->element[0]->type != REDIS_REPLY_STRING || h->element[1]->type != REDIS_REPLY_STRING)
		return -EPROTO;
	if (strcmp(h->element[0]->str, "stale") == 0) {
		/* a later call of ours ran first, or another vrld uses our id */
		if (is_int(h->element[3]) && is_int(h->element[4])) {
			uint64_t boot = (uint64_t)h->element[3]->integer;
			uint64_t mono = (uint64_t)h->element[4]->integer;

			if (boot > ep->boot)
				ep->boot = boot;
			if (boot == ep->boot && mono > ep->seq)
				ep->seq = mono;
		}
		char why[sizeof(ep->error)];

		snprintf(why, sizeof(why), "a call was refused as stale: another vrld with host id "
			 "%s, or the boot time moved back", x->g->host);
		memcpy(ep->error, why, sizeof(why));
		return -ESTALE;
	}
	if (strcmp(h->element[0]->str, "ok") != 0 || h->elements != 7 || !is_int(h->element[2]) ||
	    !is_int(h->element[3]) || h->element[6]->type != REDIS_REPLY_STRING)
		return -EPROTO;
	snprintf(ep->epoch, sizeof(ep->epoch), "%s", h->element[1]->str);
	ep->vnow_us = (uint64_t)h->element[2]->integer;
	ep->t_sent_prev = c->t_send;
	ep->fence_left_us = (uint64_t)h->element[3]->integer;
	ep->lost = is_int(h->element[4]) && h->element[4]->integer == 1;
	snprintf(ep->registry, sizeof(ep->registry), "%s", h->element[6]->str);
	return 0;
}

static int reply(struct ctx *x, struct call *c, const redisReply *rep)
{
	uint64_t t_recv = vrl_global_now();
	struct vrl_rconn *ep = &x->g->ep[c->ep];
	int rc;

	if (rep->type == REDIS_REPLY_ERROR) {
		snprintf(ep->error, sizeof(ep->error), "%s", rep->str);
		return strstr(rep->str, "not found") ? -ENOENT : -EPROTO;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1)
		return -EPROTO;
	rc = header(x, c, rep->element[0]);
	if (rc)
		return rc;
	if (rep->elements != 2 || rep->element[1]->type != REDIS_REPLY_STRING)
		return -EPROTO;
	if (c == &x->calls[0] || c[-1].ep != c->ep)
		vrl_rconn_rtt(ep, t_recv - c->t_send);
	ep->down_since = 0;
	ep->error[0] = '\0';
	if (c->full)    /* the epoch the full report executed in (its answer's) */
		memcpy(ep->full_epoch, ep->epoch, sizeof(ep->full_epoch));
	if (x->release)
		return 0;
	for (size_t i = 0, at = 0; i < c->n; i++) {
		rc = answer(x, x->byep[c->first + i], rep->element[1], &at, c->t_send, t_recv);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- the round ------------------------------------------------------------------- */

/* Records for this round's entries, in id order, carried over from the last. */
static int prepare(struct ctx *x)
{
	struct vrl_global *g = x->g;
	const struct vrl_gbatch *b = x->b;
	size_t n = b->n, *order;

	if (grow((void **)&g->next, &g->capnext, n, sizeof(*g->next)) ||
	    grow((void **)&g->order, &g->caporder, 3 * n, sizeof(*g->order)) ||
	    grow((void **)&x->out->r, &x->out->cap, n, sizeof(*x->out->r)))
		return -ENOMEM;
	order = g->order;
	x->byep = order + n;
	x->recof = order + 2 * n;
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	if (n)   /* a host without global keys: no array at all */
		qsort_r(order, n, sizeof(*order), cmp_order, b->e);
	for (size_t i = 0; i < n; i++) {
		const struct vrl_global_entry *e = &b->e[order[i]];
		struct vrl_global_result *res = &x->out->r[order[i]];
		const struct vrl_grec *old = g->nrec ?
			bsearch(e->id, g->rec, g->nrec, sizeof(*old), cmp_id) : NULL;
		struct vrl_grec *r = &g->next[i];

		if (old)
			*r = *old;
		else
			*r = (struct vrl_grec){ .status = VRL_GLOBAL_PENDING };
		memcpy(r->id, e->id, VRL_GLOBAL_ID_LEN);
		r->ep = pick_endpoint(g, e->id);
		x->recof[order[i]] = i;
		memset(res, 0, sizeof(*res));
		memcpy(res->id, e->id, VRL_GLOBAL_ID_LEN);
		res->status = VRL_GLOBAL_PENDING;
		if (e->kind < VRL_GLOBAL_RATE || e->kind > VRL_GLOBAL_GATE ||
		    (i > 0 && memcmp(e->id, b->e[order[i - 1]].id, VRL_GLOBAL_ID_LEN) == 0) ||
		    (e->kind == VRL_GLOBAL_RATE && !vrl_global_rate_units(e->count, e->period_ns))) {
			res->status = VRL_GLOBAL_INVALID;   /* a bad kind, rate or a repeated id */
			res->apply = true;
			res->expires = UINT64_MAX;
			res->gen = x->gen;
		}
	}
	return 0;
}

/*
 * An idle key need not be renewed at every tick: nothing used or denied
 * since its last report, no cooldown to publish, and for a rate or window
 * more than half its lease left; for quota and slots, its allocation and
 * held units as last reported, within the last lease term. It waits
 * (PENDING) until one of these changes: Redis sees an idle key about twice
 * a term, a busy one every tick. Gates always go: cooldowns travel at the
 * tick's pace. An endpoint that has had no full report in its epoch (a
 * new or wiped Redis) gets every key: vrl.lua counts a host as having
 * reported, for keys nobody else knows of, only after a full report.
 */
static bool idle(const struct ctx *x, const struct vrl_global_entry *e, const struct vrl_grec *r,
		 uint64_t now)
{
	const struct vrl_global *g = x->g;

	if (x->release || x->full[r->ep] || e->kind == VRL_GLOBAL_GATE)
		return false;
	if (!r->reported || r->status != VRL_GLOBAL_OK || e->used_total != r->used_rep ||
	    e->unmet_total != r->unmet_rep)
		return false;
	if (vrl_lease_cooldown_publish(e->cooldown_until, r->cd_applied, now))
		return false;
	if (e->kind == VRL_GLOBAL_QUOTA || e->kind == VRL_GLOBAL_SLOTS)
		return block_kept(x, e, r) == r->share.count && e->held == r->held_rep &&
		       e->period_id == r->holders_pid && now < r->sent_at + g->lease;
	return r->expires != UINT64_MAX && r->expires > now + g->lease / 2;
}

/* Group the entries to send by endpoint into calls of at most a chunk. */
static int plan(struct ctx *x)
{
	struct vrl_global *g = x->g;
	size_t n = x->b->n, at = 0, ncalls = 0, max = n / VRL_GLOBAL_CHUNK + g->nep + 1;
	struct call *calls = malloc(max * sizeof(*calls));
	uint64_t now = vrl_global_now();

	if (!calls)
		return -ENOMEM;
	for (unsigned ep = 0; ep < g->nep; ep++)
		x->full[ep] = !x->release &&
			      strcmp(g->ep[ep].epoch, g->ep[ep].full_epoch) != 0;
	for (unsigned ep = 0; ep < g->nep; ep++) {
		size_t start = at, has = 0;

		for (size_t i = 0; i < n; i++) {
			size_t k = g->order[i];

			if (g->next[i].ep != ep || x->out->r[k].status == VRL_GLOBAL_INVALID)
				continue;
			has++;
			if (!idle(x, &x->b->e[k], &g->next[i], now))
				x->byep[at++] = k;
		}
		for (size_t c = start; c < at; c += VRL_GLOBAL_CHUNK)
			calls[ncalls++] = (struct call){ .ep = ep, .first = c,
				.n = at - c < VRL_GLOBAL_CHUNK ? at - c : VRL_GLOBAL_CHUNK,
				.full = x->full[ep] && c + VRL_GLOBAL_CHUNK >= at };
		/* no key to send: a call all the same twice a term, so that this
		 * host learns of a new epoch; a full report if it has no key there */
		if (at == start && !x->release && (x->full[ep] || now >= g->ep[ep].beat_at))
			calls[ncalls++] = (struct call){ .ep = ep, .first = at, .n = 0,
							 .full = has == 0 };
		if (at > start || now >= g->ep[ep].beat_at)
			g->ep[ep].beat_at = now + g->lease / 2;
	}
	x->calls = calls;
	x->ncalls = ncalls;
	return 0;
}

/* Connect where needed, then append and write every call. */
static int send_all(struct ctx *x)
{
	struct vrl_global *g = x->g;

	for (size_t i = 0; i < x->ncalls; i++) {
		struct call *c = &x->calls[i];
		struct vrl_rconn *ep = &g->ep[c->ep];
		const char **argv;

		if (vrl_rconn_ensure(ep, vrl_global_now(), g->timeout) != 0)
			continue;
		c->t_send = vrl_global_now();
		if (encode_call(x, c) != 0 || !(argv = vrl_rargs_argv(&g->args))) {
			/* calls queued so far must not go out half a round later */
			for (unsigned e = 0; e < g->nep; e++)
				if (g->ep[e].c)
					vrl_rconn_fail(&g->ep[e], vrl_global_now(), "out of memory");
			return -ENOMEM;
		}
		if (redisAppendCommandArgv(ep->c, (int)g->args.n, argv, g->args.lens) != REDIS_OK) {
			vrl_rconn_fail(ep, vrl_global_now(), "cannot queue a call");
			continue;
		}
		c->sent = true;
		ep->calls++;
	}
	for (unsigned i = 0; i < g->nep; i++) {
		int done = 0;

		while (g->ep[i].c && !done) {
			char why[160];

			if (redisBufferWrite(g->ep[i].c, &done) == REDIS_OK)
				continue;
			snprintf(why, sizeof(why), "send: %s", g->ep[i].c->errstr);
			vrl_rconn_fail(&g->ep[i], vrl_global_now(), why);
		}
	}
	return 0;
}

static void read_all(struct ctx *x)
{
	struct vrl_global *g = x->g;

	for (size_t i = 0; i < x->ncalls; i++) {
		struct call *c = &x->calls[i];
		struct vrl_rconn *ep = &g->ep[c->ep];
		redisReply *rep = NULL;
		char why[200];
		int rc;

		if (!c->sent || !ep->c)
			continue;
		if (redisGetReply(ep->c, (void **)&rep) != REDIS_OK || !rep) {
			snprintf(why, sizeof(why), "no answer within %llu ms: %s",
				 (unsigned long long)(g->timeout / 1000000u), ep->c->errstr);
			vrl_rconn_fail(ep, vrl_global_now(), why);
			continue;
		}
		rc = reply(x, c, rep);
		freeReplyObject(rep);
		if (rc == -ENOENT || rc == -EPROTO) {
			/* a library gone (a wiped Redis) or an answer we cannot read:
			 * reconnect, which loads the library again */
			snprintf(why, sizeof(why), "%s", rc == -ENOENT ?
				 "the vrl library is gone from Redis: loading it again" :
				 ep->error[0] ? ep->error : "an answer of another shape");
			vrl_rconn_fail(ep, vrl_global_now(), why);
			ep->next_try = 0;
		}
	}
}

_Static_assert(sizeof(((struct vrl_global_endpoint_status *)0)->epoch) ==
	       sizeof(((struct vrl_rconn *)0)->epoch), "an epoch id is copied whole");
_Static_assert(sizeof(((struct vrl_global_endpoint_status *)0)->error) ==
	       sizeof(((struct vrl_rconn *)0)->error), "an error text is copied whole");

static void publish(struct ctx *x)
{
	struct vrl_global *g = x->g;
	struct vrl_global_status *st = &g->st;
	struct vrl_grec *t = g->rec;
	size_t cap = g->caprec, part = 0;

	for (size_t i = 0; i < x->b->n; i++)
		part += x->out->r[i].status == VRL_GLOBAL_PARTITIONED;
	pthread_mutex_lock(&g->stat_lock);
	g->rec = g->next;
	g->caprec = g->capnext;
	g->nrec = x->b->n;
	g->next = t;
	g->capnext = cap;
	st->rounds++;
	st->keys = x->b->n;
	st->partitioned = part;
	for (unsigned i = 0; i < g->nep; i++) {
		struct vrl_global_endpoint_status *s = &st->ep[i];
		const struct vrl_rconn *ep = &g->ep[i];

		s->up = ep->c != NULL && ep->down_since == 0;
		s->down_since = ep->down_since;
		s->rtt_last_ns = ep->rtt_last;
		s->rtt_ewma_ns = ep->rtt_ewma;
		s->rtt_max_ns = ep->rtt_max;
		s->calls = ep->calls;
		s->failures = ep->failures;
		s->keys = 0;
		memcpy(s->epoch, ep->epoch, sizeof(s->epoch));
		s->fence_left_ns = ep->fence_left_us * 1000u;
		s->lost = ep->lost;
		memcpy(s->error, ep->error, sizeof(s->error));
	}
	for (size_t i = 0; i < x->b->n; i++)
		st->ep[g->rec[i].ep].keys++;
	pthread_mutex_unlock(&g->stat_lock);
}

int vrl_global_round(struct vrl_global *g, const struct vrl_gbatch *b, struct vrl_gresults *out,
		     bool release)
{
	struct ctx x = { .g = g, .b = b, .out = out, .release = release,
			 .gen = g->gen_base + atomic_load_explicit(&g->rounds, memory_order_relaxed) + 1 };
	int rc = prepare(&x);

	if (rc == 0)
		rc = plan(&x);
	if (rc == 0)
		rc = send_all(&x);
	if (rc == 0) {
		read_all(&x);
		x.now = vrl_global_now();
		for (size_t i = 0; i < b->n; i++)
			if (!out->r[i].apply)
				unanswered(&x, i);
		out->n = b->n;
		if (!release)
			publish(&x);
	}
	free(x.calls);
	return rc;
}
