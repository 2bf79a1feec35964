/*
 * live.c - the live config, checkpoints and metrics around vrld's loop
 * (see live.h).
 *
 * Threads: vrld's main thread (reloads, the tick, metrics renders, the last
 * checkpoint), the checkpointer (every other checkpoint), libmicrohttpd's
 * (scrapes, metrics.c). What they share:
 *   - The live config: RCU, as live.h says. LIVE.L1 (release exchange, by
 *     the main thread) pairs with LIVE.L2 (acquire load, by readers): a reader
 *     that sees a new config sees all of it.
 *   - The segment: only read by the checkpointer (relaxed loads, each key
 *     re-checked by its tag, checkpoint.c), written by workers and the main
 *     thread as always.
 *   - ck_lock: the checkpointer's schedule (stop, kick, last), never held
 *     across a checkpoint.
 * A checkpoint names keys without renumbering any: the renote belongs to the
 * main thread. A note is of the config in force, of the generation before
 * (prev_map), or of a config published since the reader took its own (it
 * loads the pointer again): a reload, and the republish of a segment rebuilt
 * after a truncation, publishes the new config here before it publishes it
 * in the segment, so every note the segment can hold is of one of those,
 * but for a key that a worker stalled across two reloads inserted (left out
 * of that checkpoint, named again after vrld's sweep).
 */
#include "live.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vrl_internal.h"
#include "clock.h"
#include "guard.h"
#include "tsan.h"

/* Readers release it as they leave a read-side section; a config freed
 * after the grace period acquires it (tsan.h). */
static char rcu_readers;

#define TEXTFILE_NS  UINT64_C(1000000000)    /* metrics textfile period: 1 s */

/* ---- checkpoints ------------------------------------------------------------ */

/* A checkpoint matters only to a fresh segment: an existing one has the state. */
static bool segment_exists(const char *name)
{
	int fd = shm_open(name, O_RDONLY, 0);

	if (fd < 0)
		return errno != ENOENT;
	close(fd);
	return true;
}

static void refuse_start(void *arg, const char *problem)
{
	struct vrld_prod *p = arg;

	p->log("error", "refusing to start", LOG_S("reason", problem), LOG_END);
}

int vrld_prod_prepare(struct vrld_prod *p, const struct vrl_daemon_config *dc, bool discard,
		      bool replace)
{
	const char *path = dc->prod.checkpoint;
	struct vrl_seg_geometry g;
	char why[512];
	int rc;

	memset(&p->ck, 0, sizeof(p->ck));
	if (vrld_check_config(dc, VRLD_CHECK_START, &p->room, refuse_start, p) != 0)
		return -1;
	if (!path[0] || (segment_exists(dc->seg.name) && !replace))
		return 0;
	if (discard) {
		p->log("warn", "--discard-checkpoint: durable counters start empty",
		       LOG_S("checkpoint", path), LOG_END);
		return 0;
	}
	/* a checkpoint holds at most one record per slot of the segment */
	rc = vrl_seg_geometry(dc->seg.keys, &g);
	if (rc == 0)
		rc = vrl_ckpt_load_keys(path, g.nslots, &p->ck, why, sizeof(why));
	if (rc == -ENOENT) {
		p->log("info", "no checkpoint yet; durable counters start empty",
		       LOG_S("checkpoint", path), LOG_END);
		return 0;
	}
	if (rc == 0)
		return 0;
	p->log("error", "refusing to start: the checkpoint cannot be restored",
	       LOG_S("detail", why), LOG_S("checkpoint", path),
	       LOG_S("hint", "move the checkpoint aside (to keep it for inspection) or start "
		     "once with --discard-checkpoint to start with empty durable counters"),
	       LOG_END);
	return -1;
}

