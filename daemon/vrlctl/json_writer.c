/*
 * json_writer.c - vrlctl's --json output over json-c. See json_writer.h.
 */
#include "json_writer.h"

#include <errno.h>
#include <iconv.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* json-c names its boolean type json_bool, as this writer names a call */
#define json_bool json_c_bool
#include <json-c/json.h>
#undef json_bool

#define PRINT_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

void json_init(struct json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
}

/*
 * @s as well-formed UTF-8: each byte iconv(3) refuses (malformed, overlong,
 * a surrogate, cut short) becomes U+FFFD. Returns a string to free, or
 * NULL when out of memory.
 */
static char *utf8_clean(const char *s)
{
	size_t inleft = strlen(s), outleft = 3 * inleft + 1;
	char *out = malloc(outleft), *in = (char *)s, *o = out;
	iconv_t cd = iconv_open("UTF-8", "UTF-8");

	if (!out || cd == (iconv_t)-1) {
		free(out);
		return cd == (iconv_t)-1 ? strdup(s) : NULL;
	}
	while (iconv(cd, &in, &inleft, &o, &outleft) == (size_t)-1) {
		if (errno != EILSEQ && errno != EINVAL)
			break;
		memcpy(o, "\xef\xbf\xbd", 3);   /* U+FFFD, in the room of one byte */
		o += 3;
		outleft -= 3;
		in++;
		inleft--;
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	*o = '\0';
	iconv_close(cd);
	return out;
}

static json_object *new_string(const char *s)
{
	char *clean = utf8_clean(s);
	json_object *o = json_object_new_string(clean ? clean : "");

	free(clean);
	return o;
}

void json_escape(FILE *f, const char *s)
{
	json_object *o = new_string(s);

	fputs(json_object_to_json_string_ext(o, PRINT_FLAGS), f);
	json_object_put(o);
}

/* Place @v: under @key in the open object, at the end of the open array,
 * or as the top-level value. */
static void add(struct json *j, const char *key, json_object *v)
{
	json_object *in = j->depth ? j->open[j->depth - 1] : NULL;
	char *k;

	if (!in) {
		json_object_put(j->root);
		j->root = v;
	} else if (json_object_is_type(in, json_type_array)) {
		json_object_array_add(in, v);
	} else {
		k = utf8_clean(key ? key : "");
		json_object_object_add(in, k ? k : "", v);
		free(k);
	}
}

static void open_level(struct json *j, const char *key, json_object *c)
{
	add(j, key, c);
	if (j->depth < JSON_DEPTH_MAX)
		j->open[j->depth++] = c;
}

static void close_level(struct json *j)
{
	if (j->depth > 0)
		j->depth--;
}

void json_obj_begin(struct json *j, const char *key) { open_level(j, key, json_object_new_object()); }
void json_obj_end(struct json *j) { close_level(j); }
void json_arr_begin(struct json *j, const char *key) { open_level(j, key, json_object_new_array()); }
void json_arr_end(struct json *j) { close_level(j); }

void json_str(struct json *j, const char *key, const char *v)
{
	add(j, key, v ? new_string(v) : NULL);
}

void json_u64(struct json *j, const char *key, uint64_t v)
{
	add(j, key, json_object_new_uint64(v));
}

void json_i64(struct json *j, const char *key, int64_t v)
{
	add(j, key, json_object_new_int64(v));
}

void json_bool(struct json *j, const char *key, bool v)
{
	add(j, key, json_object_new_boolean(v));
}

void json_null(struct json *j, const char *key)
{
	add(j, key, NULL);
}

/* A number json-c prints as @text, exactly. */
static void add_number_text(struct json *j, const char *key, double v, const char *text)
{
	add(j, key, json_object_new_double_s(v, text));
}

void json_secs(struct json *j, const char *key, uint64_t ns)
{
	char text[32];

	snprintf(text, sizeof(text), "%" PRIu64 ".%09" PRIu64, ns / 1000000000u,
		 ns % 1000000000u);
	add_number_text(j, key, (double)ns / 1e9, text);
}

void json_pct10(struct json *j, const char *key, uint64_t tenths)
{
	char text[32];

	snprintf(text, sizeof(text), "%" PRIu64 ".%" PRIu64, tenths / 10, tenths % 10);
	add_number_text(j, key, (double)tenths / 10, text);
}

void json_fixed(struct json *j, const char *key, double v, int decimals)
{
	char text[48];

	snprintf(text, sizeof(text), "%.*f", decimals, v);
	add_number_text(j, key, v, text);
}

void json_finish(struct json *j)
{
	fputs(j->root ? json_object_to_json_string_ext(j->root, PRINT_FLAGS) : "null", j->f);
	fputc('\n', j->f);
	fflush(j->f);
	json_object_put(j->root);
	j->root = NULL;
	j->depth = 0;
}
