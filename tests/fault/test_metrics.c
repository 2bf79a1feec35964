/*
 * test_metrics.c - vrld's Prometheus metrics: scrape the HTTP endpoint with
 * a plain socket after known acquires, and read the textfile.
 *
 * usage: test_metrics VRLD
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"
#include "label.h"
#include "vrld_run.h"

#define WAIT_NS  (60 * NS_PER_S)   /* only a hang takes this long */

static char dir[256], conf[300], prom[300], logpath[300], seg[VRL_SHM_NAME_MAX];
static char page[1 << 16];
static pid_t vrld_pid, slow_pid;

/* A failed assertion leaves vrld running: stop it, drop its segment. */
static int teardown(void **state)
{
	(void)state;
	if (slow_pid > 0 && kill(slow_pid, SIGKILL) == 0)
		waitpid(slow_pid, NULL, 0);
	slow_pid = 0;
	if (vrld_pid > 0 && kill(vrld_pid, SIGKILL) == 0)
		vrld_wait_exit(vrld_pid, WAIT_NS);
	vrl_seg_unlink(seg);
	return 0;
}

static unsigned port_from_log(void)
{
	unsigned port = vrld_metrics_port(logpath);

	assert_true(port > 0);
	return port;
}

/* GET @path over HTTP/1.0; the whole response in page[]. */
static void get(unsigned port, const char *path)
{
	assert_true(vrld_http_get(port, path, page, sizeof(page)));
}

static void has(const char *needle)
{
	if (!strstr(page, needle))
		fail_msg("no \"%s\" in:\n%s", needle, page);
}

/* The value of the sample line that starts with @series. */
static double value_of(const char *series)
{
	double v = vrld_metric(page, series);

	if (isnan(v))
		fail_msg("no series %s in:\n%s", series, page);
	return v;
}

/* The series of the key by token @token of limit @limit: its label shows
 * the token's hash (label.h). One kept at a time per @slot (0..3). */
static const char *key_series(unsigned slot, const char *limit, const char *token)
{
	static char s[4][160];
	char h[VRL_LABEL_HASH_LEN + 1];

	vrl_label_hash(token, strlen(token), h);
	snprintf(s[slot], sizeof(s[slot]), "vrl_key_used_ratio{limit=\"%s\",key=\"%s\"} ",
		 limit, h);
	return s[slot];
}

/* This test's directory, files and segment name, none of them left over. */
static void fresh_paths(void)
{
	snprintf(dir, sizeof(dir), "/tmp/vrl-metrics-%d", (int)getpid());
	snprintf(seg, sizeof(seg), "/vrl-test-metrics-%d", (int)getpid());
	mkdir(dir, 0700);
	snprintf(conf, sizeof(conf), "%s/vrl.yaml", dir);
	snprintf(prom, sizeof(prom), "%s/vrl.prom", dir);
	snprintf(logpath, sizeof(logpath), "%s/vrld.log", dir);
	vrl_seg_unlink(seg);
}

