/*
 * test_access.c - the segment's mode and group keep other users out.
 *
 * vrld creates the segment with segment.mode and segment.group from its
 * config. A child that drops to a uid and gid outside that group must be
 * refused (-EACCES, whatever it asks for); a child in the group may attach
 * read-only (what vrlctl does) when the mode gives the group read, and is
 * refused read-write. Needs root to change uid; skipped otherwise.
 *
 * usage: test_access VRLD
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common.h"
#include "vrld_run.h"

#define WAIT_NS  (60 * NS_PER_S)   /* only a hang takes this long */
#define OUTSIDER 65534          /* nobody / nogroup */
#define MEMBER_GID 1            /* "daemon" on Debian: any group but the outsider's */

static char dir[256], conf[300], logpath[300], seg[VRL_SHM_NAME_MAX];
static pid_t vrld_pid;

static int teardown(void **state)
{
	(void)state;
	if (vrld_pid > 0 && kill(vrld_pid, SIGKILL) == 0)
		vrld_wait_exit(vrld_pid, WAIT_NS);
	vrld_pid = 0;
	vrl_seg_unlink(seg);
	return 0;
}

/* Start vrld on a fresh segment of @mode owned by group MEMBER_GID. */
static void start(const char *mode)
{
	char text[512];

	snprintf(dir, sizeof(dir), "/tmp/vrl-access-%d", (int)getpid());
	snprintf(seg, sizeof(seg), "/vrl-test-access-%d", (int)getpid());
	mkdir(dir, 0700);
	snprintf(conf, sizeof(conf), "%s/vrl.yaml", dir);
	snprintf(logpath, sizeof(logpath), "%s/vrld.log", dir);
	vrl_seg_unlink(seg);
	snprintf(text, sizeof(text),
		 "segment: {name: \"%s\", keys: 100, mode: \"%s\", group: \"%d\"}\n"
		 "limits:\n"
		 "  - name: r\n    match: {api: r}\n    per: [token]\n    rate: 5/s\n",
		 seg, mode, MEMBER_GID);
	vrld_write_file(conf, text);
	vrld_pid = vrld_start(conf, NULL, logpath);
	assert_true(vrld_wait_ready(seg, vrld_pid, WAIT_NS));
}

static void stop(void)
{
	assert_int_equal(vrld_stop_clean(vrld_pid, WAIT_NS, seg, dir), 0);
	vrld_pid = 0;
}

/*
 * In a child running as uid/gid OUTSIDER with supplementary groups @groups
 * (@ngroups of them), vrl_open(@flags). Returns what it returned, or 1 when
 * the child could not drop its privileges.
 */
static int open_as(const gid_t *groups, size_t ngroups, unsigned flags)
{
	int st;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		vrl_client *c = NULL;
		int rc;

		if (setgroups(ngroups, groups) != 0 || setgid(OUTSIDER) != 0 ||
		    setuid(OUTSIDER) != 0 || getuid() != OUTSIDER)
			_exit(1);
		rc = vrl_open(seg, flags, &c);
		if (rc != 0)
			fprintf(stderr, "uid %d: vrl_open(%s, %s): %s (%s)\n", OUTSIDER, seg,
				flags & VRL_OPEN_READONLY ? "read-only" : "read-write",
				vrl_strerror(rc), vrl_err_name(rc));
		vrl_close(c);
		_exit(rc == 0 ? 0 : rc == -EACCES ? 2 : 3);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	switch (WEXITSTATUS(st)) {
	case 0: return 0;
	case 2: return -EACCES;
	case 1: fail_msg("the child could not drop to uid %d", OUTSIDER);
	}
	return VRL_ECORRUPT;  /* any other error: not what a test expects */
}

static void test_outsider_refused(void **state)
{
	struct stat st;
	char path[300];

	(void)state;
	if (geteuid() != 0)
		skip();
	start("0660");
	snprintf(path, sizeof(path), "/dev/shm%s", seg);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0660);
	assert_int_equal(st.st_gid, MEMBER_GID);
	assert_int_equal(open_as(NULL, 0, 0), -EACCES);
	assert_int_equal(open_as(NULL, 0, VRL_OPEN_READONLY), -EACCES);
	/* the message says what it is, not a bare number */
	assert_string_equal(vrl_strerror(-EACCES), strerror(EACCES));
	assert_string_equal(vrl_err_name(-EACCES), "EACCES");
	stop();
}

static void test_member_reads(void **state)
{
	const gid_t member[] = { MEMBER_GID };

	(void)state;
	if (geteuid() != 0)
		skip();
	start("0640");
	assert_int_equal(open_as(member, 1, VRL_OPEN_READONLY), 0);
	assert_int_equal(open_as(member, 1, 0), -EACCES);
	assert_int_equal(open_as(NULL, 0, VRL_OPEN_READONLY), -EACCES);
	stop();
}

static void test_member_writes(void **state)
{
	const gid_t member[] = { MEMBER_GID };

	(void)state;
	if (geteuid() != 0)
		skip();
	start("0660");
	assert_int_equal(open_as(member, 1, 0), 0);
	assert_int_equal(open_as(member, 1, VRL_OPEN_READONLY), 0);
	stop();
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_outsider_refused, teardown),
		cmocka_unit_test_teardown(test_member_reads, teardown),
		cmocka_unit_test_teardown(test_member_writes, teardown),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s VRLD\n", argv[0]);
		return 2;
	}
	vrld_path = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
