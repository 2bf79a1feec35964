/*
 * metrics_http.c - the HTTP side of vrld's metrics: GET /metrics on a
 * loopback address (libmicrohttpd), answered from the page metrics.c last
 * published (vrl_metrics_render: an RCU copy, never a wait for vrld's tick),
 * and a guard that bounds what slow clients can hold.
 */
#include "metrics_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#ifdef HAVE_MHD
#include <microhttpd.h>
#endif

#include "clock.h"
#include "vrl_internal.h"

#define HTTP_CONN_MAX    64u     /* connections open at once, all clients */
#define HTTP_PER_IP_MAX  32u     /* of which from one client address */
#define HTTP_ROOM        4u      /* places kept free under each cap by evicting the oldest */
#define HTTP_IDLE_S      5u      /* a connection silent this long is closed */
#define HTTP_DEADLINE_NS (UINT64_C(10) * 1000000000u) /* any connection is closed this
                                                           long after it opened */
#define HTTP_REAP_NS     (UINT64_C(250) * 1000000u)   /* how often deadlines are checked */

#ifdef HAVE_MHD
/* One open HTTP connection, as the guard sees it (see "HTTP" below). */
struct http_conn {
	bool used;
	bool shut;                      /* shutdown(2) done: on its way out */
	int fd;
	uint64_t opened_ns;             /* monotonic */
	struct sockaddr_storage peer;   /* the client's address (its port zeroed) */
};

/* The connections served, their deadlines and the thread that enforces them. */
struct http_guard {
	pthread_mutex_t lock;           /* conn[], stop */
	pthread_cond_t wake;            /* the reaper's sleep, cut short by stop */
	bool stop;
	bool reaping;                   /* the reaper thread runs */
	pthread_t reaper;
	struct http_conn conn[HTTP_CONN_MAX];
};

/* The server: libmicrohttpd's daemon, its guard, and the page's source. */
struct vrl_metrics_http {
	struct vrl_metrics *m;
	struct MHD_Daemon *d;
	struct http_guard guard;
};
#endif

/* Parse "host:port" or "[v6]:port" into @sa; loopback hosts only. */
static int parse_addr(const char *addr, struct sockaddr_storage *sa, char *why, size_t whylen)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)sa;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)sa;
	const char *colon = strrchr(addr, ':');
	char host[64];
	char *end;
	unsigned long port;
	size_t hl;

	memset(sa, 0, sizeof(*sa));
	if (!colon || (hl = (size_t)(colon - addr)) >= sizeof(host))
		goto bad;
	port = strtoul(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port > 65535)
		goto bad;
	memcpy(host, addr, hl);
	host[hl] = '\0';
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		host[hl - 1] = '\0';
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host + 1, &v6->sin6_addr) != 1)
			goto bad;
		if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr))
			goto remote;
		return 0;
	}
	if (strcmp(host, "localhost") == 0)
		memcpy(host, "127.0.0.1", sizeof("127.0.0.1"));
	v4->sin_family = AF_INET;
	v4->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &v4->sin_addr) != 1)
		goto bad;
	if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127)
		goto remote;
	return 0;
bad:
	snprintf(why, whylen, "daemon.metrics \"%s\": expected host:port such as "
		 "127.0.0.1:9477 or [::1]:9477", addr);
	return -EINVAL;
remote:
	snprintf(why, whylen, "daemon.metrics \"%s\": only a loopback address is served; "
		 "scrape through a local proxy or use daemon.metrics_textfile", addr);
	return -EINVAL;
}

int vrl_metrics_addr_check(const char *addr, char *why, size_t whylen)
{
	struct sockaddr_storage sa;

	return parse_addr(addr, &sa, why, whylen);
}

