/*
 * global.c - `vrlctl global`: limits held across hosts, as this host's
 * vrld sees them: the engine (host id, lease term, rounds, whether keys
 * are on the on_partition fallback), each Redis endpoint (up or down and
 * why, round-trip times, epoch, fence, calls and failures) and each
 * global key (its limit, its key text, this host's share, when the lease
 * expires, renewals, status).
 *
 * vrld publishes all of it once a tick in the segment's global status
 * area (gstatus.h); this file copies the area under its sequence word and
 * shows the copy. Every field is data a member of the group could have
 * written: strings are cut by the reader and made printable here, enums
 * out of range are shown as "?", an endpoint index is checked before it
 * names a row, and times are differences clamped, never trusted to be in
 * order. Key text is the label the key's slot shows: secrets as "#" and a
 * hash (label.h, `vrlctl hash`), never a token.
 *
 * Exit status as `vrlctl status`: 0 when vrld serves the segment and has
 * published; 1 when no vrld serves it, or the config has no global:
 * section, or nothing is published yet; 2 when the segment or the area
 * cannot be read.
 */
#include "vrlctl.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fmt.h"
#include "global.h"
#include "gstatus.h"
#include "json_writer.h"

#define NS_PER_MS UINT64_C(1000000)
#define NS_PER_S  UINT64_C(1000000000)

_Static_assert(VRL_GSTATUS_ENDPOINTS == VRL_GLOBAL_ENDPOINTS_MAX, "a row per endpoint");

/* Names of enum vrl_global_outcome, in its order. */
static const char *const outcome_names[] = {
	"ok", "fenced", "seeding", "behind", "conflict", "pending", "partitioned", "invalid",
};
_Static_assert(sizeof(outcome_names) / sizeof(outcome_names[0]) == VRL_GLOBAL_INVALID + 1,
	       "a name per outcome");

static const char *outcome_name(uint32_t s)
{
	return s < sizeof(outcome_names) / sizeof(outcome_names[0]) ? outcome_names[s] : "?";
}

static const char *gkind_name(uint32_t k)
{
	switch (k) {
	case VRL_GLOBAL_RATE: return "rate";
	case VRL_GLOBAL_WINDOW: return "window";
	case VRL_GLOBAL_QUOTA: return "quota";
	case VRL_GLOBAL_SLOTS: return "slots";
	case VRL_GLOBAL_GATE: return "gate";
	}
	return "?";
}

/* Whether vrld serves the segment: its pid alive and its heartbeat fresh. */
static bool daemon_serves(const struct vrl_seg_header *h, uint64_t now)
{
	int32_t pid = atomic_load_explicit(&h->daemon_pid, memory_order_relaxed);
	uint64_t hb = atomic_load_explicit(&h->daemon_heartbeat_ns, memory_order_relaxed);

	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM) && hb != 0 &&
	       (now <= hb || now - hb <= VRL_DAEMON_DEAD_NS);
}

/* @t - @now in ms, clamped to int64 (negative: past). */
static int64_t ms_until(uint64_t t, uint64_t now)
{
	uint64_t d = t >= now ? t - now : now - t;
	int64_t ms = d / NS_PER_MS > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)(d / NS_PER_MS);

	return t >= now ? ms : -ms;
}

/* "0.42ms", "12.3ms", "1.5s": a round-trip time; "-" none measured. */
static char *fmt_rtt(char *buf, size_t len, uint64_t ns)
{
	if (ns == 0)
		snprintf(buf, len, "-");
	else if (ns < 10 * NS_PER_MS)
		snprintf(buf, len, "%.2fms", (double)ns / 1e6);
	else if (ns < NS_PER_S)
		snprintf(buf, len, "%.1fms", (double)ns / 1e6);
	else
		fmt_dur(buf, len, ns);
	return buf;
}

/* A key's share as a table shows it: "49.5/s burst 3", "50". */
static char *fmt_share(char *buf, size_t len, const struct vrl_gstatus_key *k)
{
	if (k->kind == VRL_GLOBAL_RATE)
		snprintf(buf, len, "%.6g/s burst %" PRIu64, (double)k->rate / 1e6, k->burst);
	else if (k->kind == VRL_GLOBAL_GATE)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%" PRIu64, k->count);
	return buf;
}

