/*
 * vrlctl.c - the operator's tool for a live vrl segment: command line,
 * dispatch, opening the segment and reporting errors.
 *
 *   vrlctl [-s|--segment NAME] [--json] COMMAND ...
 *
 * Options are parsed by getopt_long, before or after the command.
 *
 * Read-only commands map the segment read-only and change nothing, so they
 * are safe on a production host; reset, cooldown and acquire map it
 * read-write and act through the same calls a worker makes.
 */
#include "vrlctl.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "json_writer.h"

#define OPT_GLOBAL  0x100u  /* --segment, --json: any command */
#define OPT_HELP    0x200u
#define OPT_VERSION 0x400u

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
	{ "global", "global", 0, ctl_cmd_global },
};

static const char usage_text[] =
	"usage: vrlctl [-s|--segment NAME] [--json] COMMAND [ARGS]\n"
	"       vrlctl -h|--help | -V|--version\n"
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
	"                                       redrawn every INTERVAL (1s) until q;\n"
	"                                       --once: one frame\n"
	"  reload [--wait DURATION]             make vrld reload its config; exit 1 if\n"
	"                                       it refused (the error is printed)\n"
	"  global                               limits held across hosts: Redis endpoints,\n"
	"                                       this host's share of each global key\n"
	"  hash [VALUE]                         the label (#hash) key views show for a\n"
	"                                       secret value; no VALUE: one per line on\n"
	"                                       stdin (keeps it out of history and ps)\n"
	"\n"
	"REQUEST:  --api X --endpoint X --token X --org X --vehicle X --user X\n"
	"          --attr NAME=VALUE (repeatable)\n"
	"DURATION: 30s, 1.5min, 250ms, 0.40235 (a bare number is seconds)\n"
	"--json:   print one JSON object on stdout\n"
	"\n"
	"exit status: 0 done (acquire: granted); 1 acquire denied, show found no key,\n"
	"             status or global found no vrld serving the segment, or global\n"
	"             found no global: section;\n"
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
	return vrl_kind_name(kind);
}

/* ---- the command line ------------------------------------------------------ */

/* Long options without a short form: getopt_long returns these. */
enum {
	O_JSON = 0x100, O_API, O_ENDPOINT, O_TOKEN, O_ORG, O_VEHICLE, O_USER, O_ATTR,
	O_LIMIT, O_TOP, O_COST, O_WAIT, O_ALL, O_ONCE, O_VERSION,
};

/* "-": operands come back in order (as option 1), among the options. */
static const char short_opts[] = "-s:hV";

static const struct option long_opts[] = {
	{ "segment", required_argument, NULL, 's' },
	{ "json", no_argument, NULL, O_JSON },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ "api", required_argument, NULL, O_API },
	{ "endpoint", required_argument, NULL, O_ENDPOINT },
	{ "token", required_argument, NULL, O_TOKEN },
	{ "org", required_argument, NULL, O_ORG },
	{ "vehicle", required_argument, NULL, O_VEHICLE },
	{ "user", required_argument, NULL, O_USER },
	{ "attr", required_argument, NULL, O_ATTR },
	{ "limit", required_argument, NULL, O_LIMIT },
	{ "top", required_argument, NULL, O_TOP },
	{ "cost", required_argument, NULL, O_COST },
	{ "wait", required_argument, NULL, O_WAIT },
	{ "all", no_argument, NULL, O_ALL },
	{ "once", no_argument, NULL, O_ONCE },
	{ NULL, 0, NULL, 0 },
};

