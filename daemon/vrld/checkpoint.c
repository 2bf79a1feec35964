/*
 * checkpoint.c - durable key state on disk (see checkpoint.h).
 *
 * File layout (host byte order):
 *
 *   struct ckpt_head     magic "VRLCKPT\n", version, record size, checksum,
 *                        time written, record count
 *   struct vrl_ckpt_rec  x count
 *
 * The checksum is XXH3_64bits of every byte after the checksum field, so a
 * truncated or damaged file is told apart from a valid one; a file of
 * another version is refused before its records are read.
 *
 * Concurrency: saving reads live slots with relaxed loads while workers keep
 * acquiring. A slot's words are read between two reads of its tag; a slot
 * reused for another key in between is skipped. A state word read there is
 * one value some acquire left behind: the checkpoint is a fuzzy snapshot,
 * each key exact as of some instant within the pass.
 */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "upkeep.h"
#include "atomic_file.h"
#include "vrl_internal.h"
#include "clock.h"
#include "keytable.h"
#include "kind.h"

#define CKPT_MAGIC       "VRLCKPT\n"
#define CKPT_MAX_RECS    (UINT64_C(1) << 32)   /* more than any key table holds */

struct ckpt_head {
	char magic[8];
	uint32_t version;           /* VRL_CKPT_VERSION */
	uint32_t rec_size;          /* sizeof(struct vrl_ckpt_rec) */
	uint64_t checksum;          /* XXH3_64bits of every byte after this field */
	uint64_t written_rt;
	uint64_t n;
};

_Static_assert(offsetof(struct ckpt_head, written_rt) == 24, "checksum covers from byte 24");

static uint64_t realtime_ns(void)
{
	return vrl_wall_ns();
}

/* The active config's limit a note names, for saves from vrld's thread. */
static const struct vrl_seg_limit *active_limit(void *arg, uint32_t note)
{
	const struct vrl_seg_config *cfg = arg;
	int li = vrl_note_limit(note, cfg->generation, cfg->nlimits);

	return li < 0 ? NULL : &cfg->limits[li];
}

/*
 * Read slot @s into @r. Returns true when it holds a live key with durable
 * state or a cooldown in force at @mono (then @r is filled).
 */
static bool snap_slot(struct vrl_seg_slot *s, vrl_ckpt_limit_fn *limit_of, void *arg,
		      uint64_t mono, uint64_t rt, struct vrl_ckpt_rec *r)
{
	/* acquire: pairs with the insert's release of the live tag, so home,
	 * limit and label of that insert are visible */
	uint64_t tag = atomic_load_explicit(&s->tag, memory_order_acquire);
	const struct vrl_seg_limit *l;
	uint64_t state, cd;
	uint32_t note;

	if (!(tag & VRL_TAG_LIVE) || (tag & VRL_TAG_PENDING))
		return false;
	state = atomic_load_explicit(&s->state, memory_order_relaxed);
	cd = atomic_load_explicit(&s->cooldown, memory_order_relaxed);
	note = atomic_load_explicit(&s->limit, memory_order_relaxed);
	if (state == VRL_STATE_EVICTED)
		return false;
	memset(r, 0, sizeof(*r));
	r->home = atomic_load_explicit(&s->home, memory_order_relaxed);
	r->fp = tag & VRL_TAG_FP_MASK;
	memcpy(r->label, s->label, sizeof(r->label));
	r->label[sizeof(r->label) - 1] = '\0';
	/* acquire fence: the words above were read before the tag re-check */
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&s->tag, memory_order_relaxed) != tag)
		return false;
	/* a key whose limit cannot be told (gone from the config) has nothing
	 * a restore could match */
	l = limit_of(arg, note);
	if (!l)
		return false;
	memcpy(r->limit, l->name, sizeof(r->limit));
	r->kind = l->kind;
	if (vrl_kind_durable(l)) {
		r->flags |= VRL_CKPT_STATE;
		r->state = state;
	}
	if (cd > mono)
		r->cooldown_rt = cd - mono + rt;
	return (r->flags & VRL_CKPT_STATE) || r->cooldown_rt;
}

