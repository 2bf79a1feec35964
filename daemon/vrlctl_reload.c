/*
 * vrlctl_reload.c - `vrlctl reload`: ask the vrld serving the segment to
 * reload its config, and say whether it did.
 *
 * vrld records each reload it handles in the segment header (a count, and
 * the error of a refused one; see vrl_seg_note_reload). vrlctl reads the
 * count, sends SIGHUP to the header's daemon_pid, and waits for the count to
 * move: a count that moved with an empty error means the new config is in
 * force. Signals sent close together may be handled as one reload; the
 * outcome read is then that reload's, which covers this request too.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "vrlctl.h"
#include "vrlctl_json.h"

#define RELOAD_WAIT_NS  (UINT64_C(10) * 1000000000u)   /* default --wait */
#define POLL_NS         (20u * 1000u * 1000u)

static void report(const struct ctl *x, bool ok, uint64_t gen, const char *error)
{
	struct json j;

	if (!x->json) {
		if (ok)
			printf("reloaded: config generation %llu\n", (unsigned long long)gen);
		else
			printf("reload refused, the running config kept (generation %llu): %s\n",
			       (unsigned long long)gen, error);
		return;
	}
	json_init(&j, stdout);
	json_obj_begin(&j, NULL);
	json_str(&j, "segment", x->segment);
	json_bool(&j, "reloaded", ok);
	json_u64(&j, "generation", gen);
	json_str(&j, "error", ok ? NULL : error);
	json_obj_end(&j);
	json_finish(&j);
}

static void nap(void)
{
	struct timespec ts = { 0, POLL_NS };

	nanosleep(&ts, NULL);
}

int ctl_cmd_reload(const struct ctl *x)
{
	struct vrl_client *c;
	struct vrl_reload_status before, now;
	uint64_t until;
	int32_t pid;
	int rc = CTL_EXIT_NO;

	if (x->npos != 0)
		return ctl_usage_error("reload", "reload takes no arguments");
	if (!(c = ctl_open(x, true)))
		return CTL_EXIT_ERROR;
	pid = atomic_load_explicit(&c->hdr->daemon_pid, memory_order_relaxed);
	if (pid <= 0 || (kill(pid, 0) != 0 && errno == ESRCH)) {
		ctl_fail(x, 0, "no vrld serves this segment: start it (systemctl start vrld)");
		goto out;
	}
	if (vrl_seg_read_reload(c->hdr, &before) != 0) {
		ctl_fail(x, VRL_EBUSY, "cannot read the last reload's outcome");
		goto out;
	}
	if (kill(pid, SIGHUP) != 0) {
		ctl_fail(x, 0, "cannot signal vrld (pid %d): %s%s", (int)pid, strerror(errno),
			 errno == EPERM ? "; run as vrld's user or root" : "");
		goto out;
	}
	until = vrl_now_ns() + (x->wait_ns ? x->wait_ns : RELOAD_WAIT_NS);
	do {
		nap();
		if (vrl_seg_read_reload(c->hdr, &now) == 0 && now.count != before.count) {
			uint64_t gen = atomic_load_explicit(&c->hdr->config_gen,
							    memory_order_acquire);

			report(x, now.error[0] == '\0', gen, now.error);
			rc = now.error[0] == '\0' ? CTL_EXIT_OK : CTL_EXIT_NO;
			goto out;
		}
	} while (vrl_now_ns() < until);
	ctl_fail(x, 0, "vrld (pid %d) did not handle the reload in time; see its log", (int)pid);
out:
	vrl_close(c);
	return rc;
}
