/*
 * A copy of libvrl 0.1's vrl.h, kept as it was released: tests/abi/old_caller.c is
 * built against it, as a program built then was, to run with this libvrl.
 *
 * vrl.h - libvrl, the client library of vrl.
 *
 * A worker process attaches to the shared-memory segment that vrld created,
 * describes each request to an upstream API in its own words, and acquires
 * it. Every limit of the config that matches the request is taken, all or
 * nothing, with a few atomic instructions on the segment: no syscall, no
 * lock and no round trip to vrld on the hot path.
 *
 * Caveats, read these first:
 *   - A vrl_client handle is used by one thread at a time. Threads of one
 *     process each open their own handle (cheap: the segment is mapped once
 *     per handle, the config copied once). The per-handle counters that vrld
 *     reports rely on this.
 *   - A handle survives fork(): the child re-registers itself on its first
 *     call, so prefork pools (gunicorn, Celery, PHP-FPM) need do nothing.
 *   - Times are CLOCK_MONOTONIC nanoseconds (vrl_now_ns()), the clock all
 *     processes of a host share. Wall-clock time is never used for rates.
 *   - Strings in a vrl_request are read during the call only; nothing is
 *     kept unless the call says so (vrl_resolve copies what it needs).
 *   - The first vrl_open() of a process installs a SIGBUS handler, chained
 *     to the one installed before: a member of the segment's group can
 *     truncate it, and a call then fails with VRL_ECORRUPT until vrld has
 *     restored it, instead of the process dying. A SIGBUS handler that the
 *     program installs later must chain to the one it replaces. Each
 *     handle keeps one descriptor of the segment open.
 *
 * Return values: 0 on success, or a negative code. Codes in the VRL_E*
 * range are vrl's own; any other negative value is a negated errno.
 * vrl_strerror() describes both.
 */
#ifndef VRL_H
#define VRL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VRL_VERSION_MAJOR 0
#define VRL_VERSION_MINOR 1
#define VRL_VERSION_PATCH 0

#define VRL_DEFAULT_SEGMENT "/vrl"     /* segment name when none is given */
#define VRL_NEVER UINT64_MAX           /* retry_after of a request that can never pass */

/*
 * vrl's own error codes: name, value, message. Messages say what to do.
 */
#define VRL_ERRORS(XX)                                                               \
	XX(DENIED,   -30001, "denied by a limit (see the verdict for which and when to retry)") \
	XX(NOSEG,    -30002, "no vrl segment by that name: is vrld running, with the same segment name?") \
	XX(MAGIC,    -30003, "not a vrl segment: the name belongs to something else")          \
	XX(FORMAT,   -30004, "segment format not understood by this libvrl: run vrld and libvrl from the same release") \
	XX(CORRUPT,  -30005, "segment is damaged: an offset or count is out of bounds; restart vrld with a fresh segment") \
	XX(FULL,     -30006, "key table full: raise segment.keys in the config")              \
	XX(NOLIMIT,  -30007, "no limit of that name matches the request")                      \
	XX(READONLY, -30008, "the handle was opened read-only")                                \
	XX(TOOMANY,  -30009, "the request matches more limits than one acquire can take")      \
	XX(NOKEY,    -30010, "no such key in the table")                                       \
	XX(BUSY,     -30011, "the segment kept changing under the call; try again")            \
	XX(OWNER,    -30012, "the segment's owner is not trusted (not root, not you, not the vrl system user, not $VRL_SEGMENT_OWNER) or anyone may write it: someone else may have made it; check who, remove it and restart vrld")

enum vrl_error {
#define VRL_ERR_ENUM(name, value, msg) VRL_E##name = (value),
	VRL_ERRORS(VRL_ERR_ENUM)
#undef VRL_ERR_ENUM
};

/*
 * Describe an error code: vrl's own or a negated errno. Never NULL. For
 * VRL_EOWNER the text names the object's owner and mode, as the last
 * vrl_open() of the calling thread that refused one saw them.
 */
const char *vrl_strerror(int err);
/* The symbolic name of an error code ("VRL_EDENIED", "ENOENT"). Never NULL. */
const char *vrl_err_name(int err);

/* An opaque handle on an attached segment. */
typedef struct vrl_client vrl_client;
/* A request resolved once to its limits and keys, acquired many times. */
typedef struct vrl_resolved vrl_resolved;