static void test_scrape(void **state)
{
	struct vrl_request req = { .api = "r", .token = "t1" };
	char text[1024];
	unsigned port, granted = 0, denied = 0;
	vrl_client *c;
	pid_t pid;

	(void)state;
	fresh_paths();
	snprintf(text, sizeof(text),
		 "segment: {name: \"%s\", keys: 1000}\n"
		 "daemon: {metrics: \"127.0.0.1:0\", metrics_textfile: \"%s\", metrics_top: 10}\n"
		 "limits:\n"
		 "  - name: r\n    match: {api: r}\n    per: [token]\n    rate: 5/h\n"
		 "    burst: 5\n"
		 "  - name: other\n    match: {api: x}\n    per: [token]\n    rate: 1/s\n"
		 "  - name: soft\n    kind: quota\n    match: {api: q}\n    per: [token]\n"
		 "    count: 2\n    overage: true\n    alerts: [50, 100]\n"
		 "  - {name: sh, match: {api: s}, rate: 1/h, shadow: true}\n"
		 "  - {name: w, match: {api: w}, rate: 10/s}\n",
		 seg, prom);
	vrld_write_file(conf, text);
	vrld_pid = pid = vrld_start(conf, NULL, logpath);
	assert_true(vrld_wait_ready(seg, pid, WAIT_NS));
	port = port_from_log();
	assert_true(port > 0);

	c = test_open(seg);
	for (int i = 0; i < 7; i++) {
		int rc = vrl_acquire(c, &req, NULL);

		granted += rc == 0;
		denied += rc == VRL_EDENIED;
	}
	assert_int_equal(granted, 5);
	assert_int_equal(denied, 2);
	req.token = "t2";
	assert_int_equal(vrl_acquire(c, &req, NULL), 0);

	/* a soft quota of 2: five units for q1, two for q2, 3 units past it */
	for (int i = 0; i < 7; i++) {
		struct vrl_request q = { .api = "q", .token = i < 5 ? "q1" : "q2" };

		assert_int_equal(vrl_acquire(c, &q, NULL), 0);
	}

	/* shadow: the second request is granted, and counted as one it would deny */
	assert_int_equal(vrl_acquire(c, &(struct vrl_request){ .api = "s" }, NULL), 0);
	assert_int_equal(vrl_acquire(c, &(struct vrl_request){ .api = "s" }, NULL), 0);
	/* a cooldown set on "other"; a waiting acquire that sleeps ~100 ms for "w" */
	assert_int_equal(vrl_cooldown(c, &(struct vrl_request){ .api = "x", .token = "t" },
				      "other", vrl_now_ns() + 60 * NS_PER_S), 0);
	assert_int_equal(vrl_acquire(c, &(struct vrl_request){ .api = "w" }, NULL), 0);
	assert_int_equal(vrl_acquire_wait(c, &(struct vrl_request){ .api = "w" }, NS_PER_S, NULL),
			 0);
	/* unmatched: deny (the default): refused, counted by api; a quote a
	 * label must not hold reads back as '?' */
	assert_int_equal(vrl_acquire(c, &(struct vrl_request){ .api = "typ\"o" }, NULL),
			 VRL_EUNMATCHED);

	assert_true(vrld_scrape_fresh(port, page, sizeof(page)));
	has(" 200 OK\r\n");
	assert_true(value_of("vrl_shadow_denied_total{limit=\"sh\"} ") == 1);
	assert_true(value_of("vrl_shadow_denied_total{limit=\"r\"} ") == 0);
	assert_true(value_of("vrl_cooldowns_total{limit=\"other\"} ") == 1);
	/* the time the waiting acquire reserved (at most one interval: less
	 * when the machine was slow to ask), as the handle counted it */
	assert_true(value_of("vrl_wait_seconds_total{limit=\"w\"} ") ==
		    (double)atomic_load(&vrl__holder(c)->limit_wait_ns[4]) / 1e9);
	assert_true(value_of("vrl_wait_seconds_total{limit=\"w\"} ") <= 0.1);
	has("# TYPE vrl_overage_units gauge");
	assert_true(value_of("vrl_overage_units{limit=\"soft\"} ") == 3);
	assert_true(value_of("vrl_overage_units{limit=\"r\"} ") == 0);
	/* q1 and q2 each crossed 50% and 100%: four alerts, once vrld drains them */
	for (uint64_t until = vrl_now_ns() + WAIT_NS;
	     value_of("vrl_alerts_total{limit=\"soft\"} ") < 4 && vrl_now_ns() < until;) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		get(port, "/metrics");
	}
	has("# TYPE vrl_alerts_total counter");
	assert_true(value_of("vrl_alerts_total{limit=\"soft\"} ") == 4);
	assert_true(value_of("vrl_alerts_total{limit=\"r\"} ") == 0);
	has("text/plain; version=0.0.4");
	has("# TYPE vrl_granted_total counter");
	assert_true(value_of("vrl_granted_total{limit=\"r\"} ") == 6);
	assert_true(value_of("vrl_denied_total{limit=\"r\"} ") == 2);
	assert_true(value_of("vrl_granted_total{limit=\"other\"} ") == 0);
	assert_true(value_of("vrl_keys{limit=\"r\"} ") == 2);
	/* r: 2, soft: 2, sh, other and w: 1 each */
	assert_int_equal((int)value_of("vrl_table_keys_live "), 7);
	assert_true(value_of("vrl_table_slots ") >= 1000);
	assert_true(value_of("vrl_holders ") == 1);
	assert_true(value_of("vrl_daemon_up ") == 1);
	assert_true(value_of("vrl_config_generation ") >= 1);
	has("# TYPE vrl_unmatched_requests_total counter");
	assert_true(value_of("vrl_unmatched_requests_total{api=\"typ?o\"} ") == 1);
	/* and vrld's log names the api, once */
	assert_true(vrld_wait_log(logpath, "api=\"typ?o\" count=1 policy=\"deny\"", 1, WAIT_NS));
	has("vrl_table_full_total 0\n");
	has("vrl_evictions_all_total ");
	assert_true(value_of("vrl_granted_all_total ") == 17);
	/* t1 spent its whole bucket (an hour deep), t2 a fifth of it */
	assert_true(value_of(key_series(0, "r", "t1")) > 0.9);
	assert_true(value_of(key_series(1, "r", "t2")) > 0.1);
	assert_true(strstr(page, key_series(0, "r", "t1")) < strstr(page, key_series(1, "r", "t2")));

	/* the handle goes; its counts stay in the totals (counters never drop) */
	vrl_close(c);
	assert_true(vrld_scrape_fresh(port, page, sizeof(page)));
	assert_true(value_of("vrl_granted_total{limit=\"r\"} ") == 6);
	assert_true(value_of("vrl_denied_total{limit=\"r\"} ") == 2);
	assert_true(value_of("vrl_shadow_denied_total{limit=\"sh\"} ") == 1);
	assert_true(value_of("vrl_cooldowns_total{limit=\"other\"} ") == 1);
	assert_true(value_of("vrl_holders ") == 0);

	get(port, "/nothing");
	has(" 404 ");

	/* the textfile, rewritten once a second: wait for one after the acquires */
	for (uint64_t until = vrl_now_ns() + WAIT_NS; vrl_now_ns() < until;) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		FILE *f = fopen(prom, "r");

		page[0] = '\0';
		if (f) {
			page[fread(page, 1, sizeof(page) - 1, f)] = '\0';
			fclose(f);
		}
		if (strstr(page, "vrl_granted_total{limit=\"r\"} 6\n"))
			break;
		nanosleep(&ts, NULL);
	}
	has("vrl_granted_total{limit=\"r\"} 6\n");
	has("vrl_daemon_up 1\n");

	assert_int_equal(vrld_stop_clean(pid, WAIT_NS, seg, dir), 0);
	vrld_pid = 0;
}

