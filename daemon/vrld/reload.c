/*
 * reload.c - the reloader thread (see reload.h).
 *
 * All shared state is under r->lock, which neither side holds across a
 * load or an apply: the loader drops it to load, the main loop takes a
 * result and drops it before checking and publishing. The config handed
 * over is a heap object passed from one thread to the other under the
 * lock (the unlock publishes it, the lock of the taker acquires it).
 */
#include "reload.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *loader(void *arg)
{
	struct vrld_reloader *r = arg;
	sigset_t all;

	/* vrld's signals are for its other threads: none interrupts a load */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		struct vrl_daemon_config *next;
		char err[VRL_CONFIG_ERR_MAX] = "";
		int rc = -1;

		/* one result at a time: the next load waits until it is taken */
		if (!r->want || r->has_result) {
			pthread_cond_wait(&r->wake, &r->lock);
			continue;
		}
		r->want = false;
		r->loading = true;
		pthread_mutex_unlock(&r->lock);
		next = calloc(1, sizeof(*next));
		if (next)
			rc = r->load(r->arg, next, err);
		else
			snprintf(err, sizeof(err), "out of memory");
		pthread_mutex_lock(&r->lock);
		r->loading = false;
		r->has_result = true;
		r->result = next;
		r->result_rc = rc;
		memcpy(r->result_err, err, sizeof(err));
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int vrld_reloader_start(struct vrld_reloader *r, vrld_load_fn *load, void *arg)
{
	int rc;

	memset(r, 0, sizeof(*r));
	r->load = load;
	r->arg = arg;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->wake, NULL);
	rc = pthread_create(&r->thread, NULL, loader, r);
	if (rc) {
		pthread_cond_destroy(&r->wake);
		pthread_mutex_destroy(&r->lock);
		return -rc;
	}
	r->running = true;
	return 0;
}

void vrld_reloader_request(struct vrld_reloader *r)
{
	pthread_mutex_lock(&r->lock);
	r->want = true;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
}

bool vrld_reloader_take(struct vrld_reloader *r, struct vrl_daemon_config **out, int *rc,
			char err[VRL_CONFIG_ERR_MAX])
{
	bool got;

	pthread_mutex_lock(&r->lock);
	got = r->has_result;
	if (got) {
		*out = r->result;
		*rc = r->result_rc;
		memcpy(err, r->result_err, VRL_CONFIG_ERR_MAX);
		r->result = NULL;
		r->has_result = false;
		/* a request that came meanwhile may be loaded now */
		pthread_cond_signal(&r->wake);
	}
	pthread_mutex_unlock(&r->lock);
	return got;
}

bool vrld_reloader_busy(struct vrld_reloader *r)
{
	bool busy;

	pthread_mutex_lock(&r->lock);
	busy = r->want || r->loading || r->has_result;
	pthread_mutex_unlock(&r->lock);
	return busy;
}

void vrld_reloader_stop(struct vrld_reloader *r)
{
	if (!r->running)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	r->running = false;
	free(r->result);
	r->result = NULL;
	pthread_cond_destroy(&r->wake);
	pthread_mutex_destroy(&r->lock);
}
