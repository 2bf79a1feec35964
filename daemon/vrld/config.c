/*
 * config.c - vrld's YAML config, read with libyaml's document API and
 * compiled into a struct vrl_seg_config.
 *
 * How a config is read:
 *   1. libyaml loads the text into a node tree (one document only). A
 *      syntax error is reported at libyaml's mark.
 *   2. The tree is walked section by section. Every mapping is checked first
 *      for unknown and repeated keys, so a typo never passes silently.
 *   3. `presets:` are read before `limits:`, each as a document of its own,
 *      so their limits come first. An included preset contributes its limits
 *      (and the presets it includes); its segment: and daemon: sections are
 *      checked but not applied.
 *   4. Each limit is compiled: fields resolved, the rate parsed to integers,
 *      the GCRA parameters computed by vrl_gcra_init.
 *
 * Every error reads "source:line:column: field-path: what is wrong, what was
 * expected", and one error refuses the whole config. The result is built in
 * private memory and copied to the caller only on success, so a failed
 * reload leaves the caller's config as it was.
 *
 * Numbers are parsed as integers throughout: a duration's fraction is read
 * as an integer numerator over a power of ten, so "0.40235" is 402350000 ns
 * exactly. A duration finer than a nanosecond is rounded up (never shorter
 * than written: a longer period or wait can only slow a rate).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "atomic_file.h"
#include "duration.h"
#include "gcra.h"
#include "presets.h"
#include "quota.h"
#include "window.h"

#define VRL_DEFAULT_MODE      0660u        /* segment.mode: owner and group read/write */
#define VRL_DEFAULT_KEYS      65536u       /* segment.keys */
#define VRL_DEFAULT_MAX_SIZE  (UINT64_C(4) << 30) /* segment.max_size: 4 GiB */
#define VRL_DEFAULT_SWEEP_NS  UINT64_C(1000000000)   /* daemon.sweep_interval: 1s */
#define VRL_DEFAULT_IDLE_NS   UINT64_C(600000000000) /* daemon.idle_evict: 10min */
#define VRL_DEFAULT_CKPT_NS   UINT64_C(10000000000)  /* daemon.checkpoint_interval: 10s */
#define VRL_DEFAULT_METRICS_TOP 20u        /* daemon.metrics_top: keys nearest their limit */
#define VRL_DEFAULT_TEXTFILE_MODE 0644u    /* daemon.metrics_textfile_mode: node_exporter reads it */
#define VRL_CONFIG_FILE_MAX   (1u << 20)   /* bytes of a config file we agree to read */
#define VRL_PATH_MAX          96u          /* bytes of a field path in a message */
#define VRL_ORIGIN_MAX        320u         /* bytes of "source:line:col" of a limit */
#define VRL_GOT_MAX           48u          /* bytes of a bad value quoted in a message */
#define VRL_PRESET_DEPTH      4u           /* presets including presets, at most */
#define VRL_NEST_MAX          32u          /* mappings and lists nested, at most (a valid
                                              config needs 6) */
#define VRL_ALERT_PCT_MAX     1000u        /* alerts: percent at most (soft quotas go past 100) */
#define VRL_LABEL_ATTRS_MAX   16u          /* attribute names labels.clear may list */
/* labels.clear when not written: fields whose values are names, not secrets */
#define VRL_DEFAULT_SHOWN     (1u << VRL_FIELD_API | 1u << VRL_FIELD_ENDPOINT | 1u << VRL_FIELD_ORG)

#define RATE_EXPECTED "expected N/period such as 150/s, 2/min or 1/30s"

/* State of one parse: the result, the error buffer and where limits came from. */
struct vrl_parse {
	struct vrl_daemon_config out;
	char *err;
	char origin[VRL_MAX_LIMITS][VRL_ORIGIN_MAX];
	uint32_t presets_seen;          /* bit i: vrl_presets[i] included */
	uint32_t groups;                /* override groups given out */
	unsigned depth;
};

/* One YAML document being read, named @source in messages. */
struct vrl_doc {
	struct vrl_parse *p;
	const char *source;
	yaml_document_t y;
};

/* labels: which per fields key labels show as written (the others hashed). */
struct vrl_labels {
	uint32_t fields;              /* bit f: built-in field f shown */
	unsigned nattrs;
	char attr[VRL_LABEL_ATTRS_MAX][VRL_ATTR_MAX];   /* attributes shown */
	yaml_mark_t attr_mark[VRL_LABEL_ATTRS_MAX];     /* where each was written */
};

/* The segment: and daemon: sections, applied only from the top document. */
struct vrl_settings {
	struct vrl_seg_spec seg;
	char group[64];
	uint64_t max_size;
	uint64_t sweep_interval_ns;
	uint64_t idle_evict_ns;
	char alert_command[VRL_ALERT_COMMAND_MAX];
	struct vrl_daemon_prod prod;
	uint32_t flags;
	bool shadow;                  /* shadow: true at the top: every limit in shadow */
	struct vrl_labels labels;
};

/* ---- messages ------------------------------------------------------------- */

