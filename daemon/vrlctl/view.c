/*
 * view.c - the read-only commands of vrlctl: status, keys, show.
 *
 * They map the segment read-only and only load from it, so they can run
 * beside a busy pool without slowing it: every figure is a relaxed load,
 * consistent per word, not a snapshot across words. Key counts come from a
 * scan of the table, not from the approximate keys_live counter.
 */
#include "vrlctl.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "quota.h"
#include "unmatched.h"
#include "fmt.h"
#include "json_writer.h"
#include "window.h"

#define NS_PER_S UINT64_C(1000000000)

__extension__ typedef unsigned __int128 u128;

static uint64_t load64(const _Atomic uint64_t *w)
{
	return atomic_load_explicit(w, memory_order_relaxed);
}

/* ---- status ---------------------------------------------------------------- */

struct slot_counts {
	uint64_t live, pending, dead, free;
};

static void count_slots(const struct vrl_seg_view *v, struct slot_counts *sc)
{
	const struct vrl_seg_slot *s = v->slots;

	memset(sc, 0, sizeof(*sc));
	for (uint64_t i = 0; i < v->nslots; i++) {
		uint64_t t = load64(&s[i].tag);

		if (t == VRL_TAG_EMPTY || t == VRL_TAG_FREE)
			sc->free++;
		else if (!(t & VRL_TAG_LIVE))
			sc->dead++;
		else if (t & VRL_TAG_PENDING)
			sc->pending++;
		else if (load64(&s[i].state) == VRL_STATE_EVICTED)
			sc->dead++;   /* evicted, its tag not yet turned DEAD */
		else
			sc->live++;
	}
}

struct holder_sums {
	uint64_t attached, granted, denied;
	uint64_t limit_granted[VRL_MAX_LIMITS];
	uint64_t limit_denied[VRL_MAX_LIMITS];
};

/* Sum the counters of attached holders; per limit, only those of @gen. */
static void sum_holders(const struct vrl_seg_view *v, uint64_t gen, struct holder_sums *hs)
{
	const struct vrl_seg_header *h = v->hdr;
	const struct vrl_seg_holder *a = v->holders;

	memset(hs, 0, sizeof(*hs));
	hs->granted = load64(&h->retired_granted);
	hs->denied = load64(&h->retired_denied);
	for (uint64_t i = 0; i < v->nholders; i++) {
		if (atomic_load_explicit(&a[i].pid, memory_order_relaxed) == 0)
			continue;
		hs->attached++;
		hs->granted += load64(&a[i].granted);
		hs->denied += load64(&a[i].denied);
		if (load64(&a[i].config_gen) != gen)
			continue;
		for (unsigned l = 0; l < VRL_MAX_LIMITS; l++) {
			hs->limit_granted[l] += load64(&a[i].limit_granted[l]);
			hs->limit_denied[l] += load64(&a[i].limit_denied[l]);
		}
	}
}

struct daemon_state {
	int32_t pid;
	bool running;
	bool ticked;
	uint64_t age_ns;             /* since the last heartbeat */
};

static void daemon_state(const struct vrl_seg_header *h, uint64_t now, struct daemon_state *d)
{
	uint64_t hb = atomic_load_explicit(&h->daemon_heartbeat_ns, memory_order_relaxed);

	d->pid = atomic_load_explicit(&h->daemon_pid, memory_order_relaxed);
	d->running = d->pid > 0 && (kill(d->pid, 0) == 0 || errno == EPERM);
	d->ticked = hb != 0;
	d->age_ns = hb && now > hb ? now - hb : 0;
}

/* Wall-clock time the active config was compiled, if it is still @gen's. */
static uint64_t loaded_time(const struct vrl_seg_view *v, uint64_t gen)
{
	unsigned idx = atomic_load_explicit(&v->hdr->active_cfg, memory_order_acquire);
	const struct vrl_seg_config *sc = vrl_view_cfg(v, idx);

	return sc->generation == gen ? sc->loaded_realtime_ns : 0;
}

