/*
 * test_state_files.c - the files vrld writes and reads, against a hostile
 * directory: a symbolic link planted at the checkpoint's or the metrics
 * textfile's name or at a temporary name vrld might use, a directory others
 * can write, a FIFO where the checkpoint should be, and the umask.
 *
 * What a user relies on: vrld never writes through a link it did not make,
 * never writes into a directory someone else can write, never hangs on a
 * special file, and its files have the same mode whatever umask it runs
 * under.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"
#include "../run_cmd.h"
#include "checkpoint.h"
#include "metrics.h"

#define VICTIM_TEXT "precious: not vrld's\n"

static char dir[256], path[300], victim[300];

static int setup(void **state)
{
	static unsigned serial;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/vrl-files-%d-%u", (int)getpid(), serial++);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/state", dir);
	/* the file an attacker wants overwritten, outside the directory */
	snprintf(victim, sizeof(victim), "%s.victim", dir);
	FILE *f = fopen(victim, "w");

	assert_non_null(f);
	fputs(VICTIM_TEXT, f);
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	char cmd[700];

	(void)state;
	umask(022);
	chmod(dir, 0700);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, victim);
	return system(cmd) == 0 ? 0 : -1;
}

static void assert_victim_intact(void)
{
	char buf[256] = { 0 };
	FILE *f = fopen(victim, "r");

	assert_non_null(f);
	assert_true(fread(buf, 1, sizeof(buf) - 1, f) > 0);
	fclose(f);
	assert_string_equal(buf, VICTIM_TEXT);
}

/* Names of the directory's entries but @path's, joined; "" when none. */
static void strays(char *out, size_t cap)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | grep -vx state", dir);
	run_capture(cmd, out, cap);   /* grep exits 1 when there are none */
}

static mode_t mode_of(const char *p)
{
	struct stat st;

	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	return st.st_mode & 07777;
}

/* ---- the checkpoint ------------------------------------------------------------ */

static int write_ckpt(char *why, size_t whylen)
{
	static const char text[] = "VRLCKPT\nnot a real one, but bytes all the same";
	struct vrl_ckpt_image img = { .buf = (char *)text, .len = sizeof(text), .n = 0 };

	return vrl_ckpt_write(path, &img, why, whylen);
}

/* Links at every temporary name a writer of this process could guess. */
static void plant_temp_links(void)
{
	char tmp[400];

	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	assert_int_equal(symlink(victim, tmp), 0);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_equal(symlink(victim, tmp), 0);
}

static void test_ckpt_link_at_temp_name(void **state)
{
	char why[512];

	(void)state;
	plant_temp_links();
	/* writing may fail or not; it must not go through the link */
	write_ckpt(why, sizeof(why));
	assert_victim_intact();
}

static void test_ckpt_link_at_final_name(void **state)
{
	char why[512], left[256];

	(void)state;
	assert_int_equal(symlink(victim, path), 0);
	assert_int_equal(write_ckpt(why, sizeof(why)), 0);
	assert_victim_intact();
	mode_of(path);          /* a regular file replaced the link */
	strays(left, sizeof(left));
	assert_string_equal(left, "");
}

static void test_ckpt_foreign_writable_dir_refused(void **state)
{
	char why[512], left[256];
	struct stat st;

	(void)state;
	for (int i = 0; i < 2; i++) {
		mode_t m = i == 0 ? 0777 : 0770;

		assert_int_equal(chmod(dir, m), 0);
		why[0] = '\0';
		assert_true(write_ckpt(why, sizeof(why)) < 0);
		printf("# %s\n", why);
		assert_non_null(strstr(why, dir));             /* which directory */
		assert_non_null(strstr(why, i == 0 ? "0777" : "0770"));   /* its mode */
		assert_non_null(strstr(why, "owner"));
		assert_non_null(strstr(why, "chmod"));         /* what to do */
		assert_int_equal(lstat(path, &st), -1);
		strays(left, sizeof(left));
		assert_string_equal(left, "");
	}
	/* a sticky world-writable directory (/tmp's kind) is others' too */
	assert_int_equal(chmod(dir, 01777), 0);
	assert_true(write_ckpt(why, sizeof(why)) < 0);
	assert_int_equal(lstat(path, &st), -1);
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(write_ckpt(why, sizeof(why)), 0);
}

