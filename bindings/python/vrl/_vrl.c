/*
 * _vrl.c - the CPython binding of libvrl: Client, Resolved, Verdict, the
 * exceptions, now().
 *
 * The hot path is Client.acquire() and Resolved.acquire(): a vectorcall
 * method (METH_FASTCALL | METH_KEYWORDS) whose keywords are matched by
 * pointer against names interned at import, a request built on the stack
 * from the str objects' own UTF-8 buffers, one libvrl call, and one small
 * Verdict allocation that copies the C verdict and makes Python objects
 * only when a field is read (from a short free list). No dict, no tuple,
 * no temporary str for str arguments. A request acquire() sees again is
 * resolved once and takes the resolved path (see struct vrl_py_seen).
 *
 * Threads and fork:
 *   - Every call runs under the GIL except acquire_wait's sleep; ClientObject
 *     says how the handle stays single-threaded then.
 *   - The module keeps no pid and starts no thread. libvrl re-registers a
 *     handle in a forked child on its own; the only fork-sensitive state here
 *     is the wait lock, remade in the child when a parent thread held it
 *     (vrl_py_fork_gen, bumped by os.register_at_fork in __init__.py).
 */
#include "_vrl.h"

#include <string.h>

#define NS_PER_S 1e9
#define VERDICT_NAME_MAX 64          /* a limit name, NUL included (segment format) */
#define WAIT_FOREVER_NS (UINT64_MAX / 4) /* "no timeout": past any time a limit can name */

PyObject *vrl_py_kw[K__COUNT];
PyObject *vrl_py_Error, *vrl_py_RateLimited, *vrl_py_SegmentNotFound, *vrl_py_Unmatched;
static unsigned long vrl_py_fork_gen;   /* bumped in a forked child */

static const char *const kw_text[K__COUNT] = {
	[K_API] = "api", [K_ENDPOINT] = "endpoint", [K_TOKEN] = "token", [K_ORG] = "org",
	[K_VEHICLE] = "vehicle", [K_USER] = "user", [K_COST] = "cost", [K_ATTRS] = "attrs",
	[K_TIMEOUT] = "timeout", [K_LIMIT] = "limit", [K_UNTIL] = "until", [K_FOR] = "for_",
	[K_VERDICT] = "verdict",
};

/* ---- arguments ------------------------------------------------------------ */

static int kw_index(const struct vrl_py_sig *sig, PyObject *name)
{
	/* call sites pass interned names: the pointer test almost always hits */
	for (int k = 0; k < K__COUNT; k++)
		if ((sig->allowed & KB(k)) && vrl_py_kw[k] == name)
			return k;
	for (int k = 0; k < K__COUNT; k++)
		if ((sig->allowed & KB(k)) && PyUnicode_Compare(vrl_py_kw[k], name) == 0)
			return k;
	if (PyErr_Occurred())
		return -1;
	PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%S'",
		     sig->name, name);
	return -1;
}

int vrl_py_parse(const struct vrl_py_sig *sig, PyObject *const *args, Py_ssize_t nargs,
		 PyObject *kwnames, PyObject *vals[K__COUNT])
{
	Py_ssize_t npos = 0;

	memset(vals, 0, sizeof(PyObject *) * K__COUNT);
	while (sig->pos[npos] >= 0)
		npos++;
	if (nargs > npos) {
		PyErr_Format(PyExc_TypeError, "%s() takes at most %zd positional arguments (%zd given)",
			     sig->name, npos, nargs);
		return -1;
	}
	for (Py_ssize_t i = 0; i < nargs; i++)
		vals[(int)sig->pos[i]] = args[i];
	if (!kwnames)
		return 0;
	for (Py_ssize_t i = 0, n = PyTuple_GET_SIZE(kwnames); i < n; i++) {
		int k = kw_index(sig, PyTuple_GET_ITEM(kwnames, i));

		if (k < 0)
			return -1;
		if (vals[k]) {
			PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'",
				     sig->name, kw_text[k]);
			return -1;
		}
		vals[k] = args[nargs + i];
	}
	return 0;
}

