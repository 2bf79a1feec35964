/*
 * fmt.h - text helpers of vrlctl: durations and rates shown, field names,
 * and aligned tables for the human output. Durations and counts are read
 * by the shared parser (duration.h).
 */
#ifndef VRLCTL_FMT_H
#define VRLCTL_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "duration.h"
#include "segment.h"

#define FMT_CELL_MAX 128    /* bytes of one table cell, NUL included */
#define FMT_NOTE_MAX 256    /* bytes of a row's note line, NUL included */
#define FMT_COLS_MAX 12     /* columns of one table */
#define FMT_WIDTH    100    /* columns a table fits when stdout is not a terminal */

/* "1.234 s": seconds with three decimals, rounded down (exact figures). */
char *fmt_secs(char *buf, size_t len, uint64_t ns);

/*
 * A duration as a person reads it, two units at most, rounded down:
 * "250ms", "12.3s", "4m05s", "14h12m", "3d04h".
 */
char *fmt_dur(char *buf, size_t len, uint64_t ns);

/*
 * A quota's period by the date it starts (UTC): "2026-11" for a month
 * from day 1, "2026-11-20.." for one from another anchor day, "week of
 * 2026-11-23", "2026-11-26" for a day, "once" (enum vrl_calendar).
 */
char *fmt_period(char *buf, size_t len, uint32_t calendar, uint32_t anchor, uint64_t start_ns);

/* A rate as written: "150/s", "2/min", "1/30s", "10/250ms", "7/3ns". */
char *fmt_rate(char *buf, size_t len, uint64_t count, uint64_t period_ns);

/* Bytes as "1.5 MiB". */
char *fmt_bytes(char *buf, size_t len, uint64_t bytes);

/* Copy @s, replacing control characters (terminal escapes) with '?'. */
char *fmt_printable(char *buf, size_t len, const char *s);

/* The name of a request field ("token"), or the attribute's name. */
const char *fmt_field(const struct vrl_seg_fieldref *f);

/* One row of a table: its cells, and a note printed on a line below it. */
struct fmt_row {
	char cells[FMT_COLS_MAX][FMT_CELL_MAX];
	char note[FMT_NOTE_MAX];
};

/*
 * A table of text cells, printed with aligned columns within a width (the
 * terminal's, else FMT_WIDTH): when the widest rows do not fit, the cells
 * of the columns marked 'w' wrap onto lines of their own, at a space or a
 * punctuation mark where there is one; notes wrap, indented.
 */
struct fmt_table {
	unsigned ncols;
	const char *align;          /* per column: 'l' left, 'r' right, 'w' left and wraps */
	size_t nrows, cap;
	struct fmt_row *rows;       /* row 0: the headings */
	unsigned width;             /* 0: the terminal's, else FMT_WIDTH */
};

/* @headings: @ncols strings. Returns 0 or -1 (no memory). */
int fmt_table_init(struct fmt_table *t, unsigned ncols, const char *align,
		   const char *const *headings);

/* Add a row of ncols cells (printf-free: already formatted). */
int fmt_table_row(struct fmt_table *t, const char *const *cells);

/* A note under the last row added (its details that would widen the table). */
void fmt_table_note(struct fmt_table *t, const char *note);

void fmt_table_print(const struct fmt_table *t, FILE *f);
void fmt_table_free(struct fmt_table *t);

#endif /* VRLCTL_FMT_H */
