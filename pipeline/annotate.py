"""Draw a :class:`FrameResult` onto its frame: what the live view, the Image tab and the
annotated video all show.

Per face: a box in its track's colour (:func:`track_color`, the same colour as its
table row and chart line), and a label placed by :mod:`pipeline.layout` inside the
frame, off the faces and never over another label:

* a chip ``#ID emotion NN%`` on the track colour, with a bar of that probability
  along its bottom edge (``held`` is added while the shown label is kept by the
  smoother's hysteresis although another class leads);
* for a face large enough (a close-up), a panel under the chip with a row per
  class, largest first: name, bar and percentage;
* when room runs out (crowds), the label falls back to the chip, then to a
  short chip (``#ID hap 85%``), then to the ID alone.

A face the detector missed in this frame (``predicted``) gets a thin, dimmed box
and a grey chip.  An optional status line (fps, latency, faces) sits in the top
left corner on its own background, and labels keep clear of it.

:class:`FaceAnnotator` is the configured object (``annotate(scene, result)``, as
``supervision``'s annotators); :func:`draw` is the one-call form.
"""
from __future__ import annotations

import colorsys
import functools
from dataclasses import dataclass

import cv2
import numpy as np

from .layout import place
from .results import FrameResult

FONT = cv2.FONT_HERSHEY_SIMPLEX
SHORT = {"neutral": "neu", "happiness": "hap", "surprise": "sur", "sadness": "sad",
         "anger": "ang", "disgust": "dis", "fear": "fear", "contempt": "con"}
PANEL_BG = (24, 24, 24)
GREY = (150, 150, 150)


@functools.lru_cache(maxsize=1024)
def track_color(track_id: int) -> tuple[int, int, int]:
    """A bright RGB colour, the same for the same ID in every frame, stream, table and chart."""
    h = (int(track_id) * 0.61803398875) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.75, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def track_hex(track_id: int) -> str:
    """:func:`track_color` as ``#rrggbb`` (for the page's table and chart)."""
    return "#{:02x}{:02x}{:02x}".format(*track_color(track_id))


