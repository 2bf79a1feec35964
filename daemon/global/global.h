/*
 * global.h - the multi-host engine: limits held across hosts through Redis.
 *
 * A limit with `scope: global` is held by every host's vrld together. Redis
 * (7.x, its function library daemon/global/vrl.lua) is the authority; vrld
 * is its only client; workers never talk to it. Per global key, vrld holds
 * a lease: a share of the limit valid until an expiry (rate: a share of the
 * rate and of the burst; window: a share of the count; quota and slots: an
 * allocation, units counted in Redis when leased). The worker's local CAS
 * path enforces the share. lease.c proves why the pool then keeps the
 * limit (G1 and the aggregate bucket), and what each failure does.
 *
 * This engine is a thread of vrld that owns the Redis connections. The
 * main loop, once per tick:
 *
 *     n = fill entries[] with every global key        (struct vrl_global_entry)
 *     vrl_global_submit(g, entries, n);               never waits on Redis
 *     r = vrl_global_collect(g, &results);            the latest round's answers
 *     for each result: apply it to the local key      (lease.c: how, in order)
 *
 * and each tick the engine sends one batched call per Redis endpoint (keys
 * spread over endpoints by hash; large batches split in chunks, pipelined),
 * converts each lease's expiry to local monotonic time conservatively, and
 * publishes the results. An idle key (nothing used or denied since its
 * last report) is renewed about twice a lease term instead of every tick;
 * an endpoint without keys gets a call twice a term all the same (so the
 * host learns of a wiped Redis). While an endpoint cannot be reached, its
 * keys keep their leases until they expire, then get the on_partition
 * share.
 *
 * Redis's cost (bench_global, this project's 2-core VM): 20 to 35 us of
 * Redis time per key renewed, so one Redis holds some 30 000 key renewals
 * a second: busy keys x ticks + idle keys x 2 / lease, summed over hosts.
 * More endpoints divide it.
 *
 * Threads: every function here is called from the main loop's thread, but
 * vrl_global_rounds(), vrl_global_status() and vrl_global_key(), which any
 * thread may call, and the pure helpers at the end.
 * One engine per host (several in one process simulate several hosts).
 * Nothing here enters libvrl.
 */
#ifndef VRL_GLOBAL_H
#define VRL_GLOBAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VRL_GLOBAL_ID_LEN     16u      /* bytes of a key id */
#define VRL_GLOBAL_HOST_MAX   64u      /* bytes of a host id, NUL excluded */
#define VRL_GLOBAL_LEASE_DEFAULT_NS UINT64_C(1000000000)  /* the lease term when none is given */
#define VRL_GLOBAL_HOLDERS_MAX 256u    /* bytes of a holders list, NUL included */
#define VRL_GLOBAL_ENDPOINTS_MAX 16u   /* Redis endpoints */
#define VRL_GLOBAL_CHUNK      1000u    /* entries per call; more are pipelined */
#define VRL_GLOBAL_RATE_UNIT  UINT64_C(1000000) /* rate shares: permits per second x 1e6 */

enum vrl_global_kind {
	VRL_GLOBAL_RATE = 1,    /* GCRA: a share of the rate and of the burst */
	VRL_GLOBAL_WINDOW,      /* at most N in any W: a share of N */
	VRL_GLOBAL_QUOTA,       /* N units per period: an allocation of units */
	VRL_GLOBAL_SLOTS,       /* at most N held: an allocation of units */
	VRL_GLOBAL_GATE,        /* cooldowns only */
};

enum vrl_global_partition {
	VRL_GLOBAL_DENY = 0,    /* past its lease, a key denies (the default) */
	VRL_GLOBAL_STATIC,      /* past its lease and one more term: limit / hosts */
};

struct vrl_global_config {
	const char *const *redis;   /* endpoints: "unix:/run/redis/redis.sock", "127.0.0.1:6379" */
	size_t nredis;              /* 1 .. VRL_GLOBAL_ENDPOINTS_MAX */
	const char *host;           /* this vrld's id: [A-Za-z0-9._-]{1,64}; NULL: the hostname */
	const char *prefix;         /* Redis key prefix; NULL: "vrl:" */
	uint64_t lease_ns;          /* lease term; 0: 1 s */
	uint64_t margin_ns;         /* clock margin; 0: lease / 20 */
	uint64_t timeout_ns;        /* connect and command timeout; 0: lease / 4 */
	uint32_t hosts;             /* expected host count (static shares, block sizes); 0: 1 */
	enum vrl_global_partition on_partition;
};

/*
 * A share as the local key enforces it.
 *   rate:   rate (permits per second x VRL_GLOBAL_RATE_UNIT) and burst
 *           (permits); local emission interval: vrl_global_rate_emission().
 *   window: count (grants in any W).
 *   quota:  count (units leased this period: the key may count up to it).
 *   slots:  count (units leased: the key may hold up to it).
 */
struct vrl_global_share {
	uint64_t rate;
	uint64_t burst;
	uint64_t count;
};