static const char *ep_name(const struct vrl_gstatus_area *a, uint32_t i)
{
	return i < a->nendpoints ? a->ep[i].name : NULL;
}

/* ---- --json --------------------------------------------------------------- */

static void json_endpoints(struct json *j, const struct vrl_gstatus_area *a, uint64_t now)
{
	json_arr_begin(j, "endpoints");
	for (uint32_t i = 0; i < a->nendpoints; i++) {
		const struct vrl_gstatus_ep *e = &a->ep[i];

		json_obj_begin(j, NULL);
		json_str(j, "name", e->name);
		json_bool(j, "up", e->up != 0);
		if (!e->up && e->down_since && now >= e->down_since)
			json_secs(j, "down_for_s", now - e->down_since);
		else
			json_null(j, "down_for_s");
		if (e->rtt_max_ns) {
			json_secs(j, "rtt_last_s", e->rtt_last_ns);
			json_secs(j, "rtt_avg_s", e->rtt_ewma_ns);
			json_secs(j, "rtt_max_s", e->rtt_max_ns);
		} else {        /* never answered */
			json_null(j, "rtt_last_s");
			json_null(j, "rtt_avg_s");
			json_null(j, "rtt_max_s");
		}
		json_str(j, "epoch", e->epoch[0] ? e->epoch : NULL);
		json_bool(j, "lost", e->lost != 0);
		json_secs(j, "fence_left_s", e->fence_left_ns);
		json_u64(j, "calls", e->calls);
		json_u64(j, "failures", e->failures);
		json_u64(j, "keys", e->keys);
		json_str(j, "error", e->error[0] ? e->error : NULL);
		json_obj_end(j);
	}
	json_arr_end(j);
}

static void json_keys(struct json *j, const struct vrl_gstatus_area *a, uint64_t now)
{
	json_arr_begin(j, "keys");
	for (uint32_t i = 0; i < a->nkeys; i++) {
		const struct vrl_gstatus_key *k = &a->key[i];

		json_obj_begin(j, NULL);
		json_str(j, "limit", k->limit);
		json_str(j, "key", k->label);
		json_str(j, "kind", gkind_name(k->kind));
		json_obj_begin(j, "share");
		if (k->kind == VRL_GLOBAL_RATE) {
			json_fixed(j, "rate", (double)k->rate / 1e6, 6);
			json_u64(j, "burst", k->burst);
		} else if (k->kind != VRL_GLOBAL_GATE) {
			json_u64(j, "count", k->count);
		}
		json_obj_end(j);
		if (k->expires == VRL_GSTATUS_NO_EXPIRY)
			json_null(j, "expires_in_ms");
		else
			json_i64(j, "expires_in_ms", ms_until(k->expires, now));
		json_u64(j, "renewals", k->renewals);
		json_str(j, "status", outcome_name(k->status));
		json_str(j, "endpoint", ep_name(a, k->endpoint));
		json_obj_end(j);
	}
	json_arr_end(j);
}

static void global_json(const struct ctl *x, const struct vrl_gstatus_area *a, bool serves,
			uint64_t now)
{
	struct json j;

	json_init(&j, stdout);
	json_obj_begin(&j, NULL);
	json_str(&j, "segment", x->segment);
	json_bool(&j, "global", true);
	json_bool(&j, "daemon_running", serves);
	json_str(&j, "host", a->host);
	json_secs(&j, "lease_s", a->lease_ns);
	json_str(&j, "on_partition", a->on_partition ? "static" : "deny");
	json_secs(&j, "published_age_s", now > a->published_ns ? now - a->published_ns : 0);
	json_u64(&j, "rounds", a->rounds);
	json_u64(&j, "round_keys", a->keys);
	json_u64(&j, "key_count", a->keys_total);
	json_u64(&j, "partitioned", a->partitioned);
	json_bool(&j, "fallback", a->partitioned > 0);
	json_endpoints(&j, a, now);
	json_keys(&j, a, now);
	json_obj_end(&j);
	json_finish(&j);
}

/* ---- text ------------------------------------------------------------------- */

