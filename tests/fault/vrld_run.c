/*
 * vrld_run.c - see vrld_run.h.
 */
#include "vrld_run.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "upkeep.h"
#include "vrl_internal.h"
#include "clock.h"
#include "segment.h"

const char *vrld_path;

#define STARTED_MAX 64
#define LOG_PATH_MAX 512
static pid_t started[STARTED_MAX];   /* vrlds not yet seen to exit; 0: free */
static char logs[STARTED_MAX][LOG_PATH_MAX];   /* where each one's stderr goes */

/* What the sanitizers print when they find something (ASan, LSan, UBSan,
 * TSan): a vrld of a sanitizer build that printed one fails the test,
 * whatever its exit status and whether the test looks at it. */
static const char *const sanitizer_marks[] = {
	"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
	"WARNING: ThreadSanitizer", "ERROR: ThreadSanitizer", NULL,
};

/* Fail the test, showing the report, if @log holds a sanitizer's. */
static void check_sanitizers(pid_t pid, const char *log)
{
	char line[1024];
	bool found = false;
	FILE *f = fopen(log, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		for (int i = 0; !found && sanitizer_marks[i]; i++)
			found = strstr(line, sanitizer_marks[i]) != NULL;
		if (found)
			fprintf(stderr, "# vrld %d: %s", (int)pid, line);
	}
	fclose(f);
	if (found)
		fail_msg("vrld %d: a sanitizer reported the above (log %s)", (int)pid, log);
}

static void forget(pid_t pid)
{
	for (int i = 0; i < STARTED_MAX; i++)
		if (started[i] == pid) {
			started[i] = 0;
			check_sanitizers(pid, logs[i]);
		}
}

static void remember(pid_t pid, const char *log)
{
	for (int i = 0; i < STARTED_MAX; i++)
		if (started[i] == 0) {
			started[i] = pid;
			snprintf(logs[i], sizeof(logs[i]), "%s", log);
			return;
		}
}

void vrld_kill_all(void)
{
	for (int i = 0; i < STARTED_MAX; i++)
		if (started[i] > 0) {
			pid_t pid = started[i];

			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			forget(pid);
		}
}

int vrld_fresh_paths(const char *tag, char dir[256], char conf[300], char log[300],
		     char prom[300], char seg[VRL_SHM_NAME_MAX])
{
	static unsigned serial;

	snprintf(dir, 256, "/tmp/vrl-%s-%d-%u", tag, (int)getpid(), serial);
	snprintf(seg, VRL_SHM_NAME_MAX, "/vrl-test-%s-%d-%u", tag, (int)getpid(), serial++);
	snprintf(conf, 300, "%s/vrl.yaml", dir);
	snprintf(log, 300, "%s/vrld.log", dir);
	snprintf(prom, 300, "%s/vrl.prom", dir);
	vrl_seg_unlink(seg);
	return mkdir(dir, 0700);
}

void vrld_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		abort();
}

pid_t vrld_start(const char *config, const char *extra, const char *log)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0) {
			dup2(fd, 2);
			close(fd);
		}
		if (extra)
			execl(vrld_path, "vrld", "-c", config, extra, (char *)NULL);
		else
			execl(vrld_path, "vrld", "-c", config, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		remember(pid, log);
	return pid;
}

int vrld_check(const char *config, const char *out)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execl(vrld_path, "vrld", "-c", config, "--check", (char *)NULL);
		_exit(127);
	}
	if (pid < 0)
		return -1;
	remember(pid, out);
	return vrld_wait_exit(pid, UINT64_C(60) * 1000000000u);
}

static void nap(void)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

/* Map the header of @seg read-only; NULL when it is not (yet) there. */
static struct vrl_seg_header *map_header(const char *seg)
{
	int fd = shm_open(seg, O_RDONLY, 0);
	struct stat st;
	void *p;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(struct vrl_seg_header)) {
		close(fd);
		return NULL;
	}
	p = mmap(NULL, sizeof(struct vrl_seg_header), PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

bool vrld_wait_ready(const char *seg, pid_t pid, uint64_t timeout_ns)
{
	uint64_t until = vrl_now_ns() + timeout_ns;

	while (vrl_now_ns() < until) {
		struct vrl_seg_header *h = map_header(seg);
		bool ready = false;

		if (h) {
			ready = atomic_load((_Atomic uint64_t *)&h->magic) == VRL_SEG_MAGIC &&
				atomic_load(&h->daemon_pid) == pid;
			munmap(h, sizeof(*h));
		}
		if (ready)
			return true;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return false;
		nap();
	}
	return false;
}

uint64_t vrld_config_gen(const char *seg)
{
	struct vrl_seg_header *h = map_header(seg);
	uint64_t gen;

	if (!h)
		return 0;
	gen = atomic_load(&h->config_gen);
	munmap(h, sizeof(*h));
	return gen;
}

uint64_t vrld_heartbeat(const char *seg)
{
	struct vrl_seg_header *h = map_header(seg);
	uint64_t beat;

	if (!h)
		return 0;
	beat = atomic_load(&h->daemon_heartbeat_ns);
	munmap(h, sizeof(*h));
	return beat;
}

bool vrld_reload_status(const char *seg, struct vrl_reload_status *out)
{
	struct vrl_seg_header *h = map_header(seg);
	int rc;

	if (!h)
		return false;
	rc = vrl_seg_read_reload(h, out);
	munmap(h, sizeof(*h));
	return rc == 0;
}

int vrld_wait_exit(pid_t pid, uint64_t timeout_ns)
{
	uint64_t until = vrl_now_ns() + timeout_ns;
	int status;

	while (vrl_now_ns() < until) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid) {
			forget(pid);
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		if (r < 0 && errno != EINTR)
			return -1;
		nap();
	}
	return -1;
}

