/*
 * old_caller.c - a program built against libvrl 0.1 (vrl-0.1.h, that
 * release's header, whose structs had no reserved room), run with this
 * libvrl.so. Its calls bind to the VRL_0 symbols, as they did when it was
 * linked against 0.1. The structs it passes are exactly 0.1's size, each
 * on the heap with a fence after it: the library reads and writes nothing
 * past them (a changed fence fails here; a read past them fails under
 * ASan), and every call answers as 0.1 documented.
 *
 *   old_caller SEGMENT    (vrld serving old_caller.sh's config on SEGMENT)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vrl-0.1.h"

/* what the linker of 0.1 recorded: the only version these names had */
__asm__(".symver vrl_acquire, vrl_acquire@VRL_0");
__asm__(".symver vrl_acquire_wait, vrl_acquire_wait@VRL_0");
__asm__(".symver vrl_resolve, vrl_resolve@VRL_0");
__asm__(".symver vrl_acquire_resolved, vrl_acquire_resolved@VRL_0");
__asm__(".symver vrl_cooldown, vrl_cooldown@VRL_0");
__asm__(".symver vrl_reset, vrl_reset@VRL_0");
__asm__(".symver vrl_release, vrl_release@VRL_0");
__asm__(".symver vrl_refund, vrl_refund@VRL_0");
__asm__(".symver vrl_observe, vrl_observe@VRL_0");

#define FENCE 0xa5u
#define FENCE_LEN 256

static int failed;

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "old_caller.c:%d: %s\n", __LINE__, #cond); failed = 1; } } while (0)

/* @size bytes for a struct, then FENCE_LEN bytes of FENCE. */
static void *fenced(size_t size)
{
	unsigned char *p = malloc(size + FENCE_LEN);

	if (!p)
		abort();
	memset(p, 0, size);
	memset(p + size, FENCE, FENCE_LEN);
	return p;
}

static int fence_ok(const void *p, size_t size)
{
	const unsigned char *f = (const unsigned char *)p + size;

	for (size_t i = 0; i < FENCE_LEN; i++)
		if (f[i] != FENCE)
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	/* exactly 0.1's sizes, the request on the heap alone so that a read
	 * past it is an ASan error */
	struct vrl_request *req = malloc(sizeof(*req));
	struct vrl_verdict *v = fenced(sizeof(*v));
	struct vrl_response *resp = malloc(sizeof(*resp));
	struct vrl_feedback *fb = fenced(sizeof(*fb));
	struct vrl_header retry = { "Retry-After", "60" };
	vrl_resolved *r;
	vrl_client *c;
	int rc;

	if (argc != 2 || !req || !resp)
		return 2;
	CHECK(sizeof(*req) == 72 && sizeof(*v) == 88 && sizeof(*resp) == 48 && sizeof(*fb) == 40);
	*req = (struct vrl_request){ .api = "abi", .token = "old" };
	rc = vrl_open(argv[1], 0, &c);
	if (rc) {
		fprintf(stderr, "vrl_open: %s\n", vrl_strerror(rc));
		return 1;
	}
	CHECK(vrl_acquire(c, req, v) == 0);
	CHECK(v->granted == 1 && v->matched == 1 && v->limit == 0 && v->limit_name &&
	      v->cost == 1 && v->kind == VRL_RATE && v->limit_value > 0);
	CHECK(fence_ok(v, sizeof(*v)));

	CHECK(vrl_resolve(c, req, &r) == 0);
	CHECK(vrl_acquire_resolved(c, r, 2, v) == 0 && v->granted == 1 && v->cost == 2);
	CHECK(fence_ok(v, sizeof(*v)));

	/* a 429 closes the tightest key for a minute; the next acquire is
	 * denied by the cooldown */
	*resp = (struct vrl_response){ .status = 429, .headers = &retry, .nheaders = 1 };
	CHECK(vrl_observe(c, req, resp, fb) == 0);
	CHECK((fb->actions & VRL_FB_COOLDOWN) && fb->limit == 0 && fb->cooldown_until_ns > 0);
	CHECK(fence_ok(fb, sizeof(*fb)));
	CHECK(vrl_acquire(c, req, v) == VRL_EDENIED);
	CHECK(v->granted == 0 && (v->flags & VRL_VERDICT_COOLDOWN) && v->retry_after_ns > 0);
	CHECK(vrl_acquire_wait(c, req, 1000, v) == VRL_EDENIED && v->granted == 0);
	CHECK(fence_ok(v, sizeof(*v)));

	/* an operator's calls, through the same old request */
	CHECK(vrl_reset(c, req, NULL) == 0);
	CHECK(vrl_acquire(c, req, v) == 0 && v->granted == 1);
	CHECK(vrl_cooldown(c, req, NULL, vrl_now_ns() + 60ull * 1000000000ull) == 0);
	CHECK(vrl_acquire(c, req, NULL) == VRL_EDENIED);
	CHECK(vrl_reset(c, req, NULL) == 0);
	CHECK(vrl_refund(c, req, NULL, 1) == 0);
	CHECK(vrl_release(c, req, NULL, 1) == VRL_ENOLIMIT);   /* no slots limit */
	CHECK(fence_ok(v, sizeof(*v)) && fence_ok(fb, sizeof(*fb)));

	vrl_resolved_free(r);
	vrl_close(c);
	free(req);
	free(v);
	free(resp);
	free(fb);
	if (!failed)
		printf("a 0.1 caller runs with this libvrl\n");
	return failed;
}
