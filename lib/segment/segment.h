/*
 * segment.h - the layout of the vrl shared-memory segment.
 *
 * This header is the contract between vrld (which creates and maintains the
 * segment), libvrl (which every worker maps) and vrlctl. It is internal: user
 * code includes <vrl.h> only.
 *
 * Rules of the layout:
 *   - Offsets, never pointers: every process maps the segment at its own
 *     address, so every reference inside it is a byte offset from its start.
 *   - Versioned: the header opens with a magic and a format word. A client
 *     refuses a segment whose magic, format or size it does not understand.
 *   - Fixed size: everything is sized from the config when the segment is
 *     created. Nothing grows; a full key table is an error and a counter.
 *   - Hot words on their own cache lines: each key slot is one 64-byte line.
 *
 *   +--------------------------+ 0
 *   | struct vrl_seg_header    |  magic, format, sizes, offsets, counters
 *   +--------------------------+ cfg_off[0]
 *   | struct vrl_seg_config A  |  compiled config (one of two, see below)
 *   +--------------------------+ cfg_off[1]
 *   | struct vrl_seg_config B  |
 *   +--------------------------+ holder_off
 *   | struct vrl_seg_holder[]  |  one per attached handle: pid, counters
 *   +--------------------------+ slot_off
 *   | struct vrl_seg_slot[]    |  the key table, open addressing
 *   +--------------------------+ event_off
 *   | struct vrl_seg_event[]   |  alert events, a ring (events.c)
 *   +--------------------------+ mark_off
 *   | _Atomic uint32_t[nslots] |  alert thresholds fired, per key and period
 *   +--------------------------+ share_off (page aligned; only with a global limit)
 *   | struct vrl_seg_share[]   |  one per slot: a global key's share word (share.h)
 *   +--------------------------+ limits[i].area_off (page aligned)
 *   | ring area of limit i     |  window limits only: see window.h
 *   +--------------------------+ gstatus_off (page aligned)
 *   | struct vrl_gstatus_area  |  global: only; vrld's status of the
 *   +--------------------------+ size        global engine (gstatus.h)
 *
 * The config is double-buffered: vrld writes the inactive area under its
 * sequence word, then publishes it by switching header.active_cfg and
 * bumping header.config_gen. Clients copy the active area into private
 * memory, validating the sequence word, so a reload never tears a read.
 */
#ifndef VRL_SEGMENT_H
#define VRL_SEGMENT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VRL_SEG_MAGIC      UINT64_C(0x31304745534c5256) /* "VRLSEG01" little-endian */
#define VRL_SEG_FORMAT     7u      /* bumped on any incompatible layout change; 4: a rate
                                      key's state word carries its rate epoch (gcra.h);
                                      5: the header counts unmatched requests by api;
                                      6: per-limit counters of gone handles (folded_*);
                                      7: the share area of global keys (share_off) */
#define VRL_CACHELINE      64u     /* bytes; slots and holders are aligned to it */

#define VRL_MAX_LIMITS     64u     /* limits in one config */
#define VRL_MAX_PER        4u      /* request fields that key one limit */
#define VRL_MAX_MATCH      4u      /* match conditions of one limit */
#define VRL_NAME_MAX       64u     /* bytes of a limit name, NUL included */
#define VRL_ATTR_MAX       32u     /* bytes of an attribute name, NUL included */
#define VRL_PATTERN_MAX    96u     /* bytes of a match pattern, NUL included */
#define VRL_LABEL_MAX      24u     /* bytes of key text kept in a slot for display */
#define VRL_MAX_HOLDERS    512u    /* attached handles counted at once */
#define VRL_MAX_PROBE      1024u   /* longest probe sequence in the key table */
#define VRL_SHM_NAME_MAX   64u     /* bytes of a segment name, NUL included */
#define VRL_EVENTS         1024u   /* alert events the ring keeps: a power of two */
#define VRL_EVENT_WORDS    17u     /* 64-bit words of one event's payload */
#define VRL_UNMATCHED_ROWS 32u     /* rows of the unmatched table: apis counted apart, the
                                      last row for the rest (unmatched.h) */
#define VRL_UNMATCHED_NAME 32u     /* bytes of an api name in that table, NUL included */

