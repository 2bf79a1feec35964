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
#include "log.h"

#include <errno.h>
#include <stdarg.h>
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
		log("error", "refusing to start: the global engine did not start",
		    LOG_S("error", rc == -EINVAL ? err : strerror(-rc)), LOG_END);
		k->g = NULL;
		return -1;
	}
	k->nep = gs->nredis;
	for (unsigned i = 0; i < gs->nredis; i++)
		log("info", "global: holding leases through Redis", LOG_S("redis", gs->redis[i]),
		    LOG_U("lease_ms", gs->lease_ns / 1000000u),
		    LOG_S("on_partition", gs->static_partition ? "static" : "deny"), LOG_END);
	return 0;
}

static void log_endpoints(struct vrld_glink *k)
{
	struct vrl_global_status st;

	vrl_global_status(k->g, &st);
	for (size_t i = 0; i < st.nendpoints && i < VRL_GLOBAL_ENDPOINTS_MAX; i++) {
		const struct vrl_global_endpoint_status *e = &st.ep[i];

		if (e->up && !k->was_up[i]) {
			k->log("info", "global: Redis reachable, vrl library in place",
			       LOG_S("redis", e->name), LOG_S("epoch", e->epoch),
			       LOG_U("rtt_us", e->rtt_last_ns / 1000u), LOG_END);
			k->said[i][0] = '\0';
		} else if (!e->up && e->error[0] && strcmp(e->error, k->said[i]) != 0) {
			/* a refused library needs an operator; a lost connection
			 * (ECONNREFUSED included) comes back by itself */
			bool refused = strstr(e->error, "FUNCTION LOAD") ||
				       strstr(e->error, "Redis 7 or later") ||
				       strstr(e->error, "upgrade it");

			if (refused)
				k->log("error", "global: Redis refuses vrl's library",
				       LOG_S("redis", e->name), LOG_S("error", e->error),
				       LOG_S("hint", "Redis 7 or later with FUNCTION LOAD allowed to "
					     "vrld's user, and no other library defining vrl_* "
					     "functions"), LOG_END);
			else
				k->log("warn", "global: Redis unreachable", LOG_S("redis", e->name),
				       LOG_S("error", e->error), LOG_END);
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
	/* for vrlctl global: the endpoints, and every global key (none yet) */
	vrld_gstatus_tick(&k->gst, k->g, NULL, 0);
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

/* ---- metrics: per endpoint (at most VRL_GLOBAL_ENDPOINTS_MAX), never per key ---- */

struct mbuf {
	char *buf;
	size_t cap, len;
};

static void mput(struct mbuf *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void mput(struct mbuf *m, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(m->len < m->cap ? m->buf + m->len : NULL, m->len < m->cap ?
		      m->cap - m->len : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		m->len += (size_t)n;
}

/* An endpoint as a label value: printable ASCII, \ and " escaped. */
static void mlabel(struct mbuf *m, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\\' || c == '"')
			mput(m, "\\%c", c);
		else
			mput(m, "%c", c >= 0x20 && c < 0x7f ? c : '?');
	}
}

static void family(struct mbuf *m, const struct vrl_global_status *st, const char *name,
		   const char *type, const char *help, int what)
{
	mput(m, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	for (size_t i = 0; i < st->nendpoints && i < VRL_GLOBAL_ENDPOINTS_MAX; i++) {
		const struct vrl_global_endpoint_status *e = &st->ep[i];

		mput(m, "%s{endpoint=\"", name);
		mlabel(m, e->name);
		switch (what) {
		case 0: mput(m, "\"} %d\n", e->up ? 1 : 0); break;
		case 1: mput(m, "\"} %.6f\n", (double)e->rtt_ewma_ns / 1e9); break;
		case 2: mput(m, "\"} %llu\n", (unsigned long long)e->calls); break;
		default: mput(m, "\"} %llu\n", (unsigned long long)e->failures); break;
		}
	}
}

size_t vrld_glink_metrics(void *arg, char *buf, size_t cap)
{
	struct vrld_glink *k = arg;
	struct mbuf m = { .buf = buf, .cap = cap };
	struct vrl_global_status st;

	if (cap)
		buf[0] = '\0';
	if (!k->g)
		return 0;
	vrl_global_status(k->g, &st);
	family(&m, &st, "vrl_global_redis_up", "gauge",
	       "1 while the Redis endpoint is connected, holds vrl's library and answered the "
	       "last call.", 0);
	family(&m, &st, "vrl_global_redis_rtt_seconds", "gauge",
	       "Round-trip time of the endpoint's calls (moving average).", 1);
	family(&m, &st, "vrl_global_redis_calls_total", "counter",
	       "Lease calls sent to the endpoint.", 2);
	family(&m, &st, "vrl_global_redis_failures_total", "counter",
	       "Calls without an answer and connects that failed.", 3);
	mput(&m, "# HELP vrl_global_rounds_total Lease rounds the engine finished.\n"
	     "# TYPE vrl_global_rounds_total counter\nvrl_global_rounds_total %llu\n",
	     (unsigned long long)st.rounds);
	mput(&m, "# HELP vrl_global_partitioned_keys Global keys on the on_partition share.\n"
	     "# TYPE vrl_global_partitioned_keys gauge\nvrl_global_partitioned_keys %llu\n",
	     (unsigned long long)st.partitioned);
	m.len += vrld_gstatus_metrics(&k->gst, m.len < cap ? buf + m.len : NULL,
				      m.len < cap ? cap - m.len : 0);
	return m.len;
}
