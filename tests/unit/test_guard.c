/*
 * test_guard.c - the SIGBUS guard (guard.c), in one process: a segment
 * truncated under a handle kills nothing; every call fails with
 * VRL_ECORRUPT, never a grant made on the zero pages; the handle heals once
 * the size and the segment are back (vrld's regrow, done here in process);
 * and every other SIGBUS goes where it went before: to the handler that was
 * there, or to the default action.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common.h"
#include "guard.h"

static char name[VRL_SHM_NAME_MAX];

/* A key whose bucket is empty for an hour: a grant on it can only come
 * from zero pages, which read as a full bucket. */
static const struct vrl_request req = { .api = "a", .token = "t" };

static void make(struct vrl_seg *s, struct vrl_seg_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	test_add_rate(cfg, "r", "a", 1, 3600 * NS_PER_S, 1, (int[]){ VRL_FIELD_TOKEN, -1 });
	test_segment("guard", cfg, 100, s, name);
}

static void cut(off_t size)
{
	int fd = shm_open(name, O_RDWR, 0);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, size), 0);
	close(fd);
}

/* The test process's own SIGBUS handler: cmocka may have replaced it
 * between tests, so each test starts from the default. */
static void default_sigbus(void)
{
	signal(SIGBUS, SIG_DFL);
}

static void truncated_then_healed(void **state)
{
	struct vrl_seg_config cfg;
	struct vrl_verdict v;
	struct vrl_seg s;
	struct stat st;
	vrl_client *c;
	uint64_t dstate;

	(void)state;
	default_sigbus();
	make(&s, &cfg);
	c = test_open(name);
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	assert_int_equal(vrl_acquire(c, &req, &v), VRL_EDENIED);
	/* a group member cuts the object to one page: every call touches a
	 * slot past it, and fails; none grants from the zero pages */
	cut(4096);
	for (int i = 0; i < 100; i++) {
		v.granted = 1;
		assert_int_equal(vrl_acquire(c, &req, &v), VRL_ECORRUPT);
		assert_int_equal(v.granted, 0);
	}
	assert_int_equal(vrl_cooldown(c, &req, NULL, vrl_now_ns() + NS_PER_S), VRL_ECORRUPT);
	assert_int_equal(vrl_reset(c, &req, NULL), VRL_ECORRUPT);
	/* vrld's repair (in process here): the handle heals */
	assert_int_equal(vrl_seg_shrunk(&s, &st), 1);
	assert_int_equal(vrl_seg_regrow(&s, &dstate), 0);
	assert_int_equal(vrl_seg_publish(&s, s.cfg), 0);
	assert_true(vrl_seg_reopen(&s, dstate));
	assert_int_equal(vrl_seg_shrunk(&s, &st), 0);
	/* the key's state was past the cut: it starts again, full */
	assert_int_equal(vrl_acquire(c, &req, &v), 0);
	assert_int_equal(v.granted, 1);
	assert_int_equal(vrl_acquire(c, &req, &v), VRL_EDENIED);
	vrl_close(c);
	/* a new handle opens the rebuilt segment */
	c = test_open(name);
	assert_int_equal(vrl_acquire(c, &req, &v), VRL_EDENIED);
	vrl_close(c);
	test_segment_drop(&s, name);
}

/* The object shrunk and grown back by someone else before anyone touched
 * it: no fault, but vrld still sees its mapping damaged once it touches
 * the lost part, and rebuilds; a resolved request works across it all. */
static void resolved_across_a_cut(void **state)
{
	struct vrl_seg_config cfg;
	struct vrl_seg s;
	struct stat st;
	vrl_resolved *r;
	vrl_client *c;
	uint64_t dstate;
	int rc;

	(void)state;
	default_sigbus();
	make(&s, &cfg);
	c = test_open(name);
	assert_int_equal(vrl_resolve(c, &req, &r), 0);
	assert_int_equal(vrl_acquire_resolved(c, r, 1, NULL), 0);
	cut(0);
	assert_int_equal(vrl_acquire_resolved(c, r, 1, NULL), VRL_ECORRUPT);
	assert_int_equal(vrl_seg_shrunk(&s, &st), 1);
	assert_int_equal(vrl_seg_regrow(&s, &dstate), 0);
	assert_int_equal(vrl_seg_publish(&s, s.cfg), 0);
	assert_true(vrl_seg_reopen(&s, dstate));
	rc = vrl_acquire_resolved(c, r, 1, NULL);
	assert_int_equal(rc, 0);
	vrl_resolved_free(r);
	vrl_close(c);
	test_segment_drop(&s, name);
}

