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
 * running one when the new one has any error, or changes what only a
 * restart can (needs_restart).
 *
 * Threads: this file's main loop owns the segment's upkeep and is the only
 * one that replaces the config in force; the reloader reads and compiles a
 * new config on a thread of its own and hands it to the main loop
 * (vrld_reload.c), so a slow read never stops the tick; checkpoints run on
 * a thread of their own and scrapes on libmicrohttpd's, both reading what
 * the main thread publishes under RCU (vrld_prod.c, metrics.c).
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "upkeep.h"
#include "events.h"
#include "vrl_internal.h"
#include "clock.h"
#include "config.h"
#include "glink.h"
#include "live.h"
#include "log.h"
#include "reload.h"
#include "unmatched.h"

#define TICK_NS        VRL_SHARE_TICK_NS       /* heartbeat period: 100 ms (AQ.S6 reads it) */
#define SWEEP_CHUNK    4096u                   /* slots per reclaim bracket */
#define ALERT_STUCK_NS (5ull * 1000000000u)     /* an event unpublished this long is lost */
#define ALERTS_PER_TICK 256u                    /* events drained in one tick, at most */
#define ALERT_CHILDREN_MAX 16u                  /* alert commands running at once */

extern char **environ;

/*
 * Set by the handler, read by the main loop. A signal may be handled on any
 * of vrld's threads (libmicrohttpd's, the checkpointer, liburcu's call_rcu
 * thread), so these are lock-free atomics rather than sig_atomic_t, which
 * is only safe within one thread; relaxed, as they carry no other data.
 * The main loop sees them at its next tick at the latest.
 */
static atomic_int stop_signal;
static atomic_int reload_pending;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "a handler may only touch lock-free atomics");

static void on_signal(int sig)
{
	int saved = errno;

	if (sig == SIGHUP)
		atomic_store_explicit(&reload_pending, 1, memory_order_relaxed);
	else
		atomic_store_explicit(&stop_signal, sig, memory_order_relaxed);
	errno = saved;
}

