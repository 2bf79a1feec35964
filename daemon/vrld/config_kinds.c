/*
 * config_kinds.c - each limit kind's figures: rate and burst, window, count,
 * calendar and anchor, alerts.
 *
 * One table, kind_parsers[], indexed by enum vrl_kind, says for each kind
 * its name in the config, the keys only it takes and the function that
 * reads its figures. The rest of the compiler asks the table and never
 * "which kind?": a new kind is a row and its parser. (The arithmetic of
 * each kind lives in lib/kinds; what is read here is only the figures.)
 */
#include "config_parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adapt.h"
#include "duration.h"
#include "gcra.h"
#include "quota.h"
#include "window.h"

#define VRL_ALERT_PCT_MAX     1000u        /* alerts: percent at most (soft quotas go past 100) */

#define RATE_EXPECTED "expected N/period such as 150/s, 2/min or 1/30s"

static int limit_rate(struct vrl_doc *d, yaml_node_t *n, const char *path,
		      struct vrl_seg_limit *l)
{
	char where[VRL_PATH_MAX], buf[VRL_GOT_MAX];
	const char *s;

	cfg_pathf(where, "%s.rate", path);
	if (!(s = cfg_want_scalar(d, n, where, "N/period such as 150/s")))
		return -1;
	if (vrl_parse_rate(s, &l->count, &l->period_ns) != 0)
		return fail(d, n, where, RATE_EXPECTED ", got %s", cfg_got(n, buf));
	return 0;
}

/*
 * A window: `limit: N` grants in any interval of `window: W`, with rings for
 * `keys: K` keys (8 N bytes each, laid out in the segment at creation).
 */
static int limit_window(struct vrl_doc *d, yaml_node_t *map, const char *path,
			struct vrl_seg_limit *l)
{
	yaml_node_t *limit = cfg_lookup(d, map, "limit"), *window = cfg_lookup(d, map, "window");
	yaml_node_t *keys = cfg_lookup(d, map, "keys");
	char where[VRL_PATH_MAX];

	if (!limit || !window || !keys)
		return fail(d, map, path, "missing %s, a window needs limit: N (grants), "
			    "window: W (a duration such as 1h) and keys: K (keys it holds "
			    "rings for, 8 N bytes each)",
			    !limit ? "limit:" : !window ? "window:" : "keys:");
	cfg_pathf(where, "%s.limit", path);
	if (cfg_get_u64(d, limit, where, 1, &l->count))
		return -1;
	if (l->count > VRL_WINDOW_MAX_N)
		return fail(d, limit, where, "limit %llu is too large a ring, expected at most "
			    "%llu grants per window", (unsigned long long)l->count,
			    (unsigned long long)VRL_WINDOW_MAX_N);
	cfg_pathf(where, "%s.window", path);
	if (cfg_get_duration(d, window, where, &l->period_ns))
		return -1;
	cfg_pathf(where, "%s.keys", path);
	if (cfg_get_u64(d, keys, where, 1, &l->area_keys))
		return -1;
	if (vrl_window_area_bytes(l->count, l->area_keys) == 0)
		return fail(d, keys, where, "%llu keys of %llu grants do not fit in memory, "
			    "expected at most %llu keys and a smaller product",
			    (unsigned long long)l->area_keys, (unsigned long long)l->count,
			    (unsigned long long)VRL_WINDOW_MAX_KEYS);
	l->burst = l->count;
	return 0;
}

/* Kind, rate and burst together: what a rate needs, what a gate must not have. */
static int rate_params(struct vrl_doc *d, yaml_node_t *map, const char *path,
		       struct vrl_seg_limit *l, bool inherit)
{
	yaml_node_t *rate = cfg_lookup(d, map, "rate"), *burst = cfg_lookup(d, map, "burst");
	char where[VRL_PATH_MAX];
	int rc;

	if (!rate && !inherit)
		return fail(d, map, path, "missing rate:, " RATE_EXPECTED " (or kind: gate for "
			    "a cooldown-only limit)");
	if (rate && limit_rate(d, rate, path, l))
		return -1;
	if (!inherit)
		l->burst = 1;
	cfg_pathf(where, "%s.burst", path);
	if (burst && cfg_get_u64(d, burst, where, 1, &l->burst))
		return -1;
	rc = vrl_limit_set_rate(l, l->count, l->period_ns, l->burst);
	if (rc != 0)
		return fail(d, burst ? burst : rate ? rate : map, where, "burst %llu of %llu ns "
			    "each is too large a bucket (2^62 ns at most), expected a smaller burst "
			    "or a faster rate", (unsigned long long)l->burst,
			    (unsigned long long)(l->period_ns / l->count));
	return 0;
}

