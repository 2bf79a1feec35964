/*
 * test_alert.c - the alert event ring and threshold checks: order, a
 * producer that never publishes, laps, torn entries, dedupe per key and
 * period, and producers in several processes at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alert.h"
#include "events.h"
#include "common.h"
#include "label.h"

#define STUCK_NS (2 * NS_PER_S)

struct fixture {
	struct vrl_seg_config cfg;
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];
};

static int setup(void **state)
{
	static const int per_token[] = { VRL_FIELD_TOKEN, -1 };
	struct fixture *f = calloc(1, sizeof(*f));
	struct vrl_seg_limit *l;

	if (!f)
		return -1;
	/* a rate stands in for the quota that will call vrl_alert_check */
	l = test_add_rate(&f->cfg, "carsxe.month", "carsxe", 100, NS_PER_S, 100, per_token);
	l->nalerts = 3;
	l->alert_pct[0] = 80;
	l->alert_pct[1] = 90;
	l->alert_pct[2] = 100;
	test_add_rate(&f->cfg, "quiet", "quiet", 100, NS_PER_S, 100, per_token);
	test_segment("alert", &f->cfg, 1000, &f->seg, f->name);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	test_segment_drop(&f->seg, f->name);
	free(f);
	return 0;
}

/* vrl_alert_check() for limit index @limit of @c's config, as the acquire
 * engine calls it (an index the config does not have: no call). */
static void check(vrl_client *c, uint32_t limit, uint64_t slot, uint64_t before, uint64_t after,
		  uint64_t period)
{
	if (limit >= vrl__config(c)->nlimits)
		return;
	vrl_alert_check(vrl__view(c), &vrl__config(c)->limits[limit].seg, limit, vrl__config(c)->generation, slot,
			before, after, period);
}

static struct vrl_alert_payload payload(uint64_t used)
{
	struct vrl_alert_payload p;

	memset(&p, 0, sizeof(p));
	p.used = used;
	p.count = 1000;
	p.threshold = 80;
	snprintf(p.name, sizeof(p.name), "limit-%llu", (unsigned long long)used);
	snprintf(p.label, sizeof(p.label), "key-%llu", (unsigned long long)used);
	return p;
}

static uint64_t lost(const struct fixture *f)
{
	return atomic_load(&f->seg.hdr->events_lost);
}

static void drain_in_order(void **state)
{
	struct fixture *f = *state;
	const struct vrl_seg_view *v = &f->seg.view;
	struct vrl_seg_header *h = v->hdr;
	struct vrl_alert_cursor cur = { 0 };
	struct vrl_alert_event ev;

	for (uint64_t i = 0; i < 3; i++) {
		struct vrl_alert_payload p = payload(i + 1);

		assert_int_equal(vrl_alert_emit(v, &p), i);
	}
	for (uint64_t i = 0; i < 3; i++) {
		assert_int_equal(vrl_alert_drain(v, &cur, 0, STUCK_NS, &ev), 1);
		assert_int_equal(ev.ticket, i);
		assert_int_equal(ev.p.used, i + 1);
		assert_int_equal(ev.p.count, 1000);
		assert_string_equal(ev.p.label, payload(i + 1).label);
	}
	assert_int_equal(vrl_alert_drain(v, &cur, 0, STUCK_NS, &ev), 0);
	assert_int_equal(atomic_load(&h->event_tail), 3);
	assert_int_equal(atomic_load(&h->events_sent), 3);
	assert_int_equal(lost(f), 0);
}