/* ---- other SIGBUSes go where they went before --------------------------------------- */

static sigjmp_buf back;
static volatile sig_atomic_t theirs;

static void their_handler(int sig)
{
	(void)sig;
	theirs++;
	siglongjmp(back, 1);
}

/* A mapping of an object of our own, not a segment, then the object cut. */
static volatile char *foreign_page(char *fname)
{
	int fd;
	void *p;

	snprintf(fname, VRL_SHM_NAME_MAX, "/vrl-test-guard-foreign-%d", (int)getpid());
	fd = shm_open(fname, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 8192), 0);
	p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	assert_int_equal(ftruncate(fd, 0), 0);
	close(fd);
	return p;
}

/* In a fresh process (vrl's handler not yet in): the program's handler
 * first, then vrl's over it; a fault elsewhere, and a sent SIGBUS, reach
 * the program's; vrl's own mapping stays vrl's. Exit 0 when all held. */
static int chain_helper(void)
{
	struct sigaction sa = { .sa_handler = their_handler };
	struct vrl_seg_config cfg;
	char fname[VRL_SHM_NAME_MAX];
	volatile char *page;
	struct vrl_seg s;
	vrl_client *c;
	int ok = 1;

	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_NODEFER;
	if (sigaction(SIGBUS, &sa, NULL) != 0)
		return 2;
	make(&s, &cfg);
	c = test_open(name);
	page = foreign_page(fname);
	shm_unlink(fname);
	if (sigsetjmp(back, 1) == 0)
		(void)page[100];   /* not vrl's: the program's handler runs */
	ok &= theirs == 1;
	if (sigsetjmp(back, 1) == 0)
		raise(SIGBUS);     /* a sent one goes there too */
	ok &= theirs == 2;
	cut(4096);
	ok &= vrl_acquire(c, &req, NULL) == VRL_ECORRUPT;   /* vrl's own: vrl's */
	ok &= theirs == 2;
	vrl_close(c);
	test_segment_drop(&s, name);
	return ok ? 0 : 1;
}

/* The same with no handler before vrl's: a fault elsewhere kills. */
static int default_helper(void)
{
	struct vrl_seg_config cfg;
	char fname[VRL_SHM_NAME_MAX];
	volatile char *page;
	struct vrl_seg s;
	vrl_client *c;

	signal(SIGBUS, SIG_DFL);
	make(&s, &cfg);
	c = test_open(name);
	page = foreign_page(fname);
	shm_unlink(fname);
	vrl_seg_unlink(name);
	(void)page[100];           /* not vrl's: the default action */
	vrl_close(c);
	return 0;
}

static const char *self;

/* Run this program as @helper in a fresh process; its wait status. */
static int run_helper(const char *helper)
{
	int st;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/proc/self/exe", self, helper, (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

static void foreign_fault_chains(void **state)
{
	int st = run_helper("chain-helper");

	(void)state;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void foreign_fault_default(void **state)
{
	int st = run_helper("default-helper");

	(void)state;
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGBUS);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(truncated_then_healed),
		cmocka_unit_test(resolved_across_a_cut),
		cmocka_unit_test(foreign_fault_chains),
		cmocka_unit_test(foreign_fault_default),
	};

	if (argc > 1 && strcmp(argv[1], "chain-helper") == 0)
		return chain_helper();
	if (argc > 1 && strcmp(argv[1], "default-helper") == 0)
		return default_helper();
	self = argv[0];
	return cmocka_run_group_tests_name("guard", tests, NULL, NULL);
}
