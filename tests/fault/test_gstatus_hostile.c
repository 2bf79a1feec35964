/*
 * test_gstatus_hostile.c - a member of the segment's group writes the
 * global status area, or the header word that says where it is, with
 * whatever it likes. `vrlctl global` must never crash, hang or print a
 * terminal escape, and its JSON stays one object; the reader in process
 * (what vrlctl runs, under the sanitizers here) keeps every count and
 * string within the area:
 *
 *   - random bytes under a valid magic and an even sequence word, many
 *     rounds: the copy's counts clamped, every string terminated;
 *   - the same through vrlctl, text and JSON, a few rounds, with escape
 *     bytes, counts, enums and indexes out of range, times in any order;
 *   - a sequence word left odd: vrlctl gives up with an error (exit 2)
 *     instead of waiting for ever; another magic: exit 2;
 *   - header.gstatus_off pointed anywhere: exit 1 or 2, never a read
 *     outside the segment.
 *
 * usage: test_gstatus_hostile VRLCTL
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common.h"
#include "../run_cmd.h"
#include "gstatus.h"     /* the reader: vrlctl's gstatus_read.c */

#define OUT_MAX (8u << 20)     /* 2048 rows of garbage, escaped */

static const char *vrlctl_path;
static char seg_name[VRL_SHM_NAME_MAX];
static struct vrl_seg seg;
static struct vrl_gstatus_area *area;   /* the segment's, written as a member would */
static char out[OUT_MAX];

static int setup(void **state)
{
	static struct vrl_seg_config cfg;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	test_add_rate(&cfg, "g", NULL, 10, NS_PER_S, 2, (const int[]){ VRL_FIELD_TOKEN, -1 });
	cfg.flags |= VRL_CFG_GLOBAL;
	test_segment("gsh", &cfg, 1000, &seg, seg_name);
	assert_int_not_equal(seg.geom.gstatus_off, 0);
	area = (struct vrl_gstatus_area *)((char *)seg.hdr + seg.geom.gstatus_off);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	test_segment_drop(&seg, seg_name);
	return 0;
}

/* xorshift64: the same garbage on every run */
static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Fill @len bytes at @p with garbage: random, or runs of one hostile byte
 * (escape, NUL-free high bytes, quote, backslash). */
static void garbage(void *p, size_t len)
{
	static const unsigned char bytes[] = { 0x1b, 0xff, '"', '\\', '\n', 0x9b, 'A' };
	unsigned char *b = p;
	uint64_t mode = next() % 3;

	for (size_t i = 0; i < len; i++)
		b[i] = mode == 0 ? (unsigned char)next() : bytes[(i / 7 + mode) % sizeof(bytes)];
}

/* Hostile area: garbage everywhere, then a valid head so the reader and
 * vrlctl go past the magic. Counts sometimes huge, sometimes in range. */
static void poison(void)
{
	size_t head = offsetof(struct vrl_gstatus_area, ep);
	size_t rows = 64 * sizeof(area->key[0]);      /* the rows vrlctl may read, enough */

	garbage((char *)area + sizeof(area->seq), head - sizeof(area->seq));
	garbage(area->ep, sizeof(area->ep));
	garbage(area->key, rows);
	area->magic = VRL_GSTATUS_MAGIC;
	area->format = VRL_GSTATUS_FORMAT;
	if (next() & 1) {
		area->nendpoints = (uint32_t)(next() % (VRL_GSTATUS_ENDPOINTS + 2));
		area->nkeys = (uint32_t)(next() % 64);
	}
	atomic_store(&area->seq, (next() % 1000) * 2);
}

static int ctl(const char *args)
{
	return run_vrlctl(vrlctl_path, seg_name, args, true, out, sizeof(out));
}

