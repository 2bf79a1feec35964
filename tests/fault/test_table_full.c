/*
 * test_table_full.c - a full key table under load, fail closed and open.
 *
 * vrld serves a tiny table (segment.keys: 8, so the 64-slot minimum) and
 * two limits: "each", keyed by a vehicle that is new on every request (so
 * every request inserts a key), and "all", one key for everyone with a
 * budget of BUDGET. Forked workers acquire until they have made their
 * requests. Then:
 *
 *   on_full: deny   requests that find no slot fail with VRL_EFULL and are
 *                   never granted; grants stay within BUDGET;
 *   on_full: allow  some requests are granted with VRL_VERDICT_TABLE_FULL,
 *                   "all" still holds them to BUDGET (its key has a slot);
 *
 * and in both the segment still validates, its header's table_full counter
 * moved, and vrld's vrl_table_full_total metric says the same.
 *
 * usage: test_table_full VRLD
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"
#include "vrld_run.h"

#define WAIT_NS   (60 * NS_PER_S)   /* only a hang takes this long */
#define WORKERS   4
#define REQUESTS  60            /* per worker: 240 new keys for 64 slots */
#define BUDGET    100           /* grants of "all" in the test's hour */

static char dir[256], conf[300], logpath[300], seg[VRL_SHM_NAME_MAX];
static char page[1 << 16];
static pid_t vrld_pid;

/* What the workers saw, summed. */
struct tally {
	_Atomic uint64_t granted, granted_full, denied, full, other;
	_Atomic uint64_t unflagged;   /* VRL_EFULL without VRL_VERDICT_TABLE_FULL */
};

static int teardown(void **state)
{
	(void)state;
	if (vrld_pid > 0 && kill(vrld_pid, SIGKILL) == 0)
		vrld_wait_exit(vrld_pid, WAIT_NS);
	vrld_pid = 0;
	vrl_seg_unlink(seg);
	return 0;
}

static unsigned port_from_log(void)
{
	unsigned port = vrld_metrics_port(logpath);

	assert_true(port > 0);
	return port;
}

static double value_of(const char *series)
{
	double v = vrld_metric(page, series);

	if (isnan(v))
		fail_msg("no series %s in:\n%s", series, page);
	return v;
}


static void start(const char *on_full)
{
	char text[1024];

	snprintf(dir, sizeof(dir), "/tmp/vrl-full-%d", (int)getpid());
	snprintf(seg, sizeof(seg), "/vrl-test-full-%d", (int)getpid());
	mkdir(dir, 0700);
	snprintf(conf, sizeof(conf), "%s/vrl.yaml", dir);
	snprintf(logpath, sizeof(logpath), "%s/vrld.log", dir);
	vrl_seg_unlink(seg);
	snprintf(text, sizeof(text),
		 "segment: {name: \"%s\", keys: 8, on_full: %s}\n"
		 "daemon: {metrics: \"127.0.0.1:0\"}\n"
		 "limits:\n"
		 "  - name: all\n    match: {api: f}\n    rate: %d/h\n    burst: %d\n"
		 "  - name: each\n    match: {api: f}\n    per: [vehicle]\n    rate: 1/min\n",
		 seg, on_full, BUDGET, BUDGET);
	vrld_write_file(conf, text);
	vrld_pid = vrld_start(conf, NULL, logpath);
	assert_true(vrld_wait_ready(seg, vrld_pid, WAIT_NS));
}

static void stop(void)
{
	assert_int_equal(vrld_stop_clean(vrld_pid, WAIT_NS, seg, dir), 0);
	vrld_pid = 0;
}

