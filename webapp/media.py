"""Image and video uploads: the Image/Video tabs and the ``/analyze_image`` and
``/analyze_video`` API endpoints.

Each upload runs a named preset (``pipeline.config.preset``, the default one
unless the user chose another), with the chosen model on top (:func:`config_for`).

Everything a user can get wrong (a PDF renamed .jpg, a truncated video, a huge
image) ends as :class:`UserInputError` with a message meant for people; the app
turns it into ``gr.Error``.

:class:`Media` is one server's analysis service: its settings (limits, offered models), its disk
guard, its pool of ready face detectors and its image slots; the checks that need none of these
(:func:`image_size`, :func:`read_image`, :func:`safe_name`) are plain functions.
"""
from __future__ import annotations

import logging
import re
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from classifier.hub import ClassifierCache
from export.video import VideoError, VideoResult, process_video
from pipeline import ConfigError, InvalidFrame, PipelineConfig, analyze_image, preset
from pipeline.annotate import draw
from pipeline.messages import message
from tracker.base import DetectionConfig
from tracker.facemesh import FaceMeshCache
from tracker.factory import make_detector

from .guards.disk import DiskFull, DiskGuard
from .guards.imagecheck import jpeg_shortfall
from .settings import Settings

log = logging.getLogger(__name__)

#: Images with more pixels than this are refused from their header, before decoding (the default of
#: ``Settings.image_max_pixels``; a 50 MP RGB image needs 150 MB decoded).
IMAGE_MAX_PIXELS = Settings.image_max_pixels
SUPPORTED_IMAGES = "JPEG, PNG, WebP, BMP, TIFF, GIF"


class UserInputError(ValueError):
    """Bad input from the user; the message says what is wrong."""


def _path_of(file, disk: DiskGuard | None = None) -> Path:
    if file is None:
        raise UserInputError(f"No file was given. Upload an image ({SUPPORTED_IMAGES}).")
    if isinstance(file, dict):  # FileData-like
        file = file.get("path") or file.get("name")
    p = Path(str(getattr(file, "name", file)))
    if not p.is_file():
        raise UserInputError(f"The uploaded file could not be found on the server: {p.name} (uploads that are "
                             "not analysed within a few minutes are removed): please upload it again.")
    if disk is not None:
        disk.claim(p)  # an analysis uses it: not an unclaimed upload
        try:
            disk.check_free()
        except DiskFull as exc:
            raise UserInputError(str(exc)) from None
    return p


def _looks_like_video(head: bytes) -> bool:
    return (head[4:8] == b"ftyp" or head[:4] == b"\x1aE\xdf\xa3"  # MP4/MOV, Matroska/WebM
            or (head[:4] == b"RIFF" and head[8:12] == b"AVI "))


def _mp(n: int) -> str:
    return f"{n / 1e6:.0f} megapixels" if n >= 1e6 else f"{n:,} pixels"


def image_size(p: Path, max_pixels: int | None = None) -> tuple[int, int]:
    """(width, height) from the file's header only, or :class:`UserInputError`.

    Nothing is decoded here, so a decompression bomb (a tiny PNG that expands
    to gigabytes) is refused before it costs memory.
    """
    from PIL import Image, UnidentifiedImageError

    limit = max_pixels or IMAGE_MAX_PIXELS
    with open(p, "rb") as fh:
        head = fh.read(16)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                w, h = im.size
    except Image.DecompressionBombError as exc:  # Pillow's own guard (over 2x Image.MAX_IMAGE_PIXELS)
        m = re.search(r"\((\d+) pixels\)", str(exc))
        size = _mp(int(m.group(1))) if m else f"over {_mp(limit)}"
        raise UserInputError(f"{p.name} is too large ({size}); the limit is {_mp(limit)}.") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        if _looks_like_video(head):
            raise UserInputError(f"{p.name} is a video, not an image: use the Video tab or /analyze_video.") from None
        raise UserInputError(f"{p.name} is not an image that can be read (supported: {SUPPORTED_IMAGES}).") from None
    if w <= 0 or h <= 0:
        raise UserInputError(f"{p.name} has no pixels ({w}x{h}).")
    if w * h > limit:
        raise UserInputError(f"{p.name} is too large ({w}x{h} = {_mp(w * h)}); the limit is {_mp(limit)} "
                             "(IMAGE_MAX_PIXELS). Scale it down and upload it again.")
    return w, h


