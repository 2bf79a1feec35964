/*
 * engine.c - the multi-host engine's thread, its handoff with the main
 * loop, and its status.
 *
 * The handoff: one mutex, one condition variable, and pointer swaps among
 * three buffers each way (triple buffering):
 *
 *   main loop:  fills in_fill  --swap-->  in_mail  --swap-->  in_work  :thread
 *   main loop:  reads out_read <--swap--  out_mail <--swap--  out_done :thread
 *
 * Each buffer is owned by one side at a time; only the two mailboxes are
 * shared, and the lock is held just long enough to swap a pointer and
 * flip a flag, never across a copy, an allocation or any I/O. So the
 * tick never waits on Redis, only (at worst) for a few instructions of
 * the other side. Why not a lock-free single-producer ring: the thread
 * must sleep until a batch arrives, and a condition variable is how a
 * thread sleeps on an event (a ring would need a futex or eventfd beside
 * it); and a batch is a whole tick's view, so "the latest wins" is the
 * semantics wanted, not a queue of stale ticks. Nothing is lost by
 * replacing: the used/unmet figures are cumulative totals (the engine
 * keeps the last reported ones), a share is superseded by a newer one,
 * and quota allocations are reported absolutely.
 *
 * Status: the thread publishes its per-key records and the endpoint
 * figures under stat_lock at the end of each round; readers (any thread)
 * copy under it.
 */
#include "engine.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"


uint64_t vrl_global_now(void)
{
	return vrl_mono_ns();
}

/* The kernel's boot time (s since 1970): the first half of a call's sequence. */
static uint64_t boot_time(void)
{
	FILE *f = fopen("/proc/stat", "re");
	char line[256];
	unsigned long long bt = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %llu", &bt) == 1)
			break;
	fclose(f);
	return bt;
}

bool vrl_global_host_ok(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n > VRL_GLOBAL_HOST_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* The hostname, as a host id: other characters become '-'. */
static void default_host(char *out, size_t len)
{
	char name[256] = "";

	if (gethostname(name, sizeof(name) - 1) != 0 || !name[0])
		strcpy(name, "localhost");
	snprintf(out, len, "%.*s", VRL_GLOBAL_HOST_MAX, name);
	for (char *p = out; *p; p++)
		if (!vrl_global_host_ok((char[]){ *p, 0 }))
			*p = '-';
}

static int config(struct vrl_global *g, const struct vrl_global_config *c, char *err, size_t len)
{
	uint64_t boot = boot_time();

	if (c->nredis == 0 || c->nredis > VRL_GLOBAL_ENDPOINTS_MAX) {
		snprintf(err, len, "global.redis: give 1 to %u endpoints", VRL_GLOBAL_ENDPOINTS_MAX);
		return -EINVAL;
	}
	if (c->host && !vrl_global_host_ok(c->host)) {
		snprintf(err, len, "global.host: \"%s\": use 1 to %u of A-Z a-z 0-9 . _ -", c->host,
			 VRL_GLOBAL_HOST_MAX);
		return -EINVAL;
	}
	if (c->host)
		strcpy(g->host, c->host);
	else
		default_host(g->host, sizeof(g->host));
	if (c->prefix && (strlen(c->prefix) >= sizeof(g->prefix) || strchr(c->prefix, ' '))) {
		snprintf(err, len, "global prefix: at most %zu bytes, no spaces", sizeof(g->prefix) - 1);
		return -EINVAL;
	}
	strcpy(g->prefix, c->prefix ? c->prefix : "vrl:");
	g->lease = c->lease_ns ? c->lease_ns : VRL_GLOBAL_LEASE_DEFAULT_NS;
	g->margin = c->margin_ns ? c->margin_ns : g->lease / 20;
	g->timeout = c->timeout_ns ? c->timeout_ns : g->lease / 4;
	if (g->margin + g->timeout >= g->lease) {
		snprintf(err, len, "global.lease: the term must exceed the clock margin plus the "
			 "command timeout");
		return -EINVAL;
	}
	g->hosts = c->hosts ? c->hosts : 1;
	g->on_partition = c->on_partition;
	g->nep = c->nredis;
	for (size_t i = 0; i < c->nredis; i++) {
		if (vrl_rconn_parse(&g->ep[i], c->redis[i], err, len) != 0)
			return -EINVAL;
		for (size_t j = 0; j < i; j++)
			if (strcmp(g->ep[j].name, g->ep[i].name) == 0) {
				snprintf(err, len, "global.redis: \"%s\" is named twice", g->ep[i].name);
				return -EINVAL;
			}
		g->ep[i].boot = boot;
	}
	return 0;
}

static void *run(void *arg)
{
	struct vrl_global *g = arg;
	struct vrl_gbatch rel = { 0 };
	sigset_t pipe;

	/* a write to a Redis that closed its end raises SIGPIPE on the writing
	 * thread: blocked here, the write fails with EPIPE instead of killing
	 * vrld (the signal stays pending on this thread, harmlessly) */
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);

	pthread_mutex_lock(&g->lock);
	for (;;) {
		struct vrl_gbatch *b;
		struct vrl_gresults *r;

		while (!g->stop && !g->in_fresh)
			pthread_cond_wait(&g->wake, &g->lock);
		if (g->stop)
			break;
		b = g->in_mail;
		g->in_mail = g->in_work;
		g->in_work = b;
		g->in_fresh = false;
		pthread_mutex_unlock(&g->lock);

		if (vrl_global_round(g, g->in_work, g->out_done, false) == 0) {
			pthread_mutex_lock(&g->lock);
			r = g->out_mail;
			g->out_mail = g->out_done;
			g->out_done = r;
			g->out_fresh = true;
		} else {
			pthread_mutex_lock(&g->lock);
		}
		/* relaxed: a counter for pollers; the results go through the lock */
		atomic_fetch_add_explicit(&g->rounds, 1, memory_order_relaxed);
	}
	rel.e = (struct vrl_global_entry *)g->rel;
	rel.n = g->nrel;
	pthread_mutex_unlock(&g->lock);
	if (rel.n)
		vrl_global_round(g, &rel, g->out_done, true);
	for (size_t i = 0; i < g->nep; i++)
		vrl_rconn_close(&g->ep[i]);
	return NULL;
}

