#!/usr/bin/python3
"""Every metric the Grafana dashboard queries is one vrld exports.

    check_grafana.py VRLD DASHBOARD_JSON

Starts vrld on a private segment with the metrics page on a port of its
choosing, reads the metric names from its /metrics page (the # TYPE lines,
so families without a sample yet count too), and checks every expression
of the dashboard (panels, rows, template variables, annotations): each
names at least one vrl metric, and every metric it names is on the page.
"""
import json
import os
import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import vrld_proc  # noqa: E402

vrld, dashboard = sys.argv[1:3]
failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def live_metrics():
    page = vrld_proc.metrics_page(vrld, "/vrl-test-grafana-%d" % os.getpid())
    names = set(re.findall(r"^# TYPE (\w+) ", page, re.M))
    names |= set(re.findall(r"^([a-zA-Z_:][\w:]*)[{ ]", page, re.M))
    return names


def expressions(node, where="dashboard"):
    """(where, PromQL) of every query in the dashboard, nested rows included."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str) and value:
                yield where, value
            elif key == "query" and isinstance(value, str) and node.get("type") == "query":
                yield where, value
            else:
                title = node.get("title") or node.get("name") or where
                yield from expressions(value, title if isinstance(title, str) else where)
    elif isinstance(node, list):
        for item in node:
            yield from expressions(item, where)


# Identifiers of PromQL that are not metrics, where a metric could stand
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                "and", "or", "unless", "offset", "inf", "nan"}

exported = live_metrics()
check("vrl_daemon_up" in exported and len(exported) > 15,
      "vrld's page lists %d metric names" % len(exported))
dash = json.loads(pathlib.Path(dashboard).read_text())
exprs = list(expressions(dash))
check(len(exprs) >= 20, "the dashboard has %d queries" % len(exprs))
used = set()
for where, expr in exprs:
    # a metric: vrl_*, or any identifier before a {selector} or a [range]
    # that is not a function call or a label (label_values(...) arguments)
    names = set(re.findall(r"\b(vrl_\w+)", expr))
    names |= {n for n in re.findall(r"\b([a-zA-Z_:][\w:]*)\s*[{\[]", expr)
              if n not in PROMQL_WORDS and not n.startswith("__")}
    check(any(n.startswith("vrl_") for n in names), "%s: queries a vrl metric: %s" % (where, expr))
    for n in sorted(names):
        check(n in exported, "%s: %s is exported by vrld" % (where, n))
    used |= names
unused = sorted(n for n in exported if n not in used)
print("info  exported, not on the dashboard: %s" % (", ".join(unused) or "none"))
print("%d failed" % len(failures))
sys.exit(1 if failures else 0)
