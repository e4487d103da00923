"""Faces at every distance for about three detector passes a frame: the ``"auto"`` detector.

BlazeFace sees a frame squeezed into 192 x 192 pixels (full range) and finds a
face reliably once it is about 20 px tall there, i.e. about a tenth of the
frame's long side (measured: 22/24 real faces at 20 px, 9/24 at 10 px).  A
close-up is no problem; a person 24 px tall in a 1280x720 frame is.  Running
the model on every tile of a fine grid finds them but costs ~2.4 ms a tile.
So, per frame:

1. **whole frame**, full-range model: faces larger than ~10% of the frame's
   long side (20 px at the model's input) are taken as found;
2. **one discovery tile** of a grid fine enough for a 24 px face (or 1.5% of
   the long side), in turn (round robin), so a new small face is found within
   one sweep of the grid (about a second at 30 fps in 1280x720);
3. **every small face, looked at closer, in a mosaic**: the small faces the
   whole-frame pass or the tile proposed, and the faces the caller followed in
   the previous frame (``hints``), are cut out with margin (2 or 2.6 face
   sides, alternating: BlazeFace misses a few faces, dark glasses, at one
   scale only), and ``cells x cells`` (2 x 2) of them are tiled into one image:
   one pass per four small faces finds them again at a good scale with good
   boxes.  A small face stands only if this closer look finds it (or the
   whole-frame pass was sure, score >= 0.8): tiles and the coarse whole-frame
   pass both raise false alarms on textures (a logo on a rocket).

A still image (``scan_all=True``) gets the whole grid and both scales at once.  All passes
are merged by the detector's own NMS.  Stateful (the round robin and the
scale alternation): one per stream.  Measured in ``benchmarks/recall.py``.
"""
from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np

from .base import DetectionConfig, Detections
from .detect import FaceDetector
from .geometry import crop_padded, distinct, grid_windows, iou

#: A face this many pixels tall at the model's 192 px input is found reliably.
MODEL_PX = 20.0
#: The discovery grid is fine enough for faces this tall (pixels), or this share of the long side.
SMALLEST_PX, SMALLEST_FRAC = 24.0, 0.015
#: A small face the whole-frame pass finds with at least this score stands without the mosaic's word.
SURE = 0.8
#: Faces smaller than this at the model's input (px) are "small": decided by the closer look.
SMALL_PX = MODEL_PX
#: The mosaic is CELLS x CELLS cut-outs (one model pass).
CELLS = 2
#: Cut-outs for the mosaic are this many face sides wide (room to move between frames),
#: alternating from frame to frame: BlazeFace misses some faces (dark glasses) at one scale only.
CONTEXTS = (2.0, 2.6)


