"""Dense: Gemm, and MatMul by a constant matrix (bias Add and Relu fused by onnx_import).

Integer kernel, per row r and output j:
    acc[r,j] = sum_k (x[r,k] - x_zp) * (w[j][k] - w_zp[j]) + bias[j]
    y[r,j]   = clamp(floor((acc[r,j]*mult[j] + 2^(shift-1)) / 2^shift) + out_zp, out_lo, 2^out_bits - 1)
Weights are compile-time constants: the products cost no constraint; the cost is the
requantization (range checks) of each output.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import BuildError, UnsupportedOpError
from ..fgraph import FNode
from . import Bounds, OpDef, onnx_rule, register
from ._requant import requant_args, requant_bounds, requant_kernel


@dataclass
class Params:
    rows: int
    n_in: int
    n_out: int
    w: list          # [n_out][n_in] unsigned weights
    w_zp: list       # [n_out] weight zero point per output channel
    w_bits: int
    bias: list       # [n_out] integer bias in units of x_scale * w_scale[j]
    x_zp: int
    mult: list       # [n_out] requantization multipliers
    shift: int
    out_zp: int
    out_lo: int      # out_zp when a Relu is fused, else 0
    out_bits: int


def _attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            import onnx
            return onnx.helper.get_attribute_value(a)
    return default


@onnx_rule("Gemm")
def gemm_rule(node, g, opset):
    a, b = node.input[0], node.input[1]
    c = node.input[2] if len(node.input) > 2 and node.input[2] else None
    where = f"Gemm '{node.name}'"
    if a in g.constants or b not in g.constants or (c and c not in g.constants):
        raise UnsupportedOpError("Gemm", opset, node.name,
                                 "only activation x constant weights (with a constant bias) is supported")
    if _attr(node, "transA", 0):
        raise UnsupportedOpError("Gemm", opset, node.name, "transA=1 is not supported")
    alpha, beta = float(_attr(node, "alpha", 1.0)), float(_attr(node, "beta", 1.0))
    B = g.constants[b].astype(np.float64)
    W = B if _attr(node, "transB", 0) else B.T            # [n_out, n_in]
    W = alpha * W
    bias = np.zeros(W.shape[0])
    if c:
        bias = beta * np.broadcast_to(g.constants[c].astype(np.float64).reshape(-1), (W.shape[0],))
    attrs = {"W": W, "b": bias.copy(), "relu": False}
    if alpha == 1.0:
        _weight_grid(attrs, g, b, W.shape[0], 0 if _attr(node, "transB", 0) else 1)
    return [FNode("Dense", node.name, [a], node.output[0], attrs, [where])]


def _weight_grid(attrs: dict, g, const: str, n_out: int, out_axis: int) -> None:
    """A pre-quantized model's weight grid (zkml/qdq.py), per output channel, when there is one."""
    wg = g.weight_grids.get(const)
    grid = wg.per_output(n_out, out_axis, 2) if wg is not None else None
    if grid is not None:
        attrs["w_grid"] = (*grid, wg.qmin, wg.qmax)


@onnx_rule("MatMul")
def matmul_rule(node, g, opset):
    a, b = node.input
    if a in g.constants or b not in g.constants:
        raise UnsupportedOpError("MatMul", opset, node.name,
                                 "only activation x constant matrix is supported (no activation x activation yet)")
    B = g.constants[b]
    if B.ndim != 2:
        raise UnsupportedOpError("MatMul", opset, node.name, f"constant operand must be 2-D, got {B.shape}")
    W = B.astype(np.float64).T
    attrs = {"W": W, "b": np.zeros(W.shape[0]), "relu": False}
    _weight_grid(attrs, g, b, W.shape[0], 1)
    return [FNode("Dense", node.name, [a], node.output[0], attrs, [f"MatMul '{node.name}'"])]


