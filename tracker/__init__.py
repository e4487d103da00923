"""Face detection (MediaPipe), appearance embeddings and tracking (DeepSORT).

Plain array interfaces, no knowledge of the pipeline's result type::

    det = FaceDetector(DetectionConfig(detector="full"))
    found = det.detect(rgb)                                   # Detections: boxes, scores, keypoints
    emb = embed(rgb, found.boxes, "colorhist")                # (N, D) appearance vectors
    upd = FaceTracker().update(found.boxes, found.scores, emb, t)   # TrackUpdate: ids per box, ended
"""
from .autodetect import AutoDetector
from .detect import DetectionConfig, Detections, FaceDetector, make_detector
from .embed import EMBEDDERS, embed
from .track import FaceTracker, TrackerConfig, TrackUpdate

__all__ = ["EMBEDDERS", "AutoDetector", "DetectionConfig", "Detections", "FaceDetector", "FaceTracker", "TrackUpdate",
           "TrackerConfig", "embed", "make_detector"]
