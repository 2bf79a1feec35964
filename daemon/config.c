/*
 * config.c - vrld's YAML config, parsed with libyaml's document API and
 * compiled into a struct vrl_seg_config. See config.h and the README for
 * the schema. Any error refuses the whole config, with file, line, column
 * and the field's path in the message.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "client.h"
#include "gcra.h"

#define NS_PER_S UINT64_C(1000000000)
#define DEFAULT_KEYS 65536u
#define MAX_PRESET_DEPTH 4

extern const char *const vrl_preset_names[];   /* presets.c, generated */
extern const char *const vrl_preset_texts[];

struct ctx {
	yaml_document_t *doc;
	const char *source;
	char *err;
	int depth;
};

static int fail(struct ctx *x, const yaml_node_t *n, const char *path, const char *fmt, ...)
{
	char what[VRL_CONFIG_ERR_MAX / 2];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(x->err, VRL_CONFIG_ERR_MAX, "%s:%zu:%zu: %s: %s", x->source,
		 n ? n->start_mark.line + 1 : 0, n ? n->start_mark.column + 1 : 0, path, what);
	return -1;
}

static yaml_node_t *node(struct ctx *x, int id)
{
	return yaml_document_get_node(x->doc, id);
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int want_scalar(struct ctx *x, const yaml_node_t *n, const char *path, const char **out)
{
	*out = scalar(n);
	return *out ? 0 : fail(x, n, path, "expected a single value");
}

/* ---- units ------------------------------------------------------------------ */

static const struct unit { const char *name; uint64_t ns; } units[] = {
	{ "ns", 1 }, { "us", 1000 }, { "ms", 1000000 },
	{ "s", NS_PER_S }, { "sec", NS_PER_S }, { "second", NS_PER_S }, { "seconds", NS_PER_S },
	{ "min", 60 * NS_PER_S }, { "minute", 60 * NS_PER_S }, { "minutes", 60 * NS_PER_S },
	{ "h", 3600 * NS_PER_S }, { "hour", 3600 * NS_PER_S }, { "hours", 3600 * NS_PER_S },
	{ "d", 86400 * NS_PER_S }, { "day", 86400 * NS_PER_S }, { "days", 86400 * NS_PER_S },
};

static int unit_ns(const char *s, uint64_t *ns)
{
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(s, units[i].name) == 0) {
			*ns = units[i].ns;
			return 0;
		}
	return -1;
}

/* "12", "1.5", "0.40235" times @unit, exactly in integers. */
static int decimal_times(const char **p, uint64_t unit, uint64_t *out)
{
	uint64_t whole = 0, frac = 0, scale = 1;
	const char *s = *p;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++)
		if (__builtin_mul_overflow(whole, 10, &whole) ||
		    __builtin_add_overflow(whole, (uint64_t)(*s - '0'), &whole))
			return -1;
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++) {
			if (scale >= NS_PER_S)
				continue;            /* below a nanosecond of a second */
			frac = frac * 10 + (uint64_t)(*s - '0');
			scale *= 10;
		}
	}
	if (__builtin_mul_overflow(whole, unit, out))
		return -1;
	/* frac/scale of a unit, rounded up: never shorter than written */
	__extension__ typedef unsigned __int128 u128;
	uint64_t part = (uint64_t)(((u128)frac * unit + scale - 1) / scale);

	if (__builtin_add_overflow(*out, part, out))
		return -1;
	*p = s;
	return 0;
}

int vrl_parse_duration(const char *s, uint64_t *ns)
{
	uint64_t unit = NS_PER_S;   /* a bare number is seconds */
	const char *p, *suffix;

	if (!s || !*s)
		return -1;
	for (suffix = s; (*suffix >= '0' && *suffix <= '9') || *suffix == '.'; suffix++)
		;
	if (*suffix && unit_ns(suffix, &unit) != 0)
		return -1;
	p = s;
	return decimal_times(&p, unit, ns) == 0 && p == suffix ? 0 : -1;
}