static void ckpt_restore(struct vrld_prod *p, struct vrl_seg *seg,
			 const struct vrl_daemon_config *dc)
{
	struct vrl_ckpt_stats st;

	if (!p->ck.recs || seg->adopted)
		return;
	vrl_ckpt_apply(seg, &p->ck, &st);
	p->log(st.skipped || st.failed ? "warn" : "info", "checkpoint restored",
	       LOG_S("checkpoint", dc->prod.checkpoint),
	       LOG_I("age_s", time(NULL) - (time_t)(p->ck.written_rt / 1000000000u)),
	       LOG_U("restored", st.restored), LOG_U("skipped_limit_gone_or_changed", st.skipped),
	       LOG_U("expired", st.expired), LOG_U("no_slot", st.failed), LOG_END);
}

/* Log a checkpoint's outcome: a failure streak once, and its end. */
static void ckpt_logged(struct vrld_prod *p, int rc, const char *path, uint64_t n,
			const char *why, bool final)
{
	if (rc != 0) {
		if (!p->ckpt_failing || final)
			p->log("error", "checkpoint not written", LOG_S("detail", why), LOG_END);
		p->ckpt_failing = true;
		return;
	}
	if (p->ckpt_failing || final)
		p->log("info", "checkpoint written", LOG_S("checkpoint", path), LOG_U("keys", n),
		       LOG_END);
	p->ckpt_failing = false;
}

/* The checkpoint's callback: the limit a note names, under rcu_read_lock(). */
static const struct vrl_seg_limit *live_limit(void *arg, uint32_t note)
{
	struct vrld_prod *p = arg;
	uint32_t gen = VRL_NOTE_GEN(note), i = VRL_NOTE_INDEX(note);

	for (int tries = 0; tries < 2; tries++) {
		/* LIVE.L2 acquire: pairs with LIVE.L1, the whole config */
		const struct vrld_live *l = atomic_load_explicit(&p->live, memory_order_acquire);

		if (gen == ((uint32_t)l->generation & VRL_NOTE_GEN_MASK))
			return i < l->dc.cfg.nlimits ? &l->dc.cfg.limits[i] : NULL;
		if (l->prev_gen && gen == ((uint32_t)l->prev_gen & VRL_NOTE_GEN_MASK))
			return i < VRL_MAX_LIMITS && l->prev_map[i] >= 0 ?
			       &l->dc.cfg.limits[l->prev_map[i]] : NULL;
		/* a reload replaced the config since: its successor knows the note */
	}
	return NULL;
}

/* One checkpoint from the checkpointer thread. */
static void ckpt_now(struct vrld_prod *p)
{
	char path[VRL_PATH_TEXT_MAX], why[512];
	struct vrl_ckpt_image img = { 0 };
	const struct vrld_live *l;
	/* a segment shrunk under us reads as zero pages (guard.c): what it
	 * shows then must not overwrite the last good checkpoint */
	uint64_t state = vrl_guard_state(p->seg->guard);
	int rc = 0;

	if (vrl_guard_damaged(state))
		return;
	rcu_read_lock();
	l = atomic_load_explicit(&p->live, memory_order_acquire);   /* LIVE.L2 */
	memcpy(path, l->dc.prod.checkpoint, sizeof(path));
	/* the scan reads configs through live_limit: inside the section */
	if (path[0])
		rc = vrl_ckpt_collect(&p->seg->view, live_limit, p, &img, why, sizeof(why));
	tsan_release(&rcu_readers);
	rcu_read_unlock();
	if (!path[0] || (rc == 0 && vrl_guard_state(p->seg->guard) != state)) {
		vrl_ckpt_image_free(&img);
		return;
	}
	/* the file work, outside: a slow disk holds no config */
	if (rc == 0)
		rc = vrl_ckpt_write(path, &img, why, sizeof(why));
	ckpt_logged(p, rc, path, img.n, why, false);
	vrl_ckpt_image_free(&img);
}

static uint64_t live_interval(struct vrld_prod *p)
{
	uint64_t ns;

	rcu_read_lock();
	/* LIVE.L2 acquire: pairs with LIVE.L1, the whole config */
	ns = atomic_load_explicit(&p->live, memory_order_acquire)->dc.prod.checkpoint_interval_ns;
	tsan_release(&rcu_readers);
	rcu_read_unlock();
	return ns;
}

