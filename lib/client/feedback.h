/*
 * feedback.h - parse what an upstream answered, for vrl_observe().
 *
 * Internal. The parser is pure: it reads a struct vrl_response and the
 * caller's wall-clock time, writes a struct vrl_parsed, and touches no
 * segment, so vrl_observe() is a thin layer that acts on its result and
 * the fuzz targets can drive it alone.
 *
 * What it understands, from the providers' published pages (seeds/):
 *   Retry-After             every provider; integer seconds, Samsara's
 *                           fractional seconds ("0.40235"), HTTP-date
 *   x-ratelimit-limit       ev.energy, on every response
 *   x-ratelimit-remaining
 *   {"usage": {...}}        CarsXE's 429 body: current, limit, remaining,
 *                           and "This request requires N units." in message
 *   {"type", "code"}        Smartcar's error body: which limit a 429 names
 *
 * Every malformed value is skipped and counted, never an error.
 */
#ifndef VRL_FEEDBACK_H
#define VRL_FEEDBACK_H

#include <stdint.h>

#include "vrl.h"

#define VRL_RETRY_AFTER_MAX_S  (400u * 86400u) /* longer than any period a provider
                                                  uses: a larger delay is garbage */
#define VRL_BODY_MAX           (64u * 1024u)   /* bytes of a body parsed as JSON */

/* vrl_parsed.found: which values were present and valid */
#define VRL_PARSED_RETRY_AFTER  0x01u   /* retry_after_ns */
#define VRL_PARSED_LIMIT        0x02u   /* server_limit (header) */
#define VRL_PARSED_REMAINING    0x04u   /* server_remaining (header) */
#define VRL_PARSED_USAGE        0x08u   /* usage_* (body; each may be absent) */
#define VRL_PARSED_REQUIRED     0x10u   /* required_units (body message) */
#define VRL_PARSED_HINT         0x20u   /* hint, hint_kind */
#define VRL_PARSED_TRIAL_OVER   0x40u   /* CarsXE: a one-time allowance is spent */
#define VRL_PARSED_OVERAGE_OFF  0x80u   /* CarsXE: overage billing is disabled */

/*
 * Which limit an error body names. Smartcar's 429s say it in type:code;
 * ev.energy's problem type says it is its rolling window.
 */
enum vrl_fb_hint {
	VRL_HINT_NONE = 0,
	VRL_HINT_APP,             /* RATE_LIMIT:SMARTCAR_API: the app-wide bucket */
	VRL_HINT_VEHICLE,         /* RATE_LIMIT:VEHICLE: the per-vehicle rate */
	VRL_HINT_UPSTREAM,        /* UPSTREAM:RATE_LIMIT: the OEM's limit, one vehicle */
	VRL_HINT_VEHICLE_QUOTA,   /* BILLING:VEHICLE_REQUEST_LIMIT: monthly per vehicle */
	VRL_HINT_VEHICLE_COUNT,   /* BILLING:VEHICLE_LIMIT: connected vehicles */
	VRL_HINT_QUOTA,           /* CarsXE usage body: a per-API unit quota */
	VRL_HINT_WINDOW,          /* ev.energy rate-limit-exceeded problem */
};

#define VRL_ABSENT UINT64_MAX     /* a figure the response did not carry */

struct vrl_parsed {
	uint32_t found;            /* VRL_PARSED_* */
	uint32_t nignored;         /* values skipped as malformed */
	const char *ignored;       /* static text: why the first one was, or NULL */
	uint64_t retry_after_ns;   /* delay from now */
	uint64_t server_limit;     /* x-ratelimit-limit, VRL_ABSENT when absent */
	uint64_t server_remaining; /* x-ratelimit-remaining */
	uint64_t usage_current;    /* CarsXE usage.current */
	uint64_t usage_limit;      /* usage.limit */
	uint64_t usage_remaining;  /* usage.remaining */
	uint64_t required_units;   /* "This request requires N units." */
	uint32_t hint;             /* enum vrl_fb_hint */
	uint32_t hint_kind;        /* enum vrl_limit_kind of the hint; 0 if none */
};

/*
 * Parse @r: its headers (names without case) and, when it opens with '{',
 * its body as JSON (at most VRL_BODY_MAX bytes). @now_realtime_ns
 * (CLOCK_REALTIME) turns an HTTP-date Retry-After into a delay. Fills
 * every field of @out. When a header repeats, the first valid one wins.
 *
 * Returns 0, or -EINVAL if @r or @out is NULL. Malformed values are not
 * errors: they are counted in out->nignored.
 */
int vrl_parse_response(const struct vrl_response *r, uint64_t now_realtime_ns,
		       struct vrl_parsed *out);

/* A static name of @hint for logs ("app", "vehicle", ...). */
const char *vrl_fb_hint_name(uint32_t hint);

#endif /* VRL_FEEDBACK_H */
