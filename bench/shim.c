/*
 * shim.c - what the benchmarks measure, and the baselines they compare to.
 *
 * Each case runs on its own shared-memory object "/vrl-bench-<pid>-<tag>",
 * unlinked when the case ends. The baselines do the same job as vrl's
 * acquire (one rate-limit decision for one key, visible to every process
 * on the host) the cheapest way each technique allows, so a ratio to them
 * says what vrl's design buys, not what a slow baseline loses.
 */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "upkeep.h"
#include "clock.h"
#include "gcra.h"
#include "segment.h"
#include "share.h"
#include "vrl.h"

#ifdef VB_HAVE_HIREDIS
#include <hiredis/hiredis.h>
#endif

#define API "samsara"
#define NEVER_DENY_COUNT UINT64_C(1000000000)   /* 1e9 permits ... */
#define NEVER_DENY_PERIOD UINT64_C(1000000000)  /* ... per second, */
#define NEVER_DENY_BURST UINT64_C(1000000000)   /* bucket of 1e9 */

static void bench_name(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "/vrl-bench-%ld-%s", (long)getpid(), tag);
}

/* the floor's clock read: the library's own, inline (clock.h) */
static uint64_t mono_ns(void)
{
	return vrl_mono_ns();
}

/* ---- vrl segments ---------------------------------------------------------- */

struct vb_seg {
	char name[VRL_SHM_NAME_MAX];
	struct vrl_seg seg;
	vrl_client *c;
	vrl_resolved *r;
	_Atomic uint64_t *word;   /* a global key's share word (vb_global_lease) */
	pid_t owner;              /* only the creating process unlinks */
};

/* A rate limit for api "samsara" keyed by one request field. */
static int limit_rate(struct vrl_seg_limit *l, const char *name, enum vrl_field per,
		      uint64_t count, uint64_t period_ns, uint64_t burst)
{
	int rc;

	memset(l, 0, sizeof(*l));
	rc = vrl_limit_set_rate(l, count, period_ns, burst);
	if (rc)
		return rc;
	snprintf(l->name, sizeof(l->name), "%s", name);
	l->nper = 1;
	l->per[0].field = per;
	l->nmatch = 1;
	l->match[0].ref.field = VRL_FIELD_API;
	snprintf(l->match[0].pattern, sizeof(l->match[0].pattern), "%s", API);
	return 0;
}

static int seg_create(const char *tag, const struct vrl_seg_config *cfg, uint64_t keys,
		      vb_seg **out)
{
	struct vrl_seg_spec spec = { .mode = 0600, .gid = (gid_t)-1, .keys = keys };
	char why[256];
	vb_seg *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	bench_name(s->name, sizeof(s->name), tag);
	memcpy(spec.name, s->name, sizeof(spec.name));
	s->owner = getpid();
	rc = vrl_seg_open_or_create(&spec, cfg, true, &s->seg, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "bench: segment %s: %s %s\n", s->name, vrl_strerror(rc), why);
		free(s);
		return rc;
	}
	rc = vrl_open(s->name, 0, &s->c);
	if (rc) {
		vb_seg_destroy(s);
		return rc;
	}
	*out = s;
	return 0;
}

static struct vrl_seg_config *config_new(void)
{
	struct vrl_seg_config *cfg = calloc(1, sizeof(*cfg));

	if (cfg)
		snprintf(cfg->source, sizeof(cfg->source), "bench");
	return cfg;
}

int vb_seg_one(const char *tag, uint64_t count, uint64_t period_ns, uint64_t burst,
	       uint64_t keys, vb_seg **out)
{
	struct vrl_seg_config *cfg = config_new();
	int rc;

	if (!cfg)
		return -ENOMEM;
	cfg->nlimits = 1;
	rc = limit_rate(&cfg->limits[0], "bench.token", VRL_FIELD_TOKEN, count, period_ns, burst);
	if (rc == 0)
		rc = seg_create(tag, cfg, keys, out);
	free(cfg);
	return rc;
}

