/*
 * vrlctl.c - the operator's tool for a live vrl segment: command line,
 * dispatch, opening the segment and reporting errors.
 *
 *   vrlctl [-s|--segment NAME] [--json] COMMAND ...
 *
 * Read-only commands map the segment read-only and change nothing, so they
 * are safe on a production host; reset, cooldown and acquire map it
 * read-write and act through the same calls a worker makes.
 */
#include "vrlctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "json_writer.h"

#define OPT_GLOBAL  0x100u  /* --segment, --json: any command */
#define OPT_HELP    0x200u

struct ctl_cmd {
	const char *name;
	const char *synopsis;
	unsigned opts;              /* OPT_* it accepts */
	int (*run)(const struct ctl *x);
};

static const struct ctl_cmd commands[] = {
	{ "status", "status", 0, ctl_cmd_status },
	{ "keys", "keys [--limit NAME] [--top N]", OPT_LIMIT | OPT_TOP, ctl_cmd_keys },
	{ "show", "show LIMIT [REQUEST]", OPT_REQUEST, ctl_cmd_show },
	{ "reset", "reset (LIMIT | --all) [REQUEST]", OPT_REQUEST | OPT_ALL, ctl_cmd_reset },
	{ "cooldown", "cooldown (LIMIT | --all) DURATION [REQUEST]", OPT_REQUEST | OPT_ALL,
	  ctl_cmd_cooldown },
	{ "acquire", "acquire [REQUEST] [--cost N] [--wait DURATION]",
	  OPT_REQUEST | OPT_COST | OPT_WAIT, ctl_cmd_acquire },
	{ "events", "events", 0, ctl_cmd_events },
	{ "reload", "reload [--wait DURATION]", OPT_WAIT, ctl_cmd_reload },
	{ "top", "top [--top N] [--wait INTERVAL] [--once]", OPT_TOP | OPT_WAIT | OPT_ONCE,
	  ctl_cmd_top },
	{ "hash", "hash [VALUE]  (no VALUE: one per line on stdin)", 0, ctl_cmd_hash },
};

static const char usage_text[] =
	"usage: vrlctl [-s|--segment NAME] [--json] COMMAND [ARGS]\n"
	"\n"
	"Inspect and operate a live vrl segment (NAME defaults to $VRL_SEGMENT, then /vrl).\n"
	"\n"
	"commands:\n"
	"  status                               segment, counters, vrld, limits\n"
	"  keys [--limit NAME] [--top N]        live keys, fewest permits left first\n"
	"  show LIMIT [REQUEST]                 one key in detail\n"
	"  reset (LIMIT | --all) [REQUEST]      refill a key and lift its cooldown\n"
	"  cooldown (LIMIT | --all) DURATION [REQUEST]\n"
	"                                       close a key for every worker\n"
	"  acquire [REQUEST] [--cost N] [--wait DURATION]\n"
	"                                       take permits, as a worker would\n"
	"  events                               recent alert events (thresholds crossed)\n"
	"  top [--top N] [--wait INTERVAL] [--once]\n"
	"                                       busiest keys and keys nearest their limits,\n"
	"                                       redrawn every INTERVAL (1s); --once: one frame\n"
	"  reload [--wait DURATION]             make vrld reload its config; exit 1 if\n"
	"                                       it refused (the error is printed)\n"
	"  hash [VALUE]                         the label (#hash) key views show for a\n"
	"                                       secret value; no VALUE: one per line on\n"
	"                                       stdin (keeps it out of history and ps)\n"
	"\n"
	"REQUEST:  --api X --endpoint X --token X --org X --vehicle X --user X\n"
	"          --attr NAME=VALUE (repeatable)\n"
	"DURATION: 30s, 1.5min, 250ms, 0.40235 (a bare number is seconds)\n"
	"--json:   print one JSON object on stdout\n"
	"\n"
	"exit status: 0 done (acquire: granted); 1 acquire denied, or show found no key;\n"
	"             2 usage error, or the segment could not be used.\n";

/* ---- errors -------------------------------------------------------------- */

int ctl_usage_error(const char *command, const char *why)
{
	if (why)
		fprintf(stderr, "vrlctl: %s\n", why);
	for (size_t i = 0; command && i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, command) != 0)
			continue;
		fprintf(stderr, "usage: vrlctl [-s NAME] [--json] %s\n", commands[i].synopsis);
		fputs("run vrlctl --help for REQUEST and DURATION\n", stderr);
		return CTL_EXIT_ERROR;
	}
	fputs(usage_text, stderr);
	return CTL_EXIT_ERROR;
}