int vrl_parse_rate(const char *s, uint64_t *count, uint64_t *period_ns)
{
	const char *slash = s ? strchr(s, '/') : NULL;
	char *end;

	if (!slash || slash == s || s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	*count = strtoull(s, &end, 10);
	if (errno || end != slash || *count == 0)
		return -1;
	if (slash[1] >= '0' && slash[1] <= '9')
		return vrl_parse_duration(slash + 1, period_ns) == 0 && *period_ns > 0 ? 0 : -1;
	return unit_ns(slash + 1, period_ns);
}

/* ---- fields ------------------------------------------------------------------- */

static const char *const field_names[] = {
	[VRL_FIELD_API] = "api", [VRL_FIELD_ENDPOINT] = "endpoint", [VRL_FIELD_TOKEN] = "token",
	[VRL_FIELD_ORG] = "org", [VRL_FIELD_VEHICLE] = "vehicle", [VRL_FIELD_USER] = "user",
};

static int fieldref(struct ctx *x, const yaml_node_t *n, const char *path, const char *name,
		    struct vrl_seg_fieldref *f)
{
	memset(f, 0, sizeof(*f));
	for (int i = 0; i < VRL_FIELD_ATTR; i++)
		if (strcmp(name, field_names[i]) == 0) {
			f->field = (uint32_t)i;
			return 0;
		}
	if (name[0] == '\0' || strlen(name) >= VRL_ATTR_MAX)
		return fail(x, n, path, "attribute name \"%s\" must be 1 to %u bytes", name,
			    VRL_ATTR_MAX - 1);
	f->field = VRL_FIELD_ATTR;
	strcpy(f->attr, name);
	return 0;
}

/* ---- limits --------------------------------------------------------------------- */

static int limit_match(struct ctx *x, yaml_node_t *n, const char *path, struct vrl_seg_limit *l)
{
	if (n->type != YAML_MAPPING_NODE)
		return fail(x, n, path, "expected a mapping such as {api: samsara, make: tesla}");
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node(x, p->key), *v = node(x, p->value);
		struct vrl_seg_match *m;
		const char *key = scalar(k), *val;

		if (!key || want_scalar(x, v, path, &val))
			return key ? -1 : fail(x, k, path, "expected a field name");
		if (l->nmatch >= VRL_MAX_MATCH)
			return fail(x, k, path, "at most %u conditions", VRL_MAX_MATCH);
		m = &l->match[l->nmatch++];
		if (fieldref(x, k, path, key, &m->ref))
			return -1;
		if (strlen(val) >= VRL_PATTERN_MAX)
			return fail(x, v, path, "pattern longer than %u bytes", VRL_PATTERN_MAX - 1);
		strcpy(m->pattern, val);
		m->glob = strpbrk(val, "*?[") != NULL;
	}
	return 0;
}

static int limit_per(struct ctx *x, yaml_node_t *n, const char *path, struct vrl_seg_limit *l)
{
	if (n->type != YAML_SEQUENCE_NODE)
		return fail(x, n, path, "expected a list of fields such as [org] or [token, user]");
	for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
		yaml_node_t *v = node(x, *i);
		const char *name;

		if (want_scalar(x, v, path, &name))
			return -1;
		if (l->nper >= VRL_MAX_PER)
			return fail(x, v, path, "at most %u fields", VRL_MAX_PER);
		if (fieldref(x, v, path, name, &l->per[l->nper++]))
			return -1;
	}
	return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || *end ? -1 : 0;
}

static int limit_field(struct ctx *x, const char *key, yaml_node_t *v, const char *path,
		       struct vrl_seg_limit *l, const char **kind, bool *has_rate)
{
	const char *s;