struct options {
	const char *config;      /* -c FILE */
	const char *preset;      /* -p NAME */
	bool check;              /* --check: validate and exit */
	bool replace;            /* --replace: recreate an incompatible segment */
	bool discard_ckpt;       /* --discard-checkpoint: start empty, ignore it */
	const char *forget_host; /* --forget-host HOST: tell Redis, and exit */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vrld [-c FILE | -p PRESET] [--check] [--replace] [--discard-checkpoint]\n"
		"       vrld -c FILE --forget-host HOST\n"
		"  -c, --config FILE   YAML config (default: the built-in default)\n"
		"  -p, --preset NAME   a built-in preset: default smartcar samsara carsxe evenergy\n"
		"      --check         validate the config, print a summary, exit\n"
		"      --replace       replace an existing segment of another layout\n"
		"                      (its counters are lost) instead of refusing to start\n"
		"      --discard-checkpoint  start with empty durable counters, ignoring\n"
		"                      daemon.checkpoint (it is overwritten at the next write)\n"
		"      --forget-host HOST  a host of global: gone for good: quota and slots\n"
		"                      counters that wait for its report after a Redis\n"
		"                      data loss open without it; tell Redis, exit\n"
		"  -h, --help          print this and exit\n"
		"  -V, --version       print vrld's version and exit\n");
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "preset", required_argument, NULL, 'p' },
		{ "check", no_argument, NULL, 'C' },
		{ "replace", no_argument, NULL, 'R' },
		{ "discard-checkpoint", no_argument, NULL, 'D' },
		{ "forget-host", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:p:hV", longs, NULL)) != -1) {
		switch (ch) {
		case 'c': o->config = optarg; break;
		case 'p': o->preset = optarg; break;
		case 'C': o->check = true; break;
		case 'R': o->replace = true; break;
		case 'D': o->discard_ckpt = true; break;
		case 'F': o->forget_host = optarg; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("vrld %s\n", VRL_VERSION_STRING); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc || (o->config && o->preset) ||
	    (o->forget_host && (o->check || o->replace || o->discard_ckpt))) {
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

static void notify(const char *state);

/* The reloader's load: the same source as at start. Runs on its thread;
 * @arg is the options, which nobody changes once vrld serves. */
static int load_again(void *arg, struct vrl_daemon_config *out, char err[VRL_CONFIG_ERR_MAX])
{
	return load(arg, out, err);
}

/* Shown for an empty text setting. */
static const char *or_none(const char *s)
{
	return s[0] ? s : "none";
}

/*
 * Whether @next changes what only a restart can: the segment's name and
 * size (it is made at start) and the metrics listener (bound at start, and
 * moving it in place could leave none if the new address is taken). Every
 * other field a reload either applies or refuses with the reason.
 */
static bool needs_restart(const struct vrl_daemon_config *cur,
			  const struct vrl_daemon_config *next, char *why, size_t len)
{
	if (strcmp(next->seg.name, cur->seg.name) != 0)
		snprintf(why, len, "segment.name changed (%s -> %s): the segment is made at "
			 "start; restart vrld to serve the new one", cur->seg.name, next->seg.name);
	else if (next->seg.keys != cur->seg.keys)
		snprintf(why, len, "segment.keys changed (%llu -> %llu): the key table is sized at "
			 "start; restart vrld with --replace (counters kept only by the checkpoint)",
			 (unsigned long long)cur->seg.keys, (unsigned long long)next->seg.keys);
	else if (strcmp(next->prod.metrics, cur->prod.metrics) != 0)
		snprintf(why, len, "daemon.metrics changed (%s -> %s): the listener is bound at "
			 "start; restart vrld to move it", or_none(cur->prod.metrics),
			 or_none(next->prod.metrics));
	else if (!vrld_glink_needs_restart(cur, next, why, len))
		return false;
	return true;
}

/* vrld_check_config's problems: the first one is the refusal's reason. */
static void first_problem(void *arg, const char *problem)
{
	char *why = arg;

	if (!why[0])
		snprintf(why, VRL_CONFIG_ERR_MAX, "%s", problem);
}

static void reload_refused(struct vrl_seg *seg, const char *why)
{
	vrld_log("error", "reload refused; keeping the running config", LOG_S("error", why),
		 LOG_END);
	vrl_seg_note_reload(seg->hdr, why);
}

/*
 * A config the reloader read (@next, NULL when out of memory; @rc and @err
 * its load's outcome): check it as start-up would, against what the
 * running one fixed, and put it in force; or keep the running one, saying
 * why (logged, and recorded in the segment for vrlctl). Main thread.
 */
static void reload_apply(struct vrl_seg *seg, struct vrld_prod *prod,
			 const struct vrl_daemon_config *next, int rc, const char *err)
{
	const struct vrl_daemon_config *cur = &vrld_prod_live(prod)->dc;
	char why[VRL_CONFIG_ERR_MAX] = "";

	if (!next || rc != 0) {
		reload_refused(seg, next ? err : "out of memory");
		return;
	}
	if (needs_restart(cur, next, why, sizeof(why)) ||
	    vrld_check_config(next, VRLD_CHECK_RELOAD, NULL, first_problem, why) != 0 ||
	    vrld_prod_publish(prod, next, why, sizeof(why)) != 0) {
		reload_refused(seg, why);
		return;
	}
	vrld_log("info", "config reloaded", LOG_U("limits", next->cfg.nlimits),
		 /* seq_cst: a log line's figure only */
		 LOG_U("generation", atomic_load(&seg->hdr->config_gen)), LOG_END);
	vrl_seg_note_reload(seg->hdr, NULL);
}

/* Each loop: a SIGHUP goes to the reloader; a config it read is applied. */
static void reload_step(struct vrld_reloader *rl, struct vrl_seg *seg, struct vrld_prod *prod)
{
	struct vrl_daemon_config *next;
	char err[VRL_CONFIG_ERR_MAX];
	int rc;

	if (atomic_exchange_explicit(&reload_pending, 0, memory_order_relaxed)) {
		vrld_reloader_request(rl);
		notify("RELOADING=1");
	}
	if (!vrld_reloader_take(rl, &next, &rc, err))
		return;
	reload_apply(seg, prod, next, rc, err);
	free(next);
	if (!vrld_reloader_busy(rl))
		notify("READY=1");
}

static unsigned alert_children;                 /* spawned and not yet reaped */

/* Collect finished alert commands without blocking the tick. */
static void reap_children(void)
{
	int status;
	pid_t pid;

	while (alert_children > 0 && (pid = waitpid(-1, &status, WNOHANG)) > 0) {
		alert_children--;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			vrld_log("warn", "alert command failed", LOG_I("pid", pid),
				 LOG_I("status", status), LOG_END);
	}
}

/*
 * Run daemon.alert_command for @ev: posix_spawn, no shell, vrld's
 * environment plus VRL_ALERT_*, the limit @name and the @key already
 * through vrl_alert_text(). Not waited for here; reap_children() collects
 * it on a later tick.
 */
static void run_alert_command(const char *cmd, const struct vrl_alert_event *ev,
			      const char *name, const char *key)
{
	char vars[6][VRL_NAME_MAX + 32];
	char *argv[] = { (char *)cmd, NULL };
	size_t n = 0, k = 0;
	char **envp;
	pid_t pid;
	int rc;

	if (alert_children >= ALERT_CHILDREN_MAX) {
		vrld_log("warn", "alert command not run: too many still running",
			 LOG_U("running", alert_children), LOG_U("ticket", ev->ticket), LOG_END);
		return;
	}
	while (environ && environ[n])
		n++;
	envp = calloc(n + 7, sizeof(*envp));
	if (!envp)
		return;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "VRL_ALERT_", 10) != 0)
			envp[k++] = environ[i];
	snprintf(vars[0], sizeof(vars[0]), "VRL_ALERT_LIMIT=%s", name);
	snprintf(vars[1], sizeof(vars[1]), "VRL_ALERT_KEY=%s", key);
	snprintf(vars[2], sizeof(vars[2]), "VRL_ALERT_THRESHOLD=%u", ev->p.threshold);
	snprintf(vars[3], sizeof(vars[3]), "VRL_ALERT_USED=%llu", (unsigned long long)ev->p.used);
	snprintf(vars[4], sizeof(vars[4]), "VRL_ALERT_COUNT=%llu", (unsigned long long)ev->p.count);
	snprintf(vars[5], sizeof(vars[5]), "VRL_ALERT_PERIOD=%llu", (unsigned long long)ev->p.period);
	for (int i = 0; i < 6; i++)
		envp[k++] = vars[i];
	rc = posix_spawn(&pid, cmd, NULL, NULL, argv, envp);
	free(envp);
	if (rc != 0) {
		vrld_log("error", "cannot run alert command", LOG_S("command", cmd),
			 LOG_S("error", strerror(rc)), LOG_END);
		return;
	}
	alert_children++;
}

