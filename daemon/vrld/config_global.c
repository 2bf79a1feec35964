/*
 * config_global.c - the global: section (limits held across hosts through
 * Redis: daemon/global) and each limit's scope:.
 *
 *     global:
 *       redis: ["unix:/run/redis/redis.sock"]  # or "host:port"; up to 16
 *       host: a            # this vrld's id (default: the hostname)
 *       lease: 1s          # lease term
 *       on_partition: deny # or static: limit / hosts past the lease
 *       hosts: 3           # expected host count (static, and a rate's burst)
 *
 * scope: global asks for a limit held by every host together. A rate
 * limit can be (its keys take from a share word besides their GCRA:
 * lib/kinds/share.h), with burst >= hosts (lease.c says why) and a burst
 * a share word can count; a quota or slots limit too (an allocation of
 * units: lib/kinds/blocks.h), a slots count a block word can take back.
 * A kind this vrld cannot yet hold that way is refused here, by name: a
 * limit the config calls global is never held per host without saying so.
 */
#include "config_parse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "redis.h"
#include "blocks.h"
#include "share.h"

#define VRL_GLOBAL_LEASE_MIN_NS  UINT64_C(100000000)        /* 100ms */
#define VRL_GLOBAL_LEASE_MAX_NS  UINT64_C(600000000000)     /* 10min */
#define VRL_GLOBAL_LEASE_DEF_NS  UINT64_C(1000000000)       /* 1s */
#define VRL_GLOBAL_HOSTS_MAX     1024u

static int parse_endpoint(struct vrl_doc *d, yaml_node_t *n, const char *path,
			  struct vrl_global_settings *g)
{
	struct vrl_rconn probe;
	char *spec = g->redis[g->nredis];
	char why[200];

	if (g->nredis >= VRL_GLOBAL_ENDPOINTS_MAX)
		return fail(d, n, path, "too many endpoints, expected at most %u",
			    VRL_GLOBAL_ENDPOINTS_MAX);
	if (cfg_get_text(d, n, path, "a Redis endpoint such as \"unix:/run/redis/redis.sock\" "
			 "or \"127.0.0.1:6379\"", spec, sizeof(g->redis[0])))
		return -1;
	memset(&probe, 0, sizeof(probe));
	if (vrl_rconn_parse(&probe, spec, why, sizeof(why)) != 0)
		/* the reason names global.redis and the endpoint already */
		return fail(d, n, path, "%s", strchr(why, ' ') ? strchr(why, ' ') + 1 : why);
	for (unsigned i = 0; i < g->nredis; i++)
		if (strcmp(g->redis[i], spec) == 0)
			return fail(d, n, path, "\"%s\" is listed twice, expected each endpoint "
				    "once", spec);
	g->nredis++;
	return 0;
}

static int parse_redis(struct vrl_doc *d, yaml_node_t *v, struct vrl_global_settings *g)
{
	char where[VRL_PATH_MAX];

	if (v->type == YAML_SCALAR_NODE)
		return parse_endpoint(d, v, "global.redis", g);
	if (cfg_want_type(d, v, YAML_SEQUENCE_NODE, "global.redis",
			  "a list of Redis endpoints such as [\"unix:/run/redis/redis.sock\"]"))
		return -1;
	for (yaml_node_item_t *it = v->data.sequence.items.start;
	     it < v->data.sequence.items.top; it++) {
		cfg_pathf(where, "global.redis[%td]", it - v->data.sequence.items.start);
		if (parse_endpoint(d, cfg_node(d, *it), where, g))
			return -1;
	}
	if (g->nredis == 0)
		return fail(d, v, "global.redis", "an empty list, expected at least one Redis "
			    "endpoint");
	return 0;
}

static int parse_host(struct vrl_doc *d, yaml_node_t *v, struct vrl_global_settings *g)
{
	if (cfg_get_text(d, v, "global.host", "a host id such as a or web-1", g->host,
			 sizeof(g->host)))
		return -1;
	if (!g->host[0])
		return fail(d, v, "global.host", "an empty id, expected letters, digits, '.', "
			    "'_' and '-' such as web-1");
	for (const char *s = g->host; *s; s++)
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
		    !(*s >= '0' && *s <= '9') && !strchr("._-", *s))
			return fail(d, v, "global.host", "\"%s\" has '%c', expected letters, "
				    "digits, '.', '_' and '-' such as web-1", g->host, *s);
	return 0;
}

