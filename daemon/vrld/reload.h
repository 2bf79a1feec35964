/*
 * reload.h - the reloader: a thread of vrld's that reads and compiles
 * the config at each SIGHUP, off the main loop, and hands the result to
 * the main loop, which checks it against the running one and publishes it.
 *
 * Why a thread: reading a config can take long (a slow or hung file
 * system, a slow group lookup, a large YAML text libyaml is slow on). On
 * the main loop that stopped the heartbeat, the sweep and the alerts for
 * as long; here it only delays the reload.
 *
 * Protocol (one mutex, one condition variable; the main loop never waits
 * on the loader, only for the lock, which is never held across a load):
 *   - the main loop asks (vrld_reloader_request) at each SIGHUP;
 *   - the loader takes the request and loads; requests made meanwhile
 *     coalesce into one more load after this one (a config written while
 *     it was being read is read again), never one load per signal;
 *   - the result waits for the main loop (vrld_reloader_take, each tick);
 *     the loader starts no new load before the main loop has taken it, so
 *     results are taken in order and none is lost.
 */
#ifndef VRLD_RELOAD_H
#define VRLD_RELOAD_H

#include <pthread.h>
#include <stdbool.h>

#include "config.h"

/* Load the config into @out; 0, or -1 with the error in @err. Called on
 * the loader's thread: it must not touch what the main loop owns. */
typedef int vrld_load_fn(void *arg, struct vrl_daemon_config *out,
			 char err[VRL_CONFIG_ERR_MAX]);

struct vrld_reloader {
	vrld_load_fn *load;
	void *arg;
	pthread_t thread;
	bool running;
	/* lock guards every field below */
	pthread_mutex_t lock;
	pthread_cond_t wake;          /* a request, a result taken, or the stop */
	bool stop;
	bool want;                    /* a request not yet being loaded */
	bool loading;
	bool has_result;
	struct vrl_daemon_config *result;   /* NULL with has_result: out of memory */
	int result_rc;
	char result_err[VRL_CONFIG_ERR_MAX];
};

/* Start the loader thread; 0 or -errno. Main thread. */
int vrld_reloader_start(struct vrld_reloader *r, vrld_load_fn *load, void *arg);

/* A SIGHUP: load the config again (coalesced with any request not yet
 * being loaded). Main thread; never waits for a load. */
void vrld_reloader_request(struct vrld_reloader *r);

/*
 * A finished load, if any: returns true and hands over @out (the config,
 * to free; NULL when out of memory), @rc and @err (the load's outcome).
 * Main thread; never waits for a load.
 */
bool vrld_reloader_take(struct vrld_reloader *r, struct vrl_daemon_config **out, int *rc,
			char err[VRL_CONFIG_ERR_MAX]);

/* Whether a request is waiting, being loaded, or its result not taken. */
bool vrld_reloader_busy(struct vrld_reloader *r);

/* Stop the loader: waits for a load in progress to end, drops its result. */
void vrld_reloader_stop(struct vrld_reloader *r);

#endif /* VRLD_RELOAD_H */
