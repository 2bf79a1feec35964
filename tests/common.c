/*
 * common.c - see common.h.
 */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct vrl_seg_limit *add(struct vrl_seg_config *cfg, const char *name,
				 const char *api, const int *per)
{
	struct vrl_seg_limit *l;

	if (cfg->nlimits >= VRL_MAX_LIMITS)
		abort();
	l = &cfg->limits[cfg->nlimits++];
	memset(l, 0, sizeof(*l));
	snprintf(l->name, sizeof(l->name), "%s", name);
	if (api) {
		l->match[0].ref.field = VRL_FIELD_API;
		snprintf(l->match[0].pattern, sizeof(l->match[0].pattern), "%s", api);
		l->nmatch = 1;
	}
	for (; per && *per >= 0; per++)
		l->per[l->nper++].field = (uint32_t)*per;
	return l;
}

struct vrl_seg_limit *test_add_rate(struct vrl_seg_config *cfg, const char *name,
				    const char *api, uint64_t count, uint64_t period_ns,
				    uint64_t burst, const int *per)
{
	struct vrl_seg_limit *l = add(cfg, name, api, per);
	struct vrl_gcra g;

	if (vrl_gcra_init(&g, count, period_ns, burst) != 0)
		abort();
	l->kind = VRL_KIND_RATE;
	l->count = count;
	l->period_ns = period_ns;
	l->burst = burst;
	l->emission_ns = g.emission_ns;
	l->tolerance_ns = g.tolerance_ns;
	return l;
}

struct vrl_seg_limit *test_add_gate(struct vrl_seg_config *cfg, const char *name,
				    const char *api, const int *per)
{
	struct vrl_seg_limit *l = add(cfg, name, api, per);

	l->kind = VRL_KIND_GATE;
	return l;
}

void test_segment(const char *tag, const struct vrl_seg_config *cfg, uint64_t keys,
		  struct vrl_seg *seg, char name[VRL_SHM_NAME_MAX])
{
	struct vrl_seg_spec spec = { .mode = 0600, .gid = (gid_t)-1, .keys = keys };
	char why[256];
	int rc;

	snprintf(name, VRL_SHM_NAME_MAX, "/vrl-test-%s-%d", tag, (int)getpid());
	snprintf(spec.name, sizeof(spec.name), "%s", name);
	vrl_seg_unlink(name);
	rc = vrl_seg_open_or_create(&spec, cfg, false, seg, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "test_segment %s: %s %s\n", name, vrl_strerror(rc), why);
		abort();
	}
}

void test_segment_drop(struct vrl_seg *seg, const char *name)
{
	vrl_seg_close(seg);
	vrl_seg_unlink(name);
}

vrl_client *test_open(const char *name)
{
	vrl_client *c = NULL;
	int rc = vrl_open(name, 0, &c);

	if (rc) {
		fprintf(stderr, "vrl_open %s: %s\n", name, vrl_strerror(rc));
		abort();
	}
	return c;
}
