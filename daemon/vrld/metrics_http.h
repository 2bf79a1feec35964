/*
 * metrics_http.h - between metrics.c (the page) and metrics_http.c (its
 * HTTP server). vrld's code calls metrics.h alone.
 */
#ifndef VRLD_METRICS_HTTP_H
#define VRLD_METRICS_HTTP_H

#include <stddef.h>

#include "metrics.h"

struct vrl_metrics_http;

/*
 * Serve @m's published page on @addr, as vrl_metrics_serve() says
 * (metrics.h); the server in *@out. Returns 0, or a negative errno with a
 * message in @why (then *@out is unset).
 */
int vrl_metrics_http_start(struct vrl_metrics *m, const char *addr, unsigned *port,
			   struct vrl_metrics_http **out, char *why, size_t whylen);

/* Stop serving and free @h: no HTTP thread reads the page afterwards. NULL: nothing. */
void vrl_metrics_http_stop(struct vrl_metrics_http *h);

#endif /* VRLD_METRICS_HTTP_H */
