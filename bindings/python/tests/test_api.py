"""The API of the vrl module against a live vrld (see conftest.py)."""
import pickle
import threading
import time

import pytest

import vrl


def test_now_is_the_monotonic_clock():
    a = time.monotonic()
    b = vrl.now()
    c = time.monotonic()
    assert a <= b <= c
    a = time.monotonic_ns()
    b = vrl.now_ns()
    c = time.monotonic_ns()
    assert a <= b <= c


def test_the_library_is_of_this_release():
    # a module built here runs with the libvrl built here (or, in a wheel,
    # carries it): its version is the package's
    assert vrl.libvrl_version() == vrl.__version__
    assert vrl.strerror(vrl.EHANDLE).startswith("the resolved request belongs to another handle")


def test_limits_lists_the_config(client):
    assert client.limits[:2] == ("t.rate", "w.rate")
    assert "h.org" in client.limits
    assert client.segment.startswith("/vrl-test-python-")
    assert not client.closed and not client.readonly


def test_acquire_grants_the_burst_then_denies(client, key):
    start = vrl.now_ns()
    for i in range(5):
        v = client.acquire(api="t", token=key)
        assert v and v.granted
        assert v.limit == "t.rate" and v.limit_index == 0
        assert v.remaining == 4 - i
        assert v.limit_value == 5
        assert v.matched == 1
        # kind and cost are new in the verdict: 0 from a libvrl that
        # predates them
        assert v.kind in (0, vrl.RATE) and v.cost in (0, 1)
        assert v.retry_after == 0.0
        assert not (v.cooldown or v.shadow or v.table_full or v.no_limit)
    v = client.acquire(api="t", token=key)
    assert not v and v.granted is False
    assert v.limit == "t.rate"
    assert 0 < v.retry_after <= 720
    assert v.retry_after_ns == pytest.approx(v.retry_after * 1e9, abs=1)
    assert v.remaining == 0
    # full again 5 x 12 min after the first grant, whenever this one came
    assert 3600 - (vrl.now_ns() - start) / 1e9 <= v.reset_after <= 3600
    assert start <= v.at_ns <= vrl.now_ns()
    assert "denied" in repr(v) and "t.rate" in repr(v)


def test_positional_fields_and_cost(client, key):
    v = client.acquire("t", None, key, cost=3)
    assert v and v.remaining == 2 and v.cost in (0, 3)
    assert not client.acquire("t", None, key, cost=3)


def test_a_cost_past_the_burst_never_passes(client, key):
    v = client.acquire(api="t", token=key, cost=100)
    assert not v
    assert v.retry_after is None
    with pytest.raises(vrl.RateLimited) as e:
        client.take(api="t", token=key, cost=100)
    assert e.value.retry_after is None


def test_soft_quota_says_when_its_count_saturates(client, key):
    ceiling = (1 << 40) - 1          # units a quota key counts in a period
    v = client.acquire(api="q", vehicle=key, cost=ceiling - 1)
    assert v and v.over and v.overage == ceiling - 1 - 1000
    assert not v.saturated and not v.flags & vrl.VERDICT_SATURATED
    # at the ceiling: granted, said, and the overage stops growing
    for _ in range(2):
        v = client.acquire(api="q", vehicle=key, cost=1)
        assert v and v.over and v.saturated
        assert v.flags & vrl.VERDICT_SATURATED == vrl.VERDICT_SATURATED
        assert v.overage == ceiling - 1000


def test_no_matching_limit_is_refused(client):
    # the config leaves unmatched: at its default, deny: a typo in an api
    # raises, it is not granted unchecked
    with pytest.raises(vrl.Unmatched) as e:
        client.acquire(api="nobody-limits-this")
    assert isinstance(e.value, vrl.Error)
    assert e.value.code == vrl.EUNMATCHED and e.value.name == "VRL_EUNMATCHED"
    assert "unmatched" in str(e.value)
    with pytest.raises(vrl.Unmatched):
        client.acquire_wait(api="nobody-limits-this", timeout=1)
    assert vrl.VERDICT_UNMATCHED and vrl.VERDICT_NO_LIMIT