/* The OPT_* bit of option @o: which commands may take it. */
static unsigned option_bit(int o)
{
	switch (o) {
	case 's': case O_JSON: return OPT_GLOBAL;
	case 'h': return OPT_HELP;
	case 'V': return OPT_VERSION;
	case O_LIMIT: return OPT_LIMIT;
	case O_TOP: return OPT_TOP;
	case O_COST: return OPT_COST;
	case O_WAIT: return OPT_WAIT;
	case O_ALL: return OPT_ALL;
	case O_ONCE: return OPT_ONCE;
	}
	return OPT_REQUEST;
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
static int set_option(struct ctl *x, int o, const char *val)
{
	switch (o) {
	case 's': x->segment = val; return 0;
	case O_JSON: x->json = true; return 0;
	case O_API: x->req.api = val; return 0;
	case O_ENDPOINT: x->req.endpoint = val; return 0;
	case O_TOKEN: x->req.token = val; return 0;
	case O_ORG: x->req.org = val; return 0;
	case O_VEHICLE: x->req.vehicle = val; return 0;
	case O_USER: x->req.user = val; return 0;
	case O_ATTR: return set_attr(x, val);
	case O_LIMIT: x->limit_filter = val; return 0;
	case O_TOP: return vrl_parse_count(val, NULL, &x->top);
	case O_COST: return vrl_parse_count(val, NULL, &x->cost) || x->cost == 0 ? -1 : 0;
	case O_WAIT: return vrl_parse_duration(val, &x->wait_ns);
	case O_ALL: x->all = true; return 0;
	case O_ONCE: x->once = true; return 0;
	}
	return 0;
}

/* Why getopt_long refused the option at optind - 1, as the user wrote it. */
static const char *refused(int argc, char **argv, char *why, size_t len)
{
	const char *arg = optind - 1 < argc ? argv[optind - 1] : "?";
	int name = (int)strcspn(arg, "=");

	if (optopt == 0 || (optopt < 0x100 && optopt != 's'))
		snprintf(why, len, "unknown option %.*s", optopt ? 2 : name, arg);
	else if (arg[name] == '=')
		snprintf(why, len, "option %.*s takes no value", name, arg);
	else
		snprintf(why, len, "option %s needs a value", arg);
	return why;
}

/*
 * Parse the whole command line with getopt_long, options before and after
 * the command alike ("-" in short_opts returns operands in order, as 1).
 * Returns NULL, or a usage error message.
 */
static const char *parse_args(struct ctl *x, int argc, char **argv)
{
	static char why[160];
	int o, idx;

	opterr = 0;
	while ((o = getopt_long(argc, argv, short_opts, long_opts, &idx)) != -1) {
		if (o == '?' || o == ':')
			return refused(argc, argv, why, sizeof(why));
		if (o == 1) {
			if (!x->command)
				x->command = optarg;
			else if (x->npos < sizeof(x->pos) / sizeof(x->pos[0]))
				x->pos[x->npos++] = optarg;
			else
				return "too many arguments";
			continue;
		}
		x->given |= option_bit(o);
		if (set_option(x, o, optarg) != 0) {
			snprintf(why, sizeof(why), "bad value for --%s: %s",
				 o == 's' ? "segment" : long_opts[idx].name, optarg);
			return why;
		}
	}
	/* operands after "--" */
	for (; optind < argc; optind++) {
		if (!x->command)
			x->command = argv[optind];
		else if (x->npos < sizeof(x->pos) / sizeof(x->pos[0]))
			x->pos[x->npos++] = argv[optind];
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

/* `vrlctl COMMAND --help`: the command's usage, on stdout. */
static int command_help(const struct ctl_cmd *cmd)
{
	printf("usage: vrlctl [-s NAME] [--json] %s\n", cmd->synopsis);
	puts("run vrlctl --help for REQUEST and DURATION");
	return CTL_EXIT_OK;
}

static int dispatch(struct ctl *x)
{
	const struct ctl_cmd *cmd = find_command(x->command);
	unsigned extra;

	if (x->given & OPT_VERSION) {
		printf("vrlctl %s\n", VRL_VERSION_STRING);
		return CTL_EXIT_OK;
	}
	if ((x->given & OPT_HELP) && !cmd) {
		fputs(usage_text, stdout);
		return CTL_EXIT_OK;
	}
	if (!x->command) {
		fputs(usage_text, stderr);
		return CTL_EXIT_ERROR;
	}
	if (!cmd)
		return ctl_usage_error(NULL, "unknown command; see the list below");
	if (x->given & OPT_HELP)
		return command_help(cmd);
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
