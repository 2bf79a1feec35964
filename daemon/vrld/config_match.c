/*
 * config_match.c - request fields, and the match: and per: of a limit.
 *
 * A field is a built-in one (api, endpoint, token, org, vehicle, user) or an
 * attribute the caller passes by name. A name that differs from a built-in
 * field by case or by one edit ("Api", "apy", "usr", "vehicel": insert,
 * delete, replace or swap two letters, whatever the name's length) is
 * refused with the field it resembles: such a limit would never match, and
 * nothing else would say so. An attribute that close to a field on purpose
 * is declared under the top-level `attributes:` list, and is then taken as
 * written.
 *
 * unmatched: says what a request that matches no limit gets (deny, warn or
 * allow); see cfg_parse_unmatched().
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

/* ---- fields -------------------------------------------------------------------- */

/* Built-in request fields, by enum vrl_field. */
const char *const cfg_field_names[] = {
	"api", "endpoint", "token", "org", "vehicle", "user", NULL
};

static bool same(char a, char b)
{
	return tolower((unsigned char)a) == tolower((unsigned char)b);
}

/* Optimal string alignment distance, letters compared without case, for names of fewer than VRL_ATTR_MAX bytes. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), dist[VRL_ATTR_MAX + 1][VRL_ATTR_MAX + 1];

	for (size_t i = 0; i <= la; i++)
		dist[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		dist[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = !same(a[i - 1], b[j - 1]);
			size_t best = dist[i - 1][j - 1] + cost;

			if (dist[i - 1][j] + 1 < best)
				best = dist[i - 1][j] + 1;
			if (dist[i][j - 1] + 1 < best)
				best = dist[i][j - 1] + 1;
			if (i > 1 && j > 1 && same(a[i - 1], b[j - 2]) && same(a[i - 2], b[j - 1]) &&
			    dist[i - 2][j - 2] + 1 < best)
				best = dist[i - 2][j - 2] + 1;
			dist[i][j] = best;
		}
	}
	return dist[la][lb];
}

/*
 * The built-in field that name @s looks like a typo of ("tokn", "Vehicle",
 * "apy", "API"), or NULL: one edit or less, case ignored, at any length.
 */
static const char *near_field(const char *s)
{
	for (size_t i = 0; cfg_field_names[i]; i++)
		if (edit_distance(s, cfg_field_names[i]) <= 1)
			return cfg_field_names[i];
	return NULL;
}

static bool declared(const struct vrl_parse *p, const char *s)
{
	for (unsigned i = 0; i < p->nattrs; i++)
		if (strcmp(p->attrs[i], s) == 0)
			return true;
	return false;
}

static bool attr_name_ok(const char *s)
{
	if (!isalpha((unsigned char)*s) && *s != '_')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return false;
	return true;
}

/* Resolve field name @s (at @n) into @ref: a built-in field or an attribute. */
int cfg_get_field(struct vrl_doc *d, yaml_node_t *n, const char *path, const char *s,
		     struct vrl_seg_fieldref *ref)
{
	const char *near;

	memset(ref, 0, sizeof(*ref));
	for (uint32_t i = 0; cfg_field_names[i]; i++) {
		if (strcmp(s, cfg_field_names[i]) == 0) {
			ref->field = i;
			return 0;
		}
	}
	if (!attr_name_ok(s) || strlen(s) >= VRL_ATTR_MAX)
		return fail(d, n, path, "unknown field \"%s\", expected api, endpoint, token, org, "
			    "vehicle, user or an attribute name (letters, digits, _ . -; at most "
			    "%u bytes)", s, VRL_ATTR_MAX - 1);
	if ((near = near_field(s)) && !declared(d->p, s))
		return fail(d, n, path, "unknown field \"%s\": did you mean %s? expected %s, "
			    "or, for an attribute of that name, declare it: attributes: [%s]",
			    s, near, near, s);
	if (strcmp(s, "cost") == 0)
		return fail(d, n, path, "unknown field \"cost\": cost is the units a request "
			    "takes, not a field, expected api, endpoint, token, org, vehicle, user "
			    "or an attribute name");
	ref->field = VRL_FIELD_ATTR;
	memcpy(ref->attr, s, strlen(s) + 1);
	return 0;
}

int cfg_limit_per(struct vrl_doc *d, yaml_node_t *n, const char *path,
		     struct vrl_seg_limit *l)
{
	char where[VRL_PATH_MAX];
	size_t count;

	cfg_pathf(where, "%s.per", path);
	if (cfg_want_type(d, n, YAML_SEQUENCE_NODE, where, "a list of fields such as [token]"))
		return -1;
	count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (count > VRL_MAX_PER)
		return fail(d, n, where, "%zu fields, expected at most %u", count, VRL_MAX_PER);
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *item = cfg_node(d, n->data.sequence.items.start[i]);
		const char *s;

