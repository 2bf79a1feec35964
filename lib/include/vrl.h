/*
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
 *
 * Entry checks, the same in every call and made before anything else: a
 * NULL handle, request, response or resolved request (or a NULL out
 * pointer) returns VRL_ENULL; a request or response with a reserved word
 * set returns VRL_ERESERVED; a resolved request used with a handle other
 * than the one that resolved it returns VRL_EHANDLE. Nothing is touched,
 * shared or not, beyond the caller's own outputs: a verdict passed says
 * not granted, a feedback passed says nothing was done.
 *
 * Threads: every call taking a vrl_client is for the one thread using the
 * handle at the time (see the first caveat); calls on different handles,
 * in any threads or processes, need no coordination with each other, nor
 * with vrld. Calls without a handle (vrl_strerror, vrl_err_name,
 * vrl_parse_retry_after, vrl_now_ns, vrl_version) are safe from any
 * thread at any time.
 *
 * A growing ABI: the structs a caller fills or receives (vrl_request,
 * vrl_verdict, vrl_response, vrl_feedback) end in reserved room, as
 * libuv's handles do, rather than begin with a size field set by an init
 * call: a verdict or feedback the caller leaves uninitialised stays valid,
 * and a request built with designated initialisers ({ .api = "x" }) or
 * = { 0 } has its room zeroed without a word from the caller. A later
 * release gives a reserved word a meaning in which zero means "absent",
 * and callers built against this header keep working unchanged: the
 * library refuses a request or response whose reserved words are not zero
 * (VRL_ERESERVED) from this release on, so no caller can come to rely on
 * garbage there, and it zeroes the room of every verdict and feedback it
 * writes. When one struct's room is spent, its calls get new versioned
 * symbols and the old ones stay, as this release did for 0.1's structs,
 * which had no room: a program built against 0.1 binds to the VRL_0
 * symbols, which take 0.1's layouts. vrl_attr and vrl_header are array
 * elements, whose size is part of the caller's stride: they never grow.
 */
#ifndef VRL_H
#define VRL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VRL_VERSION_MAJOR 0
#define VRL_VERSION_MINOR 2
#define VRL_VERSION_PATCH 0
/* The version this header belongs to, as one number: compare it with
 * vrl_version(), which says which library the program runs with. */
#define VRL_VERSION_NUMBER(major, minor, patch) \
	(((unsigned)(major) << 16) | ((unsigned)(minor) << 8) | (unsigned)(patch))
#define VRL_VERSION \
	VRL_VERSION_NUMBER(VRL_VERSION_MAJOR, VRL_VERSION_MINOR, VRL_VERSION_PATCH)

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
	XX(OWNER,    -30012, "the segment's owner is not trusted (not root, not you, not the vrl system user, not $VRL_SEGMENT_OWNER) or anyone may write it: someone else may have made it; check who, remove it and restart vrld") \
	XX(UNMATCHED, -30013, "no limit matches the request and the config's unmatched: policy is deny: check the request's api and fields (a typo?), or add a limit for it") \
	XX(NULL,     -30014, "a handle, request, response, resolved request or out pointer passed as NULL") \
	XX(HANDLE,   -30015, "the resolved request belongs to another handle: resolve it with the handle that acquires it") \
	XX(RESERVED, -30016, "a reserved field of a request or response is not zero: zero-initialise the struct ({ 0 } or designated initialisers)")

enum vrl_error {
#define VRL_ERR_ENUM(name, value, msg) VRL_E##name = (value),
	VRL_ERRORS(VRL_ERR_ENUM)
#undef VRL_ERR_ENUM
};

/*
 * Describe an error code: vrl's own or a negated errno. Never NULL. Any
 * thread. For
 * VRL_EOWNER the text names the object's owner and mode, as the last
 * vrl_open() of the calling thread that refused one saw them.
 */
const char *vrl_strerror(int err);
/* The symbolic name of an error code ("VRL_EDENIED", "ENOENT"). Never NULL.
 * Any thread. */
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
	uint64_t reserved[8];        /* room to grow: zero (VRL_ERESERVED otherwise) */
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
#define VRL_VERDICT_UNMATCHED  0x80u /* with NO_LIMIT: the config's unmatched: policy is
                                        warn or deny, and counted the request by api */
#define VRL_VERDICT_PACED      0x100u /* an adaptive rate key of the request paces below
                                         its figure (pace_q16) */
