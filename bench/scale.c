/*
 * scale.c - how acquire scales with the number of processes.
 *
 *   vrl-bench-scale [-p 1,2,4,8] [-d SECONDS] [-c CASES]
 *
 * For each process count N and each case, N forked processes run the case's
 * operation in a loop for the same wall-clock interval, started and stopped
 * together through one shared flag; the table gives the total throughput
 * and the mean time one process spends per operation. The cases:
 *
 *   floor   one clock read and one CAS on a shared word: what any shared
 *           counter costs, the bound below vrl on the same cache line
 *   mutex   a token bucket under a robust process-shared mutex
 *   hot     vrl_acquire_resolved, every process on one key (never denies)
 *   own     vrl_acquire_resolved, each process on a key of its own
 *   tight   one key at 1000/s, burst 10: the denial path under contention,
 *           and a check that the grants of all processes together stay
 *           within 1000 * elapsed + 10 (invariant 1, from the outside)
 *
 * The intervals are measured, not assumed: throughput is operations over
 * the parent's clock from the start flag to the last child's exit. This is
 * a benchmark, not a test: it reports what it measured and fails only when
 * an operation fails or the tight case over-grants.
 */
#include <errno.h>
#include <getopt.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"
#include "vrl.h"

#define MAX_PROCS 256
#define TIGHT_RATE 1000
#define TIGHT_BURST 10

struct board {
	atomic_int ready;                 /* children at the start line */
	atomic_int go;                    /* release: children may start */
	atomic_int stop;
	uint64_t ops[MAX_PROCS];          /* each child's count, written before exit */
	uint64_t granted[MAX_PROCS];
	int failed[MAX_PROCS];
};

enum kase { K_FLOOR, K_MUTEX, K_HOT, K_OWN, K_TIGHT, K_N };
static const char *const kase_name[K_N] = { "floor", "mutex", "hot", "own", "tight" };

struct fixture {
	vb_floor *floor;
	vb_mutex *mutex;
	vb_seg *seg;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int fixture_make(enum kase k, int nprocs, struct fixture *fx)
{
	memset(fx, 0, sizeof(*fx));
	switch (k) {
	case K_FLOOR:
		return vb_floor_create("scale", &fx->floor);
	case K_MUTEX:
		return vb_mutex_create("scale", &fx->mutex);
	case K_HOT:
		return vb_seg_one("scale", 1000000000000ull, 1000000000ull, 1000000000ull, 64,
				  &fx->seg);
	case K_OWN:
		return vb_seg_one("scale", 1000000000000ull, 1000000000ull, 1000000000ull,
				  (uint64_t)nprocs * 4 + 64, &fx->seg);
	case K_TIGHT:
		return vb_seg_one("scale", TIGHT_RATE, 1000000000ull, TIGHT_BURST, 64, &fx->seg);
	default:
		return -EINVAL;
	}
}

static void fixture_drop(struct fixture *fx)
{
	vb_floor_destroy(fx->floor);
	vb_mutex_destroy(fx->mutex);
	vb_seg_destroy(fx->seg);
}

/* One child: get ready, wait for go, loop until stop, write the counts. */
static void child(struct board *b, int id, enum kase k, struct fixture *fx)
{
	uint64_t ops = 0, granted = 0;
	char token[32];
	int rc = 0;

	if (fx->seg) {
		snprintf(token, sizeof(token), k == K_OWN ? "tok-%d" : "tok-hot", id);
		rc = vb_resolve(fx->seg, token);
	}
	/* release: the parent counts ready children before it says go */
	atomic_fetch_add_explicit(&b->ready, 1, memory_order_release);
	while (!atomic_load_explicit(&b->go, memory_order_acquire))
		;
	while (rc == 0 && !atomic_load_explicit(&b->stop, memory_order_relaxed)) {
		switch (k) {
		case K_FLOOR:
			rc = vb_floor_op(fx->floor);
			break;
		case K_MUTEX:
			rc = vb_mutex_op(fx->mutex);
			if (rc == 1)
				rc = 0;
			else if (rc == 0)
				granted++;
			break;
		default:
			rc = vb_acquire_resolved(fx->seg);
			if (rc == 0)
				granted++;
			else if (rc == VRL_EDENIED)
				rc = 0;       /* denied: counted as an op, not a grant */
			break;
		}
		ops++;
	}
	b->ops[id] = ops;
	b->granted[id] = granted;
	b->failed[id] = rc;
	_exit(0);
}

struct result {
	double seconds;
	uint64_t ops, granted;
	int failed;
};

static int run_case(enum kase k, int nprocs, double seconds, struct result *res)
{
	struct board *b = mmap(NULL, sizeof(*b), PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct fixture fx;
	pid_t pids[MAX_PROCS];
	struct timespec nap = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };
	uint64_t t0, t1;
	int i, rc, started = 0;

	if (b == MAP_FAILED)
		return -errno;
	rc = fixture_make(k, nprocs, &fx);
	if (rc) {
		munmap(b, sizeof(*b));
		return rc;
	}
	for (i = 0; i < nprocs; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			rc = -errno;
			break;
		}
		if (pids[i] == 0)
			child(b, i, k, &fx);
		started++;
	}
	/* acquire: pairs with each child's release on ready */
	while (rc == 0 && atomic_load_explicit(&b->ready, memory_order_acquire) < started)
		;
	t0 = now_ns();
	/* release: children see the fixture and board as set up */
	atomic_store_explicit(&b->go, 1, memory_order_release);
	if (rc == 0)
		nanosleep(&nap, NULL);
	atomic_store_explicit(&b->stop, 1, memory_order_relaxed);
	atomic_store_explicit(&b->go, 1, memory_order_release);
	for (i = 0; i < started; i++)
		waitpid(pids[i], NULL, 0);
	t1 = now_ns();

