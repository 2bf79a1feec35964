/*
 * hosts.c - see hosts.h.
 *
 * The check of a rate limit over every interval, in one pass. Grants
 * sorted by time t_0 <= ... <= t_{n-1}; GCRA(C per P, burst B) allows in
 * [s, e] at most B + C (e - s) / P grants. The worst intervals start and
 * end at grants, so the limit holds iff for all i <= j
 *
 *     (j - i + 1) P  <=  B P + C (t_j - t_i)
 *     <=>  f(j) + (1 - B) P  <=  f(i),      f(k) = k P - C t_k,
 *
 * that is f(j) - min_{i <= j} f(i) <= (B - 1) P: a running minimum, in
 * 128-bit integers (k P and C t_k fit: k < 2^32, P < 2^64, C t < 2^64 x
 * 2^32). A window (at most N in any (t - W, t]) is two pointers; slots, a
 * sweep over +1 at each grant and -1 at each release, releases first at
 * one instant (a release is logged at the clock read before vrl_release,
 * so a unit is counted held no longer than it was).
 */
#include "hosts.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../fault/vrld_run.h"
#include "clock.h"
#include "global.h"
#include "vrl.h"

#define READY_NS     (UINT64_C(120) * VRL_NS_PER_S)   /* a hang, not a slow start */
#define IDLE_NS      (5 * GH_NS_PER_MS)               /* a worker's longest sleep */
#define RETRY_MIN_NS (200 * UINT64_C(1000))           /* a worker's shortest one */

__extension__ typedef __int128 i128;

static const char *const host_ids[GH_HOSTS] = { "a", "b", "c" };

void gh_pace(uint64_t ns)
{
	struct timespec ts = vrl_ns_ts(ns);

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = vrl_ns_ts(t);

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* ---- configs ------------------------------------------------------------------ */

static size_t limit_yaml(const struct gh_limit *l, char *out, size_t len)
{
	const char *g = "scope: global";
	int n = 0;

	switch (l->kind) {
	case GH_RATE:
		n = snprintf(out, len, "  - {name: %s, match: {api: %s}, rate: %llu/s, burst: %llu, "
			     "%s}\n", l->name, l->name, (unsigned long long)l->count,
			     (unsigned long long)l->burst, g);
		break;
	case GH_HOSTRATE:
		n = snprintf(out, len, "  - {name: %s, match: {api: %s}, rate: %llu/s, burst: %llu}\n",
			     l->name, l->name, (unsigned long long)l->count,
			     (unsigned long long)l->burst);
		break;
	case GH_WINDOW:
		n = snprintf(out, len, "  - {name: %s, match: {api: %s}, kind: window, limit: %llu, "
			     "window: %llums, keys: 16, %s}\n", l->name, l->name,
			     (unsigned long long)l->count,
			     (unsigned long long)(l->period_ns / GH_NS_PER_MS), g);
		break;
	case GH_QUOTA:
		n = snprintf(out, len, "  - {name: %s, match: {api: %s}, kind: quota, count: %llu, "
			     "calendar: once, %s}\n", l->name, l->name,
			     (unsigned long long)l->count, g);
		break;
	case GH_SLOTS:
		n = snprintf(out, len, "  - {name: %s, match: {api: %s}, kind: slots, count: %llu, "
			     "%s}\n", l->name, l->name, (unsigned long long)l->count, g);
		break;
	}
	if (l->pace && n >= 0 && (size_t)n < len)
		n += snprintf(out + n, len - (size_t)n,
			      "  - {name: %s.pace, match: {api: %s}, rate: %s, burst: 1}\n",
			      l->name, l->name, l->pace);
	return n < 0 ? 0 : (size_t)n;
}

void gh_config(const struct gh_run *r, unsigned h, char *out, size_t len)
{
	const struct gh_host *x = &r->host[h];
	size_t n;

	n = (size_t)snprintf(out, len,
			     "segment: {name: \"%s\", keys: 1000}\n"
			     "daemon: {metrics_textfile: \"%s\"}\n"
			     "global: {redis: [\"%s\"], host: %s, lease: %llums, hosts: %u}\n"
			     "limits:\n",
			     x->seg, x->prom, r->redis.spec, x->id,
			     (unsigned long long)(r->lease_ns / GH_NS_PER_MS), GH_HOSTS);
	for (unsigned i = 0; i < r->nlim && n < len; i++)
		n += limit_yaml(&r->lim[i], out + n, len - n);
}

/* ---- vrld and Redis --------------------------------------------------------------- */

static void show_log(const struct gh_host *x)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "sed 's/^/# vrld %s: /' '%s' >&2", x->id, x->log);
	if (system(cmd) != 0)
		fprintf(stderr, "# (no log of vrld %s)\n", x->id);
}

