/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internal interfaces of the dtrack CLI, shared with the dtrack VM tests:
 *   nl.c      generic netlink plumbing over libmnl (socket, family lookup,
 *             request/answer loop, extack)
 *   parse.c   attribute parsing, one callback per attribute table
 *   client.c  typed dtrack requests built on the two above
 *   output.c  text and JSON output
 *   cmd.c     the CLI commands, main.c their dispatch
 */
#ifndef DTRACK_TOOLS_H
#define DTRACK_TOOLS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/dtrack.h>

#define DTRACK_CLI_VERSION "0.1.0"
/* Runs count base pages; dtrack targets x86-64. */
#define DT_PAGE_SIZE ((uint64_t)4096)

/* ---- nl.c ------------------------------------------------------------ */

struct dt_nl {
	struct mnl_socket *sock;
	uint32_t portid;
	uint32_t seq;
	uint16_t family;	/* 0 until resolved */
	uint32_t events_grp;	/* multicast group id, 0 if absent */
	uint32_t family_version;
	char *buf;		/* MNL_SOCKET_BUFFER_SIZE bytes */
	size_t buf_size;
	char extack[256];	/* extack message of the last error, or "" */
};

/* Called for each answer message; returns MNL_CB_OK/STOP/ERROR. */
typedef int (*dt_msg_cb)(const struct nlmsghdr *nlh, void *data);

/*
 * Open a generic netlink socket with extended acks and resolve the dtrack
 * family.  Returns 0, -ENOENT when the family does not exist (module not
 * loaded), or another -errno.
 */
int dt_nl_open(struct dt_nl *nl);
/* Same, without resolving a family (used to resolve it later). */
int dt_nl_open_raw(struct dt_nl *nl);
int dt_nl_resolve(struct dt_nl *nl, const char *name);
void dt_nl_close(struct dt_nl *nl);
/* Start a dtrack request of cmd in nl->buf; flags: NLM_F_ACK or NLM_F_DUMP. */
struct nlmsghdr *dt_nl_request(struct dt_nl *nl, uint8_t cmd, uint16_t flags);
/*
 * Send nlh and run cb over every answer until the ack or the end of the dump.
 * Returns 0 or -errno (the kernel's error; its extack message is left in
 * nl->extack).
 */
int dt_nl_talk(struct dt_nl *nl, struct nlmsghdr *nlh, dt_msg_cb cb,
	       void *data);
/* Join the "events" multicast group. */
int dt_nl_subscribe(struct dt_nl *nl);
/*
 * Receive multicast messages, calling cb for each; timeout_ms < 0 waits
 * forever.  Returns 0 when cb stopped, -ETIMEDOUT, or -errno.
 */
int dt_nl_listen(struct dt_nl *nl, int timeout_ms, dt_msg_cb cb, void *data);

/* ---- parse.c --------------------------------------------------------- */

/* Presence bits of the optional fields below. */
#define DT_HAS(x)	(1ULL << (x))

struct dt_version {
	char version[64];
	uint32_t uapi_version;
	uint32_t methods;
	uint32_t max_trackers;
	uint64_t max_pages;
	uint32_t nr_trackers;
	uint64_t nr_pages;
	uint64_t has;		/* DT_HAS(DTRACK_A_*) */
};

struct dt_stats {
	uint32_t state;
	uint64_t epoch;
	uint64_t collects;
	uint64_t resets;
	uint64_t pages;
	uint64_t last_dirty;
	uint64_t last_collect_ns;
	uint64_t faults;
	uint64_t log_overflows;
	uint64_t false_positives;
	uint64_t max_pages;
	uint32_t log_size;
	uint64_t has;		/* DT_HAS(DTRACK_STAT_A_*) */
};

struct dt_tracker {
	uint32_t id;
	uint32_t pid;
	uint64_t addr;
	uint64_t len;
	uint32_t method;
	uint32_t flags;
	uint64_t epoch;
	struct dt_stats stats;
	uint64_t has;		/* DT_HAS(DTRACK_A_*) */
};

struct dt_run {
	uint64_t addr;
	uint64_t pages;
};

/* A DTRACK_A_BITMAP nest: bit i of word j = page addr + 64 j + i dirty. */
struct dt_bitmap {
	uint64_t addr;
	const void *words;	/* nwords u64, not necessarily aligned */
	size_t nwords;
};

/* One message of a collect dump. */
struct dt_collect_msg {
	uint32_t id;
	uint64_t epoch;
	uint32_t result_flags;
	uint64_t nr_dirty;
	uint64_t has;		/* DT_HAS(DTRACK_A_*) */
};

struct dt_event {
	uint32_t event;
	uint32_t id;
	uint32_t pid;
	uint64_t epoch;
	uint64_t addr;
	uint64_t len;
	uint32_t method;
	uint64_t has;		/* DT_HAS(DTRACK_A_*) */
};