class AutoDetector:
    sure = SURE  # a small whole-frame face with this score stands without the closer look

    def __init__(self, config: DetectionConfig | None = None, cells: int = CELLS, cell_px: int = 128, *,
                 threads: int = 2, engine: str = "litert"):
        base = replace(config or DetectionConfig(), tiles=0)
        self.config = config or DetectionConfig()
        self.full = FaceDetector(base, detector="full", threads=threads, engine=engine)
        self.cells, self.cell_px = int(cells), int(cell_px)
        self._next_tile = 0
        self._calls = 0
        self.passes = 0  # model passes in the last call (for benchmarks)

    def close(self) -> None:
        self.full.close()

    def reset(self) -> None:
        self._next_tile = 0

    # -- the three passes ----------------------------------------------------
    def scan_grid(self, h: int, w: int, scan_all: bool = False) -> list[tuple]:
        """Discovery windows: fine enough that the smallest face wanted is MODEL_PX tall in the model."""
        smallest = max(self.config.min_face, SMALLEST_PX, SMALLEST_FRAC * max(h, w))
        side = smallest * 192.0 / MODEL_PX  # window side (pixels)
        nx, ny = math.ceil(w * 1.25 / side), math.ceil(h * 1.25 / side)
        if max(nx, ny) < 2:
            return []
        return grid_windows(h, w, max(nx, 1), max(ny, 1))

    def _small(self, hints: np.ndarray, h: int, w: int) -> np.ndarray:
        """The hints too small for the whole-frame pass."""
        if hints is None or not len(hints):
            return np.zeros((0, 4), np.float32)
        return np.asarray([b for b in hints if self._is_small(b, h, w)], np.float32).reshape(-1, 4)

    def _mosaic(self, rgb: np.ndarray, boxes: np.ndarray, context: float) -> list:
        """Re-find ``boxes`` (up to cells**2) in one pass over a mosaic of their surroundings."""
        c, n = self.cell_px, self.cells
        grid = max(1, min(n, math.ceil(math.sqrt(len(boxes)))))
        canvas = np.full((grid * c, grid * c, 3), 114, np.uint8)
        places = []
        for k, b in enumerate(boxes):
            side = max(b[2] - b[0], b[3] - b[1]) * context
            cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
            x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
            s = int(round(side))
            crop = crop_padded(rgb, x0, y0, s)
            gy, gx = divmod(k, grid)
            canvas[gy * c:(gy + 1) * c, gx * c:(gx + 1) * c] = cv2.resize(crop, (c, c), interpolation=cv2.INTER_AREA)
            places.append((gx * c, gy * c, x0, y0, s / c))
        out = []
        for box, score, kp in self.full.run_window(canvas):
            cxm, cym = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            k = int(cym // c) * grid + int(cxm // c)
            if not (0 <= cxm < grid * c and 0 <= cym < grid * c) or k >= len(places):
                continue
            ox, oy, x0, y0, f = places[k]
            box = (np.asarray(box, np.float32) - (ox, oy, ox, oy)) * f + (x0, y0, x0, y0)
            kp = (np.asarray(kp, np.float32) - (ox, oy)) * f + (x0, y0)
            out.append((box.astype(np.float32), score, kp.astype(np.float32)))
        return out

    # -- one frame -------------------------------------------------------------
    def detect(self, rgb: np.ndarray, hints: np.ndarray | None = None, scan_all: bool = False) -> Detections:
        """Faces in ``rgb``; ``hints`` are boxes of faces seen in the previous frame (or None).

        Only the whole-frame pass's *large* faces are taken as they are.  A
        small face, wherever it was proposed (the whole-frame pass, where its
        box is coarse and false alarms happen, a tile, where textures out of
        context fool the model, or the hints), is decided by the mosaic: a
        second, closer look, in the same frame.
        """
        h, w = rgb.shape[:2]
        self._calls = 0 if scan_all else self._calls + 1
        whole = [f for f in self._whole(rgb, scan_all) if f[1] >= self.config.min_score]
        windows = self.scan_grid(h, w, scan_all)
        todo = windows if scan_all else windows[self._next_tile % len(windows):][:1] if windows else []
        if windows and not scan_all:
            self._next_tile = (self._next_tile + 1) % len(windows)
        from_tiles = [f for win in todo for f in self.full.run_window(rgb, *win) if f[1] >= self.config.min_score]
        self.passes = 1 + len(todo)
        found = [f for f in whole if not self._is_small(f[0], h, w)]
        small_whole = [f for f in whole if self._is_small(f[0], h, w)]
        proposals = [f[0] for f in small_whole + from_tiles if self._is_small(f[0], h, w)]
        proposals += list(self._small(hints, h, w))
        # a stream alternates the scale of the closer look from frame to frame; a still gets both
        contexts = CONTEXTS if scan_all else (CONTEXTS[self._calls % len(CONTEXTS)],)
        closer = [f for c in contexts for f in self._mosaics(rgb, distinct(proposals), c)]
        # a sure whole-frame find the mosaic did not repeat is kept (its coarse box only where
        # the mosaic has no better one)
        found += closer + [f for f in small_whole if f[1] >= self.sure and not any(iou(f[0], c[0]) > 0.2 for c in closer)]
        return self.full.merge(found, h, w)

    def _whole(self, rgb: np.ndarray, scan_all: bool) -> list:
        """The whole-frame pass: raw (box, score, keypoints) (tracker.hybrid puts YuNet here)."""
        return self.full.run_window(rgb)

    def _is_small(self, box, h: int, w: int) -> bool:
        return max(box[2] - box[0], box[3] - box[1]) * 192.0 / max(h, w) < SMALL_PX

    def _mosaics(self, rgb: np.ndarray, boxes: np.ndarray, context: float) -> list:
        out, per = [], self.cells ** 2
        for i in range(0, len(boxes), per):
            out += self._mosaic(rgb, boxes[i:i + per], context)
            self.passes += 1
        return out
