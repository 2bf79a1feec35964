/*
 * adapt.h - adaptive pacing: a rate key's effective rate, cut on the
 * upstream's 429s and recovered with time, as pure functions.
 *
 * Nothing here touches shared memory or reads a clock: callers pass the
 * state word and the time, so tests drive both by hand. The first half of
 * this comment is the law and its encoding; the second half (AD.W1-W6) is
 * how the rate kind, vrl_observe() and vrl_acquire_wait() take it up.
 *
 * ---- Why ------------------------------------------------------------------
 *
 * Upstreams differ in tolerance. A proxy enforcing 150/s as nginx's
 * limit_req with burst=0 rejects any request that arrives less than
 * ceil(1000/150) = 7 whole milliseconds after the last one it let through
 * (142.9/s), and the time from a grant to its request's arrival jitters by
 * milliseconds. Granting at exactly the published figure then draws 429s
 * that carry no Retry-After and name no limit. A limit marked adaptive
 * therefore paces at an effective rate w * r, w in [floor, 1] a fraction
 * of its configured figure r: cut multiplicatively on each 429 charged to
 * its key, recovered with time, pool-wide, never above the figure.
 *
 * ---- The law: CUBIC in units of the figure -------------------------------
 *
 * A charged 429 at time c with the key at w(c) = Wmax cuts to beta * Wmax,
 * and from there w follows TCP CUBIC's window (RFC 9438), in units of the
 * figure and of the recovery time K0:
 *
 *     w(c + s * K0) = Wmax + (1 - beta) * (s - k)^3,   k = cbrt(Wmax)
 *
 * clamped to [floor, 1]. So w is beta * Wmax at the cut, climbs fast (a
 * concave curve) back to Wmax at s = k (k * K0 <= K0 after the cut), stays
 * near it for a while (the plateau: the rate that last drew a 429 is close
 * to what the upstream takes), then probes above it (convex) until it is
 * back at the figure, where the key is as if never cut. From a cut at the
 * figure (Wmax = 1) the rate is whole again after exactly K0.
 *
 * Why CUBIC, not linear AIMD: the rate an upstream takes is usually just
 * under the figure (142.9/s for 150/s), so the good rate to return to is
 * the one before the cut, known, not one to search for: CUBIC gets back
 * to it in K0 and lingers there, where additive increase either crawls
 * (wasting allowance) or overshoots at full speed (more 429s). It is what
 * botocore's `adaptive` retry mode runs (its CubicCalculator: beta 0.7,
 * C 0.4 in requests per second; a token bucket paces at the result). vrl
 * scales C to the figure, C = (1 - beta) / K0^3, so one setting, K0, means
 * the same for 2/min and 150/s.
 *
 * beta = 0.85 by default, gentler than CUBIC's and botocore's 0.7. Most
 * 429s from a strict upstream are isolated: a grant that reached it a
 * millisecond early, not a rate above what it takes. A cut from the figure
 * costs (1 - beta) K0 / 4 of full-rate time until it is whole again (0.15 s
 * at 0.7, 0.075 s at 0.85); at a few such 429s a second, 0.7 left a pool
 * of ten Python workers against sim.py --strict at 55-65% of what the
 * upstream admits, 0.85 at 63-77%, with as few 429s (examples/upstream/
 * measure.sh on a 2-core machine at load 3-8). A rate that really is too
 * high draws 429s in a row, which fast convergence (below) answers with
 * a deeper cut, beta (1 + beta) / 2 = 0.72 of the rate. AIMD's 0.5 throws
 * away half the allowance on every jitter 429.
 *
 * Why driven by time, not by successes: w is a pure function of the word
 * and now, so every process computes the same rate with no write on the
 * success path (a CAS per 2xx from every worker would contend on the
 * line), and a pool whose callers feed back only 429s still recovers.
 * botocore too evaluates its cubic at each response's time. Left out from
 * botocore: its cap at twice the measured send rate (it needs a per-key
 * rate meter, which the slot has no room for; an idle key may thus be back
 * at the figure when traffic returns, which the next 429 corrects).
 *
 * Fast convergence (RFC 9438 4.7), so that a key settles under what the
 * upstream takes rather than oscillating around it. A 429 that comes while
 * w is still under the Wmax of the cut in force (k^3, in the word) says
 * the upstream now takes less than that Wmax: the cut then returns to
 * Wmax = w (1 + beta) / 2, not to w, so it starts at beta Wmax and its
 * plateau lies that much lower. A 429 at or above the Wmax in force (the
 * key probing past it, or at the figure) is an ordinary cut, Wmax = w.
 * Against 150/s enforced as 142.9/s: a cut at the figure returns to 1,
 * the 429 that comes on the way back up (above 0.952) returns to about
 * 0.95 (1 + beta) / 2, under 0.952, and the key lingers there.
 *
 * Two 429s, not one: the strike. Against a strict upstream most 429s are
 * isolated: a request that reached it a fraction of a millisecond early
 * because the one before it was late, at any rate near the figure; and a
 * cut costs seconds of rate. Measured (examples/upstream/measure.sh, ten
 * workers, Samsara's figures, sim.py --strict): one 429 each second or
 * two, alone (the 429s per cut were 1.0-1.1), each cut, the next one
 * within the recovery cut deeper still (fast convergence, below), and
 * the keys sank to 0.5-0.7 of the figure, 60-88% of what the upstream
 * admits, while fixed pacing got 95-97% with 1-2% 429s. So a 429 first
 * strikes: it notes its time and changes no rate; a second one, of a
 * request granted after the strike (a new moment, not its echo), cuts.
 * At the figure the strike is a word of its own (k = 0, its tick) and
 * lasts K0 / 2 after the hold; an older one is forgotten, so a cut needs
 * two 429s within about a second at the defaults: 429s at under about one
 * in 400 responses at 200/s seldom cut. While a key recovers the word's
 * tick is the cut's, so the strike notes only which hold-long window of
 * the recovery it came in (1 + its index mod 3, in k's two low bits); a
 * 429 of a request granted in that window is its echo, one granted in
 * the next window (or granted and answered two windows on) cuts, and one
 * too old to tell strikes again. Each cut is then a fair sign that the
 * rate, not the jitter, draws the 429s, which is what fast convergence
 * assumes.
 *
 * One cut per round trip. TCP reduces its window once per window of data:
 * losses among segments sent before the reduction are echoes of the same
 * congestion (RFC 6582's recovery point; RFC 3168: "at most once per
 * round-trip time"). Here a 429 cuts only when (a) its request was granted
 * after the last cut, and (b) at least `hold` has passed since it. Ten
 * workers whose requests, granted under the old rate, all come back 429
 * cut once: the first CAS wins; the nine others find a cut newer than
 * their grant and are absorbed. A request granted after the cut that still
 * draws a 429 strikes (above), one round trip later, as TCP would cut.
 * (b) alone serves a caller that cannot say when its request was
 * granted. A strike at the figure is answered the same way: 429s of
 * requests granted before it, or in its tick, are its echoes.
 *
 * ---- The word: 32 bits, the key slot's `aux` ------------------------------
 *
 *     bits  0..1   a cut's strike: 0 none, 1-3 the window it came in
 *     bits  2..11  k: cbrt(Wmax) in 1/1024 (K = k * K0); 0: at the figure
 *     bits 12..30  the cut's (or the strike's, k = 0) time, in ticks of 2^20
 *                  ns (1.048576 ms), mod 2^19
 *     bit  31      1: a word written by a cut or a strike (VRL_ADAPT_MARK)
 *
 * The mark keeps the word apart from the window kind's use of the same
 * slot word (a ring index + 1, at most VRL_WINDOW_MAX_KEYS = 2^31): every
 * word a cut writes exceeds 2^31, which a window key reads as no ring of
 * its area (VRL_ECORRUPT, its sweep leaves the key alone), never as a
 * ring to count in; and a rate key reads a word without the mark (a ring
 * index left by a key the slot held before) as the figure. So a cut that
 * lands on a slot reused under it (kind_rate.h, vrl_rate_cut) can deny
 * or slow that key, never let it over-grant.
 *
 * 0 is "at the figure, never cut", so a zeroed slot needs no set-up, and a
 * recovered word settles back to 0 (vrl_adapt_settle; a strike at the
 * figure is kept until it is forgotten). k is kept in 1/1024 (the low
 * bits hold the strike), rounded down: a Wmax at most 0.3% lower. A
 * library that read k from all twelve bits (before the strike) reads a
 * strike at the figure as the figure and a cut word within 3/4096 of its
 * k: a rate in [floor, 1] either way, never above the figure. Storing k rather
 * than Wmax (= k^3) makes w(t) a polynomial: no cube root on the read
 * path, one on a cut; and the Wmax in force is there for fast convergence. The tick clock wraps every 2^39 ns (9.16 minutes):
 * the profile bounds K0 so that the slowest recovery (from the floor, at
 * the largest beta) ends within (1 + cbrt(1 / (1 - beta))) * K0 <= 3.72 *
 * 120 s = 7.4 minutes, inside a wrap, and vrld's sweep settles
 * recovered words to 0; a word left unswept past a wrap would read as a
 * recent cut, a lower rate, never a higher one. A word is CASed: a cut
 * that loses its CAS is computed again from the word it found, which is
 * most often a cut newer than its grant, so it is absorbed. All
 * arithmetic is integer and exact: w in 1/65536 of the figure, rounded
 * down (slower) at every step, the same in every process.
 *
 * ---- Wiring: how the rate kind, observe and acquire_wait take it up ------
 *
 * AD.W1 Where it lives. In the key slot's `aux` (segment.h: one 64-byte
 * line holds tag, state, cooldown, limit note, aux, label, home; aux is
 * the window kind's ring index and free for rate keys). A rate limit gets
 * `adaptive: true` in the config (or the top-level `adaptive: true`, the
 * default of every rate limit), compiled into its vrl_seg_limit as the flag
 * VRL_LIMIT_ADAPTIVE and the profile's four words (adapt[], in room the
 * layout reserved: no format bump; a library that knows neither paces at
 * the figure). aux is 0 on insertion and vrl_reset() writes 0 (the figure
 * again); vrld's sweep writes 0 once a key is back at its figure, or when
 * a reload turned its limit's adaptive off (turned on again, the key
 * starts at the figure); checkpoints leave it out: it is soft state, and
 * a restart at the figure is corrected by the next 429. Limits that share
 * a key (a pool) share its word.
 *
 * The window kind does not adapt. Its aux is its ring index, and the only
 * other per-key room is the ring of `limit` timestamps in the limit's
 * area: an adapt word there would change the area's layout (a format
 * change every library must know) and the window's acquire, whose proof
 * (window.c) counts the ring against `limit`, would have to count it
 * against floor(w * limit) and be proved again. So adaptive: on a window
 * limit is a config error, the top-level adaptive: leaves window limits
 * alone, and a window key takes from a 429 what observe.c's rules 2 and 3
 * give any key it targets (the limit named, or the matching one with the
 * fewest permits left): a Retry-After closes it until then; the server's
 * remaining count moves its ring down to it; a bare 429 counts as "none
 * remain", so the key grants nothing more until its oldest grants leave
 * the window. It learns nothing that lasts past that window. Against a
 * window upstream stricter than its figure the remedy is a margin in
 * `limit`.
 *
 * AD.W2 The hot path. The rate kind loads the state word anyway, so the
 * slot's line is in cache; an adaptive limit adds one relaxed load of aux
 * from that line. aux == 0 (the steady state): vrl_adapt_emission()
 * returns T inline and the step is today's. Otherwise it computes T_eff =
 * T / w (two divisions and a few multiplies, only while a key recovers)
 * and steps with vrl_adapt_step(): conformance is tested against the
 * configured (T, tau), and a grant is charged n * T_eff. Relaxed suffices:
 * any value of aux yields T_eff >= T, and AD.W3's bound holds for every
 * sequence of them, so no order with the state word's CAS is needed (a
 * grant racing a cut is charged at the old rate, as if it came first). A
 * denial still writes nothing. Non-adaptive limits never read aux.
 *
 * AD.W3 Fill across an effective-rate change, and the bound. A cut or a
 * recovery changes no state word: the fill b - (TAT - t)^+ / T the key has
 * at that instant is exactly what it had; only later grants cost more.
 * That is why, unlike a configured-rate change (gcra.h's rate epochs,
 * which convert the TAT to keep the fill), an effective-rate change needs
 * no conversion: the test stays the configured one.
 *
 * Theorem. Let a key's grants k, at times t_k, of n_k permits, each be
 * tested as GCRA (T, tau = b T) and charged n_k T_k with any T_k >= T.
 * Then the grants with time in any [s, e] number at most b + (e - s) / T,
 * whatever w did meanwhile: never more than the configured limit.
 * Proof, in gcra.h's form (it holds in any order of the CASes). Grant k
 * moves the TAT from TAT' to max(TAT', t_k) + n_k T_k; call base_k =
 * max(TAT', t_k). It passes iff base_k + n_k T - t_k <= tau (the
 * configured test). The TAT only grows from grant to grant, so the
 * intervals (base_k, base_k + n_k T_k] are disjoint, and so are their
 * heads (base_k, base_k + n_k T], since T_k >= T. A grant with t_k in
 * [s, e] has its head in [s, e + tau]: base_k >= t_k >= s, and the test
 * bounds its end. So T * sum n_k <= e - s + b T.
 * The same intervals, whole, lie in [s, e + tau + n (T_eff - T)] for a
 * steady T_eff: the key runs at w * r, with a burst of about 1 + (b - 1)w.
 * A reservation (acquire_wait: t_k = at > now) is a grant at time at.
 *
 * With reloads: gcra.h's rate-epoch proof (main) holds as written with
 * this charge. Its lemma places phase j's grants in disjoint intervals
 * (base_k, base_k + n_k T_j] ending by min(TAT_j, t_k + tau_j): the charged
 * intervals (base_k, base_k + n_k T_eff] contain them, so they stay
 * disjoint, and the test still bounds their ends. The extra debt only
 * lowers the fill psi_j a conversion reads (an over-empty TAT, past t +
 * tau, converts as empty). A reload that changes the figure keeps aux, a
 * fraction, which then applies to the new figure; one that changes the
 * profile re-reads (k, cut) under it, still within [floor, 1]. A refund
 * gives back n * T, the configured price, never more than was charged.
 *
 * AD.W4 Which key a 429 is charged to. A 429 that names its limit
 * (resp->limit, a Smartcar code) cuts that limit's key. One that names
 * none cuts the key that was binding at grant time: the one with the
 * least slack (vrl_adapt_slack(): the permits it had left beyond this
 * grant, counting idle time past a full bucket), and every key within
 * VRL_ADAPT_TIE_Q16 of it (vrl_adapt_charged()). Slack is taken against
 * the figure, not the effective rate: a key paced below its figure adds
 * the time its last permit was charged over T (T_eff - T) to its room.
 * Against the effective rate, a token once cut was granted at its
 * earliest (slower) time on every request and so took every later bare
 * 429, though the organisation at its figure was the closer to its
 * upstream spacing: measured, 5-9 of 13-26 429s "by token" in sim.py's
 * counts went on cutting the tokens to 0.55 of theirs. Rejected: cutting every
 * matching key. Two tokens at 150/s under an organisation's 200/s:
 * cutting the organisation on a token's rounding 429 slows the other
 * token too, and cutting the token on the organisation's 429 does
 * nothing for the organisation. The binding key is known at grant time
 * only (the acquire computes each key's TAT before and after), so the
 * verdict carries it: `binding`, a mask by limit index of the adaptive
 * rate limits whose keys were binding (the slack is taken over every rate
 * key of the request; a binding key that does not adapt charges nothing),
 * and vrl_observe_granted(c, req, verdict, resp, fb) passes the verdict's
 * at_ns (the grant time that the one-cut-per-round-trip rule needs) and
 * that mask. Plain vrl_observe() has neither: it charges the adaptive
 * rate key with the fewest permits now (the "tightest") and cuts under
 * the hold rule alone. A limit the caller or the response names is cut
 * when it adapts, whatever the mask. A cut lands on the slot by a CAS of
 * aux, and the slot's owner is checked after it: a cut that landed on a
 * key that took the slot meanwhile is put back (the mark, above, keeps it
 * harmless until then).
 *
 * AD.W5 acquire_wait under jitter. Reserved times are fixed when they are
 * made: a waiter that wakes d late sends d late, and the next waiter,
 * waking on time, arrives T - d after it. Decision: refuse a stale
 * reservation. A waiter that wakes more than a grace g after its reserved
 * time (g a fraction of T_eff, at most the margin the effective rate
 * leaves) does not use it: the permit stays spent (never an over-grant;
 * the upstream just sees a gap of 2T there) and the waiter reserves again.
 * Only on a key paced below its figure: there a 429 said the upstream
 * refuses what comes too close. A key at its figure (no 429 yet, or whole
 * again) keeps a late reservation: against a tolerant upstream giving the
 * turn up only lost it (a pool of ten waiters got 81-83% of the 200/s
 * sim.py admits with it, 91% without; a strict one answers the first
 * request that came too close with a 429, and the cut turns the rule on).
 * Arrivals of the waiters that do send then lie within [at, at + g] of
 * reservations spaced T_eff apart: no two closer than T_eff - g. It is a
 * check after clock_nanosleep, with no new shared state (acquire.c,
 * reservation_stale: g = T_eff / 8 of the key that set the reservation's
 * time; the grant is given back where nobody built on it, as a rollback,
 * else stays spent). Rejected:
 * re-spacing from the actual wake time (moving the TAT by the lateness)
 * fixes only reservations not yet made, while up to one per waiter is
 * already queued behind the late one, and pushing them all needs per-key
 * lateness state the slot has no room for; and a caller-reported send
 * time, which arrives after the send, too late to space anything (it is
 * worth having as a metric: grant-to-send lateness).
 *
 * What a caller does between grant and send: nothing but the write. The
 * connect, TLS, serialising the body and choosing the token all come
 * before the acquire; a fresh worker's first request arrived 150-480 ms
 * after its grant because it connected after it. Whatever jitter is left
 * (a preemption between return and write) is what the adaptive rate's
 * margin absorbs.
 *
 * AD.W6 With cooldowns and reconciling. A 429 with a Retry-After still
 * closes the key until then (vrl_cooldown) and, on an adaptive limit, also
 * cuts: the upstream said the pace was too fast. A 429 with nothing else
 * still reconciles the key to "none remain" (for burst 1 that changes
 * nothing: the cut is what acts).
 */
