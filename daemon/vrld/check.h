/*
 * check.h - what vrld checks of a config before it touches anything:
 * one function for start-up, `vrld --check` and a reload, so that --check
 * says everything start-up would and the two cannot drift apart.
 *
 * Checked (each problem said with the file, the field and what to do):
 *   - daemon.metrics: an address vrld would serve (loopback, port <= 65535);
 *     whether the port is free is only known by binding it, at start-up;
 *   - daemon.checkpoint, daemon.metrics_textfile: their directory exists
 *     and nobody but vrld and root can write it (atomic_file.h);
 *   - daemon.alert_command: a regular file vrld may execute;
 *   - segment.keys: the segment fits under segment.max_size and in
 *     /dev/shm: its size, and at start-up what /dev/shm has free plus what
 *     a segment of that name already holds (it is adopted or replaced).
 *     Nothing is created to find out: statvfs and fstat only, and a
 *     reload opens no segment (it would drop vrld's record lock on it).
 */
#ifndef VRLD_CHECK_H
#define VRLD_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define VRLD_SHM_DIR "/dev/shm"   /* where glibc's shm_open puts segments */

enum vrld_check_when {
	VRLD_CHECK_START,    /* start-up and --check: the segment is to be made or adopted */
	VRLD_CHECK_RELOAD,   /* a reload: the segment exists and keeps its size */
};

/* The segment a config makes, and the room for it. */
struct vrld_seg_room {
	uint64_t bytes;         /* the segment's size: key table, holders, rings */
	uint64_t max_size;      /* segment.max_size */
	bool shm_known;         /* /dev/shm could be measured (the rest is then set) */
	uint64_t shm_total;     /* /dev/shm's size */
	uint64_t shm_free;      /* what it has free */
	uint64_t existing;      /* bytes a segment of that name holds already (0: none) */
};

/* One problem: "file: field: what is wrong, what to do". */
typedef void vrld_problem_fn(void *arg, const char *problem);

/*
 * Check @dc as the table above says, calling @problem for each problem
 * found (NULL: none called). Fills @room (may be NULL). Returns the number
 * of problems: 0 when vrld may go ahead. Any thread; reads the file
 * system and /dev/shm, changes nothing.
 */
unsigned vrld_check_config(const struct vrl_daemon_config *dc, enum vrld_check_when when,
			   struct vrld_seg_room *room, vrld_problem_fn *problem, void *arg);

/* @bytes as "12.3 MiB" (binary units, one decimal). */
void vrld_fmt_size(uint64_t bytes, char *buf, size_t cap);

#endif /* VRLD_CHECK_H */
