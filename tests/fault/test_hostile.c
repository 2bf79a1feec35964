/*
 * test_hostile.c - a member of the segment's group that writes what it
 * should not, against the real vrld and forked workers. The group may deny
 * service (it can take permits), but it must never crash vrld or another
 * worker, nor make vrld signal a process that is not vrld:
 *
 *   - each layout word of the header, and a window limit's area in the
 *     config area, set to hostile values while vrld sweeps, reaps and
 *     drains: vrld keeps serving; and the same in process, word by word,
 *     through each of vrld's upkeep functions (sweep, renote, reap, reload,
 *     alert drain, checkpoint, metrics), so a sanitizer sees every read;
 *   - the same words flipped back and forth while workers acquire: no
 *     worker dies;
 *   - the shm object truncated to one page while vrld (stopped, then not)
 *     and workers acquire: none dies; while the size is gone every call
 *     fails with VRL_ECORRUPT, never a grant from the lost pages; once vrld
 *     restored the size, they work again;
 *   - header.daemon_pid pointed at a bystander: `vrlctl reload` refuses and
 *     signals nobody.
 *
 * Nothing here is timed: waits are bounded only to fail instead of hanging.
 *
 * usage: test_hostile VRLD VRLCTL
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"
#include "../run_cmd.h"
#include "events.h"
#include "checkpoint.h"
#include "metrics.h"
#include "vrld_run.h"

#define WAIT_NS  (60 * NS_PER_S)     /* generous: a loaded 2-core machine */
#define WORKERS  4

static const char *vrlctl_path;
static char dir[256], conf[300], logpath[300], seg[VRL_SHM_NAME_MAX];
static pid_t vrld_pid, workers[WORKERS], bystander;

static int setup(void **state)
{
	static unsigned serial;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/vrl-hostile-%d-%u", (int)getpid(), serial);
	snprintf(seg, sizeof(seg), "/vrl-test-hostile-%d-%u", (int)getpid(), serial++);
	mkdir(dir, 0700);
	snprintf(conf, sizeof(conf), "%s/vrl.yaml", dir);
	snprintf(logpath, sizeof(logpath), "%s/vrld.log", dir);
	vrl_seg_unlink(seg);
	return 0;
}

/*
 * In a forked child: the signals cmocka catches to report a failing test
 * get their default action back, so that a child that crashes dies of it
 * (and the parent sees how) instead of running the next tests itself.
 */
static pid_t fork_child(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE, SIGSYS };
	pid_t pid = fork();

	if (pid == 0)
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			signal(sigs[i], SIG_DFL);
	return pid;
}

static void reap(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
	}
	*pid = 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int w = 0; w < WORKERS; w++)
		reap(&workers[w]);
	reap(&bystander);
	if (vrld_pid > 0)
		kill(vrld_pid, SIGCONT);
	vrld_kill_all();
	vrld_pid = 0;
	vrl_seg_unlink(seg);
	return vrld_drop_dir(dir);
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / NS_PER_S), (long)(ns % NS_PER_S) };

	nanosleep(&ts, NULL);
}

static void show_log(void)
{
	vrld_show_log(logpath);
}

/* Every kind, with alerts; a sweep at every tick that evicts idle keys;
 * @daemon: more settings of the daemon mapping ("" for none). */
static void start_vrld_with(const char *daemon)
{
	char text[2048];

	snprintf(text, sizeof(text),
		 "segment: {name: \"%s\", keys: 200}\n"
		 "daemon: {sweep_interval: 100ms, idle_evict: 100ms%s}\n"
		 "limits:\n"
		 "  - name: r\n    match: {api: a}\n    per: [vehicle]\n    rate: 100000/s\n"
		 "    burst: 1000\n"
		 "  - name: w\n    kind: window\n    match: {api: a}\n    per: [vehicle]\n"
		 "    limit: 1000\n    window: 50ms\n    keys: 64\n"
		 "  - name: q\n    kind: quota\n    match: {api: a}\n    per: [org]\n"
		 "    count: 1000000000\n    alerts: [1, 2]\n"
		 "  - name: s\n    kind: slots\n    match: {api: a}\n    per: [org]\n"
		 "    count: 1000000\n"
		 "  - name: g\n    kind: gate\n    match: {api: a}\n    per: [token]\n",
		 seg, daemon);
	vrld_write_file(conf, text);
	vrld_pid = vrld_start(conf, NULL, logpath);
	if (!vrld_wait_ready(seg, vrld_pid, WAIT_NS)) {
		show_log();
		fail_msg("vrld did not come up");
	}
}

