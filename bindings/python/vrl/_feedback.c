/*
 * _feedback.c - the calls that act on what the upstream did: release,
 * refund, observe, parse_retry_after.
 *
 * Compiled only when libvrl has vrl_release, vrl_refund, vrl_observe and
 * vrl_parse_retry_after (meson option python_feedback, detected by
 * default); without them Client.release/refund/observe raise
 * NotImplementedError and vrl.HAVE_FEEDBACK is False.
 *
 * observe() duck-types the response of the HTTP libraries worker pools use:
 * requests and httpx (.status_code, .headers, .content, .text) and urllib3
 * (.status, .headers, .data). Header names and values are passed as they
 * are; libvrl matches names without case.
 */
#include "_vrl.h"

#include "clock.h"

#define SMALL_HEADERS 32             /* headers kept on the stack; more go to the heap */

static PyTypeObject FeedbackType;

static PyStructSequence_Field feedback_fields[] = {
	{ "actions", "FB_* bits: what observe() did" },
	{ "limit", "name of the limit acted on, or None" },
	{ "cooldown_until", "monotonic seconds the key is closed until, or None" },
	{ "server_limit", "the server's limit figure, or None when absent" },
	{ "server_remaining", "the server's remaining figure, or None when absent" },
	{ "ignored", "why a header or body value was skipped, or None" },
	{ NULL, NULL },
};

static PyStructSequence_Desc feedback_desc = {
	"vrl.Feedback",
	"What Client.observe() did with a response.",
	feedback_fields,
	6,
};

/* ---- release and refund --------------------------------------------------- */

static const struct vrl_py_sig sig_give = {
	"release", K_FIELDS | KB(K_LIMIT) | KB(K_COST), { K_LIMIT, K_COST, -1 },
};

typedef int (*give_fn)(vrl_client *, const struct vrl_request *, const char *, uint64_t);

static PyObject *give_back(ClientObject *self, PyObject *const *args, Py_ssize_t nargs,
			   PyObject *kwnames, const char *name, give_fn fn)
{
	struct vrl_py_sig sig = sig_give;
	PyObject *vals[K__COUNT], *r = NULL;
	struct vrl_py_req q;
	const char *limit;
	int held, rc;

	sig.name = name;
	if (vrl_py_parse(&sig, args, nargs, kwnames, vals) ||
	    vrl_py_cstr(vals[K_LIMIT], &limit, "limit"))
		return NULL;
	if (vrl_py_req_build(&q, vals, 1) == 0 && (held = vrl_py_hold(self, 1)) >= 0) {
		rc = fn(self->c, &q.req, limit, q.req.cost);
		vrl_py_unhold(self, held);
		r = rc ? vrl_py_raise(rc) : Py_NewRef(Py_None);
	}
	vrl_py_req_done(&q);
	return r;
}

PyObject *vrl_py_release(ClientObject *self, PyObject *const *args, Py_ssize_t nargs,
			 PyObject *kwnames)
{
	return give_back(self, args, nargs, kwnames, "release", vrl_release);
}

PyObject *vrl_py_refund(ClientObject *self, PyObject *const *args, Py_ssize_t nargs,
			PyObject *kwnames)
{
	return give_back(self, args, nargs, kwnames, "refund", vrl_refund);
}

/* ---- observe ------------------------------------------------------------------ */

/* An attribute of the response, or NULL without an error when it has none. */
static PyObject *attr_or_null(PyObject *o, const char *name)
{
	PyObject *v = PyObject_GetAttrString(o, name);

	if (!v && PyErr_ExceptionMatches(PyExc_AttributeError))
		PyErr_Clear();
	return v;
}

/* resp.status_code (requests, httpx) or resp.status (urllib3), or a bare int. */
static int response_status(PyObject *resp, int *status)
{
	PyObject *s = PyLong_Check(resp) ? Py_NewRef(resp) : attr_or_null(resp, "status_code");
	long v;

	if (!s && !PyErr_Occurred())
		s = attr_or_null(resp, "status");
	if (!s) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_TypeError,
					"observe() needs a response with .status_code or .status");
		return -1;
	}
	v = PyLong_AsLong(s);
	Py_DECREF(s);
	if (v == -1 && PyErr_Occurred())
		return -1;
	*status = (int)v;
	return 0;
}