static int fail_at(struct vrl_doc *d, yaml_mark_t m, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail_at(struct vrl_doc *d, yaml_mark_t m, const char *path, const char *fmt, ...)
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

#define fail(d, n_, path, ...) fail_at((d), (n_)->start_mark, (path), __VA_ARGS__)

/* Write a field path ("limits[2].rate") into @where; a long one is cut. */
static void pathf(char where[VRL_PATH_MAX], const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void pathf(char where[VRL_PATH_MAX], const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(where, VRL_PATH_MAX, fmt, ap);
	va_end(ap);
}

/* A short description of what @n holds, for "got ..." */
static const char *got(const yaml_node_t *n, char buf[VRL_GOT_MAX])
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

static yaml_node_t *node(struct vrl_doc *d, int idx)
{
	return yaml_document_get_node(&d->y, idx);
}

static const char *sval(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* A plain empty, ~ or null scalar: the key is there with no value. */
static bool is_null(const yaml_node_t *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(sval(n), nulls[i]) == 0)
			return true;
	return false;
}

/* The text of scalar @n, or NULL after an error saying @what was expected. */
static const char *want_scalar(struct vrl_doc *d, yaml_node_t *n, const char *path,
			       const char *what)
{
	char buf[VRL_GOT_MAX];

	if (n->type != YAML_SCALAR_NODE) {
		fail(d, n, path, "expected %s, got %s", what, got(n, buf));
		return NULL;
	}
	if (is_null(n)) {
		fail(d, n, path, "expected %s, got nothing", what);
		return NULL;
	}
	if (strlen(sval(n)) != n->data.scalar.length) {
		fail(d, n, path, "expected %s, got a value with a NUL byte", what);
		return NULL;
	}
	return sval(n);
}

static int want_type(struct vrl_doc *d, yaml_node_t *n, yaml_node_type_t type, const char *path,
		     const char *what)
{
	char buf[VRL_GOT_MAX];

	if (n->type == type)
		return 0;
	return fail(d, n, path, "expected %s, got %s", what, is_null(n) ? "nothing" : got(n, buf));
}

/* The value of key @key in mapping @map, or NULL. Keys were checked unique. */
static yaml_node_t *lookup(struct vrl_doc *d, yaml_node_t *map, const char *key)
{
	for (yaml_node_pair_t *kv = map->data.mapping.pairs.start;
	     kv < map->data.mapping.pairs.top; kv++) {
		yaml_node_t *k = node(d, kv->key);

		if (strcmp(sval(k), key) == 0)
			return node(d, kv->value);
	}
	return NULL;
}

static bool in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

static void join(char *buf, size_t len, const char *const *list)
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
static int check_keys(struct vrl_doc *d, yaml_node_t *map, const char *path,
		      const char *const *allowed)
{
	yaml_node_pair_t *start = map->data.mapping.pairs.start;
	char where[VRL_PATH_MAX], names[256], buf[VRL_GOT_MAX];

	for (yaml_node_pair_t *kv = start; kv < map->data.mapping.pairs.top; kv++) {
		yaml_node_t *k = node(d, kv->key);

		if (k->type != YAML_SCALAR_NODE)
			return fail(d, k, path, "expected a key name, got %s", got(k, buf));
		pathf(where, "%s%s%s", path, *path ? "." : "", sval(k));
		if (allowed && !in_list(sval(k), allowed)) {
			join(names, sizeof(names), allowed);
			return fail(d, k, where, "unknown key, expected one of: %s", names);
		}
		for (yaml_node_pair_t *prev = start; prev < kv; prev++)
			if (strcmp(sval(node(d, prev->key)), sval(k)) == 0)
				return fail(d, k, where, "key given twice, expected it once");
	}
	return 0;
}

/* ---- scalar fields ----------------------------------------------------------- */

static int get_u64(struct vrl_doc *d, yaml_node_t *n, const char *path, uint64_t min,
		   uint64_t *v)
{
	char buf[VRL_GOT_MAX];
	const char *s = want_scalar(d, n, path, "a whole number");

	if (!s)
		return -1;
	if (vrl_parse_count(s, NULL, v) != 0)
		return fail(d, n, path, "expected a whole number, got %s", got(n, buf));
	if (*v < min)
		return fail(d, n, path, "expected a whole number of at least %llu, got %s",
			    (unsigned long long)min, got(n, buf));
	return 0;
}

static int get_bool(struct vrl_doc *d, yaml_node_t *n, const char *path, bool *v)
{
	char buf[VRL_GOT_MAX];
	const char *s = want_scalar(d, n, path, "true or false");

	if (!s)
		return -1;
	if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
		*v = s[0] == 't';
		return 0;
	}
	return fail(d, n, path, "expected true or false, got %s", got(n, buf));
}

/* A positive duration. */
static int get_duration(struct vrl_doc *d, yaml_node_t *n, const char *path, uint64_t *ns)
{
	static const char expected[] = "expected a duration above zero such as 1s, 250ms or 10min";
	char buf[VRL_GOT_MAX];
	const char *s = want_scalar(d, n, path, "a duration such as 1s, 250ms or 10min");

	if (!s)
		return -1;
	if (vrl_parse_duration(s, ns) != 0 || *ns == 0)
		return fail(d, n, path, "%s, got %s", expected, got(n, buf));
	return 0;
}

/* A scalar copied into @dst of @cap bytes (NUL included). */
static int get_text(struct vrl_doc *d, yaml_node_t *n, const char *path, const char *what,
		    char *dst, size_t cap)
{
	const char *s = want_scalar(d, n, path, what);

	if (!s)
		return -1;
	if (strlen(s) >= cap)
		return fail(d, n, path, "expected %s of at most %zu bytes, got %zu bytes", what,
			    cap - 1, strlen(s));
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

/* ---- segment: and daemon: ---------------------------------------------------- */

static int seg_name(struct vrl_doc *d, yaml_node_t *n, struct vrl_settings *st)
{
	const char *path = "segment.name";
	char buf[VRL_GOT_MAX];

	if (get_text(d, n, path, "a shared-memory name such as /vrl", st->seg.name,
		     sizeof(st->seg.name)) != 0)
		return -1;
	if (st->seg.name[0] != '/' || st->seg.name[1] == '\0' || strchr(st->seg.name + 1, '/'))
		return fail(d, n, path, "expected a name of one '/' then at least one "
			    "character, such as /vrl, got %s", got(n, buf));
	return 0;
}

/* A mode is read as octal, as chmod(1) does: "0660", 0660 and 660 agree. */
static int get_mode(struct vrl_doc *d, yaml_node_t *n, const char *path, const char *example,
		    mode_t *mode)
{
	const char *s = want_scalar(d, n, path, "an octal mode");
	char buf[VRL_GOT_MAX], *end;
	unsigned long m;

	if (!s)
		return -1;
	if (strncmp(s, "0o", 2) == 0)
		s += 2;
	errno = 0;
	m = strtoul(s, &end, 8);
	if (!isdigit((unsigned char)*s) || *end != '\0' || errno != 0 || m > 0777)
		return fail(d, n, path, "expected an octal mode such as \"%s\" (at most 0777), "
			    "got %s", example, got(n, buf));
	*mode = (mode_t)m;
	return 0;
}

static int seg_mode(struct vrl_doc *d, yaml_node_t *n, struct vrl_settings *st)
{
	const char *path = "segment.mode";
	char buf[VRL_GOT_MAX];
	mode_t m;

	if (get_mode(d, n, path, "0660", &m))
		return -1;
	if ((m & 0600) != 0600)
		return fail(d, n, path, "the owner (vrld) needs read and write: expected a mode "
			    "with 0600 set, got %s", got(n, buf));
	st->seg.mode = (mode_t)m;
	return 0;
}

/* Look up group @name; a number that names no group is taken as a gid. */
static int resolve_group(const char *name, gid_t *gid)
{
	long sz = sysconf(_SC_GETGR_R_SIZE_MAX);
	size_t len = sz > 0 ? (size_t)sz : 1024;
	struct group gr, *res = NULL;
	uint64_t num;
	int rc;

	for (;;) {
		char *buf = malloc(len);

		if (!buf)
			return -1;
		rc = getgrnam_r(name, &gr, buf, len, &res);
		if (rc == 0 && res)
			*gid = gr.gr_gid;
		free(buf);
		if (rc != ERANGE || len > (1u << 20))
			break;
		len *= 2;
	}
	if (rc == 0 && res)
		return 0;
	if (vrl_parse_count(name, NULL, &num) == 0 && num < (gid_t)-1) {
		*gid = (gid_t)num;
		return 0;
	}
	return -1;
}

static int seg_group(struct vrl_doc *d, yaml_node_t *n, struct vrl_settings *st)
{
	const char *path = "segment.group";

	if (get_text(d, n, path, "a group name", st->group, sizeof(st->group)) != 0)
		return -1;
	if (resolve_group(st->group, &st->seg.gid) != 0)
		return fail(d, n, path, "unknown group \"%s\", expected a group of this host "
			    "(see getent group)", st->group);
	return 0;
}

static int seg_keys(struct vrl_doc *d, yaml_node_t *n, struct vrl_settings *st)
{
	struct vrl_seg_geometry g;

	if (get_u64(d, n, "segment.keys", 1, &st->seg.keys) != 0)
		return -1;
	if (vrl_seg_geometry(st->seg.keys, &g) != 0)
		return fail(d, n, "segment.keys", "a segment of %llu keys does not fit in memory, "
			    "expected fewer keys", (unsigned long long)st->seg.keys);
	return 0;
}

/* A size in bytes: a number, or one with a binary unit ("4GiB", "512MiB"). */
static int seg_max_size(struct vrl_doc *d, yaml_node_t *n, struct vrl_settings *st)
{
	static const struct { const char *unit; unsigned shift; } units[] = {
		{ "", 0 }, { "B", 0 }, { "KiB", 10 }, { "MiB", 20 }, { "GiB", 30 }, { "TiB", 40 },
		{ "PiB", 50 },
	};
	const char *path = "segment.max_size", *s = want_scalar(d, n, path, "a size such as 4GiB");
	char buf[VRL_GOT_MAX];
	uint64_t v;

	if (!s)
		return -1;
	if (vrl_parse_count(s, &s, &v) == 0) {
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			if (strcmp(s, units[i].unit) != 0)
				continue;
			if (v == 0 || v > (UINT64_MAX >> units[i].shift))
				break;
			st->max_size = v << units[i].shift;
			return 0;
		}
	}
	return fail(d, n, path, "expected a size above zero such as 4GiB, 512MiB or a number "
		    "of bytes (units: KiB, MiB, GiB, TiB, PiB), got %s", got(n, buf));
}

static int seg_on_full(struct vrl_doc *d, yaml_node_t *n, struct vrl_settings *st)
{
	const char *path = "segment.on_full", *s = want_scalar(d, n, path, "deny or allow");
	char buf[VRL_GOT_MAX];

	if (!s)
		return -1;
	if (strcmp(s, "deny") == 0)
		st->flags &= ~VRL_CFG_FAIL_OPEN;
	else if (strcmp(s, "allow") == 0)
		st->flags |= VRL_CFG_FAIL_OPEN;
	else
		return fail(d, n, path, "expected deny (fail closed) or allow (fail open), got %s",
			    got(n, buf));
	return 0;
}

static int parse_segment(struct vrl_doc *d, yaml_node_t *map, struct vrl_settings *st)
{
	static const char *const keys[] = { "name", "mode", "group", "keys", "max_size", "on_full",
					    NULL };
	yaml_node_t *v;

	if (want_type(d, map, YAML_MAPPING_NODE, "segment", "a mapping of name, mode, ...") ||
	    check_keys(d, map, "segment", keys))
		return -1;
	if ((v = lookup(d, map, "name")) && seg_name(d, v, st))
		return -1;
	if ((v = lookup(d, map, "mode")) && seg_mode(d, v, st))
		return -1;
	if ((v = lookup(d, map, "group")) && seg_group(d, v, st))
		return -1;
	if ((v = lookup(d, map, "keys")) && seg_keys(d, v, st))
		return -1;
	if ((v = lookup(d, map, "max_size")) && seg_max_size(d, v, st))
		return -1;
	if ((v = lookup(d, map, "on_full")) && seg_on_full(d, v, st))
		return -1;
	return 0;
}

static int parse_daemon_prod(struct vrl_doc *d, yaml_node_t *map, struct vrl_daemon_prod *pr)
{
	yaml_node_t *v;

	if ((v = lookup(d, map, "checkpoint")) &&
	    get_text(d, v, "daemon.checkpoint", "a file path", pr->checkpoint,
		     sizeof(pr->checkpoint)))
		return -1;
	if ((v = lookup(d, map, "checkpoint_interval")) &&
	    get_duration(d, v, "daemon.checkpoint_interval", &pr->checkpoint_interval_ns))
		return -1;
	if ((v = lookup(d, map, "metrics"))) {
		if (get_text(d, v, "daemon.metrics", "host:port such as 127.0.0.1:9477",
			     pr->metrics, sizeof(pr->metrics)))
			return -1;
		if (!strrchr(pr->metrics, ':'))
			return fail(d, v, "daemon.metrics", "\"%s\" has no port, expected "
				    "host:port such as 127.0.0.1:9477", pr->metrics);
	}
	if ((v = lookup(d, map, "metrics_textfile")) &&
	    get_text(d, v, "daemon.metrics_textfile", "a file path", pr->metrics_textfile,
		     sizeof(pr->metrics_textfile)))
		return -1;
	if ((v = lookup(d, map, "metrics_textfile_mode"))) {
		if (get_mode(d, v, "daemon.metrics_textfile_mode", "0644",
			     &pr->metrics_textfile_mode))
			return -1;
		/* others could rewrite the figures between two of vrld's writes */
		if (pr->metrics_textfile_mode & 0022)
			return fail(d, v, "daemon.metrics_textfile_mode", "%04o lets the group or "
				    "others write vrld's metrics, expected a mode without 0022 "
				    "such as \"0644\" or \"0640\"",
				    (unsigned)pr->metrics_textfile_mode);
	}
	if ((v = lookup(d, map, "metrics_top")) &&
	    get_u64(d, v, "daemon.metrics_top", 0, &pr->metrics_top))
		return -1;
	return 0;
}

static int parse_daemon(struct vrl_doc *d, yaml_node_t *map, struct vrl_settings *st)
{
	static const char *const keys[] = { "sweep_interval", "idle_evict", "alert_command",
		"checkpoint", "checkpoint_interval", "metrics", "metrics_textfile",
		"metrics_textfile_mode", "metrics_top", NULL };
	yaml_node_t *v;

	if (want_type(d, map, YAML_MAPPING_NODE, "daemon", "a mapping of sweep_interval, ...") ||
	    check_keys(d, map, "daemon", keys))
		return -1;
	if ((v = lookup(d, map, "sweep_interval")) &&
	    get_duration(d, v, "daemon.sweep_interval", &st->sweep_interval_ns))
		return -1;
	if ((v = lookup(d, map, "idle_evict")) &&
	    get_duration(d, v, "daemon.idle_evict", &st->idle_evict_ns))
		return -1;
	if ((v = lookup(d, map, "alert_command")) &&
	    get_text(d, v, "daemon.alert_command", "an absolute path", st->alert_command,
		     sizeof(st->alert_command)))
		return -1;
	/* run without a shell or a PATH search: the exact program is named */
	if (v && st->alert_command[0] != '/')
		return fail(d, v, "daemon.alert_command", "expected an absolute path such as "
			    "/usr/local/bin/vrl-alert, got \"%s\"", st->alert_command);
	return parse_daemon_prod(d, map, &st->prod);
}

/* ---- fields -------------------------------------------------------------------- */

/* Built-in request fields, by enum vrl_field. */
static const char *const vrl_field_names[] = {
	"api", "endpoint", "token", "org", "vehicle", "user", NULL
};

/* Optimal string alignment distance, for names of fewer than VRL_ATTR_MAX bytes. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), dist[VRL_ATTR_MAX + 1][VRL_ATTR_MAX + 1];

	for (size_t i = 0; i <= la; i++)
		dist[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		dist[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
			size_t best = dist[i - 1][j - 1] + cost;

			if (dist[i - 1][j] + 1 < best)
				best = dist[i - 1][j] + 1;
			if (dist[i][j - 1] + 1 < best)
				best = dist[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    dist[i - 2][j - 2] + 1 < best)
				best = dist[i - 2][j - 2] + 1;
			dist[i][j] = best;
		}
	}
	return dist[la][lb];
}

/*
 * The built-in field that attribute name @s looks like a typo of ("tokn",
 * "Vehicle", "orgs"), or NULL. Names of three letters are left alone, so an
 * attribute "app" is not taken for "api".
 */
static const char *near_field(const char *s)
{
	for (size_t i = 0; vrl_field_names[i]; i++) {
		size_t lf = strlen(vrl_field_names[i]), ls = strlen(s);

		if ((lf > 3 || ls > 3) && edit_distance(s, vrl_field_names[i]) <= 1)
			return vrl_field_names[i];
	}
	return NULL;
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
static int get_field(struct vrl_doc *d, yaml_node_t *n, const char *path, const char *s,
		     struct vrl_seg_fieldref *ref)
{
	const char *near;

	memset(ref, 0, sizeof(*ref));
	for (uint32_t i = 0; vrl_field_names[i]; i++) {
		if (strcmp(s, vrl_field_names[i]) == 0) {
			ref->field = i;
			return 0;
		}
	}
	if (!attr_name_ok(s) || strlen(s) >= VRL_ATTR_MAX)
		return fail(d, n, path, "unknown field \"%s\", expected api, endpoint, token, org, "
			    "vehicle, user or an attribute name (letters, digits, _ . -; at most "
			    "%u bytes)", s, VRL_ATTR_MAX - 1);
	if ((near = near_field(s)))
		return fail(d, n, path, "unknown field \"%s\", expected %s (an attribute name "
			    "must not be one letter away from a built-in field)", s, near);
	if (strcmp(s, "cost") == 0)
		return fail(d, n, path, "unknown field \"cost\": cost is the units a request "
			    "takes, not a field, expected api, endpoint, token, org, vehicle, user "
			    "or an attribute name");
	ref->field = VRL_FIELD_ATTR;
	memcpy(ref->attr, s, strlen(s) + 1);
	return 0;
}

/* ---- labels ------------------------------------------------------------------- */

/* Add field @s of labels.clear (at @n) to @lb. */
static int label_shown(struct vrl_doc *d, yaml_node_t *n, const char *path, const char *s,
		       struct vrl_labels *lb)
{
	struct vrl_seg_fieldref ref;

	if (get_field(d, n, path, s, &ref))
		return -1;
	if (ref.field == VRL_FIELD_TOKEN)
		return fail(d, n, path, "a token is an API secret: key labels always show its "
			    "hash (vrlctl hash), expected api, endpoint, org, vehicle, user or an "
			    "attribute; to tell tokens apart by name, pass a token id as token");
	if (ref.field != VRL_FIELD_ATTR) {
		if (lb->fields & (1u << ref.field))
			return fail(d, n, path, "field \"%s\" given twice, expected each once", s);
		lb->fields |= 1u << ref.field;
		return 0;
	}
	for (unsigned i = 0; i < lb->nattrs; i++)
		if (strcmp(lb->attr[i], ref.attr) == 0)
			return fail(d, n, path, "field \"%s\" given twice, expected each once", s);
	if (lb->nattrs == VRL_LABEL_ATTRS_MAX)
		return fail(d, n, path, "more than %u attributes, expected at most %u",
			    VRL_LABEL_ATTRS_MAX, VRL_LABEL_ATTRS_MAX);
	memcpy(lb->attr[lb->nattrs], ref.attr, sizeof(ref.attr));
	lb->attr_mark[lb->nattrs++] = n->start_mark;
	return 0;
}

/* labels: {clear: [field, ...]}: the fields key labels show as written. */
static int parse_labels(struct vrl_doc *d, yaml_node_t *map, struct vrl_labels *lb)
{
	static const char *const keys[] = { "clear", NULL };
	char where[VRL_PATH_MAX];
	yaml_node_t *seq;

	if (want_type(d, map, YAML_MAPPING_NODE, "labels", "a mapping such as {clear: [org]}") ||
	    check_keys(d, map, "labels", keys))
		return -1;
	if (!(seq = lookup(d, map, "clear")))
		return 0;
	memset(lb, 0, sizeof(*lb));
	if (is_null(seq))
		return 0;
	if (want_type(d, seq, YAML_SEQUENCE_NODE, "labels.clear",
		      "a list of fields such as [org, vehicle]"))
		return -1;
	for (yaml_node_item_t *it = seq->data.sequence.items.start;
	     it < seq->data.sequence.items.top; it++) {
		yaml_node_t *item = node(d, *it);
		const char *f;

		pathf(where, "labels.clear[%td]", it - seq->data.sequence.items.start);
		if (!(f = want_scalar(d, item, where, "a field name")) ||
		    label_shown(d, item, where, f, lb))
			return -1;
	}
	return 0;
}

/* True when a limit of @cfg is keyed by attribute @attr. */
static bool keyed_by_attr(const struct vrl_seg_config *cfg, const char *attr)
{
	for (uint32_t i = 0; i < cfg->nlimits; i++)
		for (uint32_t j = 0; j < cfg->limits[i].nper; j++)
			if (cfg->limits[i].per[j].field == VRL_FIELD_ATTR &&
			    strcmp(cfg->limits[i].per[j].attr, attr) == 0)
				return true;
	return false;
}

/* Mark the per fields of every limit that labels show (VRL_REF_CLEAR), once
 * all limits are read; an attribute no limit is keyed by is an error (a
 * typo would otherwise pass silently). */
static int labels_apply(struct vrl_parse *p, const char *source, const struct vrl_labels *lb)
{
	struct vrl_doc d = { .p = p, .source = source };
	struct vrl_seg_config *cfg = &p->out.cfg;
	char where[VRL_PATH_MAX];

	for (unsigned i = 0; i < lb->nattrs; i++) {
		if (keyed_by_attr(cfg, lb->attr[i]))
			continue;
		pathf(where, "labels.clear");
		return fail_at(&d, lb->attr_mark[i], where, "unknown field \"%s\": no limit is "
			       "keyed by it, expected api, endpoint, org, vehicle, user or an "
			       "attribute in some limit's per:", lb->attr[i]);
	}
	for (uint32_t i = 0; i < cfg->nlimits; i++) {
		for (uint32_t j = 0; j < cfg->limits[i].nper; j++) {
			struct vrl_seg_fieldref *f = &cfg->limits[i].per[j];
			bool shown = f->field == VRL_FIELD_ATTR ? false : (lb->fields >> f->field) & 1u;

			for (unsigned a = 0; f->field == VRL_FIELD_ATTR && a < lb->nattrs; a++)
				shown |= strcmp(lb->attr[a], f->attr) == 0;
			if (shown)
				f->flags |= VRL_REF_CLEAR;
		}
	}
	return 0;
}

/* ---- one limit ------------------------------------------------------------------ */

static bool limit_name_ok(const char *s)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return false;
	return true;
}

static int limit_name(struct vrl_doc *d, yaml_node_t *n, const char *path,
		      struct vrl_seg_limit *l)
{
	struct vrl_parse *p = d->p;
	char where[VRL_PATH_MAX];

	pathf(where, "%s.name", path);
	if (get_text(d, n, where, "a limit name", l->name, sizeof(l->name)) != 0)
		return -1;
	if (!limit_name_ok(l->name))
		return fail(d, n, where, "expected a name of letters, digits, '_', '.' and '-' "
			    "such as samsara.token, got \"%s\"", l->name);
	for (uint32_t i = 0; i < p->out.cfg.nlimits; i++)
		if (strcmp(p->out.cfg.limits[i].name, l->name) == 0)
			return fail(d, n, where, "duplicate limit name \"%s\" (first defined at "
				    "%s), expected each name once", l->name, p->origin[i]);
	return 0;
}

static int limit_kind(struct vrl_doc *d, yaml_node_t *n, const char *path, uint32_t *kind)
{
	static const struct { const char *name; uint32_t kind; } kinds[] = {
		{ "rate", VRL_KIND_RATE }, { "gate", VRL_KIND_GATE },
		{ "quota", VRL_KIND_QUOTA }, { "slots", VRL_KIND_SLOTS },
		{ "window", VRL_KIND_WINDOW },
	};
	char where[VRL_PATH_MAX], buf[VRL_GOT_MAX];
	const char *s;

	pathf(where, "%s.kind", path);
	if (!(s = want_scalar(d, n, where, "rate, window, gate, quota or slots")))
		return -1;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(s, kinds[i].name) == 0) {
			*kind = kinds[i].kind;
			return 0;
		}
	return fail(d, n, where, "unknown kind %s, expected rate (GCRA), window (exact "
		    "rolling window), gate (cooldown only), quota (units per calendar "
		    "period) or slots (at most N held at once)", got(n, buf));
}

