/*
 * config_presets.c - presets: built-in documents included by name.
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

#include "presets.h"

#define VRL_PRESET_DEPTH      4u           /* presets including presets, at most */

/* ---- documents and presets ----------------------------------------------------- */

static int cfg_preset_index(const char *name)
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
	const char *s = cfg_want_scalar(d, n, path, "a preset name");
	const char *list[8];
	int idx, rc;

	if (!s)
		return -1;
	if ((idx = cfg_preset_index(s)) < 0) {
		for (size_t i = 0; i < vrl_npresets && i < 7; i++)
			list[i] = vrl_presets[i].name;
		list[vrl_npresets < 7 ? vrl_npresets : 7] = NULL;
		cfg_join(names, sizeof(names), list);
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
	rc = cfg_parse_text(p, vrl_presets[idx].text, vrl_presets[idx].len, source, &ignored);
	p->depth--;
	return rc;
}

int cfg_parse_presets(struct vrl_doc *d, yaml_node_t *seq)
{
	char path[VRL_PATH_MAX];

	if (cfg_want_type(d, seq, YAML_SEQUENCE_NODE, "presets", "a list of preset names"))
		return -1;
	for (yaml_node_item_t *it = seq->data.sequence.items.start;
	     it < seq->data.sequence.items.top; it++) {
		cfg_pathf(path, "presets[%td]", it - seq->data.sequence.items.start);
		if (include_preset(d, cfg_node(d, *it), path))
			return -1;
	}
	return 0;
}

const char *vrl_config_preset(const char *name)
{
	int idx = name ? cfg_preset_index(name) : -1;

	return idx < 0 ? NULL : vrl_presets[idx].text;
}