int vrl_ckpt_collect(const struct vrl_seg_view *v, vrl_ckpt_limit_fn *limit_of, void *arg,
		     struct vrl_ckpt_image *img, char *why, size_t whylen)
{
	struct vrl_seg_slot *slots = v->slots;
	uint64_t mono = vrl_now_ns(), rt = realtime_ns(), n = 0, cap = 1024;
	struct ckpt_head *head;
	struct vrl_ckpt_rec *recs;
	char *buf = malloc(sizeof(*head) + cap * sizeof(*recs));

	why[0] = '\0';
	memset(img, 0, sizeof(*img));
	if (!buf)
		goto nomem;
	for (uint64_t i = 0; i < v->nslots; i++) {
		if (n == cap) {
			char *more = realloc(buf, sizeof(*head) + 2 * cap * sizeof(*recs));

			if (!more)
				goto nomem;
			buf = more;
			cap *= 2;
		}
		recs = (struct vrl_ckpt_rec *)(buf + sizeof(*head));
		if (snap_slot(&slots[i], limit_of, arg, mono, rt, &recs[n]))
			n++;
	}
	head = (struct ckpt_head *)buf;
	memset(head, 0, sizeof(*head));
	memcpy(head->magic, CKPT_MAGIC, sizeof(head->magic));
	head->version = VRL_CKPT_VERSION;
	head->rec_size = sizeof(struct vrl_ckpt_rec);
	head->written_rt = rt;
	head->n = n;
	head->checksum = XXH3_64bits(&head->written_rt,
				     sizeof(*head) - 24 + n * sizeof(struct vrl_ckpt_rec));
	img->buf = buf;
	img->len = sizeof(*head) + n * sizeof(struct vrl_ckpt_rec);
	img->n = n;
	return 0;
nomem:
	free(buf);
	snprintf(why, whylen, "out of memory");
	return -ENOMEM;
}

int vrl_ckpt_write(const char *path, const struct vrl_ckpt_image *img, char *why,
		   size_t whylen)
{
	return vrl_afile_write(path, img->buf, img->len, VRL_CKPT_MODE, why, whylen);
}

void vrl_ckpt_image_free(struct vrl_ckpt_image *img)
{
	free(img->buf);
	memset(img, 0, sizeof(*img));
}

int vrl_ckpt_save(struct vrl_seg *s, const char *path, uint64_t *nkeys, char *why,
		  size_t whylen)
{
	/* the caller publishes configs itself, so the one in force stays put */
	struct vrl_seg_config *cfg = s->cfg;
	struct vrl_ckpt_image img;
	int rc;

	/* keys inserted under the generation before are named by the active one */
	vrl_seg_renote(s, 0, s->view.nslots);
	rc = vrl_ckpt_collect(&s->view, active_limit, cfg, &img, why, whylen);
	if (rc == 0)
		rc = vrl_ckpt_write(path, &img, why, whylen);
	if (rc == 0 && nkeys)
		*nkeys = img.n;
	vrl_ckpt_image_free(&img);
	return rc;
}

int vrl_ckpt_load(const char *path, struct vrl_ckpt *out, char *why, size_t whylen)
{
	return vrl_ckpt_load_keys(path, CKPT_MAX_RECS, out, why, whylen);
}

