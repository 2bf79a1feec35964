/*
 * _verdict.c - vrl.Verdict, the outcome of an acquire, and RateLimited,
 * the exception that carries one.
 */
#include "_vrl.h"

#include <string.h>

#define VERDICT_NAME_MAX 64          /* a limit name, NUL included (segment format) */

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

/*
 * Verdicts freed go to a short free list and are handed out again, so the
 * usual loop (acquire, test, drop) allocates nothing. Guarded by the GIL.
 */
#define VERDICT_FREE_MAX 16
static VerdictObject *verdict_free[VERDICT_FREE_MAX];
static int verdict_nfree;

PyObject *vrl_py_verdict_new(const struct vrl_verdict *v)
{
	VerdictObject *o;

	if (verdict_nfree > 0) {
		o = verdict_free[--verdict_nfree];
		_Py_NewReference((PyObject *)o);
	} else {
		o = PyObject_New(VerdictObject, &vrl_py_VerdictType);
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

PyObject *vrl_py_ns_seconds(uint64_t ns)
{
	return PyFloat_FromDouble((double)ns / VRL_PY_NS_PER_S);
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
	return vrl_py_ns_seconds(o->v.retry_after_ns);
}

static PyObject *v_reset_after(VerdictObject *o, void *u)
{
	(void)u;
	return vrl_py_ns_seconds(o->v.reset_ns);
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
	if (!PyObject_TypeCheck(obj, &vrl_py_VerdictType)) {
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
	FLAG("share", VRL_VERDICT_SHARE,
	     "Denied by a global limit's key for want of this host's share of it (the "
	     "limit itself has room; the share vrld leases for this host has none now)."),
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
		snprintf(retry, sizeof(retry), "%.6f", (double)o->v.retry_after_ns / VRL_PY_NS_PER_S);
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

PyObject *vrl_py_verdict_restore(PyObject *mod, PyObject *args)
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
	return vrl_py_verdict_new(&v);
}

static PyMethodDef verdict_methods[] = {
	{ "__reduce__", (PyCFunction)verdict_reduce, METH_NOARGS, NULL },
	{ NULL, NULL, 0, NULL },
};

static PyNumberMethods verdict_as_number = {
	.nb_bool = (inquiry)verdict_bool,
};

PyTypeObject vrl_py_VerdictType = {
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
PyObject *vrl_py_raise_limited(PyObject *verdict)
{
	VerdictObject *v = (VerdictObject *)verdict;
	char msg[160];
	PyObject *e, *retry;

	if (v->v.retry_after_ns == VRL_NEVER)
		snprintf(msg, sizeof(msg), "denied by %s: the request can never pass",
			 v->limit_name);
	else
		snprintf(msg, sizeof(msg), "denied by %s: retry after %.6f s", v->limit_name,
			 (double)v->v.retry_after_ns / VRL_PY_NS_PER_S);
	e = vrl_py_make_error(vrl_py_RateLimited, VRL_EDENIED, msg);
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
