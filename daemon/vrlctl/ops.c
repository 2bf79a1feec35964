/*
 * ops.c - the commands of vrlctl that act on the segment: reset,
 * cooldown and acquire. They open the segment read-write and go through
 * the library's own calls (vrl_reset, vrl_cooldown, vrl_acquire_wait), so
 * they keep every invariant a worker keeps.
 */
#include "vrlctl.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fmt.h"
#include "json_writer.h"

/* ---- reset and cooldown ------------------------------------------------------ */

enum op { OP_RESET, OP_COOLDOWN };

/* What an operation did to one limit's key. */
struct op_result {
	const char *limit;
	char label[VRL_LABEL_MAX];
	int rc;
};

struct op_run {
	enum op op;
	uint64_t duration_ns;        /* cooldown */
	uint64_t until_ns;
	struct op_result res[VRL_MAX_LIMITS];
	unsigned n;
};

static int apply_one(struct vrl_client *c, const struct ctl *x, struct op_run *r, int idx)
{
	const struct vrl_limit *l = &vrl__config(c)->limits[idx];
	struct op_result *o = &r->res[r->n++];
	struct vrl_key key;

	o->limit = l->seg.name;
	vrl_limit_key(l, &x->req, &key, o->label);
	if (r->op == OP_RESET)
		o->rc = vrl_reset(c, &x->req, o->limit);
	else
		o->rc = vrl_cooldown(c, &x->req, o->limit, r->until_ns);
	/* a key without a slot is a full, open bucket: already reset */
	return o->rc == VRL_ENOKEY ? 0 : o->rc;
}

/* Apply the operation to the named limit, or to every matching one. */
static int apply(struct vrl_client *c, const struct ctl *x, const char *name, struct op_run *r)
{
	int idx, rc = 0;

	if (name) {
		idx = vrl__limit_index(c, name);
		return idx < 0 ? VRL_ENOLIMIT : apply_one(c, x, r, idx);
	}
	for (uint32_t i = 0; i < vrl__config(c)->nlimits && rc == 0; i++)
		if (vrl_limit_matches(&vrl__config(c)->limits[i], &x->req))
			rc = apply_one(c, x, r, (int)i);
	return rc == 0 && r->n == 0 ? VRL_ENOLIMIT : rc;
}

