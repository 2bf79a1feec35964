/*
 * top.c - `vrlctl top`: a live view of the busiest keys and of the
 * keys nearest their limits, redrawn every interval (plain ANSI), or one
 * frame with --once (--json: one object per frame). On a terminal it
 * reads keys without Enter (cbreak mode) and quits on q; the terminal's
 * mode is restored on every way out: q, an error, exit(), and the signals
 * that end it (SIGINT, SIGTERM, SIGHUP, SIGQUIT).
 *
 * A frame compares two reads of the key table, an interval apart: a key's
 * grants are what its state word moved by (see vrl_key_grants in
 * keyuse.h: exact for quotas and busy rate keys, an upper bound for a rate
 * key with idle gaps, then scaled down to the limit's exact count: see
 * apportion()). Per-limit rates come from the handles' counters in the
 * segment, which are exact.
 */
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "keyuse.h"
#include "vrlctl.h"
#include "fmt.h"
#include "json_writer.h"

#define NS_PER_S        UINT64_C(1000000000)
#define TOP_DEFAULT     10u          /* rows of each key list */
#define FRAME_NS        NS_PER_S     /* default interval between frames */

/* One live slot as read. */
struct top_slot {
	uint64_t idx, tag, state, cd;
	double used;                     /* share of its limit used, at the sample */
	uint32_t limit;
	char label[VRL_LABEL_MAX];
};

/* One read of the segment. */
struct top_sample {
	uint64_t at;                     /* monotonic ns */
	uint64_t qid[VRL_MAX_LIMITS];    /* each quota's period in force (keyuse.h) */
	uint64_t gen;
	size_t n, cap;
	struct top_slot *s;
	uint64_t granted[VRL_MAX_LIMITS], denied[VRL_MAX_LIMITS];
};

/* A key in a list of the frame. */
struct top_key {
	uint32_t limit;
	uint64_t grants;
	double ratio;
	const char *label;
};

static uint64_t load64(const _Atomic uint64_t *w)
{
	return atomic_load_explicit(w, memory_order_relaxed);
}

/* The per-limit counters of @t's generation: attached holders', and those
 * folded from holders gone, so that a handle closing is no drop in rate. */
static void sum_holders(const struct vrl_seg_view *v, struct top_sample *t)
{
	const struct vrl_seg_holder *a = v->holders;

	for (unsigned l = 0; l < VRL_MAX_LIMITS; l++) {
		t->granted[l] = vrl_fold_count(load64(&v->hdr->folded_granted[l]), t->gen);
		t->denied[l] = vrl_fold_count(load64(&v->hdr->folded_denied[l]), t->gen);
	}
	for (uint64_t i = 0; i < v->nholders; i++) {
		if (atomic_load_explicit(&a[i].pid, memory_order_relaxed) <= 0 ||
		    load64(&a[i].config_gen) != t->gen)
			continue;
		for (unsigned l = 0; l < VRL_MAX_LIMITS; l++) {
			t->granted[l] += load64(&a[i].limit_granted[l]);
			t->denied[l] += load64(&a[i].limit_denied[l]);
		}
	}
}

static int sample(struct vrl_client *c, struct top_sample *t)
{
	const struct vrl_seg_slot *slots = vrl__view(c)->slots;

	if (vrl__refresh(c) != 0)
		return -1;
	t->n = 0;
	t->gen = vrl__config(c)->generation;
	t->at = vrl_now_ns();
	vrl_key_periods(vrl__config(c), vrl__realtime_ns(), t->qid);
	for (uint64_t i = 0; i < vrl__view(c)->nslots; i++) {
		/* acquire: pairs with the insert's promotion; label and limit ready */
		uint64_t tag = atomic_load_explicit(&slots[i].tag, memory_order_acquire);
		struct top_slot *s;
		int li;

		if (!(tag & VRL_TAG_LIVE) || (tag & VRL_TAG_PENDING))
			continue;
		if (t->n == t->cap) {
			size_t cap = t->cap ? 2 * t->cap : 1024;
			struct top_slot *more = realloc(t->s, cap * sizeof(*more));

			if (!more)
				return -1;
			t->s = more;
			t->cap = cap;
		}
		s = &t->s[t->n];
		s->idx = i;
		s->tag = tag;
		s->state = load64(&slots[i].state);
		s->cd = load64(&slots[i].cooldown);
		li = vrl_note_limit(atomic_load_explicit(&slots[i].limit, memory_order_relaxed),
				    vrl__config(c)->generation, vrl__config(c)->nlimits);
		s->limit = li < 0 ? UINT32_MAX : (uint32_t)li;
		memcpy(s->label, slots[i].label, sizeof(s->label));
		s->label[sizeof(s->label) - 1] = '\0';
		if (s->state == VRL_STATE_EVICTED || li < 0)
			continue;
		s->used = vrl_slot_used_ratio(vrl__view(c), &vrl__config(c)->limits[li], i, s->state, s->cd,
					      t->at, t->qid[li]);
		t->n++;
	}
	sum_holders(vrl__view(c), t);
	return 0;
}