/* Request fields a limit can match on or be keyed by. */
enum vrl_field {
	VRL_FIELD_API = 0,
	VRL_FIELD_ENDPOINT,
	VRL_FIELD_TOKEN,
	VRL_FIELD_ORG,
	VRL_FIELD_VEHICLE,
	VRL_FIELD_USER,
	VRL_FIELD_ATTR,            /* a named attribute: see vrl_seg_fieldref.attr */
	VRL_FIELD__COUNT
};

/*
 * Limit kinds, the same values as vrl.h's enum vrl_limit_kind. Only values
 * below VRL_KIND__COUNT are valid in a segment.
 */
enum vrl_kind {
	VRL_KIND_RATE = 1,         /* GCRA: state word is the theoretical arrival time */
	VRL_KIND_GATE,             /* cooldown only: never denies unless closed */
	VRL_KIND_WINDOW,           /* exact rolling window: see window.h */
	VRL_KIND_QUOTA,            /* units per calendar period: see quota.h */
	VRL_KIND_SLOTS,            /* at most N held at once: state word is the count held */
	VRL_KIND__COUNT
};

/* Calendar periods of a quota (vrl_seg_limit.calendar), in UTC. */
enum vrl_calendar {
	VRL_CAL_MONTH = 1,         /* from anchor day (1..31, clamped to the month) */
	VRL_CAL_WEEK,              /* from anchor weekday (1 Monday .. 7 Sunday) */
	VRL_CAL_DAY,               /* from 00:00 UTC */
	VRL_CAL_ONCE,              /* never resets: a trial allowance */
};

#define VRL_MAX_ALERTS     4u      /* alert thresholds of one limit */

/* vrl_seg_limit.flags */
#define VRL_LIMIT_SHADOW   0x1u    /* report what would be denied, deny nothing */
#define VRL_LIMIT_SOFT     0x2u    /* quota: grant past the limit, count the overage */
#define VRL_LIMIT_PERSIST  0x4u    /* slots: held units outlive their process */
#define VRL_LIMIT_ADAPTIVE 0x8u    /* rate: paced at an effective rate cut by 429s
                                      (adapt.h); the profile is in adapt[] */
#define VRL_LIMIT_GLOBAL   0x10u   /* scope: global: each key also takes from its slot's
                                      share word (share.h), which vrld fills from the
                                      lease the hosts hold through Redis */

/* vrl_seg_config.flags */
#define VRL_CFG_FAIL_OPEN  0x1u    /* a full key table grants instead of denying */
/* unmatched: a request that matches no limit is denied (DENY), or granted
 * and counted (WARN), or granted alone (neither: allow); DENY counts too */
#define VRL_CFG_UNMATCHED_DENY 0x2u
#define VRL_CFG_UNMATCHED_WARN 0x4u
/* the config has a global: section: the segment ends with vrld's global
 * status area (gstatus.h); set from the daemon's config, fixed at start */
#define VRL_CFG_GLOBAL     0x8u

/* vrl_seg_fieldref.flags */
#define VRL_REF_CLEAR      0x1u    /* per: key labels show the value as written, not its
                                      hash (label.h; never honoured for a token) */

struct vrl_seg_fieldref {
	uint32_t field;            /* enum vrl_field */
	uint32_t flags;            /* VRL_REF_* */
	char attr[VRL_ATTR_MAX];   /* attribute name when field == VRL_FIELD_ATTR */
};

struct vrl_seg_match {
	struct vrl_seg_fieldref ref;
	uint32_t glob;             /* pattern is an fnmatch(3) glob, not a literal */
	uint32_t reserved;
	char pattern[VRL_PATTERN_MAX];
};

/*
 * One compiled limit. Parameters are stored in the units the hot path uses,
 * next to the figures as the config wrote them (for display).
 */
