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
#define FMT_COLS_MAX 12     /* columns of one table */

/* "1.234 s": seconds with three decimals, rounded down. */
char *fmt_secs(char *buf, size_t len, uint64_t ns);

/* A rate as written: "150/s", "2/min", "1/30s", "10/250ms", "7/3ns". */
char *fmt_rate(char *buf, size_t len, uint64_t count, uint64_t period_ns);

/* Bytes as "1.5 MiB". */
char *fmt_bytes(char *buf, size_t len, uint64_t bytes);

/* Copy @s, replacing control characters (terminal escapes) with '?'. */
char *fmt_printable(char *buf, size_t len, const char *s);

/* The name of a request field ("token"), or the attribute's name. */
const char *fmt_field(const struct vrl_seg_fieldref *f);

/* A table of text cells, printed with aligned columns. */
struct fmt_table {
	unsigned ncols;
	const char *align;          /* one 'l' or 'r' per column */
	size_t nrows, cap;
	char (*cells)[FMT_COLS_MAX][FMT_CELL_MAX]; /* row 0: the headings */
};

/* @headings: @ncols strings. Returns 0 or -1 (no memory). */
int fmt_table_init(struct fmt_table *t, unsigned ncols, const char *align,
		   const char *const *headings);

/* Add a row of ncols cells (printf-free: already formatted). */
int fmt_table_row(struct fmt_table *t, const char *const *cells);

void fmt_table_print(const struct fmt_table *t, FILE *f);
void fmt_table_free(struct fmt_table *t);

#endif /* VRLCTL_FMT_H */
