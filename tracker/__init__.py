"""Face detection (MediaPipe) and tracking (DeepSORT)."""
from .detect import Detections, FaceDetector
from .track import FaceTracker, TrackerConfig

__all__ = ["Detections", "FaceDetector", "FaceTracker", "TrackerConfig"]