int ctl_fail(const struct ctl *x, int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "vrlctl: segment %s: %s\n", x->segment, msg);
	if (x->json) {
		struct json j;

		json_init(&j, stdout);
		json_obj_begin(&j, NULL);
		json_str(&j, "segment", x->segment);
		json_str(&j, "error", err ? vrl_err_name(err) : "EUSAGE");
		json_i64(&j, "code", err);
		json_str(&j, "message", msg);
		json_obj_end(&j);
		json_finish(&j);
	}
	return CTL_EXIT_ERROR;
}

/* What to do about a failed vrl_open. */
static const char *open_advice(int err, bool readonly)
{
	if (err == -EACCES)
		return readonly ? "permission denied: the segment's mode and group come from "
				  "vrld's config (segment.mode, segment.group); run vrlctl as "
				  "a member of that group" :
				  "permission denied: this command writes to the segment; run "
				  "vrlctl as a user with write access (segment.mode, "
				  "segment.group in vrld's config)";
	if (err == -EINVAL)
		return "not a valid segment name: it looks like /vrl (a slash, then up to "
		       "62 characters, no other slash)";
	return vrl_strerror(err);
}

struct vrl_client *ctl_open(const struct ctl *x, bool readonly)
{
	struct vrl_client *c = NULL;
	int rc = vrl_open(x->segment, readonly ? VRL_OPEN_READONLY : 0, &c);

	if (rc == 0)
		return c;
	ctl_fail(x, rc, "%s", open_advice(rc, readonly));
	return NULL;
}

/* ---- helpers shared by the commands -------------------------------------- */

const char *ctl_kind_name(uint32_t kind)
{
	switch (kind) {
	case VRL_KIND_RATE: return "rate";
	case VRL_KIND_GATE: return "gate";
	case VRL_KIND_WINDOW: return "window";
	case VRL_KIND_QUOTA: return "quota";
	case VRL_KIND_SLOTS: return "slots";
	}
	return "unknown";
}

/* ---- the command line ------------------------------------------------------ */

struct ctl_opt {
	const char *name;
	char short_name;
	bool has_arg;
	unsigned bit;
};

static const struct ctl_opt options[] = {
	{ "segment", 's', true, OPT_GLOBAL },
	{ "json", 0, false, OPT_GLOBAL },
	{ "help", 'h', false, OPT_HELP },
	{ "api", 0, true, OPT_REQUEST },
	{ "endpoint", 0, true, OPT_REQUEST },
	{ "token", 0, true, OPT_REQUEST },
	{ "org", 0, true, OPT_REQUEST },
	{ "vehicle", 0, true, OPT_REQUEST },
	{ "user", 0, true, OPT_REQUEST },
	{ "attr", 0, true, OPT_REQUEST },
	{ "limit", 0, true, OPT_LIMIT },
	{ "top", 0, true, OPT_TOP },
	{ "cost", 0, true, OPT_COST },
	{ "wait", 0, true, OPT_WAIT },
	{ "all", 0, false, OPT_ALL },
	{ "once", 0, false, OPT_ONCE },
};

static const struct ctl_opt *find_option(const char *arg, size_t len)
{
	for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
		const struct ctl_opt *o = &options[i];

		if (arg[1] != '-' && len == 2 && o->short_name && arg[1] == o->short_name)
			return o;
		if (arg[1] == '-' && strlen(o->name) == len - 2 &&
		    strncmp(arg + 2, o->name, len - 2) == 0)
			return o;
	}
	return NULL;
}

static int set_attr(struct ctl *x, const char *val)
{
	const char *eq = strchr(val, '=');
	struct vrl_attr *a;
	char *name;

	if (!eq || eq == val || x->req.nattrs == CTL_ATTRS_MAX)
		return -1;
	name = strndup(val, (size_t)(eq - val));
	if (!name)
		return -1;
	a = &x->attrs[x->req.nattrs++];
	a->name = name;
	a->value = eq + 1;
	return 0;
}

