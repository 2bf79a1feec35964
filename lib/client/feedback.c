/*
 * feedback.c - parse Retry-After, x-ratelimit-* and error bodies.
 *
 * Everything here reads bytes an upstream (or a proxy in front of it) sent,
 * so nothing is trusted: lengths are explicit (a body need not end in NUL),
 * arithmetic saturates instead of wrapping, and a value that does not parse
 * is skipped with a static reason. No allocation outlives a call and there
 * is no global state: dates are read by the small grammar below, in ASCII,
 * so a program's setlocale() cannot change how day and month names parse.
 */
#include "feedback.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#include "clock.h"
#include "duration.h"

#define NS_PER_S   VRL_NS_PER_S

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

/* "30", "0.40235": seconds, fraction rounded up to the ns (duration.h). */
static int parse_seconds(const char *s, size_t len, uint64_t *delay_ns)
{
	uint64_t ns;

	if (vrl_parse_duration_n(s, len, VRL_DUR_BARE, &ns) != 0 ||
	    ns > (uint64_t)VRL_RETRY_AFTER_MAX_S * NS_PER_S)
		return -EINVAL;  /* malformed, or absurd: garbage, not a wait */
	*delay_ns = ns;
	return 0;
}

/* ---- HTTP-dates ------------------------------------------------------------
 *
 * RFC 9110 (5.6.7) makes a recipient accept three forms, and servers and
 * the proxies in front of them send variants of them that the
 * mainstream clients take (Python's email.utils, curl, Go's ParseTime as
 * AWS's SDK relaxes it):
 *
 *   IMF-fixdate  Sun, 06 Nov 1994 08:49:37 GMT
 *   RFC 850      Sunday, 06-Nov-94 08:49:37 GMT
 *   asctime      Sun Nov  6 08:49:37 1994
 *
 *   date     = [weekday [","]] day ("-" | SP) month ("-" | SP) year SP time SP zone
 *            | [weekday] month SP day SP time SP year [SP zone]       (asctime)
 *   weekday  = "Sun" .. "Sat" | "Sunday" .. "Saturday"   (any case; not checked
 *              against the date, as no client does)
 *   month    = "Jan" .. "Dec"                            (any case)
 *   day      = 1*2DIGIT         year = 2DIGIT | 4DIGIT
 *   time     = 1*2DIGIT ":" 2DIGIT [":" 2DIGIT]          (second 60: a leap second)
 *   zone     = "GMT" | "UTC" | "UT" | "Z" | ("+" | "-") 4DIGIT
 *            | "EST" | "EDT" | "CST" | "CDT" | "MST" | "MDT" | "PST" | "PDT"
 *   SP       = 1*(space | tab); none needed after the weekday's comma
 *
 * A two-digit year is the one within 50 years ahead of now, else a century
 * before (RFC 9110). Refused: a date that does not exist (31 Sep, 25:00), a
 * missing or other zone (clients disagree on it: urllib3 takes local time,
 * curl GMT), anything after the zone, a date before 1970. The calendar
 * arithmetic is timegm()'s; a date is checked by reading it back.
 */

struct cursor {
	const char *p, *end;
};

static size_t skip_ows(struct cursor *c)
{
	size_t n = 0;

	while (c->p < c->end && is_ows(*c->p)) {
		c->p++;
		n++;
	}
	return n;
}

static bool at_end(const struct cursor *c)
{
	return c->p == c->end;
}

static bool take_char(struct cursor *c, char ch)
{
	if (c->p == c->end || *c->p != ch)
		return false;
	c->p++;
	return true;
}

/* A run of letters, lowercased into @buf (@cap bytes, NUL included); 0 if none or too long. */
static size_t take_word(struct cursor *c, char *buf, size_t cap)
{
	size_t n = 0;

	while (c->p + n < c->end && isalpha((unsigned char)c->p[n])) {
		if (n + 1 >= cap)
			return 0;
		buf[n] = (char)tolower((unsigned char)c->p[n]);
		n++;
	}
	buf[n] = '\0';
	c->p += n;
	return n;
}