/*
 * The name of the limit @ev is about, into @name: vrld's own, when the
 * event counts by the numbering vrld published; otherwise what the event
 * says, through the filter (any group member can write an event).
 */
static void event_limit(const struct vrl_seg *seg, const struct vrl_alert_event *ev, char *name,
			size_t cap)
{
	if (ev->p.generation == seg->cfg->generation && ev->p.limit < seg->cfg->nlimits)
		snprintf(name, cap, "%s", seg->cfg->limits[ev->p.limit].name);
	else
		vrl_alert_text(name, cap, ev->p.name, sizeof(ev->p.name));
}

/* Drain the alert ring: one log line per event, and the command if any. */
static void drain_alerts(const struct vrl_seg *seg, const struct vrl_daemon_config *dc,
			 struct vrl_alert_cursor *cur, uint64_t now, struct vrld_prod *prod)
{
	struct vrl_alert_event ev;
	char key[VRL_LABEL_MAX], name[VRL_NAME_MAX];

	reap_children();
	for (unsigned i = 0; i < ALERTS_PER_TICK; i++) {
		if (vrl_alert_drain(&seg->view, cur, now, ALERT_STUCK_NS, &ev) != 1)
			break;
		/* written by clients: every string bounded and filtered, once,
		 * for the log line, the metrics and the command alike */
		vrl_alert_text(key, sizeof(key), ev.p.label, sizeof(ev.p.label));
		event_limit(seg, &ev, name, sizeof(name));
		vrld_prod_alert(prod, name);
		vrld_log("warn", "alert", LOG_S("limit", name), LOG_S("key", key),
			 LOG_U("threshold", ev.p.threshold), LOG_U("used", ev.p.used),
			 LOG_U("count", ev.p.count), LOG_U("period", ev.p.period),
			 LOG_U("ticket", ev.ticket), LOG_END);
		if (dc->alert_command[0])
			run_alert_command(dc->alert_command, &ev, name, key);
	}
}