int vrl_py_cstr(PyObject *o, const char **out, const char *what)
{
	Py_ssize_t len;
	const char *s;

	*out = NULL;
	if (!o || o == Py_None)
		return 0;
	if (!PyUnicode_Check(o)) {
		PyErr_Format(PyExc_TypeError, "%s must be str or None, not %.100s", what,
			     Py_TYPE(o)->tp_name);
		return -1;
	}
	s = PyUnicode_AsUTF8AndSize(o, &len);
	if (!s)
		return -1;
	if (memchr(s, '\0', (size_t)len)) {
		PyErr_Format(PyExc_ValueError, "%s contains a NUL character", what);
		return -1;
	}
	*out = s;
	return 0;
}

/* A request value: str as is, None as absent, anything else (an int id) by
 * str(), kept alive in r->tmp until the call ends. */
static int req_str(struct vrl_py_req *r, PyObject *o, const char **out, const char *what)
{
	PyObject *s;
	int rc;

	if (!o || o == Py_None || PyUnicode_Check(o))
		return vrl_py_cstr(o, out, what);
	if (PyBytes_Check(o) || PyByteArray_Check(o)) {
		PyErr_Format(PyExc_TypeError, "%s must be str, not %.100s", what, Py_TYPE(o)->tp_name);
		return -1;
	}
	if (!r->tmp && !(r->tmp = PyList_New(0)))
		return -1;
	s = PyObject_Str(o);
	if (!s)
		return -1;
	rc = PyList_Append(r->tmp, s);
	Py_DECREF(s);
	return rc ? -1 : vrl_py_cstr(s, out, what);
}

int vrl_py_cost(PyObject *o, uint64_t *out)
{
	unsigned long long v;

	if (!PyLong_Check(o)) {
		PyErr_Format(PyExc_TypeError, "cost must be int, not %.100s", Py_TYPE(o)->tp_name);
		return -1;
	}
	v = PyLong_AsUnsignedLongLong(o);
	if (v == (unsigned long long)-1 && PyErr_Occurred()) {
		PyErr_Clear();
		v = 0;
	}
	if (v == 0) {
		PyErr_SetString(PyExc_ValueError, "cost must be a positive int");
		return -1;
	}
	*out = v;
	return 0;
}

static int req_attrs(struct vrl_py_req *r, PyObject *d)
{
	PyObject *k, *v;
	Py_ssize_t pos = 0, n, i = 0;
	struct vrl_attr *a;

	if (!d || d == Py_None)
		return 0;
	if (!PyDict_Check(d)) {
		PyErr_Format(PyExc_TypeError, "attrs must be a dict, not %.100s", Py_TYPE(d)->tp_name);
		return -1;
	}
	n = PyDict_GET_SIZE(d);
	a = r->small;
	if (n > VRL_PY_SMALL_ATTRS) {
		a = r->heap = PyMem_Calloc((size_t)n, sizeof(*a));
		if (!a) {
			PyErr_NoMemory();
			return -1;
		}
	}
	while (PyDict_Next(d, &pos, &k, &v) && i < n) {
		if (!PyUnicode_Check(k)) {
			PyErr_SetString(PyExc_TypeError, "attrs keys must be str");
			return -1;
		}
		if (vrl_py_cstr(k, &a[i].name, "an attrs key") ||
		    req_str(r, v, &a[i].value, "an attrs value"))
			return -1;
		i++;
	}
	r->req.attrs = a;
	r->req.nattrs = (size_t)i;
	return 0;
}

int vrl_py_req_build(struct vrl_py_req *r, PyObject *const vals[K__COUNT], uint64_t cost_default)
{
	memset(&r->req, 0, sizeof(r->req));
	r->heap = NULL;
	r->tmp = NULL;
	r->req.cost = cost_default;
	if (req_str(r, vals[K_API], &r->req.api, "api") ||
	    req_str(r, vals[K_ENDPOINT], &r->req.endpoint, "endpoint") ||
	    req_str(r, vals[K_TOKEN], &r->req.token, "token") ||
	    req_str(r, vals[K_ORG], &r->req.org, "org") ||
	    req_str(r, vals[K_VEHICLE], &r->req.vehicle, "vehicle") ||
	    req_str(r, vals[K_USER], &r->req.user, "user"))
		return -1;
	if (vals[K_COST] && vals[K_COST] != Py_None && vrl_py_cost(vals[K_COST], &r->req.cost))
		return -1;
	return req_attrs(r, vals[K_ATTRS]);
}

