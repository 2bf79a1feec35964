/*
 * vrld_prod.c - checkpoints and metrics around vrld's loop (see vrld_prod.h).
 */
#include "vrld_prod.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

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

int vrld_prod_prepare(struct vrld_prod *p, const struct vrl_daemon_config *dc, bool discard,
		      bool replace)
{
	const char *path = dc->prod.checkpoint;
	char why[512];
	int rc;

	memset(&p->ck, 0, sizeof(p->ck));
	if (!path[0] || (segment_exists(dc->seg.name) && !replace))
		return 0;
	if (discard) {
		p->log("warn", "msg=\"--discard-checkpoint: durable counters start empty\" "
		       "checkpoint=%s", path);
		return 0;
	}
	rc = vrl_ckpt_load(path, &p->ck, why, sizeof(why));
	if (rc == -ENOENT) {
		p->log("info", "msg=\"no checkpoint yet; durable counters start empty\" "
		       "checkpoint=%s", path);
		return 0;
	}
	if (rc == 0)
		return 0;
	p->log("error", "msg=\"refusing to start: the checkpoint cannot be restored\" "
	       "detail=\"%s\" hint=\"move %s aside (to keep it for inspection) or start once "
	       "with --discard-checkpoint to start with empty durable counters\"", why, path);
	return -1;
}

static void ckpt_restore(struct vrld_prod *p, struct vrl_seg *seg,
			 const struct vrl_daemon_config *dc)
{
	struct vrl_ckpt_stats st;

	if (!p->ck.recs || seg->adopted)
		return;
	vrl_ckpt_apply(seg->hdr, &p->ck, &st);
	p->log(st.skipped || st.failed ? "warn" : "info",
	       "msg=\"checkpoint restored\" checkpoint=%s age_s=%lld restored=%llu "
	       "skipped_limit_gone_or_changed=%llu expired=%llu no_slot=%llu", dc->prod.checkpoint,
	       (long long)(time(NULL) - (time_t)(p->ck.written_rt / 1000000000u)),
	       (unsigned long long)st.restored, (unsigned long long)st.skipped,
	       (unsigned long long)st.expired, (unsigned long long)st.failed);
}

static void ckpt_save(struct vrld_prod *p, struct vrl_seg *seg,
		      const struct vrl_daemon_config *dc, bool final)
{
	char why[512];
	uint64_t n = 0;

	if (!dc->prod.checkpoint[0])
		return;
	if (vrl_ckpt_save(seg->hdr, dc->prod.checkpoint, &n, why, sizeof(why)) != 0) {
		if (!p->ckpt_failing || final)
			p->log("error", "msg=\"checkpoint not written\" detail=\"%s\"", why);
		p->ckpt_failing = true;
		return;
	}
	if (p->ckpt_failing || final)
		p->log("info", "msg=\"checkpoint written\" checkpoint=%s keys=%llu",
		       dc->prod.checkpoint, (unsigned long long)n);
	p->ckpt_failing = false;
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
	p->metrics = vrl_metrics_new(seg->hdr, (unsigned)dc->prod.metrics_top);
	if (!p->metrics) {
		p->log("error", "msg=\"metrics: out of memory\"");
		return -1;
	}
	if (!dc->prod.metrics[0])
		return 0;
	rc = vrl_metrics_serve(p->metrics, dc->prod.metrics, &port, why, sizeof(why));
	if (rc == -ENOTSUP) {
		p->log("warn", "msg=\"%s\"", why);
		return 0;
	}
	if (rc) {
		p->log("error", "msg=\"refusing to start: %s\"", why);
		return -1;
	}
	p->log("info", "msg=\"metrics served\" addr=%s port=%u", dc->prod.metrics, port);
	return 0;
}

static void metrics_tick(struct vrld_prod *p, const struct vrl_daemon_config *dc)
{
	char why[512];

	if (!p->metrics || vrl_now_ns() < p->next_textfile)
		return;
	p->next_textfile = vrl_now_ns() + TEXTFILE_NS;
	/* render once a second; scrapes and the textfile read that page */
	if (vrl_metrics_update(p->metrics) != 0 || !dc->prod.metrics_textfile[0])
		return;
	if (vrl_metrics_textfile(p->metrics, dc->prod.metrics_textfile, why, sizeof(why)) == 0) {
		p->textfile_failing = false;
		return;
	}
	if (!p->textfile_failing)
		p->log("error", "msg=\"metrics textfile not written\" detail=\"%s\"", why);
	p->textfile_failing = true;
}

/* ---- the loop ----------------------------------------------------------------- */

int vrld_prod_start(struct vrld_prod *p, struct vrl_seg *seg, const struct vrl_daemon_config *dc)
{
	ckpt_restore(p, seg, dc);
	vrl_ckpt_free(&p->ck);
	p->next_ckpt = vrl_now_ns() + dc->prod.checkpoint_interval_ns;
	return metrics_start(p, seg, dc);
}

void vrld_prod_tick(struct vrld_prod *p, struct vrl_seg *seg, const struct vrl_daemon_config *dc)
{
	if (vrl_now_ns() >= p->next_ckpt) {
		ckpt_save(p, seg, dc, false);
		p->next_ckpt = vrl_now_ns() + dc->prod.checkpoint_interval_ns;
	}
	metrics_tick(p, dc);
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

void vrld_prod_stop(struct vrld_prod *p, struct vrl_seg *seg, const struct vrl_daemon_config *dc)
{
	/* the HTTP thread reads the segment: it goes before the segment does */
	vrl_metrics_free(p->metrics);
	p->metrics = NULL;
	vrl_ckpt_free(&p->ck);
	if (seg)
		ckpt_save(p, seg, dc, true);
}