struct vrl_seg_limit {
	char name[VRL_NAME_MAX];   /* stable identity: hashed into every key */
	uint32_t kind;             /* enum vrl_kind */
	uint32_t flags;            /* VRL_LIMIT_* */
	uint32_t nper;             /* entries used in per[] */
	uint32_t nmatch;           /* entries used in match[] */
	struct vrl_seg_fieldref per[VRL_MAX_PER];
	struct vrl_seg_match match[VRL_MAX_MATCH];
	/*
	 * rate:   count permits per period_ns, at most burst at once
	 * window: at most count in any interval of period_ns
	 * quota:  count units per calendar period (period_ns unused)
	 * slots:  at most count held at once
	 */
	uint64_t count;            /* as written: the 150 of 150/s */
	uint64_t period_ns;        /* as written: the /s of 150/s */
	uint64_t burst;            /* rate: bucket size in permits, >= 1 */
	uint64_t emission_ns;      /* rate: T = ceil(period_ns / count): ns per permit */
	uint64_t tolerance_ns;     /* rate: tau = burst * T: bucket size in ns */
	/* quota */
	uint32_t calendar;         /* enum vrl_calendar */
	uint32_t anchor;           /* month: day 1..31; week: weekday 1..7; else 0 */
	/*
	 * The identity hashed into keys instead of name when not empty: limits
	 * that name the same pool share one counter (CarsXE's shared quotas).
	 * Limits of one pool have the same kind, count and calendar.
	 */
	char pool[VRL_NAME_MAX];
	/*
	 * Overrides: limits with the same group (not 0) are one limit with
	 * parameters by attribute. A request takes only the first member, in
	 * limit order, whose match holds (`make: tesla` before the default).
	 */
	uint32_t group;
	/* alerts: percentages of count, ascending; nalerts used */
	uint32_t nalerts;
	uint32_t alert_pct[VRL_MAX_ALERTS];
	/* window: where its rings are (see window.h); the area costs
	 * 64 + align64(4 area_keys) + area_keys * align64(8 count) bytes */
	uint64_t area_off;         /* byte offset of the limit's ring area, 0: none */
	uint64_t area_keys;        /* rings in the area: keys this limit can hold */
	/*
	 * What a reload changed, written by vrl_seg_publish() from the config
	 * it replaces (a compiler leaves these 0). Rate: rate_epoch counts the
	 * changes of (emission_ns, burst) of the limit's key identity; a state
	 * word carries its low bits (gcra.h), and prev_* are the parameters of
	 * the epoch before (prev_burst 0: none known). Quota: the calendar and
	 * anchor in force before the last change of either, and the wall-clock
	 * time of that reload (0: never changed); see quota.h.
	 */
	uint64_t rate_epoch;
	uint64_t prev_emission_ns;
	uint64_t prev_burst;
	uint32_t prev_calendar;
	uint32_t prev_anchor;
	uint64_t calendar_changed_rt;
	/*
	 * Adaptive pacing (VRL_LIMIT_ADAPTIVE, adapt.h): beta, floor, recover
	 * and hold ticks, as struct vrl_adapt. A libvrl that knows no such
	 * flag paces at the figure, which Invariant 1 allows.
	 */
	uint32_t adapt[4];
	uint64_t reserved[1];      /* room for further kinds without a format bump */
};

struct vrl_seg_config {
	/*
	 * Sequence word: odd while vrld writes this area, even when stable.
	 * SEG.W1 (release, by vrld after writing) pairs with SEG.R0 (acquire,
	 * clients before copying), and SEG.W0 (vrld's release fence after
	 * making it odd) with SEG.R1 (clients' acquire fence before
	 * re-checking): a reader that sees the same even value before and
	 * after its copy saw no write of this area.
	 */
	alignas(VRL_CACHELINE) _Atomic uint64_t seq;
	uint64_t generation;       /* config generation stored in this area */
	uint32_t nlimits;          /* entries used in limits[] */
	uint32_t flags;            /* VRL_CFG_* */
	uint64_t loaded_realtime_ns; /* wall-clock time the config was compiled */
	char source[256];          /* path of the config file, or "built-in" */
	struct vrl_seg_limit limits[VRL_MAX_LIMITS];
};

#define VRL_HOLD_MAX       32u     /* process slots one handle records */

/*
 * Units of a process-bound slots key that a handle holds: vrld gives them
 * back when the handle's process dies. Free when units is 0. Written by the
 * owning handle alone, after its grant (so a crash in between leaks the
 * units, never gives them back twice) and before its release (the same).
 */
struct vrl_seg_hold {
	_Atomic uint64_t tag;         /* the key's live tag, checked before giving back */
	_Atomic uint64_t slot;        /* its slot index */
	_Atomic uint64_t units;       /* units held; 0: entry free */
};

/*
 * A holder record's pid word: the pid the owner has in its own PID
 * namespace (pids stay below 2^22), and VRL_HOLDER_LOCKED when the owner
 * holds the record's lock (handle.c, HOLD.L): vrld then judges the owner
 * alive by the lock, not by the pid, which another namespace may give to
 * no process or to another one.
 */
