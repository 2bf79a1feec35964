/*
 * lease.c - leases of global limits: why the pool of hosts keeps a limit,
 * and the arithmetic the engine does on leases.
 *
 * ---- Setting ---------------------------------------------------------------
 *
 * Hosts 1..n each run vrld; Redis runs vrl.lua. For one global key of limit
 * L (a rate has two, the rate r and the burst B, each argued alike), Redis
 * makes promises: its call at virtual time v promises host h a share s
 * until v + d (d the lease term). Host h enforces, at each instant, the
 * share of the last lease it applied while that lease is locally valid,
 * else the on_partition share. Write C_h(v) for the max share of the
 * promises to h made at or before v and not expired at v (vrl.lua keeps
 * exactly these, (a, b, e) records per host; a window's promise counts
 * until e + W).
 *
 * ---- G1: at every instant the shares hosts enforce sum to at most L ------
 *
 * (1) The ledger. At every v, sum_h C_h(v) <= L. C_h falls as v grows and
 *     rises only at a call that promises h something (vrl.lua keeps the
 *     promises, or past 16 for a host an upper bound of them: neighbours
 *     merged into the larger share until the later expiry; a promise
 *     goes early only for one at least as large that ends no sooner, so
 *     C_h is unchanged by it; L is the smaller of the figures stored and
 *     reported). vrl.lua grants s to h only when sum_{g != h} C_g(v) + s
 *     <= L, and by induction C_h(v) <= L - sum_{g != h} C_g(v) already;
 *     so after the call sum_{g != h} C_g + max(C_h, s) <= L. A shrink (s < C_h) thus frees nothing until the
 *     larger promise expires: the host may still use it until then. Only
 *     vrl_release drops promises early, and a host calls it only after it
 *     clamped its key to none (step 3).
 *
 * (2) Virtual time gains on no clock. Each call moves v by TIME's progress
 *     since the previous call (of any host), clamped to [0, min(ub, d)]:
 *     ub is the calling host's upper bound of the real time since its own
 *     previous call executed (its send time now, less that call's send
 *     time, plus the command timeout); a host with no answer in this epoch
 *     moves v by 0, and v never moves back. Between any two calls, then,
 *     v advances by at most Redis's clock's progress, less what the clamps
 *     cut: while that clock runs true (its rate within parts per million,
 *     which the margin covers, and no step), v - v' <= x - x' for calls
 *     at real times x' <= x. Each step is taken from the previous call,
 *     not from the caller's own history, so a stretch that held v back
 *     (a new host, a clock stepped back) is never made up later: a
 *     promise made while v lagged lasts longer, never shorter.
 *
 * (3) The host trusts a lease less than Redis counts it. A reply to a call
 *     sent at local t_s says the promise expires rel = e - v after the
 *     call's virtual time. The host trusts it until t_s + rel - m (m the
 *     clock margin: vrl_lease_local_expiry). The call executed at real
 *     x >= t_s, and by (2) Redis counts the promise until a call with
 *     virtual time e, which comes no earlier than real x + rel. So the
 *     host stops trusting a promise while it is still in C_h: enforced_h(t)
 *     <= C_h(t), and by (1) sum_h enforced_h(t) <= L. The round trip is
 *     inside: t_s is the time before sending, not the time of the reply.

 * A host applies a smaller share at once (clamping its fill, below); Redis
 * counts the larger one until it expires. So the host has clamped before
 * Redis gives the difference to anyone else, by construction rather than
 * by a second message. A reply that is lost leaves the host on its older
 * lease, which it stops trusting earlier: safe.
 *
 * ---- The aggregate bucket (rate) ---------------------------------------------
 *
 * Host h runs GCRA with its share (r_h(t), b_h(t)): its fill f_h (permits in
 * its bucket, a real number) grows at r_h up to b_h, and each grant takes
 * from it; a new share keeps the fill, capped at the new burst (gcra.h's
 * fill-keeping conversion; a lease that runs out is a new share of none).
 * So the grants of h in [s, e] number at most
 *     f_h(s) - f_h(e) + integral_s^e r_h  <=  b_h(s) + integral_s^e r_h.
 * Summed over hosts, with G1 for both dimensions (sum b_h <= B and sum r_h
 * <= r at every instant): at most B + r (e - s) grants in any [s, e], the
 * bound of one GCRA(r, B) (gcra.h). The pool conforms to the limit.
 *
 * ---- Small bursts: burst >= hosts --------------------------------------------
 *
 * The bucket contents must sum to <= B, and shares are whole permits of
 * bucket. With B < hosts some busy host holds an empty bucket: it cannot
 * grant even at its rate share until another host's promise expires (a
 * whole term). The other way, exclusive time slices of the key, needs
 * guard gaps for clock skew between machines in which nobody grants, and
 * hands the key around at the lease's pace. Both waste the rate. vrl
 * refuses a global rate with burst < hosts instead (vrl_global_check_rate)
 * and says how to write it: GCRA(r, b) allows r*W + b in any window W, so
 * r' = r + b - hosts per period with burst hosts keeps the same bound
 * ("150/s burst 1" with 3 hosts: "148/s burst 3", 151 in any second;
 * "147/s burst 3" if 150 is the figure to keep). With burst >= hosts every
 * active host keeps at least one permit of bucket (vrl.lua's floor).
 *
 * ---- Window ------------------------------------------------------------------
 *
 * The local key admits a grant only when its grants in the trailing W,
 * this one included, fit the share in force. Take any [t - W, t] and the
 * last grant of h in it, at x: its own check counted every earlier grant
 * of h in [x - W, x], which covers them all, so h made at most s_h(x)
 * grants in it. The lease of s_h(x) was trusted at x, so its promise has
 * e >= x >= t - W and, counted until e + W >= t, is in C_h(t): the sum over
 * hosts is at most N. A release keeps the host's recent grants counted
 * for W (vrl_release: en.hold until v + W).
 *
 * ---- Quota and slots: blocks ---------------------------------------------------
 *
 * Units are counted in Redis when leased: used = sum_h A_h <= N (hard
 * quota), each host consumes at most its A_h, so the period's grants stay
 * within N whatever the timing; allocations do not expire. Only the host
 * shrinks its allocation: it clamps its key to what it keeps, then reports
 * it. A late or repeated call is refused by its sequence number (boot
 * time, monotonic µs; vrl.lua's epoch step), so Redis never counts less
 * than a host may use. Redis grows A_h by at most a block beyond the
 * host's consumption c_h; a host that dies strands A_h - c_h <= block
 * units (block <= max(1, N / (4 hosts))) per key for the rest of the
 * period: the loss bound. For slots its held units stay counted too,
 * since its workers may still hold them, until it comes back (its report
 * counts again) or an operator forgets it (vrl_forget). The host's side,
 * that its workers consume at most A_h and that it clamps before it
 * reports, is proved in lib/kinds/blocks.h.
 *
 * ---- Failures ------------------------------------------------------------------
 *
 * vrld killed: its leases expire on the host (the worker path checks the
 * expiry stored with the share: no vrld needed), then on_partition; Redis
 * drops them at its own, later, expiry. Allocations stay counted; a new
 * vrld reports what the segment holds.
 *
 * Redis stopped or unreachable: calls time out, leases run out locally
 * before Redis would drop them (3); a call Redis runs past its timeout
 * carries a ub too small, which holds virtual time back (2): safe. A
 * timed-out call that Redis executes
 * later made a promise nobody uses (counted: safe); if a newer call of
 * the host executed first, the late one is refused by its older sequence
 * number, so its stale report changes nothing.
 *
 * Redis restarted empty: the first call makes a new epoch, whose fence
 * ends at born + d + m in virtual time; no share is granted before it. An
 * old lease was made by a call executed before the loss, so before born,
 * and is trusted at most until its execution + d (3): over by the fence's
 * end, since virtual time runs no faster than real (2). Quota and slots
 * counters made while the epoch is uncertain are seeded from the
 * allocations hosts report, and open only when every host known to hold
 * units reported (and, for a key nobody knows of after a known loss, every
 * host the old epoch knew made a full report: a call with every key it
 * has there), or by an operator's vrl_reseed: a wiped Redis
 * never resets a quota silently. What no live host remembers cannot be
 * recovered: a loss no host reports (every host that knew the old epoch
 * down for the whole fence) makes unknown quota keys new again. Redis's
 * AOF is the remedy.
 *
 * Clock steps: leases are local CLOCK_MONOTONIC times, which never step.
 * Redis's clock only feeds virtual time (2): a step back holds it still
 * (leases last longer in Redis's eyes: safe); a step forward of J moves
 * it by at most min(J, ub) more than real time, so leases end early in
 * Redis's eyes by that much, which the margin absorbs for J <= m; a
 * larger forward step (ub is about a tick plus the command timeout) can
 * overlap two hosts' shares for at most one lease term. Run Redis's host
 * with a slewing clock (chrony's and ntpd's default after boot). Quota
 * periods are each host's wall clock, as on one host: Redis keeps the
 * latest period a host reported and answers BEHIND to a host whose clock
 * is behind it.
 *
 * ---- on_partition ----------------------------------------------------------------
 *
 * deny: past its lease a key grants nothing: G1 holds through any
 * partition. static: limit / hosts per host, which holds the limit only
 * if every host does the same at once, that is, when Redis is unreachable
 * for all of them. Then a host, once its lease ran out, denies for one
 * more term + margin (vrl_lease_static_from): every lease of any host was
 * made before the partition and is over by then (a host's last call and
 * the last of any other host are at most a tick plus a timeout apart,
 * less than the term), after which hosts x (limit / hosts) <= limit. When
 * only some hosts are cut off, the others keep renewing and Redis, seeing
 * the cut-off host's promises expire, hands its share to them: the pool
 * may run up to (1 + k / hosts) x limit with k hosts cut off, and more if
 * more than `hosts` hosts run. That is why deny is the default.
 */