	if (strcmp(key, "match") == 0)
		return limit_match(x, v, path, l);
	if (strcmp(key, "per") == 0)
		return limit_per(x, v, path, l);
	if (want_scalar(x, v, path, &s))
		return -1;
	if (strcmp(key, "name") == 0) {
		if (!*s || strlen(s) >= VRL_NAME_MAX)
			return fail(x, v, path, "a name of 1 to %u bytes", VRL_NAME_MAX - 1);
		strcpy(l->name, s);
	} else if (strcmp(key, "description") == 0) {
		/* for people; not compiled */
	} else if (strcmp(key, "kind") == 0) {
		if (strcmp(s, "rate") && strcmp(s, "gate"))
			return fail(x, v, path, "expected rate or gate, got \"%s\"", s);
		*kind = s;
	} else if (strcmp(key, "rate") == 0) {
		if (vrl_parse_rate(s, &l->count, &l->period_ns))
			return fail(x, v, path, "expected N/period such as 150/s, 2/min or "
				    "1/30s, got \"%s\"", s);
		*has_rate = true;
	} else if (strcmp(key, "burst") == 0) {
		if (parse_u64(s, &l->burst) || l->burst == 0)
			return fail(x, v, path, "expected a whole number of permits >= 1, got \"%s\"", s);
	} else if (strcmp(key, "shadow") == 0) {
		if (strcmp(s, "true") && strcmp(s, "false"))
			return fail(x, v, path, "expected true or false, got \"%s\"", s);
		l->flags |= strcmp(s, "true") == 0 ? VRL_LIMIT_SHADOW : 0;
	} else {
		return fail(x, v, path, "unknown field \"%s\" (known: name description kind "
			    "match per rate burst shadow)", key);
	}
	return 0;
}

static int limit_finish(struct ctx *x, yaml_node_t *n, const char *path, struct vrl_seg_limit *l,
			const char *kind, bool has_rate)
{
	struct vrl_gcra g;

	if (!l->name[0])
		return fail(x, n, path, "a limit needs a name");
	if (kind && strcmp(kind, "gate") == 0) {
		if (has_rate)
			return fail(x, n, path, "a gate has no rate");
		l->kind = VRL_KIND_GATE;
		return 0;
	}
	if (!has_rate)
		return fail(x, n, path, "a rate limit needs rate: (or kind: gate)");
	if (l->burst == 0)
		l->burst = 1;
	if (vrl_gcra_init(&g, l->count, l->period_ns, l->burst))
		return fail(x, n, path, "rate %llu per %llu ns with burst %llu is out of range",
			    (unsigned long long)l->count, (unsigned long long)l->period_ns,
			    (unsigned long long)l->burst);
	l->kind = VRL_KIND_RATE;
	l->emission_ns = g.emission_ns;
	l->tolerance_ns = g.tolerance_ns;
	return 0;
}

static int one_limit(struct ctx *x, yaml_node_t *n, unsigned idx, struct vrl_seg_config *cfg)
{
	struct vrl_seg_limit *l;
	const char *kind = NULL;
	bool has_rate = false;
	char path[64];

	snprintf(path, sizeof(path), "limits[%u]", idx);
	if (n->type != YAML_MAPPING_NODE)
		return fail(x, n, path, "expected a mapping with name, rate, ...");
	if (cfg->nlimits >= VRL_MAX_LIMITS)
		return fail(x, n, path, "at most %u limits", VRL_MAX_LIMITS);
	l = &cfg->limits[cfg->nlimits];
	memset(l, 0, sizeof(*l));
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		const char *key = scalar(node(x, p->key));
		char fpath[128];

		if (!key)
			return fail(x, node(x, p->key), path, "expected a field name");
		snprintf(fpath, sizeof(fpath), "%s.%s", path, key);
		if (limit_field(x, key, node(x, p->value), fpath, l, &kind, &has_rate))
			return -1;
	}
	if (limit_finish(x, n, path, l, kind, has_rate))
		return -1;
	for (uint32_t i = 0; i < cfg->nlimits; i++)
		if (strcmp(cfg->limits[i].name, l->name) == 0)
			return fail(x, n, path, "a limit named \"%s\" exists already", l->name);
	cfg->nlimits++;
	return 0;
}

static int limits(struct ctx *x, yaml_node_t *n, struct vrl_seg_config *cfg)
{
	unsigned idx = 0;

	if (n->type != YAML_SEQUENCE_NODE)
		return fail(x, n, "limits", "expected a list of limits");
	for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++)
		if (one_limit(x, node(x, *i), idx++, cfg))
			return -1;
	return 0;
}

/* ---- segment, daemon, presets ------------------------------------------------------ */