#define VRL_HOLDER_PID_MASK  ((INT32_C(1) << 22) - 1)
#define VRL_HOLDER_LOCKED    (INT32_C(1) << 30)
/* vrld is giving back a dead owner's record (sweep.c): nobody may take it */
#define VRL_HOLDER_REAPING   INT32_MIN
/* The byte of the segment file whose OFD write lock (fcntl F_OFD_SETLK)
 * the owner of holder record i holds: VRL_HOLDER_LOCK_BASE + i, past any
 * segment's end (a lock needs no byte to exist). */
#define VRL_HOLDER_LOCK_BASE (INT64_C(1) << 48)

/*
 * A holder: one attached client handle. The counters are written only by the
 * handle that owns the slot (single writer, relaxed load+store, no lock
 * prefix), and read by vrld and vrlctl. vrld folds the counters of a dead
 * holder into the header's retired totals and frees the slot.
 */
struct vrl_seg_holder {
	alignas(VRL_CACHELINE) _Atomic int32_t pid; /* 0: free; else the owner's pid
	                                               (VRL_HOLDER_PID_MASK) and flags */
	uint32_t reserved;
	_Atomic uint64_t config_gen;  /* generation the per-limit counters belong to */
	_Atomic uint64_t granted;     /* all acquires granted by this handle */
	_Atomic uint64_t denied;      /* all acquires denied by this handle */
	_Atomic uint64_t limit_granted[VRL_MAX_LIMITS]; /* by limit index */
	_Atomic uint64_t limit_denied[VRL_MAX_LIMITS];
	_Atomic uint64_t limit_shadow[VRL_MAX_LIMITS];   /* grants a shadow limit would
	                                                    have denied */
	_Atomic uint64_t limit_cooldowns[VRL_MAX_LIMITS]; /* cooldowns this handle set */
	_Atomic uint64_t limit_wait_ns[VRL_MAX_LIMITS];   /* ns waiting acquires slept,
	                                                    by the limit they waited on */
	struct vrl_seg_hold holds[VRL_HOLD_MAX]; /* process slots held */
};

/*
 * Key slot tags. The tag word says what a slot holds:
 *
 *   EMPTY    0        never used; ends every probe sequence
 *   FREE     1        evicted and reclaimed by vrld; may be claimed
 *   DEAD     2        evicted or abandoned, not yet reclaimed; not claimable
 *   live     1<<63 | fingerprint             a key, usable
 *   pending  1<<63 | 1<<62 | fingerprint     a key being inserted
 *
 * See keytable.c for the protocol and its proof.
 */
#define VRL_TAG_EMPTY      UINT64_C(0)
#define VRL_TAG_FREE       UINT64_C(1)
#define VRL_TAG_DEAD       UINT64_C(2)
#define VRL_TAG_LIVE       (UINT64_C(1) << 63)
#define VRL_TAG_PENDING    (UINT64_C(1) << 62)
#define VRL_TAG_FP_MASK    (VRL_TAG_PENDING - 1)

/* State word of a slot that vrld has evicted. No live state takes this value. */
#define VRL_STATE_EVICTED  UINT64_MAX

/* One key: exactly one cache line. */
struct vrl_seg_slot {
	alignas(VRL_CACHELINE) _Atomic uint64_t tag;
	_Atomic uint64_t state;     /* per kind; rate: epoch tag | TAT (gcra.h), 0 = new */
	_Atomic uint64_t cooldown;  /* closed until this monotonic ns; 0 = open */
	_Atomic uint32_t limit;     /* note of the inserting limit: vrl_slot_note() */
	_Atomic uint32_t aux;       /* per kind; window: ring index + 1, 0 = none */
	char label[VRL_LABEL_MAX];  /* key text, truncated (display only) */
	_Atomic uint64_t home;      /* the key's home hash: with tag, the whole key,
	                               so a checkpoint can re-insert it */
};

/*
 * The share of a global key (share.h): one per slot, in an array parallel
 * to the key table, present only when the config has a global limit. The
 * word is vrld's to fill and the workers' to take from; used and unmet
 * count, per key, the permits granted and those denied for want of share
 * (relaxed fetch_add by workers, read by vrld for its lease reports; they
 * wrap). Two per cache line: the take's CAS and the count share a line.
 * Trust: a group member can write them, as it can any key's state word:
 * credit it adds is no more than it could take by skipping vrl_acquire.
 */