/* Restore the durable counters of the checkpoint into a regrown segment:
 * read as at start-up, at most one record per slot. */
static void restore_after_shrink(struct vrl_seg *seg, const struct vrl_daemon_config *dc)
{
	struct vrl_ckpt_stats st;
	struct vrl_ckpt ck;
	char why[512];

	if (!dc->prod.checkpoint[0])
		return;
	if (vrl_ckpt_load_keys(dc->prod.checkpoint, seg->view.nslots, &ck, why,
			       sizeof(why)) != 0) {
		vrld_log("error", "no checkpoint restored into the regrown segment",
			 LOG_S("detail", why), LOG_END);
		return;
	}
	vrl_ckpt_apply(seg, &ck, &st);
	vrld_log("info", "checkpoint restored into the regrown segment",
		 LOG_S("checkpoint", dc->prod.checkpoint), LOG_U("restored", st.restored), LOG_END);
	vrl_ckpt_free(&ck);
}

/*
 * A member of the segment's group truncated the shm object (guard.c): put
 * its size back and rebuild it, so that workers, which fail their calls
 * with VRL_ECORRUPT meanwhile, heal. The config in force is published anew
 * as a reload publishes one (vrld_prod_publish): vrld's threads learn its
 * generation, which the keys inserted from then on carry, before the
 * segment has it; a reload read meanwhile by the reloader is applied after,
 * as any other. Returns true when the segment is whole; the config in
 * force is then a new object (vrld_prod_live()). Main thread.
 */
static bool check_size(struct vrl_seg *seg, struct vrld_prod *prod)
{
	const struct vrl_daemon_config *dc = &vrld_prod_live(prod)->dc;
	char why[VRL_CONFIG_ERR_MAX];
	struct stat st;
	uint64_t state;
	int rc = vrl_seg_shrunk(seg, &st);

	if (rc <= 0)
		return true;
	vrld_log("warn", rc == 1 ?
		 "segment shrunk by a process with write access to it (the segment's group); "
		 "restoring its size and rebuilding it: keys past the cut are lost, but for "
		 "what a checkpoint restores" :
		 "segment shrunk and grown back by a process with write access to it (the "
		 "segment's group); rebuilding it: keys past the cut are lost, but for what a "
		 "checkpoint restores",
		 LOG_S("segment", dc->seg.name), LOG_U("gid", st.st_gid), LOG_I("size", st.st_size),
		 LOG_U("want", seg->size), LOG_I("changed_at", st.st_ctim.tv_sec), LOG_END);
	rc = vrl_seg_regrow(seg, &state);
	if (rc) {
		vrld_log("error", "cannot restore the segment's size; workers fail with "
			 "VRL_ECORRUPT until it is", LOG_S("error", strerror(-rc)), LOG_END);
		return false;
	}
	/* the publish copies @dc before it retires the object that holds it */
	rc = vrld_prod_publish(prod, dc, why, sizeof(why));
	dc = &vrld_prod_live(prod)->dc;
	if (rc) {
		vrld_log("error", "cannot publish the config into the regrown segment; "
			 "workers fail with VRL_ECORRUPT until it is", LOG_S("error", why), LOG_END);
		return false;   /* its area stays empty: the next tick tries again */
	}
	restore_after_shrink(seg, dc);
	atomic_store(&seg->hdr->daemon_pid, (int32_t)getpid());
	if (!vrl_seg_reopen(seg, state))
		return false;   /* shrunk again meanwhile: the next tick */
	vrld_log("info", "segment restored; workers heal on their next call",
		 LOG_S("segment", dc->seg.name), LOG_END);
	return true;
}

