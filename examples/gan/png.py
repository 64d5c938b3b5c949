"""Minimal PNG writer/reader (zlib + struct; no imaging library is installed in the venv).

write_png(path, pixels): pixels uint8 [H, W] (grayscale) or [H, W, 3] (RGB), 8 bits per sample,
no interlace, every scanline with filter type 0. read_png reads back exactly what write_png
writes (8-bit grayscale/RGB, filter types 0-4 are all decoded) and checks every chunk's CRC.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR = {1: 0, 3: 2}          # samples per pixel -> PNG colour type (0 grayscale, 2 truecolour)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(pixels: np.ndarray) -> bytes:
    px = np.asarray(pixels)
    if px.dtype != np.uint8 or px.ndim not in (2, 3) or (px.ndim == 3 and px.shape[2] not in (1, 3)):
        raise ValueError(f"expected uint8 [H, W] or [H, W, 3] pixels, got {px.dtype} {list(px.shape)}")
    if px.ndim == 3 and px.shape[2] == 1:
        px = px[:, :, 0]
    h, w = px.shape[:2]
    spp = 1 if px.ndim == 2 else 3
    rows = px.reshape(h, w * spp)
    raw = b"".join(b"\x00" + rows[y].tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, _COLOR[spp], 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")


def write_png(path: str | Path, pixels: np.ndarray) -> Path:
    path = Path(path)
    path.write_bytes(encode_png(pixels))
    return path


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def read_png(path: str | Path) -> np.ndarray:
    """Pixels of an 8-bit grayscale or RGB PNG: uint8 [H, W] or [H, W, 3]."""
    data = Path(path).read_bytes()
    if not data.startswith(SIGNATURE):
        raise ValueError(f"{path} is not a PNG file")
    pos, idat, hdr = len(SIGNATURE), b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ValueError(f"{path}: bad CRC in chunk {kind!r}")
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + n
    if hdr is None:
        raise ValueError(f"{path}: no IHDR chunk")
    w, h, depth, color, _, _, interlace = hdr
    spp = {v: k for k, v in _COLOR.items()}.get(color)
    if depth != 8 or spp is None or interlace:
        raise ValueError(f"{path}: only 8-bit grayscale/RGB, non-interlaced PNGs are read")
    raw, stride = zlib.decompress(idat), w * spp
    out = np.zeros((h, stride), dtype=np.int64)
    prev = np.zeros(stride, dtype=np.int64)
    for y in range(h):
        ftype = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int64)
        cur = np.zeros(stride, dtype=np.int64)
        for x in range(stride):
            a = cur[x - spp] if x >= spp else 0
            c = prev[x - spp] if x >= spp else 0
            b = prev[x]
            pred = {0: 0, 1: a, 2: b, 3: (a + b) // 2, 4: _paeth(a, b, c)}[ftype]
            cur[x] = (line[x] + pred) & 0xFF
        out[y], prev = cur, cur
    px = out.astype(np.uint8)
    return px if spp == 1 else px.reshape(h, w, 3)