int vb_seg_one_global(const char *tag, vb_seg **out)
{
	struct vrl_seg_config *cfg = config_new();
	int rc;

	if (!cfg)
		return -ENOMEM;
	cfg->nlimits = 1;
	rc = limit_rate(&cfg->limits[0], "bench.token", VRL_FIELD_TOKEN, NEVER_DENY_COUNT,
			NEVER_DENY_PERIOD, NEVER_DENY_BURST);
	cfg->limits[0].flags |= VRL_LIMIT_GLOBAL;
	if (rc == 0)
		rc = seg_create(tag, cfg, 64, out);
	free(cfg);
	return rc;
}

/* The share word of the one key of @s (made by an acquire first). */
static _Atomic uint64_t *global_word(vb_seg *s)
{
	struct vrl_verdict v;

	(void)vrl_acquire_resolved(s->c, s->r, 0, &v);
	for (uint64_t i = 0; i < s->seg.view.nslots; i++) {
		uint64_t t = atomic_load(&s->seg.view.slots[i].tag);

		if ((t & VRL_TAG_LIVE) && !(t & VRL_TAG_PENDING))
			return &s->seg.view.shares[i].word;
	}
	return NULL;
}

int vb_global_lease(vb_seg *s)
{
	_Atomic uint64_t *w = s->seg.view.shares ? global_word(s) : NULL;

	if (!w)
		return -ENOENT;
	/* a lease trusted for an hour, full: as vrld leaves it after a tick */
	vrl_share_set(w, VRL_SHARE_BURST_MAX, vrl_mono_ns() + 3600 * NEVER_DENY_PERIOD, false);
	vrl_share_fill_word(w, VRL_SHARE_CREDIT_MAX, VRL_SHARE_BURST_MAX);
	s->word = w;
	return 0;
}

int vb_acquire_global(vb_seg *s)
{
	struct vrl_verdict v;
	int rc = vrl_acquire_resolved(s->c, s->r, 0, &v);

	/* vrld's refill, when half the credit is gone: one relaxed load on
	 * the line the take just wrote, a CAS once per 32768 grants */
	if (vrl_share_credit(atomic_load_explicit(s->word, memory_order_relaxed)) <
	    VRL_SHARE_CREDIT_MAX / 2)
		vrl_share_fill_word(s->word, VRL_SHARE_CREDIT_MAX, VRL_SHARE_BURST_MAX);
	return rc;
}

int vb_seg_stacked(const char *tag, vb_seg **out)
{
	static const struct { const char *name; enum vrl_field per; } lims[] = {
		{ "bench.token", VRL_FIELD_TOKEN },
		{ "bench.org", VRL_FIELD_ORG },
		{ "bench.endpoint", VRL_FIELD_ENDPOINT },
	};
	struct vrl_seg_config *cfg = config_new();
	int rc = 0;

	if (!cfg)
		return -ENOMEM;
	cfg->nlimits = 3;
	for (unsigned i = 0; i < 3 && rc == 0; i++)
		rc = limit_rate(&cfg->limits[i], lims[i].name, lims[i].per, NEVER_DENY_COUNT,
				NEVER_DENY_PERIOD, NEVER_DENY_BURST);
	if (rc == 0)
		rc = seg_create(tag, cfg, 1024, out);
	free(cfg);
	return rc;
}

void vb_seg_destroy(vb_seg *s)
{
	if (!s)
		return;
	vrl_resolved_free(s->r);
	vrl_close(s->c);
	vrl_seg_close(&s->seg);
	if (s->owner == getpid())
		vrl_seg_unlink(s->name);
	free(s);
}

void vb_seg_prefault(vb_seg *s)
{
	const struct vrl_seg_view *h = &s->seg.view;
	const struct vrl_seg_slot *slots = h->slots;
	uint64_t sum = 0;

	for (uint64_t i = 0; i < h->nslots; i += 4096 / sizeof(*slots))
		sum += atomic_load_explicit(&slots[i].tag, memory_order_relaxed);
	__asm__ volatile("" : : "r"(sum));
}

int vb_resolve(vb_seg *s, const char *token)
{
	struct vrl_request req = { .api = API, .token = token };

	vrl_resolved_free(s->r);
	s->r = NULL;
	return vrl_resolve(s->c, &req, &s->r);
}

int vb_acquire_resolved(vb_seg *s)
{
	struct vrl_verdict v;

	return vrl_acquire_resolved(s->c, s->r, 0, &v);
}

