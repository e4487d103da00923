"""The face detectors that ``detection.detector`` can name beside BlazeFace's ("auto", "short", "full").

Each is measured beside the others on every benchmark (``benchmarks/hardfaces.py``, ``recall``,
``tracking``, ``pipeline``; the table is in benchmarks/RESULTS.md, "Hard faces"):

* ``"yunet"``: OpenCV's YuNet alone (:mod:`tracker.yunet`), the frame's long side at 640 px
  (stills: 1280);
* ``"yunet320"``: YuNet on the frame scaled to 320 px (cheap; faces from about 20 px in 640x480);
* ``"auto+yunet"``: BlazeFace's automatic detector, with YuNet at 320 px adding the faces it missed
  (cut by the frame's edge, turned, in shadow): :class:`tracker.combo.SecondOpinion`;
* ``"auto+short"``: the automatic detector with BlazeFace's short-range model over the whole frame,
  padded on every side (:class:`tracker.combo.PaddedShort`);
* ``"centerface"``: CenterFace (:mod:`tracker.centerface`; its model file is fetched, not shipped).
"""
from __future__ import annotations

from dataclasses import replace


def _yunet(config, input_px=640, still_px=1280):
    from .yunet import YuNetDetector

    return YuNetDetector(config, input_px=input_px, still_px=still_px)


def _auto(config):
    from .autodetect import AutoDetector

    return AutoDetector(replace(config, detector="auto"))


def _auto_yunet(config):
    from .combo import SecondOpinion
    from .yunet import YuNetDetector

    return SecondOpinion(_auto(config), YuNetDetector(config, input_px=320, still_px=960,
                                                      score=max(config.min_score, SECOND_SCORE)))


def _auto_short(config):
    from .combo import PaddedShort, SecondOpinion

    return SecondOpinion(_auto(config), PaddedShort(config))


def _centerface(config):
    from .centerface import CenterFaceDetector

    return CenterFaceDetector(config)


#: YuNet's threshold as a second opinion (it only adds faces BlazeFace did not find).
SECOND_SCORE = 0.6

DETECTORS = {
    "yunet": _yunet,
    "yunet320": lambda c: _yunet(c, 320, 960),
    "auto+yunet": _auto_yunet,
    "auto+short": _auto_short,
    "centerface": _centerface,
}
