/*
 * hash.c - `vrlctl hash`: the label a secret value is shown as.
 *
 * Key labels show a secret request value (a token; by default also users
 * and vehicles) as "#" and 8 hex digits of its hash (lib/label.h). An
 * operator who holds a value computes its hash here to find its key in
 * `vrlctl keys`, the metrics or the logs. Values are read one per line
 * from stdin unless one is given as an argument, so that a secret need not
 * appear in the shell's history or in ps. Needs no segment.
 */
#include "vrlctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "label.h"
#include "json_writer.h"

#define HASH_LINE_MAX 4096   /* bytes of one value read from stdin */

static void print_hash(struct json *j, bool json, const char *value, size_t len)
{
	char h[VRL_LABEL_HASH_LEN + 1];

	vrl_label_hash(value, len, h);
	if (json)
		json_str(j, NULL, h);
	else
		printf("%s\n", h);
}

/* Hash each line of stdin (without its line end). Returns 0 or -1 for a
 * line too long. */
static int hash_lines(struct json *j, bool json)
{
	char line[HASH_LINE_MAX + 2];

	while (fgets(line, sizeof(line), stdin)) {
		size_t len = strlen(line);

		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(stdin))
			return -1;
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		print_hash(j, json, line, len);
	}
	return 0;
}

int ctl_cmd_hash(const struct ctl *x)
{
	struct json j;
	int rc = 0;

	if (x->npos > 1)
		return ctl_usage_error("hash", "one VALUE at most (or none: one per line on stdin)");
	if (x->json) {
		json_init(&j, stdout);
		json_obj_begin(&j, NULL);
		json_arr_begin(&j, "hashes");
	}
	if (x->npos == 1 && strcmp(x->pos[0], "-") != 0)
		print_hash(&j, x->json, x->pos[0], strlen(x->pos[0]));
	else
		rc = hash_lines(&j, x->json);
	if (x->json) {
		json_arr_end(&j);
		json_obj_end(&j);
		json_finish(&j);
	}
	if (rc) {
		fprintf(stderr, "vrlctl: hash: a line longer than %u bytes on stdin\n",
			HASH_LINE_MAX);
		return CTL_EXIT_ERROR;
	}
	return CTL_EXIT_OK;
}