static void op_json(const struct ctl *x, const struct op_run *r)
{
	struct json j;

	json_init(&j, stdout);
	json_obj_begin(&j, NULL);
	json_str(&j, "segment", x->segment);
	json_str(&j, "action", r->op == OP_RESET ? "reset" : "cooldown");
	if (r->op == OP_COOLDOWN) {
		json_secs(&j, "duration_s", r->duration_ns);
		json_u64(&j, "until_ns", r->until_ns);
	}
	json_arr_begin(&j, "keys");
	for (unsigned i = 0; i < r->n; i++) {
		json_obj_begin(&j, NULL);
		json_str(&j, "limit", r->res[i].limit);
		json_str(&j, "label", r->res[i].label);
		json_bool(&j, "had_slot", r->res[i].rc != VRL_ENOKEY);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	json_finish(&j);
}

static void op_human(const struct op_run *r)
{
	char label[VRL_LABEL_MAX], d[32];

	for (unsigned i = 0; i < r->n; i++) {
		const struct op_result *o = &r->res[i];

		fmt_printable(label, sizeof(label), o->label);
		if (r->op == OP_COOLDOWN)
			printf("closed %s \"%s\" for %s\n", o->limit, label,
			       fmt_secs(d, sizeof(d), r->duration_ns));
		else if (o->rc == VRL_ENOKEY)
			printf("%s \"%s\": no slot, nothing to reset (its bucket is full)\n",
			       o->limit, label);
		else
			printf("reset %s \"%s\"\n", o->limit, label);
	}
}

static int run_op(const struct ctl *x, const char *name, struct op_run *r)
{
	struct vrl_client *c = ctl_open(x, false);
	int rc;

	if (!c)
		return CTL_EXIT_ERROR;
	if (r->op == OP_COOLDOWN)
		r->until_ns = vrl_now_ns() + r->duration_ns;
	rc = apply(c, x, name, r);
	if (rc == VRL_ENOLIMIT && name)
		rc = ctl_fail(x, rc, "no limit named %s (vrlctl status lists them)", name);
	else if (rc == VRL_ENOLIMIT)
		rc = ctl_fail(x, rc, "no limit matches the request; give its fields "
			      "(--api, --token, ...) or name the limit");
	else if (rc)
		rc = ctl_fail(x, rc, "%s", vrl_strerror(rc));
	else if (x->json)
		op_json(x, r);
	else
		op_human(r);
	vrl_close(c);
	return rc ? CTL_EXIT_ERROR : CTL_EXIT_OK;
}

int ctl_cmd_reset(const struct ctl *x)
{
	struct op_run r = { .op = OP_RESET };

	if (x->npos != (x->all ? 0u : 1u))
		return ctl_usage_error("reset", "reset takes one LIMIT, or --all");
	return run_op(x, x->all ? NULL : x->pos[0], &r);
}

int ctl_cmd_cooldown(const struct ctl *x)
{
	struct op_run r = { .op = OP_COOLDOWN };
	unsigned want = x->all ? 1u : 2u;

	if (x->npos != want)
		return ctl_usage_error("cooldown", "cooldown takes LIMIT and DURATION, or --all "
				       "and DURATION");
	if (vrl_parse_duration(x->pos[want - 1], &r.duration_ns) != 0)
		return ctl_usage_error("cooldown", "DURATION looks like 30s, 1.5min, 250ms or "
				       "0.40235");
	if (r.duration_ns > UINT64_MAX / 4)
		return ctl_usage_error("cooldown", "DURATION too long");
	return run_op(x, x->all ? NULL : x->pos[0], &r);
}

/* ---- acquire -------------------------------------------------------------------- */

static void acquire_json(const struct ctl *x, const struct vrl_verdict *v)
{
	struct json j;
	bool never = !v->granted && v->retry_after_ns == VRL_NEVER;

	json_init(&j, stdout);
	json_obj_begin(&j, NULL);
	json_str(&j, "segment", x->segment);
	json_bool(&j, "granted", v->granted);
	json_str(&j, "limit", v->limit >= 0 ? v->limit_name : NULL);
	if (never) {
		json_null(&j, "retry_after_s");
		json_null(&j, "retry_after_ns");
	} else {
		json_secs(&j, "retry_after_s", v->retry_after_ns);
		json_u64(&j, "retry_after_ns", v->retry_after_ns);
	}
	json_bool(&j, "never", never);
	json_u64(&j, "remaining", v->remaining);
	json_u64(&j, "limit_value", v->limit_value);
	json_secs(&j, "reset_s", v->reset_ns);
	json_u64(&j, "matched", v->matched);
	json_bool(&j, "cooldown", v->flags & VRL_VERDICT_COOLDOWN);
	json_bool(&j, "shadow", v->flags & VRL_VERDICT_SHADOW);
	json_bool(&j, "table_full", v->flags & VRL_VERDICT_TABLE_FULL);
	json_bool(&j, "no_limit", v->flags & VRL_VERDICT_NO_LIMIT);
	json_bool(&j, "unmatched", v->flags & VRL_VERDICT_UNMATCHED);
	json_bool(&j, "share", v->flags & VRL_VERDICT_SHARE);
	json_bool(&j, "paced", v->flags & VRL_VERDICT_PACED);
	json_obj_end(&j);
	json_finish(&j);
}

static void granted_human(const struct vrl_verdict *v)
{
	char reset[32];

	if (v->flags & VRL_VERDICT_UNMATCHED) {
		printf("granted: no limit matches the request (unmatched: warn: counted)\n");
		return;
	}
	if (v->flags & VRL_VERDICT_NO_LIMIT) {
		printf("granted: no limit matches the request (unmatched: allow)\n");
		return;
	}
	if (v->kind == VRL_QUOTA && (v->flags & VRL_VERDICT_OVERAGE))
		printf("granted by %s: %" PRIu64 " past its %" PRIu64 " (overage)%s\n",
		       v->limit_name, v->overage, v->limit_value,
		       (v->flags & VRL_VERDICT_ALERT) ? " (crossed an alert threshold)" : "");
	if (v->kind == VRL_QUOTA || v->kind == VRL_SLOTS) {
		if (!(v->flags & VRL_VERDICT_OVERAGE))
			printf("granted by %s: %" PRIu64 " of %" PRIu64 " left%s%s%s\n",
			       v->limit_name, v->remaining, v->limit_value,
			       v->kind == VRL_SLOTS ? " (held until released)" :
			       v->reset_ns == VRL_NEVER ? ", never resets" : ", resets in ",
			       v->kind == VRL_QUOTA && v->reset_ns != VRL_NEVER ?
			       fmt_secs(reset, sizeof(reset), v->reset_ns) : "",
			       (v->flags & VRL_VERDICT_ALERT) ? " (crossed an alert threshold)" : "");
		return;
	}
	printf("granted by %s: %" PRIu64 " of %" PRIu64 " left, full again in %s%s%s\n",
	       v->limit_name, v->remaining, v->limit_value,
	       fmt_secs(reset, sizeof(reset), v->reset_ns),
	       (v->flags & VRL_VERDICT_SHADOW) ? " (a shadow limit would have denied)" : "",
	       (v->flags & VRL_VERDICT_TABLE_FULL) ? " (key table full: failed open)" : "");
}

static void denied_human(const struct ctl *x, const struct vrl_verdict *v)
{
	char retry[32];

	if (v->retry_after_ns == VRL_NEVER && v->kind == VRL_QUOTA && v->cost <= v->limit_value) {
		printf("denied by %s, retry after never: %" PRIu64 " of its %" PRIu64 " left, and "
		       "it never resets\n", v->limit_name, v->remaining, v->limit_value);
		return;
	}
	if (v->retry_after_ns == VRL_NEVER) {
		printf("denied by %s, retry after never: a cost of %" PRIu64 " exceeds its "
		       "burst of %" PRIu64 "\n", v->limit_name, x->cost ? x->cost : 1,
		       v->limit_value);
		return;
	}
	printf("denied by %s, retry after %s%s%s\n", v->limit_name,
	       fmt_secs(retry, sizeof(retry), v->retry_after_ns),
	       (v->flags & VRL_VERDICT_COOLDOWN) ? " (cooldown)" : "",
	       (v->flags & VRL_VERDICT_SHARE) ? " (this host's share of the global limit)" : "");
}

int ctl_cmd_acquire(const struct ctl *x)
{
	struct vrl_request req = x->req;
	struct vrl_verdict v;
	struct vrl_client *c;
	int rc;

	if (x->npos)
		return ctl_usage_error("acquire", "acquire takes no arguments besides its options");
	c = ctl_open(x, false);
	if (!c)
		return CTL_EXIT_ERROR;
	req.cost = x->cost;
	rc = vrl_acquire_wait(c, &req, x->wait_ns, &v);
	if (rc == VRL_EUNMATCHED || (rc == 0 && (v.flags & VRL_VERDICT_UNMATCHED)))
		fprintf(stderr, "vrlctl: %s: no limit matches api \"%s\": a typo, or a limit "
			"missing from vrld's config?\n", rc ? "error" : "warning",
			req.api ? req.api : "");
	if (rc != 0 && rc != VRL_EDENIED) {
		rc = ctl_fail(x, rc, "%s", vrl_strerror(rc));
		vrl_close(c);
		return rc;
	}
	if (x->json)
		acquire_json(x, &v);
	else if (rc == 0)
		granted_human(&v);
	else
		denied_human(x, &v);
	vrl_close(c);
	return rc == 0 ? CTL_EXIT_OK : CTL_EXIT_NO;
}
