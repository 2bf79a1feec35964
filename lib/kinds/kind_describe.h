/*
 * kind_describe.h - a limit and a key describing themselves, for the
 * displays (vrlctl's status, keys, show, events; vrld's metrics) and the
 * config compiler's messages.
 *
 * Each operation is one dispatch on the kind and returns facts: figures
 * by name and type, which shape a size has, which parts a state word has.
 * The caller formats them (vrlctl's fmt.c owns the words and the units),
 * so a new kind adds its case here and every display follows.
 * Pure functions of a limit's parameters, a key's words and a time.
 */
#ifndef VRL_KIND_DESCRIBE_H
#define VRL_KIND_DESCRIBE_H

#include <stddef.h>
#include <stdint.h>

#include "kind.h"

/* ---- a limit --------------------------------------------------------------- */

/* The shape of a limit's size, as a table shows it. */
enum vrl_kind_shape {
	VRL_SHAPE_NONE,       /* no size (a gate) */
	VRL_SHAPE_PACED,      /* count per period_ns, refilling with time */
	VRL_SHAPE_CALENDAR,   /* count per calendar period (or once) */
	VRL_SHAPE_HELD,       /* count held at once */
};

/* What a limit says of itself. */
struct vrl_kind_desc {
	enum vrl_kind_shape shape;
	uint64_t count;          /* the size: units per period, or held */
	uint64_t period_ns;      /* PACED: the period */
	uint32_t calendar;       /* CALENDAR: enum vrl_calendar */
	bool bursts;             /* has a burst beside its rate */
	uint64_t burst;          /* when it bursts */
};

/* The description of limit @l. */
static inline void vrl_kind_describe(const struct vrl_seg_limit *l, struct vrl_kind_desc *d)
{
	*d = (struct vrl_kind_desc){ .shape = VRL_SHAPE_NONE, .count = l->count };
	switch (l->kind) {
	case VRL_KIND_RATE:
		d->shape = VRL_SHAPE_PACED;
		d->period_ns = l->period_ns;
		d->bursts = true;
		d->burst = l->burst;
		return;
	case VRL_KIND_WINDOW:
		d->shape = VRL_SHAPE_PACED;
		d->period_ns = l->period_ns;
		return;
	case VRL_KIND_QUOTA:
		d->shape = VRL_SHAPE_CALENDAR;
		d->calendar = l->calendar;
		return;
	case VRL_KIND_SLOTS:
		d->shape = VRL_SHAPE_HELD;
		return;
	default:
		return;
	}
}

/* How a figure reads. */
enum vrl_fig_type {
	VRL_FIG_U64,          /* u */
	VRL_FIG_STR,          /* s */
	VRL_FIG_RATE,         /* u per u2 nanoseconds */
};

/* One named figure. */
struct vrl_kind_fig {
	const char *name;
	enum vrl_fig_type type;
	uint64_t u, u2;
	const char *s;
};

/* The most figures a limit or a key gives. */
#define VRL_DESC_FIGS_MAX 8

static inline size_t vrl_fig_u64(struct vrl_kind_fig *f, size_t n, const char *name, uint64_t u)
{
	f[n] = (struct vrl_kind_fig){ .name = name, .type = VRL_FIG_U64, .u = u };
	return n + 1;
}

static inline size_t vrl_fig_str(struct vrl_kind_fig *f, size_t n, const char *name, const char *s)
{
	f[n] = (struct vrl_kind_fig){ .name = name, .type = VRL_FIG_STR, .s = s };
	return n + 1;
}

/* The parameters of limit @l by name, in the order a JSON object lists
 * them, into @f (VRL_DESC_FIGS_MAX): how many. */
static inline size_t vrl_kind_limit_figs(const struct vrl_seg_limit *l,
					 struct vrl_kind_fig f[VRL_DESC_FIGS_MAX])
{
	size_t n = 0;

	switch (l->kind) {
	case VRL_KIND_RATE:
		f[n++] = (struct vrl_kind_fig){ .name = "rate", .type = VRL_FIG_RATE,
						.u = l->count, .u2 = l->period_ns };
		n = vrl_fig_u64(f, n, "count", l->count);
		n = vrl_fig_u64(f, n, "period_ns", l->period_ns);
		return vrl_fig_u64(f, n, "burst", l->burst);
	case VRL_KIND_QUOTA:
		n = vrl_fig_u64(f, n, "count", l->count);
		return vrl_fig_str(f, n, "pool", l->pool);
	case VRL_KIND_SLOTS:
		return vrl_fig_u64(f, n, "count", l->count);
	case VRL_KIND_WINDOW:
		n = vrl_fig_u64(f, n, "limit", l->count);
		n = vrl_fig_u64(f, n, "window_ns", l->period_ns);
		return vrl_fig_u64(f, n, "keys", l->area_keys);
	default:
		return 0;
	}
}

