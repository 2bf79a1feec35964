#!/usr/bin/python3
"""A pool of worker processes calling the local upstreams, with or without vrl.

    pool.py --url http://127.0.0.1:PORT --mode vrl --segment /vrl-demo [--workers 8 --seconds 6]
            [--acquire wait|now|resolved] [--providers samsara,...]
    pool.py --url http://127.0.0.1:PORT --mode alone

Each worker calls one provider for --seconds (workers are dealt to the
providers in turn: of 12, six call Samsara and two each the others):

  samsara   GET /fleet/vehicles with one of two tokens of one organisation
  evenergy  GET /v2/users for one (app, user)
  smartcar  GET /vehicles/<id>/odometer, one of 50 vehicles
  carsxe    a recalls batch of 50 VINs (50 units)

In `vrl` mode every call first acquires its request from the shared segment
and feeds the answer back with observe(). How it acquires (--acquire):
`wait` (the default) waits its turn for the rate limits with acquire_wait()
and acquires the others now; `now` acquires every request with acquire()
and, when denied, sleeps for the verdict's retry-after; `resolved` does the
same with a request resolved once (resolve(), then Resolved.acquire()).
--providers deals the workers among the providers named only. In `alone` mode each worker limits itself to the published
figures, as a per-process limiter does (Celery's rate_limit, an in-memory
flask-limiter): the pool then runs N times over. In `pacer` mode each
worker paces itself at its share of the figures instead (Samsara: the
organisation's 200/s over the workers), the static split a pool without
shared state is left with.

Between a grant and its request, a worker does nothing but send: its
connection is made before its first acquire, and the answer, with the
grant's verdict, goes back to observe() (a 429 that names no limit is
charged to the keys that bound that grant). --pace-log FILE records, for
worker 0, the effective rate of the request's adaptive keys (the verdict's
pace) over time, one "seconds pace" line per call.

The run starts when every worker has attached and connected (a start-up
slower than expected on a busy machine would otherwise eat into the
measured seconds), and ends --seconds later.

Prints one JSON object: per provider, requests sent, 2xx answers, 429s,
`used`, the share of what the upstream allowed over the run that the pool
got (2xx answers, or units for CarsXE, over the allowance), `cuts`, the
429s whose feedback cut an adaptive rate (VRL_FB_ADAPT), and `bins`,
the 2xx answers in each quarter second of the run (for a plot of the rate
over time); and `startup_s`, how long the workers took to be ready.
"""
import argparse
import http.client
import json
import multiprocessing
import sys
import time
import urllib.parse

BIN_S = 0.25   # the width of a bin of `bins`, in seconds

PROVIDERS = ("samsara", "evenergy", "smartcar", "carsxe")
DEAL = ("samsara", "evenergy", "smartcar", "samsara", "carsxe", "samsara", "evenergy",
        "samsara", "smartcar", "samsara", "carsxe", "samsara")


class Response:
    """The parts of an HTTP response that vrl's observe() reads."""

    def __init__(self, r):
        self.status = r.status
        self.headers = dict(r.getheaders())
        self.content = r.read()


class Upstream:
    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.conn = None

    def connect(self):
        """Open the connection now: a request sent right after its grant
        must not pay a connect first."""
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        self.conn.connect()

    def call(self, path, headers=None):
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                self.conn.request("GET", path, headers=headers or {})
                return Response(self.conn.getresponse())
            except (http.client.HTTPException, OSError):
                self.conn = None
                if attempt:
                    raise
        return None


class Alone:
    """Per-process limiters: what each worker does without vrl."""

    def __init__(self):
        self.next = {}
        self.level = {}

    def pace(self, key, rate):
        """Wait for this process's next turn at `rate` per second."""
        t = time.monotonic()
        at = max(t, self.next.get(key, t))
        self.next[key] = at + 1.0 / rate
        if at > t:
            time.sleep(at - t)
        return True

    def spend(self, key, size, units=1):
        """Spend from this process's own bucket of `size`; False when empty."""
        left = self.level.get(key, size)
        if left < units:
            return False
        self.level[key] = left - units
        return True


def provider_of(a, wid):
    """The provider worker `wid` calls: dealt in DEAL's order, among --providers."""
    deal = [p for p in DEAL if p in a.providers]
    return deal[wid % len(deal)]