static int limit_per(struct vrl_doc *d, yaml_node_t *n, const char *path,
		     struct vrl_seg_limit *l)
{
	char where[VRL_PATH_MAX];
	size_t count;

	pathf(where, "%s.per", path);
	if (want_type(d, n, YAML_SEQUENCE_NODE, where, "a list of fields such as [token]"))
		return -1;
	count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (count > VRL_MAX_PER)
		return fail(d, n, where, "%zu fields, expected at most %u", count, VRL_MAX_PER);
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *item = node(d, n->data.sequence.items.start[i]);
		const char *s;

		pathf(where, "%s.per[%zu]", path, i);
		if (!(s = want_scalar(d, item, where, "a field name")) ||
		    get_field(d, item, where, s, &l->per[i]))
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

static int limit_match(struct vrl_doc *d, yaml_node_t *n, const char *path,
		       struct vrl_seg_limit *l)
{
	char where[VRL_PATH_MAX];
	size_t count;

	pathf(where, "%s.match", path);
	if (want_type(d, n, YAML_MAPPING_NODE, where, "a mapping such as {api: samsara}"))
		return -1;
	/* counted first: check_keys compares every key with each before it */
	count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	if (count > VRL_MAX_MATCH)
		return fail(d, n, where, "%zu conditions, expected at most %u", count, VRL_MAX_MATCH);
	if (check_keys(d, n, where, NULL))
		return -1;
	for (size_t i = 0; i < count; i++) {
		yaml_node_pair_t *kv = &n->data.mapping.pairs.start[i];
		yaml_node_t *k = node(d, kv->key), *v = node(d, kv->value);
		struct vrl_seg_match *m = &l->match[i];

		pathf(where, "%s.match.%s", path, sval(k));
		if (get_field(d, k, where, sval(k), &m->ref) ||
		    get_text(d, v, where, "a value or glob pattern", m->pattern, sizeof(m->pattern)))
			return -1;
		m->glob = is_glob(m->pattern);
	}
	l->nmatch = (uint32_t)count;
	return 0;
}

static int limit_rate(struct vrl_doc *d, yaml_node_t *n, const char *path,
		      struct vrl_seg_limit *l)
{
	char where[VRL_PATH_MAX], buf[VRL_GOT_MAX];
	const char *s;

