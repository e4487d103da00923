"""One configuration for the whole pipeline, its validation, and the named presets.

A :class:`PipelineConfig` has one section per stage; each section is the
stage's own dataclass, so every default is written once, next to the code
that uses it:

* ``detection``: :class:`tracker.detect.DetectionConfig`
* ``tracking``: :class:`tracker.track.TrackerConfig`
* ``classification``: :class:`classifier.spec.ClassifierConfig`
* ``smoothing``: :class:`classifier.smoothing.SmoothingConfig`
* ``landmarks``: :class:`tracker.landmarks.LandmarkConfig` (eyes, blinks,
  drowsiness, yawns, head pose and attention per face; ``face_states=False``
  for emotions only)

Every value is checked here, in :data:`RULES`, when a config is made; an error
names the field and its allowed values.  Times are in seconds everywhere.

Presets are configs, nothing else; every entry point (library, Live, Image,
Video, ``/analyze_image``, ``/analyze_video``, ``python -m export``) takes a
preset name and uses :data:`DEFAULT_PRESET` when none is given::

    cfg = preset("steady")                       # a PipelineConfig
    cfg = preset("standard", half_life_s=0.3)    # with changes, by field name
    cfg.detection.detector, cfg.smoothing.half_life_s
"""
from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field, fields

from classifier.smoothing import SmoothingConfig
from classifier.spec import ClassifierConfig
from tracker.detect import DetectionConfig
from tracker.embed import EMBEDDERS
from tracker.landmarks import LandmarkConfig
from tracker.track import TrackerConfig
from tracker.candidates import DETECTORS as _CANDIDATES

SECTIONS = {
    "detection": DetectionConfig,
    "tracking": TrackerConfig,
    "classification": ClassifierConfig,
    "smoothing": SmoothingConfig,
    "landmarks": LandmarkConfig,
}


class ConfigError(ValueError):
    """A setting is unknown or out of range; the message names it and says what is allowed."""


def _range(lo, hi, kind=numbers.Real):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, kind) or not lo <= v <= hi:
            what = "a whole number" if kind is numbers.Integral else "a number"
            return f"{what} from {lo} to {hi}"
        return None
    return check


def _choice(*allowed, path_ok=False):
    def check(v):
        if v in allowed or (path_ok and isinstance(v, str) and v.endswith(path_ok)):
            return None
        extra = f" or a {path_ok} path" if path_ok else ""
        return f"one of {', '.join(map(repr, allowed))}{extra}"
    return check


def _bool(v):
    return None if isinstance(v, bool) else "True or False"


def _tiles(v):
    if v == "auto" or (isinstance(v, numbers.Integral) and not isinstance(v, bool) and 0 <= v <= 8):
        return None
    return "'auto' or a whole number from 0 (off) to 8"


#: The allowed values of every field, by "section.field".
RULES = {
    "detection.detector": _choice("auto", "short", "full", *_CANDIDATES, path_ok=".tflite"),
    "detection.tiles": _tiles,
    "detection.min_score": _range(0.05, 0.99),
    "detection.min_face": _range(2, 4096, numbers.Integral),
    "detection.max_side": _range(128, 8192, numbers.Integral),
    "detection.auto_tile_px": _range(256, 16384, numbers.Integral),
    "detection.detect_every": _range(1, 10, numbers.Integral),
    "tracking.max_hidden_s": _range(0.0, 60.0),
    "tracking.n_init": _range(1, 30, numbers.Integral),
    "tracking.max_cosine_distance": _range(0.0, 2.0),
    "tracking.max_iou_distance": _range(0.0, 1.0),
    "tracking.reid_distance": _range(0.0, 2.0),
    "tracking.reid_radius": _range(0.0, 100.0),
    "tracking.nn_budget": _range(1, 1000, numbers.Integral),
    "tracking.hold_s": _range(0.0, 10.0),
    "tracking.embedder": _choice(*EMBEDDERS),
    "classification.model": lambda v: None if isinstance(v, str) and v else "a model id or a spec .json path",
    "classification.max_faces": _range(1, 1024, numbers.Integral),
    "classification.align": _bool,
    "smoothing.half_life_s": _range(0.0, 60.0),
    "smoothing.margin": _range(0.0, 1.0),
    "landmarks.face_states": _bool,
    "landmarks.landmark_interval_s": _range(0.0, 5.0),
    "landmarks.landmark_min_face": _range(8, 4096, numbers.Integral),
    "landmarks.landmark_max_faces": _range(0, 1024, numbers.Integral),
    "landmarks.away_yaw_deg": _range(5.0, 90.0),
    "landmarks.away_pitch_deg": _range(5.0, 90.0),
    "landmarks.away_s": _range(0.0, 60.0),
    "landmarks.drowsy_perclos": _range(0.01, 1.0),
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
        for sec, cls in SECTIONS.items():
            part = getattr(self, sec)
            if not isinstance(part, cls):
                raise ConfigError(f"{sec} must be a {cls.__name__}, not {type(part).__name__}")
            for f in fields(cls):
                value = getattr(part, f.name)
                problem = RULES[f"{sec}.{f.name}"](value)
                if problem:
                    raise ConfigError(f"{sec}.{f.name} must be {problem}; got {value!r}")

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
        raise ConfigError(f"unknown preset {name!r}; presets are: {', '.join(PRESETS)}")
    return PRESETS[name].config.replace(**changes)
