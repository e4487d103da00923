"""Build the empty stand-in wheels ``opencv-python`` and ``opencv-contrib-python``.

mediapipe asks for ``opencv-contrib-python`` and deep-sort-realtime for
``opencv-python``; both are GUI builds that need libGL, and pip would install
them into the same ``cv2/`` folder as ``opencv-python-headless``.  These
stand-ins carry no files: they only declare a dependency on the headless build,
so ``pip install -r requirements.txt`` ends with exactly one OpenCV, the
headless one.  Re-run this script to rebuild them (it is deterministic)::

    python third_party/make_cv2_stubs.py
"""
from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from pathlib import Path

HEADLESS = "opencv-python-headless==5.0.0.93"
VERSION = "5.0.0.93"
OUT = Path(__file__).resolve().parent / "wheels"


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build(dist: str) -> Path:
    norm = dist.replace("-", "_")
    info = f"{norm}-{VERSION}.dist-info"
    files = {
        f"{info}/METADATA": (
            "Metadata-Version: 2.1\n"
            f"Name: {dist}\n"
            f"Version: {VERSION}\n"
            f"Summary: Stand-in for {dist}: installs {HEADLESS} instead (no GUI, no libGL).\n"
            f"Requires-Dist: {HEADLESS}\n"
        ).encode(),
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: make_cv2_stubs\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ).encode(),
    }
    record = "\n".join(_record_line(n, d) for n, d in files.items()) + f"\n{info}/RECORD,,\n"
    files[f"{info}/RECORD"] = record.encode()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{norm}-{VERSION}-py3-none-any.whl"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zi = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            zf.writestr(zi, data)
    path.write_bytes(buf.getvalue())
    return path


if __name__ == "__main__":
    for d in ("opencv-python", "opencv-contrib-python"):
        print(build(d))
