"""vrl across processes: os.fork, multiprocessing with the fork and
forkserver start methods, and a pool of 8 processes on one limit whose
grants must stay within it over every window, and whose denials must each
have found the bucket empty."""
import bisect
import multiprocessing
import os
import time

import pytest

import vrl
import vrl_workers

RATE = 400                     # h.org in conftest.py: 400/s, burst 8
BURST = 8
EMISSION_NS = 1_000_000_000 // RATE
RUN_NS = 1_500_000_000


def test_os_fork_child_uses_the_parents_client(client, key):
    r = client.resolve(api="t", token=key)
    assert r.acquire()
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        # the child: both the handle and the resolved request carry over
        try:
            ok = (client.acquire(api="t", token=key).remaining == 3 and
                  r.acquire().remaining == 2 and
                  client.limits[0] == "t.rate")
            os.write(wfd, b"ok" if ok else b"no")
        finally:
            os._exit(0)
    os.close(wfd)
    assert os.read(rfd, 2) == b"ok"
    os.close(rfd)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # the child's grants counted for everyone
    assert client.acquire(api="t", token=key).remaining == 1


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_multiprocessing_start_methods(segment, client, key, method):
    ctx = multiprocessing.get_context(method)
    if method == "fork":
        vrl_workers.use_inherited(client)
        pool = ctx.Pool(4)
    else:
        pool = ctx.Pool(4, initializer=vrl_workers.init, initargs=(segment,))
    with pool:
        results = pool.map(vrl_workers.one, [(key,)] * 8, chunksize=1)
    # burst 5 of t.rate: five grants across the processes, then denials
    assert sum(granted for granted, _ in results) == 5
    assert all(pid != os.getpid() for _, pid in results)
    assert not client.acquire(api="t", token=key)


def _unjustified(times, denials, burst, emission):
    """Denials (at, after) of a GCRA key of `burst` permits, one per
    `emission` ns, that the grants `times` (sorted) do not justify: a denial
    judged at d needs some grant a_i with N grants in [a_i - (burst - 1) T,
    after] and N T > d + (burst - 1) T - a_i (the proof is beside
    test_check_denials in tests/common.c)."""
    slack = (burst - 1) * emission
    best, lo = [], 0
    for i, a in enumerate(times):
        while times[lo] + slack < a:
            lo += 1
        v = a - lo * emission
        best.append(max(best[-1], v) if best else v)
    bad = 0
    for d, after in denials:
        c = bisect.bisect_right(times, after)
        if c == 0 or best[c - 1] <= d + slack - c * emission:
            bad += 1
    return bad


def test_denial_check_has_teeth():
    t0, T = 1_000_000, 1000
    assert _unjustified([t0] * 3, [(t0 + T // 2, t0 + T // 2)], 3, T) == 0
    assert _unjustified([t0] * 3, [(t0 + T, t0 + T)], 3, T) == 1
    assert _unjustified([t0] * 2, [(t0 + T // 2, t0 + T // 2)], 3, T) == 1


def _worst_window(times, w):
    """Most grants in any window of length w that starts at a grant."""
    worst, j = 0, 0
    for i in range(len(times)):
        j = max(j, i)
        while j + 1 < len(times) and times[j + 1] - times[i] <= w:
            j += 1
        worst = max(worst, j - i + 1)
    return worst


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_pool_of_8_stays_within_the_limit(segment, key, method):
    ctx = multiprocessing.get_context(method)
    org = key + "-" + method
    with ctx.Pool(8, initializer=vrl_workers.init, initargs=(segment,)) as pool:
        # every worker is up before the clock starts: the run measures
        # acquiring, not process start-up on a loaded machine
        pool.map(vrl_workers.one, [(key + "-warm",)] * 64, chunksize=1)
        until = vrl.now_ns() + RUN_NS
        results = pool.map(vrl_workers.hammer, [(org, until, i % 2 == 1) for i in range(8)],
                           chunksize=1)
    times = sorted(t for _, grants, _ in results for t in grants)
    denials = [d for _, _, ds in results for d in ds]
    assert len({pid for pid, _, _ in results}) >= 2
    assert times, "no grant at all"
    # never over: the GCRA bound burst + floor(w / emission) in every window
    # from one emission interval to the whole run, counted at at_ns
    for w in (EMISSION_NS, 10_000_000, 100_000_000, 1_000_000_000, RUN_NS):
        assert _worst_window(times, w) <= BURST + w // EMISSION_NS, w
    # never under without a cause: every denial sampled found the bucket
    # empty, however slow the machine was
    assert _unjustified(times, denials, BURST, EMISSION_NS) == 0
    # the share of the allowance used: a figure of this machine, printed
    allowed = BURST + (times[-1] - times[0]) // EMISSION_NS
    print("# %s: %d grants, %d allowed (%.1f%% used), %d denials checked" %
          (method, len(times), allowed, 100.0 * len(times) / allowed, len(denials)))


def test_fork_while_a_thread_waits_in_the_library(client, key):
    """A thread of the parent sleeps in acquire_wait (holding the client's
    turn) when another forks: the child must not wait for that thread."""
    import threading

    assert client.acquire(api="w", token=key)
    waiting = threading.Event()
    got = []

    def waiter():
        waiting.set()
        got.append(client.acquire_wait(api="w", token=key, timeout=30))

    t = threading.Thread(target=waiter)
    t.start()
    waiting.wait()
    # most likely asleep in the library by now; if not, the child's calls
    # must work all the same (this only makes the case tested the likely one)
    time.sleep(0.05)
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            ok = bool(client.acquire(api="t", token=key)) and \
                bool(client.acquire_wait(api="t", token=key, timeout=0))
            os.write(wfd, b"ok" if ok else b"no")
        finally:
            os._exit(0)
    os.close(wfd)
    assert os.read(rfd, 2) == b"ok"
    os.close(rfd)
    os.waitpid(pid, 0)
    t.join()
    assert got and got[0]
