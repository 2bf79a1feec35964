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

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import vrld_proc  # noqa: E402

vrld = sys.argv[1]
promtool = shutil.which("promtool")
if not promtool:
    print("SKIP: promtool not found (Debian: apt-get install prometheus)")
    sys.exit(77)


def main():
    page = vrld_proc.metrics_page(vrld, "/vrl-test-promtool-%d" % os.getpid())
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