#include "lease.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define NS_PER_US UINT64_C(1000)
#define NS_PER_S  UINT64_C(1000000000)
#define LUA_EXACT (UINT64_C(1) << 53)   /* vrl.lua's numbers are doubles */

__extension__ typedef unsigned __int128 u128;

uint64_t vrl_lease_local_expiry(uint64_t t_send, uint64_t rel_us, uint64_t margin_ns)
{
	uint64_t rel;

	if (__builtin_mul_overflow(rel_us, NS_PER_US, &rel) || t_send + rel < t_send)
		return UINT64_MAX - 1;
	if (rel <= margin_ns)
		return t_send;
	return t_send + rel - margin_ns;
}

uint64_t vrl_lease_cooldown_until(uint64_t t_recv, uint64_t rel_us)
{
	uint64_t rel;

	if (rel_us == 0)
		return 0;
	if (__builtin_mul_overflow(rel_us + 1, NS_PER_US, &rel) || t_recv + rel < t_recv)
		return UINT64_MAX - 1;
	return t_recv + rel;
}

uint64_t vrl_lease_cooldown_publish(uint64_t until, uint64_t applied, uint64_t now)
{
	if (until <= now || until <= applied + VRL_LEASE_COOLDOWN_SLACK_NS)
		return 0;
	return (until - now + NS_PER_US - 1) / NS_PER_US;
}