struct vrl_seg_share {
	_Atomic uint64_t word;      /* share.h: until | credit; 0: no lease */
	_Atomic uint64_t used;      /* permits granted on the key's share */
	_Atomic uint64_t unmet;     /* permits denied for want of share */
	_Atomic uint64_t cap;       /* quota, slots: the allocation (blocks.h B2); rate:
	                               when vrld fills the word next, a hint for a
	                               denial's retry (acquire.c AQ.S6) */
};

/*
 * One alert event of the ring (events.c has the protocol). Every word is
 * atomic so that a reader racing a writer is a detected retry, not a data
 * race. seq encodes the ticket t the entry holds:
 *   0                  never written
 *   (t + 1) << 1 | 1   being written by ticket t's producer
 *   (t + 1) << 1       published
 */
struct vrl_seg_event {
	alignas(VRL_CACHELINE) _Atomic uint64_t seq;
	_Atomic uint64_t check;     /* hash of t and the payload: a torn entry fails it */
	_Atomic uint64_t w[VRL_EVENT_WORDS]; /* struct vrl_alert_payload, word by word */
};

/*
 * The note a slot keeps of the limit that inserted its key, in one word:
 *
 *   bits  0..7   the limit's index in the config of generation `gen`
 *   bits  8..12  quota anchor      bits 13..15  quota calendar
 *   bits 16..18  kind (0: not noted, treated as a rate)
 *   bits 19..31  gen: the low 13 bits of that config's generation
 *
 * Kind, calendar and anchor are what vrld's sweep needs to judge a key idle
 * without the config; limits that share a key (a pool) have the same three.
 * The index names a limit only in the generation the note was written
 * under: a reload may renumber limits. So a reader trusts the index only
 * when the note's gen is its config's (vrl_note_limit()), and vrld, after
 * each reload, rewrites the notes of the generation before to the new
 * numbering (vrl_seg_renote()), so that every live key is attributed again
 * within one sweep.
 */
#define VRL_NOTE_GEN_BITS     13u
#define VRL_NOTE_GEN_MASK     ((1u << VRL_NOTE_GEN_BITS) - 1u)
#define VRL_NOTE_INDEX(n)     ((n) & 0xffu)
#define VRL_NOTE_ANCHOR(n)    (((n) >> 8) & 0x1fu)
#define VRL_NOTE_CALENDAR(n)  (((n) >> 13) & 0x7u)
#define VRL_NOTE_KIND(n)      (((n) >> 16) & 0x7u)
#define VRL_NOTE_GEN(n)       ((n) >> 19)

static inline uint32_t vrl_slot_note(uint32_t index, const struct vrl_seg_limit *l,
				     uint64_t generation)
{
	uint32_t n = (index & 0xffu) | (l->kind & 0x7u) << 16 |
		     ((uint32_t)generation & VRL_NOTE_GEN_MASK) << 19;

	if (l->kind == VRL_KIND_QUOTA)
		n |= (l->anchor & 0x1fu) << 8 | (l->calendar & 0x7u) << 13;
	return n;
}

/* The index of the limit @note names in the config of @generation with
 * @nlimits limits, or -1 when the note was written under another
 * generation (not renoted yet) or names no limit of it. */
static inline int vrl_note_limit(uint32_t note, uint64_t generation, uint32_t nlimits)
{
	if (VRL_NOTE_GEN(note) != ((uint32_t)generation & VRL_NOTE_GEN_MASK) ||
	    VRL_NOTE_INDEX(note) >= nlimits)
		return -1;
	return (int)VRL_NOTE_INDEX(note);
}

_Static_assert(VRL_MAX_LIMITS <= 256, "a limit index fits a note's byte");
_Static_assert(VRL_KIND__COUNT <= 8 && VRL_CAL_ONCE < 8, "kind and calendar fit 3 bits");

/* One row of the unmatched table (unmatched.c has the protocol). */
struct vrl_seg_unmatched {
	alignas(VRL_CACHELINE) _Atomic uint64_t tag; /* 0 free; else live, pending, hash */
	_Atomic uint64_t count;     /* unmatched requests of this api */
	_Atomic uint64_t name[VRL_UNMATCHED_NAME / 8]; /* the api, NUL-padded */
};

/* A folded_* word of the header: generation bits above a count. */
#define VRL_FOLD_COUNT_BITS 48u
#define VRL_FOLD_COUNT_MAX  ((UINT64_C(1) << VRL_FOLD_COUNT_BITS) - 1) /* saturates there */
#define VRL_FOLD_GEN(g)     ((uint64_t)(g) & 0xffffu)

