/*
 * config_limits.c - limits: one limit, its overrides and its pool.
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

#include "kind_describe.h"

/* ---- one limit ------------------------------------------------------------------ */

static bool cfg_limit_name_ok(const char *s)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return false;
	return true;
}

static int cfg_limit_name(struct vrl_doc *d, yaml_node_t *n, const char *path,
		      struct vrl_seg_limit *l)
{
	struct vrl_parse *p = d->p;
	char where[VRL_PATH_MAX];

	cfg_pathf(where, "%s.name", path);
	if (cfg_get_text(d, n, where, "a limit name", l->name, sizeof(l->name)) != 0)
		return -1;
	if (!cfg_limit_name_ok(l->name))
		return fail(d, n, where, "expected a name of letters, digits, '_', '.' and '-' "
			    "such as samsara.token, got \"%s\"", l->name);
	for (uint32_t i = 0; i < p->out.cfg.nlimits; i++)
		if (strcmp(p->out.cfg.limits[i].name, l->name) == 0)
			return fail(d, n, where, "duplicate limit name \"%s\" (first defined at "
				    "%s), expected each name once", l->name, p->origin[i]);
	return 0;
}

/*
 * pool: the name hashed into keys instead of the limit's: every member
 * draws from one counter, so they must count the same thing the same way.
 */
static int limit_pool(struct vrl_doc *d, yaml_node_t *n, const char *path,
		      struct vrl_seg_limit *l)
{
	struct vrl_parse *p = d->p;
	char where[VRL_PATH_MAX];
	struct vrl_kind_desc kd;

	cfg_pathf(where, "%s.pool", path);
	if (cfg_get_text(d, n, where, "a pool name", l->pool, sizeof(l->pool)) != 0)
		return -1;
	if (!cfg_limit_name_ok(l->pool))
		return fail(d, n, where, "expected a name of letters, digits, '_', '.' and '-' "
			    "such as carsxe.shared, got \"%s\"", l->pool);
	vrl_kind_describe(l, &kd);
	for (uint32_t i = 0; i < p->out.cfg.nlimits; i++) {
		const struct vrl_seg_limit *o = &p->out.cfg.limits[i];
		const char *what = NULL;

		if (strcmp(o->pool, l->pool) != 0)
			continue;
		if (o->kind != l->kind)
			what = "kind";
		else if (o->count != l->count || o->period_ns != l->period_ns ||
			 o->burst != l->burst)
			what = kd.bursts ? "rate and burst" : "count";
		else if (o->calendar != l->calendar || o->anchor != l->anchor)
			what = "calendar and anchor";
		else if (o->nper != l->nper || memcmp(o->per, l->per, sizeof(o->per)) != 0)
			what = "per fields";
		else if ((o->flags ^ l->flags) & VRL_LIMIT_SOFT)
			what = "overage";
		if (what)
			return fail(d, n, where, "pool \"%s\" member %s differs in %s from member "
				    "%s (at %s), expected every member of a pool to count alike",
				    l->pool, l->name, what, o->name, p->origin[i]);
	}
	return 0;
}

/* Append limit @l, from @map, to the config. */
static int cfg_add_limit(struct vrl_doc *d, yaml_node_t *map, const char *path,
		     const struct vrl_seg_limit *l)
{
	struct vrl_parse *p = d->p;

	if (p->out.cfg.nlimits >= VRL_MAX_LIMITS)
		return fail(d, map, path, "too many limits, expected at most %u (presets and "
			    "overrides included)", VRL_MAX_LIMITS);
	p->out.cfg.limits[p->out.cfg.nlimits] = *l;
	snprintf(p->origin[p->out.cfg.nlimits], VRL_ORIGIN_MAX, "%s:%zu:%zu", d->source,
		 map->start_mark.line + 1, map->start_mark.column + 1);
	p->out.cfg.nlimits++;
	return 0;
}

/*
 * One override of @base: its own record, named base[attr=value,...] after
 * the conditions it adds to the base's match, with the base's kind and the
 * parameters it sets (the others are the base's).
 */
