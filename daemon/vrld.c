/*
 * vrld.c - the vrl daemon.
 *
 * Creates (or adopts) the shared-memory segment from the config and keeps it
 * healthy: a heartbeat, eviction of idle keys, reclaim of dead slots, and
 * reaping of counter slots whose process died. Workers never wait on vrld:
 * they keep acquiring while it is down or restarting.
 *
 * Signals: SIGTERM/SIGINT exit cleanly (the segment stays, so a restart
 * adopts it with every counter); SIGHUP reloads the config, keeping the
 * running one when the new one has any error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "admin.h"
#include "checkpoint.h"
#include "client.h"
#include "config.h"
#include "metrics.h"

#define TICK_NS        (100u * 1000u * 1000u)  /* heartbeat period: 100 ms */
#define SWEEP_CHUNK    4096u                   /* slots per reclaim bracket */
#define TEXTFILE_NS    UINT64_C(1000000000)    /* metrics textfile period: 1 s */

static volatile sig_atomic_t stop_signal;      /* set by the handler only */
static volatile sig_atomic_t reload_pending;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_pending = 1;
	else
		stop_signal = sig;
}

/* Structured log line on stderr: level=... msg="..." then key=value pairs. */
static void logf_(const char *level, const char *fmt, ...)
{
	struct timespec ts;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(stderr, "ts=%lld.%03ld level=%s %s\n", (long long)ts.tv_sec,
		ts.tv_nsec / 1000000, level, msg);
}

struct options {
	const char *config;      /* -c FILE */
	const char *preset;      /* -p NAME */
	bool check;              /* --check: validate and exit */
	bool replace;            /* --replace: recreate an incompatible segment */
	bool discard_ckpt;       /* --discard-checkpoint: start empty, ignore it */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vrld [-c FILE | -p PRESET] [--check] [--replace] [--discard-checkpoint]\n"
		"  -c, --config FILE   YAML config (default: the built-in default)\n"
		"  -p, --preset NAME   a built-in preset: default smartcar samsara carsxe evenergy\n"
		"      --check         validate the config, print a summary, exit\n"
		"      --replace       replace an existing segment of another layout\n"
		"                      (its counters are lost) instead of refusing to start\n"
		"      --discard-checkpoint  start with empty durable counters, ignoring\n"
		"                      daemon.checkpoint (it is overwritten at the next write)\n");
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "preset", required_argument, NULL, 'p' },
		{ "check", no_argument, NULL, 'C' },
		{ "replace", no_argument, NULL, 'R' },
		{ "discard-checkpoint", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:p:h", longs, NULL)) != -1) {
		switch (ch) {
		case 'c': o->config = optarg; break;
		case 'p': o->preset = optarg; break;
		case 'C': o->check = true; break;
		case 'R': o->replace = true; break;
		case 'D': o->discard_ckpt = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc || (o->config && o->preset)) {
		usage(stderr);
		return -1;
	}
	return 0;
}

static int load(const struct options *o, struct vrl_daemon_config *dc, char err[VRL_CONFIG_ERR_MAX])
{
	const char *text;

	if (o->config)
		return vrl_config_load(o->config, dc, err);
	if (!o->preset)
		return vrl_config_default(dc, err);
	text = vrl_config_preset(o->preset);
	if (!text) {
		snprintf(err, VRL_CONFIG_ERR_MAX, "no built-in preset named \"%s\"", o->preset);
		return -1;
	}
	return vrl_config_parse(text, strlen(text), o->preset, dc, err);
}

static void reload(const struct options *o, struct vrl_seg *seg, struct vrl_daemon_config *dc)
{
	struct vrl_daemon_config *next = calloc(1, sizeof(*next));
	char err[VRL_CONFIG_ERR_MAX];

	if (!next) {
		logf_("error", "msg=\"reload failed: out of memory; keeping the running config\"");
		vrl_seg_note_reload(seg->hdr, "out of memory");
		return;
	}
	if (load(o, next, err) != 0) {
		logf_("error", "msg=\"reload refused; keeping the running config\" error=\"%s\"", err);
		vrl_seg_note_reload(seg->hdr, err);
	} else if (strcmp(next->seg.name, dc->seg.name) || next->seg.keys != dc->seg.keys) {
		logf_("error", "msg=\"reload refused: segment.name and segment.keys need a restart;"
		      " keeping the running config\"");
		vrl_seg_note_reload(seg->hdr, "segment.name and segment.keys need a restart");
	} else {
		vrl_seg_publish(seg->hdr, &next->cfg);
		*dc = *next;
		logf_("info", "msg=\"config reloaded\" limits=%u generation=%llu", dc->cfg.nlimits,
		      (unsigned long long)atomic_load(&seg->hdr->config_gen));
		vrl_seg_note_reload(seg->hdr, NULL);
	}
	free(next);
}