/* The count folded word @w holds for config @generation (0: another's). */
static inline uint64_t vrl_fold_count(uint64_t w, uint64_t generation)
{
	return w >> VRL_FOLD_COUNT_BITS == VRL_FOLD_GEN(generation) ? w & VRL_FOLD_COUNT_MAX : 0;
}

struct vrl_seg_header {
	uint64_t magic;             /* VRL_SEG_MAGIC */
	uint32_t format;            /* VRL_SEG_FORMAT */
	uint32_t header_size;       /* sizeof(struct vrl_seg_header) */
	uint64_t size;              /* total bytes of the segment */
	uint64_t created_realtime_ns;
	uint64_t cfg_off[2];        /* struct vrl_seg_config areas */
	uint64_t holder_off;        /* struct vrl_seg_holder[nholders] */
	uint64_t nholders;
	uint64_t slot_off;          /* struct vrl_seg_slot[nslots] */
	uint64_t nslots;            /* key table capacity */
	uint64_t keys_configured;   /* the keys: figure of the config */

	/*
	 * Config publication. SEG.P1 (release, vrld after writing the area and
	 * active_cfg) pairs with SEG.C1 (acquire, client hot path): a client that
	 * sees a new generation sees the area and active_cfg written before it.
	 */
	alignas(VRL_CACHELINE) _Atomic uint64_t config_gen;
	_Atomic uint32_t active_cfg;  /* 0 or 1: index into cfg_off */
	_Atomic int32_t daemon_pid;   /* vrld serving the segment; 0 when none */
	_Atomic uint64_t daemon_heartbeat_ns; /* monotonic ns of vrld's last tick */
	/*
	 * Rate conversions (gcra.h): an acquire adds 2 between reading its
	 * clock and the CAS of a word it converts; vrld's pass makes it odd
	 * before its first conversion and even after its last. An acquire
	 * that reads its clock before its loads checks that it did not move.
	 * Trust: a group member that writes it costs others retries and
	 * nothing else. Kept moving or odd, it makes acquires look again
	 * with their keys loaded before the clock (two loads more), and a
	 * commit whose word moved looks again; no acquire waits on it, and
	 * nothing reads it as a size, index or time. Set back to hide a
	 * conversion, it could let one grant use a clock read from before
	 * it: no more than that member could take or give by writing the key's
	 * word itself. vrld reads only its parity, at adoption.
	 */
	_Atomic uint64_t rate_conversions;

	/*
	 * Reclaim bracket of the key table, written by vrld alone: odd while it
	 * turns DEAD slots into FREE ones. See keytable.c.
	 */
	alignas(VRL_CACHELINE) _Atomic uint64_t reclaim_seq;

	/* Rare-event counters: updated with relaxed fetch_add, off the hot path. */
	alignas(VRL_CACHELINE) _Atomic uint64_t keys_live;   /* approximate */
	_Atomic uint64_t inserts;
	_Atomic uint64_t table_full;   /* inserts refused for want of a slot */
	_Atomic uint64_t evictions;
	_Atomic uint64_t abandoned;    /* pending inserts demoted after a timeout */
	_Atomic uint64_t holders_full; /* handles attached without a counter slot */
	_Atomic uint64_t retired_granted; /* counters folded from dead holders */
	_Atomic uint64_t retired_denied;
	/*
	 * Per-limit grants and denials of handles that closed or died, folded
	 * as each goes (vrl_close, vrld's reap: vrl_holder_fold). One word per
	 * limit index: the low 16 bits of the config generation the counts
	 * belong to, above a 48-bit count (VRL_FOLD_*). A fold of a newer
	 * generation starts the word over; one of an older generation is
	 * dropped, as a holder's own counters are at a reload. Relaxed CAS:
	 * figures for views, nothing is ordered by them. Trust: a group
	 * member can write them, and only falsify what status shows.
	 */
	_Atomic uint64_t folded_granted[VRL_MAX_LIMITS];
	_Atomic uint64_t folded_denied[VRL_MAX_LIMITS];
	_Atomic uint64_t feedback_ignored; /* upstream values vrl_observe() skipped as malformed */

