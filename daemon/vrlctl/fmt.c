/*
 * fmt.c - text helpers of vrlctl. See fmt.h.
 */
#include "fmt.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

#define NS_PER_S   VRL_NS_PER_S

char *fmt_secs(char *buf, size_t len, uint64_t ns)
{
	snprintf(buf, len, "%" PRIu64 ".%03" PRIu64 " s", ns / NS_PER_S,
		 ns % NS_PER_S / 1000000u);
	return buf;
}

char *fmt_rate(char *buf, size_t len, uint64_t count, uint64_t period_ns)
{
	static const struct { const char *name; uint64_t ns; } shown[] = {
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