def calls(a, i, wid):
    """The requests of round i: (provider, vrl fields, path, headers, units, wait),
    those of the worker's provider."""
    token = ("token-a", "token-b")[(i + wid) % 2]
    vehicle = f"vin-{(i * 7 + wid) % 50}"
    return [c for c in [
        ("samsara", dict(api="samsara", endpoint="GET /fleet/vehicles", token=token,
                         org="acme"),
         "/samsara/fleet/vehicles", {"Authorization": f"Bearer {token}", "X-Org": "acme"},
         1, True),
        ("evenergy", dict(api="evenergy", user="user-1"),
         "/evenergy/v2/users?user=user-1", {}, 1, True),
        ("smartcar", dict(api="smartcar", vehicle=vehicle),
         f"/smartcar/vehicles/{vehicle}/odometer", {}, 1, False),
        ("carsxe", dict(api="carsxe", endpoint="recalls-batch", token="key-1",
                        cost=a.carsxe_batch),
         f"/carsxe/recalls-batch?key=key-1&vins={a.carsxe_batch}", {}, a.carsxe_batch, False),
    ] if c[0] == provider_of(a, wid)]


def admit_alone(a, alone, prov, units):
    if prov == "samsara" and a.mode == "pacer":
        # this worker's share of the organisation's 200/s
        return alone.pace(prov, 200.0 / max(1, sum(provider_of(a, w) == prov
                                                   for w in range(a.workers))))
    if prov == "samsara":
        return alone.pace(prov, 150.0)                     # the per-token figure
    if prov == "evenergy":
        return alone.pace(prov, a.ev_limit / a.ev_window)  # its share of the hour
    if prov == "smartcar":
        return alone.spend(prov, 120)                      # its own bucket of 120
    return alone.spend(prov, a.carsxe_limit, units)        # its own quota


def acquire(client, a, resolved, fields, wait, left):
    """The verdict on one call as --acquire says, and whether it waited."""
    if a.acquire == "resolved":
        key = tuple(sorted(fields.items()))
        if key not in resolved:
            resolved[key] = client.resolve(**fields)
        return resolved[key].acquire(), False
    if a.acquire == "now":
        return client.acquire(**fields), False
    if wait:
        return client.acquire_wait(timeout=min(left, 0.2), **fields), True
    return client.acquire(**fields), False


def warn_once(warned, prov, text):
    if prov not in warned:
        warned.add(prov)
        print(text, file=sys.stderr)


