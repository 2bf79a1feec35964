/*
 * _client.c - vrl.Client: one libvrl handle, taken in turns by threads
 * (vrl_py_hold()), and its calls but release/refund/observe (_feedback.c)
 * and resolve (_resolved.c).
 *
 * acquire() remembers the requests it sees again and takes the resolved
 * path for them (struct vrl_py_seen).
 */
#include "_vrl.h"

#include <string.h>

#define WAIT_FOREVER_NS (UINT64_MAX / 4) /* "no timeout": past any time a limit can name */

unsigned long vrl_py_fork_gen;          /* bumped in a forked child */

/* ---- Client: holding the handle -------------------------------------------- */

static int wait_for_lock(ClientObject *self)
{
	int ok;

	if (self->fork_gen != vrl_py_fork_gen) {
		/* The first turn-taking since a fork: a parent thread that held
		 * the lock (sleeping in the library) is gone in this child, and
		 * so is its claim on the handle. A free lock is reused; a held
		 * one can never be released, and is left, not freed. */
		self->fork_gen = vrl_py_fork_gen;
		self->busy = 0;
		if (!PyThread_acquire_lock(self->lock, NOWAIT_LOCK))
			self->lock = PyThread_allocate_lock();
		else
			PyThread_release_lock(self->lock);
		if (!self->lock) {
			PyErr_NoMemory();
			return -1;
		}
	}
	Py_BEGIN_ALLOW_THREADS
	ok = PyThread_acquire_lock(self->lock, WAIT_LOCK);
	Py_END_ALLOW_THREADS
	return ok ? 0 : -1;
}

static int check_open(ClientObject *self, int writes)
{
	if (__builtin_expect(!self->c, 0)) {
		PyErr_SetString(PyExc_ValueError, "the vrl.Client is closed");
		return -1;
	}
	if (writes && self->readonly) {
		vrl_py_raise(VRL_EREADONLY);
		return -1;
	}
	return 0;
}

int vrl_py_hold(ClientObject *self, int writes)
{
	if (check_open(self, writes))
		return -1;
	if (__builtin_expect(!self->busy, 1))
		return 0;
	/* another thread sleeps in acquire_wait on this handle: take turns */
	if (wait_for_lock(self))
		return -1;
	if (!self->c) {
		PyThread_release_lock(self->lock);
		PyErr_SetString(PyExc_ValueError, "the vrl.Client is closed");
		return -1;
	}
	return 1;
}

void vrl_py_unhold(ClientObject *self, int held)
{
	if (held > 0)
		PyThread_release_lock(self->lock);
}

/* ---- Client ------------------------------------------------------------------ */

static PyObject *client_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	ClientObject *self = (ClientObject *)type->tp_alloc(type, 0);

	(void)args;
	(void)kw;
	if (!self)
		return NULL;
	self->lock = PyThread_allocate_lock();
	self->fork_gen = vrl_py_fork_gen;
	if (!self->lock) {
		Py_DECREF(self);
		return PyErr_NoMemory();
	}
	return (PyObject *)self;
}

static int client_init(ClientObject *self, PyObject *args, PyObject *kw)
{
	static char *names[] = { "segment", "readonly", NULL };
	const char *seg = VRL_DEFAULT_SEGMENT;
	PyObject *segobj = NULL;
	int readonly = 0, rc;
	vrl_client *c;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|Up:Client", names, &segobj, &readonly))
		return -1;
	if (self->c) {
		PyErr_SetString(PyExc_RuntimeError, "vrl.Client is already open");
		return -1;
	}
	if (segobj && vrl_py_cstr(segobj, &seg, "segment"))
		return -1;
	rc = vrl_open(seg, readonly ? VRL_OPEN_READONLY : 0, &c);
	if (rc) {
		vrl_py_raise(rc);
		return -1;
	}
	self->c = c;
	self->readonly = readonly;
	Py_XSETREF(self->segment, PyUnicode_FromString(seg));
	return self->segment ? 0 : -1;
}

static void seen_clear(ClientObject *self);

