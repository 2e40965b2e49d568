// SPDX-License-Identifier: GPL-2.0
/*
 * dtrack sample: the live dirty-rate experiment.  Tracks every writable
 * private mapping of a running process (from /proc/PID/maps), or one given
 * range, with one tracker per mapping and method, then every interval
 * collects and resets them all and prints how many pages were dirtied and
 * what the collection cost.  Several methods (--method a,b,c) are sampled
 * side by side over the same mappings.
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

#define MAX_METHODS 4

struct mapping {
	uint64_t start;
	uint64_t end;
	char name[64];
	uint32_t id[MAX_METHODS];	/* 0: not tracked */
	uint64_t dirty[MAX_METHODS];	/* this interval */
	uint64_t cost_ns[MAX_METHODS];	/* this interval */
};

struct sample {
	uint32_t pid;
	uint32_t methods[MAX_METHODS];
	int nr_methods;
	struct mapping *maps;
	size_t nr_maps;
	bool json;
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

static struct mapping *add_mapping(struct sample *s, size_t *cap)
{
	struct mapping *m;

	if (s->nr_maps == *cap) {
		*cap = *cap ? *cap * 2 : 32;
		m = realloc(s->maps, *cap * sizeof(*m));
		if (!m)
			return NULL;
		s->maps = m;
	}
	m = &s->maps[s->nr_maps++];
	memset(m, 0, sizeof(*m));
	return m;
}

static int read_maps(struct sample *s)
{
	char path[64], *line = NULL;
	size_t line_cap = 0, cap = 0;
	struct mapping *m;
	int err = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/maps", s->pid);
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
		m = add_mapping(s, &cap);
		if (!m) {
			err = -ENOMEM;
			break;
		}
		m->start = start;
		m->end = end;
		snprintf(m->name, sizeof(m->name), "%s",
			 name[0] ? name : "[anon]");
	}
	free(line);
	fclose(f);
	return err;
}

/* Track what can be tracked; returns the number of trackers or -errno. */
static int track_all(struct dt_nl *nl, struct sample *s)
{
	int nr = 0, err, k;
	size_t i;

	for (k = 0; k < s->nr_methods; k++) {
		for (i = 0; i < s->nr_maps; i++) {
			struct mapping *m = &s->maps[i];

			err = dt_create(nl, s->pid, m->start, m->end - m->start,
					s->methods[k], 0, &m->id[k]);
			if (err == -EOPNOTSUPP || err == -EPERM ||
			    err == -ESRCH || err == -EACCES || err == -ENOSPC)
				return err;
			if (err) {
				/* e.g. the mapping went away meanwhile */
				fprintf(stderr,
					"dtrack: sample: skipping 0x%" PRIx64 "-0x%" PRIx64 " %s: %s%s%s\n",
					m->start, m->end, m->name, nl->extack,
					nl->extack[0] ? ": " : "",
					strerror(-err));
				m->id[k] = 0;
				continue;
			}
			nr++;
		}
	}
	return nr;
}

static void print_header(const struct sample *s, uint32_t interval_ms,
			 int nr)
{
	int k;

	printf("# pid %u, %d trackers over %zu mappings, interval %u ms\n",
	       s->pid, nr, s->nr_maps, interval_ms);
	if (s->nr_methods == 1) {
		printf("# method %s\n%-8s %12s %12s %12s\n",
		       dt_method_name(s->methods[0]), "INTERVAL", "DIRTY_PAGES",
		       "DIRTY_KIB", "COLLECT_US");
		return;
	}
	printf("%-8s", "INTERVAL");
	for (k = 0; k < s->nr_methods; k++) {
		char col[32];

		snprintf(col, sizeof(col), "%s_PAGES",
			 dt_method_name(s->methods[k]));
		printf(" %16s", col);
		snprintf(col, sizeof(col), "%s_US",
			 dt_method_name(s->methods[k]));
		printf(" %14s", col);
	}
	putchar('\n');
}

