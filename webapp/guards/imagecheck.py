"""Does a JPEG hold enough data for the size its header declares?

libjpeg (in OpenCV and in Pillow) decodes a JPEG whose scan data stops early
but which ends with an end-of-image marker as a "successful" image: a 629-byte
file whose header says 7000x7000 came out as 7000x7000 pixels of flat grey.
:func:`jpeg_shortfall` reads the markers only (no decoding) and compares the
entropy-coded bytes with the least any complete Huffman-coded image of that
size can take: every 8x8 block costs at least one bit for its DC coefficient,
and in sequential JPEGs one more for its end-of-block code. A file below that
cannot hold the image it declares. (Arithmetic-coded JPEGs are not bounded
here; a truncated file without an end marker is refused by the decoders.)
"""
from __future__ import annotations

import math
import struct

_SOF_HUFFMAN_SEQUENTIAL = {0xC0, 0xC1}
_SOF_HUFFMAN_PROGRESSIVE = {0xC2}
_SOF_ALL = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _scan_bytes(data: bytes, start: int) -> tuple[int, int]:
    """Length of the entropy-coded data from ``start`` and the index of the marker that ends it."""
    i, n = start, len(data)
    while True:
        j = data.find(b"\xff", i)
        if j < 0 or j + 1 >= n:
            return n - start, n
        nxt = data[j + 1]
        if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:  # stuffed byte, restart marker, fill
            i = j + 1 if nxt == 0xFF else j + 2
            continue
        return j - start, j


def jpeg_shortfall(data: bytes) -> tuple[int, int, int, int] | None:
    """(width, height, bytes of scan data, least bytes needed) if ``data`` is too short for its size, else None.

    None also when the markers cannot be followed (the decoders judge such files).
    """
    if data[:2] != b"\xff\xd8":
        return None
    i, n = 2, len(data)
    sof = None
    scan = 0
    try:
        while i + 4 <= n:
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker == 0xFF:
                i += 1
                continue
            if marker == 0xD9:  # end of image
                break
            if 0xD0 <= marker <= 0xD7 or marker == 0x01:
                i += 2
                continue
            (length,) = struct.unpack(">H", data[i + 2:i + 4])
            seg = data[i + 4:i + 2 + length]
            if marker in _SOF_ALL and sof is None:
                h, w, nc = struct.unpack(">HHB", seg[1:6])
                comps = [(seg[6 + 3 * k + 1] >> 4, seg[6 + 3 * k + 1] & 15) for k in range(nc)]
                sof = (marker, w, h, comps)
            i += 2 + length
            if marker == 0xDA:  # start of scan: entropy-coded data follows
                nbytes, i = _scan_bytes(data, i)
                scan += nbytes
    except (struct.error, IndexError):
        return None
    if sof is None:
        return None
    marker, w, h, comps = sof
    if not comps or w == 0 or h == 0:
        return None
    hmax = max(c[0] for c in comps) or 1
    vmax = max(c[1] for c in comps) or 1
    mcus = math.ceil(w / (8 * hmax)) * math.ceil(h / (8 * vmax))
    if marker in _SOF_HUFFMAN_SEQUENTIAL:
        bits = 2 * mcus * sum(hc * vc for hc, vc in comps) if len(comps) > 1 else 2 * math.ceil(w / 8) * math.ceil(h / 8)
    elif marker in _SOF_HUFFMAN_PROGRESSIVE:  # at least the DC of the first component
        hc, vc = comps[0]
        bits = mcus * hc * vc if len(comps) > 1 else math.ceil(w / 8) * math.ceil(h / 8)
    else:
        return None
    need = bits // 8
    return (w, h, scan, need) if scan < need else None
