/*
 * _vrl.h - what the C files of the vrl extension share: the Client object,
 * the argument parser and the request builder, error raising, the Verdict
 * and Resolved types. Each group of declarations names the file that
 * defines it. Internal to the extension: every name shared between its
 * files starts with vrl_py_.
 */
#ifndef VRL_PY_H
#define VRL_PY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>

#include "vrl.h"

#define VRL_PY_SMALL_ATTRS 8      /* attributes kept on the stack; more go to the heap */
#define VRL_PY_NS_PER_S 1e9       /* nanoseconds in a second, for float seconds */

/*
 * A Client: one libvrl handle. libvrl wants a handle used by one thread at
 * a time; the GIL gives that for every call but acquire_wait, which sleeps
 * with the GIL released. While it does, `busy` is set and any other call
 * on the handle waits for `lock` (see vrl_py_hold()).
 */
typedef struct {
	PyObject_HEAD
	vrl_client *c;                  /* NULL once closed */
	PyObject *segment;              /* str: the segment name */
	int readonly;
	int busy;                       /* a thread sleeps in the library */
	PyThread_type_lock lock;        /* held by the sleeping thread */
	unsigned long fork_gen;         /* vrl_py_fork_gen when `lock` was made */
	struct vrl_py_seen *seen;       /* requests seen by acquire(), or NULL */
} ClientObject;

struct vrl_py_seen;

/* Keyword names every call may take, interned once. */
enum vrl_py_kw {
	K_API, K_ENDPOINT, K_TOKEN, K_ORG, K_VEHICLE, K_USER,
	K_COST, K_ATTRS, K_TIMEOUT, K_LIMIT, K_UNTIL, K_FOR, K_VERDICT,
	K__COUNT
};

#define KB(k) (1u << (k))
#define K_FIELDS (KB(K_API) | KB(K_ENDPOINT) | KB(K_TOKEN) | KB(K_ORG) | KB(K_VEHICLE) | \
		  KB(K_USER) | KB(K_ATTRS))

/* A call's signature: the keywords it takes, and which may come by position. */
struct vrl_py_sig {
	const char *name;               /* for messages: "acquire" */
	unsigned allowed;               /* KB() bits */
	signed char pos[K__COUNT + 1];  /* positional order, ended by -1 */
};

/* The request a call described, with what keeps its strings alive. */
struct vrl_py_req {
	struct vrl_request req;
	struct vrl_attr small[VRL_PY_SMALL_ATTRS];
	struct vrl_attr *heap;          /* when there are more attributes */
	PyObject *tmp;                  /* list of converted values, or NULL */
};

/* _args.c: the arguments, the request, the errors */

extern PyObject *vrl_py_kw[K__COUNT];
extern const char *const vrl_py_kw_text[K__COUNT];  /* the keywords' names */
extern PyObject *vrl_py_Error, *vrl_py_RateLimited, *vrl_py_SegmentNotFound, *vrl_py_Unmatched;

/* Fill @vals (borrowed, NULL when absent) from a vectorcall. -1 on error. */
int vrl_py_parse(const struct vrl_py_sig *sig, PyObject *const *args, Py_ssize_t nargs,
		 PyObject *kwnames, PyObject *vals[K__COUNT]);

/* Build the request from @vals; @cost_default when cost is absent. -1 on error.
 * Release with vrl_py_req_done() whatever it returned. */
int vrl_py_req_build(struct vrl_py_req *r, PyObject *const vals[K__COUNT], uint64_t cost_default);
void vrl_py_req_done(struct vrl_py_req *r);

/* A cost: a positive int. -1 with an exception set otherwise. */
int vrl_py_cost(PyObject *o, uint64_t *out);

/* A C string of a str, or NULL for None/absent; -1 on error. */
int vrl_py_cstr(PyObject *o, const char **out, const char *what);

/* The exception object of @type for libvrl code @rc (.code, .name), with
 * @msg; NULL on error. */
PyObject *vrl_py_make_error(PyObject *type, int rc, const char *msg);
/* Raise the exception for libvrl code @rc. Returns NULL. */
PyObject *vrl_py_raise(int rc);

/* _verdict.c: vrl.Verdict */

extern PyTypeObject vrl_py_VerdictType;

/* A new vrl.Verdict holding a copy of @v (and of its limit name). */
PyObject *vrl_py_verdict_new(const struct vrl_verdict *v);
/* The C verdict of a vrl.Verdict, or NULL with TypeError set. */
const struct vrl_verdict *vrl_py_verdict_of(PyObject *obj);
/* vrl._vrl._verdict(bytes, name): a pickled verdict made again. */
PyObject *vrl_py_verdict_restore(PyObject *mod, PyObject *args);
/* Raise RateLimited for the denial @verdict (a vrl.Verdict). Returns NULL. */
PyObject *vrl_py_raise_limited(PyObject *verdict);
/* @ns as float seconds. */
PyObject *vrl_py_ns_seconds(uint64_t ns);

/* _client.c: vrl.Client */

extern PyTypeObject vrl_py_ClientType;
extern unsigned long vrl_py_fork_gen;   /* bumped in a forked child */

/* Take the handle for a call (see ClientObject). Returns -1 on error (closed,
 * read-only), else a token for vrl_py_unhold(). */
int vrl_py_hold(ClientObject *self, int writes);
void vrl_py_unhold(ClientObject *self, int held);

/* _resolved.c: vrl.Resolved */

extern PyTypeObject vrl_py_ResolvedType;

/* Client.resolve() */
PyObject *vrl_py_client_resolve(ClientObject *self, PyObject *const *args, Py_ssize_t nargs,
				PyObject *kwnames);

/* _feedback.c: release, refund, observe, parse_retry_after */

#ifdef VRL_PY_FEEDBACK
PyObject *vrl_py_release(ClientObject *self, PyObject *const *args, Py_ssize_t nargs,
			 PyObject *kwnames);
PyObject *vrl_py_refund(ClientObject *self, PyObject *const *args, Py_ssize_t nargs,
			PyObject *kwnames);
PyObject *vrl_py_observe(ClientObject *self, PyObject *const *args, Py_ssize_t nargs,
			 PyObject *kwnames);
PyObject *vrl_py_parse_retry_after(PyObject *mod, PyObject *arg);
int vrl_py_feedback_init(PyObject *mod);
#endif

#endif /* VRL_PY_H */
