/*
 * test_vrlctl_top.c - `vrlctl top --once` on a segment the test made: a
 * child acquires on one key throughout the frame; another key was emptied
 * before it. The first shows among the busiest, the second nearest its
 * limit. Not timed: the child keeps acquiring until vrlctl has printed.
 *
 * usage: test_vrlctl_top VRLCTL
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
#include <sys/prctl.h>
#include <ctype.h>
#include <poll.h>
#include <pty.h>
#include <sys/prctl.h>
#include <termios.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"
#include "../run_cmd.h"
#include "adapt.h"
#include "label.h"

static const char *vrlctl_path;

static int run(const char *seg, const char *args, char *out, size_t len)
{
	int rc = run_vrlctl(vrlctl_path, seg, args, false, out, len);

	printf("%s", out);
	return rc;
}

/* Run vrlctl @args until its output holds @needle (a minute at most). */
static void frame(const char *seg, const char *args, const char *needle, char *out, size_t len)
{
	uint64_t until = vrl_now_ns() + 60 * NS_PER_S;

	do
		assert_int_equal(run(seg, args, out, len), 0);
	while (!strstr(out, needle) && vrl_now_ns() < until);
	if (!strstr(out, needle))
		fail_msg("no \"%s\" in any frame", needle);
}

static void test_top_once(void **state)
{
	static struct vrl_seg_config cfg;
	struct vrl_request full = { .api = "s", .token = "full" };
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX], out[16384], want[160];
	const char *p;
	char busy_h[VRL_LABEL_HASH_LEN + 1], full_h[VRL_LABEL_HASH_LEN + 1];
	vrl_client *c;
	pid_t child;

	(void)state;
	test_add_rate(&cfg, "fast", "f", 1000, NS_PER_S, 1, (int[]){ VRL_FIELD_TOKEN, -1 });
	test_add_rate(&cfg, "slow", "s", 1, 60 * NS_PER_S, 2, (int[]){ VRL_FIELD_TOKEN, -1 });
	test_segment("top", &cfg, 1000, &seg, name);
	c = test_open(name);
	assert_int_equal(vrl_acquire(c, &full, NULL), 0);
	assert_int_equal(vrl_acquire(c, &full, NULL), 0);
	assert_int_equal(vrl_acquire(c, &full, NULL), VRL_EDENIED);
	vrl_close(c);

	child = fork();
	if (child == 0) {
		struct vrl_request busy = { .api = "f", .token = "busy" };
		struct timespec ts = { 0, 5 * 1000 * 1000 };

		prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlive the test */
		c = test_open(name);
		for (;;) {
			vrl_acquire(c, &busy, NULL);
			nanosleep(&ts, NULL);
		}
	}
	/* keys by token: shown as the tokens' hashes */
	vrl_label_hash("busy", 4, busy_h);
	vrl_label_hash("full", 4, full_h);
	/* a frame in which the child acquired (on a starved machine it may
	 * have had no turn in one: then another frame) */
	frame(name, "top --once --wait 300ms", busy_h, out, sizeof(out));
	assert_non_null(strstr(out, "busiest keys"));
	assert_non_null(strstr(out, "nearest their limits"));
	snprintf(want, sizeof(want), "slow   %s", full_h);  /* emptied, refilling slowly */
	assert_non_null(strstr(out, want));
	frame(name, "--json top --once --wait 300ms", "\"grants\":", out, sizeof(out));
	snprintf(want, sizeof(want), "\"busiest\":[{\"limit\":\"fast\",\"key\":\"%s\",\"grants\":",
		 busy_h);
	assert_non_null(strstr(out, want));
	snprintf(want, sizeof(want), "{\"limit\":\"slow\",\"key\":\"%s\",\"used_pct\":", full_h);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "\"name\":\"fast\",\"kind\":\"rate\""));
	/* rates are JSON numbers, not strings */
	p = strstr(out, "\"granted_per_s\":");
	assert_non_null(p);
	assert_true(isdigit((unsigned char)p[strlen("\"granted_per_s\":")]));
	p = strstr(out, "\"denied_per_s\":");
	assert_non_null(p);
	assert_true(isdigit((unsigned char)p[strlen("\"denied_per_s\":")]));
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	assert_int_equal(run(name, "top extra", out, sizeof(out)), 2);
	test_segment_drop(&seg, name);
}

/* An adaptive limit's keys paced below their figure show in the JSON frame
 * too: how many, and the lowest pace, as the human frame prints them. */