#ifndef VRL_ADAPT_H
#define VRL_ADAPT_H

#include <stdbool.h>
#include <stdint.h>

#include "gcra.h"

#define VRL_ADAPT_ONE          65536u                /* w = 1: the figure, in 1/65536 */
#define VRL_ADAPT_K_BITS       12u
#define VRL_ADAPT_K_ONE        (1u << VRL_ADAPT_K_BITS)  /* k = 1, in 1/4096 */
#define VRL_ADAPT_K_MASK       (VRL_ADAPT_K_ONE - 1u)    /* k = 1 is stored as 4095: see below */
#define VRL_ADAPT_TICK_SHIFT   20u                   /* a tick is 2^20 ns, 1.048576 ms */
#define VRL_ADAPT_TICK_BITS    19u                   /* ticks kept: they wrap every 2^39 ns */
#define VRL_ADAPT_MARK         (UINT32_C(1) << 31)   /* set in every word a cut writes */
#define VRL_ADAPT_STRIKE_MASK  3u                    /* a cut's word: the strike since it */
#define VRL_ADAPT_K_TOP        (VRL_ADAPT_K_MASK & ~VRL_ADAPT_STRIKE_MASK) /* k = 1, stored */
#define VRL_ADAPT_TICK_MASK    ((1u << VRL_ADAPT_TICK_BITS) - 1u)

