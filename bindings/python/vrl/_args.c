/*
 * _args.c - the arguments of the extension's calls, the request they
 * describe, and the exceptions a libvrl code raises.
 *
 * Keywords are matched by pointer against names interned at import
 * (vrl_py_kw); a request is built on the stack from the str objects' own
 * UTF-8 buffers, with no dict, no tuple and no temporary str for str
 * arguments.
 */
#include "_vrl.h"

#include <string.h>

PyObject *vrl_py_kw[K__COUNT];
PyObject *vrl_py_Error, *vrl_py_RateLimited, *vrl_py_SegmentNotFound, *vrl_py_Unmatched;

const char *const vrl_py_kw_text[K__COUNT] = {
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
				     sig->name, vrl_py_kw_text[k]);
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

PyObject *vrl_py_make_error(PyObject *type, int rc, const char *msg)
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
	e = vrl_py_make_error(type, rc, vrl_strerror(rc));
	if (e) {
		PyErr_SetObject(type, e);
		Py_DECREF(e);
	}
	return NULL;
}
