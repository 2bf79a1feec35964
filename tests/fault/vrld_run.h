/*
 * vrld_run.h - run the built vrld from a test: write its config, start it,
 * wait until it serves the segment, and stop or kill it.
 */
#ifndef VRL_TEST_VRLD_RUN_H
#define VRL_TEST_VRLD_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "upkeep.h"

/* Path of the vrld binary under test (argv[1] of the test). */
extern const char *vrld_path;

/* Write @text to @path or abort. */
void vrld_write_file(const char *path, const char *text);

/*
 * A test's own files and segment, none left over: makes the directory
 * /tmp/vrl-@tag-PID-N (N counts calls) and names vrl.yaml, vrld.log and
 * vrl.prom in it and the segment /vrl-test-@tag-PID-N, unlinked. Returns
 * mkdir's result.
 */
int vrld_fresh_paths(const char *tag, char dir[256], char conf[300], char log[300],
		     char prom[300], char seg[VRL_SHM_NAME_MAX]);

/* Start vrld -c @config [@extra], its stderr appended to @log. */
pid_t vrld_start(const char *config, const char *extra, const char *log);

/* Run vrld -c @config --check, its stdout and stderr written to @out; its
 * exit status as vrld_wait_exit() says it. */
int vrld_check(const char *config, const char *out);

/*
 * Wait until segment @seg exists and names @pid as its vrld. Returns false
 * when @pid exited first or @timeout_ns passed.
 */
bool vrld_wait_ready(const char *seg, pid_t pid, uint64_t timeout_ns);

/* The segment's config generation (0 when it cannot be read). */
uint64_t vrld_config_gen(const char *seg);

/* The segment's heartbeat (monotonic ns of vrld's last tick; 0 when it
 * cannot be read). */
uint64_t vrld_heartbeat(const char *seg);

/* The outcome of vrld's last reload, as `vrlctl reload` reads it. */
bool vrld_reload_status(const char *seg, struct vrl_reload_status *out);

/* Wait for @pid to exit; its exit status, 128 + signal, or -1 on timeout.
 * A vrld whose log holds a sanitizer's report (ASan, LSan, UBSan, TSan)
 * fails the test here, with the report shown, whatever its status. */
int vrld_wait_exit(pid_t pid, uint64_t timeout_ns);

/* SIGKILL and reap every vrld started and not yet seen to exit (teardown
 * after a failed assertion, so no vrld outlives the test); a sanitizer's
 * report in a log fails the test, as in vrld_wait_exit(). */
void vrld_kill_all(void);

/* The vrld log at @path to stderr, each line "# vrld: " first (a failing
 * test shows what vrld said). */
void vrld_show_log(const char *path);

/* Remove a test's directory @dir, unless VRL_KEEP_LOGS is set (to read its
 * logs after a failure). 0, or -1 when rm failed. */
int vrld_drop_dir(const char *dir);

/* Whether file @path contains @needle. */
bool vrld_log_has(const char *path, const char *needle);

/* Wait until vrld's log @path holds @needle at least @count times; false
 * when it does not by @timeout_ns (vrld writes some lines, such as
 * "serving", only after it has published itself in the segment). */
bool vrld_wait_log(const char *path, const char *needle, unsigned count, uint64_t timeout_ns);

/* Wait until the vrld of segment @seg has handled @count reloads in all
 * (applied or refused); its reload record in @st. False after @timeout_ns. */
bool vrld_wait_reload(const char *seg, uint64_t count, uint64_t timeout_ns,
		      struct vrl_reload_status *st);

/* The port vrld's log @path says it serves metrics on; 0 when none. */
unsigned vrld_metrics_port(const char *path);

/*
 * SIGTERM @pid and wait for it, then remove segment @seg and directory
 * @dir. Returns vrld's exit status (as vrld_wait_exit), or -1 when the
 * directory could not be removed.
 */
int vrld_stop_clean(pid_t pid, uint64_t timeout_ns, const char *seg, const char *dir);

/* How long an HTTP GET of the tests waits for the whole answer: long
 * enough for any loaded machine, so that only a server that never answers
 * fails it. */
#define VRLD_HTTP_TIMEOUT_NS (60 * UINT64_C(1000000000))

/* GET @path from 127.0.0.1:@port over HTTP/1.0: the whole response, NUL
 * terminated, in @buf. Returns false when it cannot connect, or when the
 * server has not closed the connection after its answer by @timeout_ns. */
bool vrld_http_get_within(unsigned port, const char *path, char *buf, size_t cap,
			  uint64_t timeout_ns);

/* vrld_http_get_within() with VRLD_HTTP_TIMEOUT_NS. */
bool vrld_http_get(unsigned port, const char *path, char *buf, size_t cap);

/* The value of the sample line of @page that starts with @series
 * ("vrl_keys{limit=\"r\"} "); NAN when there is none. */
double vrld_metric(const char *page, const char *series);

/*
 * GET /metrics into @buf until the page is one vrld rendered after this
 * call began (vrld renders once a second; vrl_metrics_rendered_seconds
 * says when). Returns false when none came within VRLD_HTTP_TIMEOUT_NS.
 */
bool vrld_scrape_fresh(unsigned port, char *buf, size_t cap);

#endif
