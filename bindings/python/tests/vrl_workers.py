"""Worker functions for the multi-process tests: a module of their own, so
that forkserver children import them by name."""
import os

import vrl

_client = None      # set in the parent for fork, or by init() in each worker


def init(segment):
    """Pool initializer: one Client per worker process."""
    global _client
    _client = vrl.Client(segment)


def use_inherited(client):
    """Keep the parent's Client for forked workers (no init)."""
    global _client
    _client = client


def hammer(args):
    """Acquire org `org` of limit h.org until monotonic ns `until`; return
    the at_ns of every grant, with the pid that got it. Half the workers
    acquire by fields, half through a resolved request."""
    org, until, resolved = args
    c = _client
    r = c.resolve(api="h", org=org) if resolved else None
    grants = []
    while vrl.now_ns() < until:
        v = r.acquire() if r is not None else c.acquire(api="h", org=org)
        if v:
            grants.append(v.at_ns)
    return os.getpid(), grants


def one(args):
    """One acquire on key `token` of t.rate: (granted, pid)."""
    token, = args
    return bool(_client.acquire(api="t", token=token)), os.getpid()
