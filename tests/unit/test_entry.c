/*
 * test_entry.c - the entry checks of vrl.h, the same in every call: a NULL
 * handle, request, response or resolved request gives VRL_ENULL, a
 * reserved word set gives VRL_ERESERVED, a resolved request used with
 * another handle gives VRL_EHANDLE, and none of them touches a key.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common.h"
#include "vrl.h"

struct fixture {
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX];
	vrl_client *c;
};

/* one limit: 1 per hour on api "e", so a second grant shows a key was taken */
static int setup(void **state)
{
	struct vrl_seg_config cfg = { 0 };
	struct fixture *f = calloc(1, sizeof(*f));

	test_add_rate(&cfg, "one", "e", 1, 3600 * NS_PER_S, 1, (int[]){ -1 });
	test_segment("entry", &cfg, 100, &f->seg, f->name);
	f->c = test_open(f->name);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vrl_close(f->c);
	test_segment_drop(&f->seg, f->name);
	free(f);
	return 0;
}

/* The key of limit "one" was never taken: its one permit is there. */
static void assert_untouched(vrl_client *c)
{
	struct vrl_request req = { .api = "e" };
	struct vrl_verdict v;

	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	assert_int_equal(v.remaining, 0);
}

static void null_handle(void **state)
{
	struct fixture *f = *state;
	struct vrl_request req = { .api = "e" };
	struct vrl_response resp = { .status = 429 };
	struct vrl_verdict v = { .granted = 1 };
	vrl_resolved *r = NULL;

	assert_int_equal(vrl_acquire(NULL, &req, &v), VRL_ENULL);
	assert_int_equal(v.granted, 0);
	assert_int_equal(vrl_acquire_wait(NULL, &req, 1000, &v), VRL_ENULL);
	assert_int_equal(vrl_resolve(NULL, &req, &r), VRL_ENULL);
	assert_null(r);
	assert_int_equal(vrl_cooldown(NULL, &req, NULL, vrl_now_ns() + NS_PER_S), VRL_ENULL);
	assert_int_equal(vrl_reset(NULL, &req, NULL), VRL_ENULL);
	assert_int_equal(vrl_release(NULL, &req, NULL, 1), VRL_ENULL);
	assert_int_equal(vrl_refund(NULL, &req, NULL, 1), VRL_ENULL);
	assert_int_equal(vrl_observe(NULL, &req, &resp, NULL), VRL_ENULL);
	assert_int_equal(vrl_limit_count(NULL), VRL_ENULL);
	assert_null(vrl_limit_name(NULL, 0));
	assert_int_equal(vrl_open(f->name, 0, NULL), VRL_ENULL);
	vrl_close(NULL);
	vrl_resolved_free(NULL);
	assert_untouched(f->c);
}

static void null_request(void **state)
{
	struct fixture *f = *state;
	struct vrl_response resp = { .status = 429 };
	struct vrl_request req = { .api = "e" };
	struct vrl_verdict v = { .granted = 1 };
	vrl_resolved *r = NULL;

	assert_int_equal(vrl_acquire(f->c, NULL, &v), VRL_ENULL);
	assert_int_equal(v.granted, 0);
	assert_int_equal(vrl_acquire_wait(f->c, NULL, 1000, NULL), VRL_ENULL);
	assert_int_equal(vrl_resolve(f->c, NULL, &r), VRL_ENULL);
	assert_int_equal(vrl_resolve(f->c, &req, NULL), VRL_ENULL);
	assert_null(r);
	assert_int_equal(vrl_acquire_resolved(f->c, NULL, 0, &v), VRL_ENULL);
	assert_int_equal(vrl_cooldown(f->c, NULL, NULL, vrl_now_ns() + NS_PER_S), VRL_ENULL);
	assert_int_equal(vrl_reset(f->c, NULL, NULL), VRL_ENULL);
	assert_int_equal(vrl_release(f->c, NULL, NULL, 1), VRL_ENULL);
	assert_int_equal(vrl_refund(f->c, NULL, NULL, 1), VRL_ENULL);
	assert_int_equal(vrl_observe(f->c, NULL, &resp, NULL), VRL_ENULL);
	assert_int_equal(vrl_observe(f->c, &req, NULL, NULL), VRL_ENULL);
	assert_untouched(f->c);
}

