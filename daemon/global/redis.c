/*
 * redis.c - one Redis endpoint: connection, timeouts, backoff, library.
 *
 * hiredis's blocking API on the engine's thread: a context is connected
 * with the connect timeout, then given the command timeout as its socket
 * timeouts (SO_RCVTIMEO/SO_SNDTIMEO), so no read or write waits longer. A
 * context that failed once (a timeout included: its stream may hold half a
 * reply) is closed, never reused; the next connect waits for a backoff
 * that doubles from 100 ms to 2 s.
 *
 * The library: FCALL_RO vrl_version says the version and protocol Redis
 * holds. Missing (a new or wiped Redis, FUNCTION FLUSH) or older: FUNCTION
 * LOAD REPLACE vrl.lua. Newer with our protocol: used as it is (a host not
 * yet upgraded must not downgrade the others). Another protocol: refused.
 */
#include "redis.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

static struct timeval tv_of(uint64_t ns)
{
	struct timeval tv = { .tv_sec = (time_t)(ns / 1000000000u),
			      .tv_usec = (suseconds_t)(ns % 1000000000u / 1000u) };

	if (tv.tv_sec == 0 && tv.tv_usec == 0)
		tv.tv_usec = 1;
	return tv;
}

int vrl_rconn_parse(struct vrl_rconn *r, const char *spec, char *err, size_t len)
{
	const char *colon;
	char *end;
	long port;

	memset(r, 0, sizeof(*r));
	if (!spec || !*spec || strlen(spec) >= sizeof(r->name)) {
		snprintf(err, len, "global.redis: an endpoint is empty or longer than %zu bytes",
			 sizeof(r->name) - 1);
		return -EINVAL;
	}
	strcpy(r->name, spec);
	r->seed = XXH3_64bits(spec, strlen(spec));
	if (strncmp(spec, "unix:", 5) == 0) {
		if (spec[5] != '/' || strlen(spec + 5) >= sizeof(r->path)) {
			snprintf(err, len, "global.redis: \"%s\": a unix endpoint needs an absolute "
				 "socket path under %zu bytes", spec, sizeof(r->path));
			return -EINVAL;
		}
		r->unix_socket = true;
		strcpy(r->path, spec + 5);
		return 0;
	}
	colon = strrchr(spec, ':');
	if (!colon || colon == spec) {
		snprintf(err, len, "global.redis: \"%s\": write \"unix:/path/redis.sock\" or "
			 "\"host:port\"", spec);
		return -EINVAL;
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 1 || port > 65535) {
		snprintf(err, len, "global.redis: \"%s\": the port must be 1..65535", spec);
		return -EINVAL;
	}
	if (spec[0] == '[' && colon[-1] == ']')
		snprintf(r->host, sizeof(r->host), "%.*s", (int)(colon - spec - 2), spec + 1);
	else
		snprintf(r->host, sizeof(r->host), "%.*s", (int)(colon - spec), spec);
	r->port = (int)port;
	return 0;
}

void vrl_rconn_close(struct vrl_rconn *r)
{
	if (r->c)
		redisFree(r->c);
	r->c = NULL;
}

void vrl_rconn_fail(struct vrl_rconn *r, uint64_t now, const char *why)
{
	vrl_rconn_close(r);
	snprintf(r->error, sizeof(r->error), "%s", why);
	r->failures++;
	if (r->down_since == 0)
		r->down_since = now ? now : 1;
	r->backoff = r->backoff ? r->backoff * 2 : VRL_RCONN_BACKOFF_MIN_NS;
	if (r->backoff > VRL_RCONN_BACKOFF_MAX_NS)
		r->backoff = VRL_RCONN_BACKOFF_MAX_NS;
	r->next_try = now + r->backoff;
}

static int load_library(struct vrl_rconn *r, uint64_t now)
{
	const char *argv[] = { "FUNCTION", "LOAD", "REPLACE", vrl_global_lua };
	size_t lens[] = { 8, 4, 7, vrl_global_lua_len };
	redisReply *rep = redisCommandArgv(r->c, 4, argv, lens);
	char why[160];

	if (!rep) {
		vrl_rconn_fail(r, now, "FUNCTION LOAD: no answer");
		return -ENOTCONN;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		snprintf(why, sizeof(why), "FUNCTION LOAD vrl.lua refused: %s", rep->str);
		freeReplyObject(rep);
		vrl_rconn_fail(r, now, why);
		return -ENOTCONN;
	}
	freeReplyObject(rep);
	return 0;
}