static void worker(unsigned w, struct tally *t)
{
	vrl_client *c = test_open(seg);

	for (unsigned i = 0; i < REQUESTS; i++) {
		char vehicle[32];
		struct vrl_request req = { .api = "f", .vehicle = vehicle };
		struct vrl_verdict v;
		int rc;

		snprintf(vehicle, sizeof(vehicle), "w%u-r%u", w, i);
		rc = vrl_acquire(c, &req, &v);
		if (rc == 0 && (v.flags & VRL_VERDICT_TABLE_FULL))
			atomic_fetch_add(&t->granted_full, 1);
		if (rc == 0)
			atomic_fetch_add(&t->granted, 1);
		else if (rc == VRL_EDENIED)
			atomic_fetch_add(&t->denied, 1);
		else if (rc == VRL_EFULL)
			atomic_fetch_add(&t->full, 1);
		else
			atomic_fetch_add(&t->other, 1);
		if (rc == VRL_EFULL && !(v.flags & VRL_VERDICT_TABLE_FULL))
			atomic_fetch_add(&t->unflagged, 1);
	}
	vrl_close(c);
}

/* Run the workers against a fresh vrld; the tally and the header's count. */
static void run(const char *on_full, struct tally *t, uint64_t *table_full, double *metric)
{
	struct vrl_seg_geometry g;
	pid_t pids[WORKERS];
	vrl_client *c;

	start(on_full);
	for (unsigned w = 0; w < WORKERS; w++) {
		pids[w] = fork();
		assert_true(pids[w] >= 0);
		if (pids[w] == 0) {
			worker(w, t);
			_exit(0);
		}
	}
	for (unsigned w = 0; w < WORKERS; w++) {
		int st;

		assert_int_equal(waitpid(pids[w], &st, 0), pids[w]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	c = test_open(seg);
	assert_int_equal(vrl_seg_validate(vrl__view(c)->hdr, vrl__view(c)->size, &g), 0);
	*table_full = atomic_load(&vrl__view(c)->hdr->table_full);
	assert_true(atomic_load(&vrl__view(c)->hdr->keys_live) <= vrl__view(c)->nslots);
	vrl_close(c);
	assert_true(vrld_scrape_fresh(port_from_log(), page, sizeof(page)));
	*metric = value_of("vrl_table_full_total ");
	stop();
	print_message("on_full %s: granted %llu (table full %llu), denied %llu, "
		      "VRL_EFULL %llu; table_full %llu, metric %.0f\n", on_full,
		      (unsigned long long)atomic_load(&t->granted),
		      (unsigned long long)atomic_load(&t->granted_full),
		      (unsigned long long)atomic_load(&t->denied),
		      (unsigned long long)atomic_load(&t->full),
		      (unsigned long long)*table_full, *metric);
	assert_int_equal(atomic_load(&t->other), 0);
	assert_int_equal(atomic_load(&t->unflagged), 0);
	assert_int_equal(atomic_load(&t->granted) + atomic_load(&t->denied) +
			 atomic_load(&t->full), WORKERS * REQUESTS);
	/* "all" never grants past its budget, whatever the table did */
	assert_true(atomic_load(&t->granted) <= BUDGET);
}

static void test_fail_closed(void **state)
{
	struct tally *t = test_shared(sizeof(*t));
	uint64_t table_full;
	double metric;

	(void)state;
	run("deny", t, &table_full, &metric);
	assert_true(atomic_load(&t->full) > 0);
	assert_int_equal(atomic_load(&t->granted_full), 0);
	assert_true(table_full >= atomic_load(&t->full));
	assert_true(metric == (double)table_full);
}

static void test_fail_open(void **state)
{
	struct tally *t = test_shared(sizeof(*t));
	uint64_t table_full;
	double metric;

	(void)state;
	run("allow", t, &table_full, &metric);
	assert_int_equal(atomic_load(&t->full), 0);
	assert_true(atomic_load(&t->granted_full) > 0);
	assert_true(table_full >= atomic_load(&t->granted_full));
	assert_true(metric == (double)table_full);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_fail_closed, teardown),
		cmocka_unit_test_teardown(test_fail_open, teardown),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s VRLD\n", argv[0]);
		return 2;
	}
	vrld_path = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