/* A request attribute, matched by limits such as `make: tesla`. */
struct vrl_attr {
	const char *name;
	const char *value;
};

/*
 * A request, in the caller's words. Any field may be NULL (unknown); a limit
 * keyed by a field the request leaves NULL keys it by the empty string.
 *
 * Secrets: values are keys, never shown. The label a key keeps for display
 * (vrlctl, metrics, logs, alerts, checkpoints) shows a token, a vehicle, a
 * user and any attribute as "#" and 8 hex digits of its hash, unless vrld's
 * config lists the field in labels.clear (a token never); `vrlctl hash`
 * computes the hash of a value. The token need not be the secret itself:
 * any stable id of it (a name, a key id, a hash of it) keys the same way,
 * so a caller that wants tokens told apart by name passes such an id.
 */
struct vrl_request {
	const char *api;             /* "samsara" */
	const char *endpoint;        /* "GET /v1/fleet/hos_logs_summary" */
	const char *token;           /* API token, or a stable id of it */
	const char *org;
	const char *vehicle;
	const char *user;
	const struct vrl_attr *attrs;
	size_t nattrs;
	uint64_t cost;               /* units this request costs; 0 means 1 */
};

/* vrl_verdict.flags */
#define VRL_VERDICT_COOLDOWN   0x1u  /* the deciding key was closed by a cooldown */
#define VRL_VERDICT_SHADOW     0x2u  /* a shadow limit would have denied; granted */
#define VRL_VERDICT_TABLE_FULL 0x4u  /* a key could not be inserted; policy decided */
#define VRL_VERDICT_NO_LIMIT   0x8u  /* no limit matched: granted without a check */
#define VRL_VERDICT_OVERAGE    0x10u /* a soft quota granted units past its limit */
#define VRL_VERDICT_ALERT      0x20u /* this grant crossed an alert threshold */
#define VRL_VERDICT_SATURATED  0x40u /* a soft quota's count is at its ceiling (2^40 - 1
                                        units in the period): overage stops growing */

/* vrl_verdict.kind: the deciding limit's algorithm. */
enum vrl_limit_kind {
	VRL_RATE = 1,                /* GCRA token bucket */
	VRL_GATE,                    /* cooldown only */
	VRL_WINDOW,                  /* exact rolling window */
	VRL_QUOTA,                   /* units per calendar period, or once */
	VRL_SLOTS,                   /* at most N held at once */
};

/*
 * The outcome of an acquire. The deciding limit is the one that denied, or,
 * on a grant, the matching limit with the fewest permits remaining.
 */
struct vrl_verdict {
	int granted;                 /* 1 granted, 0 denied */
	int limit;                   /* index of the deciding limit; -1 when none matched */
	const char *limit_name;      /* its name; valid until the next call on the handle */
	uint64_t retry_after_ns;     /* denied: wait this long before retrying; VRL_NEVER
	                                if the cost exceeds what the limit can ever grant */
	uint64_t remaining;          /* permits the deciding key still has now */
	uint64_t limit_value;        /* the deciding limit's size (burst) */
	uint64_t reset_ns;           /* ns until the deciding key is whole again */
	uint64_t at_ns;              /* monotonic time the decision counts at (for a
	                                waiting acquire, the reserved time) */
	uint32_t matched;            /* how many limits matched the request */
	uint32_t flags;              /* VRL_VERDICT_* */
	uint32_t kind;               /* enum vrl_limit_kind of the deciding limit; 0 if none */
	uint32_t reserved;
	uint64_t cost;               /* units the request asked for */
	uint64_t overage;            /* soft quota: units of the deciding key past its
	                                limit after this grant (0 when within it) */
};

/* vrl_open() flags */
#define VRL_OPEN_READONLY 0x1u       /* map read-only: inspect, never acquire */

/*
 * Attach to the segment @name ("/vrl", or NULL for VRL_DEFAULT_SEGMENT).
 * Maps it, checks its magic, format and bounds, copies the config, and
 * registers the handle for per-handle counters.
 *
 * The shm object must belong to a user the caller trusts, or anyone could
 * have made it before vrld and would own it: root, the caller's effective
 * user, the system user `vrl` if there is one, or the user (name or uid)
 * in the environment variable VRL_SEGMENT_OWNER; and it must not be
 * writable by others. Otherwise vrl_open() refuses it, touching nothing.
 *
 * Errors: VRL_ENOSEG (no such segment), -EACCES (not permitted: the segment's
 * mode and group come from vrld's config), VRL_EOWNER (its owner is not
 * trusted, or it is world-writable), VRL_EMAGIC, VRL_EFORMAT,
 * VRL_ECORRUPT, -ENOMEM, -EINVAL (bad name), -EMFILE (1024 handles open
 * in this process), VRL_EBUSY (vrld rewrote the config a thousand times
 * while it was being copied, or its area was left mid-write: open again;
 * no other call returns VRL_EBUSY).
 */
