/*
 * unmatched.c - the verdict on a request that matches no limit.
 *
 * The config's unmatched: policy decides (segment.h, VRL_CFG_UNMATCHED_*):
 *   allow  granted, VRL_VERDICT_NO_LIMIT, nothing else;
 *   warn   granted, NO_LIMIT | UNMATCHED, counted by api in the segment;
 *   deny   VRL_EUNMATCHED, NO_LIMIT | UNMATCHED, retry_after VRL_NEVER
 *          (no wait makes it pass: the config must change), counted.
 * The policy is the one of the config the call started with, like every
 * limit, so a reload takes effect at the next call (the reload rules).
 * Nothing is taken from any key: no limit's state changes either way.
 */
#include "client.h"

#include "unmatched.h"

int vrl__unmatched(struct vrl_client *c, const char *api, struct vrl_verdict *v)
{
	uint32_t flags = c->cfg->flags;

	v->flags |= VRL_VERDICT_NO_LIMIT;
	if (!(flags & (VRL_CFG_UNMATCHED_DENY | VRL_CFG_UNMATCHED_WARN))) {
		v->granted = 1;
		return 0;
	}
	v->flags |= VRL_VERDICT_UNMATCHED;
	vrl_unmatched_count(c->hdr, api);
	if (!(flags & VRL_CFG_UNMATCHED_DENY)) {
		v->granted = 1;
		return 0;
	}
	v->retry_after_ns = VRL_NEVER;
	return VRL_EUNMATCHED;
}
