/*
 * status.c - `vrlctl status`: the segment as a whole (its key table, the
 * handles' counters, the config in force, whether vrld serves it) and one
 * row per limit.
 *
 * Like every view it maps the segment read-only and only loads from it:
 * every figure is a relaxed load, consistent per word, not a snapshot
 * across words. Key counts come from a scan of the table, not from the
 * approximate keys_live counter. Per-limit grants and denials add the
 * attached handles' counters of the config in force to those folded from
 * handles gone (segment.h, folded_*).
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
#include "unmatched.h"
#include "fmt.h"
#include "json_writer.h"
#include "kind_describe.h"

#define NS_PER_S UINT64_C(1000000000)

static uint64_t load64(const _Atomic uint64_t *w)
{
	return atomic_load_explicit(w, memory_order_relaxed);
}

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

/*
 * Sum the counters of attached holders and those folded from holders gone
 * (segment.h); per limit, only those of @gen.
 */
static void sum_holders(const struct vrl_seg_view *v, uint64_t gen, struct holder_sums *hs)
{
	const struct vrl_seg_header *h = v->hdr;
	const struct vrl_seg_holder *a = v->holders;

	memset(hs, 0, sizeof(*hs));
	hs->granted = load64(&h->retired_granted);
	hs->denied = load64(&h->retired_denied);
	for (unsigned l = 0; l < VRL_MAX_LIMITS; l++) {
		hs->limit_granted[l] = vrl_fold_count(load64(&h->folded_granted[l]), gen);
		hs->limit_denied[l] = vrl_fold_count(load64(&h->folded_denied[l]), gen);
	}
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

/* A limit's row note: its match, and what its kind's flags say. */
static char *fmt_note(char *buf, size_t len, const struct vrl_seg_limit *l)
{
	char match[FMT_CELL_MAX];
	struct vrl_kind_note nt[VRL_DESC_NOTES_MAX];
	size_t n = vrl_kind_notes(l, nt), used;

	used = (size_t)snprintf(buf, len, "match %s%s", fmt_match(match, sizeof(match), l),
				(l->flags & VRL_LIMIT_SHADOW) ? "; shadow (counts, never denies)" : "");
	for (size_t i = 0; i < n && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "; %s%s%s", nt[i].word,
					 nt[i].arg ? " " : "", nt[i].arg ? nt[i].arg : "");
	return buf;
}

/* A limit's size as a table shows it: a rate ("10/s"), a quota's
 * ("500/month", "100 once"), slots' ("100 held"); "-" for none. */
static char *fmt_size(char *buf, size_t len, const struct vrl_seg_limit *l)
{
	static const char *const cal[] = { "?", "/month", "/week", "/day", " once" };
	struct vrl_kind_desc d;

	vrl_kind_describe(l, &d);
	switch (d.shape) {
	case VRL_SHAPE_PACED:
		return fmt_rate(buf, len, d.count, d.period_ns);
	case VRL_SHAPE_CALENDAR:
		snprintf(buf, len, "%" PRIu64 "%s", d.count, cal[d.calendar < 5 ? d.calendar : 0]);
		break;
	case VRL_SHAPE_HELD:
		snprintf(buf, len, "%" PRIu64 " held", d.count);
		break;
	default:
		snprintf(buf, len, "-");
	}
	return buf;
}

/* A limit's burst as a table shows it: "-" for a kind without one. */
static char *fmt_burst(char *buf, size_t len, const struct vrl_seg_limit *l)
{
	struct vrl_kind_desc d;

	vrl_kind_describe(l, &d);
	if (d.bursts)
		snprintf(buf, len, "%" PRIu64, d.burst);
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
		struct vrl_kind_fig fig[VRL_DESC_FIGS_MAX];
		char rate[64];
		size_t n;

		json_obj_begin(j, NULL);
		json_str(j, "name", l->name);
		json_str(j, "kind", ctl_kind_name(l->kind));
		json_bool(j, "shadow", l->flags & VRL_LIMIT_SHADOW);
		n = vrl_kind_limit_figs(l, fig);
		for (size_t f = 0; f < n; f++) {
			if (fig[f].type == VRL_FIG_RATE)
				json_str(j, fig[f].name, fmt_rate(rate, sizeof(rate), fig[f].u,
								  fig[f].u2));
			else if (fig[f].type == VRL_FIG_STR)
				json_str(j, fig[f].name, fig[f].s);
			else
				json_u64(j, fig[f].name, fig[f].u);
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
	static const char *const head[] = { "LIMIT", "KIND", "RATE", "BURST", "PER",
					    "GRANTED", "DENIED" };
	struct fmt_table t;

	if (fmt_table_init(&t, 7, "wllrwrr", head) != 0)
		return -1;
	for (uint32_t i = 0; i < st->cfg->nlimits; i++) {
		const struct vrl_seg_limit *l = &st->cfg->limits[i].seg;
		char rate[64], burst[24], per[128], note[FMT_NOTE_MAX], g[24], d[24];
		const char *row[] = { l->name, ctl_kind_name(l->kind),
				      fmt_size(rate, sizeof(rate), l),
				      fmt_burst(burst, sizeof(burst), l),
				      fmt_per(per, sizeof(per), l), g, d };

		snprintf(g, sizeof(g), "%" PRIu64, st->hs.limit_granted[i]);
		snprintf(d, sizeof(d), "%" PRIu64, st->hs.limit_denied[i]);
		if (fmt_table_row(&t, row) != 0)
			break;
		fmt_table_note(&t, fmt_note(note, sizeof(note), l));
	}
	fmt_table_print(&t, stdout);
	fmt_table_free(&t);
	printf("(GRANTED and DENIED: every handle since config generation %" PRIu64
	       " was loaded)\n", st->cfg->generation);
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
	/* the figures are shown either way; the exit says whether vrld serves */
	return st.d.running && st.d.ticked && st.d.age_ns <= VRL_DAEMON_DEAD_NS ?
	       CTL_EXIT_OK : CTL_EXIT_NO;
}

