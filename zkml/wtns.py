"""Read and write snarkjs/circom `.wtns` witness files (binary, little endian).

Layout: "wtns", version u32, nSections u32; section 1 (header): n8 u32, prime (n8 bytes),
nWitness u32; section 2 (data): nWitness field elements of n8 bytes each.
"""
from __future__ import annotations

import struct
from pathlib import Path

from . import binfile
from .errors import BuildError


def read_wtns(path: str | Path) -> tuple[list[int], int]:
    """Return (witness values, prime)."""
    p = Path(path)
    if not p.is_file():
        raise BuildError(f"{path} not found")
    data = p.read_bytes()
    try:  # a file shorter than its own headers makes struct raise: report it as truncated
        sections = binfile.sections(data, b"wtns", str(path))
        if 1 not in sections or 2 not in sections:
            raise BuildError(f"{path}: missing witness sections")
        hpos, hsize = sections[1]
        n8 = struct.unpack_from("<I", data, hpos)[0]
        if n8 == 0 or hsize != 8 + n8:
            raise BuildError(f"{path}: malformed witness header (n8={n8}, {hsize} bytes)")
        prime = int.from_bytes(data[hpos + 4:hpos + 4 + n8], "little")
        n = struct.unpack_from("<I", data, hpos + 4 + n8)[0]
    except struct.error:
        raise BuildError(f"{path} is truncated") from None
    dpos, dsize = sections[2]
    if dsize != n * n8:
        raise BuildError(f"{path}: witness section has {dsize} bytes, expected {n * n8}")
    vals = [int.from_bytes(data[dpos + i * n8:dpos + (i + 1) * n8], "little") for i in range(n)]
    return vals, prime


def write_wtns(path: str | Path, values: list[int], prime: int, n8: int = 32) -> None:
    """Write values (reduced mod prime) as a version-2 .wtns file."""
    header = struct.pack("<I", n8) + prime.to_bytes(n8, "little") + struct.pack("<I", len(values))
    body = b"".join((v % prime).to_bytes(n8, "little") for v in values)
    out = b"wtns" + struct.pack("<II", 2, 2)
    out += struct.pack("<IQ", 1, len(header)) + header
    out += struct.pack("<IQ", 2, len(body)) + body
    Path(path).write_bytes(out)
