// SPDX-License-Identifier: GPL-2.0
/*
 * Output formatting: names of the UAPI enums, a minimal streaming JSON
 * writer, and the text/JSON forms of versions, trackers, stats and events.
 * Text output is meant for scripts: stable, one record per line.
 */
#include <inttypes.h>
#include <stddef.h>
#include <string.h>
#include "dtrack.h"

static const char *const method_names[] = {
	[DTRACK_METHOD_SOFTDIRTY] = "softdirty",
	[DTRACK_METHOD_WPFAULT] = "wpfault",
	[DTRACK_METHOD_HWDIRTY] = "hwdirty",
	[DTRACK_METHOD_ACCESSED] = "accessed",
};

static const char *const state_names[] = {
	[DTRACK_STATE_ACTIVE] = "active",
	[DTRACK_STATE_ENDED] = "ended",
};

static const char *const event_names[] = {
	[DTRACK_EVENT_TARGET_EXIT] = "target_exit",
	[DTRACK_EVENT_UNMAPPED] = "unmapped",
	[DTRACK_EVENT_LOG_OVERFLOW] = "log_overflow",
	[DTRACK_EVENT_DESTROYED] = "destroyed",
};

#define NAME_OF(tab, v)							\
	((v) < sizeof(tab) / sizeof((tab)[0]) && (tab)[v] ? (tab)[v] : "unknown")

const char *dt_method_name(uint32_t method)
{
	return NAME_OF(method_names, method);
}

int dt_method_parse(const char *name)
{
	unsigned int i;

	for (i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++)
		if (method_names[i] && !strcmp(method_names[i], name))
			return i;
	return -1;
}

const char *dt_state_name(uint32_t state)
{
	return NAME_OF(state_names, state);
}

const char *dt_event_name(uint32_t event)
{
	return NAME_OF(event_names, event);
}

/* ---- JSON ------------------------------------------------------------ */

void dt_json_init(struct dt_json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	j->first[0] = true;
}

static void json_sep(struct dt_json *j, const char *key)
{
	if (!j->first[j->depth])
		fputc(',', j->f);
	j->first[j->depth] = false;
	if (key)
		fprintf(j->f, "\"%s\":", key);
}

static void json_open(struct dt_json *j, const char *key, char c)
{
	json_sep(j, key);
	fputc(c, j->f);
	if (j->depth < (int)(sizeof(j->first) / sizeof(j->first[0])) - 1)
		j->depth++;
	j->first[j->depth] = true;
}

static void json_close(struct dt_json *j, char c)
{
	fputc(c, j->f);
	if (j->depth > 0)
		j->depth--;
}

void dt_json_obj_begin(struct dt_json *j, const char *key)
{
	json_open(j, key, '{');
}

void dt_json_obj_end(struct dt_json *j)
{
	json_close(j, '}');
}

void dt_json_arr_begin(struct dt_json *j, const char *key)
{
	json_open(j, key, '[');
}

void dt_json_arr_end(struct dt_json *j)
{
	json_close(j, ']');
}

void dt_json_u64(struct dt_json *j, const char *key, uint64_t v)
{
	json_sep(j, key);
	fprintf(j->f, "%" PRIu64, v);
}

void dt_json_str(struct dt_json *j, const char *key, const char *s)
{
	json_sep(j, key);
	fputc('"', j->f);
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(j->f, "\\%c", c);
		else if (c < 0x20)
			fprintf(j->f, "\\u%04x", c);
		else
			fputc(c, j->f);
	}
	fputc('"', j->f);
}

void dt_json_bool(struct dt_json *j, const char *key, bool b)
{
	json_sep(j, key);
	fputs(b ? "true" : "false", j->f);
}

void dt_json_end_line(struct dt_json *j)
{
	fputc('\n', j->f);
	j->depth = 0;
	j->first[0] = true;
}

/* ---- records --------------------------------------------------------- */

void dt_print_methods(FILE *f, uint32_t methods)
{
	const char *sep = "";
	uint32_t m;

	for (m = 1; m < 32; m++) {
		if (!(methods & (1U << m)))
			continue;
		if (m <= DTRACK_METHOD_MAX)
			fprintf(f, "%s%s", sep, dt_method_name(m));
		else
			fprintf(f, "%smethod%u", sep, m);
		sep = " ";
	}
	if (!*sep)
		fputs("none", f);
}