void vrl_py_req_done(struct vrl_py_req *r)
{
	PyMem_Free(r->heap);
	Py_XDECREF(r->tmp);
}

/* ---- errors ---------------------------------------------------------------- */

static PyObject *make_error(PyObject *type, int rc, const char *msg)
{
	/* errno carries the code as OSError expects: positive for a system
	 * error, vrl's own (negative, out of errno's range) as they are */
	int err = rc <= VRL_EDENIED ? rc : -rc;
	PyObject *e = PyObject_CallFunction(type, "is", err, msg), *code, *name;

	if (!e)
		return NULL;
	code = PyLong_FromLong(rc);
	name = PyUnicode_FromString(vrl_err_name(rc));
	if (!code || !name || PyObject_SetAttrString(e, "code", code) ||
	    PyObject_SetAttrString(e, "name", name))
		Py_CLEAR(e);
	Py_XDECREF(code);
	Py_XDECREF(name);
	return e;
}

PyObject *vrl_py_raise(int rc)
{
	PyObject *type = rc == VRL_ENOSEG ? vrl_py_SegmentNotFound :
			 rc == VRL_EUNMATCHED ? vrl_py_Unmatched : vrl_py_Error;
	PyObject *e;

	if (rc == -ENOMEM)
		return PyErr_NoMemory();
	e = make_error(type, rc, vrl_strerror(rc));
	if (e) {
		PyErr_SetObject(type, e);
		Py_DECREF(e);
	}
	return NULL;
}

/* ---- Verdict ------------------------------------------------------------- */

/*
 * A verdict: the C struct copied as it is, and the deciding limit's name
 * copied beside it (the C pointer is valid only until the next call on the
 * handle). Fields become Python objects when they are read. No references
 * but `name`, which is a str: no cycles, so not a GC type.
 */
typedef struct {
	PyObject_HEAD
	struct vrl_verdict v;
	PyObject *name;                 /* made on first read */
	char limit_name[VERDICT_NAME_MAX];
} VerdictObject;

static PyTypeObject VerdictType;

/*
 * Verdicts freed go to a short free list and are handed out again, so the
 * usual loop (acquire, test, drop) allocates nothing. Guarded by the GIL.
 */
#define VERDICT_FREE_MAX 16
static VerdictObject *verdict_free[VERDICT_FREE_MAX];
static int verdict_nfree;

static PyObject *verdict_new(const struct vrl_verdict *v)
{
	VerdictObject *o;

	if (verdict_nfree > 0) {
		o = verdict_free[--verdict_nfree];
		_Py_NewReference((PyObject *)o);
	} else {
		o = PyObject_New(VerdictObject, &VerdictType);
	}
	if (!o)
		return NULL;
	o->v = *v;
	o->v.limit_name = NULL;
	o->name = NULL;
	o->limit_name[0] = '\0';
	if (v->limit_name) {
		size_t n = strnlen(v->limit_name, VERDICT_NAME_MAX - 1);

		memcpy(o->limit_name, v->limit_name, n);
		o->limit_name[n] = '\0';
	}
	return (PyObject *)o;
}

static void verdict_dealloc(VerdictObject *o)
{
	Py_CLEAR(o->name);
	if (verdict_nfree < VERDICT_FREE_MAX)
		verdict_free[verdict_nfree++] = o;
	else
		PyObject_Free(o);
}

static int verdict_bool(VerdictObject *o)
{
	return o->v.granted != 0;
}

static PyObject *ns_seconds(uint64_t ns)
{
	return PyFloat_FromDouble((double)ns / NS_PER_S);
}

static PyObject *v_granted(VerdictObject *o, void *u)
{
	(void)u;
	return PyBool_FromLong(o->v.granted);
}

static PyObject *v_limit(VerdictObject *o, void *u)
{
	(void)u;
	if (o->v.limit < 0)
		Py_RETURN_NONE;
	if (!o->name && !(o->name = PyUnicode_FromString(o->limit_name)))
		return NULL;
	return Py_NewRef(o->name);
}

static PyObject *v_retry_after(VerdictObject *o, void *u)
{
	(void)u;
	if (o->v.retry_after_ns == VRL_NEVER)
		Py_RETURN_NONE;
	return ns_seconds(o->v.retry_after_ns);
}

static PyObject *v_reset_after(VerdictObject *o, void *u)
{
	(void)u;
	return ns_seconds(o->v.reset_ns);
}

