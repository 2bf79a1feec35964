#!/usr/bin/python3
"""The man pages render, and say everything there is to say.

    check_man.py DOC_SRC VRLD VRLCTL VRL_H [PAGE.N ...]

Each built page (PAGE.N, scdoc's output) renders with man -l without a
groff warning. Each source page is checked against what it documents, read
from the programs themselves: every option of `vrld --help`; every command
and option of `vrlctl --help`; every key vrld's config accepts (from vrld's
own "unknown key, expected one of: ..." messages) and every kind; every
function, error code and flag of vrl.h.
"""
import os
import pathlib
import re
import subprocess
import sys
import tempfile

doc, vrld, vrlctl, vrl_h = sys.argv[1:5]
pages = sys.argv[5:]
doc = pathlib.Path(doc)
failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def run(*args, input=None):
    return subprocess.run(args, capture_output=True, text=True, input=input)


# ---- rendering -------------------------------------------------------------
env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_DISABLE_SECCOMP="1")
for page in pages:
    r = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True, env=env)
    name = pathlib.Path(page).name
    check(r.returncode == 0 and "NAME" in r.stdout and "SEE ALSO" in r.stdout,
          "man -l %s renders (%d lines)" % (name, r.stdout.count("\n")))
    check(r.stderr.strip() == "", "man -l %s: no warnings %s" % (name, r.stderr.strip()[:300]))


def source(page):
    return (doc / (page + ".scd")).read_text()


def documented(text, word):
    """@word appears in bold or as an argument, as an option or key does."""
    return re.search(r"\*%s\*|_%s_" % (re.escape(word), re.escape(word)), text) is not None


# ---- vrld(8) ---------------------------------------------------------------
text = source("vrld.8")
usage = run(vrld, "--help").stdout
for opt in sorted(set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", usage))):
    check(documented(text, opt), "vrld.8 documents %s" % opt)
for preset in re.search(r"built-in preset: ([a-z ]+)", usage).group(1).split():
    check(documented(text, preset), "vrld.8 names the preset %s" % preset)

# ---- vrlctl(1) -------------------------------------------------------------
text = source("vrlctl.1")
usage = run(vrlctl, "--help").stdout
commands = re.findall(r"^  ([a-z]+) ", usage.split("commands:")[1].split("REQUEST:")[0], re.M)
check(len(commands) >= 9, "vrlctl --help lists %d commands" % len(commands))
for cmd in commands:
    check(re.search(r"^\*%s\*" % cmd, text, re.M) is not None,
          "vrlctl.1 has an entry for the command %s" % cmd)
for opt in sorted(set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", usage))):
    check(documented(text, opt), "vrlctl.1 documents %s" % opt)
for var in re.findall(r"\$([A-Z_]+)", usage):
    check(documented(text, var), "vrlctl.1 documents $%s" % var)

# ---- vrl.yaml(5): ask vrld which keys each mapping accepts ----------------------
text = source("vrl.yaml.5")
probes = {
    "top level": "zzz: 1\n",
    "segment": "segment: {zzz: 1}\n",
    "daemon": "daemon: {zzz: 1}\n",
    "limit": "limits: [{name: a, zzz: 1}]\n",
    "override": "limits: [{name: a, rate: 1/s, overrides: [{match: {x: y}, zzz: 1}]}]\n",
}
with tempfile.TemporaryDirectory() as tmp:
    conf = pathlib.Path(tmp) / "probe.yaml"
    for where, probe in probes.items():
        conf.write_text(probe)
        err = run(vrld, "-c", str(conf), "--check").stderr
        m = re.search(r"unknown key, expected one of: (.*)$", err, re.M)
        check(m is not None, "vrld names the keys of the %s: %s" % (where, err.strip()))
        for key in (m.group(1).split(", ") if m else []):
            check(documented(text, key), "vrl.yaml.5 documents %s key %s" % (where, key))
    conf.write_text("limits: [{name: a, kind: zzz}]\n")
    err = run(vrld, "-c", str(conf), "--check").stderr
    kinds = re.findall(r"(?:expected|,|or) ([a-z]+) \(", err)
    check(len(kinds) >= 5, "vrld names the kinds: %s" % kinds)
    for kind in kinds:
        check(re.search(r"^## kind: %s$" % kind, text, re.M) is not None,
              "vrl.yaml.5 has a section for kind: %s" % kind)

# ---- libvrl(3) ---------------------------------------------------------------
text = source("libvrl.3")
header = pathlib.Path(vrl_h).read_text()
calls = re.findall(r"^[a-z][\w ]*?\*?\s*(vrl_\w+)\(", header, re.M)
check(len(calls) >= 18, "vrl.h declares %d calls" % len(calls))
for call in calls:
    check(re.search(r"^\*%s\*\(" % call, text, re.M) or
          re.search(r"\*%s\*\(_[^)]*\), \*" % call, text) or
          re.search(r", \*%s\*\(" % call, text),
          "libvrl.3 has an entry for %s()" % call)
    check(re.search(r"\b%s\(" % call, text.split("# DESCRIPTION")[0]) is not None,
          "libvrl.3's synopsis declares %s()" % call)
for name in re.findall(r"XX\((\w+),\s*-?\d+", header):
    check("VRL_E" + name in text, "libvrl.3 documents VRL_E%s" % name)
for flag in re.findall(r"#define (VRL_(?:VERDICT|FB|OPEN)_\w+)", header):
    check(flag in text, "libvrl.3 documents %s" % flag)

print("%d failed" % len(failures))
sys.exit(1 if failures else 0)