uint64_t vrl_lease_static_from(uint64_t expires, uint64_t lease_ns, uint64_t margin_ns)
{
	uint64_t t = expires + lease_ns + margin_ns;

	return t < expires ? UINT64_MAX : t;
}

struct vrl_global_share vrl_global_static_share(const struct vrl_global_entry *e,
						uint32_t hosts)
{
	struct vrl_global_share s = { 0 };

	if (hosts == 0)
		hosts = 1;
	switch (e->kind) {
	case VRL_GLOBAL_RATE:
		s.rate = vrl_global_rate_units(e->count, e->period_ns) / hosts;
		s.burst = e->burst / hosts;
		break;
	case VRL_GLOBAL_WINDOW:
		s.count = e->count / hosts;
		break;
	case VRL_GLOBAL_QUOTA:
	case VRL_GLOBAL_SLOTS:
		s.count = e->share.count;   /* units are counted: the allocation, no more */
		break;
	case VRL_GLOBAL_GATE:
		break;
	}
	return s;
}

struct vrl_global_share vrl_lease_fallback(const struct vrl_global_entry *e,
					   enum vrl_global_partition p, uint32_t hosts,
					   uint64_t now, uint64_t static_from)
{
	struct vrl_global_share none = { 0 };

	if (e->kind == VRL_GLOBAL_QUOTA || e->kind == VRL_GLOBAL_SLOTS) {
		none.count = e->share.count;
		return none;
	}
	if (p != VRL_GLOBAL_STATIC || now < static_from)
		return none;
	return vrl_global_static_share(e, hosts);
}

