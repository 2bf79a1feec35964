/*
 * run_cmd.h - run a shell command from a test and read what it printed.
 */
#ifndef VRL_TEST_RUN_CMD_H
#define VRL_TEST_RUN_CMD_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Run @cmd with /bin/sh; its stdout, up to @len - 1 bytes, in @out, NUL
 * terminated (the rest is read and dropped, so the command never dies of
 * SIGPIPE). Returns its exit status; a command killed by a signal, or one
 * that cannot be started, fails the test.
 */
int run_capture(const char *cmd, char *out, size_t len);

/* Run `'@vrlctl' -s '@seg' @args` (its stderr in @out too when @with_err,
 * else the test's own); as run_capture(). */
int run_vrlctl(const char *vrlctl, const char *seg, const char *args, bool with_err,
	       char *out, size_t len);

#endif