static int start_vrld(struct gh_run *r, unsigned h)
{
	struct gh_host *x = &r->host[h];
	unsigned before = 0;
	char needle[] = "Redis reachable";

	/* count the lines that say so already: a restart waits for a new one */
	FILE *f = fopen(x->log, "r");
	char line[1024];

	while (f && fgets(line, sizeof(line), f))
		before += strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	x->pid = vrld_start(x->conf, NULL, x->log);
	if (x->pid <= 0 || !vrld_wait_ready(x->seg, x->pid, READY_NS) ||
	    !vrld_wait_log(x->log, needle, before + 1, READY_NS)) {
		fprintf(stderr, "# vrld %s did not start (or never reached Redis):\n", x->id);
		show_log(x);
		return -1;
	}
	return 0;
}

int gh_start(struct gh_run *r, const struct gh_limit *lim, unsigned nlim, uint64_t lease_ns)
{
	char text[8192], tag[16];

	memset(r, 0, sizeof(*r));
	r->lim = lim;
	r->nlim = nlim;
	r->lease_ns = lease_ns;
	r->sh = mmap(NULL, sizeof(*r->sh), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r->sh == MAP_FAILED) {
		r->sh = NULL;
		return -1;
	}
	rfx_start(&r->redis);
	for (unsigned h = 0; h < GH_HOSTS; h++) {
		struct gh_host *x = &r->host[h];

		snprintf(x->id, sizeof(x->id), "%s", host_ids[h]);
		snprintf(tag, sizeof(tag), "ge-%s", x->id);
		if (vrld_fresh_paths(tag, x->dir, x->conf, x->log, x->prom, x->seg) != 0)
			return -1;
		gh_config(r, h, text, sizeof(text));
		vrld_write_file(x->conf, text);
	}
	for (unsigned h = 0; h < GH_HOSTS; h++)
		if (start_vrld(r, h) != 0)
			return -1;
	r->rc = rfx_connect(&r->redis);
	return 0;
}

void gh_kill_vrld(struct gh_run *r, unsigned h)
{
	struct gh_host *x = &r->host[h];

	if (x->pid <= 0)
		return;
	kill(x->pid, SIGKILL);
	vrld_wait_exit(x->pid, READY_NS);
	x->pid = 0;
}

int gh_restart_vrld(struct gh_run *r, unsigned h)
{
	return start_vrld(r, h);
}

void gh_redis_pause(struct gh_run *r)
{
	rfx_pause(&r->redis);
}

void gh_redis_resume(struct gh_run *r)
{
	rfx_resume(&r->redis);
}

void gh_redis_wipe(struct gh_run *r)
{
	if (r->rc)
		redisFree(r->rc);
	rfx_restart_empty(&r->redis);
	r->rc = rfx_connect(&r->redis);
}

void gh_stop(struct gh_run *r)
{
	char cmd[400];

	if (r->sh)
		gh_workers_stop(r);
	for (unsigned h = 0; h < GH_HOSTS; h++) {
		struct gh_host *x = &r->host[h];

		if (x->pid > 0) {
			kill(x->pid, SIGTERM);
			if (vrld_wait_exit(x->pid, READY_NS) < 0)
				gh_kill_vrld(r, h);
			x->pid = 0;
		}
	}
	vrld_kill_all();
	for (unsigned h = 0; h < GH_HOSTS; h++) {
		if (r->host[h].seg[0])
			vrl_seg_unlink(r->host[h].seg);
		if (r->host[h].dir[0] && !getenv("VRL_KEEP_LOGS")) {
			snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->host[h].dir);
			if (system(cmd) != 0)
				fprintf(stderr, "# could not remove %s\n", r->host[h].dir);
		}
	}
	if (r->rc)
		redisFree(r->rc);
	r->rc = NULL;
	if (r->redis.pid > 0 || r->redis.dir[0])
		rfx_stop(&r->redis);
	if (r->sh)
		munmap(r->sh, sizeof(*r->sh));
	r->sh = NULL;
}

/* ---- workers -------------------------------------------------------------------------- */

