"""Clip (and ReLU6 = Clip(0, 6)) with constant bounds.

Fused (onnx_import): a Clip with min <= 0 <= max after a requantizing producer (Dense, Add,
Conv, AvgPool) is absorbed into it. The producer's output is then the Clip's output tensor,
whose calibrated range lies inside [min, max] and, widened to hold 0, still does (min <= 0 <=
max): the requantization's clamp to [0, 2^bits - 1] *is* the clip (saturating at the calibrated
range, like every tensor). No constraint is added.

Standalone (anything else, e.g. Clip on the model input or Clip(0.5, 6)): the output keeps the
input's scale and zero point, and the integer kernel is, exactly,
    y = min(max(x, lo), hi),   lo = clamp(round(min / scale) + zp),  hi = clamp(round(max / scale) + zp)
(rounding is monotone, so quantize(clip(v)) = clamp(quantize(v), lo, hi); min > max gives hi,
as onnxruntime). Circuit: ClampQ, one LessThan(bits) per active side.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedOpError
from ..fgraph import FNode
from . import Bounds, OpDef, onnx_rule, register
from ._window import guarded


@dataclass
class Params:
    n: int
    bits: int
    lo: int
    hi: int


def clip_bounds(node, g, opset) -> tuple[float, float]:
    vals = []
    for k in (1, 2):
        name = node.input[k] if len(node.input) > k else ""
        if not name:
            vals.append(None)
            continue
        if name not in g.constants:
            raise UnsupportedOpError("Clip", opset, node.name, "min and max must be constants")
        v = np.asarray(g.constants[name]).reshape(-1)
        if v.size != 1 or np.isnan(v[0]):
            raise UnsupportedOpError("Clip", opset, node.name, "min and max must be single numbers")
        vals.append(float(v[0]))
    lo = -math.inf if vals[0] is None else vals[0]
    hi = math.inf if vals[1] is None else vals[1]
    return lo, hi


@onnx_rule("Clip")
@guarded
def clip_rule(node, g, opset):
    lo, hi = clip_bounds(node, g, opset)
    return [FNode("Clip", node.name, [node.input[0]], node.output[0], {"min": lo, "max": hi},
                  [f"Clip '{node.name}'"])]


def fusable(clip: FNode) -> bool:
    """A Clip that a producer's requantization clamp implements exactly (see the module doc)."""
    return clip.attrs["min"] <= 0.0 <= clip.attrs["max"]


def _q(v: float, scale: float, zp: int, qmax: int) -> int:
    if v == math.inf:
        return qmax
    if v == -math.inf:
        return 0
    return int(min(max(round(v / scale) + zp, 0), qmax))


@register
class Clip(OpDef):
    name = "Clip"
    Params = Params
    template_file = "clip.circom"

    def quantize(self, f: FNode, ctx):
        x = ctx.tensor(f.inputs[0])
        out = ctx.derived_tensor(f.output, x)
        return Params(x.size, x.bits, _q(f.attrs["min"], x.scale, x.zero_point, x.qmax),
                      _q(f.attrs["max"], x.scale, x.zero_point, x.qmax)), out

    def kernel(self, p: Params, x):
        return np.minimum(np.maximum(np.asarray(x, dtype=np.int64), p.lo), p.hi)

    def bounds(self, node, ins, out) -> Bounds:
        return Bounds(max_bits=node.params.bits + 1, what="clip comparison")

    def circom(self, node, ins, out, b: Bounds):
        p: Params = node.params
        clamp_lo, clamp_hi = int(p.lo > 0), int(p.hi < (1 << p.bits) - 1)
        if not clamp_lo and not clamp_hi:
            return None
        return "ClampQ", [("N", p.n), ("BITS", p.bits), ("LO", p.lo), ("HI", p.hi),
                          ("CLAMP_LO", clamp_lo), ("CLAMP_HI", clamp_hi)]
