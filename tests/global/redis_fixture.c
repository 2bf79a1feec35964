/*
 * redis_fixture.c - see redis_fixture.h.
 */
#include "redis_fixture.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "redis.h"

#define READY_DEADLINE_NS (UINT64_C(20) * 1000000000u)  /* a hung start, not a slow one */

static void die(const char *what)
{
	fprintf(stderr, "redis fixture: %s: %s\n", what, strerror(errno));
	abort();
}

uint64_t rfx_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void rfx_pace(unsigned ms)
{
	struct timespec ts = { ms / 1000u, (long)(ms % 1000u) * 1000000L };

	nanosleep(&ts, NULL);
}

bool rfx_available(void)
{
	const char *path = getenv("PATH");
	char buf[512];

	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		const char *end = strchr(p, ':');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		snprintf(buf, sizeof(buf), "%.*s/redis-server", (int)n, p);
		if (access(buf, X_OK) == 0)
			return true;
		p += n + (end != NULL);
	}
	return false;
}

static void spawn(struct rfx *r)
{
	char log[160];
	char *argv[] = { "redis-server", "--port", "0", "--unixsocket", r->sock,
			 "--unixsocketperm", "700", "--dir", r->dir, "--save", "",
			 "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning", NULL };
	pid_t parent = getpid();
	uint64_t deadline;
	int fd;

	snprintf(log, sizeof(log), "%s/redis.log", r->dir);
	r->pid = fork();
	if (r->pid < 0)
		die("fork");
	if (r->pid == 0) {
		/* it dies with the test, however the test ends */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(1);
		execvp("redis-server", argv);
		_exit(127);
	}
	/* ready when it answers PING on the socket */
	deadline = rfx_now() + READY_DEADLINE_NS;
	for (;;) {
		redisContext *c = redisConnectUnix(r->sock);
		redisReply *rep = c && !c->err ? redisCommand(c, "PING") : NULL;
		bool ok = rep && rep->type == REDIS_REPLY_STATUS;

		if (rep)
			freeReplyObject(rep);
		if (c)
			redisFree(c);
		if (ok)
			return;
		if (rfx_now() > deadline) {
			fprintf(stderr, "redis fixture: redis-server did not answer on %s\n", r->sock);
			abort();
		}
		rfx_pace(5);
	}
}

void rfx_start(struct rfx *r)
{
	memset(r, 0, sizeof(*r));
	strcpy(r->dir, "/tmp/vrl-redis-XXXXXX");
	if (!mkdtemp(r->dir))
		die("mkdtemp");
	snprintf(r->sock, sizeof(r->sock), "%s/redis.sock", r->dir);
	snprintf(r->spec, sizeof(r->spec), "unix:%s", r->sock);
	spawn(r);
}

void rfx_kill(struct rfx *r)
{
	if (r->pid <= 0)
		return;
	kill(r->pid, SIGCONT);
	kill(r->pid, SIGKILL);
	waitpid(r->pid, NULL, 0);
	r->pid = 0;
}

void rfx_restart_empty(struct rfx *r)
{
	rfx_kill(r);
	unlink(r->sock);
	spawn(r);
}

void rfx_pause(struct rfx *r)
{
	kill(r->pid, SIGSTOP);
}

void rfx_resume(struct rfx *r)
{
	kill(r->pid, SIGCONT);
}

void rfx_stop(struct rfx *r)
{
	char path[160];

	rfx_kill(r);
	unlink(r->sock);
	snprintf(path, sizeof(path), "%s/redis.log", r->dir);
	unlink(path);
	rmdir(r->dir);
}

redisContext *rfx_connect(const struct rfx *r)
{
	redisContext *c = redisConnectUnix(r->sock);
	const char *argv[] = { "FUNCTION", "LOAD", "REPLACE", vrl_global_lua };
	size_t lens[] = { 8, 4, 7, vrl_global_lua_len };
	redisReply *rep;

	if (!c || c->err)
		die("connect to the fixture");
	if (vrl_global_lua_layout != (unsigned)atoi(RFX_LAYOUT)) {
		fprintf(stderr, "redis fixture: vrl.lua's LAYOUT is %u: update RFX_LAYOUT\n",
			vrl_global_lua_layout);
		abort();
	}
	rep = redisCommandArgv(c, 4, argv, lens);
	if (!rep || rep->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "FUNCTION LOAD: %s\n", rep ? rep->str : "no answer");
		abort();
	}
	freeReplyObject(rep);
	return c;
}

