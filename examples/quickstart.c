/*
 * quickstart.c - the README's example: attach, describe a request, acquire.
 *
 *   cc quickstart.c $(pkg-config --cflags --libs vrl) -o quickstart
 *   ./quickstart [SEGMENT]
 */
#include <stdio.h>
#include <vrl.h>

int main(int argc, char **argv)
{
	vrl_client *c;
	struct vrl_request req = {
		.api = "samsara",
		.endpoint = "GET /fleet/vehicles",
		.token = "token-1",
		.org = "org-1",
	};
	struct vrl_verdict v;
	int rc = vrl_open(argc > 1 ? argv[1] : NULL, 0, &c);

	if (rc) {
		fprintf(stderr, "vrl_open: %s\n", vrl_strerror(rc));
		return 2;
	}
	for (int i = 0; i < 3; i++) {
		rc = vrl_acquire(c, &req, &v);
		if (rc == 0)
			printf("granted by %d limits; tightest %s has %llu left\n", (int)v.matched,
			       v.limit_name, (unsigned long long)v.remaining);
		else if (rc == VRL_EDENIED)
			printf("denied by %s; retry after %.3f ms\n", v.limit_name,
			       (double)v.retry_after_ns / 1e6);
		else
			fprintf(stderr, "vrl_acquire: %s\n", vrl_strerror(rc));
	}
	/* waiting: sleeps until the limits can grant it, at most 1 s */
	rc = vrl_acquire_wait(c, &req, 1000000000u, &v);
	printf("after waiting: %s\n", rc == 0 ? "granted" : vrl_strerror(rc));
	vrl_close(c);
	return 0;
}