static void start_vrld(void)
{
	start_vrld_with("");
}

/* The hostile member's own read-write mapping of the whole segment. */
struct rw {
	unsigned char *base;
	size_t size;
	int fd;
};

static void map_rw(struct rw *m)
{
	struct stat st;

	m->fd = shm_open(seg, O_RDWR, 0);
	assert_true(m->fd >= 0);
	assert_int_equal(fstat(m->fd, &st), 0);
	m->size = (size_t)st.st_size;
	m->base = mmap(NULL, m->size, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	assert_true(m->base != MAP_FAILED);
}

static void unmap_rw(struct rw *m)
{
	munmap(m->base, m->size);
	close(m->fd);
}

static bool alive(pid_t pid)
{
	return waitpid(pid, NULL, WNOHANG) == 0;
}

/* Wait until vrld has ticked @n more times. False when it died first. */
static bool vrld_ticks(const struct vrl_seg_header *h, unsigned n)
{
	uint64_t until = vrl_now_ns() + WAIT_NS;
	uint64_t last = atomic_load(&h->daemon_heartbeat_ns);

	while (n > 0 && vrl_now_ns() < until) {
		uint64_t beat;

		if (!alive(vrld_pid))
			return false;
		sleep_ns(NS_PER_S / 100);
		beat = atomic_load(&h->daemon_heartbeat_ns);
		if (beat != last) {
			last = beat;
			n--;
		}
	}
	return n == 0;
}

/*
 * A worker that put keys of every kind in the table (a ring, an alert,
 * slots held) and waits: the caller kills it when it wants a dead holder
 * for vrld to reap. Returns its pid once it is attached.
 */
static pid_t holder_child(void)
{
	_Atomic int *ready = test_shared(sizeof(*ready));
	uint64_t until = vrl_now_ns() + WAIT_NS;
	pid_t pid = fork_child();

	assert_true(pid >= 0);
	if (pid == 0) {
		vrl_client *c = test_open(seg);
		char vin[16];

		for (int i = 0; i < 40; i++) {
			struct vrl_request req = { .api = "a", .org = "o", .token = "t",
						   .vehicle = vin, .cost = 1 };

			snprintf(vin, sizeof(vin), "v%d", i);
			(void)vrl_acquire(c, &req, NULL);
		}
		atomic_store(ready, 1);
		for (;;)
			pause();   /* killed: its holder and slots are vrld's to reap */
	}
	while (!atomic_load(ready) && vrl_now_ns() < until)
		sleep_ns(NS_PER_S / 100);
	assert_true(atomic_load(ready));
	munmap((void *)ready, sizeof(*ready));
	return pid;
}

/* The header's layout words, and where the active config's window area is. */
static const size_t layout_words[] = {
	offsetof(struct vrl_seg_header, size),
	offsetof(struct vrl_seg_header, cfg_off[0]),
	offsetof(struct vrl_seg_header, cfg_off[1]),
	offsetof(struct vrl_seg_header, holder_off),
	offsetof(struct vrl_seg_header, nholders),
	offsetof(struct vrl_seg_header, slot_off),
	offsetof(struct vrl_seg_header, nslots),
	offsetof(struct vrl_seg_header, keys_configured),
	offsetof(struct vrl_seg_header, event_off),
	offsetof(struct vrl_seg_header, nevents),
	offsetof(struct vrl_seg_header, mark_off),
	offsetof(struct vrl_seg_header, gstatus_off),
};
#define NWORDS (sizeof(layout_words) / sizeof(layout_words[0]))

/* Offsets of the words a test corrupts: the layout words, then the window
 * limit's area_off, count and area_keys in both config areas. */
static size_t targets(const struct rw *m, size_t *out)
{
	const struct vrl_seg_header *h = (const void *)m->base;
	size_t n = 0;

	for (size_t i = 0; i < NWORDS; i++)
		out[n++] = layout_words[i];
	for (int a = 0; a < 2; a++) {
		size_t cfg = (size_t)h->cfg_off[a];

		/* limit 1 is the window */
		out[n++] = cfg + offsetof(struct vrl_seg_config, limits[1].area_off);
		out[n++] = cfg + offsetof(struct vrl_seg_config, limits[1].count);
		out[n++] = cfg + offsetof(struct vrl_seg_config, limits[1].area_keys);
		out[n++] = cfg + offsetof(struct vrl_seg_config, nlimits);
	}
	return n;
}

/* Hostile values for the word that holds @orig in a segment of @size bytes. */
static size_t hostile_values(uint64_t orig, uint64_t size, uint64_t *v)
{
	size_t n = 0;

	v[n++] = 0;
	v[n++] = orig + 64;
	v[n++] = orig * 2 + 4096;
	v[n++] = size;
	v[n++] = UINT64_C(1) << 40;
	v[n++] = UINT64_MAX;
	return n;
}

static void test_layout_words_vrld(void **state)
{
	struct rw m;
	size_t off[NWORDS + 8], n;

	(void)state;
	start_vrld();
	map_rw(&m);
	n = targets(&m, off);
	for (size_t i = 0; i < n; i++) {
		uint64_t *w = (uint64_t *)(m.base + off[i]), orig = *w, v[8];
		size_t nv = hostile_values(orig, m.size, v);

		for (size_t k = 0; k < nv; k++) {
			pid_t dead = holder_child();

			*w = v[k];
			/* a dead holder for the reap, keys for the sweep */
			reap(&dead);
			if (!vrld_ticks((const void *)m.base, 3)) {
				show_log();
				fail_msg("vrld died with the word at offset %zu set to %llu",
					 off[i], (unsigned long long)v[k]);
			}
			*w = orig;
		}
	}
	unmap_rw(&m);
	assert_int_equal(vrld_stop_clean(vrld_pid, WAIT_NS, seg, dir), 0);
	vrld_pid = 0;
}

/* ---- the same, in process -------------------------------------------------------- */

static const struct vrl_seg_limit *note_limit(void *arg, uint32_t note)
{
	const struct vrl_seg_config *cfg = arg;
	int li = vrl_note_limit(note, cfg->generation, cfg->nlimits);

	return li < 0 ? NULL : &cfg->limits[li];
}

/* One round of everything vrld does to the segment besides serving it. */
static void upkeep(struct vrl_seg *s, const struct vrl_seg_config *cfg, struct vrl_metrics *m)
{
	uint64_t by_limit[VRL_MAX_LIMITS] = { 0 }, now = vrl_now_ns();
	struct vrl_alert_cursor cur = { 0 };
	struct vrl_ckpt_image img;
	struct vrl_alert_event ev;
	char why[512];

	for (uint64_t first = 0; first < s->view.nslots; first += 64)
		vrl_seg_sweep_by(s, first, 64, now, now, 0, by_limit);
	vrl_seg_renote(s, 0, s->view.nslots);
	vrl_seg_reap_holders(s);
	(void)vrl_seg_reload_check(s, cfg, why, sizeof(why));
	(void)vrl_seg_reload(s, cfg, why, sizeof(why));
	for (int i = 0; i < 300 && vrl_alert_drain(&s->view, &cur, now, 0, &ev) == 1; i++)
		;
	if (vrl_ckpt_collect(&s->view, note_limit, s->cfg, &img, why, sizeof(why)) == 0)
		vrl_ckpt_image_free(&img);
	(void)vrl_metrics_update(m);
	(void)vrl_seg_restore_header(s);
}

static void test_layout_words_upkeep(void **state)
{
	static struct vrl_seg_config cfg;
	static const int per_vehicle[] = { VRL_FIELD_VEHICLE, -1 };
	static const int per_org[] = { VRL_FIELD_ORG, -1 };
	struct vrl_seg_limit *q;
	struct vrl_metrics *m;
	struct vrl_seg s;
	struct rw w;
	size_t off[NWORDS + 8], n;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	test_add_rate(&cfg, "r", "a", 100000, NS_PER_S, 1000, per_vehicle);
	test_add_window(&cfg, "w", "a", 1000, NS_PER_S / 20, 64, per_vehicle);
	q = test_add_quota(&cfg, "q", "a", 1000000000, VRL_CAL_MONTH, 1, 0, per_org);
	q->nalerts = 2;
	q->alert_pct[0] = 1;
	q->alert_pct[1] = 2;
	test_add_slots(&cfg, "s", "a", 1000000, 0, per_org);
	test_add_gate(&cfg, "g", "a", (int[]){ VRL_FIELD_TOKEN, -1 });
	test_segment("hostile-upkeep", &cfg, 200, &s, seg);
	m = vrl_metrics_new(&s.view, 5);
	assert_non_null(m);
	w.base = (unsigned char *)s.hdr;
	w.size = s.size;
	n = targets(&w, off);
	for (size_t i = 0; i < n; i++) {
		uint64_t *word = (uint64_t *)(w.base + off[i]), orig = *word, v[8];
		size_t nv = hostile_values(orig, w.size, v);

		for (size_t k = 0; k < nv; k++) {
			pid_t dead = holder_child();

			reap(&dead);
			*word = v[k];
			upkeep(&s, &cfg, m);
			*word = orig;
		}
	}
	vrl_metrics_free(m);
	test_segment_drop(&s, seg);
}

/* ---- workers -------------------------------------------------------------------- */

enum { PHASE_RUN, PHASE_CUT, PHASE_BACK, PHASE_STOP };

struct board {
	_Atomic int phase;
	struct {
		_Atomic uint64_t calls, granted, corrupt, other;
		_Atomic uint64_t corrupt_in_cut;    /* VRL_ECORRUPT seen since the cut */
		_Atomic uint64_t granted_after_corrupt_in_cut; /* must stay 0 */
		_Atomic uint64_t granted_back;      /* grants in PHASE_BACK */
		_Atomic int last_rc;
	} w[WORKERS];
};

/* Acquire by new and old keys, resolved and not, cooldowns and releases,
 * until told to stop. Exits 0 unless something crashes it. */
static void worker(struct board *b, int me)
{
	vrl_client *c = test_open(seg);
	vrl_resolved *r = NULL;
	struct vrl_request hot = { .api = "a", .org = "o", .token = "t", .vehicle = "hot" };
	char vin[16];
	uint64_t i = 0;

	(void)vrl_resolve(c, &hot, &r);
	while (atomic_load(&b->phase) != PHASE_STOP) {
		struct vrl_request req = { .api = "a", .org = "o", .token = "t", .vehicle = vin };
		int phase = atomic_load(&b->phase), rc;

		snprintf(vin, sizeof(vin), "w%d-%llu", me, (unsigned long long)(i++ % 97));
		switch (i % 4) {
		case 0:
			rc = r ? vrl_acquire_resolved(c, r, 1, NULL) : vrl_acquire(c, &hot, NULL);
			break;
		case 1:
			rc = vrl_cooldown(c, &req, "g", vrl_now_ns() + 1);
			if (rc == 0)
				rc = vrl_acquire(c, &req, NULL);
			break;
		case 2:
			rc = vrl_acquire(c, &req, NULL);
			if (rc == 0)
				(void)vrl_release(c, &req, "s", 1);
			break;
		default:
			rc = vrl_acquire(c, &req, NULL);
		}
		atomic_fetch_add(&b->w[me].calls, 1);
		atomic_store(&b->w[me].last_rc, rc);
		if (rc == 0)
			atomic_fetch_add(&b->w[me].granted, 1);
		else if (rc == VRL_ECORRUPT)
			atomic_fetch_add(&b->w[me].corrupt, 1);
		else if (rc != VRL_EDENIED)
			atomic_fetch_add(&b->w[me].other, 1);
		if (phase == PHASE_CUT && rc == VRL_ECORRUPT)
			atomic_fetch_add(&b->w[me].corrupt_in_cut, 1);
		if (phase == PHASE_CUT && rc == 0 && atomic_load(&b->w[me].corrupt_in_cut) &&
		    atomic_load(&b->phase) == PHASE_CUT)
			atomic_fetch_add(&b->w[me].granted_after_corrupt_in_cut, 1);
		if (phase == PHASE_BACK && rc == 0)
			atomic_fetch_add(&b->w[me].granted_back, 1);
		if (i % 64 == 0)
			sleep_ns(50 * 1000);   /* leave the shared machine some air */
	}
	vrl_resolved_free(r);
	vrl_close(c);
	_exit(0);
}

static struct board *spawn_workers(void)
{
	struct board *b = test_shared(sizeof(*b));

	memset(b, 0, sizeof(*b));
	for (int w = 0; w < WORKERS; w++) {
		workers[w] = fork_child();
		assert_true(workers[w] >= 0);
		if (workers[w] == 0)
			worker(b, w);
	}
	/* every worker is attached and acquiring */
	for (int w = 0; w < WORKERS; w++) {
		uint64_t until = vrl_now_ns() + WAIT_NS;

		while (atomic_load(&b->w[w].calls) < 10 && vrl_now_ns() < until)
			sleep_ns(NS_PER_S / 100);
		assert_true(atomic_load(&b->w[w].calls) >= 10);
	}
	return b;
}

/* Stop the workers: each must exit 0, none killed by a signal. */
static void stop_workers(struct board *b)
{
	atomic_store(&b->phase, PHASE_STOP);
	for (int w = 0; w < WORKERS; w++) {
		int st;

		assert_int_equal(waitpid(workers[w], &st, 0), workers[w]);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("worker %d %s %d after %llu calls", w,
				 WIFSIGNALED(st) ? "killed by signal" : "exited",
				 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
				 (unsigned long long)atomic_load(&b->w[w].calls));
		workers[w] = 0;
	}
}

static void test_layout_words_workers(void **state)
{
	struct board *b;
	struct rw m;
	size_t off[NWORDS + 8], n;

	(void)state;
	start_vrld();
	b = spawn_workers();
	map_rw(&m);
	n = targets(&m, off);
	for (size_t i = 0; i < n; i++) {
		_Atomic uint64_t *w = (_Atomic uint64_t *)(m.base + off[i]);
		uint64_t orig = atomic_load(w), v[8];
		size_t nv = hostile_values(orig, m.size, v);

		/* flipped while calls are in flight: a check at a call's start
		 * cannot catch a word that changes in its middle */
		for (unsigned round = 0; round < 2000; round++) {
			atomic_store(w, v[round % nv]);
			for (volatile int spin = 0; spin < 200; spin++)
				;
			atomic_store(w, orig);
			for (volatile int spin = 0; spin < 200; spin++)
				;
			if (round % 500 == 0)
				sched_yield();
		}
	}
	unmap_rw(&m);
	stop_workers(b);
	assert_true(alive(vrld_pid));
	assert_int_equal(vrld_stop_clean(vrld_pid, WAIT_NS, seg, dir), 0);
	vrld_pid = 0;
}

/* ---- a truncated segment --------------------------------------------------------------- */

/* Every worker's counter @field reaches @min. */
#define WAIT_ALL(b, field, min)                                                           \
	do {                                                                              \
		uint64_t until_ = vrl_now_ns() + WAIT_NS;                                 \
		for (int w_ = 0; w_ < WORKERS; w_++) {                                    \
			while (atomic_load(&(b)->w[w_].field) < (min) &&                  \
			       vrl_now_ns() < until_ && alive(workers[w_]))              \
				sleep_ns(NS_PER_S / 100);                                 \
			if (atomic_load(&(b)->w[w_].field) < (min))                       \
				fail_msg("worker %d%s: %s stayed at %llu (last rc %d)", w_, \
					 alive(workers[w_]) ? "" : " died",               \
					 #field,                                          \
					 (unsigned long long)atomic_load(&(b)->w[w_].field), \
					 atomic_load(&(b)->w[w_].last_rc));               \
		}                                                                         \
	} while (0)

/*
 * Cut the shm object to @size bytes as a member of its group would: a
 * child that drops to uid and gid 65534 (nobody) with the segment's group
 * (root's, 0) as a supplementary group, when the test runs as root.
 */
static void cut_as_member(off_t size)
{
	static const gid_t member[] = { 0 };
	pid_t pid = fork_child();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd;

		if (geteuid() == 0 && (setgroups(1, member) != 0 || setgid(65534) != 0 ||
				       setuid(65534) != 0))
			_exit(2);
		fd = shm_open(seg, O_RDWR, 0);
		_exit(fd >= 0 && ftruncate(fd, size) == 0 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_truncated(void **state)
{
	struct board *b;

	(void)state;
	start_vrld();
	b = spawn_workers();
	/* vrld cannot restore the size while stopped: the workers are on
	 * their own with a segment of one page */
	assert_int_equal(kill(vrld_pid, SIGSTOP), 0);
	atomic_store(&b->phase, PHASE_CUT);
	cut_as_member(4096);
	WAIT_ALL(b, corrupt_in_cut, 50);
	for (int w = 0; w < WORKERS; w++)
		assert_int_equal(atomic_load(&b->w[w].granted_after_corrupt_in_cut), 0);
	/* vrld restores the size; the workers heal and grant again */
	atomic_store(&b->phase, PHASE_BACK);
	assert_int_equal(kill(vrld_pid, SIGCONT), 0);
	WAIT_ALL(b, granted_back, 50);
	stop_workers(b);
	assert_true(alive(vrld_pid));
	assert_true(vrld_log_has(logpath, "shrunk"));
	/* a second cut while vrld runs: it restores the size by itself, and
	 * no worker dies of it. Whether a given worker calls inside the cut
	 * at all is up to the scheduler (vrld may restore the size within
	 * its tick), so the event waited for is vrld's second restore. */
	b = spawn_workers();
	atomic_store(&b->phase, PHASE_CUT);
	cut_as_member(0);
	assert_true(vrld_wait_log(logpath, "segment restored", 2, WAIT_NS));
	atomic_store(&b->phase, PHASE_BACK);
	WAIT_ALL(b, granted_back, 50);
	stop_workers(b);
	assert_true(alive(vrld_pid));
	assert_int_equal(vrld_stop_clean(vrld_pid, WAIT_NS, seg, dir), 0);
	vrld_pid = 0;
}

/* Whether checkpoint @path holds a key labelled @label. */
static bool ckpt_has(const char *path, const char *label)
{
	struct vrl_ckpt ck;
	char why[512];
	bool found = false;

	if (vrl_ckpt_load(path, &ck, why, sizeof(why)) != 0)
		return false;
	for (uint64_t i = 0; i < ck.n && !found; i++)
		found = strcmp(ck.recs[i].label, label) == 0;
	vrl_ckpt_free(&ck);
	return found;
}

/* Wait until vrld's checkpoint @path holds a key labelled @label. */
static bool wait_ckpt_has(const char *path, const char *label)
{
	uint64_t until = vrl_now_ns() + WAIT_NS;

	while (!ckpt_has(path, label) && vrl_now_ns() < until && alive(vrld_pid))
		sleep_ns(NS_PER_S / 50);
	return ckpt_has(path, label);
}

/*
 * Quota units taken after vrld rebuilt a truncated segment are durable as
 * any others: vrld's checkpointer names the keys workers insert under the
 * config the rebuild published, and writes them.
 */
static void test_truncated_checkpointed(void **state)
{
	const struct vrl_request before = { .api = "a", .org = "before", .token = "t",
					    .vehicle = "v" };
	const struct vrl_request after = { .api = "a", .org = "after", .token = "t",
					   .vehicle = "v" };
	uint64_t until = vrl_now_ns() + WAIT_NS;
	char ckpt[320], daemon[400];
	vrl_client *c;
	int rc;

	(void)state;
	snprintf(ckpt, sizeof(ckpt), "%s/vrl.ckpt", dir);
	snprintf(daemon, sizeof(daemon), ", checkpoint: \"%s\", checkpoint_interval: 50ms",
		 ckpt);
	start_vrld_with(daemon);
	/* cmocka put its own SIGBUS handler in for this test, over the guard
	 * an earlier test's vrl_open() installed; the guard goes in again over
	 * the default action only, as in a fresh process */
	signal(SIGBUS, SIG_DFL);
	c = test_open(seg);
	assert_int_equal(vrl_acquire(c, &before, NULL), 0);
	if (!wait_ckpt_has(ckpt, "before")) {
		show_log();
		fail_msg("the checkpoint never held the key taken before the cut");
	}
	cut_as_member(0);
	/* the handle fails its calls until vrld has rebuilt the segment */
	while ((rc = vrl_acquire(c, &after, NULL)) == VRL_ECORRUPT && vrl_now_ns() < until)
		sleep_ns(NS_PER_S / 100);
	assert_int_equal(rc, 0);
	assert_true(vrld_log_has(logpath, "shrunk"));
	if (!wait_ckpt_has(ckpt, "after")) {
		show_log();
		fail_msg("no checkpoint held the key taken after the rebuild");
	}
	/* the one restored from the checkpoint is still in it */
	assert_true(ckpt_has(ckpt, "before"));
	vrl_close(c);
	assert_true(alive(vrld_pid));
	assert_int_equal(vrld_stop_clean(vrld_pid, WAIT_NS, seg, dir), 0);
	vrld_pid = 0;
}

/* ---- daemon_pid -------------------------------------------------------------------- */

/* Run vrlctl with @args; its exit status, its output in @out. */
static int vrlctl(const char *args, char *out, size_t cap)
{
	return run_vrlctl(vrlctl_path, seg, args, true, out, cap);
}

/* Whether @pid has SIGHUP pending (it blocks it: a signal sent stays there). */
static bool hup_pending(pid_t pid)
{
	char path[64], line[256];
	unsigned long long mask = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "ShdPnd:", 7) == 0 || strncmp(line, "SigPnd:", 7) == 0)
			mask |= strtoull(line + 7, NULL, 16);
	fclose(f);
	return mask & (1ull << (SIGHUP - 1));
}

/* Write @pid into the header's daemon_pid as a member of the segment's
 * group would (as cut_as_member()), with pwrite: no mapping needed. */
static void forge_pid_as_member(int32_t pid)
{
	static const gid_t member[] = { 0 };
	pid_t child = fork_child();
	int st;

	assert_true(child >= 0);
	if (child == 0) {
		int fd;

		if (geteuid() == 0 && (setgroups(1, member) != 0 || setgid(65534) != 0 ||
				       setuid(65534) != 0))
			_exit(2);
		fd = shm_open(seg, O_RDWR, 0);
		_exit(fd >= 0 && pwrite(fd, &pid, sizeof(pid),
					offsetof(struct vrl_seg_header, daemon_pid)) ==
					 (ssize_t)sizeof(pid) ? 0 : 1);
	}
	assert_int_equal(waitpid(child, &st, 0), child);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A process that blocks SIGHUP, so that a signal sent to it shows (as
 * pending) instead of ending it; with @lock, as a member of the group, it
 * first takes the record lock vrld takes and names itself in the header. */
static pid_t spawn_bystander(bool lock)
{
	_Atomic int *ready = test_shared(sizeof(*ready));
	uint64_t until = vrl_now_ns() + WAIT_NS;
	sigset_t hup;
	pid_t pid;

	sigemptyset(&hup);
	sigaddset(&hup, SIGHUP);
	sigprocmask(SIG_BLOCK, &hup, NULL);
	pid = fork_child();
	assert_true(pid >= 0);
	if (pid == 0) {
		static const gid_t member[] = { 0 };
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1 };
		int32_t me = (int32_t)getpid();
		int fd;

		if (lock) {
			if (geteuid() == 0 && (setgroups(1, member) != 0 || setgid(65534) != 0 ||
					       setuid(65534) != 0))
				_exit(2);
			fd = shm_open(seg, O_RDWR, 0);
			if (fd < 0 || fcntl(fd, F_SETLK, &fl) != 0 ||
			    pwrite(fd, &me, sizeof(me), offsetof(struct vrl_seg_header,
								 daemon_pid)) != sizeof(me))
				_exit(3);
		}
		atomic_store(ready, 1);
		for (;;)
			pause();
	}
	sigprocmask(SIG_UNBLOCK, &hup, NULL);
	while (!atomic_load(ready) && vrl_now_ns() < until && alive(pid))
		sleep_ns(NS_PER_S / 100);
	assert_true(atomic_load(ready));
	munmap((void *)ready, sizeof(*ready));
	return pid;
}

static void test_daemon_pid_forged(void **state)
{
	char out[4096];

	(void)state;
	start_vrld();
	bystander = spawn_bystander(false);
	/* a member points daemon_pid at the bystander: root's vrlctl must not
	 * signal it, and says why */
	forge_pid_as_member((int32_t)bystander);
	assert_int_not_equal(vrlctl("reload --wait 1s", out, sizeof(out)), 0);
	fprintf(stderr, "# vrlctl: %s", out);
	assert_non_null(strstr(out, "not signalling"));
	assert_false(hup_pending(bystander));
	assert_true(alive(vrld_pid));
	/* with the header naming vrld again, it works */
	forge_pid_as_member((int32_t)vrld_pid);
	assert_int_equal(vrlctl("reload", out, sizeof(out)), 0);
	/* with no vrld at all, nothing is signalled either */
	kill(vrld_pid, SIGTERM);
	assert_int_equal(vrld_wait_exit(vrld_pid, WAIT_NS), 0);
	vrld_pid = 0;
	forge_pid_as_member((int32_t)bystander);
	assert_int_not_equal(vrlctl("reload --wait 1s", out, sizeof(out)), 0);
	assert_false(hup_pending(bystander));
	reap(&bystander);
	/* nor a member that holds vrld's lock and names itself */
	bystander = spawn_bystander(true);
	assert_int_not_equal(vrlctl("reload --wait 1s", out, sizeof(out)), 0);
	fprintf(stderr, "# vrlctl: %s", out);
	assert_false(hup_pending(bystander));
	reap(&bystander);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_layout_words_upkeep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layout_words_vrld, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layout_words_workers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_checkpointed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_daemon_pid_forged, setup, teardown),
	};

	if (argc < 3) {
		fprintf(stderr, "usage: %s VRLD VRLCTL\n", argv[0]);
		return 2;
	}
	vrld_path = argv[1];
	vrlctl_path = argv[2];
	if (argc > 3)
		cmocka_set_test_filter(argv[3]);   /* one test, by name or glob */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
