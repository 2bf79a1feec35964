/*
 * fuzz_config.c - libFuzzer target: vrld's config compiler on any text.
 * A config either compiles or yields one error message; either way the
 * parse must not crash, leak or read past @len.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vrl_daemon_config out;
	char err[VRL_CONFIG_ERR_MAX];
	char *text;
	int rc;

	if (size > (1u << 16))
		return 0;  /* long inputs only slow the search down */
	text = malloc(size ? size : 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	err[0] = '\0';
	rc = vrl_config_parse(text, size, "fuzz.yaml", &out, err);
	if (rc != 0 && (rc != -1 || err[0] == '\0' || !memchr(err, '\0', sizeof(err))))
		abort();  /* every refusal says why */
	free(text);
	return 0;
}
