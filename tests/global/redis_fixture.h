/*
 * redis_fixture.h - a private redis-server for one test: on a Unix socket
 * in a temporary directory (no TCP port), no persistence, stopped,
 * paused, killed and restarted empty on demand. And simulated hosts that
 * call vrl.lua's functions directly, as vrld's engine does.
 */
#ifndef VRL_TEST_REDIS_FIXTURE_H
#define VRL_TEST_REDIS_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

#include "global.h"

#define RFX_NS_PER_MS UINT64_C(1000000)

/* Redis key names as vrld's engine makes them (prefix "vrl:", the layout
 * of vrl.lua's values: redis.h's vrl_global_lua_layout, checked by
 * rfx_connect). A simulated host's key "x" is RFX_KEY_PREFIX "x". */
#define RFX_LAYOUT "2"
#define RFX_EPOCH_KEY "vrl:" RFX_LAYOUT ":e"
#define RFX_KEY_PREFIX "vrl:" RFX_LAYOUT ":k:"

struct rfx {
	char dir[64];
	char sock[128];
	char spec[140];         /* "unix:<sock>" for the engine */
	pid_t pid;
};

/* True when redis-server can be run; otherwise the test program should
 * print why and exit 77 (skipped). */
bool rfx_available(void);

/* Start a fresh redis-server; aborts the test on failure. */
void rfx_start(struct rfx *r);
/* SIGKILL and wait; the directory stays. */
void rfx_kill(struct rfx *r);
/* Kill it and start an empty one on the same socket. */
void rfx_restart_empty(struct rfx *r);
void rfx_pause(struct rfx *r);
void rfx_resume(struct rfx *r);
/* Stop it and remove the directory. */
void rfx_stop(struct rfx *r);

/* A connection with the vrl library loaded (FUNCTION LOAD REPLACE). */
redisContext *rfx_connect(const struct rfx *r);

uint64_t rfx_now(void);
/* Sleep @ms: only as the pace of a simulated tick, never to wait for an event. */
void rfx_pace(unsigned ms);

/* ---- simulated hosts: direct vrl_renew / vrl_release calls ------------------------- */

/* A simulated host's entry (the fields of vrl.lua's entry()). */
struct sim_entry {
	char kind;              /* 'r', 'w', 'q', 's', 'g' */
	const char *key;        /* Redis key suffix: "k:<this>" */
	uint64_t cap, per, bst, use, unmet, sa, sb, hold, cd;
	const char *known;
	int64_t ttl;
};

struct sim_answer {
	int code;
	uint64_t a, b, rel, target, cd;
	char holders[256];
};

struct sim_host {
	char name[VRL_GLOBAL_HOST_MAX + 1];   /* a host id, as long as vrld allows */
	uint64_t boot, seq;
	uint64_t fixed_seq;     /* nonzero: the next call's sequence, as is */
	char epoch[64];
	uint64_t t_sent_prev;   /* local ns its last answered call was sent */
	char registry[1024];
	uint64_t term_us, margin_us, hosts;
	/* the last answer's header */
	char status[16];
	uint64_t vnow, fence_left;
	int lost, complete;
	uint64_t t_send;        /* local ns of the last call */
};

void sim_host_init(struct sim_host *h, const char *name, uint64_t term_us, uint64_t margin_us,
		   uint64_t hosts);

/* One vrl_renew (or vrl_release) call of @n entries; answers in @out.
 * Returns 0, or -1 when Redis refused or answered stale. */
int sim_call(redisContext *c, struct sim_host *h, bool release, const struct sim_entry *e,
	     size_t n, struct sim_answer *out);

/* vrl_state of @key: per host max promise (a, b) or allocation. */
struct sim_state {
	char kind[4];
	uint64_t cap, bst, used;
	char st[8];
	unsigned nhosts;
	struct { char host[32]; uint64_t a, b, rel; } h[16];
	uint64_t vnow, fence_left;
};

int sim_state(redisContext *c, const char *key, struct sim_state *s);

#endif