#define VRL_ADAPT_BETA_MIN     32768u                /* 0.5: AIMD's halving */
#define VRL_ADAPT_BETA_MAX     62259u                /* 0.95 */
#define VRL_ADAPT_FLOOR_MIN    1024u                 /* 1/64 of the figure */
#define VRL_ADAPT_RECOVER_MIN_NS (UINT64_C(16) << VRL_ADAPT_TICK_SHIFT)  /* 16 ticks, ~17 ms */
#define VRL_ADAPT_RECOVER_MAX_NS UINT64_C(120000000000) /* 120 s: recovery ends well
                                                          inside the tick clock's wrap */

/* Starting points for a limit marked `adaptive` with no figures of its own. */
#define VRL_ADAPT_BETA_DEFAULT    55705u                 /* 0.85 (rounded down: a deeper cut) */
#define VRL_ADAPT_FLOOR_DEFAULT   8192u                  /* 1/8 of the figure */
#define VRL_ADAPT_RECOVER_DEFAULT_NS UINT64_C(2000000000) /* 2 s back to the figure */
#define VRL_ADAPT_HOLD_DEFAULT_NS    UINT64_C(100000000)  /* 100 ms between cuts */

#define VRL_ADAPT_GRANTED_UNKNOWN UINT64_MAX         /* vrl_adapt_cut(): no grant time */
#define VRL_ADAPT_TIE_Q16      (VRL_ADAPT_ONE / 16u) /* slack within 1/16 permit: a tie */
#define VRL_ADAPT_EMISSION_MAX VRL_GCRA_TIME_MAX     /* T_eff saturates here: never */