/* Per-table attribute callbacks: data is a struct nlattr *tb[MAX + 1]. */
int dt_attr_cb(const struct nlattr *attr, void *data);
int dt_run_attr_cb(const struct nlattr *attr, void *data);
int dt_bitmap_attr_cb(const struct nlattr *attr, void *data);
int dt_stat_attr_cb(const struct nlattr *attr, void *data);
int dt_ctrl_attr_cb(const struct nlattr *attr, void *data);
int dt_mcgrp_attr_cb(const struct nlattr *attr, void *data);
int dt_extack_attr_cb(const struct nlattr *attr, void *data);

/* Parse a dtrack message's top-level attributes into tb. */
int dt_parse(const struct nlmsghdr *nlh, const struct nlattr **tb);
void dt_parse_version(const struct nlattr **tb, struct dt_version *v);
int dt_parse_stats(const struct nlattr *nest, struct dt_stats *s);
void dt_parse_tracker(const struct nlattr **tb, struct dt_tracker *t);
void dt_parse_collect_msg(const struct nlattr **tb, struct dt_collect_msg *m);
int dt_parse_run(const struct nlattr *nest, struct dt_run *run);
int dt_parse_bitmap(const struct nlattr *nest, struct dt_bitmap *bm);
void dt_parse_event(const struct nlattr **tb, struct dt_event *e);

/* ---- client.c -------------------------------------------------------- */

struct dt_collect {
	uint32_t id;
	uint64_t epoch;
	uint32_t result_flags;
	uint64_t nr_dirty;	/* as announced by the module */
	uint64_t has;		/* DT_HAS(DTRACK_A_*) of the first message */
	size_t nr_msgs;
	struct dt_run *runs;	/* merged when adjacent, address order */
	size_t nr_runs;
	size_t cap_runs;
	bool unordered;		/* a run did not follow the previous one */
	uint64_t pages;		/* sum of the runs' pages */
};

/*
 * Called for each run as the dump arrives (for streaming output); the
 * collect's header fields are filled in before the first call.
 */
typedef void (*dt_run_cb)(const struct dt_collect *c, const struct dt_run *run,
			  void *data);

int dt_get_version(struct dt_nl *nl, struct dt_version *v);
int dt_create(struct dt_nl *nl, uint32_t pid, uint64_t addr, uint64_t len,
	      uint32_t method, uint32_t flags, uint32_t *id);
int dt_destroy(struct dt_nl *nl, uint32_t id);
/* Collect into c (runs kept); free with dt_collect_free(). */
int dt_collect(struct dt_nl *nl, uint32_t id, uint32_t flags,
	       struct dt_collect *c);
/* Collect without keeping runs; run_cb sees each merged run. */
int dt_collect_stream(struct dt_nl *nl, uint32_t id, uint32_t flags,
		      struct dt_collect *c, dt_run_cb run_cb, void *data);
void dt_collect_free(struct dt_collect *c);
int dt_get_tracker(struct dt_nl *nl, uint32_t id, struct dt_tracker *t);
/* All visible trackers into a malloc'ed array. */
int dt_list(struct dt_nl *nl, struct dt_tracker **ts, size_t *n);

/* ---- output.c -------------------------------------------------------- */

const char *dt_method_name(uint32_t method);
int dt_method_parse(const char *name);	/* -1 if unknown */
const char *dt_state_name(uint32_t state);
const char *dt_event_name(uint32_t event);

struct dt_json {
	FILE *f;
	int depth;
	bool first[16];
};

void dt_json_init(struct dt_json *j, FILE *f);
void dt_json_obj_begin(struct dt_json *j, const char *key);
void dt_json_obj_end(struct dt_json *j);
void dt_json_arr_begin(struct dt_json *j, const char *key);
void dt_json_arr_end(struct dt_json *j);
void dt_json_u64(struct dt_json *j, const char *key, uint64_t v);
void dt_json_str(struct dt_json *j, const char *key, const char *s);
void dt_json_bool(struct dt_json *j, const char *key, bool b);
/* Terminate a top-level value with a newline. */
void dt_json_end_line(struct dt_json *j);

void dt_print_version(FILE *f, const struct dt_version *v, bool json);
void dt_print_tracker_header(FILE *f);
void dt_print_tracker_line(FILE *f, const struct dt_tracker *t);
void dt_print_tracker_json(struct dt_json *j, const struct dt_tracker *t);
void dt_print_stats_text(FILE *f, const struct dt_tracker *t);
void dt_print_event(FILE *f, const struct dt_event *e, bool json);
void dt_print_methods(FILE *f, uint32_t methods);

#endif /* DTRACK_TOOLS_H */
