"""Face detection (MediaPipe's BlazeFace models), appearance embeddings and tracking (DeepSORT).

Plain array interfaces, no knowledge of the pipeline's result type::

    det = make_detector(DetectionConfig())                    # a Detector: the "auto" back end by default
    found = det.detect(rgb)                                   # Detections: boxes, scores, keypoints
    emb = embed(rgb, found.boxes, "colorhist")                # (N, D) appearance vectors
    upd = FaceTracker().update(found.boxes, found.scores, emb, t)   # TrackUpdate: ids per box, ended

Layout: ``base`` (settings, result, the ``Detector`` protocol), ``geometry`` (IoU, NMS, clipping,
crops, tiles), one module per back end (``detect``: BlazeFace; ``autodetect``: BlazeFace at every
distance), ``factory`` (name -> back end), ``track``, ``embed``, ``landmarks``, ``facegeom``.
"""
from .autodetect import AutoDetector
from .base import DetectionConfig, Detections, Detector
from .detect import FaceDetector
from .embed import EMBEDDERS, embed
from .factory import make_detector
from .track import FaceTracker, TrackerConfig, TrackUpdate

__all__ = ["EMBEDDERS", "AutoDetector", "DetectionConfig", "Detections", "Detector", "FaceDetector", "FaceTracker",
           "TrackUpdate", "TrackerConfig", "embed", "make_detector"]
