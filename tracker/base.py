"""What every face detector back end is: its settings, its result, and its protocol.

A back end is any object with ``detect(rgb, hints=None, scan_all=False) -> Detections`` and
``close()`` (:class:`Detector`).  ``tracker.factory.make_detector(config)`` builds the one
``config.detector`` names; back ends register there, nowhere else.

``hints`` and ``scan_all`` are advice every back end may use or not: ``hints`` are the boxes of
the faces the caller followed in the previous frame (a stream), ``scan_all`` says the frame is a
still (spend more: there is no next frame to find a face in).  A stateless back end (one model
pass over the frame) ignores both, and is right to.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from common.checks import choice, number, validate, whole

#: Detector names ``DetectionConfig.detector`` accepts (besides a model file path); tracker.factory
#: builds each (its module doc says what each is).
DETECTORS = ("auto", "blazeface", "short", "full", "yunet", "yunet320", "hybrid", "auto+yunet", "auto+short",
             "centerface", "yunet+centerface")
#: Model file suffixes ``DetectionConfig.detector`` accepts as a path (a BlazeFace .tflite).
MODEL_SUFFIXES = (".tflite",)


def _tiles(v):
    if v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 8):
        return None
    return "'auto' or a whole number from 0 (off) to 8"


@dataclass(frozen=True)
class DetectionConfig:
    """Face detection settings; every value is checked when the config is made (:data:`RULES`)."""

    # "auto": faces at every distance, BlazeFace's in streams (tracker.autodetect), on stills YuNet's whole-frame
    # pass with BlazeFace's close-ups (tracker.hybrid); experts: "short" (faces near a webcam), "full" (farther
    # faces) or a BlazeFace .tflite path, with ``tiles``; the other candidates of DETECTORS (tracker.factory).
    detector: str = "auto"
    tiles: int | str = "auto"  # short/full only: 0 off, N for an N x N grid, "auto": tiles for frames >= auto_tile_px
    min_score: float = 0.5  # detection threshold (0-1)
    min_face: int = 20  # faces smaller than this many pixels are dropped
    max_side: int = 1920  # the whole-frame pass sees the frame downscaled to this long side (pixels)
    auto_tile_px: int = 1000  # tiles="auto" tiles frames whose long side is at least this (pixels)
    # streams (pipeline.Pipeline): the detector runs on every N-th frame; the frames in between keep the
    # last detected boxes and track IDs, and their faces are classified (and measured) on their own pixels.
    # 1: every frame (files, images); the Live tab uses LIVE_DETECT_EVERY (2: measured, docs "Live capacity").
    detect_every: int = 1

    def __post_init__(self):
        validate(self, "detection", RULES)


RULES = {
    "detector": choice(*DETECTORS, suffixes=MODEL_SUFFIXES),
    "tiles": _tiles,
    "min_score": number(0.05, 0.99),
    "min_face": whole(2, 4096),
    "max_side": whole(128, 8192),
    "auto_tile_px": whole(256, 16384),
    "detect_every": whole(1, 10),
}


@dataclass(frozen=True)
class Detections:
    """The faces of one frame, as parallel arrays."""

    boxes: np.ndarray  # (N, 4) float32 x1, y1, x2, y2 in frame pixels
    scores: np.ndarray  # (N,) float32
    keypoints: np.ndarray  # (N, 6, 2) float32 pixels: r-eye, l-eye, nose, mouth, r-ear, l-ear (NaN: none)

    def __post_init__(self):
        n = len(self.boxes)
        if self.boxes.shape != (n, 4) or self.scores.shape != (n,) or self.keypoints.shape != (n, 6, 2):
            raise ValueError(f"Detections: boxes {self.boxes.shape}, scores {self.scores.shape} and keypoints "
                             f"{self.keypoints.shape} must describe the same faces ((N, 4), (N,), (N, 6, 2))")

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @staticmethod
    def empty() -> "Detections":
        return Detections(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 6, 2), np.float32))


@runtime_checkable
class Detector(Protocol):
    """A face detector back end (see the module doc)."""

    config: DetectionConfig

    def detect(self, rgb: np.ndarray, hints: np.ndarray | None = None, scan_all: bool = False) -> Detections:
        """Faces in an RGB uint8 frame."""

    def close(self) -> None:
        """Free the model; the detector is not used afterwards."""
