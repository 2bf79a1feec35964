#!/usr/bin/env python3
"""Exit 0 when libvrl's sources (the C files under the folder given) define every
feedback call the extension's _feedback.c needs; 1 otherwise, naming those
missing on stderr. Run by meson at configure time for -Dpython_feedback=auto."""
import pathlib
import re
import sys

NEEDED = ("vrl_release", "vrl_refund", "vrl_observe", "vrl_parse_retry_after")


def main() -> int:
    text = "\n".join(p.read_text(errors="replace")
                     for p in sorted(pathlib.Path(sys.argv[1]).rglob("*.c")))
    # a definition: the name at the start of a line or after its return
    # type, its parameter list, then the opening brace
    missing = [n for n in NEEDED
               if not re.search(r"^(?:\w[\w \t*]*[ \t*])?" + n + r"\s*\([^;{]*\)\s*\{",
                                text, re.M)]
    if missing:
        print("missing: " + " ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
