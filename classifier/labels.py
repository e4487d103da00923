"""One canonical name per emotion class, whatever a model calls it."""
from __future__ import annotations

#: Canonical order used in every output: the six basic emotions, neutral, contempt.
CANONICAL = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")

_ALIASES = {
    "neutral": "neutral", "calm": "neutral",
    "happy": "happiness", "happiness": "happiness", "joy": "happiness",
    "surprise": "surprise", "surprised": "surprise",
    "sad": "sadness", "sadness": "sadness",
    "angry": "anger", "anger": "anger",
    "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "scared": "fear",
    "contempt": "contempt",
}


def canonical(name: str) -> str:
    """Map a model's class name to the canonical one (KeyError if unknown)."""
    key = name.strip().lower()
    if key not in _ALIASES:
        raise KeyError(f"unknown emotion class {name!r}; known: {sorted(set(_ALIASES))}")
    return _ALIASES[key]


def canonical_order(names) -> tuple[str, ...]:
    """The canonical classes present in ``names``, in canonical order."""
    have = {canonical(n) for n in names}
    return tuple(c for c in CANONICAL if c in have)