#define V_U64(field)                                                      \
	static PyObject *v_##field(VerdictObject *o, void *u)             \
	{                                                                 \
		(void)u;                                                  \
		return PyLong_FromUnsignedLongLong(o->v.field);           \
	}
V_U64(retry_after_ns)
V_U64(remaining)
V_U64(limit_value)
V_U64(reset_ns)
V_U64(at_ns)
V_U64(matched)
V_U64(flags)
V_U64(kind)
V_U64(cost)
V_U64(overage)
#undef V_U64

static PyObject *v_pace(VerdictObject *o, void *u)
{
	(void)u;
	if (o->v.pace_q16 == 0)
		Py_RETURN_NONE;
	return PyFloat_FromDouble((double)o->v.pace_q16 / 65536.0);
}

const struct vrl_verdict *vrl_py_verdict_of(PyObject *obj)
{
	if (!PyObject_TypeCheck(obj, &VerdictType)) {
		PyErr_SetString(PyExc_TypeError, "verdict must be a vrl.Verdict");
		return NULL;
	}
	return &((VerdictObject *)obj)->v;
}

static PyObject *v_limit_index(VerdictObject *o, void *u)
{
	(void)u;
	return PyLong_FromLong(o->v.limit);
}

static PyObject *v_flag(VerdictObject *o, void *bit)
{
	return PyBool_FromLong((o->v.flags & (uint32_t)(uintptr_t)bit) != 0);
}

#define FLAG(name, bit, doc) \
	{ name, (getter)v_flag, NULL, doc, (void *)(uintptr_t)(bit) }