/*
 * Log each api the unmatched table counts, once per vrld run, so that the
 * journal names the callers whose requests match no limit. At most
 * VRL_UNMATCHED_ROWS lines, whatever a group member writes in the table;
 * names come sanitised (unmatched.h), safe inside a quoted logfmt value.
 */
static void log_unmatched(const struct vrl_seg *seg, uint32_t flags)
{
	static char seen[VRL_UNMATCHED_ROWS][VRL_UNMATCHED_NAME];
	static unsigned nseen;
	struct vrl_unmatched_row rows[VRL_UNMATCHED_ROWS];
	unsigned n = vrl_unmatched_read(seg->hdr, rows);

	for (unsigned i = 0; i < n && nseen < VRL_UNMATCHED_ROWS; i++) {
		const char *api = rows[i].other ? "(other)" : rows[i].api;
		bool known = false;

		for (unsigned k = 0; k < nseen && !known; k++)
			known = strcmp(seen[k], api) == 0;
		if (known)
			continue;
		memcpy(seen[nseen++], api, strlen(api) + 1);   /* < VRL_UNMATCHED_NAME */
		/* the api is a worker's bytes: a field, escaped, never part of the line */
		vrld_log("warn", "requests match no limit: a typo in a caller, or a limit "
			 "missing from the config?", LOG_S("api", api), LOG_U("count", rows[i].count),
			 LOG_S("policy", (flags & VRL_CFG_UNMATCHED_DENY) ? "deny" :
				(flags & VRL_CFG_UNMATCHED_WARN) ? "warn" : "allow"), LOG_END);
	}
}

static void tick(struct vrl_seg *seg, uint64_t *cursor, uint64_t *next_sweep,
		 struct vrl_alert_cursor *alerts, struct vrld_prod *prod)
{
	struct vrl_seg_header *h = seg->hdr;
	uint64_t now = vrl_now_ns(), by_limit[VRL_MAX_LIMITS] = { 0 };
	const struct vrl_daemon_config *dc;
	uint64_t rt;

	if (!check_size(seg, prod))
		return;
	/* after the check: a rebuild puts the config in force anew */
	dc = &vrld_prod_live(prod)->dc;
	atomic_store_explicit(&h->daemon_heartbeat_ns, now, memory_order_relaxed);
	/* vrld reads none of them, but vrl_open() checks them */
	if (vrl_seg_restore_header(seg))
		vrld_log("warn", "the segment header's layout words were changed (by a process "
			 "with write access: the segment's group); restored",
			 LOG_S("segment", dc->seg.name), LOG_END);
	drain_alerts(seg, dc, alerts, now, prod);
	/* a reload that shortened the interval: it applies from now */
	if (*next_sweep > now + dc->sweep_interval_ns)
		*next_sweep = now + dc->sweep_interval_ns;
	if (now < *next_sweep)
		return;
	*next_sweep = now + dc->sweep_interval_ns;
	rt = vrl_wall_ns();
	/* a full pass per sweep interval, one short bracket per chunk; the
	 * table's size is vrld's own, never the header's word */
	for (uint64_t done = 0; done < seg->view.nslots; done += SWEEP_CHUNK) {
		vrl_seg_sweep_by(seg, *cursor, SWEEP_CHUNK, now,
				 rt,
				 dc->idle_evict_ns, by_limit);
		*cursor = *cursor + SWEEP_CHUNK >= seg->view.nslots ? 0 : *cursor + SWEEP_CHUNK;
	}
	/* the sweep counted by the active numbering: dc->cfg's, published by
	 * this thread */
	vrld_prod_evictions(prod, &dc->cfg, by_limit);
	vrl_seg_reap_holders(seg);
	log_unmatched(seg, dc->cfg.flags);
}

