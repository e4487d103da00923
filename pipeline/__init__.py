"""The frame-by-frame pipeline, its configuration and presets, and its typed per-frame result.

    from pipeline import Pipeline, analyze_image

    with Pipeline() as p:                        # the default preset; Pipeline("steady") for near faces
        result = p.process(frame_rgb, t_seconds)   # FrameResult: boxes, track_ids, probabilities...
        for face in result:
            print(face.track_id, face.label, face.smoothed)
            print(face.measures["eye_open_r"], face.measures["blinks"], face.measures["attentive"])
    photo = analyze_image(image_rgb)             # stills: every face numbered 1..N
"""
from .config import DEFAULT_PRESET, PRESETS, ConfigError, PipelineConfig, preset
from .core import Pipeline, analyze_image
from .frames import InvalidFrame, to_rgb_uint8
from .results import FaceView, FrameResult, prob_columns

__all__ = ["DEFAULT_PRESET", "PRESETS", "ConfigError", "FaceView", "FrameResult", "InvalidFrame", "Pipeline",
           "PipelineConfig", "analyze_image", "preset", "prob_columns", "to_rgb_uint8"]
