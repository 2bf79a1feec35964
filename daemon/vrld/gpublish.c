/*
 * gpublish.c - vrld writes the global status area (its layout: lib/
 * segment/gstatus.h; the calls: gpublish.h): the single writer of a
 * seqlock.
 *
 * Each publish makes seq odd, then GS.W0, a release fence, orders that
 * before the stores of the data (pairs with a reader's GS.R1), and GS.W1,
 * the release store of the next even value, orders the data before it
 * (pairs with GS.R0). A reader that saw the same even value around its
 * copy saw one publish whole. vrld is the only writer; a member of the
 * group that writes too only spoils what vrlctl shows (its reader checks
 * everything), and vrld never reads the area back: where it lies comes
 * from vrld's own layout (struct vrl_seg.geom), its head and rows are
 * rewritten whole at each publish. The one word it reads is seq, once at
 * attach, as a number to count on from: an adopted segment's readers
 * then never see a value again that they saw under the vrld before (a
 * torn copy taken for a whole one); any value there is harmless.
 *
 * Secrets: a key row carries the label its slot shows (label.h: values
 * hashed unless the config shows their field, a token never), and the
 * limit's name; no request value reaches this area otherwise.
 */
#include "gpublish.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "upkeep.h"

_Static_assert(VRL_GSTATUS_ENDPOINTS == VRL_GLOBAL_ENDPOINTS_MAX, "a row per endpoint");
_Static_assert(sizeof(((struct vrl_gstatus_key *)0)->id) == VRL_GLOBAL_ID_LEN, "key ids");
_Static_assert(sizeof(((struct vrl_global_endpoint_status *)0)->name) <= VRL_GSTATUS_NAME &&
	       sizeof(((struct vrl_global_endpoint_status *)0)->epoch) <= VRL_GSTATUS_EPOCH &&
	       sizeof(((struct vrl_global_endpoint_status *)0)->error) <= VRL_GSTATUS_ERROR,
	       "endpoint strings fit their rows");
_Static_assert(VRL_GLOBAL_HOST_MAX < VRL_GSTATUS_HOST, "a host id fits");

void vrld_gstatus_attach(struct vrld_gstatus *gs, const struct vrl_seg *seg,
			 const struct vrl_global_settings *s)
{
	/* @gs is zeroed (glink's start): no memset here, which the metrics
	 * thread could see half done */
	pthread_mutex_init(&gs->lock, NULL);
	/* release: the lock is initialised before the metrics thread uses it */
	atomic_store_explicit(&gs->ready, true, memory_order_release);
	if (!s->on || seg->geom.gstatus_off == 0 ||
	    seg->geom.gstatus_off + VRL_GSTATUS_BYTES > seg->geom.size)
		return;
	gs->area = (struct vrl_gstatus_area *)((char *)seg->hdr + seg->geom.gstatus_off);
	gs->seq = (atomic_load_explicit(&gs->area->seq, memory_order_relaxed) | 1u) + 1u;
	if (s->host[0])
		snprintf(gs->host, sizeof(gs->host), "%s", s->host);
	else if (gethostname(gs->host, sizeof(gs->host) - 1) != 0)
		snprintf(gs->host, sizeof(gs->host), "?");
	gs->lease_ns = s->lease_ns;
	gs->static_partition = s->static_partition;
}

/* Copy string @s into field @dst of @len bytes, cut and NUL-padded. */
static void put_str(char *dst, size_t len, const char *s)
{
	size_t n = s ? strnlen(s, len - 1) : 0;

	memcpy(dst, s ? s : "", n);
	memset(dst + n, 0, len - n);
}

static void put_ep(struct vrl_gstatus_ep *o, const struct vrl_global_endpoint_status *e)
{
	put_str(o->name, sizeof(o->name), e->name);
	put_str(o->epoch, sizeof(o->epoch), e->epoch);
	put_str(o->error, sizeof(o->error), e->error);
	o->up = e->up;
	o->lost = e->lost;
	o->down_since = e->down_since;
	o->rtt_last_ns = e->rtt_last_ns;
	o->rtt_ewma_ns = e->rtt_ewma_ns;
	o->rtt_max_ns = e->rtt_max_ns;
	o->calls = e->calls;
	o->failures = e->failures;
	o->keys = e->keys;
	o->fence_left_ns = e->fence_left_ns;
	memset(o->reserved, 0, sizeof(o->reserved));
}

static void put_key(struct vrl_gstatus_key *o, const struct vrld_gstatus_row *r)
{
	memcpy(o->id, r->id, sizeof(o->id));
	put_str(o->limit, sizeof(o->limit), r->limit);
	put_str(o->label, sizeof(o->label), r->label);
	o->kind = (uint32_t)r->kind;
	o->status = (uint32_t)r->ks.status;
	o->endpoint = r->ks.endpoint;
	o->reserved0 = 0;
	o->rate = r->ks.share.rate;
	o->burst = r->ks.share.burst;
	o->count = r->ks.share.count;
	o->expires = r->ks.expires;
	o->renewals = r->ks.renewals;
	memset(o->reserved, 0, sizeof(o->reserved));
}

double vrld_gstatus_ratio(const struct vrld_gstatus_row *r)
{
	uint64_t whole;

	if (r->kind == VRL_GLOBAL_RATE) {
		whole = vrl_global_rate_units(r->count, r->period_ns);
		return whole ? (double)r->ks.share.rate / (double)whole : 0.0;
	}
	if (r->kind == VRL_GLOBAL_GATE || r->count == 0)
		return 0.0;
	return (double)r->ks.share.count / (double)r->count;
}

