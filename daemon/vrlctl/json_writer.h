/*
 * json_writer.h - vrlctl's --json output, built with json-c.
 *
 * The calls build a json-c object tree in the order the values are given
 * (objects and arrays nest); json_finish() prints it, compact, on one line.
 * json-c does the escaping; every string goes through iconv(3) first, so
 * malformed UTF-8 (a key label is bytes a worker gave) is printed as
 * U+FFFD and the output is always valid JSON.
 *
 * Every value call takes a key: pass the member name inside an object, or
 * NULL inside an array and at the top level.
 */
#ifndef VRLCTL_JSON_H
#define VRLCTL_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_DEPTH_MAX 16   /* nesting levels the writer tracks */

struct json_object;

struct json {
	FILE *f;
	unsigned depth;                          /* open containers */
	struct json_object *root;                /* the top-level value */
	struct json_object *open[JSON_DEPTH_MAX]; /* the open containers, outermost first */
};

void json_init(struct json *j, FILE *f);

/* Write @s as a JSON string literal, quotes included. */
void json_escape(FILE *f, const char *s);

void json_obj_begin(struct json *j, const char *key);
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j, const char *key);
void json_arr_end(struct json *j);

void json_str(struct json *j, const char *key, const char *v);  /* NULL: null */
void json_u64(struct json *j, const char *key, uint64_t v);
void json_i64(struct json *j, const char *key, int64_t v);
void json_bool(struct json *j, const char *key, bool v);
void json_null(struct json *j, const char *key);

/* Nanoseconds as seconds with nine decimals, exactly (no float rounding). */
void json_secs(struct json *j, const char *key, uint64_t ns);

/* A percentage with one decimal, given in tenths of a percent. */
void json_pct10(struct json *j, const char *key, uint64_t tenths);

/* A number printed with @decimals decimals (a rate: 12.50). */
void json_fixed(struct json *j, const char *key, double v, int decimals);

/* Print the value with a newline, flush, and free the tree. */
void json_finish(struct json *j);

#endif /* VRLCTL_JSON_H */
