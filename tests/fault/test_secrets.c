/*
 * test_secrets.c - a token never leaves the worker that holds it: after a
 * worker acquires with a token (through a preset keyed by token, a rate
 * limit, and a quota that fires an alert), no 6-byte run of the token is
 * found in the segment, the metrics page, the textfile, vrld's log, the
 * alert command's environment, any vrlctl view (text and --json) or the
 * checkpoint; and the hash those views show is the one `vrlctl hash`
 * computes from the token. Fields the config shows in clear (labels.clear)
 * are shown as written; user ids are hashed unless shown.
 *
 *   test_secrets VRLD VRLCTL
 *
 * Nothing is timed: every wait polls for its event with a generous bound.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"
#include "../run_cmd.h"
#include "label.h"
#include "vrld_run.h"

#define WAIT_NS  (60 * NS_PER_S)
#define RUN      6      /* bytes of the token that must never appear in a row */

/* A token shaped like an API secret, longer than a slot's label. */
static const char token[] = "sk_live_Q7xK2mWv9pLr4ZsT8nYb";
static const char user[] = "user-5551234";

static const char *vrlctl_path;
static char dir[256], conf[300], prom[300], ckpt[300], logpath[300], envfile[320];
static char seg[VRL_SHM_NAME_MAX];
static pid_t vrld_pid;

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0, r;

	if (!f)
		return NULL;
	do {
		if (n + 4096 + 1 > cap) {
			cap = (cap + 4096 + 1) * 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
	} while (r > 0);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Fail when any RUN bytes in a row of @secret occur in @hay (@len bytes). */
static void no_run_of(const char *what, const char *hay, size_t len, const char *secret)
{
	size_t sl = strlen(secret);

	for (size_t i = 0; i + RUN <= sl; i++)
		if (memmem(hay, len, secret + i, RUN))
			fail_msg("%s holds \"%.*s\" of the secret \"%s\"", what, RUN, secret + i,
				 secret);
}

static void file_clean(const char *what, const char *path)
{
	size_t len;
	char *s = slurp(path, &len);

	if (!s)
		fail_msg("%s: cannot read %s", what, path);
	no_run_of(what, s, len, token);
	no_run_of(what, s, len, user);
	free(s);
}

/* Run vrlctl with @args; its stdout (static), checked free of secrets. */
static const char *vrlctl(const char *args, const char *stdin_text)
{
	static char out[65536];
	char cmd[1024];

	if (!stdin_text) {
		run_vrlctl(vrlctl_path, seg, args, true, out, sizeof(out));
		return out;
	}
	snprintf(cmd, sizeof(cmd), "printf '%%s\\n' '%s' | '%s' -s '%s' %s", stdin_text,
		 vrlctl_path, seg, args);
	run_capture(cmd, out, sizeof(out));
	return out;
}

static void view_clean(const char *args)
{
	const char *out = vrlctl(args, NULL);

	no_run_of(args, out, strlen(out), token);
	no_run_of(args, out, strlen(out), user);
}

static void has(const char *what, const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("%s: no \"%s\" in:\n%s", what, needle, hay);
}

/* Poll @path until it holds @needle; its text (free it). */
static char *wait_for_text(const char *path, const char *needle)
{
	uint64_t until = vrl_now_ns() + WAIT_NS;
	size_t len;

	for (;;) {
		char *s = slurp(path, &len);
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		if (s && strstr(s, needle))
			return s;
		free(s);
		if (vrl_now_ns() > until)
			fail_msg("%s never held \"%s\"", path, needle);
		nanosleep(&ts, NULL);
	}
}

static int teardown(void **state)
{
	(void)state;
	if (vrld_pid > 0 && kill(vrld_pid, SIGKILL) == 0)
		vrld_wait_exit(vrld_pid, WAIT_NS);
	vrld_pid = 0;
	vrl_seg_unlink(seg);
	return 0;
}

static void write_config(void)
{
	static const char script[] =
		"#!/bin/sh\nenv > \"$0.env.tmp\" && mv \"$0.env.tmp\" \"$0.env\"\n";
	char text[2048], alert[300];

	snprintf(alert, sizeof(alert), "%s/alert.sh", dir);
	snprintf(envfile, sizeof(envfile), "%s.env", alert);
	vrld_write_file(alert, script);
	assert_int_equal(chmod(alert, 0755), 0);
	snprintf(text, sizeof(text),
		 "presets: [samsara]\n"
		 "labels: {clear: [org, vehicle]}\n"
		 "segment: {name: \"%s\", keys: 1000}\n"
		 "daemon: {metrics: \"127.0.0.1:0\", metrics_textfile: \"%s\",\n"
		 "         checkpoint: \"%s\", checkpoint_interval: 100ms,\n"
		 "         alert_command: \"%s\"}\n"
		 "limits:\n"
		 "  - {name: r, match: {api: r}, per: [token, org], rate: 5/min, burst: 5}\n"
		 "  - {name: u, match: {api: r}, per: [user], rate: 5/min, burst: 5}\n"
		 "  - {name: v, match: {api: r}, per: [vehicle], rate: 5/min, burst: 5}\n"
		 "  - {name: q, kind: quota, match: {api: q}, per: [token], count: 2,\n"
		 "     alerts: [50]}\n",
		 seg, prom, ckpt, alert);
	vrld_write_file(conf, text);
}

static void test_token_never_shown(void **state)
{
	struct vrl_request rq = { .api = "r", .token = token, .org = "acme", .user = user,
				  .vehicle = "VIN42" };
	struct vrl_request sq = { .api = "samsara", .token = token, .org = "acme" };
	struct vrl_request qq = { .api = "q", .token = token };
	char h[VRL_LABEL_HASH_LEN + 1], hu[VRL_LABEL_HASH_LEN + 1], want[128];
	const char *out;
	char *page, *s;
	size_t len;
	unsigned port;
	vrl_client *c;

	(void)state;
	write_config();
	vrld_pid = vrld_start(conf, NULL, logpath);
	assert_true(vrld_wait_ready(seg, vrld_pid, WAIT_NS));
	port = vrld_metrics_port(logpath);
	assert_true(port > 0);

	c = test_open(seg);
	for (int i = 0; i < 3; i++)
		assert_int_equal(vrl_acquire(c, &rq, NULL), 0);
	assert_int_equal(vrl_acquire(c, &sq, NULL), 0);
	assert_int_equal(vrl_acquire(c, &qq, NULL), 0);   /* crosses 50%: an alert */

	/* the hash every view shows, as an operator computes it */
	out = vrlctl("hash", token);
	assert_int_equal(strlen(out), VRL_LABEL_HASH_LEN + 1);
	memcpy(h, out, VRL_LABEL_HASH_LEN);
	h[VRL_LABEL_HASH_LEN] = '\0';
	vrl_label_hash(user, strlen(user), hu);
	has("vrlctl hash VALUE", vrlctl("hash " "sk_live_Q7xK2mWv9pLr4ZsT8nYb", NULL), h);

	/* the segment */
	{
		char shm[VRL_SHM_NAME_MAX + 16];

		snprintf(shm, sizeof(shm), "/dev/shm%s", seg);
		file_clean("the segment", shm);
	}

	/* the metrics page: r's key is token|org, the org shown as written */
	page = malloc(1 << 20);
	assert_non_null(page);
	snprintf(want, sizeof(want), "vrl_key_used_ratio{limit=\"r\",key=\"%s|acme\"}", h);
	{
		uint64_t until = vrl_now_ns() + WAIT_NS;

		while (!(vrld_http_get(port, "/metrics", page, 1 << 20) && strstr(page, want))) {
			struct timespec ts = { 0, 20 * 1000 * 1000 };

			if (vrl_now_ns() > until)
				fail_msg("no %s in:\n%s", want, page);
			nanosleep(&ts, NULL);
		}
	}
	no_run_of("the metrics page", page, strlen(page), token);
	no_run_of("the metrics page", page, strlen(page), user);
	snprintf(want, sizeof(want), "vrl_key_used_ratio{limit=\"u\",key=\"%s\"}", hu);
	has("the metrics page", page, want);
	has("the metrics page", page, "vrl_key_used_ratio{limit=\"v\",key=\"VIN42\"}");
	free(page);

	/* the textfile, the alert's environment and the log */
	snprintf(want, sizeof(want), "key=\"%s|acme\"", h);
	free(wait_for_text(prom, want));
	file_clean("the textfile", prom);
	snprintf(want, sizeof(want), "VRL_ALERT_KEY=%s\n", h);
	free(wait_for_text(envfile, want));
	file_clean("the alert environment", envfile);
	snprintf(want, sizeof(want), "key=\"%s\"", h);
	free(wait_for_text(logpath, want));
	file_clean("vrld's log", logpath);

	/* every vrlctl view, text and JSON */
	has("vrlctl keys", vrlctl("keys", NULL), h);
	view_clean("keys");
	view_clean("--json keys");
	view_clean("status");
	view_clean("--json status");
	view_clean("events");
	view_clean("--json events");
	view_clean("top --once --wait 100ms");
	view_clean("--json top --once --wait 100ms");
	view_clean("show r --token sk_live_Q7xK2mWv9pLr4ZsT8nYb --org acme");
	view_clean("--json show r --token sk_live_Q7xK2mWv9pLr4ZsT8nYb --org acme");
	view_clean("show u --user user-5551234");
	view_clean("--json show samsara.token --token sk_live_Q7xK2mWv9pLr4ZsT8nYb");
	view_clean("acquire --api r --token sk_live_Q7xK2mWv9pLr4ZsT8nYb --org acme");
	view_clean("--json acquire --api r --token sk_live_Q7xK2mWv9pLr4ZsT8nYb --org acme");
	view_clean("cooldown samsara.token 1s --token sk_live_Q7xK2mWv9pLr4ZsT8nYb");
	view_clean("--json reset samsara.token --token sk_live_Q7xK2mWv9pLr4ZsT8nYb");
	has("vrlctl show", vrlctl("--json show r --token sk_live_Q7xK2mWv9pLr4ZsT8nYb --org acme",
				  NULL), h);

	/* the checkpoint, written at the latest when vrld stops */
	vrl_close(c);
	kill(vrld_pid, SIGTERM);
	assert_int_equal(vrld_wait_exit(vrld_pid, WAIT_NS), 0);
	vrld_pid = 0;
	s = slurp(ckpt, &len);
	assert_non_null(s);
	assert_non_null(memmem(s, len, h, VRL_LABEL_HASH_LEN));
	free(s);
	file_clean("the checkpoint", ckpt);
	file_clean("vrld's log", logpath);
}

/* A config that asks to show the token, or a field nothing is keyed by,
 * is refused with a message that says which and where. */
static void test_labels_config_errors(void **state)
{
	char text[512], cmd[1200];
	const char *bad[][2] = {
		{ "labels: {clear: [token]}\n", "labels.clear[0]: a token is an API secret" },
		{ "labels: {clear: [vehicel]}\n", "expected vehicle" },
		{ "labels: {clear: [colour]}\n", "unknown field \"colour\": no limit is keyed by it" },
		{ "labels: {clear: [org, org]}\n", "given twice" },
		{ "labels: {show: [org]}\n", "labels.show: unknown key" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "%slimits:\n  - {name: r, per: [token, make], "
			 "rate: 1/s}\n", bad[i][0]);
		vrld_write_file(conf, text);
		snprintf(cmd, sizeof(cmd), "'%s' -c '%s' --check 2>&1", vrld_path, conf);
		assert_int_not_equal(run_capture(cmd, text, sizeof(text)), 0);
		has(bad[i][0], text, bad[i][1]);
		has(bad[i][0], text, ":1:");
	}
	/* (what may be shown, attributes included: tests/unit/test_config.c) */
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_token_never_shown, teardown),
		cmocka_unit_test_teardown(test_labels_config_errors, teardown),
	};
	char rm[300];
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: %s VRLD VRLCTL\n", argv[0]);
		return 2;
	}
	vrld_path = argv[1];
	vrlctl_path = argv[2];
	snprintf(dir, sizeof(dir), "/tmp/vrl-secrets-XXXXXX");
	if (!mkdtemp(dir))
		return 2;
	snprintf(seg, sizeof(seg), "/vrl-test-secrets-%d", (int)getpid());
	snprintf(conf, sizeof(conf), "%s/vrl.yaml", dir);
	snprintf(prom, sizeof(prom), "%s/vrl.prom", dir);
	snprintf(ckpt, sizeof(ckpt), "%s/vrl.ckpt", dir);
	snprintf(logpath, sizeof(logpath), "%s/vrld.log", dir);
	vrl_seg_unlink(seg);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
	if (system(rm) != 0)
		rc = rc ? rc : 1;
	return rc;
}
