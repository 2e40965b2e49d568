/* SPDX-License-Identifier: GPL-2.0 */
/* The dtrack commands (cmd.c, sample.c) and their shared helpers. */
#ifndef DTRACK_CMD_H
#define DTRACK_CMD_H

#include "dtrack.h"

int cmd_version(int argc, char **argv);
int cmd_track(int argc, char **argv);
int cmd_untrack(int argc, char **argv);
int cmd_collect(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_sample(int argc, char **argv);

/* Print "dtrack: MESSAGE" and the usage hint; returns 2. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "dtrack: WHAT: EXTACK: STRERROR(-err)"; returns 1. */
int fail(const struct dt_nl *nl, const char *what, int err);
/* Open the socket and resolve the family, explaining failures; 0 or 1. */
int open_family(struct dt_nl *nl);
/* Method name -> number; prints the usage error and returns 2 if unknown. */
int parse_method_arg(const char *s, uint32_t *method);
/* Numbers: decimal or 0x hex; parse_size() also takes K/M/G/T suffixes. */
int parse_u64(const char *s, uint64_t *v);
int parse_u32(const char *s, uint32_t *v);
int parse_size(const char *s, uint64_t *v);

#endif /* DTRACK_CMD_H */
