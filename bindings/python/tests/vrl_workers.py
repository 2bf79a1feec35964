"""Worker functions for the multi-process tests: a module of their own, so
that forkserver children import them by name."""
import os
import random

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


SAMPLE = 2000      # denials a worker keeps (a uniform sample of them all)


def hammer(args):
    """Acquire org `org` of limit h.org until monotonic ns `until`; return
    the pid, the at_ns of every grant, and a sample of the denials as
    (at_ns, the clock once the call had returned). Half the workers acquire
    by fields, half through a resolved request."""
    org, until, resolved = args
    c = _client
    r = c.resolve(api="h", org=org) if resolved else None
    grants, denials, seen = [], [], 0
    rng = random.Random(os.getpid())
    while vrl.now_ns() < until:
        v = r.acquire() if r is not None else c.acquire(api="h", org=org)
        if v:
            grants.append(v.at_ns)
            continue
        d = (v.at_ns, vrl.now_ns())
        seen += 1
        if len(denials) < SAMPLE:
            denials.append(d)
        elif rng.randrange(seen) < SAMPLE:
            denials[rng.randrange(SAMPLE)] = d
    return os.getpid(), grants, denials


def one(args):
    """One acquire on key `token` of t.rate: (granted, pid)."""
    token, = args
    return bool(_client.acquire(api="t", token=token)), os.getpid()
