/*
 * json_writer.h - a small streaming JSON writer for vrlctl's --json output.
 *
 * Values are written as they are given: objects and arrays nest, commas
 * are placed by the writer, and every string goes through one escaper that
 * emits valid JSON for any input bytes (control characters escaped,
 * malformed UTF-8 replaced by U+FFFD).
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

struct json {
	FILE *f;
	unsigned depth;
	bool first[JSON_DEPTH_MAX];  /* no member written yet at this level */
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

/* End the top-level value with a newline and flush. */
void json_finish(struct json *j);

#endif /* VRLCTL_JSON_H */