static void test_ckpt_mode_fixed(void **state)
{
	static const mode_t masks[] = { 0, 077, 022 };
	char why[512];

	(void)state;
	for (size_t i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
		umask(masks[i]);
		assert_int_equal(write_ckpt(why, sizeof(why)), 0);
		assert_int_equal(mode_of(path), 0600);
	}
}

/* Run @fn in a child; fail when it has not returned within a generous bound. */
static int in_child(int (*fn)(void))
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn());
	for (int i = 0; i < 3000; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	fail_msg("the child hung (blocked on a special file)");
	return -1;
}

static int load_ckpt_child(void)
{
	struct vrl_ckpt ck;
	char why[512];
	int rc = vrl_ckpt_load(path, &ck, why, sizeof(why));

	printf("# %s\n", why);
	vrl_ckpt_free(&ck);
	if (rc == 0)
		return 0;
	if (!strstr(why, path))
		return 2;
	return strstr(why, "not a regular file") ? 1 : strstr(why, "symbolic link") ? 3 : 2;
}

static void test_ckpt_fifo_refused(void **state)
{
	(void)state;
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(in_child(load_ckpt_child), 1);
}

static void test_ckpt_link_not_read(void **state)
{
	(void)state;
	/* vrld never makes a link there: one that is there is not its file */
	assert_int_equal(symlink("/dev/zero", path), 0);
	assert_int_equal(in_child(load_ckpt_child), 3);
}

/* ---- the metrics textfile ------------------------------------------------------ */

static struct vrl_seg seg;
static char segname[VRL_SHM_NAME_MAX];

static struct vrl_metrics *metrics(void)
{
	static struct vrl_seg_config cfg;
	struct vrl_metrics *m;

	memset(&cfg, 0, sizeof(cfg));
	test_add_rate(&cfg, "r", "r", 10, NS_PER_S, 1, (int[]){ VRL_FIELD_ORG, -1 });
	test_segment("files", &cfg, 100, &seg, segname);
	m = vrl_metrics_new(&seg.view, 5);
	assert_non_null(m);
	assert_int_equal(vrl_metrics_update(m), 0);
	return m;
}

static void metrics_done(struct vrl_metrics *m)
{
	vrl_metrics_free(m);
	test_segment_drop(&seg, segname);
}

static void test_textfile_link_at_temp_name(void **state)
{
	struct vrl_metrics *m = metrics();
	char why[512];

	(void)state;
	plant_temp_links();
	vrl_metrics_textfile(m, path, 0644, why, sizeof(why));
	metrics_done(m);
	assert_victim_intact();
}

static void test_textfile_mode_fixed(void **state)
{
	static const mode_t masks[] = { 077, 0, 027 };
	struct vrl_metrics *m = metrics();
	char why[512];

	(void)state;
	for (size_t i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
		umask(masks[i]);
		assert_int_equal(vrl_metrics_textfile(m, path, 0644, why, sizeof(why)), 0);
		assert_int_equal(mode_of(path), 0644);
	}
	metrics_done(m);
}

static void test_textfile_foreign_writable_dir_refused(void **state)
{
	struct vrl_metrics *m = metrics();
	char why[512] = "";
	struct stat st;

	(void)state;
	assert_int_equal(chmod(dir, 0777), 0);
	assert_true(vrl_metrics_textfile(m, path, 0644, why, sizeof(why)) < 0);
	metrics_done(m);
	printf("# %s\n", why);
	assert_non_null(strstr(why, dir));
	assert_int_equal(lstat(path, &st), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ckpt_link_at_temp_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ckpt_link_at_final_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ckpt_foreign_writable_dir_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ckpt_mode_fixed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ckpt_fifo_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ckpt_link_not_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_textfile_link_at_temp_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_textfile_mode_fixed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_textfile_foreign_writable_dir_refused, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
