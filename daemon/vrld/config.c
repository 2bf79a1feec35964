/*
 * config.c - vrld's YAML config, read with libyaml's document API and
 * compiled into a struct vrl_seg_config. This file holds the document: its
 * loading, its top-level keys, the defaults and the public functions;
 * config_parse.h lists the other parts (sections, presets, limits, kinds'
 * figures, match and per).
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
#include "config_parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "atomic_file.h"
#include "presets.h"

#define VRL_DEFAULT_MODE      0660u        /* segment.mode: owner and group read/write */
#define VRL_DEFAULT_KEYS      65536u       /* segment.keys */
#define VRL_DEFAULT_MAX_SIZE  (UINT64_C(4) << 30) /* segment.max_size: 4 GiB */
#define VRL_DEFAULT_SWEEP_NS  UINT64_C(1000000000)   /* daemon.sweep_interval: 1s */
#define VRL_DEFAULT_IDLE_NS   UINT64_C(600000000000) /* daemon.idle_evict: 10min */
#define VRL_DEFAULT_CKPT_NS   UINT64_C(10000000000)  /* daemon.checkpoint_interval: 10s */
#define VRL_DEFAULT_METRICS_TOP 20u        /* daemon.metrics_top: keys nearest their limit */
#define VRL_DEFAULT_TEXTFILE_MODE 0644u    /* daemon.metrics_textfile_mode: node_exporter reads it */
#define VRL_CONFIG_FILE_MAX   (1u << 20)   /* bytes of a config file we agree to read */
#define VRL_NEST_MAX          32u          /* mappings and lists nested, at most (a valid
                                              config needs 6) */
/* labels.clear when not written: fields whose values are names, not secrets */
#define VRL_DEFAULT_SHOWN     (1u << VRL_FIELD_API | 1u << VRL_FIELD_ENDPOINT | 1u << VRL_FIELD_ORG)

static int parse_root(struct vrl_doc *d, yaml_node_t *root, struct vrl_settings *st)
{
	static const char *const keys[] = { "segment", "daemon", "presets", "limits", "shadow",
					    "labels", "attributes", "unmatched", "adaptive", "global",
					    NULL };
	yaml_node_t *v;

	if (!root || cfg_is_null(root))
		return 0;
	if (cfg_want_type(d, root, YAML_MAPPING_NODE, "config",
		      "a mapping of segment, daemon, presets, limits, shadow, labels, "
		      "attributes, unmatched, adaptive, global") ||
	    cfg_check_keys(d, root, "", keys))
		return -1;
	if ((v = cfg_lookup(d, root, "shadow")) && cfg_get_bool(d, v, "shadow", &st->shadow))
		return -1;
	/* before presets and limits: the default of every rate limit in them */
	if ((v = cfg_lookup(d, root, "adaptive")) && d->p->depth == 0 &&
	    cfg_get_bool(d, v, "adaptive", &d->p->adaptive))
		return -1;
	if ((v = cfg_lookup(d, root, "unmatched")) && cfg_parse_unmatched(d, v, &st->flags))
		return -1;
	if ((v = cfg_lookup(d, root, "attributes")) && !cfg_is_null(v) &&
	    cfg_parse_attributes(d, v))
		return -1;
	if ((v = cfg_lookup(d, root, "labels")) && cfg_parse_labels(d, v, &st->labels))
		return -1;
	if ((v = cfg_lookup(d, root, "segment")) && cfg_parse_segment(d, v, st))
		return -1;
	if ((v = cfg_lookup(d, root, "daemon")) && cfg_parse_daemon(d, v, st))
		return -1;
	/* before the limits: their scope: global needs it */
	if ((v = cfg_lookup(d, root, "global"))) {
		if (cfg_parse_global(d, v, &st->global))
			return -1;
		d->p->global = true;
	}
	if ((v = cfg_lookup(d, root, "presets")) && !cfg_is_null(v) && cfg_parse_presets(d, v))
		return -1;
	if ((v = cfg_lookup(d, root, "limits")) && !cfg_is_null(v) && cfg_parse_limits(d, v))
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
		return cfg_fail_at(d, m, "syntax", "out of memory");
	if (y->context)
		return cfg_fail_at(d, m, "syntax", "%s (%s at line %zu), expected valid YAML",
			       y->problem ? y->problem : "error", y->context,
			       y->context_mark.line + 1);
	return cfg_fail_at(d, m, "syntax", "%s, expected valid YAML", y->problem ? y->problem : "error");
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
		return cfg_fail_at(d, (yaml_mark_t){ 0, 0, 0 }, "syntax", "out of memory");
	yaml_parser_set_input_string(&y, (const unsigned char *)text, len);
	for (;;) {
		yaml_event_type_t t;

		if (!yaml_parser_parse(&y, &ev)) {
			rc = yaml_failure(d, &y, text, len);
			break;
		}
		t = ev.type;
		if (opens(t) && ++depth > VRL_NEST_MAX)
			rc = cfg_fail_at(d, ev.start_mark, "syntax", "nested deeper than %u levels, "
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
		return cfg_fail_at(d, (yaml_mark_t){ 0, 0, 0 }, "syntax", "out of memory");
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
			rc = cfg_fail_at(d, r->start_mark, "syntax", "a second document, expected "
				     "one document only");
		yaml_document_delete(&extra);
	}
	if (rc)
		yaml_document_delete(&d->y);
	yaml_parser_delete(&y);
	return rc;
}

int cfg_parse_text(struct vrl_parse *p, const char *text, size_t len, const char *source,
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
	st->flags = VRL_CFG_UNMATCHED_DENY;   /* why: cfg_parse_unmatched() */
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
	out->cfg.flags = st->flags | (st->global.on ? VRL_CFG_GLOBAL : 0u);
	out->global = st->global;
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
	rc = cfg_parse_text(p, text, len, source, &st);
	if (rc == 0 && p->out.cfg.nlimits == 0) {
		snprintf(err, VRL_CONFIG_ERR_MAX, "%s:1:1: limits: no limits defined, expected "
			 "limits: or presets: such as [smartcar, samsara]", source);
		rc = -1;
	}
	if (rc == 0)
		rc = cfg_labels_apply(p, source, &st.labels);
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

