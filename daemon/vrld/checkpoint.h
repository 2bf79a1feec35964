/*
 * checkpoint.h - durable key state on disk, so that it survives a reboot.
 *
 * The segment survives vrld restarts but not a host reboot. A checkpoint is
 * a file with the durable part of the key table: the state of every key of
 * a quota limit or of a persistent slots limit, and every cooldown still in
 * force. vrld writes one every daemon.checkpoint_interval and when it stops;
 * a vrld that creates a fresh segment restores the last one before READY=1.
 *
 * Loss bound: what was granted after the last checkpoint written before a
 * power cut is lost, at most checkpoint_interval x the limit's rate.
 */
#ifndef VRL_CHECKPOINT_H
#define VRL_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "upkeep.h"
#include "segment.h"

#define VRL_CKPT_VERSION   1u
#define VRL_CKPT_MODE      0600u   /* the file's mode: vrld alone reads it */

/* vrl_ckpt_rec.flags */
#define VRL_CKPT_STATE     0x1u    /* the state word is durable: restore it */

/* One key as stored (host byte order: a checkpoint is host-local). */
struct vrl_ckpt_rec {
	char limit[VRL_NAME_MAX];   /* limit name, matched against the new config */
	uint64_t home;              /* the key: struct vrl_key */
	uint64_t fp;
	uint64_t state;             /* state word when VRL_CKPT_STATE */
	uint64_t cooldown_rt;       /* cooldown end in CLOCK_REALTIME ns; 0: none */
	uint32_t kind;              /* the limit's kind when written */
	uint32_t flags;             /* VRL_CKPT_* */
	char label[VRL_LABEL_MAX];
};

/* A checkpoint read into memory. */
struct vrl_ckpt {
	uint64_t written_rt;        /* CLOCK_REALTIME ns it was written */
	uint64_t n;
	struct vrl_ckpt_rec *recs;
};

/* What a restore did. */
struct vrl_ckpt_stats {
	uint64_t restored;          /* keys put back */
	uint64_t skipped;           /* their limit is gone or changed kind */
	uint64_t expired;           /* only a cooldown, and it ended meanwhile */
	uint64_t failed;            /* no slot for them (table full or busy) */
};

/*
 * Write the durable keys of segment @s to @path atomically, mode
 * VRL_CKPT_MODE, with vrl_afile_write(): a directory others can write is
 * refused, and no link is followed. Keys are named by vrld's config in
 * force (@s->cfg), after notes of the generation before are renumbered
 * (vrl_seg_renote). Call from the thread that publishes configs (vrld's
 * main thread), so the config in force does not change underneath.
 * Returns 0 and the key count in @nkeys, or -errno with a message in @why.
 */
int vrl_ckpt_save(struct vrl_seg *s, const char *path, uint64_t *nkeys, char *why,
		  size_t whylen);

/*
 * The limit a slot's note names (its name, kind and flags go into the
 * record), or NULL when it cannot be told: the key is then left out.
 */
typedef const struct vrl_seg_limit *vrl_ckpt_limit_fn(void *arg, uint32_t note);

/* A checkpoint collected in memory, ready to write. */
struct vrl_ckpt_image {
	char *buf;
	size_t len;
	uint64_t n;                 /* keys in it */
};

/*
 * The two halves of vrl_ckpt_save(), for a thread other than the one that
 * publishes configs: collect reads the segment only (relaxed loads of live
 * slots) and names each key through @limit_of, which must stay valid for
 * the whole call; write does the file work. Both return 0 or -errno with
 * @why. Free @img with vrl_ckpt_image_free().
 */
int vrl_ckpt_collect(const struct vrl_seg_view *v, vrl_ckpt_limit_fn *limit_of, void *arg,
		     struct vrl_ckpt_image *img, char *why, size_t whylen);
int vrl_ckpt_write(const char *path, const struct vrl_ckpt_image *img, char *why,
		   size_t whylen);
void vrl_ckpt_image_free(struct vrl_ckpt_image *img);

/*
 * Read and verify the checkpoint @path. Returns 0, or:
 *   -ENOENT           no checkpoint there (a first start)
 *   -EBADMSG          corrupt: bad magic, checksum or size (truncated)
 *   -EPROTONOSUPPORT  a checkpoint of another format version
 *   -EINVAL           not a regular file (a FIFO or a device: not opened)
 *   -ELOOP            a symbolic link (not followed: vrld makes none)
 *   -errno            it could not be read
 * with a message in @why naming the file. Free @out with vrl_ckpt_free().
 */
int vrl_ckpt_load(const char *path, struct vrl_ckpt *out, char *why, size_t whylen);

/* vrl_ckpt_load() of a checkpoint of at most @max_keys keys (a segment's
 * slots): a larger file is refused as corrupt (-EBADMSG) before it is read. */
int vrl_ckpt_load_keys(const char *path, uint64_t max_keys, struct vrl_ckpt *out, char *why,
		       size_t whylen);

/*
 * Put the keys of @ck into segment @s, matching limits by name in vrld's
 * config in force (@s->cfg). A state word merges with whatever a worker did to the key since
 * the segment was made (quota units of the same period and held slots add
 * up; a cooldown keeps the later end), so a worker that attached early loses
 * nothing. Cooldowns are converted back from wall-clock to monotonic time.
 */
void vrl_ckpt_apply(struct vrl_seg *s, const struct vrl_ckpt *ck,
		    struct vrl_ckpt_stats *st);

void vrl_ckpt_free(struct vrl_ckpt *ck);

#endif /* VRL_CHECKPOINT_H */