/*
 * What the main loop hands each tick, per global key: every global key it
 * has, every tick. A key left out is not renewed (its lease lapses), and
 * the engine takes the set as the host's complete one: after a Redis
 * loss, Redis opens a quota nobody else knows of once every host made a
 * full report. The ids must be unique in a batch.
 */
struct vrl_global_entry {
	uint8_t id[VRL_GLOBAL_ID_LEN];  /* stable key id: the same bytes on every host
					 * (the key's hash; it names the kind too) */
	enum vrl_global_kind kind;
	/* the global figures, from the config */
	uint64_t count;         /* rate: permits per period; window: N; quota, slots: N */
	uint64_t period_ns;     /* rate: the period; window: W; others: 0 */
	uint64_t burst;         /* rate: the burst (>= hosts: vrl_global_check_rate) */
	bool soft;              /* quota with overage: never short, counted all the same */
	/* the local figures, from the segment */
	uint64_t used_total;    /* permits (units) granted locally since the key was
				 * made; wraps; the engine reports the difference */
	uint64_t unmet_total;   /* permits denied for want of share, likewise */
	struct vrl_global_share share;  /* the share the local key enforces now */
	uint64_t held;          /* quota: units used this period; slots: units held now;
				 * window: grants in the trailing W (for a release) */
	uint64_t period_id;     /* quota: the period of the local count (a new period
				 * starts with share.count and held 0) */
	uint64_t period_left_ns;/* quota: time to the period's end; UINT64_MAX: `once` */
	uint64_t cooldown_until;/* local monotonic ns the key is closed until; 0: open */
	uint64_t gen;           /* the gen of the last result applied to the key
				 * (0: none); see vrl_global_result.gen */
};

/* Per entry, the outcome of a round (enum order is vrl.lua's codes). */
enum vrl_global_outcome {
	VRL_GLOBAL_OK = 0,          /* a new share */
	VRL_GLOBAL_FENCED = 1,      /* Redis lost its data lately: share 0 until the fence
				     * ends (quota, slots: the allocation is kept) */
	VRL_GLOBAL_SEEDING = 2,     /* quota, slots: counter waits for its holders' reports;
				     * allocation kept, no more units */
	VRL_GLOBAL_BEHIND = 3,      /* quota: Redis is in a later period than our clock */
	VRL_GLOBAL_CONFLICT = 4,    /* the key is another kind in Redis: share 0 */
	VRL_GLOBAL_PENDING = 5,     /* no answer this round: keep the lease held */
	VRL_GLOBAL_PARTITIONED = 6, /* no answer and the lease expired: the on_partition share */
	VRL_GLOBAL_INVALID = 7,     /* refused: bad figures */
};

/*
 * What the main loop gets back, per entry of the round. Every result
 * carries the key's latest lease (share, expires, target), also when this
 * round did not renew it (PENDING): apply it when its gen is not the
 * entry's, and copy the gen to the entry. So a round that replaces one
 * the main loop did not collect loses nothing.
 */
struct vrl_global_result {
	uint8_t id[VRL_GLOBAL_ID_LEN];
	enum vrl_global_outcome status;
	bool apply;             /* share, expires and gen below are a lease (false: the
				 * key has none yet: keep denying) */
	struct vrl_global_share share;
	uint64_t expires;       /* local monotonic ns the share may be trusted until;
				 * UINT64_MAX: quota and slots (units are counted) */
	uint64_t target;        /* quota, slots: the spare to keep: clamp the allocation
				 * to held + target when above; report it next tick */
	uint64_t static_from;   /* rate, window: when on_partition is static, the
				 * static share applies from here (before: deny) */
	uint64_t cooldown_until;/* local monotonic ns to close the key until; 0: none */
	uint64_t period_id;     /* quota: the period the allocation is of (the entry's
				 * that Redis answered): never apply it to another */
	uint64_t gen;           /* the lease's: apply when it is not the entry's, and
				 * copy it to the entry. An entry whose gen is not the
				 * key's latest is from before that lease was applied: the
				 * engine does not take its quota or slots allocation as
				 * one the host shrank to (it reports the lease's) */
};

/* Per endpoint, for vrlctl global and metrics. */
struct vrl_global_endpoint_status {
	char name[128];
	bool up;                    /* connected, library loaded, last call answered */
	uint64_t down_since;        /* local monotonic ns of the first failure; 0 while up */
	uint64_t rtt_last_ns, rtt_ewma_ns, rtt_max_ns;
	uint64_t calls;             /* vrl_renew calls sent */
	uint64_t failures;          /* calls without an answer, connects that failed */
	uint64_t keys;              /* keys of the last round on it */
	char epoch[64];             /* Redis's epoch id, "" before the first answer */
	uint64_t fence_left_ns;     /* as of the last answer */
	bool lost;                  /* the epoch knows it replaced one that lost its data */
	char error[160];            /* the last failure, "" none */
};

