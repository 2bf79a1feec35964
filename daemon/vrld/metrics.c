/*
 * metrics.c - Prometheus exposition of a segment (see metrics.h).
 *
 * Per-limit counters. Each attached handle counts grants and denials per
 * limit index in its holder slot, for one config generation, and restarts
 * them at zero when it moves to a new generation or a new process takes the
 * slot. A Prometheus counter must not go down, so the collector remembers
 * what it last saw of each holder and, when that holder's (pid, generation)
 * changes, folds the last values into per-limit-name totals of its own.
 * What a handle counted after the last scrape before it died is lost from
 * the per-limit figures (the segment-wide vrl_granted_all_total, folded by
 * vrld's reaper, is exact).
 *
 * Concurrency: the segment is only read. Slots and holders with relaxed
 * loads (figures for display: a torn view across slots is harmless); the
 * config through vrl_snapshot_read's sequence word.
 *
 * Inside vrld, RCU (liburcu, the bulletproof flavour: the HTTP threads are
 * libmicrohttpd's, and need no registration) keeps the daemon's tick and
 * the scrapes apart:
 *   - vrld's main thread alone renders: it owns the collector's tables
 *     (seen, retired, the alert counts) and needs no lock for them.
 *   - Each render becomes a page that it publishes with an atomic
 *     exchange (MET.R1, release: readers that load the pointer see the text
 *     written before), and the page it replaces is freed by call_rcu once
 *     every reader that might hold it has left its read-side section.
 *   - A scrape copies the current page inside rcu_read_lock/unlock (MET.R2,
 *     acquire, pairs with MET.R1). It never waits for the tick, and the tick
 *     never waits for a scrape: a slow scraper cannot delay vrld.
 * A page is at most one render interval old (vrld renders every second,
 * and vrl_metrics_rendered_seconds says when).
 */
#include "metrics.h"

#include <urcu-bp.h>

#include "tsan.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "metrics_http.h"
#include "metrics_keys.h"
#include "vrl_internal.h"
#include "clock.h"
#include "unmatched.h"

#define RETIRED_MAX      256u    /* limit names whose folded totals are kept */

/* The per-limit counters of a holder, by the index used below. */
enum { C_GRANTED, C_DENIED, C_SHADOW, C_COOLDOWNS, C_WAIT_NS, NCOUNTERS };

static const _Atomic uint64_t *holder_counter(const struct vrl_seg_holder *h, unsigned c)
{
	switch (c) {
	case C_GRANTED:   return h->limit_granted;
	case C_DENIED:    return h->limit_denied;
	case C_SHADOW:    return h->limit_shadow;
	case C_COOLDOWNS: return h->limit_cooldowns;
	default:          return h->limit_wait_ns;
	}
}

/* What the collector last saw of one holder slot. */
struct seen {
	int32_t pid;
	uint64_t gen;
	uint64_t v[NCOUNTERS][VRL_MAX_LIMITS];
};

/* Counters of a limit name folded from holders that moved on, and the
 * alerts vrld drained and the keys it evicted for it (counted here alone). */
struct retired {
	char name[VRL_NAME_MAX];
	uint64_t v[NCOUNTERS];
	uint64_t alerts;
	uint64_t evictions;
};

/* Limit names of one generation, to attribute a holder's counters. */
struct gen_names {
	uint64_t gen;
	uint32_t n;
	char name[VRL_MAX_LIMITS][VRL_NAME_MAX];
};

/* One rendered exposition, published to the HTTP threads under RCU. */
struct page {
	struct rcu_head rcu;
	size_t len;
	char text[];
};

struct vrl_metrics {
	struct vrl_seg_header *h;
	struct vrl_seg_view v;          /* vrld's own layout: never the header's words */
	unsigned top;
	_Atomic(struct page *) page;    /* RCU: the latest render, NULL before one */
	struct vrl_snapshot snap;       /* the config, read at each render */
	struct gen_names cur, prev;
	struct seen *seen;              /* [v.nholders] */
	struct retired retired[RETIRED_MAX];
	unsigned nretired;
	vrl_metrics_extra_fn *extra;    /* vrl_metrics_set_extra() */
	void *extra_arg;
	struct vrl_metrics_http *http;  /* NULL: not served over HTTP */
};