/* A producer killed between its ticket and its publish wedges nobody. */
static void unpublished_is_skipped(void **state)
{
	struct fixture *f = *state;
	const struct vrl_seg_view *v = &f->seg.view;
	struct vrl_seg_header *h = v->hdr;
	struct vrl_alert_cursor cur = { 0 };
	struct vrl_alert_event ev;
	struct vrl_alert_payload p = payload(7);
	uint64_t t0 = 1000 * NS_PER_S;

	/* the dead producer: a ticket, a claim, and nothing more */
	uint64_t dead = atomic_fetch_add(&h->event_head, 1);
	atomic_store(&v->events[dead % v->nevents].seq, ((dead + 1) << 1) | 1);
	/* and one that never even claimed */
	atomic_fetch_add(&h->event_head, 1);
	vrl_alert_emit(v, &p);

	assert_int_equal(vrl_alert_drain(v, &cur, t0, STUCK_NS, &ev), 0);
	assert_int_equal(vrl_alert_drain(v, &cur, t0 + STUCK_NS - 1, STUCK_NS, &ev), 0);
	assert_int_equal(lost(f), 0);
	/* the second unpublished entry starts its own wait */
	assert_int_equal(vrl_alert_drain(v, &cur, t0 + STUCK_NS, STUCK_NS, &ev), 0);
	assert_int_equal(lost(f), 1);
	assert_int_equal(vrl_alert_drain(v, &cur, t0 + 2 * STUCK_NS, STUCK_NS, &ev), 1);
	assert_int_equal(ev.p.used, 7);
	assert_int_equal(lost(f), 2);
	assert_int_equal(vrl_alert_drain(v, &cur, t0 + 3 * STUCK_NS, STUCK_NS, &ev), 0);

	/* the next lap's producer claims over the dead one's entry */
	for (uint64_t i = 0; i < v->nevents; i++) {
		p = payload(100 + i);
		vrl_alert_emit(v, &p);
	}
	assert_int_equal(lost(f), 2);
	for (uint64_t i = 0; i < v->nevents; i++) {
		assert_int_equal(vrl_alert_drain(v, &cur, t0 + 3 * STUCK_NS, STUCK_NS, &ev), 1);
		assert_int_equal(ev.p.used, 100 + i);
	}
}

/* A ring lapped while nobody drained: the newest stay, the rest are counted. */
static void lapped_and_torn(void **state)
{
	struct fixture *f = *state;
	const struct vrl_seg_view *v = &f->seg.view;
	struct vrl_seg_header *h = v->hdr;
	struct vrl_alert_cursor cur = { 0 };
	struct vrl_alert_event ev, recent[4];
	uint64_t n = v->nevents + 5, t;

	for (uint64_t i = 0; i < n; i++) {
		struct vrl_alert_payload p = payload(i);

		vrl_alert_emit(v, &p);
	}
	/* vrlctl's view: the newest, oldest first, nothing drained */
	assert_int_equal(vrl_alert_recent(v, recent, 4), 4);
	assert_int_equal(recent[0].p.used, n - 4);
	assert_int_equal(recent[3].p.used, n - 1);
	assert_int_equal(atomic_load(&h->event_tail), 0);

	/* a word scribbled on after publish (a lapped writer's late store) */
	t = n - 2;
	atomic_fetch_xor(&v->events[t % v->nevents].w[3], 1);

	for (uint64_t i = 5; i < n; i++) {
		if (i == t)
			continue;
		assert_int_equal(vrl_alert_drain(v, &cur, 0, STUCK_NS, &ev), 1);
		assert_int_equal(ev.p.used, i);
	}
	assert_int_equal(vrl_alert_drain(v, &cur, 0, STUCK_NS, &ev), 0);
	assert_int_equal(lost(f), 6);
}

/* The label of a key by token @token: its hash (label.h). */
static const char *token_label(const char *token)
{
	static char h[4][VRL_LABEL_HASH_LEN + 1];
	static unsigned next;
	char *out = h[next++ % 4];

	vrl_label_hash(token, strlen(token), out);
	return out;
}

static uint64_t live_slot(const struct vrl_seg_view *v, const char *token)
{
	const char *label = token_label(token);

	for (uint64_t i = 0; i < v->nslots; i++) {
		struct vrl_seg_slot *s = &v->slots[i];

		if ((atomic_load(&s->tag) & VRL_TAG_LIVE) && strcmp(s->label, label) == 0)
			return i;
	}
	fail_msg("no slot for %s (%s)", token, label);
	return 0;
}

static unsigned drain_all(const struct vrl_seg_view *v, struct vrl_alert_event *ev, unsigned max)
{
	struct vrl_alert_cursor cur = { 0 };
	unsigned n = 0;

	while (n < max && vrl_alert_drain(v, &cur, 0, STUCK_NS, &ev[n]) == 1)
		n++;
	return n;
}

