/*
 * run_cmd.c - run a shell command from a test and read what it printed.
 */
#include "run_cmd.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

int run_capture(const char *cmd, char *out, size_t len)
{
	char drop[512];
	size_t n = 0;
	FILE *p;
	int st;

	p = popen(cmd, "r");
	if (!p)
		fail_msg("cannot run %s", cmd);
	while (n + 1 < len) {
		size_t got = fread(out + n, 1, len - 1 - n, p);

		if (got == 0)
			break;
		n += got;
	}
	if (len)
		out[n] = '\0';
	while (fread(drop, 1, sizeof(drop), p) > 0)
		;
	st = pclose(p);
	if (st == -1 || !WIFEXITED(st))
		fail_msg("%s did not exit (status %d):\n%s", cmd, st, len ? out : "");
	return WEXITSTATUS(st);
}

int run_vrlctl(const char *vrlctl, const char *seg, const char *args, bool with_err,
	       char *out, size_t len)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "'%s' -s '%s' %s %s", vrlctl, seg, args,
		 with_err ? "2>&1" : "");
	return run_capture(cmd, out, len);
}
