"""Box geometry, written once: IoU, non-maximum suppression, clipping, padded crops and tiles.

Boxes are ``(x1, y1, x2, y2)`` float pixels (``x2``/``y2`` exclusive), one per row of an
``(N, 4)`` array.  Every detector back end, the automatic detector, the tracker's
predicted rows and the benchmarks use these; nothing else in the project computes an
IoU or clips a box by hand.
"""
from __future__ import annotations

import numpy as np

#: Grey used where a crop leaves the frame (the value BlazeFace's letterbox and YOLO-style pads use).
PAD_GREY = 114


def iou(a, b) -> float:
    """Intersection over union of two boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return float(inter / max((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter, 1e-9))


def intersection(a, b) -> float:
    """Area shared by two boxes."""
    return float(max(min(a[2], b[2]) - max(a[0], b[0]), 0) * max(min(a[3], b[3]) - max(a[1], b[1]), 0))


def intersection_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) areas shared by every pair of two sets of boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    return iw * ih


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of every pair of two sets of boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    inter = intersection_matrix(a, b)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def areas(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes).reshape(-1, 4)
    return np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float = 0.3, contain_thr: float = 0.7) -> np.ndarray:
    """Greedy NMS by score, then drop boxes lying mostly inside a larger kept
    box (a tile can cut a face in half: the half-face box lies inside the
    whole one, whatever their scores).  Returns kept indices, by score."""
    area = areas(boxes)
    keep: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if all(intersection(boxes[i], boxes[k]) / (area[i] + area[k] - intersection(boxes[i], boxes[k]) + 1e-9)
               <= iou_thr for k in keep):
            keep.append(int(i))
    big_first = sorted(keep, key=lambda k: -area[k])
    final: list[int] = []
    for i in big_first:
        if all(intersection(boxes[i], boxes[k]) / (area[i] + 1e-9) <= contain_thr for k in final):
            final.append(i)
    return np.asarray([k for k in keep if k in final], dtype=np.int64)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray, iou_thr: float):
    """MediaPipe's weighted NMS: each group of boxes overlapping the best one by more than ``iou_thr``
    becomes their score-weighted mean (boxes and keypoints), with the group's best score.
    Returns (boxes, scores, keypoints), best first."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores, keypoints = boxes[order], scores[order], keypoints[order]
    alive = np.ones(len(scores), bool)
    ob, os_, ok = [], [], []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        overlap = iou_matrix(boxes[i], boxes)[0]
        group = alive & (overlap > iou_thr)
        group[i] = True
        w = scores[group]
        ob.append((boxes[group] * w[:, None]).sum(0) / w.sum())
        ok.append((keypoints[group] * w[:, None, None]).sum(0) / w.sum())
        os_.append(scores[i])
        alive &= ~group
    kp_shape = keypoints.shape[1:]
    return (np.array(ob, np.float32).reshape(-1, 4), np.array(os_, np.float32),
            np.array(ok, np.float32).reshape((-1,) + kp_shape))


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """A copy of ``boxes`` (N, 4) clipped to the frame ``width`` x ``height``."""
    out = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    return out


def distinct(boxes, thr: float = 0.3) -> np.ndarray:
    """``boxes`` without near-duplicates (IoU > ``thr`` with one kept before), as an (N, 4) array."""
    kept: list = []
    for b in boxes:
        if not any(iou(b, k) > thr for k in kept):
            kept.append(np.asarray(b, np.float32))
    return np.asarray(kept, np.float32).reshape(-1, 4)


def crop_padded(rgb: np.ndarray, x0: int, y0: int, s: int, fill: int = PAD_GREY) -> np.ndarray:
    """The square [x0, x0+s) x [y0, y0+s) of ``rgb``, ``fill`` grey where it leaves the frame."""
    h, w = rgb.shape[:2]
    s = max(int(s), 2)
    out = np.full((s, s) + rgb.shape[2:], fill, rgb.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + s, w), min(y0 + s, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    return out


def grid_windows(h: int, w: int, nx: int, ny: int | None = None, overlap: float = 1.25) -> list[tuple]:
    """An ``nx`` x ``ny`` grid of windows (x0, y0, x1, y1) that overlap by ``overlap`` (none if nx < 2)."""
    ny = nx if ny is None else ny
    if max(nx, ny) < 2:
        return []
    th, tw = min(h, int(np.ceil(h / ny * overlap))), min(w, int(np.ceil(w / nx * overlap)))
    out = []
    for gy in range(ny):
        for gx in range(nx):
            y0 = max(min(int(gy * h / ny - (th - h / ny) / 2), h - th), 0)
            x0 = max(min(int(gx * w / nx - (tw - w / nx) / 2), w - tw), 0)
            out.append((x0, y0, x0 + tw, y0 + th))
    return out


def face_roi_transforms(boxes: np.ndarray, keypoints: np.ndarray | None, size: int, scale: float) -> np.ndarray:
    """(N, 2, 3) affine maps from frame pixels to each face's ``size`` x ``size`` crop: centred on the box,
    a side of ``scale`` times the box's longer side, turned so the eyes (keypoints 0 and 1: the person's
    right and left eye) are level, as MediaPipe's face-mesh graphs crop."""
    import cv2

    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    out = np.zeros((len(boxes), 2, 3), np.float64)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        side = max(x2 - x1, y2 - y1) * scale
        angle = 0.0
        if keypoints is not None and len(keypoints) > i and np.all(np.isfinite(keypoints[i, :2])):
            (rx, ry), (lx, ly) = keypoints[i, 0], keypoints[i, 1]
            angle = float(np.degrees(np.arctan2(ly - ry, lx - rx)))
        m = cv2.getRotationMatrix2D((float(cx), float(cy)), angle, size / max(side, 1.0))
        m[:, 2] += (size / 2 - cx, size / 2 - cy)
        out[i] = m
    return out
