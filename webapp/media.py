"""Image and video uploads: the Image/Video tabs and the ``/analyze_image`` and
``/analyze_video`` API endpoints.

Everything a user can get wrong (a PDF renamed .jpg, a truncated video, a huge
image) ends as :class:`UserInputError` with a message meant for people; the app
turns it into ``gr.Error``.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from pipeline import InvalidFrame, PipelineConfig, analyze_image
from pipeline.annotate import draw

log = logging.getLogger(__name__)

IMAGE_MAX_PIXELS = 50_000_000  # 50 MP: anything bigger is refused before decoding


class UserInputError(ValueError):
    """Bad input from the user; the message says what is wrong."""


def _path_of(file) -> Path:
    if file is None:
        raise UserInputError("No file was given. Upload an image (JPEG, PNG, WebP, BMP, TIFF).")
    if isinstance(file, dict):  # FileData-like
        file = file.get("path") or file.get("name")
    p = Path(str(getattr(file, "name", file)))
    if not p.is_file():
        raise UserInputError(f"The uploaded file could not be found on the server: {p.name}")
    return p


def read_image(file) -> np.ndarray:
    """An uploaded image file as RGB uint8, or :class:`UserInputError`."""
    p = _path_of(file)
    data = np.fromfile(str(p), dtype=np.uint8)
    if data.size == 0:
        raise UserInputError(f"{p.name} is empty (0 bytes).")
    img = None
    try:
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:
        img = None
    if img is None:
        try:  # formats OpenCV lacks (GIF, some TIFFs): try Pillow
            from PIL import Image

            with Image.open(p) as im:
                if im.width * im.height > IMAGE_MAX_PIXELS:
                    raise UserInputError(f"{p.name} is too large ({im.width}x{im.height}); the limit is 50 megapixels.")
                return np.asarray(im.convert("RGB"))
        except UserInputError:
            raise
        except Exception:
            raise UserInputError(
                f"{p.name} is not an image that can be read (supported: JPEG, PNG, WebP, BMP, TIFF, GIF)."
            ) from None
    if img.shape[0] * img.shape[1] > IMAGE_MAX_PIXELS:
        raise UserInputError(f"{p.name} is too large ({img.shape[1]}x{img.shape[0]}); the limit is 50 megapixels.")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


_IMAGE_LOCK = threading.Semaphore(2)  # at most two images at once (2 cores)
_POOL_LOCK = threading.Lock()
_DETECTORS: dict[tuple, list] = {}  # idle detectors by settings (loading one costs ~200 ms)


def _take_detector(cfg: PipelineConfig):
    from tracker.detect import FaceDetector

    key = (cfg.detector, cfg.min_score, cfg.min_face, cfg.tiles)
    with _POOL_LOCK:
        idle = _DETECTORS.get(key)
        if idle:
            return key, idle.pop()
    return key, FaceDetector(cfg.detector, min_score=cfg.min_score, min_face=cfg.min_face, tiles=cfg.tiles)


def _give_back(key, det) -> None:
    with _POOL_LOCK:
        idle = _DETECTORS.setdefault(key, [])
        if len(idle) < 2:
            idle.append(det)
            return
    det.close()


def analyze_rgb(rgb: np.ndarray, model: str | None = None, min_score: float | None = None) -> tuple[np.ndarray, dict]:
    """Annotated image and the ``FrameResult.to_dict()`` JSON for one RGB image."""
    cfg = PipelineConfig(detector="full", tiles="auto")
    changes = {}
    if model:
        changes["model"] = model
    if min_score is not None:
        changes["min_score"] = float(min_score)
    if changes:
        from dataclasses import replace

        cfg = replace(cfg, **changes)
    try:
        with _IMAGE_LOCK:
            key, det = _take_detector(cfg)
            try:
                res = analyze_image(rgb, cfg, detector=det)
            finally:
                _give_back(key, det)
    except InvalidFrame as exc:
        raise UserInputError(f"Not a usable image: {exc}") from None
    except KeyError as exc:  # unknown model name
        raise UserInputError(str(exc).strip("'\"")) from None
    return draw(rgb, res, bars=True), res.to_dict()


def analyze_image_file(file, model: str | None = None) -> tuple[np.ndarray, dict]:
    return analyze_rgb(read_image(file), model)


# -- video -------------------------------------------------------------------
def _export_video():
    try:
        from export import video
    except Exception as exc:  # pragma: no cover - depends on the checkout
        raise UserInputError(f"Video processing is not available in this installation ({exc}).") from None
    return video


def process_video_file(file, out_root: Path, frame_step: int = 1, model: str | None = None,
                       detector: str | None = None, max_seconds: float | None = None,
                       progress: Callable[[int, int], None] | None = None):
    """Run :func:`export.video.process_video` on an upload; returns its ``VideoResult``."""
    video = _export_video()
    if file is None:
        raise UserInputError("No video was given. Upload a video file (MP4, MOV, WebM, AVI, MKV).")
    p = _path_of(file)
    if p.stat().st_size == 0:
        raise UserInputError(f"{p.name} is empty (0 bytes).")
    try:
        step = int(frame_step)
    except (TypeError, ValueError):
        raise UserInputError(f"frame step must be a whole number, not {frame_step!r}") from None
    if step < 1:
        raise UserInputError("frame step must be 1 or more")
    changes = {}
    if model:
        changes["model"] = model
    if detector in ("short", "full"):
        changes["detector"] = detector
    cfg = PipelineConfig(**changes) if changes else None
    out_dir = Path(out_root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return video.process_video(str(p), str(out_dir), config=cfg, frame_step=step, progress=progress,
                                   max_seconds=max_seconds, stem=p.stem[:60] or "video")
    except video.VideoError as exc:
        raise UserInputError(str(exc)) from None
    except KeyError as exc:
        raise UserInputError(str(exc).strip("'\"")) from None
    except InvalidFrame as exc:
        raise UserInputError(f"The video has frames that cannot be used: {exc}") from None


def cleanup_outputs(root: Path, max_age_s: float) -> int:
    """Delete processed-upload folders older than ``max_age_s``; returns how many."""
    import shutil

    root = Path(root)
    if not root.is_dir():
        return 0
    n = 0
    cutoff = time.time() - max_age_s
    for d in root.iterdir():
        try:
            if d.is_dir() and d.stat().st_mtime < cutoff:
                shutil.rmtree(d, ignore_errors=True)
                n += 1
        except OSError:
            pass
    return n