static char *fmt_utc(char *buf, size_t len, uint64_t realtime_ns, bool iso)
{
	time_t t = (time_t)(realtime_ns / NS_PER_S);
	struct tm tm;

	if (realtime_ns == 0 || !gmtime_r(&t, &tm))
		snprintf(buf, len, "unknown");
	else
		strftime(buf, len, iso ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S UTC", &tm);
	return buf;
}

/* "0.4 s": one decimal, for ages. */
static char *fmt_age(char *buf, size_t len, uint64_t ns)
{
	snprintf(buf, len, "%" PRIu64 ".%" PRIu64 " s", ns / NS_PER_S, ns % NS_PER_S / 100000000u);
	return buf;
}

static char *fmt_per(char *buf, size_t len, const struct vrl_seg_limit *l)
{
	size_t used = 0;

	buf[0] = '\0';
	for (uint32_t i = 0; i < l->nper && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? "," : "",
					 fmt_field(&l->per[i]));
	if (l->nper == 0)
		snprintf(buf, len, "-");
	return buf;
}

static char *fmt_match(char *buf, size_t len, const struct vrl_seg_limit *l)
{
	size_t used = 0;

	buf[0] = '\0';
	for (uint32_t i = 0; i < l->nmatch && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s%s%s", i ? " " : "",
					 fmt_field(&l->match[i].ref),
					 l->match[i].glob ? "~" : "=", l->match[i].pattern);
	if (l->nmatch == 0)
		snprintf(buf, len, "any");
	return buf;
}

static char *fmt_kind(char *buf, size_t len, const struct vrl_seg_limit *l)
{
	snprintf(buf, len, "%s%s%s%s", ctl_kind_name(l->kind),
		 (l->flags & VRL_LIMIT_SHADOW) ? ",shadow" : "",
		 l->kind == VRL_KIND_QUOTA && (l->flags & VRL_LIMIT_SOFT) ? ",overage" : "",
		 l->kind == VRL_KIND_SLOTS && (l->flags & VRL_LIMIT_PERSIST) ? ",persistent" : "");
	return buf;
}

/* The size of a quota ("500/month", "100 once") or slots limit ("100 held"). */
static char *fmt_size(char *buf, size_t len, const struct vrl_seg_limit *l)
{
	static const char *const cal[] = { "?", "/month", "/week", "/day", " once" };

	if (l->kind == VRL_KIND_QUOTA)
		snprintf(buf, len, "%" PRIu64 "%s%s", l->count, cal[l->calendar < 5 ? l->calendar : 0],
			 l->pool[0] ? " pooled" : "");
	else if (l->kind == VRL_KIND_SLOTS)
		snprintf(buf, len, "%" PRIu64 " held", l->count);
	else
		snprintf(buf, len, "-");
	return buf;
}

/* Everything status shows, gathered once. */
struct status {
	const struct vrl_seg_header *h;
	const struct vrl_seg_view *v;
	const struct vrl_snapshot *cfg;
	struct slot_counts sc;
	struct holder_sums hs;
	struct daemon_state d;
	uint64_t loaded_ns;
	uint64_t fill10;             /* occupied slots, tenths of a percent */
};

static void status_json_limits(struct json *j, const struct status *st)
{
	json_arr_begin(j, "limits");
	for (uint32_t i = 0; i < st->cfg->nlimits; i++) {
		const struct vrl_seg_limit *l = &st->cfg->limits[i].seg;
		char rate[64];

		json_obj_begin(j, NULL);
		json_str(j, "name", l->name);
		json_str(j, "kind", ctl_kind_name(l->kind));
		json_bool(j, "shadow", l->flags & VRL_LIMIT_SHADOW);
		if (l->kind == VRL_KIND_RATE) {
			json_str(j, "rate", fmt_rate(rate, sizeof(rate), l->count, l->period_ns));
			json_u64(j, "count", l->count);
			json_u64(j, "period_ns", l->period_ns);
			json_u64(j, "burst", l->burst);
		} else if (l->kind == VRL_KIND_QUOTA || l->kind == VRL_KIND_SLOTS) {
			json_u64(j, "count", l->count);
			if (l->kind == VRL_KIND_QUOTA)
				json_str(j, "pool", l->pool);
		}
		if (l->kind == VRL_KIND_WINDOW) {
			json_u64(j, "limit", l->count);
			json_u64(j, "window_ns", l->period_ns);
			json_u64(j, "keys", l->area_keys);
		}
		json_arr_begin(j, "per");
		for (uint32_t p = 0; p < l->nper; p++)
			json_str(j, NULL, fmt_field(&l->per[p]));
		json_arr_end(j);
		json_arr_begin(j, "match");
		for (uint32_t m = 0; m < l->nmatch; m++) {
			json_obj_begin(j, NULL);
			json_str(j, "field", fmt_field(&l->match[m].ref));
			json_str(j, "pattern", l->match[m].pattern);
			json_bool(j, "glob", l->match[m].glob);
			json_obj_end(j);
		}
		json_arr_end(j);
		json_u64(j, "granted", st->hs.limit_granted[i]);
		json_u64(j, "denied", st->hs.limit_denied[i]);
		json_obj_end(j);
	}
	json_arr_end(j);
}

static void status_json_table(struct json *j, const struct status *st)
{
	const struct vrl_seg_header *h = st->h;

	json_obj_begin(j, "keys");
	json_u64(j, "configured", st->v->keys);
	json_u64(j, "slots", st->v->nslots);
	json_u64(j, "live", st->sc.live);
	json_u64(j, "pending", st->sc.pending);
	json_u64(j, "dead", st->sc.dead);
	json_u64(j, "free", st->sc.free);
	json_pct10(j, "fill_pct", st->fill10);
	json_obj_end(j);
	json_obj_begin(j, "counters");
	json_u64(j, "inserts", load64(&h->inserts));
	json_u64(j, "table_full", load64(&h->table_full));
	json_u64(j, "evictions", load64(&h->evictions));
	json_u64(j, "abandoned", load64(&h->abandoned));
	json_u64(j, "holders_full", load64(&h->holders_full));
	json_obj_end(j);
}

static void status_json_users(struct json *j, const struct status *st)
{
	char when[64];

	json_obj_begin(j, "holders");
	json_u64(j, "attached", st->hs.attached);
	json_u64(j, "granted", st->hs.granted);
	json_u64(j, "denied", st->hs.denied);
	json_obj_end(j);
	json_obj_begin(j, "config");
	json_u64(j, "generation", st->cfg->generation);
	json_str(j, "source", st->cfg->source);
	json_str(j, "loaded", fmt_utc(when, sizeof(when), st->loaded_ns, true));
	json_u64(j, "loaded_realtime_ns", st->loaded_ns);
	json_bool(j, "fail_open", st->cfg->flags & VRL_CFG_FAIL_OPEN);
	json_obj_end(j);
	json_obj_begin(j, "daemon");
	json_bool(j, "running", st->d.running);
	json_i64(j, "pid", st->d.pid);
	if (st->d.ticked)
		json_secs(j, "heartbeat_age_s", st->d.age_ns);
	else
		json_null(j, "heartbeat_age_s");
	json_obj_end(j);
}

static const char *unmatched_policy(uint32_t flags)
{
	return (flags & VRL_CFG_UNMATCHED_DENY) ? "deny" :
	       (flags & VRL_CFG_UNMATCHED_WARN) ? "warn" : "allow";
}

/* The api a row of the unmatched table names, for display. */
static const char *unmatched_api(const struct vrl_unmatched_row *r)
{
	return r->other ? "(other)" : r->api[0] ? r->api : "(none)";
}

static void status_json_unmatched(struct json *j, const struct status *st)
{
	struct vrl_unmatched_row rows[VRL_UNMATCHED_ROWS];
	unsigned n = vrl_unmatched_read(st->h, rows);

	json_obj_begin(j, "unmatched");
	json_str(j, "policy", unmatched_policy(st->cfg->flags));
	json_arr_begin(j, "apis");
	for (unsigned i = 0; i < n; i++) {
		json_obj_begin(j, NULL);
		json_str(j, "api", unmatched_api(&rows[i]));
		json_u64(j, "count", rows[i].count);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_obj_end(j);
}

static void status_json(const struct ctl *x, const struct status *st)
{
	struct json j;

	json_init(&j, stdout);
	json_obj_begin(&j, NULL);
	json_str(&j, "segment", x->segment);
	json_u64(&j, "size", st->h->size);
	json_u64(&j, "format", st->h->format);
	status_json_table(&j, st);
	status_json_users(&j, st);
	status_json_unmatched(&j, st);
	status_json_limits(&j, st);
	json_obj_end(&j);
	json_finish(&j);
}

static void print_daemon(const struct daemon_state *d)
{
	char age[32];

	if (!d->running && d->pid <= 0) {
		printf("%-10s not running\n", "vrld:");
		return;
	}
	if (!d->running) {
		printf("%-10s not running (pid %" PRId32 " is gone)\n", "vrld:", d->pid);
		return;
	}
	if (!d->ticked) {
		printf("%-10s running pid %" PRId32 ", no tick yet\n", "vrld:", d->pid);
		return;
	}
	printf("%-10s running pid %" PRId32 ", last tick %s ago%s\n", "vrld:", d->pid,
	       fmt_age(age, sizeof(age), d->age_ns),
	       d->age_ns > VRL_DAEMON_DEAD_NS ? " (stalled?)" : "");
}

static int print_limits(const struct status *st)
{
	static const char *const head[] = { "LIMIT", "KIND", "RATE", "BURST", "PER", "MATCH",
					    "GRANTED", "DENIED" };
	struct fmt_table t;

	if (fmt_table_init(&t, 8, "lllrllrr", head) != 0)
		return -1;
	for (uint32_t i = 0; i < st->cfg->nlimits; i++) {
		const struct vrl_seg_limit *l = &st->cfg->limits[i].seg;
		char kind[32], rate[64], burst[24], per[128], match[FMT_CELL_MAX], g[24], d[24];
		bool rated = l->kind == VRL_KIND_RATE;
		bool windowed = l->kind == VRL_KIND_WINDOW;
		const char *row[] = { l->name, fmt_kind(kind, sizeof(kind), l),
				      rated || windowed ?
				      fmt_rate(rate, sizeof(rate), l->count, l->period_ns) :
				      fmt_size(rate, sizeof(rate), l),
				      burst, fmt_per(per, sizeof(per), l),
				      fmt_match(match, sizeof(match), l), g, d };

		if (rated)
			snprintf(burst, sizeof(burst), "%" PRIu64, l->burst);
		else
			snprintf(burst, sizeof(burst), "-");
		snprintf(g, sizeof(g), "%" PRIu64, st->hs.limit_granted[i]);
		snprintf(d, sizeof(d), "%" PRIu64, st->hs.limit_denied[i]);
		if (fmt_table_row(&t, row) != 0)
			break;
	}
	fmt_table_print(&t, stdout);
	fmt_table_free(&t);
	printf("(GRANTED and DENIED: handles attached now, since config generation %" PRIu64
	       ")\n", st->cfg->generation);
	return 0;
}

/* unmatched: the policy, and the requests it counted by api, most first. */
static void print_unmatched(const struct status *st)
{
	struct vrl_unmatched_row rows[VRL_UNMATCHED_ROWS], tmp;
	unsigned n = vrl_unmatched_read(st->h, rows);
	uint64_t all = 0;

	for (unsigned i = 0; i < n; i++) {
		all += rows[i].count;
		for (unsigned k = i; k > 0 && rows[k].count > rows[k - 1].count; k--) {
			tmp = rows[k];
			rows[k] = rows[k - 1];
			rows[k - 1] = tmp;
		}
	}
	printf("%-10s %s; %" PRIu64 " request%s matched no limit", "unmatched:",
	       unmatched_policy(st->cfg->flags), all, all == 1 ? "" : "s");
	for (unsigned i = 0; i < n && i < 5; i++)
		printf("%s %s %" PRIu64, i ? "," : ":", unmatched_api(&rows[i]), rows[i].count);
	printf("%s\n", n > 5 ? ", ..." : "");
}

static void status_human(const struct ctl *x, const struct status *st)
{
	const struct vrl_seg_header *h = st->h;
	char size[32], when[64];

	printf("%-10s %s (%s, %" PRIu64 " bytes, format %" PRIu32 ")\n", "segment:", x->segment,
	       fmt_bytes(size, sizeof(size), st->v->size), st->v->size, h->format);
	printf("%-10s %" PRIu64 " live of %" PRIu64 " configured; %" PRIu64 " slots: %" PRIu64
	       " pending, %" PRIu64 " dead, %" PRIu64 " free (%" PRIu64 ".%" PRIu64 "%% full)\n",
	       "keys:", st->sc.live, st->v->keys, st->v->nslots, st->sc.pending, st->sc.dead,
	       st->sc.free, st->fill10 / 10, st->fill10 % 10);
	printf("%-10s inserts %" PRIu64 ", table full %" PRIu64 ", evictions %" PRIu64
	       ", abandoned %" PRIu64 "\n", "table:", load64(&h->inserts),
	       load64(&h->table_full), load64(&h->evictions), load64(&h->abandoned));
	printf("%-10s %" PRIu64 " attached; granted %" PRIu64 ", denied %" PRIu64 "\n",
	       "holders:", st->hs.attached, st->hs.granted, st->hs.denied);
	printf("%-10s generation %" PRIu64 " from %s, loaded %s%s\n", "config:",
	       st->cfg->generation, st->cfg->source,
	       fmt_utc(when, sizeof(when), st->loaded_ns, false),
	       (st->cfg->flags & VRL_CFG_FAIL_OPEN) ? ", fail-open" : "");
	print_unmatched(st);
	print_daemon(&st->d);
	putchar('\n');
	print_limits(st);
}

int ctl_cmd_status(const struct ctl *x)
{
	struct vrl_client *c;
	struct status st;

	if (x->npos)
		return ctl_usage_error("status", "status takes no arguments");
	c = ctl_open(x, true);
	if (!c)
		return CTL_EXIT_ERROR;
	memset(&st, 0, sizeof(st));
	st.h = vrl__view(c)->hdr;
	st.v = vrl__view(c);
	st.cfg = vrl__config(c);
	count_slots(st.v, &st.sc);
	sum_holders(st.v, st.cfg->generation, &st.hs);
	daemon_state(st.h, vrl_now_ns(), &st.d);
	st.loaded_ns = loaded_time(st.v, st.cfg->generation);
	st.fill10 = (st.sc.live + st.sc.pending + st.sc.dead) * 1000 / st.v->nslots;
	if (x->json)
		status_json(x, &st);
	else
		status_human(x, &st);
	vrl_close(c);
	return CTL_EXIT_OK;
}

/* ---- keys ------------------------------------------------------------------ */

/* One live key as seen by a read of its slot. */
struct key_view {
	uint64_t slot;
	uint32_t limit;              /* index in the snapshot; >= nlimits: unknown */
	char label[VRL_LABEL_MAX];
	uint64_t tag, state, cooldown;
	uint64_t tat;                /* rate: the TAT under the limit's parameters */
	uint32_t aux;                /* window: ring index + 1 */
	uint32_t kind;               /* enum vrl_kind of its limit; 0: unknown */
	bool rate;                   /* has figures: a rate or a window */
	uint64_t available, burst;
	uint64_t used_ns;            /* of the bucket: TAT - now, at most tau */
	uint64_t used10;             /* tenths of a percent */
	uint64_t cooldown_ns;        /* remaining */
	uint64_t fill_ppm;           /* permits left, parts per million: sort key */
	uint32_t pace;               /* adaptive rate: effective rate, 1/65536 of the
	                                figure; 0: the limit does not adapt */
	/* quota and slots */
	bool counted;
	uint64_t used, size, overage; /* units counted, the limit, past it (soft quota) */
	uint64_t period_ns;          /* quota: until its period ends; UINT64_MAX: once */
};

/* Read slot @i. Returns false when it holds no live key. */
static bool read_slot(const struct vrl_seg_view *v, const struct vrl_snapshot *cfg, uint64_t i,
		      struct key_view *k)
{
	const struct vrl_seg_slot *s = &v->slots[i];
	int li;

	/* acquire: pairs with promotion (K2), the slot's fields are ready */
	k->tag = atomic_load_explicit(&s->tag, memory_order_acquire);
	if (!(k->tag & VRL_TAG_LIVE) || (k->tag & VRL_TAG_PENDING))
		return false;
	k->slot = i;
	k->state = load64(&s->state);
	k->cooldown = load64(&s->cooldown);
	li = vrl_note_limit(atomic_load_explicit(&s->limit, memory_order_relaxed),
			    cfg->generation, cfg->nlimits);
	k->limit = li < 0 ? UINT32_MAX : (uint32_t)li;   /* unknown until vrld renotes it */
	k->aux = atomic_load_explicit(&s->aux, memory_order_relaxed);
	memcpy(k->label, s->label, sizeof(k->label));
	k->label[sizeof(k->label) - 1] = '\0';
	return k->state != VRL_STATE_EVICTED;
}

/*
 * Fill the derived figures of @k at @now, as its kind reads them
 * (kind.h): a window's exactly (every position read: AVAIL is what is
 * free now, BURST the limit, RESET IN the time until the newest grant
 * leaves the window); a quota's by the wall clock.
 */
static void derive(const struct vrl_seg_view *v, const struct vrl_snapshot *cfg, uint64_t now,
		   struct key_view *k)
{
	const struct vrl_limit *l = k->limit < cfg->nlimits ? &cfg->limits[k->limit] : NULL;
	bool closed = k->cooldown > now;
	struct vrl_kind_figures f;

	k->cooldown_ns = closed ? k->cooldown - now : 0;
	k->kind = l ? l->seg.kind : 0;
	k->tat = k->state;
	k->rate = false;
	k->counted = false;
	k->fill_ppm = closed ? 0 : 1000000;
	if (!l)
		return;
	vrl_kind_figures(v, l, k->slot, k->state, k->aux, now, vrl_wall_ns(), &f);
	k->pace = vrl_rate_pace(l, k->aux, now);
	k->tat = f.tat;
	k->rate = f.paced;
	k->counted = f.counted;
	if (!f.paced && !f.counted)
		return;   /* a gate: no figures */
	k->burst = k->size = f.size;
	k->available = f.available;
	k->used_ns = f.used_ns;
	k->used10 = f.used10;
	k->used = f.used;
	k->overage = f.overage;
	k->period_ns = f.period_ns;
	if (!closed && f.size)
		k->fill_ppm = f.available * 1000000 / f.size;
}

static int by_fullness(const void *pa, const void *pb)
{
	const struct key_view *a = pa, *b = pb;

	if (a->fill_ppm != b->fill_ppm)
		return a->fill_ppm < b->fill_ppm ? -1 : 1;
	if (a->cooldown_ns != b->cooldown_ns)
		return a->cooldown_ns > b->cooldown_ns ? -1 : 1;
	if (a->used_ns != b->used_ns)
		return a->used_ns > b->used_ns ? -1 : 1;
	return a->slot < b->slot ? -1 : a->slot > b->slot;
}

static const char *limit_name(const struct vrl_snapshot *cfg, uint32_t idx)
{
	return idx < cfg->nlimits ? cfg->limits[idx].seg.name : "?";
}

/* Collect the live keys (of one limit when @only >= 0). */
static int collect_keys(struct vrl_client *c, int only, uint64_t now, struct key_view **out,
			size_t *n)
{
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	for (uint64_t i = 0; i < vrl__view(c)->nslots; i++) {
		struct key_view k;

		if (!read_slot(vrl__view(c), vrl__config(c), i, &k) || (only >= 0 && k.limit != (uint32_t)only))
			continue;
		derive(vrl__view(c), vrl__config(c), now, &k);
		if (*n == cap) {
			void *p = realloc(*out, (cap = cap ? cap * 2 : 64) * sizeof(k));

			if (!p)
				return -ENOMEM;
			*out = p;
		}
		(*out)[(*n)++] = k;
	}
	if (*n > 1)
		qsort(*out, *n, sizeof(**out), by_fullness);
	return 0;
}

/* used/limit/overage of a quota or slots key, and a quota's period end. */
static void counted_json(struct json *j, const struct key_view *k)
{
	json_u64(j, "available", k->available);
	json_u64(j, "used", k->used);
	json_u64(j, "count", k->size);   /* "limit" names the limit */
	if (k->kind == VRL_KIND_QUOTA) {
		json_u64(j, "overage", k->overage);
		if (k->period_ns != UINT64_MAX)
			json_secs(j, "reset_s", k->period_ns);
	}
}

static void keys_json(const struct ctl *x, const struct vrl_snapshot *cfg,
		      const struct key_view *k, size_t n, uint64_t now)
{
	struct json j;

	json_init(&j, stdout);
	json_obj_begin(&j, NULL);
	json_str(&j, "segment", x->segment);
	json_u64(&j, "now_ns", now);
	json_u64(&j, "count", n);
	json_arr_begin(&j, "keys");
	for (size_t i = 0; i < n; i++) {
		json_obj_begin(&j, NULL);
		json_u64(&j, "slot", k[i].slot);
		json_str(&j, "limit", limit_name(cfg, k[i].limit));
		json_str(&j, "label", k[i].label);
		json_str(&j, "kind", ctl_kind_name(k[i].kind));
		json_bool(&j, "open", k[i].cooldown_ns == 0);
		if (k[i].counted)
			counted_json(&j, &k[i]);
		if (k[i].rate) {
			json_u64(&j, "available", k[i].available);
			json_u64(&j, "burst", k[i].burst);
			json_pct10(&j, "used_pct", k[i].used10);
			json_secs(&j, "reset_s", k[i].used_ns);
		}
		json_secs(&j, "cooldown_s", k[i].cooldown_ns);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	json_finish(&j);
}

/* "12/500", or "5003/5000 +3 over" for a soft quota past its limit. */
static void fmt_used(char *buf, size_t len, const struct key_view *k)
{
	if (k->overage)
		snprintf(buf, len, "%" PRIu64 "/%" PRIu64 " +%" PRIu64 " over", k->used, k->size,
			 k->overage);
	else
		snprintf(buf, len, "%" PRIu64 "/%" PRIu64, k->used, k->size);
}

static void keys_row(struct fmt_table *t, const struct vrl_snapshot *cfg,
		     const struct key_view *k)
{
	char avail[24], burst[24], used[72], reset[32], cool[32];
	const char *row[] = { limit_name(cfg, k->limit), k->label[0] ? k->label : "-", avail,
			      burst, used, reset, cool };

	snprintf(burst, sizeof(burst), "-");
	snprintf(used, sizeof(used), "-");
	snprintf(reset, sizeof(reset), "-");
	snprintf(cool, sizeof(cool), "-");
	if (k->cooldown_ns)
		fmt_secs(cool, sizeof(cool), k->cooldown_ns);
	if (k->counted) {
		snprintf(avail, sizeof(avail), "%" PRIu64, k->available);
		snprintf(burst, sizeof(burst), "%" PRIu64, k->size);
		fmt_used(used, sizeof(used), k);
		if (k->period_ns == UINT64_MAX)
			snprintf(reset, sizeof(reset), "never");
		else if (k->period_ns)
			fmt_secs(reset, sizeof(reset), k->period_ns);
		fmt_table_row(t, row);
		return;
	}
	if (!k->rate) {
		snprintf(avail, sizeof(avail), "%s", k->cooldown_ns ? "closed" : "open");
		fmt_table_row(t, row);
		return;
	}
	snprintf(avail, sizeof(avail), "%" PRIu64, k->available);
	snprintf(burst, sizeof(burst), "%" PRIu64, k->burst);
	snprintf(used, sizeof(used), "%" PRIu64 ".%" PRIu64 "%%", k->used10 / 10, k->used10 % 10);
	if (k->used_ns)
		fmt_secs(reset, sizeof(reset), k->used_ns);
	fmt_table_row(t, row);
}

static void keys_human(const struct vrl_snapshot *cfg, const struct key_view *k, size_t n)
{
	static const char *const head[] = { "LIMIT", "LABEL", "AVAIL", "BURST", "USED",
					    "RESET IN", "COOLDOWN" };
	struct fmt_table t;

	if (n == 0) {
		printf("no live keys\n");
		return;
	}
	if (fmt_table_init(&t, 7, "llrrrrr", head) != 0)
		return;
	for (size_t i = 0; i < n; i++)
		keys_row(&t, cfg, &k[i]);
	fmt_table_print(&t, stdout);
	fmt_table_free(&t);
}

int ctl_cmd_keys(const struct ctl *x)
{
	struct vrl_client *c;
	struct key_view *k;
	size_t n;
	int only = -1, rc;
	uint64_t now;

	if (x->npos)
		return ctl_usage_error("keys", "keys takes no arguments besides its options");
	c = ctl_open(x, true);
	if (!c)
		return CTL_EXIT_ERROR;
	if (x->limit_filter && (only = vrl__limit_index(c, x->limit_filter)) < 0) {
		rc = ctl_fail(x, VRL_ENOLIMIT, "no limit named %s (vrlctl status lists them)",
			      x->limit_filter);
		vrl_close(c);
		return rc;
	}
	now = vrl_now_ns();
	rc = collect_keys(c, only, now, &k, &n);
	if (rc == 0 && x->top && n > x->top)
		n = x->top;
	if (rc)
		ctl_fail(x, rc, "%s", vrl_strerror(rc));
	else if (x->json)
		keys_json(x, vrl__config(c), k, n, now);
	else
		keys_human(vrl__config(c), k, n);
	free(k);
	vrl_close(c);
	return rc ? CTL_EXIT_ERROR : CTL_EXIT_OK;
}

/* ---- show ------------------------------------------------------------------ */

struct show {
	const struct vrl_limit *l;
	char label[VRL_LABEL_MAX];
	bool matches, found;
	struct key_view k;
	uint64_t now;
};

static void show_json(const struct ctl *x, const struct show *s)
{
	char tag[24];
	struct json j;

	json_init(&j, stdout);
	json_obj_begin(&j, NULL);
	json_str(&j, "segment", x->segment);
	json_str(&j, "limit", s->l->seg.name);
	json_str(&j, "kind", ctl_kind_name(s->l->seg.kind));
	json_str(&j, "label", s->label);
	json_bool(&j, "matches", s->matches);
	json_bool(&j, "found", s->found);
	if (s->found) {
		snprintf(tag, sizeof(tag), "0x%016" PRIx64, s->k.tag);
		json_u64(&j, "slot", s->k.slot);
		json_str(&j, "tag", tag);
		json_u64(&j, "state", s->k.state);
		json_u64(&j, "cooldown", s->k.cooldown);
		if (s->k.counted)
			counted_json(&j, &s->k);
		else
			json_i64(&j, "tat_rel_ns", s->k.tat == 0 ? 0 :
				 (int64_t)(s->k.tat - s->now));
		json_bool(&j, "open", s->k.cooldown_ns == 0);
		json_secs(&j, "cooldown_s", s->k.cooldown_ns);
		if (s->k.kind == VRL_KIND_WINDOW) {
			json_u64(&j, "used", s->k.burst - s->k.available);
			json_u64(&j, "limit", s->k.burst);
			json_u64(&j, "window_ns", s->l->seg.period_ns);
		}
		if (s->k.rate) {
			json_u64(&j, "available", s->k.available);
			json_u64(&j, "burst", s->k.burst);
			json_secs(&j, "reset_s", s->k.used_ns);
		}
		if (s->k.pace)
			json_pct10(&j, "pace_pct", (uint64_t)s->k.pace * 1000 / VRL_ADAPT_ONE);
	}
	json_obj_end(&j);
	json_finish(&j);
}

static void print_tat(const struct show *s)
{
	char rel[32];
	uint64_t st = s->k.state, tat = s->k.tat;

	if (st == 0)
		printf("%-10s 0 (bucket full)\n", "state:");
	else if (tat > s->now)
		printf("%-10s %" PRIu64 " (TAT now + %s)\n", "state:", st,
		       fmt_secs(rel, sizeof(rel), tat - s->now));
	else
		printf("%-10s %" PRIu64 " (TAT now - %s: bucket full)\n", "state:", st,
		       fmt_secs(rel, sizeof(rel), s->now - tat));
}

static void print_counted(const struct key_view *k)
{
	char used[72], rel[32];

	fmt_used(used, sizeof(used), k);
	if (k->kind == VRL_KIND_SLOTS) {
		printf("%-10s %" PRIu64 " (held)\n", "state:", k->state);
		printf("%-10s %s held, %" PRIu64 " free\n", "used:", used, k->available);
		return;
	}
	printf("%-10s 0x%" PRIx64 " (period %" PRIu64 ", %" PRIu64 " counted)\n", "state:",
	       k->state, vrl_quota_word_id(k->state), vrl_quota_word_used(k->state));
	if (k->period_ns == UINT64_MAX)
		printf("%-10s %s, %" PRIu64 " left, never resets\n", "used:", used, k->available);
	else
		printf("%-10s %s, %" PRIu64 " left, resets in %s\n", "used:", used, k->available,
		       fmt_secs(rel, sizeof(rel), k->period_ns));
}

static void show_human(const struct show *s)
{
	char label[VRL_LABEL_MAX], rel[32];
	const struct key_view *k = &s->k;

	printf("%-10s %s (%s)\n", "limit:", s->l->seg.name, ctl_kind_name(s->l->seg.kind));
	printf("%-10s \"%s\"%s\n", "key:", fmt_printable(label, sizeof(label), s->label),
	       s->matches ? "" : " (the request does not match this limit)");
	if (!s->found) {
		printf("%-10s none: the key has no slot (never used, or evicted with a full "
		       "bucket)\n", "slot:");
		return;
	}
	printf("%-10s %" PRIu64 "\n", "slot:", k->slot);
	printf("%-10s 0x%016" PRIx64 " (live, fingerprint 0x%" PRIx64 ")\n", "tag:", k->tag,
	       k->tag & VRL_TAG_FP_MASK);
	if (k->kind == VRL_KIND_WINDOW) {
		printf("%-10s %" PRIu64 " (hint %" PRIu64 ", version %" PRIu64 ")\n", "state:",
		       k->state, k->state & VRL_WINDOW_IDX_MASK, k->state >> VRL_WINDOW_IDX_BITS);
		printf("%-10s %" PRIu64 " of %" PRIu64 " in the last %s\n", "used:",
		       k->burst - k->available, k->burst,
		       fmt_secs(rel, sizeof(rel), s->l->seg.period_ns));
	} else if (k->counted) {
		print_counted(k);
	} else {
		print_tat(s);
	}
	if (k->rate && k->used_ns == 0)
		printf("%-10s %" PRIu64 " of %" PRIu64 " (full)\n", "available:", k->available,
		       k->burst);
	else if (k->rate)
		printf("%-10s %" PRIu64 " of %" PRIu64 ", full again in %s\n", "available:",
		       k->available, k->burst, fmt_secs(rel, sizeof(rel), k->used_ns));
	if (k->cooldown_ns)
		printf("%-10s %" PRIu64 " (closed for %s)\n", "cooldown:", k->cooldown,
		       fmt_secs(rel, sizeof(rel), k->cooldown_ns));
	else
		printf("%-10s %" PRIu64 " (open)\n", "cooldown:", k->cooldown);
	if (k->pace >= VRL_ADAPT_ONE)
		printf("%-10s at the figure (adaptive)\n", "pace:");
	else if (k->pace)
		printf("%-10s %.1f%% of the figure, %.4g/s (adaptive: cut by 429s, recovering)\n",
		       "pace:", k->pace * 100.0 / VRL_ADAPT_ONE,
		       (double)s->l->seg.count * 1e9 / (double)s->l->seg.period_ns *
		       k->pace / VRL_ADAPT_ONE);
}

int ctl_cmd_show(const struct ctl *x)
{
	struct vrl_client *c;
	struct vrl_key key;
	struct show s;
	int idx, rc;

	if (x->npos != 1)
		return ctl_usage_error("show", "show takes one LIMIT");
	c = ctl_open(x, true);
	if (!c)
		return CTL_EXIT_ERROR;
	idx = vrl__limit_index(c, x->pos[0]);
	if (idx < 0) {
		rc = ctl_fail(x, VRL_ENOLIMIT, "no limit named %s (vrlctl status lists them)",
			      x->pos[0]);
		vrl_close(c);
		return rc;
	}
	memset(&s, 0, sizeof(s));
	s.l = &vrl__config(c)->limits[idx];
	s.matches = vrl_limit_matches(s.l, &x->req);
	vrl_limit_key(s.l, &x->req, &key, s.label);
	s.now = vrl_now_ns();
	s.found = vrl_kt_find(vrl__view(c), &key, &s.k.slot) == 0 &&
		  read_slot(vrl__view(c), vrl__config(c), s.k.slot, &s.k) && s.k.tag == vrl_key_tag(&key);
	if (s.found) {
		s.k.limit = (uint32_t)idx;   /* the limit asked about, not the slot's note */
		derive(vrl__view(c), vrl__config(c), s.now, &s.k);
	}
	if (x->json)
		show_json(x, &s);
	else
		show_human(&s);
	vrl_close(c);
	return s.found ? CTL_EXIT_OK : CTL_EXIT_NO;
}
