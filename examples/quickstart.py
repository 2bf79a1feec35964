#!/usr/bin/python3
"""The README's Python example: run against a vrld serving the samsara preset,
    examples/quickstart.py [SEGMENT]   (default /vrl)
with PYTHONPATH=build/bindings/python."""
import sys

import vrl

# vrld's segment; a Client made before fork() works in the children
client = vrl.Client(sys.argv[1] if len(sys.argv) > 1 else "/vrl")

# a request to Samsara: samsara.token and samsara.org both apply, all or nothing
v = client.acquire(api="samsara", token="t1", org="acme")
print(v.granted, v.limit, v.matched, v.remaining)

# the hot path: resolve once, acquire many times
hos = client.resolve(api="samsara", token="t1", org="acme",
                     endpoint="GET /v1/fleet/hos_logs_summary")
v = hos.acquire()
if not v:
    print("denied by", v.limit, "retry after %.4f s" % v.retry_after)

# wait for a permit (sleeping with the GIL released), or raise vrl.RateLimited
with client.limit(api="samsara", token="t1", org="acme", timeout=5) as v:
    print("waited until", v.at_ns)

# a decorator, keyed by the call's own arguments
@client.limited(api="samsara", org="acme", token=lambda token, path: token, timeout=5)
def get(token, path):
    return "GET " + path

print(get("t1", "/fleet/vehicles"))

# a 429 with Retry-After: 0.40235 closes the key for every worker
client.cooldown("samsara.token", for_=0.40235, api="samsara", token="t1")
try:
    client.take(api="samsara", token="t1", org="acme")
except vrl.RateLimited as e:
    print(e, e.verdict.cooldown)
