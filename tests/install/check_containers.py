#!/usr/bin/python3
"""The container recipes hold together (no container engine runs here).

    check_containers.py SOURCE_DIR VRLD

contrib/docker/docker-compose.yml and contrib/kubernetes/*.yaml parse as
YAML and say what vrl needs: every container that uses the segment shares
vrld's /dev/shm and its PID namespace; vrld runs as the image's vrl uid and
gid (the Dockerfile's VRL_UID, VRL_GID) and the workers carry that gid;
/dev/shm is big enough and in memory. The configs they carry pass vrld
--check. docker-compose config and hadolint check the files too when they
are installed (Debian: docker-compose; hadolint is not in Debian 12).
"""
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

from state_dirs import with_state_dirs

src, vrld = pathlib.Path(sys.argv[1]), sys.argv[2]
failures = []



def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def vrld_check(text, where):
    with tempfile.TemporaryDirectory() as tmp:
        conf = pathlib.Path(tmp) / "vrl.yaml"
        conf.write_text(with_state_dirs(text, tmp))
        r = subprocess.run([vrld, "-c", str(conf), "--check"], capture_output=True, text=True)
    check(r.returncode == 0, "%s: vrld --check accepts the config %s" % (where, r.stderr.strip()))
    return yaml.safe_load(text)


# ---- the Dockerfile -------------------------------------------------------------
dockerfile = src / "contrib/docker/Dockerfile"
text = dockerfile.read_text()
uid = int(re.search(r"^ARG VRL_UID=(\d+)$", text, re.M).group(1))
gid = int(re.search(r"^ARG VRL_GID=(\d+)$", text, re.M).group(1))
stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?$", text, re.M)
check(all(image.startswith("debian:12") or image in dict((s, i) for i, s in stages)
          for image, _ in stages), "Dockerfile: every stage on Debian 12: %s" % stages)
check(stages[-1][1] == "vrld", "Dockerfile: the default target is vrld")
last = text.split("AS vrld")[1]
check(re.search(r"^USER vrl", last, re.M) is not None, "Dockerfile: vrld runs as user vrl")
check('ENTRYPOINT ["/usr/sbin/vrld"]' in last, "Dockerfile: the entrypoint is vrld")
if shutil.which("hadolint"):
    r = subprocess.run(["hadolint", str(dockerfile)], capture_output=True, text=True)
    check(r.returncode == 0, "hadolint Dockerfile " + r.stdout[-500:])
else:
    print("skip  hadolint not installed")

# ---- docker-compose.yml ----------------------------------------------------------
compose_file = src / "contrib/docker/docker-compose.yml"
compose = yaml.safe_load(compose_file.read_text())
services = compose["services"]
vrld_svc = services["vrld"]
check(vrld_svc.get("ipc") == "shareable", "compose: vrld has ipc: shareable")
check(vrld_svc.get("init") is True, "compose: vrld runs under an init")
shm = str(vrld_svc.get("shm_size", "64m"))
check(re.fullmatch(r"\d+[mg]", shm) and (int(shm[:-1]) * (1024 if shm[-1] == "g" else 1)) >= 128,
      "compose: vrld's shm_size %s is at least 128m" % shm)
conf_mount = next(v for v in vrld_svc["volumes"] if ":/etc/vrl/vrl.yaml" in v)
demo = vrld_check((compose_file.parent / conf_mount.split(":")[0]).read_text(), "compose")
segment = demo["segment"]["name"]
users = [n for n, s in services.items() if segment in " ".join(map(str, s.get("command", [])))
         and n != "vrld"]
check(len(users) >= 1, "compose: services using %s: %s" % (segment, users))
for name in users:
    s = services[name]
    check(s.get("ipc") == "service:vrld", "compose: %s has ipc: \"service:vrld\"" % name)
    check(str(gid) in map(str, s.get("group_add", [])), "compose: %s has group_add %d" % (name, gid))
dc = shutil.which("docker-compose")
if dc:
    r = subprocess.run([dc, "-f", str(compose_file), "config", "-q"], capture_output=True, text=True)
    check(r.returncode == 0, "docker-compose config -q " + r.stderr.strip()[-500:])
else:
    print("skip  docker-compose not installed")

# ---- Kubernetes --------------------------------------------------------------------


def pod_specs(docs):
    for d in docs:
        if d and d.get("kind") in ("Deployment", "DaemonSet", "StatefulSet"):
            yield d["metadata"]["name"], d["kind"], d["spec"]["template"]["spec"]


def mounts_shm(container, volume):
    return any(m["name"] == volume and m["mountPath"] == "/dev/shm"
               for m in container.get("volumeMounts", []))


for path in sorted((src / "contrib/kubernetes").glob("*.yaml")):
    docs = list(yaml.safe_load_all(path.read_text()))
    for d in docs:
        check(bool(d.get("apiVersion")) and bool(d.get("kind")) and bool(d["metadata"].get("name")),
              "%s: %s has apiVersion, kind, metadata.name" % (path.name, d.get("kind")))
        if d["kind"] == "ConfigMap" and "vrl.yaml" in d["data"]:
            cfg = vrld_check(d["data"]["vrl.yaml"], "%s %s" % (path.name, d["metadata"]["name"]))
            check(str(cfg["segment"].get("group")) == str(gid),
                  "%s: the segment's group is %d" % (path.name, gid))
    for name, kind, spec in pod_specs(docs):
        where = "%s %s %s" % (path.name, kind, name)
        shm = [v for v in spec.get("volumes", []) if v.get("emptyDir") or v.get("hostPath")]
        shm = [v for v in shm if v.get("hostPath", {}).get("path") == "/dev/shm"
               or v.get("emptyDir", {}).get("medium") == "Memory"]
        check(len(shm) == 1, "%s: a /dev/shm volume (memory emptyDir or the host's)" % where)
        if not shm:
            continue
        vol = shm[0]["name"]
        pod_sc = spec.get("securityContext", {})
        every = spec.get("containers", []) + spec.get("initContainers", [])
        vrlds = [c for c in every if c["image"] == "vrld" and "args" in c]
        workers = [c for c in spec.get("containers", []) if c["image"] != "vrld"]
        for c in vrlds + workers:
            check(mounts_shm(c, vol), "%s: %s mounts it at /dev/shm" % (where, c["name"]))
        for c in vrlds:
            sc = c.get("securityContext", {})
            check(sc.get("runAsUser") == uid and sc.get("runAsGroup") == gid,
                  "%s: vrld runs as %d:%d" % (where, uid, gid))
        for c in workers:
            sc = {**pod_sc, **c.get("securityContext", {})}
            groups = set(sc.get("supplementalGroups", [])) | {sc.get("fsGroup"), sc.get("runAsGroup")}
            check(gid in groups, "%s: worker %s is in group %d" % (where, c["name"], gid))
        if "emptyDir" in shm[0]:
            check(pod_sc.get("fsGroup") == gid, "%s: fsGroup %d" % (where, gid))
            check(bool(shm[0]["emptyDir"].get("sizeLimit")), "%s: /dev/shm has a sizeLimit" % where)

print("%d failed" % len(failures))
sys.exit(1 if failures else 0)
