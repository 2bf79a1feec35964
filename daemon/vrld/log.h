/*
 * log.h - vrld's structured log: one event is a level, a message and
 * typed fields, never a preformatted line, so that no value can forge or
 * break a field whatever bytes it holds (a limit name, a path, an error
 * from a config file).
 *
 *   vrld_log("warn", "alert", LOG_S("limit", name), LOG_U("used", used), LOG_END);
 *
 * Written as logfmt on stderr (ts=... level=... msg="..." key=value ...:
 * strings always quoted, with \" \\ \n \r \t and \u00XX escapes; numbers
 * bare), or, when stderr is the systemd journal's stream (JOURNAL_STREAM
 * names it) and vrld was built with libsystemd, as a journal entry:
 * MESSAGE, PRIORITY, SYSLOG_IDENTIFIER=vrld and one field per key,
 * upper-cased (limit= becomes LIMIT=), so journalctl -o json and
 * `journalctl LIMIT=carsxe.month` see them as data.
 */
#ifndef VRLD_LOG_H
#define VRLD_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum vrld_field_type { VRLD_F_END, VRLD_F_STR, VRLD_F_INT, VRLD_F_UINT };

/* One field of an event; pass by value, through the macros below. */
struct vrld_field {
	const char *key;            /* lower case letters, digits and '_' */
	enum vrld_field_type type;
	const char *s;              /* VRLD_F_STR; NULL is written as "" */
	long long i;                /* VRLD_F_INT */
	unsigned long long u;       /* VRLD_F_UINT */
};

#define LOG_S(k, v) ((struct vrld_field){ (k), VRLD_F_STR, (v), 0, 0 })
#define LOG_I(k, v) ((struct vrld_field){ (k), VRLD_F_INT, NULL, (long long)(v), 0 })
#define LOG_U(k, v) ((struct vrld_field){ (k), VRLD_F_UINT, NULL, 0, (unsigned long long)(v) })
#define LOG_END     ((struct vrld_field){ NULL, VRLD_F_END, NULL, 0, 0 })

#define VRLD_LOG_FIELDS_MAX 16u   /* fields of one event; more are dropped */

/*
 * Log one event: @level is "error", "warn", "info" or "debug"; then
 * struct vrld_field values ending with LOG_END. Thread-safe (one write per
 * line); async-signal-unsafe.
 */
void vrld_log(const char *level, const char *msg, ...);

/*
 * The logfmt line of an event, newline included, into @buf (cut short, and
 * still ended by a newline, when it does not fit). @ts_ms: wall-clock
 * milliseconds. Returns the bytes written. For tests and the stderr sink.
 */
size_t vrld_logfmt(char *buf, size_t len, uint64_t ts_ms, const char *level, const char *msg,
		   const struct vrld_field *f, size_t n);

/* The journal's name of a field: "limit" -> "LIMIT". @buf: 64 bytes. */
const char *vrld_journal_key(char *buf, size_t len, const char *key);

#endif /* VRLD_LOG_H */
