"""Tell a drawn page from a blank one, reading the PNG with the standard library.

A PNG's pixel rows are stored after a per-row filter; for a page of one colour the
"up" and "sub" filters leave (almost) nothing but zero bytes. The share of non-zero
bytes in the decompressed rows is therefore a cheap measure of how much was drawn.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], len(_SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        out.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG header."""
    data = path.read_bytes()
    assert data.startswith(_SIGNATURE), f"{path} is not a PNG"
    header = dict(_chunks(data))[b"IHDR"]
    width, height = struct.unpack(">II", header[:8])
    return width, height


def nonuniform_fraction(path: Path) -> float:
    """Share of non-zero bytes among the PNG's decompressed, filtered rows."""
    data = path.read_bytes()
    assert data.startswith(_SIGNATURE), f"{path} is not a PNG"
    raw = zlib.decompress(b"".join(d for k, d in _chunks(data) if k == b"IDAT"))
    return sum(1 for b in raw if b) / max(len(raw), 1)