int vrl_global_start(const struct vrl_global_config *cfg, struct vrl_global **out, char *err,
		     size_t errlen)
{
	struct vrl_global *g = calloc(1, sizeof(*g));
	int rc;

	*out = NULL;
	if (!g) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = config(g, cfg, err, errlen);
	if (rc) {
		free(g);
		return rc;
	}
	g->in_fill = &g->slots[0];
	g->in_mail = &g->slots[1];
	g->in_work = &g->slots[2];
	g->out_read = &g->rslots[0];
	g->out_mail = &g->rslots[1];
	g->out_done = &g->rslots[2];
	g->gen_base = vrl_global_now();     /* gens of an earlier engine are smaller */
	g->st.nendpoints = g->nep;
	for (size_t i = 0; i < g->nep; i++)
		snprintf(g->st.ep[i].name, sizeof(g->st.ep[i].name), "%s", g->ep[i].name);
	pthread_mutex_init(&g->lock, NULL);
	pthread_mutex_init(&g->stat_lock, NULL);
	pthread_cond_init(&g->wake, NULL);
	rc = pthread_create(&g->thread, NULL, run, g);
	if (rc) {
		snprintf(err, errlen, "cannot start the engine's thread: %s", strerror(rc));
		pthread_cond_destroy(&g->wake);
		pthread_mutex_destroy(&g->lock);
		pthread_mutex_destroy(&g->stat_lock);
		free(g);
		return -rc;
	}
	*out = g;
	return 0;
}

int vrl_global_submit(struct vrl_global *g, const struct vrl_global_entry *e, size_t n)
{
	struct vrl_gbatch *b = g->in_fill;

	if (n > b->cap) {
		struct vrl_global_entry *p = realloc(b->e, n * sizeof(*p));

		if (!p)
			return -ENOMEM;
		b->e = p;
		b->cap = n;
	}
	if (n)
		memcpy(b->e, e, n * sizeof(*e));
	b->n = n;
	pthread_mutex_lock(&g->lock);
	g->in_fill = g->in_mail;
	g->in_mail = b;
	g->in_fresh = true;
	pthread_cond_signal(&g->wake);
	pthread_mutex_unlock(&g->lock);
	return 0;
}

size_t vrl_global_collect(struct vrl_global *g, const struct vrl_global_result **out)
{
	bool fresh;

	pthread_mutex_lock(&g->lock);
	fresh = g->out_fresh;
	if (fresh) {
		struct vrl_gresults *r = g->out_read;

		g->out_read = g->out_mail;
		g->out_mail = r;
		g->out_fresh = false;
	}
	pthread_mutex_unlock(&g->lock);
	*out = fresh ? g->out_read->r : NULL;
	return fresh ? g->out_read->n : 0;
}

uint64_t vrl_global_rounds(struct vrl_global *g)
{
	/* relaxed: a progress counter; what a round produced is read under a lock */
	return atomic_load_explicit(&g->rounds, memory_order_relaxed);
}

void vrl_global_status(struct vrl_global *g, struct vrl_global_status *st)
{
	pthread_mutex_lock(&g->stat_lock);
	*st = g->st;
	pthread_mutex_unlock(&g->stat_lock);
}

static int cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, VRL_GLOBAL_ID_LEN);
}

int vrl_global_key(struct vrl_global *g, const uint8_t id[VRL_GLOBAL_ID_LEN],
		   struct vrl_global_key_status *ks)
{
	const struct vrl_grec *r;
	int rc = -ENOENT;

	pthread_mutex_lock(&g->stat_lock);
	r = g->nrec ? bsearch(id, g->rec, g->nrec, sizeof(*r), cmp_id) : NULL;
	if (r) {
		ks->status = r->status;
		ks->share = r->share;
		ks->expires = r->expires;
		ks->renewals = r->renewals;
		ks->endpoint = r->ep;
		memcpy(ks->holders, r->holders, sizeof(ks->holders));
		rc = 0;
	}
	pthread_mutex_unlock(&g->stat_lock);
	return rc;
}

void vrl_global_stop(struct vrl_global *g, const struct vrl_global_entry *e, size_t n)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->stop = true;
	g->rel = e;
	g->nrel = n;
	pthread_cond_signal(&g->wake);
	pthread_mutex_unlock(&g->lock);
	pthread_join(g->thread, NULL);
	for (int i = 0; i < 3; i++) {
		free(g->slots[i].e);
		free(g->rslots[i].r);
	}
	free(g->rec);
	free(g->next);
	free(g->order);
	vrl_rargs_free(&g->args);
	free(g->blob.p);
	pthread_cond_destroy(&g->wake);
	pthread_mutex_destroy(&g->lock);
	pthread_mutex_destroy(&g->stat_lock);
	free(g);
}
