"""Hostile and messy image files, built in a few milliseconds without decoding them.

Each builder writes the bytes a real tool would write (or a forged header) without ever
holding the pixels they decode to: the point is a small file that decodes to a lot.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def gif(frames: int, width: int, height: int, *, screen: tuple[int, int] | None = None) -> bytes:
    """An animated GIF of ``frames`` blank frames of ``width`` × ``height``: Pillow encodes
    one frame, its image block is repeated (LZW of a blank frame is about 4 KB for 4 MP)."""
    one = io.BytesIO()
    Image.new("P", (width, height)).save(one, "GIF")
    data = one.getvalue()
    start = data.index(b"\x2c", 13)  # the image descriptor (no extension before it)
    head, block = bytearray(data[:start]), data[start:-1]
    if screen is not None:
        head[6:10] = struct.pack("<HH", *screen)
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    delay = b"\x21\xf9\x04\x00\x0a\x00\x00\x00"
    return bytes(head) + loop + (delay + block) * frames + b"\x3b"


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width: int, height: int, *, rows: int | None = None) -> bytes:
    """A greyscale PNG of blank rows, compressed row by row (a 100-megapixel one is ~100 KB);
    ``rows`` stops the data early (a truncated file with a whole header)."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    parts = [compressor.compress(row) for _ in range(height if rows is None else rows)]
    idat = b"".join(parts) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def webp_header(width: int, height: int) -> bytes:
    """A lossless WebP whose header announces ``width`` × ``height`` (at most 16384 each)."""
    bits = (width - 1) | ((height - 1) << 14)
    body = b"\x2f" + struct.pack("<I", bits) + b"\x00" * 64
    chunk = b"VP8L" + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def jpeg_header(width: int, height: int) -> bytes:
    """A baseline JPEG whose frame header announces ``width`` × ``height``, then little data."""
    real = io.BytesIO()
    Image.new("L", (8, 8)).save(real, "JPEG")
    data = bytearray(real.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def tiff_header(width: int, height: int) -> bytes:
    """A little-endian TIFF whose first directory announces ``width`` × ``height``."""
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, 1, 8),
        (277, 3, 1, 1),
        (279, 4, 1, 1),
    ]
    ifd = (
        struct.pack("<H", len(entries))
        + b"".join(struct.pack("<HHII", *e) for e in entries)
        + b"\x00\x00\x00\x00"
    )
    return b"II*\x00" + struct.pack("<I", 8 + 1) + b"\x00" + ifd


def real(fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 30) if mode == "RGB" else 0).save(out, fmt)
    return out.getvalue()
