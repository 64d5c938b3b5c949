"""Add of two activations (NumPy broadcasting). A constant operand after a Gemm/MatMul is
folded into its bias by onnx_import.

Integer kernel, per output element i (a_index/b_index implement broadcasting):
    acc[i] = (a[a_index[i]] - a_zp) * ma + (b[b_index[i]] - b_zp) * mb
    y[i]   = clamp(floor((acc[i] + 2^(shift-1)) / 2^shift) + out_zp, out_lo, 2^out_bits - 1)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedOpError
from ..fgraph import FNode
from ..qparams import multipliers
from . import Bounds, OpDef, onnx_rule, register
from ._requant import requant_args, requant_bounds, requant_kernel


@dataclass
class Params:
    n: int
    a_index: list | None   # None: a has the output's shape
    b_index: list | None
    a_zp: int
    b_zp: int
    ma: int
    mb: int
    shift: int
    out_zp: int
    out_lo: int
    out_bits: int


@onnx_rule("Add")
def add_rule(node, g, opset):
    return [FNode("Add", node.name, list(node.input), node.output[0], {"relu": False}, [f"Add '{node.name}'"])]


def broadcast_index(shape, out_shape):
    idx = np.broadcast_to(np.arange(int(np.prod(shape))).reshape(shape), out_shape).reshape(-1)
    return None if np.array_equal(idx, np.arange(idx.size)) else [int(i) for i in idx]


@register
class Add(OpDef):
    name = "Add"
    Params = Params
    template_file = "add.circom"

    def quantize(self, f: FNode, ctx):
        if any(i in ctx.constants for i in f.inputs):
            raise UnsupportedOpError("Add", ctx.opset, f.name,
                                     "adding a constant is supported only as the bias of a preceding Gemm/MatMul")
        a, b = ctx.tensor(f.inputs[0]), ctx.tensor(f.inputs[1])
        out = ctx.new_tensor(f.output, relu=f.attrs.get("relu", False))
        (ma, mb), shift = multipliers([a.scale / out.scale, b.scale / out.scale], ctx.cfg.precision)
        p = Params(out.size, broadcast_index(a.shape, out.shape), broadcast_index(b.shape, out.shape),
                   a.zero_point, b.zero_point, ma, mb, shift, out.zero_point,
                   out.zero_point if f.attrs.get("relu") else 0, out.bits)
        return p, out

    def kernel(self, p: Params, a, b):
        a, b = np.asarray(a, dtype=np.int64).reshape(-1), np.asarray(b, dtype=np.int64).reshape(-1)
        if p.a_index is not None:
            a = a[p.a_index]
        if p.b_index is not None:
            b = b[p.b_index]
        acc = (a.astype(object) - p.a_zp) * p.ma + (b.astype(object) - p.b_zp) * p.mb
        return requant_kernel(acc, p.shift, p.out_zp, p.out_lo, p.out_bits)

    def bounds(self, node, ins, out) -> Bounds:
        p: Params = node.params
        amin = -p.a_zp * p.ma - p.b_zp * p.mb
        amax = (ins[0].qmax - p.a_zp) * p.ma + (ins[1].qmax - p.b_zp) * p.mb
        return requant_bounds(amin, amax, p.shift, p.out_zp, p.out_lo, p.out_bits, what="add accumulator")

    def circom(self, node, ins, out, b: Bounds):
        p: Params = node.params
        ia = p.a_index if p.a_index is not None else list(range(p.n))
        ib = p.b_index if p.b_index is not None else list(range(p.n))
        return "AddRequant", [("N", p.n), ("NA", ins[0].size), ("NB", ins[1].size), ("IA", ia),
                              ("IB", ib), ("AZP", p.a_zp), ("BZP", p.b_zp), ("MA", p.ma), ("MB", p.mb),
                              ("K", b.circuit["K"]), *requant_args(b)]
