/*
 * fuzz_retry_after.c - libFuzzer target: vrl_parse_retry_after() on any
 * bytes. The input is the header value; its first 8 bytes, when present,
 * are the wall clock, so dates near "now" are reached.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "feedback.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t now = UINT64_C(1792567680) * 1000000000u, d = 0;
	char *copy;
	int rc;

	if (size >= 9 && data[0] == 0xff) {
		memcpy(&now, data + 1, 8);
		data += 9;
		size -= 9;
	}
	/* an exact-size heap copy: ASan sees any read past the length */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	rc = vrl_parse_retry_after(copy, size, now, &d);
	if (rc != 0 && rc != -EINVAL)
		abort();
	if (rc == 0 && d > (uint64_t)VRL_RETRY_AFTER_MAX_S * 1000000000u)
		abort();  /* the bound it promises */
	free(copy);
	return 0;
}
