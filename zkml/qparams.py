"""Quantization arithmetic shared by the operator rules: unsigned affine parameters
and integer (multiplier, shift) requantization. Floats exist only here, before the IR."""
from __future__ import annotations

import math

import numpy as np


def affine_params(lo: float, hi: float, bits: int) -> tuple[float, int]:
    """Scale and zero point so that [lo, hi] (widened to hold 0) maps onto [0, 2^bits - 1]."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    qmax = (1 << bits) - 1
    if hi - lo < 1e-12:
        return 1.0 / qmax, 0
    scale = (hi - lo) / qmax
    zp = int(round(-lo / scale))
    return scale, min(max(zp, 0), qmax)


def quantize_array(x: np.ndarray, scale, zero_point, bits: int) -> np.ndarray:
    q = np.round(np.asarray(x, dtype=np.float64) / scale) + zero_point
    return np.clip(q, 0, (1 << bits) - 1).astype(np.int64)


def multipliers(reals, precision: int) -> tuple[list[int], int]:
    """Integer multipliers M_j and one shared shift s with M_j / 2^s ~= reals[j].

    The largest multiplier gets `precision` significant bits; s >= 1 so the rounding
    constant 2^(s-1) is an integer.
    """
    reals = [float(r) for r in reals]
    if any(r < 0 or not math.isfinite(r) for r in reals):
        raise ValueError(f"requantization multipliers must be finite and >= 0, got {reals}")
    top = max(reals) if reals else 0.0
    if top == 0.0:
        return [0 for _ in reals], 1
    e = math.floor(math.log2(top))
    shift = max(1, precision - 1 - e)
    return [int(round(r * (1 << shift))) for r in reals], shift