/* A growing text buffer; on out of memory it goes NULL and stays so. */
struct out {
	char *buf;
	size_t len, cap;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!o->buf)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		char *more = realloc(o->buf, o->cap * 2 + (size_t)n);

		if (!more) {
			free(o->buf);
			o->buf = NULL;
			return;
		}
		o->buf = more;
		o->cap = o->cap * 2 + (size_t)n;
	}
}

static uint64_t load64(const _Atomic uint64_t *w)
{
	return atomic_load_explicit(w, memory_order_relaxed);
}

struct vrl_metrics *vrl_metrics_new(const struct vrl_seg_view *v, unsigned top)
{
	struct vrl_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->seen = calloc(v->nholders ? v->nholders : 1, sizeof(*m->seen));
	if (!m->seen) {
		free(m);
		return NULL;
	}
	m->v = *v;
	m->h = v->hdr;
	m->top = top;
	return m;
}

void vrl_metrics_set_top(struct vrl_metrics *m, unsigned top)
{
	/* read by renders, on this same thread */
	m->top = top;
}

/* ---- per-limit counters ------------------------------------------------------ */

static struct retired *retired_of(struct vrl_metrics *m, const char *name)
{
	for (unsigned i = 0; i < m->nretired; i++)
		if (strcmp(m->retired[i].name, name) == 0)
			return &m->retired[i];
	if (m->nretired == RETIRED_MAX)
		return NULL;
	memcpy(m->retired[m->nretired].name, name, VRL_NAME_MAX);
	return &m->retired[m->nretired++];
}

static const struct gen_names *names_of(const struct vrl_metrics *m, uint64_t gen)
{
	if (gen == m->cur.gen)
		return &m->cur;
	if (gen == m->prev.gen)
		return &m->prev;
	return NULL;
}

static void fold(struct vrl_metrics *m, struct seen *s)
{
	const struct gen_names *g = names_of(m, s->gen);

	for (uint32_t l = 0; g && l < g->n; l++) {
		struct retired *r = retired_of(m, g->name[l]);

		for (unsigned c = 0; r && c < NCOUNTERS; c++)
			r->v[c] += s->v[c][l];
	}
	memset(s, 0, sizeof(*s));
}

/* Note the config generation the snapshot holds, keeping the one before. */
static void track_generation(struct vrl_metrics *m)
{
	if (m->snap.generation == m->cur.gen)
		return;
	m->prev = m->cur;
	m->cur.gen = m->snap.generation;
	m->cur.n = m->snap.nlimits;
	for (uint32_t l = 0; l < m->snap.nlimits; l++)
		memcpy(m->cur.name[l], m->snap.limits[l].seg.name, VRL_NAME_MAX);
}

void vrl_metrics_note_alert(struct vrl_metrics *m, const char *name)
{
	char n[VRL_NAME_MAX];
	struct retired *r;

	snprintf(n, sizeof(n), "%s", name);
	/* the main thread alone touches the collector's tables: no lock */
	r = retired_of(m, n);
	if (r)
		r->alerts++;
}

void vrl_metrics_note_evictions(struct vrl_metrics *m, const struct vrl_seg_config *cfg,
				const uint64_t *by_limit)
{
	for (uint32_t l = 0; l < cfg->nlimits && l < VRL_MAX_LIMITS; l++) {
		struct retired *r;

		if (!by_limit[l])
			continue;
		/* the main thread alone touches the collector's tables: no lock */
		r = retired_of(m, cfg->limits[l].name);
		if (r)
			r->evictions += by_limit[l];
	}
}

/* Alerts drained and keys evicted per limit of the current config. */
static void collect_alerts(struct vrl_metrics *m, uint64_t *alerts, uint64_t *evictions)
{
	memset(alerts, 0, VRL_MAX_LIMITS * sizeof(*alerts));
	memset(evictions, 0, VRL_MAX_LIMITS * sizeof(*evictions));
	for (uint32_t l = 0; l < m->snap.nlimits; l++) {
		struct retired *r = retired_of(m, m->snap.limits[l].seg.name);

		alerts[l] = r ? r->alerts : 0;
		evictions[l] = r ? r->evictions : 0;
	}
}