static void tick(struct vrl_seg *seg, const struct vrl_daemon_config *dc, uint64_t *cursor,
		 uint64_t *next_sweep)
{
	struct vrl_seg_header *h = seg->hdr;
	uint64_t now = vrl_now_ns();

	atomic_store_explicit(&h->daemon_heartbeat_ns, now, memory_order_relaxed);
	if (now < *next_sweep)
		return;
	*next_sweep = now + dc->sweep_interval_ns;
	/* a full pass per sweep interval, one short bracket per chunk */
	for (uint64_t done = 0; done < h->nslots; done += SWEEP_CHUNK) {
		vrl_seg_sweep(h, *cursor, SWEEP_CHUNK, now, dc->idle_evict_ns);
		*cursor = *cursor + SWEEP_CHUNK >= h->nslots ? 0 : *cursor + SWEEP_CHUNK;
	}
	vrl_seg_reap_holders(h);
}

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

/*
 * Read the checkpoint a fresh segment is to be restored from, before the
 * segment is made, so that vrld refuses to start rather than serve empty
 * counters. Returns 0 (@ck empty when there is nothing to restore) or -1.
 */
static int ckpt_prepare(const struct options *o, const struct vrl_daemon_config *dc,
			struct vrl_ckpt *ck)
{
	const char *path = dc->prod.checkpoint;
	char why[512];
	int rc;

	memset(ck, 0, sizeof(*ck));
	if (!path[0] || (segment_exists(dc->seg.name) && !o->replace))
		return 0;
	if (o->discard_ckpt) {
		logf_("warn", "msg=\"--discard-checkpoint: durable counters start empty\" "
		      "checkpoint=%s", path);
		return 0;
	}
	rc = vrl_ckpt_load(path, ck, why, sizeof(why));
	if (rc == -ENOENT) {
		logf_("info", "msg=\"no checkpoint yet; durable counters start empty\" "
		      "checkpoint=%s", path);
		return 0;
	}
	if (rc == 0)
		return 0;
	logf_("error", "msg=\"refusing to start: the checkpoint cannot be restored\" "
	      "detail=\"%s\" hint=\"move %s aside (to keep it for inspection) or start once "
	      "with --discard-checkpoint to start with empty durable counters\"", why, path);
	return -1;
}

static void ckpt_restore(struct vrl_seg *seg, const struct vrl_daemon_config *dc,
			 const struct vrl_ckpt *ck)
{
	struct vrl_ckpt_stats st;

	if (!ck->recs)
		return;
	vrl_ckpt_apply(seg->hdr, ck, &st);
	logf_(st.skipped || st.failed ? "warn" : "info",
	      "msg=\"checkpoint restored\" checkpoint=%s age_s=%lld restored=%llu "
	      "skipped_limit_gone_or_changed=%llu expired=%llu no_slot=%llu", dc->prod.checkpoint,
	      (long long)(time(NULL) - (time_t)(ck->written_rt / 1000000000u)),
	      (unsigned long long)st.restored, (unsigned long long)st.skipped,
	      (unsigned long long)st.expired, (unsigned long long)st.failed);
}

static void ckpt_save(struct vrl_seg *seg, const struct vrl_daemon_config *dc, bool final)
{
	static bool failing;      /* log a failure streak once, and its end */
	char why[512];
	uint64_t n = 0;

	if (!dc->prod.checkpoint[0])
		return;
	if (vrl_ckpt_save(seg->hdr, dc->prod.checkpoint, &n, why, sizeof(why)) != 0) {
		if (!failing || final)
			logf_("error", "msg=\"checkpoint not written\" detail=\"%s\"", why);
		failing = true;
		return;
	}
	if (failing || final)
		logf_("info", "msg=\"checkpoint written\" checkpoint=%s keys=%llu",
		      dc->prod.checkpoint, (unsigned long long)n);
	failing = false;
}

/* ---- metrics ---------------------------------------------------------------- */

/* Start the metrics collector and its HTTP server. Returns 0, or -1 when
 * vrld must not start (a bad address, a port taken). */
static int metrics_start(struct vrl_seg *seg, const struct vrl_daemon_config *dc,
			 struct vrl_metrics **out)
{
	char why[512];
	unsigned port;
	int rc;

	*out = NULL;
	if (!dc->prod.metrics[0] && !dc->prod.metrics_textfile[0])
		return 0;
	*out = vrl_metrics_new(seg->hdr, (unsigned)dc->prod.metrics_top);
	if (!*out) {
		logf_("error", "msg=\"metrics: out of memory\"");
		return -1;
	}
	if (!dc->prod.metrics[0])
		return 0;
	rc = vrl_metrics_serve(*out, dc->prod.metrics, &port, why, sizeof(why));
	if (rc == -ENOTSUP) {
		logf_("warn", "msg=\"%s\"", why);
		return 0;
	}
	if (rc) {
		logf_("error", "msg=\"refusing to start: %s\"", why);
		return -1;
	}
	logf_("info", "msg=\"metrics served\" addr=%s port=%u", dc->prod.metrics, port);
	return 0;
}

