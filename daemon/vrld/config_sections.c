/*
 * config_sections.c - the segment:, daemon: and labels: sections.
 *
 * They are read into struct vrl_settings from every document, and applied
 * only from the top one: a preset's segment: and daemon: are checked, not
 * applied. labels: is checked against the limits once all are read
 * (cfg_labels_apply), so an attribute no limit is keyed by is an error.
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
#include <grp.h>
#include <unistd.h>

#include "duration.h"

/* ---- segment: and daemon: ---------------------------------------------------- */

static int seg_name(struct vrl_doc *d, yaml_node_t *n, struct vrl_settings *st)
{
	const char *path = "segment.name";
	char buf[VRL_GOT_MAX];

	if (cfg_get_text(d, n, path, "a shared-memory name such as /vrl", st->seg.name,
		     sizeof(st->seg.name)) != 0)
		return -1;
	if (st->seg.name[0] != '/' || st->seg.name[1] == '\0' || strchr(st->seg.name + 1, '/'))
		return fail(d, n, path, "expected a name of one '/' then at least one "
			    "character, such as /vrl, got %s", cfg_got(n, buf));
	return 0;
}

/* A mode is read as octal, as chmod(1) does: "0660", 0660 and 660 agree. */
static int cfg_get_mode(struct vrl_doc *d, yaml_node_t *n, const char *path, const char *example,
		    mode_t *mode)
{
	const char *s = cfg_want_scalar(d, n, path, "an octal mode");
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
			    "got %s", example, cfg_got(n, buf));
	*mode = (mode_t)m;
	return 0;
}

static int seg_mode(struct vrl_doc *d, yaml_node_t *n, struct vrl_settings *st)
{
	const char *path = "segment.mode";
	char buf[VRL_GOT_MAX];
	mode_t m;

	if (cfg_get_mode(d, n, path, "0660", &m))
		return -1;
	if ((m & 0600) != 0600)
		return fail(d, n, path, "the owner (vrld) needs read and write: expected a mode "
			    "with 0600 set, got %s", cfg_got(n, buf));
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

	if (cfg_get_text(d, n, path, "a group name", st->group, sizeof(st->group)) != 0)
		return -1;
	if (resolve_group(st->group, &st->seg.gid) != 0)
		return fail(d, n, path, "unknown group \"%s\", expected a group of this host "
			    "(see getent group)", st->group);
	return 0;
}

static int seg_keys(struct vrl_doc *d, yaml_node_t *n, struct vrl_settings *st)
{
	struct vrl_seg_geometry g;

	if (cfg_get_u64(d, n, "segment.keys", 1, &st->seg.keys) != 0)
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
	const char *path = "segment.max_size", *s = cfg_want_scalar(d, n, path, "a size such as 4GiB");
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
		    "of bytes (units: KiB, MiB, GiB, TiB, PiB), got %s", cfg_got(n, buf));
}

static int seg_on_full(struct vrl_doc *d, yaml_node_t *n, struct vrl_settings *st)
{
	const char *path = "segment.on_full", *s = cfg_want_scalar(d, n, path, "deny or allow");
	char buf[VRL_GOT_MAX];

	if (!s)
		return -1;
	if (strcmp(s, "deny") == 0)
		st->flags &= ~VRL_CFG_FAIL_OPEN;
	else if (strcmp(s, "allow") == 0)
		st->flags |= VRL_CFG_FAIL_OPEN;
	else
		return fail(d, n, path, "expected deny (fail closed) or allow (fail open), got %s",
			    cfg_got(n, buf));
	return 0;
}

int cfg_parse_segment(struct vrl_doc *d, yaml_node_t *map, struct vrl_settings *st)
{
	static const char *const keys[] = { "name", "mode", "group", "keys", "max_size", "on_full",
					    NULL };
	yaml_node_t *v;

	if (cfg_want_type(d, map, YAML_MAPPING_NODE, "segment", "a mapping of name, mode, ...") ||
	    cfg_check_keys(d, map, "segment", keys))
		return -1;
	if ((v = cfg_lookup(d, map, "name")) && seg_name(d, v, st))
		return -1;
	if ((v = cfg_lookup(d, map, "mode")) && seg_mode(d, v, st))
		return -1;
	if ((v = cfg_lookup(d, map, "group")) && seg_group(d, v, st))
		return -1;
	if ((v = cfg_lookup(d, map, "keys")) && seg_keys(d, v, st))
		return -1;
	if ((v = cfg_lookup(d, map, "max_size")) && seg_max_size(d, v, st))
		return -1;
	if ((v = cfg_lookup(d, map, "on_full")) && seg_on_full(d, v, st))
		return -1;
	return 0;
}

