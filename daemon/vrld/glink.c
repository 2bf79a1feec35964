/*
 * glink.c - vrld's link to the multi-host engine (glink.h).
 *
 * The engine's thread owns the Redis connections; this file runs on the
 * main loop: it submits the tick's global keys (vrl_global_submit copies
 * them and never waits on Redis) and collects the latest round's answers
 * (vrl_global_collect, likewise). No limit is held globally yet (the
 * config refuses scope: global by kind), so a host's set of global keys is
 * empty: the engine still calls every endpoint twice a lease term, which
 * tells the host of a Redis that cannot be reached, refuses vrl.lua, or
 * lost its data, and the log says so once per change.
 */
#include "glink.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int vrld_glink_start(struct vrld_glink *k, const struct vrl_daemon_config *dc,
		     vrld_log_fn *log)
{
	const struct vrl_global_settings *gs = &dc->global;
	const char *eps[VRL_GLOBAL_ENDPOINTS_MAX];
	struct vrl_global_config cfg = { 0 };
	char err[256];
	int rc;

	memset(k, 0, sizeof(*k));
	k->log = log;
	if (!gs->on)
		return 0;
	for (unsigned i = 0; i < gs->nredis; i++)
		eps[i] = gs->redis[i];
	cfg.redis = eps;
	cfg.nredis = gs->nredis;
	cfg.host = gs->host[0] ? gs->host : NULL;
	cfg.lease_ns = gs->lease_ns;
	cfg.hosts = gs->hosts;
	cfg.on_partition = gs->static_partition ? VRL_GLOBAL_STATIC : VRL_GLOBAL_DENY;
	rc = vrl_global_start(&cfg, &k->g, err, sizeof(err));
	if (rc != 0) {
		log("error", "msg=\"refusing to start: the global engine did not start\" "
		    "error=\"%s\"", rc == -EINVAL ? err : strerror(-rc));
		k->g = NULL;
		return -1;
	}
	k->nep = gs->nredis;
	for (unsigned i = 0; i < gs->nredis; i++)
		log("info", "msg=\"global: holding leases through Redis\" redis=\"%s\" "
		    "lease_ms=%llu on_partition=%s", gs->redis[i],
		    (unsigned long long)(gs->lease_ns / 1000000u),
		    gs->static_partition ? "static" : "deny");
	return 0;
}

static void log_endpoints(struct vrld_glink *k)
{
	struct vrl_global_status st;

	vrl_global_status(k->g, &st);
	for (size_t i = 0; i < st.nendpoints && i < VRL_GLOBAL_ENDPOINTS_MAX; i++) {
		const struct vrl_global_endpoint_status *e = &st.ep[i];

		if (e->up && !k->was_up[i]) {
			k->log("info", "msg=\"global: Redis reachable, vrl library in place\" "
			       "redis=\"%s\" epoch=\"%s\" rtt_us=%llu", e->name, e->epoch,
			       (unsigned long long)(e->rtt_last_ns / 1000u));
			k->said[i][0] = '\0';
		} else if (!e->up && e->error[0] && strcmp(e->error, k->said[i]) != 0) {
			/* a refused library needs an operator; a lost connection
			 * comes back by itself */
			bool refused = strstr(e->error, "refused") || strstr(e->error, "upgrade");

			k->log(refused ? "error" : "warn", "msg=\"global: Redis %s\" redis=\"%s\" "
			       "error=\"%s\"%s", refused ? "refuses vrl's library" : "unreachable",
			       e->name, e->error, refused ? " hint=\"Redis 7 or later with "
			       "FUNCTION LOAD allowed to vrld's user, and no other library "
			       "defining vrl_* functions\"" : "");
			snprintf(k->said[i], sizeof(k->said[i]), "%s", e->error);
		}
		k->was_up[i] = e->up;
	}
}

void vrld_glink_tick(struct vrld_glink *k)
{
	const struct vrl_global_result *r;
	uint64_t rounds;

	if (!k->g)
		return;
	/* every global key, every tick: none yet (see above); -ENOMEM keeps
	 * the batch before, and an empty one is all it could be */
	(void)vrl_global_submit(k->g, NULL, 0);
	(void)vrl_global_collect(k->g, &r);
	rounds = vrl_global_rounds(k->g);
	if (rounds != k->rounds) {
		k->rounds = rounds;
		log_endpoints(k);
	}
}

void vrld_glink_stop(struct vrld_glink *k)
{
	if (!k->g)
		return;
	/* no key holds a share to give back */
	vrl_global_stop(k->g, NULL, 0);
	k->g = NULL;
}

bool vrld_glink_needs_restart(const struct vrl_daemon_config *cur,
			      const struct vrl_daemon_config *next, char *why, size_t len)
{
	const struct vrl_global_settings *a = &cur->global, *b = &next->global;
	bool same = a->on == b->on && a->nredis == b->nredis && strcmp(a->host, b->host) == 0 &&
		    a->lease_ns == b->lease_ns && a->static_partition == b->static_partition &&
		    a->hosts == b->hosts;

	for (unsigned i = 0; same && i < a->nredis; i++)
		same = strcmp(a->redis[i], b->redis[i]) == 0;
	if (same)
		return false;
	snprintf(why, len, "global: changed: the engine and its leases are set up at start; "
		 "restart vrld to apply it");
	return true;
}