	/* Alert events: where the ring and the fired marks are. */
	alignas(VRL_CACHELINE) uint64_t event_off; /* struct vrl_seg_event[nevents] */
	uint64_t nevents;           /* a power of two */
	uint64_t mark_off;          /* _Atomic uint32_t[nslots], see alert.c */
	/* vrld's global status area (gstatus.h), the segment's last bytes;
	 * 0: none. In what was padding: a segment made without it reads 0,
	 * and no libvrl indexes by it (vrlctl checks it before a read) */
	uint64_t gstatus_off;

	/* Producers: the next ticket (relaxed fetch_add; the entry's seq orders). */
	alignas(VRL_CACHELINE) _Atomic uint64_t event_head;
	/* Consumer (vrld alone): the next ticket to drain, and what was lost. */
	alignas(VRL_CACHELINE) _Atomic uint64_t event_tail;
	_Atomic uint64_t events_lost;  /* overwritten before drained, or never published */
	_Atomic uint64_t events_sent;  /* drained and handed to the log and command */
	/*
	 * Outcome of vrld's last reload, for `vrlctl reload`. Written by vrld
	 * alone under reload_seq (odd while writing): SEG.L1 (release, vrld after
	 * the block) pairs with SEG.L2 (acquire, a reader before its re-check).
	 */
	alignas(VRL_CACHELINE) _Atomic uint64_t reload_seq;
	uint64_t reload_count;      /* reloads vrld has handled (SIGHUPs, coalesced) */
	uint64_t reload_refused;    /* of which refused, the running config kept */
	uint64_t reload_realtime_ns; /* when the last one was handled */
	char reload_error[224];     /* why the last one was refused; "" if applied */

	/* Requests that matched no limit, by api (unmatched.h): any acquirer. */
	struct vrl_seg_unmatched unmatched[VRL_UNMATCHED_ROWS];

	/* The share area of global keys: struct vrl_seg_share[nshares], nshares
	 * 0 (no global limit) or nslots; layout words like the others. */
	alignas(VRL_CACHELINE) uint64_t share_off;
	uint64_t nshares;
	/* vrld's last pass adding share credit: the time its credit is for
	 * (share.h F0); a take decided before it starts over */
	_Atomic uint64_t share_fill_ns;
};

_Static_assert(sizeof(struct vrl_seg_slot) == VRL_CACHELINE, "a key slot is one cache line");
_Static_assert(offsetof(struct vrl_seg_slot, state) == 8, "state beside tag");
_Static_assert(sizeof(struct vrl_seg_header) % VRL_CACHELINE == 0, "header pads to lines");
_Static_assert(offsetof(struct vrl_seg_header, config_gen) % VRL_CACHELINE == 0,
	       "config_gen on its own line");
_Static_assert(offsetof(struct vrl_seg_header, reclaim_seq) % VRL_CACHELINE == 0,
	       "reclaim_seq on its own line");
_Static_assert(offsetof(struct vrl_seg_header, event_head) % VRL_CACHELINE == 0,
	       "producers' word on its own line");
_Static_assert(offsetof(struct vrl_seg_header, gstatus_off) + 8 <=
	       offsetof(struct vrl_seg_header, event_head), "gstatus_off in the events' line");
_Static_assert(offsetof(struct vrl_seg_header, event_tail) % VRL_CACHELINE == 0,
	       "consumer's words on their own line");
_Static_assert(sizeof(struct vrl_seg_event) % VRL_CACHELINE == 0, "events pad to lines");
_Static_assert((VRL_EVENTS & (VRL_EVENTS - 1)) == 0, "the ring is a power of two");
_Static_assert(offsetof(struct vrl_seg_header, reload_seq) % VRL_CACHELINE == 0,
	       "reload_seq on its own line");
_Static_assert(sizeof(struct vrl_seg_holder) % VRL_CACHELINE == 0, "holders pad to lines");
_Static_assert(sizeof(struct vrl_seg_unmatched) == VRL_CACHELINE, "an unmatched row is a line");
_Static_assert(sizeof(struct vrl_seg_config) % VRL_CACHELINE == 0, "configs pad to lines");
_Static_assert(sizeof(_Atomic uint64_t) == 8, "atomic words are plain words");
_Static_assert(VRL_CACHELINE % sizeof(struct vrl_seg_share) == 0, "shares tile lines");

