"""Model specs: everything needed to run an emotion model, as data.

Another model is a spec (a JSON file in ``classifier/specs/`` or given at run
time), not code.  A spec says where the ONNX file comes from (shipped in the
repo, or a Hugging Face Hub repo/file/revision), the class names in the
model's output order, and how to turn a face box into the model input.

Two fields are for people, not for running the model (the UI may show them):

* ``version`` - the model's version as its maker names it (a string, "" when unknown);
* ``test_accuracy`` - top-1 accuracy on FER2013's PrivateTest (3,589 faces, 7 classes), the canonical
  test, as ``python -m benchmarks.accuracy --data fer2013-private --model ID`` measures it (whole
  48x48 images as the faces); ``None`` when not measured here (e.g. a Hub model that cannot be
  downloaded, or one with other classes).  ``tests/test_fer2013.py`` checks it against
  ``benchmarks/results/accuracy_fer2013.json``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common.checks import boolean, validate, whole

from .labels import canonical

#: The test set behind ``test_accuracy`` (see the module docstring).
TEST_SET = "FER2013 PrivateTest"


def _is_sha256(s: str) -> bool:
    return len(s) == 64 and all(c in "0123456789abcdef" for c in s)


SPEC_DIR = Path(__file__).resolve().parent / "specs"
MODEL_DIR = Path(__file__).resolve().parent / "models"


@dataclass(frozen=True)
class ModelSpec:
    id: str
    labels: tuple[str, ...]  # canonical class names, in the model's output order
    input_size: tuple[int, int] = (64, 64)  # (width, height)
    color: str = "gray"  # "gray", "rgb" or "bgr"
    layout: str = "NCHW"  # "NCHW" or "NHWC"
    scale: float = 1.0 / 255.0  # input = pixel * scale + offset (per channel after colour conversion)
    offset: float = 0.0
    mean: tuple[float, ...] = ()  # optional per-channel mean/std applied after scale/offset
    std: tuple[float, ...] = ()
    crop_margin: float = 0.0  # extra border, as a fraction of the (squared) face box side
    crop_margin_px: float = 0.0  # extra border in pixels of the original frame
    square: bool = True  # square the face box around its centre first
    output: str = "probs"  # "probs" (already softmaxed) or "logits"
    output_name: str = ""  # which graph output holds the class scores ("" = the first)
    input_name: str = ""  # "" = the first graph input
    source: str = "embedded"  # "embedded" (file shipped in the repo) or "hub"
    path: str = ""  # embedded: file name under classifier/models/
    repo_id: str = ""  # hub: e.g. "onnxmodelzoo/emotion-ferplus-8"
    filename: str = ""
    revision: str = "main"
    #: The file's pin: size in bytes and sha256 (hex).  A file that does not match is refused
    #: (:func:`classifier.hub.resolve`); empty / 0 means unpinned (an operator's own spec).
    sha256: str = ""
    size: int = 0
    #: Where the pin was read and what could not be checked offline (shown in docs, never parsed).
    pin_source: str = ""
    license: str = ""
    description: str = ""
    version: str = ""  # the model's version (for people; see the module docstring)
    test_accuracy: float | None = None  # FER2013 PrivateTest top-1 accuracy, as benchmarks.accuracy measures it
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        object.__setattr__(self, "labels", tuple(canonical(l) for l in self.labels))
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        if self.color not in ("gray", "rgb", "bgr"):
            raise ValueError(f"spec {self.id}: color must be gray, rgb or bgr, not {self.color!r}")
        if self.layout not in ("NCHW", "NHWC"):
            raise ValueError(f"spec {self.id}: layout must be NCHW or NHWC, not {self.layout!r}")
        if self.output not in ("probs", "logits"):
            raise ValueError(f"spec {self.id}: output must be probs or logits, not {self.output!r}")
        if self.source not in ("embedded", "hub", "file"):
            raise ValueError(f"spec {self.id}: source must be embedded, hub or file")
        if self.source == "hub" and not (self.repo_id and self.filename):
            raise ValueError(f"spec {self.id}: a hub model needs repo_id and filename")
        if self.sha256 and not _is_sha256(self.sha256):
            raise ValueError(f"spec {self.id}: sha256 must be 64 hex digits, not {self.sha256!r}")
        if int(self.size) < 0:
            raise ValueError(f"spec {self.id}: size must be >= 0")
        if self.test_accuracy is not None and not 0.0 <= float(self.test_accuracy) <= 1.0:
            raise ValueError(f"spec {self.id}: test_accuracy must be a fraction from 0 to 1, not {self.test_accuracy!r}")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"spec {self.id}: labels repeat a class: {self.labels}")

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    def card(self) -> dict:
        """Who the model is, for people and API users: ``{"id", "version", "test_accuracy", "test_set",
        "source", "classes"}`` (``test_accuracy`` None when not measured here)."""
        return {"id": self.id, "version": self.version or None,
                "test_accuracy": None if self.test_accuracy is None else round(float(self.test_accuracy), 4),
                "test_set": TEST_SET, "source": self.source, "classes": len(self.labels)}

    def about(self) -> str:
        """One line under a model menu that shows the id: version, test accuracy, classes and where the
        file comes from, e.g. "version fer 25.10.3 · 58.2% on FER2013 PrivateTest · 7 classes · shipped
        with the app"."""
        parts = []
        if self.version:
            parts.append(f"version {self.version}")
        parts.append(f"{100 * float(self.test_accuracy):.1f}% on {TEST_SET}" if self.test_accuracy is not None
                     else f"not measured on {TEST_SET}")
        parts.append(f"{len(self.labels)} classes")
        if self.source == "hub":
            mb = f", {self.size / 1e6:.0f} MB" if self.size else ""
            parts.append(f"from the Hugging Face Hub on first use{mb}")
        else:
            parts.append("shipped with the app" if self.source == "embedded" else "a local file")
        return " · ".join(parts)

    def embedded_path(self) -> Path:
        p = Path(self.path)
        return p if p.is_absolute() else MODEL_DIR / p

    def with_hub(self, repo_id: str, filename: str | None = None, revision: str | None = None) -> "ModelSpec":
        """The same spec, pointed at another Hub repo / file / revision."""
        from dataclasses import replace

        return replace(self, source="hub", repo_id=repo_id, filename=filename or self.filename,
                       revision=revision or self.revision)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["labels"] = list(self.labels)
        d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"model spec has unknown fields: {sorted(unknown)}")
        d = dict(d)
        for k in ("labels", "input_size", "mean", "std"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)

    @classmethod
    def from_json(cls, path: str | Path) -> "ModelSpec":
        return cls.from_dict(json.loads(Path(path).read_text()))