#define VRL_VERDICT_SHARE      0x200u /* denied by a global key: this host's share of the
                                         limit had no room (or no lease) now */

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
	uint32_t pad;                /* zero */
	uint64_t cost;               /* units the request asked for */
	uint64_t overage;            /* soft quota: units of the deciding key past its
	                                limit after this grant (0 when within it) */
	/* adaptive rate limits (vrl.yaml adaptive: true); 0 when none matched */
	uint64_t binding;            /* granted: bit i set for limit i, an adaptive rate
	                                limit whose key bound this grant (the least
	                                slack): the limits a 429 naming none is charged
	                                to by vrl_observe_granted() */
	uint32_t pace_q16;           /* the slowest effective rate among the request's
	                                adaptive keys, in 1/65536 of its figure (65536:
	                                at it); 0 when none is adaptive */
	uint32_t pad2;               /* zero */
	uint64_t reserved[6];        /* room to grow: written as zero */
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
 * no other call returns VRL_EBUSY), VRL_ENULL (@out is NULL).
 *
 * Threads: any thread; the handle it gives is then one thread's at a time.
 * Ordering: the magic is read with acquire, pairing with vrld's release
 * of it, written last: everything vrld wrote before publishing the
 * segment is visible to the handle.
 */
int vrl_open(const char *name, unsigned flags, vrl_client **out);

/* Detach and free the handle. NULL is allowed. Resolved requests made with
 * it must be freed first. Threads: the handle's thread; no call on it may
 * run or follow. Process-bound slots the handle holds go back now (vrld
 * would reap them when the process dies). */
void vrl_close(vrl_client *c);

/*
 * Acquire @req now: all matching limits or none. Returns 0 when granted,
 * VRL_EDENIED when a limit denied (the verdict says which and when to
 * retry), or an error. A denial writes nothing to the shared state.
 *
 * @v may be NULL when the caller needs only the return value.
 *
 * Threads: the handle's thread. Lock-free: no lock, no syscall besides a
 * clock read, no wait on vrld or another process; a process killed in the
 * call blocks nobody.
 *
 * Ordering: a grant is a successful compare-and-swap on each key's state
 * word (acquire-release), so the grant happens-after every earlier grant on
 * the same keys in any process. A denial only loads (acquire): it orders
 * nothing for others.
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
 * grants instead, with VRL_VERDICT_TABLE_FULL), VRL_ETOOMANY, VRL_EUNMATCHED
 * (no limit matches and the config's unmatched: policy is deny; the verdict
 * has VRL_VERDICT_NO_LIMIT | VRL_VERDICT_UNMATCHED), VRL_EREADONLY,
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
 *
 * Threads and ordering: as vrl_acquire(), the reservation being its grant;
 * the call then blocks the handle's thread in clock_nanosleep (a signal
 * handler runs and the sleep resumes). A cooldown set after the
 * reservation does not recall it.
 *
 * Stacked rate limits: when one of the request's rate keys could grant
 * before the earliest common time, the call does not reserve (that would
 * leave the other key's turns in between unused by anyone): it sleeps to
 * that time holding nothing and looks again, as often as the timeout
 * allows, so another request may take those turns first.
 *
 * Adaptive limits: a call that wakes more than an eighth of an adaptive
 * key's spacing after its reserved time does not use that reservation; it
 * reserves again (within the timeout), so that a late send and the next
 * waiter's on-time one do not reach the upstream closer than the spacing.
 * Between the return and the send, do nothing but send: connect, build
 * the request and choose the token before calling.
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
 * Threads: the handle's thread; the resolved request is used and freed on
 * the thread that uses its handle. Keys that are new are inserted (a CAS
 * on the key table), as a first vrl_acquire() of them would.
 *
 * Errors: VRL_EFULL, VRL_ETOOMANY, VRL_EREADONLY, -ENOMEM.
 */
int vrl_resolve(vrl_client *c, const struct vrl_request *req, vrl_resolved **out);
/* Free a resolved request (NULL is allowed), before its handle is closed. */
void vrl_resolved_free(vrl_resolved *r);

/*
 * Acquire a resolved request with @cost units (0: its default cost).
 * Threads, ordering and errors as vrl_acquire(); VRL_EHANDLE when @r was
 * resolved with another handle than @c.
 */
int vrl_acquire_resolved(vrl_client *c, vrl_resolved *r, uint64_t cost, struct vrl_verdict *v);

/*
 * Close the key of limit @limit for @req until the monotonic time @until_ns,
 * for every process: acquires that need it are denied with retry-after until
 * then. @limit NULL closes every limit that matches @req. A cooldown only
 * ever extends: an earlier @until_ns than the one in force changes nothing.
 *
 * Threads: the handle's thread. Ordering with vrld: the key's cooldown word
 * is raised by a sequentially consistent CAS, then its state word and tag
 * are read (seq_cst). vrld evicts an idle key by a seq_cst CAS of its
 * state word to EVICTED, then reads the cooldown (keytable.c KT.E1, KT.E2):
 * either this call sees the key evicted and closes it again in its new
 * slot, or vrld sees the cooldown and puts the key back closed. A cooldown
 * is lost only when the key cannot come back at all (no free slot near its
 * home: the table is full there, and `on_full` decides). vrld checkpoints a cooldown in force with its key and restores it
 * after a restart. An acquire reads the word relaxed, after the key's
 * state word: one that runs at the same time as the call may still grant.
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
 * Threads: the handle's thread. Ordering: relaxed stores; an operator's
 * act, ordered with nothing (a grant racing with it may land before or
 * after). A key vrld evicts meanwhile is left evicted.
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
 * Threads: the handle's thread. Ordering: a CAS (release) on the key's
 * word, paired with the acquire of the grant that next takes the units.
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
 * Threads and ordering: as vrl_release(). A rate key whose word another
 * config wrote is left alone (its next acquire converts it).
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
	uint64_t reserved[6];        /* room to grow: zero (VRL_ERESERVED otherwise) */
};

