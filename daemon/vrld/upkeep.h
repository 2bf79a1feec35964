/*
 * upkeep.h - creating and maintaining a segment: vrld (and its tests).
 * Not installed; clients never call these.
 */
#ifndef VRL_ADMIN_H
#define VRL_ADMIN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "segment.h"

/* What a segment is made from: its place and size, and the limits. */
struct vrl_seg_spec {
	char name[VRL_SHM_NAME_MAX];  /* "/vrl" */
	mode_t mode;                  /* 0660 */
	gid_t gid;                    /* (gid_t)-1: leave the creator's group */
	uint64_t keys;                /* key capacity */
};

/*
 * An open segment, as vrld holds it. Everything vrld needs to know about
 * the segment's shape is here, in private memory: the layout it computed
 * (and, for an adopted segment, found in the header once), and the config
 * it published. Group members can rewrite the header and the config areas
 * at any time; vrld never reads a size, offset or count back from them.
 */
struct vrl_seg {
	struct vrl_seg_header *hdr;
	uint64_t size;
	bool adopted;                 /* it existed: counters carried over */
	bool locked;                  /* lock_fd holds the segment's flock */
	int lock_fd;
	struct vrl_seg_geometry geom; /* the layout, as vrld computed it */
	struct vrl_seg_view view;     /* where every area is, from geom */
	struct vrl_seg_config *cfg;   /* the config in force, as published (window
	                                 areas placed, generation set) */
	struct vrl_seg_config *prev;  /* the one before it, whose keys are renoted;
	                                 NULL: none */
	int prev_map[VRL_MAX_LIMITS]; /* limit i of prev is limit prev_map[i] of cfg */
	uint64_t gen;                 /* the generation vrld last published */
	struct vrl_guard *guard;      /* the mapping's SIGBUS guard (guard.h) */
};

/*
 * Create segment @spec->name holding config @cfg, or adopt the existing one
 * if its layout matches (same format and key capacity), publishing @cfg into
 * it through vrl_seg_reload(): what a reload refuses, adoption refuses
 * (-EEXIST, with the reload's reason in @why), and what a reload keeps
 * (rate fills, quota counts), adoption keeps. The magic is written last
 * (release), so a client never maps a half-made segment.
 *
 * One vrld per segment: the caller takes an exclusive flock(2) on the
 * segment's shm object and holds it until vrl_seg_close() (or its death:
 * the kernel drops the lock, so a stale segment is adopted). Workers never
 * take it. The lock is taken before adopting publishes anything. It also
 * takes a POSIX record lock on the object's first byte (vrl_seg_lock_pid):
 * the kernel tells anyone which process holds it, so vrlctl learns vrld's
 * pid from the kernel, not from the group-writable header. A POSIX lock
 * drops when its process closes any descriptor of the file: vrld must not
 * open and close the object again while it serves it.
 *
 * Errors: -EEXIST when a segment of that name exists with another layout
 * (its key capacity differs, or it is not a vrl segment of this format),
 * or holds a config that @cfg cannot follow as a reload, and @replace is
 * false; -EPERM when the shm object of that name belongs to
 * another user than the caller's (someone made it first: it is neither
 * adopted nor removed, even with @replace); -EBUSY when another process (a
 * running vrld) holds the segment's lock; -errno from shm_open, ftruncate,
 * mmap, fchown. @why says which, in words.
 */
int vrl_seg_open_or_create(const struct vrl_seg_spec *spec, const struct vrl_seg_config *cfg,
			   bool replace, struct vrl_seg *out, char *why, size_t whylen);

/*
 * vrl_seg_geometry() with room after the key table for the ring area of every
 * window limit of @cfg: sets each window limit's area_off (page aligned,
 * in limit order) and leaves area_keys as the config gave it. Returns 0,
 * -EINVAL for a window limit whose count or area_keys is out of range
 * (see window.h), or -EOVERFLOW. A config with a global limit gets the
 * share area (vrl_seg_geometry_shares) before the ring areas.
 */
int vrl_seg_geometry_cfg(uint64_t keys, struct vrl_seg_config *cfg, struct vrl_seg_geometry *g);