def test_attrs_match_and_int_ids(client, key):
    assert client.acquire(api="a", vehicle=key, attrs={"make": "tesla"}).matched == 1
    assert not client.acquire(api="a", vehicle=key, attrs={"make": "tesla"})
    with pytest.raises(vrl.Unmatched):
        client.acquire(api="a", vehicle=key, attrs={"make": "ford"})
    with pytest.raises(vrl.Unmatched):
        client.acquire(api="a", vehicle=key)
    # a non-str value is keyed by its str(): 7 and "7" are one key
    assert client.acquire(api="a", vehicle=7, attrs={"make": "tesla", "n": 1})
    assert not client.acquire(api="a", vehicle="7", attrs={"make": "tesla"})
    many = {"k%d" % i: str(i) for i in range(20)}
    many["make"] = "tesla"
    assert client.acquire(api="a", vehicle=key + "m", attrs=many)


def test_stacked_limits_take_all_or_nothing(client, key):
    org = key + "-org"
    assert client.acquire(api="s", token=key + "1", org=org).matched == 2
    assert client.acquire(api="s", token=key + "1", org=org)
    v = client.acquire(api="s", token=key + "1", org=org)
    assert not v and v.limit == "s.token"
    v = client.acquire(api="s", token=key + "2", org=org)
    assert v and v.limit == "s.org" and v.remaining == 0
    v = client.acquire(api="s", token=key + "3", org=org)
    assert not v and v.limit == "s.org"
    # the denial by the org took nothing from token 3
    assert client.acquire(api="s", token=key + "3", org=org + "x").remaining == 1


def test_bad_arguments(client):
    with pytest.raises(TypeError, match="unexpected keyword argument 'tokne'"):
        client.acquire(api="t", tokne="x")
    with pytest.raises(TypeError, match="multiple values"):
        client.acquire("t", api="t")
    with pytest.raises(TypeError, match="at most"):
        client.acquire(*["x"] * 9)
    with pytest.raises(ValueError, match="positive"):
        client.acquire(api="t", cost=0)
    with pytest.raises(ValueError, match="positive"):
        client.acquire(api="t", cost=-1)
    with pytest.raises(TypeError, match="cost must be int"):
        client.acquire(api="t", cost=1.5)
    with pytest.raises(ValueError, match="NUL"):
        client.acquire(api="t", token="a\0b")
    with pytest.raises(TypeError, match="attrs must be a dict"):
        client.acquire(api="t", attrs=[("make", "x")])
    with pytest.raises(TypeError, match="must be str"):
        client.acquire(api=b"t")


def test_take_raises_rate_limited(client, key):
    for _ in range(5):
        assert client.take(api="t", token=key)
    with pytest.raises(vrl.RateLimited) as e:
        client.take(api="t", token=key)
    err = e.value
    assert isinstance(err, vrl.Error) and isinstance(err, OSError)
    assert err.code == vrl.EDENIED and err.name == "VRL_EDENIED"
    assert not err.verdict and err.verdict.limit == "t.rate"
    assert err.retry_after == err.verdict.retry_after > 0
    assert "t.rate" in str(err)
    # it crosses process boundaries (multiprocessing pickles exceptions)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is vrl.RateLimited and back.code == vrl.EDENIED
    assert back.verdict.limit == "t.rate" and back.verdict.at_ns == err.verdict.at_ns
    assert back.retry_after == err.retry_after


def test_errors(segment):
    with pytest.raises(vrl.SegmentNotFound) as e:
        vrl.Client("/vrl-test-python-none")
    assert e.value.code == vrl.ENOSEG and e.value.name == "VRL_ENOSEG"
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, vrl.Error)
    assert "is vrld running" in str(e.value)
    with pytest.raises(vrl.Error) as e:
        vrl.Client("no-slash")
    assert e.value.name == "EINVAL" and e.value.errno == 22
    assert vrl.strerror(vrl.EFULL).startswith("key table full")


def test_readonly_client_cannot_acquire(segment):
    with vrl.Client(segment, readonly=True) as ro:
        assert ro.readonly and "t.rate" in ro.limits
        with pytest.raises(vrl.Error) as e:
            ro.acquire(api="t", token="x")
        assert e.value.code == vrl.EREADONLY