/* Read every holder, fold the ones that moved on; totals by current index. */
static void collect_holders(struct vrl_metrics *m, uint64_t out[NCOUNTERS][VRL_MAX_LIMITS],
			    uint64_t *attached)
{
	const struct vrl_seg_holder *hs = m->v.holders;

	*attached = 0;
	for (uint64_t i = 0; i < m->v.nholders; i++) {
		struct seen *s = &m->seen[i];
		int32_t pid = atomic_load_explicit(&hs[i].pid, memory_order_relaxed);
		uint64_t gen = load64(&hs[i].config_gen);

		if (s->pid && (s->pid != pid || s->gen != gen))
			fold(m, s);
		if (pid <= 0)
			continue;
		(*attached)++;
		s->pid = pid;
		s->gen = gen;
		for (unsigned c = 0; c < NCOUNTERS; c++)
			for (unsigned l = 0; l < VRL_MAX_LIMITS; l++)
				s->v[c][l] = load64(&holder_counter(&hs[i], c)[l]);
	}
	memset(out, 0, NCOUNTERS * VRL_MAX_LIMITS * sizeof(out[0][0]));
	for (uint32_t l = 0; l < m->snap.nlimits; l++) {
		struct retired *r = retired_of(m, m->snap.limits[l].seg.name);

		for (unsigned c = 0; r && c < NCOUNTERS; c++)
			out[c][l] = r->v[c];
	}
	/* live holders, attributed by the names of their own generation */
	for (uint64_t i = 0; i < m->v.nholders; i++) {
		const struct gen_names *g = m->seen[i].pid ? names_of(m, m->seen[i].gen) : NULL;

		for (uint32_t l = 0; g && l < g->n; l++)
			for (uint32_t c = 0; c < m->snap.nlimits; c++)
				if (strcmp(g->name[l], m->snap.limits[c].seg.name) == 0)
					for (unsigned k = 0; k < NCOUNTERS; k++)
						out[k][c] += m->seen[i].v[k][l];
	}
}

/* A label value: printable ASCII, with \, " and newline escaped. */
static void put_label(struct out *o, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\\' || c == '"')
			put(o, "\\%c", c);
		else if (c == '\n')
			put(o, "\\n");
		else
			put(o, "%c", c >= 0x20 && c < 0x7f ? c : '?');
	}
}

/* ---- rendering ------------------------------------------------------------------ */