	pathf(where, "%s.rate", path);
	if (!(s = want_scalar(d, n, where, "N/period such as 150/s")))
		return -1;
	if (vrl_parse_rate(s, &l->count, &l->period_ns) != 0)
		return fail(d, n, where, RATE_EXPECTED ", got %s", got(n, buf));
	return 0;
}

/*
 * A window: `limit: N` grants in any interval of `window: W`, with rings for
 * `keys: K` keys (8 N bytes each, laid out in the segment at creation).
 */
static int limit_window(struct vrl_doc *d, yaml_node_t *map, const char *path,
			struct vrl_seg_limit *l)
{
	yaml_node_t *limit = lookup(d, map, "limit"), *window = lookup(d, map, "window");
	yaml_node_t *keys = lookup(d, map, "keys");
	char where[VRL_PATH_MAX];

	if (!limit || !window || !keys)
		return fail(d, map, path, "missing %s, a window needs limit: N (grants), "
			    "window: W (a duration such as 1h) and keys: K (keys it holds "
			    "rings for, 8 N bytes each)",
			    !limit ? "limit:" : !window ? "window:" : "keys:");
	pathf(where, "%s.limit", path);
	if (get_u64(d, limit, where, 1, &l->count))
		return -1;
	if (l->count > VRL_WINDOW_MAX_N)
		return fail(d, limit, where, "limit %llu is too large a ring, expected at most "
			    "%llu grants per window", (unsigned long long)l->count,
			    (unsigned long long)VRL_WINDOW_MAX_N);
	pathf(where, "%s.window", path);
	if (get_duration(d, window, where, &l->period_ns))
		return -1;
	pathf(where, "%s.keys", path);
	if (get_u64(d, keys, where, 1, &l->area_keys))
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
	yaml_node_t *rate = lookup(d, map, "rate"), *burst = lookup(d, map, "burst");
	char where[VRL_PATH_MAX];
	int rc;

