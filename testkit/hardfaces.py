"""The hard-face set: real WIDER FACE validation photos, fetched from public repositories and cached.

Nothing here is committed except the selection and the tags (``benchmarks/groundtruth/hardfaces.json``).
Three public GitHub repositories hold what is needed, each read at a pinned commit:

* ``vishalw-iitk/Widerface_Yolov5`` (a YOLOv5 face detector's calibration set): 200 WIDER FACE
  validation images, **squeezed to 416 x 416** (the original width is 1024, the heights vary);
* ``Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB`` (MIT): the WIDER FACE validation boxes,
  ``data/retinaface_labels/val/label.txt`` (x, y, w, h in the 1024-wide originals);
* ``amazon-science/widerface-demographics`` (CC BY-NC 4.0): WIDER FACE's own per-face attributes
  (blur, illumination, occlusion, pose) and a perceived Fitzpatrick skin type, for the validation faces
  it annotated.

Each image is brought back to its original aspect ratio at 640 px wide (a webcam's width): the original
height was found by fitting (``benchmarks/groundtruth/hardfaces.json``, ``orig_h``) and checked by eye
with the boxes drawn.  The photos themselves are WIDER FACE's (Flickr-sourced images from the WIDER
data set, for non-commercial research); they are used only as test data and never committed.

The git repositories are looked for in ``$EMOTION_GIT_MIRRORS`` (default ``/work/.mirror``), as
``owner+name/repo`` (a bare snapshot), ``owner+name`` or ``name`` (a clone); a missing one gives an
error naming the repository and commit to clone.  The cache folder is ``$EMOTION_ASSETS/hardfaces-1``.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .assets import CACHE, REPO

GT_FILE = REPO / "benchmarks" / "groundtruth" / "hardfaces.json"
MIRRORS = Path(os.environ.get("EMOTION_GIT_MIRRORS", "/work/.mirror"))
WIDTH = 640  # the originals are 1024 wide; the set is used at 640 (a webcam's width)
#: Where the eyes are in a WIDER box (hairline to chin), as a share of its height from the top.
EYE_LINE = 0.45
TAGS = ("edge", "glasses", "shadow", "darker_skin", "turned", "occluded", "blur", "tiny")


def _git_dir(repo: str, commit: str) -> Path:
    owner, name = repo.split("/")
    for cand in (MIRRORS / f"{owner}+{name}" / "repo", MIRRORS / f"{owner}+{name}", MIRRORS / name):
        if cand.exists():
            ok = subprocess.run(["git", "-C", str(cand), "cat-file", "-e", f"{commit}^{{commit}}"],
                                capture_output=True).returncode == 0
            if ok:
                return cand
    raise RuntimeError(
        f"the hard-face set needs the public GitHub repository {repo} at commit {commit}: clone it "
        f"into {MIRRORS / (owner + '+' + name)} (or set EMOTION_GIT_MIRRORS to a folder holding it)")


def _git_show(repo: str, commit: str, path: str) -> bytes:
    return subprocess.run(["git", "-C", str(_git_dir(repo, commit)), "show", f"{commit}:{path}"],
                          capture_output=True, check=True).stdout


def available(doc: dict | None = None) -> str | None:
    """None when the set can be had here (cached, or its repositories at hand), else why not."""
    if (CACHE / "hardfaces-1" / ".complete").exists():
        return None
    doc = doc or json.loads(GT_FILE.read_text())
    try:
        for s in doc["sources"].values():
            _git_dir(s["repo"], s["commit"])
    except RuntimeError as exc:
        return str(exc)
    return None

def fetch(doc: dict | None = None) -> Path:
    """The cache folder with the selected images (``images/``), the boxes and the attributes, checked."""
    doc = doc or json.loads(GT_FILE.read_text())
    out = CACHE / "hardfaces-1"
    done = out / ".complete"
    if done.exists():
        return out
    (out / "images").mkdir(parents=True, exist_ok=True)
    src = doc["sources"]
    im = src["images"]
    for p in doc["photos"]:
        data = _git_show(im["repo"], im["commit"], im["folder"] + p["file"])
        got = hashlib.sha256(data).hexdigest()
        if got != p["sha256"]:
            raise RuntimeError(f"{p['file']} from {im['repo']} has sha256 {got}, expected {p['sha256']}")
        (out / "images" / p["file"]).write_bytes(data)
    for key in ("boxes", "attributes"):
        s = src[key]
        data = _git_show(s["repo"], s["commit"], s["path"])
        if hashlib.sha256(data).hexdigest() != s["sha256"]:
            raise RuntimeError(f"{s['path']} from {s['repo']} is not the expected file (sha256)")
        (out / Path(s["path"]).name).write_bytes(data)
    done.write_text("ok\n")
    return out


def wider_boxes(label_txt: str) -> dict[str, np.ndarray]:
    """WIDER FACE boxes by image file name, (N, 4) x, y, w, h in the 1024-wide originals."""
    out, cur = {}, None
    for line in label_txt.splitlines():
        line = line.strip()
        if line.startswith("#"):
            cur = line[1:].strip().split("/")[-1]
            out[cur] = []
        elif line and cur:
            out[cur].append([float(v) for v in line.split()[:4]])
    return {k: np.asarray(v, np.float32).reshape(-1, 4) for k, v in out.items()}


def wider_attributes(csv_text: str) -> dict[tuple, dict]:
    """WIDER FACE attributes by (file name, x, y, w, h) for the faces the demographics set annotated."""
    out = {}
    for r in csv.DictReader(io.StringIO(csv_text)):
        key = (r["file"].split("/")[-1], int(r["x_min"]), int(r["y_min"]), int(r["width"]), int(r["height"]))
        out[key] = {k: r[k] for k in ("blur", "illumination", "occlusion", "pose", "perceived_skin")}
    return out


@dataclass
class Case:
    name: str
    rgb: np.ndarray
    boxes: np.ndarray  # (N, 4) x1, y1, x2, y2 in the case's pixels
    tags: list = field(default_factory=list)  # per face: list of tags
    ignore: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))


def photo(doc: dict, p: dict, folder: Path, boxes: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rgb at WIDTH, all WIDER boxes x1y1x2y2 at that scale, scale)."""
    import cv2

    from .assets import read_rgb

    rgb = read_rgb(folder / "images" / p["file"])
    s = WIDTH / 1024.0
    h = round(p["orig_h"] * s)
    rgb = cv2.resize(rgb, (WIDTH, h), interpolation=cv2.INTER_CUBIC)
    b = boxes[p["file"]].copy()
    b[:, 2:] += b[:, :2]
    return rgb, b * s, s


