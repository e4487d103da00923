"""One configuration for the whole pipeline, its validation, and the named presets.

A :class:`PipelineConfig` has one section per stage; each section is the
stage's own dataclass, so every default is written once, next to the code
that uses it:

* ``detection``: :class:`tracker.base.DetectionConfig`
* ``tracking``: :class:`tracker.track.TrackerConfig`
* ``classification``: :class:`classifier.spec.ClassifierConfig`
* ``smoothing``: :class:`classifier.smoothing.SmoothingConfig`
* ``landmarks``: :class:`tracker.landmarks.LandmarkConfig` (eyes, blinks,
  drowsiness, yawns, head pose and attention per face; ``face_states=False``
  for emotions only)

Every section checks its own values when it is made (``DetectionConfig(min_score=5)``
fails at once, wherever it is built); an error names the field and its allowed values.  Times are in seconds everywhere.

Presets are configs, nothing else; every entry point (library, Live, Image,
Video, ``/analyze_image``, ``/analyze_video``, ``python -m export``) takes a
preset name and uses :data:`DEFAULT_PRESET` when none is given::

    cfg = preset("steady")                       # a PipelineConfig
    cfg = preset("standard", half_life_s=0.3)    # with changes, by field name
    cfg.detection.detector, cfg.smoothing.half_life_s
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

from classifier.smoothing import SmoothingConfig
from classifier.spec import ClassifierConfig
from common.checks import ConfigError
from tracker.base import DetectionConfig
from tracker.landmarks import LandmarkConfig
from tracker.track import TrackerConfig

from .messages import message

SECTIONS = {
    "detection": DetectionConfig,
    "tracking": TrackerConfig,
    "classification": ClassifierConfig,
    "smoothing": SmoothingConfig,
    "landmarks": LandmarkConfig,
}


#: Field name -> section, for changes given by plain field name (``min_score=0.6``).
FIELD_SECTION = {f.name: sec for sec, cls in SECTIONS.items() for f in fields(cls)}


@dataclass(frozen=True)
class PipelineConfig:
    """Every setting of a :class:`pipeline.Pipeline`, in five sections (see the module doc)."""

    detection: DetectionConfig = field(default_factory=DetectionConfig)
    tracking: TrackerConfig = field(default_factory=TrackerConfig)
    classification: ClassifierConfig = field(default_factory=ClassifierConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    landmarks: LandmarkConfig = field(default_factory=LandmarkConfig)

    def __post_init__(self):
        for sec, cls in SECTIONS.items():  # each section checked its own values when it was made
            part = getattr(self, sec)
            if not isinstance(part, cls):
                raise ConfigError(f"{sec} must be a {cls.__name__}, not {type(part).__name__}")

    def replace(self, **changes) -> "PipelineConfig":
        """A copy with fields changed by name (``min_score=0.6``) or whole sections (``smoothing={...}``)."""
        parts: dict[str, dict] = {}
        for name, value in changes.items():
            if name in SECTIONS:
                parts.setdefault(name, {}).update(dataclasses.asdict(value) if dataclasses.is_dataclass(value)
                                                  else dict(value))
            elif name in FIELD_SECTION:
                parts.setdefault(FIELD_SECTION[name], {})[name] = value
            else:
                raise ConfigError(f"unknown setting {name!r}; settings are: {', '.join(sorted(FIELD_SECTION))}")
        new = {}
        for sec, values in parts.items():
            try:
                new[sec] = dataclasses.replace(getattr(self, sec), **values)
            except TypeError as exc:
                raise ConfigError(f"{sec}: {exc}") from None
        return dataclasses.replace(self, **new) if new else self

    def to_dict(self) -> dict:
        """Nested plain dict: {section: {field: value}} (what timelines record)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PipelineConfig":
        unknown = set(d) - set(SECTIONS)
        if unknown:
            raise ConfigError(f"unknown config sections {sorted(unknown)}; sections are {list(SECTIONS)}")
        return cls().replace(**d)

    def flat(self) -> dict:
        """{field: value} over all sections (field names are unique)."""
        return {f: getattr(getattr(self, sec), f) for f, sec in FIELD_SECTION.items()}


@dataclass(frozen=True)
class Preset:
    name: str
    title: str  # what the UI shows
    description: str
    changes: dict  # fields that differ from PipelineConfig()'s defaults

    @property
    def config(self) -> PipelineConfig:
        return PipelineConfig().replace(**self.changes)


#: The named presets.  "standard" is the default of every entry point.  Both find faces at any
#: distance (the "auto" detector); experts can still ask for ``detector="short"``/``"full"`` and ``tiles``.
PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("standard", "Standard: every face, near or far; labels follow expressions quickly",
           "Automatic face detection (close-ups and faces 24 px tall alike), smoothing half-life 0.1 s: "
           "labels follow a change within ~0.2-0.4 s. The default everywhere.", {}),
    Preset("steady", "Steady: calmer labels, for recordings and presentations",
           "The same detection; smoothing half-life 0.5 s and a label margin of 0.1: about 4x less label "
           "flicker than standard, at ~0.9 s lag (benchmarks/smoothing.py); a missed face is held 1 s.",
           {"half_life_s": 0.5, "margin": 0.1, "hold_s": 1.0}),
)}
DEFAULT_PRESET = "standard"


def preset(name: str | None = None, **changes) -> PipelineConfig:
    """The config of preset ``name`` (None: :data:`DEFAULT_PRESET`), with ``changes`` by field name."""
    name = name or DEFAULT_PRESET
    if name not in PRESETS:
        raise ConfigError(message("unknown_preset", name=name, choices=list(PRESETS)))
    return PRESETS[name].config.replace(**changes)
