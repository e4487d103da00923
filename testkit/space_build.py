"""Follow a Space tree's Dockerfile without docker (no daemon and no registry for base images here).

What is simulated, and how:

* ``FROM python:X.Y...``: this machine's Python, which must be X.Y (else a clear failure).
* Steps before ``USER`` (system packages, creating the user) are not run: an ``apt-get install``
  step is checked instead (every package of the tree's ``packages.txt`` must be installed on this
  machine, so what the app links against here is what the image gets).  Any other root step is
  listed in ``Build.skipped``.
* ``USER``, ``ENV``, ``WORKDIR``, ``COPY``, ``RUN`` after ``USER``: done for real in a sandbox
  folder that stands in for ``/`` (``/home/user`` becomes ``ROOT/home/user``, in paths and
  commands).  ``COPY`` copies only from the tree (the build context), so a file the tree lacks
  is missing here too.  ``--no-cache-dir`` is dropped from pip commands so pip's cache is reused
  (the same wheels; only faster).
* ``EXPOSE`` and ``CMD`` are recorded; :func:`start` runs ``CMD`` with the image's environment
  (``GRADIO_SERVER_NAME`` forced to 127.0.0.1 and a free port, so tests stay on loopback).

Any other instruction fails loudly: extend this file before using it in the Dockerfile.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from testkit.server import free_port, serve

MAPPED = "/home/user"


class BuildFailed(AssertionError):
    pass


@dataclass
class Build:
    context: Path
    root: Path
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = "root"
    expose: list[int] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    def host(self, path: str) -> Path:
        """A path inside the image -> its place in the sandbox."""
        path = self.map(path)
        if not path.startswith(str(self.root)):
            raise BuildFailed(f"the simulation only maps {MAPPED}/...; got the absolute path {path!r}")
        return Path(path)

    def map(self, text: str) -> str:
        return text.replace(MAPPED, str(self.root) + MAPPED)

    def process_env(self) -> dict[str, str]:
        """The environment RUN steps and CMD see: the image's ENV over a plain system PATH.
        The machine's pip settings (index mirrors here) and pip's real cache are kept."""
        keep = {k: v for k, v in os.environ.items() if k.startswith(("PIP_", "http_", "https_", "HTTP", "NO_PROXY", "no_proxy", "LANG", "LC_"))}
        env = {"PATH": f"{self.root}/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
               "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")), **keep}
        env.update(self.env)
        return env


def _logical_lines(text: str) -> list[str]:
    out, cur = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not cur and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        out.append(cur + line)
        cur = ""
    if cur:
        out.append(cur)
    return out


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1), ""), value)


def _env_pairs(arg: str, env: dict[str, str]) -> dict[str, str]:
    parts = shlex.split(arg)
    if len(parts) >= 2 and "=" not in parts[0]:  # legacy form: ENV KEY value words
        return {parts[0]: _expand(" ".join(parts[1:]), env)}
    out = {}
    for p in parts:
        k, _, v = p.partition("=")
        out[k] = _expand(v, {**env, **out})
    return out


def _python_for(tag: str) -> str:
    m = re.match(r"python:(\d+)\.(\d+)", tag)
    if not m:
        raise BuildFailed(f"FROM {tag}: the simulation only stands in for python:X.Y images")
    want = (int(m.group(1)), int(m.group(2)))
    if sys.version_info[:2] != want:
        raise BuildFailed(f"FROM {tag} needs Python {want[0]}.{want[1]}; this machine runs {sys.version.split()[0]}")
    return getattr(sys, "_base_executable", None) or sys.executable


def _check_apt(b: Build, cmd: str) -> None:
    if "packages.txt" not in cmd:
        raise BuildFailed(f"apt step without packages.txt: {cmd!r} (the simulation checks packages.txt)")
    pkgs = [p.strip() for p in (b.context / "packages.txt").read_text().splitlines() if p.strip() and not p.startswith("#")]
    if not shutil.which("dpkg"):
        b.checked.append(f"apt packages NOT checked (no dpkg on this machine): {' '.join(pkgs)}")
        return
    missing = [p for p in pkgs if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if missing:
        raise BuildFailed(f"packages.txt lists {missing}, not installed on this machine: the simulation cannot "
                          "stand in for the image's system libraries")
    b.checked.append(f"apt packages present here: {' '.join(pkgs)}")


def build(context: Path, root: Path, timeout_s: float = 600) -> Build:
    """Follow ``context/Dockerfile`` into the sandbox ``root``; raises BuildFailed with the step's output."""
    context, root = Path(context), Path(root)
    b = Build(context=context, root=root)
    dockerfile = context / "Dockerfile"
    if not dockerfile.is_file():
        raise BuildFailed(f"no Dockerfile in {context}")
    for line in _logical_lines(dockerfile.read_text()):
        instr, _, arg = line.partition(" ")
        instr, arg = instr.upper(), arg.strip()
        if instr == "FROM":
            py = _python_for(arg)
            (root / "usr/local/bin").mkdir(parents=True, exist_ok=True)
            for name in ("python", "python3"):
                (root / "usr/local/bin" / name).symlink_to(py)
        elif instr == "USER":
            b.user = arg
        elif instr == "ENV":
            b.env.update({k: b.map(v) for k, v in _env_pairs(arg, {**b.process_env(), **b.env}).items()})
        elif instr == "WORKDIR":
            b.workdir = arg if arg.startswith("/") else f"{b.workdir.rstrip('/')}/{arg}"
            if b.user != "root":
                b.host(b.workdir).mkdir(parents=True, exist_ok=True)
        elif instr == "COPY":
            parts = [p for p in shlex.split(arg) if not p.startswith("--")]
            *srcs, dest = parts
            if b.user == "root":
                b.skipped.append(f"COPY {arg} (root step; its file is checked by the apt step)")
                continue
            dest_abs = dest if dest.startswith("/") else f"{b.workdir.rstrip('/')}/{dest}"
            target = b.host(dest_abs)
            for s in srcs:
                src = (context / s).resolve()
                if not src.is_relative_to(context.resolve()) or not src.exists():
                    raise BuildFailed(f"COPY {s}: not in the build context (the Space tree)")
                if src.is_dir():
                    shutil.copytree(src, target, dirs_exist_ok=True)
                else:
                    to = target / src.name if dest.endswith("/") or target.is_dir() else target
                    to.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, to)
            b.ran.append(f"COPY {arg}")
        elif instr == "RUN":
            if b.user == "root":
                if "apt-get" in arg:
                    _check_apt(b, arg)
                b.skipped.append(f"RUN {arg} (root step, not run here)")
                continue
            cmd = b.map(arg).replace("--no-cache-dir", "")
            t0 = time.monotonic()
            r = subprocess.run(["sh", "-c", cmd], cwd=b.host(b.workdir), env=b.process_env(),
                               capture_output=True, text=True, timeout=timeout_s)
            b.log.append(f"$ {cmd}\n{r.stdout[-4000:]}{r.stderr[-4000:]}")
            if r.returncode != 0:
                raise BuildFailed(f"RUN {arg} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
            b.ran.append(f"RUN {arg} ({time.monotonic() - t0:.0f} s)")
        elif instr == "EXPOSE":
            b.expose += [int(p.split("/")[0]) for p in arg.split()]
        elif instr == "CMD":
            if not arg.startswith("["):
                raise BuildFailed("CMD must be in JSON form")
            b.cmd = json.loads(arg)
        else:
            raise BuildFailed(f"the simulation does not know the instruction {instr}; extend testkit/space_build.py")
    if not b.cmd:
        raise BuildFailed("the Dockerfile has no CMD")
    return b


@contextlib.contextmanager
def start(b: Build, tmp: Path, timeout_s: float = 180.0, workdir: Path | None = None):
    """Run the image's CMD in its WORKDIR (or ``workdir``, a changed copy of it) with the image's
    environment; yields (url, Popen)."""
    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**b.process_env(), "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "HF_HUB_OFFLINE": "1", "LIVE_DIR": str(tmp / "live"), "OUTPUT_DIR": str(tmp / "out"),
           "GRADIO_TEMP_DIR": str(tmp / "gradio"), "TMPDIR": str(tmp)}
    exe = shutil.which(b.cmd[0], path=env["PATH"])
    if not exe:
        raise BuildFailed(f"CMD {b.cmd[0]!r} is not on the image's PATH {env['PATH']}")
    with serve([exe, *b.cmd[1:]], workdir or b.host(b.workdir), env, port, tmp / "server.log", timeout_s,
               error=BuildFailed) as out:
        yield out
