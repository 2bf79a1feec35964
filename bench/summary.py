#!/usr/bin/python3
"""Print the vrl benchmark summary from a Google Benchmark JSON report.

Usage: summary.py result.json

Each figure is wall-clock ns per decision: the median of the repetitions
when the run has several, else the single run. Contended cases (a second
process hammering the same key) are compared with the contended floor and
the contended mutex; the others with the uncontended ones. The targets are
those of DESIGN.md (Performance); PASS/MISS is reported, never enforced.
"""
import json
import sys

UNITS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}

ROWS = [
    ("floor", "floor: clock read + shared CAS"),
    ("vrl_resolved", "vrl, 1 limit, resolved key"),
    ("vrl_one_string", "vrl, 1 limit, string key"),
    ("vrl_stacked_strings", "vrl, 3 stacked limits, string keys"),
    ("vrl_denied", "vrl, denied (resolved key)"),
    ("vrl_new_key", "vrl, first use of a new key"),
    ("mutex", "baseline: robust-mutex bucket"),
    ("redis_gcra", "baseline: Redis + Lua GCRA (unix)"),
    ("floor_contended", "floor, 2 processes, one word"),
    ("vrl_resolved_contended", "vrl resolved, 2 processes, one key"),
    ("mutex_contended", "robust-mutex bucket, 2 processes"),
]


def load(path):
    with open(path) as f:
        doc = json.load(f)
    times, errors, medians = {}, {}, {}
    for b in doc.get("benchmarks", []):
        name = b["name"].split("/")[0]
        name = name[3:] if name.startswith("BM_") else name
        if b.get("error_occurred"):
            errors[name] = b.get("error_message", "error")
            continue
        t = b["real_time"] * UNITS.get(b.get("time_unit", "ns"), 1.0)
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                medians[name] = t
        else:
            times.setdefault(name, t)
    times.update(medians)
    return times, errors, doc.get("context", {})


def ratio(a, b):
    return f"{a / b:8.2f}x" if a is not None and b else "       -"


def faster(base, t):
    return f"{base / t:9.1f}x" if base is not None and t else "        -"


def table(times, errors):
    print(f"{'case':38} {'ns/op':>9} {'/floor':>9} {'mutex/it':>10} {'redis/it':>10}")
    print("-" * 80)
    print("/floor: this / floor.  mutex/it, redis/it: baseline / this "
          "(above 1x: this is faster).")
    print("Contended rows compare with the contended floor and mutex.\n")
    redis = times.get("redis_gcra")
    for key, label in ROWS:
        t = times.get(key)
        if t is None:
            why = errors.get(key, "not run")
            print(f"{label:38} {'skipped':>9}  ({why})")
            continue
        cont = key.endswith("_contended")
        floor = times.get("floor_contended" if cont else "floor")
        mutex = times.get("mutex_contended" if cont else "mutex")
        print(f"{label:38} {t:9.1f} {ratio(t, floor)} {faster(mutex, t):>10} "
              f"{faster(redis, t) if not cont else '        -':>10}")


def check(label, target, value, ok):
    verdict = "n/a " if ok is None else ("PASS" if ok else "MISS")
    print(f"  {verdict}  {label:46} {target:>16}  {value}")


def targets(t, ctx):
    g = t.get
    print("\nDESIGN.md targets")
    fl, res = g("floor"), g("vrl_resolved")
    check("one limit, resolved key", "<= 1.25x floor",
          f"{res / fl:.2f}x floor" if fl and res else "-",
          res / fl <= 1.25 if fl and res else None)
    st = g("vrl_stacked_strings")
    check("three stacked limits by string keys", "<= 100 ns",
          f"{st:.1f} ns" if st else "-", st <= 100 if st else None)
    nk = g("vrl_new_key")
    check("first use of a new key", "<= 1000 ns",
          f"{nk:.1f} ns" if nk else "-", nk <= 1000 if nk else None)
    rd = g("redis_gcra")
    check("faster than Redis + Lua GCRA (resolved)", ">= 1000x",
          f"{rd / res:.0f}x" if rd and res else "skipped",
          rd / res >= 1000 if rd and res else None)
    mc, vc = g("mutex_contended"), g("vrl_resolved_contended")
    check("faster than robust mutex, 2 processes", "< mutex",
          f"{vc:.1f} vs {mc:.1f} ns" if mc and vc else "-",
          vc < mc if mc and vc else None)
    den = ctx.get("vrl_denial_writes_nothing")
    check("a denial writes nothing to the key slots", "no write",
          den or "-", den == "yes" if den else None)
    slot = ctx.get("vrl_slot_bytes")
    check("hot state per rate key", "<= 64 B",
          f"{slot} B slot" if slot else "-", int(slot) <= 64 if slot else None)
    seg = ctx.get("vrl_segment_bytes_1M_keys")
    per = ctx.get("vrl_bytes_per_key")
    check("a million keys", "<= 100 MB",
          f"{int(seg) / 1e6:.1f} MB ({float(per):.1f} B/key)" if seg and per else "-",
          int(seg) <= 100e6 if seg else None)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    times, errors, ctx = load(sys.argv[1])
    print()
    table(times, errors)
    targets(times, ctx)


if __name__ == "__main__":
    main()