/* In process: many rounds of garbage, each copy within bounds. */
static void test_reader_garbage(void **state)
{
	struct vrl_gstatus_area *copy = malloc(sizeof(*copy));
	const struct vrl_gstatus_area *a;
	const char *why;

	(void)state;
	assert_non_null(copy);
	a = vrl_gstatus_find(&seg.view, &why);
	assert_ptr_equal(a, area);
	for (int round = 0; round < 2000; round++) {
		poison();
		if (round % 2)
			garbage(area->key, sizeof(area->key));   /* every row, now and then */
		assert_int_equal(vrl_gstatus_read(a, copy), 0);
		assert_true(copy->nendpoints <= VRL_GSTATUS_ENDPOINTS);
		assert_true(copy->nkeys <= VRL_GSTATUS_KEYS);
		assert_true(strlen(copy->host) < sizeof(copy->host));
		for (uint32_t i = 0; i < copy->nendpoints; i++) {
			assert_true(strlen(copy->ep[i].name) < sizeof(copy->ep[i].name));
			assert_true(strlen(copy->ep[i].epoch) < sizeof(copy->ep[i].epoch));
			assert_true(strlen(copy->ep[i].error) < sizeof(copy->ep[i].error));
		}
		for (uint32_t i = 0; i < copy->nkeys; i++) {
			assert_true(strlen(copy->key[i].limit) < sizeof(copy->key[i].limit));
			assert_true(strlen(copy->key[i].label) < sizeof(copy->key[i].label));
		}
	}
	free(copy);
}

/* Through vrlctl: no crash, no escape byte out, JSON one line. */
static void test_vrlctl_garbage(void **state)
{
	(void)state;
	for (int round = 0; round < 12; round++) {
		int rc;

		poison();
		rc = ctl("global");
		assert_true(rc == 0 || rc == 1);
		if (strchr(out, 0x1b))
			fail_msg("a terminal escape reached the output:\n%s", out);
		rc = ctl("--json global");
		assert_true(rc == 0 || rc == 1);
		assert_true(out[0] == '{');
		assert_non_null(strstr(out, "\"global\":true"));
		if (strchr(out, '\n') != out + strlen(out) - 1)
			fail_msg("not one line of JSON:\n%s", out);
		if (strchr(out, 0x1b))
			fail_msg("a raw escape in the JSON:\n%s", out);
	}
}

/* A sequence word left odd: an error, not a hang; another magic: an error. */
static void test_stuck_and_foreign(void **state)
{
	(void)state;
	poison();
	atomic_store(&area->seq, 7);
	assert_int_equal(ctl("global"), 2);
	assert_non_null(strstr(out, "kept changing"));
	atomic_store(&area->seq, 8);
	area->magic = 0x4141414141414141u;
	assert_int_equal(ctl("global"), 2);
	assert_int_equal(ctl("--json global"), 2);
	assert_non_null(strstr(out, "\"error\":\"VRL_ECORRUPT\""));
}

/* The header's word pointed anywhere: vrlctl reads nothing outside. */
static void test_offset_anywhere(void **state)
{
	const uint64_t size = seg.view.size, off = seg.geom.gstatus_off;
	const uint64_t bad[] = { 1, 64, 4096, off - 4096, off + 4096, off + 1, size,
				 size - 4096, size + 4096, UINT64_MAX - 4095, UINT64_MAX,
				 seg.geom.slot_off };

	(void)state;
	poison();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc;

		seg.hdr->gstatus_off = bad[i];
		rc = ctl("global");
		if (rc != 1 && rc != 2)
			fail_msg("gstatus_off %llu: vrlctl exited %d:\n%s",
				 (unsigned long long)bad[i], rc, out);
	}
	seg.hdr->gstatus_off = off;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reader_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vrlctl_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stuck_and_foreign, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offset_anywhere, setup, teardown),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s VRLCTL\n", argv[0]);
		return 2;
	}
	vrlctl_path = argv[1];
	return cmocka_run_group_tests_name("gstatus_hostile", tests, NULL, NULL);
}