def worker(a, wid, out, ready, go, start):
    global vrl
    up = Upstream(a.url)
    nbins = int(a.seconds / BIN_S + 0.999)
    stats = {p: {"sent": 0, "ok": 0, "429": 0, "other": 0, "units": 0, "unmatched": 0, "cuts": 0,
                 "bins": [0] * nbins}
             for p in PROVIDERS}
    warned = set()
    client = None
    if a.mode == "vrl":
        import vrl
        client = vrl.Client(a.segment)
    alone = Alone()
    resolved = {}   # --acquire resolved: one Resolved per distinct request
    pace_log = open(a.pace_log, "w") if a.pace_log and wid == 0 else None
    up.connect()    # before the first acquire: nothing but the send after a grant
    ready.put(wid)
    go.wait()
    a.start = start.value
    time.sleep(max(0.0, a.start - time.monotonic()))   # every worker starts together
    end = a.start + a.seconds
    i = 0
    again = False   # the last request was denied: send it again, not the next
    while time.monotonic() < end:
        if not again:
            i += 1
        again = False
        for prov, fields, path, hdrs, units, wait in calls(a, i, wid):
            left = end - time.monotonic()
            if left <= 0:
                break
            if client is not None:
                try:
                    v, wait = acquire(client, a, resolved, fields, wait, left)
                except vrl.Unmatched as e:
                    # no limit matches this request and vrld's config says
                    # unmatched: deny: a misconfiguration, not a wait; the
                    # call is not made, and the run says so in its stats
                    stats[prov]["unmatched"] += 1
                    warn_once(warned, prov, f"pool: {prov}: {e}")
                    continue
                if v.unmatched:   # unmatched: warn: granted, counted by vrld
                    warn_once(warned, prov, f"pool: {prov}: no limit matches "
                              f"{fields.get('api')!r}: granted unchecked")
                if not v:
                    # sleep until close to the turn the verdict names (a
                    # spent quota or bucket: to the end of the run), rather
                    # than spin on the CPU the other workers need
                    ra = v.retry_after
                    ra = left if ra is None else ra - (0.1 if wait else 0.0)
                    time.sleep(max(0.0, min(ra, end - time.monotonic())))
                    again = True
                    continue
            elif not admit_alone(a, alone, prov, units):
                continue
            r = up.call(path, hdrs)
            s = stats[prov]
            s["sent"] += 1
            if r.status == 429:
                s["429"] += 1
            elif 200 <= r.status < 300:
                s["ok"] += 1
                s["units"] += units
                s["bins"][min(nbins - 1, int((time.monotonic() - a.start) / BIN_S))] += 1
            else:
                s["other"] += 1
            if client is not None:
                fb = client.observe(r, verdict=v,
                                    **{k: x for k, x in fields.items() if k != "cost"})
                if fb.actions & vrl.FB_ADAPT:
                    s["cuts"] += 1
                if pace_log and v.pace is not None:
                    pace_log.write(f"{time.monotonic() - a.start:.4f} {v.pace:.4f}\n")
    if pace_log:
        pace_log.close()
    out.put(stats)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--mode", choices=("vrl", "alone", "pacer"), default="vrl")
    p.add_argument("--pace-log", help="worker 0's verdict pace over time, to this file")
    p.add_argument("--segment", default="/vrl")
    p.add_argument("--acquire", choices=("wait", "now", "resolved"), default="wait",
                   help="how vrl mode acquires (see above)")
    p.add_argument("--providers", default=",".join(PROVIDERS),
                   help="comma-separated: deal the workers among these only")
    p.add_argument("--workers", type=int, default=12)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--ev-limit", type=int, default=100, help="as the upstream was given")
    p.add_argument("--ev-window", type=float, default=2.0)
    p.add_argument("--carsxe-limit", type=int, default=2000)
    p.add_argument("--carsxe-batch", type=int, default=50)
    a = p.parse_args()
    a.providers = [x for x in a.providers.split(",") if x]
    if not a.providers or any(x not in PROVIDERS for x in a.providers):
        p.error(f"--providers: a comma-separated list of {', '.join(PROVIDERS)}")
    ctx = multiprocessing.get_context("fork")
    q, ready, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    start = ctx.Value("d", 0.0)
    procs = [ctx.Process(target=worker, args=(a, w, q, ready, go, start))
             for w in range(a.workers)]
    t0 = time.monotonic()
    for pr in procs:
        pr.start()
    for _ in procs:    # every worker attached and connected
        ready.get()
    startup = time.monotonic() - t0
    start.value = time.monotonic() + 0.05
    go.set()
    results = [q.get() for _ in procs]
    for pr in procs:
        pr.join()
    total = {prov: {k: [0] * len(n) if k == "bins" else 0 for k, n in results[0][prov].items()}
             for prov in PROVIDERS}
    for r in results:
        for prov, s in r.items():
            for k, n in s.items():
                if k == "bins":
                    total[prov][k] = [x + y for x, y in zip(total[prov][k], n)]
                else:
                    total[prov][k] += n
    # what each upstream allowed over the run
    allowed = {
        "samsara": 200.0 * a.seconds,                       # the organisation's 200/s
        "evenergy": a.ev_limit * a.seconds / a.ev_window,   # N per rolling window
        "smartcar": 120 + a.seconds * 2 / 60,               # the bucket and its refill
        "carsxe": float(a.carsxe_limit),                    # units this month
    }
    for prov, t in total.items():
        t["allowed"] = round(allowed[prov], 1)
        got = t["units"] if prov == "carsxe" else t["ok"]
        t["used"] = round(got / allowed[prov], 4)
    json.dump({"mode": a.mode, "acquire": a.acquire, "workers": a.workers,
               "seconds": a.seconds, "startup_s": round(startup, 3), "bin_s": BIN_S,
               "carsxe_batch": a.carsxe_batch,
               "called": a.providers, "providers": total}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