/* True when @cfg has a limit with scope: global (VRL_LIMIT_GLOBAL). */
bool vrl_upkeep_has_global(const struct vrl_seg_config *cfg);

/*
 * Publish @cfg as the segment's new config: written into the inactive area,
 * then switched to, and kept as @s->cfg (the one in force before becomes
 * @s->prev). Acquirers never block and never see a torn config. Each
 * limit's reload record (vrl_seg_limit.rate_epoch, prev_*,
 * calendar_changed_rt) is filled from the same keys' limit in vrld's copy
 * of the config in force (before the first publish into an adopted
 * segment: the segment's, as adoption read it), whatever @cfg holds there:
 * a rate limit whose (T, burst) changed takes the next epoch (gcra.h).
 * Keys are converted lazily by the acquires that use them;
 * vrl_seg_reload() also converts them all at once. Only one process
 * (vrld) may publish at a time. Returns 0 or -ENOMEM (nothing published).
 */
int vrl_seg_publish(struct vrl_seg *s, const struct vrl_seg_config *cfg);

/* The generation the next publish of @s will have (vrld counts them itself). */
uint64_t vrl_seg_next_gen(const struct vrl_seg *s);

/*
 * Make @l a rate limit of @count permits per @period_ns with a bucket of
 * @burst: sets kind, the figures as written and the GCRA arithmetic the hot
 * path uses. Name, match and per are the caller's. Returns 0, or -EINVAL /
 * -ERANGE as vrl_gcra_init().
 */
int vrl_limit_set_rate(struct vrl_seg_limit *l, uint64_t count, uint64_t period_ns,
		       uint64_t burst);

/*
 * Publish @cfg as a reload of the live segment @s: the ring areas of its
 * window limits are laid out as at creation, and the reload is refused
 * (-EINVAL, with the reason in @why) when that layout differs from the
 * running config's: a window limit added, removed, moved, or its limit or
 * keys changed. Such a change needs vrld restarted with a fresh segment.
 * A changed window length (W) is accepted: positions hold grant times.
 * Also refused: a kind change under the same name, and a quota calendar
 * or anchor change whose new period began before the one its keys count
 * (quota.h). After publishing, every key is brought to the new parameters
 * (vrl_seg_settle()) before it returns. Adoption (vrl_seg_open_or_create)
 * and the republish of a rebuilt segment (vrl_seg_regrow) go through it
 * too. Returns 0, -EINVAL (refused), -ENOMEM.
 */
int vrl_seg_reload(struct vrl_seg *s, const struct vrl_seg_config *cfg, char *why,
		   size_t whylen);

/* What vrl_seg_reload() checks, against vrld's own copy of the config in
 * force, without publishing: 0 when @cfg would be accepted, or -errno with
 * the reason in @why. */
int vrl_seg_reload_check(const struct vrl_seg *s, const struct vrl_seg_config *cfg,
			 char *why, size_t whylen);

/*
 * Where the limit at index @i of @from is in @to: the limit of the same
 * name and kind, else the first of the same key identity (its pool) and
 * kind, else -1 (gone, or its keys would be misread). What a reload does to
 * the limit a key was noted under.
 */
int vrl_seg_renumber(const struct vrl_seg_config *from, uint32_t i,
		     const struct vrl_seg_config *to);

/* 0 when @next keeps every window limit of @now (and adds none) at the same
 * index, name, limit, keys and area; -EINVAL with the reason otherwise. */
int vrl_seg_areas_match(const struct vrl_seg_config *now, const struct vrl_seg_config *next,
			char *why, size_t whylen);

/* Unmap, drop the lock and the private copies (the segment stays). */
void vrl_seg_close(struct vrl_seg *s);

/* Unlink a segment by name. */
int vrl_seg_unlink(const char *name);

/*
 * One maintenance pass over @count slots from @first at time @now: evict
 * keys idle for @idle_ns (a full bucket and no cooldown; a window key:
 * every grant older than its window + @idle_ns, its ring given back), then
 * reclaim the dead slots among them. Returns the number evicted.
 */
uint64_t vrl_seg_sweep(struct vrl_seg *s, uint64_t first, uint64_t count, uint64_t now,
		       uint64_t idle_ns);