/* Occurrences of @needle in the file @path (its first 256 KiB). */
static unsigned log_count(const char *path, const char *needle)
{
	static char buf[1 << 18];
	FILE *f = fopen(path, "r");
	unsigned count = 0;
	size_t n;

	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (const char *p = buf; (p = strstr(p, needle)); p += strlen(needle))
		count++;
	return count;
}

bool vrld_log_has(const char *path, const char *needle)
{
	return log_count(path, needle) > 0;
}

bool vrld_wait_log(const char *path, const char *needle, unsigned count, uint64_t timeout_ns)
{
	uint64_t until = vrl_now_ns() + timeout_ns;

	while (log_count(path, needle) < count) {
		if (vrl_now_ns() > until)
			return false;
		nap();
	}
	return true;
}

bool vrld_wait_reload(const char *seg, uint64_t count, uint64_t timeout_ns,
		      struct vrl_reload_status *st)
{
	uint64_t until = vrl_now_ns() + timeout_ns;

	for (;;) {
		struct vrl_seg_header *h = map_header(seg);
		bool done = h && vrl_seg_read_reload(h, st) == 0 && st->count >= count;

		if (h)
			munmap(h, sizeof(*h));
		if (done)
			return true;
		if (vrl_now_ns() > until)
			return false;
		nap();
	}
}

unsigned vrld_metrics_port(const char *path)
{
	char buf[65536];
	FILE *f = fopen(path, "r");
	size_t n;
	char *p;

	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strstr(buf, "metrics served");
	p = p ? strstr(p, "port=") : NULL;
	return p ? (unsigned)strtoul(p + 5, NULL, 10) : 0;
}

int vrld_stop_clean(pid_t pid, uint64_t timeout_ns, const char *seg, const char *dir)
{
	char cmd[600];
	int status;

	kill(pid, SIGTERM);
	status = vrld_wait_exit(pid, timeout_ns);
	vrl_seg_unlink(seg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? status : -1;
}

bool vrld_http_get_within(unsigned port, const char *path, char *buf, size_t cap,
			  uint64_t timeout_ns)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	uint64_t until = vrl_now_ns() + timeout_ns;
	char req[256];
	size_t got = 0;
	ssize_t r = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	buf[0] = '\0';
	if (fd < 0)
		return false;
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		close(fd);
		return false;
	}
	/* read until the server closes, or give up at the deadline */
	while (got + 1 < cap) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t now = vrl_now_ns();

		if (now >= until || poll(&p, 1, (int)((until - now) / 1000000u) + 1) <= 0)
			break;
		if ((r = read(fd, buf + got, cap - 1 - got)) <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	return got > 0 && (r == 0 || got + 1 == cap);
}

bool vrld_http_get(unsigned port, const char *path, char *buf, size_t cap)
{
	return vrld_http_get_within(port, path, buf, cap, VRLD_HTTP_TIMEOUT_NS);
}

double vrld_metric(const char *page, const char *series)
{
	char line[256];
	const char *p;

	snprintf(line, sizeof(line), "\n%s", series);
	if (!(p = strstr(page, line)))
		return NAN;
	return strtod(p + strlen(line), NULL);
}

bool vrld_scrape_fresh(unsigned port, char *buf, size_t cap)
{
	double since;
	uint64_t until = vrl_now_ns() + VRLD_HTTP_TIMEOUT_NS;

	since = (double)vrl_wall_ns() / 1e9;
	while (vrl_now_ns() < until) {
		if (vrld_http_get(port, "/metrics", buf, cap) &&
		    vrld_metric(buf, "vrl_metrics_rendered_seconds ") >= since)
			return true;
		nap();
	}
	return false;
}

void vrld_show_log(const char *path)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "sed 's/^/# vrld: /' '%s' >&2", path);
	if (system(cmd) != 0)
		fprintf(stderr, "# (no vrld log)\n");
}

int vrld_drop_dir(const char *dir)
{
	char cmd[600];

	if (getenv("VRL_KEEP_LOGS"))
		return 0;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}
