/*
 * engine.h - the engine's inside, shared by engine.c (the thread, the
 * handoff, the status) and round.c (one round of calls). Internal to
 * daemon/global.
 */
#ifndef VRL_GLOBAL_ENGINE_H
#define VRL_GLOBAL_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>

#include "global.h"
#include "redis.h"

/* The engine's memory of one key, kept from round to round (sorted by id). */
struct vrl_grec {
	uint8_t id[VRL_GLOBAL_ID_LEN];
	unsigned ep;                    /* its endpoint */
	bool reported;                  /* used_rep/unmet_rep are a baseline */
	uint64_t used_rep, unmet_rep;   /* totals the last answered call reported */
	uint64_t used_sent, unmet_sent; /* totals this round's call carries */
	uint64_t held_rep, held_sent;   /* held, likewise */
	uint64_t sent_at;               /* local ns of the last answered report */
	uint64_t cd_applied;            /* local end of the last cooldown from Redis */
	enum vrl_global_outcome status;
	struct vrl_global_share share;  /* in force, as far as the engine said */
	uint64_t expires;               /* ... trusted until (local ns) */
	uint64_t lease_expires;         /* the last non-zero lease's local expiry */
	uint64_t renewals;
	uint64_t gen;                   /* of the last result that carried a new share */
	uint64_t target;                /* quota, slots: its spare target */
	uint64_t holders_pid;           /* the period the holders are of */
	char holders[VRL_GLOBAL_HOLDERS_MAX];
};

struct vrl_gbatch {
	struct vrl_global_entry *e;
	size_t n, cap;
};

/* The packed entries of one call (round.c). */
struct vrl_gblob {
	uint8_t *p;
	size_t len, cap;
};

struct vrl_gresults {
	struct vrl_global_result *r;
	size_t n, cap;
};

struct vrl_global {
	/* the configuration: set at start, read-only after */
	char host[VRL_GLOBAL_HOST_MAX + 1];
	char prefix[64];
	uint64_t lease, margin, timeout;
	uint32_t hosts;
	enum vrl_global_partition on_partition;
	size_t nep;
	struct vrl_rconn ep[VRL_GLOBAL_ENDPOINTS_MAX];  /* the thread's */

	pthread_t thread;
	/* the handoff: lock guards these (held only to swap pointers) */
	pthread_mutex_t lock;
	pthread_cond_t wake;            /* a batch, or the stop */
	bool stop;
	bool in_fresh;                  /* in_mail holds a batch not taken */
	bool out_fresh;                 /* out_mail holds results not collected */
	struct vrl_gbatch *in_mail;
	struct vrl_gresults *out_mail;
	const struct vrl_global_entry *rel;   /* entries to release at the stop */
	size_t nrel;
	/* the main loop's own */
	struct vrl_gbatch *in_fill;
	struct vrl_gresults *out_read;
	/* the thread's own */
	struct vrl_gbatch *in_work;
	struct vrl_gresults *out_done;
	struct vrl_grec *next;
	size_t capnext;
	size_t *order;
	size_t caporder;
	struct vrl_rargs args;
	struct vrl_gblob blob;
	/* stat_lock guards rec/nrec (the thread swaps in a round's) and st */
	pthread_mutex_t stat_lock;
	struct vrl_grec *rec;
	size_t nrec, caprec;
	struct vrl_global_status st;
	_Atomic uint64_t rounds;
	uint64_t gen_base;              /* result gens: the start time plus the round */
	struct vrl_gbatch slots[3];
	struct vrl_gresults rslots[3];
};

/* One round for @b's entries; results in @out (b's order). Thread only.
 * @release: vrl_release instead of vrl_renew (the stop). 0 or -ENOMEM. */
int vrl_global_round(struct vrl_global *g, const struct vrl_gbatch *b, struct vrl_gresults *out,
		     bool release);

uint64_t vrl_global_now(void);

#endif /* VRL_GLOBAL_ENGINE_H */
