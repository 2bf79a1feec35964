/*
 * fmt.c - text helpers of vrlctl. See fmt.h.
 */
#include "fmt.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define NS_PER_S   VRL_NS_PER_S

char *fmt_secs(char *buf, size_t len, uint64_t ns)
{
	snprintf(buf, len, "%" PRIu64 ".%03" PRIu64 " s", ns / NS_PER_S,
		 ns % NS_PER_S / 1000000u);
	return buf;
}

char *fmt_dur(char *buf, size_t len, uint64_t ns)
{
	uint64_t s = ns / NS_PER_S;

	if (ns < NS_PER_S)
		snprintf(buf, len, "%" PRIu64 "ms", ns / 1000000u);
	else if (s < 60)
		snprintf(buf, len, "%" PRIu64 ".%" PRIu64 "s", s, ns % NS_PER_S / 100000000u);
	else if (s < 3600)
		snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s % 86400 / 3600);
	return buf;
}

char *fmt_period(char *buf, size_t len, uint32_t calendar, uint32_t anchor, uint64_t start_ns)
{
	time_t t = (time_t)(start_ns / NS_PER_S);
	struct tm tm;

	if (calendar == VRL_CAL_ONCE) {
		snprintf(buf, len, "once");
		return buf;
	}
	if (!gmtime_r(&t, &tm)) {
		snprintf(buf, len, "?");
		return buf;
	}
	if (calendar == VRL_CAL_MONTH)
		strftime(buf, len, anchor <= 1 ? "%Y-%m" : "%Y-%m-%d..", &tm);
	else if (calendar == VRL_CAL_WEEK)
		strftime(buf, len, "week of %Y-%m-%d", &tm);
	else
		strftime(buf, len, "%Y-%m-%d", &tm);
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

#define WRAP_MIN 12u   /* a wrapping column is not narrowed below this */

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
		void *p = realloc(t->rows, cap * sizeof(*t->rows));

		if (!p)
			return -1;
		t->rows = p;
		t->cap = cap;
	}
	for (unsigned c = 0; c < t->ncols; c++)
		fmt_printable(t->rows[t->nrows].cells[c], FMT_CELL_MAX, cells[c] ? cells[c] : "");
	t->rows[t->nrows].note[0] = '\0';
	t->nrows++;
	return 0;
}

void fmt_table_note(struct fmt_table *t, const char *note)
{
	if (t->nrows > 1)
		fmt_printable(t->rows[t->nrows - 1].note, FMT_NOTE_MAX, note);
}

/* Display width of a cell: UTF-8 continuation bytes take no column. */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

/* The columns @f shows: the terminal's width, else FMT_WIDTH. */
static unsigned out_width(const struct fmt_table *t, FILE *f)
{
	struct winsize ws;

	if (t->width)
		return t->width;
	if (isatty(fileno(f)) && ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col;
	return FMT_WIDTH;
}

/*
 * The first line of @s within @w columns: its length in bytes (*take) and
 * the bytes to skip after it (a space it broke at). Breaks after the last
 * space or punctuation that fits, else at @w columns.
 */
static void wrap_line(const char *s, size_t w, size_t *take, size_t *skip)
{
	size_t cols = 0, i = 0, brk = 0;

	*skip = 0;
	for (; s[i]; i++) {
		if (((unsigned char)s[i] & 0xc0) == 0x80)
			continue;
		if (cols == w)
			break;
		cols++;
		if (s[i] == ' ')
			brk = i;
		else if (strchr(",./-_|~=", s[i]) && s[i + 1])
			brk = i + 1;
	}
	while (s[i] && ((unsigned char)s[i] & 0xc0) == 0x80)
		i++;
	if (!s[i] || brk == 0) {
		*take = i;
		return;
	}
	*take = brk;
	*skip = s[brk] == ' ';
}

/* Narrow the wrapping columns, widest first, until the table fits @limit. */
static void fit(const struct fmt_table *t, size_t *w, unsigned limit)
{
	for (;;) {
		size_t total = 2 * (t->ncols - 1), widest = 0;
		int pick = -1;

		for (unsigned c = 0; c < t->ncols; c++) {
			total += w[c];
			if (t->align && t->align[c] == 'w' && w[c] > WRAP_MIN &&
			    w[c] > width(t->rows[0].cells[c]) && w[c] > widest) {
				widest = w[c];
				pick = (int)c;
			}
		}
		if (total <= limit || pick < 0)
			return;
		w[pick] -= total - limit < w[pick] - WRAP_MIN ? total - limit : w[pick] - WRAP_MIN;
	}
}

static void print_cell(FILE *f, const char *s, size_t n, size_t w, bool right, bool last)
{
	char piece[FMT_CELL_MAX];
	int pad;

	memcpy(piece, s, n);
	piece[n] = '\0';
	pad = (int)(w > width(piece) ? w - width(piece) : 0);
	if (right)
		fprintf(f, "%*s%s", pad, "", piece);
	else if (!last)
		fprintf(f, "%s%*s", piece, pad, "");
	else
		fputs(piece, f);
}

/* One row, over as many lines as its wrapped cells need. */
static void print_row(const struct fmt_table *t, const struct fmt_row *r, const size_t *w,
		      FILE *f)
{
	const char *at[FMT_COLS_MAX];
	bool more = true;

	for (unsigned c = 0; c < t->ncols; c++)
		at[c] = r->cells[c];
	while (more) {
		more = false;
		for (unsigned c = 0; c < t->ncols; c++) {
			size_t take, skip;

			wrap_line(at[c], w[c], &take, &skip);
			if (c > 0)
				fputs("  ", f);
			print_cell(f, at[c], take, w[c], t->align && t->align[c] == 'r',
				   c + 1 == t->ncols);
			at[c] += take + skip;
			more |= at[c][0] != '\0';
		}
		fputc('\n', f);
	}
}

/* A row's note: indented by two, continued lines by four. */
static void print_note(const char *s, unsigned limit, FILE *f)
{
	unsigned indent = 2;

	while (*s) {
		size_t take, skip;

		wrap_line(s, limit > indent + 20 ? limit - indent : 20, &take, &skip);
		fprintf(f, "%*s%.*s\n", (int)indent, "", (int)take, s);
		s += take + skip;
		indent = 4;
	}
}

void fmt_table_print(const struct fmt_table *t, FILE *f)
{
	size_t w[FMT_COLS_MAX] = { 0 };
	unsigned limit = out_width(t, f);

	for (size_t r = 0; r < t->nrows; r++)
		for (unsigned c = 0; c < t->ncols; c++)
			if (width(t->rows[r].cells[c]) > w[c])
				w[c] = width(t->rows[r].cells[c]);
	fit(t, w, limit);
	for (size_t r = 0; r < t->nrows; r++) {
		print_row(t, &t->rows[r], w, f);
		if (t->rows[r].note[0])
			print_note(t->rows[r].note, limit, f);
	}
}

void fmt_table_free(struct fmt_table *t)
{
	free(t->rows);
	t->rows = NULL;
	t->nrows = t->cap = 0;
}