/* The profile of an adaptive limit: read-only, from the config. */
struct vrl_adapt {
	uint32_t beta_q16;       /* the rate a cut leaves, a fraction of the rate before */
	uint32_t floor_q16;      /* the lowest effective rate, a fraction of the figure */
	uint32_t recover_ticks;  /* K0: from a cut at the figure back to it, in ticks */
	uint32_t hold_ticks;     /* the least time between two cuts, in ticks */
};

/*
 * Fill @a: back to the figure @recover_ns after a cut made at it, at most
 * one cut per @hold_ns, never below @floor_q16 / 65536 of the figure, a
 * cut leaving @beta_q16 / 65536 of the rate. Times are rounded to ticks.
 * Returns 0, -EINVAL for a NULL @a, or -ERANGE when a value lies outside
 * [VRL_ADAPT_RECOVER_MIN_NS, VRL_ADAPT_RECOVER_MAX_NS] (recover), [0,
 * recover] (hold), [VRL_ADAPT_FLOOR_MIN, VRL_ADAPT_ONE] (floor) or
 * [VRL_ADAPT_BETA_MIN, VRL_ADAPT_BETA_MAX] (beta).
 */
int vrl_adapt_init(struct vrl_adapt *a, uint64_t recover_ns, uint64_t hold_ns,
		   uint32_t floor_q16, uint32_t beta_q16);