@register
class Dense(OpDef):
    name = "Dense"
    Params = Params
    template_file = "dense.circom"

    def quantize(self, f: FNode, ctx):
        x = ctx.tensor(f.inputs[0])
        W, b = np.asarray(f.attrs["W"], dtype=np.float64), np.asarray(f.attrs["b"], dtype=np.float64)
        n_out, n_in = W.shape
        if x.shape[-1] != n_in:
            raise UnsupportedOpError("Dense", ctx.opset, f.name, f"input width {x.shape[-1]} != {n_in}")
        out = ctx.new_tensor(f.output, relu=f.attrs.get("relu", False))
        wq, w_scale, w_zp, wb, mult, shift = ctx.accumulator_weights(f.name, W, x, out, ctx.cfg.per_channel,
                                                                     f.attrs.get("w_grid"))
        bias_f = np.round(b / (x.scale * w_scale))
        if not np.all(np.isfinite(bias_f)):
            raise UnsupportedOpError("Dense", ctx.opset, f.name, "the bias or the scales are not finite")
        bias_q = [int(v) for v in bias_f]            # Python ints: a huge bias must not wrap around
        rows = x.size // n_in
        p = Params(rows, n_in, n_out, wq.tolist(), w_zp.tolist(), wb, [int(v) for v in bias_q],
                   x.zero_point, mult, shift, out.zero_point,
                   out.zero_point if f.attrs.get("relu") else 0, out.bits)
        return p, out

    channel_axis = -1

    def channels(self, p: Params) -> int:
        return p.n_out

    def split_channels(self, p: Params, lo: int, hi: int):
        assert 0 <= lo < hi <= p.n_out
        return dataclasses.replace(p, n_out=hi - lo, w=p.w[lo:hi], w_zp=p.w_zp[lo:hi], bias=p.bias[lo:hi],
                                   mult=p.mult[lo:hi])

    def kernel(self, p: Params, x):
        wc = np.array(p.w, dtype=np.int64) - np.array(p.w_zp, dtype=np.int64)[:, None]
        xc = np.asarray(x, dtype=np.int64).reshape(p.rows, p.n_in) - p.x_zp
        # int64 when the exact worst case of this call fits, Python integers otherwise
        worst = (int(np.abs(xc).max(initial=0)) * int(np.abs(wc).sum(axis=1).max(initial=0))
                 + max((abs(b) for b in p.bias), default=0)) * max(p.mult, default=0) + (1 << p.shift)
        dt = object if worst.bit_length() > 62 or max(p.mult, default=0).bit_length() > 62 else np.int64
        acc = xc.astype(dt) @ wc.T.astype(dt) + np.array(p.bias, dtype=dt)[None, :]
        scaled = acc * np.array(p.mult, dtype=dt)[None, :]
        return requant_kernel(scaled, p.shift, p.out_zp, p.out_lo, p.out_bits)

    def bounds(self, node, ins, out) -> Bounds:
        p: Params = node.params
        if len(p.w) != p.n_out or any(len(r) != p.n_in for r in p.w) or len(p.mult) != p.n_out:
            raise BuildError(f"node '{node.name}': Dense parameters do not match n_out={p.n_out}, n_in={p.n_in}")
        wmax = 1 << p.w_bits
        if any(not 0 <= w < wmax for r in p.w for w in r) or any(not 0 <= z < wmax for z in p.w_zp):
            raise BuildError(f"node '{node.name}': a weight or weight zero point does not fit {p.w_bits} bits")
        xmax = ins[0].qmax
        wc = [[int(w) - int(p.w_zp[j]) for w in row] for j, row in enumerate(p.w)]
        amin = amax = None
        for j, row in enumerate(wc):
            pos = sum(w for w in row if w > 0)
            neg = sum(w for w in row if w < 0)
            # (x - x_zp) ranges over [-x_zp, xmax - x_zp]
            lo_j = (xmax - p.x_zp) * neg + (-p.x_zp) * pos + p.bias[j]
            hi_j = (xmax - p.x_zp) * pos + (-p.x_zp) * neg + p.bias[j]
            lo_j, hi_j = lo_j * p.mult[j], hi_j * p.mult[j]
            amin = lo_j if amin is None else min(amin, lo_j)
            amax = hi_j if amax is None else max(amax, hi_j)
        return requant_bounds(amin, amax, p.shift, p.out_zp, p.out_lo, p.out_bits,
                              what="dense accumulator")

    def circom(self, node, ins, out, b: Bounds):
        p: Params = node.params
        return "Dense", [("ROWS", p.rows), ("NIN", p.n_in), ("NOUT", p.n_out), ("W", p.w),
                         ("WZP", p.w_zp), ("B", p.bias), ("XZP", p.x_zp), ("M", p.mult),
                         ("K", b.circuit["K"]), *requant_args(b)]
