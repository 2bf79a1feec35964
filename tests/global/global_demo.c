/*
 * global_demo.c - three hosts on one machine (three vrld, one Redis), a
 * pool of workers per host on one global rate limit, and a report: the
 * share of the global limit used while the load is spread, and after it
 * all moves from host a to host c; what an acquire costs on a global key
 * and on a host key; Redis's calls per second per host next to the
 * requests served. A benchmark's figures, of this machine, printed as
 * measured; the only thing it fails on is a limit broken (an interval of
 * the merged grants over it), or hosts that did not start.
 *
 *   global_demo VRLD [--seconds S] [--lease MS] [--rate N] [--burst B] [--workers W]
 *
 * examples/global/demo.sh builds and runs it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../fault/vrld_run.h"
#include "clock.h"
#include "hosts.h"
#include "vrl.h"

#define MS GH_NS_PER_MS

enum { L_API, L_BENCH_G, L_BENCH_H, NLIM };

static struct gh_run run;
static struct gh_limit lim[NLIM];

/* Grants of limit @l in (from, to], all hosts or host @h (UINT32_MAX). */
static uint64_t grants_in(uint32_t l, uint32_t h, uint64_t from, uint64_t to)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < GH_HOSTS * GH_WORKERS_MAX; i++) {
		const struct gh_worker_log *w = &run.sh->w[i];
		uint64_t m = atomic_load_explicit(&w->n, memory_order_acquire);

		for (uint64_t k = 0; k < m; k++)
			if (w->g[k].limit == l && (h == UINT32_MAX || w->g[k].host == h) &&
			    w->g[k].at > from && w->g[k].at <= to)
				n++;
	}
	return n;
}

/* The share of the limit used over (from, to]: grants / (rate x time). */
static double used(uint64_t from, uint64_t to)
{
	const struct gh_limit *l = &lim[L_API];
	double allowed = (double)l->count * (double)(to - from) / (double)l->period_ns;

	return 100.0 * (double)grants_in(L_API, UINT32_MAX, from, to) / allowed;
}

/* FCALL calls Redis has run so far (INFO commandstats). */
static uint64_t redis_fcalls(void)
{
	redisReply *rep = redisCommand(run.rc, "INFO commandstats");
	const char *p;
	uint64_t n = 0;

	if (rep && rep->type == REDIS_REPLY_STRING) {
		p = strstr(rep->str, "cmdstat_fcall:calls=");
		n = p ? strtoull(p + strlen("cmdstat_fcall:calls="), NULL, 10) : 0;
	}
	if (rep)
		freeReplyObject(rep);
	return n;
}

/* vrl_global_redis_calls_total of host @h's metrics textfile. */
static double host_calls(unsigned h)
{
	char text[65536];
	FILE *f = fopen(run.host[h].prom, "r");
	size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
	const char *p;

	if (f)
		fclose(f);
	text[n] = '\0';
	p = strstr(text, "\nvrl_global_redis_calls_total{");
	p = p ? strchr(p, '}') : NULL;
	return p ? strtod(p + 1, NULL) : -1;
}

/* ns per vrl_acquire on limit @l's key from handle @c, over @n calls; the
 * grants counted in @ok. */
static double acquire_ns(vrl_client *c, unsigned l, unsigned n, uint64_t *ok)
{
	struct vrl_request rq = { .api = lim[l].name };
	struct vrl_verdict v;
	uint64_t t0 = vrl_now_ns();

	for (unsigned i = 0; i < n; i++)
		*ok += vrl_acquire(c, &rq, &v) == 0;
	return (double)(vrl_now_ns() - t0) / n;
}

/* The cost of an acquire on the global and the host key, from host a: the
 * best of five rounds of @n calls each, alternating (a busy machine's
 * noise only adds); the share granted in @ok_g, @ok_h. */
static void acquire_cost(unsigned n, double *g_ns, double *h_ns, double *ok_g, double *ok_h)
{
	uint64_t og = 0, oh = 0, warm = 0;
	vrl_client *c;

	*g_ns = *h_ns = -1;
	if (vrl_open(run.host[0].seg, 0, &c) != 0)
		return;
	acquire_ns(c, L_BENCH_G, 1000, &warm);  /* the keys made, a lease taken */
	acquire_ns(c, L_BENCH_H, 1000, &warm);
	for (int r = 0; r < 5; r++) {
		double g = acquire_ns(c, L_BENCH_G, n, &og), h = acquire_ns(c, L_BENCH_H, n, &oh);

		*g_ns = *g_ns < 0 || g < *g_ns ? g : *g_ns;
		*h_ns = *h_ns < 0 || h < *h_ns ? h : *h_ns;
	}
	vrl_close(c);
	*ok_g = 100.0 * (double)og / (5.0 * n);
	*ok_h = 100.0 * (double)oh / (5.0 * n);
}