int vrl_ckpt_load_keys(const char *path, uint64_t max_keys, struct vrl_ckpt *out, char *why,
		       size_t whylen)
{
	uint64_t most = max_keys < CKPT_MAX_RECS ? max_keys : CKPT_MAX_RECS;
	struct ckpt_head head;
	char *buf = NULL;
	size_t len = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	why[0] = '\0';
	/* vrld made it and never makes a link of it: one found there is
	 * refused, not followed; a FIFO or device is refused unopened */
	rc = vrl_afile_read(path, sizeof(head) + most * sizeof(struct vrl_ckpt_rec), false, &buf,
			    &len, why, whylen);
	if (rc == -EFBIG) {
		snprintf(why, whylen, "%s is larger than a checkpoint of %llu keys, the most "
			 "this segment holds (not a checkpoint of this config?)", path,
			 (unsigned long long)most);
		return -EBADMSG;
	}
	if (rc)
		return rc;
	rc = -EBADMSG;
	if (len < sizeof(head) || memcmp(buf, CKPT_MAGIC, 8) != 0) {
		snprintf(why, whylen, "%s is not a vrl checkpoint (bad magic or too short)", path);
		goto out;
	}
	memcpy(&head, buf, sizeof(head));
	if (head.version != VRL_CKPT_VERSION || head.rec_size != sizeof(struct vrl_ckpt_rec)) {
		snprintf(why, whylen, "%s is a checkpoint of format %u; this vrld reads format %u",
			 path, head.version, VRL_CKPT_VERSION);
		rc = -EPROTONOSUPPORT;
		goto out;
	}
	if (head.n > CKPT_MAX_RECS || len != sizeof(head) + head.n * sizeof(struct vrl_ckpt_rec)) {
		snprintf(why, whylen, "%s has %zu bytes, its header says %llu keys (truncated?)",
			 path, len, (unsigned long long)head.n);
		goto out;
	}
	if (XXH3_64bits(buf + 24, len - 24) != head.checksum) {
		snprintf(why, whylen, "%s: checksum mismatch (damaged)", path);
		goto out;
	}
	out->recs = malloc(head.n ? head.n * sizeof(struct vrl_ckpt_rec) : 1);
	if (!out->recs) {
		snprintf(why, whylen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	memcpy(out->recs, buf + sizeof(head), head.n * sizeof(struct vrl_ckpt_rec));
	out->n = head.n;
	out->written_rt = head.written_rt;
	rc = 0;
out:
	free(buf);
	return rc;
}

static int limit_by_name(const struct vrl_seg_config *cfg, const char *name)
{
	for (uint32_t i = 0; i < cfg->nlimits; i++)
		if (strncmp(cfg->limits[i].name, name, VRL_NAME_MAX) == 0)
			return (int)i;
	return -1;
}

static void restore_one(const struct vrl_seg_view *v, uint64_t idx, const struct vrl_ckpt_rec *r,
			uint64_t cd)
{
	struct vrl_seg_slot *s = &v->slots[idx];

	if (r->flags & VRL_CKPT_STATE) {
		uint64_t cur = atomic_load_explicit(&s->state, memory_order_relaxed);

		/* relaxed: the CAS only keeps a worker's concurrent units; the
		 * slot itself was published by vrl_kt_get's release */
		while (cur != VRL_STATE_EVICTED &&
		       !atomic_compare_exchange_weak_explicit(
			       &s->state, &cur, vrl_kind_merge(r->kind, cur, r->state),
			       memory_order_relaxed, memory_order_relaxed))
			;
	}
	if (cd) {
		uint64_t cur = atomic_load_explicit(&s->cooldown, memory_order_relaxed);

		/* relaxed: vrld itself is the only evictor and does not sweep
		 * until the restore is done */
		while (cur < cd && !atomic_compare_exchange_weak_explicit(&s->cooldown, &cur, cd,
									  memory_order_relaxed,
									  memory_order_relaxed))
			;
	}
}

void vrl_ckpt_apply(struct vrl_seg *s, const struct vrl_ckpt *ck,
		    struct vrl_ckpt_stats *st)
{
	const struct vrl_seg_config *cfg = s->cfg;
	uint64_t mono = vrl_now_ns(), rt = realtime_ns();

	memset(st, 0, sizeof(*st));
	for (uint64_t i = 0; i < ck->n; i++) {
		const struct vrl_ckpt_rec *r = &ck->recs[i];
		struct vrl_key k = { .home = r->home, .fp = r->fp & VRL_TAG_FP_MASK };
		char label[VRL_LABEL_MAX];
		int li = limit_by_name(cfg, r->limit);
		uint64_t cd = 0, idx;

		if (li < 0 || cfg->limits[li].kind != r->kind || k.fp == 0) {
			st->skipped++;
			continue;
		}
		if (r->cooldown_rt > rt)
			cd = r->cooldown_rt - rt + mono;
		if (!(r->flags & VRL_CKPT_STATE) && !cd) {
			st->expired++;
			continue;
		}
		memcpy(label, r->label, sizeof(label));
		label[sizeof(label) - 1] = '\0';
		if (vrl_kt_get(&s->view, &k, vrl_slot_note((uint32_t)li, &cfg->limits[li],
							    cfg->generation),
			       label, &idx) != 0) {
			st->failed++;
			continue;
		}
		restore_one(&s->view, idx, r, cd);
		st->restored++;
	}
}

void vrl_ckpt_free(struct vrl_ckpt *ck)
{
	free(ck->recs);
	ck->recs = NULL;
	ck->n = 0;
}
