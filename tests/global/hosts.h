/*
 * hosts.h - three hosts on one machine: three vrld (ids a, b, c, each its
 * own config, directory and segment) and one redis-server on a Unix
 * socket, holding the same global limits; a pool of worker processes per
 * host that asks for them while told to, and logs every grant with its
 * decision time (the verdict's at_ns, CLOCK_MONOTONIC).
 *
 * The hosts share this machine's monotonic clock, so their logs merge
 * exactly: a limit is checked on the merged log over EVERY interval, not
 * a sample of them (gh_check). The faults are real ones: vrld SIGKILLed
 * and restarted on its segment, Redis stopped (SIGSTOP) and restarted
 * with its data wiped.
 *
 * Used by test_global_hosts (assertions) and global_demo (figures).
 */
#ifndef VRL_TEST_GLOBAL_HOSTS_H
#define VRL_TEST_GLOBAL_HOSTS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "redis_fixture.h"
#include "upkeep.h"

#define GH_HOSTS        3u
#define GH_LIMITS_MAX   8u
#define GH_WORKERS_MAX  4u              /* per host */
#define GH_LOG_CAP      (1u << 16)      /* grants one worker logs */
#define GH_NS_PER_MS    UINT64_C(1000000)

enum gh_kind { GH_RATE, GH_WINDOW, GH_QUOTA, GH_SLOTS, GH_HOSTRATE };

/* A limit of the run. Its requests carry api = its name (one key each). */
struct gh_limit {
	const char *name;
	enum gh_kind kind;
	uint64_t count;         /* rate: permits per period; window: N; quota, slots: N */
	uint64_t period_ns;     /* rate: the period; window: W */
	uint64_t burst;         /* rate */
	uint64_t hold_ns;       /* slots: how long a worker holds a unit */
	const char *pace;       /* quota, slots: a host rate of the same requests
				 * ("100/s"), so that the count lasts; NULL none */
};

/* One grant as a worker logs it. */
struct gh_grant {
	uint64_t at;            /* the verdict's at_ns: the time the grant counts at */
	uint64_t end;           /* slots: the clock read before the release (0: held
				 * at the end of the run) */
	uint16_t limit, host;
};

struct gh_worker_log {
	_Atomic uint64_t n;     /* grants logged: g[0 .. n) (release: the record first) */
	_Atomic uint64_t denied, errors, attempts;
	_Atomic int last_error;
	struct gh_grant g[GH_LOG_CAP];
};

/* Memory the parent and the workers share. */
struct gh_shared {
	_Atomic uint32_t demand[GH_HOSTS];  /* bit i: the host's workers ask for limit i */
	_Atomic uint32_t stop;
	struct gh_worker_log w[GH_HOSTS * GH_WORKERS_MAX];
};

struct gh_host {
	char id[8];                         /* "a", "b", "c" */
	char dir[256], conf[300], log[300], prom[300], seg[VRL_SHM_NAME_MAX];
	pid_t pid;                          /* its vrld; 0: none running */
};

struct gh_run {
	struct rfx redis;
	struct gh_host host[GH_HOSTS];
	uint64_t lease_ns;
	const struct gh_limit *lim;
	unsigned nlim;
	unsigned workers;                   /* per host */
	struct gh_shared *sh;
	pid_t wpid[GH_HOSTS * GH_WORKERS_MAX];
	redisContext *rc;                   /* the run's own look at Redis */
};

/* The YAML of a run's config for host @h (written by gh_start). */
void gh_config(const struct gh_run *r, unsigned h, char *out, size_t len);

/*
 * Start Redis and three vrld with @nlim limits @lim (kept by reference),
 * lease @lease_ns, and wait until each vrld says Redis is reachable.
 * Returns 0, or -1 when a vrld did not start: its log is shown (a config
 * it refused says why there).
 */
int gh_start(struct gh_run *r, const struct gh_limit *lim, unsigned nlim, uint64_t lease_ns);

/* Fork @workers per host (no demand until gh_demand). */
void gh_workers(struct gh_run *r, unsigned workers);

/* Host @h's workers ask for the limits of bit mask @mask from now on. */
void gh_demand(struct gh_run *r, unsigned h, uint32_t mask);

/* Stop the workers and wait for them. */
void gh_workers_stop(struct gh_run *r);

/* Stop everything, remove every file and segment (VRL_KEEP_LOGS keeps the
 * directories). */
void gh_stop(struct gh_run *r);

/* SIGKILL host @h's vrld; its segment stays, its workers go on. */
void gh_kill_vrld(struct gh_run *r, unsigned h);
/* Start host @h's vrld again on its segment and config; -1 if it did not. */
int gh_restart_vrld(struct gh_run *r, unsigned h);

/* Redis: SIGSTOP, SIGCONT, or killed and started empty on the same socket. */
void gh_redis_pause(struct gh_run *r);
void gh_redis_resume(struct gh_run *r);
void gh_redis_wipe(struct gh_run *r);

/* Grants logged so far of limit @l (UINT32_MAX: all) by host @h (UINT32_MAX:
 * all), and the time of the latest. */
uint64_t gh_grants(const struct gh_run *r, uint32_t l, uint32_t h, uint64_t *latest);

/* Sleep @ns: the length of a phase of load or of a fault, never a wait
 * for an event. */
void gh_pace(uint64_t ns);

/* ---- Redis's view: the share each host holds -------------------------------- */

struct gh_share {
	uint64_t vnow;          /* Redis's virtual time (us) of its latest call */
	uint64_t fence_left;    /* us */
	bool found;             /* the key exists in Redis */
	uint64_t a[GH_HOSTS];   /* per host: rate share (permits/s x 1e6), window
				 * count, or quota/slots allocation; 0: none */
	uint64_t b[GH_HOSTS];   /* rate: burst share */
	uint64_t used;          /* quota, slots: units counted */
};

/* Host shares of limit @l as Redis counts them: the max of each host's
 * unexpired promises (its ledger, vrl_state). -1 when Redis did not
 * answer. */
int gh_share(struct gh_run *r, unsigned l, struct gh_share *s);

/* ---- the checks over the merged log ------------------------------------------ */

struct gh_check {
	uint64_t grants;        /* of the limit, every host */
	uint64_t worst;         /* rate, window: most grants in one interval (the one
				 * that came closest to its bound, or broke it);
				 * quota: grants; slots: most held at once */
	uint64_t bound;         /* what that interval was allowed (rounded down) */
	uint64_t from, to;      /* the interval (monotonic ns) */
	bool over;              /* the limit was broken somewhere */
};

/*
 * Check limit @l over the merged, sorted grants of every host, every
 * interval: rate GCRA(r, B): grants in any [s, e] <= B + r (e - s), exact
 * integers; window: grants in any (t - W, t] <= N; quota: all grants <=
 * N; slots: units held at any instant <= N. Returns the result; prints the
 * worst interval.
 */
struct gh_check gh_check(const struct gh_run *r, unsigned l);

/* The merged grants of limit @l (malloc'd, sorted by at); their count in @n. */
struct gh_grant *gh_merged(const struct gh_run *r, uint32_t l, size_t *n);

#endif