static uint64_t arg_u64(int argc, char **argv, const char *name, uint64_t def)
{
	for (int i = 2; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return strtoull(argv[i + 1], NULL, 10);
	return def;
}

int main(int argc, char **argv)
{
	uint64_t secs, lease, term, t0, t1, t_move, c0, c1, hc0[GH_HOSTS], hc1[GH_HOSTS];
	unsigned workers;
	bool over;
	double g_ns, h_ns, g_ok = 0, h_ok = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s VRLD [--seconds S] [--lease MS] [--rate N] [--burst B] "
			"[--workers W]\n", argv[0]);
		return 2;
	}
	vrld_path = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!rfx_available()) {
		printf("redis-server is not installed (Debian: redis-server)\n");
		return 77;
	}
	secs = arg_u64(argc, argv, "--seconds", 5);
	lease = arg_u64(argc, argv, "--lease", 250) * MS;
	workers = (unsigned)arg_u64(argc, argv, "--workers", 2);
	term = lease;
	lim[L_API] = (struct gh_limit){ .name = "api", .kind = GH_RATE,
					.count = arg_u64(argc, argv, "--rate", 300),
					.period_ns = VRL_NS_PER_S,
					.burst = arg_u64(argc, argv, "--burst", 6) };
	lim[L_BENCH_G] = (struct gh_limit){ .name = "bench.global", .kind = GH_RATE,
					    .count = 100000000, .period_ns = VRL_NS_PER_S,
					    .burst = 60000 };
	lim[L_BENCH_H] = (struct gh_limit){ .name = "bench.host", .kind = GH_HOSTRATE,
					    .count = 100000000, .period_ns = VRL_NS_PER_S,
					    .burst = 60000 };
	printf("three hosts (a, b, c: one vrld each) and one redis-server on this machine;\n"
	       "global limit \"api\": %llu/s burst %llu across the hosts, lease %llu ms,\n"
	       "%u workers per host\n\n", (unsigned long long)lim[L_API].count,
	       (unsigned long long)lim[L_API].burst, (unsigned long long)(lease / MS), workers);
	if (gh_start(&run, lim, NLIM, lease) != 0) {
		gh_stop(&run);
		printf("demo: the hosts did not start (their logs are above)\n");
		return 1;
	}

	/* the cost of an acquire, before the workers load the machine */
	acquire_cost(100000, &g_ns, &h_ns, &g_ok, &h_ok);

	gh_workers(&run, workers);
	/* spread: every host asks, as hard as it can */
	for (unsigned h = 0; h < GH_HOSTS; h++)
		gh_demand(&run, h, 1u << L_API);
	gh_pace(4 * term);                      /* shares settle */
	t0 = vrl_now_ns();
	c0 = redis_fcalls();
	for (unsigned h = 0; h < GH_HOSTS; h++)
		hc0[h] = (uint64_t)host_calls(h);
	gh_pace(secs * VRL_NS_PER_S);
	t1 = vrl_now_ns();
	c1 = redis_fcalls();
	for (unsigned h = 0; h < GH_HOSTS; h++)
		hc1[h] = (uint64_t)host_calls(h);

	/* all load on a, then all of it moves to c */
	gh_demand(&run, 1, 0);
	gh_demand(&run, 2, 0);
	gh_pace(4 * term + secs * VRL_NS_PER_S / 2);
	t_move = vrl_now_ns();
	gh_demand(&run, 0, 0);
	gh_demand(&run, 2, 1u << L_API);
	gh_pace(3 * term + secs * VRL_NS_PER_S / 2);
	gh_workers_stop(&run);

	printf("load spread evenly, %.1f s (after %llu lease terms to settle):\n",
	       (double)(t1 - t0) / 1e9, 4ull);
	printf("  global limit used      %6.1f%%   (target >= 95%%)\n", used(t0, t1));
	for (unsigned h = 0; h < GH_HOSTS; h++) {
		double rps = (double)grants_in(L_API, h, t0, t1) * 1e9 / (double)(t1 - t0);
		double cps = hc0[h] <= hc1[h] ? (double)(hc1[h] - hc0[h]) * 1e9 /
						   (double)(t1 - t0) : -1;

		printf("  host %s  served %7.1f req/s   Redis calls %6.1f /s (its metrics)\n",
		       run.host[h].id, rps, cps);
	}
	printf("  Redis FCALLs, all hosts: %.1f /s (INFO commandstats)\n\n",
	       (double)(c1 - c0) * 1e9 / (double)(t1 - t0));

	printf("all load moved from host a to host c; use of the global limit per lease term:\n");
	{
		int reached = -1;

		for (unsigned k = 0; k < 6; k++) {
			double u = used(t_move + k * term, t_move + (k + 1) * term);

			printf("  term %u after the move  %6.1f%%   (a %llu, c %llu grants)\n", k + 1, u,
			       (unsigned long long)grants_in(L_API, 0, t_move + k * term,
							     t_move + (k + 1) * term),
			       (unsigned long long)grants_in(L_API, 2, t_move + k * term,
							     t_move + (k + 1) * term));
			if (reached < 0 && u >= 90.0)
				reached = (int)k + 1;
		}
		if (reached > 0)
			printf("  >= 90%% from term %d on   (target: within 3)\n", reached);
		else
			printf("  not >= 90%% in any of the six terms (target: within 3)\n");
	}
	printf("  after three terms      %6.1f%%\n\n", used(t_move + 3 * term, vrl_now_ns()));

	printf("an acquire from host a (one process, before the load; best of 5 x 100000 calls):\n");
	printf("  global key  %7.1f ns   (%5.1f%% granted)\n", g_ns, g_ok);
	printf("  host key    %7.1f ns   (%5.1f%% granted)\n\n", h_ns, h_ok);

	over = gh_check(&run, L_API).over;
	gh_stop(&run);
	if (over) {
		printf("demo: the global limit was broken in some interval (above)\n");
		return 1;
	}
	printf("demo: every interval of the merged grants kept the global limit; the figures\n"
	       "above are of this machine, as measured\n");
	return 0;
}