static int seg_field(struct ctx *x, const char *key, yaml_node_t *v, struct vrl_daemon_config *dc)
{
	char path[64];
	const char *s;
	char *end;

	snprintf(path, sizeof(path), "segment.%s", key);
	if (want_scalar(x, v, path, &s))
		return -1;
	if (strcmp(key, "name") == 0) {
		if (s[0] != '/' || strchr(s + 1, '/') || strlen(s) < 2 || strlen(s) >= VRL_SHM_NAME_MAX)
			return fail(x, v, path, "expected a name like /vrl: one leading '/', "
				    "no other, under %u bytes", VRL_SHM_NAME_MAX);
		strcpy(dc->seg.name, s);
	} else if (strcmp(key, "mode") == 0) {
		unsigned long m = strtoul(s, &end, 8);

		if (*end || !*s || m > 0777)
			return fail(x, v, path, "expected an octal mode such as \"0660\"");
		dc->seg.mode = (mode_t)m;
	} else if (strcmp(key, "group") == 0) {
		struct group *gr = getgrnam(s);

		if (!gr || strlen(s) >= sizeof(dc->group))
			return fail(x, v, path, "no group named \"%s\" on this host", s);
		dc->seg.gid = gr->gr_gid;
		strcpy(dc->group, s);
	} else if (strcmp(key, "keys") == 0) {
		if (parse_u64(s, &dc->seg.keys) || dc->seg.keys == 0 ||
		    dc->seg.keys > (UINT64_C(1) << 32))
			return fail(x, v, path, "expected a key capacity from 1 to 2^32");
	} else if (strcmp(key, "on_full") == 0) {
		if (strcmp(s, "deny") && strcmp(s, "allow"))
			return fail(x, v, path, "expected deny (fail closed) or allow (fail open)");
		dc->cfg.flags = strcmp(s, "allow") == 0 ? VRL_CFG_FAIL_OPEN : 0;
	} else {
		return fail(x, v, path, "unknown field (known: name mode group keys on_full)");
	}
	return 0;
}

static int daemon_field(struct ctx *x, const char *key, yaml_node_t *v,
			struct vrl_daemon_config *dc)
{
	char path[64];
	const char *s;
	uint64_t *dst;

	snprintf(path, sizeof(path), "daemon.%s", key);
	if (strcmp(key, "sweep_interval") == 0)
		dst = &dc->sweep_interval_ns;
	else if (strcmp(key, "idle_evict") == 0)
		dst = &dc->idle_evict_ns;
	else
		return fail(x, v, path, "unknown field (known: sweep_interval idle_evict)");
	if (want_scalar(x, v, path, &s))
		return -1;
	if (vrl_parse_duration(s, dst) || *dst == 0)
		return fail(x, v, path, "expected a duration such as 1s, 250ms or 10min");
	return 0;
}

static int section(struct ctx *x, yaml_node_t *n, const char *name,
		   int (*field)(struct ctx *, const char *, yaml_node_t *, struct vrl_daemon_config *),
		   struct vrl_daemon_config *dc)
{
	if (n->type != YAML_MAPPING_NODE)
		return fail(x, n, name, "expected a mapping");
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		const char *key = scalar(node(x, p->key));

		if (!key)
			return fail(x, node(x, p->key), name, "expected a field name");
		if (field(x, key, node(x, p->value), dc))
			return -1;
	}
	return 0;
}

static int parse_into(const char *text, size_t len, const char *source,
		      struct vrl_daemon_config *dc, char *err, int depth);

static int presets(struct ctx *x, yaml_node_t *n, struct vrl_daemon_config *dc)
{
	if (n->type != YAML_SEQUENCE_NODE)
		return fail(x, n, "presets", "expected a list such as [smartcar, samsara]");
	for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
		yaml_node_t *v = node(x, *i);
		const char *name, *text;

		if (want_scalar(x, v, "presets", &name))
			return -1;
		text = vrl_config_preset(name);
		if (!text)
			return fail(x, v, "presets", "no preset \"%s\" (known: default smartcar "
				    "samsara carsxe evenergy)", name);
		if (x->depth >= MAX_PRESET_DEPTH)
			return fail(x, v, "presets", "presets nest too deep");
		if (parse_into(text, strlen(text), name, dc, x->err, x->depth + 1))
			return -1;
	}
	return 0;
}

