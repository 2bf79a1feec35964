/*
 * redis.h - one Redis endpoint of the engine: its connection (Unix socket
 * or TCP, with connect and command timeouts, reconnects with backoff), the
 * vrl function library on it, and what its answers told us (epoch, virtual
 * time, registry). Internal to daemon/global; the engine's thread only.
 */
#ifndef VRL_GLOBAL_REDIS_H
#define VRL_GLOBAL_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

/* vrl.lua, embedded at build time (embed_lua.py) */
extern const char vrl_global_lua[];
extern const size_t vrl_global_lua_len;
extern const unsigned vrl_global_lua_version;
extern const unsigned vrl_global_lua_protocol;
extern const unsigned vrl_global_lua_layout;   /* of its keys' values: in their names */

#define VRL_RCONN_REGISTRY_MAX 4096u  /* bytes of the hosts list an endpoint names */
#define VRL_RCONN_BACKOFF_MIN_NS (UINT64_C(100) * 1000000u)  /* first reconnect delay */
#define VRL_RCONN_BACKOFF_MAX_NS (UINT64_C(2) * 1000000000u) /* longest reconnect delay */

struct vrl_rconn {
	char name[128];             /* as configured */
	bool unix_socket;
	char path[108];             /* unix: the socket */
	char host[96];              /* tcp */
	int port;
	uint64_t seed;              /* its rendezvous hash seed */
	redisContext *c;            /* NULL: down */
	uint64_t next_try;          /* local ns: no connect before */
	uint64_t backoff;
	/* what its answers said */
	char epoch[64];             /* "" before the first */
	char full_epoch[64];        /* the epoch our last full report went to */
	uint64_t beat_at;           /* local ns: a call even without keys, from then */
	uint64_t vnow_us;           /* the epoch's virtual time in the last answer */
	uint64_t t_sent_prev;       /* local ns the last answered call was sent */
	char registry[VRL_RCONN_REGISTRY_MAX];
	uint64_t fence_left_us;
	bool lost;
	/* the sequence of our calls: (boot, mono µs), strictly growing */
	uint64_t boot;
	uint64_t seq;
	/* for the status */
	uint64_t down_since;        /* local ns of the first failure, 0 while up */
	uint64_t rtt_last, rtt_ewma, rtt_max, calls, failures;
	char error[160];
};

/* Parse @spec ("unix:/path", "host:port", "[v6]:port") into @r; 0, or
 * -EINVAL with the reason in @err. */
int vrl_rconn_parse(struct vrl_rconn *r, const char *spec, char *err, size_t len);

/*
 * Be connected, with the library loaded, at local time @now: connects
 * unless the backoff says wait, checks vrl_version and loads vrl.lua with
 * FUNCTION LOAD REPLACE when it is missing or older. 0, or -ENOTCONN (the
 * reason in r->error; the backoff grows).
 */
int vrl_rconn_ensure(struct vrl_rconn *r, uint64_t now, uint64_t timeout_ns);

/* Close after a failure at @now (a timeout, a protocol error): the next
 * connect waits for the backoff. @why goes to r->error. */
void vrl_rconn_fail(struct vrl_rconn *r, uint64_t now, const char *why);

/* Close for good. */
void vrl_rconn_close(struct vrl_rconn *r);

/* The next sequence number of a call at local time @now_us. */
uint64_t vrl_rconn_seq(struct vrl_rconn *r, uint64_t now_us);

/* Record one answered call's round trip @rtt (ns). */
void vrl_rconn_rtt(struct vrl_rconn *r, uint64_t rtt);

/* ---- arguments of a call ------------------------------------------------------ */

/* The strings of one command, in one growing buffer. */
struct vrl_rargs {
	char *buf;
	size_t len, cap;
	size_t *off, *lens;
	const char **argv;
	size_t n, capn;
};

void vrl_rargs_reset(struct vrl_rargs *a);
int vrl_rargs_str(struct vrl_rargs *a, const char *s, size_t n);
int vrl_rargs_u64(struct vrl_rargs *a, uint64_t v);
int vrl_rargs_i64(struct vrl_rargs *a, int64_t v);
/* The argument vector (valid until the next change), or NULL if out of memory. */
const char **vrl_rargs_argv(struct vrl_rargs *a);
void vrl_rargs_free(struct vrl_rargs *a);

#endif /* VRL_GLOBAL_REDIS_H */
