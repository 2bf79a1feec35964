/*
 * vrl0.c - the calls of libvrl 0.1, for programs built against it: 0.1's
 * structs had no reserved room (vrl.h, "A growing ABI"), so the calls
 * taking them are kept under their VRL_0 version, converting to and from
 * the current layouts. Linked into libvrl.so only.
 *
 * An input is copied field by field into a zeroed current struct (the
 * reserved room then zero); an output is filled in a current struct, then
 * copied field by field into the caller's smaller one: nothing is read or
 * written past the 0.1 size of any struct. A NULL stays NULL, so the entry
 * checks answer as they do for the current calls.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vrl.h"

/* ---- 0.1's layouts, frozen -------------------------------------------------------- */

struct vrl0_request {
	const char *api, *endpoint, *token, *org, *vehicle, *user;
	const struct vrl_attr *attrs;
	size_t nattrs;
	uint64_t cost;
};

struct vrl0_verdict {
	int granted;
	int limit;
	const char *limit_name;
	uint64_t retry_after_ns, remaining, limit_value, reset_ns, at_ns;
	uint32_t matched, flags, kind, reserved;
	uint64_t cost, overage;
};

struct vrl0_response {
	int status;
	const struct vrl_header *headers;
	size_t nheaders;
	const char *body;
	size_t body_len;
	const char *limit;
};

struct vrl0_feedback {
	uint32_t actions;
	int limit;
	uint64_t cooldown_until_ns, server_limit, server_remaining;
	const char *ignored;
};

/* what 0.1 built on x86-64 and arm64: the test of old callers checks these too */
_Static_assert(sizeof(void *) != 8 || sizeof(struct vrl0_request) == 72, "0.1 request");
_Static_assert(sizeof(void *) != 8 || sizeof(struct vrl0_verdict) == 88, "0.1 verdict");
_Static_assert(sizeof(void *) != 8 || sizeof(struct vrl0_response) == 48, "0.1 response");
_Static_assert(sizeof(void *) != 8 || sizeof(struct vrl0_feedback) == 40, "0.1 feedback");
/* the current layouts begin as 0.1's: only room was added at the ends */
_Static_assert(offsetof(struct vrl_request, cost) == offsetof(struct vrl0_request, cost), "request");
_Static_assert(offsetof(struct vrl_verdict, overage) == offsetof(struct vrl0_verdict, overage),
	       "verdict");
_Static_assert(offsetof(struct vrl_response, limit) == offsetof(struct vrl0_response, limit),
	       "response");
_Static_assert(offsetof(struct vrl_feedback, ignored) == offsetof(struct vrl0_feedback, ignored),
	       "feedback");

/* The current request for @o in @r; NULL for NULL. */
static const struct vrl_request *request(const struct vrl0_request *o, struct vrl_request *r)
{
	if (!o)
		return NULL;
	*r = (struct vrl_request){
		.api = o->api, .endpoint = o->endpoint, .token = o->token, .org = o->org,
		.vehicle = o->vehicle, .user = o->user, .attrs = o->attrs, .nattrs = o->nattrs,
		.cost = o->cost,
	};
	return r;
}

static void verdict(const struct vrl_verdict *v, struct vrl0_verdict *o)
{
	if (!o)
		return;
	*o = (struct vrl0_verdict){
		.granted = v->granted, .limit = v->limit, .limit_name = v->limit_name,
		.retry_after_ns = v->retry_after_ns, .remaining = v->remaining,
		.limit_value = v->limit_value, .reset_ns = v->reset_ns, .at_ns = v->at_ns,
		.matched = v->matched, .flags = v->flags, .kind = v->kind,
		.cost = v->cost, .overage = v->overage,
	};
}

/* ---- the VRL_0 calls ---------------------------------------------------------------- */