static void log_grant(struct gh_worker_log *w, unsigned l, unsigned h, uint64_t at)
{
	uint64_t n = atomic_load_explicit(&w->n, memory_order_relaxed);

	if (n >= GH_LOG_CAP)
		return;
	w->g[n] = (struct gh_grant){ .at = at, .limit = (uint16_t)l, .host = (uint16_t)h };
	/* W1: the record before the count (pairs with A1 in gh_grants) */
	atomic_store_explicit(&w->n, n + 1, memory_order_release);
}

static vrl_client *worker_open(const char *seg)
{
	vrl_client *c = NULL;

	for (int i = 0; i < 5000 && vrl_open(seg, 0, &c) != 0; i++)
		gh_pace(GH_NS_PER_MS);
	return c;
}

/* What one worker does with limit @l at @now; returns when to come back to it. */
struct wstate {
	uint64_t next;          /* the earliest time to ask again */
	uint64_t held_until;    /* slots: the unit held is released then; 0 none */
	uint64_t held_rec;      /* its grant record */
};

static uint64_t worker_step(struct gh_run *r, vrl_client *c, struct gh_worker_log *w,
			    unsigned h, unsigned l, struct wstate *s, bool asked, uint64_t now)
{
	const struct gh_limit *lim = &r->lim[l];
	struct vrl_request rq = { .api = lim->name };
	struct vrl_verdict v;
	int rc;

	if (s->held_until && now >= s->held_until) {
		w->g[s->held_rec].end = now;
		vrl_release(c, &rq, lim->name, 1);
		s->held_until = 0;
	}
	if (s->held_until)
		return s->held_until;
	if (!asked)
		return UINT64_MAX;
	if (now < s->next)
		return s->next;
	atomic_fetch_add_explicit(&w->attempts, 1, memory_order_relaxed);
	rc = vrl_acquire(c, &rq, &v);
	if (rc == 0) {
		uint64_t n = atomic_load_explicit(&w->n, memory_order_relaxed);

		log_grant(w, l, h, v.at_ns);
		if (lim->kind == GH_SLOTS && n < GH_LOG_CAP) {
			s->held_rec = n;
			s->held_until = now + lim->hold_ns;
			return s->held_until;
		}
		return now;
	}
	if (rc == VRL_EDENIED) {
		uint64_t ra = v.retry_after_ns;

		atomic_fetch_add_explicit(&w->denied, 1, memory_order_relaxed);
		ra = ra < RETRY_MIN_NS ? RETRY_MIN_NS : ra > IDLE_NS ? IDLE_NS : ra;
		s->next = now + ra;
		return s->next;
	}
	atomic_fetch_add_explicit(&w->errors, 1, memory_order_relaxed);
	atomic_store_explicit(&w->last_error, rc, memory_order_relaxed);
	s->next = now + IDLE_NS;
	return s->next;
}

static void worker(struct gh_run *r, unsigned h, unsigned wi)
{
	struct gh_worker_log *w = &r->sh->w[h * GH_WORKERS_MAX + wi];
	struct wstate st[GH_LIMITS_MAX] = { 0 };
	vrl_client *c = worker_open(r->host[h].seg);

	if (!c)
		_exit(3);
	while (!atomic_load_explicit(&r->sh->stop, memory_order_relaxed)) {
		uint32_t dm = atomic_load_explicit(&r->sh->demand[h], memory_order_relaxed);
		uint64_t now = vrl_now_ns(), wake = now + IDLE_NS;

		for (unsigned l = 0; l < r->nlim; l++) {
			uint64_t t = worker_step(r, c, w, h, l, &st[l], dm >> l & 1u, now);

			wake = t < wake ? t : wake;
		}
		if (wake > now)
			sleep_until(wake);
	}
	for (unsigned l = 0; l < r->nlim; l++)
		if (st[l].held_until) {
			struct vrl_request rq = { .api = r->lim[l].name };

			w->g[st[l].held_rec].end = vrl_now_ns();
			vrl_release(c, &rq, r->lim[l].name, 1);
		}
	vrl_close(c);
	_exit(0);
}

void gh_workers(struct gh_run *r, unsigned workers)
{
	pid_t parent = getpid();

	r->workers = workers > GH_WORKERS_MAX ? GH_WORKERS_MAX : workers;
	for (unsigned h = 0; h < GH_HOSTS; h++)
		for (unsigned i = 0; i < r->workers; i++) {
			pid_t pid = fork();

			if (pid == 0) {
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				if (getppid() != parent)
					_exit(1);
				worker(r, h, i);
			}
			r->wpid[h * GH_WORKERS_MAX + i] = pid;
		}
}