/*
 * The checkpointer: a checkpoint every checkpoint_interval of the config in
 * force, away from the main thread, so that a slow fsync never delays the
 * heartbeat, the sweep or an alert. A reload wakes it to re-read the
 * interval; the stop wakes it to end (the last checkpoint is stop's).
 */
static void *checkpointer(void *arg)
{
	struct vrld_prod *p = arg;

	pthread_mutex_lock(&p->ck_lock);
	while (!p->ck_stop) {
		uint64_t due = p->ck_last + live_interval(p);
		struct timespec ts = vrl_ns_ts(due);

		p->ck_kick = false;
		if (vrl_now_ns() < due) {
			while (!p->ck_stop && !p->ck_kick &&
			       pthread_cond_timedwait(&p->ck_wake, &p->ck_lock, &ts) != ETIMEDOUT)
				;
			continue;   /* re-read the interval, or the stop */
		}
		pthread_mutex_unlock(&p->ck_lock);
		ckpt_now(p);
		pthread_mutex_lock(&p->ck_lock);
		p->ck_last = vrl_now_ns();
	}
	pthread_mutex_unlock(&p->ck_lock);
	return NULL;
}

static int ckpt_thread_start(struct vrld_prod *p)
{
	pthread_condattr_t ca;
	int rc;

	pthread_mutex_init(&p->ck_lock, NULL);
	/* the deadlines are vrl_now_ns() times: CLOCK_MONOTONIC */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->ck_wake, &ca);
	pthread_condattr_destroy(&ca);
	p->ck_stop = p->ck_kick = false;
	p->ck_last = vrl_now_ns();
	rc = pthread_create(&p->ck_thread, NULL, checkpointer, p);
	if (rc) {
		p->log("error", "refusing to start: no checkpointer thread",
		       LOG_S("error", strerror(rc)), LOG_END);
		return -1;
	}
	p->ck_running = true;
	return 0;
}

static void ckpt_thread_signal(struct vrld_prod *p, bool stop)
{
	if (!p->ck_running)
		return;
	pthread_mutex_lock(&p->ck_lock);
	if (stop)
		p->ck_stop = true;
	else
		p->ck_kick = true;
	pthread_cond_signal(&p->ck_wake);
	pthread_mutex_unlock(&p->ck_lock);
}

/* ---- the live config ------------------------------------------------------------ */

static void free_live(struct rcu_head *head)
{
	struct vrld_live *l = caa_container_of(head, struct vrld_live, rcu);

	tsan_acquire(&rcu_readers);   /* after every reader's release: the grace period */
	free(l);
}

struct vrld_live *vrld_prod_live(struct vrld_prod *p)
{
	/* relaxed: the main thread wrote it; it is the only writer */
	return atomic_load_explicit(&p->live, memory_order_relaxed);
}

/*
 * Give the segment @next's mode and group, as adopting it at start would
 * (a group not given leaves the segment's as it is). @was gets what they
 * were, for undo_owner(). Returns 0, or -errno with @why, nothing changed.
 */
static int apply_owner(struct vrld_prod *p, const struct vrl_daemon_config *next,
		       struct stat *was, char *why, size_t whylen)
{
	const struct vrl_seg_spec *spec = &next->seg;
	int fd = p->seg->lock_fd, rc;

	if (fstat(fd, was) != 0) {
		rc = -errno;
		snprintf(why, whylen, "cannot stat segment %s: %s", spec->name, strerror(-rc));
		return rc;
	}
	if (spec->gid != (gid_t)-1 && spec->gid != was->st_gid &&
	    fchown(fd, (uid_t)-1, spec->gid) != 0) {
		rc = -errno;
		snprintf(why, whylen, "segment.group %s: cannot give segment %s to gid %u: %s "
			 "(vrld must be root or in that group)", next->group, spec->name,
			 (unsigned)spec->gid, strerror(-rc));
		return rc;
	}
	if ((was->st_mode & 0777) != (spec->mode & 0777) && fchmod(fd, spec->mode & 0777) != 0) {
		rc = -errno;
		snprintf(why, whylen, "segment.mode %04o: cannot set it on segment %s: %s",
			 (unsigned)spec->mode, spec->name, strerror(-rc));
		if (fchown(fd, (uid_t)-1, was->st_gid) != 0)
			p->log("error", "cannot give the segment back its group",
			       LOG_S("segment", spec->name), LOG_U("gid", was->st_gid), LOG_END);
		return rc;
	}
	return 0;
}

