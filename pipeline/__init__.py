"""The frame-by-frame pipeline and its typed per-frame result.

Imports are lazy so that ``tracker`` and ``classifier`` can use
``pipeline.results`` without importing the whole pipeline (no import cycle).
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "Pipeline": "core", "PipelineConfig": "core", "analyze_image": "core",
    "InvalidFrame": "frames", "to_rgb_uint8": "frames",
    "FaceView": "results", "FrameResult": "results",
}
__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(name)
