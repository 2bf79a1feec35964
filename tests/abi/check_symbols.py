#!/usr/bin/python3
"""libvrl.so exports exactly what libvrl.map lists, each call under each
version the map gives it, the map lists exactly the calls of vrl.h, and
the Debian symbols file lists each symbol version of the map (with the
release of its node: VRL_0 is 0.1.0, VRL_0.2 is 0.2.0, ...).

    check_symbols.py LIBVRL_SO LIBVRL_MAP VRL_H DEBIAN_SYMBOLS
"""
import re
import subprocess
import sys

so, mapfile, vrl_h, deb_symbols = sys.argv[1:5]
failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


text = re.sub(r"/\*.*?\*/", "", open(mapfile).read(), flags=re.S)
listed = set()
nodes = []
for node, body in re.findall(r"([\w.]+)\s*\{(.*?)\}\s*[\w.]*\s*;", text, re.S):
    nodes.append(node)
    globals_ = re.search(r"global:(.*?)(?:local:|$)", body, re.S)
    for name in re.findall(r"(\w+)\s*;", globals_.group(1) if globals_ else ""):
        listed.add((name, node))
check(nodes[:1] == ["VRL_0"], "the map's first node is VRL_0 (nodes: %s)" % ", ".join(nodes))
check(len(nodes) >= 2, "the map has a node for symbols after VRL_0")

# objdump -T: "... DF .text ... VERSION NAME", the version in parentheses
# when it is not the default one
out = subprocess.run(["objdump", "-T", so], capture_output=True, text=True, check=True).stdout
exported = set()
for line in out.splitlines():
    m = re.search(r"\s(\*UND\*|\.\w+)\s+[0-9a-f]+\s+\(?([\w.]+)\)?\s+(\w+)$", line)
    if m and m.group(1) != "*UND*" and m.group(2).startswith("VRL_"):
        exported.add((m.group(3), m.group(2)))
unversioned = [l.split()[-1] for l in out.splitlines()
               if re.search(r"\sBase\s+vrl_|\s\.text\s+[0-9a-f]+\s+vrl_", l)]
check(not unversioned, "no vrl_ symbol exported without a version %s" % unversioned)
for name, node in sorted(listed - exported):
    check(False, "%s@%s is listed in the map but not exported" % (name, node))
for name, node in sorted(exported - listed):
    check(False, "%s@%s is exported but not listed in the map" % (name, node))
check(listed == exported, "%d symbol versions exported, as listed" % len(exported))

header = open(vrl_h).read()
calls = set(re.findall(r"^[a-z][\w ]*?\*?\s*(vrl_\w+)\(", header, re.M))
names = {n for n, _ in listed}
check(calls == names, "the map lists the calls of vrl.h (only in vrl.h: %s; only in the map: %s)"
      % (sorted(calls - names), sorted(names - calls)))


def release(node):
    """VRL_0 -> 0.1.0, VRL_0.N -> 0.N.0: the release that made the node."""
    parts = node[len("VRL_"):].split(".")
    return "0.1.0" if parts == ["0"] else ".".join(parts + ["0"] * (3 - len(parts)))


want = {"%s@%s %s" % (name, node, release(node)) for name, node in listed}
want |= {"%s@%s %s" % (node, node, release(node)) for node in nodes}
lines = open(deb_symbols).read().splitlines()
check(bool(lines) and lines[0].startswith("libvrl.so.0 libvrl0 "),
      "%s names libvrl.so.0 of package libvrl0" % deb_symbols)
have = {l.strip() for l in lines[1:] if l.startswith(" ")}
check(have == want, "%s lists the map's symbol versions (missing: %s; extra: %s)"
      % (deb_symbols, sorted(want - have), sorted(have - want)))
print("%d failed" % len(failures))
sys.exit(1 if failures else 0)
