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

/*
 * Why the check is sound. Take a denial judged at d (cost 1) that read the
 * key's TAT after the grant m committed. GCRA (gcra.h) denies iff
 * TAT_m > d + tau - T. Each grant j sets TAT_j = max(TAT_{j-1}, t_j) + T
 * (t_j: the time it was taken at), conforming only if TAT_j - t_j <= tau.
 * Let i be the first grant of the run that ends at m in which every grant
 * found TAT_{j-1} >= t_j: then TAT_i = t_i + T and TAT_m = t_i + k T, with
 * k the grants of the run. Each of them has t_j >= TAT_j - tau >=
 * t_i + T - tau, and t_j <= its commit < the denial's return ("after").
 * So some logged time a_i has, in [a_i + T - tau, after], N >= k records
 * with N T > d + tau - T - a_i. Extra records (kept permits, grants
 * committed after the read) only make that easier. The test checks the
 * best a_i: with a sorted, lo(i) the first index at or after a_i + T - tau
 * and C the records up to after, N = C - lo(i), so it wants
 * max over i < C of (a_i - lo(i) T) > d + tau - T - C T.
 */
static size_t taken_times(const struct test_grant *g, size_t n, uint32_t key, uint64_t **out)
{
	uint64_t *t = malloc((n ? n : 1) * sizeof(*t));
	size_t m = 0;

	if (!t)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((g[i].state == TEST_GRANTED || g[i].state == TEST_KEPT) &&
		    (key == UINT32_MAX || g[i].key == key))
			t[m++] = g[i].at;
	qsort(t, m, sizeof(*t), cmp_u64);
	*out = t;
	return m;
}

/* Records of @t[0..m) at or before @x. */
static size_t upto(const uint64_t *t, size_t m, uint64_t x)
{
	size_t lo = 0, hi = m;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t[mid] <= x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

unsigned test_check_denials(const struct test_grant *g, size_t n, uint32_t key,
			    uint64_t burst, uint64_t emission, const struct test_denial *d,
			    size_t nd)
{
	uint64_t *t, slack = (burst - 1) * emission;   /* tau - T */
	size_t m = taken_times(g, n, key, &t), lo = 0;
	int64_t *best = malloc((m ? m : 1) * sizeof(*best));
	unsigned bad = 0;

	if (!best)
		abort();
	/* best[i]: max over j <= i of a_j - lo(j) T */
	for (size_t i = 0; i < m; i++) {
		int64_t v;

		while (t[lo] + slack < t[i])
			lo++;
		v = (int64_t)t[i] - (int64_t)(lo * emission);
		best[i] = i && best[i - 1] > v ? best[i - 1] : v;
	}
	for (size_t k = 0; k < nd; k++) {
		size_t c;

		if (key != UINT32_MAX && d[k].key != key)
			continue;
		c = upto(t, m, d[k].after);
		if (c == 0 || best[c - 1] <= (int64_t)(d[k].at + slack) - (int64_t)(c * emission))
			bad++;
	}
	free(best);
	free(t);
	return bad;
}

/*
 * A window denial at d means each of the key's ring positions held a grant
 * newer than d - window (window.c): that many distinct grants, each taken
 * at a time up to its commit (before the denial returned) plus how far
 * ahead it reserved.
 */
unsigned test_check_window_denials(const struct test_grant *g, size_t n, uint32_t key,
				   uint64_t limit, uint64_t window, uint64_t ahead,
				   uint64_t unseen, const struct test_denial *d, size_t nd)
{
	uint64_t *t;
	size_t m = taken_times(g, n, key, &t);
	unsigned bad = 0;

	for (size_t k = 0; k < nd; k++) {
		uint64_t from = d[k].at > window ? d[k].at - window : 0;
		size_t inside;

		if (key != UINT32_MAX && d[k].key != key)
			continue;
		inside = upto(t, m, d[k].after + ahead) - upto(t, m, from);
		if (inside + unseen < limit)
			bad++;
	}
	free(t);
	return bad;
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

uint64_t test_slot_of(const struct vrl_seg *seg, uint32_t lim)
{
	for (uint64_t i = 0; i < seg->view.nslots; i++) {
		uint64_t tag = atomic_load(&seg->view.slots[i].tag);

		if ((tag & VRL_TAG_LIVE) && !(tag & VRL_TAG_PENDING) &&
		    VRL_NOTE_INDEX(atomic_load(&seg->view.slots[i].limit)) == lim)
			return i;
	}
	fprintf(stderr, "test_slot_of: no key of limit %u\n", lim);
	abort();
}
