"""Fixtures of the Python suite: a real vrld on a private segment.

vrld is the one meson built (VRLD, set by the meson test; otherwise
build/daemon/vrld/vrld under the source tree). Each test session gets its own
segment name, so suites of parallel builds never meet.
"""
import contextlib
import os
import pathlib
import subprocess
import time

import pytest

import vrl

ROOT = pathlib.Path(__file__).resolve().parents[3]

CONFIG = """\
segment: {{name: {name}, keys: 4096}}
limits:
  # the basic rate: 5 at once, then one every 12 min, per token. Tests that
  # expect a denial use refills slower than any test runs, so that a loaded
  # machine stalling a test between two calls cannot refill a bucket.
  - name: t.rate
    match: {{api: t}}
    per: [token]
    rate: 5/h
    burst: 5
  # for waiting acquires: one every 200 ms, per token
  - name: w.rate
    match: {{api: w}}
    per: [token]
    rate: 5/s
    burst: 1
  # cooldowns only, per vehicle
  - name: g.gate
    kind: gate
    match: {{api: g}}
    per: [vehicle]
  # an attribute match: only teslas
  - name: a.tesla
    match: {{api: a, make: tesla}}
    per: [vehicle]
    rate: 1/h
    burst: 1
  # stacked, like Samsara's token and organisation limits
  - name: s.token
    match: {{api: s}}
    per: [token]
    rate: 2/h
    burst: 2
  - name: s.org
    match: {{api: s}}
    per: [org]
    rate: 3/h
    burst: 3
  # a soft quota whose count a cost of 2^40 - 2 units brings to vrl's
  # ceiling (2^40 - 1 units a period): VERDICT_SATURATED
  - name: q.soft
    kind: quota
    match: {{api: q}}
    per: [vehicle]
    count: 1000
    calendar: month
    overage: true
  # hammered by a pool of processes
  - name: h.org
    match: {{api: h}}
    per: [org]
    rate: 400/s
    burst: 8
"""


def _vrld():
    path = os.environ.get("VRLD") or str(ROOT / "build" / "daemon" / "vrld" / "vrld")
    if not os.access(path, os.X_OK):
        pytest.skip("vrld not built at %s" % path)
    return path


# a global limit whose Redis is not there: vrld holds no lease for it, so
# its keys are denied for want of this host's share
GLOBAL_CONFIG = """\
segment: {{name: {name}, keys: 64}}
global: {{redis: ["unix:{sock}"], host: py, lease: 1s}}
limits:
  - name: gl.rate
    scope: global
    match: {{api: gl}}
    per: [token]
    rate: 10/s
"""


@pytest.fixture(scope="session")
def segment(tmp_path_factory):
    """The name of a live segment served by a vrld of our own."""
    name = "/vrl-test-python-%d" % os.getpid()
    with _serve(tmp_path_factory.mktemp("vrld"), name, CONFIG.format(name=name)):
        yield name


@pytest.fixture
def global_segment(tmp_path):
    """A live segment whose one limit is global, with no Redis to lease from."""
    name = "/vrl-test-python-global-%d" % os.getpid()
    text = GLOBAL_CONFIG.format(name=name, sock=tmp_path / "no-redis.sock")
    with _serve(tmp_path, name, text):
        yield name


@contextlib.contextmanager
def _serve(directory, name, text):
    """vrld serving segment @name with config @text, for the with block."""
    conf = directory / "vrl.yaml"
    conf.write_text(text)
    # a segment left by a killed run of the same pid would be adopted, with
    # its counters: start from a fresh one
    try:
        os.unlink("/dev/shm" + name)
    except FileNotFoundError:
        pass
    proc = subprocess.Popen([_vrld(), "-c", str(conf)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                vrl.Client(name).close()
                break
            except vrl.SegmentNotFound:
                if proc.poll() is not None:
                    pytest.fail("vrld exited: %s" % proc.stderr.read().decode())
                if time.monotonic() > deadline:
                    pytest.fail("vrld did not create %s" % name)
                time.sleep(0.02)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stderr.close()
        try:
            os.unlink("/dev/shm" + name)
        except FileNotFoundError:
            pass


@pytest.fixture
def client(segment):
    with vrl.Client(segment) as c:
        yield c


_keys = iter(range(1 << 30))


@pytest.fixture
def key(request):
    """A key value no other test uses: every test starts on full buckets."""
    return "%s-%d" % (request.node.name, next(_keys))