static void undo_owner(struct vrld_prod *p, const struct stat *was)
{
	if (fchown(p->seg->lock_fd, (uid_t)-1, was->st_gid) != 0 ||
	    fchmod(p->seg->lock_fd, was->st_mode & 0777) != 0)
		p->log("error", "cannot give the segment back its mode and group", LOG_END);
}

int vrld_prod_publish(struct vrld_prod *p, const struct vrl_daemon_config *next, char *why,
		      size_t whylen)
{
	struct vrld_live *old = vrld_prod_live(p), *l;
	struct stat was;
	int rc = vrl_seg_reload_check(p->seg, &next->cfg, why, whylen);

	if (rc)
		return rc;
	l = malloc(sizeof(*l));
	if (!l) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	rc = apply_owner(p, next, &was, why, whylen);
	if (rc) {
		free(l);
		return rc;
	}
	l->dc = *next;
	/* vrld alone publishes, and counts generations itself */
	l->generation = vrl_seg_next_gen(p->seg);
	l->prev_gen = old->generation;
	for (uint32_t i = 0; i < VRL_MAX_LIMITS; i++)
		l->prev_map[i] = i < old->dc.cfg.nlimits ?
				 vrl_seg_renumber(&old->dc.cfg, i, &l->dc.cfg) : -1;
	/* LIVE.L1 release: a reader that loads the pointer sees the config above.
	 * Here before the segment, so that readers know every note it holds */
	atomic_exchange_explicit(&p->live, l, memory_order_release);
	rc = vrl_seg_reload(p->seg, &l->dc.cfg, why, whylen);
	if (rc) {
		/* cannot happen after the check above; undo all the same */
		atomic_exchange_explicit(&p->live, old, memory_order_release);
		tsan_release(&rcu_readers);   /* this thread is done with it: see below */
		call_rcu(&l->rcu, free_live);
		undo_owner(p, &was);
		return rc;
	}
	/* the main thread read @old without a read-side section (it is the
	 * updater): its reads, as a reader's, come before the free */
	tsan_release(&rcu_readers);
	call_rcu(&old->rcu, free_live);
	ckpt_thread_signal(p, false);
	/* the collector is the main thread's, as this call is; read from the
	 * copy in force (@next may be the config just retired: a rebuild
	 * publishes the one in force anew) */
	if (p->metrics)
		vrl_metrics_set_top(p->metrics, (unsigned)l->dc.prod.metrics_top);
	return 0;
}

/* ---- metrics ---------------------------------------------------------------- */

static int metrics_start(struct vrld_prod *p, struct vrl_seg *seg,
			 const struct vrl_daemon_config *dc)
{
	char why[512];
	unsigned port;
	int rc;

	if (!dc->prod.metrics[0] && !dc->prod.metrics_textfile[0])
		return 0;
	p->metrics = vrl_metrics_new(&seg->view, (unsigned)dc->prod.metrics_top);
	if (!p->metrics) {
		p->log("error", "metrics: out of memory", LOG_END);
		return -1;
	}
	if (!dc->prod.metrics[0])
		return 0;
	rc = vrl_metrics_serve(p->metrics, dc->prod.metrics, &port, why, sizeof(why));
	if (rc == -ENOTSUP) {
		p->log("warn", why, LOG_END);
		return 0;
	}
	if (rc) {
		p->log("error", "refusing to start", LOG_S("reason", why), LOG_END);
		return -1;
	}
	p->log("info", "metrics served", LOG_S("addr", dc->prod.metrics), LOG_U("port", port),
	       LOG_END);
	return 0;
}

