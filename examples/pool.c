/*
 * pool.c - a pool of worker processes sharing the published limits through
 * vrl, as a prefork server would. Each worker acquires before every
 * (simulated) upstream call; at the end the pool reports what it got, next
 * to what the limits allow.
 *
 *   pool [-s SEGMENT] [-n WORKERS] [-d SECONDS]
 *
 * Against the built-in default config: two Samsara tokens of one
 * organisation (150/s per token, 200/s per organisation) and the Smartcar
 * application bucket (120, then 2 per minute).
 */
#include <getopt.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vrl.h>

#define NS 1000000000.0

struct tally {
	_Atomic unsigned long samsara[2];   /* grants per token */
	_Atomic unsigned long smartcar;
	_Atomic unsigned long errors;
};

static void work(const char *seg, int id, double seconds, struct tally *t)
{
	static const char *tokens[2] = { "samsara-token-a", "samsara-token-b" };
	vrl_client *c;
	uint64_t until;
	int rc = vrl_open(seg, 0, &c);

	if (rc) {
		fprintf(stderr, "worker %d: %s\n", id, vrl_strerror(rc));
		atomic_fetch_add(&t->errors, 1);
		_exit(1);
	}
	until = vrl_now_ns() + (uint64_t)(seconds * NS);
	for (unsigned i = (unsigned)id; vrl_now_ns() < until; i++) {
		struct vrl_request sam = { .api = "samsara", .endpoint = "GET /fleet/vehicles",
					   .token = tokens[i % 2], .org = "acme" };
		struct vrl_request car = { .api = "smartcar", .vehicle = "vin-1" };
		uint64_t left = until - vrl_now_ns();

		if (vrl_acquire_wait(c, &sam, left < 100000000u ? left : 100000000u, NULL) == 0)
			atomic_fetch_add(&t->samsara[i % 2], 1);
		if (vrl_acquire(c, &car, NULL) == 0)
			atomic_fetch_add(&t->smartcar, 1);
	}
	vrl_close(c);
	_exit(0);
}

int main(int argc, char **argv)
{
	const char *seg = NULL;
	int workers = 16, ch;
	double seconds = 5;
	struct tally *t = mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	while ((ch = getopt(argc, argv, "s:n:d:")) != -1) {
		if (ch == 's')
			seg = optarg;
		else if (ch == 'n')
			workers = atoi(optarg);
		else if (ch == 'd')
			seconds = atof(optarg);
		else
			return 2;
	}
	if (t == MAP_FAILED || workers < 1 || seconds <= 0)
		return 2;
	printf("pool: %d worker processes for %.1f s on one vrl segment\n", workers, seconds);
	for (int i = 0; i < workers; i++)
		if (fork() == 0)
			work(seg, i, seconds, t);
	while (wait(NULL) > 0)
		;
	unsigned long a = t->samsara[0], b = t->samsara[1];
	printf("samsara  token a: %6lu  (%.1f/s, limit 150/s per token)\n", a, a / seconds);
	printf("samsara  token b: %6lu  (%.1f/s, limit 150/s per token)\n", b, b / seconds);
	printf("samsara  org    : %6lu  (%.1f/s, limit 200/s per organisation)\n", a + b,
	       (a + b) / seconds);
	printf("smartcar app    : %6lu  (limit: bucket of 120, refilling 2/min)\n",
	       (unsigned long)t->smartcar);
	return t->errors ? 1 : 0;
}
