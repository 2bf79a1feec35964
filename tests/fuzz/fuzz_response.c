/*
 * fuzz_response.c - libFuzzer target: vrl_parse_response() on a response
 * built from the input:
 *
 *   byte 0        status selector: 200, 400, 403, 429 or 503
 *   lines         "name: value" headers, up to an empty line (at most 16)
 *   the rest      the body, in an exact-size buffer without a NUL
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "feedback.h"

#define MAX_HEADERS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int statuses[] = { 200, 400, 403, 429, 503 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vrl_header h[MAX_HEADERS];
	struct vrl_response r = { 0 };
	struct vrl_parsed p;
	char *text, *line, *body = NULL;
	size_t nh = 0, pos = 0;

	if (size == 0)
		return 0;
	r.status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
	data++;
	size--;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	while (pos < size && nh < MAX_HEADERS) {
		char *nl = memchr(text + pos, '\n', size - pos), *colon;

		if (!nl)
			break;
		*nl = '\0';
		line = text + pos;
		pos = (size_t)(nl - text) + 1;
		if (*line == '\0')
			break;
		colon = strchr(line, ':');
		if (colon) {
			*colon = '\0';
			h[nh].name = line;
			h[nh].value = colon + 1;
		} else {
			h[nh].name = line;
			h[nh].value = NULL;  /* a header without a value */
		}
		nh++;
	}
	if (size > pos) {
		body = malloc(size - pos);
		if (body)
			memcpy(body, text + pos, size - pos);
		r.body = body;
		r.body_len = body ? size - pos : 0;
	}
	r.headers = h;
	r.nheaders = nh;
	if (vrl_parse_response(&r, UINT64_C(1792567680) * 1000000000u, &p) != 0)
		abort();
	if ((p.nignored == 0) != (p.ignored == NULL))
		abort();  /* a count without a reason, or the other way */
	if (p.ignored)
		(void)strlen(p.ignored);
	(void)strlen(vrl_fb_hint_name(p.hint));
	free(body);
	free(text);
	return 0;
}