static void metrics_tick(struct vrl_metrics *m, const struct vrl_daemon_config *dc,
			 uint64_t *next)
{
	static bool failing;      /* log a failure streak once */
	char why[512];

	if (!m || !dc->prod.metrics_textfile[0] || vrl_now_ns() < *next)
		return;
	*next = vrl_now_ns() + TEXTFILE_NS;
	if (vrl_metrics_textfile(m, dc->prod.metrics_textfile, why, sizeof(why)) == 0) {
		failing = false;
		return;
	}
	if (!failing)
		logf_("error", "msg=\"metrics textfile not written\" detail=\"%s\"", why);
	failing = true;
}

static void print_summary(const struct vrl_daemon_config *dc)
{
	printf("config ok: %u limits, segment %s, %llu keys, mode %04o\n", dc->cfg.nlimits,
	       dc->seg.name, (unsigned long long)dc->seg.keys, (unsigned)dc->seg.mode);
	for (uint32_t i = 0; i < dc->cfg.nlimits; i++)
		printf("  %s\n", dc->cfg.limits[i].name);
}

static void install_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static void notify(const char *state)
{
#ifdef HAVE_SYSTEMD
	sd_notify(0, state);
#else
	(void)state;
#endif
}

static int serve(const struct options *o, struct vrl_daemon_config *dc)
{
	struct vrl_seg seg = { 0 };
	char why[256];
	uint64_t cursor = 0, next_sweep = 0, next_ckpt, next_textfile = 0;
	struct vrl_metrics *metrics;
	struct vrl_ckpt ck;
	struct timespec period = { 0, TICK_NS };
	int rc;

	if (ckpt_prepare(o, dc, &ck) != 0)
		return 1;
	rc = vrl_seg_open_or_create(&dc->seg, &dc->cfg, o->replace, &seg, why, sizeof(why));
	if (rc) {
		vrl_ckpt_free(&ck);
		logf_("error", "msg=\"cannot open segment %s: %s\" detail=\"%s\"%s", dc->seg.name,
		      vrl_strerror(rc), why,
		      rc == -EEXIST ? " hint=\"stop every worker and vrld, or start with --replace "
		      "(the segment is recreated: workers must reopen it, its counters are lost "
		      "but for what daemon.checkpoint restores)\"" :
		      rc == -EBUSY ? " hint=\"one vrld per segment: stop the other one first "
		      "(systemctl stop vrld), or give this one another segment.name\"" : "");
		return 1;
	}
	if (!seg.adopted)
		ckpt_restore(&seg, dc, &ck);
	vrl_ckpt_free(&ck);
	next_ckpt = vrl_now_ns() + dc->prod.checkpoint_interval_ns;
	if (metrics_start(&seg, dc, &metrics) != 0) {
		vrl_metrics_free(metrics);
		vrl_seg_close(&seg);
		return 1;
	}
	atomic_store(&seg.hdr->daemon_pid, (int32_t)getpid());
	atomic_store(&seg.hdr->daemon_heartbeat_ns, vrl_now_ns());
	logf_("info", "msg=\"serving\" segment=%s adopted=%d limits=%u keys=%llu slots=%llu "
	      "bytes=%llu source=\"%s\"", dc->seg.name, seg.adopted, dc->cfg.nlimits,
	      (unsigned long long)dc->seg.keys, (unsigned long long)seg.hdr->nslots,
	      (unsigned long long)seg.size, dc->cfg.source);
	notify("READY=1");
	while (!stop_signal) {
		if (reload_pending) {
			reload_pending = 0;
			notify("RELOADING=1");
			reload(o, &seg, dc);
			notify("READY=1");
		}
		tick(&seg, dc, &cursor, &next_sweep);
		if (vrl_now_ns() >= next_ckpt) {
			ckpt_save(&seg, dc, false);
			next_ckpt = vrl_now_ns() + dc->prod.checkpoint_interval_ns;
		}
		metrics_tick(metrics, dc, &next_textfile);
		nanosleep(&period, NULL);
	}
	notify("STOPPING=1");
	vrl_metrics_free(metrics);     /* the HTTP thread reads the segment: first */
	ckpt_save(&seg, dc, true);
	atomic_store(&seg.hdr->daemon_pid, 0);
	logf_("info", "msg=\"stopping; the segment stays for workers and the next vrld\" signal=%d",
	      (int)stop_signal);
	vrl_seg_close(&seg);
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct vrl_daemon_config *dc = calloc(1, sizeof(*dc));
	char err[VRL_CONFIG_ERR_MAX];
	int rc;

	if (!dc || parse_args(argc, argv, &o) != 0)
		return 2;
	if (load(&o, dc, err) != 0) {
		fprintf(stderr, "vrld: %s\n", err);
		return 78; /* EX_CONFIG */
	}
	if (o.check) {
		print_summary(dc);
		return 0;
	}
	install_signals();
	rc = serve(&o, dc);
	free(dc);
	return rc;
}
