/*
 * reload.c - `vrlctl reload`: ask the vrld serving the segment to
 * reload its config, and say whether it did.
 *
 * vrld records each reload it handles in the segment header (a count, and
 * the error of a refused one; see vrl_seg_note_reload). vrlctl reads the
 * count, sends SIGHUP to vrld, and waits for the count to move: a count
 * that moved with an empty error means the new config is in force. Signals
 * sent close together may be handled as one reload; the outcome read is
 * then that reload's, which covers this request too.
 *
 * Which process is vrld. The header's daemon_pid is written by vrld, but
 * every process of the segment's group can write it too, and vrlctl often
 * runs as root: signalling whatever pid it holds would let any group
 * member have root signal any process. So the pid comes from the kernel:
 * vrld holds a POSIX record lock on the shm object (vrl_seg_lock_pid), and
 * F_GETLK names the process holding it. vrlctl opens a pidfd on that pid,
 * asks the kernel again (still the holder: the pidfd is that very process,
 * since a lock dies with its process and a recycled pid would not hold
 * it), checks that it runs as the object's owner (vrld's user, which
 * vrl_open and vrld check) and that the header names the same pid, and
 * signals through the pidfd, which a recycled pid cannot redirect.
 * Anything else is refused, and nothing is signalled.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "segment.h"
#include "vrlctl.h"
#include "json_writer.h"

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

/* The effective uid process @pid runs as (the caller holds a pidfd on it,
 * so the pid stays that process's while /proc is read); -1 when unknown. */
static long euid_of(pid_t pid)
{
	char path[64], line[256];
	unsigned long real, eff;
	long uid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Uid: %lu %lu", &real, &eff) == 2) {
			uid = (long)eff;
			break;
		}
	fclose(f);
	return uid;
}

/*
 * A pidfd on the vrld that serves @c's segment, proven as the file's
 * opening comment says, or -1 after reporting why not (nothing signalled).
 */
static int vrld_pidfd(const struct ctl *x, struct vrl_client *c, pid_t *out)
{
	int32_t named = atomic_load_explicit(&vrl__view(c)->hdr->daemon_pid, memory_order_relaxed);
	pid_t holder = vrl_seg_lock_pid(vrl__fd(c), false);
	struct stat st = { 0 };
	int pidfd;

	if (holder < 0) {
		ctl_fail(x, -errno, "cannot ask which process holds the segment's lock: %s",
			 strerror(errno));
		return -1;
	}
	if (holder == 0) {
		ctl_fail(x, 0, "no vrld serves this segment (no process holds its lock, or the one "
			 "that does is outside this pid namespace): start it (systemctl start vrld)");
		return -1;
	}
	if (named != holder) {
		ctl_fail(x, 0, "the segment header names pid %d as vrld, but pid %d holds the "
			 "segment's lock: the header was written by a process of the segment's "
			 "group; not signalling anyone. Send SIGHUP to vrld yourself (systemctl "
			 "reload vrld) if pid %d is it", (int)named, (int)holder, (int)holder);
		return -1;
	}
	pidfd = (int)syscall(SYS_pidfd_open, holder, 0);
	if (pidfd < 0) {
		ctl_fail(x, -errno, "cannot open vrld (pid %d): %s", (int)holder, strerror(errno));
		return -1;
	}
	/* the pidfd is the lock holder's, and the holder runs as the object's
	 * owner: vrld's user, the one vrl_open() and vrld trust */
	if (vrl_seg_lock_pid(vrl__fd(c), false) != holder || fstat(vrl__fd(c), &st) != 0 ||
	    euid_of(holder) != (long)st.st_uid) {
		ctl_fail(x, 0, "pid %d, holding the segment's lock, is not vrld running as the "
			 "segment's owner (uid %u); not signalling it", (int)holder,
			 (unsigned)st.st_uid);
		close(pidfd);
		return -1;
	}
	*out = holder;
	return pidfd;
}

int ctl_cmd_reload(const struct ctl *x)
{
	struct vrl_client *c;
	struct vrl_reload_status before, now;
	uint64_t until;
	pid_t pid;
	int pidfd = -1, rc = CTL_EXIT_NO;

	if (x->npos != 0)
		return ctl_usage_error("reload", "reload takes no arguments");
	if (!(c = ctl_open(x, true)))
		return CTL_EXIT_ERROR;
	pidfd = vrld_pidfd(x, c, &pid);
	if (pidfd < 0)
		goto out;
	if (vrl_seg_read_reload(vrl__view(c)->hdr, &before) != 0) {
		ctl_fail(x, VRL_EBUSY, "cannot read the last reload's outcome");
		goto out;
	}
	if (syscall(SYS_pidfd_send_signal, pidfd, SIGHUP, NULL, 0) != 0) {
		ctl_fail(x, 0, "cannot signal vrld (pid %d): %s%s", (int)pid, strerror(errno),
			 errno == EPERM ? "; run as vrld's user or root" : "");
		goto out;
	}
	until = vrl_now_ns() + (x->wait_ns ? x->wait_ns : RELOAD_WAIT_NS);
	do {
		nap();
		if (vrl_seg_read_reload(vrl__view(c)->hdr, &now) == 0 && now.count != before.count) {
			uint64_t gen = atomic_load_explicit(&vrl__view(c)->hdr->config_gen,
							    memory_order_acquire);

			report(x, now.error[0] == '\0', gen, now.error);
			rc = now.error[0] == '\0' ? CTL_EXIT_OK : CTL_EXIT_NO;
			goto out;
		}
	} while (vrl_now_ns() < until);
	ctl_fail(x, 0, "vrld (pid %d) did not handle the reload in time; see its log", (int)pid);
out:
	if (pidfd >= 0)
		close(pidfd);
	vrl_close(c);
	return rc;
}