/* The per-limit sums of @rows, then swapped in for the metrics thread. */
static void sum_limits(struct vrld_gstatus *gs, const struct vrld_gstatus_row *rows, size_t n)
{
	struct vrld_gstatus_limit sums[VRL_MAX_LIMITS];
	size_t nl = 0;

	for (size_t i = 0; i < n; i++) {
		const char *name = rows[i].limit ? rows[i].limit : "";
		size_t l = 0;

		while (l < nl && strncmp(sums[l].name, name, sizeof(sums[l].name) - 1) != 0)
			l++;
		if (l == nl) {
			if (nl == VRL_MAX_LIMITS)
				continue;
			memset(&sums[nl], 0, sizeof(sums[nl]));
			put_str(sums[nl].name, sizeof(sums[nl].name), name);
			nl++;
		}
		sums[l].keys++;
		sums[l].ratio_sum += vrld_gstatus_ratio(&rows[i]);
	}
	pthread_mutex_lock(&gs->lock);
	memcpy(gs->limits, sums, nl * sizeof(sums[0]));
	gs->nlimits = nl;
	pthread_mutex_unlock(&gs->lock);
}

void vrld_gstatus_publish(struct vrld_gstatus *gs, const struct vrl_global_status *st,
			  const struct vrld_gstatus_row *rows, size_t n, uint64_t now)
{
	struct vrl_gstatus_area *a = gs->area;
	size_t shown = n < VRL_GSTATUS_KEYS ? n : VRL_GSTATUS_KEYS;
	size_t neps = st->nendpoints < VRL_GSTATUS_ENDPOINTS ? st->nendpoints :
		      VRL_GSTATUS_ENDPOINTS;
	uint64_t seq;

	if (atomic_load_explicit(&gs->ready, memory_order_relaxed))
		sum_limits(gs, rows, n);
	if (!a)
		return;
	/* vrld is the only writer: one past the even value it wrote last */
	seq = gs->seq | 1u;
	gs->seq = seq + 1;
	atomic_store_explicit(&a->seq, seq, memory_order_relaxed);
	/* GS.W0: odd before the data (pairs with GS.R1) */
	atomic_thread_fence(memory_order_release);
	a->magic = VRL_GSTATUS_MAGIC;
	a->format = VRL_GSTATUS_FORMAT;
	a->on_partition = gs->static_partition ? 1u : 0u;
	a->published_ns = now;
	a->publishes = ++gs->publishes;
	a->lease_ns = gs->lease_ns;
	put_str(a->host, sizeof(a->host), gs->host);
	a->rounds = st->rounds;
	a->keys = st->keys;
	a->partitioned = st->partitioned;
	a->keys_total = n;
	a->nendpoints = (uint32_t)neps;
	a->nkeys = (uint32_t)shown;
	memset(a->reserved, 0, sizeof(a->reserved));
	for (size_t i = 0; i < neps; i++)
		put_ep(&a->ep[i], &st->ep[i]);
	for (size_t i = 0; i < shown; i++)
		put_key(&a->key[i], &rows[i]);
	/* GS.W1 release: the data before the even value (pairs with GS.R0) */
	atomic_store_explicit(&a->seq, seq + 1, memory_order_release);
}

void vrld_gstatus_tick(struct vrld_gstatus *gs, struct vrl_global *g,
		       const struct vrld_gstatus_row *rows, size_t n)
{
	struct vrl_global_status st;

	if (!g)
		return;
	vrl_global_status(g, &st);
	vrld_gstatus_publish(gs, &st, rows, n, vrl_mono_ns());
}

/* ---- metrics: per limit, never per key (keys are many, and secret) ---- */

struct gbuf {
	char *buf;
	size_t cap, len;
};

static void gput(struct gbuf *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void gput(struct gbuf *m, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(m->len < m->cap ? m->buf + m->len : NULL,
		      m->len < m->cap ? m->cap - m->len : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		m->len += (size_t)n;
}

/* A limit name as a label value: printable ASCII, \ and " escaped. */
static void glabel(struct gbuf *m, const char *s)
{
	for (size_t i = 0; i < VRL_NAME_MAX && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\\' || c == '"')
			gput(m, "\\%c", c);
		else
			gput(m, "%c", c >= 0x20 && c < 0x7f ? c : '?');
	}
}

size_t vrld_gstatus_metrics(struct vrld_gstatus *gs, char *buf, size_t cap)
{
	struct gbuf m = { .buf = buf, .cap = cap };

	if (cap)
		buf[0] = '\0';
	/* acquire: pairs with attach's release, the lock is initialised */
	if (!atomic_load_explicit(&gs->ready, memory_order_acquire))
		return 0;
	pthread_mutex_lock(&gs->lock);
	if (gs->nlimits) {
		gput(&m, "# HELP vrl_global_keys Global keys this host holds, by limit.\n"
		     "# TYPE vrl_global_keys gauge\n");
		for (size_t i = 0; i < gs->nlimits; i++) {
			gput(&m, "vrl_global_keys{limit=\"");
			glabel(&m, gs->limits[i].name);
			gput(&m, "\"} %llu\n", (unsigned long long)gs->limits[i].keys);
		}
		gput(&m, "# HELP vrl_global_share_ratio This host's share of each global key "
		     "as a fraction of the limit, averaged over the limit's keys.\n"
		     "# TYPE vrl_global_share_ratio gauge\n");
		for (size_t i = 0; i < gs->nlimits; i++) {
			gput(&m, "vrl_global_share_ratio{limit=\"");
			glabel(&m, gs->limits[i].name);
			gput(&m, "\"} %.6f\n", gs->limits[i].keys ?
			     gs->limits[i].ratio_sum / (double)gs->limits[i].keys : 0.0);
		}
	}
	pthread_mutex_unlock(&gs->lock);
	return m.len;
}