	if (!rate && !inherit)
		return fail(d, map, path, "missing rate:, " RATE_EXPECTED " (or kind: gate for "
			    "a cooldown-only limit)");
	if (rate && limit_rate(d, rate, path, l))
		return -1;
	if (!inherit)
		l->burst = 1;
	pathf(where, "%s.burst", path);
	if (burst && get_u64(d, burst, where, 1, &l->burst))
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
	yaml_node_t *n = lookup(d, map, "count");
	char where[VRL_PATH_MAX];

	if (!n && inherit)
		return 0;
	if (!n)
		return fail(d, map, path, "missing count:, expected the %s such as count: 500",
			    l->kind == VRL_KIND_QUOTA ? "units per period" : "units held at most");
	pathf(where, "%s.count", path);
	if (get_u64(d, n, where, 1, &l->count))
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
	yaml_node_t *n = lookup(d, map, "calendar"), *a = lookup(d, map, "anchor");
	char where[VRL_PATH_MAX], buf[VRL_GOT_MAX];
	uint64_t v;
	const char *s;

	l->calendar = VRL_CAL_MONTH;
	if (n) {
		pathf(where, "%s.calendar", path);
		if (!(s = want_scalar(d, n, where, "month, week, day or once")))
			return -1;
		for (l->calendar = 0; cals[l->calendar] && strcmp(cals[l->calendar], s); )
			l->calendar++;
		if (!cals[l->calendar])
			return fail(d, n, where, "unknown calendar %s, expected month, week, day "
				    "or once (a trial allowance that never resets)", got(n, buf));
		l->calendar++;   /* VRL_CAL_MONTH is 1 */
	}
	if (!a)
		return 0;
	pathf(where, "%s.anchor", path);
	if (l->calendar == VRL_CAL_DAY || l->calendar == VRL_CAL_ONCE)
		return fail(d, a, where, "a %s quota has no anchor, expected anchor: only with "
			    "calendar: month (a day 1..31) or week (a weekday)", cals[l->calendar - 1]);
	if (!(s = want_scalar(d, a, where, "an anchor")))
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
				    "got %s", got(a, buf));
	} else if (vrl_parse_count(s, NULL, &v) != 0 || v < 1 || v > 31) {
		return fail(d, a, where, "expected the billing day of the month, 1 .. 31 (clamped "
			    "to the month's length), got %s", got(a, buf));
	}
	l->anchor = (uint32_t)v;
	return 0;
}

static int quota_alerts(struct vrl_doc *d, yaml_node_t *n, const char *path,
			struct vrl_seg_limit *l)
{
	char where[VRL_PATH_MAX];
	size_t count;

	pathf(where, "%s.alerts", path);
	if (want_type(d, n, YAML_SEQUENCE_NODE, where, "a list of percentages such as [80, 90, 100]"))
		return -1;
	count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (count > VRL_MAX_ALERTS)
		return fail(d, n, where, "%zu thresholds, expected at most %u", count,
			    VRL_MAX_ALERTS);
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *item = node(d, n->data.sequence.items.start[i]);
		uint64_t pct;

