// SPDX-License-Identifier: GPL-2.0
/*
 * dtrack sample: the live dirty-rate experiment.  Tracks every writable
 * private mapping of a running process (from /proc/PID/maps) with one
 * tracker each, then every interval collects and resets them all and prints
 * how many pages were dirtied and what the collection cost.
 *
 * The trackers are not persistent: they end with this command, however it
 * ends.  Mappings created after the start are not followed.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cmd.h"

struct mapping {
	uint64_t start;
	uint64_t end;
	uint32_t id;
	uint64_t dirty;		/* this interval */
	uint64_t cost_ns;	/* this interval */
	char name[64];
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int read_maps(uint32_t pid, struct mapping **out, size_t *n)
{
	struct mapping *maps = NULL, *m;
	size_t nr = 0, cap = 0;
	char path[64], *line = NULL;
	size_t line_cap = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (getline(&line, &line_cap, f) > 0) {
		unsigned long long start, end;
		char perms[8] = "", name[256] = "";

		if (sscanf(line, "%llx-%llx %7s %*s %*s %*s %255[^\n]", &start,
			   &end, perms, name) < 3)
			continue;
		/* writable and private: what a process dirties itself */
		if (perms[1] != 'w' || perms[3] != 'p')
			continue;
		if (nr == cap) {
			cap = cap ? cap * 2 : 32;
			m = realloc(maps, cap * sizeof(*m));
			if (!m) {
				free(maps);
				free(line);
				fclose(f);
				return -ENOMEM;
			}
			maps = m;
		}
		m = &maps[nr++];
		memset(m, 0, sizeof(*m));
		m->start = start;
		m->end = end;
		snprintf(m->name, sizeof(m->name), "%s",
			 name[0] ? name : "[anon]");
	}
	free(line);
	fclose(f);
	*out = maps;
	*n = nr;
	return 0;
}

static void print_interval_json(uint64_t interval, uint64_t elapsed_ns,
				uint64_t dirty, uint64_t cost_ns,
				const struct mapping *maps, size_t n)
{
	struct dt_json j;
	size_t i;

	dt_json_init(&j, stdout);
	dt_json_obj_begin(&j, NULL);
	dt_json_u64(&j, "interval", interval);
	dt_json_u64(&j, "elapsed_ns", elapsed_ns);
	dt_json_u64(&j, "dirty_pages", dirty);
	dt_json_u64(&j, "collect_ns", cost_ns);
	dt_json_arr_begin(&j, "mappings");
	for (i = 0; i < n; i++) {
		if (!maps[i].id)
			continue;
		dt_json_obj_begin(&j, NULL);
		dt_json_u64(&j, "id", maps[i].id);
		dt_json_u64(&j, "addr", maps[i].start);
		dt_json_u64(&j, "pages",
			    (maps[i].end - maps[i].start) / DT_PAGE_SIZE);
		dt_json_str(&j, "name", maps[i].name);
		dt_json_u64(&j, "dirty_pages", maps[i].dirty);
		dt_json_u64(&j, "collect_ns", maps[i].cost_ns);
		dt_json_obj_end(&j);
	}
	dt_json_arr_end(&j);
	dt_json_obj_end(&j);
	dt_json_end_line(&j);
}

/* Track what can be tracked; returns the number of trackers or -errno. */
static int track_all(struct dt_nl *nl, uint32_t pid, uint32_t method,
		     struct mapping *maps, size_t n, bool json)
{
	int nr = 0, err;
	size_t i;

	for (i = 0; i < n; i++) {
		err = dt_create(nl, pid, maps[i].start,
				maps[i].end - maps[i].start, method, 0,
				&maps[i].id);
		if (err == -EOPNOTSUPP || err == -EPERM || err == -ESRCH ||
		    err == -EACCES)
			return err;
		if (err) {
			/* e.g. the mapping went away meanwhile */
			if (!json)
				fprintf(stderr,
					"dtrack: sample: skipping 0x%" PRIx64 "-0x%" PRIx64 " %s: %s%s%s\n",
					maps[i].start, maps[i].end,
					maps[i].name,
					nl->extack, nl->extack[0] ? ": " : "",
					strerror(-err));
			maps[i].id = 0;
			continue;
		}
		nr++;
	}
	return nr;
}

