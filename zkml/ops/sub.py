"""Sub of two activations (NumPy broadcasting): Add's kernel and template (circuits/add.circom,
AddRequant) with the second operand's multiplier negated. Sub by a constant is an Affine
(zkml/ops/affine.py, which also holds the ONNX rule for Sub).

Integer kernel, per output element i (a_index/b_index implement broadcasting):
    acc[i] = (a[a_index[i]] - a_zp) * ma - (b[b_index[i]] - b_zp) * |mb|      (mb < 0 is stored)
    y[i]   = clamp(floor((acc[i] + 2^(shift-1)) / 2^shift) + out_zp, out_lo, 2^out_bits - 1)
The bound rule takes each term's range with its sign, so the offset K keeps the requantization
input non-negative whatever the operands.
"""
from __future__ import annotations

from ..fgraph import FNode
from . import Bounds, register
from ._requant import requant_bounds
from .add import Add, Params


def term_range(zp: int, qmax: int, m: int) -> tuple[int, int]:
    """The range of (v - zp) * m over v in [0, qmax]."""
    ends = (-zp * m, (qmax - zp) * m)
    return min(ends), max(ends)


@register
class Sub(Add):
    name = "Sub"
    Params = Params

    def quantize(self, f: FNode, ctx):
        p, out = super().quantize(f, ctx)
        p.mb = -p.mb
        return p, out

    def bounds(self, node, ins, out) -> Bounds:
        p: Params = node.params
        (alo, ahi), (blo, bhi) = term_range(p.a_zp, ins[0].qmax, p.ma), term_range(p.b_zp, ins[1].qmax, p.mb)
        return requant_bounds(alo + blo, ahi + bhi, p.shift, p.out_zp, p.out_lo, p.out_bits,
                              what="sub accumulator")
