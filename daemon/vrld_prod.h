/*
 * vrld_prod.h - vrld's durability and observability around its main loop:
 * checkpoints (checkpoint.h) and metrics (metrics.h), driven from vrld.c by
 * four calls: prepare before the segment is opened, start once it is,
 * tick every loop, stop at exit.
 */
#ifndef VRLD_PROD_H
#define VRLD_PROD_H

#include <stdbool.h>
#include <stdint.h>

#include "admin.h"
#include "checkpoint.h"
#include "config.h"
#include "metrics.h"

/* vrld's structured logger: level, then a printf format of key=value pairs. */
typedef void vrld_log_fn(const char *level, const char *fmt, ...);

struct vrld_prod {
	vrld_log_fn *log;            /* set by the caller */
	struct vrl_ckpt ck;          /* read by prepare, applied by start */
	struct vrl_metrics *metrics; /* NULL: no metrics configured */
	uint64_t next_ckpt;          /* monotonic ns of the next checkpoint */
	uint64_t next_textfile;      /* and of the next metrics textfile */
	bool ckpt_failing;           /* log a failure streak once */
	bool textfile_failing;
};

/*
 * Before the segment is opened: read the checkpoint a fresh segment is to
 * be restored from (none when the segment exists and @replace is false, or
 * with @discard). Returns 0, or -1 when vrld must not start: the checkpoint
 * is damaged or of another format (logged, with what to do).
 */
int vrld_prod_prepare(struct vrld_prod *p, const struct vrl_daemon_config *dc, bool discard,
		      bool replace);

/*
 * With the segment open: restore the checkpoint into it unless it was
 * adopted, then start the metrics. Returns 0, or -1 when vrld must not
 * start (the metrics address is bad or taken).
 */
int vrld_prod_start(struct vrld_prod *p, struct vrl_seg *seg, const struct vrl_daemon_config *dc);

/* Every loop: a checkpoint and a metrics textfile when they are due. */
void vrld_prod_tick(struct vrld_prod *p, struct vrl_seg *seg, const struct vrl_daemon_config *dc);

/* An alert of limit @name was drained: count it in the metrics, if any. */
void vrld_prod_alert(struct vrld_prod *p, const char *name);

/* The sweep evicted @by_limit[i] keys of limit i of @cfg: count them per
 * limit in the metrics, if any. */
void vrld_prod_evictions(struct vrld_prod *p, const struct vrl_seg_config *cfg,
			 const uint64_t *by_limit);

/* At exit: stop the metrics, then write a last checkpoint (@seg NULL: none). */
void vrld_prod_stop(struct vrld_prod *p, struct vrl_seg *seg, const struct vrl_daemon_config *dc);

#endif /* VRLD_PROD_H */