#define SAMPLE_USAGE \
	"usage: dtrack sample PID [--method M] [--interval MS] [--count N] [--json]"

int cmd_sample(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "method", required_argument, NULL, 'm' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{}
	};
	uint32_t method = DTRACK_METHOD_SOFTDIRTY, pid, interval_ms = 1000;
	uint64_t count = 0, k, start_ns, last_ns;
	struct mapping *maps = NULL;
	struct sigaction sa = {};
	size_t n = 0, i;
	struct dt_nl nl;
	bool json = false;
	int c, err, nr, status = 0;

	while ((c = getopt_long(argc, argv, "m:i:c:j", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (parse_method_arg(optarg, &method))
				return 2;
			break;
		case 'i':
			if (parse_u32(optarg, &interval_ms) || !interval_ms)
				return usage_error("bad interval '%s'", optarg);
			break;
		case 'c':
			if (parse_u64(optarg, &count))
				return usage_error("bad count '%s'", optarg);
			break;
		case 'j':
			json = true;
			break;
		default:
			return usage_error(SAMPLE_USAGE);
		}
	}
	if (argc - optind != 1)
		return usage_error(SAMPLE_USAGE);
	if (parse_u32(argv[optind], &pid) || !pid)
		return usage_error("bad pid '%s'", argv[optind]);

	err = read_maps(pid, &maps, &n);
	if (err)
		return fail(NULL, "sample: cannot read the process's mappings",
			    err);
	if (!n) {
		fprintf(stderr, "dtrack: sample: process %u has no writable private mapping\n",
			pid);
		free(maps);
		return 1;
	}
	if (open_family(&nl)) {
		free(maps);
		return 1;
	}
	nr = track_all(&nl, pid, method, maps, n, json);
	if (nr <= 0) {
		fail(&nl, "sample: track", nr ? nr : -ENOENT);
		status = 1;
		goto out;
	}

	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (!json)
		printf("# pid %u, method %s, %d mappings, interval %u ms\n"
		       "%-8s %12s %12s %12s\n", pid, dt_method_name(method),
		       nr, interval_ms, "INTERVAL", "DIRTY_PAGES", "DIRTY_KIB",
		       "COLLECT_US");
	fflush(stdout);

	start_ns = last_ns = now_ns();
	for (k = 1; !stop && (!count || k <= count); k++) {
		struct timespec next;
		uint64_t target = start_ns + k * interval_ms * 1000000ULL;
		uint64_t dirty = 0, cost = 0, t0, now;

		next.tv_sec = target / 1000000000ULL;
		next.tv_nsec = target % 1000000000ULL;
		while (!stop && clock_nanosleep(CLOCK_MONOTONIC,
						TIMER_ABSTIME, &next, NULL))
			;
		if (stop)
			break;
		for (i = 0; i < n; i++) {
			struct dt_collect col;

			if (!maps[i].id)
				continue;
			t0 = now_ns();
			err = dt_collect_stream(&nl, maps[i].id,
						DTRACK_COLLECT_RESET, &col,
						NULL, NULL);
			maps[i].cost_ns = now_ns() - t0;
			if (err && kill(pid, 0) && errno == ESRCH) {
				fprintf(stderr, "dtrack: sample: process %u exited\n",
					pid);
				goto out;
			}
			if (err) {
				fail(&nl, "sample: collect", err);
				status = 1;
				goto out;
			}
			maps[i].dirty = col.pages;
			dirty += col.pages;
			cost += maps[i].cost_ns;
		}
		now = now_ns();
		if (json)
			print_interval_json(k, now - last_ns, dirty, cost,
					    maps, n);
		else
			printf("%-8" PRIu64 " %12" PRIu64 " %12" PRIu64
			       " %12.1f\n", k, dirty,
			       dirty * DT_PAGE_SIZE / 1024, cost / 1000.0);
		fflush(stdout);
		last_ns = now;
	}
out:
	for (i = 0; i < n; i++)
		if (maps[i].id)
			dt_destroy(&nl, maps[i].id);
	dt_nl_close(&nl);
	free(maps);
	return status;
}