/*
 * vrl_seg_sweep() with the wall-clock time @now_rt passed in (it judges
 * quota keys: one is never evicted within its period while it has units
 * used, a once quota never; a slots key never while a unit is held).
 */
uint64_t vrl_seg_sweep_at(struct vrl_seg *s, uint64_t first, uint64_t count,
			  uint64_t now, uint64_t now_rt, uint64_t idle_ns);

/*
 * vrl_seg_sweep_at() that also adds each eviction to @by_limit (NULL: not
 * counted) at the index, in the config in force (@s->cfg), of the key's
 * limit. A key whose limit cannot be told (the limit is gone since the key
 * was inserted) counts in the return value only.
 */
uint64_t vrl_seg_sweep_by(struct vrl_seg *s, uint64_t first, uint64_t count,
			  uint64_t now, uint64_t now_rt, uint64_t idle_ns,
			  uint64_t by_limit[VRL_MAX_LIMITS]);

/*
 * Rewrite the notes of live keys among slots [@first, @first + @count)
 * that were written under the generation before the one in force
 * (@s->prev) to the numbering in force (@s->cfg), by limit name (or pool).
 * vrld calls it over the whole table after a reload or an adoption, and
 * the sweep over each chunk for keys that clients inserted under the old
 * generation meanwhile. vrld's thread only. Returns how many it rewrote.
 */
uint64_t vrl_seg_renote(struct vrl_seg *s, uint64_t first, uint64_t count);

/*
 * Bring the live keys among slots [@first, @first + @count), noted under
 * the active config, to its parameters: a rate key of another epoch is
 * converted, keeping its fill (gcra.h); a quota key of the calendar before
 * a reload's change carries its count into the new one (quota.h). vrld
 * calls it over the whole table right after publishing a config, and the
 * sweep over each chunk, for keys that acquires in flight across a reload
 * wrote with the config before. vrld's thread only. Returns how many keys
 * it moved.
 */
uint64_t vrl_seg_settle(struct vrl_seg *s, uint64_t first, uint64_t count);

/*
 * Fold the counters of holders whose process is gone into the retired
 * totals, give back the process slots they held, and free their slots.
 * Returns how many were reaped.
 */
unsigned vrl_seg_reap_holders(struct vrl_seg *s);

/*
 * Put back the header's layout words (magic, format, offsets, counts) where
 * a group member changed them: vrld never reads them, but a vrl_open()
 * checks them and would refuse the segment. Returns true when it had to.
 * vrld's thread only.
 */
bool vrl_seg_restore_header(struct vrl_seg *s);

/*
 * A shrunk segment (guard.c). vrl_seg_shrunk() fstat()s the object into
 * @st: 1 when it is shorter than the segment; 2 when it has its size but a
 * shrink undone before vrld looked wiped what lay past the cut (vrld's own
 * mapping faulted, or the config area or a window ring area vrld wrote is
 * gone); 0 when neither; -errno. vrl_seg_regrow() then shuts workers out
 * (the magic cleared in the object), puts the size back, maps it again,
 * and rebuilds from vrld's own copies what a cut wipes: the header's words
 * and the window rings whose area head is gone. The caller then publishes
 * the config in force anew (a cut wipes its area too): vrld through the
 * reload path (vrld_prod_publish), so that its checkpointer knows the
 * generation the keys inserted from then on carry; a test with
 * vrl_seg_publish(@s, @s->cfg). Keys past the cut are lost; the caller may
 * restore a checkpoint, after the publish, before it calls
 * vrl_seg_reopen(@state), which lets workers in again (the magic, written
 * last) and returns false when a new fault came meanwhile (then the next
 * check finds it again). regrow returns 0 or -errno. vrld's thread only.
 */
int vrl_seg_shrunk(struct vrl_seg *s, struct stat *st);
int vrl_seg_regrow(struct vrl_seg *s, uint64_t *state);
bool vrl_seg_reopen(struct vrl_seg *s, uint64_t state);

/*
 * vrld only. Record a reload just handled: @error NULL or "" when its
 * config was published, else why it was refused.
 */
void vrl_seg_note_reload(struct vrl_seg_header *h, const char *error);

#endif /* VRL_ADMIN_H */