static void metrics_tick(struct vrld_prod *p, const struct vrl_daemon_config *dc)
{
	char why[512];

	/* a textfile a reload asked for, with no metrics at start */
	if (!p->metrics && dc->prod.metrics_textfile[0] &&
	    !(p->metrics = vrl_metrics_new(&p->seg->view, (unsigned)dc->prod.metrics_top))) {
		if (!p->textfile_failing)
			p->log("error", "metrics textfile not written: out of memory", LOG_END);
		p->textfile_failing = true;
		return;
	}
	/* zero pages over a shrunk segment are no figures to publish */
	if (!p->metrics || vrl_now_ns() < p->next_textfile ||
	    vrl_guard_damaged(vrl_guard_state(p->seg->guard)))
		return;
	p->next_textfile = vrl_now_ns() + TEXTFILE_NS;
	/* render once a second; scrapes and the textfile read that page */
	if (vrl_metrics_update(p->metrics) != 0 || !dc->prod.metrics_textfile[0])
		return;
	if (vrl_metrics_textfile(p->metrics, dc->prod.metrics_textfile,
				 dc->prod.metrics_textfile_mode, why, sizeof(why)) == 0) {
		p->textfile_failing = false;
		return;
	}
	if (!p->textfile_failing)
		p->log("error", "metrics textfile not written", LOG_S("detail", why), LOG_END);
	p->textfile_failing = true;
}

/* ---- the loop ----------------------------------------------------------------- */

int vrld_prod_start(struct vrld_prod *p, struct vrl_seg *seg, const struct vrl_daemon_config *dc)
{
	struct vrld_live *l = malloc(sizeof(*l));

	if (!l) {
		p->log("error", "refusing to start: out of memory", LOG_END);
		return -1;
	}
	l->dc = *dc;
	l->generation = seg->gen;
	l->prev_gen = 0;
	atomic_store_explicit(&p->live, l, memory_order_release);   /* LIVE.L1: before any reader */
	p->seg = seg;
	ckpt_restore(p, seg, dc);
	vrl_ckpt_free(&p->ck);
	if (metrics_start(p, seg, dc) != 0)
		return -1;
	return ckpt_thread_start(p);
}

void vrld_prod_tick(struct vrld_prod *p)
{
	metrics_tick(p, &vrld_prod_live(p)->dc);
}

void vrld_prod_alert(struct vrld_prod *p, const char *name)
{
	if (p->metrics)
		vrl_metrics_note_alert(p->metrics, name);
}

void vrld_prod_evictions(struct vrld_prod *p, const struct vrl_seg_config *cfg,
			 const uint64_t *by_limit)
{
	if (p->metrics)
		vrl_metrics_note_evictions(p->metrics, cfg, by_limit);
}

void vrld_prod_stop(struct vrld_prod *p)
{
	struct vrld_live *l = vrld_prod_live(p);
	char why[512];
	uint64_t n = 0;
	int rc;

	if (p->ck_running) {
		ckpt_thread_signal(p, true);
		pthread_join(p->ck_thread, NULL);
		p->ck_running = false;
		pthread_cond_destroy(&p->ck_wake);
		pthread_mutex_destroy(&p->ck_lock);
	}
	/* the HTTP thread reads the segment: it goes before the segment does */
	vrl_metrics_free(p->metrics);
	p->metrics = NULL;
	vrl_ckpt_free(&p->ck);
	if (l && p->seg && l->dc.prod.checkpoint[0] &&
	    !vrl_guard_damaged(vrl_guard_state(p->seg->guard))) {
		rc = vrl_ckpt_save(p->seg, l->dc.prod.checkpoint, &n, why, sizeof(why));
		ckpt_logged(p, rc, l->dc.prod.checkpoint, n, why, true);
	}
	/* no reader is left: this one goes now (the replaced ones are
	 * call_rcu's, as the metrics pages are) */
	free(l);
	atomic_store_explicit(&p->live, NULL, memory_order_relaxed);
}
