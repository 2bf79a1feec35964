/*
 * feedback.c - parse Retry-After, x-ratelimit-* and error bodies.
 *
 * Everything here reads bytes an upstream (or a proxy in front of it) sent,
 * so nothing is trusted: lengths are explicit (a body need not end in NUL),
 * arithmetic saturates instead of wrapping, and a value that does not parse
 * is skipped with a static reason. No allocation outlives a call; the only
 * global state is the "C" locale made once for strptime_l, so a program's
 * setlocale() cannot change how day and month names parse.
 */
#include "feedback.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#define NS_PER_S   UINT64_C(1000000000)
#define DATE_MAX   64u              /* bytes of an HTTP-date we look at */

/* ---- small parsers ------------------------------------------------------- */

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Trim optional white space (RFC 9110 OWS) from both ends of [*s, *s+*len). */
static void trim(const char **s, size_t *len)
{
	while (*len && is_ows(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len && is_ows((*s)[*len - 1]))
		(*len)--;
}

/*
 * Decimal digits to a count, saturating at UINT64_MAX. Returns the number
 * of digits read (0: none).
 */
static size_t digits(const char *s, size_t len, uint64_t *v)
{
	size_t i = 0;
	uint64_t x = 0;

	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (x > (UINT64_MAX - d) / 10)
			x = UINT64_MAX;
		else
			x = x * 10 + d;
	}
	*v = x;
	return i;
}

