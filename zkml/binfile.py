"""The iden3 binary container shared by .r1cs, .wtns, .zkey and .ptau files:
magic (4 bytes), version u32, number of sections u32, then sections of (id u32, size u64, body)."""
from __future__ import annotations

import struct

from .errors import BuildError


def sections(data: bytes, magic: bytes, what: str = "file") -> dict[int, tuple[int, int]]:
    """{section id: (offset of its body, size)}; raises BuildError on a wrong magic or truncation."""
    if data[:4] != magic:
        raise BuildError(f"{what} is not a .{magic.decode()} file")
    _version, nsec = struct.unpack_from("<II", data, 4)
    pos, out = 12, {}
    for _ in range(nsec):
        if pos + 12 > len(data):
            raise BuildError(f"{what} is truncated")
        sid, size = struct.unpack_from("<IQ", data, pos)
        pos += 12
        out.setdefault(sid, (pos, size))
        pos += size
    if pos > len(data):
        raise BuildError(f"{what} is truncated")
    return out