		pathf(where, "%s.alerts[%zu]", path, i);
		if (get_u64(d, item, where, 1, &pct))
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
	yaml_node_t *n = lookup(d, map, key);
	char where[VRL_PATH_MAX];
	bool on = false;

	if (!n)
		return 0;
	pathf(where, "%s.%s", path, key);
	if (get_bool(d, n, where, &on))
		return -1;
	l->flags = on ? l->flags | flag : l->flags & ~flag;
	return 0;
}

/* Keys that only some kinds take: a limit of another kind must not have them. */
static int kind_keys(struct vrl_doc *d, yaml_node_t *map, const char *path, uint32_t kind)
{
	static const struct { const char *key; uint32_t kinds; } only[] = {
		{ "rate", 1u << VRL_KIND_RATE },
		{ "burst", 1u << VRL_KIND_RATE },
		{ "count", 1u << VRL_KIND_QUOTA | 1u << VRL_KIND_SLOTS },
		{ "calendar", 1u << VRL_KIND_QUOTA },
		{ "anchor", 1u << VRL_KIND_QUOTA },
		{ "overage", 1u << VRL_KIND_QUOTA },
		{ "alerts", 1u << VRL_KIND_QUOTA | 1u << VRL_KIND_SLOTS },
		{ "persistent", 1u << VRL_KIND_SLOTS },
		{ "limit", 1u << VRL_KIND_WINDOW },
		{ "window", 1u << VRL_KIND_WINDOW },
		{ "keys", 1u << VRL_KIND_WINDOW },
		{ "pool", 1u << VRL_KIND_QUOTA | 1u << VRL_KIND_RATE },
		{ "overrides", 1u << VRL_KIND_QUOTA | 1u << VRL_KIND_RATE | 1u << VRL_KIND_SLOTS },
	};
	static const char *const names[] = { "", "rate", "gate", "window", "quota", "slots" };
	char where[VRL_PATH_MAX], takers[64];

	for (size_t i = 0; i < sizeof(only) / sizeof(only[0]); i++) {
		yaml_node_t *n = lookup(d, map, only[i].key);
		size_t used = 0;

		if (!n || (only[i].kinds & (1u << kind)))
			continue;
		pathf(where, "%s.%s", path, only[i].key);
		if (kind == VRL_KIND_GATE && (i == 0 || i == 1))
			return fail(d, n, where, "a gate has no rate or burst, expected kind: rate "
				    "to limit a rate");
		if (kind == VRL_KIND_WINDOW && (i == 0 || i == 1))
			return fail(d, n, where, "a window has no rate or burst, expected limit: N "
				    "and window: W such as limit: 1000 and window: 1h");
		takers[0] = '\0';
		for (uint32_t k = 1; k < 6; k++)
			if (only[i].kinds & (1u << k))
				used += (size_t)snprintf(takers + used, sizeof(takers) - used, "%s%s",
							 used ? " or " : "", names[k]);
		return fail(d, n, where, "a %s limit has no %s, expected it only with kind: %s",
			    names[kind < 6 ? kind : 0], only[i].key, takers);
	}
	return 0;
}

/*
 * The parameters of @l's kind from @map. @inherit: an override, whose
 * parameters default to its base's (already in @l).
 */
static int kind_params(struct vrl_doc *d, yaml_node_t *map, const char *path,
		       struct vrl_seg_limit *l, bool inherit)
{
	yaml_node_t *v;

	if (kind_keys(d, map, path, l->kind))
		return -1;
	switch (l->kind) {
	case VRL_KIND_RATE:
		return rate_params(d, map, path, l, inherit);
	case VRL_KIND_WINDOW:
		/* no overrides or pool (kind_keys): never inherited */
		return limit_window(d, map, path, l);
	case VRL_KIND_QUOTA:
		if (count_param(d, map, path, l, inherit) ||
		    (!inherit && quota_calendar(d, map, path, l)) ||
		    flag_param(d, map, path, "overage", VRL_LIMIT_SOFT, l))
			return -1;
		break;
	case VRL_KIND_SLOTS:
		if (count_param(d, map, path, l, inherit) ||
		    flag_param(d, map, path, "persistent", VRL_LIMIT_PERSIST, l))
			return -1;
		break;
	default:
		return 0;
	}
	if (!inherit && (v = lookup(d, map, "alerts")) && quota_alerts(d, v, path, l))
		return -1;
	return 0;
}

static int limit_params(struct vrl_doc *d, yaml_node_t *map, const char *path,
			struct vrl_seg_limit *l)
{
	yaml_node_t *kind = lookup(d, map, "kind");

	l->kind = VRL_KIND_RATE;
	if (kind && limit_kind(d, kind, path, &l->kind))
		return -1;
	return kind_params(d, map, path, l, false);
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