/* A header name or value as C text: str as UTF-8, bytes as they are. */
static int header_text(PyObject *keep, PyObject *o, const char **out)
{
	if (PyBytes_Check(o)) {
		if (PyList_Append(keep, o))
			return -1;
		*out = PyBytes_AS_STRING(o);
		return 0;
	}
	if (!PyUnicode_Check(o)) {
		o = PyObject_Str(o);
		if (!o)
			return -1;
		if (PyList_Append(keep, o)) {
			Py_DECREF(o);
			return -1;
		}
		Py_DECREF(o);
	}
	*out = PyUnicode_AsUTF8(o);
	return *out ? 0 : -1;
}

/* Fill @h from resp.headers (a mapping with .items(), or pairs). */
static int response_headers(PyObject *resp, PyObject *keep, struct vrl_header **h, size_t *n,
			    struct vrl_header *small)
{
	PyObject *hs = PyLong_Check(resp) ? NULL : attr_or_null(resp, "headers");
	PyObject *items, *seq;
	Py_ssize_t count;
	int rc = -1;

	*h = small;
	*n = 0;
	if (!hs)
		return PyErr_Occurred() ? -1 : 0;
	items = PyObject_HasAttrString(hs, "items") ?
		PyObject_CallMethod(hs, "items", NULL) : Py_NewRef(hs);
	Py_DECREF(hs);
	if (!items)
		return -1;
	seq = PySequence_Fast(items, "response headers must be a mapping or (name, value) pairs");
	Py_DECREF(items);
	if (!seq)
		return -1;
	count = PySequence_Fast_GET_SIZE(seq);
	if (count > SMALL_HEADERS && !(*h = PyMem_Calloc((size_t)count, sizeof(**h)))) {
		PyErr_NoMemory();
		goto out;
	}
	for (Py_ssize_t i = 0; i < count; i++) {
		PyObject *pair = PySequence_Fast_GET_ITEM(seq, i);

		if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
			PyErr_SetString(PyExc_TypeError, "response headers must be (name, value) pairs");
			goto out;
		}
		if (header_text(keep, PyTuple_GET_ITEM(pair, 0), &(*h)[i].name) ||
		    header_text(keep, PyTuple_GET_ITEM(pair, 1), &(*h)[i].value))
			goto out;
	}
	*n = (size_t)count;
	rc = 0;
out:
	/* the pairs' str objects are kept by `keep` through the tuple list */
	if (PyList_Append(keep, seq))
		rc = -1;
	Py_DECREF(seq);
	return rc;
}

/*
 * The body, for an error status only: a 200's body is the caller's data
 * (and reading .content of a streamed response would download it), while
 * the usage figures and error codes vrl reads come with 4xx answers.
 */
static int response_body(PyObject *resp, int status, PyObject *keep, struct vrl_response *out)
{
	static const char *const names[] = { "content", "data", "text" };

	if (status < 400 || PyLong_Check(resp))
		return 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		PyObject *b = attr_or_null(resp, names[i]);
		Py_ssize_t len;
		const char *s;

		if (!b) {
			if (PyErr_Occurred())
				return -1;
			continue;
		}
		if (PyList_Append(keep, b)) {
			Py_DECREF(b);
			return -1;
		}
		Py_DECREF(b);
		if (PyBytes_Check(b)) {
			out->body = PyBytes_AS_STRING(b);
			out->body_len = (size_t)PyBytes_GET_SIZE(b);
			return 0;
		}
		if (PyUnicode_Check(b)) {
			s = PyUnicode_AsUTF8AndSize(b, &len);
			if (!s)
				return -1;
			out->body = s;
			out->body_len = (size_t)len;
			return 0;
		}
	}
	return 0;
}

static PyObject *u64_or_none(uint64_t v)
{
	return v == UINT64_MAX ? Py_NewRef(Py_None) : PyLong_FromUnsignedLongLong(v);
}

