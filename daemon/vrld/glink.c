/*
 * glink.c - vrld's link to the multi-host engine (glink.h).
 *
 * The engine's thread owns the Redis connections; this file runs on the
 * main loop: it submits the tick's global keys (vrl_global_submit copies
 * them and never waits on Redis) and collects the latest round's answers
 * (vrl_global_collect, likewise), and applies them to the keys' share
 * words (gkeys.c has the steps and why they keep invariant 1). With no
 * global key the batch is empty: the engine still calls every endpoint
 * twice a lease term, which tells the host of a Redis that cannot be
 * reached, refuses vrl.lua, or lost its data, and the log says so once
 * per change.
 */
#include "glink.h"
#include "clock.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void vrld_glink_config(const struct vrl_global_settings *gs, struct vrl_global_config *cfg,
		       const char *eps[VRL_GLOBAL_ENDPOINTS_MAX])
{
	memset(cfg, 0, sizeof(*cfg));
	for (unsigned i = 0; i < gs->nredis && i < VRL_GLOBAL_ENDPOINTS_MAX; i++)
		eps[i] = gs->redis[i];
	cfg->redis = eps;
	cfg->nredis = gs->nredis;
	cfg->host = gs->host[0] ? gs->host : NULL;
	cfg->lease_ns = gs->lease_ns;
	cfg->hosts = gs->hosts;
	cfg->on_partition = gs->static_partition ? VRL_GLOBAL_STATIC : VRL_GLOBAL_DENY;
}

int vrld_glink_start(struct vrld_glink *k, const struct vrl_daemon_config *dc,
		     vrld_log_fn *log)
{
	const struct vrl_global_settings *gs = &dc->global;
	const char *eps[VRL_GLOBAL_ENDPOINTS_MAX];
	struct vrl_global_config cfg;
	char err[256];
	int rc;

	memset(k, 0, sizeof(*k));
	k->log = log;
	if (!gs->on)
		return 0;
	vrld_glink_config(gs, &cfg, eps);
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

/*
 * The tick's global keys as vrlctl global shows them: the limit, the
 * slot's label (as label.h made it: secrets hashed), the global figures
 * and the engine's status of the key. Returns how many (0 when memory
 * runs short: the area then shows none this tick).
 */
static size_t key_rows(struct vrld_glink *k, const struct vrl_seg *s)
{
	const struct vrld_gkeys *g = &k->keys;

	if (g->n > k->nrows) {
		void *r = realloc(k->rows, g->n * sizeof(*k->rows));
		void *l = r ? realloc(k->labels, g->n * sizeof(*k->labels)) : NULL;

		if (r)
			k->rows = r;
		if (l)
			k->labels = l;
		if (!r || !l)
			return 0;
		k->nrows = g->n;
	}
	for (size_t i = 0; i < g->n; i++) {
		const struct vrld_gkey *gk = &g->k[g->slot_of[i]];
		struct vrld_gstatus_row *r = &k->rows[i];

		memset(r, 0, sizeof(*r));
		memcpy(r->id, gk->id, sizeof(r->id));
		r->kind = gk->kind ? gk->kind : VRL_GLOBAL_RATE;
		r->limit = gk->limit;
		/* data a group member may have written: a terminated copy */
		memcpy(k->labels[i], s->view.slots[g->slot_of[i]].label, VRL_LABEL_MAX);
		k->labels[i][VRL_LABEL_MAX - 1] = '\0';
		r->label = k->labels[i];
		r->count = gk->count;
		r->period_ns = gk->period_ns;
		if (vrl_global_key(k->g, gk->id, &r->ks) != 0)
			memset(&r->ks, 0, sizeof(r->ks));
	}
	return g->n;
}

void vrld_glink_tick(struct vrld_glink *k, struct vrl_seg *s)
{
	const struct vrl_global_result *r;
	uint64_t rounds;
	size_t m, nrows;

	if (!k->g)
		return;
	/* every global key, every tick; -ENOMEM (of the scan or the submit)
	 * keeps the batch before: its keys' leases go on, none is dropped */
	if (vrld_gkeys_scan(&k->keys, s, vrl_mono_ns()) == 0)
		(void)vrl_global_submit(k->g, k->keys.e, k->keys.n);
	m = vrl_global_collect(k->g, &r);
	if (m)
		vrld_gkeys_apply(&k->keys, s, r, m, vrl_mono_ns());
	rounds = vrl_global_rounds(k->g);
	if (rounds != k->rounds) {
		k->rounds = rounds;
		log_endpoints(k);
	}
	/* for vrlctl global: the endpoints, and every global key (the rows
	 * made first: key_rows() may move them) */
	nrows = key_rows(k, s);
	vrld_gstatus_tick(&k->gst, k->g, k->rows, nrows);
}

static void sleep_to(uint64_t at)
{
	struct timespec ts = vrl_ns_ts(at);

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

void vrld_glink_sleep(struct vrld_glink *k, struct vrl_seg *s, uint64_t period_ns)
{
	uint64_t now = vrl_mono_ns(), end = now + period_ns;

	if (!k->g || k->keys.n == 0) {
		sleep_to(end);
		return;
	}
	/* absolute steps: a late wake-up shortens the next step, never adds
	 * to the period */
	for (uint64_t at = now + VRL_SHARE_FILL_NS; at < end; at += VRL_SHARE_FILL_NS) {
		sleep_to(at);
		vrld_gkeys_fill(&k->keys, s, vrl_mono_ns());
	}
	sleep_to(end);
}

void vrld_glink_stop(struct vrld_glink *k, struct vrl_seg *s)
{
	if (!k->g)
		return;
	/* the keys clamped to none first, then their shares released */
	vrld_gkeys_clamp_all(&k->keys, s);
	vrl_global_stop(k->g, k->keys.e, k->keys.n);
	vrld_gkeys_free(&k->keys);
	free(k->rows);
	free(k->labels);
	k->rows = NULL;
	k->labels = NULL;
	k->nrows = 0;
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
