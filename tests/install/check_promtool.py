#!/usr/bin/python3
"""vrld's metrics page passes `promtool check metrics` with no lint error.

    check_promtool.py VRLD

Starts vrld on a private segment (every preset, so every family has rows)
with the metrics page on a port of its choosing, has a worker acquire,
scrapes the page and runs promtool (Debian: prometheus) on it. Exits 77,
which meson shows as SKIP, when promtool is not installed.
"""
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

vrld = sys.argv[1]
promtool = shutil.which("promtool")
if not promtool:
    print("SKIP: promtool not found (Debian: apt-get install prometheus)")
    sys.exit(77)


def scrape(port, deadline):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    page = ""
    while "vrl_daemon_up" not in page:   # 503 until the first render
        try:
            page = opener.open("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
        except urllib.error.HTTPError as e:
            if e.code != 503:
                raise
        if time.monotonic() > deadline:
            sys.exit("no vrl_daemon_up on the page:\n" + page)
        time.sleep(0.05)
    return page


def main():
    seg = "/vrl-test-promtool-%d" % os.getpid()
    with tempfile.TemporaryDirectory() as tmp:
        conf = pathlib.Path(tmp) / "vrl.yaml"
        log = pathlib.Path(tmp) / "vrld.log"
        conf.write_text("presets: [default]\nsegment: {name: %s, keys: 1000}\n"
                        "daemon: {metrics: \"127.0.0.1:0\"}\n" % seg)
        with open(log, "w") as err:
            proc = subprocess.Popen([vrld, "-c", str(conf)], stderr=err)
        try:
            deadline = time.monotonic() + 60
            port = None
            while port is None:
                m = re.search(r'msg="metrics served".* port=(\d+)', log.read_text())
                if m:
                    port = int(m.group(1))
                elif proc.poll() is not None or time.monotonic() > deadline:
                    sys.exit("vrld did not serve metrics: " + log.read_text())
                else:
                    time.sleep(0.02)
            page = scrape(port, deadline)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            try:
                os.unlink("/dev/shm" + seg)
            except FileNotFoundError:
                pass
    r = subprocess.run([promtool, "check", "metrics"], input=page, capture_output=True,
                       text=True)
    problems = (r.stdout + r.stderr).strip()
    if r.returncode != 0 or problems:
        sys.exit("FAIL  promtool check metrics:\n%s" % problems)
    families = len(re.findall(r"^# TYPE ", page, re.M))
    if not re.search(r'^vrl_build_info\{version="[^"]+"\} 1$', page, re.M):
        sys.exit("FAIL  no vrl_build_info{version=...} 1 on the page")
    print("ok    promtool check metrics: no problem in %d families" % families)


main()