int vrl_open(const char *name, unsigned flags, vrl_client **out);

/* Detach and free the handle. NULL is allowed. Resolved requests made with
 * it must be freed first. */
void vrl_close(vrl_client *c);

/*
 * Acquire @req now: all matching limits or none. Returns 0 when granted,
 * VRL_EDENIED when a limit denied (the verdict says which and when to
 * retry), or an error. A denial writes nothing to the shared state.
 *
 * @v may be NULL when the caller needs only the return value.
 *
 * Ordering: a grant is a successful compare-and-swap on each key's state
 * word (acquire-release), so the grant happens-after every earlier grant on
 * the same keys in any process.
 *
 * Reloads: each call uses the config in force when it starts, and starts
 * over with a newer one published under it. A key keeps its state across
 * a reload (see the README); a handle that cannot copy a new config (vrld
 * kept rewriting it) goes on with the one it has, and a rate key that this
 * config can no longer read is denied, writing nothing, with a
 * retry_after_ns of 0.
 *
 * Errors besides VRL_EDENIED: VRL_EFULL (a new key found no slot, or could
 * not be inserted for seconds because the key table's reclaim stayed open
 * with vrld alive, and the config fails closed; a config that fails open
 * grants instead, with VRL_VERDICT_TABLE_FULL), VRL_ETOOMANY, VRL_EREADONLY,
 * VRL_ECORRUPT, -ENOMEM.
 */
int vrl_acquire(vrl_client *c, const struct vrl_request *req, struct vrl_verdict *v);

/*
 * Acquire @req, waiting up to @timeout_ns for it to be granted. The call
 * reserves the earliest future time at which every matching limit can grant
 * it, then sleeps until that time (clock_nanosleep), so waiters are woken
 * one by one in the order the limits schedule them, never all at once.
 * Returns as vrl_acquire(); VRL_EDENIED when the earliest time lies past the
 * timeout (nothing is reserved then). Cooldowns are waited out the same way.
 */
int vrl_acquire_wait(vrl_client *c, const struct vrl_request *req, uint64_t timeout_ns,
		     struct vrl_verdict *v);

/*
 * Resolve @req once: match it against the config, hash its keys and find
 * their slots. vrl_acquire_resolved() then skips all of that. A resolved
 * request stays valid across config reloads and evictions (it re-resolves
 * itself when needed). It belongs to @c and is freed with
 * vrl_resolved_free(). req->cost becomes its default cost.
 *
 * Errors: VRL_EFULL, VRL_ETOOMANY, -ENOMEM.
 */
int vrl_resolve(vrl_client *c, const struct vrl_request *req, vrl_resolved **out);
void vrl_resolved_free(vrl_resolved *r);

/* Acquire a resolved request with @cost units (0: its default cost). */
int vrl_acquire_resolved(vrl_client *c, vrl_resolved *r, uint64_t cost, struct vrl_verdict *v);

/*
 * Close the key of limit @limit for @req until the monotonic time @until_ns,
 * for every process: acquires that need it are denied with retry-after until
 * then. @limit NULL closes every limit that matches @req. A cooldown only
 * ever extends: an earlier @until_ns than the one in force changes nothing.
 *
 * Errors: VRL_ENOLIMIT, VRL_EFULL, VRL_EREADONLY.
 */
int vrl_cooldown(vrl_client *c, const struct vrl_request *req, const char *limit,
		 uint64_t until_ns);

/*
 * Reset the key of @limit for @req (all matching limits when NULL): its
 * bucket becomes full and any cooldown is lifted.
 *
 * Keys without a slot are already whole and are skipped.
 *
 * Errors: VRL_ENOLIMIT, VRL_ENOKEY (no matching limit has a slot for the
 * request: nothing to reset), VRL_EREADONLY.
 */
