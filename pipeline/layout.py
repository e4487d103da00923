"""Where the overlay's labels go: inside the frame, off the faces, never over each other.

Pure geometry on numpy arrays (no drawing), in the spirit of ``supervision``'s
``LabelAnnotator(smart_position=True)``: measure a label, try the places next
to its face (above, below, beside, then stacked further away), snap each place
back inside the frame, and keep the best one that overlaps no label placed
before it.  A smaller form of the label (chip, short chip, ID) that covers no
other face is preferred to a richer one that would.  Faces are placed largest
first, so a close-up gets the room next to it and small faces share what is left.

Rectangles are ``(x1, y1, x2, y2)`` integer pixels, ``x2``/``y2`` exclusive.
"""
from __future__ import annotations

import numpy as np

from tracker.geometry import intersection_matrix

#: Cost of covering a pixel of the label's own face, another face, or an obstacle (the status line).
OWN_FACE, OTHER_FACE, OBSTACLE = 10.0, 1.0, 10.0


def overlap_area(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection areas of two sets of rectangles."""
    return intersection_matrix(a, b)


def candidates(box, size: tuple[int, int], frame: tuple[int, int], gap: int = 2, rings: int = 6) -> np.ndarray:
    """Places for a ``size`` (w, h) label of face ``box`` in a ``frame`` (w, h), best first, snapped inside.

    Next to the box first (above, below, right, left; aligned to either edge),
    then the same rows stacked ``rings`` label heights further up and down,
    then inside the box's top and bottom corners (only a face that fills the
    frame has no room outside it).
    """
    fw, fh = frame
    w, h = int(size[0]), int(size[1])
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    xs = (x1, x2 - w, (x1 + x2 - w) // 2)
    out = []
    for x in xs:
        out.append((x, y1 - gap - h))  # above
    for x in xs:
        out.append((x, y2 + gap))  # below
    for y in (y1, y2 - h, (y1 + y2 - h) // 2):
        out.append((x2 + gap, y))  # right
        out.append((x1 - gap - w, y))  # left
    for k in range(1, rings + 1):
        for x in xs:
            out.append((x, y1 - gap - h - k * (h + gap)))
            out.append((x, y2 + gap + k * (h + gap)))
    out += [(x1 + gap, y1 + gap), (x1 + gap, y2 - gap - h), (x2 - gap - w, y1 + gap)]
    p = np.asarray(out, np.int64)
    p[:, 0] = np.minimum(np.maximum(p[:, 0], 0), max(0, fw - w))
    p[:, 1] = np.minimum(np.maximum(p[:, 1], 0), max(0, fh - h))
    return np.column_stack([p[:, 0], p[:, 1], p[:, 0] + min(w, fw), p[:, 1] + min(h, fh)])


def place(box, sizes: list[tuple[int, int]], frame: tuple[int, int], placed: np.ndarray, faces: np.ndarray,
          own: int, obstacles: np.ndarray, gap: int = 2) -> tuple[np.ndarray, int] | None:
    """The best free place for the first of ``sizes`` (fallbacks after it) that fits: (rect, index) or None.

    A place is free when it overlaps no rectangle of ``placed``.  The first form (of ``sizes``, richest
    first) with a free place that covers no other face wins; only when no form has one (a crowd, or a
    face between others at the frame's edge) does a label go over another face, in the first form that
    has a free place at all.  Among the places of a form the cost is the face and obstacle area covered
    plus the distance from the first candidate.
    """
    others = np.delete(np.asarray(faces).reshape(-1, 4), own, axis=0) if 0 <= own < len(faces) else faces
    fallback = None
    for k, size in enumerate(sizes):
        if size[0] > frame[0] or size[1] > frame[1]:
            continue
        cand = candidates(box, size, frame, gap)
        free = overlap_area(cand, placed).sum(axis=1) == 0 if len(placed) else np.ones(len(cand), bool)
        if not free.any():
            continue
        cand = cand[free]
        hit = overlap_area(cand, faces)
        cost = OTHER_FACE * hit.sum(axis=1)
        if 0 <= own < hit.shape[1]:
            cost += (OWN_FACE - OTHER_FACE) * hit[:, own]
        if len(obstacles):
            cost += OBSTACLE * overlap_area(cand, obstacles).sum(axis=1)
        cost += 0.2 * np.hypot(cand[:, 0] - cand[0, 0], cand[:, 1] - cand[0, 1]) * size[1]
        clear = overlap_area(cand, others).sum(axis=1) == 0 if len(others) else np.ones(len(cand), bool)
        if clear.any():
            return cand[int(np.argmin(np.where(clear, cost, np.inf)))], k
        if fallback is None:
            fallback = (cand[int(np.argmin(cost))], k)
    return fallback