static void print_interval(const struct sample *s, uint64_t interval,
			   uint64_t elapsed_ns, const uint64_t *dirty,
			   const uint64_t *cost)
{
	struct dt_json j;
	size_t i;
	int k;

	if (!s->json) {
		if (s->nr_methods == 1) {
			printf("%-8" PRIu64 " %12" PRIu64 " %12" PRIu64
			       " %12.1f\n", interval, dirty[0],
			       dirty[0] * DT_PAGE_SIZE / 1024, cost[0] / 1000.0);
			return;
		}
		printf("%-8" PRIu64, interval);
		for (k = 0; k < s->nr_methods; k++)
			printf(" %16" PRIu64 " %14.1f", dirty[k],
			       cost[k] / 1000.0);
		putchar('\n');
		return;
	}
	dt_json_init(&j, stdout);
	dt_json_obj_begin(&j, NULL);
	dt_json_u64(&j, "interval", interval);
	dt_json_u64(&j, "elapsed_ns", elapsed_ns);
	dt_json_arr_begin(&j, "methods");
	for (k = 0; k < s->nr_methods; k++) {
		dt_json_obj_begin(&j, NULL);
		dt_json_str(&j, "method", dt_method_name(s->methods[k]));
		dt_json_u64(&j, "dirty_pages", dirty[k]);
		dt_json_u64(&j, "collect_ns", cost[k]);
		dt_json_arr_begin(&j, "mappings");
		for (i = 0; i < s->nr_maps; i++) {
			const struct mapping *m = &s->maps[i];

			if (!m->id[k])
				continue;
			dt_json_obj_begin(&j, NULL);
			dt_json_u64(&j, "id", m->id[k]);
			dt_json_u64(&j, "addr", m->start);
			dt_json_u64(&j, "pages",
				    (m->end - m->start) / DT_PAGE_SIZE);
			dt_json_str(&j, "name", m->name);
			dt_json_u64(&j, "dirty_pages", m->dirty[k]);
			dt_json_u64(&j, "collect_ns", m->cost_ns[k]);
			dt_json_obj_end(&j);
		}
		dt_json_arr_end(&j);
		dt_json_obj_end(&j);
	}
	dt_json_arr_end(&j);
	dt_json_obj_end(&j);
	dt_json_end_line(&j);
}

/* "a,b,c" -> methods; 0 or the usage status */
static int parse_methods(struct sample *s, char *list)
{
	char *tok, *save;
	uint32_t m;

	s->nr_methods = 0;
	for (tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (s->nr_methods == MAX_METHODS)
			return usage_error("at most %d methods", MAX_METHODS);
		if (parse_method_arg(tok, &m))
			return 2;
		s->methods[s->nr_methods++] = m;
	}
	if (!s->nr_methods)
		return usage_error("no method given");
	return 0;
}

/* One interval: collect and reset every tracker; 0, 1 (error) or -1 (exit) */
static int sample_once(struct dt_nl *nl, struct sample *s, uint64_t *dirty,
		       uint64_t *cost)
{
	struct dt_collect col;
	uint64_t t0;
	size_t i;
	int k, err;

	for (k = 0; k < s->nr_methods; k++) {
		dirty[k] = cost[k] = 0;
		for (i = 0; i < s->nr_maps; i++) {
			struct mapping *m = &s->maps[i];

			if (!m->id[k])
				continue;
			t0 = now_ns();
			err = dt_collect_stream(nl, m->id[k],
						DTRACK_COLLECT_RESET, &col,
						NULL, NULL);
			m->cost_ns[k] = now_ns() - t0;
			if (err && kill(s->pid, 0) && errno == ESRCH) {
				fprintf(stderr, "dtrack: sample: process %u exited\n",
					s->pid);
				return -1;
			}
			if (err) {
				fail(nl, "sample: collect", err);
				return 1;
			}
			m->dirty[k] = col.pages;
			dirty[k] += col.pages;
			cost[k] += m->cost_ns[k];
		}
	}
	return 0;
}

