"""The one place that turns ``DetectionConfig.detector`` into a detector back end.

Each name of :data:`tracker.base.DETECTORS` maps to a builder here; a model path (``.tflite``)
goes to the BlazeFace back end.  A new back end is a module that implements
:class:`tracker.base.Detector` and one line in :data:`BUILDERS` (and its name in
``tracker.base.DETECTORS``, which the config's validation reads).
"""
from __future__ import annotations

from typing import Callable

from .autodetect import AutoDetector
from .base import DETECTORS, DetectionConfig, Detector
from .detect import FaceDetector

#: name -> builder(config, threads=..., engine=...)
BUILDERS: dict[str, Callable[..., Detector]] = {
    "auto": AutoDetector,
    "short": FaceDetector,
    "full": FaceDetector,
}
assert set(BUILDERS) == set(DETECTORS), "every detector name needs a builder"


def make_detector(config: DetectionConfig | None = None, *, threads: int = 2, engine: str = "litert") -> Detector:
    """The detector ``config`` asks for (a fresh one: the automatic detector keeps per-stream state).

    ``threads``: model threads (one per core by default); ``engine``: ``"litert"`` or ``"mediapipe"``
    for the BlazeFace models (see :class:`tracker.detect.FaceDetector`).
    """
    config = config or DetectionConfig()
    build = BUILDERS.get(config.detector, FaceDetector)  # else a model path (validated by the config)
    return build(config, threads=threads, engine=engine)
