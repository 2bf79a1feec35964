/*
 * fmt.c - text helpers of vrlctl. See fmt.h.
 */
#include "fmt.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S   UINT64_C(1000000000)
#define FRAC_MAX   18u      /* fraction digits kept exactly; more only round up */

__extension__ typedef unsigned __int128 u128;

struct unit {
	const char *name;
	uint64_t ns;
};

static const struct unit units[] = {
	{ "ns", 1 },
	{ "us", 1000 },
	{ "ms", 1000000 },
	{ "s", NS_PER_S },
	{ "sec", NS_PER_S },
	{ "m", 60 * NS_PER_S },
	{ "min", 60 * NS_PER_S },
	{ "h", 3600 * NS_PER_S },
	{ "d", 86400 * NS_PER_S },
};

static int unit_ns(const char *s, uint64_t *ns)
{
	if (*s == '\0') {
		*ns = NS_PER_S;
		return 0;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s, units[i].name) == 0) {
			*ns = units[i].ns;
			return 0;
		}
	}
	return -1;
}

/* The number part of a duration: integer, fraction numerator and scale. */
struct decimal {
	uint64_t ip;
	uint64_t frac;
	uint64_t scale;          /* 10^digits kept in frac */
	int more;                /* nonzero digits past FRAC_MAX */
	int digits;              /* digits seen in total */
};

static const char *parse_decimal(const char *s, struct decimal *d)
{
	memset(d, 0, sizeof(*d));
	d->scale = 1;
	for (; isdigit((unsigned char)*s); s++, d->digits++)
		if (__builtin_mul_overflow(d->ip, 10, &d->ip) ||
		    __builtin_add_overflow(d->ip, (uint64_t)(*s - '0'), &d->ip))
			return NULL;
	if (*s != '.')
		return s;
	for (s++; isdigit((unsigned char)*s); s++, d->digits++) {
		if (d->scale < UINT64_C(1000000000000000000)) {
			d->frac = d->frac * 10 + (uint64_t)(*s - '0');
			d->scale *= 10;
		} else if (*s != '0') {
			d->more = 1;
		}
	}
	return s;
}

int fmt_parse_duration(const char *s, uint64_t *ns)
{
	struct decimal d;
	uint64_t unit, whole;
	u128 part;
	const char *end;

	if (!s)
		return -1;
	end = parse_decimal(s, &d);
	if (!end || d.digits == 0 || unit_ns(end, &unit) != 0)
		return -1;
	if (__builtin_mul_overflow(d.ip, unit, &whole))
		return -1;
	part = (u128)d.frac * unit;
	/* ceiling: a sub-nanosecond remainder (or digits past FRAC_MAX) rounds up */
	part = part / d.scale + (part % d.scale != 0 || d.more);
	if (part > UINT64_MAX - whole)
		return -1;
	*ns = whole + (uint64_t)part;
	return 0;
}

int fmt_parse_u64(const char *s, uint64_t *v)
{
	struct decimal d;
	const char *end;

	if (!s)
		return -1;
	end = parse_decimal(s, &d);
	if (!end || *end != '\0' || d.digits == 0 || strchr(s, '.'))
		return -1;
	*v = d.ip;
	return 0;
}

char *fmt_secs(char *buf, size_t len, uint64_t ns)
{
	snprintf(buf, len, "%" PRIu64 ".%03" PRIu64 " s", ns / NS_PER_S,
		 ns % NS_PER_S / 1000000u);
	return buf;
}

char *fmt_rate(char *buf, size_t len, uint64_t count, uint64_t period_ns)
{
	static const struct unit shown[] = {
		{ "h", 3600 * NS_PER_S }, { "min", 60 * NS_PER_S }, { "s", NS_PER_S },
		{ "ms", 1000000 }, { "ns", 1 },
	};

	for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
		uint64_t n = period_ns / shown[i].ns;

		if (period_ns == 0 || period_ns % shown[i].ns != 0)
			continue;
		if (n == 1)
			snprintf(buf, len, "%" PRIu64 "/%s", count, shown[i].name);
		else
			snprintf(buf, len, "%" PRIu64 "/%" PRIu64 "%s", count, n, shown[i].name);
		return buf;
	}
	snprintf(buf, len, "%" PRIu64 "/0ns", count);
	return buf;
}

char *fmt_bytes(char *buf, size_t len, uint64_t bytes)
{
	static const char *const suffix[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned i = 0;
	uint64_t scaled = bytes * 10;   /* tenths; segments stay far below 2^60 */

	while (scaled >= 10240 && i + 1 < sizeof(suffix) / sizeof(suffix[0])) {
		scaled /= 1024;
		i++;
	}
	snprintf(buf, len, "%" PRIu64 ".%" PRIu64 " %s", scaled / 10, scaled % 10, suffix[i]);
	return buf;
}

char *fmt_printable(char *buf, size_t len, const char *s)
{
	size_t i = 0;

	for (; s[i] && i + 1 < len; i++)
		buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	buf[i] = '\0';
	return buf;
}

const char *fmt_field(const struct vrl_seg_fieldref *f)
{
	static const char *const names[] = {
		[VRL_FIELD_API] = "api", [VRL_FIELD_ENDPOINT] = "endpoint",
		[VRL_FIELD_TOKEN] = "token", [VRL_FIELD_ORG] = "org",
		[VRL_FIELD_VEHICLE] = "vehicle", [VRL_FIELD_USER] = "user",
	};

	if (f->field == VRL_FIELD_ATTR)
		return f->attr;
	if (f->field >= VRL_FIELD_ATTR)
		return "?";
	return names[f->field];
}

/* ---- tables ---------------------------------------------------------------- */

int fmt_table_init(struct fmt_table *t, unsigned ncols, const char *align,
		   const char *const *headings)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols < FMT_COLS_MAX ? ncols : FMT_COLS_MAX;
	t->align = align;
	return fmt_table_row(t, headings);
}

int fmt_table_row(struct fmt_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		void *p = realloc(t->cells, cap * sizeof(*t->cells));

		if (!p)
			return -1;
		t->cells = p;
		t->cap = cap;
	}
	for (unsigned c = 0; c < t->ncols; c++)
		fmt_printable(t->cells[t->nrows][c], FMT_CELL_MAX, cells[c] ? cells[c] : "");
	t->nrows++;
	return 0;
}

/* Display width of a cell: UTF-8 continuation bytes take no column. */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

void fmt_table_print(const struct fmt_table *t, FILE *f)
{
	size_t w[FMT_COLS_MAX] = { 0 };

	for (size_t r = 0; r < t->nrows; r++)
		for (unsigned c = 0; c < t->ncols; c++)
			if (width(t->cells[r][c]) > w[c])
				w[c] = width(t->cells[r][c]);
	for (size_t r = 0; r < t->nrows; r++) {
		for (unsigned c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r][c];
			int pad = (int)(w[c] - width(s));
			int right = t->align && t->align[c] == 'r';

			if (c > 0)
				fputs("  ", f);
			if (right)
				fprintf(f, "%*s%s", pad, "", s);
			else if (c + 1 < t->ncols)
				fprintf(f, "%s%*s", s, pad, "");
			else
				fputs(s, f);
		}
		fputc('\n', f);
	}
}

void fmt_table_free(struct fmt_table *t)
{
	free(t->cells);
	t->cells = NULL;
	t->nrows = t->cap = 0;
}