/* An endpoint's note: its epoch, and why it is down. */
static void ep_note(char *buf, size_t len, const struct vrl_gstatus_ep *e, uint64_t now)
{
	char epoch[VRL_GSTATUS_EPOCH], err[VRL_GSTATUS_ERROR], d[32];
	size_t used;

	used = (size_t)snprintf(buf, len, "epoch %s%s",
				e->epoch[0] ? fmt_printable(epoch, sizeof(epoch), e->epoch) : "-",
				e->lost ? " (replaced one that lost its data)" : "");
	if (!e->up && e->down_since && now >= e->down_since && used < len)
		used += (size_t)snprintf(buf + used, len - used, "; down for %s",
					 fmt_dur(d, sizeof(d), now - e->down_since));
	if (e->error[0] && used < len)
		snprintf(buf + used, len - used, "; error: %s",
			 fmt_printable(err, sizeof(err), e->error));
}

static void print_endpoints(const struct vrl_gstatus_area *a, uint64_t now)
{
	static const char *const head[] = { "ENDPOINT", "STATE", "RTT", "AVG", "MAX", "FENCE",
					    "CALLS", "FAILS", "KEYS" };
	struct fmt_table t;

	if (fmt_table_init(&t, 9, "wlrrrrrrr", head) != 0)
		return;
	for (uint32_t i = 0; i < a->nendpoints; i++) {
		const struct vrl_gstatus_ep *e = &a->ep[i];
		char name[VRL_GSTATUS_NAME], rl[24], ra[24], rm[24], f[24], c[24], fl[24], k[24];
		char note[FMT_NOTE_MAX];
		const char *row[] = { fmt_printable(name, sizeof(name), e->name),
				      e->up ? "up" : "down", fmt_rtt(rl, sizeof(rl), e->rtt_last_ns),
				      fmt_rtt(ra, sizeof(ra), e->rtt_ewma_ns),
				      fmt_rtt(rm, sizeof(rm), e->rtt_max_ns),
				      e->fence_left_ns ? fmt_dur(f, sizeof(f), e->fence_left_ns) : "-",
				      c, fl, k };

		snprintf(c, sizeof(c), "%" PRIu64, e->calls);
		snprintf(fl, sizeof(fl), "%" PRIu64, e->failures);
		snprintf(k, sizeof(k), "%" PRIu64, e->keys);
		if (fmt_table_row(&t, row) != 0)
			break;
		ep_note(note, sizeof(note), e, now);
		fmt_table_note(&t, note);
	}
	fmt_table_print(&t, stdout);
	fmt_table_free(&t);
}

static void print_keys(const struct vrl_gstatus_area *a, uint64_t now)
{
	static const char *const head[] = { "LIMIT", "KEY", "KIND", "SHARE", "EXPIRES",
					    "RENEWALS", "STATUS", "ENDPOINT" };
	struct fmt_table t;

	if (fmt_table_init(&t, 8, "wwllrrlr", head) != 0)
		return;
	for (uint32_t i = 0; i < a->nkeys; i++) {
		const struct vrl_gstatus_key *k = &a->key[i];
		char limit[VRL_NAME_MAX], label[VRL_LABEL_MAX], share[64], exp[32], ren[24], ep[16];
		int64_t ms = ms_until(k->expires, now);
		const char *row[] = { fmt_printable(limit, sizeof(limit), k->limit),
				      k->label[0] ? fmt_printable(label, sizeof(label), k->label) :
				      "-", gkind_name(k->kind), fmt_share(share, sizeof(share), k),
				      exp, ren, outcome_name(k->status), ep };

		if (k->expires == VRL_GSTATUS_NO_EXPIRY)
			snprintf(exp, sizeof(exp), "-");
		else if (ms < 0)
			snprintf(exp, sizeof(exp), "expired");
		else
			snprintf(exp, sizeof(exp), "%" PRId64 "ms", ms);
		snprintf(ren, sizeof(ren), "%" PRIu64, k->renewals);
		if (k->endpoint < a->nendpoints)
			snprintf(ep, sizeof(ep), "%" PRIu32, k->endpoint);
		else
			snprintf(ep, sizeof(ep), "?");
		if (fmt_table_row(&t, row) != 0)
			break;
	}
	fmt_table_print(&t, stdout);
	fmt_table_free(&t);
}

