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

    sim.py --port 0 --port-file F [--evenergy-limit 1000 --evenergy-window 3600] ...
"""
import argparse
import collections
import http.server
import json
import math
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


class Upstreams:
    def __init__(self, a):
        self.lock = threading.Lock()
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

    def samsara(self, h, path):
        t = now()
        token = (h.headers.get("Authorization") or "").removeprefix("Bearer ")
        org = h.headers.get("X-Org") or ""
        ep = f"{h.command} /{path}"
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
        with self.lock:
            app = self.sc_app.check("app", t)
            veh = self.sc_vehicle.check(vehicle, t)
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
            data = json.dumps(body).encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
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
    a = p.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), handler(Upstreams(a)))
    srv.daemon_threads = True
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(str(srv.server_address[1]))
        import os
        os.rename(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
