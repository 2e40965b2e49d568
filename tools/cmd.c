// SPDX-License-Identifier: GPL-2.0
/*
 * The dtrack commands.  Each returns the process exit status: 0 on success,
 * 1 when the module or the system refused (the kernel's extack message and
 * strerror are printed), 2 on bad command-line input.
 */
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"

int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("dtrack: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'dtrack help' for usage.\n", stderr);
	return 2;
}

/* Print "dtrack: WHAT: EXTACK: STRERROR" and return the failure status. */
int fail(const struct dt_nl *nl, const char *what, int err)
{
	if (nl && nl->extack[0])
		fprintf(stderr, "dtrack: %s: %s: %s\n", what, nl->extack,
			strerror(-err));
	else
		fprintf(stderr, "dtrack: %s: %s\n", what, strerror(-err));
	return 1;
}

int open_family(struct dt_nl *nl)
{
	int err = dt_nl_open(nl);

	if (err == -ENOENT) {
		fprintf(stderr,
			"dtrack: dtrack module is not loaded (generic netlink family \"%s\" not found)\n",
			DTRACK_GENL_NAME);
		return 1;
	}
	if (err)
		return fail(NULL, "cannot open generic netlink socket", err);
	return 0;
}

/* "0x..." is hex, anything else decimal (a leading 0 is not octal). */
static int number_base(const char *s)
{
	return s[0] == '0' && (s[1] == 'x' || s[1] == 'X') ? 16 : 10;
}

int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, number_base(s));
	if (errno || *end || end == s)
		return -1;
	return 0;
}

int parse_u32(const char *s, uint32_t *v)
{
	uint64_t x;

	if (parse_u64(s, &x) || x > UINT32_MAX)
		return -1;
	*v = x;
	return 0;
}

/* Decimal or hex, with an optional K/M/G/T suffix (binary units). */
int parse_size(const char *s, uint64_t *v)
{
	unsigned int shift = 0;
	char *end;
	uint64_t x;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	errno = 0;
	x = strtoull(s, &end, number_base(s));
	if (errno || end == s)
		return -1;
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K':
		shift = 10;
		break;
	case 'm': case 'M':
		shift = 20;
		break;
	case 'g': case 'G':
		shift = 30;
		break;
	case 't': case 'T':
		shift = 40;
		break;
	default:
		return -1;
	}
	if (shift) {
		end++;
		if (!strcmp(end, "iB") || !strcmp(end, "B"))
			end += strlen(end);
		if (*end || x > (UINT64_MAX >> shift))
			return -1;
	}
	*v = x << shift;
	return 0;
}

int parse_method_arg(const char *s, uint32_t *method)
{
	int m = dt_method_parse(s);

	if (m <= 0)
		return usage_error("unknown method '%s' (softdirty, wpfault, hwdirty or accessed)",
				   s);
	*method = m;
	return 0;
}

static int parse_id_arg(const char *s, uint32_t *id)
{
	if (parse_u32(s, id) || !*id)
		return usage_error("bad tracker id '%s'", s);
	return 0;
}

/* ---- version --------------------------------------------------------- */

int cmd_version(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{}
	};
	struct dt_version v;
	struct dt_nl nl;
	bool json = false;
	int c, err;

	while ((c = getopt_long(argc, argv, "j", opts, NULL)) != -1) {
		if (c != 'j')
			return usage_error("usage: dtrack version [--json]");
		json = true;
	}
	if (optind != argc)
		return usage_error("usage: dtrack version [--json]");
	err = dt_nl_open(&nl);
	if (err == -ENOENT) {
		if (!json) {
			printf("cli %s\nuapi %u\n", DTRACK_CLI_VERSION,
			       DTRACK_GENL_VERSION);
			fflush(stdout);
		}
		return open_family(&nl);
	}
	if (err)
		return fail(NULL, "cannot open generic netlink socket", err);
	err = dt_get_version(&nl, &v);
	if (err) {
		fail(&nl, "get version", err);
		dt_nl_close(&nl);
		return 1;
	}
	dt_print_version(stdout, &v, json);
	if (v.uapi_version != DTRACK_GENL_VERSION)
		fprintf(stderr,
			"dtrack: warning: module speaks UAPI %u, this CLI %u\n",
			v.uapi_version, DTRACK_GENL_VERSION);
	dt_nl_close(&nl);
	return 0;
}

/* ---- track / untrack ------------------------------------------------- */

#define TRACK_USAGE \
	"usage: dtrack track PID ADDR LEN [--method softdirty|wpfault|hwdirty|accessed] [--persistent]"