struct vrl_global_status {
	uint64_t rounds;            /* rounds completed */
	uint64_t keys;              /* entries of the last round */
	uint64_t partitioned;       /* keys on the on_partition share now */
	size_t nendpoints;
	struct vrl_global_endpoint_status ep[VRL_GLOBAL_ENDPOINTS_MAX];
};

/* Per key, as of the last round that had it. */
struct vrl_global_key_status {
	enum vrl_global_outcome status;
	struct vrl_global_share share;
	uint64_t expires;           /* local monotonic ns */
	uint64_t renewals;          /* answers that brought a share */
	unsigned endpoint;
	char holders[VRL_GLOBAL_HOLDERS_MAX];
};

struct vrl_global;

/*
 * Check @cfg and start the engine's thread; it connects in the background.
 * Returns 0, or -EINVAL with the reason in @err (a bad endpoint or host
 * id), -ENOMEM, or -errno of pthread_create.
 */
int vrl_global_start(const struct vrl_global_config *cfg, struct vrl_global **out, char *err,
		     size_t errlen);

/*
 * Hand the engine this tick's entries (copied): every global key, every
 * tick, even none. The thread starts a round with them as soon as it is
 * free. A batch not yet taken is replaced: its
 * used/unmet totals are cumulative, so nothing is lost. Never waits on
 * Redis: the lock it takes is held only to swap two pointers.
 * Returns 0, or -ENOMEM (the previous batch stays).
 */
int vrl_global_submit(struct vrl_global *g, const struct vrl_global_entry *e, size_t n);

/*
 * The results of the latest round finished since the last call, or 0 and
 * *out NULL when none. *out stays valid until the next call. A round not
 * collected is replaced by the next: the newer lease of a key supersedes.
 */
size_t vrl_global_collect(struct vrl_global *g, const struct vrl_global_result **out);

/* Rounds finished so far. Any thread. */
uint64_t vrl_global_rounds(struct vrl_global *g);

/* A snapshot of the engine's state. Any thread. */
void vrl_global_status(struct vrl_global *g, struct vrl_global_status *st);

/* Key @id as of the last round that had it; -ENOENT if none. Any thread. */
int vrl_global_key(struct vrl_global *g, const uint8_t id[VRL_GLOBAL_ID_LEN],
		   struct vrl_global_key_status *ks);

/*
 * Stop the thread. With @release, first give up the shares of @n entries
 * (the caller clamped those keys to them already: rate to none, window
 * to none with `held` its grants in the trailing W, quota and slots to
 * `share.count`), waiting at most one command timeout. Frees @g.
 */
void vrl_global_stop(struct vrl_global *g, const struct vrl_global_entry *e, size_t n);

/* Whether @h is a host id: 1 to VRL_GLOBAL_HOST_MAX of A-Z a-z 0-9 . _ - */
bool vrl_global_host_ok(const char *h);

/*
 * The operator's way out for a host gone for good (operator.c): on every
 * endpoint of @cfg, vrl_forget @host, so that the quota and slots
 * counters waiting for its report open without it. Synchronous, one
 * command timeout per endpoint; a line per endpoint in @out. 0, -EINVAL
 * (a bad host id or endpoint), or -EIO when an endpoint did not do it.
 */
int vrl_global_forget(const struct vrl_global_config *cfg, const char *host, char *out,
		      size_t len);

/* ---- pure helpers (lease.c) ---------------------------------------------- */

/*
 * A global rate needs burst >= hosts (lease.c says why). Returns 0, or
 * -EINVAL with a message in @msg that shows how to write the limit, e.g.
 * "150/s burst 1" for 3 hosts: "write 148/s burst 3: at most 151 in any 1s,
 * as now". @name is the limit's name for the message.
 */
int vrl_global_check_rate(const char *name, uint64_t count, uint64_t period_ns, uint64_t burst,
			  uint32_t hosts, char *msg, size_t len);

/* The rate share of @count per @period_ns (permits/s x 1e6, rounded down);
 * 0 when it does not fit 2^53 (vrl.lua's exact integers). */
uint64_t vrl_global_rate_units(uint64_t count, uint64_t period_ns);

/* The local GCRA emission interval of rate share @rate (ns per permit,
 * rounded up); UINT64_MAX for 0: the bucket keeps its fill, no refill. */
uint64_t vrl_global_rate_emission(uint64_t rate);

/* The static share of @e's figures among @hosts (on_partition: static). */
struct vrl_global_share vrl_global_static_share(const struct vrl_global_entry *e,
						uint32_t hosts);

/*
 * The stable id of a key of limit @limit (its kind included, so that a
 * limit whose kind changes gets new keys) with key parts @parts: XXH3-128
 * of them, as every host computes it alike.
 */
void vrl_global_key_id(enum vrl_global_kind kind, const char *limit, const char *const *parts,
		       size_t nparts, uint8_t id[VRL_GLOBAL_ID_LEN]);

#endif /* VRL_GLOBAL_H */
