/*
 * shim.h - plain C entry points for the benchmarks.
 *
 * Everything that touches vrl, shared memory, processes or Redis lives in
 * shim.c, in C; bench_vrl.cc is only Google Benchmark glue around these
 * calls. Every "op" function is one unit of work a benchmark iteration
 * times, and each returns 0 on success so the glue can stop on a failure.
 */
#ifndef VRL_BENCH_SHIM_H
#define VRL_BENCH_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- vrl segments ------------------------------------------------------- */

/* A private segment made for one case, with a client attached to it. */
typedef struct vb_seg vb_seg;

/*
 * Create "/vrl-bench-<pid>-<tag>" with one rate limit keyed by token:
 * @count permits per @period_ns, bucket @burst, room for @keys keys.
 */
int vb_seg_one(const char *tag, uint64_t count, uint64_t period_ns, uint64_t burst,
	       uint64_t keys, vb_seg **out);

/*
 * Create a segment with three stacked limits for api "samsara": one keyed
 * by token, one by org, one by endpoint. None ever denies.
 */
int vb_seg_stacked(const char *tag, vb_seg **out);

/* The same with the limit global (scope: global): each acquire also takes
 * from the key's share word. */
int vb_seg_one_global(const char *tag, vb_seg **out);

/* After vb_resolve: give the key a full lease, as vrld would. */
int vb_global_lease(vb_seg *s);

/* vb_acquire_resolved on a global key, the word refilled when half spent
 * (vrld's part, off the measured path but for one load). */
int vb_acquire_global(vb_seg *s);

/* Detach, unmap and unlink. NULL is allowed. */
void vb_seg_destroy(vb_seg *s);

/* Read every slot of the key table once, so its pages are mapped. */
void vb_seg_prefault(vb_seg *s);

/* Resolve the request {api "samsara", token @token} once for vb_acquire_resolved. */
int vb_resolve(vb_seg *s, const char *token);

/* Acquire the resolved request: 0 granted, VRL_EDENIED, or an error. */
int vb_acquire_resolved(vb_seg *s);

/* Acquire {api "samsara", token, org, endpoint} by strings (any may be NULL). */
int vb_acquire_strings(vb_seg *s, const char *token, const char *org, const char *endpoint);

/*
 * Check that a denied acquire leaves every key slot byte for byte as it
 * was. Returns 1 when it wrote nothing, 0 when it did, negative on error.
 * The request must already be resolved and exhausted.
 */
int vb_denial_is_readonly(vb_seg *s);

/* ---- the floor: one clock read and one CAS on a shared word --------------- */

typedef struct vb_floor vb_floor;

int vb_floor_create(const char *tag, vb_floor **out);
void vb_floor_destroy(vb_floor *f);
int vb_floor_op(vb_floor *f);

/* ---- baseline: token bucket under a robust process-shared mutex ----------- */

typedef struct vb_mutex vb_mutex;

int vb_mutex_create(const char *tag, vb_mutex **out);
void vb_mutex_destroy(vb_mutex *m);
/* 0 granted, 1 denied, negative errno on a lock failure. */
int vb_mutex_op(vb_mutex *m);

/* ---- a second process hammering the same word ------------------------------ */

typedef struct vb_rival vb_rival;

/* Fork a child that loops the op of @s / @f / @m (exactly one non-NULL)
 * on the same key until stopped. Returns once the child is running. */
int vb_rival_start(vb_seg *s, vb_floor *f, vb_mutex *m, vb_rival **out);
/* Stop and reap the child; returns the number of ops it made. */
uint64_t vb_rival_stop(vb_rival *r);

/* ---- baseline: Redis + Lua GCRA over a Unix socket ------------------------- */

typedef struct vb_redis vb_redis;

/* Whether this build has hiredis. */
int vb_redis_available(void);
/* Connect to @socket_path and load the script. Writes a reason to @why. */
int vb_redis_connect(const char *socket_path, vb_redis **out, char *why, size_t whylen);
void vb_redis_close(vb_redis *r);
/* One EVALSHA: 0 granted, 1 denied, negative on an error. */
int vb_redis_op(vb_redis *r);

/* ---- memory ---------------------------------------------------------------- */

struct vb_memory {
	uint64_t keys;            /* key capacity asked for */
	uint64_t slot_bytes;      /* sizeof one key slot */
	uint64_t nslots;          /* slots the table gets for it */
	uint64_t segment_bytes;   /* whole segment */
	double bytes_per_key;     /* slot bytes * nslots / keys */
};

int vb_memory_for(uint64_t keys, struct vb_memory *out);

#ifdef __cplusplus
}
#endif

#endif /* VRL_BENCH_SHIM_H */