static void test_top_json_adaptive(void **state)
{
	static struct vrl_seg_config cfg;
	static const struct vrl_response bare429 = { .status = 429 };
	struct vrl_request r = { .api = "a", .token = "cut" };
	struct vrl_seg_limit *l;
	struct vrl_feedback fb;
	struct vrl_adapt a;
	struct vrl_seg seg;
	char name[VRL_SHM_NAME_MAX], out[16384];
	const char *want = "\"adaptive\":{\"cut_keys\":1,\"lowest_pace_pct\":", *p;
	double pct;
	vrl_client *c;

	(void)state;
	l = test_add_rate(&cfg, "adapt", "a", 150, NS_PER_S, 1, (int[]){ VRL_FIELD_TOKEN, -1 });
	/* back at the figure only after 100 s: the frame sees the cut */
	assert_int_equal(vrl_adapt_init(&a, 100 * NS_PER_S, 0, VRL_ADAPT_FLOOR_DEFAULT,
					45875), 0);   /* beta 0.7: the figures below assume it */
	vrl_adapt_store(&a, l->adapt);
	l->flags |= VRL_LIMIT_ADAPTIVE;
	test_add_rate(&cfg, "plain", "p", 150, NS_PER_S, 1, (int[]){ VRL_FIELD_TOKEN, -1 });
	test_segment("topad", &cfg, 1000, &seg, name);
	c = test_open(name);
	assert_int_equal(vrl_acquire(c, &r, NULL), 0);
	/* a first 429 strikes, a second (no grant time, hold 0) cuts */
	assert_int_equal(vrl_observe(c, &r, &bare429, &fb), 0);
	assert_false(fb.actions & VRL_FB_ADAPT);
	assert_int_equal(vrl_observe(c, &r, &bare429, &fb), 0);
	assert_true(fb.actions & VRL_FB_ADAPT);
	vrl_close(c);
	assert_int_equal(run(name, "--json top --once --wait 10ms", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "\"name\":\"adapt\",\"kind\":\"rate\""));
	p = strstr(out, want);
	assert_non_null(p);
	/* the cut leaves 0.7 of the figure, rounded toward slower */
	pct = strtod(p + strlen(want), NULL);
	assert_true(pct > 69.0 && pct <= 70.0);
	/* a limit that does not adapt has no such member */
	assert_null(strstr(strstr(out, "\"name\":\"plain\""), "\"adaptive\""));
	test_segment_drop(&seg, name);
}

/* Read and drop what the child wrote to the terminal, for up to 10 ms. */
static void drain_pty(int master)
{
	struct pollfd p = { .fd = master, .events = POLLIN };
	char buf[4096];

	if (poll(&p, 1, 10) > 0 && (p.revents & POLLIN))
		(void)!read(master, buf, sizeof(buf));
}

/* Start `vrlctl top` on a new terminal; returns once top holds it in cbreak mode. */
static pid_t top_on_pty(const char *name, int *master, int *slave)
{
	struct termios t;
	pid_t pid;

	assert_int_equal(openpty(master, slave, NULL, NULL, NULL), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);   /* a failed test leaves no top behind */
		setsid();
		dup2(*slave, 0);
		dup2(*slave, 1);
		close(*master);
		execl(vrlctl_path, "vrlctl", "-s", name, "top", "--wait", "20ms", (char *)NULL);
		_exit(127);
	}
	do {
		drain_pty(*master);
		assert_int_equal(tcgetattr(*slave, &t), 0);
	} while (t.c_lflag & ICANON);
	return pid;
}

/* The child's exit status, reading its terminal until it ends. */
static int reap_on_pty(pid_t pid, int master)
{
	int st;

	while (waitpid(pid, &st, WNOHANG) == 0)
		drain_pty(master);
	return st;
}

/* top quits on q, and gives the terminal back: after q and after a signal. */
static void test_top_quits_on_q(void **state)
{
	static struct vrl_seg_config cfg;
	char name[VRL_SHM_NAME_MAX];
	struct vrl_seg seg;
	struct termios t;
	int master, slave, st;
	pid_t pid;

	(void)state;
	test_add_rate(&cfg, "fast", "f", 1000, NS_PER_S, 1, (int[]){ VRL_FIELD_TOKEN, -1 });
	test_segment("topq", &cfg, 1000, &seg, name);

	pid = top_on_pty(name, &master, &slave);
	assert_int_equal(write(master, "q", 1), 1);
	st = reap_on_pty(pid, master);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(tcgetattr(slave, &t), 0);
	assert_true((t.c_lflag & (ICANON | ECHO)) == (ICANON | ECHO));
	close(master);
	close(slave);

	pid = top_on_pty(name, &master, &slave);
	kill(pid, SIGTERM);
	st = reap_on_pty(pid, master);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
	assert_int_equal(tcgetattr(slave, &t), 0);
	assert_true((t.c_lflag & (ICANON | ECHO)) == (ICANON | ECHO));
	close(master);
	close(slave);
	test_segment_drop(&seg, name);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_top_once),
		cmocka_unit_test(test_top_json_adaptive),
		cmocka_unit_test(test_top_quits_on_q),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s VRLCTL\n", argv[0]);
		return 2;
	}
	vrlctl_path = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