/* A run of digits whose length lies in [@min, @max]. */
static bool take_num(struct cursor *c, size_t min, size_t max, int *v)
{
	size_t n = 0;
	int x = 0;

	while (c->p + n < c->end && c->p[n] >= '0' && c->p[n] <= '9') {
		if (n == max)
			return false;
		x = x * 10 + (c->p[n] - '0');
		n++;
	}
	if (n < min)
		return false;
	c->p += n;
	*v = x;
	return true;
}

static int name_index(const char *w, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(w, names[i]))
			return i;
	return -1;
}

static int month_of(const char *w)
{
	static const char *const m[] = { "jan", "feb", "mar", "apr", "may", "jun",
					 "jul", "aug", "sep", "oct", "nov", "dec" };

	return name_index(w, m, 12);
}

static bool is_weekday(const char *w)
{
	static const char *const d[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat",
					 "sunday", "monday", "tuesday", "wednesday",
					 "thursday", "friday", "saturday" };

	return name_index(w, d, 14) >= 0;
}

struct zone_name {
	const char *name;
	int offset_min;     /* east of GMT */
};

/* GMT's names, and RFC 5322's North American zones (which clients apply). */
static const struct zone_name zone_names[] = {
	{ "gmt", 0 }, { "utc", 0 }, { "ut", 0 }, { "z", 0 },
	{ "est", -300 }, { "edt", -240 }, { "cst", -360 }, { "cdt", -300 },
	{ "mst", -420 }, { "mdt", -360 }, { "pst", -480 }, { "pdt", -420 },
};

/* A zone, as minutes east of GMT. */
static bool take_zone(struct cursor *c, int *offset_min)
{
	char w[4];
	int hhmm;

	if (c->p < c->end && (*c->p == '+' || *c->p == '-')) {
		int sign = *c->p == '-' ? -1 : 1;

		c->p++;
		if (!take_num(c, 4, 4, &hhmm) || hhmm / 100 > 23 || hhmm % 100 > 59)
			return false;
		*offset_min = sign * (hhmm / 100 * 60 + hhmm % 100);
		return true;
	}
	if (!take_word(c, w, sizeof(w)))
		return false;
	for (size_t i = 0; i < sizeof(zone_names) / sizeof(zone_names[0]); i++)
		if (!strcmp(w, zone_names[i].name)) {
			*offset_min = zone_names[i].offset_min;
			return true;
		}
	return false;
}

/* H:MM or H:MM:SS, range-checked (a second of 60 is a leap second). */
static bool take_time(struct cursor *c, struct tm *tm)
{
	tm->tm_sec = 0;
	if (!take_num(c, 1, 2, &tm->tm_hour) || !take_char(c, ':') ||
	    !take_num(c, 2, 2, &tm->tm_min))
		return false;
	if (take_char(c, ':') && !take_num(c, 2, 2, &tm->tm_sec))
		return false;
	return tm->tm_hour <= 23 && tm->tm_min <= 59 && tm->tm_sec <= 60;
}

/* "-" or white space between the parts of an IMF or RFC 850 date. */
static bool take_date_sep(struct cursor *c)
{
	return take_char(c, '-') || skip_ows(c) > 0;
}

/* day month year time zone: the IMF-fixdate and RFC 850 forms. */
static bool take_rfc_date(struct cursor *c, struct tm *tm, int *ydigits, int *zone)
{
	char w[4];
	const char *y0;

	if (!take_num(c, 1, 2, &tm->tm_mday) || !take_date_sep(c) ||
	    !take_word(c, w, sizeof(w)) || (tm->tm_mon = month_of(w)) < 0 ||
	    !take_date_sep(c))
		return false;
	y0 = c->p;
	if (!take_num(c, 2, 4, &tm->tm_year) || c->p - y0 == 3)
		return false;
	*ydigits = (int)(c->p - y0);
	return skip_ows(c) && take_time(c, tm) && skip_ows(c) && take_zone(c, zone);
}

