/*
 * test_wait.c - waiting acquires on stacked rate limits (acquire.c AQ.W1):
 * a waiter bound by one key does not reserve the other keys past their
 * own turn, so a request that needs only those keys takes the turn.
 *
 * Samsara's pair at a slow pace: a token at 1 per 200 ms under an
 * organisation at 1 per 100 ms, burst 1. The check runs in the waiter's
 * wake hook, so it happens after the waiter slept, on the clock, whatever
 * the machine's load.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "common.h"
#include "segment.h"

struct fixture {
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];
	vrl_client *c, *d;
};

static struct fixture F;
static int probes, probe_rc;

static int setup(void **state)
{
	static struct vrl_seg_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	test_add_rate(&cfg, "samsara.token", "samsara", 1, 200 * (NS_PER_S / 1000), 1,
		      (int[]){ VRL_FIELD_TOKEN, -1 });
	test_add_rate(&cfg, "samsara.org", "samsara", 1, 100 * (NS_PER_S / 1000), 1,
		      (int[]){ VRL_FIELD_ORG, -1 });
	test_segment("wait", &cfg, 1000, &F.seg, F.name);
	F.c = test_open(F.name);
	F.d = test_open(F.name);
	*state = &F;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vrl_close(f->c);
	vrl_close(f->d);
	test_segment_drop(&f->seg, f->name);
	return 0;
}

/* While the waiter is awake for the first time: the other token asks,
 * from the other handle, without waiting. */
static void probe(uint64_t at)
{
	const struct vrl_request b = { .api = "samsara", .token = "b", .org = "acme" };

	(void)at;
	if (probes++ == 0)
		probe_rc = vrl_acquire(F.d, &b, NULL);
}

/*
 * Token a is granted with the organisation's turn; a waiter on token a
 * again is bound by the token (200 ms), while the organisation is free
 * after 100 ms. When the waiter wakes, the organisation's turn it did not
 * need is there for token b: before AQ.W1 the waiter had reserved it, and
 * b was denied until 100 ms after the waiter's grant.
 */
static void test_waiter_leaves_other_turns(void **state)
{
	struct fixture *f = *state;
	const struct vrl_request a = { .api = "samsara", .token = "a", .org = "acme" };
	struct vrl_verdict v;
	uint64_t t0;

	assert_int_equal(vrl_acquire(f->c, &a, &v), 0);
	t0 = v.at_ns;
	probes = 0;
	probe_rc = -1;
	vrl__woke = probe;
	assert_int_equal(vrl_acquire_wait(f->c, &a, 5 * NS_PER_S, &v), 0);
	vrl__woke = NULL;
	assert_true(probes >= 1);            /* it slept */
	assert_int_equal(probe_rc, 0);       /* b took the organisation's turn */
	/* and the waiter's own grant kept both spacings after the first */
	assert_true(v.at_ns >= t0 + 200 * (NS_PER_S / 1000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_waiter_leaves_other_turns),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
