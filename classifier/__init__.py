"""Emotion classification (ONNX models, Hub loading) and temporal smoothing."""
from .hub import ModelUnavailable, load_classifier, resolve
from .labels import CANONICAL, canonical
from .onnx_model import EmotionClassifier, ModelError
from .smoothing import ProbabilitySmoother
from .spec import DEFAULT_MODEL, ModelSpec, builtin_specs, get_spec

__all__ = [
    "CANONICAL", "DEFAULT_MODEL", "EmotionClassifier", "ModelError", "ModelSpec", "ModelUnavailable",
    "ProbabilitySmoother", "builtin_specs", "canonical", "get_spec", "load_classifier", "resolve",
]