/* ---- simulated hosts ---------------------------------------------------------------- */

void sim_host_init(struct sim_host *h, const char *name, uint64_t term_us, uint64_t margin_us,
		   uint64_t hosts)
{
	memset(h, 0, sizeof(*h));
	snprintf(h->name, sizeof(h->name), "%s", name);
	h->boot = 1;
	h->term_us = term_us;
	h->margin_us = margin_us;
	h->hosts = hosts;
}

struct argv {
	const char *v[4096];
	size_t lens[4096];
	char *heap[4096];
	size_t n, nheap;
};

static void arg(struct argv *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void arg(struct argv *a, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		die("vasprintf");
	va_end(ap);
	a->heap[a->nheap++] = s;
	a->lens[a->n] = strlen(s);
	a->v[a->n++] = s;
}

/* Little-endian bytes of @v, @n of them, at @p. */
static uint8_t *le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static uint64_t from_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* The entries as vrl.lua's ENTRY packs them, one argument: kind, nine
 * u64, ttl (i64), the known list after its 16-bit length. */
static void arg_entries(struct argv *a, const struct sim_entry *e, size_t n)
{
	uint8_t *buf = malloc(n * (83 + 256) + 1), *p = buf;

	if (!buf)
		die("malloc");
	for (size_t i = 0; i < n; i++) {
		const char *known = e[i].known ? e[i].known : "";
		const uint64_t u[9] = { e[i].cap, e[i].per, e[i].bst, e[i].use, e[i].unmet,
					e[i].sa, e[i].sb, e[i].hold, e[i].cd };
		size_t kn = strlen(known) < 256 ? strlen(known) : 255;

		*p++ = (uint8_t)e[i].kind;
		for (int j = 0; j < 9; j++)
			p = le(p, u[j], 8);
		p = le(p, (uint64_t)e[i].ttl, 8);
		p = le(p, kn, 2);
		memcpy(p, known, kn);
		p += kn;
	}
	a->heap[a->nheap++] = (char *)buf;
	a->lens[a->n] = (size_t)(p - buf);
	a->v[a->n++] = (char *)buf;
}

static void argv_free(struct argv *a)
{
	for (size_t i = 0; i < a->nheap; i++)
		free(a->heap[i]);
}

static uint64_t u(const redisReply *r)
{
	return r->type == REDIS_REPLY_INTEGER ? (uint64_t)r->integer : 0;
}

int sim_call(redisContext *c, struct sim_host *h, bool release, const struct sim_entry *e,
	     size_t n, struct sim_answer *out)
{
	static struct argv a;
	uint64_t now = rfx_now(), ub = 0;
	redisReply *rep, *hd;
	int rc = 0;

	memset(&a, 0, sizeof(a));
	if (h->epoch[0])
		ub = (now - h->t_sent_prev) / 1000u + h->term_us;   /* the timeout: a term */
	h->seq = now / 1000u > h->seq ? now / 1000u : h->seq + 1;
	if (h->fixed_seq)
		h->seq = h->fixed_seq;
	h->t_send = now;
	arg(&a, "FCALL");
	arg(&a, "%s", release ? "vrl_release" : "vrl_renew");
	arg(&a, "%zu", n + 1);
	arg(&a, RFX_EPOCH_KEY);
	for (size_t i = 0; i < n; i++)
		arg(&a, RFX_KEY_PREFIX "%s", e[i].key);
	arg(&a, "%u", vrl_global_lua_protocol);
	arg(&a, "%s", h->name);
	arg(&a, "%llu", (unsigned long long)h->boot);
	arg(&a, "%llu", (unsigned long long)h->seq);
	arg(&a, "%s", h->epoch);
	arg(&a, "%s", h->registry);
	arg(&a, "%llu", (unsigned long long)ub);
	arg(&a, "%llu", (unsigned long long)h->term_us);
	arg(&a, "%llu", (unsigned long long)h->margin_us);
	arg(&a, "%llu", (unsigned long long)h->hosts);
	arg(&a, "%s", release ? "0" : "1");        /* a simulated host reports every key */
	arg(&a, "%zu", n);
	arg_entries(&a, e, n);
	rep = redisCommandArgv(c, (int)a.n, a.v, a.lens);
	argv_free(&a);
	if (!rep)
		die("sim_call: no answer");
	if (rep->type != REDIS_REPLY_ARRAY) {
		fprintf(stderr, "sim_call: %s\n", rep->type == REDIS_REPLY_ERROR ? rep->str : "?");
		freeReplyObject(rep);
		return -1;
	}
	hd = rep->element[0];
	snprintf(h->status, sizeof(h->status), "%s", hd->element[0]->str);
	if (strcmp(h->status, "ok") != 0) {
		freeReplyObject(rep);
		return -1;
	}
	snprintf(h->epoch, sizeof(h->epoch), "%s", hd->element[1]->str);
	h->vnow = u(hd->element[2]);
	h->t_sent_prev = now;
	h->fence_left = u(hd->element[3]);
	h->lost = (int)u(hd->element[4]);
	h->complete = (int)u(hd->element[5]);
	snprintf(h->registry, sizeof(h->registry), "%s", hd->element[6]->str);

	/* the answers, packed: code, five u64, the holders after their length */
	if (rep->elements != 2 || rep->element[1]->type != REDIS_REPLY_STRING) {
		fprintf(stderr, "sim_call: an answer of another shape\n");
		abort();
	}
	for (size_t i = 0, at = 0; i < n; i++) {
		const uint8_t *p = (const uint8_t *)rep->element[1]->str + at;
		size_t hn;

		if (rep->element[1]->len < at + 43 ||
		    rep->element[1]->len < at + 43 + (hn = from_le(p + 41, 2))) {
			fprintf(stderr, "sim_call: answers cut short\n");
			abort();
		}
		at += 43 + hn;
		if (!out)
			continue;
		memset(&out[i], 0, sizeof(out[i]));
		out[i].code = p[0];
		out[i].a = from_le(p + 1, 8);
		out[i].b = from_le(p + 9, 8);
		out[i].rel = from_le(p + 17, 8);
		out[i].target = from_le(p + 25, 8);
		out[i].cd = from_le(p + 33, 8);
		snprintf(out[i].holders, sizeof(out[i].holders), "%.*s", (int)hn,
			 (const char *)p + 43);
	}
	freeReplyObject(rep);
	return rc;
}

int sim_state(redisContext *c, const char *key, struct sim_state *s)
{
	redisReply *rep = redisCommand(c, "FCALL_RO vrl_state 2 " RFX_EPOCH_KEY " " RFX_KEY_PREFIX "%s",
				       key);
	redisReply *k, *hs;

	memset(s, 0, sizeof(*s));
	if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
		if (rep)
			freeReplyObject(rep);
		return -1;
	}
	s->vnow = u(rep->element[0]->element[1]);
	s->fence_left = u(rep->element[0]->element[2]);
	k = rep->element[1];
	snprintf(s->kind, sizeof(s->kind), "%s", k->element[0]->str);
	s->cap = u(k->element[1]);
	s->bst = u(k->element[2]);
	s->used = u(k->element[4]);
	snprintf(s->st, sizeof(s->st), "%s", k->element[5]->str);
	hs = k->element[8];
	for (size_t i = 0; i < hs->elements && i < 16; i++) {
		redisReply *x = hs->element[i];

		snprintf(s->h[i].host, sizeof(s->h[i].host), "%s", x->element[0]->str);
		s->h[i].a = u(x->element[1]);
		s->h[i].b = u(x->element[2]);
		s->h[i].rel = u(x->element[3]);
		s->nhosts++;
	}
	freeReplyObject(rep);
	return 0;
}
