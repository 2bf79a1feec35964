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
 *   global_demo VRLD [--seconds S] [--lease MS] [--rate N] [--burst B]
 *               [--wide-burst B] [--workers W]
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

enum { L_API, L_WIDE, L_BENCH_G, L_BENCH_H, NLIM };
#define LOAD ((1u << L_API) | (1u << L_WIDE))   /* what the workers ask for */

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

/* The share of limit @l used over (from, to]: grants / (rate x time); a
 * burst can take it past 100% over a short interval. */
static double used(unsigned l, uint64_t from, uint64_t to)
{
	const struct gh_limit *x = &lim[l];
	double allowed = (double)x->count * (double)(to - from) / (double)x->period_ns;

	return 100.0 * (double)grants_in(l, UINT32_MAX, from, to) / allowed;
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

struct cost {
	uint64_t ns[2], n[2];   /* [1]: granted calls, [0]: denied ones */
};

/* @n vrl_acquire calls on limit @l's key from handle @c, each timed. */
static void acquire_ns(vrl_client *c, unsigned l, unsigned n, struct cost *k)
{
	struct vrl_request rq = { .api = lim[l].name };
	struct vrl_verdict v;

	for (unsigned i = 0; i < n; i++) {
		uint64_t t = vrl_now_ns();
		int ok = vrl_acquire(c, &rq, &v) == 0;

		k->ns[ok] += vrl_now_ns() - t;
		k->n[ok]++;
	}
}

/*
 * What an acquire costs on the global key and on the host key, from host
 * a alone: first three lease terms of demand on the global key (its
 * share grows to the whole limit), then five rounds of @n calls on each,
 * a tick apart (the share's credit is refilled at vrld's tick), each
 * call timed (the clock reads included, alike for both).
 */
static void acquire_cost(unsigned n, struct cost *g, struct cost *h)
{
	struct cost warm = { 0 };
	uint64_t until = vrl_now_ns() + 3 * run.lease_ns;
	vrl_client *c;

	if (vrl_open(run.host[0].seg, 0, &c) != 0)
		return;
	while (vrl_now_ns() < until) {
		acquire_ns(c, L_BENCH_G, 1000, &warm);
		gh_pace(MS);
	}
	acquire_ns(c, L_BENCH_H, 1000, &warm);
	for (int r = 0; r < 5; r++) {
		gh_pace(110 * MS);
		acquire_ns(c, L_BENCH_G, n, g);
		acquire_ns(c, L_BENCH_H, n, h);
	}
	vrl_close(c);
}

static void print_cost(const char *what, const struct cost *k)
{
	printf("  %-10s %7.1f ns granted (%llu calls), %7.1f ns denied (%llu calls)\n", what,
	       k->n[1] ? (double)k->ns[1] / (double)k->n[1] : 0.0, (unsigned long long)k->n[1],
	       k->n[0] ? (double)k->ns[0] / (double)k->n[0] : 0.0, (unsigned long long)k->n[0]);
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
	uint64_t secs, lease, term, t0, t1, t2, t_move, c0, c1;
	double hc0[GH_HOSTS], hc1[GH_HOSTS];
	unsigned workers;
	bool over;
	struct cost g_cost = { 0 }, h_cost = { 0 };

	if (argc < 2) {
		fprintf(stderr, "usage: %s VRLD [--seconds S] [--lease MS] [--rate N] [--burst B] "
			"[--wide-burst B] [--workers W]\n", argv[0]);
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
					.burst = arg_u64(argc, argv, "--burst", GH_HOSTS) };
	lim[L_WIDE] = lim[L_API];
	lim[L_WIDE].name = "api.wide";
	lim[L_WIDE].burst = arg_u64(argc, argv, "--wide-burst", lim[L_API].count * 3 / 10);
	lim[L_BENCH_G] = (struct gh_limit){ .name = "bench.global", .kind = GH_RATE,
					    .count = 100000000, .period_ns = VRL_NS_PER_S,
					    .burst = 60000 };
	lim[L_BENCH_H] = (struct gh_limit){ .name = "bench.host", .kind = GH_HOSTRATE,
					    .count = 100000000, .period_ns = VRL_NS_PER_S,
					    .burst = 60000 };
	printf("three hosts (a, b, c: one vrld each) and one redis-server on this machine;\n"
	       "global limits across the hosts: \"%s\" %llu/s burst %llu, \"%s\" %llu/s burst "
	       "%llu;\nlease %llu ms, %u workers per host asking for both\n\n", lim[L_API].name,
	       (unsigned long long)lim[L_API].count, (unsigned long long)lim[L_API].burst,
	       lim[L_WIDE].name, (unsigned long long)lim[L_WIDE].count,
	       (unsigned long long)lim[L_WIDE].burst, (unsigned long long)(lease / MS), workers);
	if (gh_start(&run, lim, NLIM, lease) != 0) {
		gh_stop(&run);
		printf("demo: the hosts did not start (their logs are above)\n");
		return 1;
	}

	/* the cost of an acquire, before the workers load the machine */
	acquire_cost(20000, &g_cost, &h_cost);

	gh_workers(&run, workers);
	/* spread: every host asks, as hard as it can */
	for (unsigned h = 0; h < GH_HOSTS; h++)
		gh_demand(&run, h, LOAD);
	gh_pace(4 * term);                      /* shares settle */
	t0 = vrl_now_ns();
	c0 = redis_fcalls();
	for (unsigned h = 0; h < GH_HOSTS; h++)
		hc0[h] = host_calls(h);
	gh_pace(secs * VRL_NS_PER_S);
	t1 = vrl_now_ns();
	c1 = redis_fcalls();
	for (unsigned h = 0; h < GH_HOSTS; h++)
		hc1[h] = host_calls(h);

	/* all load on a, then all of it moves to c */
	gh_demand(&run, 1, 0);
	gh_demand(&run, 2, 0);
	gh_pace(4 * term + secs * VRL_NS_PER_S / 2);
	t_move = vrl_now_ns();
	gh_demand(&run, 0, 0);
	gh_demand(&run, 2, LOAD);
	gh_pace(6 * term + secs * VRL_NS_PER_S / 2);
	t2 = vrl_now_ns();
	gh_workers_stop(&run);

	printf("load spread evenly over the hosts, %.1f s (after 4 lease terms to settle):\n",
	       (double)(t1 - t0) / 1e9);
	for (unsigned l = L_API; l <= L_WIDE; l++)
		printf("  %-9s global limit used %6.1f%%   (target >= 95%%)\n", lim[l].name,
		       used(l, t0, t1));
	for (unsigned h = 0; h < GH_HOSTS; h++) {
		double rps = (double)(grants_in(L_API, h, t0, t1) + grants_in(L_WIDE, h, t0, t1)) *
			     1e9 / (double)(t1 - t0);

		printf("  host %s  served %7.1f req/s   Redis calls %6.1f /s (its metrics)\n",
		       run.host[h].id, rps, (hc1[h] - hc0[h]) * 1e9 / (double)(t1 - t0));
	}
	printf("  Redis FCALLs, all hosts: %.1f /s (INFO commandstats)\n\n",
	       (double)(c1 - c0) * 1e9 / (double)(t1 - t0));

	printf("all load moved from host a to host c; use of each global limit per lease term:\n");
	printf("  term after the move   %9s %9s\n", lim[L_API].name, lim[L_WIDE].name);
	for (unsigned k = 0; k < 6; k++)
		printf("  %u                     %8.1f%% %8.1f%%\n", k + 1,
		       used(L_API, t_move + k * term, t_move + (k + 1) * term),
		       used(L_WIDE, t_move + k * term, t_move + (k + 1) * term));
	printf("  after three terms     %8.1f%% %8.1f%%   (target >= 90%%)\n\n",
	       used(L_API, t_move + 3 * term, t2), used(L_WIDE, t_move + 3 * term, t2));

	printf("an acquire from host a, one process, before the load (each call timed):\n");
	print_cost("global key", &g_cost);
	print_cost("host key", &h_cost);
	printf("\n");

	over = gh_check(&run, L_API).over;
	over |= gh_check(&run, L_WIDE).over;
	gh_stop(&run);
	if (over) {
		printf("demo: a global limit was broken in some interval (above)\n");
		return 1;
	}
	printf("demo: every interval of the merged grants kept each global limit; the figures\n"
	       "above are of this machine, as measured\n");
	return 0;
}
