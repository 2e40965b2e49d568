// SPDX-License-Identifier: GPL-2.0
/*
 * dtrack: command-line client of the dtrack kernel module (per-mapping
 * dirty page tracking of any process over generic netlink).
 */
#include <stdio.h>
#include <string.h>
#include "cmd.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
	{ "version", cmd_version },
	{ "track", cmd_track },
	{ "untrack", cmd_untrack },
	{ "collect", cmd_collect },
	{ "list", cmd_list },
	{ "stats", cmd_stats },
	{ "watch", cmd_watch },
	{ "sample", cmd_sample },
};

static void usage(FILE *f)
{
	fputs("usage: dtrack COMMAND [ARGS]\n"
	      "\n"
	      "  version [--json]                 CLI, UAPI and module versions\n"
	      "  track PID ADDR LEN [--method M] [--persistent|--transient]\n"
	      "                                   track [ADDR, ADDR+LEN) of PID; prints the id\n"
	      "                                   (persistent by default: it outlives this command)\n"
	      "  collect ID [--reset] [--json]    dirty runs since the last reset: '0xADDR NPAGES'\n"
	      "  untrack ID                       destroy a tracker\n"
	      "  list [--json]                    all trackers\n"
	      "  stats ID [--json]                one tracker's state and counters\n"
	      "  watch [--json] [--count N] [--timeout MS]\n"
	      "                                   print events, one per line\n"
	      "  sample PID [--method M[,M...]] [--addr ADDR --len LEN] [--interval MS]\n"
	      "         [--count N] [--json]      dirty pages and collect cost per interval of\n"
	      "                                   every writable private mapping of PID (or of\n"
	      "                                   one range), several methods side by side\n"
	      "\n"
	      "Methods: softdirty (default), wpfault, hwdirty, accessed.\n"
	      "ADDR and LEN are decimal or 0x hex; LEN also takes K, M, G suffixes.\n"
	      "Exit status: 0 ok, 1 refused by the kernel or the system, 2 bad usage.\n",
	      f);
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2)
		return usage_error("missing command");
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("dtrack %s\n", DTRACK_CLI_VERSION);
		return 0;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	return usage_error("unknown command '%s'", argv[1]);
}
