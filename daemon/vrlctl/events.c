/*
 * events.c - `vrlctl events`: the recent alert events of the ring.
 *
 * Read-only: the segment is mapped read-only and the ring is read without
 * draining it, so vrld still logs and runs its command for every event.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "events.h"
#include "vrlctl.h"
#include "fmt.h"
#include "json_writer.h"
#include "kind_describe.h"

/* "2026-10-21T07:28:00Z" */
static char *fmt_utc(char *buf, size_t len, uint64_t realtime_ns)
{
	time_t t = (time_t)(realtime_ns / 1000000000u);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "-");
	return buf;
}

/*
 * The quota period an event counted in, by its start date ("2026-11"),
 * when its limit is still a quota of the config in force and the period
 * of the event's time is the event's; else its number.
 */
static char *fmt_event_period(char *buf, size_t len, struct vrl_client *c,
			      const struct vrl_alert_event *ev)
{
	int li = vrl__limit_index(c, ev->p.name);
	const struct vrl_seg_limit *l = li >= 0 ? &vrl__config(c)->limits[li].seg : NULL;
	uint64_t id = 0, start = 0;

	if (l && vrl_kind_period(l, ev->p.at_realtime_ns, &id, &start) == 0 &&
	    id == ev->p.period)
		return fmt_period(buf, len, l->calendar, l->anchor, start);
	snprintf(buf, len, "%" PRIu64, ev->p.period);
	return buf;
}

static void events_json(const struct ctl *x, struct vrl_client *c, const struct vrl_seg_header *h,
			const struct vrl_alert_event *ev, size_t n)
{
	struct json j;
	char when[32], per[48];

	json_init(&j, stdout);
	json_obj_begin(&j, NULL);
	json_str(&j, "segment", x->segment);
	json_u64(&j, "produced", atomic_load_explicit(&h->event_head, memory_order_relaxed));
	json_u64(&j, "drained", atomic_load_explicit(&h->event_tail, memory_order_relaxed));
	json_u64(&j, "lost", atomic_load_explicit(&h->events_lost, memory_order_relaxed));
	json_arr_begin(&j, "events");
	for (size_t i = 0; i < n; i++) {
		json_obj_begin(&j, NULL);
		json_u64(&j, "ticket", ev[i].ticket);
		json_str(&j, "at", fmt_utc(when, sizeof(when), ev[i].p.at_realtime_ns));
		json_str(&j, "limit", ev[i].p.name);
		json_str(&j, "key", ev[i].p.label);
		json_u64(&j, "threshold", ev[i].p.threshold);
		json_u64(&j, "used", ev[i].p.used);
		json_u64(&j, "count", ev[i].p.count);
		json_u64(&j, "period", ev[i].p.period);
		json_str(&j, "period_start", fmt_event_period(per, sizeof(per), c, &ev[i]));
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	json_finish(&j);
}

static void events_human(struct vrl_client *c, const struct vrl_seg_header *h,
			 const struct vrl_alert_event *ev, size_t n)
{
	static const char *const head[] = { "AT", "LIMIT", "KEY", "THRESHOLD", "USED", "COUNT",
					    "PERIOD" };
	struct fmt_table t;

	if (n == 0) {
		printf("no alert events\n");
	} else if (fmt_table_init(&t, 7, "lwwrrrr", head) == 0) {
		for (size_t i = 0; i < n; i++) {
			char when[32], key[VRL_LABEL_MAX * 4], th[16], used[24], count[24], per[48];
			const char *row[] = { fmt_utc(when, sizeof(when), ev[i].p.at_realtime_ns),
					      ev[i].p.name,
					      fmt_printable(key, sizeof(key), ev[i].p.label),
					      th, used, count, per };

			snprintf(th, sizeof(th), "%" PRIu32 "%%", ev[i].p.threshold);
			snprintf(used, sizeof(used), "%" PRIu64, ev[i].p.used);
			snprintf(count, sizeof(count), "%" PRIu64, ev[i].p.count);
			fmt_event_period(per, sizeof(per), c, &ev[i]);
			if (fmt_table_row(&t, row) != 0)
				break;
		}
		fmt_table_print(&t, stdout);
		fmt_table_free(&t);
	}
	printf("(%" PRIu64 " produced, %" PRIu64 " drained by vrld, %" PRIu64 " lost)\n",
	       atomic_load_explicit(&h->event_head, memory_order_relaxed),
	       atomic_load_explicit(&h->event_tail, memory_order_relaxed),
	       atomic_load_explicit(&h->events_lost, memory_order_relaxed));
}

int ctl_cmd_events(const struct ctl *x)
{
	const struct vrl_seg_view *v;
	struct vrl_alert_event *ev;
	struct vrl_client *c;
	size_t n;

	if (x->npos)
		return ctl_usage_error("events", "events takes no arguments");
	c = ctl_open(x, true);
	if (!c)
		return CTL_EXIT_ERROR;
	v = vrl__view(c);
	ev = calloc(v->nevents, sizeof(*ev));
	if (!ev) {
		vrl_close(c);
		return ctl_fail(x, -ENOMEM, "no memory for %" PRIu64 " events", v->nevents);
	}
	n = vrl_alert_recent(v, ev, v->nevents);
	if (x->json)
		events_json(x, c, v->hdr, ev, n);
	else
		events_human(c, v->hdr, ev, n);
	free(ev);
	vrl_close(c);
	return CTL_EXIT_OK;
}