def test_closed_client(segment):
    c = vrl.Client(segment)
    r = c.resolve(api="t", token="closed")
    c.close()
    c.close()
    assert c.closed and "closed" in repr(c)
    with pytest.raises(ValueError, match="closed"):
        c.acquire(api="t")
    with pytest.raises(ValueError, match="closed"):
        r.acquire()
    with pytest.raises(ValueError, match="closed"):
        c.limits


def test_resolved_acquire(client, key):
    r = client.resolve(api="t", token=key)
    assert r.client is client
    assert r.acquire().remaining == 4
    assert r.acquire(2).remaining == 2
    assert r.acquire(cost=2).remaining == 0
    v = r.acquire()
    assert not v and v.limit == "t.rate"
    # it shares the key with acquire by fields
    assert not client.acquire(api="t", token=key)
    with pytest.raises(ValueError):
        r.acquire(0)
    with pytest.raises(TypeError):
        r.acquire(costs=1)
    assert client.resolve(api="t", token=key + "c", cost=5).acquire().remaining == 0


def test_acquire_wait_reserves_in_order(client, key):
    times = [client.acquire_wait(api="w", token=key, timeout=30).at_ns for _ in range(4)]
    # one every 200 ms: each waiter was given the next free time
    for a, b in zip(times, times[1:]):
        assert b - a >= 200_000_000 - 1000
    assert vrl.now_ns() >= times[-1]


def test_acquire_wait_timeout_denies_and_reserves_nothing(client, key):
    assert client.acquire(api="t", token=key, cost=4)
    v = client.acquire_wait(api="t", token=key, cost=2, timeout=0.001)
    assert not v and v.retry_after > 1
    v = client.acquire_wait(api="t", token=key, cost=2, timeout=0)
    assert not v
    with pytest.raises(ValueError):
        client.acquire_wait(api="t", token=key, timeout=-1)
    # the denied waits reserved nothing: the last permit is still there
    assert client.acquire_wait(api="t", token=key, timeout=0).remaining == 0


def test_acquire_wait_releases_the_gil(client, key):
    """A thread keeps running Python while another sleeps in the library,
    and a second thread on the same client takes its turn. The main thread
    waits until the spinner was seen running during one of its sleeps (a
    starved machine may give it no turn in a few)."""
    assert client.acquire(api="w", token=key)
    ticks = []
    waits = []
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            ticks.append(vrl.now_ns())
            time.sleep(0.001)

    t = threading.Thread(target=spin)
    t.start()
    other = []
    t2 = threading.Thread(target=lambda: other.append(client.acquire(api="t", token=key)))
    try:
        t2_started = False
        deadline = time.monotonic() + 60
        while not waits or not any(a < t < b for t in list(ticks) for a, b in waits):
            assert time.monotonic() < deadline, "the spinner never ran during a wait"
            start = vrl.now_ns()
            v = client.acquire_wait(api="w", token=key, timeout=30)
            waits.append((start, vrl.now_ns()))
            assert v
            if not t2_started:
                t2.start()
                t2_started = True
    finally:
        stop.set()
        t.join()
        t2.join()
    # the spinner ran while the main thread slept in the library
    assert any(a < t < b for t in ticks for a, b in waits)
    assert other and other[0]


def test_cooldown_and_reset(client, key):
    assert client.acquire(api="g", vehicle=key)
    start = vrl.now_ns()
    until = client.cooldown("g.gate", for_=30, api="g", vehicle=key)
    assert start + 30e9 <= until <= vrl.now_ns() + 30e9
    v = client.acquire(api="g", vehicle=key)
    assert not v and v.cooldown and v.limit == "g.gate" and v.kind in (0, vrl.GATE)
    # closed until 30 s after the call, whenever this one came
    assert v.retry_after_ns == until - v.at_ns
    # a cooldown only extends
    client.cooldown(until=vrl.now() + 1, api="g", vehicle=key)
    v = client.acquire(api="g", vehicle=key)
    assert v.retry_after_ns == until - v.at_ns
    # other keys are open
    assert client.acquire(api="g", vehicle=key + "x")
    client.reset(api="g", vehicle=key)
    assert client.acquire(api="g", vehicle=key)
    client.cooldown(limit=None, for_=0.05, api="g", vehicle=key)
    assert client.acquire_wait(api="g", vehicle=key, timeout=5)


