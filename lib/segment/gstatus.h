/*
 * gstatus.h - vrld's global status area: what the multi-host engine
 * (daemon/global) is doing, published in the segment for `vrlctl global`.
 *
 * The area exists only in a segment whose config has a global: section
 * (VRL_CFG_GLOBAL): it is the segment's last bytes, at header.gstatus_off
 * (segment.h). vrld alone writes it, once a tick, under a sequence word
 * (a seqlock: one writer, readers that retry); workers never read it.
 *
 * Layout: a head (engine figures), VRL_GSTATUS_ENDPOINTS endpoint rows,
 * then VRL_GSTATUS_KEYS key rows. A fixed maximum of key rows, not a row
 * per slot of the key table: global keys are few (one per provider token
 * or account, and Redis holds some 30 000 renewals a second for every
 * host together), most slots are host keys, and a table parallel to the
 * key table would cost 192 bytes a slot in every segment and tie this
 * area to the key table's layout. Past the maximum the head says how many
 * keys were left out (keys_total); the per-limit metrics count them all.
 * Pages of rows never written are never touched, so an idle area costs
 * address space, not memory.
 *
 * Ordering (labels GS.*): the writer makes seq odd, then GS.W0 (release
 * fence) orders that before the data stores, and GS.W1 (release store of
 * the next even value) orders the data before it. A reader's GS.R0
 * (acquire load of seq) pairs with GS.W1, its GS.R1 (acquire fence
 * before the re-check) with GS.W0: the same even value before and after
 * the copy means no write overlapped it.
 *
 * Trust: the segment's group can write any byte of it. A reader checks
 * the offset against the size it validated, copies the area into private
 * memory under the sequence word, and then treats every field as data:
 * counts clamped, every string cut at its size and its bytes made
 * printable by whoever shows them, enums out of range shown as such.
 * Nothing read here is used as a size, offset, index or pid unchecked.
 * The reader is vrlctl's (daemon/vrlctl/gstatus_read.c), the writer
 * vrld's (daemon/vrld/gpublish.c); libvrl never maps this area's pages.
 */
#ifndef VRL_GSTATUS_H
#define VRL_GSTATUS_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "segment.h"

#define VRL_GSTATUS_MAGIC     UINT64_C(0x31305453474c5256) /* "VRLGST01" little-endian */
#define VRL_GSTATUS_FORMAT    1u      /* bumped on any incompatible change of this area */
#define VRL_GSTATUS_ENDPOINTS 16u     /* endpoint rows: global.h's VRL_GLOBAL_ENDPOINTS_MAX */
#define VRL_GSTATUS_KEYS      2048u   /* key rows: the global keys shown */
#define VRL_GSTATUS_NAME      128u    /* bytes of an endpoint's name, NUL included */
#define VRL_GSTATUS_EPOCH     64u     /* bytes of a Redis epoch id, NUL included */
#define VRL_GSTATUS_ERROR     160u    /* bytes of an endpoint's last error, NUL included */
#define VRL_GSTATUS_HOST      72u     /* bytes of the host id, NUL included */
#define VRL_GSTATUS_NO_EXPIRY UINT64_MAX /* key row expires: units counted, no expiry */

/* One Redis endpoint as the engine last saw it (global.h's endpoint status). */
struct vrl_gstatus_ep {
	char name[VRL_GSTATUS_NAME];      /* "unix:/run/redis.sock", "10.0.0.5:6379" */
	char epoch[VRL_GSTATUS_EPOCH];    /* Redis's epoch id, "" before an answer */
	char error[VRL_GSTATUS_ERROR];    /* the last failure, "" none */
	uint32_t up;                      /* 1: connected, library in place, answered */
	uint32_t lost;                    /* 1: the epoch replaced one that lost its data */
	uint64_t down_since;              /* monotonic ns of the first failure; 0 while up */
	uint64_t rtt_last_ns, rtt_ewma_ns, rtt_max_ns;
	uint64_t calls;                   /* lease calls sent */
	uint64_t failures;                /* calls unanswered, connects failed */
	uint64_t keys;                    /* keys of the last round on it */
	uint64_t fence_left_ns;           /* as of the last answer */
	uint64_t reserved[3];
};

