/*
 * bench_global.c - what one renewal costs: an engine renewing 1, 100 and
 * 10 000 keys of one kind against a private redis-server on a Unix
 * socket. Per size: the engine's round (hand-over to results: encoding,
 * the pipelined calls, decoding) and Redis's own time per FCALL (INFO
 * commandstats), per key, and the CPU time redis-server used (INFO cpu),
 * per key: the figure that a busy machine disturbs least. A report, not a test: run it with
 * `meson test -C build --benchmark --suite global -v` or directly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redis_fixture.h"

#define ROUNDS_MIN 20u
#define BUDGET_NS  (UINT64_C(2) * 1000000000u)   /* measured rounds per size, about */
#define HANG_NS    (UINT64_C(60) * 1000000000u)

static void wait_round(struct vrl_global *g, uint64_t after)
{
	uint64_t deadline = rfx_now() + HANG_NS;
	struct timespec ts = { 0, 20000 };

	while (vrl_global_rounds(g) <= after) {
		if (rfx_now() > deadline) {
			fprintf(stderr, "bench: a round did not end\n");
			exit(1);
		}
		nanosleep(&ts, NULL);
	}
}

/* Redis's time in FCALL since the last CONFIG RESETSTAT: calls, µs. */
static void fcall_stats(redisContext *c, unsigned long long *calls, unsigned long long *usec)
{
	redisReply *rep = redisCommand(c, "INFO commandstats");
	const char *p = rep && rep->type == REDIS_REPLY_STRING ? rep->str : "";

	*calls = *usec = 0;
	p = strstr(p, "cmdstat_fcall:");
	if (p)
		sscanf(p, "cmdstat_fcall:calls=%llu,usec=%llu", calls, usec);
	if (rep)
		freeReplyObject(rep);
}

/* CPU time redis-server used so far, µs (INFO cpu). */
static double cpu_us(redisContext *c)
{
	redisReply *rep = redisCommand(c, "INFO cpu");
	const char *p = rep && rep->type == REDIS_REPLY_STRING ? rep->str : "";
	double sys = 0, user = 0;
	const char *q;

	if ((q = strstr(p, "used_cpu_sys:")))
		sscanf(q, "used_cpu_sys:%lf", &sys);
	if ((q = strstr(p, "used_cpu_user:")))
		sscanf(q, "used_cpu_user:%lf", &user);
	if (rep)
		freeReplyObject(rep);
	return (sys + user) * 1e6;
}

static void run(const struct rfx *r, redisContext *c, enum vrl_global_kind kind, size_t n,
		bool busy)
{
	const char *spec[] = { r->spec };
	struct vrl_global_config cfg = { .redis = spec, .nredis = 1, .host = "bench",
					 .lease_ns = 1000000000u, .hosts = 1 };
	struct vrl_global_entry *e = calloc(n, sizeof(*e));
	const struct vrl_global_result *res;
	struct vrl_global *g;
	unsigned long long calls, usec;
	uint64_t t0, total = 0, worst = 0, elapsed;
	double cpu0;
	unsigned rounds = 0;
	char err[256];
	redisReply *rep;
	size_t ok = 0;

	for (size_t i = 0; i < n; i++) {
		char name[32];

		snprintf(name, sizeof(name), "k%u", (unsigned)i);
		e[i].kind = kind;
		e[i].count = kind == VRL_GLOBAL_RATE ? 1000 : 1000000;
		e[i].period_ns = kind == VRL_GLOBAL_RATE ? 1000000000u : 0;
		e[i].burst = 10;
		e[i].period_left_ns = 86400ull * 1000000000u;
		vrl_global_key_id(kind, kind == VRL_GLOBAL_RATE ? "bench.rate" : "bench.quota",
				  (const char *[]){ name }, 1, e[i].id);
	}
	if (vrl_global_start(&cfg, &g, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench: %s\n", err);
		exit(1);
	}
	/* until every key holds a share (a new Redis is fenced for a term) */
	for (uint64_t deadline = rfx_now() + HANG_NS; ok < n;) {
		uint64_t before = vrl_global_rounds(g);
		size_t got;

		for (size_t i = 0; i < n; i++)
			e[i].unmet_total++;
		vrl_global_submit(g, e, n);
		wait_round(g, before);
		got = vrl_global_collect(g, &res);
		ok = 0;
		for (size_t i = 0; i < got; i++)
			ok += res[i].status == VRL_GLOBAL_OK;
		if (rfx_now() > deadline) {
			fprintf(stderr, "bench: the keys got no share\n");
			exit(1);
		}
	}
	rep = redisCommand(c, "CONFIG RESETSTAT");
	freeReplyObject(rep);
	cpu0 = cpu_us(c);
	t0 = rfx_now();
	while (rounds < ROUNDS_MIN || rfx_now() - t0 < BUDGET_NS) {
		uint64_t before = vrl_global_rounds(g), s = rfx_now(), d;

		for (size_t i = 0; i < n && busy; i++)
			e[i].used_total += 1;
		vrl_global_submit(g, e, n);
		wait_round(g, before);
		d = rfx_now() - s;
		total += d;
		worst = d > worst ? d : worst;
		rounds++;
		vrl_global_collect(g, &res);
	}
	fcall_stats(c, &calls, &usec);
	cpu0 = cpu_us(c) - cpu0;
	elapsed = rfx_now() - t0;
	printf("%-5s %-4s %6zu keys: round %8.3f ms (worst %8.3f), Redis %8.3f ms a round "
	       "(%.1f FCALLs), %6.2f us a key a round (CPU %6.2f); Redis busy %5.1f%%\n",
	       kind == VRL_GLOBAL_RATE ? "rate" : "quota", busy ? "busy" : "idle", n,
	       (double)total / rounds / 1e6, (double)worst / 1e6, (double)usec / rounds / 1e3,
	       (double)calls / rounds, (double)usec / rounds / (double)n,
	       cpu0 / rounds / (double)n, 100.0 * (double)usec * 1000.0 / (double)elapsed);
	vrl_global_stop(g, NULL, 0);
	free(e);
}

int main(void)
{
	static const size_t sizes[] = { 1, 100, 10000 };
	struct rfx r;
	redisContext *c;

	if (!rfx_available()) {
		printf("redis-server is not installed (Debian: redis-server): skipped\n");
		return 77;
	}
	rfx_start(&r);
	c = rfx_connect(&r);
	printf("renewal rounds back to back, redis-server on a Unix socket, one host, "
	       "lease 1 s\n");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		run(&r, c, VRL_GLOBAL_RATE, sizes[i], true);
		run(&r, c, VRL_GLOBAL_RATE, sizes[i], false);
		run(&r, c, VRL_GLOBAL_QUOTA, sizes[i], true);
		run(&r, c, VRL_GLOBAL_QUOTA, sizes[i], false);
	}
	redisFree(c);
	rfx_stop(&r);
	return 0;
}