/* Scrape until @series reads @want (vrld sweeps and renders on its own
 * clock), then check it. */
static void await_value(unsigned port, const char *series, double want)
{
	for (uint64_t until = vrl_now_ns() + WAIT_NS; vrl_now_ns() < until;) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		get(port, "/metrics");
		if (!isnan(vrld_metric(page, series)) && vrld_metric(page, series) == want)
			return;
		nanosleep(&ts, NULL);
	}
	assert_true(value_of(series) == want);
}

static void write_config(const char *limits)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "segment: {name: \"%s\", keys: 1000}\n"
		 "daemon: {metrics: \"127.0.0.1:0\", sweep_interval: 100ms, idle_evict: 2s}\n"
		 "limits:\n%s", seg, limits);
	vrld_write_file(conf, text);
}

/*
 * Evictions are counted per limit, and stay with the right limit when a
 * reload renumbers the limits; a window key's share used is read from its
 * ring.
 */
static void test_evictions_by_limit(void **state)
{
	static const char win[] =
		"  - {name: win, match: {api: w}, per: [token], kind: window, limit: 10, "
		"window: 1h, keys: 8}\n";
	static const char r[] = "  - {name: r, match: {api: r}, per: [token], rate: 100/s}\n";
	static const char x[] = "  - {name: x, match: {api: x}, per: [token], rate: 100/s}\n";
	char limits[512];
	unsigned port;
	vrl_client *c;
	pid_t pid;

	(void)state;
	fresh_paths();
	snprintf(limits, sizeof(limits), "%s%s%s", win, r, x);
	write_config(limits);
	vrld_pid = pid = vrld_start(conf, NULL, logpath);
	assert_true(vrld_wait_ready(seg, pid, WAIT_NS));
	port = port_from_log();

	c = test_open(seg);
	for (int i = 0; i < 4; i++)
		assert_int_equal(vrl_acquire(c, &(struct vrl_request){ .api = "w", .token = "w1" },
					     NULL), 0);
	assert_int_equal(vrl_acquire(c, &(struct vrl_request){ .api = "r", .token = "t1" }, NULL),
			 0);
	assert_int_equal(vrl_acquire(c, &(struct vrl_request){ .api = "r", .token = "t2" }, NULL),
			 0);
	await_value(port, key_series(0, "win", "w1"), 0.4);
	assert_true(value_of("vrl_keys{limit=\"r\"} ") == 2);

	/* r and x swap places (the window keeps its own: its rings are laid out) */
	snprintf(limits, sizeof(limits), "%s%s%s", win, x, r);
	write_config(limits);
	kill(pid, SIGHUP);
	await_value(port, "vrl_config_generation ", 2);
	/* still r's, live or (if vrld swept meanwhile) evicted */
	assert_true(value_of("vrl_keys{limit=\"r\"} ") +
		    value_of("vrl_evictions_total{limit=\"r\"} ") == 2);
	assert_true(value_of("vrl_keys{limit=\"x\"} ") == 0);

	/* idle for 2 s, r's two keys go, and are counted as r's */
	await_value(port, "vrl_evictions_total{limit=\"r\"} ", 2);
	assert_true(value_of("vrl_evictions_total{limit=\"x\"} ") == 0);
	assert_true(value_of("vrl_evictions_total{limit=\"win\"} ") == 0);
	assert_true(value_of("vrl_keys{limit=\"r\"} ") == 0);
	assert_true(value_of("vrl_evictions_all_total ") == 2);
	assert_true(value_of("vrl_table_keys_unattributed ") == 0);

	/* x leaves the config: a key of it stays, counted under no limit */
	assert_int_equal(vrl_acquire(c, &(struct vrl_request){ .api = "x", .token = "t9" }, NULL),
			 0);
	snprintf(limits, sizeof(limits), "%s%s", win, r);
	write_config(limits);
	kill(pid, SIGHUP);
	await_value(port, "vrl_config_generation ", 3);
	await_value(port, "vrl_table_keys_unattributed ", 1);
	vrl_close(c);

	assert_int_equal(vrld_stop_clean(pid, WAIT_NS, seg, dir), 0);
	vrld_pid = 0;
}