int vrl__v0_acquire(vrl_client *c, const struct vrl0_request *req, struct vrl0_verdict *v);
int vrl__v0_acquire_wait(vrl_client *c, const struct vrl0_request *req, uint64_t timeout_ns,
			 struct vrl0_verdict *v);
int vrl__v0_resolve(vrl_client *c, const struct vrl0_request *req, vrl_resolved **out);
int vrl__v0_acquire_resolved(vrl_client *c, vrl_resolved *r, uint64_t cost,
			     struct vrl0_verdict *v);
int vrl__v0_cooldown(vrl_client *c, const struct vrl0_request *req, const char *limit,
		     uint64_t until_ns);
int vrl__v0_reset(vrl_client *c, const struct vrl0_request *req, const char *limit);
int vrl__v0_release(vrl_client *c, const struct vrl0_request *req, const char *limit,
		    uint64_t cost);
int vrl__v0_refund(vrl_client *c, const struct vrl0_request *req, const char *limit,
		   uint64_t cost);
int vrl__v0_observe(vrl_client *c, const struct vrl0_request *req,
		    const struct vrl0_response *resp, struct vrl0_feedback *fb);

#define VRL_ABI_BOTH(name)                                              \
	__asm__(".symver vrl__v0_" #name ", vrl_" #name "@VRL_0");      \
	__asm__(".symver vrl__v02_" #name ", vrl_" #name "@@VRL_0.2")

/*
 * The VRL_0.2 calls: the current ones (names.h), reached through a tail
 * call, since a default version can only be bound in the file that
 * defines its function. -O2 makes each one jump.
 */
int vrl__v02_acquire(vrl_client *c, const struct vrl_request *req, struct vrl_verdict *v);
int vrl__v02_acquire_wait(vrl_client *c, const struct vrl_request *req, uint64_t timeout_ns,
			  struct vrl_verdict *v);
int vrl__v02_resolve(vrl_client *c, const struct vrl_request *req, vrl_resolved **out);
int vrl__v02_acquire_resolved(vrl_client *c, vrl_resolved *r, uint64_t cost,
			      struct vrl_verdict *v);
int vrl__v02_cooldown(vrl_client *c, const struct vrl_request *req, const char *limit,
		      uint64_t until_ns);
int vrl__v02_reset(vrl_client *c, const struct vrl_request *req, const char *limit);
int vrl__v02_release(vrl_client *c, const struct vrl_request *req, const char *limit,
		     uint64_t cost);
int vrl__v02_refund(vrl_client *c, const struct vrl_request *req, const char *limit,
		    uint64_t cost);
int vrl__v02_observe(vrl_client *c, const struct vrl_request *req,
		     const struct vrl_response *resp, struct vrl_feedback *fb);

int vrl__v02_acquire(vrl_client *c, const struct vrl_request *req, struct vrl_verdict *v)
{
	return vrl_acquire(c, req, v);
}

int vrl__v02_acquire_wait(vrl_client *c, const struct vrl_request *req, uint64_t timeout_ns,
			  struct vrl_verdict *v)
{
	return vrl_acquire_wait(c, req, timeout_ns, v);
}

int vrl__v02_resolve(vrl_client *c, const struct vrl_request *req, vrl_resolved **out)
{
	return vrl_resolve(c, req, out);
}

int vrl__v02_acquire_resolved(vrl_client *c, vrl_resolved *r, uint64_t cost,
			      struct vrl_verdict *v)
{
	return vrl_acquire_resolved(c, r, cost, v);
}

int vrl__v02_cooldown(vrl_client *c, const struct vrl_request *req, const char *limit,
		      uint64_t until_ns)
{
	return vrl_cooldown(c, req, limit, until_ns);
}

int vrl__v02_reset(vrl_client *c, const struct vrl_request *req, const char *limit)
{
	return vrl_reset(c, req, limit);
}

int vrl__v02_release(vrl_client *c, const struct vrl_request *req, const char *limit,
		     uint64_t cost)
{
	return vrl_release(c, req, limit, cost);
}

int vrl__v02_refund(vrl_client *c, const struct vrl_request *req, const char *limit,
		    uint64_t cost)
{
	return vrl_refund(c, req, limit, cost);
}

int vrl__v02_observe(vrl_client *c, const struct vrl_request *req,
		     const struct vrl_response *resp, struct vrl_feedback *fb)
{
	return vrl_observe(c, req, resp, fb);
}

VRL_ABI_BOTH(acquire);
VRL_ABI_BOTH(acquire_wait);
VRL_ABI_BOTH(resolve);
VRL_ABI_BOTH(acquire_resolved);
VRL_ABI_BOTH(cooldown);
VRL_ABI_BOTH(reset);
VRL_ABI_BOTH(release);
VRL_ABI_BOTH(refund);
VRL_ABI_BOTH(observe);

int vrl__v0_acquire_wait(vrl_client *c, const struct vrl0_request *req, uint64_t timeout_ns,
			 struct vrl0_verdict *v)
{
	struct vrl_request r;
	struct vrl_verdict cur;
	int rc;

	memset(&cur, 0, sizeof(cur));
	rc = vrl_acquire_wait(c, request(req, &r), timeout_ns, v ? &cur : NULL);
	verdict(&cur, v);
	return rc;
}

int vrl__v0_acquire(vrl_client *c, const struct vrl0_request *req, struct vrl0_verdict *v)
{
	return vrl__v0_acquire_wait(c, req, 0, v);
}

int vrl__v0_resolve(vrl_client *c, const struct vrl0_request *req, vrl_resolved **out)
{
	struct vrl_request r;

	return vrl_resolve(c, request(req, &r), out);
}

int vrl__v0_acquire_resolved(vrl_client *c, vrl_resolved *r, uint64_t cost,
			     struct vrl0_verdict *v)
{
	struct vrl_verdict cur;
	int rc;

	memset(&cur, 0, sizeof(cur));
	rc = vrl_acquire_resolved(c, r, cost, v ? &cur : NULL);
	verdict(&cur, v);
	return rc;
}

int vrl__v0_cooldown(vrl_client *c, const struct vrl0_request *req, const char *limit,
		     uint64_t until_ns)
{
	struct vrl_request r;

	return vrl_cooldown(c, request(req, &r), limit, until_ns);
}

int vrl__v0_reset(vrl_client *c, const struct vrl0_request *req, const char *limit)
{
	struct vrl_request r;

	return vrl_reset(c, request(req, &r), limit);
}

int vrl__v0_release(vrl_client *c, const struct vrl0_request *req, const char *limit,
		    uint64_t cost)
{
	struct vrl_request r;

	return vrl_release(c, request(req, &r), limit, cost);
}

int vrl__v0_refund(vrl_client *c, const struct vrl0_request *req, const char *limit,
		   uint64_t cost)
{
	struct vrl_request r;

	return vrl_refund(c, request(req, &r), limit, cost);
}

int vrl__v0_observe(vrl_client *c, const struct vrl0_request *req,
		    const struct vrl0_response *resp, struct vrl0_feedback *fb)
{
	struct vrl_request r;
	struct vrl_response cur = { 0 };
	struct vrl_feedback out;
	int rc;

	if (resp)
		cur = (struct vrl_response){
			.status = resp->status, .headers = resp->headers,
			.nheaders = resp->nheaders, .body = resp->body,
			.body_len = resp->body_len, .limit = resp->limit,
		};
	rc = vrl_observe(c, request(req, &r), resp ? &cur : NULL, fb ? &out : NULL);
	if (fb)
		*fb = (struct vrl0_feedback){
			.actions = out.actions, .limit = out.limit,
			.cooldown_until_ns = out.cooldown_until_ns,
			.server_limit = out.server_limit,
			.server_remaining = out.server_remaining, .ignored = out.ignored,
		};
	return rc;
}