/* One note a limit's flags make: a word, and what it names (NULL: none). */
struct vrl_kind_note {
	const char *word;
	const char *arg;
};

#define VRL_DESC_NOTES_MAX 4

/* The notes of @l's kind-specific flags, in the order a row shows them,
 * into @nt (VRL_DESC_NOTES_MAX): how many. */
static inline size_t vrl_kind_notes(const struct vrl_seg_limit *l,
				    struct vrl_kind_note nt[VRL_DESC_NOTES_MAX])
{
	size_t n = 0;

	switch (l->kind) {
	case VRL_KIND_QUOTA:
		if (l->flags & VRL_LIMIT_SOFT)
			nt[n++] = (struct vrl_kind_note){ "overage", NULL };
		if (l->pool[0])
			nt[n++] = (struct vrl_kind_note){ "pool", l->pool };
		return n;
	case VRL_KIND_SLOTS:
		if (l->flags & VRL_LIMIT_PERSIST)
			nt[n++] = (struct vrl_kind_note){ "persistent", NULL };
		return n;
	default:
		return 0;
	}
}

/*
 * The calendar period of @l at wall-clock time @rt: its number in @id and
 * its start in @start (either may be NULL). 0, or -1 when @l counts in no
 * calendar period (only a quota does: quota.h).
 */
static inline int vrl_kind_period(const struct vrl_seg_limit *l, uint64_t rt, uint64_t *id,
				  uint64_t *start)
{
	switch (l->kind) {
	case VRL_KIND_QUOTA:
		return vrl_quota_period(l, rt, id, start, NULL) == 0 ? 0 : -1;
	default:
		return -1;
	}
}

/* Units a key of @l whose word is @state counted past its limit in period
 * @qid (vrl_key_periods): only a soft quota counts past it. */
static inline uint64_t vrl_kind_overage(const struct vrl_limit *l, uint64_t state, uint64_t qid)
{
	uint64_t used;

	switch (l->seg.kind) {
	case VRL_KIND_QUOTA:
		if (!(l->seg.flags & VRL_LIMIT_SOFT))
			return 0;
		used = vrl_quota_view_used(l, state, qid);
		return used > l->seg.count ? used - l->seg.count : 0;
	default:
		return 0;
	}
}

/* ---- a key ----------------------------------------------------------------- */

/* What a key's state word holds, by its kind. */
enum vrl_kind_word_shape {
	VRL_WORD_TAT,         /* a theoretical arrival time (rate; a gate's stays 0) */
	VRL_WORD_RING,        /* a window: the ring's hint and version */
	VRL_WORD_PERIOD,      /* a quota: a period and the units counted in it */
	VRL_WORD_HELD,        /* slots: the count held */
};

/* A state word read by its parts. */
struct vrl_kind_word {
	enum vrl_kind_word_shape shape;
	uint64_t hint, version;  /* RING */
	uint64_t period;         /* PERIOD: the period's number */
	uint64_t counted;        /* PERIOD: units counted; HELD: units held */
};

/* The parts of state word @state of a key of @l. */
static inline void vrl_kind_word(const struct vrl_seg_limit *l, uint64_t state,
				 struct vrl_kind_word *w)
{
	*w = (struct vrl_kind_word){ .shape = VRL_WORD_TAT };
	switch (l->kind) {
	case VRL_KIND_WINDOW:
		w->shape = VRL_WORD_RING;
		w->hint = state & VRL_WINDOW_IDX_MASK;
		w->version = state >> VRL_WINDOW_IDX_BITS;
		return;
	case VRL_KIND_QUOTA:
		w->shape = VRL_WORD_PERIOD;
		w->period = vrl_quota_word_id(state);
		w->counted = vrl_quota_word_used(state);
		return;
	case VRL_KIND_SLOTS:
		w->shape = VRL_WORD_HELD;
		w->counted = state;
		return;
	default:
		return;
	}
}

#endif /* VRL_KIND_DESCRIBE_H */