/* vrl_feedback.actions: what vrl_observe() did. */
#define VRL_FB_COOLDOWN   0x1u       /* closed a key until cooldown_until_ns */
#define VRL_FB_RECONCILE  0x2u       /* moved a local count toward the server's */
#define VRL_FB_REFUND     0x4u       /* gave the request's units back */
#define VRL_FB_IGNORED    0x8u       /* a header or body was malformed and skipped */
#define VRL_FB_ADAPT      0x10u      /* a 429 cut the effective rate of adaptive keys */

struct vrl_feedback {
	uint32_t actions;            /* VRL_FB_* */
	int limit;                   /* index of the limit acted on; -1 when none */
	uint64_t cooldown_until_ns;  /* monotonic ns, when VRL_FB_COOLDOWN */
	uint64_t server_limit;       /* the server's figures, UINT64_MAX when absent */
	uint64_t server_remaining;
	const char *ignored;         /* static text: why a value was skipped, or NULL */
	uint64_t adapted;            /* VRL_FB_ADAPT: bit i set for each limit i whose key
	                                a 429 cut */
	uint64_t reserved[5];        /* room to grow: written as zero */
};

/*
 * Feed back the upstream's answer to @req. A 429 closes the limit the
 * response names (or the tightest matching one) until its Retry-After for
 * every worker; x-ratelimit-limit / x-ratelimit-remaining and CarsXE's
 * usage body move the local count toward the server's, so vrl never grants
 * more than the server says remains; a 400 refunds the request's cost.
 * A malformed value is skipped and counted, never an error. @fb may be NULL.
 *
 * Threads: the handle's thread. Ordering: as vrl_cooldown() for the
 * cooldown, vrl_refund() for the refund; a reconcile only raises a key's
 * word (CAS, release), so it makes later grants wait, never lets one by.
 *
 * Errors: VRL_EREADONLY, VRL_EFULL.
 */
int vrl_observe(vrl_client *c, const struct vrl_request *req, const struct vrl_response *resp,
		struct vrl_feedback *fb);

/*
 * Adaptive limits (vrl.yaml adaptive: true). A 429 observed on @req cuts
 * the effective rate of the adaptive rate keys it is charged to, for every
 * worker, whether or not it carries a Retry-After; the rate then recovers
 * with time toward the figure, never above it. Which keys: the limit the
 * response or the caller names, if it is adaptive; else, with vrl_observe(),
 * the adaptive rate key of @req with the fewest permits now. A 429 whose
 * request was granted before the last cut of a key, or within 100 ms of
 * it, is taken as an echo of that cut and cuts nothing more.
 *
 * vrl_observe_granted() is vrl_observe() for a request granted by @v (its
 * verdict, from any acquire call): a 429 that names no limit is charged to
 * the keys that bound that grant (v->binding), and v->at_ns tells an echo
 * of an earlier cut apart. Pass the verdict of the grant the response
 * answers; @v NULL or not granted: vrl_observe().
 *
 * Errors: those of vrl_observe().
 */
int vrl_observe_granted(vrl_client *c, const struct vrl_request *req,
			const struct vrl_verdict *v, const struct vrl_response *resp,
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
 * on) is refused, never taken as a very long wait. Any thread; pure.
 */
int vrl_parse_retry_after(const char *s, size_t len, uint64_t now_realtime_ns,
			  uint64_t *delay_ns);

/*
 * Number of limits in the handle's current config (picking up a config
 * vrld published since the last call), and the name of one: NULL for an
 * index out of range or a NULL handle; the name stays valid until the
 * next call on the handle. vrl_limit_count() errors: VRL_ENULL,
 * VRL_ECORRUPT. Threads: the handle's thread.
 */
int vrl_limit_count(vrl_client *c);
const char *vrl_limit_name(vrl_client *c, int idx);

/* CLOCK_MONOTONIC in nanoseconds: the time base of every vrl call. Any thread. */
uint64_t vrl_now_ns(void);

/*
 * The version of the library the program runs with, as VRL_VERSION encodes
 * it (major << 16 | minor << 8 | patch), and as text ("0.2.0"). A program
 * that needs a field or call of a later release than it was built with
 * compares vrl_version() with VRL_VERSION_NUMBER(...). Any thread.
 */
unsigned vrl_version(void);
const char *vrl_version_string(void);

#ifdef __cplusplus
}
#endif

#endif /* VRL_H */