void gh_demand(struct gh_run *r, unsigned h, uint32_t mask)
{
	atomic_store_explicit(&r->sh->demand[h], mask, memory_order_relaxed);
}

void gh_workers_stop(struct gh_run *r)
{
	atomic_store_explicit(&r->sh->stop, 1, memory_order_relaxed);
	for (unsigned i = 0; i < GH_HOSTS * GH_WORKERS_MAX; i++)
		if (r->wpid[i] > 0) {
			waitpid(r->wpid[i], NULL, 0);
			r->wpid[i] = 0;
		}
}

uint64_t gh_grants(const struct gh_run *r, uint32_t l, uint32_t h, uint64_t *latest)
{
	uint64_t count = 0, last = 0;

	for (unsigned i = 0; i < GH_HOSTS * GH_WORKERS_MAX; i++) {
		const struct gh_worker_log *w = &r->sh->w[i];
		/* A1: pairs with W1, the records up to n are written */
		uint64_t n = atomic_load_explicit(&w->n, memory_order_acquire);

		for (uint64_t k = 0; k < n; k++) {
			const struct gh_grant *g = &w->g[k];

			if ((l != UINT32_MAX && g->limit != l) || (h != UINT32_MAX && g->host != h))
				continue;
			count++;
			last = g->at > last ? g->at : last;
		}
	}
	if (latest)
		*latest = last;
	return count;
}

/* ---- Redis's view ---------------------------------------------------------------------- */

static bool is_key_of(const struct gh_limit *l, const struct sim_state *s)
{
	switch (l->kind) {
	case GH_RATE:
		return s->kind[0] == 'r' && s->bst == l->burst &&
		       s->cap == vrl_global_rate_units(l->count, l->period_ns);
	case GH_WINDOW:
		return s->kind[0] == 'w' && s->cap == l->count;
	case GH_QUOTA:
		return s->kind[0] == 'q' && s->cap == l->count;
	case GH_SLOTS:
		return s->kind[0] == 's' && s->cap == l->count;
	case GH_HOSTRATE:
		return false;
	}
	return false;
}

int gh_share(struct gh_run *r, unsigned l, struct gh_share *out)
{
	const char *pattern = RFX_KEY_PREFIX "*";
	char cursor[32] = "0";

	memset(out, 0, sizeof(*out));
	do {
		redisReply *rep = redisCommand(r->rc, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);

		if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
			if (rep)
				freeReplyObject(rep);
			return -1;
		}
		snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
		for (size_t i = 0; i < rep->element[1]->elements; i++) {
			const char *key = rep->element[1]->element[i]->str + strlen(RFX_KEY_PREFIX);
			struct sim_state s;

			if (sim_state(r->rc, key, &s) != 0 || !is_key_of(&r->lim[l], &s))
				continue;
			out->found = true;
			out->vnow = s.vnow;
			out->fence_left = s.fence_left;
			out->used = s.used;
			for (unsigned k = 0; k < s.nhosts; k++)
				for (unsigned h = 0; h < GH_HOSTS; h++)
					if (strcmp(s.h[k].host, host_ids[h]) == 0) {
						out->a[h] = s.h[k].a;
						out->b[h] = s.h[k].b;
					}
		}
		freeReplyObject(rep);
	} while (strcmp(cursor, "0") != 0);
	if (!out->found) {
		/* no key yet: still Redis's time */
		struct sim_state s;

		if (sim_state(r->rc, "none", &s) == 0) {
			out->vnow = s.vnow;
			out->fence_left = s.fence_left;
		}
	}
	return 0;
}

/* ---- the checks --------------------------------------------------------------------------- */

static int by_at(const void *x, const void *y)
{
	const struct gh_grant *a = x, *b = y;

	return a->at < b->at ? -1 : a->at > b->at;
}

struct gh_grant *gh_merged(const struct gh_run *r, uint32_t l, size_t *n)
{
	size_t cap = (size_t)gh_grants(r, l, UINT32_MAX, NULL) + 1, k = 0;
	struct gh_grant *g = malloc(cap * sizeof(*g));

	if (!g)
		abort();
	for (unsigned i = 0; i < GH_HOSTS * GH_WORKERS_MAX; i++) {
		const struct gh_worker_log *w = &r->sh->w[i];
		uint64_t m = atomic_load_explicit(&w->n, memory_order_acquire);   /* A1 */

		for (uint64_t j = 0; j < m && k < cap; j++)
			if (l == UINT32_MAX || w->g[j].limit == l)
				g[k++] = w->g[j];
	}
	qsort(g, k, sizeof(*g), by_at);
	*n = k;
	return g;
}

