/*
 * duration.c - durations and rates as people and servers write them (see
 * duration.h for the grammar).
 */
#include "duration.h"

#include <stdbool.h>
#include <string.h>

#include "clock.h"

#define FRAC_DIGITS 18u     /* fraction digits kept exactly; more only round up */

__extension__ typedef unsigned __int128 u128;

struct unit {
	const char *name;
	uint64_t ns;
};

/* Every unit's spellings, and the ns of one of each. */
static const struct unit units[] = {
	{ "ns", 1 },
	{ "us", 1000 },
	{ "ms", 1000000 },
	{ "s", VRL_NS_PER_S },
	{ "sec", VRL_NS_PER_S },
	{ "second", VRL_NS_PER_S },
	{ "seconds", VRL_NS_PER_S },
	{ "m", 60 * VRL_NS_PER_S },
	{ "min", 60 * VRL_NS_PER_S },
	{ "minute", 60 * VRL_NS_PER_S },
	{ "minutes", 60 * VRL_NS_PER_S },
	{ "h", 3600 * VRL_NS_PER_S },
	{ "hour", 3600 * VRL_NS_PER_S },
	{ "hours", 3600 * VRL_NS_PER_S },
	{ "d", 86400 * VRL_NS_PER_S },
	{ "day", 86400 * VRL_NS_PER_S },
	{ "days", 86400 * VRL_NS_PER_S },
};

/* The unit spelled by the @len bytes at @s. */
static int unit_ns(const char *s, size_t len, uint64_t *ns)
{
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strlen(units[i].name) == len && memcmp(units[i].name, s, len) == 0) {
			*ns = units[i].ns;
			return 0;
		}
	return -1;
}

/* A decimal number: whole + num / den, with a flag for dropped digits. */
struct number {
	uint64_t whole;
	uint64_t num;
	uint64_t den;
	bool more;              /* nonzero digits past FRAC_DIGITS */
	bool point;
	size_t int_digits;
	size_t frac_digits;
};

static bool digit(char c)
{
	return c >= '0' && c <= '9';
}

/* The number at the start of the @len bytes at @s: bytes read, or -1 when
 * its whole part overflows. */
static long parse_number(const char *s, size_t len, struct number *n)
{
	size_t i = 0;

	*n = (struct number){ .den = 1 };
	for (; i < len && digit(s[i]); i++, n->int_digits++)
		if (__builtin_mul_overflow(n->whole, 10, &n->whole) ||
		    __builtin_add_overflow(n->whole, (uint64_t)(s[i] - '0'), &n->whole))
			return -1;
	if (i == len || s[i] != '.')
		return (long)i;
	n->point = true;
	for (i++; i < len && digit(s[i]); i++, n->frac_digits++) {
		if (n->frac_digits >= FRAC_DIGITS) {
			n->more |= s[i] != '0';
			continue;
		}
		n->num = n->num * 10 + (uint64_t)(s[i] - '0');
		n->den *= 10;
	}
	return (long)i;
}

int vrl_parse_duration_n(const char *s, size_t len, unsigned flags, uint64_t *ns)
{
	struct number n;
	uint64_t unit = VRL_NS_PER_S, total;
	long end;
	u128 part;

	if (!s || !ns)
		return -1;
	end = parse_number(s, len, &n);
	if (end < 0 || (n.point && n.frac_digits == 0))
		return -1;                         /* overflow, or "1." */
	if (n.int_digits + n.frac_digits == 0) {
		if (!(flags & VRL_DUR_IMPLICIT) || n.point)
			return -1;
		n.whole = 1;                       /* "min": one minute */
	}
	if ((flags & VRL_DUR_BARE) && (n.int_digits == 0 || (size_t)end < len))
		return -1;
	if ((size_t)end < len) {
		if (unit_ns(s + end, len - (size_t)end, &unit) != 0)
			return -1;
	} else if (flags & VRL_DUR_UNIT) {
		return -1;
	}
	/* the fraction, rounded up: never shorter than written */
	part = (u128)n.num * unit;
	part = part / n.den + (part % n.den != 0 || n.more);
	if (__builtin_mul_overflow(n.whole, unit, &total) || part > UINT64_MAX - total)
		return -1;
	*ns = total + (uint64_t)part;
	return 0;
}

int vrl_parse_count(const char *s, const char **end, uint64_t *v)
{
	struct number n;
	long len;

	if (!s || !v)
		return -1;
	len = parse_number(s, strlen(s), &n);
	if (len <= 0 || n.int_digits == 0 || n.point)
		return -1;
	if (end)
		*end = s + len;
	else if (s[len] != '\0')
		return -1;
	*v = n.whole;
	return 0;
}

int vrl_parse_duration(const char *s, uint64_t *ns)
{
	if (!s || !*s)
		return -1;
	return vrl_parse_duration_n(s, strlen(s), 0, ns);
}

int vrl_parse_rate(const char *s, uint64_t *count, uint64_t *period_ns)
{
	struct number n;
	uint64_t per;
	long end;

	if (!s || !count || !period_ns)
		return -1;
	end = parse_number(s, strlen(s), &n);
	if (end <= 0 || n.point || s[end] != '/')
		return -1;
	if (vrl_parse_duration_n(s + end + 1, strlen(s + end + 1), VRL_DUR_UNIT | VRL_DUR_IMPLICIT,
				 &per) != 0)
		return -1;
	if (n.whole == 0 || per == 0)
		return -1;
	*count = n.whole;
	*period_ns = per;
	return 0;
}
