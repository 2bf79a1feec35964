#!/usr/bin/python3
"""vrld's log lines are logfmt that any strict parser reads back, whatever
bytes a value holds.

    check_vrld_log.py VRLD

Starts vrld (stderr not the journal) on a config whose path holds a quote,
a backslash, an equals sign, spaces and a newline: the "serving" line's
source field must parse back to that exact path, and no line may hold a
field the parser cannot read (a value that ended early, or a forged one).
"""
import os
import pathlib
import re
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import vrld_proc  # noqa: E402

vrld = sys.argv[1]
ESC = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


def parse(line):
    """key=value pairs of one logfmt line; raises ValueError on anything else."""
    fields, i = {}, 0
    while i < len(line):
        m = re.compile(r"([a-z_][a-z0-9_]*)=").match(line, i)
        if not m:
            raise ValueError("no key at %d: %r" % (i, line[i:i + 30]))
        key, i = m.group(1), m.end()
        if line.startswith('"', i):
            i, out = i + 1, []
            while line[i] != '"':
                if line[i] == "\\":
                    if line[i + 1] == "u":
                        out.append(chr(int(line[i + 2:i + 6], 16)))
                        i += 6
                        continue
                    out.append(ESC[line[i + 1]])
                    i += 2
                else:
                    out.append(line[i])
                    i += 1
            value, i = "".join(out), i + 1
        else:
            m = re.compile(r'[^\s"=]+').match(line, i)
            if not m:
                raise ValueError("empty bare value for %s" % key)
            value, i = m.group(0), m.end()
        if key in fields:
            raise ValueError("field %s twice" % key)
        fields[key] = value
        if i < len(line):
            if line[i] != " ":
                raise ValueError("no space after %s at %d" % (key, i))
            i += 1
    return fields


def main():
    seg = "/vrl-test-log-%d" % os.getpid()
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    with tempfile.TemporaryDirectory() as tmp:
        hostile = pathlib.Path(tmp) / 'a "quoted" b\\c x=1 level=error\nmsg="forged".yaml'
        hostile.write_text("presets: [samsara]\nsegment: {name: %s, keys: 100}\n" % seg)
        with vrld_proc.running(vrld, hostile, seg, r'msg="serving"', env=env) as (log, _):
            pass
        lines = log.read_text().splitlines()
    serving = None
    for line in lines:
        try:
            f = parse(line)
        except (ValueError, IndexError, KeyError) as e:
            sys.exit("FAIL  not logfmt (%s):\n%s" % (e, "\n".join(lines)))
        for key in ("ts", "level", "msg"):
            if key not in f:
                sys.exit("FAIL  no %s in %r" % (key, line))
        if f["msg"] == "serving":
            serving = f
    if serving is None:
        sys.exit("FAIL  no serving line:\n" + "\n".join(lines))
    if serving.get("source") != str(hostile) or serving.get("level") != "info":
        sys.exit("FAIL  source %r, level %r; want %r, info" %
                 (serving.get("source"), serving.get("level"), str(hostile)))
    print("ok    %d lines parse back; source is the exact path" % len(lines))


main()
