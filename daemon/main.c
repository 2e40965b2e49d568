// SPDX-License-Identifier: GPL-2.0
/*
 * pagerd - external pager for anonymous memory (see daemon/README.md).
 *
 *   pagerd [--socket PATH] [--budget SIZE] [--threads N]
 *          [--wp-mode auto|async|sync] [-v]
 *   pagerd --stats [--json] [--socket PATH]
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "pagerd.h"
#include "uffd_compat.h"

struct pagerd pd = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};
int pagerd_verbose;

static void vlog(const char *lvl, const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "pagerd[%d]: %s%s\n", getpid(), lvl, msg);
}

void pr_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
}

void pr_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("error: ", fmt, ap);
	va_end(ap);
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		end++;
		break;
	case 0:
		break;
	default:
		return -EINVAL;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int run_stats(const char *path, bool json)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pager_range_req req;
	static char buf[sizeof(struct pager_reply) + PAGER_MAX_MSG + 1];
	struct pager_reply *rep = (struct pager_reply *)buf;
	ssize_t n;
	int fd;

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || strlen(path) >= sizeof(sa.sun_path))
		return 1;
	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "pagerd: connect %s: %s\n", path,
			strerror(errno));
		return 1;
	}
	memset(&req, 0, sizeof(req));
	req.hdr.magic = PAGER_MAGIC;
	req.hdr.type = PAGER_MSG_STATS_TEXT;
	req.hdr.flags = json ? PAGER_STATS_JSON : 0;
	req.hdr.len = sizeof(req);
	if (send(fd, &req, sizeof(req), MSG_NOSIGNAL) != sizeof(req))
		return 1;
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n < (ssize_t)sizeof(*rep) || rep->status)
		return 1;
	buf[n] = 0;
	fputs(buf + sizeof(*rep), stdout);
	return 0;
}

/* What the kernel offers (reported; see README for what is used). */
static void probe_uffd(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);

	if (fd < 0)
		return;
	if (!ioctl(fd, UFFDIO_API, &api))
		pd.uffd_features = api.features;
	close(fd);
}

/*
 * Asynchronous write-protection is only lossless together with UFFDIO_MOVE
 * eviction (README, "Dirty tracking"), so it needs both features.
 */
bool pager_kernel_has_wp_async(void)
{
	uint64_t need = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_MOVE;

	return (pd.uffd_features & need) == need;
}

/*
 * Decide the write-protect mode.  "async" and "auto" use asynchronous WP
 * where the kernel has WP_ASYNC and MOVE (6.8+), and fall back to
 * synchronous WP on kernels without them (6.1).  "auto" selects async
 * again since bug 3 (a write lost across a pagerd SIGKILL) is fixed: the
 * SIGKILL fuzzer and the pager suite pass in async mode (README, "Dirty
 * tracking"; docs/reliability.md).
 */
static int pager_select_wp_mode(const char *want)
{
	bool async = strcmp(want, "sync") != 0;

	pd.wp_async = async && pager_kernel_has_wp_async();
	if (!strcmp(want, "async") && !pd.wp_async)
		pr_info("--wp-mode async: kernel lacks WP_ASYNC or MOVE, "
			"using synchronous write-protection");
	return 0;
}

/*
 * pagerd holds other processes' memory: when the OOM killer picks it, every
 * client's faults wait for ever (and dirty pages not yet written are only
 * in the clients).  So it asks to be spared (-1000 by default,
 * --oom-score-adj keep leaves the inherited value).  Lowering the value
 * needs CAP_SYS_RESOURCE; without it pagerd says so and runs on.
 */
