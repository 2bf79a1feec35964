/*
 * common.h - helpers shared by the test suites: build a config in code and
 * create a private segment for it, without vrld.
 */
#ifndef VRL_TEST_COMMON_H
#define VRL_TEST_COMMON_H

#include <stdint.h>

#include "upkeep.h"
#include "vrl_internal.h"

#define NS_PER_S UINT64_C(1000000000)

/* Append a rate limit of @count per @period_ns, bucket @burst, keyed by the
 * fields in @per (terminated by -1), matching api == @api when non-NULL. */
struct vrl_seg_limit *test_add_rate(struct vrl_seg_config *cfg, const char *name,
				    const char *api, uint64_t count, uint64_t period_ns,
				    uint64_t burst, const int *per);

/* Append a window limit: at most @count in any @window_ns, rings for @keys
 * keys. */
struct vrl_seg_limit *test_add_window(struct vrl_seg_config *cfg, const char *name,
				      const char *api, uint64_t count, uint64_t window_ns,
				      uint64_t keys, const int *per);

/* Append a gate (cooldown-only) limit. */
struct vrl_seg_limit *test_add_gate(struct vrl_seg_config *cfg, const char *name,
				    const char *api, const int *per);

/* Append a quota of @count units per @calendar period (enum vrl_calendar,
 * @anchor as in vrl_seg_limit), @flags VRL_LIMIT_*. */
struct vrl_seg_limit *test_add_quota(struct vrl_seg_config *cfg, const char *name,
				     const char *api, uint64_t count, uint32_t calendar,
				     uint32_t anchor, uint32_t flags, const int *per);

/* Append a slots limit: at most @count held at once. */
struct vrl_seg_limit *test_add_slots(struct vrl_seg_config *cfg, const char *name,
				     const char *api, uint64_t count, uint32_t flags,
				     const int *per);

/* Create a fresh segment "/vrl-test-<tag>-<pid>" for @cfg with @keys keys;
 * its name is written to @name. Aborts the test program on failure. */
void test_segment(const char *tag, const struct vrl_seg_config *cfg, uint64_t keys,
		  struct vrl_seg *seg, char name[VRL_SHM_NAME_MAX]);

/* The slot of the one live key of limit index @lim in @seg (by its note);
 * aborts the test program when there is none. */
uint64_t test_slot_of(const struct vrl_seg *seg, uint32_t lim);

/* Unmap and unlink. */
void test_segment_drop(struct vrl_seg *seg, const char *name);

/* Open a client or abort. */
vrl_client *test_open(const char *name);

#endif

/* One grant as a test records it. */
struct test_grant {
	uint64_t at;        /* verdict.at_ns; 0: unknown (its process was killed) */
	uint32_t key;       /* which key of the test's own numbering */
	uint32_t state;     /* TEST_ATTEMPT, TEST_GRANTED, TEST_DENIED */
};

enum { TEST_ATTEMPT = 1, TEST_GRANTED = 2, TEST_DENIED = 3,
       TEST_KEPT = 4 /* permits a rollback could not give back (vrl__kept) */ };

/* A denial as a test records it. */
struct test_denial {
	uint64_t at;        /* verdict.at_ns: the time it was judged at */
	uint64_t after;     /* the clock read once the call had returned */
	uint32_t key;       /* which key of the test's own numbering */
};

/*
 * Check the GCRA bound on the granted records of @key (UINT32_MAX: all):
 * in every window of length @w starting at a grant, at most
 * burst + floor(w / emission) grants. Returns the number of windows that
 * broke it (0 when the limit held) and the largest count seen in @worst.
 */
unsigned test_check_windows(const struct test_grant *g, size_t n, uint32_t key,
			    uint64_t burst, uint64_t emission, uint64_t w, uint64_t *worst);

/*
 * Check that every denial of @d (those of key @key, UINT32_MAX: all) by a
 * rate limit of @burst permits, one per @emission ns, is justified by what
 * the key had taken: the records of @g granted or kept (TEST_KEPT) for
 * @key, each at the time it was taken at. Holds however slow the machine
 * was; a denial with room in the bucket fails it. Returns the number of
 * denials not justified.
 */
unsigned test_check_denials(const struct test_grant *g, size_t n, uint32_t key,
			    uint64_t burst, uint64_t emission, const struct test_denial *d,
			    size_t nd);

/*
 * The same for an exact window of @limit grants in any @window ns: each
 * denial of @key must have found @limit grants of the key within the
 * window before it, that is with times in (at - window, after + @ahead]
 * (@ahead: how far ahead a waiting acquire may reserve), counting @unseen
 * grants no record shows (a worker killed between its grant and its
 * record). Returns the number of denials not justified.
 */
unsigned test_check_window_denials(const struct test_grant *g, size_t n, uint32_t key,
				   uint64_t limit, uint64_t window, uint64_t ahead,
				   uint64_t unseen, const struct test_denial *d, size_t nd);

/* Grants of @key (UINT32_MAX: all), and their first and last times. */
size_t test_count_grants(const struct test_grant *g, size_t n, uint32_t key,
			 uint64_t *first, uint64_t *last);

/* Shared anonymous memory for @bytes, visible to forked children. */
void *test_shared(size_t bytes);
