/*
 * label.h - the display label of a key, as libvrl writes it into the key's
 * slot. Internal: shared by the library, vrld, vrlctl and the tests.
 *
 * Request values such as a token are secrets: the label a slot keeps, and
 * so every view of it (vrlctl, metrics, the textfile, logs, alert commands,
 * checkpoints), shows a value only when the config says its field may be
 * shown (VRL_REF_CLEAR on the limit's per field); any other value is shown
 * as a short hash, "#" and 8 hex digits, that an operator can compute from
 * a value they hold (`vrlctl hash`). A token is never shown, whatever the
 * segment says: the flag is read from a segment that members of its group
 * can write, and a token must not be readable by one that did not supply it.
 */
#ifndef VRL_LABEL_H
#define VRL_LABEL_H

#include <stdbool.h>
#include <stddef.h>

#include "segment.h"

#define VRL_LABEL_HASH_LEN 9u   /* chars of a hidden value's label: '#' and 8 hex digits */

/*
 * The label of a hidden value @value of @len bytes: "#" and 8 lowercase hex
 * digits of its XXH3 hash (the same for the same bytes, in any field, on any
 * host, in any version of this format), NUL terminated in @out.
 */
void vrl_label_hash(const char *value, size_t len, char out[VRL_LABEL_HASH_LEN + 1]);

/* True when values of per field @f are shown as written in labels: marked
 * VRL_REF_CLEAR, and not the token. */
bool vrl_label_shown(const struct vrl_seg_fieldref *f);

/*
 * The label of a key of limit @l whose per values are @parts (l->nper of
 * them; NULL or "" for a field the request lacks, shown empty): each value
 * as written or hashed (vrl_label_shown), joined by '|', NUL terminated.
 * What does not fit in VRL_LABEL_MAX - 1 bytes is cut: a value shown as
 * written may be cut short, a hash is left out whole.
 */
void vrl_label_build(const struct vrl_seg_limit *l, const char *const *parts,
		     char label[VRL_LABEL_MAX]);

#endif /* VRL_LABEL_H */
