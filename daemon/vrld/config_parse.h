/*
 * config_parse.h - what the parts of vrld's config compiler share (internal).
 *
 * The compiler is one pass over a libyaml node tree, split by concern:
 *   config.c          the document: loading, nesting bound, top-level keys,
 *                     defaults, the public functions (config.h)
 *   config_yaml.c     messages (file:line:column: field: ...) and node helpers
 *   config_sections.c segment:, daemon: and labels:
 *   config_presets.c  presets: (built-in documents included by name)
 *   config_limits.c   limits: one limit, its overrides and pool
 *   config_kinds.c    each kind's figures: one table of per-kind parsers
 *   config_match.c    request fields, match:, per: and unmatched:
 *
 * Every function here returns 0, or -1 with the message written into the
 * parse's error buffer; nothing is written to the caller's config until
 * the whole text is valid.
 */
#ifndef VRL_CONFIG_PARSE_H
#define VRL_CONFIG_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "config.h"

#define VRL_PATH_MAX          96u          /* bytes of a field path in a message */
#define VRL_ORIGIN_MAX        320u         /* bytes of "source:line:col" of a limit */
#define VRL_GOT_MAX           48u          /* bytes of a bad value quoted in a message */
#define VRL_LABEL_ATTRS_MAX   16u          /* attribute names labels.clear may list */
#define VRL_DECLARED_MAX      32u          /* names attributes: may declare */

/* State of one parse: the result, the error buffer and where limits came from. */
struct vrl_parse {
	struct vrl_daemon_config out;
	char *err;
	char origin[VRL_MAX_LIMITS][VRL_ORIGIN_MAX];
	uint32_t presets_seen;          /* bit i: vrl_presets[i] included */
	uint32_t groups;                /* override groups given out */
	unsigned depth;
	bool adaptive;                  /* adaptive: true at the top: every rate limit's
	                                   default */
	unsigned nattrs;                /* attributes: declared so far */
	bool global;                    /* the top document has global: */
	uint32_t global_hosts;          /* its hosts: (scope: global checks a rate by it) */
	char attrs[VRL_DECLARED_MAX][VRL_ATTR_MAX];
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
	struct vrl_global_settings global;
};

/* ---- config_yaml.c: messages and node helpers ---- */

int cfg_fail_at(struct vrl_doc *d, yaml_mark_t m, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#define fail(d, n_, path, ...) cfg_fail_at((d), (n_)->start_mark, (path), __VA_ARGS__)
/* Write a field path ("limits[2].rate") into @where; a long one is cut. */
void cfg_pathf(char where[VRL_PATH_MAX], const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
const char *cfg_got(const yaml_node_t *n, char buf[VRL_GOT_MAX]);
yaml_node_t *cfg_node(struct vrl_doc *d, int idx);
const char *cfg_sval(const yaml_node_t *n);
bool cfg_is_null(const yaml_node_t *n);
const char *cfg_want_scalar(struct vrl_doc *d, yaml_node_t *n, const char *path,
			    const char *what);
int cfg_want_type(struct vrl_doc *d, yaml_node_t *n, yaml_node_type_t type, const char *path,
		  const char *what);
yaml_node_t *cfg_lookup(struct vrl_doc *d, yaml_node_t *map, const char *key);
void cfg_join(char *buf, size_t len, const char *const *list);
int cfg_check_keys(struct vrl_doc *d, yaml_node_t *map, const char *path,
		   const char *const *allowed);
int cfg_get_u64(struct vrl_doc *d, yaml_node_t *n, const char *path, uint64_t min,
		uint64_t *v);
int cfg_get_bool(struct vrl_doc *d, yaml_node_t *n, const char *path, bool *v);
int cfg_get_duration(struct vrl_doc *d, yaml_node_t *n, const char *path, uint64_t *ns);
int cfg_get_text(struct vrl_doc *d, yaml_node_t *n, const char *path, const char *what,
		 char *dst, size_t cap);

/* ---- config_sections.c ---- */

int cfg_parse_segment(struct vrl_doc *d, yaml_node_t *map, struct vrl_settings *st);
int cfg_parse_daemon(struct vrl_doc *d, yaml_node_t *map, struct vrl_settings *st);
int cfg_parse_labels(struct vrl_doc *d, yaml_node_t *map, struct vrl_labels *lb);
/* Mark the per fields labels show, once every limit is read. */
int cfg_labels_apply(struct vrl_parse *p, const char *source, const struct vrl_labels *lb);

/* ---- config_match.c ---- */

/* Built-in request fields, by enum vrl_field; NULL-terminated. */
extern const char *const cfg_field_names[];
int cfg_get_field(struct vrl_doc *d, yaml_node_t *n, const char *path, const char *s,
		  struct vrl_seg_fieldref *ref);
int cfg_limit_per(struct vrl_doc *d, yaml_node_t *n, const char *path, struct vrl_seg_limit *l);
int cfg_limit_match(struct vrl_doc *d, yaml_node_t *n, const char *path,
		    struct vrl_seg_limit *l);
/* attributes: the names taken as attributes even near a built-in field. */
int cfg_parse_attributes(struct vrl_doc *d, yaml_node_t *seq);
/* unmatched: into the VRL_CFG_UNMATCHED_* bits of @flags. */
int cfg_parse_unmatched(struct vrl_doc *d, yaml_node_t *n, uint32_t *flags);

/* ---- config_limits.c ---- */

int cfg_parse_limits(struct vrl_doc *d, yaml_node_t *seq);

/* ---- config_kinds.c ---- */

/* kind: of @map (rate when not written) and that kind's figures into @l. */
int cfg_limit_params(struct vrl_doc *d, yaml_node_t *map, const char *path,
		     struct vrl_seg_limit *l);
/* The figures of @l's kind from @map; @inherit: an override, whose figures
 * default to its base's (already in @l). */
/* adaptive: of a limit (true, false, or the top-level default): only a rate
 * limit takes it (adapt.h). */
int cfg_limit_adaptive(struct vrl_doc *d, yaml_node_t *map, const char *path,
		       struct vrl_seg_limit *l);
int cfg_kind_params(struct vrl_doc *d, yaml_node_t *map, const char *path,
		    struct vrl_seg_limit *l, bool inherit);

/* The name of kind @kind as the config writes it ("rate"). */
const char *cfg_kind_name(uint32_t kind);

/* ---- config_global.c ---- */

int cfg_parse_global(struct vrl_doc *d, yaml_node_t *map, struct vrl_global_settings *g);
/* An override of a global limit (@o a copy of its base, with its own
 * figures): global too, its figures checked as the base's were. */
int cfg_override_scope(struct vrl_doc *d, yaml_node_t *n, const char *path,
		       struct vrl_seg_limit *o);
/* scope: of limit @l (its kind read): host, or global when this vrld can hold it so
 * (sets VRL_LIMIT_GLOBAL). */
int cfg_limit_scope(struct vrl_doc *d, yaml_node_t *n, const char *path,
		    struct vrl_seg_limit *l);

/* ---- config_presets.c ---- */

int cfg_parse_presets(struct vrl_doc *d, yaml_node_t *seq);

/* ---- config.c ---- */

/* Parse one document @text into @p, its segment: and daemon: into @st. */
int cfg_parse_text(struct vrl_parse *p, const char *text, size_t len, const char *source,
		   struct vrl_settings *st);

#endif /* VRL_CONFIG_PARSE_H */
