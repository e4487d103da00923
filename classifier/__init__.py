"""Emotion classification (ONNX models, Hub loading) and temporal smoothing."""
from .hub import ModelUnavailable, load_classifier, resolve
from .labels import CANONICAL, canonical
from .onnx_model import EmotionClassifier, ModelError
from .smoothing import ProbabilitySmoother, SmoothingConfig
from .spec import DEFAULT_MODEL, ClassifierConfig, ModelSpec, builtin_specs, get_spec

__all__ = [
    "CANONICAL", "DEFAULT_MODEL", "ClassifierConfig", "EmotionClassifier", "ModelError", "ModelSpec", "ModelUnavailable",
    "ProbabilitySmoother", "SmoothingConfig", "builtin_specs", "canonical", "get_spec", "load_classifier", "resolve",
]
