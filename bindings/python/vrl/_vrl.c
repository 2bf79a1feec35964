/*
 * _vrl.c - the CPython binding of libvrl: the module vrl._vrl, its
 * functions (now(), strerror()...), exceptions and constants. Client is in
 * _client.c, Resolved in _resolved.c, Verdict in _verdict.c, the calls'
 * arguments and the errors in _args.c, release/refund/observe in
 * _feedback.c; _vrl.h declares what they share.
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

/* ---- module -------------------------------------------------------------------------- */

static PyObject *mod_now(PyObject *mod, PyObject *unused)
{
	(void)mod, (void)unused;
	return vrl_py_ns_seconds(vrl_now_ns());
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
	{ "_verdict", vrl_py_verdict_restore, METH_VARARGS, NULL },
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
		{ "VERDICT_SHARE", VRL_VERDICT_SHARE },
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
		if (!vrl_py_kw[k] && !(vrl_py_kw[k] = PyUnicode_InternFromString(vrl_py_kw_text[k])))
			return NULL;
	if (PyType_Ready(&vrl_py_VerdictType) || PyType_Ready(&vrl_py_ResolvedType) ||
	    PyType_Ready(&vrl_py_ClientType))
		return NULL;
	m = PyModule_Create(&vrl_module);
	if (!m)
		return NULL;
	if (add_exceptions(m) || add_constants(m) ||
	    PyModule_AddObjectRef(m, "Client", (PyObject *)&vrl_py_ClientType) ||
	    PyModule_AddObjectRef(m, "Resolved", (PyObject *)&vrl_py_ResolvedType) ||
	    PyModule_AddObjectRef(m, "Verdict", (PyObject *)&vrl_py_VerdictType)) {
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
