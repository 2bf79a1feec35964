/*
 * duration.h - the one parser of durations and rates: vrld's config,
 * vrlctl's arguments and the Retry-After header all read numbers of
 * seconds through it. Internal.
 *
 *   duration = number [unit]            "30s", "1.5min", "250ms", "0.40235"
 *   number   = digits ["." digits] | "." digits
 *   unit     = ns | us | ms | s | sec | second | seconds | m | min | minute |
 *              minutes | h | hour | hours | d | day | days
 *   rate     = digits "/" [number] unit  "150/s", "2/min", "1/30s", "5/1.5min"
 *   count    = digits                    "42"
 *
 * A number without a unit is seconds. Arithmetic is exact in integers: a
 * fraction keeps 18 digits and is rounded up to the nanosecond (digits past
 * the 18th round up too when any is not 0), so a duration is never read
 * shorter than written; a value past 2^64 - 1 ns is refused, never wrapped.
 * No space, sign, exponent or other case is taken.
 */
#ifndef VRL_DURATION_H
#define VRL_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* vrl_parse_duration_n() flags */
#define VRL_DUR_UNIT      0x1u   /* a unit is required ("30" alone is refused) */
#define VRL_DUR_BARE      0x2u   /* seconds as an HTTP header sends them: no unit, and
                                    digits on both sides of a point ("30", "0.40235") */
#define VRL_DUR_IMPLICIT  0x4u   /* a missing number means 1 ("min" is 1min: a rate's
                                    period) */

/*
 * Parse the @len bytes at @s (no NUL needed) as a duration in ns, under
 * @flags. Returns 0 and sets *@ns, or -1 (nothing set).
 */
int vrl_parse_duration_n(const char *s, size_t len, unsigned flags, uint64_t *ns);

/*
 * The decimal count at @s (digits only, at least one; no sign or point).
 * With @end NULL the whole NUL-terminated string must be the count; else
 * *@end is where the digits stop. 0, or -1 when there are no digits, it
 * overflows 64 bits, or (@end NULL) anything follows.
 */
int vrl_parse_count(const char *s, const char **end, uint64_t *v);

/* The NUL-terminated @s as a duration, a unit optional. 0 or -1. */
int vrl_parse_duration(const char *s, uint64_t *ns);

/* The NUL-terminated rate @s ("150/s"): a count (>= 1) per a period
 * (> 0 ns). 0 or -1. */
int vrl_parse_rate(const char *s, uint64_t *count, uint64_t *period_ns);

#endif /* VRL_DURATION_H */
