/*
 * operator.c - an operator's calls to vrl.lua, made by `vrld
 * --forget-host` outside the running daemon: vrld's program is still the
 * only client of Redis, and these calls go to every endpoint of the
 * config, once, synchronously, with the engine's command timeout.
 *
 * Forgetting a host (vrl_forget) is the way out when a host that held
 * quota or slots units will never report again: after a Redis that lost
 * its data, a counter opens only once every host known to hold units has
 * reported, and a dead host never does. Its allocations that Redis still
 * counts stay counted; what it consumed before a wipe is unknown to Redis
 * and is not counted again: the operator accepts that, by name, and the
 * host is back the moment it calls again.
 */
#include "engine.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"

static size_t say(char *out, size_t len, size_t at, const char *fmt, const char *a,
		  const char *b)
{
	int n;

	if (at >= len)
		return at;
	n = snprintf(out + at, len - at, fmt, a, b);
	return n < 0 ? at : at + (size_t)n;
}

int vrl_global_forget(const struct vrl_global_config *c, const char *host, char *out,
		      size_t len)
{
	uint64_t lease = c->lease_ns ? c->lease_ns : VRL_GLOBAL_LEASE_DEFAULT_NS;
	uint64_t timeout = c->timeout_ns ? c->timeout_ns : lease / 4;
	const char *prefix = c->prefix ? c->prefix : "vrl:";
	size_t at = 0;
	int rc = 0;

	if (len)
		out[0] = '\0';
	if (!vrl_global_host_ok(host)) {
		snprintf(out, len, "host \"%s\": use 1 to %u of A-Z a-z 0-9 . _ -\n", host,
			 VRL_GLOBAL_HOST_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < c->nredis; i++) {
		struct vrl_rconn r;
		char err[256], key[96];
		redisReply *rep;

		memset(&r, 0, sizeof(r));
		if (vrl_rconn_parse(&r, c->redis[i], err, sizeof(err)) != 0) {
			at = say(out, len, at, "redis %s: %s\n", c->redis[i], err);
			rc = -EINVAL;
			continue;
		}
		if (vrl_rconn_ensure(&r, vrl_mono_ns(), timeout) != 0) {
			at = say(out, len, at, "redis %s: %s\n", r.name, r.error);
			vrl_rconn_close(&r);
			rc = -EIO;
			continue;
		}
		snprintf(key, sizeof(key), "%s%u:e", prefix, vrl_global_lua_layout);
		rep = redisCommand(r.c, "FCALL vrl_forget 1 %s %s", key, host);
		if (!rep || rep->type == REDIS_REPLY_ERROR) {
			at = say(out, len, at, "redis %s: vrl_forget: %s\n", r.name,
				 rep ? rep->str : (r.c->errstr[0] ? r.c->errstr : "no answer"));
			rc = -EIO;
		} else {
			at = say(out, len, at, "redis %s: host %s forgotten\n", r.name, host);
		}
		if (rep)
			freeReplyObject(rep);
		vrl_rconn_close(&r);
	}
	return rc;
}