	pathf(where, "%s.pool", path);
	if (get_text(d, n, where, "a pool name", l->pool, sizeof(l->pool)) != 0)
		return -1;
	if (!limit_name_ok(l->pool))
		return fail(d, n, where, "expected a name of letters, digits, '_', '.' and '-' "
			    "such as carsxe.shared, got \"%s\"", l->pool);
	for (uint32_t i = 0; i < p->out.cfg.nlimits; i++) {
		const struct vrl_seg_limit *o = &p->out.cfg.limits[i];
		const char *what = NULL;

		if (strcmp(o->pool, l->pool) != 0)
			continue;
		if (o->kind != l->kind)
			what = "kind";
		else if (o->count != l->count || o->period_ns != l->period_ns ||
			 o->burst != l->burst)
			what = l->kind == VRL_KIND_RATE ? "rate and burst" : "count";
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
static int add_limit(struct vrl_doc *d, yaml_node_t *map, const char *path,
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

	if (want_type(d, map, YAML_MAPPING_NODE, path, "an override: a mapping with match:") ||
	    check_keys(d, map, path, keys))
		return -1;
	if (!(v = lookup(d, map, "match")))
		return fail(d, map, path, "missing match:, expected the attributes this override "
			    "applies to, such as {make: tesla}");
	memset(&m, 0, sizeof(m));
	if (limit_match(d, v, path, &m))
		return -1;
	pathf(where, "%s.match", path);
	if (o.nmatch + m.nmatch > VRL_MAX_MATCH)
		return fail(d, v, where, "%u conditions with the limit's own, expected at most %u",
			    o.nmatch + m.nmatch, VRL_MAX_MATCH);
	used = (size_t)snprintf(name, sizeof(name), "%s[", base->name);
	for (uint32_t i = 0; i < m.nmatch; i++) {
		const struct vrl_seg_fieldref *f = &m.match[i].ref;

		used += (size_t)snprintf(name + used, sizeof(name) - used, "%s%s=%s", i ? "," : "",
					 f->field == VRL_FIELD_ATTR ? f->attr :
					 vrl_field_names[f->field], m.match[i].pattern);
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
	if (kind_params(d, map, path, &o, true))
		return -1;
	return add_limit(d, map, path, &o);
}

/* overrides: one record per override, first, then the base; one group. */
static int limit_overrides(struct vrl_doc *d, yaml_node_t *seq, const char *path,
			   struct vrl_seg_limit *base)
{
	char where[VRL_PATH_MAX];

	pathf(where, "%s.overrides", path);
	if (want_type(d, seq, YAML_SEQUENCE_NODE, where, "a list of overrides such as "
		      "[{match: {make: tesla}, rate: 1/s}]"))
		return -1;
	if (base->pool[0])
		return fail(d, seq, where, "a pooled limit has no overrides, expected one "
			    "count per pool");
	base->group = ++d->p->groups;
	for (yaml_node_item_t *it = seq->data.sequence.items.start;
	     it < seq->data.sequence.items.top; it++) {
		pathf(where, "%s.overrides[%td]", path, it - seq->data.sequence.items.start);
		if (parse_override(d, node(d, *it), where, base))
			return -1;
	}
	return 0;
}

static int parse_limit(struct vrl_doc *d, yaml_node_t *map, const char *path)
{
	static const char *const keys[] = { "name", "description", "kind", "match", "per",
					    "rate", "burst", "shadow", "count", "calendar",
					    "anchor", "overage", "alerts", "persistent", "pool",
					    "overrides", "limit", "window", "keys", NULL };
	struct vrl_parse *p = d->p;
	struct vrl_seg_limit lim, *l = &lim;
	char where[VRL_PATH_MAX];
	yaml_node_t *v;
	bool shadow = false;

	if (want_type(d, map, YAML_MAPPING_NODE, path, "a limit: a mapping with name:") ||
	    check_keys(d, map, path, keys))
		return -1;
	if (p->out.cfg.nlimits >= VRL_MAX_LIMITS)
		return fail(d, map, path, "too many limits, expected at most %u (presets "
			    "included)", VRL_MAX_LIMITS);
	memset(l, 0, sizeof(*l));
	if (!(v = lookup(d, map, "name")))
		return fail(d, map, path, "missing name:, expected a unique limit name");
	if (limit_name(d, v, path, l))
		return -1;
	pathf(where, "%s.description", path);
	if ((v = lookup(d, map, "description")) && !want_scalar(d, v, where, "a text"))
		return -1;
	if ((v = lookup(d, map, "per")) && limit_per(d, v, path, l))
		return -1;
	if ((v = lookup(d, map, "match")) && limit_match(d, v, path, l))
		return -1;
	if (limit_params(d, map, path, l))
		return -1;
	pathf(where, "%s.shadow", path);
	if ((v = lookup(d, map, "shadow")) && get_bool(d, v, where, &shadow))
		return -1;
	l->flags |= shadow ? VRL_LIMIT_SHADOW : 0;
	if ((v = lookup(d, map, "pool")) && limit_pool(d, v, path, l))
		return -1;
	if ((v = lookup(d, map, "overrides")) && limit_overrides(d, v, path, l))
		return -1;
	return add_limit(d, map, path, l);
}

static int parse_limits(struct vrl_doc *d, yaml_node_t *seq)
{
	char path[VRL_PATH_MAX];

	if (want_type(d, seq, YAML_SEQUENCE_NODE, "limits", "a list of limits"))
		return -1;
	for (yaml_node_item_t *it = seq->data.sequence.items.start;
	     it < seq->data.sequence.items.top; it++) {
		pathf(path, "limits[%td]", it - seq->data.sequence.items.start);
		if (parse_limit(d, node(d, *it), path))
			return -1;
	}
	return 0;
}

/* ---- documents and presets ----------------------------------------------------- */

static int parse_text(struct vrl_parse *p, const char *text, size_t len, const char *source,
		      struct vrl_settings *st);

static int preset_index(const char *name)
{
	for (size_t i = 0; i < vrl_npresets; i++)
		if (strcmp(vrl_presets[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int include_preset(struct vrl_doc *d, yaml_node_t *n, const char *path)
{
	struct vrl_parse *p = d->p;
	struct vrl_settings ignored;
	char names[128], source[96];
	const char *s = want_scalar(d, n, path, "a preset name");
	const char *list[8];
	int idx, rc;

	if (!s)
		return -1;
	if ((idx = preset_index(s)) < 0) {
		for (size_t i = 0; i < vrl_npresets && i < 7; i++)
			list[i] = vrl_presets[i].name;
		list[vrl_npresets < 7 ? vrl_npresets : 7] = NULL;
		join(names, sizeof(names), list);
		return fail(d, n, path, "unknown preset \"%s\", expected one of: %s", s, names);
	}
	if (p->presets_seen & (1u << idx))
		return fail(d, n, path, "preset \"%s\" is already included, expected each "
			    "preset once", s);
	if (p->depth >= VRL_PRESET_DEPTH)
		return fail(d, n, path, "presets nested too deep, expected at most %u levels",
			    VRL_PRESET_DEPTH);
	p->presets_seen |= 1u << idx;
	snprintf(source, sizeof(source), "built-in:%s.yaml", s);
	p->depth++;
	rc = parse_text(p, vrl_presets[idx].text, vrl_presets[idx].len, source, &ignored);
	p->depth--;
	return rc;
}

static int parse_presets(struct vrl_doc *d, yaml_node_t *seq)
{
	char path[VRL_PATH_MAX];

	if (want_type(d, seq, YAML_SEQUENCE_NODE, "presets", "a list of preset names"))
		return -1;
	for (yaml_node_item_t *it = seq->data.sequence.items.start;
	     it < seq->data.sequence.items.top; it++) {
		pathf(path, "presets[%td]", it - seq->data.sequence.items.start);
		if (include_preset(d, node(d, *it), path))
			return -1;
	}
	return 0;
}

static int parse_root(struct vrl_doc *d, yaml_node_t *root, struct vrl_settings *st)
{
	static const char *const keys[] = { "segment", "daemon", "presets", "limits", "shadow",
					    "labels", NULL };
	yaml_node_t *v;

	if (!root || is_null(root))
		return 0;
	if (want_type(d, root, YAML_MAPPING_NODE, "config",
		      "a mapping of segment, daemon, presets, limits, shadow, labels") ||
	    check_keys(d, root, "", keys))
		return -1;
	if ((v = lookup(d, root, "shadow")) && get_bool(d, v, "shadow", &st->shadow))
		return -1;
	if ((v = lookup(d, root, "labels")) && parse_labels(d, v, &st->labels))
		return -1;
	if ((v = lookup(d, root, "segment")) && parse_segment(d, v, st))
		return -1;
	if ((v = lookup(d, root, "daemon")) && parse_daemon(d, v, st))
		return -1;
	if ((v = lookup(d, root, "presets")) && !is_null(v) && parse_presets(d, v))
		return -1;
	if ((v = lookup(d, root, "limits")) && !is_null(v) && parse_limits(d, v))
		return -1;
	return 0;
}

/* Line and column of byte @off of @text, for reader errors that carry no mark. */
static yaml_mark_t mark_of(const char *text, size_t len, size_t off)
{
	yaml_mark_t m = { off, 0, 0 };

	for (size_t i = 0; i < off && i < len; i++) {
		if (text[i] == '\n') {
			m.line++;
			m.column = 0;
		} else {
			m.column++;
		}
	}
	return m;
}

static int yaml_failure(struct vrl_doc *d, yaml_parser_t *y, const char *text, size_t len)
{
	yaml_mark_t m = y->problem_mark;

	if (y->error == YAML_READER_ERROR)
		m = mark_of(text, len, y->problem_offset);
	if (y->error == YAML_MEMORY_ERROR)
		return fail_at(d, m, "syntax", "out of memory");
	if (y->context)
		return fail_at(d, m, "syntax", "%s (%s at line %zu), expected valid YAML",
			       y->problem ? y->problem : "error", y->context,
			       y->context_mark.line + 1);
	return fail_at(d, m, "syntax", "%s, expected valid YAML", y->problem ? y->problem : "error");
}

static bool opens(yaml_event_type_t t)
{
	return t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT;
}

static bool closes(yaml_event_type_t t)
{
	return t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT;
}

/*
 * Read @text as events, without building anything, and refuse it at the
 * first collection nested deeper than VRL_NEST_MAX. libyaml's scanner does
 * work in proportion to the depth at each token, so a text of 10^5 "["
 * takes it tens of seconds to load; this pass stops at the first level too
 * deep, having read only that far.
 */
static int check_nesting(struct vrl_doc *d, const char *text, size_t len)
{
	yaml_parser_t y;
	yaml_event_t ev;
	unsigned depth = 0;
	int rc = 0;

	if (!yaml_parser_initialize(&y))
		return fail_at(d, (yaml_mark_t){ 0, 0, 0 }, "syntax", "out of memory");
	yaml_parser_set_input_string(&y, (const unsigned char *)text, len);
	for (;;) {
		yaml_event_type_t t;

		if (!yaml_parser_parse(&y, &ev)) {
			rc = yaml_failure(d, &y, text, len);
			break;
		}
		t = ev.type;
		if (opens(t) && ++depth > VRL_NEST_MAX)
			rc = fail_at(d, ev.start_mark, "syntax", "nested deeper than %u levels, "
				     "expected a flatter config (a valid one needs 6)", VRL_NEST_MAX);
		else if (closes(t))
			depth--;
		yaml_event_delete(&ev);
		if (rc || t == YAML_STREAM_END_EVENT)
			break;
	}
	yaml_parser_delete(&y);
	return rc;
}

/* Load the only document of @text into @d->y. */
static int load_document(struct vrl_doc *d, const char *text, size_t len)
{
	yaml_parser_t y;
	yaml_document_t extra;
	int rc = 0;

	if (check_nesting(d, text, len))
		return -1;
	if (!yaml_parser_initialize(&y))
		return fail_at(d, (yaml_mark_t){ 0, 0, 0 }, "syntax", "out of memory");
	yaml_parser_set_input_string(&y, (const unsigned char *)text, len);
	if (!yaml_parser_load(&y, &d->y)) {
		rc = yaml_failure(d, &y, text, len);
		yaml_parser_delete(&y);
		return rc;
	}
	if (!yaml_parser_load(&y, &extra)) {
		rc = yaml_failure(d, &y, text, len);
	} else {
		yaml_node_t *r = yaml_document_get_root_node(&extra);

		if (r)
			rc = fail_at(d, r->start_mark, "syntax", "a second document, expected "
				     "one document only");
		yaml_document_delete(&extra);
	}
	if (rc)
		yaml_document_delete(&d->y);
	yaml_parser_delete(&y);
	return rc;
}

static int parse_text(struct vrl_parse *p, const char *text, size_t len, const char *source,
		      struct vrl_settings *st)
{
	struct vrl_doc d = { .p = p, .source = source };
	int rc;

	if (load_document(&d, text, len))
		return -1;
	rc = parse_root(&d, yaml_document_get_root_node(&d.y), st);
	yaml_document_delete(&d.y);
	return rc;
}

static void settings_default(struct vrl_settings *st)
{
	memset(st, 0, sizeof(*st));
	memcpy(st->seg.name, "/vrl", sizeof("/vrl"));
	st->seg.mode = VRL_DEFAULT_MODE;
	st->seg.gid = (gid_t)-1;
	st->seg.keys = VRL_DEFAULT_KEYS;
	st->max_size = VRL_DEFAULT_MAX_SIZE;
	st->sweep_interval_ns = VRL_DEFAULT_SWEEP_NS;
	st->idle_evict_ns = VRL_DEFAULT_IDLE_NS;
	st->prod.checkpoint_interval_ns = VRL_DEFAULT_CKPT_NS;
	st->prod.metrics_top = VRL_DEFAULT_METRICS_TOP;
	st->prod.metrics_textfile_mode = VRL_DEFAULT_TEXTFILE_MODE;
	st->labels.fields = VRL_DEFAULT_SHOWN;
}

static void settings_apply(const struct vrl_settings *st, struct vrl_daemon_config *out)
{
	out->seg = st->seg;
	memcpy(out->group, st->group, sizeof(out->group));
	out->max_size = st->max_size;
	out->sweep_interval_ns = st->sweep_interval_ns;
	out->idle_evict_ns = st->idle_evict_ns;
	memcpy(out->alert_command, st->alert_command, sizeof(out->alert_command));
	out->prod = st->prod;
	out->cfg.flags = st->flags;
	/* global shadow mode: verdicts and metrics say what would have been
	 * denied, nothing is */
	for (uint32_t i = 0; st->shadow && i < out->cfg.nlimits; i++)
		out->cfg.limits[i].flags |= VRL_LIMIT_SHADOW;
}

/* Parse into private memory; copy to @out only when all of it is valid. */
static int parse_config(const char *text, size_t len, const char *source, const char *shown,
			struct vrl_daemon_config *out, char err[VRL_CONFIG_ERR_MAX])
{
	struct vrl_parse *p = calloc(1, sizeof(*p));
	struct vrl_settings st;
	int rc;

	if (!p) {
		snprintf(err, VRL_CONFIG_ERR_MAX, "%s: out of memory", source);
		return -1;
	}
	p->err = err;
	settings_default(&st);
	rc = parse_text(p, text, len, source, &st);
	if (rc == 0 && p->out.cfg.nlimits == 0) {
		snprintf(err, VRL_CONFIG_ERR_MAX, "%s:1:1: limits: no limits defined, expected "
			 "limits: or presets: such as [smartcar, samsara]", source);
		rc = -1;
	}
	if (rc == 0)
		rc = labels_apply(p, source, &st.labels);
	if (rc == 0) {
		settings_apply(&st, &p->out);
		snprintf(p->out.cfg.source, sizeof(p->out.cfg.source), "%s", shown);
		memcpy(out, &p->out, sizeof(*out));
	}
	free(p);
	return rc;
}

/* ---- public functions ------------------------------------------------------------ */

int vrl_config_parse(const char *text, size_t len, const char *source,
		     struct vrl_daemon_config *out, char err[VRL_CONFIG_ERR_MAX])
{
	if (!source)
		source = "config";
	if (!text || !out) {
		snprintf(err, VRL_CONFIG_ERR_MAX, "%s: no config text", source);
		return -1;
	}
	return parse_config(text, len, source, source, out, err);
}

int vrl_config_load(const char *path, struct vrl_daemon_config *out,
		    char err[VRL_CONFIG_ERR_MAX])
{
	char why[VRL_CONFIG_ERR_MAX], *text;
	size_t len;
	int rc;

	/* a link to a managed file is followed; what it names must be a
	 * regular file: a FIFO or a device is refused, never waited on */
	rc = vrl_afile_read(path, VRL_CONFIG_FILE_MAX, true, &text, &len, why, sizeof(why));
	if (rc == -EFBIG) {
		snprintf(err, VRL_CONFIG_ERR_MAX, "%s: larger than %u bytes, expected a smaller "
			 "config", path, VRL_CONFIG_FILE_MAX);
		return -1;
	}
	if (rc) {
		snprintf(err, VRL_CONFIG_ERR_MAX, "%s", why);
		return -1;
	}
	rc = parse_config(text, len, path, path, out, err);
	free(text);
	return rc == 0 ? 0 : -1;
}

int vrl_config_default(struct vrl_daemon_config *out, char err[VRL_CONFIG_ERR_MAX])
{
	const char *text = vrl_config_preset("default");

	return parse_config(text, strlen(text), "built-in:default.yaml", "built-in", out, err);
}

const char *vrl_config_preset(const char *name)
{
	int idx = name ? preset_index(name) : -1;

	return idx < 0 ? NULL : vrl_presets[idx].text;
}
