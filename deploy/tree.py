"""The Space tree: exactly the files a Hugging Face Space (docker SDK) needs, built from the repository.

What goes in (and nothing else):

* ``README.md``   the Space card: ``Space.md`` as it is (its YAML front matter configures the Space)
* ``Dockerfile``  ``deploy/Dockerfile``: the image the docker SDK builds
* ``requirements.txt`` and ``third_party/wheels/*.whl``: the same install as the quick start and CI
  (the two ~1 KB stand-in wheels keep the image to one OpenCV, the headless build; the Dockerfile
  copies them before ``pip install``, so they resolve there)
* ``packages.txt``  the Debian packages the Dockerfile installs
* ``app.py``, ``LICENSE``, ``docs/API.md`` and the product packages (``webapp``, ``export``,
  ``pipeline``, ``tracker``, ``classifier``, ``common``) with their embedded models, specs and licences

Left out: tests, testkit, benchmarks, tools, the wheel-building script, screenshots, caches,
virtual environments and anything git does not track.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("webapp", "export", "pipeline", "tracker", "classifier", "common")
FILES = ("app.py", "LICENSE", "requirements.txt", "packages.txt", "docs/API.md")
WHEELS = "third_party/wheels"
SKIP_PARTS = {"__pycache__", ".pytest_cache", ".gradio"}
SKIP_SUFFIXES = (".pyc", ".pyo")


class TreeError(Exception):
    """The repository cannot make a valid Space tree (a clear message for the user)."""


def _tracked(repo: Path) -> set[str] | None:
    """Paths git tracks, or None outside a git work tree (a downloaded archive)."""
    try:
        r = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if r.returncode != 0:
        return None
    return {p for p in r.stdout.decode().split("\0") if p}


def _walk(repo: Path, top: str) -> list[str]:
    out = []
    for p in sorted((repo / top).rglob("*")):
        rel = p.relative_to(repo)
        if p.is_file() and not SKIP_PARTS & set(rel.parts) and not p.name.endswith(SKIP_SUFFIXES):
            out.append(rel.as_posix())
    return out


def front_matter(card: str) -> dict[str, str]:
    """The top-level ``key: value`` pairs of a card's YAML front matter (enough for sdk/app_port)."""
    m = re.match(r"---\n(.*?)\n---\n", card, re.S)
    if not m:
        raise TreeError("Space.md has no YAML front matter (--- ... ---) at its top")
    out = {}
    for line in m.group(1).splitlines():
        kv = re.match(r"([A-Za-z_][\w-]*):\s*(.*)$", line)
        if kv:
            out[kv.group(1)] = kv.group(2).strip().strip("'\"")
    return out


def untracked(repo: Path = REPO) -> list[str]:
    """Files in the shipped folders that git does not track, so the tree leaves them out."""
    tracked = _tracked(repo)
    if tracked is None:
        return []
    return [rel for top in (*PACKAGES, WHEELS) for rel in _walk(repo, top) if rel not in tracked]


def space_files(repo: Path = REPO) -> dict[str, Path]:
    """``{path in the Space: source file}`` for every file of the Space tree."""
    tracked = _tracked(repo)
    files: dict[str, Path] = {"README.md": repo / "Space.md", "Dockerfile": repo / "deploy" / "Dockerfile"}
    wanted = list(FILES)
    for top in (*PACKAGES, WHEELS):
        wanted += _walk(repo, top)
    for rel in wanted:
        if not rel.endswith(".whl") and rel.startswith(WHEELS):
            continue
        if tracked is not None and rel not in tracked:
            continue  # untracked (outputs, scratch files): never shipped
        files[rel] = repo / rel
    missing = [rel for rel, src in files.items() if not src.is_file()]
    if missing:
        raise TreeError(f"missing from the repository: {', '.join(missing)}")
    if not any(rel.startswith(WHEELS) for rel in files):
        raise TreeError(f"no stand-in wheels in {WHEELS}/ (run python third_party/make_cv2_stubs.py)")
    return files


def space_config(repo: Path = REPO) -> dict[str, str]:
    """The card's front matter, checked against the Dockerfile."""
    meta = front_matter((repo / "Space.md").read_text(encoding="utf-8"))
    if meta.get("sdk") != "docker":
        raise TreeError(f"Space.md front matter says sdk: {meta.get('sdk')!r}; this Space is built with sdk: docker")
    dockerfile = (repo / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    port = meta.get("app_port", "7860")
    if not re.search(rf"^EXPOSE\s+{re.escape(port)}\s*$", dockerfile, re.M):
        raise TreeError(f"Space.md says app_port: {port} but deploy/Dockerfile does not EXPOSE {port}")
    return meta


def build_tree(dest: Path, repo: Path = REPO) -> list[str]:
    """Write the Space tree into ``dest`` (empty or absent); returns the sorted relative paths."""
    dest = Path(dest)
    space_config(repo)
    files = space_files(repo)
    if dest.exists() and any(dest.iterdir()):
        raise TreeError(f"{dest} is not empty: give a new or empty folder")
    for rel, src in files.items():
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out)
    return sorted(files)