/*
 * The profile stored in a compiled limit (vrl_seg_limit.adapt: beta, floor,
 * recover ticks, hold ticks) into @a, checked against the same bounds as
 * vrl_adapt_init(), since a segment's words are not trusted: 0, or -ERANGE.
 */
int vrl_adapt_load(struct vrl_adapt *a, const uint32_t words[4]);

/* The words of @a for a compiled limit (the inverse of vrl_adapt_load). */
static inline void vrl_adapt_store(const struct vrl_adapt *a, uint32_t words[4])
{
	words[0] = a->beta_q16;
	words[1] = a->floor_q16;
	words[2] = a->recover_ticks;
	words[3] = a->hold_ticks;
}

/* ---- the word ------------------------------------------------------------ */

/*
 * k = 1 (a cut at the figure) needs 13 bits; the word keeps 12, so k is
 * stored as min(k, 4095) and read back as 4096 when it is 4095: the cube
 * of 4095/4096 is 0.99927, a Wmax 0.07% under the figure, and nothing
 * else rounds to it (cuts are taken from w <= 1 rounded down).
 */
static inline uint32_t vrl_adapt_word(uint32_t k_q12, uint32_t tick)
{
	uint32_t k = k_q12 >= VRL_ADAPT_K_MASK ? VRL_ADAPT_K_TOP :
		k_q12 >= VRL_ADAPT_K_TOP ? VRL_ADAPT_K_TOP - 4u : k_q12 & ~VRL_ADAPT_STRIKE_MASK;

	return VRL_ADAPT_MARK | (tick & VRL_ADAPT_TICK_MASK) << VRL_ADAPT_K_BITS | k;
}