static int parse_daemon_prod(struct vrl_doc *d, yaml_node_t *map, struct vrl_daemon_prod *pr)
{
	yaml_node_t *v;

	if ((v = cfg_lookup(d, map, "checkpoint")) &&
	    cfg_get_text(d, v, "daemon.checkpoint", "a file path", pr->checkpoint,
		     sizeof(pr->checkpoint)))
		return -1;
	if ((v = cfg_lookup(d, map, "checkpoint_interval")) &&
	    cfg_get_duration(d, v, "daemon.checkpoint_interval", &pr->checkpoint_interval_ns))
		return -1;
	if ((v = cfg_lookup(d, map, "metrics"))) {
		if (cfg_get_text(d, v, "daemon.metrics", "host:port such as 127.0.0.1:9477",
			     pr->metrics, sizeof(pr->metrics)))
			return -1;
		if (!strrchr(pr->metrics, ':'))
			return fail(d, v, "daemon.metrics", "\"%s\" has no port, expected "
				    "host:port such as 127.0.0.1:9477", pr->metrics);
	}
	if ((v = cfg_lookup(d, map, "metrics_textfile")) &&
	    cfg_get_text(d, v, "daemon.metrics_textfile", "a file path", pr->metrics_textfile,
		     sizeof(pr->metrics_textfile)))
		return -1;
	if ((v = cfg_lookup(d, map, "metrics_textfile_mode"))) {
		if (cfg_get_mode(d, v, "daemon.metrics_textfile_mode", "0644",
			     &pr->metrics_textfile_mode))
			return -1;
		/* others could rewrite the figures between two of vrld's writes */
		if (pr->metrics_textfile_mode & 0022)
			return fail(d, v, "daemon.metrics_textfile_mode", "%04o lets the group or "
				    "others write vrld's metrics, expected a mode without 0022 "
				    "such as \"0644\" or \"0640\"",
				    (unsigned)pr->metrics_textfile_mode);
	}
	if ((v = cfg_lookup(d, map, "metrics_top")) &&
	    cfg_get_u64(d, v, "daemon.metrics_top", 0, &pr->metrics_top))
		return -1;
	return 0;
}

int cfg_parse_daemon(struct vrl_doc *d, yaml_node_t *map, struct vrl_settings *st)
{
	static const char *const keys[] = { "sweep_interval", "idle_evict", "alert_command",
		"checkpoint", "checkpoint_interval", "metrics", "metrics_textfile",
		"metrics_textfile_mode", "metrics_top", NULL };
	yaml_node_t *v;

	if (cfg_want_type(d, map, YAML_MAPPING_NODE, "daemon", "a mapping of sweep_interval, ...") ||
	    cfg_check_keys(d, map, "daemon", keys))
		return -1;
	if ((v = cfg_lookup(d, map, "sweep_interval")) &&
	    cfg_get_duration(d, v, "daemon.sweep_interval", &st->sweep_interval_ns))
		return -1;
	if ((v = cfg_lookup(d, map, "idle_evict")) &&
	    cfg_get_duration(d, v, "daemon.idle_evict", &st->idle_evict_ns))
		return -1;
	if ((v = cfg_lookup(d, map, "alert_command")) &&
	    cfg_get_text(d, v, "daemon.alert_command", "an absolute path", st->alert_command,
		     sizeof(st->alert_command)))
		return -1;
	/* run without a shell or a PATH search: the exact program is named */
	if (v && st->alert_command[0] != '/')
		return fail(d, v, "daemon.alert_command", "expected an absolute path such as "
			    "/usr/local/bin/vrl-alert, got \"%s\"", st->alert_command);
	return parse_daemon_prod(d, map, &st->prod);
}

/* ---- labels ------------------------------------------------------------------- */

/* Add field @s of labels.clear (at @n) to @lb. */
static int label_shown(struct vrl_doc *d, yaml_node_t *n, const char *path, const char *s,
		       struct vrl_labels *lb)
{
	struct vrl_seg_fieldref ref;

	if (cfg_get_field(d, n, path, s, &ref))
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
int cfg_parse_labels(struct vrl_doc *d, yaml_node_t *map, struct vrl_labels *lb)
{
	static const char *const keys[] = { "clear", NULL };
	char where[VRL_PATH_MAX];
	yaml_node_t *seq;

	if (cfg_want_type(d, map, YAML_MAPPING_NODE, "labels", "a mapping such as {clear: [org]}") ||
	    cfg_check_keys(d, map, "labels", keys))
		return -1;
	if (!(seq = cfg_lookup(d, map, "clear")))
		return 0;
	memset(lb, 0, sizeof(*lb));
	if (cfg_is_null(seq))
		return 0;
	if (cfg_want_type(d, seq, YAML_SEQUENCE_NODE, "labels.clear",
		      "a list of fields such as [org, vehicle]"))
		return -1;
	for (yaml_node_item_t *it = seq->data.sequence.items.start;
	     it < seq->data.sequence.items.top; it++) {
		yaml_node_t *item = cfg_node(d, *it);
		const char *f;

		cfg_pathf(where, "labels.clear[%td]", it - seq->data.sequence.items.start);
		if (!(f = cfg_want_scalar(d, item, where, "a field name")) ||
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
int cfg_labels_apply(struct vrl_parse *p, const char *source, const struct vrl_labels *lb)
{
	struct vrl_doc d = { .p = p, .source = source };
	struct vrl_seg_config *cfg = &p->out.cfg;
	char where[VRL_PATH_MAX];

	for (unsigned i = 0; i < lb->nattrs; i++) {
		if (keyed_by_attr(cfg, lb->attr[i]))
			continue;
		cfg_pathf(where, "labels.clear");
		return cfg_fail_at(&d, lb->attr_mark[i], where, "unknown field \"%s\": no limit is "
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
