"""A vrld for a Python test: started on a private segment, waited for by
what it logs, stopped and its segment removed however the test ends.

    with vrld_proc.running(vrld, conf, seg, r'msg="serving"') as (log, match):
        ...
    page = vrld_proc.metrics_page(vrld, seg, deadline_s=60)
"""
import contextlib
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


@contextlib.contextmanager
def running(vrld, conf, seg, ready, env=None, deadline_s=60):
    """Run `vrld -c conf` (stderr to vrld.log beside conf) until @ready, a
    regex, matches its log; yields (log path, the match). Exits the test
    with the log when vrld stops or never gets ready."""
    log = pathlib.Path(conf).parent / "vrld.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([vrld, "-c", str(conf)], stderr=err, env=env)
    try:
        deadline = time.monotonic() + deadline_s
        while True:
            m = re.search(ready, log.read_text())
            if m:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("vrld did not get ready (%s):\n%s" % (ready, log.read_text()))
            time.sleep(0.02)
        yield log, m
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        try:
            os.unlink("/dev/shm" + seg)
        except FileNotFoundError:
            pass


def metrics_page(vrld, seg, deadline_s=60):
    """The /metrics page of a vrld with every preset (so every family has
    rows), once it has rendered (503 until then)."""
    with tempfile.TemporaryDirectory() as tmp:
        conf = pathlib.Path(tmp) / "vrl.yaml"
        conf.write_text("presets: [default]\nsegment: {name: %s, keys: 1000}\n"
                        "daemon: {metrics: \"127.0.0.1:0\"}\n" % seg)
        with running(vrld, conf, seg, r'msg="metrics served".* port=(\d+)',
                     deadline_s=deadline_s) as (_, m):
            port = int(m.group(1))
            deadline = time.monotonic() + deadline_s
            # no proxy for loopback, whatever http_proxy says
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            page = ""
            while "vrl_daemon_up" not in page:
                try:
                    page = opener.open("http://127.0.0.1:%d/metrics" % port,
                                       timeout=10).read().decode()
                except urllib.error.HTTPError as e:
                    if e.code != 503:
                        raise
                if time.monotonic() > deadline:
                    sys.exit("no vrl_daemon_up on the page:\n" + page)
                time.sleep(0.05)
            return page