/* k of @word in 1/4096 (0: at the figure), and the tick of its cut. */
static inline uint32_t vrl_adapt_k(uint32_t word)
{
	uint32_t k = word & VRL_ADAPT_K_MASK & ~VRL_ADAPT_STRIKE_MASK;

	return k == VRL_ADAPT_K_TOP ? VRL_ADAPT_K_ONE : k;
}

static inline uint32_t vrl_adapt_tick_of(uint32_t word)
{
	return (word >> VRL_ADAPT_K_BITS) & VRL_ADAPT_TICK_MASK;
}

/* The tick clock at monotonic time @now. */
static inline uint32_t vrl_adapt_tick(uint64_t now)
{
	return (uint32_t)(now >> VRL_ADAPT_TICK_SHIFT) & VRL_ADAPT_TICK_MASK;
}

/* True when @word paces at the figure: never cut, settled, or not a word a
 * cut wrote (no mark). */
static inline bool vrl_adapt_at_figure(uint32_t word)
{
	return !(word & VRL_ADAPT_MARK) || (word & VRL_ADAPT_K_MASK & ~VRL_ADAPT_STRIKE_MASK) == 0;
}

/* ---- reading it ------------------------------------------------------------ */

/* The effective rate of @word at @now, in 1/65536 of the figure: [floor, 1]. */
uint32_t vrl_adapt_rate(const struct vrl_adapt *a, uint32_t word, uint64_t now);