static void set_oom_score_adj(const char *val)
{
	int fd;

	if (!strcmp(val, "keep"))
		return;
	fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		pr_info("cannot set oom_score_adj to %s: %s (an OOM kill of "
			"pagerd blocks its clients)", val, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: pagerd [--socket PATH] [--budget SIZE] [--threads N]\n"
		"              [--client-timeout MS] [--wp-mode auto|async|sync]\n"
		"              [--oom-score-adj N|keep] [--fail-fsync PATH]"
		" [--spin-us US] [--no-follow]\n"
		"              [--fault-around PAGES] [--fail-staging PATH]"
		" [--fail-fill PATH] [-v]\n"
		"       pagerd --stats [--json] [--socket PATH]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "budget", required_argument, NULL, 'b' },
		{ "threads", required_argument, NULL, 't' },
		{ "client-timeout", required_argument, NULL, 'T' },
		{ "wp-mode", required_argument, NULL, 'W' },
		{ "oom-score-adj", required_argument, NULL, 'O' },
		{ "fail-fsync", required_argument, NULL, 'F' },
		{ "fail-staging", required_argument, NULL, 'G' },
		{ "fail-fill", required_argument, NULL, 'R' },
		{ "spin-us", required_argument, NULL, 'P' },
		{ "no-follow", no_argument, NULL, 'N' },
		{ "fault-around", required_argument, NULL, 'A' },
		{ "stats", no_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *path = getenv("PAGER_SOCKET");
	const char *wp_mode = "auto";
	const char *oom_adj = "-1000";
	uint64_t budget = 64ULL << 20;
	bool stats = false, json = false;
	int threads = 4, opt, ret, sig;
	sigset_t set;

	pd.client_timeout_ms = 10000;
	/* polling only pays where the faulting thread runs elsewhere */
	pd.spin_ns = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 50 * 1000 : 0;
	pd.follow = sysconf(_SC_NPROCESSORS_ONLN) > 1;
	pd.fa_pages = FA_DEFAULT;
	while ((opt = getopt_long(argc, argv, "s:b:t:T:W:O:F:G:R:P:NA:Sjvh", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			path = optarg;
			break;
		case 'b':
			if (parse_size(optarg, &budget) || budget < PAGE_SIZE)
				usage();
			break;
		case 't':
			threads = atoi(optarg);
			if (threads < 1 || threads > 256)
				usage();
			break;
		case 'T':
			pd.client_timeout_ms = atoi(optarg);
			if (pd.client_timeout_ms < 1)
				usage();
			break;
		case 'N':
			pd.follow = false;
			break;
		case 'A': {
			char *end;
			long v = strtol(optarg, &end, 10);

			/* a power of two: chunks are aligned (fault.c) */
			if (*end || end == optarg || v < 0 || v > RA_MAX_MAP ||
			    v == 1 || (v & (v - 1))) {
				fprintf(stderr, "pagerd: --fault-around takes 0 (off) "
					"or a power of two from 2 to %d pages\n",
					RA_MAX_MAP);
				return 2;
			}
			pd.fa_pages = v;
			break;
		}
		case 'P':
			if (atoi(optarg) < 0 || atoi(optarg) > 10000)
				usage();
			pd.spin_ns = atoi(optarg) * 1000ULL;
			break;
		case 'W':
			if (strcmp(optarg, "auto") && strcmp(optarg, "async") &&
			    strcmp(optarg, "sync"))
				usage();
			wp_mode = optarg;
			break;
		case 'O': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (strcmp(optarg, "keep") &&
			    (*end || end == optarg || v < -1000 || v > 1000))
				usage();
			oom_adj = optarg;
			break;
		}
		case 'F':
			/* testing: fsyncs of backing files fail while it exists */
			pd.fail_fsync_path = optarg;
			break;
		case 'G':
			/* testing: reads of clients' staging fail meanwhile */
			pd.fail_staging_path = optarg;
			break;
		case 'R':
			/* testing: every fill fails meanwhile (EIO) */
			pd.fail_fill_path = optarg;
			break;
		case 'S':
			stats = true;
			break;
		case 'j':
			json = true;
			break;
		case 'v':
			pagerd_verbose = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (!path || !*path)
		path = PAGER_DEFAULT_SOCKET;
	if (stats)
		return run_stats(path, json);

	probe_uffd();
	if (pager_select_wp_mode(wp_mode))
		return 2;
	set_oom_score_adj(oom_adj);

	list_init(&pd.regions);
	list_init(&pd.conns);
	list_init(&pd.graveyard);
	pd.budget = budget >> PAGE_SHIFT;
	pd.nr_threads = threads;
	pd.socket_path = path;

	/* signals are taken synchronously by the main thread */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* every client holds several descriptors, every region one or two */
	{
		struct rlimit rl;

		if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	ret = server_init(path);
	if (ret) {
		pr_err("cannot listen on %s: %s", path, strerror(-ret));
		return 1;
	}
	if (!io_self()) {
		pr_err("io_uring setup failed");
		return 1;
	}
	for (int i = 0; i < threads; i++) {
		pthread_t t;

		if (pthread_create(&t, NULL, server_worker, NULL)) {
			pr_err("cannot start worker threads");
			return 1;
		}
	}
	{
		pthread_t t;

		for (int i = 0; i < EVICT_WORKERS; i++) {
			if (pthread_create(&t, NULL, evict_worker, NULL)) {
				pr_err("cannot start the eviction threads");
				return 1;
			}
		}
		if (pthread_create(&t, NULL, retry_worker, NULL)) {
			pr_err("cannot start the fill retry thread");
			return 1;
		}
		/* the second CPU's share of windows and syncs (ahead.c) */
		if (sysconf(_SC_NPROCESSORS_ONLN) > 1 &&
		    pthread_create(&t, NULL, ahead_worker, NULL)) {
			pr_err("cannot start the helper thread");
			return 1;
		}
	}
	pr_info("listening on %s, budget %llu KiB, %d threads, "
		"write-protect: %s (--wp-mode %s; kernel WP_ASYNC: %s, "
		"MOVE: %s)", path, (unsigned long long)(budget >> 10), threads,
		pd.wp_async ? "asynchronous" : "synchronous", wp_mode,
		pd.uffd_features & UFFD_FEATURE_WP_ASYNC ? "yes" : "no",
		pd.uffd_features & UFFD_FEATURE_MOVE ? "yes" : "no");
	fflush(stderr);

	for (;;) {
		if (sigwait(&set, &sig))
			continue;
		if (sig != SIGHUP)
			break;
		char buf[4096];

		stats_format(buf, sizeof(buf), false);
		fputs(buf, stderr);
	}
	pr_info("signal %d: flushing", sig);
	/*
	 * The socket stays until the flush is done: the guardian of a client
	 * that just died still has to reach us (its DEAD keeps the client's
	 * memory alive until the teardown has written it back).  Clients
	 * that connect meanwhile are told -ESHUTDOWN and retry.
	 */
	ret = server_flush_all();
	/*
	 * Left after a failed flush: the guardians of dead clients whose
	 * write-back failed then wait for the next pagerd on it, instead of
	 * letting the memory go (libpager, guardian_main()).
	 */
	if (!ret)
		unlink(path);
	/* a page that did not reach its file must not look like success */
	_exit(ret ? 1 : 0);
}
