"""ConvTranspose, 1-D and 2-D (strides, pads, output_padding, output_shape, auto_pad, dilations,
groups), lowered to zero insertion followed by the existing Conv.

Derivation, per spatial axis (input length n, kernel k, stride s, dilation d, begin pad pb,
output length m from ONNX shape inference): the transposed convolution is
    y[o] = B + sum over (i, kk) with i*s + kk*d = o + pb of x[i] * w[kk].
Insert s - 1 zeros between the inputs (u[i*s] = x[i], length U = s*(n - 1) + 1) and pad u with
d*(k - 1) - pb positions before and m + d*(k - 1) - U - (d*(k - 1) - pb) after (a negative
pad crops; output_padding and output_shape only change m). Then
    y[o] = B + sum_kk u_pad[o + kk*d] * w[k - 1 - kk],
a stride-1 convolution with dilation d of the padded u by the *flipped* kernel. Channels: ONNX
weights are [C, M/G, k...]; the Conv weight of output channel g*(M/G) + j and group input
channel ci is W[g*(C/G) + ci, j] flipped (in/out channels swapped per group).

In the quantized domain "zero" is the input's zero point: the inserted and padded positions
hold x_zp, so (x_zp - x_zp)*w = 0 exactly as ONNX's real zeros.

Integer kernel: u = IndexMap(x; up_idx, fill = x_zp), then Conv's kernel (zkml/ops/conv.py) on
u with the parameters above. Circuit: ConvTranspose2D (circuits/convtranspose.circom): Conv2D's
linear combinations over u with the zero terms left out (tap_table_t lists, per output position,
the taps that land on a real input), one RequantClamp per output, exactly as a Conv. The bound rule is Conv's on the zero-inserted input (every tap counted as if it could
hold any value): valid, but loose by up to a factor ~s^2 in the accumulator range, which can cost
a bit or two of QBITS per output and a clamp the exact bound would rule out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedOpError
from ..fgraph import FNode
from ..ir import Tensor
from . import REGISTRY, Bounds, OpDef, onnx_rule, register
from ._requant import requant_args
from ._window import Geometry, attr, guarded
from .conv import Params as ConvParams
from .layout import Params as IndexMapParams, separable_index


@dataclass
class Params(ConvParams):
    n_in: int        # values of the real input x
    up_idx: list     # [n*c*h*w] source in x of each zero-inserted, padded position (-1: x_zp)


def _axis_pads(n, k, s, d, op, pads, out_target, auto):
    """(begin pad, output length) of one axis, per the ONNX ConvTranspose specification."""
    full = s * (n - 1) + op + (k - 1) * d + 1
    if out_target is not None or auto in ("SAME_UPPER", "SAME_LOWER"):
        m = out_target if out_target is not None else n * s
        total = full - m
        return (total // 2 if auto == "SAME_UPPER" else total - total // 2), m
    return pads[0], full - pads[0] - pads[1]


@onnx_rule("ConvTranspose")
@guarded
def convtranspose_rule(node, g, opset):
    x, w = node.input[0], node.input[1]
    b = node.input[2] if len(node.input) > 2 and node.input[2] else None
    if x in g.constants or w not in g.constants or (b and b not in g.constants):
        raise UnsupportedOpError("ConvTranspose", opset, node.name,
                                 "only an activation with constant weights (and a constant bias) is supported")
    W = np.asarray(g.constants[w], dtype=np.float64)
    xs = list(g.shapes[x])
    nd = len(xs) - 2
    if nd not in (1, 2) or W.ndim != len(xs) or W.size == 0:
        raise UnsupportedOpError("ConvTranspose", opset, node.name,
                                 f"only 1-D and 2-D are supported (input {xs}, weights {list(W.shape)})")
    ks = list(W.shape[2:])
    if attr(node, "kernel_shape", None) is not None and list(attr(node, "kernel_shape", None)) != ks:
        raise UnsupportedOpError("ConvTranspose", opset, node.name, f"kernel_shape != weights {list(W.shape)}")
    strides = list(attr(node, "strides", None) or [1] * nd)
    dil = list(attr(node, "dilations", None) or [1] * nd)
    pads = list(attr(node, "pads", None) or [0] * (2 * nd))
    opad = list(attr(node, "output_padding", None) or [0] * nd)
    oshape = attr(node, "output_shape", None)
    auto = attr(node, "auto_pad", "NOTSET") or "NOTSET"
    group = int(attr(node, "group", 1))
    c = xs[1]
    if (len(strides), len(dil), len(pads), len(opad)) != (nd, nd, 2 * nd, nd) or min(strides + dil) < 1 \
            or min(pads + opad) < 0 or auto not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        raise UnsupportedOpError("ConvTranspose", opset, node.name,
                                 f"strides {strides}, dilations {dil}, pads {pads}, output_padding {opad}, "
                                 f"auto_pad {auto!r}")
    if group < 1 or c % group or W.shape[0] != c:
        raise UnsupportedOpError("ConvTranspose", opset, node.name,
                                 f"weights {list(W.shape)} do not match {c} input channels in {group} groups")
    if oshape is not None:
        oshape = list(oshape)[-nd:]
    if auto == "VALID":
        pads = [0] * (2 * nd)
    spatial = xs[2:]
    begin, outs = [], []
    for i in range(nd):
        pb, m = _axis_pads(spatial[i], ks[i], strides[i], dil[i], opad[i], [pads[i], pads[nd + i]],
                           None if oshape is None else int(oshape[i]), auto)
        begin.append(pb)
        outs.append(m)
    want = g.shapes[node.output[0]]
    if list(want) != [xs[0], W.shape[1] * group, *outs] or min(outs) < 1:
        raise UnsupportedOpError("ConvTranspose", opset, node.name,
                                 f"output length {outs} computed, shape inference says {want}")
    # zero insertion + padding, per axis (a 1-D operator is 2-D with H = 1)
    if nd == 1:
        spatial, ks, strides, dil, begin, outs = [1, *spatial], [1, *ks], [1, *strides], [1, *dil], [0, *begin], \
            [1, *outs]
    ups = [outs[i] + dil[i] * (ks[i] - 1) for i in range(2)]
    per_axis = [np.arange(xs[0]), np.arange(c)]
    for i in range(2):
        u = strides[i] * (spatial[i] - 1) + 1
        lead = dil[i] * (ks[i] - 1) - begin[i]
        j = np.arange(ups[i]) - lead
        per_axis.append(np.where((j >= 0) & (j < u) & (j % strides[i] == 0), j // strides[i], -1))
    up_idx = separable_index([xs[0], c, *spatial], [xs[0], c, *ups], per_axis)
    # flipped kernel, in/out channels swapped per group: [M, C/G, kh, kw]
    cg, mg = c // group, W.shape[1]
    Wc = W.reshape(group, cg, mg, ks[0], ks[1]).transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1]
    m = mg * group
    bias = np.zeros(m) if b is None else np.asarray(g.constants[b], dtype=np.float64).reshape(-1)
    if bias.size != m:
        raise UnsupportedOpError("ConvTranspose", opset, node.name, f"bias of {bias.size} values for {m} channels")
    geo = Geometry(xs[0], c, ups[0], ups[1], ks[0], ks[1], 1, 1, 0, 0, 0, 0, dil[0], dil[1], outs[0], outs[1])
    return [FNode("ConvTranspose", node.name, [x], node.output[0],
                  {"W": Wc.reshape(m, -1).copy(), "b": bias.copy(), "geom": geo.as_dict(), "group": group,
                   "up_idx": up_idx, "relu": False}, [f"ConvTranspose '{node.name}'"])]


@register
class ConvTranspose(OpDef):
    name = "ConvTranspose"
    Params = Params
    template_file = "convtranspose.circom"

    def quantize(self, f: FNode, ctx):
        x = ctx.tensor(f.inputs[0])
        geo = Geometry(**f.attrs["geom"])
        # Conv's quantization on a view of x as the zero-inserted tensor (same scale and zero point)
        view = f"{f.output}/zero-inserted input"
        ctx.tensors[view] = Tensor(view, [geo.n, geo.c, geo.h, geo.w], x.bits, x.scale, x.zero_point)
        try:
            cp, out = REGISTRY["Conv"].quantize(FNode("Conv", f.name, [view], f.output, f.attrs, f.onnx), ctx)
        finally:
            del ctx.tensors[view]
        up = [int(v) for v in np.asarray(f.attrs["up_idx"]).reshape(-1)]
        return Params(**cp.__dict__, n_in=x.size, up_idx=up), out

    def channels(self, p: Params) -> int:
        return REGISTRY["Conv"].channels(p)

    def split_channels(self, p: Params, lo: int, hi: int):
        return REGISTRY["Conv"].split_channels(p, lo, hi)     # n_in and up_idx (the input side) are kept

    def kernel(self, p: Params, x):
        u = REGISTRY["IndexMap"].kernel(IndexMapParams(p.n_in, p.up_idx, p.x_zp), x)
        return REGISTRY["Conv"].kernel(p, u)

    def bounds(self, node, ins, out) -> Bounds:
        p: Params = node.params
        if len(p.up_idx) != p.n * p.c * p.h * p.w or any(not -1 <= i < p.n_in for i in p.up_idx):
            raise ValueError("up_idx does not fit the input and the geometry")
        return REGISTRY["Conv"].bounds(node, ins, out)

    def circom(self, node, ins, out, b: Bounds):
        p: Params = node.params
        tap, src, nv, hw_in = tap_table_t(p)
        return "ConvTranspose2D", [("NIN", p.n_in), ("HWIN", hw_in), ("N", p.n), ("C", p.c), ("OH", p.oh), ("OW", p.ow),
                                   ("KHW", p.kh * p.kw), ("MAXV", max(1, max(nv, default=0))), ("NV", nv),
                                   ("TAP", tap), ("SRC", src), ("CO", p.m), ("G", p.group), ("WT", p.wq),
                                   ("WZP", p.w_zp), ("B", p.bias), ("XZP", p.x_zp), ("MULT", p.mult),
                                   ("K", b.circuit["K"]), *requant_args(b)]


def tap_table_t(p: Params) -> tuple[list, list, list, int]:
    """Per output position (oy, ox): the kernel taps that land on a real input (not an inserted
    zero or padding: those terms are (x_zp - x_zp) * w = 0) and that input's position within its
    channel. Zero insertion is the same for every channel (up_idx is separable), which is checked
    here: (TAP, SRC, NV, Hin*Win) for circuits/convtranspose.circom."""
    up = np.asarray(p.up_idx, dtype=np.int64).reshape(p.n * p.c, p.h * p.w)
    hw_in = p.n_in // (p.n * p.c)
    base = np.arange(p.n * p.c)[:, None] * hw_in
    sp = np.where(up[:1] >= 0, up[:1], -1)[0]                     # channel 0's map
    if hw_in * p.n * p.c != p.n_in or not np.array_equal(np.where(up >= 0, up - base, -1),
                                                       np.broadcast_to(sp, up.shape)):
        raise ValueError("up_idx is not the same zero insertion for every channel")
    taps, srcs, nv = [], [], []
    for oy in range(p.oh):
        for ox in range(p.ow):
            t, s_ = [], []
            for ky in range(p.kh):
                iy = oy * p.sh - p.pt + ky * p.dh
                for kx in range(p.kw):
                    ix = ox * p.sw - p.pl + kx * p.dw
                    if 0 <= iy < p.h and 0 <= ix < p.w and sp[iy * p.w + ix] >= 0:
                        t.append(ky * p.kw + kx)
                        s_.append(int(sp[iy * p.w + ix]))
            taps.append(t)
            srcs.append(s_)
            nv.append(len(t))
    mv = max(1, max(nv, default=0))
    return ([t + [0] * (mv - len(t)) for t in taps], [s_ + [0] * (mv - len(s_)) for s_ in srcs], nv, hw_in)