int cfg_parse_global(struct vrl_doc *d, yaml_node_t *map, struct vrl_global_settings *g)
{
	static const char *const keys[] = { "redis", "host", "lease", "on_partition", "hosts",
					    NULL };
	yaml_node_t *v, *hosts;
	uint64_t n;
	const char *s;

	if (cfg_want_type(d, map, YAML_MAPPING_NODE, "global", "a mapping of redis, host, "
			  "lease, on_partition, hosts") ||
	    cfg_check_keys(d, map, "global", keys))
		return -1;
	memset(g, 0, sizeof(*g));
	g->lease_ns = VRL_GLOBAL_LEASE_DEF_NS;
	g->hosts = 1;
	if (!(v = cfg_lookup(d, map, "redis")))
		return fail(d, map, "global", "missing redis:, expected the Redis endpoints "
			    "such as [\"unix:/run/redis/redis.sock\"]");
	if (parse_redis(d, v, g))
		return -1;
	if ((v = cfg_lookup(d, map, "host")) && parse_host(d, v, g))
		return -1;
	if ((v = cfg_lookup(d, map, "lease"))) {
		if (cfg_get_duration(d, v, "global.lease", &g->lease_ns))
			return -1;
		if (g->lease_ns < VRL_GLOBAL_LEASE_MIN_NS || g->lease_ns > VRL_GLOBAL_LEASE_MAX_NS)
			return fail(d, v, "global.lease", "expected a lease term from 100ms to "
				    "10min such as 1s");
	}
	if ((hosts = cfg_lookup(d, map, "hosts"))) {
		if (cfg_get_u64(d, hosts, "global.hosts", 1, &n))
			return -1;
		if (n > VRL_GLOBAL_HOSTS_MAX)
			return fail(d, hosts, "global.hosts", "expected at most %u hosts",
				    VRL_GLOBAL_HOSTS_MAX);
		g->hosts = (uint32_t)n;
	}
	if ((v = cfg_lookup(d, map, "on_partition"))) {
		if (!(s = cfg_want_scalar(d, v, "global.on_partition", "deny or static")))
			return -1;
		if (strcmp(s, "deny") == 0) {
			g->static_partition = false;
		} else if (strcmp(s, "static") == 0) {
			/* limit / hosts with a guessed count would over-grant */
			if (!hosts)
				return fail(d, v, "global.on_partition", "static needs hosts:, "
					    "the number of hosts that share each limit");
			g->static_partition = true;
		} else {
			return fail(d, v, "global.on_partition", "expected deny or static, got "
				    "\"%s\"", s);
		}
	}
	g->on = true;
	return 0;
}

/* A global rate: figures the engine can share, and a share word can hold. */
static int cfg_limit_global_rate(struct vrl_doc *d, yaml_node_t *n, const char *where,
				 struct vrl_seg_limit *l)
{
	char msg[400];

	if (vrl_global_check_rate(l->name, l->count, l->period_ns, l->burst,
				  d->p->global_hosts ? d->p->global_hosts : 1, msg, sizeof(msg)))
		return fail(d, n, where, "%s", msg);
	if (l->burst > VRL_SHARE_BURST_MAX)
		return fail(d, n, where, "global limit %s: burst %llu is above %llu, the most a "
			    "host's share can hold, expected a smaller burst or scope: host",
			    l->name, (unsigned long long)l->burst,
			    (unsigned long long)VRL_SHARE_BURST_MAX);
	l->flags |= VRL_LIMIT_GLOBAL;
	return 0;
}

/* A global quota or slots limit: units a host's block word can count
 * (blocks.h; a slots count is what the word may have to take back). */
static int cfg_limit_global_block(struct vrl_doc *d, yaml_node_t *n, const char *where,
				  struct vrl_seg_limit *l)
{
	if (l->kind == VRL_KIND_SLOTS && l->count > VRL_BLOCK_CREDIT_MAX)
		return fail(d, n, where, "global limit %s: count %llu is above %llu, the most "
			    "slots a host's share can hold, expected a smaller count or scope: "
			    "host", l->name, (unsigned long long)l->count,
			    (unsigned long long)VRL_BLOCK_CREDIT_MAX);
	l->flags |= VRL_LIMIT_GLOBAL;
	return 0;
}

int cfg_override_scope(struct vrl_doc *d, yaml_node_t *n, const char *path,
		       struct vrl_seg_limit *o)
{
	if (!(o->flags & VRL_LIMIT_GLOBAL))
		return 0;
	switch (o->kind) {
	case VRL_KIND_RATE:
		return cfg_limit_global_rate(d, n, path, o);
	case VRL_KIND_QUOTA:
	case VRL_KIND_SLOTS:
		return cfg_limit_global_block(d, n, path, o);
	default:
		return 0;
	}
}

int cfg_limit_scope(struct vrl_doc *d, yaml_node_t *n, const char *path,
		    struct vrl_seg_limit *l)
{
	char where[VRL_PATH_MAX];
	const char *s;

	cfg_pathf(where, "%s.scope", path);
	if (!(s = cfg_want_scalar(d, n, where, "global or host")))
		return -1;
	if (strcmp(s, "host") == 0)
		return 0;
	if (strcmp(s, "global") != 0)
		return fail(d, n, where, "expected global or host, got \"%s\"", s);
	if (!d->p->global)
		return fail(d, n, where, "global needs a global: section (redis:, host:, "
			    "lease:), expected one at the top of the config");
	if (l->kind == VRL_KIND_QUOTA || l->kind == VRL_KIND_SLOTS)
		return cfg_limit_global_block(d, n, where, l);
	if (l->kind != VRL_KIND_RATE)
		return fail(d, n, where, "kind %s cannot be global in this version of vrld, "
			    "expected scope: host (the default): it would hold the limit on each "
			    "host alone", cfg_kind_name(l->kind));
	return cfg_limit_global_rate(d, n, where, l);
}