/* Where things are, for a given key capacity. */
struct vrl_seg_geometry {
	uint64_t cfg_off[2];
	uint64_t holder_off;
	uint64_t nholders;
	uint64_t slot_off;
	uint64_t nslots;
	uint64_t event_off;
	uint64_t nevents;
	uint64_t mark_off;
	uint64_t share_off;              /* struct vrl_seg_share[nshares]; 0: none */
	uint64_t nshares;                /* 0 or nslots */
	uint64_t gstatus_off;            /* global status area, 0: none (vrld's) */
	uint64_t size;
	uint64_t keys;                   /* segment.keys it is sized for */
};

/*
 * Compute the layout of a segment able to hold @keys keys. The table gets
 * keys / 0.85 slots (linear probing stays short below that load), at least
 * 64. Returns 0, or -EOVERFLOW if the size does not fit in 64 bits.
 */
int vrl_seg_geometry(uint64_t keys, struct vrl_seg_geometry *g);

/*
 * Add the share area (one struct vrl_seg_share per slot) at the end of
 * @g, page aligned: for a config with a global limit, before any window
 * ring area. Returns 0 or -EOVERFLOW.
 */
int vrl_seg_geometry_shares(struct vrl_seg_geometry *g);

/*
 * A process's own view of a segment it mapped: where each area is, taken
 * once from the layout it created (vrld) or validated (vrl_seg_validate()
 * at vrl_open, vrld's adoption), and never re-read from the header. The
 * segment's group can write the header's layout words at any time, so
 * nothing indexes by them after that: every access to an area goes through
 * a view, whose pointers and counts are private memory.
 */
struct vrl_seg_view {
	struct vrl_seg_header *hdr;      /* shared: counters and atomics only */
	uint64_t size;                   /* bytes of the segment, as validated */
	uint64_t keys;                   /* segment.keys it was sized for */
	struct vrl_seg_config *cfg[2];   /* the two config areas */
	struct vrl_seg_holder *holders;
	uint64_t nholders;
	struct vrl_seg_slot *slots;
	uint64_t nslots;
	struct vrl_seg_event *events;
	uint64_t nevents;                /* a power of two */
	_Atomic uint32_t *marks;         /* one per slot */
	struct vrl_seg_share *shares;    /* one per slot; NULL: no global limit */
	uint64_t areas_off;              /* window ring areas lie at or past this byte */
};

/* Fill @v for the segment mapped at @base with layout @g. */
void vrl_seg_view_init(struct vrl_seg_view *v, void *base, const struct vrl_seg_geometry *g);

/* The ring area of window limit @l (a private, checked copy). */
static inline void *vrl_seg_area(const struct vrl_seg_view *v, const struct vrl_seg_limit *l)
{
	return (char *)v->hdr + l->area_off;
}

/*
 * Check that the mapping at @base of @mapped bytes is a segment this
 * library understands: magic, format, header size, every offset and count
 * in bounds, and the areas in their order without overlap. The header's
 * words are read once, into @g, and the copy is what is checked: a writer
 * that changes them meanwhile cannot slip a word past the check. Returns 0
 * and the layout in @g, or VRL_EMAGIC, VRL_EFORMAT or VRL_ECORRUPT.
 */
int vrl_seg_validate(const void *base, uint64_t mapped, struct vrl_seg_geometry *g);

/* Config area @idx (0 or 1) of the view. */
static inline struct vrl_seg_config *vrl_view_cfg(const struct vrl_seg_view *v, unsigned idx)
{
	return v->cfg[idx & 1u];
}

/* The outcome of vrld's last reload, as read from the header. */
struct vrl_reload_status {
	uint64_t count;               /* reloads handled */
	uint64_t refused;             /* of which refused */
	uint64_t realtime_ns;         /* when the last one was handled */
	char error[224];              /* why it was refused; "" when applied */
};

/*
 * Read the last reload's outcome (any process, read-only mapping fine).
 * Returns 0, or VRL_EBUSY if vrld kept writing it.
 */
int vrl_seg_read_reload(const struct vrl_seg_header *h, struct vrl_reload_status *out);

/*
 * The record lock vrld holds on segment object @fd: with @take, take it
 * (0, or -1 and errno); without, the pid of the process that holds it (as
 * the kernel sees it from this pid namespace: 0 when none holds it or it
 * is not visible from here), or -1 and errno.
 */
pid_t vrl_seg_lock_pid(int fd, bool take);

/* The name of user @uid for a message about a segment's owner ("no such
 * user" when it has none), in @out of @cap bytes. */
void vrl_user_name(uid_t uid, char *out, size_t cap);

#endif /* VRL_SEGMENT_H */