static int by_grants(const void *pa, const void *pb)
{
	const struct top_key *a = pa, *b = pb;

	if (a->grants != b->grants)
		return a->grants > b->grants ? -1 : 1;
	return strcmp(a->label, b->label);
}

static int by_ratio(const void *pa, const void *pb)
{
	const struct top_key *a = pa, *b = pb;

	if (a->ratio != b->ratio)
		return a->ratio > b->ratio ? -1 : 1;
	return strcmp(a->label, b->label);
}

/*
 * A rate key's grants, estimated from its TAT, are an upper bound (exact
 * when the key was busy throughout). The handles count each limit's grants
 * exactly, so when those counts are usable the estimates of a rate limit's
 * keys are scaled to add up to them.
 */
static void apportion(const struct vrl_snapshot *cfg, const struct top_sample *prev,
		      const struct top_sample *cur, struct top_key *busy, size_t nbusy)
{
	uint64_t raw[VRL_MAX_LIMITS] = { 0 };

	if (prev->gen != cur->gen)
		return;
	for (size_t i = 0; i < nbusy; i++)
		raw[busy[i].limit] += busy[i].grants;
	for (size_t i = 0; i < nbusy; i++) {
		uint32_t l = busy[i].limit;
		uint64_t exact = cur->granted[l] - prev->granted[l];

		/* counts that went down: a handle left during the frame */
		if (!vrl_kind_in(&cfg->limits[l], VRL_KINDS_PACED) || cur->granted[l] < prev->granted[l] ||
		    exact >= raw[l])
			continue;
		busy[i].grants = (uint64_t)((double)busy[i].grants * (double)exact /
					    (double)raw[l] + 0.5);
	}
}

/* The two key lists of a frame, sorted; each of @cur->n entries at most. */
static int rank(const struct vrl_snapshot *cfg, const struct top_sample *prev,
		const struct top_sample *cur, struct top_key *busy, size_t *nbusy,
		struct top_key *near, size_t *nnear, uint64_t *keys)
{
	size_t j = 0, kept = 0;

	*nbusy = *nnear = 0;
	memset(keys, 0, VRL_MAX_LIMITS * sizeof(*keys));
	for (size_t i = 0; i < cur->n; i++) {
		const struct top_slot *s = &cur->s[i];
		const struct vrl_limit *l = &cfg->limits[s->limit];
		uint64_t before = 0, grants;
		double ratio;

		/* both samples are in slot order: walk them together */
		while (j < prev->n && prev->s[j].idx < s->idx)
			j++;
		if (j < prev->n && prev->s[j].idx == s->idx && prev->s[j].tag == s->tag)
			before = prev->s[j].state;
		keys[s->limit]++;
		grants = vrl_key_grants(l, before, prev->at, s->state, cur->at, cur->qid[s->limit]);
		if (grants)
			busy[(*nbusy)++] = (struct top_key){ s->limit, grants, 0, s->label };
		ratio = s->used;
		if (ratio > 0)
			near[(*nnear)++] = (struct top_key){ s->limit, 0, ratio, s->label };
	}
	apportion(cfg, prev, cur, busy, *nbusy);
	for (size_t i = 0; i < *nbusy; i++)
		if (busy[i].grants)
			busy[kept++] = busy[i];
	*nbusy = kept;
	qsort(busy, *nbusy, sizeof(*busy), by_grants);
	qsort(near, *nnear, sizeof(*near), by_ratio);
	return 0;
}