#ifdef HAVE_MHD
/*
 * The connection guard. libmicrohttpd bounds a connection only by its idle
 * time, which every byte resets: a client that dribbles a header byte now
 * and then holds its place for ever, and a handful of them used to take
 * every place. So vrld keeps its own table of the connections served
 * (libmicrohttpd's connection notifications fill and empty it, in its
 * polling thread) and:
 *   - closes any connection HTTP_DEADLINE_NS after it opened, however
 *     active (the reaper thread, every HTTP_REAP_NS); a scrape takes
 *     milliseconds;
 *   - when a new connection leaves fewer than HTTP_ROOM places under the
 *     global cap, or under the cap of its client address, closes the oldest
 *     connection (of that address, for the latter). A slow client thus
 *     churns its own connections; a scrape, which asks and is answered at
 *     once, is served beside any number of them, from any address.
 * "Close" is shutdown(2) of the socket: libmicrohttpd then reads the end of
 * the stream and closes the connection itself. The socket stays open until
 * libmicrohttpd's CLOSED notification has taken it out of the table (under
 * the lock), so a descriptor is never shut down after its number was reused.
 */
static bool same_peer(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)b)->sin6_addr,
			      sizeof(struct in6_addr)) == 0;
	return true;
}

static void conn_shut(struct http_conn *c)
{
	shutdown(c->fd, SHUT_RDWR);
	c->shut = true;
}

/* Under the lock: shut the oldest live connection (of @peer's address when
 * @peer is not NULL) if @n of them leave fewer than HTTP_ROOM places under
 * @cap. */
static void make_room(struct http_guard *g, const struct sockaddr_storage *peer, unsigned cap)
{
	struct http_conn *oldest = NULL;
	unsigned n = 0;

	for (unsigned i = 0; i < HTTP_CONN_MAX; i++) {
		struct http_conn *c = &g->conn[i];

		if (!c->used || c->shut || (peer && !same_peer(&c->peer, peer)))
			continue;
		n++;
		if (!oldest || c->opened_ns < oldest->opened_ns)
			oldest = c;
	}
	if (oldest && n + HTTP_ROOM >= cap)
		conn_shut(oldest);
}

static void conn_started(struct http_guard *g, struct MHD_Connection *conn, void **ctx)
{
	const union MHD_ConnectionInfo *fd = MHD_get_connection_info(conn,
		MHD_CONNECTION_INFO_CONNECTION_FD);
	const union MHD_ConnectionInfo *addr = MHD_get_connection_info(conn,
		MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	struct sockaddr_storage peer = { 0 };
	struct http_conn *free_c = NULL;

	*ctx = NULL;
	if (!fd || !addr || !addr->client_addr)
		return;
	peer.ss_family = addr->client_addr->sa_family;
	if (peer.ss_family == AF_INET)
		((struct sockaddr_in *)&peer)->sin_addr =
			((const struct sockaddr_in *)addr->client_addr)->sin_addr;
	else if (peer.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&peer)->sin6_addr =
			((const struct sockaddr_in6 *)addr->client_addr)->sin6_addr;
	pthread_mutex_lock(&g->lock);
	make_room(g, &peer, HTTP_PER_IP_MAX);
	make_room(g, NULL, HTTP_CONN_MAX);
	for (unsigned i = 0; i < HTTP_CONN_MAX && !free_c; i++)
		if (!g->conn[i].used)
			free_c = &g->conn[i];
	/* libmicrohttpd holds at most HTTP_CONN_MAX: a place is always free */
	if (free_c) {
		*free_c = (struct http_conn){ .used = true, .fd = fd->connect_fd,
					      .opened_ns = vrl_now_ns(), .peer = peer };
		*ctx = free_c;
	}
	pthread_mutex_unlock(&g->lock);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **ctx,
			  enum MHD_ConnectionNotificationCode code)
{
	struct http_guard *g = &((struct vrl_metrics_http *)cls)->guard;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		conn_started(g, conn, ctx);
		return;
	}
	if (!*ctx)
		return;
	/* before libmicrohttpd closes the socket: the reaper lets go of it */
	pthread_mutex_lock(&g->lock);
	((struct http_conn *)*ctx)->used = false;
	pthread_mutex_unlock(&g->lock);
	*ctx = NULL;
}

