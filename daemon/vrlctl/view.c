/*
 * view.c - the read-only commands of vrlctl that show keys: keys, show
 * (status.c shows the segment as a whole).
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
#include "fmt.h"
#include "json_writer.h"
#include "kind_describe.h"

#define NS_PER_S UINT64_C(1000000000)

__extension__ typedef unsigned __int128 u128;

static uint64_t load64(const _Atomic uint64_t *w)
{
	return atomic_load_explicit(w, memory_order_relaxed);
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

	/* acquire: pairs with promotion (KT.K2), the slot's fields are ready */
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
static void counted_json(struct json *j, const struct vrl_seg_limit *l, const struct key_view *k)
{
	struct vrl_kind_desc d;

	vrl_kind_describe(l, &d);
	json_u64(j, "available", k->available);
	json_u64(j, "used", k->used);
	json_u64(j, "count", k->size);   /* "limit" names the limit */
	if (d.shape == VRL_SHAPE_CALENDAR) {
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
			counted_json(&j, &cfg->limits[k[i].limit].seg, &k[i]);
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
		fmt_dur(cool, sizeof(cool), k->cooldown_ns);
	if (k->counted) {
		snprintf(avail, sizeof(avail), "%" PRIu64, k->available);
		snprintf(burst, sizeof(burst), "%" PRIu64, k->size);
		fmt_used(used, sizeof(used), k);
		if (k->period_ns == UINT64_MAX)
			snprintf(reset, sizeof(reset), "never");
		else if (k->period_ns)
			fmt_dur(reset, sizeof(reset), k->period_ns);
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
		fmt_dur(reset, sizeof(reset), k->used_ns);
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
	if (fmt_table_init(&t, 7, "wwrrrrr", head) != 0)
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

static char *word_period(char *buf, size_t len, const struct vrl_seg_limit *l, uint64_t state);

static void show_json(const struct ctl *x, const struct show *s)
{
	char tag[24], period[48];
	struct vrl_kind_word w;
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
			counted_json(&j, &s->l->seg, &s->k);
		vrl_kind_word(&s->l->seg, s->k.state, &w);
		if (w.shape == VRL_WORD_PERIOD)
			json_str(&j, "period", word_period(period, sizeof(period), &s->l->seg,
							   s->k.state));
		else if (w.shape == VRL_WORD_TAT)
			json_i64(&j, "tat_rel_ns", s->k.tat == 0 ? 0 :
				 (int64_t)(s->k.tat - s->now));
		json_bool(&j, "open", s->k.cooldown_ns == 0);
		json_secs(&j, "cooldown_s", s->k.cooldown_ns);
		if (w.shape == VRL_WORD_RING) {
			json_u64(&j, "used", s->k.burst - s->k.available);
			json_u64(&j, "count", s->k.burst);   /* "limit" names the limit */
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

/* The period a quota word counts in, by its start date ("2026-11"). */
static char *word_period(char *buf, size_t len, const struct vrl_seg_limit *l, uint64_t state)
{
	uint64_t id = 0, start = 0;
	struct vrl_kind_word w;

	vrl_kind_word(l, state, &w);
	if (vrl_kind_period(l, vrl_wall_ns(), &id, &start) != 0)
		snprintf(buf, len, "?");
	else if (w.period == id)
		fmt_period(buf, len, l->calendar, l->anchor, start);
	else
		snprintf(buf, len, "%s, not the current one",
			 w.period < id ? "an earlier period" : "a later period");
	return buf;
}

static void print_counted(const struct show *s, const struct vrl_kind_word *w)
{
	const struct key_view *k = &s->k;
	char used[72], rel[32], period[48];

	fmt_used(used, sizeof(used), k);
	if (w->shape == VRL_WORD_HELD) {
		printf("%-10s %" PRIu64 " (held)\n", "state:", k->state);
		printf("%-10s %s held, %" PRIu64 " free\n", "used:", used, k->available);
		return;
	}
	printf("%-10s 0x%" PRIx64 " (period %s, %" PRIu64 " counted)\n", "state:", k->state,
	       word_period(period, sizeof(period), &s->l->seg, k->state), w->counted);
	if (k->period_ns == UINT64_MAX)
		printf("%-10s %s, %" PRIu64 " left, never resets\n", "used:", used, k->available);
	else
		printf("%-10s %s, %" PRIu64 " left, resets in %s\n", "used:", used, k->available,
		       fmt_dur(rel, sizeof(rel), k->period_ns));
}

static void show_human(const struct show *s)
{
	char label[VRL_LABEL_MAX], rel[32];
	const struct key_view *k = &s->k;
	struct vrl_kind_word w;

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
	vrl_kind_word(&s->l->seg, k->state, &w);
	if (w.shape == VRL_WORD_RING) {
		printf("%-10s %" PRIu64 " (hint %" PRIu64 ", version %" PRIu64 ")\n", "state:",
		       k->state, w.hint, w.version);
		printf("%-10s %" PRIu64 " of %" PRIu64 " in the last %s\n", "used:",
		       k->burst - k->available, k->burst,
		       fmt_secs(rel, sizeof(rel), s->l->seg.period_ns));
	} else if (k->counted) {
		print_counted(s, &w);
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