def read_image(file, max_pixels: int | None = None, disk: DiskGuard | None = None) -> np.ndarray:
    """An uploaded image file as RGB uint8, or :class:`UserInputError`.

    The size is checked from the header first (:func:`image_size`); grey,
    RGBA and 16-bit images come out as 8-bit RGB; the extension is ignored
    (a PNG named .jpg is read as the PNG it is).
    """
    p = _path_of(file, disk)
    if p.stat().st_size == 0:
        raise UserInputError(message("empty", name=p.name))
    w, h = image_size(p, max_pixels)
    raw = p.read_bytes()
    short = jpeg_shortfall(raw)
    if short is not None:
        sw, sh, got, need = short
        raise UserInputError(f"{p.name} is truncated or corrupt: its header says {sw}x{sh} pixels but it holds "
                             f"{got:,} bytes of image data, less than the {need:,} that size needs; "
                             "upload the complete file.")
    data = np.frombuffer(raw, dtype=np.uint8)
    img = None
    try:
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)  # EXIF orientation applied; 16-bit scaled to 8
    except cv2.error:
        img = None
    if img is not None and img.shape[0] * img.shape[1] <= (max_pixels or IMAGE_MAX_PIXELS):
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    try:  # formats OpenCV lacks (GIF, some TIFFs), and truncated files: try Pillow
        from PIL import Image

        with Image.open(p) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as exc:
        raise UserInputError(f"{p.name} is truncated or corrupt ({exc}); upload the complete file.") from None
    except Exception:
        raise UserInputError(f"{p.name} is not an image that can be read (supported: {SUPPORTED_IMAGES}).") from None


def client_model(name: str, offered: dict) -> str:
    """What the pipeline is given for a model a client names: an ``offered`` model's id only.

    A client never names a file: a path is refused like any unknown name, with the same words
    whether or not it exists on the server.
    """
    if name not in offered:
        raise UserInputError(message("unknown_model", name=str(name)[:60], choices=list(offered)))
    return offered[name][1]


def config_for(preset_name: str | None = None, model: str | None = None, offered: dict | None = None,
               **changes) -> PipelineConfig:
    """The config of an upload: preset ``preset_name`` (None or "": the default preset), with the
    model (one of ``offered``, default: the built-in models) and other field changes on top; a
    :class:`UserInputError` names a bad preset or value."""
    if model:
        changes["model"] = client_model(model, Settings().offered_models() if offered is None else offered)
    try:
        return preset(preset_name or None, **changes)
    except ConfigError as exc:
        raise UserInputError(str(exc)) from None


# -- video -------------------------------------------------------------------
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_name(name: str, default: str = "video", limit: int = 60) -> str:
    """A user's file name reduced to ``[A-Za-z0-9_-]`` (no dots, slashes or spaces), for output names."""
    s = _UNSAFE.sub("_", Path(str(name)).name).strip("_")[:limit]
    return s or default


def _rmdir_quiet(d: Path) -> None:
    import shutil

    shutil.rmtree(d, ignore_errors=True)


