/*
 * config_yaml.c - the config compiler's messages and libyaml node helpers.
 *
 * Every error reads "source:line:column: field-path: what is wrong, what was
 * expected"; cfg_fail_at() writes it and returns -1, so a parser ends with
 * `return fail(d, node, path, ...)`. Mappings are checked for unknown and
 * repeated keys before they are read, so a typo never passes silently.
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

#include "duration.h"

/* ---- messages ------------------------------------------------------------- */

int cfg_fail_at(struct vrl_doc *d, yaml_mark_t m, const char *path, const char *fmt, ...)
{
	char *err = d->p->err;
	va_list ap;
	int n;

	n = snprintf(err, VRL_CONFIG_ERR_MAX, "%s:%zu:%zu: %s: ", d->source, m.line + 1,
		     m.column + 1, path);
	if (n < 0 || n >= (int)VRL_CONFIG_ERR_MAX)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err + n, VRL_CONFIG_ERR_MAX - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

void cfg_pathf(char where[VRL_PATH_MAX], const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(where, VRL_PATH_MAX, fmt, ap);
	va_end(ap);
}

/* A short description of what @n holds, for "got ..." */
const char *cfg_got(const yaml_node_t *n, char buf[VRL_GOT_MAX])
{
	const char *v;
	size_t len;

	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	if (n->type == YAML_SEQUENCE_NODE)
		return "a list";
	v = (const char *)n->data.scalar.value;
	len = n->data.scalar.length;
	if (len > VRL_GOT_MAX - 6)
		snprintf(buf, VRL_GOT_MAX, "\"%.*s...\"", (int)(VRL_GOT_MAX - 6), v);
	else
		snprintf(buf, VRL_GOT_MAX, "\"%s\"", v);
	return buf;
}

/* ---- node helpers ---------------------------------------------------------- */

yaml_node_t *cfg_node(struct vrl_doc *d, int idx)
{
	return yaml_document_get_node(&d->y, idx);
}

const char *cfg_sval(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* A plain empty, ~ or null scalar: the key is there with no value. */
bool cfg_is_null(const yaml_node_t *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(cfg_sval(n), nulls[i]) == 0)
			return true;
	return false;
}

/* The text of scalar @n, or NULL after an error saying @what was expected. */
const char *cfg_want_scalar(struct vrl_doc *d, yaml_node_t *n, const char *path,
			       const char *what)
{
	char buf[VRL_GOT_MAX];

	if (n->type != YAML_SCALAR_NODE) {
		fail(d, n, path, "expected %s, got %s", what, cfg_got(n, buf));
		return NULL;
	}
	if (cfg_is_null(n)) {
		fail(d, n, path, "expected %s, got nothing", what);
		return NULL;
	}
	if (strlen(cfg_sval(n)) != n->data.scalar.length) {
		fail(d, n, path, "expected %s, got a value with a NUL byte", what);
		return NULL;
	}
	return cfg_sval(n);
}

int cfg_want_type(struct vrl_doc *d, yaml_node_t *n, yaml_node_type_t type, const char *path,
		     const char *what)
{
	char buf[VRL_GOT_MAX];

	if (n->type == type)
		return 0;
	return fail(d, n, path, "expected %s, got %s", what, cfg_is_null(n) ? "nothing" : cfg_got(n, buf));
}

/* The value of key @key in mapping @map, or NULL. Keys were checked unique. */
yaml_node_t *cfg_lookup(struct vrl_doc *d, yaml_node_t *map, const char *key)
{
	for (yaml_node_pair_t *kv = map->data.mapping.pairs.start;
	     kv < map->data.mapping.pairs.top; kv++) {
		yaml_node_t *k = cfg_node(d, kv->key);

		if (strcmp(cfg_sval(k), key) == 0)
			return cfg_node(d, kv->value);
	}
	return NULL;
}

static bool cfg_in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

void cfg_join(char *buf, size_t len, const char *const *list)
{
	size_t used = 0;

	buf[0] = '\0';
	for (; *list && used < len; list++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "", *list);
}

/*
 * Check that mapping @map has scalar keys, each once, each in @allowed (NULL:
 * any key). Returns 0 or -1 with the error written.
 */
int cfg_check_keys(struct vrl_doc *d, yaml_node_t *map, const char *path,
		      const char *const *allowed)
{
	yaml_node_pair_t *start = map->data.mapping.pairs.start;
	char where[VRL_PATH_MAX], names[256], buf[VRL_GOT_MAX];

	for (yaml_node_pair_t *kv = start; kv < map->data.mapping.pairs.top; kv++) {
		yaml_node_t *k = cfg_node(d, kv->key);

		if (k->type != YAML_SCALAR_NODE)
			return fail(d, k, path, "expected a key name, got %s", cfg_got(k, buf));
		cfg_pathf(where, "%s%s%s", path, *path ? "." : "", cfg_sval(k));
		if (allowed && !cfg_in_list(cfg_sval(k), allowed)) {
			cfg_join(names, sizeof(names), allowed);
			return fail(d, k, where, "unknown key, expected one of: %s", names);
		}
		for (yaml_node_pair_t *prev = start; prev < kv; prev++)
			if (strcmp(cfg_sval(cfg_node(d, prev->key)), cfg_sval(k)) == 0)
				return fail(d, k, where, "key given twice, expected it once");
	}
	return 0;
}

/* ---- scalar fields ----------------------------------------------------------- */

int cfg_get_u64(struct vrl_doc *d, yaml_node_t *n, const char *path, uint64_t min,
		   uint64_t *v)
{
	char buf[VRL_GOT_MAX];
	const char *s = cfg_want_scalar(d, n, path, "a whole number");

	if (!s)
		return -1;
	if (vrl_parse_count(s, NULL, v) != 0)
		return fail(d, n, path, "expected a whole number, got %s", cfg_got(n, buf));
	if (*v < min)
		return fail(d, n, path, "expected a whole number of at least %llu, got %s",
			    (unsigned long long)min, cfg_got(n, buf));
	return 0;
}

int cfg_get_bool(struct vrl_doc *d, yaml_node_t *n, const char *path, bool *v)
{
	char buf[VRL_GOT_MAX];
	const char *s = cfg_want_scalar(d, n, path, "true or false");

	if (!s)
		return -1;
	if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
		*v = s[0] == 't';
		return 0;
	}
	return fail(d, n, path, "expected true or false, got %s", cfg_got(n, buf));
}

/* A positive duration. */
int cfg_get_duration(struct vrl_doc *d, yaml_node_t *n, const char *path, uint64_t *ns)
{
	static const char expected[] = "expected a duration above zero such as 1s, 250ms or 10min";
	char buf[VRL_GOT_MAX];
	const char *s = cfg_want_scalar(d, n, path, "a duration such as 1s, 250ms or 10min");

	if (!s)
		return -1;
	if (vrl_parse_duration(s, ns) != 0 || *ns == 0)
		return fail(d, n, path, "%s, got %s", expected, cfg_got(n, buf));
	return 0;
}

/* A scalar copied into @dst of @cap bytes (NUL included). */
int cfg_get_text(struct vrl_doc *d, yaml_node_t *n, const char *path, const char *what,
		    char *dst, size_t cap)
{
	const char *s = cfg_want_scalar(d, n, path, what);

	if (!s)
		return -1;
	if (strlen(s) >= cap)
		return fail(d, n, path, "expected %s of at most %zu bytes, got %zu bytes", what,
			    cap - 1, strlen(s));
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}