static PyObject *feedback_new(ClientObject *self, const struct vrl_feedback *fb)
{
	PyObject *f = PyStructSequence_New(&FeedbackType), *v[6];
	const char *lname = fb->limit >= 0 ? vrl_limit_name(self->c, fb->limit) : NULL;

	if (!f)
		return NULL;
	v[0] = PyLong_FromUnsignedLong(fb->actions);
	v[1] = lname ? PyUnicode_FromString(lname) : Py_NewRef(Py_None);
	v[2] = fb->actions & VRL_FB_COOLDOWN ?
		PyFloat_FromDouble((double)fb->cooldown_until_ns / 1e9) : Py_NewRef(Py_None);
	v[3] = u64_or_none(fb->server_limit);
	v[4] = u64_or_none(fb->server_remaining);
	v[5] = fb->ignored ? PyUnicode_FromString(fb->ignored) : Py_NewRef(Py_None);
	for (int i = 0; i < 6; i++) {
		if (!v[i]) {
			for (int j = i + 1; j < 6; j++)
				Py_XDECREF(v[j]);
			Py_DECREF(f);
			return NULL;
		}
		PyStructSequence_SET_ITEM(f, i, v[i]);
	}
	return f;
}

static const struct vrl_py_sig sig_observe = {
	"observe", K_FIELDS | KB(K_LIMIT) | KB(K_VERDICT), { K_LIMIT, -1 },
};

PyObject *vrl_py_observe(ClientObject *self, PyObject *const *args, Py_ssize_t nargs,
			 PyObject *kwnames)
{
	struct vrl_header small[SMALL_HEADERS], *h = small;
	struct vrl_response resp = { 0 };
	struct vrl_feedback fb;
	PyObject *vals[K__COUNT], *keep, *r = NULL;
	const struct vrl_verdict *granted = NULL;
	struct vrl_py_req q;
	int held, rc;

	if (nargs < 1) {
		PyErr_SetString(PyExc_TypeError, "observe() needs the response");
		return NULL;
	}
	if (vrl_py_parse(&sig_observe, args + 1, nargs - 1, kwnames, vals) ||
	    vrl_py_cstr(vals[K_LIMIT], &resp.limit, "limit"))
		return NULL;
	if (vals[K_VERDICT] && vals[K_VERDICT] != Py_None &&
	    !(granted = vrl_py_verdict_of(vals[K_VERDICT])))
		return NULL;
	keep = PyList_New(0);
	if (!keep)
		return NULL;
	if (response_status(args[0], &resp.status) ||
	    response_headers(args[0], keep, &h, &resp.nheaders, small) ||
	    response_body(args[0], resp.status, keep, &resp))
		goto out;
	resp.headers = h;
	if (vrl_py_req_build(&q, vals, 1) == 0 && (held = vrl_py_hold(self, 1)) >= 0) {
		rc = vrl_observe_granted(self->c, &q.req, granted, &resp, &fb);
		r = rc ? vrl_py_raise(rc) : feedback_new(self, &fb);
		vrl_py_unhold(self, held);
	}
	vrl_py_req_done(&q);
out:
	if (h != small)
		PyMem_Free(h);
	Py_DECREF(keep);
	return r;
}

/* ---- Retry-After ------------------------------------------------------------- */

PyObject *vrl_py_parse_retry_after(PyObject *mod, PyObject *arg)
{
	Py_ssize_t len;
	const char *s;
	uint64_t delay;

	(void)mod;
	if (PyBytes_Check(arg)) {
		s = PyBytes_AS_STRING(arg);
		len = PyBytes_GET_SIZE(arg);
	} else if (!(s = PyUnicode_Check(arg) ? PyUnicode_AsUTF8AndSize(arg, &len) : NULL)) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_TypeError, "parse_retry_after() takes str or bytes");
		return NULL;
	}
	if (vrl_parse_retry_after(s, (size_t)len, vrl_wall_ns(), &delay) != 0) {
		PyErr_Format(PyExc_ValueError, "not a Retry-After value: %R", arg);
		return NULL;
	}
	return PyFloat_FromDouble((double)delay / 1e9);
}

int vrl_py_feedback_init(PyObject *mod)
{
	static const struct { const char *name; long value; } consts[] = {
		{ "FB_COOLDOWN", VRL_FB_COOLDOWN }, { "FB_RECONCILE", VRL_FB_RECONCILE },
		{ "FB_REFUND", VRL_FB_REFUND }, { "FB_IGNORED", VRL_FB_IGNORED },
		{ "FB_ADAPT", VRL_FB_ADAPT },
	};

	if (PyStructSequence_InitType2(&FeedbackType, &feedback_desc) ||
	    PyModule_AddObjectRef(mod, "Feedback", (PyObject *)&FeedbackType))
		return -1;
	for (size_t i = 0; i < sizeof(consts) / sizeof(consts[0]); i++)
		if (PyModule_AddIntConstant(mod, consts[i].name, consts[i].value))
			return -1;
	return 0;
}