uint64_t vrl_adapt__emission(const struct vrl_adapt *a, uint32_t word, uint64_t now,
			     uint64_t emission_ns);

/*
 * The emission interval to charge at @now: T / w, rounded up, never below
 * the configured @emission_ns, saturating at VRL_ADAPT_EMISSION_MAX. Inline
 * for the hot path: a word at the figure costs one test.
 */
static inline uint64_t vrl_adapt_emission(const struct vrl_adapt *a, uint32_t word,
					  uint64_t now, uint64_t emission_ns)
{
	if (vrl_adapt_at_figure(word))
		return emission_ns;
	return vrl_adapt__emission(a, word, now, emission_ns);
}

/*
 * gcra_step with the conformance test of the configured @g and a grant
 * charged @n * @charge_ns (>= g->emission_ns) instead of @n * T: the step
 * of an adaptive limit (AD.W2, AD.W3). retry_after is the configured
 * test's, so a denial waits exactly until the key conforms.
 */
static inline struct vrl_gcra_step vrl_adapt_step(const struct vrl_gcra *g, uint64_t charge_ns,
						  uint64_t tat, uint64_t now, uint64_t at,
						  uint64_t n)
{
	struct vrl_gcra_step r = vrl_gcra_step(g, tat, now, at, n);
	uint64_t extra;

	if (!r.conforms || charge_ns <= g->emission_ns)
		return r;
	if (__builtin_mul_overflow(n, charge_ns - g->emission_ns, &extra) ||
	    extra > VRL_GCRA_TIME_MAX - r.new_tat)
		r.new_tat = VRL_GCRA_TIME_MAX;
	else
		r.new_tat += extra;
	return r;
}

/* ---- changing it ------------------------------------------------------------ */

/*
 * A 429 charged to the key at @now, for a request granted at @granted_at
 * (VRL_ADAPT_GRANTED_UNKNOWN when the caller cannot say). Returns
 * VRL_ADAPT_CUT and sets *@out to the cut word; VRL_ADAPT_STRIKE with the
 * word that notes the strike (the rate unchanged); or VRL_ADAPT_ABSORBED
 * (0) with *@out = @word when the 429 is an echo: less than `hold` after
 * the last cut (or, without a grant time, strike), or its request was
 * granted before it (in its tick or earlier), or in the strike's window.
 * The caller CASes @word to *@out and, when the CAS fails, calls again
 * with the word it found.
 */
enum { VRL_ADAPT_ABSORBED = 0, VRL_ADAPT_STRIKE = 1, VRL_ADAPT_CUT = 2 };
int vrl_adapt_cut(const struct vrl_adapt *a, uint32_t word, uint64_t now, uint64_t granted_at,
		  uint32_t *out);

/* @word, or 0 once it is back at the figure at @now (vrld's sweep writes it). */
uint32_t vrl_adapt_settle(const struct vrl_adapt *a, uint32_t word, uint64_t now);

/* ---- which key a 429 is charged to (AD.W4) ---------------------------------- */

/*
 * The slack of a key granted @n permits at time @at whose TAT was
 * @tat_before, against its figure: (at + tau + @extra_ns - tat_before) / T
 * - n, @extra_ns the time its last permit was charged over T (T_eff - T;
 * 0 at the figure), in 1/65536 of a permit,
 * saturating at UINT64_MAX (long idle). 0: the grant came at the earliest
 * time this key allowed; the key was the binding one.
 */
uint64_t vrl_adapt_slack(const struct vrl_gcra *g, uint64_t extra_ns, uint64_t tat_before,
			 uint64_t at, uint64_t n);

/*
 * The keys to charge, as a mask of @slack[0..@n) (@n <= 32): the one with
 * the least slack and every one within VRL_ADAPT_TIE_Q16 of it. 0 when
 * @n is 0.
 */
uint32_t vrl_adapt_charged(const uint64_t *slack, unsigned n);

#endif /* VRL_ADAPT_H */