	memset(res, 0, sizeof(*res));
	res->seconds = (double)(t1 - t0) / 1e9;
	for (i = 0; i < started; i++) {
		res->ops += b->ops[i];
		res->granted += b->granted[i];
		if (b->failed[i] && !res->failed)
			res->failed = b->failed[i];
	}
	fixture_drop(&fx);
	munmap(b, sizeof(*b));
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vrl-bench-scale [-p N,N,...] [-d SECONDS] [-c CASE,...]\n"
		   "  -p  process counts (default 1,2)\n"
		   "  -d  seconds per run (default 1)\n"
		   "  -c  cases among floor,mutex,hot,own,tight (default all)\n");
}

int main(int argc, char **argv)
{
	int procs[64], nprocs = 0, opt, status = 0;
	bool want[K_N];
	double seconds = 1.0;
	char *list = NULL, *cases = NULL, *tok, *save;

	for (int k = 0; k < K_N; k++)
		want[k] = true;
	while ((opt = getopt(argc, argv, "p:d:c:h")) != -1) {
		switch (opt) {
		case 'p': list = optarg; break;
		case 'd': seconds = strtod(optarg, NULL); break;
		case 'c': cases = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (seconds <= 0 || seconds > 600) {
		fprintf(stderr, "vrl-bench-scale: -d must be in (0, 600] seconds\n");
		return 2;
	}
	for (tok = strtok_r(list ? list : (char[]){ "1,2" }, ",", &save); tok && nprocs < 64;
	     tok = strtok_r(NULL, ",", &save)) {
		int n = atoi(tok);

		if (n < 1 || n > MAX_PROCS) {
			fprintf(stderr, "vrl-bench-scale: -p %s: from 1 to %d processes\n", tok,
				MAX_PROCS);
			return 2;
		}
		procs[nprocs++] = n;
	}
	if (cases) {
		for (int k = 0; k < K_N; k++)
			want[k] = false;
		for (tok = strtok_r(cases, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			int k;

			for (k = 0; k < K_N && strcmp(tok, kase_name[k]); k++)
				;
			if (k == K_N) {
				fprintf(stderr, "vrl-bench-scale: -c %s: no such case\n", tok);
				return 2;
			}
			want[k] = true;
		}
	}

	printf("%-6s %5s %12s %12s %10s  %s\n", "case", "procs", "total Mop/s", "ns/op/proc",
	       "seconds", "grants (tight: bound)");
	for (int k = 0; k < K_N; k++) {
		if (!want[k])
			continue;
		for (int i = 0; i < nprocs; i++) {
			struct result r;
			int rc = run_case((enum kase)k, procs[i], seconds, &r);

			if (rc || r.failed) {
				fprintf(stderr, "vrl-bench-scale: %s x%d failed: %d %d\n",
					kase_name[k], procs[i], rc, r.failed);
				status = 1;
				continue;
			}
			printf("%-6s %5d %12.2f %12.1f %10.3f", kase_name[k], procs[i],
			       (double)r.ops / r.seconds / 1e6,
			       r.ops ? r.seconds * 1e9 * procs[i] / (double)r.ops : 0.0,
			       r.seconds);
			if (k == K_TIGHT) {
				double bound = TIGHT_RATE * r.seconds + TIGHT_BURST;

				printf("  %llu (<= %.0f)%s", (unsigned long long)r.granted, bound,
				       (double)r.granted > bound ? "  OVER-GRANT" : "");
				if ((double)r.granted > bound)
					status = 1;
			} else if (k != K_FLOOR) {
				printf("  %llu", (unsigned long long)r.granted);
			}
			printf("\n");
			fflush(stdout);
		}
	}
	return status;
}
