/*
 * glink.h - vrld's link to the multi-host engine (daemon/global): started
 * when the config has a global: section, fed and read once a tick without
 * ever waiting on Redis, stopped at exit. Main loop only.
 */
#ifndef VRLD_GLINK_H
#define VRLD_GLINK_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "gkeys.h"
#include "global.h"
#include "gpublish.h"
#include "live.h"

struct vrld_glink {
	struct vrl_global *g;        /* NULL: no global: section */
	vrld_log_fn *log;
	size_t nep;
	uint64_t rounds;             /* rounds seen at the last tick */
	bool was_up[VRL_GLOBAL_ENDPOINTS_MAX];   /* for the log: once per change */
	char said[VRL_GLOBAL_ENDPOINTS_MAX][160]; /* the last failure logged */
	struct vrld_gkeys keys;      /* the global keys of the segment (gkeys.h) */
	struct vrld_gstatus_row *rows;   /* the keys as published (key_rows) */
	char (*labels)[VRL_LABEL_MAX];   /* their slots' labels, terminated */
	size_t nrows;                /* rows and labels allocated */
	struct vrld_gstatus gst;     /* the segment's global status area: attach
	                                it after start (vrld_gstatus_attach) */
};

/* The engine's config of global: section @gs; @eps holds its endpoints. */
void vrld_glink_config(const struct vrl_global_settings *gs, struct vrl_global_config *cfg,
		       const char *eps[VRL_GLOBAL_ENDPOINTS_MAX]);

/*
 * Start the engine for @dc's global: section (nothing without one). 0, or
 * -1 with the reason logged: vrld must not start.
 */
int vrld_glink_start(struct vrld_glink *k, const struct vrl_daemon_config *dc,
		     vrld_log_fn *log);

/* Sleep @period_ns from now; while this host has global keys, in steps of
 * VRL_SHARE_FILL_NS that add each key's credit (gkeys.c K7). */
void vrld_glink_sleep(struct vrld_glink *k, struct vrl_seg *s, uint64_t period_ns);

/* One tick: hand the engine this host's global keys (those of segment
 * @s), take its answers and apply them to the keys' share words, log each
 * endpoint's change (reachable, or why not). Never waits. */
void vrld_glink_tick(struct vrld_glink *k, struct vrl_seg *s);

/* The engine's metric families (vrl_metrics_extra_fn; @arg: the link). */
size_t vrld_glink_metrics(void *arg, char *buf, size_t cap);

/* Stop the engine (its thread joined): every global key of @s clamped to
 * none, then its share released in Redis. */
void vrld_glink_stop(struct vrld_glink *k, struct vrl_seg *s);

/* Why a reload from @cur to @next cannot apply global: (written to @why),
 * or false when it can: the section is read at start only. */
bool vrld_glink_needs_restart(const struct vrl_daemon_config *cur,
			      const struct vrl_daemon_config *next, char *why, size_t len);

#endif /* VRLD_GLINK_H */