static PyGetSetDef verdict_getset[] = {
	{ "granted", (getter)v_granted, NULL, "True when every matching limit granted.", NULL },
	{ "limit", (getter)v_limit, NULL,
	  "Name of the deciding limit: the one that denied, or on a grant the one with the "
	  "fewest permits left. None when no limit matched.", NULL },
	{ "limit_index", (getter)v_limit_index, NULL,
	  "Index of the deciding limit in Client.limits; -1 when none matched.", NULL },
	{ "retry_after", (getter)v_retry_after, NULL,
	  "Seconds to wait before retrying (float); 0.0 when granted; None when the "
	  "request can never pass (its cost exceeds the limit).", NULL },
	{ "retry_after_ns", (getter)v_retry_after_ns, NULL,
	  "retry_after in nanoseconds (2**64-1 for never).", NULL },
	{ "remaining", (getter)v_remaining, NULL, "Permits the deciding key still has.", NULL },
	{ "limit_value", (getter)v_limit_value, NULL, "The deciding limit's size (burst).", NULL },
	{ "reset_after", (getter)v_reset_after, NULL,
	  "Seconds until the deciding key is whole again (float).", NULL },
	{ "reset_ns", (getter)v_reset_ns, NULL, "reset_after in nanoseconds.", NULL },
	{ "at_ns", (getter)v_at_ns, NULL,
	  "Monotonic time (ns, vrl.now_ns() clock) the decision counts at; for a waiting "
	  "acquire the reserved time.", NULL },
	{ "matched", (getter)v_matched, NULL, "How many limits matched the request.", NULL },
	{ "flags", (getter)v_flags, NULL, "VERDICT_* bits.", NULL },
	{ "kind", (getter)v_kind, NULL,
	  "The deciding limit's algorithm: RATE, GATE, WINDOW, QUOTA or SLOTS; 0 if none.", NULL },
	{ "cost", (getter)v_cost, NULL, "Units the request asked for.", NULL },
	{ "pace", (getter)v_pace, NULL,
	  "The slowest effective rate among the request's adaptive keys, a fraction of "
	  "its figure (1.0: at it); None when none adapts.", NULL },
	{ "overage", (getter)v_overage, NULL,
	  "Soft quota: units of the deciding key past its limit after this grant (0 within it).",
	  NULL },
	FLAG("cooldown", VRL_VERDICT_COOLDOWN, "The deciding key was closed by a cooldown."),
	FLAG("shadow", VRL_VERDICT_SHADOW, "A shadow limit would have denied; granted."),
	FLAG("table_full", VRL_VERDICT_TABLE_FULL,
	     "A key found no slot in the table; the config's policy decided."),
	FLAG("no_limit", VRL_VERDICT_NO_LIMIT, "No limit matched the request."),
	FLAG("unmatched", VRL_VERDICT_UNMATCHED,
	     "No limit matched and the config's unmatched: policy (warn or deny) counted it."),
	FLAG("over", VRL_VERDICT_OVERAGE, "A soft quota granted units past its limit."),
	FLAG("alert", VRL_VERDICT_ALERT, "This grant crossed an alert threshold."),
	FLAG("saturated", VRL_VERDICT_SATURATED,
	     "A soft quota's count is at its ceiling (2**40 - 1 units in the period): "
	     "its overage stops growing."),
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyObject *verdict_repr(VerdictObject *o)
{
	char retry[32];

	if (o->v.retry_after_ns == VRL_NEVER)
		strcpy(retry, "never");
	else
		snprintf(retry, sizeof(retry), "%.6f", (double)o->v.retry_after_ns / NS_PER_S);
	return PyUnicode_FromFormat("<vrl.Verdict %s limit=%s retry_after=%s remaining=%llu "
				    "matched=%u>", o->v.granted ? "granted" : "denied",
				    o->v.limit >= 0 ? o->limit_name : "None", retry,
				    (unsigned long long)o->v.remaining, (unsigned)o->v.matched);
}

/* Pickled as its C fields, so that RateLimited crosses multiprocessing. */
static PyObject *verdict_reduce(VerdictObject *o, PyObject *unused)
{
	PyObject *mod, *fn, *r;

	(void)unused;
	mod = PyImport_ImportModule("vrl._vrl");
	if (!mod)
		return NULL;
	fn = PyObject_GetAttrString(mod, "_verdict");
	Py_DECREF(mod);
	if (!fn)
		return NULL;
	r = Py_BuildValue("(N(y#s))", fn, (const char *)&o->v, (Py_ssize_t)sizeof(o->v),
			  o->limit_name);
	return r;
}

static PyObject *verdict_restore(PyObject *mod, PyObject *args)
{
	const char *bytes, *name;
	Py_ssize_t len;
	struct vrl_verdict v;

	(void)mod;
	if (!PyArg_ParseTuple(args, "y#s", &bytes, &len, &name))
		return NULL;
	if (len != (Py_ssize_t)sizeof(v)) {
		PyErr_SetString(PyExc_ValueError, "not a pickled vrl.Verdict of this build");
		return NULL;
	}
	memcpy(&v, bytes, sizeof(v));
	v.limit_name = name;
	return verdict_new(&v);
}

static PyMethodDef verdict_methods[] = {
	{ "__reduce__", (PyCFunction)verdict_reduce, METH_NOARGS, NULL },
	{ NULL, NULL, 0, NULL },
};

static PyNumberMethods verdict_as_number = {
	.nb_bool = (inquiry)verdict_bool,
};

static PyTypeObject VerdictType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "vrl.Verdict",
	.tp_doc = PyDoc_STR("The outcome of an acquire; true when granted.\n\n"
			    "Made by Client.acquire() and its kin, never by hand."),
	.tp_basicsize = sizeof(VerdictObject),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_dealloc = (destructor)verdict_dealloc,
	.tp_repr = (reprfunc)verdict_repr,
	.tp_as_number = &verdict_as_number,
	.tp_getset = verdict_getset,
	.tp_methods = verdict_methods,
};

