"""Requantization shared by every operator that ends in one: integer kernel and bound rule.

Kernel (exact):   y = clamp(floor((acc + 2^(s-1)) / 2^s) + zp, lo, 2^bits - 1)
where `acc` is the operator's integer accumulator already multiplied by its integer
multiplier(s) (round half up, i.e. floor of acc/2^s + 1/2).

Circuit (circuits/requant.circom, RequantClamp): the emitter feeds
    N = acc + 2^(s-1) + K*2^s            (K >= zp chosen so that N >= 0 always)
and the template witnesses q = floor(N / 2^s), r = N mod 2^s, constrains N = q*2^s + r
with r < 2^s and q < 2^QBITS by bit decomposition, then clamps q to [LO, HI] and
subtracts OFF = K - zp. The bound rule below proves 0 <= N < 2^(s + QBITS) <= 2^252.
"""
from __future__ import annotations

import numpy as np

from ..ir import bits_for
from . import Bounds


def requant_kernel(acc: np.ndarray, shift: int, zp: int, lo: int, bits: int) -> np.ndarray:
    acc = np.asarray(acc)
    if shift >= 62 and acc.dtype != object:  # 2^shift does not fit int64: use Python integers
        acc = acc.astype(object)
    half = 1 << (shift - 1)
    q = (acc + half) // (1 << shift) + zp
    return np.clip(q, lo, (1 << bits) - 1).astype(np.int64)


def requant_bounds(amin: int, amax: int, shift: int, zp: int, lo: int, bits: int,
                   what: str = "requantization input") -> Bounds:
    """amin/amax: the exact integer range of the scaled accumulator over all valid inputs."""
    half, unit = 1 << (shift - 1), 1 << shift
    k = zp
    if amin + half < 0:
        k = max(k, -((amin + half) // unit))     # ceil(-(amin+half) / 2^s)
    nmin, nmax = amin + half + k * unit, amax + half + k * unit
    assert nmin >= 0
    qmin, qmax = nmin // unit, nmax // unit
    off = k - zp
    lo_q, hi_q = off + lo, off + (1 << bits) - 1
    clamp_lo, clamp_hi = qmin < lo_q, qmax > hi_q
    top = max(qmax, lo_q if clamp_lo else 0, hi_q if clamp_hi else 0)
    qbits = bits_for(top)
    return Bounds(
        max_bits=max(shift + qbits, bits_for(nmax)),
        what=what,
        circuit=dict(K=k, SHIFT=shift, QBITS=qbits, LO=lo_q, HI=hi_q, OFF=off,
                     CLAMP_LO=int(clamp_lo), CLAMP_HI=int(clamp_hi)),
    )


def requant_args(b: Bounds) -> list:
    c = b.circuit
    return [(k, c[k]) for k in ("SHIFT", "QBITS", "LO", "HI", "OFF", "CLAMP_LO", "CLAMP_HI")]