/* "30", "0.40235": seconds, fraction rounded up to the ns. */
static int parse_seconds(const char *s, size_t len, uint64_t *delay_ns)
{
	uint64_t sec, frac = 0, ns;
	size_t n = digits(s, len, &sec), nf = 0;
	bool up = false;

	if (n == 0)
		return -EINVAL;
	if (n < len) {
		if (s[n] != '.' || n + 1 == len)
			return -EINVAL;  /* "1x", "1.": not a number */
		for (size_t i = n + 1; i < len; i++, nf++) {
			if (s[i] < '0' || s[i] > '9')
				return -EINVAL;
			if (nf < 9)
				frac = frac * 10 + (uint64_t)(s[i] - '0');
			else if (s[i] != '0')
				up = true;  /* a part of a ns is a whole ns more */
		}
		for (; nf < 9; nf++)
			frac *= 10;
	}
	if (sec > VRL_RETRY_AFTER_MAX_S)
		return -EINVAL;  /* saturated or absurd: garbage, not a wait */
	ns = sec * NS_PER_S + frac + (up ? 1 : 0);
	if (ns > (uint64_t)VRL_RETRY_AFTER_MAX_S * NS_PER_S)
		return -EINVAL;
	*delay_ns = ns;
	return 0;
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void make_c_locale(void)
{
	c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/*
 * The three forms RFC 9110 section 5.6.7 makes recipients accept:
 *   IMF-fixdate  Sun, 06 Nov 1994 08:49:37 GMT
 *   RFC 850      Sunday, 06-Nov-94 08:49:37 GMT
 *   asctime      Sun Nov  6 08:49:37 1994
 */
static const char *const date_formats[] = {
	"%a, %d %b %Y %H:%M:%S GMT",
	"%A, %d-%b-%y %H:%M:%S GMT",
	"%a %b %e %H:%M:%S %Y",
};

static int parse_date(const char *s, size_t len, uint64_t now_ns, uint64_t *delay_ns)
{
	char buf[DATE_MAX + 1];
	struct tm tm;
	time_t t = (time_t)-1;
	bool ok = false;
	uint64_t at;

	if (len > DATE_MAX || memchr(s, '\0', len))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	pthread_once(&c_locale_once, make_c_locale);
	if (c_locale == (locale_t)0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(date_formats) / sizeof(date_formats[0]) && !ok; i++) {
		const char *end;

		memset(&tm, 0, sizeof(tm));
		end = strptime_l(buf, date_formats[i], &tm, c_locale);
		ok = end && *end == '\0';
	}
	if (!ok)
		return -EINVAL;
	errno = 0;
	t = timegm(&tm);
	if (t == (time_t)-1 && errno)
		return -EINVAL;
	if (t <= 0) {
		*delay_ns = 0;  /* before 1970: long past */
		return 0;
	}
	if ((uint64_t)t > UINT64_MAX / NS_PER_S)
		return -EINVAL;
	at = (uint64_t)t * NS_PER_S;
	if (at <= now_ns) {
		*delay_ns = 0;
		return 0;
	}
	if (at - now_ns > (uint64_t)VRL_RETRY_AFTER_MAX_S * NS_PER_S)
		return -EINVAL;
	*delay_ns = at - now_ns;
	return 0;
}

int vrl_parse_retry_after(const char *s, size_t len, uint64_t now_realtime_ns,
			  uint64_t *delay_ns)
{
	if (!s || !delay_ns)
		return -EINVAL;
	trim(&s, &len);
	if (len == 0)
		return -EINVAL;
	if (s[0] >= '0' && s[0] <= '9')
		return parse_seconds(s, len, delay_ns);
	if (isalpha((unsigned char)s[0]))
		return parse_date(s, len, now_realtime_ns, delay_ns);
	return -EINVAL;  /* "-5", "+5", ".5", anything else */
}

/* ---- the response -------------------------------------------------------- */

static void skip(struct vrl_parsed *p, const char *why)
{
	p->nignored++;
	if (!p->ignored)
		p->ignored = why;
}

/* A header value that must be a plain non-negative integer. */
static int parse_count(const char *s, uint64_t *v)
{
	size_t len = strlen(s), n;

	trim(&s, &len);
	n = digits(s, len, v);
	if (n == 0 || n != len)
		return -EINVAL;
	if (*v == UINT64_MAX)
		return -ERANGE;
	return 0;
}

static void header_count(struct vrl_parsed *p, const char *value, uint32_t bit,
			 uint64_t *dst, const char *why)
{
	uint64_t v;

	if (p->found & bit)
		return;  /* the first valid one wins */
	if (parse_count(value, &v)) {
		skip(p, why);
		return;
	}
	*dst = v;
	p->found |= bit;
}

static void header_retry(struct vrl_parsed *p, const char *value, uint64_t now)
{
	uint64_t d;

	if (p->found & VRL_PARSED_RETRY_AFTER)
		return;
	if (vrl_parse_retry_after(value, strlen(value), now, &d)) {
		skip(p, "retry-after is not seconds or an HTTP-date");
		return;
	}
	p->retry_after_ns = d;
	p->found |= VRL_PARSED_RETRY_AFTER;
}

static void parse_header(struct vrl_parsed *p, const struct vrl_header *h, uint64_t now)
{
	if (!h->name)
		return;
	if (!h->value) {
		skip(p, "header without a value");
		return;
	}
	/* ev.energy's page spells it RetryAfter once; accept both. */
	if (!strcasecmp(h->name, "retry-after") || !strcasecmp(h->name, "retryafter"))
		header_retry(p, h->value, now);
	else if (!strcasecmp(h->name, "x-ratelimit-limit"))
		header_count(p, h->value, VRL_PARSED_LIMIT, &p->server_limit,
			     "x-ratelimit-limit is not a non-negative integer");
	else if (!strcasecmp(h->name, "x-ratelimit-remaining"))
		header_count(p, h->value, VRL_PARSED_REMAINING, &p->server_remaining,
			     "x-ratelimit-remaining is not a non-negative integer");
}

/* ---- the body ------------------------------------------------------------ */

/* A JSON member that must be a non-negative integer; absent is fine. */
static void usage_field(struct vrl_parsed *p, json_object *usage, const char *key,
			uint64_t *dst)
{
	json_object *o;

	if (!json_object_object_get_ex(usage, key, &o))
		return;
	if (!json_object_is_type(o, json_type_int) || json_object_get_int64(o) < 0) {
		skip(p, "usage figure is not a non-negative integer");
		return;
	}
	*dst = json_object_get_uint64(o);
	p->found |= VRL_PARSED_USAGE;
}

static void set_hint(struct vrl_parsed *p, uint32_t hint, uint32_t kind)
{
	if (p->found & VRL_PARSED_HINT)
		return;
	p->hint = hint;
	p->hint_kind = kind;
	p->found |= VRL_PARSED_HINT;
}

/* CarsXE's message: "... This request requires N units." and variants. */
static void carsxe_message(struct vrl_parsed *p, const char *msg)
{
	static const char needle[] = "This request requires ";
	const char *at = strstr(msg, needle);
	uint64_t n;

	if (strstr(msg, "Please upgrade your tier"))
		p->found |= VRL_PARSED_TRIAL_OVER;
	if (strstr(msg, "Enable overage billing"))
		p->found |= VRL_PARSED_OVERAGE_OFF;
	if (!at)
		return;
	at += sizeof(needle) - 1;
	size_t len = strlen(at), nd = digits(at, len, &n);

	if (nd == 0 || n == UINT64_MAX || strncmp(at + nd, " unit", 5) != 0) {
		skip(p, "message names a unit count that does not parse");
		return;
	}
	p->required_units = n;
	p->found |= VRL_PARSED_REQUIRED;
}

static void body_usage(struct vrl_parsed *p, json_object *root)
{
	json_object *usage, *msg;

	if (!json_object_object_get_ex(root, "usage", &usage))
		return;
	if (!json_object_is_type(usage, json_type_object)) {
		skip(p, "usage is not an object");
		return;
	}
	usage_field(p, usage, "current", &p->usage_current);
	usage_field(p, usage, "limit", &p->usage_limit);
	usage_field(p, usage, "remaining", &p->usage_remaining);
	if (json_object_object_get_ex(root, "message", &msg) &&
	    json_object_is_type(msg, json_type_string))
		carsxe_message(p, json_object_get_string(msg));
	if (p->found & VRL_PARSED_USAGE)
		set_hint(p, VRL_HINT_QUOTA, VRL_QUOTA);
}

struct code_hint {
	const char *type, *code;
	uint32_t hint, kind;
};

/* Smartcar's error type:code pairs that name a limit (seeds/000). */
static const struct code_hint smartcar_codes[] = {
	{ "RATE_LIMIT", "SMARTCAR_API", VRL_HINT_APP, VRL_RATE },
	{ "RATE_LIMIT", "VEHICLE", VRL_HINT_VEHICLE, VRL_RATE },
	{ "UPSTREAM", "RATE_LIMIT", VRL_HINT_UPSTREAM, VRL_RATE },
	{ "BILLING", "VEHICLE_REQUEST_LIMIT", VRL_HINT_VEHICLE_QUOTA, VRL_QUOTA },
	{ "BILLING", "VEHICLE_LIMIT", VRL_HINT_VEHICLE_COUNT, VRL_SLOTS },
};

static const char *member_string(struct vrl_parsed *p, json_object *root, const char *key)
{
	json_object *o;

	if (!json_object_object_get_ex(root, key, &o) || json_object_is_type(o, json_type_null))
		return NULL;
	if (!json_object_is_type(o, json_type_string)) {
		skip(p, "error type or code is not a string");
		return NULL;
	}
	return json_object_get_string(o);
}

static void body_type(struct vrl_parsed *p, json_object *root)
{
	const char *type = member_string(p, root, "type");
	const char *code = member_string(p, root, "code");

	if (!type)
		return;
	/* ev.energy: an RFC 7807 problem type URL */
	if (strstr(type, "/rate-limit-exceeded")) {
		set_hint(p, VRL_HINT_WINDOW, VRL_WINDOW);
		return;
	}
	if (!code)
		return;
	for (size_t i = 0; i < sizeof(smartcar_codes) / sizeof(smartcar_codes[0]); i++)
		if (!strcmp(type, smartcar_codes[i].type) && !strcmp(code, smartcar_codes[i].code))
			set_hint(p, smartcar_codes[i].hint, smartcar_codes[i].kind);
}

static bool looks_like_object(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && (is_ows(s[i]) || s[i] == '\r' || s[i] == '\n'))
		i++;
	return i < len && s[i] == '{';
}

/*
 * Error bodies only: a 2xx body is the caller's data, possibly large, and no
 * provider puts limit figures in one.
 */
static void parse_body(struct vrl_parsed *p, const struct vrl_response *r)
{
	json_tokener *tok;
	json_object *root;

	if (r->status < 400 || !r->body || !looks_like_object(r->body, r->body_len))
		return;
	if (r->body_len > VRL_BODY_MAX) {
		skip(p, "error body too long to parse");
		return;
	}
	tok = json_tokener_new_ex(16);  /* the shapes we read are two deep */
	if (!tok) {
		skip(p, "no memory to parse the body");
		return;
	}
	root = json_tokener_parse_ex(tok, r->body, (int)r->body_len);
	if (!root || !json_object_is_type(root, json_type_object)) {
		skip(p, "error body is not a JSON object");
	} else {
		body_usage(p, root);
		body_type(p, root);
	}
	json_object_put(root);
	json_tokener_free(tok);
}

int vrl_parse_response(const struct vrl_response *r, uint64_t now_realtime_ns,
		       struct vrl_parsed *out)
{
	if (!r || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->server_limit = VRL_ABSENT;
	out->server_remaining = VRL_ABSENT;
	out->usage_current = VRL_ABSENT;
	out->usage_limit = VRL_ABSENT;
	out->usage_remaining = VRL_ABSENT;
	out->required_units = VRL_ABSENT;
	if (r->headers)
		for (size_t i = 0; i < r->nheaders; i++)
			parse_header(out, &r->headers[i], now_realtime_ns);
	parse_body(out, r);
	return 0;
}

const char *vrl_fb_hint_name(uint32_t hint)
{
	static const char *const names[] = {
		[VRL_HINT_NONE] = "none",
		[VRL_HINT_APP] = "app",
		[VRL_HINT_VEHICLE] = "vehicle",
		[VRL_HINT_UPSTREAM] = "upstream",
		[VRL_HINT_VEHICLE_QUOTA] = "vehicle-quota",
		[VRL_HINT_VEHICLE_COUNT] = "vehicle-count",
		[VRL_HINT_QUOTA] = "quota",
		[VRL_HINT_WINDOW] = "window",
	};

	return hint < sizeof(names) / sizeof(names[0]) ? names[hint] : "unknown";
}
