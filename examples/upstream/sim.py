#!/usr/bin/python3
"""Local upstreams that enforce the four providers' published limits.

Each provider is served under its own path prefix by one threaded HTTP
server, and answers a request past a limit the way the provider documents
(../shared seeds, quoted below): status 429, the same headers, the same body
shape. The limits are exact: every decision is taken under one lock, on the
time the request arrived.

    /samsara/<endpoint>           Authorization: Bearer TOKEN, X-Org: ORG
    /smartcar/vehicles/<id>/<op>  (one application)
    /evenergy/<path>?user=USER    (one OAuth application)
    /carsxe/<api>?key=K&vins=N    (N VINs: N units; vins=0 is a 400, free)

Figures default to the published ones. Long periods (a rolling hour, a
refill of 2 per minute) can be given scaled, so that a demo of a few seconds
crosses them: the same scaled figures then go into vrl's config.

--strict (or VRL_SIM_STRICT=1) puts a strict reverse proxy in front, as
some deployments have: every per-second rate (Samsara's token, organisation
and endpoint figures, Smartcar's per-vehicle one) is enforced as nginx's
limit_req does it with burst=0, a leaky bucket on a millisecond clock: a
request passes only when at least ceil(1000/rate) whole milliseconds have
passed since the last one that passed for its key (150/s is one per 7 ms:
142.9/s), rejected requests do not count, and a request passes all the
rates of its path or none. Its 429 says nothing: no Retry-After, no
x-ratelimit-*, no limit name, nginx's HTML page. The other limits answer as
in the tolerant mode; /stats also counts which rate each 429 came from.

    sim.py --port 0 --port-file F [--strict] [--evenergy-limit 1000 --evenergy-window 3600] ...
"""
import argparse
import collections
import http.server
import json
import math
import os
import threading
import time
import urllib.parse

now = time.monotonic


class Window:
    """At most `limit` events in any interval of `window` seconds."""

    def __init__(self, limit, window):
        self.limit, self.window = limit, window
        self.log = collections.defaultdict(collections.deque)

    def check(self, key, t):
        """Seconds until a request of `key` can pass at t; 0 if it can now."""
        q = self.log[key]
        while q and q[0] <= t - self.window:
            q.popleft()
        return 0.0 if len(q) < self.limit else q[0] + self.window - t

    def take(self, key, t):
        self.log[key].append(t)

    def remaining(self, key):
        return self.limit - len(self.log[key])


class Bucket:
    """A token bucket of `size` refilling `rate` per second."""

    def __init__(self, size, rate):
        self.size, self.rate = size, rate
        self.level = {}

    def _fill(self, key, t):
        lvl, at = self.level.get(key, (self.size, t))
        lvl = min(self.size, lvl + (t - at) * self.rate)
        self.level[key] = (lvl, t)
        return lvl

    def check(self, key, t):
        lvl = self._fill(key, t)
        return 0.0 if lvl >= 1 else (1 - lvl) / self.rate

    def take(self, key, t):
        lvl, _ = self.level[key]
        self.level[key] = (lvl - 1, t)