/* Check the library Redis holds; load ours when missing or older. */
static int check_library(struct vrl_rconn *r, uint64_t now)
{
	redisReply *rep = redisCommand(r->c, "FCALL_RO vrl_version 0");
	long long ver, proto;
	char why[160];

	if (!rep) {
		vrl_rconn_fail(r, now, "vrl_version: no answer");
		return -ENOTCONN;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		int missing = strstr(rep->str, "not found") != NULL;

		snprintf(why, sizeof(why), "vrl_version: %s (Redis 7 or later is needed)", rep->str);
		freeReplyObject(rep);
		if (missing)
			return load_library(r, now);
		vrl_rconn_fail(r, now, why);
		return -ENOTCONN;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_INTEGER ||
	    rep->element[1]->type != REDIS_REPLY_INTEGER) {
		freeReplyObject(rep);
		vrl_rconn_fail(r, now, "vrl_version: an answer of another shape");
		return -ENOTCONN;
	}
	ver = rep->element[0]->integer;
	proto = rep->element[1]->integer;
	freeReplyObject(rep);
	if (ver < (long long)vrl_global_lua_version)
		return load_library(r, now);
	if (proto != (long long)vrl_global_lua_protocol) {
		snprintf(why, sizeof(why), "Redis holds vrl library version %lld (protocol %lld); "
			 "this vrld speaks protocol %u: upgrade it", ver, proto,
			 vrl_global_lua_protocol);
		vrl_rconn_fail(r, now, why);
		return -ENOTCONN;
	}
	return 0;
}

int vrl_rconn_ensure(struct vrl_rconn *r, uint64_t now, uint64_t timeout_ns)
{
	struct timeval tv = tv_of(timeout_ns);
	char why[160];

	if (r->c)
		return 0;
	if (now < r->next_try)
		return -ENOTCONN;
	r->c = r->unix_socket ? redisConnectUnixWithTimeout(r->path, tv)
			      : redisConnectWithTimeout(r->host, r->port, tv);
	if (!r->c || r->c->err) {
		snprintf(why, sizeof(why), "connect: %s", r->c ? r->c->errstr : "out of memory");
		vrl_rconn_fail(r, now, why);
		return -ENOTCONN;
	}
	if (redisSetTimeout(r->c, tv) != REDIS_OK) {
		vrl_rconn_fail(r, now, "cannot set the command timeout");
		return -ENOTCONN;
	}
	if (check_library(r, now) != 0)
		return -ENOTCONN;
	r->backoff = 0;
	return 0;
}

uint64_t vrl_rconn_seq(struct vrl_rconn *r, uint64_t now_us)
{
	r->seq = now_us > r->seq ? now_us : r->seq + 1;
	return r->seq;
}

void vrl_rconn_rtt(struct vrl_rconn *r, uint64_t rtt)
{
	r->rtt_last = rtt;
	if (rtt > r->rtt_max)
		r->rtt_max = rtt;
	/* EWMA with weight 1/8, as TCP's SRTT */
	r->rtt_ewma = r->rtt_ewma ? r->rtt_ewma - r->rtt_ewma / 8 + rtt / 8 : rtt;
}

/* ---- arguments ------------------------------------------------------------------- */

void vrl_rargs_reset(struct vrl_rargs *a)
{
	a->len = 0;
	a->n = 0;
}

int vrl_rargs_str(struct vrl_rargs *a, const char *s, size_t n)
{
	if (a->n == a->capn) {
		size_t cap = a->capn ? a->capn * 2 : 256;
		size_t *off = realloc(a->off, cap * sizeof(*off));

		if (!off)
			return -ENOMEM;
		a->off = off;
		off = realloc(a->lens, cap * sizeof(*off));
		if (!off)
			return -ENOMEM;
		a->lens = off;
		a->capn = cap;
	}
	if (a->len + n + 1 > a->cap) {
		size_t cap = a->cap ? a->cap : 4096;
		char *buf;

		while (cap < a->len + n + 1)
			cap *= 2;
		buf = realloc(a->buf, cap);
		if (!buf)
			return -ENOMEM;
		a->buf = buf;
		a->cap = cap;
	}
	memcpy(a->buf + a->len, s, n);
	a->buf[a->len + n] = '\0';
	a->off[a->n] = a->len;
	a->lens[a->n++] = n;
	a->len += n + 1;
	return 0;
}

int vrl_rargs_u64(struct vrl_rargs *a, uint64_t v)
{
	char s[24];
	int n = snprintf(s, sizeof(s), "%llu", (unsigned long long)v);

	return vrl_rargs_str(a, s, (size_t)n);
}

int vrl_rargs_i64(struct vrl_rargs *a, int64_t v)
{
	char s[24];
	int n = snprintf(s, sizeof(s), "%lld", (long long)v);

	return vrl_rargs_str(a, s, (size_t)n);
}

const char **vrl_rargs_argv(struct vrl_rargs *a)
{
	const char **argv = realloc(a->argv, (a->n ? a->n : 1) * sizeof(*argv));

	if (!argv)
		return NULL;
	a->argv = argv;
	for (size_t i = 0; i < a->n; i++)
		argv[i] = a->buf + a->off[i];
	return argv;
}

void vrl_rargs_free(struct vrl_rargs *a)
{
	free(a->buf);
	free(a->off);
	free(a->lens);
	free(a->argv);
	memset(a, 0, sizeof(*a));
}
