/*
 * fmt.h - text helpers of vrlctl: durations in and out, rates,
 * field names, and aligned tables for the human output.
 */
#ifndef VRLCTL_FMT_H
#define VRLCTL_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "segment.h"

#define FMT_CELL_MAX 128    /* bytes of one table cell, NUL included */
#define FMT_COLS_MAX 12     /* columns of one table */

/*
 * Parse a duration into nanoseconds, exactly in integer arithmetic: "30s",
 * "1.5min", "250ms", "0.40235" (a bare number is seconds). Units: ns, us,
 * ms, s, min (or m), h, d. A fraction finer than a nanosecond rounds up,
 * so a Retry-After is never shortened. Returns 0, or -1 for a malformed
 * or out-of-range text.
 */
int fmt_parse_duration(const char *s, uint64_t *ns);

/* Parse a whole decimal number. Returns 0 or -1. */
int fmt_parse_u64(const char *s, uint64_t *v);

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
