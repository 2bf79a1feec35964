#!/usr/bin/python3
"""`meson install --destdir` of a build, as a normal step: every file lands
under the destdir, where the build's prefix and folders say, and nothing is
written outside it (systemd's and sysusers' folders, the config); the
installed vrld accepts the installed example config; the installed vrl.pc
keeps json-c private and builds the README's example; a second install keeps
an operator's edited config.

    check_install.py BUILD_DIR SOURCE_DIR
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

from state_dirs import with_state_dirs

build, source = (pathlib.Path(p).resolve() for p in sys.argv[1:3])
failures = []



def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def introspect(what):
    out = subprocess.run(["meson", "introspect", str(build), "--" + what],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


opts = {o["name"]: o["value"] for o in introspect("buildoptions")}


def build_compiler():
    """The C compiler the build compiles with (its compile_commands.json),
    as a command: a launcher such as ccache stays in front."""
    for e in json.loads((build / "compile_commands.json").read_text()):
        if e["file"].endswith(".c"):
            words = e["command"].split()
            n = 2 if pathlib.Path(words[0]).name == "ccache" else 1
            return words[:n]
    return ["cc"]
prefix = pathlib.Path(opts["prefix"])


def where(opt):
    """An install folder option, absolute (meson joins it to the prefix)."""
    return prefix / opts[opt]


def stat_of(path):
    try:
        st = os.lstat(path)
        return (st.st_ino, st.st_mtime_ns, st.st_size)
    except FileNotFoundError:
        return None


# What a stray install would touch on the live system: systemd's folders,
# sysusers', the config, whatever pkg-config says.
watched = [pathlib.Path(p) for p in (
    "/lib/systemd/system/vrld.service", "/usr/lib/systemd/system/vrld.service",
    "/etc/systemd/system/vrld.service", "/usr/lib/sysusers.d/vrl.conf",
    "/etc/vrl/vrl.yaml", "/usr/share/bash-completion/completions/vrlctl")]
watched.append(where("sysconfdir") / "vrl" / "vrl.yaml")
installed = introspect("installed")
watched += [pathlib.Path(d) for d in installed.values()]
before = {p: stat_of(p) for p in watched}

with tempfile.TemporaryDirectory(prefix="vrl-install-") as tmp:
    dest = pathlib.Path(tmp) / "root"

    def inside(p):
        return dest / pathlib.Path(p).relative_to("/")

    def install():
        r = subprocess.run(["meson", "install", "-C", str(build), "--no-rebuild", "--quiet",
                            "--destdir", str(dest)], capture_output=True, text=True)
        check(r.returncode == 0, "meson install --destdir exits 0 " + r.stderr.strip()[-400:])

    install()

    # every file under the destdir, and there under the prefix (or an
    # absolute folder option such as sysconfdir /etc for prefix /usr)
    roots = [prefix] + [pathlib.Path(v) for k, v in opts.items()
                        if isinstance(v, str) and v.startswith("/") and k.endswith("dir")]
    for f in sorted(p for p in dest.rglob("*") if not p.is_dir()):
        real = pathlib.Path("/") / f.relative_to(dest)
        check(any(real.is_relative_to(r) for r in roots),
              "%s is under the prefix %s" % (real, prefix))
    for src, dst in installed.items():
        check(os.path.lexists(inside(dst)), "%s installed at %s" % (pathlib.Path(src).name, dst))
    log = build / "meson-logs" / "install-log.txt"
    for line in log.read_text().splitlines():
        if line and not line.startswith("#"):
            check(line == str(dest) or line.startswith(str(dest) + "/"),
                  "install log: %s is in the destdir" % line)
    after = {p: stat_of(p) for p in watched}
    for p in watched:
        check(before[p] == after[p], "%s untouched on the live system" % p)

    # the files where the prefix says
    sysconf = where("sysconfdir")
    expect = {
        "vrld": where("sbindir") / "vrld",
        "vrlctl": where("bindir") / "vrlctl",
        "vrl.h": where("includedir") / "vrl.h",
        "vrl.pc": where("libdir") / "pkgconfig" / "vrl.pc",
        "example config": sysconf / "vrl" / "vrl.yaml",
    }
    if str(prefix) != "/usr":
        expect["vrld.service"] = pathlib.Path(opts.get("systemdunitdir") or
                                              prefix / "lib/systemd/system") / "vrld.service"
        expect["sysusers file"] = pathlib.Path(opts.get("sysusersdir") or
                                               prefix / "lib/sysusers.d") / "vrl.conf"
        if "bashcompletiondir" in opts:
            expect["bash completion"] = pathlib.Path(
                opts["bashcompletiondir"] or where("datadir") / "bash-completion/completions") / "vrlctl"
            expect["zsh completion"] = pathlib.Path(
                opts["zshcompletiondir"] or where("datadir") / "zsh/site-functions") / "_vrlctl"
    for page in ("vrld.8", "vrlctl.1", "vrl.yaml.5", "libvrl.3"):
        if (build / "doc" / page).exists():
            expect[page] = where("mandir") / ("man" + page[-1]) / page
    for what, path in expect.items():
        check(inside(path).exists(), "%s at %s" % (what, path))

    unit = next(dest.rglob("vrld.service"), None)
    if unit:
        text = unit.read_text()
        check("ExecStart=%s -c %s\n" % (where("sbindir") / "vrld", sysconf / "vrl/vrl.yaml") in text,
              "vrld.service runs the installed vrld on the installed config")

    # the installed vrld accepts the installed config
    if inside(expect["vrld"]).exists() and inside(expect["example config"]).exists():
        conf = pathlib.Path(tmp) / "vrl-check.yaml"
        conf.write_text(with_state_dirs(inside(expect["example config"]).read_text(), tmp))
        r = subprocess.run([str(inside(expect["vrld"])), "-c", str(conf), "--check"],
                           capture_output=True, text=True)
        check(r.returncode == 0 and r.stdout.startswith("config ok"),
              "installed vrld --check accepts the example config " + r.stderr.strip())

    # vrl.pc: json-c (and libxxhash) private: not in --cflags or --libs
    env = dict(os.environ, PKG_CONFIG_PATH=str(inside(expect["vrl.pc"]).parent),
               PKG_CONFIG_SYSROOT_DIR=str(dest))
    env.pop("PKG_CONFIG_LIBDIR", None)

    def pc(*args):
        return subprocess.run(["pkg-config", *args, "vrl"], env=env, check=True,
                              capture_output=True, text=True).stdout.split()
    cflags, libs = pc("--cflags"), pc("--libs")
    check(cflags == ["-I%s" % inside(expect["vrl.h"]).parent],
          "pkg-config --cflags vrl is the include folder alone: %s" % cflags)
    check(not any("json" in f or "xxhash" in f for f in cflags + libs),
          "pkg-config --cflags --libs vrl leave json-c and libxxhash out: %s" % (cflags + libs))
    check("-ljson-c" in pc("--static", "--libs"), "pkg-config --static --libs vrl has -ljson-c")
    cc = [shutil.which(os.environ.get("CC", "cc")) or shutil.which("cc")]
    sanitize = opts.get("b_sanitize", "none")
    sanitize = ",".join(sanitize) if isinstance(sanitize, list) else sanitize
    if sanitize and sanitize != "none":
        # a libvrl built with a sanitizer links only into a program built
        # by the same compiler with the same sanitizer (clang's TSan
        # runtime goes into the program, not the library)
        cc = [*build_compiler(), "-fsanitize=" + sanitize]
    exe = pathlib.Path(tmp) / "quickstart"
    r = subprocess.run([*cc, str(source / "examples/quickstart.c"), "-o", str(exe), *cflags,
                        *libs], capture_output=True, text=True, env=env)
    check(r.returncode == 0, "examples/quickstart.c builds with pkg-config vrl " + r.stderr[-400:])

    # installing again keeps an operator's config
    conf = inside(expect["example config"])
    if conf.exists():
        conf.write_text(conf.read_text() + "# edited by the operator\n")
        install()
        check(conf.read_text().endswith("# edited by the operator\n"),
              "a second install keeps the edited config")

print("%d failed" % len(failures))
sys.exit(1 if failures else 0)
