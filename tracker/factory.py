"""The one place that turns ``DetectionConfig.detector`` into a detector back end.

Each name of :data:`tracker.base.DETECTORS` maps to a builder here; a model path (``.tflite``)
goes to the BlazeFace back end.  A new back end is a module that implements
:class:`tracker.base.Detector` and one line in :data:`BUILDERS` (and its name in
``tracker.base.DETECTORS``, which the config's validation reads).

The back ends (measured side by side by ``python -m benchmarks.hardfaces``, ``benchmarks.recall``,
``benchmarks.tracking`` and ``benchmarks.detector_cost``; the table is in docs/benchmarks.md, "Hard faces and
the detector candidates"):

* ``"auto"`` (the default): the ``"hybrid"`` detector without its closer looks on a stream's frames (a still and
  a stream's first frame get them): OpenCV's YuNet over the whole frame, BlazeFace for small faces
  (:mod:`tracker.hybrid`); it finds more hard faces (cut by the edge, turned, in shadow) than BlazeFace alone, at a
  higher precision, and costs less;
* ``"blazeface"``: BlazeFace at every distance (:mod:`tracker.autodetect`; what ``"auto"`` was before);
* ``"short"``, ``"full"``: one BlazeFace model (:mod:`tracker.detect`), with ``tiles``;
* ``"yunet"``: OpenCV's YuNet alone (:mod:`tracker.yunet`), the frame's long side at 640 px
  (stills: 1280); ``"yunet320"``: at 320 px (cheap; faces from about 20 px in 640x480);
* ``"hybrid"``: BlazeFace's automatic detector with YuNet as its whole-frame pass (:mod:`tracker.hybrid`), and
  BlazeFace's boxes for the large faces YuNet finds, on every frame;
* ``"auto+yunet"``: the automatic detector, with YuNet at 320 px adding the faces it missed
  (:class:`tracker.combo.SecondOpinion`);
* ``"auto+short"``: the automatic detector with BlazeFace's short-range model over the whole frame,
  padded on every side (:class:`tracker.combo.PaddedShort`);
* ``"centerface"``: CenterFace (:mod:`tracker.centerface`; its model file is fetched, not shipped);
* ``"yunet+centerface"``: YuNet (scores >= :data:`FUSED_YUNET_SCORE`) and CenterFace (>=
  :data:`FUSED_CENTERFACE_SCORE`) on every frame, their faces merged (:class:`tracker.combo.Fused`).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from .autodetect import AutoDetector
from .base import DETECTORS, DetectionConfig, Detector
from .detect import FaceDetector

#: YuNet's threshold as a second opinion (it only adds faces BlazeFace did not find).
SECOND_SCORE = 0.6
#: ``"yunet+centerface"``: each part's score floor, chosen on half of the hard set (its even-numbered
#: photos and their cut frames) for precision >= 0.95 there, then measured on both halves
#: (``python -m benchmarks.hardfaces``, which reports the halves apart).
FUSED_YUNET_SCORE, FUSED_CENTERFACE_SCORE = 0.8, 0.4


def _yunet(config, input_px=640, still_px=1280, **kw):
    from .yunet import YuNetDetector

    return YuNetDetector(config, input_px=input_px, still_px=still_px, **kw)


def _blazeface(config, **kw):
    return AutoDetector(replace(config, detector="auto"), **kw)


def _auto(config, **kw):
    from .hybrid import HybridDetector

    return HybridDetector(config, refine_streams=False, **kw)


def _hybrid(config, **kw):
    from .hybrid import HybridDetector

    return HybridDetector(config, **kw)


def _auto_yunet(config, **kw):
    from .combo import SecondOpinion
    from .yunet import YuNetDetector

    return SecondOpinion(_blazeface(config, **kw), YuNetDetector(config, input_px=320, still_px=960,
                                                            score=max(config.min_score, SECOND_SCORE)))


def _auto_short(config, **kw):
    from .combo import PaddedShort, SecondOpinion

    return SecondOpinion(_blazeface(config, **kw), PaddedShort(config, **kw))


def _centerface(config, **kw):
    from .centerface import CenterFaceDetector

    return CenterFaceDetector(config, **kw)


def _yunet_centerface(config, **kw):
    from .centerface import CenterFaceDetector
    from .combo import Fused

    return Fused(_yunet(config, score=max(config.min_score, FUSED_YUNET_SCORE), **kw),
                 CenterFaceDetector(config, score=FUSED_CENTERFACE_SCORE, **kw))


#: name -> builder(config, threads=..., engine=...)
BUILDERS: dict[str, Callable[..., Detector]] = {
    "auto": _auto,
    "blazeface": _blazeface,
    "short": FaceDetector,
    "full": FaceDetector,
    "yunet": _yunet,
    "yunet320": lambda config, **kw: _yunet(config, 320, 960, **kw),
    "hybrid": _hybrid,
    "auto+yunet": _auto_yunet,
    "auto+short": _auto_short,
    "centerface": _centerface,
    "yunet+centerface": _yunet_centerface,
}
assert set(BUILDERS) == set(DETECTORS), "every detector name needs a builder"


def make_detector(config: DetectionConfig | None = None, *, threads: int = 2, engine: str = "litert") -> Detector:
    """The detector ``config`` asks for (a fresh one: the automatic detectors keep per-stream state).

    ``threads``: model threads (one per core by default); ``engine``: ``"litert"`` or ``"mediapipe"``
    for the BlazeFace models (see :class:`tracker.detect.FaceDetector`).
    """
    config = config or DetectionConfig()
    build = BUILDERS.get(config.detector, FaceDetector)  # else a model path (validated by the config)
    return build(config, threads=threads, engine=engine)