/* RateLimited for a denial: carries the verdict and its retry_after. */
static PyObject *raise_limited(PyObject *verdict)
{
	VerdictObject *v = (VerdictObject *)verdict;
	char msg[160];
	PyObject *e, *retry;

	if (v->v.retry_after_ns == VRL_NEVER)
		snprintf(msg, sizeof(msg), "denied by %s: the request can never pass",
			 v->limit_name);
	else
		snprintf(msg, sizeof(msg), "denied by %s: retry after %.6f s", v->limit_name,
			 (double)v->v.retry_after_ns / NS_PER_S);
	e = make_error(vrl_py_RateLimited, VRL_EDENIED, msg);
	if (!e)
		return NULL;
	retry = v_retry_after(v, NULL);
	if (!retry || PyObject_SetAttrString(e, "verdict", verdict) ||
	    PyObject_SetAttrString(e, "retry_after", retry)) {
		Py_XDECREF(retry);
		Py_DECREF(e);
		return NULL;
	}
	Py_DECREF(retry);
	PyErr_SetObject(vrl_py_RateLimited, e);
	Py_DECREF(e);
	return NULL;
}

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
			r = verdict_new(&v);
			if (r && rc && raise) {
				raise_limited(r);
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
	*out = s * NS_PER_S >= (double)WAIT_FOREVER_NS ? WAIT_FOREVER_NS : (uint64_t)(s * NS_PER_S);
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
			r = verdict_new(&v);
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
	*out = s * NS_PER_S >= 1.8e19 ? UINT64_MAX : (uint64_t)(s * NS_PER_S);
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

/* ---- Resolved ------------------------------------------------------------------ */

typedef struct {
	PyObject_HEAD
	ClientObject *client;           /* strong: a resolved request belongs to its handle */
	vrl_resolved *r;
} ResolvedObject;

static PyTypeObject ResolvedType;

static const struct vrl_py_sig sig_resolve = {
	"resolve", K_FIELDS | KB(K_COST),
	{ K_API, K_ENDPOINT, K_TOKEN, K_ORG, K_VEHICLE, K_USER, K_COST, K_ATTRS, -1 },
};

static PyObject *client_resolve(ClientObject *self, PyObject *const *args, Py_ssize_t nargs,
				PyObject *kwnames)
{
	PyObject *vals[K__COUNT];
	ResolvedObject *o = NULL;
	struct vrl_py_req q;
	vrl_resolved *r;
	int held, rc;

	if (vrl_py_parse(&sig_resolve, args, nargs, kwnames, vals))
		return NULL;
	if (vrl_py_req_build(&q, vals, 1) == 0 && (held = vrl_py_hold(self, 1)) >= 0) {
		rc = vrl_resolve(self->c, &q.req, &r);
		vrl_py_unhold(self, held);
		if (rc) {
			vrl_py_raise(rc);
		} else if (!(o = PyObject_GC_New(ResolvedObject, &ResolvedType))) {
			vrl_resolved_free(r);
		} else {
			o->client = (ClientObject *)Py_NewRef(self);
			o->r = r;
			PyObject_GC_Track(o);
		}
	}
	vrl_py_req_done(&q);
	return (PyObject *)o;
}

static int resolved_traverse(ResolvedObject *o, visitproc visit, void *arg)
{
	Py_VISIT(o->client);
	return 0;
}

static int resolved_clear(ResolvedObject *o)
{
	/* vrl_resolved_free() touches only the resolved request's own memory,
	 * so it is safe after its handle is closed */
	vrl_resolved_free(o->r);
	o->r = NULL;
	Py_CLEAR(o->client);
	return 0;
}

static void resolved_dealloc(ResolvedObject *o)
{
	PyObject_GC_UnTrack(o);
	resolved_clear(o);
	PyObject_GC_Del(o);
}

static PyObject *resolved_acquire(ResolvedObject *o, PyObject *const *args, Py_ssize_t nargs,
				  PyObject *kwnames)
{
	static const struct vrl_py_sig sig = { "acquire", KB(K_COST), { K_COST, -1 } };
	PyObject *cost = nargs == 1 && !kwnames ? args[0] : NULL;
	uint64_t n = 0;
	struct vrl_verdict v;
	int held, rc;

	/* the usual call, r.acquire(), parses nothing */
	if ((nargs || kwnames) && !cost) {
		PyObject *vals[K__COUNT];

		if (vrl_py_parse(&sig, args, nargs, kwnames, vals))
			return NULL;
		cost = vals[K_COST];
	}
	if (cost && cost != Py_None && vrl_py_cost(cost, &n))
		return NULL;
	if (!o->r) {
		PyErr_SetString(PyExc_ValueError, "the resolved request was cleared");
		return NULL;
	}
	held = vrl_py_hold(o->client, 1);
	if (held < 0)
		return NULL;
	rc = vrl_acquire_resolved(o->client->c, o->r, n, &v);
	vrl_py_unhold(o->client, held);
	if (rc == 0 || rc == VRL_EDENIED)
		return verdict_new(&v);
	return vrl_py_raise(rc);
}

static PyObject *resolved_client(ResolvedObject *o, void *u)
{
	(void)u;
	return Py_NewRef(o->client ? (PyObject *)o->client : Py_None);
}

static PyMethodDef resolved_methods[] = {
	{ "acquire", (PyCFunction)(void (*)(void))resolved_acquire, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("acquire(cost=None) -> Verdict\n--\n\n"
		    "Acquire the resolved request now; cost defaults to the one given to "
		    "resolve(). Never raises on a denial: test the verdict.") },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef resolved_getset[] = {
	{ "client", (getter)resolved_client, NULL, "The Client this request belongs to.", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyTypeObject ResolvedType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "vrl.Resolved",
	.tp_doc = PyDoc_STR("A request matched and hashed once by Client.resolve(), "
			    "acquired many times: the hot path.\n\nIt follows config reloads "
			    "and evictions by itself."),
	.tp_basicsize = sizeof(ResolvedObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
	.tp_dealloc = (destructor)resolved_dealloc,
	.tp_traverse = (traverseproc)resolved_traverse,
	.tp_clear = (inquiry)resolved_clear,
	.tp_methods = resolved_methods,
	.tp_getset = resolved_getset,
};

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
	{ "resolve", FASTCALL(client_resolve),
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

/* ---- module -------------------------------------------------------------------------- */

static PyObject *mod_now(PyObject *mod, PyObject *unused)
{
	(void)mod, (void)unused;
	return ns_seconds(vrl_now_ns());
}

static PyObject *mod_now_ns(PyObject *mod, PyObject *unused)
{
	(void)mod, (void)unused;
	return PyLong_FromUnsignedLongLong(vrl_now_ns());
}

static PyObject *mod_after_fork_child(PyObject *mod, PyObject *unused)
{
	(void)mod, (void)unused;
	vrl_py_fork_gen++;
	Py_RETURN_NONE;
}

static PyObject *mod_strerror(PyObject *mod, PyObject *arg)
{
	long code = PyLong_AsLong(arg);

	(void)mod;
	if (code == -1 && PyErr_Occurred())
		return NULL;
	return PyUnicode_FromString(vrl_strerror((int)code));
}

static PyObject *mod_libvrl_version(PyObject *mod, PyObject *unused)
{
	(void)mod;
	(void)unused;
	return PyUnicode_FromString(vrl_version_string());
}

static PyMethodDef mod_methods[] = {
	{ "now", mod_now, METH_NOARGS,
	  PyDoc_STR("now() -> float\n--\n\nMonotonic seconds: vrl's clock, the same as "
		    "time.monotonic().") },
	{ "now_ns", mod_now_ns, METH_NOARGS,
	  PyDoc_STR("now_ns() -> int\n--\n\nMonotonic nanoseconds, the clock of Verdict.at_ns.") },
	{ "strerror", mod_strerror, METH_O,
	  PyDoc_STR("strerror(code) -> str\n--\n\nDescribe a vrl error code.") },
	{ "libvrl_version", mod_libvrl_version, METH_NOARGS,
	  PyDoc_STR("libvrl_version() -> str\n--\n\nThe version of the libvrl the module runs "
		    "with (vrl_version_string()).") },
	{ "_after_fork_child", mod_after_fork_child, METH_NOARGS, NULL },
	{ "_verdict", verdict_restore, METH_VARARGS, NULL },
#ifdef VRL_PY_FEEDBACK
	{ "parse_retry_after", vrl_py_parse_retry_after, METH_O,
	  PyDoc_STR("parse_retry_after(value) -> float\n--\n\nSeconds a Retry-After value "
		    "asks to wait: integer, fractional or HTTP-date. ValueError if malformed.") },
#endif
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef vrl_module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "vrl._vrl",
	.m_doc = PyDoc_STR("The C core of vrl: shared-memory rate limits for worker pools."),
	.m_size = -1,
	.m_methods = mod_methods,
};

static int add_exceptions(PyObject *m)
{
	PyObject *bases;

	vrl_py_Error = PyErr_NewExceptionWithDoc("vrl.Error",
		"A vrl error: .code (negative int), .name ('VRL_ENOSEG') and the library's "
		"message; an OSError, whose errno is the code (positive for a system error).",
		PyExc_OSError, NULL);
	if (!vrl_py_Error)
		return -1;
	vrl_py_RateLimited = PyErr_NewExceptionWithDoc("vrl.RateLimited",
		"A request was denied: .verdict says by which limit, .retry_after (seconds, "
		"None for never) when to try again.", vrl_py_Error, NULL);
	bases = PyTuple_Pack(2, vrl_py_Error, PyExc_FileNotFoundError);
	if (!vrl_py_RateLimited || !bases)
		return -1;
	vrl_py_SegmentNotFound = PyErr_NewExceptionWithDoc("vrl.SegmentNotFound",
		"No vrl segment by that name: is vrld running, with the same segment name?",
		bases, NULL);
	Py_DECREF(bases);
	if (!vrl_py_SegmentNotFound)
		return -1;
	vrl_py_Unmatched = PyErr_NewExceptionWithDoc("vrl.Unmatched",
		"No limit matches the request and vrld's config says unmatched: deny: a typo "
		"in the request's api or fields, or a limit missing from the config. Waiting "
		"does not help.", vrl_py_Error, NULL);
	if (!vrl_py_Unmatched)
		return -1;
	if (PyModule_AddObjectRef(m, "Error", vrl_py_Error) ||
	    PyModule_AddObjectRef(m, "RateLimited", vrl_py_RateLimited) ||
	    PyModule_AddObjectRef(m, "SegmentNotFound", vrl_py_SegmentNotFound) ||
	    PyModule_AddObjectRef(m, "Unmatched", vrl_py_Unmatched))
		return -1;
	return 0;
}

static int add_constants(PyObject *m)
{
	static const struct { const char *name; long value; } consts[] = {
		{ "RATE", VRL_RATE }, { "GATE", VRL_GATE }, { "WINDOW", VRL_WINDOW },
		{ "QUOTA", VRL_QUOTA }, { "SLOTS", VRL_SLOTS },
		{ "VERDICT_COOLDOWN", VRL_VERDICT_COOLDOWN },
		{ "VERDICT_SHADOW", VRL_VERDICT_SHADOW },
		{ "VERDICT_TABLE_FULL", VRL_VERDICT_TABLE_FULL },
		{ "VERDICT_NO_LIMIT", VRL_VERDICT_NO_LIMIT },
		{ "VERDICT_OVERAGE", VRL_VERDICT_OVERAGE },
		{ "VERDICT_ALERT", VRL_VERDICT_ALERT },
		{ "VERDICT_PACED", VRL_VERDICT_PACED },
		{ "VERDICT_SATURATED", VRL_VERDICT_SATURATED },
		{ "VERDICT_UNMATCHED", VRL_VERDICT_UNMATCHED },
#define VRL_PY_ERR(name, value, msg) { "E" #name, value },
		VRL_ERRORS(VRL_PY_ERR)
#undef VRL_PY_ERR
	};

	for (size_t i = 0; i < sizeof(consts) / sizeof(consts[0]); i++)
		if (PyModule_AddIntConstant(m, consts[i].name, consts[i].value))
			return -1;
#ifdef VRL_PY_FEEDBACK
	return PyModule_AddObjectRef(m, "HAVE_FEEDBACK", Py_True);
#else
	return PyModule_AddObjectRef(m, "HAVE_FEEDBACK", Py_False);
#endif
}

PyMODINIT_FUNC PyInit__vrl(void);

PyMODINIT_FUNC PyInit__vrl(void)
{
	PyObject *m;

	for (int k = 0; k < K__COUNT; k++)
		if (!vrl_py_kw[k] && !(vrl_py_kw[k] = PyUnicode_InternFromString(kw_text[k])))
			return NULL;
	if (PyType_Ready(&VerdictType) || PyType_Ready(&ResolvedType) ||
	    PyType_Ready(&vrl_py_ClientType))
		return NULL;
	m = PyModule_Create(&vrl_module);
	if (!m)
		return NULL;
	if (add_exceptions(m) || add_constants(m) ||
	    PyModule_AddObjectRef(m, "Client", (PyObject *)&vrl_py_ClientType) ||
	    PyModule_AddObjectRef(m, "Resolved", (PyObject *)&ResolvedType) ||
	    PyModule_AddObjectRef(m, "Verdict", (PyObject *)&VerdictType)) {
		Py_DECREF(m);
		return NULL;
	}
#ifdef VRL_PY_FEEDBACK
	if (vrl_py_feedback_init(m)) {
		Py_DECREF(m);
		return NULL;
	}
#endif
	return m;
}
