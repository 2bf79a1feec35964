/*
 * label.c - see label.h.
 */
#include "label.h"

#include <stdint.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define LABEL_SEED UINT64_C(0x6c6562616c2d6c72) /* "rl-label": not the key hash's */

void vrl_label_hash(const char *value, size_t len, char out[VRL_LABEL_HASH_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint32_t h = (uint32_t)(XXH3_64bits_withSeed(value, len, LABEL_SEED) >> 32);

	out[0] = '#';
	for (unsigned i = 0; i < 8; i++)
		out[1 + i] = hex[(h >> (28 - 4 * i)) & 0xfu];
	out[VRL_LABEL_HASH_LEN] = '\0';
}

bool vrl_label_shown(const struct vrl_seg_fieldref *f)
{
	return (f->flags & VRL_REF_CLEAR) && f->field != VRL_FIELD_TOKEN;
}

/* Append @n bytes of @s to @label at *@used, within VRL_LABEL_MAX - 1. */
static void append(char *label, size_t *used, const char *s, size_t n)
{
	size_t room = VRL_LABEL_MAX - 1 - *used;

	if (n > room)
		n = room;
	memcpy(label + *used, s, n);
	*used += n;
}

void vrl_label_build(const struct vrl_seg_limit *l, const char *const *parts,
		     char label[VRL_LABEL_MAX])
{
	size_t used = 0;

	for (uint32_t i = 0; i < l->nper && i < VRL_MAX_PER; i++) {
		const char *v = parts[i] ? parts[i] : "";
		size_t len = strlen(v);

		if (i > 0)
			append(label, &used, "|", 1);
		if (len == 0 || vrl_label_shown(&l->per[i])) {
			append(label, &used, v, len);
		} else {
			char h[VRL_LABEL_HASH_LEN + 1];

			/* a hash whole or not at all: a cut one would match no
			 * `vrlctl hash` */
			if (VRL_LABEL_MAX - 1 - used < VRL_LABEL_HASH_LEN)
				break;
			vrl_label_hash(v, len, h);
			append(label, &used, h, VRL_LABEL_HASH_LEN);
		}
	}
	label[used] = '\0';
}
