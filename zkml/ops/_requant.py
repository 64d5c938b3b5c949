"""Requantization shared by every operator that ends in one: integer kernel and bound rule.

Kernel (exact):   y = clamp(floor((acc + 2^(s-1)) / 2^s) + zp, lo, 2^bits - 1)
where `acc` is the operator's integer accumulator already multiplied by its integer
multiplier(s) (round half up, i.e. floor of acc/2^s + 1/2).

Circuit (circuits/requant.circom, RequantClamp): the emitter feeds
    N = acc + 2^(s-1) + K*2^s            (K >= zp chosen so that N >= 0 always)
and the template computes q = floor(N / 2^s) and r = N mod 2^s (bits of one decomposition of
N on the aligned way below; otherwise witnessed and constrained by N = q*2^s + r with r < 2^s
and q < 2^QBITS by bit decomposition), then clamps q to [LO, HI] and subtracts OFF = K - zp.
The bound rule below proves 0 <= N < 2^(s + QBITS) <= 2^252.

K is free above its least value (any K shifts q, LO, HI and OFF alike). When both clamps act
and the output range HI - LO + 1 is a power of two (a full uint range, e.g. lo = 0), K is
raised so that LO = 2^(QBITS-1): the template then reads both clamps from q's own bits (the
"aligned" way: one Num2Bits(SHIFT + QBITS) of N gives r and q's bits, SHIFT + QBITS + 4
constraints at --O2 instead of SHIFT + 2*QBITS + 4 with two comparators; `requant_path` mirrors
the template's rule).
"""
from __future__ import annotations

import numpy as np

from ..ir import FIELD_SAFE_BITS, bits_for
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
    if clamp_lo and clamp_hi and _power_of_two((1 << bits) - lo):      # HI - LO + 1
        # aligned: the smallest Q with LO + d = 2^(Q-1) (d >= 0) and qmax + d < 2^Q
        a = max(lo_q, qmax - lo_q + 1)
        q_al = (a - 1).bit_length() + 1
        if shift + q_al <= FIELD_SAFE_BITS and q_al < 2 * qbits:
            d = (1 << (q_al - 1)) - lo_q
            k, off, lo_q, hi_q = k + d, off + d, lo_q + d, hi_q + d
            nmax, qmax, qbits = nmax + d * unit, qmax + d, q_al
    return Bounds(
        max_bits=max(shift + qbits, bits_for(nmax)),
        what=what,
        circuit=dict(K=k, SHIFT=shift, QBITS=qbits, LO=lo_q, HI=hi_q, OFF=off,
                     CLAMP_LO=int(clamp_lo), CLAMP_HI=int(clamp_hi)),
    )


def requant_args(b: Bounds) -> list:
    c = b.circuit
    return [(k, c[k]) for k in ("SHIFT", "QBITS", "LO", "HI", "OFF", "CLAMP_LO", "CLAMP_HI")]


def _power_of_two(n: int) -> bool:
    """n = 2^B with B >= 1 (an output range the aligned way can clamp)."""
    return n > 1 and n & (n - 1) == 0


def requant_path(c: dict) -> str:
    """How circuits/requant.circom's RequantClamp clamps with these parameters (its
    requant_aligned_bits rule): "aligned", "comparators" or "none" (no clamp acts)."""
    q, lo, hi = c["QBITS"], c["LO"], c["HI"]
    width = hi - lo + 1
    if c["CLAMP_LO"] and c["CLAMP_HI"] and q >= 2 and lo == 1 << (q - 1) and _power_of_two(width) \
            and width.bit_length() - 1 <= q - 2:
        return "aligned"
    return "comparators" if c["CLAMP_LO"] or c["CLAMP_HI"] else "none"


def requant_constraints(c: dict, opt: str = "O2") -> int:
    """R1CS constraints of one RequantClamp instance (circom --O2; --O1 keeps the linear ones:
    each Num2Bits' sum, in === q*2^S + r, each comparator's output and the wiring of sums)."""
    s, q = c["SHIFT"], c["QBITS"]
    path = requant_path(c)
    if path == "aligned":
        b = (c["HI"] - c["LO"] + 1).bit_length() - 1
        # the one Num2Bits(S + Q)'s sum; IsZero's input unless it is one bit (--O1 merges)
        return s + q + 4 + (0 if opt == "O2" else 1 + int(q - 1 - b > 1))
    if path == "none":
        n2, lin = s + q, 3              # the two Num2Bits sums, in === q*2^S + r
    else:                               # rBits' sum, in === ...; per comparator its n2b sum, out, input
        k = c["CLAMP_LO"] + c["CLAMP_HI"]
        n2, lin = s + k * (q + 2), 2 + 3 * k
    lin -= int(s == 1)                  # Num2Bits(1)'s sum is an equality: --O1 merges it
    return n2 if opt == "O2" else n2 + lin