/* The reaper: shut every connection past its deadline, until told to stop. */
static void *reap(void *arg)
{
	struct http_guard *g = arg;

	pthread_mutex_lock(&g->lock);
	while (!g->stop) {
		uint64_t now = vrl_now_ns();
		struct timespec until;

		for (unsigned i = 0; i < HTTP_CONN_MAX; i++) {
			struct http_conn *c = &g->conn[i];

			if (c->used && !c->shut && now - c->opened_ns >= HTTP_DEADLINE_NS)
				conn_shut(c);
		}
		until = vrl_ns_ts(vrl_mono_ns() + HTTP_REAP_NS);
		pthread_cond_timedwait(&g->wake, &g->lock, &until);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

static int guard_start(struct http_guard *g)
{
	pthread_condattr_t ca;
	int rc;

	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->wake, &ca);
	pthread_condattr_destroy(&ca);
	rc = pthread_create(&g->reaper, NULL, reap, g);
	g->reaping = rc == 0;
	return -rc;
}

static void guard_stop(struct http_guard *g)
{
	if (!g->reaping)
		return;
	pthread_mutex_lock(&g->lock);
	g->stop = true;
	pthread_cond_signal(&g->wake);
	pthread_mutex_unlock(&g->lock);
	pthread_join(g->reaper, NULL);
	g->reaping = false;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	struct vrl_metrics *m = ((struct vrl_metrics_http *)cls)->m;
	struct MHD_Response *r;
	enum MHD_Result ret;
	unsigned status = MHD_HTTP_OK;
	size_t len = 0;
	char *text = NULL;

	(void)version;
	(void)upload;
	(void)upload_size;
	(void)con_cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
	else if (strcmp(url, "/metrics") != 0 && strcmp(url, "/") != 0)
		status = MHD_HTTP_NOT_FOUND;
	else if (!(text = vrl_metrics_render(m, &len)))
		status = MHD_HTTP_SERVICE_UNAVAILABLE;
	if (status != MHD_HTTP_OK) {
		static const char msg[] = "see /metrics\n";

		r = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
						    MHD_RESPMEM_PERSISTENT);
	} else {
		r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	}
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

int vrl_metrics_http_start(struct vrl_metrics *m, const char *addr, unsigned *port,
			   struct vrl_metrics_http **out, char *why, size_t whylen)
{
	struct sockaddr_storage sa;
	const union MHD_DaemonInfo *info;
	struct vrl_metrics_http *h;
	int rc = parse_addr(addr, &sa, why, whylen);

	if (rc)
		return rc;
	if (!(h = calloc(1, sizeof(*h)))) {
		snprintf(why, whylen, "cannot serve metrics on %s: out of memory", addr);
		return -ENOMEM;
	}
	h->m = m;
	if ((rc = guard_start(&h->guard)) != 0) {
		snprintf(why, whylen, "cannot serve metrics on %s: %s", addr, strerror(-rc));
		free(h);
		return rc;
	}
	/*
	 * One polling thread with non-blocking sockets serves every
	 * connection: a slow client costs a place in the table, never the
	 * thread's time (answer() only copies the page out).
	 */
	errno = 0;
	h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
				(sa.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
				0, NULL, NULL, answer, h,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONN_MAX,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTP_PER_IP_MAX,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_S,
				MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
				MHD_OPTION_END);
	if (!h->d) {
		rc = errno ? -errno : -EADDRINUSE;
		guard_stop(&h->guard);
		free(h);
		snprintf(why, whylen, "cannot serve metrics on %s: %s", addr, strerror(-rc));
		return rc;
	}
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	*port = info ? info->port : 0;
	*out = h;
	return 0;
}

void vrl_metrics_http_stop(struct vrl_metrics_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d);
	guard_stop(&h->guard);
	free(h);
}
#else
int vrl_metrics_http_start(struct vrl_metrics *m, const char *addr, unsigned *port,
			   struct vrl_metrics_http **out, char *why, size_t whylen)
{
	struct sockaddr_storage sa;
	int rc = parse_addr(addr, &sa, why, whylen);

	(void)m;
	*port = 0;
	*out = NULL;
	if (rc)
		return rc;
	snprintf(why, whylen, "this vrld was built without libmicrohttpd: no metrics over "
		 "HTTP (use daemon.metrics_textfile)");
	return -ENOTSUP;
}

void vrl_metrics_http_stop(struct vrl_metrics_http *h)
{
	(void)h;
}
#endif