static int top(struct ctx *x, struct vrl_daemon_config *dc)
{
	yaml_node_t *root = yaml_document_get_root_node(x->doc);
	yaml_node_t *lim = NULL;

	if (!root)
		return 0; /* an empty file: defaults, no limits */
	if (root->type != YAML_MAPPING_NODE)
		return fail(x, root, "(top)", "expected a mapping with segment, daemon, presets, limits");
	/* presets first, wherever written: the file's own settings override
	 * theirs and its limits follow theirs */
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
		const char *key = scalar(node(x, p->key));

		if (key && strcmp(key, "presets") == 0 && presets(x, node(x, p->value), dc))
			return -1;
	}
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
		const char *key = scalar(node(x, p->key));
		yaml_node_t *v = node(x, p->value);
		int rc;

		if (!key)
			return fail(x, node(x, p->key), "(top)", "expected a section name");
		if (strcmp(key, "presets") == 0)
			rc = 0;
		else if (strcmp(key, "segment") == 0)
			rc = section(x, v, "segment", seg_field, dc);
		else if (strcmp(key, "daemon") == 0)
			rc = section(x, v, "daemon", daemon_field, dc);
		else if (strcmp(key, "limits") == 0)
			rc = (lim = v, 0);
		else
			rc = fail(x, node(x, p->key), key, "unknown section (known: segment daemon "
				  "presets limits)");
		if (rc)
			return rc;
	}
	return lim ? limits(x, lim, &dc->cfg) : 0;
}

static int parse_into(const char *text, size_t len, const char *source,
		      struct vrl_daemon_config *dc, char *err, int depth)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	struct ctx x = { .doc = &doc, .source = source, .err = err, .depth = depth };
	int rc;

	if (!yaml_parser_initialize(&parser)) {
		snprintf(err, VRL_CONFIG_ERR_MAX, "%s: out of memory", source);
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, VRL_CONFIG_ERR_MAX, "%s:%zu:%zu: (yaml): %s%s%s", source,
			 parser.problem_mark.line + 1, parser.problem_mark.column + 1,
			 parser.problem ? parser.problem : "syntax error",
			 parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return -1;
	}
	rc = top(&x, dc);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return rc;
}

int vrl_config_parse(const char *text, size_t len, const char *source,
		     struct vrl_daemon_config *out, char err[VRL_CONFIG_ERR_MAX])
{
	memset(out, 0, sizeof(*out));
	strcpy(out->seg.name, VRL_DEFAULT_SEGMENT);
	out->seg.mode = 0660;
	out->seg.gid = (gid_t)-1;
	out->seg.keys = DEFAULT_KEYS;
	out->sweep_interval_ns = NS_PER_S;
	out->idle_evict_ns = 600 * NS_PER_S;
	snprintf(out->cfg.source, sizeof(out->cfg.source), "%s", source);
	err[0] = '\0';
	return parse_into(text, len, source, out, err, 0);
}

int vrl_config_load(const char *path, struct vrl_daemon_config *out,
		    char err[VRL_CONFIG_ERR_MAX])
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long len;
	int rc;

	if (!f) {
		snprintf(err, VRL_CONFIG_ERR_MAX, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) ||
	    !(buf = malloc((size_t)len + 1))) {
		snprintf(err, VRL_CONFIG_ERR_MAX, "%s: cannot read", path);
		fclose(f);
		return -1;
	}
	if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
		snprintf(err, VRL_CONFIG_ERR_MAX, "%s: short read", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	rc = vrl_config_parse(buf, (size_t)len, path, out, err);
	free(buf);
	return rc;
}

const char *vrl_config_preset(const char *name)
{
	for (int i = 0; vrl_preset_names[i]; i++)
		if (strcmp(vrl_preset_names[i], name) == 0)
			return vrl_preset_texts[i];
	return NULL;
}

int vrl_config_default(struct vrl_daemon_config *out, char err[VRL_CONFIG_ERR_MAX])
{
	const char *text = vrl_config_preset("default");
	int rc = vrl_config_parse(text, strlen(text), "default", out, err);

	if (rc == 0)
		snprintf(out->cfg.source, sizeof(out->cfg.source), "built-in");
	return rc;
}