static void print_summary(const struct vrl_daemon_config *dc, const struct vrld_seg_room *r,
			  bool ok)
{
	char size[32], max[32], shm[96] = "", total[32], avail[32];

	vrld_fmt_size(r->bytes, size, sizeof(size));
	vrld_fmt_size(r->max_size, max, sizeof(max));
	if (r->shm_known) {
		vrld_fmt_size(r->shm_free, avail, sizeof(avail));
		vrld_fmt_size(r->shm_total, total, sizeof(total));
		snprintf(shm, sizeof(shm), "; " VRLD_SHM_DIR " %s free of %s", avail, total);
	}
	printf("config %s: %u limits, segment %s, %llu keys, %s (segment.max_size %s%s), "
	       "mode %04o\n", ok ? "ok" : "refused", dc->cfg.nlimits, dc->seg.name,
	       (unsigned long long)dc->seg.keys, size, max, shm, (unsigned)dc->seg.mode);
	for (uint32_t i = 0; ok && i < dc->cfg.nlimits; i++)
		printf("  %s\n", dc->cfg.limits[i].name);
}

/* --forget-host: vrl_forget on every endpoint of the config's global:. */
static int forget_host(const struct options *o, const struct vrl_daemon_config *dc)
{
	const char *eps[VRL_GLOBAL_ENDPOINTS_MAX];
	struct vrl_global_config cfg;
	char out[4096];
	int rc;

	if (!dc->global.on) {
		fprintf(stderr, "vrld: --forget-host: the config has no global: section\n");
		return 78;   /* EX_CONFIG */
	}
	vrld_glink_config(&dc->global, &cfg, eps);
	rc = vrl_global_forget(&cfg, o->forget_host, out, sizeof(out));
	fputs(out, rc ? stderr : stdout);
	return rc == -EINVAL ? 64 : rc ? 69 : 0;   /* EX_USAGE, EX_UNAVAILABLE */
}