		cfg_pathf(where, "%s.per[%zu]", path, i);
		if (!(s = cfg_want_scalar(d, item, where, "a field name")) ||
		    cfg_get_field(d, item, where, s, &l->per[i]))
			return -1;
		for (size_t j = 0; j < i; j++)
			if (memcmp(&l->per[j], &l->per[i], sizeof(l->per[i])) == 0)
				return fail(d, item, where, "field \"%s\" given twice, expected "
					    "each field once", s);
	}
	l->nper = (uint32_t)count;
	return 0;
}

static bool is_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

int cfg_limit_match(struct vrl_doc *d, yaml_node_t *n, const char *path,
		       struct vrl_seg_limit *l)
{
	char where[VRL_PATH_MAX];
	size_t count;

	cfg_pathf(where, "%s.match", path);
	if (cfg_want_type(d, n, YAML_MAPPING_NODE, where, "a mapping such as {api: samsara}"))
		return -1;
	/* counted first: check_keys compares every key with each before it */
	count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	if (count > VRL_MAX_MATCH)
		return fail(d, n, where, "%zu conditions, expected at most %u", count, VRL_MAX_MATCH);
	if (cfg_check_keys(d, n, where, NULL))
		return -1;
	for (size_t i = 0; i < count; i++) {
		yaml_node_pair_t *kv = &n->data.mapping.pairs.start[i];
		yaml_node_t *k = cfg_node(d, kv->key), *v = cfg_node(d, kv->value);
		struct vrl_seg_match *m = &l->match[i];

		cfg_pathf(where, "%s.match.%s", path, cfg_sval(k));
		if (cfg_get_field(d, k, where, cfg_sval(k), &m->ref) ||
		    cfg_get_text(d, v, where, "a value or glob pattern", m->pattern, sizeof(m->pattern)))
			return -1;
		m->glob = is_glob(m->pattern);
	}
	l->nmatch = (uint32_t)count;
	return 0;
}

/*
 * attributes: [name, ...]: attribute names used on purpose, taken as
 * written even when one is a near-miss of a built-in field. The list holds
 * for the whole config (presets included), so it is read before limits.
 */
int cfg_parse_attributes(struct vrl_doc *d, yaml_node_t *seq)
{
	struct vrl_parse *p = d->p;
	char where[VRL_PATH_MAX];

	if (cfg_want_type(d, seq, YAML_SEQUENCE_NODE, "attributes",
			  "a list of attribute names such as [app, make]"))
		return -1;
	for (yaml_node_item_t *it = seq->data.sequence.items.start;
	     it < seq->data.sequence.items.top; it++) {
		yaml_node_t *item = cfg_node(d, *it);
		const char *s;

		cfg_pathf(where, "attributes[%td]", it - seq->data.sequence.items.start);
		if (!(s = cfg_want_scalar(d, item, where, "an attribute name")))
			return -1;
		if (!attr_name_ok(s) || strlen(s) >= VRL_ATTR_MAX)
			return fail(d, item, where, "expected an attribute name (letters, digits, "
				    "_ . -; at most %u bytes), got \"%s\"", VRL_ATTR_MAX - 1, s);
		for (uint32_t i = 0; cfg_field_names[i]; i++)
			if (strcmp(s, cfg_field_names[i]) == 0)
				return fail(d, item, where, "%s is a built-in field, expected an "
					    "attribute name", s);
		if (declared(p, s))
			return fail(d, item, where, "attribute \"%s\" given twice, expected each "
				    "once", s);
		if (p->nattrs == VRL_DECLARED_MAX)
			return fail(d, item, where, "more than %u attributes, expected at most %u",
				    VRL_DECLARED_MAX, VRL_DECLARED_MAX);
		memcpy(p->attrs[p->nattrs++], s, strlen(s) + 1);
	}
	return 0;
}

/*
 * unmatched: deny | warn | allow. What a request that matches no limit gets:
 * refused with VRL_EUNMATCHED (deny, the default), granted and counted by
 * api in the segment (warn), or granted alone (allow). Deny by default, as
 * segment.on_full: such a request is a typo in a caller or a limit missing
 * from the config, and granting it sends unlimited traffic to a provider
 * while every figure says all is well; refused, it fails at its first call,
 * loudly, with a message that says what to check.
 */
int cfg_parse_unmatched(struct vrl_doc *d, yaml_node_t *n, uint32_t *flags)
{
	const char *s = cfg_want_scalar(d, n, "unmatched", "deny, warn or allow");
	char buf[VRL_GOT_MAX];

	if (!s)
		return -1;
	*flags &= ~(VRL_CFG_UNMATCHED_DENY | VRL_CFG_UNMATCHED_WARN);
	if (strcmp(s, "deny") == 0)
		*flags |= VRL_CFG_UNMATCHED_DENY;
	else if (strcmp(s, "warn") == 0)
		*flags |= VRL_CFG_UNMATCHED_WARN;
	else if (strcmp(s, "allow") != 0)
		return fail(d, n, "unmatched", "expected deny (refuse a request that matches no "
			    "limit), warn (grant it and count it by api) or allow (grant it), "
			    "got %s", cfg_got(n, buf));
	return 0;
}
