/*
 * test_multiproc_fold.c - per-limit counters outlive the handles that made them.
 *
 * As in the demo: a pool of processes acquires from one limit and goes
 * away, half through vrl_close(), half killed without closing (then
 * reaped, as vrld does). `vrlctl status --json` afterwards must show the
 * limit's grants and denials equal to the header's totals: the counters of
 * every handle are folded as it goes, not lost with its holder slot.
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
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "../common.h"
#include "../run_cmd.h"

enum { PROCS = 8, ACQUIRES = 40 };

static const char *vrlctl_path;

struct shared {
	_Atomic int done[PROCS];   /* worker i has acquired and counted */
	_Atomic uint64_t granted, denied;
};

/* Acquire ACQUIRES times; then close and exit, or wait to be killed. */
static void worker(const char *seg, struct shared *sh, int id)
{
	vrl_client *c = test_open(seg);
	struct vrl_request r = { .api = "f", .token = id % 2 ? "a" : "b" };

	for (int i = 0; i < ACQUIRES; i++) {
		int rc = vrl_acquire(c, &r, NULL);

		if (rc == 0)
			atomic_fetch_add(&sh->granted, 1);
		else if (rc == VRL_EDENIED)
			atomic_fetch_add(&sh->denied, 1);
		else
			_exit(3);
	}
	if (id % 2 == 0) {
		vrl_close(c);
		atomic_store(&sh->done[id], 1);
		_exit(0);
	}
	atomic_store(&sh->done[id], 1);
	for (;;)
		pause();   /* killed holding its handle, never closed */
}

static uint64_t get_u64(json_object *o, const char *path0, const char *path1)
{
	json_object *a, *b;

	assert_true(json_object_object_get_ex(o, path0, &a));
	if (!path1)
		return (uint64_t)json_object_get_int64(a);
	assert_true(json_object_object_get_ex(a, path1, &b));
	return (uint64_t)json_object_get_int64(b);
}

static void test_status_counts_gone_handles(void **state)
{
	static struct vrl_seg_config cfg;
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char name[VRL_SHM_NAME_MAX], out[65536];
	json_object *root, *limits, *l0;
	struct vrl_seg seg;
	pid_t pid[PROCS];

	(void)state;
	assert_true(sh != MAP_FAILED);
	/* 10 per token per minute: some grants, then denials */
	test_add_rate(&cfg, "fold", "f", 10, 60 * NS_PER_S, 10, (int[]){ VRL_FIELD_TOKEN, -1 });
	test_segment("fold", &cfg, 1000, &seg, name);
	for (int i = 0; i < PROCS; i++) {
		pid[i] = fork();
		assert_true(pid[i] >= 0);
		if (pid[i] == 0)
			worker(name, sh, i);
	}
	for (int i = 0; i < PROCS; i++) {
		int st;

		if (i % 2) {
			while (!atomic_load(&sh->done[i]))
				usleep(1000);
			kill(pid[i], SIGKILL);
		}
		assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
		assert_true(i % 2 ? WIFSIGNALED(st) : WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_int_equal(vrl_seg_reap_holders(&seg), PROCS / 2);   /* as vrld's sweep */

	/* exits 1: no vrld serves this segment */
	assert_int_equal(run_vrlctl(vrlctl_path, name, "--json status", false, out, sizeof(out)), 1);
	root = json_tokener_parse(out);
	if (!root)
		fail_msg("not JSON: %s", out);
	assert_int_equal(get_u64(root, "holders", "granted"), atomic_load(&sh->granted));
	assert_int_equal(get_u64(root, "holders", "denied"), atomic_load(&sh->denied));
	assert_true(json_object_object_get_ex(root, "limits", &limits));
	l0 = json_object_array_get_idx(limits, 0);
	assert_non_null(l0);
	assert_true(atomic_load(&sh->granted) > 0 && atomic_load(&sh->denied) > 0);
	if (get_u64(l0, "granted", NULL) != atomic_load(&sh->granted) ||
	    get_u64(l0, "denied", NULL) != atomic_load(&sh->denied))
		fail_msg("limit fold: granted %llu denied %llu; the pool's: %llu and %llu\n%s",
			 (unsigned long long)get_u64(l0, "granted", NULL),
			 (unsigned long long)get_u64(l0, "denied", NULL),
			 (unsigned long long)atomic_load(&sh->granted),
			 (unsigned long long)atomic_load(&sh->denied), out);
	json_object_put(root);
	test_segment_drop(&seg, name);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_counts_gone_handles),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s VRLCTL\n", argv[0]);
		return 2;
	}
	vrlctl_path = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