class LeakyBucket:
    """nginx's limit_req for `rate` per second: a leaky bucket counted in
    thousandths of a request on a clock of whole milliseconds. With burst 0
    a request passes when the time since the last request that passed has
    drained a whole request: rate * ms >= 1000, i.e. ms >= ceil(1000 / rate)."""

    def __init__(self, rate, burst=0):
        self.rate = round(rate * 1000)     # thousandths of a request per second
        self.burst = burst * 1000
        self.state = {}                    # key -> (excess, ms of the last pass)

    def excess(self, key, ms):
        """The excess a request of `key` at `ms` would leave; it passes when
        that is at most the burst. A key not seen yet passes with 0."""
        if key not in self.state:
            return 0
        excess, last = self.state[key]
        return max(0, excess - self.rate * abs(ms - last) // 1000 + 1000)

    def passes(self, key, ms):
        return self.excess(key, ms) <= self.burst

    def take(self, key, ms):
        self.state[key] = (self.excess(key, ms), ms)


# what nginx answers for limit_req_status 429: its built-in error page
NGINX_429 = (b"<html>\r\n<head><title>429 Too Many Requests</title></head>\r\n<body>\r\n"
             b"<center><h1>429 Too Many Requests</h1></center>\r\n<hr><center>nginx</center>\r\n"
             b"</body>\r\n</html>\r\n")


def ms_now():
    """The proxy's clock: whole milliseconds, as nginx reads its time."""
    return time.monotonic_ns() // 1_000_000


class Strict:
    """The reverse proxy of --strict: every rate of a request, or none."""

    def __init__(self, up):
        self.up = up

    def admit(self, provider, lims):
        """lims: [(name, LeakyBucket, key)]. Returns the name of the first rate
        that refuses (nginx stops there and logs that zone), or None when
        every one passes, and then charges them all."""
        ms = ms_now()
        with self.up.lock:
            for name, b, k in lims:
                if not b.passes(k, ms):
                    self.up.counts[f"{provider} 429 by {name}"] += 1
                    return name
            for _, b, k in lims:
                b.take(k, ms)
        return None


class Upstreams:
    def __init__(self, a):
        self.lock = threading.Lock()
        self.strict = Strict(self) if a.strict else None
        self.lb_token = LeakyBucket(a.samsara_token)
        self.lb_org = LeakyBucket(a.samsara_org)
        self.lb_vehicle = LeakyBucket(a.smartcar_vehicle / a.smartcar_vehicle_window)
        # Samsara: "Each API access token may make 150 API requests per
        # second"; "an organization may only make 200 requests per second
        # total"; the legacy endpoint table (per token).
        self.sam_token = Window(a.samsara_token, 1.0)
        self.sam_org = Window(a.samsara_org, 1.0)
        self.sam_endpoint = {
            "GET /v1/fleet/dispatch/routes": Window(50, 1.0),
            "POST /v1/fleet/dispatch/routes": Window(50, 1.0),
            "GET /v1/fleet/dispatch/routes/job_updates": Window(50, 1.0),
            "GET /v1/fleet/drivers/inactive": Window(75, 1.0),
            "GET /v1/fleet/drivers/summary": Window(75, 1.0),
            "GET /v1/fleet/hos_logs_summary": Window(30, 1.0),
        }
        # Smartcar: "a bucket of 120 requests that refills at a rate of 2
        # requests per minute"; the per-vehicle limit is not published (it
        # "can differ based on the vehicle manufacturer"): one figure here.
        self.sc_app = Bucket(a.smartcar_bucket, a.smartcar_refill)
        self.sc_vehicle = Window(a.smartcar_vehicle, a.smartcar_vehicle_window)
        # ev.energy: "1000 requests per hour", "the hour is a rolling
        # period", "each unique combination of OAuth application and user".
        self.ev = Window(a.evenergy_limit, a.evenergy_window)
        # CarsXE: per-API monthly units; overage disabled, so a 429.
        self.cx_limit = a.carsxe_limit
        self.cx_used = collections.Counter()
        self.counts = collections.Counter()
        self.lb_endpoint = {ep: LeakyBucket(w.limit / w.window)
                            for ep, w in self.sam_endpoint.items()}

    def samsara(self, h, path):
        t = now()
        token = (h.headers.get("Authorization") or "").removeprefix("Bearer ")
        org = h.headers.get("X-Org") or ""
        ep = f"{h.command} /{path}"
        if self.strict:
            lims = [("token", self.lb_token, token), ("org", self.lb_org, org)]
            if ep in self.lb_endpoint:
                lims.append(("endpoint", self.lb_endpoint[ep], token))
            if self.strict.admit("samsara", lims):
                return 429, {}, NGINX_429
            return 200, {}, {"data": []}
        lims = [(self.sam_token, token), (self.sam_org, org)]
        if ep in self.sam_endpoint:
            lims.append((self.sam_endpoint[ep], token))
        with self.lock:
            wait = max(w.check(k, t) for w, k in lims)
            if not wait:
                for w, k in lims:
                    w.take(k, t)
        if wait:
            # "Retry-After ... Example: 0.40235"
            return 429, {"Retry-After": f"{wait:.5f}"}, {"message": "rate limit exceeded"}
        return 200, {}, {"data": []}

    def smartcar(self, h, path):
        t = now()
        parts = path.split("/")
        vehicle = parts[1] if len(parts) > 1 else ""
        if self.strict and self.strict.admit("smartcar", [("vehicle", self.lb_vehicle, vehicle)]):
            return 429, {}, NGINX_429
        with self.lock:
            app = self.sc_app.check("app", t)
            veh = 0.0 if self.strict else self.sc_vehicle.check(vehicle, t)
            if not app and not veh:
                self.sc_app.take("app", t)
                self.sc_vehicle.take(vehicle, t)
        if app or veh:
            code = "SMARTCAR_API" if app >= veh else "VEHICLE"
            # "refer to the retry-after header (returned as seconds)"
            return 429, {"retry-after": str(math.ceil(max(app, veh)))}, {
                "type": "RATE_LIMIT", "code": code,
                "description": "You have reached the throttling rate limit."}
        return 200, {}, {"distance": 1234.5}

    def evenergy(self, h, path, query):
        t = now()
        user = query.get("user", [""])[0]
        with self.lock:
            wait = self.ev.check(user, t)
            if not wait:
                self.ev.take(user, t)
            rem = self.ev.remaining(user)
        hdr = {"x-ratelimit-limit": str(self.ev.limit), "x-ratelimit-remaining": str(rem)}
        if wait:
            secs = math.ceil(wait)
            hdr["retry-after"] = str(secs)
            return 429, hdr, {
                "type": "https://api.ev.energy/v2/problems/rate-limit-exceeded/",
                "status": 429, "title": "Too many requests",
                "detail": f"Request was rate limited. Try again in {secs} seconds"}
        return 200, hdr, {"results": []}

    def carsxe(self, h, api, query):
        try:
            vins = int(query.get("vins", ["1"])[0])
        except ValueError:
            vins = 0
        if vins <= 0:
            # "Failed validation is free."
            return 400, {}, {"success": False, "message": "Missing VIN."}
        with self.lock:
            used = self.cx_used[api]
            ok = used + vins <= self.cx_limit
            if ok:
                self.cx_used[api] = used = used + vins
        if not ok:
            msg = (f"API limit exceeded for {api}. Current usage: {used}, "
                   f"Limit: {self.cx_limit}.")
            if used < self.cx_limit:
                msg += f" This request requires {vins} units."
            return 429, {}, {"success": False, "message": msg, "usage": {
                "current": used, "limit": self.cx_limit,
                "remaining": self.cx_limit - used}}
        return 200, {}, {"success": True}


def handler(up):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True   # headers and body leave at once

        def log_message(self, *args):
            pass

        def answer(self):
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            provider, _, rest = url.path.lstrip("/").partition("/")
            if provider == "samsara":
                r = up.samsara(self, rest)
            elif provider == "smartcar":
                r = up.smartcar(self, rest)
            elif provider == "evenergy":
                r = up.evenergy(self, rest, query)
            elif provider == "carsxe":
                r = up.carsxe(self, rest, query)
            elif provider == "stats":
                r = 200, {}, {k: v for k, v in up.counts.items()}
            else:
                r = 404, {}, {"message": "no such provider"}
            status, headers, body = r
            with up.lock:
                up.counts[f"{provider} {status}"] += 1
            if isinstance(body, bytes):
                data, ctype = body, "text/html"
            else:
                data, ctype = json.dumps(body).encode(), "application/json"
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = answer

    return H


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", help="write the port here once listening")
    p.add_argument("--samsara-token", type=int, default=150)
    p.add_argument("--samsara-org", type=int, default=200)
    p.add_argument("--smartcar-bucket", type=int, default=120)
    p.add_argument("--smartcar-refill", type=float, default=2 / 60, help="per second")
    p.add_argument("--smartcar-vehicle", type=int, default=10)
    p.add_argument("--smartcar-vehicle-window", type=float, default=1.0)
    p.add_argument("--evenergy-limit", type=int, default=1000)
    p.add_argument("--evenergy-window", type=float, default=3600.0)
    p.add_argument("--carsxe-limit", type=int, default=5000)
    p.add_argument("--strict", action="store_true",
                   default=os.environ.get("VRL_SIM_STRICT", "") not in ("", "0"),
                   help="a strict proxy in front: rates as zero-burst leaky buckets "
                        "on a millisecond clock, bare 429s (also VRL_SIM_STRICT=1)")
    a = p.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), handler(Upstreams(a)))
    srv.daemon_threads = True
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(str(srv.server_address[1]))
        os.rename(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