/* Store the value of option @o. Returns 0 or -1 for a bad value. */
static int set_option(struct ctl *x, const struct ctl_opt *o, const char *val)
{
	const char *n = o->name;

	if (strcmp(n, "segment") == 0) x->segment = val;
	else if (strcmp(n, "json") == 0) x->json = true;
	else if (strcmp(n, "api") == 0) x->req.api = val;
	else if (strcmp(n, "endpoint") == 0) x->req.endpoint = val;
	else if (strcmp(n, "token") == 0) x->req.token = val;
	else if (strcmp(n, "org") == 0) x->req.org = val;
	else if (strcmp(n, "vehicle") == 0) x->req.vehicle = val;
	else if (strcmp(n, "user") == 0) x->req.user = val;
	else if (strcmp(n, "attr") == 0) return set_attr(x, val);
	else if (strcmp(n, "limit") == 0) x->limit_filter = val;
	else if (strcmp(n, "top") == 0) return vrl_parse_count(val, NULL, &x->top);
	else if (strcmp(n, "cost") == 0) return vrl_parse_count(val, NULL, &x->cost) || x->cost == 0 ? -1 : 0;
	else if (strcmp(n, "wait") == 0) return vrl_parse_duration(val, &x->wait_ns);
	else if (strcmp(n, "all") == 0) x->all = true;
	else if (strcmp(n, "once") == 0) x->once = true;
	return 0;
}

/* One option at argv[*i]. Returns 0, or a message for a usage error. */
static const char *parse_option(struct ctl *x, int argc, char **argv, int *i)
{
	static char why[160];
	const char *arg = argv[*i], *eq = strchr(arg, '='), *val = NULL;
	size_t len = arg[1] == '-' && eq ? (size_t)(eq - arg) : strlen(arg);
	const struct ctl_opt *o = find_option(arg, len);

	if (!o) {
		snprintf(why, sizeof(why), "unknown option %.*s", (int)len, arg);
		return why;
	}
	if (o->has_arg) {
		val = arg[1] == '-' && eq ? eq + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
		if (!val) {
			snprintf(why, sizeof(why), "option --%s needs a value", o->name);
			return why;
		}
	} else if (arg[1] == '-' && eq) {
		snprintf(why, sizeof(why), "option --%s takes no value", o->name);
		return why;
	}
	x->given |= o->bit;
	if (set_option(x, o, val) != 0) {
		snprintf(why, sizeof(why), "bad value for --%s: %s", o->name, val);
		return why;
	}
	return NULL;
}

/* Parse the whole command line. Returns NULL, or a usage error message. */
static const char *parse_args(struct ctl *x, int argc, char **argv)
{
	bool options_done = false;

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *why;

		if (!options_done && strcmp(arg, "--") == 0) {
			options_done = true;
			continue;
		}
		if (!options_done && arg[0] == '-' && arg[1] != '\0') {
			why = parse_option(x, argc, argv, &i);
			if (why)
				return why;
			continue;
		}
		if (!x->command)
			x->command = arg;
		else if (x->npos < sizeof(x->pos) / sizeof(x->pos[0]))
			x->pos[x->npos++] = arg;
		else
			return "too many arguments";
	}
	return NULL;
}

static const struct ctl_cmd *find_command(const char *name)
{
	for (size_t i = 0; name && i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void free_attrs(struct ctl *x)
{
	for (size_t i = 0; i < x->req.nattrs; i++)
		free((char *)x->attrs[i].name);
}

static int dispatch(struct ctl *x)
{
	const struct ctl_cmd *cmd = find_command(x->command);
	unsigned extra;

	if (!x->command || ((x->given & OPT_HELP) && !cmd)) {
		fputs(usage_text, (x->given & OPT_HELP) ? stdout : stderr);
		return CTL_EXIT_ERROR;
	}
	if (!cmd)
		return ctl_usage_error(NULL, "unknown command; see the list below");
	if (x->given & OPT_HELP)
		return ctl_usage_error(cmd->name, NULL);
	extra = x->given & ~(cmd->opts | OPT_GLOBAL);
	if (extra)
		return ctl_usage_error(cmd->name, "an option that this command does not take");
	return cmd->run(x);
}

int main(int argc, char **argv)
{
	struct ctl x;
	const char *env = getenv("VRL_SEGMENT"), *why;
	int rc;

	memset(&x, 0, sizeof(x));
	x.segment = env && env[0] ? env : VRL_DEFAULT_SEGMENT;
	x.req.attrs = x.attrs;
	why = parse_args(&x, argc, argv);
	if (why)
		rc = ctl_usage_error(x.command, why);
	else
		rc = dispatch(&x);
	free_attrs(&x);
	return rc;
}