def test_cooldown_and_reset_errors(client, key):
    with pytest.raises(TypeError, match="one of until"):
        client.cooldown("g.gate", api="g", vehicle=key)
    with pytest.raises(TypeError, match="one of until"):
        client.cooldown("g.gate", until=1, for_=1, api="g", vehicle=key)
    with pytest.raises(vrl.Error) as e:
        client.cooldown("no.such.limit", for_=1, api="g")
    assert e.value.code == vrl.ENOLIMIT
    with pytest.raises(vrl.Error) as e:
        client.reset(api="t", token=key + "never-used")
    assert e.value.code == vrl.ENOKEY


def test_reset_refills_a_rate(client, key):
    for _ in range(5):
        client.take(api="t", token=key)
    assert not client.acquire(api="t", token=key)
    client.reset("t.rate", api="t", token=key)
    assert client.acquire(api="t", token=key).remaining == 4


def test_limit_context_manager(client, key):
    with client.limit(api="t", token=key, cost=5, timeout=0) as v:
        assert v and v.limit == "t.rate" and v.remaining == 0
    cm = client.limit(api="t", token=key, timeout=0)
    with pytest.raises(vrl.RateLimited) as e:
        with cm:
            pytest.fail("entered without a permit")
    assert e.value.verdict.limit == "t.rate" and e.value.retry_after > 1
    with client.limit(api="w", token=key, timeout=30) as v:
        assert v
    with client.limit(api="w", token=key, timeout=30) as v2:
        assert v2.at_ns - v.at_ns >= 200_000_000 - 1000
    with pytest.raises(TypeError):
        client.limit(api="w", tokn=key)


def test_limited_decorator(client, key):
    calls = []

    @client.limited(api="t", token=lambda account, *a, **k: account, timeout=0)
    def fetch(account, n=1):
        """Docstring kept."""
        calls.append((account, n))
        return n

    assert fetch.__doc__ == "Docstring kept." and fetch.__name__ == "fetch"
    for i in range(5):
        assert fetch(key, n=i) == i
    with pytest.raises(vrl.RateLimited):
        fetch(key)
    assert fetch(key + "other") == 1
    assert len(calls) == 6

    @client.limited(api="t", token=key + "static", cost=lambda n: n, timeout=0)
    def bulk(n):
        return n

    assert bulk(4) == 4
    with pytest.raises(vrl.RateLimited):
        bulk(2)


def test_client_subclass_and_repr(client):
    assert isinstance(client, vrl.Client)
    assert repr(client).startswith("<vrl.Client segment='/vrl-test-python-")
    v = client.acquire(api="t", token="repr")
    with pytest.raises(AttributeError):
        v.granted = False


@pytest.mark.skipif(not vrl.HAVE_FEEDBACK,
                    reason="libvrl of this build lacks vrl_release/vrl_refund/vrl_observe "
                           "(python_feedback off); they come with the feedback branch")
