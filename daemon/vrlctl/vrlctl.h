/*
 * vrlctl.h - internals shared by the files of vrlctl, the operator's tool
 * for a live vrl segment.
 *
 * vrlctl.c parses the command line (getopt_long) into a struct ctl and
 * dispatches; status.c shows the segment, view.c its keys (keys, show),
 * top.c the live view; ops.c holds the commands that write (reset,
 * cooldown, acquire), events.c lists the alert events, reload.c asks vrld
 * to reload, hash.c shows labels, global.c the limits held across hosts
 * (vrld's global status area, read by gstatus_read.c). fmt.c formats
 * text and tables, json_writer.c builds --json output with json-c.
 */
#ifndef VRLCTL_H
#define VRLCTL_H

#include <stdbool.h>
#include <stdint.h>

#include "vrl_internal.h"

#define CTL_EXIT_OK     0   /* done; acquire: granted */
#define CTL_EXIT_NO     1   /* acquire: denied; show: no such key */
#define CTL_EXIT_ERROR  2   /* usage error, or the segment could not be used */

#define CTL_ATTRS_MAX   16  /* --attr options one command takes */

/* Options a command accepts (struct ctl_cmd.opts). */
#define OPT_REQUEST     0x01u   /* --api --endpoint --token --org --vehicle --user --attr */
#define OPT_LIMIT       0x02u   /* keys: --limit NAME */
#define OPT_TOP         0x04u   /* keys: --top N */
#define OPT_COST        0x08u   /* acquire: --cost N */
#define OPT_WAIT        0x10u   /* acquire: --wait DURATION */
#define OPT_ALL         0x20u   /* cooldown, reset: --all instead of LIMIT */
#define OPT_ONCE        0x40u   /* top: --once, one frame */

/* Everything the command line said. */
struct ctl {
	const char *segment;
	bool json;
	const char *command;
	const char *pos[4];          /* positional arguments after the command */
	unsigned npos;
	unsigned given;              /* OPT_* bits seen */
	struct vrl_request req;
	struct vrl_attr attrs[CTL_ATTRS_MAX];
	const char *limit_filter;    /* --limit */
	uint64_t top;                /* --top, 0: all */
	uint64_t cost;               /* --cost, 0: 1 */
	uint64_t wait_ns;            /* --wait */
	bool all;                    /* --all */
	bool once;                   /* --once */
};

/* Open the segment (read-only or not); on failure report and return NULL. */
struct vrl_client *ctl_open(const struct ctl *x, bool readonly);

/*
 * Report an error about the segment: "vrlctl: segment NAME: what" on
 * stderr, and with --json an {"error":...} object on stdout.
 * Returns CTL_EXIT_ERROR.
 */
int ctl_fail(const struct ctl *x, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Print a command's usage on stderr. Returns CTL_EXIT_ERROR. */
int ctl_usage_error(const char *command, const char *why);

/* A short name for a limit kind: "rate", "gate". */
const char *ctl_kind_name(uint32_t kind);

int ctl_cmd_status(const struct ctl *x);
int ctl_cmd_keys(const struct ctl *x);
int ctl_cmd_show(const struct ctl *x);
int ctl_cmd_reset(const struct ctl *x);
int ctl_cmd_cooldown(const struct ctl *x);
int ctl_cmd_acquire(const struct ctl *x);
int ctl_cmd_events(const struct ctl *x);
int ctl_cmd_reload(const struct ctl *x);
int ctl_cmd_top(const struct ctl *x);
int ctl_cmd_hash(const struct ctl *x);
int ctl_cmd_global(const struct ctl *x);

#endif /* VRLCTL_H */