static int parse_override(struct vrl_doc *d, yaml_node_t *map, const char *path,
			  const struct vrl_seg_limit *base)
{
	static const char *const keys[] = { "match", "description", "rate", "burst", "count",
					    "overage", NULL };
	struct vrl_parse *p = d->p;
	struct vrl_seg_limit o = *base, m;
	char where[VRL_PATH_MAX], name[256];
	yaml_node_t *v;
	size_t used;

	if (cfg_want_type(d, map, YAML_MAPPING_NODE, path, "an override: a mapping with match:") ||
	    cfg_check_keys(d, map, path, keys))
		return -1;
	if (!(v = cfg_lookup(d, map, "match")))
		return fail(d, map, path, "missing match:, expected the attributes this override "
			    "applies to, such as {make: tesla}");
	memset(&m, 0, sizeof(m));
	if (cfg_limit_match(d, v, path, &m))
		return -1;
	cfg_pathf(where, "%s.match", path);
	if (o.nmatch + m.nmatch > VRL_MAX_MATCH)
		return fail(d, v, where, "%u conditions with the limit's own, expected at most %u",
			    o.nmatch + m.nmatch, VRL_MAX_MATCH);
	used = (size_t)snprintf(name, sizeof(name), "%s[", base->name);
	for (uint32_t i = 0; i < m.nmatch; i++) {
		const struct vrl_seg_fieldref *f = &m.match[i].ref;

		used += (size_t)snprintf(name + used, sizeof(name) - used, "%s%s=%s", i ? "," : "",
					 f->field == VRL_FIELD_ATTR ? f->attr :
					 cfg_field_names[f->field], m.match[i].pattern);
		if (used >= sizeof(name))
			break;
		o.match[o.nmatch++] = m.match[i];
	}
	if (used + 2 > VRL_NAME_MAX)
		return fail(d, v, where, "the override's name %.*s] is too long, expected at "
			    "most %u bytes (a shorter limit name or match)", (int)(used < 200 ? used : 200),
			    name, VRL_NAME_MAX - 1);
	memcpy(name + used, "]", 2);
	memcpy(o.name, name, used + 2);
	for (uint32_t i = 0; i < p->out.cfg.nlimits; i++)
		if (strcmp(p->out.cfg.limits[i].name, o.name) == 0)
			return fail(d, map, path, "duplicate override %s (first defined at %s), "
				    "expected each match once", o.name, p->origin[i]);
	if (cfg_kind_params(d, map, path, &o, true) || cfg_override_scope(d, map, path, &o))
		return -1;
	return cfg_add_limit(d, map, path, &o);
}

/* overrides: one record per override, first, then the base; one group. */
static int limit_overrides(struct vrl_doc *d, yaml_node_t *seq, const char *path,
			   struct vrl_seg_limit *base)
{
	char where[VRL_PATH_MAX];

	cfg_pathf(where, "%s.overrides", path);
	if (cfg_want_type(d, seq, YAML_SEQUENCE_NODE, where, "a list of overrides such as "
		      "[{match: {make: tesla}, rate: 1/s}]"))
		return -1;
	if (base->pool[0])
		return fail(d, seq, where, "a pooled limit has no overrides, expected one "
			    "count per pool");
	base->group = ++d->p->groups;
	for (yaml_node_item_t *it = seq->data.sequence.items.start;
	     it < seq->data.sequence.items.top; it++) {
		cfg_pathf(where, "%s.overrides[%td]", path, it - seq->data.sequence.items.start);
		if (parse_override(d, cfg_node(d, *it), where, base))
			return -1;
	}
	return 0;
}

static int parse_limit(struct vrl_doc *d, yaml_node_t *map, const char *path)
{
	static const char *const keys[] = { "name", "description", "kind", "match", "per",
					    "rate", "burst", "shadow", "count", "calendar",
					    "anchor", "overage", "alerts", "persistent", "pool",
					    "overrides", "limit", "window", "keys", "adaptive", "scope",
					    NULL };
	struct vrl_parse *p = d->p;
	struct vrl_seg_limit lim, *l = &lim;
	char where[VRL_PATH_MAX];
	yaml_node_t *v;
	bool shadow = false;

	if (cfg_want_type(d, map, YAML_MAPPING_NODE, path, "a limit: a mapping with name:") ||
	    cfg_check_keys(d, map, path, keys))
		return -1;
	if (p->out.cfg.nlimits >= VRL_MAX_LIMITS)
		return fail(d, map, path, "too many limits, expected at most %u (presets "
			    "included)", VRL_MAX_LIMITS);
	memset(l, 0, sizeof(*l));
	if (!(v = cfg_lookup(d, map, "name")))
		return fail(d, map, path, "missing name:, expected a unique limit name");
	if (cfg_limit_name(d, v, path, l))
		return -1;
	cfg_pathf(where, "%s.description", path);
	if ((v = cfg_lookup(d, map, "description")) && !cfg_want_scalar(d, v, where, "a text"))
		return -1;
	if ((v = cfg_lookup(d, map, "per")) && cfg_limit_per(d, v, path, l))
		return -1;
	if ((v = cfg_lookup(d, map, "match")) && cfg_limit_match(d, v, path, l))
		return -1;
	if (cfg_limit_params(d, map, path, l))
		return -1;
	if ((v = cfg_lookup(d, map, "scope")) && cfg_limit_scope(d, v, path, l))
		return -1;
	cfg_pathf(where, "%s.shadow", path);
	if ((v = cfg_lookup(d, map, "shadow")) && cfg_get_bool(d, v, where, &shadow))
		return -1;
	l->flags |= shadow ? VRL_LIMIT_SHADOW : 0;
	if (cfg_limit_adaptive(d, map, path, l))
		return -1;
	if ((v = cfg_lookup(d, map, "pool")) && limit_pool(d, v, path, l))
		return -1;
	if ((v = cfg_lookup(d, map, "overrides")) && limit_overrides(d, v, path, l))
		return -1;
	return cfg_add_limit(d, map, path, l);
}

int cfg_parse_limits(struct vrl_doc *d, yaml_node_t *seq)
{
	char path[VRL_PATH_MAX];

	if (cfg_want_type(d, seq, YAML_SEQUENCE_NODE, "limits", "a list of limits"))
		return -1;
	for (yaml_node_item_t *it = seq->data.sequence.items.start;
	     it < seq->data.sequence.items.top; it++) {
		cfg_pathf(path, "limits[%td]", it - seq->data.sequence.items.start);
		if (parse_limit(d, cfg_node(d, *it), path))
			return -1;
	}
	return 0;
}