int vrl_reset(vrl_client *c, const struct vrl_request *req, const char *limit);

/*
 * Give back @cost units (0: 1) of a slots limit that @req holds: the
 * connection closed, the vehicle was disconnected. Every matching slots
 * limit (or the named one) is released; a release never takes a count
 * below zero.
 *
 * Errors: VRL_ENOLIMIT (no slots limit matches), VRL_ENOKEY, VRL_EREADONLY.
 */
int vrl_release(vrl_client *c, const struct vrl_request *req, const char *limit,
		uint64_t cost);

/*
 * Give back @cost units (0: 1) that the upstream did not count (CarsXE: a
 * 400 validation failure is free). Quotas and windows of @req (or the named
 * limit) are credited; a refund never goes below what the current period
 * has used. Rates are credited too, never past a full bucket.
 *
 * Errors: VRL_ENOLIMIT, VRL_ENOKEY, VRL_EREADONLY.
 */
int vrl_refund(vrl_client *c, const struct vrl_request *req, const char *limit,
	       uint64_t cost);

/* ---- feedback from the upstream ------------------------------------------- */

/* One response header, as the HTTP library gave it (names match without case). */
struct vrl_header {
	const char *name;
	const char *value;
};

/* What the upstream answered to a request that vrl granted. */
struct vrl_response {
	int status;                  /* HTTP status: 200, 400, 429, ... */
	const struct vrl_header *headers;
	size_t nheaders;
	const char *body;            /* may be NULL; need not be NUL-terminated */
	size_t body_len;
	const char *limit;           /* the limit the response is about (NULL: the
	                                tightest matching one) */
};

/* vrl_feedback.actions: what vrl_observe() did. */
#define VRL_FB_COOLDOWN   0x1u       /* closed a key until cooldown_until_ns */
#define VRL_FB_RECONCILE  0x2u       /* moved a local count toward the server's */
#define VRL_FB_REFUND     0x4u       /* gave the request's units back */
#define VRL_FB_IGNORED    0x8u       /* a header or body was malformed and skipped */

struct vrl_feedback {
	uint32_t actions;            /* VRL_FB_* */
	int limit;                   /* index of the limit acted on; -1 when none */
	uint64_t cooldown_until_ns;  /* monotonic ns, when VRL_FB_COOLDOWN */
	uint64_t server_limit;       /* the server's figures, UINT64_MAX when absent */
	uint64_t server_remaining;
	const char *ignored;         /* static text: why a value was skipped, or NULL */
};

/*
 * Feed back the upstream's answer to @req. A 429 closes the limit the
 * response names (or the tightest matching one) until its Retry-After for
 * every worker; x-ratelimit-limit / x-ratelimit-remaining and CarsXE's
 * usage body move the local count toward the server's, so vrl never grants
 * more than the server says remains; a 400 refunds the request's cost.
 * A malformed value is skipped and counted, never an error. @fb may be NULL.
 *
 * Errors: VRL_EREADONLY, VRL_EFULL.
 */
int vrl_observe(vrl_client *c, const struct vrl_request *req, const struct vrl_response *resp,
		struct vrl_feedback *fb);

/*
 * Parse a Retry-After value: integer seconds ("30"), fractional seconds
 * ("0.40235") or an HTTP-date ("Wed, 21 Oct 2026 07:28:00 GMT", taken
 * against @now_realtime_ns, CLOCK_REALTIME), in the three forms of RFC 9110
 * and the variants servers send and HTTP clients accept: a one-digit day,
 * UTC, UT, Z or a numeric zone for GMT, no weekday, any case, extra spaces.
 * Sets *@delay_ns (a date in the past gives 0). Returns 0, or -EINVAL with
 * nothing set: a negative, malformed or absurd value (a delay beyond 400
 * days, a date before 1970, a date with no zone or one clients disagree
 * on) is refused, never taken as a very long wait.
 */
int vrl_parse_retry_after(const char *s, size_t len, uint64_t now_realtime_ns,
			  uint64_t *delay_ns);

/* Number of limits in the handle's current config, and the name of one. */
int vrl_limit_count(vrl_client *c);
const char *vrl_limit_name(vrl_client *c, int idx);

/* CLOCK_MONOTONIC in nanoseconds: the time base of every vrl call. */
uint64_t vrl_now_ns(void);

#ifdef __cplusplus
}
#endif

#endif /* VRL_H */