void dt_print_version(FILE *f, const struct dt_version *v, bool json)
{
	struct dt_json j;
	uint32_t m;

	if (!json) {
		fprintf(f, "cli %s\n", DTRACK_CLI_VERSION);
		fprintf(f, "uapi %u\n", DTRACK_GENL_VERSION);
		fprintf(f, "module %s\n", v->version[0] ? v->version : "unknown");
		fprintf(f, "module uapi %u\n", v->uapi_version);
		if (v->has & DT_HAS(DTRACK_A_METHODS)) {
			fputs("methods ", f);
			dt_print_methods(f, v->methods);
			fputc('\n', f);
		}
		if (v->has & DT_HAS(DTRACK_A_MAX_TRACKERS))
			fprintf(f, "max trackers %u\n", v->max_trackers);
		if (v->has & DT_HAS(DTRACK_A_MAX_PAGES))
			fprintf(f, "max pages %" PRIu64 "\n", v->max_pages);
		if (v->has & DT_HAS(DTRACK_A_NR_TRACKERS))
			fprintf(f, "trackers %u\n", v->nr_trackers);
		if (v->has & DT_HAS(DTRACK_A_NR_PAGES))
			fprintf(f, "pages %" PRIu64 "\n", v->nr_pages);
		return;
	}
	dt_json_init(&j, f);
	dt_json_obj_begin(&j, NULL);
	dt_json_str(&j, "cli", DTRACK_CLI_VERSION);
	dt_json_u64(&j, "uapi", DTRACK_GENL_VERSION);
	dt_json_str(&j, "module", v->version);
	dt_json_u64(&j, "module_uapi", v->uapi_version);
	if (v->has & DT_HAS(DTRACK_A_METHODS)) {
		dt_json_arr_begin(&j, "methods");
		for (m = 1; m <= DTRACK_METHOD_MAX; m++)
			if (v->methods & (1U << m))
				dt_json_str(&j, NULL, dt_method_name(m));
		dt_json_arr_end(&j);
	}
	if (v->has & DT_HAS(DTRACK_A_MAX_TRACKERS))
		dt_json_u64(&j, "max_trackers", v->max_trackers);
	if (v->has & DT_HAS(DTRACK_A_MAX_PAGES))
		dt_json_u64(&j, "max_pages", v->max_pages);
	if (v->has & DT_HAS(DTRACK_A_NR_TRACKERS))
		dt_json_u64(&j, "trackers", v->nr_trackers);
	if (v->has & DT_HAS(DTRACK_A_NR_PAGES))
		dt_json_u64(&j, "pages", v->nr_pages);
	dt_json_obj_end(&j);
	dt_json_end_line(&j);
}

static uint64_t tracker_epoch(const struct dt_tracker *t)
{
	if (t->stats.has & DT_HAS(DTRACK_STAT_A_EPOCH))
		return t->stats.epoch;
	return t->epoch;
}

void dt_print_tracker_header(FILE *f)
{
	fprintf(f, "%-6s %-8s %-18s %-12s %-10s %-7s %-8s %s\n", "ID", "PID",
		"ADDR", "LEN", "METHOD", "STATE", "EPOCH", "FLAGS");
}

void dt_print_tracker_line(FILE *f, const struct dt_tracker *t)
{
	const char *state = "-";

	if (t->stats.has & DT_HAS(DTRACK_STAT_A_STATE))
		state = dt_state_name(t->stats.state);
	fprintf(f, "%-6u %-8u 0x%-16" PRIx64 " %-12" PRIu64 " %-10s %-7s %-8"
		PRIu64 " %s\n", t->id, t->pid, t->addr, t->len,
		dt_method_name(t->method), state, tracker_epoch(t),
		(t->flags & DTRACK_F_PERSISTENT) ? "persistent" : "-");
}

struct stat_field {
	int attr;
	const char *name;
	size_t off;
	bool is_u32;
};

#define STAT(a, n, f, u32) { a, n, offsetof(struct dt_stats, f), u32 }
static const struct stat_field stat_fields[] = {
	STAT(DTRACK_STAT_A_EPOCH, "epoch", epoch, false),
	STAT(DTRACK_STAT_A_COLLECTS, "collects", collects, false),
	STAT(DTRACK_STAT_A_RESETS, "resets", resets, false),
	STAT(DTRACK_STAT_A_PAGES, "pages", pages, false),
	STAT(DTRACK_STAT_A_LAST_DIRTY, "last_dirty", last_dirty, false),
	STAT(DTRACK_STAT_A_LAST_COLLECT_NS, "last_collect_ns", last_collect_ns,
	     false),
	STAT(DTRACK_STAT_A_FAULTS, "faults", faults, false),
	STAT(DTRACK_STAT_A_LOG_OVERFLOWS, "log_overflows", log_overflows,
	     false),
	STAT(DTRACK_STAT_A_FALSE_POSITIVES, "false_positives",
	     false_positives, false),
	STAT(DTRACK_STAT_A_MAX_PAGES, "max_pages", max_pages, false),
	STAT(DTRACK_STAT_A_LOG_SIZE, "log_size", log_size, true),
};

static uint64_t stat_value(const struct dt_stats *s, const struct stat_field *f)
{
	const char *p = (const char *)s + f->off;
	uint32_t v32;
	uint64_t v64;

	if (f->is_u32) {
		memcpy(&v32, p, sizeof(v32));
		return v32;
	}
	memcpy(&v64, p, sizeof(v64));
	return v64;
}