int cmd_track(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "method", required_argument, NULL, 'm' },
		{ "persistent", no_argument, NULL, 'p' },
		{ "transient", no_argument, NULL, 't' },
		{}
	};
	uint32_t method = DTRACK_METHOD_SOFTDIRTY, pid, id;
	uint32_t flags = DTRACK_F_PERSISTENT;
	uint64_t addr, len;
	struct dt_nl nl;
	int c, err;

	while ((c = getopt_long(argc, argv, "m:pt", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (parse_method_arg(optarg, &method))
				return 2;
			break;
		case 'p':
			flags |= DTRACK_F_PERSISTENT;
			break;
		case 't':
			/* dies with this command: only useful for testing */
			flags &= ~DTRACK_F_PERSISTENT;
			break;
		default:
			return usage_error(TRACK_USAGE);
		}
	}
	if (argc - optind != 3)
		return usage_error(TRACK_USAGE);
	if (parse_u32(argv[optind], &pid) || !pid)
		return usage_error("bad pid '%s'", argv[optind]);
	if (parse_u64(argv[optind + 1], &addr))
		return usage_error("bad address '%s'", argv[optind + 1]);
	if (parse_size(argv[optind + 2], &len) || !len)
		return usage_error("bad length '%s'", argv[optind + 2]);
	if (open_family(&nl))
		return 1;
	err = dt_create(&nl, pid, addr, len, method, flags, &id);
	if (err) {
		fail(&nl, "track", err);
		dt_nl_close(&nl);
		return 1;
	}
	printf("%u\n", id);
	dt_nl_close(&nl);
	return 0;
}

int cmd_untrack(int argc, char **argv)
{
	struct dt_nl nl;
	uint32_t id;
	int err;

	if (argc != 2)
		return usage_error("usage: dtrack untrack ID");
	if (parse_id_arg(argv[1], &id))
		return 2;
	if (open_family(&nl))
		return 1;
	err = dt_destroy(&nl, id);
	if (err)
		fail(&nl, "untrack", err);
	dt_nl_close(&nl);
	return err ? 1 : 0;
}

/* ---- collect --------------------------------------------------------- */

static void print_run(const struct dt_collect *c, const struct dt_run *run,
		      void *data)
{
	(void)c;
	(void)data;
	printf("0x%" PRIx64 " %" PRIu64 "\n", run->addr, run->pages);
}

static void print_collect_json(const struct dt_collect *c)
{
	struct dt_json j;
	size_t i;

	dt_json_init(&j, stdout);
	dt_json_obj_begin(&j, NULL);
	dt_json_u64(&j, "id", c->id);
	dt_json_u64(&j, "epoch", c->epoch);
	dt_json_bool(&j, "conservative",
		     c->result_flags & DTRACK_RESULT_CONSERVATIVE);
	dt_json_u64(&j, "nr_dirty", (c->has & DT_HAS(DTRACK_A_NR_DIRTY)) ?
					    c->nr_dirty : c->pages);
	dt_json_arr_begin(&j, "runs");
	for (i = 0; i < c->nr_runs; i++) {
		dt_json_obj_begin(&j, NULL);
		dt_json_u64(&j, "addr", c->runs[i].addr);
		dt_json_u64(&j, "pages", c->runs[i].pages);
		dt_json_obj_end(&j);
	}
	dt_json_arr_end(&j);
	dt_json_obj_end(&j);
	dt_json_end_line(&j);
}

#define COLLECT_USAGE "usage: dtrack collect ID [--reset] [--json] [--bitmap]"

int cmd_collect(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "reset", no_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "bitmap", no_argument, NULL, 'b' },
		{}
	};
	struct dt_collect col;
	uint32_t flags = 0, id;
	bool json = false;
	struct dt_nl nl;
	int c, err;

	while ((c = getopt_long(argc, argv, "rjb", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			flags |= DTRACK_COLLECT_RESET;
			break;
		case 'b':
			/* compact answer, decoded into the same runs */
			flags |= DTRACK_COLLECT_BITMAP;
			break;
		case 'j':
			json = true;
			break;
		default:
			return usage_error(COLLECT_USAGE);
		}
	}
	if (argc - optind != 1)
		return usage_error(COLLECT_USAGE);
	if (parse_id_arg(argv[optind], &id))
		return 2;
	if (open_family(&nl))
		return 1;
	if (json) {
		err = dt_collect(&nl, id, flags, &col);
		if (!err) {
			print_collect_json(&col);
			dt_collect_free(&col);
		}
	} else {
		err = dt_collect_stream(&nl, id, flags, &col, print_run, NULL);
	}
	if (err)
		fail(&nl, "collect", err);
	else if (col.result_flags & DTRACK_RESULT_CONSERVATIVE)
		fprintf(stderr,
			"dtrack: note: epoch %" PRIu64 " is conservative (a superset of the writes)\n",
			col.epoch);
	dt_nl_close(&nl);
	return err ? 1 : 0;
}

/* ---- list / stats ---------------------------------------------------- */

