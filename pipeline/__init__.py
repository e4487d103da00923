"""The frame-by-frame pipeline and its typed per-frame result."""
from .core import Pipeline, PipelineConfig, analyze_image
from .frames import InvalidFrame, to_rgb_uint8
from .results import FaceView, FrameResult

__all__ = ["FaceView", "FrameResult", "InvalidFrame", "Pipeline", "PipelineConfig", "analyze_image", "to_rgb_uint8"]
