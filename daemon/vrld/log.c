/*
 * log.c - vrld's structured log: logfmt on stderr, or journal fields under
 * systemd. See log.h.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#ifdef HAVE_SYSTEMD
#define SD_JOURNAL_SUPPRESS_LOCATION   /* CODE_FILE=log.c on every entry says nothing */
#include <systemd/sd-journal.h>
#endif

#define LINE_MAX_BYTES 4096u   /* one logfmt line, newline included */

/* Appends to a bounded buffer; what does not fit is dropped. */
struct sink {
	char *buf;
	size_t len, used;
};

static void put(struct sink *s, const char *p, size_t n)
{
	size_t room = s->len - s->used;

	if (n > room)
		n = room;
	memcpy(s->buf + s->used, p, n);
	s->used += n;
}

static void puts_(struct sink *s, const char *p)
{
	put(s, p, strlen(p));
}

/* @v quoted, escaped so that no byte of it can end the value or the line. */
static void put_quoted(struct sink *s, const char *v)
{
	static const char hex[] = "0123456789abcdef";

	put(s, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)(v ? v : ""); *p; p++) {
		char esc[6] = { '\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15] };

		switch (*p) {
		case '"':  puts_(s, "\\\""); continue;
		case '\\': puts_(s, "\\\\"); continue;
		case '\n': puts_(s, "\\n"); continue;
		case '\r': puts_(s, "\\r"); continue;
		case '\t': puts_(s, "\\t"); continue;
		}
		if (*p < 0x20 || *p == 0x7f)
			put(s, esc, sizeof(esc));
		else
			put(s, (const char *)p, 1);
	}
	put(s, "\"", 1);
}

static void put_value(struct sink *s, const struct vrld_field *f)
{
	char num[24];

	if (f->type == VRLD_F_STR) {
		put_quoted(s, f->s);
		return;
	}
	if (f->type == VRLD_F_INT)
		snprintf(num, sizeof(num), "%lld", f->i);
	else
		snprintf(num, sizeof(num), "%llu", f->u);
	puts_(s, num);
}

size_t vrld_logfmt(char *buf, size_t len, uint64_t ts_ms, const char *level, const char *msg,
		   const struct vrld_field *f, size_t n)
{
	struct sink s = { buf, len ? len - 1 : 0, 0 };   /* room for the newline */
	char ts[48];

	if (len == 0)
		return 0;
	snprintf(ts, sizeof(ts), "ts=%llu.%03llu level=", (unsigned long long)(ts_ms / 1000),
		 (unsigned long long)(ts_ms % 1000));
	puts_(&s, ts);
	puts_(&s, level);
	puts_(&s, " msg=");
	put_quoted(&s, msg);
	for (size_t i = 0; i < n; i++) {
		put(&s, " ", 1);
		puts_(&s, f[i].key);
		put(&s, "=", 1);
		put_value(&s, &f[i]);
	}
	buf[s.used++] = '\n';
	return s.used;
}

const char *vrld_journal_key(char *buf, size_t len, const char *key)
{
	size_t i = 0;

	for (; key[i] && i + 1 < len; i++) {
		char c = key[i];

		buf[i] = c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') :
			 (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ? c : '_';
	}
	buf[i] = '\0';
	return buf;
}

/*
 * stderr is the journal's stream when JOURNAL_STREAM ("DEV:INODE", set by
 * systemd for a unit whose output goes to the journal) names it: the check
 * systemd documents, so that a vrld started from a unit's shell with its
 * stderr redirected to a file still writes logfmt there.
 */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

#ifdef HAVE_SYSTEMD
static int priority(const char *level)
{
	if (strcmp(level, "error") == 0)
		return 3;
	if (strcmp(level, "warn") == 0)
		return 4;
	if (strcmp(level, "debug") == 0)
		return 7;
	return 6;
}

/* One journal entry. Returns 0, or a negative errno (then logfmt is used). */
static int to_journal(const char *level, const char *msg, const struct vrld_field *f, size_t n)
{
	char text[VRLD_LOG_FIELDS_MAX + 3][LINE_MAX_BYTES / 4];
	struct iovec iov[VRLD_LOG_FIELDS_MAX + 3];
	size_t k = 0;

	snprintf(text[k++], sizeof(text[0]), "MESSAGE=%s", msg);
	snprintf(text[k++], sizeof(text[0]), "PRIORITY=%d", priority(level));
	snprintf(text[k++], sizeof(text[0]), "SYSLOG_IDENTIFIER=vrld");
	for (size_t i = 0; i < n; i++, k++) {
		char key[64];

		vrld_journal_key(key, sizeof(key), f[i].key);
		if (f[i].type == VRLD_F_STR)
			snprintf(text[k], sizeof(text[0]), "%s=%s", key, f[i].s ? f[i].s : "");
		else if (f[i].type == VRLD_F_INT)
			snprintf(text[k], sizeof(text[0]), "%s=%lld", key, f[i].i);
		else
			snprintf(text[k], sizeof(text[0]), "%s=%llu", key, f[i].u);
	}
	for (size_t i = 0; i < k; i++)
		iov[i] = (struct iovec){ .iov_base = text[i], .iov_len = strlen(text[i]) };
	return sd_journal_sendv(iov, (int)k);
}
#endif

void vrld_log(const char *level, const char *msg, ...)
{
	static _Atomic int journal = -1;   /* decided by the first event; relaxed: every thread decides alike */
	struct vrld_field f[VRLD_LOG_FIELDS_MAX];
	char line[LINE_MAX_BYTES];
	size_t n = 0, len;
	va_list ap;

	va_start(ap, msg);
	for (struct vrld_field x = va_arg(ap, struct vrld_field); x.type != VRLD_F_END;
	     x = va_arg(ap, struct vrld_field))
		if (n < VRLD_LOG_FIELDS_MAX)
			f[n++] = x;
	va_end(ap);
	if (atomic_load_explicit(&journal, memory_order_relaxed) < 0)
		atomic_store_explicit(&journal, stderr_is_journal(), memory_order_relaxed);
#ifdef HAVE_SYSTEMD
	if (atomic_load_explicit(&journal, memory_order_relaxed) == 1 && to_journal(level, msg, f, n) == 0)
		return;
#endif
	len = vrld_logfmt(line, sizeof(line), vrl_wall_ns() / 1000000u, level, msg, f, n);
	/* one write per line: lines of vrld's threads never interleave */
	if (write(STDERR_FILENO, line, len) < 0)
		return;
}
