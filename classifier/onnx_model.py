"""Run an emotion model (ONNX, onnxruntime) on all faces of a frame in one batch."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import cv2
import numpy as np

from .labels import CANONICAL
from .spec import ModelSpec


class ModelError(RuntimeError):
    """The model file is missing, unreadable or does not fit its spec."""


def _session(path: Path, threads: int = 2):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # Two cores here: one intra-op thread per core; many sessions (one per
    # stream) share the machine, so don't spin.
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def square_box(box, margin_frac: float = 0.0, margin_px: float = 0.0) -> tuple[float, float, float]:
    """Centre and side of the square around ``box`` plus margins: (cx, cy, side)."""
    x1, y1, x2, y2 = [float(v) for v in box]
    side = max(x2 - x1, y2 - y1)
    side = side * (1 + 2 * margin_frac) + 2 * margin_px
    return (x1 + x2) / 2, (y1 + y2) / 2, max(side, 1.0)


#: Tilts smaller than this (degrees) are not corrected: the plain crop is used.
MIN_ALIGN_DEG = 3.0


def eye_angles(keypoints) -> np.ndarray:
    """(N,) tilt of each face in degrees from its (right eye, left eye) keypoints; 0 where unknown."""
    k = np.asarray(keypoints, np.float64)
    if len(k) == 0 or k.ndim != 3 or k.shape[1] < 2:
        return np.zeros(len(k))
    a = np.degrees(np.arctan2(k[:, 1, 1] - k[:, 0, 1], k[:, 1, 0] - k[:, 0, 0]))
    return np.where(np.isfinite(a), a, 0.0)


def crop_square(rgb: np.ndarray, box, size: tuple[int, int], margin_frac=0.0, margin_px=0.0, square=True,
                angle: float = 0.0) -> np.ndarray:
    """The face region resized to ``size`` (w, h); parts outside the frame replicate the edge.

    ``angle`` (degrees, square crops): the square is turned by it about the face centre first, so a
    face tilted by ``angle`` comes out upright (eyes level).
    """
    h, w = rgb.shape[:2]
    if square and abs(angle) >= MIN_ALIGN_DEG:
        cx, cy, side = square_box(box, margin_frac, margin_px)
        m = cv2.getRotationMatrix2D((cx, cy), float(angle), size[0] / side)
        m[0, 2] += size[0] / 2 - cx
        m[1, 2] += size[1] / 2 - cy
        interp = cv2.INTER_AREA if side > size[0] else cv2.INTER_LINEAR
        return cv2.warpAffine(rgb, m, size, flags=interp, borderMode=cv2.BORDER_REPLICATE)
    if square:
        cx, cy, side = square_box(box, margin_frac, margin_px)
        x1, y1, x2, y2 = cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2
    else:
        x1, y1, x2, y2 = [float(v) for v in box]
        mx = (x2 - x1) * margin_frac + margin_px
        my = (y2 - y1) * margin_frac + margin_px
        x1, y1, x2, y2 = x1 - mx, y1 - my, x2 + mx, y2 + my
    X1, Y1, X2, Y2 = int(round(x1)), int(round(y1)), int(round(x2)), int(round(y2))
    X2, Y2 = max(X2, X1 + 1), max(Y2, Y1 + 1)
    cx1, cy1, cx2, cy2 = max(X1, 0), max(Y1, 0), min(X2, w), min(Y2, h)
    if cx2 <= cx1 or cy2 <= cy1:
        region = np.zeros((Y2 - Y1, X2 - X1, 3), np.uint8)
    else:
        region = rgb[cy1:cy2, cx1:cx2]
        pads = (cy1 - Y1, Y2 - cy2, cx1 - X1, X2 - cx2)
        if any(pads):
            region = cv2.copyMakeBorder(region, *pads, borderType=cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if region.shape[1] > size[0] else cv2.INTER_LINEAR
    return cv2.resize(region, size, interpolation=interp)


class EmotionClassifier:
    """An ONNX emotion model and its spec.

    ``predict(rgb, boxes)`` crops every face as the spec says, runs them in one
    batch (or one by one when the model's batch dimension is fixed to 1) and
    returns probabilities (N, C) in canonical class order (``self.classes``).
    """

    def __init__(self, spec: ModelSpec, path: str | os.PathLike, threads: int = 2):
        self.spec = spec
        self.card = spec.card()  # who the model is (id, version, test accuracy), once per model
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"model file for {spec.id} not found: {self.path.name}")
        try:
            self._sess = _session(self.path, threads)
        except Exception as exc:
            raise ModelError(f"cannot load model {spec.id} from {self.path.name}: {exc}") from exc
        inputs = {i.name: i for i in self._sess.get_inputs()}
        outputs = [o.name for o in self._sess.get_outputs()]
        self.input_name = spec.input_name or next(iter(inputs))
        if self.input_name not in inputs:
            raise ModelError(f"model {spec.id} has no input {self.input_name!r} (inputs: {list(inputs)})")
        self.output_name = spec.output_name or outputs[0]
        if self.output_name not in outputs:
            raise ModelError(f"model {spec.id} has no output {self.output_name!r} (outputs: {outputs})")
        self._check_shape(inputs[self.input_name].shape)
        self.classes = tuple(c for c in CANONICAL if c in spec.labels)
        self._order = np.array([spec.labels.index(c) for c in self.classes])
        self._lock = threading.Lock()
        # Verify the output width once, on a blank face, so a wrong spec fails at load.
        probe = self._run(np.zeros((1,) + self._input_shape_one(), np.float32))
        if probe.shape[-1] != len(spec.labels):
            raise ModelError(
                f"model {spec.id} outputs {probe.shape[-1]} classes but its spec lists {len(spec.labels)}: {spec.labels}"
            )

    def _input_shape_one(self) -> tuple[int, ...]:
        w, h = self.spec.input_size
        c = self.spec.channels
        return (c, h, w) if self.spec.layout == "NCHW" else (h, w, c)

    def _check_shape(self, shape) -> None:
        want = self._input_shape_one()
        dims = list(shape)
        if len(dims) != 4:
            raise ModelError(f"model {self.spec.id}: input has {len(dims)} dims, spec expects 4 ({self.spec.layout})")
        for got, exp, name in zip(dims[1:], want, ("dim1", "dim2", "dim3")):
            if isinstance(got, int) and got > 0 and got != exp:
                raise ModelError(
                    f"model {self.spec.id}: input shape {dims} does not match the spec "
                    f"({self.spec.layout}, {self.spec.color}, size {self.spec.input_size}); expected [N, {', '.join(map(str, want))}]"
                )
        self.fixed_batch = dims[0] if isinstance(dims[0], int) and dims[0] > 0 else None

    def preprocess(self, rgb: np.ndarray, boxes: np.ndarray, angles=None) -> np.ndarray:
        s = self.spec
        angles = np.zeros(len(boxes)) if angles is None else angles
        crops = [crop_square(rgb, b, s.input_size, s.crop_margin, s.crop_margin_px, s.square, a)
                 for b, a in zip(boxes, angles)]
        x = np.stack(crops)
        if s.color == "gray":
            x = np.stack([cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) for c in crops])[..., None]
        elif s.color == "bgr":
            x = x[..., ::-1]
        x = x.astype(np.float32) * np.float32(s.scale) + np.float32(s.offset)
        if s.mean:
            x = (x - np.asarray(s.mean, np.float32)) / np.asarray(s.std or (1.0,) * len(s.mean), np.float32)
        if s.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x)

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self.fixed_batch == 1 and len(x) > 1:
            return np.concatenate([self._run(x[i : i + 1]) for i in range(len(x))])
        out = self._sess.run([self.output_name], {self.input_name: x})[0]
        return np.asarray(out, np.float32).reshape(len(x), -1)

    def predict(self, rgb: np.ndarray, boxes: np.ndarray, angles=None) -> np.ndarray:
        """(N, C) probabilities; ``angles``: each face's tilt in degrees (:func:`eye_angles`) to crop it upright."""
        if len(boxes) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        out = self._run(self.preprocess(rgb, boxes, angles))
        if self.spec.output == "logits":
            out = out - out.max(axis=1, keepdims=True)
            out = np.exp(out)
            out /= out.sum(axis=1, keepdims=True)
        out = out[:, self._order]
        out /= np.maximum(out.sum(axis=1, keepdims=True), 1e-9)
        return out.astype(np.float32)
