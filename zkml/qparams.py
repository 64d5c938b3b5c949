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


def quantize_weights(W: np.ndarray, bits: int, per_channel: bool, grid=None):
    """Unsigned weights for a [n_out, k] float matrix: (wq, w_scale[n_out], w_zp[n_out], bits).

    Calibrated (grid None): an affine grid per output row (or one for the whole matrix) from the
    values' min and max. Given (pre-quantized models, zkml/qdq.py): `grid` = (scales[n_out],
    zero_points[n_out], qmin, qmax) is the model's own integer grid; q - qmin moves it onto
    [0, qmax - qmin] with zero point zp - qmin, so (wq - w_zp) * scale are the model's values."""
    if grid is not None:
        scales, zps, qmin, qmax = grid
        scales = np.asarray(scales, dtype=np.float64)
        zps = np.asarray(zps, dtype=np.int64)
        if np.all(scales > 0) and np.all(np.isfinite(scales)):
            wq = np.clip(np.round(W / scales[:, None]) + zps[:, None] - qmin, 0, qmax - qmin).astype(np.int64)
            return wq, scales, zps - qmin, int(qmax - qmin).bit_length()
    rows = W if per_channel else W.reshape(1, -1)
    sz = [affine_params(r.min(), r.max(), bits) for r in rows]
    if not per_channel:
        sz = sz * W.shape[0]
    w_scale = np.array([s for s, _ in sz])
    w_zp = np.array([z for _, z in sz], dtype=np.int64)
    wq = np.clip(np.round(W / w_scale[:, None]) + w_zp[:, None], 0, (1 << bits) - 1).astype(np.int64)
    return wq, w_scale, w_zp, bits


def aligned_weights(W: np.ndarray, bits: int, per_channel: bool, ratio: float, max_extra_bits: int = 8):
    """Constant weights on the output's grid, so that requantization is a pure shift (multiplier 1).

    W is a [n_out, k] float matrix and ratio = x_scale / out_scale. The weights are rounded to
    one step d = 2^-s / ratio for every row, so that acc * x_scale * d / out_scale = acc / 2^s.
    s is the smallest shift whose step is no coarser than the affine rule's (`bits`, per row or per
    tensor) on any row with non-zero weights: every row keeps at least its affine resolution and
    the only requantization error left is the final rounding. Against `multipliers` this
    drops the multiplier's ~10 bits from the remainder that RequantClamp range-checks, at the
    price of wider integer weights, which are free while they are circuit constants. A row whose
    range is more than 2^max_extra_bits below the widest row's is capped there (as a 16-bit
    multiplier would be).

    Returns (wq, w_scale[n_out], w_zp[n_out], weight bits, shift), wq unsigned with zero point
    w_zp per row, as quantize_weights."""
    qmax = (1 << bits) - 1
    lo, hi = np.minimum(W.min(axis=1), 0.0), np.maximum(W.max(axis=1), 0.0)
    spans = hi - lo if per_channel else np.full(W.shape[0], float(hi.max() - lo.min()))
    live = spans[spans > 1e-12]
    if not (ratio > 0 and math.isfinite(ratio)):
        raise ValueError(f"the scale ratio x_scale / out_scale = {ratio} is not a positive finite number")
    shift = 1
    if live.size:
        fine, coarse = float(live.min()) / qmax, float(live.max()) / qmax
        want = math.ceil(math.log2(1.0 / (ratio * fine)))
        cap = math.ceil(math.log2(1.0 / (ratio * coarse))) + max_extra_bits
        shift = max(1, min(want, cap))
    step = 1.0 / (ratio * (1 << shift))
    wf = np.round(W / step)
    if not np.all(np.isfinite(wf)):
        raise ValueError("the weights on the output's grid are not finite (scales out of range)")
    # Python ints past int64 (absurd scales): the bound analysis then refuses the layer by name
    wi = wf.astype(np.int64) if np.abs(wf).max(initial=0) < 2.0 ** 62 else \
        np.vectorize(int, otypes=[object])(wf)
    zp = np.maximum(-wi.min(axis=1), 0)
    wq = wi + zp[:, None]
    wbits = max(1, int(max(wq.max(initial=0), zp.max(initial=0))).bit_length())
    return wq, np.full(W.shape[0], step), zp, wbits, shift


def multipliers(reals, precision: int, levels: int = 0, max_error: float = 0.0) -> tuple[list[int], int]:
    """Integer multipliers M_j and one shared shift s with M_j / 2^s ~= reals[j].

    The largest multiplier gets `precision` significant bits; s >= 1 so the rounding
    constant 2^(s-1) is an integer.

    With `levels` and `max_error` > 0 (an operator whose output is round(acc * reals[j]) + zero
    point for one zero-point-corrected accumulator acc), s is instead the smallest shift whose
    multipliers add at most `max_error` output LSB to that rounding, if that is below the
    `precision` shift: |M_j - reals[j]*2^s| <= 1/2, and an output that is not clamped has
    |acc * reals[j]| <= levels, so the error |acc| * |M_j/2^s - reals[j]| <= levels / (2 * reals[j]
    * 2^s) <= max_error once 2^s >= levels / (2 * max_error * min_j reals[j]). Every bit of shift
    saved is one range-check constraint less per requantized value (RequantClamp decomposes
    acc*M + ..., whose width grows with M).
    """
    reals = [float(r) for r in reals]
    if any(r < 0 or not math.isfinite(r) for r in reals):
        raise ValueError(f"requantization multipliers must be finite and >= 0, got {reals}")
    top = max(reals) if reals else 0.0
    if top == 0.0:
        return [0 for _ in reals], 1
    e = math.floor(math.log2(top))
    shift = max(1, precision - 1 - e)
    if levels > 0 and max_error > 0:
        low = min(r for r in reals if r > 0)
        shift = max(1, min(shift, math.ceil(math.log2(levels / (2 * max_error * low)))))
    return [int(round(r * (1 << shift))) for r in reals], shift