int vb_acquire_strings(vb_seg *s, const char *token, const char *org, const char *endpoint)
{
	struct vrl_request req = { .api = API, .token = token, .org = org, .endpoint = endpoint };
	struct vrl_verdict v;

	return vrl_acquire(s->c, &req, &v);
}

int vb_denial_is_readonly(vb_seg *s)
{
	const struct vrl_seg_view *h = &s->seg.view;
	size_t bytes = h->nslots * sizeof(struct vrl_seg_slot);
	void *before = malloc(bytes);
	int rc, same;

	if (!before)
		return -ENOMEM;
	memcpy(before, h->slots, bytes);
	rc = vb_acquire_resolved(s);
	same = memcmp(before, h->slots, bytes) == 0;
	free(before);
	if (rc != VRL_EDENIED)
		return rc < 0 ? rc : -EINVAL;
	return same;
}

/* ---- plain shared memory for the floor and the mutex baseline -------------- */

struct shm {
	char name[VRL_SHM_NAME_MAX];
	void *base;
	size_t len;
};

static int shm_make(struct shm *m, const char *tag, size_t len)
{
	int fd, rc = 0;

	bench_name(m->name, sizeof(m->name), tag);
	m->len = len;
	fd = shm_open(m->name, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len) != 0)
		rc = -errno;
	m->base = rc ? MAP_FAILED : mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (rc == 0 && m->base == MAP_FAILED)
		rc = -errno;
	close(fd);
	if (rc)
		shm_unlink(m->name);
	return rc;
}

static void shm_drop(struct shm *m)
{
	munmap(m->base, m->len);
	shm_unlink(m->name);
}

/* ---- the floor ----------------------------------------------------------------- */

/*
 * The least any cross-process rate limiter must do per decision: read the
 * monotonic clock and publish one new state word with a CAS, acquire-
 * release, in a MAP_SHARED mapping. The new value depends on the clock and
 * the old value, as a GCRA TAT does, so the CAS cannot be hoisted or
 * folded. Under contention it retries until its CAS succeeds.
 */
struct vb_floor {
	struct shm m;
	_Atomic uint64_t *word;
};

int vb_floor_create(const char *tag, vb_floor **out)
{
	vb_floor *f = calloc(1, sizeof(*f));
	int rc;

	if (!f)
		return -ENOMEM;
	rc = shm_make(&f->m, tag, 4096);
	if (rc) {
		free(f);
		return rc;
	}
	f->word = f->m.base;
	*out = f;
	return 0;
}

void vb_floor_destroy(vb_floor *f)
{
	if (!f)
		return;
	shm_drop(&f->m);
	free(f);
}

int vb_floor_op(vb_floor *f)
{
	uint64_t now = mono_ns();
	uint64_t cur = atomic_load_explicit(f->word, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(f->word, &cur, (cur > now ? cur : now) + 1,
						      memory_order_acq_rel, memory_order_relaxed))
		;
	return 0;
}

/* ---- baseline: token bucket under a robust mutex -------------------------------- */

/*
 * The conventional way to share a bucket between processes: a token bucket
 * in shared memory behind a PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST
 * mutex (robust, because a worker killed while holding a plain mutex would
 * wedge every other worker forever, which vrl's design rules out too).
 * Same never-denying rate as the vrl cases; the clock is read outside the
 * lock, and the refill uses no division, so the lock is the only extra.
 */
struct bucket {
	pthread_mutex_t lock;
	uint64_t scaled;          /* tokens * period_ns */
	uint64_t last_ns;
	uint64_t count, period_ns, burst;
};

struct vb_mutex {
	struct shm m;
	struct bucket *b;
};

int vb_mutex_create(const char *tag, vb_mutex **out)
{
	pthread_mutexattr_t a;
	vb_mutex *m = calloc(1, sizeof(*m));
	int rc;

	if (!m)
		return -ENOMEM;
	rc = shm_make(&m->m, tag, 4096);
	if (rc) {
		free(m);
		return rc;
	}
	m->b = m->m.base;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	rc = -pthread_mutex_init(&m->b->lock, &a);
	pthread_mutexattr_destroy(&a);
	if (rc) {
		vb_mutex_destroy(m);
		return rc;
	}
	m->b->count = NEVER_DENY_COUNT;
	m->b->period_ns = NEVER_DENY_PERIOD;
	m->b->burst = NEVER_DENY_BURST;
	m->b->scaled = m->b->burst * m->b->period_ns;
	m->b->last_ns = mono_ns();
	*out = m;
	return 0;
}