/* count: of a quota or slots limit. */
static int count_param(struct vrl_doc *d, yaml_node_t *map, const char *path,
		       struct vrl_seg_limit *l, bool inherit)
{
	yaml_node_t *n = cfg_lookup(d, map, "count");
	char where[VRL_PATH_MAX];

	if (!n && inherit)
		return 0;
	if (!n)
		return fail(d, map, path, "missing count:, expected the %s such as count: 500",
			    l->kind == VRL_KIND_QUOTA ? "units per period" : "units held at most");
	cfg_pathf(where, "%s.count", path);
	if (cfg_get_u64(d, n, where, 1, &l->count))
		return -1;
	if (l->count > VRL_QUOTA_COUNT_MAX)
		return fail(d, n, where, "expected a count of at most %llu, got %llu",
			    (unsigned long long)VRL_QUOTA_COUNT_MAX, (unsigned long long)l->count);
	return 0;
}

static int quota_calendar(struct vrl_doc *d, yaml_node_t *map, const char *path,
			  struct vrl_seg_limit *l)
{
	static const char *const cals[] = { "month", "week", "day", "once", NULL };
	static const char *const days[] = { "monday", "tuesday", "wednesday", "thursday",
					    "friday", "saturday", "sunday", NULL };
	yaml_node_t *n = cfg_lookup(d, map, "calendar"), *a = cfg_lookup(d, map, "anchor");
	char where[VRL_PATH_MAX], buf[VRL_GOT_MAX];
	uint64_t v;
	const char *s;

	l->calendar = VRL_CAL_MONTH;
	if (n) {
		cfg_pathf(where, "%s.calendar", path);
		if (!(s = cfg_want_scalar(d, n, where, "month, week, day or once")))
			return -1;
		for (l->calendar = 0; cals[l->calendar] && strcmp(cals[l->calendar], s); )
			l->calendar++;
		if (!cals[l->calendar])
			return fail(d, n, where, "unknown calendar %s, expected month, week, day "
				    "or once (a trial allowance that never resets)", cfg_got(n, buf));
		l->calendar++;   /* VRL_CAL_MONTH is 1 */
	}
	if (!a)
		return 0;
	cfg_pathf(where, "%s.anchor", path);
	if (l->calendar == VRL_CAL_DAY || l->calendar == VRL_CAL_ONCE)
		return fail(d, a, where, "a %s quota has no anchor, expected anchor: only with "
			    "calendar: month (a day 1..31) or week (a weekday)", cals[l->calendar - 1]);
	if (!(s = cfg_want_scalar(d, a, where, "an anchor")))
		return -1;
	if (l->calendar == VRL_CAL_WEEK) {
		for (v = 0; days[v] && strcasecmp(days[v], s); v++)
			;
		if (days[v]) {
			l->anchor = (uint32_t)v + 1;
			return 0;
		}
		if (vrl_parse_count(s, NULL, &v) != 0 || v < 1 || v > 7)
			return fail(d, a, where, "expected a weekday (monday .. sunday, or 1 .. 7), "
				    "got %s", cfg_got(a, buf));
	} else if (vrl_parse_count(s, NULL, &v) != 0 || v < 1 || v > 31) {
		return fail(d, a, where, "expected the billing day of the month, 1 .. 31 (clamped "
			    "to the month's length), got %s", cfg_got(a, buf));
	}
	l->anchor = (uint32_t)v;
	return 0;
}

static int quota_alerts(struct vrl_doc *d, yaml_node_t *n, const char *path,
			struct vrl_seg_limit *l)
{
	char where[VRL_PATH_MAX];
	size_t count;

	cfg_pathf(where, "%s.alerts", path);
	if (cfg_want_type(d, n, YAML_SEQUENCE_NODE, where, "a list of percentages such as [80, 90, 100]"))
		return -1;
	count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (count > VRL_MAX_ALERTS)
		return fail(d, n, where, "%zu thresholds, expected at most %u", count,
			    VRL_MAX_ALERTS);
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *item = cfg_node(d, n->data.sequence.items.start[i]);
		uint64_t pct;

