/*
 * _resolved.c - vrl.Resolved, a request matched and hashed once by
 * Client.resolve() and acquired many times: the hot path.
 */
#include "_vrl.h"

/* ---- Resolved ------------------------------------------------------------------ */

typedef struct {
	PyObject_HEAD
	ClientObject *client;           /* strong: a resolved request belongs to its handle */
	vrl_resolved *r;
} ResolvedObject;

static const struct vrl_py_sig sig_resolve = {
	"resolve", K_FIELDS | KB(K_COST),
	{ K_API, K_ENDPOINT, K_TOKEN, K_ORG, K_VEHICLE, K_USER, K_COST, K_ATTRS, -1 },
};

PyObject *vrl_py_client_resolve(ClientObject *self, PyObject *const *args, Py_ssize_t nargs,
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
		} else if (!(o = PyObject_GC_New(ResolvedObject, &vrl_py_ResolvedType))) {
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
		return vrl_py_verdict_new(&v);
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

PyTypeObject vrl_py_ResolvedType = {
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