def builtin_specs() -> dict[str, ModelSpec]:
    """The specs shipped in ``classifier/specs/*.json``, by id."""
    out = {}
    for p in sorted(SPEC_DIR.glob("*.json")):
        s = ModelSpec.from_json(p)
        out[s.id] = s
    return out


DEFAULT_MODEL = "fer-mini-xception"


@dataclass(frozen=True)
class ClassifierConfig:
    """Classification settings; every value is checked when the config is made."""

    model: str = DEFAULT_MODEL  # a built-in spec id (classifier/specs) or a spec .json path
    max_faces: int = 64  # classify at most this many faces per frame (the largest)
    align: bool = True  # turn each crop so the eyes are level (benchmarks/alignment.py: helps on tilted heads)

    def __post_init__(self):
        validate(self, "classification", {
            "model": lambda v: None if isinstance(v, str) and v else "a model id or a spec .json path",
            "max_faces": whole(1, 1024),
            "align": boolean,
        })


def get_spec(name_or_path: str | None = None) -> ModelSpec:
    """A built-in spec by id, or a spec JSON file by path (None: the default)."""
    name = name_or_path or DEFAULT_MODEL
    specs = builtin_specs()
    if name in specs:
        return specs[name]
    p = Path(name)
    if p.suffix == ".json" and p.is_file():
        return ModelSpec.from_json(p)
    raise KeyError(f"unknown model {name!r}; built-in: {sorted(specs)} (or give a spec .json path)")
