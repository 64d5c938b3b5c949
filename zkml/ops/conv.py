"""Conv: 1-D and 2-D convolution by constant weights (strides, pads, dilations, groups,
depthwise), with its bias, a following constant Add, BatchNormalization, Relu and Clip fused
by onnx_import. A BatchNormalization that cannot be folded is lowered to a depthwise 1x1 Conv
(zkml/ops/batchnorm.py), so this operator is also the standalone per-channel affine requant.

Geometry (zkml/ops/_window.py): the input is viewed as [N, C, H, W]; output channel m belongs
to group g = m / (M/G) and reads input channels g*CG .. g*CG + CG - 1 (CG = C/G). For output
(n, m, oy, ox), with taps (ci, ky, kx), iy = oy*SH - PT + ky*DH, ix = ox*SW - PL + kx*DW:

    acc = B[m] + sum over *present* taps (0 <= iy < H, 0 <= ix < W) of
          (x[n, g*CG + ci, iy, ix] - x_zp) * (w[m][(ci*KH + ky)*KW + kx] - w_zp[m])
    y   = clamp(floor((acc*mult[m] + 2^(shift-1)) / 2^shift) + out_zp, out_lo, 2^out_bits - 1)

Taps in the padding are skipped: ONNX pads with real 0, which is x_zp, and (x_zp - x_zp)*w = 0.
Weights are compile-time constants, so the sum costs no constraint; each output costs one
RequantClamp (bit decompositions of the remainder and the quotient, plus the clamps the bounds
cannot rule out), exactly like a Dense output.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedOpError
from ..fgraph import FNode
from . import Bounds, OpDef, onnx_rule, register
from ._requant import requant_args, requant_bounds, requant_kernel
from ._window import Geometry, attr, geometry_args, guarded, tap_table, window_geometry


@dataclass
class Params:
    n: int
    c: int
    h: int
    w: int
    m: int           # output channels
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
    group: int
    wq: list         # [m][c/group * kh * kw] unsigned weights, index (ci*kh + ky)*kw + kx
    w_zp: list       # [m]
    w_bits: int
    bias: list       # [m] integer bias in units of x_scale * w_scale[m]
    x_zp: int
    mult: list       # [m]
    shift: int
    out_zp: int
    out_lo: int
    out_bits: int

    def geometry(self) -> Geometry:
        return Geometry(self.n, self.c, self.h, self.w, self.kh, self.kw, self.sh, self.sw, self.pt,
                        self.pl, 0, 0, self.dh, self.dw, self.oh, self.ow)


def pointwise_geometry(shape: list[int]) -> dict:
    """A 1x1 window over [N, C, *spatial] viewed as [N, C, prod(spatial), 1]."""
    hw = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return Geometry(shape[0], shape[1], hw, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, hw, 1).as_dict()


@onnx_rule("Conv")
@guarded
def conv_rule(node, g, opset):
    x, w = node.input[0], node.input[1]
    b = node.input[2] if len(node.input) > 2 and node.input[2] else None
    if x in g.constants or w not in g.constants or (b and b not in g.constants):
        raise UnsupportedOpError("Conv", opset, node.name,
                                 "only an activation convolved with constant weights (and a constant bias) "
                                 "is supported")
    W = g.constants[w].astype(np.float64)
    xs = g.shapes.get(x)
    if xs is None:
        raise UnsupportedOpError("Conv", opset, node.name, "the input shape is unknown")
    if W.ndim != len(xs) or W.size == 0:
        raise UnsupportedOpError("Conv", opset, node.name, f"weights of shape {list(W.shape)} for an input of "
                                                           f"shape {xs}")
    ks = attr(node, "kernel_shape", None)
    if ks is not None and list(ks) != list(W.shape[2:]):
        raise UnsupportedOpError("Conv", opset, node.name, f"kernel_shape {list(ks)} != weights {list(W.shape)}")
    geo = window_geometry(node, xs, list(W.shape[2:]), opset)
    group = int(attr(node, "group", 1))
    m = W.shape[0]
    if group < 1 or geo.c % group or m % group or W.shape[1] != geo.c // group:
        raise UnsupportedOpError("Conv", opset, node.name,
                                 f"weights {list(W.shape)} do not match {geo.c} input channels in {group} groups")
    bias = np.zeros(m) if b is None else g.constants[b].astype(np.float64).reshape(-1)
    if bias.size != m:
        raise UnsupportedOpError("Conv", opset, node.name, f"bias of {bias.size} values for {m} output channels")
    attrs = {"W": W.reshape(m, -1), "b": bias.copy(), "geom": geo.as_dict(), "group": group, "relu": False}
    if w in g.weight_grids:                # pre-quantized model: keep its integer weights
        grid = g.weight_grids[w].per_output(m, 0, W.ndim)
        if grid is not None:
            attrs["w_grid"] = (*grid, g.weight_grids[w].qmin, g.weight_grids[w].qmax)
    return [FNode("Conv", node.name, [x], node.output[0], attrs, [f"Conv '{node.name}'"])]


@register
class Conv(OpDef):
    name = "Conv"
    Params = Params
    template_file = "conv.circom"

    def quantize(self, f: FNode, ctx):
        x = ctx.tensor(f.inputs[0])
        geo = Geometry(**f.attrs["geom"])
        W, b = np.asarray(f.attrs["W"], dtype=np.float64), np.asarray(f.attrs["b"], dtype=np.float64)
        if geo.n * geo.c * geo.h * geo.w != x.size:
            raise UnsupportedOpError("Conv", ctx.opset, f.name, f"input {x.shape} does not match the geometry")
        per_channel = ctx.cfg.per_channel or f.attrs.get("per_channel", False)
        relu = f.attrs.get("relu", False)
        out = ctx.new_tensor(f.output, relu=relu)
        wq, w_scale, w_zp, w_bits, mult, shift = ctx.accumulator_weights(f.name, W, x, out, per_channel,
                                                                         f.attrs.get("w_grid"))
        bias_q = np.round(b / (x.scale * w_scale)).astype(np.int64)
        p = Params(geo.n, geo.c, geo.h, geo.w, W.shape[0], geo.oh, geo.ow, geo.kh, geo.kw, geo.sh, geo.sw,
                   geo.pt, geo.pl, geo.dh, geo.dw, int(f.attrs["group"]), wq.tolist(), w_zp.tolist(),
                   w_bits, [int(v) for v in bias_q], x.zero_point, mult, shift,
                   out.zero_point, out.zero_point if relu else 0, out.bits)
        return p, out

    def channels(self, p: Params) -> int:
        return p.m if p.group == 1 else 0

    def split_channels(self, p: Params, lo: int, hi: int):
        assert p.group == 1 and 0 <= lo < hi <= p.m
        return dataclasses.replace(p, m=hi - lo, wq=p.wq[lo:hi], w_zp=p.w_zp[lo:hi], bias=p.bias[lo:hi],
                                   mult=p.mult[lo:hi])

    def kernel(self, p: Params, x):
        geo = p.geometry()
        index, inside = tap_table(geo)                          # [P, T]
        cg, mg = p.c // p.group, p.m // p.group
        wc = np.array(p.wq, dtype=np.int64) - np.array(p.w_zp, dtype=np.int64)[:, None]   # [M, CG*T]
        xc = np.asarray(x, dtype=np.int64).reshape(p.n, p.c, p.h * p.w) - p.x_zp
        worst = (int(np.abs(xc).max(initial=0)) * int(np.abs(wc).sum(axis=1).max(initial=0))
                 + max((abs(v) for v in p.bias), default=0)) * max(p.mult, default=0) + (1 << p.shift)
        dt = object if worst.bit_length() > 62 else np.int64
        acc = np.zeros((p.n, p.m, index.shape[0]), dtype=dt)
        for gi in range(p.group):
            xg = xc[:, gi * cg:(gi + 1) * cg]                  # [N, CG, H*W]
            patches = np.where(inside[None, None], xg[:, :, index], 0)          # [N, CG, P, T]
            patches = patches.transpose(0, 2, 1, 3).reshape(p.n, index.shape[0], -1).astype(dt)
            wg = wc[gi * mg:(gi + 1) * mg].astype(dt)          # [MG, CG*T]
            acc[:, gi * mg:(gi + 1) * mg] = (patches @ wg.T).transpose(0, 2, 1)
        acc = acc + np.array(p.bias, dtype=dt)[None, :, None]
        scaled = acc * np.array(p.mult, dtype=dt)[None, :, None]
        return requant_kernel(scaled, p.shift, p.out_zp, p.out_lo, p.out_bits).reshape(p.n, p.m, p.oh, p.ow)

    def bounds(self, node, ins, out) -> Bounds:
        p: Params = node.params
        scaled = [(lo * m, hi * m) for (lo, hi), m in zip(channel_acc_ranges(p, ins[0].qmax), p.mult)]
        amin = min(min(r) for r in scaled)
        amax = max(max(r) for r in scaled)
        return requant_bounds(amin, amax, p.shift, p.out_zp, p.out_lo, p.out_bits, what="conv accumulator")

    def circom(self, node, ins, out, b: Bounds):
        p: Params = node.params
        return "Conv2D", [*geometry_args(p.geometry()), ("CO", p.m), ("G", p.group), ("WT", p.wq),
                          ("WZP", p.w_zp), ("B", p.bias), ("XZP", p.x_zp), ("MULT", p.mult),
                          ("K", b.circuit["K"]), *requant_args(b)]


def channel_acc_ranges(p: Params, xmax: int) -> list[tuple[int, int]]:
    """Per output channel j, the exact range [lo, hi] of the accumulator acc (bias included,
    before the multiplier) over every input in [0, xmax]. Every tap contributes a range that holds
    0 (x - x_zp ranges over [-x_zp, xmax - x_zp]), so the full kernel bounds every window,
    including windows that lose taps to the padding."""
    out = []
    for j, row in enumerate(p.wq):
        wc = [int(w) - int(p.w_zp[j]) for w in row]
        pos = sum(w for w in wc if w > 0)
        neg = sum(w for w in wc if w < 0)
        out.append(((xmax - p.x_zp) * neg + (-p.x_zp) * pos + p.bias[j],
                    (xmax - p.x_zp) * pos + (-p.x_zp) * neg + p.bias[j]))
    return out


def signal_weight_bounds(node, ins, out) -> Bounds:
    """Conv with weights as signals (ConvW, StrandConvW*): the accumulator range over EVERY
    weight in [0, 2^w_bits) and every input in [0, qmax], not only the model's weights, so no
    prover-chosen weight can take a requantization input outside [0, 2^252). Each of the
    T = C/G*KH*KW taps lies in [min corner, max corner], a range that holds 0, so windows that
    lose taps to the padding are bounded too."""
    p: Params = node.params
    taps = p.c // p.group * p.kh * p.kw
    xmax, wmax = ins[0].qmax, (1 << p.w_bits) - 1
    amin = amax = None
    for j in range(p.m):
        corners = [(x - p.x_zp) * (w - p.w_zp[j]) for x in (0, xmax) for w in (0, wmax)]
        lo_j = (taps * min(corners) + p.bias[j]) * p.mult[j]
        hi_j = (taps * max(corners) + p.bias[j]) * p.mult[j]
        amin = lo_j if amin is None else min(amin, lo_j)
        amax = hi_j if amax is None else max(amax, hi_j)
    return requant_bounds(amin, amax, p.shift, p.out_zp, p.out_lo, p.out_bits,
                          what="conv accumulator (signal weights)")