void vb_mutex_destroy(vb_mutex *m)
{
	if (!m)
		return;
	shm_drop(&m->m);
	free(m);
}

static int robust_lock(pthread_mutex_t *l)
{
	int rc = pthread_mutex_lock(l);

	/* The holder died: the bucket's words are each whole (at worst one
	 * refill is lost), so mark the lock consistent and carry on. */
	if (rc == EOWNERDEAD)
		rc = pthread_mutex_consistent(l);
	return -rc;
}

int vb_mutex_op(vb_mutex *m)
{
	__extension__ typedef unsigned __int128 u128;
	struct bucket *b = m->b;
	uint64_t now = mono_ns();
	int rc = robust_lock(&b->lock), granted;
	u128 s, cap;

	if (rc)
		return rc;
	s = b->scaled;
	if (now > b->last_ns) {
		s += (u128)(now - b->last_ns) * b->count;
		b->last_ns = now;
	}
	cap = (u128)b->burst * b->period_ns;
	if (s > cap)
		s = cap;
	granted = s >= b->period_ns;
	if (granted)
		s -= b->period_ns;
	b->scaled = (uint64_t)s;
	pthread_mutex_unlock(&b->lock);
	return granted ? 0 : 1;
}

/* ---- a rival process ------------------------------------------------------------ */

struct rival_ctl {
	_Alignas(64) _Atomic int ready;
	_Alignas(64) _Atomic int stop;
	_Atomic uint64_t ops;
};

struct vb_rival {
	pid_t pid;
	struct rival_ctl *ctl;
};

static int rival_op(vb_seg *s, vb_floor *f, vb_mutex *m)
{
	if (s)
		return vb_acquire_resolved(s) == 0 ? 0 : -1;
	if (f)
		return vb_floor_op(f);
	return vb_mutex_op(m) < 0 ? -1 : 0;
}

/* The child: the same op on the same word, as fast as it can. It uses the
 * parent's handle as a prefork worker would (vrl re-registers it). */
static void rival_main(struct rival_ctl *ctl, vb_seg *s, vb_floor *f, vb_mutex *m)
{
	uint64_t n = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (rival_op(s, f, m) != 0)
		_exit(1);
	atomic_store_explicit(&ctl->ready, 1, memory_order_release);
	while (!atomic_load_explicit(&ctl->stop, memory_order_relaxed)) {
		if (rival_op(s, f, m) != 0)
			_exit(1);
		n++;
	}
	atomic_store_explicit(&ctl->ops, n, memory_order_relaxed);
	_exit(0);
}

int vb_rival_start(vb_seg *s, vb_floor *f, vb_mutex *m, vb_rival **out)
{
	vb_rival *r = calloc(1, sizeof(*r));
	int status;

	if (!r)
		return -ENOMEM;
	r->ctl = mmap(NULL, sizeof(*r->ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		      -1, 0);
	if (r->ctl == MAP_FAILED) {
		free(r);
		return -ENOMEM;
	}
	r->pid = fork();
	if (r->pid < 0) {
		munmap(r->ctl, sizeof(*r->ctl));
		free(r);
		return -errno;
	}
	if (r->pid == 0)
		rival_main(r->ctl, s, f, m);
	while (!atomic_load_explicit(&r->ctl->ready, memory_order_acquire)) {
		if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
			munmap(r->ctl, sizeof(*r->ctl));
			free(r);
			return -ECHILD;
		}
		sched_yield();
	}
	*out = r;
	return 0;
}

uint64_t vb_rival_stop(vb_rival *r)
{
	uint64_t ops;

	if (!r)
		return 0;
	atomic_store_explicit(&r->ctl->stop, 1, memory_order_relaxed);
	waitpid(r->pid, NULL, 0);
	ops = atomic_load_explicit(&r->ctl->ops, memory_order_relaxed);
	munmap(r->ctl, sizeof(*r->ctl));
	free(r);
	return ops;
}

