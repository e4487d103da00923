"""BlazeFace's automatic detector with YuNet as its whole-frame pass: the ``"hybrid"`` detector.

:class:`~tracker.autodetect.AutoDetector` looks at every frame three ways: the whole frame squeezed
into BlazeFace's 192 px input, one discovery tile of a fine grid, and a mosaic of close-ups of the
small faces.  The whole-frame pass is where faces cut by the frame's edge, turned heads and faces in
shadow are lost (``benchmarks/hardfaces.py``): BlazeFace was trained on whole, mostly frontal faces.
Here that pass is OpenCV's YuNet (:mod:`tracker.yunet`) on the frame scaled to half its long side, from
``whole_px`` to twice that (320 for 640x480: about 2 ms, less than BlazeFace's full-range pass; 640 for
1280x720); the discovery tiles and the mosaic stay
BlazeFace's (MediaPipe's models), so small far faces are found and confirmed as before.

A face is "small" when it is under ``SMALL_PX`` at YuNet's input; a small face stands when the mosaic
finds it again, or when YuNet's score is at least ``sure`` (YuNet's scores stay low on the textures that
fool BlazeFace's coarse pass).  A large face stands from YuNet's score :data:`YUNET_SCORE` (0.75: on the hard
set's half A the lowest floor with BlazeFace's precision or better, as a still and as a stream; half B agreed);
one whose box reaches the frame's edge from :data:`EDGE_SCORE_STILL` (0.5) in a still and :data:`EDGE_SCORE_STREAM`
(0.65) in a stream's frame, as a face cut by the edge scores lower.  It
takes BlazeFace's box and keypoints where a closer look finds it again (:meth:`HybridDetector._blazeface_boxes`).
A still (``scan_all``: a photo, a stream's first frame) gets YuNet at ``still_px`` (the frame's own size up to
1280) and both mosaic scales; the fine grid of BlazeFace tiles only when ``still_tiles``.

``"auto"``, the default detector, is this one with ``refine_streams=False``: a stream's frames after the first
skip the closer looks, because the landmark stage then makes each face's crop from its own last landmarks
(:mod:`pipeline.landmarks`), whatever drew the box.  ``"hybrid"`` looks closer on every frame.
"""
from __future__ import annotations

import numpy as np

from .autodetect import CONTEXTS, AutoDetector
from .geometry import iou
from .base import DetectionConfig
from .yunet import YuNetDetector, to_blazeface_box

#: Faces smaller than this at YuNet's input (pixels, long side of the box) are decided by the mosaic.
SMALL_PX = 16.0


#: YuNet's score floor for a large face it finds (small ones are proposals the mosaic decides, as before).
YUNET_SCORE = 0.75

#: The floors for a large face whose box reaches the frame's edge (within :data:`EDGE_PX`) in a still and in a
#: stream's frame: a face cut by the edge scores lower.  Chosen on the hard set's half A alone: the floor with the
#: most faces found whose precision is no lower than at :data:`YUNET_SCORE`, the highest of equals.  Stills: 0.5
#: (in a sweep from 0.3, 0.35-0.5 all add the same 8 cut faces, none false); streams, where YuNet sees the frame
#: at 320-640 px and low scores are more often wrong: 0.65 (0.6 lowered half A's precision from 0.981 to 0.977).
#: Half B, not looked at to choose, against 0.75 for every face: stills find 0.748 (edge 0.659) against 0.725
#: (0.477) at precision 0.974 against 0.986; streams 0.641 (0.557) against 0.623 (0.426), precision 0.977
#: against 0.984.
EDGE_SCORE_STILL, EDGE_SCORE_STREAM = 0.5, 0.65
EDGE_PX = 2.0


#: A closer look's BlazeFace face replaces YuNet's box of a large face when they overlap this much.
REFINE_IOU = 0.5


def _frame(box) -> tuple[np.ndarray, float]:
    """A box's centre and side (the longer one), the frame :func:`_offset` and :func:`_apply` measure in."""
    b = np.asarray(box, np.float32)
    return np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2], np.float32), float(max(b[2] - b[0], b[3] - b[1], 1e-3))


def _offset(yunet_box, box, kps) -> tuple:
    """(YuNet's box, BlazeFace's box and keypoints relative to it: (minus its centre) / its side)."""
    c, side = _frame(yunet_box)
    return (np.asarray(yunet_box, np.float32), (np.asarray(box, np.float32) - np.tile(c, 2)) / side,
            (np.asarray(kps, np.float32) - c) / side)


def _apply(yunet_box, entry) -> tuple:
    """BlazeFace's box and keypoints for ``yunet_box`` from an :func:`_offset` entry; (None, None) if it has none."""
    if entry[1] is None:
        return None, None
    c, side = _frame(yunet_box)
    return (entry[1] * side + np.tile(c, 2)).astype(np.float32), (entry[2] * side + c).astype(np.float32)