static void reserved_set(void **state)
{
	struct fixture *f = *state;
	struct vrl_request req = { .api = "e" };
	struct vrl_response resp = { .status = 429 };
	struct vrl_verdict v;
	vrl_resolved *r = NULL;

	req.reserved[7] = 1;
	assert_int_equal(vrl_acquire(f->c, &req, &v), VRL_ERESERVED);
	assert_int_equal(vrl_acquire_wait(f->c, &req, 1000, &v), VRL_ERESERVED);
	assert_int_equal(vrl_resolve(f->c, &req, &r), VRL_ERESERVED);
	assert_null(r);
	assert_int_equal(vrl_cooldown(f->c, &req, NULL, vrl_now_ns() + NS_PER_S), VRL_ERESERVED);
	assert_int_equal(vrl_reset(f->c, &req, NULL), VRL_ERESERVED);
	assert_int_equal(vrl_release(f->c, &req, NULL, 1), VRL_ERESERVED);
	assert_int_equal(vrl_refund(f->c, &req, NULL, 1), VRL_ERESERVED);
	assert_int_equal(vrl_observe(f->c, &req, &resp, NULL), VRL_ERESERVED);
	req.reserved[7] = 0;
	resp.reserved[0] = 1;
	assert_int_equal(vrl_observe(f->c, &req, &resp, NULL), VRL_ERESERVED);
	assert_untouched(f->c);
}

/* A verdict and a feedback come back with their room zeroed, whatever the
 * caller left there. */
static void room_written_zero(void **state)
{
	struct fixture *f = *state;
	struct vrl_request req = { .api = "e" };
	struct vrl_response resp = { .status = 200 };
	struct vrl_verdict v;
	struct vrl_feedback fb;

	memset(&v, 0xa5, sizeof(v));
	memset(&fb, 0xa5, sizeof(fb));
	assert_int_equal(vrl_acquire(f->c, &req, &v), 0);
	assert_int_equal(vrl_observe(f->c, &req, &resp, &fb), 0);
	for (size_t i = 0; i < sizeof(v.reserved) / sizeof(v.reserved[0]); i++)
		assert_int_equal(v.reserved[i], 0);
	assert_int_equal(v.pad, 0);
	for (size_t i = 0; i < sizeof(fb.reserved) / sizeof(fb.reserved[0]); i++)
		assert_int_equal(fb.reserved[i], 0);
}

static void resolved_other_handle(void **state)
{
	struct fixture *f = *state;
	struct vrl_request req = { .api = "e" };
	struct vrl_verdict v = { .granted = 1 };
	vrl_client *other = test_open(f->name);
	vrl_resolved *r;

	assert_int_equal(vrl_resolve(f->c, &req, &r), 0);
	assert_int_equal(vrl_acquire_resolved(other, r, 1, &v), VRL_EHANDLE);
	assert_int_equal(v.granted, 0);
	assert_int_equal(vrl_acquire_resolved(NULL, r, 1, &v), VRL_ENULL);
	assert_untouched(f->c);
	vrl_resolved_free(r);
	vrl_close(other);
}

static void codes_described(void **state)
{
	(void)state;
	assert_string_equal(vrl_err_name(VRL_ENULL), "VRL_ENULL");
	assert_string_equal(vrl_err_name(VRL_EHANDLE), "VRL_EHANDLE");
	assert_string_equal(vrl_err_name(VRL_ERESERVED), "VRL_ERESERVED");
	assert_non_null(strstr(vrl_strerror(VRL_EHANDLE), "another handle"));
}

static void version(void **state)
{
	char text[32];

	(void)state;
	assert_int_equal(vrl_version(), VRL_VERSION);
	snprintf(text, sizeof(text), "%u.%u.%u", VRL_VERSION_MAJOR, VRL_VERSION_MINOR,
		 VRL_VERSION_PATCH);
	assert_string_equal(vrl_version_string(), text);
	assert_true(VRL_VERSION >= VRL_VERSION_NUMBER(0, 2, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(null_handle, setup, teardown),
		cmocka_unit_test_setup_teardown(null_request, setup, teardown),
		cmocka_unit_test_setup_teardown(reserved_set, setup, teardown),
		cmocka_unit_test_setup_teardown(room_written_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(resolved_other_handle, setup, teardown),
		cmocka_unit_test(codes_described),
		cmocka_unit_test(version),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