void dt_print_tracker_json(struct dt_json *j, const struct dt_tracker *t)
{
	const struct dt_stats *s = &t->stats;
	size_t i;

	dt_json_obj_begin(j, NULL);
	dt_json_u64(j, "id", t->id);
	if (t->has & DT_HAS(DTRACK_A_PID))
		dt_json_u64(j, "pid", t->pid);
	if (t->has & DT_HAS(DTRACK_A_ADDR))
		dt_json_u64(j, "addr", t->addr);
	if (t->has & DT_HAS(DTRACK_A_LEN))
		dt_json_u64(j, "len", t->len);
	if (t->has & DT_HAS(DTRACK_A_METHOD))
		dt_json_str(j, "method", dt_method_name(t->method));
	if (t->has & DT_HAS(DTRACK_A_FLAGS))
		dt_json_bool(j, "persistent", t->flags & DTRACK_F_PERSISTENT);
	if (t->has & DT_HAS(DTRACK_A_EPOCH))
		dt_json_u64(j, "epoch", t->epoch);
	if (t->has & DT_HAS(DTRACK_A_STATS)) {
		dt_json_obj_begin(j, "stats");
		if (s->has & DT_HAS(DTRACK_STAT_A_STATE))
			dt_json_str(j, "state", dt_state_name(s->state));
		for (i = 0; i < sizeof(stat_fields) / sizeof(stat_fields[0]); i++)
			if (s->has & DT_HAS(stat_fields[i].attr))
				dt_json_u64(j, stat_fields[i].name,
					    stat_value(s, &stat_fields[i]));
		dt_json_obj_end(j);
	}
	dt_json_obj_end(j);
}

void dt_print_stats_text(FILE *f, const struct dt_tracker *t)
{
	const struct dt_stats *s = &t->stats;
	size_t i;

	fprintf(f, "id %u\n", t->id);
	if (t->has & DT_HAS(DTRACK_A_PID))
		fprintf(f, "pid %u\n", t->pid);
	if (t->has & DT_HAS(DTRACK_A_ADDR))
		fprintf(f, "addr 0x%" PRIx64 "\n", t->addr);
	if (t->has & DT_HAS(DTRACK_A_LEN))
		fprintf(f, "len %" PRIu64 "\n", t->len);
	if (t->has & DT_HAS(DTRACK_A_METHOD))
		fprintf(f, "method %s\n", dt_method_name(t->method));
	if (t->has & DT_HAS(DTRACK_A_FLAGS))
		fprintf(f, "persistent %s\n",
			(t->flags & DTRACK_F_PERSISTENT) ? "yes" : "no");
	if (s->has & DT_HAS(DTRACK_STAT_A_STATE))
		fprintf(f, "state %s\n", dt_state_name(s->state));
	if (!(s->has & DT_HAS(DTRACK_STAT_A_EPOCH)) &&
	    (t->has & DT_HAS(DTRACK_A_EPOCH)))
		fprintf(f, "epoch %" PRIu64 "\n", t->epoch);
	for (i = 0; i < sizeof(stat_fields) / sizeof(stat_fields[0]); i++)
		if (s->has & DT_HAS(stat_fields[i].attr))
			fprintf(f, "%s %" PRIu64 "\n", stat_fields[i].name,
				stat_value(s, &stat_fields[i]));
}

void dt_print_event(FILE *f, const struct dt_event *e, bool json)
{
	struct dt_json j;

	if (!json) {
		fprintf(f, "%s", dt_event_name(e->event));
		if (e->has & DT_HAS(DTRACK_A_TRACKER_ID))
			fprintf(f, " id=%u", e->id);
		if (e->has & DT_HAS(DTRACK_A_PID))
			fprintf(f, " pid=%u", e->pid);
		if (e->has & DT_HAS(DTRACK_A_METHOD))
			fprintf(f, " method=%s", dt_method_name(e->method));
		if (e->has & DT_HAS(DTRACK_A_ADDR))
			fprintf(f, " addr=0x%" PRIx64, e->addr);
		if (e->has & DT_HAS(DTRACK_A_LEN))
			fprintf(f, " len=%" PRIu64, e->len);
		if (e->has & DT_HAS(DTRACK_A_EPOCH))
			fprintf(f, " epoch=%" PRIu64, e->epoch);
		fputc('\n', f);
		return;
	}
	dt_json_init(&j, f);
	dt_json_obj_begin(&j, NULL);
	dt_json_str(&j, "event", dt_event_name(e->event));
	if (e->has & DT_HAS(DTRACK_A_TRACKER_ID))
		dt_json_u64(&j, "id", e->id);
	if (e->has & DT_HAS(DTRACK_A_PID))
		dt_json_u64(&j, "pid", e->pid);
	if (e->has & DT_HAS(DTRACK_A_METHOD))
		dt_json_str(&j, "method", dt_method_name(e->method));
	if (e->has & DT_HAS(DTRACK_A_ADDR))
		dt_json_u64(&j, "addr", e->addr);
	if (e->has & DT_HAS(DTRACK_A_LEN))
		dt_json_u64(&j, "len", e->len);
	if (e->has & DT_HAS(DTRACK_A_EPOCH))
		dt_json_u64(&j, "epoch", e->epoch);
	dt_json_obj_end(&j);
	dt_json_end_line(&j);
}