/* ---- baseline: Redis + Lua GCRA ---------------------------------------------------- */

/*
 * The usual distributed limiter: GCRA in a Lua script, run atomically by
 * Redis, one EVALSHA round trip per decision. Redis runs on the same host
 * on a Unix socket (no TCP, no network), with persistence off, which is
 * the fastest Redis deployment there is. Times are microseconds since the
 * epoch (Lua numbers are doubles; nanoseconds would lose precision).
 */
static const char gcra_lua[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
	"local T = tonumber(ARGV[1])\n"
	"local tau = tonumber(ARGV[2])\n"
	"local tat = tonumber(redis.call('GET', KEYS[1])) or now\n"
	"if tat < now then tat = now end\n"
	"local new = tat + T\n"
	"if new - now > tau then return 0 end\n"
	"redis.call('SET', KEYS[1], string.format('%d', new), 'PX', math.ceil(tau / 1000) + 1)\n"
	"return 1\n";

#ifdef VB_HAVE_HIREDIS

struct vb_redis {
	redisContext *ctx;
	char sha[64];
	char key[64];
};

int vb_redis_available(void)
{
	return 1;
}

int vb_redis_connect(const char *socket_path, vb_redis **out, char *why, size_t whylen)
{
	vb_redis *r = calloc(1, sizeof(*r));
	redisReply *rep;

	if (!r)
		return -ENOMEM;
	r->ctx = redisConnectUnix(socket_path);
	if (!r->ctx || r->ctx->err) {
		snprintf(why, whylen, "cannot connect to %s: %s", socket_path,
			 r->ctx ? r->ctx->errstr : "out of memory");
		vb_redis_close(r);
		return -ECONNREFUSED;
	}
	rep = redisCommand(r->ctx, "SCRIPT LOAD %s", gcra_lua);
	if (!rep || rep->type != REDIS_REPLY_STRING) {
		snprintf(why, whylen, "SCRIPT LOAD failed: %s",
			 rep && rep->type == REDIS_REPLY_ERROR ? rep->str : r->ctx->errstr);
		if (rep)
			freeReplyObject(rep);
		vb_redis_close(r);
		return -EPROTO;
	}
	snprintf(r->sha, sizeof(r->sha), "%s", rep->str);
	freeReplyObject(rep);
	snprintf(r->key, sizeof(r->key), "vrl-bench:%ld", (long)getpid());
	*out = r;
	return 0;
}

void vb_redis_close(vb_redis *r)
{
	if (!r)
		return;
	if (r->ctx)
		redisFree(r->ctx);
	free(r);
}

int vb_redis_op(vb_redis *r)
{
	/* 1 µs per permit (1e6/s), a bucket of 1e9 permits: never denies */
	redisReply *rep = redisCommand(r->ctx, "EVALSHA %s 1 %s 1 1000000000", r->sha, r->key);
	int rc;

	if (!rep)
		return -EIO;
	rc = rep->type == REDIS_REPLY_INTEGER ? (rep->integer == 1 ? 0 : 1) : -EPROTO;
	freeReplyObject(rep);
	return rc;
}

#else /* !VB_HAVE_HIREDIS */

int vb_redis_available(void)
{
	return 0;
}

int vb_redis_connect(const char *socket_path, vb_redis **out, char *why, size_t whylen)
{
	(void)socket_path;
	(void)out;
	(void)gcra_lua;
	snprintf(why, whylen, "built without hiredis");
	return -ENOTSUP;
}

void vb_redis_close(vb_redis *r)
{
	(void)r;
}

int vb_redis_op(vb_redis *r)
{
	(void)r;
	return -ENOTSUP;
}

#endif

/* ---- memory ------------------------------------------------------------------------ */

int vb_memory_for(uint64_t keys, struct vb_memory *out)
{
	struct vrl_seg_geometry g;
	int rc = vrl_seg_geometry(keys, &g);

	if (rc)
		return rc;
	out->keys = keys;
	out->slot_bytes = sizeof(struct vrl_seg_slot);
	out->nslots = g.nslots;
	out->segment_bytes = g.size;
	out->bytes_per_key = (double)(out->slot_bytes * g.nslots) / (double)keys;
	return 0;
}