static void global_human(const struct ctl *x, const struct vrl_gstatus_area *a, bool serves,
			 uint64_t now)
{
	char host[VRL_GSTATUS_HOST], lease[32], age[32];
	uint32_t up = 0;

	for (uint32_t i = 0; i < a->nendpoints; i++)
		up += a->ep[i].up != 0;
	printf("%-10s %s: host %s, lease %s, on_partition %s\n", "global:", x->segment,
	       fmt_printable(host, sizeof(host), a->host), fmt_dur(lease, sizeof(lease),
	       a->lease_ns), a->on_partition ? "static" : "deny");
	printf("%-10s %" PRIu32 " of %" PRIu32 " endpoints up; %" PRIu64 " rounds; %" PRIu64
	       " global keys, %" PRIu64 " in the last round\n", "engine:", up, a->nendpoints,
	       a->rounds, a->keys_total, a->keys);
	if (a->partitioned)
		printf("%-10s yes: %" PRIu64 " key%s on the on_partition share (%s)\n",
		       "fallback:", a->partitioned, a->partitioned == 1 ? "" : "s",
		       a->on_partition ? "static" : "deny");
	else
		printf("%-10s no\n", "fallback:");
	printf("%-10s %s, published %s ago\n", "vrld:", serves ? "serving" : "not serving "
	       "(figures as last published)", fmt_dur(age, sizeof(age),
	       now > a->published_ns ? now - a->published_ns : 0));
	putchar('\n');
	print_endpoints(a, now);
	putchar('\n');
	if (a->nkeys == 0) {
		printf("no global keys on this host yet\n");
		return;
	}
	print_keys(a, now);
	if (a->keys_total > a->nkeys)
		printf("(%" PRIu64 " more global keys not shown)\n", a->keys_total - a->nkeys);
}

/* ---- the command ------------------------------------------------------------ */

/* No area to show: why, on stdout (and as JSON). */
static int no_status(const struct ctl *x, const char *msg)
{
	if (x->json) {
		struct json j;

		json_init(&j, stdout);
		json_obj_begin(&j, NULL);
		json_str(&j, "segment", x->segment);
		json_bool(&j, "global", false);
		json_str(&j, "message", msg);
		json_obj_end(&j);
		json_finish(&j);
	} else {
		printf("%s\n", msg);
	}
	return CTL_EXIT_NO;
}

static int show(const struct ctl *x, struct vrl_client *c, struct vrl_gstatus_area *copy)
{
	const struct vrl_seg_view *v = vrl__view(c);
	const struct vrl_gstatus_area *a;
	const char *why;
	uint64_t now = vrl_mono_ns();
	bool serves = daemon_serves(v->hdr, now);
	int rc;

	a = vrl_gstatus_find(v, &why);
	if (!a && strcmp(why, "none") == 0)
		return no_status(x, (vrl__config(c)->flags & VRL_CFG_GLOBAL) ?
				 "vrld publishes no global status in this segment (made by "
				 "another version of vrld?)" :
				 "vrld has no global: section: no limit of this segment is held "
				 "across hosts");
	if (!a)
		return ctl_fail(x, VRL_ECORRUPT, "the global status area's offset is out of "
				"bounds (damaged, or written by a member of the segment's group)");
	rc = vrl_gstatus_read(a, copy);
	if (rc == -EAGAIN)
		return no_status(x, serves ? "vrld has not published its global status yet" :
				 "no vrld serves the segment, and none has published its "
				 "global status");
	if (rc)
		return ctl_fail(x, rc, "the global status area: %s", vrl_strerror(rc));
	now = vrl_mono_ns();
	if (x->json)
		global_json(x, copy, serves, now);
	else
		global_human(x, copy, serves, now);
	return serves ? CTL_EXIT_OK : CTL_EXIT_NO;
}

int ctl_cmd_global(const struct ctl *x)
{
	struct vrl_gstatus_area *copy;
	struct vrl_client *c;
	int rc;

	if (x->npos)
		return ctl_usage_error("global", "global takes no arguments");
	copy = malloc(sizeof(*copy));
	if (!copy)
		return ctl_fail(x, -ENOMEM, "out of memory");
	c = ctl_open(x, true);
	if (!c) {
		free(copy);
		return CTL_EXIT_ERROR;
	}
	rc = show(x, c, copy);
	vrl_close(c);
	free(copy);
	return rc;
}