static void family(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void per_limit(struct out *o, const struct vrl_snapshot *cfg, const char *name,
		      const char *type, const char *help, const uint64_t *v)
{
	family(o, name, type, help);
	for (uint32_t l = 0; l < cfg->nlimits; l++) {
		put(o, "%s{limit=\"", name);
		put_label(o, cfg->limits[l].seg.name);
		put(o, "\"} %llu\n", (unsigned long long)v[l]);
	}
}

/* Nanoseconds per limit, shown in seconds (Prometheus' base unit), exactly. */
static void per_limit_seconds(struct out *o, const struct vrl_snapshot *cfg, const char *name,
			      const char *help, const uint64_t *ns)
{
	family(o, name, "counter", help);
	for (uint32_t l = 0; l < cfg->nlimits; l++) {
		put(o, "%s{limit=\"", name);
		put_label(o, cfg->limits[l].seg.name);
		put(o, "\"} %llu.%09llu\n", (unsigned long long)(ns[l] / 1000000000u),
		    (unsigned long long)(ns[l] % 1000000000u));
	}
}

static void segment_wide(struct out *o, const struct vrl_seg_view *v, uint64_t live,
			 uint64_t unattributed, uint64_t attached, uint64_t gen)
{
	const struct vrl_seg_header *h = v->hdr;
	int32_t pid = atomic_load_explicit(&h->daemon_pid, memory_order_relaxed);
	uint64_t beat = load64(&h->daemon_heartbeat_ns), now = vrl_now_ns();
	bool up = pid > 0 && beat + VRL_DAEMON_DEAD_NS > now;

	family(o, "vrl_table_slots", "gauge", "Slots of the key table.");
	put(o, "vrl_table_slots %llu\n", (unsigned long long)v->nslots);
	family(o, "vrl_table_keys_live", "gauge", "Live keys in the key table.");
	put(o, "vrl_table_keys_live %llu\n", (unsigned long long)live);
	family(o, "vrl_table_keys_unattributed", "gauge",
	       "Live keys counted under no limit: theirs left the config, or vrld has not "
	       "renumbered them since a reload.");
	put(o, "vrl_table_keys_unattributed %llu\n", (unsigned long long)unattributed);
	family(o, "vrl_table_full_total", "counter", "Key inserts refused for want of a slot.");
	put(o, "vrl_table_full_total %llu\n", (unsigned long long)load64(&h->table_full));
	family(o, "vrl_evictions_all_total", "counter", "Idle keys evicted by vrld, all limits.");
	put(o, "vrl_evictions_all_total %llu\n", (unsigned long long)load64(&h->evictions));
	family(o, "vrl_holders", "gauge", "Client handles attached with a counter slot.");
	put(o, "vrl_holders %llu\n", (unsigned long long)attached);
	family(o, "vrl_config_generation", "gauge", "Generation of the config in force.");
	put(o, "vrl_config_generation %llu\n", (unsigned long long)gen);
	family(o, "vrl_daemon_up", "gauge", "1 when vrld serves the segment and ticks.");
	put(o, "vrl_daemon_up %d\n", up ? 1 : 0);
	family(o, "vrl_build_info", "gauge", "vrld's version, as a label; always 1.");
	put(o, "vrl_build_info{version=\"%s\"} 1\n", VRL_VERSION_STRING);
}

/* Requests that matched no limit, by api: at most VRL_UNMATCHED_ROWS series
 * whatever callers send (unmatched.h); api "(other)" (no api can read so)
 * counts the apis past the table's rows, "" requests that gave none. */
static void unmatched_totals(struct out *o, const struct vrl_seg_view *v)
{
	struct vrl_unmatched_row rows[VRL_UNMATCHED_ROWS];
	unsigned n = vrl_unmatched_read(v->hdr, rows);

	family(o, "vrl_unmatched_requests_total", "counter",
	       "Requests that matched no limit, by api (counted under unmatched: warn or deny).");
	for (unsigned i = 0; i < n; i++) {
		put(o, "vrl_unmatched_requests_total{api=\"");
		put_label(o, rows[i].other ? "(other)" : rows[i].api);
		put(o, "\"} %llu\n", (unsigned long long)rows[i].count);
	}
}

static void all_totals(struct out *o, const struct vrl_seg_view *v)
{
	const struct vrl_seg_header *h = v->hdr;
	const struct vrl_seg_holder *hs = v->holders;
	uint64_t g = load64(&h->retired_granted), d = load64(&h->retired_denied);

	for (uint64_t i = 0; i < v->nholders; i++) {
		if (atomic_load_explicit(&hs[i].pid, memory_order_relaxed) <= 0)
			continue;
		g += load64(&hs[i].granted);
		d += load64(&hs[i].denied);
	}
	family(o, "vrl_granted_all_total", "counter", "Acquires granted, all limits.");
	put(o, "vrl_granted_all_total %llu\n", (unsigned long long)g);
	family(o, "vrl_denied_all_total", "counter", "Acquires denied, all limits.");
	put(o, "vrl_denied_all_total %llu\n", (unsigned long long)d);
}

static void top_keys(struct out *o, const struct vrl_snapshot *cfg, const struct key_ratio *k,
		     unsigned n)
{
	family(o, "vrl_key_used_ratio", "gauge",
	       "Share of its limit a key has used (1: at it, or closed by a cooldown); "
	       "the keys nearest their limit only.");
	for (unsigned i = 0; i < n; i++) {
		put(o, "vrl_key_used_ratio{limit=\"");
		put_label(o, cfg->limits[k[i].limit].seg.name);
		put(o, "\",key=\"");
		put_label(o, k[i].label);
		put(o, "\"} %.4f\n", k[i].ratio);
	}
}

static void put_extra(struct out *o, vrl_metrics_extra_fn *fn, void *arg)
{
	size_t need;
	char *p;

	if (!o->buf)
		return;
	need = fn(arg, o->buf + o->len, o->cap - o->len);
	if (need >= o->cap - o->len) {
		if (!(p = realloc(o->buf, o->len + need + 1))) {
			free(o->buf);
			o->buf = NULL;
			return;
		}
		o->buf = p;
		o->cap = o->len + need + 1;
		need = fn(arg, o->buf + o->len, o->cap - o->len);
		if (need >= o->cap - o->len) {   /* it grew meanwhile: leave it out */
			o->buf[o->len] = '\0';
			return;
		}
	}
	o->len += need;
}

void vrl_metrics_set_extra(struct vrl_metrics *m, vrl_metrics_extra_fn *fn, void *arg)
{
	m->extra = fn;
	m->extra_arg = arg;
}

static char *render_locked(struct vrl_metrics *m, size_t *len)
{
	uint64_t counts[NCOUNTERS][VRL_MAX_LIMITS], keys[VRL_MAX_LIMITS];
	uint64_t overage[VRL_MAX_LIMITS], alerts[VRL_MAX_LIMITS];
	uint64_t evictions[VRL_MAX_LIMITS], cut[VRL_MAX_LIMITS], lowest[VRL_MAX_LIMITS];
	uint64_t live, unattributed, attached;
	struct key_ratio *best = calloc(m->top ? m->top : 1, sizeof(*best));
	struct out o = { .buf = malloc(16384), .cap = 16384 };
	unsigned nbest;

	if (!best || !o.buf || vrl_snapshot_read(&m->v, &m->snap) != 0) {
		free(best);
		free(o.buf);
		return NULL;
	}
	o.buf[0] = '\0';
	track_generation(m);
	collect_holders(m, counts, &attached);
	collect_alerts(m, alerts, evictions);
	vrl_metrics_scan_keys(&m->v, &m->snap, m->top, keys, overage, &live, &unattributed, best,
			      &nbest);
	per_limit(&o, &m->snap, "vrl_granted_total", "counter",
		  "Acquires granted, by the limit that took part.", counts[C_GRANTED]);
	per_limit(&o, &m->snap, "vrl_denied_total", "counter",
		  "Acquires denied, by the limit that denied.", counts[C_DENIED]);
	per_limit(&o, &m->snap, "vrl_shadow_denied_total", "counter",
		  "Acquires granted that the limit, in shadow mode, would have denied.",
		  counts[C_SHADOW]);
	per_limit(&o, &m->snap, "vrl_cooldowns_total", "counter",
		  "Cooldowns set on the limit's keys (Retry-After, vrl_cooldown).",
		  counts[C_COOLDOWNS]);
	per_limit_seconds(&o, &m->snap, "vrl_wait_seconds_total",
			  "Time waiting acquires slept for the limit, in seconds.",
			  counts[C_WAIT_NS]);
	per_limit(&o, &m->snap, "vrl_keys", "gauge", "Live keys of the limit.", keys);
	per_limit(&o, &m->snap, "vrl_overage_units", "gauge",
		  "Units soft quota keys counted past the limit this period (0: not a soft quota).",
		  overage);
	per_limit(&o, &m->snap, "vrl_alerts_total", "counter",
		  "Alert thresholds crossed, as vrld drained them.", alerts);
	per_limit(&o, &m->snap, "vrl_evictions_total", "counter",
		  "Idle keys of the limit evicted by vrld (since vrld started).", evictions);
	vrl_metrics_scan_adaptive(&m->v, &m->snap, cut, lowest);
	per_limit(&o, &m->snap, "vrl_adaptive_cut_keys", "gauge",
		  "Keys of an adaptive limit paced below its figure after a 429.", cut);
	family(&o, "vrl_adaptive_lowest_ratio", "gauge",
	       "Lowest effective rate among the limit's keys, a share of its figure (1: none cut).");
	for (uint32_t l = 0; l < m->snap.nlimits; l++) {
		put(&o, "vrl_adaptive_lowest_ratio{limit=\"");
		put_label(&o, m->snap.limits[l].seg.name);
		put(&o, "\"} %llu.%03llu\n", (unsigned long long)(lowest[l] / 1000),
		    (unsigned long long)(lowest[l] % 1000));
	}
	all_totals(&o, &m->v);
	unmatched_totals(&o, &m->v);
	segment_wide(&o, &m->v, live, unattributed, attached, m->snap.generation);
	top_keys(&o, &m->snap, best, nbest);
	if (m->extra)
		put_extra(&o, m->extra, m->extra_arg);
	free(best);
	*len = o.buf ? o.len : 0;
	return o.buf;
}

static void free_page(struct rcu_head *head)
{
	struct page *pg = caa_container_of(head, struct page, rcu);

	tsan_acquire(pg);   /* after every reader's tsan_release and the writer's: the grace period */
	free(pg);
}

int vrl_metrics_update(struct vrl_metrics *m)
{
	size_t len;
	char *text = render_locked(m, &len);
	struct page *pg, *old;
	uint64_t now;

	if (!text)
		return -ENOMEM;
	now = vrl_wall_ns();
	pg = malloc(sizeof(*pg) + len + 256);
	if (!pg) {
		free(text);
		return -ENOMEM;
	}
	memcpy(pg->text, text, len);
	pg->len = len + (size_t)snprintf(pg->text + len, 256,
		"# HELP vrl_metrics_rendered_seconds When vrld rendered this page (Unix time).\n"
		"# TYPE vrl_metrics_rendered_seconds gauge\n"
		"vrl_metrics_rendered_seconds %.6f\n",
		(double)now / 1e9);
	free(text);
	/* MET.R1 release: readers that load the pointer see the page written above */
	old = atomic_exchange_explicit(&m->page, pg, memory_order_release);
	if (old) {
		/* for TSan: the page's writer is done with it as well, so the
		 * free comes after what it wrote even if no reader saw it */
		tsan_release(old);
		call_rcu(&old->rcu, free_page);
	}
	return 0;
}

char *vrl_metrics_render(struct vrl_metrics *m, size_t *len)
{
	struct page *pg;
	char *text = NULL;

	*len = 0;
	rcu_read_lock();
	/* MET.R2 acquire: pairs with MET.R1 */
	pg = atomic_load_explicit(&m->page, memory_order_acquire);
	if (pg && (text = malloc(pg->len + 1))) {
		memcpy(text, pg->text, pg->len);
		text[pg->len] = '\0';
		*len = pg->len;
	}
	if (pg)
		tsan_release(pg);
	rcu_read_unlock();
	return text;
}

/* ---- the textfile ------------------------------------------------------------------ */

int vrl_metrics_textfile(struct vrl_metrics *m, const char *path, mode_t mode, char *why,
			size_t whylen)
{
	size_t len;
	char *text = vrl_metrics_render(m, &len);
	int rc;

	if (!text) {
		snprintf(why, whylen, "cannot write %s: no page rendered yet, or out of memory",
			 path);
		return -ENOMEM;
	}
	/* node_exporter reads the whole old file or the whole new one */
	rc = vrl_afile_write(path, text, len, mode, why, whylen);
	free(text);
	return rc;
}

/* ---- HTTP (metrics_http.c) ----------------------------------------------------- */

int vrl_metrics_serve(struct vrl_metrics *m, const char *addr, unsigned *port, char *why,
		      size_t whylen)
{
	return vrl_metrics_http_start(m, addr, port, &m->http, why, whylen);
}

void vrl_metrics_free(struct vrl_metrics *m)
{
	if (!m)
		return;
	vrl_metrics_http_stop(m->http);
	/* no reader is left once the HTTP threads are gone: the last page
	 * goes now; pages already handed to call_rcu free themselves (their
	 * callback touches nothing of @m) */
	free(atomic_load_explicit(&m->page, memory_order_relaxed));
	free(m->seen);
	free(m);
}