/* --check: what start-up does before it touches the segment, then a summary. */
static int check(const struct options *o, const struct vrl_daemon_config *dc)
{
	struct vrld_prod prod = { .log = vrld_log };
	int rc = vrld_prod_prepare(&prod, dc, o->discard_ckpt, o->replace);

	vrl_ckpt_free(&prod.ck);
	print_summary(dc, &prod.room, rc == 0);
	return rc == 0 ? 0 : 78;   /* EX_CONFIG */
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

static int serve(const struct options *o, const struct vrl_daemon_config *dc)
{
	struct vrld_reloader rl;
	struct vrl_seg seg = { 0 };
	char why[VRL_CONFIG_ERR_MAX];
	uint64_t cursor = 0, next_sweep = 0;
	struct vrl_alert_cursor alerts = { 0 };
	/* zeroed: the metrics render it, engine or none, from the first tick */
	struct vrld_glink glink = { 0 };
	struct vrld_prod prod = { .log = vrld_log, .metrics_extra = vrld_glink_metrics,
				  .metrics_extra_arg = &glink };
	int rc;

	if (vrld_prod_prepare(&prod, dc, o->discard_ckpt, o->replace) != 0)
		return 1;
	rc = vrl_seg_open_or_create(&dc->seg, &dc->cfg, o->replace, &seg, why, sizeof(why));
	if (rc) {
		vrld_prod_stop(&prod);
		vrld_log("error", "cannot open segment", LOG_S("segment", dc->seg.name),
			 LOG_S("error", vrl_strerror(rc)), LOG_S("detail", why),
			 LOG_S("hint", rc == -EEXIST ? "stop every worker and vrld, or start with "
			       "--replace (the segment is recreated: workers must reopen it, its "
			       "counters are lost but for what daemon.checkpoint restores)" :
			       rc == -EBUSY ? "one vrld per segment: stop the other one first "
			       "(systemctl stop vrld), or give this one another segment.name" : ""),
			 LOG_END);
		return 1;
	}
	if (vrld_prod_start(&prod, &seg, dc) != 0 ||
	    (rc = vrld_reloader_start(&rl, load_again, (void *)o)) != 0) {
		if (rc)
			vrld_log("error", "refusing to start: no reloader thread",
				 LOG_S("error", strerror(-rc)), LOG_END);
		prod.seg = NULL;     /* no checkpoint of a segment vrld never served */
		vrld_prod_stop(&prod);
		vrl_seg_close(&seg);
		return 1;
	}
	if (vrld_glink_start(&glink, dc, vrld_log) != 0) {
		vrld_reloader_stop(&rl);
		prod.seg = NULL;
		vrld_prod_stop(&prod);
		vrl_seg_close(&seg);
		return 1;
	}
	vrld_gstatus_attach(&glink.gst, &seg, &dc->global);
	/* seq_cst: plain published words, read by vrlctl and the keytable's
	 * bracket repair (KT.B1); no data rides on them */
	atomic_store(&seg.hdr->daemon_pid, (int32_t)getpid());
	atomic_store(&seg.hdr->daemon_heartbeat_ns, vrl_now_ns());
	vrld_log("info", "serving", LOG_S("segment", dc->seg.name), LOG_I("adopted", seg.adopted),
		 LOG_U("limits", dc->cfg.nlimits), LOG_U("keys", dc->seg.keys),
		 LOG_U("slots", seg.view.nslots), LOG_U("bytes", seg.size),
		 LOG_S("source", dc->cfg.source), LOG_END);
	notify("READY=1");
	while (!atomic_load_explicit(&stop_signal, memory_order_relaxed)) {
		reload_step(&rl, &seg, &prod);
		tick(&seg, &cursor, &next_sweep, &alerts, &prod);
		vrld_prod_tick(&prod);
		vrld_glink_tick(&glink, &seg);
		vrld_glink_sleep(&glink, &seg, TICK_NS);
	}
	notify("STOPPING=1");
	vrld_glink_stop(&glink, &seg);
	vrld_prod_stop(&prod);
	/* after the last checkpoint: a load in progress is waited for, dropped */
	vrld_reloader_stop(&rl);
	atomic_store(&seg.hdr->daemon_pid, 0);
	vrld_log("info", "stopping; the segment stays for workers and the next vrld",
		 LOG_I("signal", atomic_load_explicit(&stop_signal, memory_order_relaxed)), LOG_END);
	vrl_seg_close(&seg);
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct vrl_daemon_config *dc;
	char err[VRL_CONFIG_ERR_MAX];
	int rc;

	if (parse_args(argc, argv, &o) != 0 || !(dc = calloc(1, sizeof(*dc))))
		return 2;
	if (load(&o, dc, err) != 0) {
		fprintf(stderr, "vrld: %s\n", err);
		rc = 78; /* EX_CONFIG */
	} else if (o.check) {
		rc = check(&o, dc);
	} else if (o.forget_host) {
		rc = forget_host(&o, dc);
	} else {
		install_signals();
		rc = serve(&o, dc);
	}
	free(dc);
	return rc;
}
