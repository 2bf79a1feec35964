/*
 * config.h - vrld's configuration: YAML (libyaml) to a compiled config.
 *
 * The config is the single source of truth for every limit. vrld parses it,
 * validates all of it, and only then compiles it into the segment; a config
 * with any error is refused whole, with a message naming the file, the line
 * and the field.
 */
#ifndef VRL_CONFIG_H
#define VRL_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "duration.h"
#include "upkeep.h"
#include "segment.h"
#include "global.h"

#define VRL_CONFIG_ERR_MAX 512
#define VRL_ALERT_COMMAND_MAX 256     /* bytes of daemon.alert_command, NUL included */

#define VRL_PATH_TEXT_MAX 256

/* vrld's durability and observability settings (daemon: section). */
struct vrl_daemon_prod {
	char checkpoint[VRL_PATH_TEXT_MAX];  /* daemon.checkpoint ("" = none) */
	uint64_t checkpoint_interval_ns;     /* daemon.checkpoint_interval */
	char metrics[64];                    /* daemon.metrics: host:port ("" = off) */
	char metrics_textfile[VRL_PATH_TEXT_MAX]; /* daemon.metrics_textfile ("" = none) */
	mode_t metrics_textfile_mode;        /* daemon.metrics_textfile_mode (0644) */
	uint64_t metrics_top;                /* daemon.metrics_top: keys shown per scrape */
};

/* Limits held across hosts through Redis (global: section; daemon/global). */
struct vrl_global_settings {
	bool on;                      /* global: written */
	char redis[VRL_GLOBAL_ENDPOINTS_MAX][128];   /* global.redis, as written */
	unsigned nredis;
	char host[VRL_GLOBAL_HOST_MAX + 1];          /* global.host ("" = the hostname) */
	uint64_t lease_ns;            /* global.lease */
	bool static_partition;        /* global.on_partition: static (else deny) */
	uint32_t hosts;               /* global.hosts */
};
struct vrl_daemon_config {
	struct vrl_seg_spec seg;      /* segment: name, mode, group, keys */
	char group[64];               /* segment.group as written ("" = none) */
	uint64_t max_size;            /* segment.max_size: bytes the segment may take */
	uint64_t sweep_interval_ns;   /* daemon.sweep_interval */
	uint64_t idle_evict_ns;       /* daemon.idle_evict */
	char alert_command[VRL_ALERT_COMMAND_MAX]; /* daemon.alert_command ("" = none) */
	struct vrl_daemon_prod prod;  /* daemon.checkpoint*, daemon.metrics* */
	struct vrl_seg_config cfg;    /* limits and flags, ready to publish */
	struct vrl_global_settings global;  /* global: (on false: none) */
};

/*
 * Parse @text (named @source in messages) into @out. Returns 0, or -1 with
 * "source:line:column: field: what is wrong" in @err.
 */
int vrl_config_parse(const char *text, size_t len, const char *source,
		     struct vrl_daemon_config *out, char err[VRL_CONFIG_ERR_MAX]);

/* Read and parse the file @path. Errors as vrl_config_parse (or the
 * errno text when the file cannot be read). */
int vrl_config_load(const char *path, struct vrl_daemon_config *out,
		    char err[VRL_CONFIG_ERR_MAX]);

/* The built-in default config: every provider preset. */
int vrl_config_default(struct vrl_daemon_config *out, char err[VRL_CONFIG_ERR_MAX]);

/* The YAML text of a built-in preset by name ("default", "smartcar",
 * "samsara", "carsxe", "evenergy"), or NULL. */
const char *vrl_config_preset(const char *name);

#endif /* VRL_CONFIG_H */
