/*
 * test_vrld_alert.c - alerts end to end: a real vrld with an alert_command
 * script that writes its environment to a file, thresholds crossed by a
 * worker, the log line, and `vrlctl events`.
 *
 *   test_vrld_alert VRLD VRLCTL
 *
 * Nothing is timed: every wait polls for a result with a generous bound.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "upkeep.h"
#include "events.h"
#include "vrl_internal.h"
#include "label.h"
#include "../run_cmd.h"

#define WAIT_TRIES 1200  /* 50 ms polls: a minute at least, reached only on a hang */

extern char **environ;

static const char *vrld_path, *vrlctl_path;
static char dir[64], seg_name[VRL_SHM_NAME_MAX], path_buf[256];
static pid_t vrld_pid;        /* running vrld, killed by main if a test failed */

static const char *in_dir(const char *name)
{
	snprintf(path_buf, sizeof(path_buf), "%s/%s", dir, name);
	return path_buf;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static char *read_file(const char *path)
{
	static char buf[8192];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static pid_t start_vrld(void)
{
	const char *argv[] = { vrld_path, "-c", NULL, NULL };
	char conf[256], log[256];
	posix_spawn_file_actions_t fa;
	pid_t pid;

	snprintf(conf, sizeof(conf), "%s", in_dir("vrl.yaml"));
	snprintf(log, sizeof(log), "%s", in_dir("vrld.log"));
	argv[2] = conf;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(posix_spawn(&pid, vrld_path, &fa, NULL, (char *const *)argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

static vrl_client *wait_open(void)
{
	vrl_client *c = NULL;

	for (int i = 0; i < WAIT_TRIES; i++) {
		if (vrl_open(seg_name, 0, &c) == 0)
			return c;
		usleep(50000);
	}
	fail_msg("vrld did not create %s", seg_name);
	return NULL;
}

static char *wait_file(const char *name)
{
	for (int i = 0; i < WAIT_TRIES; i++) {
		char *s = read_file(in_dir(name));

		if (s)
			return s;
		usleep(50000);
	}
	fail_msg("%s never appeared", name);
	return NULL;
}

static void assert_has(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("expected \"%s\" in:\n%s", needle, hay);
}

static char *vrlctl(const char *args)
{
	static char out[16384];

	assert_int_equal(run_vrlctl(vrlctl_path, seg_name, args, false, out, sizeof(out)), 0);
	return out;
}

/* An event as any process of the segment's group can write one. */
static void hostile_event(vrl_client *c)
{
	struct vrl_alert_payload p;

	memset(&p, 0, sizeof(p));
	p.threshold = 77;
	p.used = 1;
	p.count = 2;
	p.generation = 0;   /* no config of vrld's: the name is the event's */
	snprintf(p.label, sizeof(p.label), "a\nVRL_X=y\x1b[2J$(id)`");
	memset(p.name, 'N', sizeof(p.name));
	vrl_alert_emit(vrl__view(c), &p);
}

static void alert_command_gets_environment(void **state)
{
	static const char script[] =
		"#!/bin/sh\n"
		"# one file per threshold, whole when it appears\n"
		"env | grep '^VRL_ALERT_' | sort > \"$VRL_TEST_DIR/.tmp.$$\"\n"
		"mv \"$VRL_TEST_DIR/.tmp.$$\" \"$VRL_TEST_DIR/event.$VRL_ALERT_THRESHOLD\"\n";
	const struct vrl_request req = { .api = "carsxe", .token = "tokA" };
	const struct vrl_request req50 = { .api = "carsxe", .token = "tokA", .cost = 50 };
	struct vrl_verdict v;
	char conf[1024], key[32] = "VRL_ALERT_KEY=";
	vrl_client *c;
	pid_t pid;
	int status;
	char *s;

	(void)state;
	write_file(in_dir("alert.sh"), script, 0755);
	snprintf(conf, sizeof(conf),
		 "segment: {name: %s, keys: 1000}\n"
		 "daemon: {alert_command: %s/alert.sh}\n"
		 "limits:\n"
		 "  - {name: carsxe.month, kind: quota, count: 100, per: [token],\n"
		 "     match: {api: carsxe}, alerts: [80, 90, 100]}\n", seg_name, dir);
	write_file(in_dir("vrl.yaml"), conf, 0644);
	pid = vrld_pid = start_vrld();
	c = wait_open();

	/* 50 units, then 50 more: the second grant crosses 80, 90 and 100 */
	assert_int_equal(vrl_acquire(c, &req50, &v), 0);
	assert_false(v.flags & VRL_VERDICT_ALERT);
	assert_int_equal(vrl_acquire(c, &req50, &v), 0);
	assert_true(v.flags & VRL_VERDICT_ALERT);
	/* the same thresholds never fire twice in one period */
	assert_int_equal(vrl_refund(c, &req, NULL, 10), 0);
	assert_int_equal(vrl_acquire(c, &req, NULL), 0);

	wait_file("event.80");
	wait_file("event.100");
	s = wait_file("event.90");
	assert_has(s, "VRL_ALERT_LIMIT=carsxe.month\n");
	assert_has(s, "VRL_ALERT_THRESHOLD=90\n");
	assert_has(s, "VRL_ALERT_USED=100\n");
	assert_has(s, "VRL_ALERT_COUNT=100\n");
	assert_has(s, "VRL_ALERT_PERIOD=");
	/* the key as its label shows it: the token's hash, never the token */
	vrl_label_hash("tokA", 4, key + strlen("VRL_ALERT_KEY="));
	strcat(key, "\n");
	assert_has(s, key);
	assert_null(strstr(s, "tokA"));

	s = vrlctl("events");
	assert_has(s, "carsxe.month");
	assert_has(s, "90%");
	assert_has(s, "3 produced");
	s = vrlctl("--json events");
	assert_has(s, "\"events\"");
	assert_has(s, "\"threshold\"");
	assert_has(s, "\"lost\"");

	/* an event written by a hostile member of the segment's group: its
	 * key carries a newline, a variable, an escape sequence and shell
	 * syntax, its limit name no NUL at all */
	hostile_event(c);
	s = wait_file("event.77");
	assert_has(s, "VRL_ALERT_KEY=a?VRL_X?y?[2J?(id)?\n");
	assert_has(s, "VRL_ALERT_LIMIT=NNNNNNNN");
	for (const char *l = s; *l; l = strchr(l, '\n') + 1) {
		/* every line one variable of ours; nothing forged, no escape */
		if (strncmp(l, "VRL_ALERT_", 10) != 0)
			fail_msg("a line the event forged: %s", l);
		if (!strchr(l, '\n'))
			break;
	}
	assert_null(strchr(s, '\x1b'));

	vrl_close(c);
	kill(pid, SIGTERM);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	vrld_pid = 0;
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	s = read_file(in_dir("vrld.log"));
	assert_non_null(s);
	assert_has(s, "msg=\"alert\" limit=\"carsxe.month\"");
	assert_has(s, "threshold=100 used=100 count=100 period=");
	assert_has(s, "key=\"a?VRL_X?y?[2J?(id)?\" threshold=77");
	assert_null(strchr(s, '\x1b'));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(alert_command_gets_environment),
	};
	const char *files[] = { "alert.sh", "vrl.yaml", "vrld.log", "event.80", "event.90",
				"event.100", "event.77" };
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: %s VRLD VRLCTL\n", argv[0]);
		return 2;
	}
	vrld_path = argv[1];
	vrlctl_path = argv[2];
	snprintf(dir, sizeof(dir), "/tmp/vrl-alert-XXXXXX");
	if (!mkdtemp(dir))
		return 2;
	snprintf(seg_name, sizeof(seg_name), "/vrl-test-vrldalert-%d", (int)getpid());
	vrl_seg_unlink(seg_name);
	setenv("VRL_TEST_DIR", dir, 1);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	if (vrld_pid > 0) {
		kill(vrld_pid, SIGTERM);
		waitpid(vrld_pid, NULL, 0);
	}
	vrl_seg_unlink(seg_name);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(in_dir(files[i]));
	rmdir(dir);
	return rc;
}
