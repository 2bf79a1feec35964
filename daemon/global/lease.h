/*
 * lease.h - the engine's lease arithmetic, as pure functions of time
 * (lease.c proves what they keep). Internal to daemon/global.
 */
#ifndef VRL_GLOBAL_LEASE_H
#define VRL_GLOBAL_LEASE_H

#include <stdint.h>

#include "global.h"

#define VRL_LEASE_COOLDOWN_SLACK_NS UINT64_C(1000000)  /* a cooldown this near Redis's is Redis's */

/*
 * The local monotonic time until which a lease may be trusted: the call
 * that brought it was sent at local @t_send, and Redis said it expires
 * @rel_us after its (virtual) time of the call: t_send + rel - margin.
 * A lease with rel <= margin is expired on arrival (returns t_send).
 */
uint64_t vrl_lease_local_expiry(uint64_t t_send, uint64_t rel_us, uint64_t margin_ns);

/* Local time a cooldown @rel_us long, learned by a reply received at
 * @t_recv, ends (rounded late: a cooldown may only close longer). */
uint64_t vrl_lease_cooldown_until(uint64_t t_recv, uint64_t rel_us);

/*
 * The cooldown to publish for a key closed until @until whose last
 * cooldown from Redis ends at @applied: its remaining µs at @now (rounded
 * up), or 0 when it is Redis's own (or over).
 */
uint64_t vrl_lease_cooldown_publish(uint64_t until, uint64_t applied, uint64_t now);

/* When on_partition static may start for a lease trusted until @expires. */
uint64_t vrl_lease_static_from(uint64_t expires, uint64_t lease_ns, uint64_t margin_ns);

/*
 * The share a key with no valid lease enforces at @now: none under deny,
 * and under static none before @static_from, the static share after.
 */
struct vrl_global_share vrl_lease_fallback(const struct vrl_global_entry *e,
					   enum vrl_global_partition p, uint32_t hosts,
					   uint64_t now, uint64_t static_from);

#endif /* VRL_GLOBAL_LEASE_H */