#define SAMPLE_USAGE \
	"usage: dtrack sample PID [--method M[,M...]] [--addr ADDR --len LEN] [--interval MS] [--count N] [--json]"

int cmd_sample(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "method", required_argument, NULL, 'm' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'c' },
		{ "addr", required_argument, NULL, 'a' },
		{ "len", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{}
	};
	struct sample s = {
		.methods = { DTRACK_METHOD_SOFTDIRTY },
		.nr_methods = 1,
	};
	uint64_t count = 0, k, start_ns, last_ns, addr = 0, len = 0;
	uint64_t dirty[MAX_METHODS], cost[MAX_METHODS];
	uint32_t interval_ms = 1000;
	struct sigaction sa = {};
	int c, err, nr, status = 0;
	bool have_addr = false;
	struct dt_nl nl;
	size_t i;

	while ((c = getopt_long(argc, argv, "m:i:c:a:l:j", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			status = parse_methods(&s, optarg);
			if (status)
				return status;
			break;
		case 'i':
			if (parse_u32(optarg, &interval_ms) || !interval_ms)
				return usage_error("bad interval '%s'", optarg);
			break;
		case 'c':
			if (parse_u64(optarg, &count))
				return usage_error("bad count '%s'", optarg);
			break;
		case 'a':
			if (parse_u64(optarg, &addr))
				return usage_error("bad address '%s'", optarg);
			have_addr = true;
			break;
		case 'l':
			if (parse_size(optarg, &len) || !len)
				return usage_error("bad length '%s'", optarg);
			break;
		case 'j':
			s.json = true;
			break;
		default:
			return usage_error(SAMPLE_USAGE);
		}
	}
	if (argc - optind != 1)
		return usage_error(SAMPLE_USAGE);
	if (parse_u32(argv[optind], &s.pid) || !s.pid)
		return usage_error("bad pid '%s'", argv[optind]);
	if (have_addr != !!len)
		return usage_error("--addr and --len go together");

	if (have_addr) {
		size_t cap = 0;
		struct mapping *m = add_mapping(&s, &cap);

		if (!m)
			return fail(NULL, "sample", -ENOMEM);
		m->start = addr;
		m->end = addr + len;
		snprintf(m->name, sizeof(m->name), "[range]");
	} else {
		err = read_maps(&s);
		if (err) {
			free(s.maps);
			return fail(NULL, "sample: cannot read the process's mappings",
				    err);
		}
	}
	if (!s.nr_maps) {
		fprintf(stderr, "dtrack: sample: process %u has no writable private mapping\n",
			s.pid);
		free(s.maps);
		return 1;
	}
	if (open_family(&nl)) {
		free(s.maps);
		return 1;
	}
	nr = track_all(&nl, &s);
	if (nr <= 0) {
		fail(&nl, "sample: track", nr ? nr : -ENOENT);
		status = 1;
		goto out;
	}

	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (!s.json)
		print_header(&s, interval_ms, nr);
	fflush(stdout);

	start_ns = last_ns = now_ns();
	for (k = 1; !stop && (!count || k <= count); k++) {
		uint64_t target = start_ns + k * interval_ms * 1000000ULL, now;
		struct timespec next = {
			.tv_sec = target / 1000000000ULL,
			.tv_nsec = target % 1000000000ULL,
		};

		while (!stop && clock_nanosleep(CLOCK_MONOTONIC,
						TIMER_ABSTIME, &next, NULL))
			;
		if (stop)
			break;
		err = sample_once(&nl, &s, dirty, cost);
		if (err) {
			status = err > 0 ? 1 : 0;
			break;
		}
		now = now_ns();
		print_interval(&s, k, now - last_ns, dirty, cost);
		fflush(stdout);
		last_ns = now;
	}
out:
	for (i = 0; i < s.nr_maps; i++)
		for (c = 0; c < s.nr_methods; c++)
			if (s.maps[i].id[c])
				dt_destroy(&nl, s.maps[i].id[c]);
	dt_nl_close(&nl);
	free(s.maps);
	return status;
}