class HybridDetector(AutoDetector):
    sure = 0.7
    yunet_score = YUNET_SCORE
    edge_score = (EDGE_SCORE_STILL, EDGE_SCORE_STREAM)

    def __init__(self, config: DetectionConfig | None = None, whole_px: int = 320, still_px: int = 1280,
                 still_tiles: bool = False, *, refine_streams: bool = True, threads: int = 2, engine: str = "litert"):
        super().__init__(config, threads=threads, engine=engine)
        self.refine_streams = bool(refine_streams)
        self.yunet = YuNetDetector(self.config, input_px=whole_px, still_px=still_px)
        self.whole_px, self.still_px, self.still_tiles = int(whole_px), int(still_px), bool(still_tiles)
        self._px = float(whole_px)
        self._offsets: list[tuple] = []  # per large face of the last frame: (YuNet box, box offset, keypoints offset, frame)

    def close(self) -> None:
        super().close()
        self.yunet.close()

    def reset(self) -> None:
        super().reset()
        self._offsets = []

    def _whole(self, rgb: np.ndarray, scan_all: bool) -> list:
        h, w = rgb.shape[:2]
        # streams: half the frame's long side, from whole_px (320) to 640: a 60 px face in 1280x720 is
        # 30 px for YuNet, found directly; stills: up to still_px
        px = self.still_px if scan_all else int(min(max(self.whole_px, max(h, w) / 2), 2 * self.whole_px))
        self._px = float(min(px, max(h, w)))
        p = self.yunet.run(rgb, px)
        if not len(p.scores):
            return []
        boxes = to_blazeface_box(p.boxes)
        r = p.boxes  # YuNet's own boxes: a face cut by the frame's edge reaches or crosses it
        at_edge = (r[:, 0] < EDGE_PX) | (r[:, 1] < EDGE_PX) | (r[:, 2] > w - EDGE_PX) | (r[:, 3] > h - EDGE_PX)
        edge = self.edge_score[0 if scan_all else 1]
        faces = [(b, float(s), k) for b, s, k, e in zip(boxes, p.scores, p.keypoints, at_edge)
                 if s >= (edge if e else self.yunet_score) or self._is_small(b, h, w)]
        if scan_all or self.refine_streams:  # large faces get BlazeFace's box where a closer look finds them
            return self._blazeface_boxes(rgb, faces, h, w, scan_all)
        return faces

    def _blazeface_boxes(self, rgb: np.ndarray, faces: list, h: int, w: int, scan_all: bool) -> list:
        """The large faces YuNet found, with BlazeFace's box and keypoints where a closer look (a mosaic pass per
        four faces) finds the face again; YuNet's own where it does not (a face cut by the edge, turned).

        Why: the face mesh's crop follows MediaPipe's rule from a BlazeFace box and its eye keypoints, and the
        blendshape scores move with the crop; YuNet's boxes, fitted to BlazeFace's only on average, made a face
        looking down read as smiling (0.46; BlazeFace's box: 0.06) and a laughing one as eyes shut.

        A still looks closer at every large face.  A stream looks at no more than four a frame (one pass), those
        whose last look is oldest; a face beyond those keeps its last BlazeFace box, as an offset from YuNet's.
        Offsets carried for 5 or 15 frames for every face were cheaper, but moved the frown scores of the
        smiling-faces test (tests/test_face_states.py) past its bound."""
        large = [i for i, f in enumerate(faces) if not self._is_small(f[0], h, w)]
        if scan_all:
            self._offsets = []
        if not large:
            self._offsets = []
            return faces
        now = self._calls
        carried = {}
        for i in large:
            prev = max(self._offsets, key=lambda e: iou(faces[i][0], e[0]), default=None)
            if prev is not None and iou(faces[i][0], prev[0]) >= REFINE_IOU:
                carried[i] = prev
        oldest_first = sorted(large, key=lambda i: carried[i][3] if i in carried else -1)
        look = oldest_first if scan_all else oldest_first[:self.cells ** 2]
        looked = {}
        if look:
            closer = self._mosaics(rgb, np.asarray([faces[i][0] for i in look], np.float32), CONTEXTS[0])
            for i in look:
                best = max(closer, key=lambda c: iou(faces[i][0], c[0]), default=None)
                if best is not None and iou(faces[i][0], best[0]) >= REFINE_IOU:
                    looked[i] = _offset(faces[i][0], best[0], best[2]) + (now,)
                else:
                    looked[i] = (faces[i][0], None, None, now)  # not found again: YuNet's box, looked at now
        out, offsets = list(faces), []
        for i in large:
            e = looked.get(i) or carried.get(i)
            if e is None:
                continue
            box, kps = _apply(faces[i][0], e)
            if box is not None:
                out[i] = (box, faces[i][1], kps)
            offsets.append((faces[i][0],) + e[1:])
        self._offsets = offsets
        return out

    def scan_grid(self, h: int, w: int, scan_all: bool = False) -> list[tuple]:
        """BlazeFace's discovery tiles on a stream; a still has YuNet at up to ``still_px`` instead."""
        if scan_all and not self.still_tiles:
            return []
        return super().scan_grid(h, w)

    def _is_small(self, box, h: int, w: int) -> bool:
        return max(box[2] - box[0], box[3] - box[1]) * self._px / max(h, w) < SMALL_PX