		cfg_pathf(where, "%s.alerts[%zu]", path, i);
		if (cfg_get_u64(d, item, where, 1, &pct))
			return -1;
		if (pct > VRL_ALERT_PCT_MAX)
			return fail(d, item, where, "expected a percentage of at most %u, got %llu",
				    VRL_ALERT_PCT_MAX, (unsigned long long)pct);
		if (i > 0 && pct <= l->alert_pct[i - 1])
			return fail(d, item, where, "expected percentages in ascending order, "
				    "got %llu after %u", (unsigned long long)pct,
				    l->alert_pct[i - 1]);
		l->alert_pct[i] = (uint32_t)pct;
	}
	l->nalerts = (uint32_t)count;
	return 0;
}

static int flag_param(struct vrl_doc *d, yaml_node_t *map, const char *path, const char *key,
		      uint32_t flag, struct vrl_seg_limit *l)
{
	yaml_node_t *n = cfg_lookup(d, map, key);
	char where[VRL_PATH_MAX];
	bool on = false;

	if (!n)
		return 0;
	cfg_pathf(where, "%s.%s", path, key);
	if (cfg_get_bool(d, n, where, &on))
		return -1;
	l->flags = on ? l->flags | flag : l->flags & ~flag;
	return 0;
}

/* alerts: of a quota or slots limit (an override keeps its base's). */
static int alerts_param(struct vrl_doc *d, yaml_node_t *map, const char *path,
			struct vrl_seg_limit *l, bool inherit)
{
	yaml_node_t *v;

	if (!inherit && (v = cfg_lookup(d, map, "alerts")) && quota_alerts(d, v, path, l))
		return -1;
	return 0;
}

static int gate_params(struct vrl_doc *d, yaml_node_t *map, const char *path,
		       struct vrl_seg_limit *l, bool inherit)
{
	(void)d, (void)map, (void)path, (void)l, (void)inherit;
	return 0;
}

static int window_params(struct vrl_doc *d, yaml_node_t *map, const char *path,
			 struct vrl_seg_limit *l, bool inherit)
{
	/* no overrides or pool (kind_keys): never inherited */
	(void)inherit;
	return limit_window(d, map, path, l);
}

static int quota_params(struct vrl_doc *d, yaml_node_t *map, const char *path,
			struct vrl_seg_limit *l, bool inherit)
{
	if (count_param(d, map, path, l, inherit) ||
	    (!inherit && quota_calendar(d, map, path, l)) ||
	    flag_param(d, map, path, "overage", VRL_LIMIT_SOFT, l))
		return -1;
	return alerts_param(d, map, path, l, inherit);
}

static int slots_params(struct vrl_doc *d, yaml_node_t *map, const char *path,
			struct vrl_seg_limit *l, bool inherit)
{
	if (count_param(d, map, path, l, inherit) ||
	    flag_param(d, map, path, "persistent", VRL_LIMIT_PERSIST, l))
		return -1;
	return alerts_param(d, map, path, l, inherit);
}

/* ---- the table ---------------------------------------------------------------- */

/* One kind as the config writes it. */
struct kind_parser {
	const char *name;             /* kind: NAME */
	const char *const *keys;      /* of kind_only[], the keys this kind takes */
	const char *no_rate;          /* the message for rate: or burst: on this kind,
	                                 when it has none and one is a likely mistake */
	int (*params)(struct vrl_doc *d, yaml_node_t *map, const char *path,
		      struct vrl_seg_limit *l, bool inherit);
};

static const char *const rate_keys[] = { "rate", "burst", "pool", "overrides", NULL };
static const char *const gate_keys[] = { NULL };
static const char *const window_keys[] = { "limit", "window", "keys", NULL };
static const char *const quota_keys[] = { "count", "calendar", "anchor", "overage", "alerts",
					  "pool", "overrides", NULL };
static const char *const slots_keys[] = { "count", "alerts", "persistent", "overrides", NULL };

static const struct kind_parser kind_parsers[VRL_KIND__COUNT] = {
	[VRL_KIND_RATE] = { "rate", rate_keys, NULL, rate_params },
	[VRL_KIND_GATE] = { "gate", gate_keys, "a gate has no rate or burst, expected kind: "
			    "rate to limit a rate", gate_params },
	[VRL_KIND_WINDOW] = { "window", window_keys, "a window has no rate or burst, expected "
			      "limit: N and window: W such as limit: 1000 and window: 1h",
			      window_params },
	[VRL_KIND_QUOTA] = { "quota", quota_keys, NULL, quota_params },
	[VRL_KIND_SLOTS] = { "slots", slots_keys, NULL, slots_params },
};

/* Keys that only some kinds take, in the order they are checked. */
static const char *const kind_only[] = {
	"rate", "burst", "count", "calendar", "anchor", "overage", "alerts", "persistent",
	"limit", "window", "keys", "pool", "overrides", NULL
};

