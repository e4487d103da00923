"""Hostile images made from a real photo: JPEGs whose header claims more than their data holds."""
from __future__ import annotations

import struct


def jpeg_declaring(data: bytes, w: int, h: int, keep_scan: int | None) -> bytes:
    """``data`` (a real JPEG) with its frame header set to w x h, its scan data cut to ``keep_scan`` bytes
    (None: all) and an end-of-image marker after it."""
    d = bytearray(data)
    i = 2
    while True:
        marker = d[i + 1]
        (length,) = struct.unpack(">H", d[i + 2:i + 4])
        if marker in (0xC0, 0xC1, 0xC2):
            d[i + 5:i + 9] = struct.pack(">HH", h, w)
        if marker == 0xDA:
            start = i + 2 + length
            break
        i += 2 + length
    if keep_scan is None:
        return bytes(d)
    return bytes(d[:start + keep_scan]) + b"\xff\xd9"
