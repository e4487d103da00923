"""FER2013, whole and canonical: Training (28,709), PublicTest (3,589), PrivateTest (3,589).

Source: the Kaggle image folders of FER2013 as committed in the public GitHub repository
``RecepTahirGunlu/Duygu-Tanima`` (``train/<class>/Training_N.jpg``,
``validation/<class>/PublicTest_N.jpg``, ``test/<class>/PrivateTest_N.jpg``, 48x48 grey JPEGs).
Only names exactly ``^(Training|PublicTest|PrivateTest)_\\d+\\.jpg$`` are taken: that repository
adds augmented copies (``...jpg0.jpg``) to disgust, which are not FER2013.

Licence: FER2013 (Goodfellow et al., "Challenges in Representation Learning", ICML 2013 workshop)
was released for research through the Kaggle challenge; it is not redistributed by this project.
Nothing of it is committed: the images are read at run time from, in order,

* ``$FER2013_GIT`` - a git directory of that repository (bare or not), read with ``git cat-file``;
* ``$FER2013_DIR`` - a checkout / copy of its folders (``train/``, ``validation/``, ``test/``);
* ``/work/.mirror/RecepTahirGunlu+Duygu-Tanima/repo`` - the bare snapshot on the project's machines,

decoded once and cached as ``fer2013.npz`` under the assets cache (``$EMOTION_ASSETS``), with the
source (repository, commit or folder) and the sha256 of the decoded pixels stored beside it
(``fer2013.json``). The per-split counts are checked against the canonical ones when loading.

    from testkit.fer2013 import load_split
    x, y = load_split("PrivateTest")      # x uint8 (N, 48, 48), y int (N,) in FER2013 order
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np

from .assets import CACHE

REPO_NAME = "RecepTahirGunlu/Duygu-Tanima"
MIRROR = Path("/work/.mirror/RecepTahirGunlu+Duygu-Tanima/repo")
LICENCE = ("FER2013 (Goodfellow et al., ICML 2013 'Challenges in Representation Learning' workshop) was "
           "released for research through the Kaggle challenge; read at run time from a public copy of "
           "the Kaggle image folders, never committed or redistributed by this project.")

#: FER2013's label order (its CSV's emotion codes 0..6), as canonical class names.
CLASSES = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
FOLDER_CLASS = {"angry": 0, "disgust": 1, "fear": 2, "happy": 3, "sad": 4, "surprise": 5, "neutral": 6}
SPLITS = {"Training": "train", "PublicTest": "validation", "PrivateTest": "test"}
#: Canonical sizes; PrivateTest per class as FER2013's CSV has it.
COUNTS = {"Training": 28709, "PublicTest": 3589, "PrivateTest": 3589}
PRIVATE_PER_CLASS = (491, 55, 528, 879, 594, 416, 626)
NAME_RE = re.compile(r"^(train|validation|test)/([a-z]+)/(Training|PublicTest|PrivateTest)_(\d+)\.jpg$")
CACHE_VERSION = 1


class DataUnavailable(RuntimeError):
    """FER2013 is not on this machine (no $FER2013_GIT, $FER2013_DIR or the mirror)."""


def cache_path() -> Path:
    return CACHE / "fer2013" / "fer2013.npz"


def find_source() -> tuple[str, Path]:
    """('git', path) or ('dir', path), or DataUnavailable naming what was looked for."""
    if os.environ.get("FER2013_GIT"):
        return "git", Path(os.environ["FER2013_GIT"])
    if os.environ.get("FER2013_DIR"):
        return "dir", Path(os.environ["FER2013_DIR"])
    if MIRROR.is_dir():
        return "git", MIRROR
    raise DataUnavailable(f"FER2013 not found: set FER2013_GIT (a git dir of {REPO_NAME}) or FER2013_DIR "
                          f"(its train/validation/test folders); {MIRROR} does not exist")


def _decode(data: bytes) -> np.ndarray:
    try:
        import cv2

        im = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    except ImportError:  # the training venv has Pillow, not OpenCV
        from PIL import Image

        im = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
    if im is None or im.shape != (48, 48):
        raise ValueError(f"not a 48x48 image: {None if im is None else im.shape}")
    return im


def _entries_git(gitdir: Path) -> tuple[str, list[tuple[str, str]]]:
    git = ["git", "--git-dir", str(gitdir)]
    commit = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    out = subprocess.run(git + ["ls-tree", "-r", "HEAD"], check=True, capture_output=True, text=True).stdout
    entries = []
    for line in out.splitlines():
        meta, path = line.split("\t", 1)
        if NAME_RE.match(path):
            entries.append((path, meta.split()[2]))
    return commit, entries


def _read_git(gitdir: Path, shas: list[str]) -> list[bytes]:
    p = subprocess.run(["git", "--git-dir", str(gitdir), "cat-file", "--batch"], input="\n".join(shas).encode() + b"\n",
                       check=True, capture_output=True)
    buf, pos, blobs = p.stdout, 0, []
    for sha in shas:
        nl = buf.index(b"\n", pos)
        head = buf[pos:nl].split()
        if head[0].decode() != sha or head[1] != b"blob":
            raise ValueError(f"git cat-file: unexpected header {head!r} for {sha}")
        size = int(head[2])
        blobs.append(buf[nl + 1: nl + 1 + size])
        pos = nl + 1 + size + 1
    return blobs


def build_cache(out: Path | None = None) -> Path:
    """Decode every canonical image once into ``fer2013.npz`` (+ ``fer2013.json`` with the source)."""
    out = out or cache_path()
    kind, where = find_source()
    if kind == "git":
        commit, entries = _entries_git(where)
        blobs = _read_git(where, [s for _, s in entries])
        paths = [p for p, _ in entries]
        source = {"repository": REPO_NAME, "commit": commit, "git_dir": str(where)}
    else:
        paths = sorted(str(f.relative_to(where)) for f in where.rglob("*.jpg") if NAME_RE.match(str(f.relative_to(where))))
        blobs = [(where / p).read_bytes() for p in paths]
        source = {"repository": REPO_NAME, "folder": str(where)}
    arrays = {}
    for split, folder in SPLITS.items():
        rows = []
        for p, b in zip(paths, blobs):
            m = NAME_RE.match(p)
            if m.group(1) != folder:
                continue
            if m.group(3) != split:
                raise ValueError(f"{p}: a {m.group(3)} image in the {folder}/ folder")
            if m.group(2) not in FOLDER_CLASS:
                raise ValueError(f"{p}: unknown class folder {m.group(2)!r}")
            rows.append((int(m.group(4)), FOLDER_CLASS[m.group(2)], p, b))
        rows.sort()
        if len(rows) != COUNTS[split]:
            raise ValueError(f"FER2013 {split}: {len(rows)} images at {where}, expected {COUNTS[split]}")
        arrays[f"{split}_x"] = np.stack([_decode(b) for *_, b in rows])
        arrays[f"{split}_y"] = np.array([c for _, c, *_ in rows], np.int8)
        arrays[f"{split}_id"] = np.array([n for n, *_ in rows], np.int64)
    counts = np.bincount(arrays["PrivateTest_y"], minlength=7)
    if tuple(counts) != PRIVATE_PER_CLASS:
        raise ValueError(f"FER2013 PrivateTest per class {tuple(counts)}, expected {PRIVATE_PER_CLASS}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    digest = hashlib.sha256(b"".join(arrays[f"{s}_x"].tobytes() + arrays[f"{s}_y"].tobytes() for s in SPLITS)).hexdigest()
    meta = {"version": CACHE_VERSION, "source": source, "licence": LICENCE, "classes": list(CLASSES),
            "counts": {s: int(len(arrays[f"{s}_y"])) for s in SPLITS}, "pixels_labels_sha256": digest}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    tmp.replace(out)
    return out


def metadata() -> dict:
    """Source, licence, counts and checksum of the cached set (building the cache if needed)."""
    p = cache_path()
    if not p.is_file():
        build_cache(p)
    return json.loads(p.with_suffix(".json").read_text())


_LOADED: dict = {}


def load_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(x uint8 (N, 48, 48), y int64 (N,)) of ``Training``, ``PublicTest`` or ``PrivateTest``, in image-number order."""
    if split not in SPLITS:
        raise KeyError(f"unknown FER2013 split {split!r}; one of {list(SPLITS)}")
    p = cache_path()
    meta = p.with_suffix(".json")
    if not p.is_file() or not meta.is_file() or json.loads(meta.read_text()).get("version") != CACHE_VERSION:
        build_cache(p)
    if p not in _LOADED:
        with np.load(p) as z:
            _LOADED[p] = {k: z[k] for k in z.files}
    d = _LOADED[p]
    x, y = d[f"{split}_x"], d[f"{split}_y"].astype(np.int64)
    if len(y) != COUNTS[split]:
        raise ValueError(f"cached FER2013 {split} has {len(y)} images, expected {COUNTS[split]}: delete {p}")
    return x, y


def available() -> str | None:
    """None when FER2013 can be loaded here, else the reason it cannot."""
    if cache_path().is_file():
        return None
    try:
        kind, where = find_source()
    except DataUnavailable as exc:
        return str(exc)
    if not where.exists():
        return f"FER2013 source {where} ({kind}) does not exist"
    return None