def cases(doc: dict | None = None) -> list[Case]:
    """Every photo and every edge frame of the set, with boxes, tags and ignore regions."""
    doc = doc or json.loads(GT_FILE.read_text())
    folder = fetch(doc)
    boxes = wider_boxes((folder / Path(doc["sources"]["boxes"]["path"]).name).read_text())
    out = []
    by_file = {}
    for p in doc["photos"]:
        rgb, allb, _ = photo(doc, p, folder, boxes)
        kept = {f["i"]: f for f in p["faces"]}
        gt = np.asarray([allb[i] for i in kept], np.float32).reshape(-1, 4)
        ign = np.asarray([b for i, b in enumerate(allb) if i not in kept], np.float32).reshape(-1, 4)
        ign = np.concatenate([ign, np.asarray(p.get("ignore_extra", []), np.float32).reshape(-1, 4)])
        tags = [list(f["tags"]) for f in kept.values()]
        out.append(Case(p["name"], rgb, gt, tags, ign))
        by_file[p["name"]] = (rgb, gt, tags, ign)
    for fr in doc.get("frames", []):
        rgb, gt, tags, ign = by_file[fr["from"]]
        x0, y0, x1, y1 = fr["crop"]
        crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        off = np.array([x0, y0, x0, y0], np.float32)
        g2, t2, i2 = [], [], [ign - off]
        for b, t in zip(gt, tags):
            c = np.clip(b - off, [0, 0, 0, 0], [x1 - x0, y1 - y0, x1 - x0, y1 - y0])
            vis = max(c[2] - c[0], 0) * max(c[3] - c[1], 0) / max((b[2] - b[0]) * (b[3] - b[1]), 1e-9)
            eyes = b[1] + EYE_LINE * (b[3] - b[1]) - off[1]  # a face counts only with its eyes in the frame
            if vis >= fr.get("min_visible", 0.4) and 0 <= eyes < y1 - y0:
                g2.append(c)
                t2.append(sorted(set(t) | ({"edge"} if vis < 0.97 else set())))
            elif vis > 0:
                i2.append(c[None])
        out.append(Case(fr["name"], crop, np.asarray(g2, np.float32).reshape(-1, 4), t2,
                        np.concatenate(i2).astype(np.float32).reshape(-1, 4)))
    return out
