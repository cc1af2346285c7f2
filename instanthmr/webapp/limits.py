"""Limits checked before the work: image size from the header, and clients that go away.

- :func:`image_dimensions` reads the width and height of a PNG, JPEG, WebP, BMP, TIFF, GIF
  or PNM image from its header, without decoding a pixel.
  :func:`~instanthmr.webapp.uploads.decode_image` uses it to refuse an image over the pixel
  limit before it is decoded, so a small file declaring 20000x20000 pixels (1.2 MB of PNG,
  1.2 GB decoded) costs nothing; bytes in another format are not decoded at all ("not an
  image": uploads then try them as a video, the WebSocket says to send JPEG or WebP).
- :func:`client_gone` answers a request whose client went away while its body was being
  read (a closed tab, a dropped connection): one log line, no traceback.
"""

from __future__ import annotations

import logging
import re
import struct
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger(__name__)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers
_PNM = re.compile(rb"P[1-6]((?:\s+|#[^\n]*\n)+)(\d+)((?:\s+|#[^\n]*\n)+)(\d+)")


def _jpeg(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            return None
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _JPEG_SOF:
            if i + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def _webp(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    return None


def _bmp(data: bytes) -> tuple[int, int] | None:
    if len(data) < 26:
        return None
    (header,) = struct.unpack("<I", data[14:18])
    if header == 12:  # OS/2 BITMAPCOREHEADER
        return struct.unpack("<HH", data[18:22])
    w, h = struct.unpack("<ii", data[18:26])
    return abs(w), abs(h)


def _tiff(data: bytes) -> tuple[int, int] | None:
    order = "<" if data[:2] == b"II" else ">"
    if len(data) < 8:
        return None
    (ifd,) = struct.unpack(order + "I", data[4:8])
    if ifd + 2 > len(data):
        return None
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    found: dict[int, int] = {}
    for i in range(count):
        at = ifd + 2 + 12 * i
        if at + 12 > len(data):
            return None
        tag, kind = struct.unpack(order + "HH", data[at : at + 4])
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT or LONG
            fmt = "H" if kind == 3 else "I"
            (found[tag],) = struct.unpack(order + fmt, data[at + 8 : at + 8 + struct.calcsize(fmt)])
    return (found[256], found[257]) if 256 in found and 257 in found else None


def image_dimensions(data: bytes) -> tuple[str, tuple[int, int] | None] | None:
    """``(format, (width, height))`` from an image header, ``(format, None)`` when the
    format is known but its header is damaged, or None for anything else."""
    if data.startswith(PNG_MAGIC):
        if len(data) < 24 or data[12:16] != b"IHDR":
            return "PNG", None
        return "PNG", struct.unpack(">II", data[16:24])
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG", _jpeg(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP", _webp(data)
    if data.startswith(b"BM"):
        return "BMP", _bmp(data)
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF", _tiff(data)
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF", struct.unpack("<HH", data[6:10]) if len(data) >= 10 else None
    if data[:1] == b"P" and data[1:2] in b"123456" and len(data) > 2:
        match = _PNM.match(data[:1024])
        return "PNM", (int(match.group(2)), int(match.group(4))) if match else None
    return None


async def client_gone(request: Request, exc: Exception) -> Response:
    """The answer to a request whose client disconnected mid-body: one log line."""
    log.info("%s %s: the client went away before its upload finished (%s)",
             request.method, request.url.path, type(exc).__name__)  # fmt: skip
    return Response(status_code=400)


def add_disconnect_handler(app: Any) -> None:
    """Register :func:`client_gone` for Starlette's ``ClientDisconnect``."""
    from starlette.requests import ClientDisconnect

    app.add_exception_handler(ClientDisconnect, client_gone)