/* month day time year [zone]: asctime, the month already read. */
static bool take_asctime(struct cursor *c, struct tm *tm, int *ydigits, int *zone)
{
	if (!skip_ows(c) || !take_num(c, 1, 2, &tm->tm_mday) || !skip_ows(c) ||
	    !take_time(c, tm) || !skip_ows(c) || !take_num(c, 4, 4, &tm->tm_year))
		return false;
	*ydigits = 4;
	*zone = 0;
	return !skip_ows(c) || at_end(c) || take_zone(c, zone);
}

/* Parse an HTTP-date into @tm (year in full, not less 1900), zone apart. */
static bool take_http_date(struct cursor *c, struct tm *tm, int *ydigits, int *zone)
{
	char w[10];
	int mon;

	memset(tm, 0, sizeof(*tm));
	if (c->p < c->end && isalpha((unsigned char)*c->p)) {
		if (!take_word(c, w, sizeof(w)))
			return false;
		if ((mon = month_of(w)) >= 0) {   /* asctime without its weekday */
			tm->tm_mon = mon;
			return take_asctime(c, tm, ydigits, zone);
		}
		if (!is_weekday(w))
			return false;
		if (take_char(c, ',')) {
			skip_ows(c);
			return take_rfc_date(c, tm, ydigits, zone);
		}
		if (!skip_ows(c))
			return false;
		if (c->p < c->end && isalpha((unsigned char)*c->p)) {
			if (!take_word(c, w, sizeof(w)) || (tm->tm_mon = month_of(w)) < 0)
				return false;
			return take_asctime(c, tm, ydigits, zone);
		}
	}
	return take_rfc_date(c, tm, ydigits, zone);
}

/* The year a two-digit @yy names: within 50 years ahead of @now_s (RFC 9110). */
static int full_year(int yy, uint64_t now_s)
{
	time_t t = (time_t)now_s;
	struct tm now;
	int y;

	if (!gmtime_r(&t, &now))
		return 1900 + yy;
	y = (now.tm_year + 1900) / 100 * 100 + yy;
	return y > now.tm_year + 1900 + 50 ? y - 100 : y;
}

/*
 * Seconds since 1970 of @tm (full year) less @zone_min, or -1 when that date
 * does not exist or lies before 1970: timegm() normalises 31 Sep to 1 Oct,
 * so the date is read back to see that it was one.
 */
static int64_t epoch_of(struct tm *tm, int zone_min)
{
	struct tm in, back;
	time_t t;
	int leap = tm->tm_sec == 60;

	if (tm->tm_year < 1970 || tm->tm_mday < 1)
		return -1;
	tm->tm_year -= 1900;
	tm->tm_sec -= leap;
	in = *tm;     /* timegm() normalises its argument in place */
	t = timegm(tm);
	if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_mday != in.tm_mday ||
	    back.tm_mon != in.tm_mon || back.tm_year != in.tm_year)
		return -1;
	t += leap - (time_t)zone_min * 60;
	return t < 0 ? -1 : (int64_t)t;
}

static int parse_date(const char *s, size_t len, uint64_t now_ns, uint64_t *delay_ns)
{
	struct cursor c = { s, s + len };
	struct tm tm;
	int ydigits = 0, zone = 0;
	int64_t t;
	uint64_t at;

	if (!take_http_date(&c, &tm, &ydigits, &zone) || !at_end(&c))
		return -EINVAL;
	if (ydigits == 2)
		tm.tm_year = full_year(tm.tm_year, now_ns / NS_PER_S);
	t = epoch_of(&tm, zone);
	if (t < 0 || (uint64_t)t > UINT64_MAX / NS_PER_S)
		return -EINVAL;
	at = (uint64_t)t * NS_PER_S;
	if (at <= now_ns) {
		*delay_ns = 0;   /* past: retry now */
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
	if (s[0] >= '0' && s[0] <= '9' && parse_seconds(s, len, delay_ns) == 0)
		return 0;
	if (isalnum((unsigned char)s[0]))
		return parse_date(s, len, now_realtime_ns, delay_ns);  /* "03 Oct 2026 ..." too */
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
