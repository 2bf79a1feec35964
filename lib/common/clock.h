/*
 * clock.h - the clocks vrl reads, in nanoseconds. Internal.
 *
 * One conversion between struct timespec and a 64-bit nanosecond count,
 * inline, for the library, vrld, vrlctl and the tests. CLOCK_MONOTONIC is
 * the time base of rates, windows and cooldowns (one clock for every
 * process of a host); CLOCK_REALTIME only judges calendar periods, dates
 * and what is shown to people.
 */
#ifndef VRL_CLOCK_H
#define VRL_CLOCK_H

#include <stdint.h>
#include <time.h>

#define VRL_NS_PER_S UINT64_C(1000000000)   /* nanoseconds in a second */

/* @ts in ns; a time before the clock's epoch counts as 0. */
static inline uint64_t vrl_ts_ns(const struct timespec *ts)
{
	if (ts->tv_sec < 0)
		return 0;
	return (uint64_t)ts->tv_sec * VRL_NS_PER_S + (uint64_t)ts->tv_nsec;
}

/* @ns as a timespec (for clock_nanosleep, timed waits). */
static inline struct timespec vrl_ns_ts(uint64_t ns)
{
	return (struct timespec){ .tv_sec = (time_t)(ns / VRL_NS_PER_S),
				  .tv_nsec = (long)(ns % VRL_NS_PER_S) };
}

/* Clock @id now, in ns. */
static inline uint64_t vrl_clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return vrl_ts_ns(&ts);
}

/* CLOCK_MONOTONIC in ns: what the public vrl_now_ns() returns. */
static inline uint64_t vrl_mono_ns(void)
{
	return vrl_clock_ns(CLOCK_MONOTONIC);
}

/* CLOCK_REALTIME in ns: the wall clock. */
static inline uint64_t vrl_wall_ns(void)
{
	return vrl_clock_ns(CLOCK_REALTIME);
}

#endif /* VRL_CLOCK_H */