/* One event per threshold crossed, once per key and period. */
static void thresholds_once_per_period(void **state)
{
	struct fixture *f = *state;
	const struct vrl_seg_view *v = &f->seg.view;
	const struct vrl_request a = { .api = "carsxe", .token = "tokA" };
	const struct vrl_request b = { .api = "carsxe", .token = "tokB" };
	const struct vrl_request q = { .api = "quiet", .token = "tokQ" };
	struct vrl_alert_event ev[8];
	vrl_client *c = test_open(f->name);
	uint64_t sa, sb, sq;

	assert_int_equal(vrl_acquire(c, &a, NULL), 0);
	assert_int_equal(vrl_acquire(c, &b, NULL), 0);
	assert_int_equal(vrl_acquire(c, &q, NULL), 0);
	sa = live_slot(v, "tokA");
	sb = live_slot(v, "tokB");
	sq = live_slot(v, "tokQ");

	check(c, 0, sa, 0, 79, 1);            /* below every threshold */
	assert_int_equal(drain_all(v, ev, 8), 0);
	check(c, 0, sa, 79, 80, 1);           /* 80 lies in (79, 80] */
	assert_int_equal(drain_all(v, ev, 8), 1);
	assert_int_equal(ev[0].p.threshold, 80);
	assert_int_equal(ev[0].p.used, 80);
	assert_int_equal(ev[0].p.count, 100);
	assert_int_equal(ev[0].p.period, 1);
	assert_int_equal(ev[0].p.limit, 0);
	assert_string_equal(ev[0].p.name, "carsxe.month");
	assert_string_equal(ev[0].p.label, token_label("tokA"));
	assert_true(ev[0].p.at_realtime_ns > 0);

	check(c, 0, sa, 80, 80, 1);           /* no growth */
	check(c, 0, sa, 80, 70, 1);           /* a refund */
	check(c, 0, sa, 70, 85, 1);           /* re-crossing 80: deduped */
	assert_int_equal(drain_all(v, ev, 8), 0);
	check(c, 0, sa, 85, 120, 1);          /* soft overage: 90 and 100 */
	assert_int_equal(drain_all(v, ev, 8), 2);
	assert_int_equal(ev[0].p.threshold, 90);
	assert_int_equal(ev[1].p.threshold, 100);

	check(c, 0, sb, 0, 95, 1);            /* another key: its own */
	assert_int_equal(drain_all(v, ev, 8), 2);
	assert_string_equal(ev[0].p.label, token_label("tokB"));

	check(c, 0, sa, 0, 100, 2);           /* the next period: all three */
	assert_int_equal(drain_all(v, ev, 8), 3);
	assert_int_equal(ev[2].p.period, 2);
	check(c, 0, sa, 0, 100, 1);           /* late news of a period left */
	assert_int_equal(drain_all(v, ev, 8), 0);
	for (uint64_t per = 2000; per < 4095; per += 2000)  /* forward, in steps the */
		check(c, 0, sa, 0, 80, per);       /* serial order can tell */
	check(c, 0, sa, 0, 80, 4095);         /* the mark's period wraps... */
	check(c, 0, sa, 0, 80, 4096);         /* ...and still moves forward */
	assert_int_equal(drain_all(v, ev, 8), 4);
	assert_int_equal(ev[3].p.period, 4096);

	check(c, 1, sq, 0, 100, 1);           /* a limit without alerts */
	check(c, 0, v->nslots, 0, 100, 3);    /* bad slot: ignored */
	check(c, 9, sa, 0, 100, 3);           /* bad limit: ignored */
	assert_int_equal(drain_all(v, ev, 8), 0);
	assert_int_equal(lost(f), 0);
	vrl_close(c);
}

/* Producers in four processes at once, vrld's drain running beside them. */
static void producers_in_processes(void **state)
{
	enum { NPROC = 4, EACH = 200 };
	struct fixture *f = *state;
	const struct vrl_seg_view *v = &f->seg.view;
	struct vrl_seg_header *h = v->hdr;
	struct vrl_alert_cursor cur = { 0 };
	struct vrl_alert_event ev;
	unsigned seen[NPROC] = { 0 }, got = 0;
	pid_t pids[NPROC];
	int alive = NPROC, status;

	for (int i = 0; i < NPROC; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			for (unsigned k = 0; k < EACH; k++) {
				struct vrl_alert_payload p = payload((uint64_t)i * 1000 + k);

				p.limit = (uint32_t)i;
				vrl_alert_emit(v, &p);
			}
			_exit(0);
		}
	}
	while (got < NPROC * EACH) {
		if (vrl_alert_drain(v, &cur, 0, UINT64_MAX, &ev) == 0) {
			if (alive == 0 && atomic_load(&h->event_tail) == atomic_load(&h->event_head))
				break;
			if (alive > 0 && waitpid(-1, &status, WNOHANG) > 0)
				alive--;
			usleep(1000);
			continue;
		}
		assert_true(ev.p.limit < NPROC);
		/* each producer's events arrive whole and in its own order */
		assert_int_equal(ev.p.used, (uint64_t)ev.p.limit * 1000 + seen[ev.p.limit]);
		assert_string_equal(ev.p.label, payload(ev.p.used).label);
		seen[ev.p.limit]++;
		got++;
	}
	while (alive > 0 && waitpid(-1, &status, 0) > 0)
		alive--;
	assert_int_equal(got, NPROC * EACH);
	assert_int_equal(lost(f), 0);
}