static double per_s(uint64_t now, uint64_t before, uint64_t span_ns)
{
	return now > before && span_ns ? (double)(now - before) * 1e9 / (double)span_ns : 0;
}

static void adaptive_scan(const struct vrl_client *c, uint64_t cut[VRL_MAX_LIMITS],
			  uint32_t lowest[VRL_MAX_LIMITS]);

static void frame_json(const struct ctl *x, const struct vrl_client *c,
		       const struct top_sample *prev, const struct top_sample *cur,
		       const struct top_key *busy, size_t nbusy, const struct top_key *near,
		       size_t nnear, const uint64_t *keys, size_t top)
{
	const struct vrl_snapshot *cfg = vrl__config(c);
	uint64_t span = cur->at - prev->at, cut[VRL_MAX_LIMITS];
	uint32_t lowest[VRL_MAX_LIMITS];
	struct json j;

	adaptive_scan(c, cut, lowest);
	json_init(&j, stdout);
	json_obj_begin(&j, NULL);
	json_str(&j, "segment", x->segment);
	json_i64(&j, "daemon_pid", atomic_load_explicit(&vrl__view(c)->hdr->daemon_pid,
							memory_order_relaxed));
	json_u64(&j, "generation", cur->gen);
	json_secs(&j, "interval_s", span);
	json_arr_begin(&j, "limits");
	for (uint32_t l = 0; l < cfg->nlimits; l++) {
		bool same = prev->gen == cur->gen;

		json_obj_begin(&j, NULL);
		json_str(&j, "name", cfg->limits[l].seg.name);
		json_str(&j, "kind", ctl_kind_name(cfg->limits[l].seg.kind));
		json_fixed(&j, "granted_per_s",
			   same ? per_s(cur->granted[l], prev->granted[l], span) : 0.0, 2);
		json_fixed(&j, "denied_per_s",
			   same ? per_s(cur->denied[l], prev->denied[l], span) : 0.0, 2);
		json_u64(&j, "keys", keys[l]);
		if (vrl_rate_adaptive(&cfg->limits[l])) {
			/* the keys paced below the figure, the lowest pace (100: none) */
			json_obj_begin(&j, "adaptive");
			json_u64(&j, "cut_keys", cut[l]);
			json_pct10(&j, "lowest_pace_pct", (uint64_t)lowest[l] * 1000 / VRL_ADAPT_ONE);
			json_obj_end(&j);
		}
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_arr_begin(&j, "busiest");
	for (size_t i = 0; i < nbusy && i < top; i++) {
		json_obj_begin(&j, NULL);
		json_str(&j, "limit", cfg->limits[busy[i].limit].seg.name);
		json_str(&j, "key", busy[i].label);
		json_u64(&j, "grants", busy[i].grants);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_arr_begin(&j, "nearest");
	for (size_t i = 0; i < nnear && i < top; i++) {
		json_obj_begin(&j, NULL);
		json_str(&j, "limit", cfg->limits[near[i].limit].seg.name);
		json_str(&j, "key", near[i].label);
		json_pct10(&j, "used_pct", (uint64_t)(near[i].ratio * 1000 + 0.5));
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	json_finish(&j);
}

static void table_keys(const struct vrl_snapshot *cfg, const char *title, const char *col,
		       const struct top_key *k, size_t n, size_t top, bool ratio)
{
	const char *head[] = { "LIMIT", "KEY", col };
	struct fmt_table t;
	char v[32], label[VRL_LABEL_MAX * 4];

	printf("\n%s\n", title);
	if (n == 0) {
		printf("  (none)\n");
		return;
	}
	if (fmt_table_init(&t, 3, "wwr", head) != 0)
		return;
	for (size_t i = 0; i < n && i < top; i++) {
		const char *cells[] = { cfg->limits[k[i].limit].seg.name,
					fmt_printable(label, sizeof(label), k[i].label), v };

		if (ratio)
			snprintf(v, sizeof(v), "%.1f%%", k[i].ratio * 100);
		else
			snprintf(v, sizeof(v), "%" PRIu64, k[i].grants);
		fmt_table_row(&t, cells);
	}
	fmt_table_print(&t, stdout);
	fmt_table_free(&t);
}

/*
 * Adaptive rate limits (adapt.h): per limit, the keys paced below their
 * figure (@cut) and the lowest effective rate among them (@lowest, 1/65536
 * of the figure; VRL_ADAPT_ONE when none is).
 */
static void adaptive_scan(const struct vrl_client *c, uint64_t cut[VRL_MAX_LIMITS],
			  uint32_t lowest[VRL_MAX_LIMITS])
{
	const struct vrl_snapshot *cfg = vrl__config(c);
	const struct vrl_seg_view *v = vrl__view(c);
	uint64_t now = vrl_now_ns();

	for (uint32_t l = 0; l < VRL_MAX_LIMITS; l++) {
		cut[l] = 0;
		lowest[l] = VRL_ADAPT_ONE;
	}
	for (uint64_t i = 0; i < v->nslots; i++) {
		/* acquire: pairs with the insert's promotion; the note is ready */
		uint64_t tag = atomic_load_explicit(&v->slots[i].tag, memory_order_acquire);
		uint32_t pace;
		int li;

		if (!(tag & VRL_TAG_LIVE) || (tag & VRL_TAG_PENDING))
			continue;
		li = vrl_note_limit(atomic_load_explicit(&v->slots[i].limit, memory_order_relaxed),
				    cfg->generation, cfg->nlimits);
		if (li < 0 || !vrl_rate_adaptive(&cfg->limits[li]))
			continue;
		/* relaxed: a display of the adapt word (adapt.h AD.W2) */
		pace = vrl_rate_pace(&cfg->limits[li],
				     atomic_load_explicit(&v->slots[i].aux, memory_order_relaxed), now);
		if (pace >= VRL_ADAPT_ONE)
			continue;
		cut[li]++;
		lowest[li] = pace < lowest[li] ? pace : lowest[li];
	}
}

/* The adaptive limits' lines of the human frame: only for a config with some. */
static void adaptive_human(const struct vrl_client *c)
{
	const struct vrl_snapshot *cfg = vrl__config(c);
	uint64_t cut[VRL_MAX_LIMITS];
	uint32_t lowest[VRL_MAX_LIMITS];

	if (!cfg->nadaptive)
		return;
	adaptive_scan(c, cut, lowest);
	printf("\nadaptive limits (keys paced below their figure after 429s)\n");
	for (uint32_t l = 0; l < cfg->nlimits; l++)
		if (vrl_rate_adaptive(&cfg->limits[l]))
			printf("  %-24s %" PRIu64 " cut, lowest at %.1f%% of the figure\n",
			       cfg->limits[l].seg.name, cut[l], lowest[l] * 100.0 / VRL_ADAPT_ONE);
}

static void frame_human(const struct ctl *x, const struct vrl_client *c,
			const struct top_sample *prev, const struct top_sample *cur,
			const struct top_key *busy, size_t nbusy, const struct top_key *near,
			size_t nnear, const uint64_t *keys, size_t top)
{
	const struct vrl_snapshot *cfg = vrl__config(c);
	const char *head[] = { "LIMIT", "KIND", "GRANTED/S", "DENIED/S", "KEYS" };
	uint64_t span = cur->at - prev->at;
	bool same = prev->gen == cur->gen;
	struct fmt_table t;
	time_t now = time(NULL);
	char g[32], d[32], k[32], when[32], title[96];

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
	printf("vrlctl top: segment %s, vrld pid %d, config generation %" PRIu64 ", %s\n",
	       x->segment, (int)atomic_load_explicit(&vrl__view(c)->hdr->daemon_pid, memory_order_relaxed),
	       cur->gen, when);
	if (fmt_table_init(&t, 5, "wlrrr", head) == 0) {
		for (uint32_t l = 0; l < cfg->nlimits; l++) {
			const char *cells[] = { cfg->limits[l].seg.name,
						ctl_kind_name(cfg->limits[l].seg.kind), g, d, k };

			snprintf(g, sizeof(g), "%.1f",
				 same ? per_s(cur->granted[l], prev->granted[l], span) : 0.0);
			snprintf(d, sizeof(d), "%.1f",
				 same ? per_s(cur->denied[l], prev->denied[l], span) : 0.0);
			snprintf(k, sizeof(k), "%" PRIu64, keys[l]);
			fmt_table_row(&t, cells);
		}
		fmt_table_print(&t, stdout);
		fmt_table_free(&t);
	}
	adaptive_human(c);
	snprintf(title, sizeof(title), "busiest keys (grants in the last %.1f s)",
		 (double)span / 1e9);
	table_keys(cfg, title, "GRANTS", busy, nbusy, top, false);
	table_keys(cfg, "nearest their limits", "USED", near, nnear, top, true);
}

/* ---- the terminal: keys without Enter, restored on every way out ---------- */

static struct termios saved_tty;      /* the terminal's mode before top */
static volatile sig_atomic_t tty_raw; /* 1 while top holds it in cbreak mode */

static void tty_restore(void)
{
	if (tty_raw) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
		tty_raw = 0;
	}
}

/* A signal that ends top: give the terminal back, then die of it. */
static void on_fatal(int sig)
{
	tty_restore();   /* tcsetattr is async-signal-safe */
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * Read keys one at a time without echo (cbreak: Ctrl-C still signals),
 * when stdin is a terminal. Returns true when keys can be read.
 */
static bool tty_cbreak(void)
{
	static const int fatal[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	struct termios t;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tty) != 0)
		return false;
	t = saved_tty;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		signal(fatal[i], on_fatal);
	atexit(tty_restore);
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) != 0)
		return false;
	tty_raw = 1;
	return true;
}

