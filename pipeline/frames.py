"""Frame validation and normalisation: anything image-like in, RGB uint8 out.

Every entry point (live stream, image upload, video decoder) goes through
:func:`to_rgb_uint8`, so a bad frame becomes one clear :class:`InvalidFrame`
error instead of a crash deep inside MediaPipe or OpenCV.
"""
from __future__ import annotations

import numpy as np

#: Frames with more pixels than this are refused (about 16k x 16k); a
#: configurable limit for uploads lives in the app.  Detection itself runs on a
#: downscaled copy, so large-but-allowed frames cost little.
MAX_PIXELS = 16384 * 16384


class InvalidFrame(ValueError):
    """The input cannot be used as an image; the message says why."""


def to_rgb_uint8(frame, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Return ``frame`` as a C-contiguous (H, W, 3) uint8 RGB array.

    Accepts grey (H, W) or (H, W, 1), RGB, RGBA (alpha dropped), uint8,
    uint16 (scaled down), bool, and float images in [0, 1] or [0, 255].
    """
    if frame is None:
        raise InvalidFrame("no image was given (got None)")
    if not isinstance(frame, np.ndarray):
        try:
            frame = np.asarray(frame)
        except Exception as exc:  # pragma: no cover - exotic objects
            raise InvalidFrame(f"cannot read {type(frame).__name__} as an image: {exc}") from exc
    if frame.dtype == object or frame.dtype.kind not in "uifb":
        raise InvalidFrame(f"image has unsupported pixel type {frame.dtype}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (3, 4)):
        raise InvalidFrame(f"image must be HxW, HxWx3 or HxWx4; got shape {tuple(frame.shape)}")
    h, w = frame.shape[:2]
    if h == 0 or w == 0:
        raise InvalidFrame(f"image is empty ({w}x{h} pixels)")
    if h * w > max_pixels:
        raise InvalidFrame(
            f"image is too large ({w}x{h} = {h * w / 1e6:.0f} MP; the limit is {max_pixels / 1e6:.0f} MP)"
        )
    if frame.dtype != np.uint8:
        kind = frame.dtype.kind
        if kind == "b":
            frame = frame.astype(np.uint8) * 255
        elif kind == "f":
            if not np.isfinite(frame).all():
                frame = np.nan_to_num(frame, nan=0.0, posinf=255.0, neginf=0.0)
            top = float(frame.max()) if frame.size else 0.0
            scale = 255.0 if top <= 1.0 else 1.0
            frame = np.clip(frame * scale, 0, 255).astype(np.uint8)
        elif frame.dtype.itemsize >= 2:
            # 16-bit (and wider) integer images: keep the top 8 bits of their range.
            top = np.iinfo(frame.dtype).max if kind == "u" and frame.dtype.itemsize == 2 else max(int(frame.max()), 1)
            frame = np.clip(frame.astype(np.float32) * (255.0 / top), 0, 255).astype(np.uint8)
        else:
            frame = np.clip(frame, 0, 255).astype(np.uint8)
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    elif frame.shape[2] == 4:
        frame = frame[:, :, :3]
    return np.ascontiguousarray(frame)