def text_color(bg: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``bg`` (RGB)."""
    r, g, b = bg
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


@dataclass
class Label:
    """One placed label: its rectangle, the face it names (-1: the status line) and its content."""

    rect: tuple[int, int, int, int]
    face: int
    kind: str  # "panel", "chip", "short", "id", "status"
    text: str
    rows: tuple[tuple[str, float], ...] = ()  # (class, probability) rows of a panel
    prob: float = 0.0
    name: str = ""  # the class the label shows
    info: tuple[str, ...] = ()  # a panel's text lines under its bars (eyes, blinks, head pose, state)


@dataclass
class _Font:
    scale: float
    thick: int
    pad: int
    line: int  # text height (cap + descent) in pixels
    bar: int  # height of the probability bar under a chip

    @staticmethod
    def for_frame(w: int, h: int, face_h: float = 0.0) -> "_Font":
        """The font for a frame of ``w`` x ``h`` and a face ``face_h`` tall (cached per 8 px of face)."""
        base = min(w, h)
        return _font(base, min(8, int(max(0.0, face_h / base - 0.3) / 0.4 * 8)))

    def width(self, text: str) -> int:
        return cv2.getTextSize(text, FONT, self.scale, self.thick)[0][0]


@functools.lru_cache(maxsize=256)
def _font(base: int, growth: int) -> _Font:
    """Text scale from the frame's shorter side, a little larger (up to 30%) for a face filling the frame."""
    scale = min(max(0.52 * base / 480.0, 0.4), 1.5) * (1.0 + 0.3 * growth / 8)
    thick = 1 if scale < 0.75 else 2
    (_, th), base_line = cv2.getTextSize("Hg", FONT, scale, thick)
    pad = max(2, int(round(3 * scale)))
    return _Font(scale, thick, pad, th + base_line, max(3, int(round(4 * scale))))


class FaceAnnotator:
    """Boxes, labels (chips or panels) and a status line, laid out for reading.

    ``panels``: draw a per-class panel for faces at least ``panel_min_face``
    pixels tall (or that share of the frame's shorter side, whichever is
    smaller) when there is room for it and the frame has at most
    ``panel_max_faces`` faces (in a group, chips read better).
    """

    def __init__(self, panels: bool = True, panel_min_face: int = 110, panel_min_share: float = 0.22,
                 panel_max_faces: int = 3):
        self.panels = panels
        self.panel_max_faces = panel_max_faces
        self.panel_min_face = panel_min_face
        self.panel_min_share = panel_min_share

    # layout --------------------------------------------------------------
    def layout(self, result: FrameResult, width: int, height: int, status: str | None = None) -> list[Label]:
        """Where every label goes (no drawing): the status line first, then faces, largest first."""
        frame = (width, height)
        labels: list[Label] = []
        placed = np.zeros((0, 4), np.int64)
        obstacles = np.zeros((0, 4), np.int64)
        font = _Font.for_frame(width, height)
        if status:
            sw, sh = font.width(status) + 2 * font.pad, font.line + 2 * font.pad
            rect = (0, 0, min(sw, width), min(sh, height))
            labels.append(Label(rect, -1, "status", status))
            obstacles = np.asarray([rect], np.int64)
        n = len(result)
        if not n:
            return labels
        faces = np.asarray(result.boxes, np.float64).reshape(-1, 4)
        heights = faces[:, 3] - faces[:, 1]
        classes = list(result.classes)
        sm = result.smoothed if result.smoothed is not None else result.raw
        for i in np.argsort(-heights, kind="stable"):
            i = int(i)
            f = result.face(i)
            fnt = _Font.for_frame(width, height, heights[i])
            m = {k: float(v[i]) for k, v in result.measures.items() if k in _SHOWN}
            if result.blendshapes is not None and np.isfinite(result.blendshapes[i, 0]):
                m["_actions"] = strongest_actions(result.blendshapes[i], k=2)
            options = self._options(f, classes, sm[i] if sm is not None else None, fnt, heights[i], min(frame), n, m)
            got = place(faces[i], [o[0] for o in options], frame, placed, faces, i, obstacles, gap=2)
            if got is None:
                continue  # no free place even for the ID (extreme crowding): the box and table still name it
            rect, k = got
            kind, text, rows, info = options[k][1:]
            labels.append(Label(tuple(int(v) for v in rect), i, kind, text, rows, float(f.label_prob), f.label, info))
            placed = np.vstack([placed, rect[None]])
        return labels

    def _options(self, f, classes, probs, fnt: _Font, face_h: float, min_side: int, n_faces: int,
                 m: dict | None = None):
        """The label's forms, richest first: ((w, h), kind, text, rows, info lines)."""
        m = m or {}
        held = probs is not None and len(classes) and not f.predicted and classes[int(np.argmax(probs))] != f.label
        pct = f"{f.label_prob * 100:.0f}%"
        tags = state_tags(m)
        chip_text = f"#{f.track_id} {f.label} {pct}" + (" held" if held else "") + "".join(f"  {t}" for t in tags)
        short = f"#{f.track_id} {SHORT.get(f.label, f.label[:3])} {pct}" + (f" {tags[0]}" if tags else "")
        if f.predicted:
            chip_text, short = f"#{f.track_id} {f.label}", f"#{f.track_id}"
        pad, line = fnt.pad, fnt.line
        chip_h = line + 2 * pad + (0 if f.predicted else fnt.bar)
        out = []
        if (self.panels and probs is not None and not f.predicted and n_faces <= self.panel_max_faces
                and face_h >= min(self.panel_min_face, self.panel_min_share * min_side)):
            order = np.argsort(-np.asarray(probs))
            rows = tuple((classes[j], float(probs[j])) for j in order)
            name_w = max(fnt.width(c) for c in classes)
            bar_w = max(40, int(round(60 * fnt.scale)))
            info = state_lines(m)
            w = max([fnt.width(chip_text), name_w + bar_w + fnt.width("100%")] + [fnt.width(t) for t in info]) + 4 * pad
            row_h = line + pad
            for k in (len(rows), 3):
                out.append(((w, chip_h + (k + len(info)) * row_h + pad), "panel", chip_text, rows[:k], info))
        out.append(((fnt.width(chip_text) + 2 * pad, chip_h), "chip", chip_text, (), ()))
        out.append(((fnt.width(short) + 2 * pad, chip_h), "short", short, (), ()))
        tag = f"{f.track_id}"
        out.append(((fnt.width(tag) + 2 * pad, line + 2 * pad), "id", tag, (), ()))
        return out

    # drawing ---------------------------------------------------------------
    def annotate(self, scene: np.ndarray, result: FrameResult, status: str | None = None,
                 copy: bool = True) -> np.ndarray:
        """The RGB ``scene`` with boxes, labels and the status line drawn on it."""
        img = scene.copy() if copy else scene
        h, w = img.shape[:2]
        font = _Font.for_frame(w, h)
        faces = np.asarray(result.boxes).reshape(-1, 4)
        ids, pred = result.track_ids, result.predicted
        for box, tid, was_predicted in zip(np.rint(faces).astype(int).tolist(), ids.tolist(), pred.tolist()):
            x1, y1, x2, y2 = box
            col = track_color(tid)
            if was_predicted:  # not detected in this frame: dimmed, thin
                cv2.rectangle(img, (x1, y1), (x2, y2), tuple(c // 2 + 40 for c in col), 1)
            else:
                cv2.rectangle(img, (x1, y1), (x2, y2), col, max(2, font.thick + 1))
        heights = faces[:, 3] - faces[:, 1]
        for lab in self.layout(result, w, h, status):
            if lab.face < 0:
                self._status(img, lab, font)
                continue
            was_predicted = bool(pred[lab.face])
            fnt = _Font.for_frame(w, h, heights[lab.face])
            col = GREY if was_predicted else track_color(int(ids[lab.face]))
            self._leader(img, lab.rect, faces[lab.face], col)
            if lab.kind == "panel":
                self._panel(img, lab, col, fnt)
            else:
                self._chip(img, lab.rect, lab.text, col, fnt, None if was_predicted or lab.kind == "id" else lab.prob)
        return img

    @staticmethod
    def _put(img, text, x, y, fnt: _Font, color):
        cv2.putText(img, text, (x, y), FONT, fnt.scale, color, fnt.thick, cv2.LINE_AA)

    def _chip(self, img, rect, text, col, fnt: _Font, prob: float | None) -> None:
        x1, y1, x2, y2 = rect
        cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), col, -1)
        base = y1 + fnt.pad + fnt.line - (fnt.line // 5)
        self._put(img, text, x1 + fnt.pad, base, fnt, text_color(col))
        if prob is not None:  # the label's probability as a bar along the chip's bottom
            by = y2 - fnt.bar
            cv2.rectangle(img, (x1, by), (x2 - 1, y2 - 1), (40, 40, 40), -1)
            fill = x1 + int(round((x2 - x1) * float(np.clip(prob, 0, 1))))
            if fill > x1:
                cv2.rectangle(img, (x1, by), (fill - 1, y2 - 1), (255, 255, 255), -1)

    def _panel(self, img, lab: Label, col, fnt: _Font) -> None:
        x1, y1, x2, y2 = lab.rect
        chip_h = fnt.line + 2 * fnt.pad + fnt.bar
        cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), PANEL_BG, -1)
        self._chip(img, (x1, y1, x2, y1 + chip_h), lab.text, col, fnt, lab.prob)
        name_w = max(fnt.width(c) for c, _ in lab.rows)
        pct_w = fnt.width("100%")
        bx1 = x1 + 2 * fnt.pad + name_w
        bx2 = x2 - 2 * fnt.pad - pct_w
        y = y1 + chip_h + fnt.pad
        for name, p in lab.rows:
            base = y + fnt.line - fnt.line // 5
            self._put(img, name, x1 + fnt.pad, base, fnt, (235, 235, 235))
            top, bot = y + fnt.line // 5, y + fnt.line - fnt.line // 5
            cv2.rectangle(img, (bx1, top), (bx2, bot), (70, 70, 70), -1)
            fill = bx1 + int(round((bx2 - bx1) * float(np.clip(p, 0, 1))))
            if fill > bx1:
                cv2.rectangle(img, (bx1, top), (fill, bot), col if name == lab.name else (200, 200, 200), -1)
            txt = f"{p * 100:.0f}%"
            self._put(img, txt, x2 - fnt.pad - fnt.width(txt), base, fnt, (235, 235, 235))
            y += fnt.line + fnt.pad
        for text in lab.info:
            warn = text.startswith(("DROWSY", "looking away", "yawning"))
            self._put(img, text, x1 + fnt.pad, y + fnt.line - fnt.line // 5, fnt, (255, 170, 60) if warn else (190, 230, 255))
            y += fnt.line + fnt.pad

    @staticmethod
    def _leader(img, rect, box, col) -> None:
        """A thin line from a label placed away from its face to the face's box."""
        x1, y1, x2, y2 = rect
        bx1, by1, bx2, by2 = (int(round(v)) for v in box)
        dx = max(bx1 - x2, x1 - bx2, 0)
        dy = max(by1 - y2, y1 - by2, 0)
        if dx + dy <= 6:
            return
        lx, ly = int(np.clip((bx1 + bx2) // 2, x1, x2 - 1)), (y2 - 1 if y2 <= by1 else y1)
        if dy == 0:
            ly = int(np.clip((by1 + by2) // 2, y1, y2 - 1))
            lx = x2 - 1 if x2 <= bx1 else x1
        tx, ty = int(np.clip(lx, bx1, bx2)), int(np.clip(ly, by1, by2))
        cv2.line(img, (lx, ly), (tx, ty), col, 1, cv2.LINE_AA)

    def _status(self, img, lab: Label, fnt: _Font) -> None:
        x1, y1, x2, y2 = lab.rect
        cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), (0, 0, 0), -1)
        self._put(img, lab.text, x1 + fnt.pad, y1 + fnt.pad + fnt.line - fnt.line // 5, fnt, (255, 255, 255))


#: The face-state columns the overlay reads (``FrameResult.measures``; NaN: nothing to show).
_SHOWN = ("eye_open_r", "eye_open_l", "yaw", "pitch", "blinks", "blink_rate", "eyes_closed", "yawning",
          "looking_away", "drowsy", "attentive", "looking_at_camera")


def _on(v) -> bool:
    return v is not None and np.isfinite(v) and v >= 0.5


def state_tags(m: dict) -> list[str]:
    """Short tags for a chip from a face's measures: DROWSY, away, yawn, eyes shut (none when all is well)."""
    tags = []
    if _on(m.get("drowsy")):
        tags.append("DROWSY")
    if _on(m.get("looking_away")):
        tags.append("away")
    if _on(m.get("yawning")):
        tags.append("yawn")
    if _on(m.get("eyes_closed")) and not tags:
        tags.append("eyes shut")
    return tags


def strongest_actions(scores: np.ndarray, k: int = 3, min_score: float = 0.25) -> list[tuple[str, float]]:
    """The ``k`` strongest facial actions of one face's blendshape scores, at least ``min_score``:
    left/right pairs merged (their mean: ``mouthSmile`` for mouthSmileLeft/Right); the eye-look
    scores left out (they say where the eyes point, not an action)."""
    from tracker.facemesh import BLENDSHAPES

    merged: dict[str, list[float]] = {}
    for name, v in zip(BLENDSHAPES, np.asarray(scores, np.float64)):
        if name.startswith(("_", "eyeLook")) or not np.isfinite(v):
            continue
        base = name[:-4] if name.endswith("Left") else name[:-5] if name.endswith("Right") else name
        merged.setdefault(base, []).append(float(v))
    top = sorted(((n, float(np.mean(v))) for n, v in merged.items()), key=lambda x: -x[1])
    return [(n, v) for n, v in top[:k] if v >= min_score]


def state_lines(m: dict) -> tuple[str, ...]:
    """A close-up panel's lines from a face's measures: eyes and blinks, head pose, state, the strongest
    facial actions (``m["_actions"]``, :func:`strongest_actions`)."""
    def num(k):
        v = m.get(k)
        return v if v is not None and np.isfinite(v) else None

    out = []
    r, l_ = num("eye_open_r"), num("eye_open_l")
    if r is not None or l_ is not None:
        eyes = np.nanmean([v if v is not None else np.nan for v in (r, l_)])
        blinks, rate = num("blinks"), num("blink_rate")
        out.append(f"eyes {eyes:.2f}" + (f"  blinks {blinks:.0f}" if blinks is not None else "")
                   + (f" ({rate:.0f}/min)" if rate is not None else ""))
    yaw, pitch = num("yaw"), num("pitch")
    if yaw is not None and pitch is not None:
        out.append(f"head yaw {yaw:+.0f}  pitch {pitch:+.0f}")
    state = ("DROWSY" if _on(m.get("drowsy")) else "looking away" if _on(m.get("looking_away"))
             else "yawning" if _on(m.get("yawning")) else "attentive" if _on(m.get("attentive")) else "")
    if _on(m.get("looking_at_camera")):
        state += ("  " if state else "") + "eyes on camera"
    if state:
        out.append(state)
    out += [f"{n} {v:.2f}" for n, v in m.get("_actions", ())]  # one action a line: the panel stays narrow
    return tuple(out)


_DEFAULT = FaceAnnotator()
_NO_PANELS = FaceAnnotator(panels=False)


def draw(frame_rgb: np.ndarray, result: FrameResult, bars: bool = True, copy: bool = True,
         status: str | None = None) -> np.ndarray:
    """Return the frame with the result drawn on it (RGB uint8); ``bars``: per-class panels for close-ups."""
    return (_DEFAULT if bars else _NO_PANELS).annotate(frame_rgb, result, status=status, copy=copy)