/*
 * Wait @ns, or until q is pressed (with @keys). Returns true to quit.
 * A closed stdin stops being read; the wait goes on.
 */
static bool nap(uint64_t ns, bool *keys)
{
	uint64_t until = vrl_now_ns() + ns, now;
	struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
	char c;

	while ((now = vrl_now_ns()) < until) {
		int ms = (int)((until - now + 999999) / 1000000);

		if (poll(&p, *keys ? 1 : 0, ms) <= 0 || !(p.revents & (POLLIN | POLLHUP)))
			continue;
		if (read(STDIN_FILENO, &c, 1) != 1)
			*keys = false;
		else if (c == 'q' || c == 'Q')
			return true;
	}
	return false;
}

static int frame(const struct ctl *x, struct vrl_client *c, const struct top_sample *prev,
		 const struct top_sample *cur, bool redraw)
{
	size_t top = x->top ? x->top : TOP_DEFAULT, nbusy, nnear;
	struct top_key *busy = malloc((cur->n ? cur->n : 1) * sizeof(*busy));
	struct top_key *near = malloc((cur->n ? cur->n : 1) * sizeof(*near));
	uint64_t keys[VRL_MAX_LIMITS];

	if (!busy || !near) {
		free(busy);
		free(near);
		return ctl_fail(x, 0, "out of memory");
	}
	rank(vrl__config(c), prev, cur, busy, &nbusy, near, &nnear, keys);
	if (x->json) {
		frame_json(x, c, prev, cur, busy, nbusy, near, nnear, keys, top);
	} else {
		if (redraw)
			fputs("\033[H\033[2J", stdout);   /* home, clear screen */
		frame_human(x, c, prev, cur, busy, nbusy, near, nnear, keys, top);
	}
	fflush(stdout);
	free(busy);
	free(near);
	return CTL_EXIT_OK;
}

int ctl_cmd_top(const struct ctl *x)
{
	struct top_sample a = { 0 }, b = { 0 }, *prev = &a, *cur = &b, *swap;
	uint64_t interval = x->wait_ns ? x->wait_ns : FRAME_NS;
	struct vrl_client *c;
	int rc = CTL_EXIT_ERROR;
	bool keys;

	if (x->npos != 0)
		return ctl_usage_error("top", "top takes no arguments");
	if (!(c = ctl_open(x, true)))
		return CTL_EXIT_ERROR;
	if (sample(c, prev) != 0)
		goto fail;
	keys = !x->once && tty_cbreak();
	for (;;) {
		if (nap(interval, &keys)) {
			rc = CTL_EXIT_OK;
			break;
		}
		if (sample(c, cur) != 0)
			goto fail;
		rc = frame(x, c, prev, cur, !x->once);
		if (x->once || rc != CTL_EXIT_OK)
			break;
		swap = prev;
		prev = cur;
		cur = swap;
	}
	goto out;
fail:
	rc = ctl_fail(x, 0, "cannot read the segment");
out:
	tty_restore();
	free(a.s);
	free(b.s);
	vrl_close(c);
	return rc;
}