/* One global key of this host. */
struct vrl_gstatus_key {
	uint8_t id[16];                   /* the key's id (global.h: vrl_global_key_id) */
	char limit[VRL_NAME_MAX];         /* its limit's name */
	char label[VRL_LABEL_MAX];        /* its key text, secrets hashed (label.h) */
	uint32_t kind;                    /* enum vrl_global_kind (global.h) */
	uint32_t status;                  /* enum vrl_global_outcome (global.h) */
	uint32_t endpoint;                /* index of its endpoint row */
	uint32_t reserved0;
	uint64_t rate;                    /* share: permits/s x 1e6 (rate) */
	uint64_t burst;                   /* share: permits (rate) */
	uint64_t count;                   /* share: count (window, quota, slots) */
	uint64_t expires;                 /* monotonic ns; VRL_GSTATUS_NO_EXPIRY: none */
	uint64_t renewals;                /* answers that brought a share */
	uint64_t reserved[4];
};

struct vrl_gstatus_area {
	alignas(VRL_CACHELINE) _Atomic uint64_t seq; /* odd while vrld writes */
	uint64_t magic;                   /* VRL_GSTATUS_MAGIC once written */
	uint32_t format;                  /* VRL_GSTATUS_FORMAT */
	uint32_t on_partition;            /* 0: deny, 1: static (global.on_partition) */
	uint64_t published_ns;            /* monotonic ns of this publish */
	uint64_t publishes;               /* publishes so far */
	uint64_t lease_ns;                /* the lease term */
	char host[VRL_GSTATUS_HOST];      /* this host's id */
	uint64_t rounds;                  /* lease rounds finished */
	uint64_t keys;                    /* entries of the engine's last round */
	uint64_t partitioned;             /* keys on the on_partition share */
	uint64_t keys_total;              /* global keys of the host now */
	uint32_t nendpoints;              /* ep[] rows used */
	uint32_t nkeys;                   /* key[] rows used (<= keys_total) */
	uint64_t reserved[12];
	struct vrl_gstatus_ep ep[VRL_GSTATUS_ENDPOINTS];
	struct vrl_gstatus_key key[VRL_GSTATUS_KEYS];
};

_Static_assert(sizeof(struct vrl_gstatus_ep) % 64 == 0, "endpoint rows pad to lines");
_Static_assert(sizeof(struct vrl_gstatus_key) == 192, "key rows are three lines");
_Static_assert(offsetof(struct vrl_gstatus_area, ep) % VRL_CACHELINE == 0, "rows on lines");
_Static_assert(sizeof(struct vrl_gstatus_area) % VRL_CACHELINE == 0, "the area pads to lines");

/* Bytes the area takes in a segment (page aligned). */
#define VRL_GSTATUS_BYTES ((sizeof(struct vrl_gstatus_area) + 4095u) / 4096u * 4096u)

/*
 * The area of the segment of view @v, as the header names it, checked:
 * page aligned, past the fixed areas and within the validated size.
 * Returns it, or NULL (*why: "none", the segment has no area; or
 * "damaged", its offset is out of bounds). Any process; no read of the
 * area itself.
 */
const struct vrl_gstatus_area *vrl_gstatus_find(const struct vrl_seg_view *v, const char **why);

/*
 * Copy area @a into @out (private memory) under its sequence word, then
 * make the copy safe to show: magic and format checked, nendpoints and
 * nkeys clamped, every string cut at its size. Returns 0, VRL_EBUSY when
 * vrld kept writing (or a writer left seq odd), or VRL_ECORRUPT for
 * another magic or format (-EAGAIN: never published yet, magic still 0).
 * Any process; read-only mappings fine.
 */
int vrl_gstatus_read(const struct vrl_gstatus_area *a, struct vrl_gstatus_area *out);

#endif /* VRL_GSTATUS_H */
