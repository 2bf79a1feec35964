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

	if (vrl_limit_set_rate(l, count, period_ns, burst) != 0)
		abort();
	return l;
}

struct vrl_seg_limit *test_add_window(struct vrl_seg_config *cfg, const char *name,
				      const char *api, uint64_t count, uint64_t window_ns,
				      uint64_t keys, const int *per)
{
	struct vrl_seg_limit *l = add(cfg, name, api, per);

	l->kind = VRL_KIND_WINDOW;
	l->count = count;
	l->burst = count;
	l->period_ns = window_ns;
	l->area_keys = keys;
	return l;
}

struct vrl_seg_limit *test_add_gate(struct vrl_seg_config *cfg, const char *name,
				    const char *api, const int *per)
{
	struct vrl_seg_limit *l = add(cfg, name, api, per);

	l->kind = VRL_KIND_GATE;
	return l;
}

struct vrl_seg_limit *test_add_quota(struct vrl_seg_config *cfg, const char *name,
				     const char *api, uint64_t count, uint32_t calendar,
				     uint32_t anchor, uint32_t flags, const int *per)
{
	struct vrl_seg_limit *l = add(cfg, name, api, per);

	l->kind = VRL_KIND_QUOTA;
	l->count = count;
	l->calendar = calendar;
	l->anchor = anchor;
	l->flags = flags;
	return l;
}

struct vrl_seg_limit *test_add_slots(struct vrl_seg_config *cfg, const char *name,
				     const char *api, uint64_t count, uint32_t flags,
				     const int *per)
{
	struct vrl_seg_limit *l = add(cfg, name, api, per);

	l->kind = VRL_KIND_SLOTS;
	l->count = count;
	l->flags = flags;
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

#include <sys/mman.h>

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static size_t granted_times(const struct test_grant *g, size_t n, uint32_t key, uint64_t **out)
{
	uint64_t *t = malloc((n ? n : 1) * sizeof(*t));
	size_t m = 0;

	if (!t)
		abort();
	for (size_t i = 0; i < n; i++)
		if (g[i].state == TEST_GRANTED && (key == UINT32_MAX || g[i].key == key))
			t[m++] = g[i].at;
	qsort(t, m, sizeof(*t), cmp_u64);
	*out = t;
	return m;
}

unsigned test_check_windows(const struct test_grant *g, size_t n, uint32_t key,
			    uint64_t burst, uint64_t emission, uint64_t w, uint64_t *worst)
{
	uint64_t *t, bound = burst + w / emission;
	size_t m = granted_times(g, n, key, &t), j = 0;
	unsigned broken = 0;

	*worst = 0;
	for (size_t i = 0; i < m; i++) {
		if (j < i)
			j = i;
		while (j + 1 < m && t[j + 1] - t[i] <= w)
			j++;
		if (j - i + 1 > *worst)
			*worst = j - i + 1;
		if (j - i + 1 > bound)
			broken++;
	}
	free(t);
	return broken;
}

size_t test_count_grants(const struct test_grant *g, size_t n, uint32_t key,
			 uint64_t *first, uint64_t *last)
{
	uint64_t *t;
	size_t m = granted_times(g, n, key, &t);

	*first = m ? t[0] : 0;
	*last = m ? t[m - 1] : 0;
	free(t);
	return m;
}

void *test_shared(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		abort();
	return p;
}