uint64_t vrl_global_rate_units(uint64_t count, uint64_t period_ns)
{
	u128 u;

	if (period_ns == 0)
		return 0;
	u = (u128)count * NS_PER_S * VRL_GLOBAL_RATE_UNIT / period_ns;
	return u >= LUA_EXACT ? 0 : (uint64_t)u;
}

uint64_t vrl_global_rate_emission(uint64_t rate)
{
	const uint64_t num = NS_PER_S * VRL_GLOBAL_RATE_UNIT;   /* 1e15 ns/s x units */

	if (rate == 0)
		return UINT64_MAX;
	return num / rate + (num % rate != 0);
}

/* "1s", "60s", "1500000ns": a period as a reader writes it. */
static void fmt_period(char *buf, size_t len, uint64_t period_ns)
{
	if (period_ns % NS_PER_S == 0)
		snprintf(buf, len, "%llus", (unsigned long long)(period_ns / NS_PER_S));
	else
		snprintf(buf, len, "%lluns", (unsigned long long)period_ns);
}

/* "150/s", "2/60s": a rate as a reader writes it. */
static void fmt_rate(char *buf, size_t len, uint64_t count, uint64_t period_ns)
{
	char per[32];

	fmt_period(per, sizeof(per), period_ns);
	snprintf(buf, len, "%llu/%s", (unsigned long long)count,
		 period_ns == NS_PER_S ? "s" : per);
}

int vrl_global_check_rate(const char *name, uint64_t count, uint64_t period_ns, uint64_t burst,
			  uint32_t hosts, char *msg, size_t len)
{
	char now[48], fix[48], per[48];
	uint64_t keep;

	if (vrl_global_rate_units(count, period_ns) == 0) {
		snprintf(msg, len, "global limit %s: its rate is out of range for Redis (at most "
			 "9e9 per second, above 1e-6)", name);
		return -EINVAL;
	}
	if (burst >= hosts)
		return 0;
	fmt_rate(now, sizeof(now), count, period_ns);
	fmt_period(per, sizeof(per), period_ns);
	keep = count + burst;
	if (keep <= hosts) {
		snprintf(msg, len, "global limit %s: %s burst %llu is below global.hosts %u, and "
			 "too small to share: every host needs a permit of bucket; give it "
			 "scope: host, or fewer hosts", name, now, (unsigned long long)burst, hosts);
		return -EINVAL;
	}
	fmt_rate(fix, sizeof(fix), keep - hosts, period_ns);
	snprintf(msg, len, "global limit %s: burst %llu is below global.hosts %u: every host "
		 "needs a permit of bucket; write rate %s with burst %u: at most %llu in any "
		 "%s, as %s burst %llu allows now", name, (unsigned long long)burst,
		 hosts, fix, hosts, (unsigned long long)keep, per, now,
		 (unsigned long long)burst);
	return -EINVAL;
}

void vrl_global_key_id(enum vrl_global_kind kind, const char *limit, const char *const *parts,
		       size_t nparts, uint8_t id[VRL_GLOBAL_ID_LEN])
{
	XXH3_state_t st;
	XXH128_canonical_t c;
	unsigned char k = (unsigned char)kind, sep = 0x1f;

	XXH3_128bits_reset(&st);
	XXH3_128bits_update(&st, &k, 1);
	XXH3_128bits_update(&st, limit, strlen(limit));
	for (size_t i = 0; i < nparts; i++) {
		const char *p = parts[i] ? parts[i] : "";
		uint32_t n = (uint32_t)strlen(p);
		unsigned char le[4] = { (unsigned char)n, (unsigned char)(n >> 8),
					(unsigned char)(n >> 16), (unsigned char)(n >> 24) };

		XXH3_128bits_update(&st, &sep, 1);
		XXH3_128bits_update(&st, le, sizeof(le));
		XXH3_128bits_update(&st, p, n);
	}
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&st));
	memcpy(id, c.digest, VRL_GLOBAL_ID_LEN);
}
