/*
 * check.c - the checks start-up, --check and reloads share (see
 * check.h).
 */
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "atomic_file.h"
#include "metrics.h"

#define PROBLEM_MAX 1024u     /* bytes of one problem's text */

struct checker {
	const struct vrl_daemon_config *dc;
	vrld_problem_fn *problem;
	void *arg;
	unsigned n;
};

static void report(struct checker *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(struct checker *c, const char *fmt, ...)
{
	char text[PROBLEM_MAX];
	va_list ap;
	int n;

	c->n++;
	if (!c->problem)
		return;
	n = snprintf(text, sizeof(text), "%s: ", c->dc->cfg.source);
	va_start(ap, fmt);
	vsnprintf(text + n, sizeof(text) - (size_t)n, fmt, ap);
	va_end(ap);
	c->problem(c->arg, text);
}

void vrld_fmt_size(uint64_t bytes, char *buf, size_t cap)
{
	static const char *const units[] = { "bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	unsigned u = 0;

	while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, cap, "%llu bytes", (unsigned long long)bytes);
	else
		snprintf(buf, cap, "%.1f %s", v, units[u]);
}

static void check_metrics(struct checker *c)
{
	char why[512];

	if (c->dc->prod.metrics[0] &&
	    vrl_metrics_addr_check(c->dc->prod.metrics, why, sizeof(why)) != 0)
		report(c, "%s", why);
}

static void check_dir(struct checker *c, const char *field, const char *path)
{
	char why[512];

	if (path[0] && vrl_afile_check_dir(path, why, sizeof(why)) != 0)
		report(c, "%s: %s", field, why);
}

static void check_alert_command(struct checker *c)
{
	const char *cmd = c->dc->alert_command;
	struct stat st;

	if (!cmd[0])
		return;
	if (stat(cmd, &st) != 0)
		report(c, "daemon.alert_command %s: %s", cmd, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		report(c, "daemon.alert_command %s: not a regular file, expected a program",
		       cmd);
	else if (faccessat(AT_FDCWD, cmd, X_OK, AT_EACCESS) != 0)
		report(c, "daemon.alert_command %s: not executable by vrld (uid %u): expected "
		       "a program vrld may run (chmod +x)", cmd, (unsigned)geteuid());
}

/* The bytes of the segment @dc makes: key table, holders, events, rings. */
static int segment_bytes(const struct vrl_daemon_config *dc, uint64_t *bytes)
{
	struct vrl_seg_config *lay = malloc(sizeof(*lay));
	struct vrl_seg_geometry g;
	int rc;

	if (!lay)
		return -ENOMEM;
	*lay = dc->cfg;
	rc = vrl_seg_geometry_cfg(dc->seg.keys, lay, &g);
	free(lay);
	if (rc == 0)
		*bytes = g.size;
	return rc;
}

/* Bytes that the segment named @name holds in /dev/shm already; 0: none. */
static uint64_t existing_bytes(const char *name)
{
	struct stat st;
	int fd = shm_open(name, O_RDONLY, 0);
	uint64_t held = 0;

	if (fd < 0)
		return 0;
	if (fstat(fd, &st) == 0)
		held = (uint64_t)st.st_blocks * 512u;
	close(fd);
	return held;
}

static void measure_shm(const char *name, struct vrld_seg_room *r)
{
	struct statvfs vfs;

	if (statvfs(VRLD_SHM_DIR, &vfs) != 0)
		return;
	r->shm_known = true;
	r->shm_total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
	r->shm_free = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	r->existing = existing_bytes(name);
}

static void check_segment(struct checker *c, enum vrld_check_when when, struct vrld_seg_room *r)
{
	const struct vrl_daemon_config *dc = c->dc;
	char need[32], have[32], held[32];

	if (segment_bytes(dc, &r->bytes) != 0) {
		report(c, "segment.keys: a segment of %llu keys does not fit in memory, expected "
		       "fewer keys", (unsigned long long)dc->seg.keys);
		return;
	}
	vrld_fmt_size(r->bytes, need, sizeof(need));
	if (r->bytes > r->max_size) {
		vrld_fmt_size(r->max_size, have, sizeof(have));
		report(c, "segment.keys: segment %s of %llu keys needs %s (%llu bytes), over "
		       "segment.max_size %s: expected fewer keys, or a larger segment.max_size "
		       "if the host has the memory", dc->seg.name, (unsigned long long)dc->seg.keys,
		       need, (unsigned long long)r->bytes, have);
		return;
	}
	/* a reload keeps the segment as it is: only its ceiling is new. Nor
	 * may it open the object: closing any descriptor of it drops the
	 * record lock a serving vrld holds on it (vrl_seg_lock_pid) */
	if (when == VRLD_CHECK_RELOAD)
		return;
	measure_shm(dc->seg.name, r);
	if (!r->shm_known)
		return;
	if (r->bytes > r->shm_total) {
		vrld_fmt_size(r->shm_total, have, sizeof(have));
		report(c, "segment.keys: segment %s needs %s (%llu bytes), more than "
		       VRLD_SHM_DIR " holds (%s in all): expected fewer keys, or a larger "
		       VRLD_SHM_DIR, dc->seg.name, need, (unsigned long long)r->bytes, have);
	} else if (r->bytes > r->shm_free + r->existing) {
		vrld_fmt_size(r->shm_free, have, sizeof(have));
		vrld_fmt_size(r->existing, held, sizeof(held));
		report(c, "segment.keys: segment %s needs %s (%llu bytes), more than "
		       VRLD_SHM_DIR " has free (%s, and %s held by the segment of that name "
		       "now): expected fewer keys, or room made in " VRLD_SHM_DIR, dc->seg.name,
		       need, (unsigned long long)r->bytes, have, held);
	}
}

unsigned vrld_check_config(const struct vrl_daemon_config *dc, enum vrld_check_when when,
			   struct vrld_seg_room *room, vrld_problem_fn *problem, void *arg)
{
	struct checker c = { .dc = dc, .problem = problem, .arg = arg };
	struct vrld_seg_room own;

	if (!room)
		room = &own;
	memset(room, 0, sizeof(*room));
	room->max_size = dc->max_size;
	check_segment(&c, when, room);
	check_metrics(&c);
	check_dir(&c, "daemon.checkpoint", dc->prod.checkpoint);
	check_dir(&c, "daemon.metrics_textfile", dc->prod.metrics_textfile);
	check_alert_command(&c);
	return c.n;
}
