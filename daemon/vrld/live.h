/*
 * live.h - vrld's durability and observability around its main loop:
 * the config in force (under RCU), checkpoints (checkpoint.h, written by a
 * thread of their own) and metrics (metrics.h), driven from vrld.c: prepare
 * before the segment is opened, start once it is, publish at each reload,
 * tick every loop, stop at exit.
 */
#ifndef VRLD_PROD_H
#define VRLD_PROD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <urcu-bp.h>

#include "upkeep.h"
#include "checkpoint.h"
#include "config.h"
#include "metrics.h"
#include "check.h"
#include "log.h"

/* vrld's structured logger: level, message, then fields ending with
 * LOG_END (log.h). */
typedef void vrld_log_fn(const char *level, const char *msg, ...);

/*
 * The config in force, as one immutable object per generation, published to
 * vrld's threads under RCU (liburcu-bp):
 *   - vrld's main thread alone replaces it (vrld_prod_publish), and reads it
 *     without a read-side section: it is the updater, and frees nothing
 *     that it still holds.
 *   - The checkpointer thread reads it inside rcu_read_lock(): the
 *     checkpoint path and interval, and the limits that name each key.
 *   - A replaced config is freed by call_rcu once no reader can hold it, so
 *     a reload never waits for a checkpoint in progress, and a checkpoint
 *     never sees a config half-written or freed.
 */
struct vrld_live {
	struct rcu_head rcu;
	uint64_t generation;            /* the segment's config generation it is */
	uint64_t prev_gen;              /* the generation before (0: none) */
	int prev_map[VRL_MAX_LIMITS];   /* limit i of prev_gen is limit prev_map[i]
	                                   here (-1: gone) */
	struct vrl_daemon_config dc;
};

struct vrld_prod {
	vrld_log_fn *log;            /* set by the caller */
	struct vrl_seg *seg;         /* set by start */
	_Atomic(struct vrld_live *) live; /* RCU: the config in force */
	struct vrl_ckpt ck;          /* read by prepare, applied by start */
	struct vrld_seg_room room;   /* the segment's size and room, by prepare */
	struct vrl_metrics *metrics; /* NULL: no metrics configured */
	uint64_t next_textfile;      /* monotonic ns of the next metrics textfile */
	bool textfile_failing;       /* log a failure streak once */

	/* the checkpointer thread; ck_lock guards the three words after it */
	pthread_t ck_thread;
	bool ck_running;
	pthread_mutex_t ck_lock;
	pthread_cond_t ck_wake;      /* a reload or the stop */
	bool ck_stop;
	bool ck_kick;                /* re-read the interval now */
	uint64_t ck_last;            /* monotonic ns of the last checkpoint */
	bool ckpt_failing;           /* the checkpointer's, then stop's after the join */
};

/*
 * Before the segment is opened (start-up and --check alike): check @dc
 * (vrld_check_config: every problem logged as "refusing to start"), then
 * read the checkpoint a fresh segment is to be restored from (none when the
 * segment exists and @replace is false, or with @discard). Touches nothing
 * host-wide. Returns 0, or -1 when vrld must not start: a problem of the
 * config, or a checkpoint damaged or of another format (logged, with what
 * to do).
 */
int vrld_prod_prepare(struct vrld_prod *p, const struct vrl_daemon_config *dc, bool discard,
		      bool replace);

/*
 * With the segment open and @dc published in it: make @dc the config in
 * force (vrld_prod_live), restore the checkpoint unless the segment was
 * adopted, then start the metrics and the checkpointer. Returns 0, or -1
 * when vrld must not start (the metrics address is bad or taken).
 */
int vrld_prod_start(struct vrld_prod *p, struct vrl_seg *seg, const struct vrl_daemon_config *dc);

/* The config in force, for vrld's main thread (the updater). */
struct vrld_live *vrld_prod_live(struct vrld_prod *p);

/*
 * A reload: check @next against the segment, give the segment @next's
 * mode and group, make @next the config in force, then publish it in the
 * segment; the metrics take its metrics_top (its textfile and checkpoint
 * settings are read from the config in force as they are used). Returns
 * 0, or -errno with @why (nothing changed). vrld's main thread only.
 * @next may be the config in force itself, which a rebuilt segment needs
 * published anew (vrl_seg_regrow): it is copied before its object is
 * retired.
 */
int vrld_prod_publish(struct vrld_prod *p, const struct vrl_daemon_config *next, char *why,
		      size_t whylen);

/* Every loop: a metrics textfile when it is due. */
void vrld_prod_tick(struct vrld_prod *p);

/* An alert of limit @name was drained: count it in the metrics, if any. */
void vrld_prod_alert(struct vrld_prod *p, const char *name);

/* The sweep evicted @by_limit[i] keys of limit i of @cfg: count them per
 * limit in the metrics, if any. */
void vrld_prod_evictions(struct vrld_prod *p, const struct vrl_seg_config *cfg,
			 const uint64_t *by_limit);

/* At exit: stop the checkpointer and the metrics, then write a last
 * checkpoint (none if start was not reached). */
void vrld_prod_stop(struct vrld_prod *p);

#endif /* VRLD_PROD_H */
