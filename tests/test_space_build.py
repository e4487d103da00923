"""The Space, simulated from the ``python -m deploy --dry-run`` tree alone.

The Space is built by the docker SDK from the tree's Dockerfile.  There is no docker daemon and no
registry for base images here, so testkit.space_build follows the Dockerfile's steps instead: a fresh
virtual environment made by the Dockerfile's own RUN steps in a sandbox, from files the Dockerfile
COPYs out of the tree (the apt step is checked against this machine's packages, not run).  Then the
image's CMD starts the app from the tree, and gradio_client calls both endpoints on real inputs.
Takes about 1-2 minutes: pip's cache is reused (the Dockerfile's --no-cache-dir is dropped).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from classifier import DEFAULT_MODEL
from testkit.assets import feat_data
from testkit.space_build import BuildFailed, build, start

REPO = Path(__file__).resolve().parents[1]
# Debian packages of python:3.11-slim-bookworm that the wheels may link against without packages.txt.
BASE_IMAGE = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("space")
    r = subprocess.run([sys.executable, "-m", "deploy", "someone/emotions", "--dry-run", str(tmp / "tree")],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    b = build(tmp / "tree", tmp / "root")
    print("\nsimulated build:\n  ran: " + "\n  ran: ".join(b.ran) + "\n  not run: " + "\n  not run: ".join(b.skipped)
          + "\n  checked: " + "\n  checked: ".join(b.checked))
    yield b
    shutil.rmtree(tmp / "root", ignore_errors=True)  # the image's venv is ~1.5 GB


def venv_python(b) -> str:
    exe = shutil.which("python", path=b.process_env()["PATH"])
    assert exe and str(b.root) in exe, exe  # the image's venv, not this test's interpreter
    return exe


def test_the_image_has_one_headless_opencv(image):
    code = ("import importlib.metadata as md, re, cv2\n"
            "p = sorted(d.metadata['Name'].lower() for d in md.distributions() "
            "if any(str(f).startswith('cv2/') for f in d.files or []))\n"
            "print(p, bool(re.search(r'GUI:\\s+NONE', cv2.getBuildInformation())))\n")
    out = subprocess.run([venv_python(image), "-c", code], capture_output=True, text=True, env=image.process_env())
    assert out.stdout.strip() == "['opencv-python-headless'] True", out.stdout + out.stderr[-2000:]


def _debian_package(lib: str) -> str:
    """The Debian package that installed a library file (usr-merged paths: /lib is /usr/lib)."""
    alt = "/usr" + lib if lib.startswith("/lib") else lib[4:] if lib.startswith("/usr/lib") else lib
    for path in dict.fromkeys([lib, alt, str(Path(lib).resolve())]):
        r = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":")[0]
    return f"? (no Debian package owns {lib})"


def test_packages_txt_covers_every_system_library_the_wheels_link(image):
    """Every shared library outside the venv that a compiled module of the image links (and that
    resolves here) comes from the base image or from packages.txt and its dependencies.  This is
    what found mediapipe's libEGL.so.1 / libGLESv2.so.2, which python:3.11-slim lacks."""
    if not (shutil.which("dpkg") and shutil.which("apt-cache") and shutil.which("ldd")):
        pytest.skip("needs Debian's dpkg and apt-cache, and ldd, to map libraries to packages (absent here)")
    venv = image.root / "home" / "user" / "venv"
    pkgs = [p for p in (image.context / "packages.txt").read_text().split() if p]
    deps = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                           "--no-breaks", "--no-replaces", "--no-enhances", *pkgs], capture_output=True, text=True)
    assert deps.returncode == 0, deps.stderr
    allowed = BASE_IMAGE | set(pkgs) | {ln.split(":")[-1].strip().split(":")[0] for ln in deps.stdout.splitlines()}
    allowed = {a.split(":")[0] for a in allowed}
    needed: dict[str, set[str]] = {}
    for so in venv.rglob("*.so*"):
        r = subprocess.run(["ldd", str(so)], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            parts = line.split("=>")
            if len(parts) == 2 and parts[1].strip().startswith("/") and str(venv) not in parts[1]:
                lib = parts[1].split("(")[0].strip()
                needed.setdefault(lib, set()).add(so.relative_to(venv).as_posix())
    assert any("libEGL" in lib for lib in needed), "mediapipe's EGL link not seen: is ldd working?"
    owners = {lib: _debian_package(lib) for lib in needed}
    missing = {lib: (owners[lib], sorted(needed[lib])[:3]) for lib in needed if owners[lib] not in allowed}
    assert not missing, f"libraries from neither the base image nor packages.txt: {missing}"


def _client(url):
    from gradio_client import Client

    return Client(url, verbose=False)


def test_the_app_from_the_tree_serves_the_api_and_the_live_tab(image, tmp_path):
    from gradio_client import handle_file

    with start(image, tmp_path) as (url, proc):
        # The server runs the image's interpreter from the tree's copy of the app.
        assert Path(f"/proc/{proc.pid}/cwd").resolve() == image.host(image.workdir).resolve()
        client = _client(url)
        r = client.predict(handle_file(str(feat_data() / "multi_face.jpg")), api_name="/analyze_image")
        assert len(r["faces"]) == 5 and r["model"] == DEFAULT_MODEL, r
        assert [f["label"] for f in r["faces"]].count("happiness") >= 3
        out = client.predict(handle_file(str(feat_data() / "single_face.mp4")), 3, api_name="/analyze_video")
        mp4, tl_csv = Path(out[0]), Path(out[1])
        assert mp4.stat().st_size > 10_000 and len(tl_csv.read_text().splitlines()) > 10
        config = json.load(urllib.request.urlopen(url + "config", timeout=10))
        types = [c.get("type", "") for c in config["components"]]
        assert "webrtc" in types, sorted(set(types))


def _without(image, tmp_path, rel: str) -> Path:
    """A copy of the built image's app folder with one file of the tree missing."""
    copy = tmp_path / "app"
    shutil.copytree(image.host(image.workdir), copy)
    (copy / rel).unlink()
    return copy


def test_a_module_missing_from_the_tree_fails_the_start(image, tmp_path):
    app = _without(image, tmp_path, "webapp/live/rtc.py")
    with pytest.raises(BuildFailed, match="No module named 'webapp.live.rtc'"):
        with start(image, tmp_path / "run", workdir=app):
            pass


def test_a_model_missing_from_the_tree_fails_the_api(image, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    app = _without(image, tmp_path, "tracker/models/face_detection_full_range_sparse.tflite")
    with start(image, tmp_path / "run", workdir=app) as (url, _):
        with pytest.raises(AppError, match="face_detection_full_range_sparse.tflite"):
            r = _client(url).predict(handle_file(str(feat_data() / "multi_face.jpg")), api_name="/analyze_image")
            assert len(r["faces"]) == 5, r  # reached only if the app somehow worked without the file