/* Processes racing across the same threshold of one key: one event. */
static void racing_crossers_fire_once(void **state)
{
	enum { NPROC = 4, ROUNDS = 50 };
	struct fixture *f = *state;
	const struct vrl_seg_view *v = &f->seg.view;
	const struct vrl_request a = { .api = "carsxe", .token = "tokR" };
	struct vrl_alert_event ev[2 * ROUNDS * 3];
	volatile int *go = test_shared(sizeof(int));
	vrl_client *c = test_open(f->name);
	unsigned per_threshold[3] = { 0 }, n;
	uint64_t slot;
	pid_t pids[NPROC];
	int status;

	assert_int_equal(vrl_acquire(c, &a, NULL), 0);
	slot = live_slot(v, "tokR");
	for (int i = 0; i < NPROC; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			vrl_client *cc = test_open(f->name);

			while (!__atomic_load_n(go, __ATOMIC_ACQUIRE))
				sched_yield();  /* a loaded 2-core machine: let the parent run */
			/* every period, each process claims it took usage across all three */
			for (uint64_t r = 0; r < ROUNDS; r++)
				check(cc, 0, slot, 10, 100, 100 + r);
			vrl_close(cc);
			_exit(0);
		}
	}
	__atomic_store_n(go, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < NPROC; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	n = drain_all(v, ev, sizeof(ev) / sizeof(ev[0]));
	assert_int_equal(n, ROUNDS * 3);
	for (unsigned i = 0; i < n; i++)
		per_threshold[ev[i].p.threshold == 80 ? 0 : ev[i].p.threshold == 90 ? 1 : 2]++;
	assert_int_equal(per_threshold[0], ROUNDS);
	assert_int_equal(per_threshold[1], ROUNDS);
	assert_int_equal(per_threshold[2], ROUNDS);
	assert_int_equal(lost(f), 0);
	vrl_close(c);
}

/* Text from an event, for a log value or an environment variable: bounded,
 * one line, nothing a shell, a terminal or a key=value parser acts on. */
static void event_text_filtered(void **state)
{
	char out[VRL_LABEL_MAX], small[4];
	char unterminated[VRL_NAME_MAX];

	(void)state;
	vrl_alert_text(out, sizeof(out), "tok1|org-A.b_c:d/e@f", VRL_LABEL_MAX);
	assert_string_equal(out, "tok1|org-A.b_c:d/e@f");     /* plain keys stay */
	vrl_alert_text(out, sizeof(out), "a\nB=c\x1b[2J\r\t", VRL_LABEL_MAX);
	assert_string_equal(out, "a?B?c?[2J??");
	vrl_alert_text(out, sizeof(out), "\"\\$(id)`id`'x'", VRL_LABEL_MAX);
	assert_string_equal(out, "???" "(id)?id??x?");
	vrl_alert_text(out, sizeof(out), "caf\xc3\xa9\x9b\x7f", VRL_LABEL_MAX);
	assert_string_equal(out, "caf????");
	/* bounded by the source's field and by the destination */
	memset(unterminated, 'A', sizeof(unterminated));
	vrl_alert_text(out, sizeof(out), unterminated, sizeof(unterminated));
	assert_int_equal(strlen(out), sizeof(out) - 1);
	vrl_alert_text(out, sizeof(out), unterminated, 5);
	assert_string_equal(out, "AAAAA");
	vrl_alert_text(small, sizeof(small), "abcdef", 6);
	assert_string_equal(small, "abc");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(drain_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(unpublished_is_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(lapped_and_torn, setup, teardown),
		cmocka_unit_test_setup_teardown(thresholds_once_per_period, setup, teardown),
		cmocka_unit_test_setup_teardown(producers_in_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(racing_crossers_fire_once, setup, teardown),
		cmocka_unit_test(event_text_filtered),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
