"""Affine: per-output affine map of a sum of input values, one requantization per output.
ONNX: Sub, Mul and Div by a constant (NumPy broadcasting, per-element constants), a constant
minus an activation, ReduceSum and ReduceMean (axes as attribute or constant input, keepdims,
noop_with_empty_axes). Sub of two activations is the IR operator Sub (zkml/ops/sub.py).

Float form (onnx_import): y[i] = c[i] * sum_{t < T} x[idx[i][t]] + b[i]
    Sub(x, C): T=1, c=1, b=-C    Sub(C, x): c=-1, b=C    Mul(x, C): c=C    Div(x, C): c=1/C
    ReduceSum over K values: T=K, c=1, b=0                ReduceMean: T=K, c=1/K, b=0

Quantization: with x = s_x*(q_x - x_zp) and y = s_y*(q_y - y_zp),
    q_y = round(c*s_x/s_y * sum_t (q_x[idx] - x_zp) + b/s_y) + y_zp.
The reals c*s_x/s_y become signed integers mult / 2^shift (a negative constant is a negative
multiplier: the accumulator is signed, and the bound analysis below proves the offset K that
keeps the requantization input non-negative), b/s_y becomes bias / 2^shift (bias in units of
2^-shift output steps). Distinct (mult, bias) pairs are stored once; cls[i] picks output i's.

Integer kernel, per output i:
    acc[i] = (sum_{t < T} (x[idx[i*T + t]] - x_zp)) * mult[cls[i]] + bias[cls[i]]
    y[i]   = clamp(floor((acc[i] + 2^(shift-1)) / 2^shift) + out_zp, out_lo, 2^out_bits - 1)
Circuit: AffineRequant (circuits/affine.circom), a linear combination of range-checked inputs
with constant coefficients (no constraint) and one RequantClamp per output.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedOpError
from ..fgraph import FNode
from ..qparams import multipliers
from . import Bounds, OpDef, onnx_rule, register
from ._requant import requant_args, requant_bounds, requant_kernel
from ._window import attr, guarded
from .indexing import out_shape


@dataclass
class Params:
    n_in: int
    t: int           # terms summed per output
    idx: list        # [n_out * t] input element of term t of output i at i*t + t
    x_zp: int
    cls: list        # [n_out] index into mult / bias
    mult: list       # signed requantization multipliers
    bias: list       # signed, in units of 2^-shift output steps
    shift: int
    out_zp: int
    out_lo: int
    out_bits: int


def _affine(node, x, idx, c, b, t=1) -> list[FNode]:
    return [FNode("Affine", node.name, [x], node.output[0],
                  {"idx": np.asarray(idx, dtype=np.int64).reshape(-1, t), "c": np.asarray(c, dtype=np.float64),
                   "b": np.asarray(b, dtype=np.float64), "relu": False}, [f"{node.op_type} '{node.name}'"])]


@onnx_rule("Sub", "Mul", "Div")
@guarded
def arith_rule(node, g, opset):
    op = node.op_type
    a, b = node.input[0], node.input[1]
    ca, cb = a in g.constants, b in g.constants
    if not ca and not cb:
        if op == "Sub":
            return [FNode("Sub", node.name, [a, b], node.output[0], {"relu": False}, [f"Sub '{node.name}'"])]
        raise UnsupportedOpError(op, opset, node.name, f"{op} of two activations is not supported (only by a "
                                                       "constant)")
    if op == "Div" and ca:
        raise UnsupportedOpError("Div", opset, node.name, "dividing a constant by an activation is not supported")
    x, k = (b, g.constants[a]) if ca else (a, g.constants[b])
    oshape = out_shape(node, g)
    xs = list(g.shapes[x])
    C = np.broadcast_to(np.asarray(k, dtype=np.float64), oshape).reshape(-1)
    if not np.all(np.isfinite(C)) or (op == "Div" and np.any(C == 0)):
        raise UnsupportedOpError(op, opset, node.name, "the constant holds a zero divisor or a non-finite value")
    idx = np.broadcast_to(np.arange(int(np.prod(xs))).reshape(xs), oshape).reshape(-1)
    ones, zeros = np.ones_like(C), np.zeros_like(C)
    if op == "Sub":
        return _affine(node, x, idx, -ones if ca else ones, C if ca else -C)
    return _affine(node, x, idx, C if op == "Mul" else 1.0 / C, zeros)


@onnx_rule("ReduceSum", "ReduceMean")
@guarded
def reduce_rule(node, g, opset):
    x = node.input[0]
    shape = list(g.shapes[x])
    r = len(shape)
    axes = attr(node, "axes", None)
    if len(node.input) > 1 and node.input[1]:
        if node.input[1] not in g.constants:
            raise UnsupportedOpError(node.op_type, opset, node.name, "axes must be a constant")
        axes = [int(v) for v in np.asarray(g.constants[node.input[1]]).reshape(-1)]
    if not axes:
        if int(attr(node, "noop_with_empty_axes", 0)):
            return [FNode("Reshape", node.name, [x], node.output[0], {}, [f"{node.op_type} '{node.name}'"])]
        axes = list(range(r))
    if any(not -r <= a < r for a in axes) or len({a % r for a in axes}) != len(axes):
        raise UnsupportedOpError(node.op_type, opset, node.name, f"axes {axes} for an input of rank {r}")
    axes = sorted(a % r for a in axes)
    keep = [a for a in range(r) if a not in axes]
    n = int(np.prod([shape[a] for a in axes]))
    if n == 0 or int(np.prod(shape)) == 0:
        raise UnsupportedOpError(node.op_type, opset, node.name, "reducing an empty tensor")
    out_shape(node, g)
    grid = np.arange(int(np.prod(shape))).reshape(shape).transpose(keep + axes).reshape(-1, n)
    c = np.full(grid.shape[0], 1.0 / n if node.op_type == "ReduceMean" else 1.0)
    return _affine(node, x, grid, c, np.zeros_like(c), t=n)


@register
class Affine(OpDef):
    name = "Affine"
    Params = Params
    template_file = "affine.circom"

    def quantize(self, f: FNode, ctx):
        x = ctx.tensor(f.inputs[0])
        relu = f.attrs.get("relu", False)
        out = ctx.new_tensor(f.output, relu=relu)
        idx = np.asarray(f.attrs["idx"], dtype=np.int64)
        c, b = np.asarray(f.attrs["c"], dtype=np.float64), np.asarray(f.attrs["b"], dtype=np.float64)
        reals = c * x.scale / out.scale
        mags, shift = multipliers(np.abs(reals), ctx.cfg.precision)
        mult = [int(m) if r >= 0 else -int(m) for m, r in zip(mags, reals)]
        bias_f = np.round(b / out.scale * float(1 << shift))
        if not np.all(np.isfinite(bias_f)):
            raise UnsupportedOpError(f.onnx[0].split()[0] if f.onnx else "Affine", ctx.opset, f.name,
                                     "the constant or the scales are not finite")
        pairs = list(zip(mult, (int(v) for v in bias_f)))
        uniq = list(dict.fromkeys(pairs))
        where = {pq: k for k, pq in enumerate(uniq)}
        p = Params(x.size, idx.shape[1], [int(v) for v in idx.reshape(-1)], x.zero_point,
                   [where[pq] for pq in pairs], [m for m, _ in uniq], [v for _, v in uniq], shift,
                   out.zero_point, out.zero_point if relu else 0, out.bits)
        return p, out

    def kernel(self, p: Params, x):
        xf = np.asarray(x, dtype=np.int64).reshape(-1)
        n_out = len(p.cls)
        s = (xf[np.array(p.idx, dtype=np.int64)].reshape(n_out, p.t) - p.x_zp).sum(axis=1).astype(object)
        cls = np.array(p.cls, dtype=np.int64)
        acc = s * np.array(p.mult, dtype=object)[cls] + np.array(p.bias, dtype=object)[cls]
        return requant_kernel(acc, p.shift, p.out_zp, p.out_lo, p.out_bits)

    def bounds(self, node, ins, out) -> Bounds:
        p: Params = node.params
        if len(p.idx) != len(p.cls) * p.t or len(p.mult) != len(p.bias) or \
                any(not 0 <= i < p.n_in for i in p.idx) or any(not 0 <= k < len(p.mult) for k in p.cls):
            raise ValueError("idx / cls / mult / bias do not fit together")
        lo_s, hi_s = -p.x_zp * p.t, (ins[0].qmax - p.x_zp) * p.t      # range of the sum of T terms
        ends = [(lo_s * m + b, hi_s * m + b) for m, b in zip(p.mult, p.bias)]
        amin = min(min(e) for e in ends)
        amax = max(max(e) for e in ends)
        return requant_bounds(amin, amax, p.shift, p.out_zp, p.out_lo, p.out_bits, what="affine accumulator")

    def circom(self, node, ins, out, b: Bounds):
        p: Params = node.params
        return "AffineRequant", [("NIN", p.n_in), ("NOUT", len(p.cls)), ("T", p.t), ("IDX", p.idx),
                                 ("XZP", p.x_zp), ("CLS", p.cls), ("MULT", p.mult), ("BIAS", p.bias),
                                 ("K", b.circuit["K"]), *requant_args(b)]