static void client_close_handle(ClientObject *self)
{
	vrl_client *c = self->c;

	seen_clear(self);
	self->c = NULL;
	vrl_close(c);
}

static void client_dealloc(ClientObject *self)
{
	/* a sleeping thread holds a reference: busy cannot be set here */
	client_close_handle(self);
	Py_XDECREF(self->segment);
	if (self->lock)
		PyThread_free_lock(self->lock);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

/*
 * Requests seen again. Workers mostly repeat a few requests with the same
 * str objects (constants, a token read once from the config). acquire()
 * remembers the field objects of recent requests, by identity, in a small
 * direct-mapped table; a request seen a third time is resolved once, and
 * from then on acquire() by fields costs what Resolved.acquire() does.
 *
 * The table holds strong references to the str objects of its entries, so
 * an object's address cannot be reused for another value while it is
 * there: same pointers, same strings. Only exact str and None take part;
 * a request with attrs (a mutable dict) or a converted value never does.
 */
#define SEEN_SIZE 64                 /* entries, a power of two */
#define SEEN_RESOLVE_AT 2            /* hits before an entry is resolved */
#define NFIELDS 6                    /* api .. user */

struct vrl_py_seen {
	PyObject *f[NFIELDS];        /* strong; NULL for absent or None */
	vrl_resolved *r;             /* once resolved */
	unsigned hits;
};

static void seen_drop(struct vrl_py_seen *e)
{
	for (int i = 0; i < NFIELDS; i++)
		Py_CLEAR(e->f[i]);
	vrl_resolved_free(e->r);
	e->r = NULL;
	e->hits = 0;
}

static void seen_clear(ClientObject *self)
{
	struct vrl_py_seen *t = self->seen;

	self->seen = NULL;
	if (!t)
		return;
	for (int i = 0; i < SEEN_SIZE; i++)
		seen_drop(&t[i]);
	PyMem_Free(t);
}

/*
 * The entry of the request in @vals, made current. Returns NULL when the
 * request cannot be remembered (attrs, a value not str, no memory).
 */
static struct vrl_py_seen *seen_find(ClientObject *self, PyObject *const vals[K__COUNT])
{
	PyObject *f[NFIELDS];
	uintptr_t h = 0;
	struct vrl_py_seen *e;

	if (vals[K_ATTRS] && vals[K_ATTRS] != Py_None)
		return NULL;
	for (int i = 0; i < NFIELDS; i++) {
		PyObject *o = vals[K_API + i];

		f[i] = o == Py_None ? NULL : o;
		if (f[i] && !PyUnicode_CheckExact(f[i]))
			return NULL;
		h = (h ^ ((uintptr_t)f[i] >> 4)) * 0x9E3779B97F4A7C15ull;
	}
	if (!self->seen && !(self->seen = PyMem_Calloc(SEEN_SIZE, sizeof(*self->seen))))
		return NULL;
	e = &self->seen[(h >> 32) & (SEEN_SIZE - 1)];
	if (memcmp(e->f, f, sizeof(f)) == 0 && e->hits) {
		if (e->hits < SEEN_RESOLVE_AT + 1)
			e->hits++;
		return e;
	}
	seen_drop(e);
	for (int i = 0; i < NFIELDS; i++)
		e->f[i] = Py_XNewRef(f[i]);
	e->hits = 1;
	return e;
}

/* Acquire through the entry's resolved request, resolving it when due.
 * Returns 1 when it did not apply (the caller takes the usual path),
 * else 0 or a libvrl code as vrl_acquire() would. Handle held. */
static int seen_acquire(ClientObject *self, struct vrl_py_seen *e, const struct vrl_py_req *q,
			struct vrl_verdict *v)
{
	if (!e->r) {
		if (e->hits <= SEEN_RESOLVE_AT || vrl_resolve(self->c, &q->req, &e->r) != 0) {
			e->r = NULL;
			return 1;
		}
	}
	return vrl_acquire_resolved(self->c, e->r, q->req.cost, v);
}

static const struct vrl_py_sig sig_acquire = {
	"acquire", K_FIELDS | KB(K_COST),
	{ K_API, K_ENDPOINT, K_TOKEN, K_ORG, K_VEHICLE, K_USER, K_COST, K_ATTRS, -1 },
};

/* acquire and take: one call, no waiting; @raise turns a denial into RateLimited */
static PyObject *acquire_now(ClientObject *self, PyObject *const *args, Py_ssize_t nargs,
			     PyObject *kwnames, const struct vrl_py_sig *sig, int raise)
{
	PyObject *vals[K__COUNT], *r = NULL;
	struct vrl_py_req q;
	struct vrl_verdict v;
	int held, rc;

	if (vrl_py_parse(sig, args, nargs, kwnames, vals))
		return NULL;
	if (vrl_py_req_build(&q, vals, 1) == 0 && (held = vrl_py_hold(self, 1)) >= 0) {
		struct vrl_py_seen *e = seen_find(self, vals);

		rc = e ? seen_acquire(self, e, &q, &v) : 1;
		if (rc == 1)
			rc = vrl_acquire(self->c, &q.req, &v);
		vrl_py_unhold(self, held);
		if (rc == 0 || rc == VRL_EDENIED) {
			r = vrl_py_verdict_new(&v);
			if (r && rc && raise) {
				vrl_py_raise_limited(r);
				Py_CLEAR(r);
			}
		} else {
			vrl_py_raise(rc);
		}
	}
	vrl_py_req_done(&q);
	return r;
}

static PyObject *client_acquire(ClientObject *self, PyObject *const *args, Py_ssize_t nargs,
				PyObject *kwnames)
{
	return acquire_now(self, args, nargs, kwnames, &sig_acquire, 0);
}

static const struct vrl_py_sig sig_take = {
	"take", K_FIELDS | KB(K_COST),
	{ K_API, K_ENDPOINT, K_TOKEN, K_ORG, K_VEHICLE, K_USER, K_COST, K_ATTRS, -1 },
};

static PyObject *client_take(ClientObject *self, PyObject *const *args, Py_ssize_t nargs,
			     PyObject *kwnames)
{
	return acquire_now(self, args, nargs, kwnames, &sig_take, 1);
}

/* Seconds (int or float, None: no bound) to ns. */
static int timeout_ns(PyObject *o, uint64_t *out)
{
	double s;

	if (!o || o == Py_None) {
		*out = WAIT_FOREVER_NS;
		return 0;
	}
	s = PyFloat_AsDouble(o);
	if (s == -1.0 && PyErr_Occurred())
		return -1;
	if (!(s >= 0)) {
		PyErr_SetString(PyExc_ValueError, "timeout must be a number of seconds >= 0, or None");
		return -1;
	}
	*out = s * VRL_PY_NS_PER_S >= (double)WAIT_FOREVER_NS ? WAIT_FOREVER_NS :
	       (uint64_t)(s * VRL_PY_NS_PER_S);
	return 0;
}

static const struct vrl_py_sig sig_wait = {
	"acquire_wait", K_FIELDS | KB(K_COST) | KB(K_TIMEOUT),
	{ K_API, K_ENDPOINT, K_TOKEN, K_ORG, K_VEHICLE, K_USER, K_COST, K_ATTRS, -1 },
};

/*
 * The waiting acquire: libvrl reserves the earliest time every limit can
 * grant and sleeps until then, here with the GIL released. The request's
 * strings stay valid meanwhile: the caller's frame holds the arguments and
 * q.tmp holds what we converted.
 */
static PyObject *client_acquire_wait(ClientObject *self, PyObject *const *args,
				     Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *vals[K__COUNT], *r = NULL;
	struct vrl_py_req q;
	struct vrl_verdict v;
	uint64_t tmo;
	int rc;

	if (vrl_py_parse(&sig_wait, args, nargs, kwnames, vals) ||
	    timeout_ns(vals[K_TIMEOUT], &tmo))
		return NULL;
	if (vrl_py_req_build(&q, vals, 1) == 0 && check_open(self, 1) == 0) {
		if (wait_for_lock(self) == 0) {
			vrl_client *c = self->c;

			self->busy = 1;
			Py_INCREF(self);   /* no close from dealloc while we sleep */
			Py_BEGIN_ALLOW_THREADS
			rc = c ? vrl_acquire_wait(c, &q.req, tmo, &v) : 1;
			Py_END_ALLOW_THREADS
			self->busy = 0;
			PyThread_release_lock(self->lock);
			Py_DECREF(self);
		} else {
			rc = 1;
		}
		if (rc == 0 || rc == VRL_EDENIED)
			r = vrl_py_verdict_new(&v);
		else if (rc < 0)
			vrl_py_raise(rc);
		else if (!PyErr_Occurred())
			PyErr_SetString(PyExc_ValueError, "the vrl.Client was closed");
	}
	vrl_py_req_done(&q);
	return r;
}

static PyObject *client_limits(ClientObject *self, void *u)
{
	PyObject *t;
	int n, held = vrl_py_hold(self, 0);

	(void)u;
	if (held < 0)
		return NULL;
	n = vrl_limit_count(self->c);
	if (n < 0) {
		vrl_py_unhold(self, held);
		return vrl_py_raise(n);
	}
	t = PyTuple_New(n);
	for (int i = 0; t && i < n; i++) {
		PyObject *s = PyUnicode_FromString(vrl_limit_name(self->c, i));

		if (!s) {
			Py_CLEAR(t);
			break;
		}
		PyTuple_SET_ITEM(t, i, s);
	}
	vrl_py_unhold(self, held);
	return t;
}

/* Monotonic seconds (vrl.now(), time.monotonic()) to vrl ns. */
static int mono_ns(PyObject *o, const char *what, uint64_t *out)
{
	double s = PyFloat_AsDouble(o);

	if (s == -1.0 && PyErr_Occurred())
		return -1;
	if (!(s >= 0)) {
		PyErr_Format(PyExc_ValueError, "%s must be a number of seconds >= 0", what);
		return -1;
	}
	*out = s * VRL_PY_NS_PER_S >= 1.8e19 ? UINT64_MAX : (uint64_t)(s * VRL_PY_NS_PER_S);
	return 0;
}

static const struct vrl_py_sig sig_cooldown = {
	"cooldown", K_FIELDS | KB(K_LIMIT) | KB(K_UNTIL) | KB(K_FOR), { K_LIMIT, -1 },
};

static PyObject *client_cooldown(ClientObject *self, PyObject *const *args, Py_ssize_t nargs,
				 PyObject *kwnames)
{
	PyObject *vals[K__COUNT], *r = NULL;
	struct vrl_py_req q;
	const char *limit;
	uint64_t until, delta;
	int held, rc;

	if (vrl_py_parse(&sig_cooldown, args, nargs, kwnames, vals) ||
	    vrl_py_cstr(vals[K_LIMIT], &limit, "limit"))
		return NULL;
	if (!vals[K_UNTIL] == !vals[K_FOR]) {
		PyErr_SetString(PyExc_TypeError,
				"cooldown() takes one of until= (monotonic seconds) or for_= (seconds)");
		return NULL;
	}
	if (vals[K_UNTIL] ? mono_ns(vals[K_UNTIL], "until", &until) :
			    mono_ns(vals[K_FOR], "for_", &delta))
		return NULL;
	if (vals[K_FOR])
		until = delta > UINT64_MAX - vrl_now_ns() ? UINT64_MAX : vrl_now_ns() + delta;
	if (vrl_py_req_build(&q, vals, 1) == 0 && (held = vrl_py_hold(self, 1)) >= 0) {
		rc = vrl_cooldown(self->c, &q.req, limit, until);
		vrl_py_unhold(self, held);
		r = rc ? vrl_py_raise(rc) : PyLong_FromUnsignedLongLong(until);
	}
	vrl_py_req_done(&q);
	return r;
}

static const struct vrl_py_sig sig_reset = {
	"reset", K_FIELDS | KB(K_LIMIT), { K_LIMIT, -1 },
};

static PyObject *client_reset(ClientObject *self, PyObject *const *args, Py_ssize_t nargs,
			      PyObject *kwnames)
{
	PyObject *vals[K__COUNT], *r = NULL;
	struct vrl_py_req q;
	const char *limit;
	int held, rc;

	if (vrl_py_parse(&sig_reset, args, nargs, kwnames, vals) ||
	    vrl_py_cstr(vals[K_LIMIT], &limit, "limit"))
		return NULL;
	if (vrl_py_req_build(&q, vals, 1) == 0 && (held = vrl_py_hold(self, 1)) >= 0) {
		rc = vrl_reset(self->c, &q.req, limit);
		vrl_py_unhold(self, held);
		r = rc ? vrl_py_raise(rc) : Py_NewRef(Py_None);
	}
	vrl_py_req_done(&q);
	return r;
}

#ifndef VRL_PY_FEEDBACK
static PyObject *no_feedback(ClientObject *self, PyObject *const *args, Py_ssize_t nargs,
			     PyObject *kwnames)
{
	(void)self, (void)args, (void)nargs, (void)kwnames;
	PyErr_SetString(PyExc_NotImplementedError,
			"this build of libvrl has no vrl_release/vrl_refund/vrl_observe "
			"(vrl.HAVE_FEEDBACK is False); rebuild against a libvrl that has them");
	return NULL;
}
#define vrl_py_release no_feedback
#define vrl_py_refund no_feedback
#define vrl_py_observe no_feedback
#endif

static PyObject *client_close(ClientObject *self, PyObject *unused)
{
	int held;

	(void)unused;
	if (!self->c)
		Py_RETURN_NONE;
	held = vrl_py_hold(self, 0);
	if (held < 0)
		return NULL;
	client_close_handle(self);
	vrl_py_unhold(self, held);
	Py_RETURN_NONE;
}

static PyObject *client_enter(ClientObject *self, PyObject *unused)
{
	(void)unused;
	return Py_NewRef(self);
}

static PyObject *client_exit(ClientObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	(void)args, (void)nargs;
	return client_close(self, NULL);
}

static PyObject *client_closed(ClientObject *self, void *u)
{
	(void)u;
	return PyBool_FromLong(self->c == NULL);
}

static PyObject *client_segment(ClientObject *self, void *u)
{
	(void)u;
	return Py_NewRef(self->segment ? self->segment : Py_None);
}

static PyObject *client_readonly(ClientObject *self, void *u)
{
	(void)u;
	return PyBool_FromLong(self->readonly);
}

static PyObject *client_repr(ClientObject *self)
{
	return PyUnicode_FromFormat("<vrl.Client segment=%R%s%s>", self->segment ? self->segment :
				    Py_None, self->readonly ? " readonly" : "",
				    self->c ? "" : " closed");
}

/* ---- the Client type ---------------------------------------------------------------- */

#define FIELDS_DOC "api=None, endpoint=None, token=None, org=None, vehicle=None, user=None"
#define FASTCALL(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL | METH_KEYWORDS

static PyMethodDef client_methods[] = {
	{ "acquire", FASTCALL(client_acquire),
	  PyDoc_STR("acquire(" FIELDS_DOC ", cost=1, attrs=None) -> Verdict\n--\n\n"
		    "Acquire the request now: every matching limit or none. Never raises on a "
		    "denial; the verdict is true when granted and says which limit denied and "
		    "when to retry. attrs is a dict of str attributes such as {'make': 'tesla'}; "
		    "values that are not str (an int id) are passed through str().") },
	{ "take", FASTCALL(client_take),
	  PyDoc_STR("take(" FIELDS_DOC ", cost=1, attrs=None) -> Verdict\n--\n\n"
		    "As acquire(), but a denial raises vrl.RateLimited (with .verdict and "
		    ".retry_after).") },
	{ "acquire_wait", FASTCALL(client_acquire_wait),
	  PyDoc_STR("acquire_wait(" FIELDS_DOC ", cost=1, attrs=None, timeout=None) -> Verdict\n"
		    "--\n\nAcquire the request, waiting up to timeout seconds (None: as long as "
		    "the limits need). vrl reserves the earliest time every matching limit can "
		    "grant and sleeps until then with the GIL released, so waiters are served "
		    "in order, never all at once. Returns a denied verdict, having reserved "
		    "nothing, when that time lies past the timeout.") },
	{ "resolve", FASTCALL(vrl_py_client_resolve),
	  PyDoc_STR("resolve(" FIELDS_DOC ", cost=1, attrs=None) -> Resolved\n--\n\n"
		    "Match and hash the request once; Resolved.acquire() then skips that "
		    "work. cost becomes its default cost.") },
	{ "cooldown", FASTCALL(client_cooldown),
	  PyDoc_STR("cooldown(limit=None, *, until=None, for_=None, " FIELDS_DOC
		    ", attrs=None) -> int\n--\n\n"
		    "Close the request's key of limit (every matching limit when None) for "
		    "every process: until a monotonic time in seconds (vrl.now(), "
		    "time.monotonic()), or for_ seconds from now. A cooldown only ever "
		    "extends. Returns the monotonic ns it runs until.") },
	{ "reset", FASTCALL(client_reset),
	  PyDoc_STR("reset(limit=None, *, " FIELDS_DOC ", attrs=None) -> None\n--\n\n"
		    "Make the request's key of limit (every matching limit when None) whole "
		    "and lift its cooldown. Raises vrl.Error (VRL_ENOKEY) when no key exists.") },
	{ "release", FASTCALL(vrl_py_release),
	  PyDoc_STR("release(limit=None, cost=1, *, " FIELDS_DOC ", attrs=None) -> None\n--\n\n"
		    "Give back cost units of the slots limits the request holds (a connection "
		    "closed). Needs vrl.HAVE_FEEDBACK.") },
	{ "refund", FASTCALL(vrl_py_refund),
	  PyDoc_STR("refund(limit=None, cost=1, *, " FIELDS_DOC ", attrs=None) -> None\n--\n\n"
		    "Give back cost units the upstream did not count (a validation failure). "
		    "Needs vrl.HAVE_FEEDBACK.") },
	{ "observe", FASTCALL(vrl_py_observe),
	  PyDoc_STR("observe(response, limit=None, *, " FIELDS_DOC ", attrs=None) -> Feedback\n"
		    "--\n\nFeed the upstream's answer back: a requests/httpx/urllib3-style "
		    "response (.status_code or .status, .headers, .content/.data/.text). A 429 "
		    "closes the key for every worker until its Retry-After; x-ratelimit-* "
		    "headers and usage bodies reconcile the local count; a 400 refunds. Needs "
		    "vrl.HAVE_FEEDBACK.") },
	{ "close", (PyCFunction)client_close, METH_NOARGS,
	  PyDoc_STR("close() -> None\n--\n\nDetach from the segment. Later calls raise "
		    "ValueError. Also done when the Client is collected.") },
	{ "__enter__", (PyCFunction)client_enter, METH_NOARGS, PyDoc_STR("Return self.") },
	{ "__exit__", (PyCFunction)(void (*)(void))client_exit, METH_FASTCALL,
	  PyDoc_STR("Close the client.") },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef client_getset[] = {
	{ "limits", (getter)client_limits, NULL,
	  "Names of the limits in the segment's current config, in config order.", NULL },
	{ "segment", (getter)client_segment, NULL, "The segment name.", NULL },
	{ "readonly", (getter)client_readonly, NULL, "True when opened read-only.", NULL },
	{ "closed", (getter)client_closed, NULL, "True after close().", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

PyTypeObject vrl_py_ClientType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "vrl._vrl.Client",
	.tp_doc = PyDoc_STR("Client(segment='/vrl', readonly=False)\n--\n\n"
			    "A handle on the vrl segment that vrld created. Raises "
			    "vrl.SegmentNotFound when vrld is not running under that segment "
			    "name. A Client survives fork(): children of a prefork pool use it "
			    "as it is. Threads may share one; they take turns."),
	.tp_basicsize = sizeof(ClientObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_new = client_new,
	.tp_init = (initproc)client_init,
	.tp_dealloc = (destructor)client_dealloc,
	.tp_repr = (reprfunc)client_repr,
	.tp_methods = client_methods,
	.tp_getset = client_getset,
};
