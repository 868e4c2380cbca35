"""The servers' image: a small raw disk made here, uploaded through Glance's API.

The namespace-backed compute driver never boots it, but Glance stores and checks
it like any image: it is a valid raw disk (an MBR with one Linux partition and
the boot signature), 2 MiB, written to ``<root>/images/node.raw``.
"""

from __future__ import annotations

import struct
from pathlib import Path

SECTOR = 512
SECTORS = 4096  # 2 MiB
FIRST = 2048  # the first partition starts at 1 MiB, as partitioning tools align it
LINUX = 0x83


def mbr() -> bytes:
    """A master boot record with one partition spanning the rest of the disk."""
    # status, CHS first (unused: LBA only), type, CHS last, LBA first, sector count
    entry = struct.pack(
        "<B3sB3sII",
        0x00,
        b"\xfe\xff\xff",
        LINUX,
        b"\xfe\xff\xff",
        FIRST,
        SECTORS - FIRST,
    )
    table = entry + bytes(16 * 3)
    return bytes(446) + table + b"\x55\xaa"


def write(root: Path) -> Path:
    """Write the image once; an existing one is kept (it never changes)."""
    path = root / "images" / "node.raw"
    if path.is_file() and path.stat().st_size == SECTOR * SECTORS:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.write(mbr())
        fh.truncate(SECTOR * SECTORS)
    return path
