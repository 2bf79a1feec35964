"""vrl: shared-memory rate limits for pools of worker processes.

vrld compiles the limits of its config into a POSIX shared-memory segment;
every worker process attaches to it and acquires permits with a few atomic
instructions, so the limits hold across the whole pool (Celery, gunicorn,
multiprocessing) without a network round trip::

    import vrl

    client = vrl.Client("/vrl")
    verdict = client.acquire(api="samsara", token=token, org=org)
    if not verdict:
        time.sleep(verdict.retry_after)

The hot path (Client.acquire, Resolved.acquire) is C; this module adds the
context manager and the decorator around it.
"""

import functools
import os

from vrl._vrl import (  # noqa: F401 (re-exported)
    Client as _Client,
    Error,
    RateLimited,
    Resolved,
    SegmentNotFound,
    Unmatched,
    Verdict,
    HAVE_FEEDBACK,
    RATE, GATE, WINDOW, QUOTA, SLOTS,
    VERDICT_COOLDOWN, VERDICT_SHADOW, VERDICT_TABLE_FULL, VERDICT_NO_LIMIT,
    VERDICT_OVERAGE, VERDICT_ALERT, VERDICT_SATURATED, VERDICT_UNMATCHED, VERDICT_PACED,
    VERDICT_SHARE,
    EDENIED, ENOSEG, EMAGIC, EFORMAT, ECORRUPT, EFULL, ENOLIMIT, EREADONLY,
    ETOOMANY, ENOKEY, EBUSY, EOWNER, EUNMATCHED, ENULL, EHANDLE, ERESERVED,
    now, now_ns, strerror, libvrl_version,
)
from vrl import _vrl
from vrl._version import __version__

if HAVE_FEEDBACK:
    from vrl._vrl import (  # noqa: F401
        Feedback, parse_retry_after, FB_COOLDOWN, FB_RECONCILE, FB_REFUND, FB_IGNORED,
        FB_ADAPT,
    )

__all__ = [
    "__version__",
    "Client", "Limit", "Resolved", "Verdict", "Error", "RateLimited", "SegmentNotFound",
    "Unmatched",
    "HAVE_FEEDBACK", "now", "now_ns", "strerror", "libvrl_version",
    "RATE", "GATE", "WINDOW", "QUOTA", "SLOTS",
]

_FIELDS = ("api", "endpoint", "token", "org", "vehicle", "user", "attrs")


def _error_str(self):
    return "%s (%s)" % (self.strerror, getattr(self, "name", "?"))


Error.__str__ = _error_str  # the message, not "[Errno -30002] ..."

# A forked child must not wait on a lock that a parent thread held while it
# slept in acquire_wait: the module remakes such a lock in the child.
os.register_at_fork(after_in_child=_vrl._after_fork_child)


class Limit:
    """Context manager of Client.limit(): acquires on entry, waiting up to
    timeout seconds, and raises RateLimited when that is not enough. On
    exit it releases what a slots limit of the request holds (a no-op for
    other kinds). Entering returns the Verdict. Reusable, not reentrant."""

    __slots__ = ("_client", "_fields", "_cost", "_timeout", "verdict")

    def __init__(self, client, fields, cost, timeout):
        self._client = client
        self._fields = fields
        self._cost = cost
        self._timeout = timeout
        self.verdict = None

    def __enter__(self):
        v = self._client.acquire_wait(cost=self._cost, timeout=self._timeout, **self._fields)
        if not v:
            raise _rate_limited(v)
        self.verdict = v
        return v

    def __exit__(self, exc_type, exc, tb):
        v, self.verdict = self.verdict, None
        if v is not None and HAVE_FEEDBACK:
            try:
                self._client.release(cost=self._cost, **self._fields)
            except Error as e:
                # no slots limit matched the request: nothing was held
                if e.code not in (ENOLIMIT, ENOKEY):
                    raise
        return False


def _rate_limited(verdict):
    """The RateLimited exception of a denied verdict, as Client.take() makes it."""
    if verdict.retry_after is None:
        msg = "denied by %s: the request can never pass" % verdict.limit
    else:
        msg = "denied by %s: retry after %.6f s" % (verdict.limit, verdict.retry_after)
    e = RateLimited(EDENIED, msg)
    e.code, e.name = EDENIED, "VRL_EDENIED"
    e.verdict, e.retry_after = verdict, verdict.retry_after
    return e


class Client(_Client):
    """Client(segment="/vrl", readonly=False)

    A handle on the vrl segment that vrld created. Raises SegmentNotFound
    when vrld is not running under that segment name. Keep one per process
    (create it at import or in a pool's worker init: a Client made before
    fork() keeps working in the children). Threads may share one.
    """

    __slots__ = ()

    def limit(self, *, cost=1, timeout=None, **fields):
        """Context manager: ``with client.limit(api=..., token=..., timeout=5):``

        Waits up to timeout seconds (None: as long as the limits need, 0: not
        at all) for every matching limit, then runs the block; raises
        RateLimited when the wait would be longer. Releases a slots limit's
        hold when the block ends.
        """
        _check_fields(fields)
        return Limit(self, fields, cost, timeout)

    def limited(self, *, cost=1, timeout=None, **fields):
        """Decorator: run the function inside ``self.limit(...)``.

        A field may be a value or a callable taking the function's arguments,
        e.g. ``token=lambda account, *a, **k: account.token``; cost too.
        """
        _check_fields(fields)
        dynamic = {k: f for k, f in fields.items() if callable(f)}
        static = {k: v for k, v in fields.items() if not callable(v)}

        def decorate(func):
            @functools.wraps(func)
            def wrapper(*args, **kwargs):
                req = dict(static)
                for k, f in dynamic.items():
                    req[k] = f(*args, **kwargs)
                c = cost(*args, **kwargs) if callable(cost) else cost
                with Limit(self, req, c, timeout):
                    return func(*args, **kwargs)
            return wrapper
        return decorate


def _check_fields(fields):
    for k in fields:
        if k not in _FIELDS:
            raise TypeError("unexpected request field %r (fields: %s)" % (k, ", ".join(_FIELDS)))