/* ---- slow clients -------------------------------------------------------------- */

#define SLOW_CONNS 48   /* more than the old cap (8) and than one address may hold */

/* What the slow client reports to the test, in shared memory. */
struct slow_report {
	_Atomic int opened;     /* connections it has opened and begun a request on */
	_Atomic int closed;     /* of which the server has closed */
};

/*
 * A slowloris: open SLOW_CONNS connections, begin a request on each, and
 * dribble one byte of header to every one still open each 200 ms (well
 * inside vrld's idle timeout), forever; count those the server closes.
 */
static void slow_client(unsigned port, struct slow_report *rep)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	static const char head[] = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
	int fd[SLOW_CONNS];

	prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlive the test */
	signal(SIGPIPE, SIG_IGN);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	for (int i = 0; i < SLOW_CONNS; i++) {
		fd[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (fd[i] < 0 || (connect(fd[i], (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
				  errno != EINPROGRESS))
			_exit(3);
	}
	for (int i = 0; i < SLOW_CONNS; i++) {
		struct pollfd p = { .fd = fd[i], .events = POLLOUT };

		/* a connection waits in the backlog until accepted: writable */
		if (poll(&p, 1, -1) != 1 || write(fd[i], head, sizeof(head) - 1) < 0)
			_exit(4);
		atomic_fetch_add(&rep->opened, 1);
	}
	for (;;) {
		struct timespec pace = { 0, 200 * 1000 * 1000 };

		for (int i = 0; i < SLOW_CONNS; i++) {
			char b;

			if (fd[i] < 0)
				continue;
			/* the server answers nothing before the headers end: any
			 * read that does not say EAGAIN means it closed */
			if ((read(fd[i], &b, 1) >= 0 || errno != EAGAIN) ||
			    (write(fd[i], "x", 1) < 0 && errno != EAGAIN)) {
				close(fd[i]);
				fd[i] = -1;
				atomic_fetch_add(&rep->closed, 1);
			}
		}
		nanosleep(&pace, NULL);
	}
}

/*
 * Slow clients cannot blind the metrics: while a local process holds more
 * connections than the old cap, from the scraper's own address, dribbling
 * header bytes to keep each one active, a scrape is still answered; and
 * the server closes every slow connection by its deadline, however active.
 */
static void test_slow_clients(void **state)
{
	struct slow_report *rep = test_shared(sizeof(*rep));
	uint64_t until;
	unsigned port;
	pid_t pid, slow;
	int open_at_scrape;

	(void)state;
	fresh_paths();
	write_config("  - {name: r, match: {api: r}, per: [token], rate: 100/s}\n");
	vrld_pid = pid = vrld_start(conf, NULL, logpath);
	assert_true(vrld_wait_ready(seg, pid, WAIT_NS));
	port = port_from_log();
	assert_true(vrld_scrape_fresh(port, page, sizeof(page)));

	slow_pid = slow = fork();
	if (slow == 0) {
		slow_client(port, rep);
		_exit(0);
	}
	assert_true(slow > 0);
	/* every slow connection is open and has begun its request */
	until = vrl_now_ns() + WAIT_NS;
	while (atomic_load(&rep->opened) < SLOW_CONNS && vrl_now_ns() < until)
		sched_yield();
	assert_int_equal(atomic_load(&rep->opened), SLOW_CONNS);

	/* a scrape is answered while they hold on */
	assert_true(vrld_http_get(port, "/metrics", page, sizeof(page)));
	open_at_scrape = SLOW_CONNS - atomic_load(&rep->closed);
	has(" 200 OK\r\n");
	has("vrl_daemon_up 1\n");
	assert_true(open_at_scrape > 0);

	/* and every slow connection ends, however much it dribbles */
	until = vrl_now_ns() + VRLD_HTTP_TIMEOUT_NS;
	while (atomic_load(&rep->closed) < SLOW_CONNS && vrl_now_ns() < until) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	kill(slow, SIGKILL);
	waitpid(slow, NULL, 0);
	slow_pid = 0;
	assert_int_equal(atomic_load(&rep->closed), SLOW_CONNS);

	assert_int_equal(vrld_stop_clean(pid, WAIT_NS, seg, dir), 0);
	vrld_pid = 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_scrape, teardown),
		cmocka_unit_test_teardown(test_evictions_by_limit, teardown),
		cmocka_unit_test_teardown(test_slow_clients, teardown),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s VRLD\n", argv[0]);
		return 2;
	}
	vrld_path = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