static bool takes(uint32_t kind, const char *key)
{
	for (const char *const *k = kind_parsers[kind].keys; *k; k++)
		if (strcmp(*k, key) == 0)
			return true;
	return false;
}

static int limit_kind(struct vrl_doc *d, yaml_node_t *n, const char *path, uint32_t *kind)
{
	char where[VRL_PATH_MAX], buf[VRL_GOT_MAX];
	const char *s;

	cfg_pathf(where, "%s.kind", path);
	if (!(s = cfg_want_scalar(d, n, where, "rate, window, gate, quota or slots")))
		return -1;
	for (uint32_t k = 1; k < VRL_KIND__COUNT; k++)
		if (strcmp(s, kind_parsers[k].name) == 0) {
			*kind = k;
			return 0;
		}
	return fail(d, n, where, "unknown kind %s, expected rate (GCRA), window (exact "
		    "rolling window), gate (cooldown only), quota (units per calendar "
		    "period) or slots (at most N held at once)", cfg_got(n, buf));
}

/* Keys that only some kinds take: a limit of another kind must not have them. */
static int kind_keys(struct vrl_doc *d, yaml_node_t *map, const char *path, uint32_t kind)
{
	const struct kind_parser *kp = &kind_parsers[kind];
	char where[VRL_PATH_MAX], takers[64];

	for (const char *const *key = kind_only; *key; key++) {
		yaml_node_t *n = cfg_lookup(d, map, *key);
		size_t used = 0;

		if (!n || takes(kind, *key))
			continue;
		cfg_pathf(where, "%s.%s", path, *key);
		if (kp->no_rate && (strcmp(*key, "rate") == 0 || strcmp(*key, "burst") == 0))
			return fail(d, n, where, "%s", kp->no_rate);
		takers[0] = '\0';
		for (uint32_t k = 1; k < VRL_KIND__COUNT; k++)
			if (takes(k, *key))
				used += (size_t)snprintf(takers + used, sizeof(takers) - used, "%s%s",
							 used ? " or " : "", kind_parsers[k].name);
		return fail(d, n, where, "a %s limit has no %s, expected it only with kind: %s",
			    kp->name, *key, takers);
	}
	return 0;
}

int cfg_limit_adaptive(struct vrl_doc *d, yaml_node_t *map, const char *path,
		       struct vrl_seg_limit *l)
{
	yaml_node_t *n = cfg_lookup(d, map, "adaptive");
	char where[VRL_PATH_MAX];
	struct vrl_adapt a;
	bool on = d->p->adaptive && l->kind == VRL_KIND_RATE;

	cfg_pathf(where, "%s.adaptive", path);
	if (n && cfg_get_bool(d, n, where, &on))
		return -1;
	if (!on)
		return 0;
	if (l->kind != VRL_KIND_RATE)
		return fail(d, n, where, "a %s limit does not adapt, expected adaptive: only on "
			    "a rate limit (kind: rate)", kind_parsers[l->kind].name);
	vrl_adapt_init(&a, VRL_ADAPT_RECOVER_DEFAULT_NS, VRL_ADAPT_HOLD_DEFAULT_NS,
		       VRL_ADAPT_FLOOR_DEFAULT, VRL_ADAPT_BETA_DEFAULT);
	vrl_adapt_store(&a, l->adapt);
	l->flags |= VRL_LIMIT_ADAPTIVE;
	return 0;
}

int cfg_kind_params(struct vrl_doc *d, yaml_node_t *map, const char *path,
		    struct vrl_seg_limit *l, bool inherit)
{
	/* l->kind was read by limit_kind(), or copied from a base that was */
	if (l->kind == 0 || l->kind >= VRL_KIND__COUNT)
		return fail(d, map, path, "no kind, expected rate, window, gate, quota or slots");
	if (kind_keys(d, map, path, l->kind))
		return -1;
	return kind_parsers[l->kind].params(d, map, path, l, inherit);
}

int cfg_limit_params(struct vrl_doc *d, yaml_node_t *map, const char *path,
		     struct vrl_seg_limit *l)
{
	yaml_node_t *kind = cfg_lookup(d, map, "kind");

	l->kind = VRL_KIND_RATE;
	if (kind && limit_kind(d, kind, path, &l->kind))
		return -1;
	return cfg_kind_params(d, map, path, l, false);
}

const char *cfg_kind_name(uint32_t kind)
{
	return kind > 0 && kind < VRL_KIND__COUNT ? kind_parsers[kind].name : "unknown";
}