static void check_rate(const struct gh_limit *l, const struct gh_grant *g, size_t n,
		       struct gh_check *c)
{
	const i128 P = (i128)l->period_ns, C = (i128)l->count, allow = ((i128)l->burst - 1) * P;
	i128 fmin = 0, best = 0;
	size_t imin = 0;

	for (size_t j = 0; j < n; j++) {
		i128 f = (i128)j * P - C * (i128)g[j].at, excess;

		if (j == 0 || f < fmin) {
			fmin = f;
			imin = j;
		}
		/* how far [t_imin, t_j] is over its bound, in 1/P permits (<= 0: within) */
		excess = f - fmin - allow;
		if (j == 0 || excess > best) {
			best = excess;
			c->worst = j - imin + 1;
			c->from = g[imin].at;
			c->to = g[j].at;
			c->bound = (uint64_t)(((i128)l->burst * P + C * (i128)(c->to - c->from)) / P);
		}
	}
	c->over = n > 0 && best > 0;
}

static void check_window(const struct gh_limit *l, const struct gh_grant *g, size_t n,
			 struct gh_check *c)
{
	size_t i = 0;

	for (size_t j = 0; j < n; j++) {
		/* grants in (t_j - W, t_j] */
		while (g[i].at + l->period_ns <= g[j].at)
			i++;
		if (j - i + 1 > c->worst) {
			c->worst = j - i + 1;
			c->from = g[i].at;
			c->to = g[j].at;
		}
	}
	c->bound = l->count;
	c->over = c->worst > l->count;
}

struct ev { uint64_t t; int d; };

static int by_ev(const void *x, const void *y)
{
	const struct ev *a = x, *b = y;

	if (a->t != b->t)
		return a->t < b->t ? -1 : 1;
	return a->d - b->d;     /* releases (-1) before grants at one instant */
}

static void check_slots(const struct gh_limit *l, const struct gh_grant *g, size_t n,
			struct gh_check *c)
{
	struct ev *e = malloc((2 * n + 1) * sizeof(*e));
	size_t m = 0;
	int64_t held = 0;

	if (!e)
		abort();
	for (size_t i = 0; i < n; i++) {
		e[m++] = (struct ev){ g[i].at, +1 };
		if (g[i].end)
			e[m++] = (struct ev){ g[i].end, -1 };
	}
	qsort(e, m, sizeof(*e), by_ev);
	for (size_t i = 0; i < m; i++) {
		held += e[i].d;
		if (held > (int64_t)c->worst) {
			c->worst = (uint64_t)held;
			c->from = c->to = e[i].t;
		}
	}
	free(e);
	c->bound = l->count;
	c->over = c->worst > l->count;
}

struct gh_check gh_check(const struct gh_run *r, unsigned l)
{
	const struct gh_limit *lim = &r->lim[l];
	struct gh_check c = { 0 };
	size_t n;
	struct gh_grant *g = gh_merged(r, l, &n);

	c.grants = n;
	switch (lim->kind) {
	case GH_RATE:
	case GH_HOSTRATE:
		check_rate(lim, g, n, &c);
		break;
	case GH_WINDOW:
		check_window(lim, g, n, &c);
		break;
	case GH_QUOTA:
		c.worst = n;
		c.bound = lim->count;
		c.over = n > lim->count;
		c.from = n ? g[0].at : 0;
		c.to = n ? g[n - 1].at : 0;
		break;
	case GH_SLOTS:
		check_slots(lim, g, n, &c);
		break;
	}
	/* GH_SHOW=1: the grants around an interval over the limit, by host */
	if (c.over && getenv("GH_SHOW"))
		for (size_t i = 0; i < n; i++)
			if (g[i].at + 50000000 >= c.from && g[i].at <= c.to + 50000000)
				printf("#   %llu host %u%s\n", (unsigned long long)g[i].at, g[i].host,
				       g[i].at >= c.from && g[i].at <= c.to ? " *" : "");
	free(g);
	printf("# %s: %llu grants; worst interval [%llu, %llu] ns (%.3f ms): %llu granted, "
	       "%llu allowed%s\n", lim->name, (unsigned long long)c.grants,
	       (unsigned long long)c.from, (unsigned long long)c.to,
	       (double)(c.to - c.from) / 1e6, (unsigned long long)c.worst,
	       (unsigned long long)c.bound, c.over ? ": OVER THE LIMIT" : "");
	return c;
}
