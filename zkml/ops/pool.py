"""Pools: MaxPool / GlobalMaxPool (IR op MaxPool) and AveragePool / GlobalAveragePool (IR op
AvgPool), 1-D and 2-D, with strides, pads, dilations, ceil_mode and count_include_pad.
Window geometry as in zkml/ops/_window.py ([N, C, H, W] view, *present* taps 0 <= iy < H,
0 <= ix < W).

MaxPool integer kernel, per output (n, c, oy, ox):
    y = max of x[n, c, iy, ix] over the present taps
ONNX pads MaxPool with -inf, so padding never wins: skipping it is exact. The output keeps the
input's scale and zero point (max commutes with the monotone affine map), so there is no
rounding at all. A window made only of padding has no value; such models are refused.
Circuit: a running max over the present taps, one circomlib LessThan(bits) and one selection
product per comparison: (taps - 1) * (bits + 2) constraints per output.

AvgPool integer kernel, per output:
    acc = sum over present taps of (x - x_zp)
    y   = clamp(floor((acc*mult[cls] + 2^(shift-1)) / 2^shift) + out_zp, out_lo, 2^out_bits - 1)
with mult[cls] ~ 2^shift * x_scale / (count * out_scale), count = the present taps
(count_include_pad=0) or the taps inside the padded extent (count_include_pad=1: padding is
real 0 = x_zp and contributes 0 to acc). Windows with different counts (edges) get different
multipliers: cls[p] indexes the distinct counts. Circuit: one RequantClamp per output.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedOpError
from ..fgraph import FNode
from ..qparams import multipliers
from . import Bounds, OpDef, onnx_rule, register
from ._requant import requant_args, requant_bounds, requant_kernel
from ._window import (Geometry, attr, check_windows_nonempty, geometry_args, guarded, padded_counts, tap_table,
                      window_geometry)


def _global_geometry(shape: list[int]) -> Geometry:
    if len(shape) == 3:
        return Geometry(shape[0], shape[1], 1, shape[2], 1, shape[2], 1, 1, 0, 0, 0, 0, 1, 1, 1, 1)
    hw = int(np.prod(shape[2:]))
    # N-D global pooling: every spatial position of a channel is in the one window
    return Geometry(shape[0], shape[1], 1, hw, 1, hw, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1)


def _pool_rule(node, g, opset, kind: str):
    x = node.input[0]
    if x in g.constants or x not in g.shapes:
        raise UnsupportedOpError(node.op_type, opset, node.name, "the input must be an activation of known shape")
    if len(node.output) > 1 and node.output[1]:
        raise UnsupportedOpError(node.op_type, opset, node.name, "the Indices output is not supported")
    xs = g.shapes[x]
    if len(xs) < 3:
        raise UnsupportedOpError(node.op_type, opset, node.name, f"input of shape {xs} has no spatial dimension")
    if node.op_type.startswith("Global"):
        geo = _global_geometry(xs)
        incl = 0
    else:   # (storage_order only concerns the Indices output, refused above)
        geo = window_geometry(node, xs, None, opset, ceil_ok=True)
        incl = int(attr(node, "count_include_pad", 0))
    check_windows_nonempty(geo, node.op_type, opset, node.name)
    return [FNode(kind, node.name, [x], node.output[0], {"geom": geo.as_dict(), "count_include_pad": incl,
                                                          "relu": False}, [f"{node.op_type} '{node.name}'"])]


@onnx_rule("MaxPool", "GlobalMaxPool")
@guarded
def maxpool_rule(node, g, opset):
    return _pool_rule(node, g, opset, "MaxPool")


@onnx_rule("AveragePool", "GlobalAveragePool")
@guarded
def avgpool_rule(node, g, opset):
    return _pool_rule(node, g, opset, "AvgPool")


def _geom_fields(geo: Geometry) -> list:
    return [geo.n, geo.c, geo.h, geo.w, geo.oh, geo.ow, geo.kh, geo.kw, geo.sh, geo.sw, geo.pt, geo.pl,
            geo.dh, geo.dw]


@dataclass
class _PoolGeometry:
    """The window geometry both pooling operators store (see _window.Geometry)."""
    n: int
    c: int
    h: int
    w: int
    oh: int
    ow: int
    kh: int
    kw: int
    sh: int
    sw: int
    pt: int
    pl: int
    dh: int
    dw: int

    def geometry(self) -> Geometry:
        return Geometry(self.n, self.c, self.h, self.w, self.kh, self.kw, self.sh, self.sw, self.pt, self.pl,
                        0, 0, self.dh, self.dw, self.oh, self.ow)


def max_window_constraints(taps: int, bits: int, opt: str = "O2") -> int:
    """R1CS constraints of one MaxWindow(taps, bits) (circuits/pool.circom), or of the same running
    maximum written out in ConvMaxPool2D: per step a Num2Bits(bits + 1) and the selection; --O1
    also keeps the two linear ones (the Num2Bits sum and its input)."""
    return (taps - 1) * (bits + 2 + (2 if opt == "O1" else 0))


@dataclass
class MaxParams(_PoolGeometry):
    bits: int


@register
class MaxPool(OpDef):
    name = "MaxPool"
    Params = MaxParams
    template_file = "pool.circom"

    def quantize(self, f: FNode, ctx):
        x = ctx.tensor(f.inputs[0])
        geo = Geometry(**f.attrs["geom"])
        out = ctx.derived_tensor(f.output, x)
        return MaxParams(*_geom_fields(geo), x.bits), out

    def kernel(self, p: MaxParams, x):
        index, inside = tap_table(p.geometry())
        xv = np.asarray(x, dtype=np.int64).reshape(p.n, p.c, p.h * p.w)
        win = np.where(inside[None, None], xv[:, :, index], -1)      # padding below every value
        return win.max(axis=-1).reshape(p.n, p.c, p.oh, p.ow)

    def bounds(self, node, ins, out) -> Bounds:
        return Bounds(max_bits=node.params.bits + 1, what="max comparison")

    def circom(self, node, ins, out, b: Bounds):
        p: MaxParams = node.params
        if p.kh * p.kw == 1 and p.h * p.w == p.oh * p.ow and (p.sh, p.sw, p.pt, p.pl) == (1, 1, 0, 0):
            return None                     # a 1x1 window with stride 1: the identity
        return "MaxPool2D", [*geometry_args(p.geometry()), ("BITS", p.bits)]


@dataclass
class AvgParams(_PoolGeometry):
    x_zp: int
    counts: list     # the distinct divisors
    cls: list        # [oh*ow] index into counts / mult for every output position
    mult: list       # [len(counts)]
    shift: int
    out_zp: int
    out_lo: int
    out_bits: int


@register
class AvgPool(OpDef):
    name = "AvgPool"
    Params = AvgParams
    template_file = "pool.circom"

    def quantize(self, f: FNode, ctx):
        x = ctx.tensor(f.inputs[0])
        geo = Geometry(**f.attrs["geom"])
        _, inside = tap_table(geo)
        count = padded_counts(geo) if f.attrs.get("count_include_pad") else inside.sum(axis=1)
        counts = sorted({int(c) for c in count})
        cls = [counts.index(int(c)) for c in count]
        relu = f.attrs.get("relu", False)
        out = ctx.new_tensor(f.output, relu=relu)
        mult, shift = multipliers([x.scale / (c * out.scale) for c in counts], ctx.cfg.precision)
        p = AvgParams(*_geom_fields(geo), x.zero_point, counts, cls, mult, shift, out.zero_point,
                      out.zero_point if relu else 0, out.bits)
        return p, out

    def kernel(self, p: AvgParams, x):
        index, inside = tap_table(p.geometry())
        xc = np.asarray(x, dtype=np.int64).reshape(p.n, p.c, p.h * p.w) - p.x_zp
        acc = np.where(inside[None, None], xc[:, :, index], 0).sum(axis=-1).astype(object)   # [N, C, P]
        m = np.array([p.mult[k] for k in p.cls], dtype=object)
        return requant_kernel(acc * m[None, None, :], p.shift, p.out_zp, p.out_lo, p.out_bits) \
            .reshape(p.n, p.c, p.oh, p.ow)

    def bounds(self, node, ins, out) -> Bounds:
        p: AvgParams = node.params
        _, inside = tap_table(p.geometry())
        present = inside.sum(axis=1)
        xmax = ins[0].qmax
        amin = min(-p.x_zp * int(t) * p.mult[k] for t, k in zip(present, p.cls))
        amax = max((xmax - p.x_zp) * int(t) * p.mult[k] for t, k in zip(present, p.cls))
        return requant_bounds(amin, amax, p.shift, p.out_zp, p.out_lo, p.out_bits, what="pool accumulator")

    def circom(self, node, ins, out, b: Bounds):
        p: AvgParams = node.params
        return "AvgPool2D", [*geometry_args(p.geometry()), ("XZP", p.x_zp), ("CLS", p.cls), ("MULT", p.mult),
                             ("K", b.circuit["K"]), *requant_args(b)]
