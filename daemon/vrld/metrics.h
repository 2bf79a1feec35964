/*
 * metrics.h - vrld's Prometheus metrics: text exposition of a segment,
 * served over HTTP on a loopback address (libmicrohttpd) and/or written to a
 * file for node_exporter's textfile collector.
 *
 * Everything here only reads the segment (relaxed loads; the config through
 * its sequence word), so a scrape never disturbs workers or vrld's tick.
 */
#ifndef VRL_METRICS_H
#define VRL_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "segment.h"

struct vrl_metrics;

/*
 * Make a collector for the segment viewed by @v (vrld's own layout) showing the @top keys nearest their limit.
 * Returns NULL when out of memory.
 */
struct vrl_metrics *vrl_metrics_new(const struct vrl_seg_view *v, unsigned top);

/* Show the @top keys nearest their limit from the next render on. The
 * owner's thread only (the one that renders). */
void vrl_metrics_set_top(struct vrl_metrics *m, unsigned top);

/*
 * Render the exposition now and publish it to the HTTP threads (RCU: see
 * metrics.c). The owner's thread only (vrld's main loop, every second).
 * Returns 0 or -ENOMEM (the previous page stays).
 */
int vrl_metrics_update(struct vrl_metrics *m);

/*
 * A copy of the last published exposition, malloc'd (free it), its length
 * in @len; NULL before the first vrl_metrics_update() or when out of
 * memory. Any thread; never waits for a render.
 */
char *vrl_metrics_render(struct vrl_metrics *m, size_t *len);

/*
 * Serve GET /metrics on @addr ("127.0.0.1:9477", "[::1]:9477", port 0 picks
 * one) from a thread of its own: at most 64 connections at once, 32 from one
 * client address, each closed 10 s after it opened (5 s when silent), the
 * oldest closed first when a new one needs room (see metrics_http.c). Only
 * loopback addresses are accepted. Returns 0 and the bound port in @port,
 * -ENOTSUP when vrld was built without libmicrohttpd, -EINVAL for a bad or
 * non-loopback address, or -errno, with a message in @why.
 */
int vrl_metrics_serve(struct vrl_metrics *m, const char *addr, unsigned *port, char *why,
		      size_t whylen);

/* Whether vrl_metrics_serve() would take @addr (its form, a loopback host,
 * a port up to 65535), without binding: 0, or -EINVAL with @why. */
int vrl_metrics_addr_check(const char *addr, char *why, size_t whylen);

/* Write the last published exposition to @path atomically, with mode @mode
 * whatever the umask (vrl_afile_write: a directory others can write is
 * refused, no link followed). Returns 0 or -errno with @why. */
int vrl_metrics_textfile(struct vrl_metrics *m, const char *path, mode_t mode, char *why,
			size_t whylen);

/*
 * Count an alert of limit @name (at most VRL_NAME_MAX bytes, NUL included)
 * that vrld drained from the segment's ring: vrl_alerts_total{limit}. The
 * owner's thread only.
 */
void vrl_metrics_note_alert(struct vrl_metrics *m, const char *name);

/* vrld's sweep evicted @by_limit[i] keys of limit i of @cfg (the config it
 * swept under): count them per limit name, in vrld's thread. */
void vrl_metrics_note_evictions(struct vrl_metrics *m, const struct vrl_seg_config *cfg,
				const uint64_t *by_limit);

/* Stop serving and free. */
void vrl_metrics_free(struct vrl_metrics *m);

#endif /* VRL_METRICS_H */