class Media:
    """One server's image and video analyses (the Image and Video tabs and the API endpoints)."""

    def __init__(self, settings: Settings | None = None, disk: DiskGuard | None = None,
                 output_dir: Path | None = None, models: ClassifierCache | None = None,
                 meshes: FaceMeshCache | None = None):
        self.settings = s = settings or Settings()
        self.models = models  # the server's loaded classifiers (None: the process's default cache)
        self.meshes = meshes  # the server's face-mesh models (None: the process's default)
        self.disk = disk  # None: no upload claims, no free-space check (a library use)
        self.output_dir = Path(output_dir or s.output_dir)
        self.offered = s.offered_models()
        self._image_slots = threading.Semaphore(max(1, s.image_concurrency))  # images analysed at once
        self._pool_lock = threading.Lock()
        self._detectors: dict[DetectionConfig, list] = {}  # idle detectors by settings (~200 ms to load one)

    # -- detectors, pooled ---------------------------------------------------------------------
    def _take_detector(self, cfg: DetectionConfig):
        with self._pool_lock:
            idle = self._detectors.get(cfg)
            if idle:
                return idle.pop()
        return make_detector(cfg)

    def _give_back(self, cfg: DetectionConfig, det) -> None:
        with self._pool_lock:
            idle = self._detectors.setdefault(cfg, [])
            if len(idle) < 2:
                idle.append(det)
                return
        det.close()

    def close(self) -> None:
        with self._pool_lock:
            dets = [d for idle in self._detectors.values() for d in idle]
            self._detectors.clear()
        for d in dets:
            d.close()

    # -- images ----------------------------------------------------------------------------------
    def config_for(self, preset_name: str | None = None, model: str | None = None, **changes) -> PipelineConfig:
        return config_for(preset_name, model, self.offered, **changes)

    def analyze_rgb(self, rgb: np.ndarray, model: str | None = None, preset_name: str | None = None,
                    annotate: bool = True) -> tuple[np.ndarray | None, dict]:
        """Annotated image (None if not ``annotate``) and the ``FrameResult.to_dict()`` JSON for one RGB image."""
        cfg = self.config_for(preset_name, model)
        try:
            with self._image_slots:
                det = self._take_detector(cfg.detection)
                try:
                    res = analyze_image(rgb, cfg, detector=det, models=self.models, meshes=self.meshes)
                finally:
                    self._give_back(cfg.detection, det)
        except InvalidFrame as exc:
            raise UserInputError(f"Not a usable image: {exc}") from None
        except KeyError as exc:  # unknown model name
            raise UserInputError(str(exc).strip("'\"")) from None
        return (draw(rgb, res, bars=True) if annotate else None), res.to_dict()

    def analyze_image_file(self, file, model: str | None = None, preset_name: str | None = None,
                           annotate: bool = True) -> tuple[np.ndarray | None, dict]:
        rgb = read_image(file, self.settings.image_max_pixels, self.disk)
        return self.analyze_rgb(rgb, model, preset_name, annotate=annotate)

    # -- videos ----------------------------------------------------------------------------------
    def process_video_file(self, file, out_root: Path | None = None, frame_step: int = 1, model: str | None = None,
                           preset_name: str | None = None, max_seconds=...,
                           progress: Callable[[int, int], None] | None = None,
                           max_pixels=..., max_frames=..., max_process_s=..., blendshapes: bool = False) -> VideoResult:
        """Run :func:`export.video.process_video` on an upload with preset ``preset_name`` (None: the default).

        ``out_root`` defaults to the server's output folder; the limits ``max_seconds``, ``max_pixels``,
        ``max_frames`` and ``max_process_s`` (``...``: the server's settings ``video_max_seconds``,
        ``video_max_pixels``, ``video_max_frames``, ``video_max_process_s``; None: no limit);
        ``blendshapes``: every blendshape score in the timeline (:func:`~export.video.process_video`).  A
        limit hit while decoding (the frame cap, the time budget, a frame that
        grows past the size limit) returns the part done, with a warning in
        ``VideoResult.warnings``; a header over a limit is a :class:`UserInputError`.

        Outputs go to a new folder ``out_root/<time>-<random>/`` named by us; the
        user's file name only contributes a sanitized stem (:func:`safe_name`).
        """
        if file is None:
            raise UserInputError("No video was given. Upload a video file (MP4, MOV, WebM, AVI, MKV).")
        s = self.settings
        max_seconds = s.video_max_seconds if max_seconds is ... else max_seconds
        max_pixels = s.video_max_pixels if max_pixels is ... else max_pixels
        max_frames = s.video_max_frames if max_frames is ... else max_frames
        max_process_s = s.video_max_process_s if max_process_s is ... else max_process_s
        p = _path_of(file, self.disk)
        if p.stat().st_size == 0:
            raise UserInputError(message("empty", name=p.name))
        try:
            step = int(frame_step)
        except (TypeError, ValueError):
            raise UserInputError(f"frame step must be a whole number, not {frame_step!r}") from None
        if step < 1:
            raise UserInputError("frame step must be 1 or more")
        if blendshapes not in (True, False, None):  # a plain HTTP caller may send anything
            raise UserInputError(f"blendshapes must be true or false, not {blendshapes!r}")
        cfg = self.config_for(preset_name, model)
        out_dir = Path(out_root or self.output_dir) / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            try:
                return process_video(str(p), str(out_dir), config=cfg, frame_step=step, progress=progress,
                                     models=self.models, meshes=self.meshes, max_seconds=max_seconds,
                                     max_pixels=max_pixels, max_frames=max_frames, max_process_s=max_process_s,
                                     stem=safe_name(p.stem), blendshapes=bool(blendshapes))
            except BaseException:
                _rmdir_quiet(out_dir)  # nothing half-written stays behind
                raise
        except VideoError as exc:
            raise UserInputError(str(exc)) from None
        except KeyError as exc:
            raise UserInputError(str(exc).strip("'\"")) from None
        except InvalidFrame as exc:
            raise UserInputError(f"The video has frames that cannot be used: {exc}") from None