static bool want_json(int argc, char **argv, const char *usage, int nargs,
		      int *status)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{}
	};
	bool json = false;
	int c;

	*status = 0;
	while ((c = getopt_long(argc, argv, "j", opts, NULL)) != -1) {
		if (c != 'j') {
			*status = usage_error("%s", usage);
			return false;
		}
		json = true;
	}
	if (argc - optind != nargs)
		*status = usage_error("%s", usage);
	return json;
}

int cmd_list(int argc, char **argv)
{
	struct dt_tracker *ts = NULL;
	struct dt_json j;
	struct dt_nl nl;
	size_t n = 0, i;
	bool json;
	int status, err;

	json = want_json(argc, argv, "usage: dtrack list [--json]", 0, &status);
	if (status)
		return status;
	if (open_family(&nl))
		return 1;
	err = dt_list(&nl, &ts, &n);
	if (err) {
		fail(&nl, "list", err);
		dt_nl_close(&nl);
		return 1;
	}
	if (json) {
		dt_json_init(&j, stdout);
		dt_json_arr_begin(&j, NULL);
		for (i = 0; i < n; i++)
			dt_print_tracker_json(&j, &ts[i]);
		dt_json_arr_end(&j);
		dt_json_end_line(&j);
	} else {
		dt_print_tracker_header(stdout);
		for (i = 0; i < n; i++)
			dt_print_tracker_line(stdout, &ts[i]);
	}
	free(ts);
	dt_nl_close(&nl);
	return 0;
}

int cmd_stats(int argc, char **argv)
{
	struct dt_tracker t;
	struct dt_json j;
	struct dt_nl nl;
	uint32_t id;
	bool json;
	int status, err;

	json = want_json(argc, argv, "usage: dtrack stats ID [--json]", 1,
			 &status);
	if (status)
		return status;
	if (parse_id_arg(argv[optind], &id))
		return 2;
	if (open_family(&nl))
		return 1;
	err = dt_get_tracker(&nl, id, &t);
	if (err) {
		fail(&nl, "stats", err);
		dt_nl_close(&nl);
		return 1;
	}
	if (json) {
		dt_json_init(&j, stdout);
		dt_print_tracker_json(&j, &t);
		dt_json_end_line(&j);
	} else {
		dt_print_stats_text(stdout, &t);
	}
	dt_nl_close(&nl);
	return 0;
}

/* ---- watch ----------------------------------------------------------- */

struct watch_ctx {
	bool json;
	uint64_t left;		/* events still to print, 0: unlimited */
};

static int watch_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[DTRACK_A_MAX + 1] = {};
	const struct genlmsghdr *genl = mnl_nlmsg_get_payload(nlh);
	struct watch_ctx *ctx = data;
	struct dt_event e;

	if (nlh->nlmsg_type < NLMSG_MIN_TYPE || genl->cmd != DTRACK_CMD_EVENT)
		return MNL_CB_OK;
	if (dt_parse(nlh, tb))
		return MNL_CB_OK;	/* garbled: skip it, keep watching */
	dt_parse_event(tb, &e);
	dt_print_event(stdout, &e, ctx->json);
	fflush(stdout);
	if (ctx->left && !--ctx->left)
		return MNL_CB_STOP;
	return MNL_CB_OK;
}

#define WATCH_USAGE "usage: dtrack watch [--json] [--count N] [--timeout MS]"

int cmd_watch(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "count", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{}
	};
	struct watch_ctx ctx = {};
	uint32_t timeout_ms = 0;
	struct dt_nl nl;
	int c, err;

	while ((c = getopt_long(argc, argv, "jc:t:", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			ctx.json = true;
			break;
		case 'c':
			if (parse_u64(optarg, &ctx.left) || !ctx.left)
				return usage_error("bad count '%s'", optarg);
			break;
		case 't':
			if (parse_u32(optarg, &timeout_ms) ||
			    timeout_ms > INT32_MAX)
				return usage_error("bad timeout '%s'", optarg);
			break;
		default:
			return usage_error(WATCH_USAGE);
		}
	}
	if (optind != argc)
		return usage_error(WATCH_USAGE);
	if (open_family(&nl))
		return 1;
	err = dt_nl_subscribe(&nl);
	if (err) {
		fail(&nl, "cannot join the events group", err);
		dt_nl_close(&nl);
		return 1;
	}
	for (;;) {
		err = dt_nl_listen(&nl, timeout_ms ? (int)timeout_ms : -1,
				   watch_cb, &ctx);
		if (err != -ENOBUFS)
			break;
		/* the socket overran: say so, keep watching */
		fprintf(stderr, "dtrack: watch: events lost (receive buffer overrun)\n");
	}
	if (err == -ETIMEDOUT && !ctx.left)
		err = 0;	/* watched for the time asked */
	if (err == -ETIMEDOUT)
		fprintf(stderr, "dtrack: watch: %" PRIu64 " event(s) missing after %u ms\n",
			ctx.left, timeout_ms);
	else if (err)
		fail(&nl, "watch", err);
	dt_nl_close(&nl);
	return err ? 1 : 0;
}