class TestFeedback:
    class Response:
        def __init__(self, status, headers=None, content=b""):
            self.status_code = status
            self.headers = headers or {}
            self.content = content

    class Urllib3Response:
        def __init__(self, status, headers=None, data=b""):
            self.status = status
            self.headers = headers or {}
            self.data = data

    def test_parse_retry_after(self):
        assert vrl.parse_retry_after("30") == 30.0
        assert vrl.parse_retry_after("0.40235") == pytest.approx(0.40235)
        assert vrl.parse_retry_after(b"1") == 1.0
        assert vrl.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
        with pytest.raises(ValueError):
            vrl.parse_retry_after("soon")

    def test_observe_429_closes_the_key_for_everyone(self, client, segment, key):
        assert client.acquire(api="g", vehicle=key)
        start = vrl.now()
        fb = client.observe(self.Response(429, {"Retry-After": "30"}), api="g", vehicle=key)
        assert fb.actions & vrl.FB_COOLDOWN and fb.limit == "g.gate"
        assert start + 30 <= fb.cooldown_until <= vrl.now() + 30
        with vrl.Client(segment) as other:
            v = other.acquire(api="g", vehicle=key)
            assert not v and v.cooldown
            assert v.retry_after == pytest.approx(fb.cooldown_until - v.at_ns / 1e9, abs=1e-6)

    def test_observe_urllib3_and_pairs(self, client, key):
        fb = client.observe(self.Urllib3Response(429, [("retry-after", "0.5")]), api="g",
                            vehicle=key)
        assert fb.actions & vrl.FB_COOLDOWN
        fb = client.observe(self.Response(200), api="g", vehicle=key + "ok")
        assert not fb.actions & vrl.FB_COOLDOWN
        with pytest.raises(TypeError):
            client.observe(object(), api="g")

    def test_observe_malformed_header_is_skipped(self, client, key):
        fb = client.observe(self.Response(429, {"Retry-After": "later"}), api="g",
                            vehicle=key)
        assert fb.actions & vrl.FB_IGNORED and fb.ignored

    def test_refund_gives_units_back(self, client, key):
        for _ in range(5):
            client.take(api="t", token=key)
        client.refund(api="t", token=key, cost=2)
        assert client.acquire(api="t", token=key, cost=2)

    def test_release_without_slots_limit(self, client, key):
        with pytest.raises(vrl.Error) as e:
            client.release(api="t", token=key)
        assert e.value.code in (vrl.ENOLIMIT, vrl.ENOKEY)


@pytest.mark.skipif(vrl.HAVE_FEEDBACK, reason="feedback calls are built")
def test_feedback_calls_say_they_are_missing(client):
    with pytest.raises(NotImplementedError, match="HAVE_FEEDBACK"):
        client.observe(object())
    with pytest.raises(NotImplementedError):
        client.release(api="t")
    with pytest.raises(NotImplementedError):
        client.refund(api="t")


def test_repeated_requests_share_keys_with_equal_strings(client, key):
    """acquire() remembers requests by the identity of their str objects and
    resolves those it sees again: the keys stay those of the strings' values,
    whatever objects carry them, and costs still count."""
    tok = key + "-same"
    for i in range(3):
        assert client.acquire(api="t", token=tok).remaining == 4 - i
    # an equal str built at run time, not the same object
    other = "".join([key, "-sa", "me"])
    assert other == tok and other is not tok
    assert client.acquire(api="t", token=other).remaining == 1
    assert client.acquire(api="t", token=tok, cost=1).remaining == 0
    assert not client.acquire(api="t", token=tok)
    with pytest.raises(vrl.RateLimited):
        client.take(api="t", token=tok)
    # a field added or removed is another request
    v = client.acquire(api="t", token=tok, org="x")
    assert not v and v.limit == "t.rate"


def test_many_requests_in_turn(client, key):
    """More distinct requests than the binding remembers, each repeated:
    every key still counts exactly."""
    toks = ["%s-%d" % (key, i) for i in range(300)]
    for rnd in range(5):
        for t in toks:
            v = client.acquire(api="t", token=t)
            assert v and v.remaining == 4 - rnd
    for t in toks[:20]:
        assert not client.acquire(api="t", token=t)


def test_threads_share_a_client(client, key):
    """Threads take turns on one Client while some sleep in acquire_wait."""
    errors = []
    grants = []
    waits = []
    start = time.monotonic()

    def worker(n):
        try:
            for i in range(100):
                if i % 25 == 0:
                    v = client.acquire_wait(api="w", token="%s-%d" % (key, n), timeout=30)
                    waits.append(bool(v))
                else:
                    v = client.acquire(api="t", token="%s-%d-%d" % (key, n, i % 5))
                    grants.append(bool(v))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(waits) == 16 and all(waits)
    # each thread: 5 keys x the burst of 5, and one more per key for every
    # 12 min the test took (t.rate refills slowly; a loaded machine is slow)
    refills = int((time.monotonic() - start) // 720)
    assert 4 * 25 <= sum(grants) <= 4 * 5 * (5 + refills)


def test_a_global_key_denied_for_want_of_share_says_so(global_segment):
    with vrl.Client(global_segment) as c:
        v = c.acquire(api="gl", token="t1")
    assert not v
    assert v.share
    assert v.flags & vrl.VERDICT_SHARE
    assert v.limit == "gl.rate"
