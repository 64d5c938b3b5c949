"""Concat of up to 4 distinct activation tensors and any number of constants, on any axis.

Quantization: when every activation input has the same (bits, scale, zero point) and every
constant is representable there, the output takes those parameters and Concat is a pure
relabeling (no constraint). Otherwise the output gets its own calibrated parameters (the
calibrated range of the Concat output covers every input and constant) and each activation
input whose parameters differ is requantized into it; constants are quantized once.

Integer kernel, for output element i (row-major), part[i] = which input (-1: constant),
index[i] = the element of that input (or of the constant list):
    seg_k[j] = x_k[j]                                                      if ident[k]
    seg_k[j] = clamp(floor(((x_k[j] - zp[k]) * mult[k] + 2^(shift-1)) / 2^shift) + out_zp, 0, 2^bits - 1)
    y[i]     = seg_part[i][index[i]]   or   const[index[i]] when part[i] = -1
Circuit: Concat (circuits/layout.circom), one RequantClamp per element of a requantized
input, nothing else (the placement is equalities that circom --O2 substitutes away).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedOpError
from ..fgraph import FNode
from ..qparams import multipliers, quantize_array
from . import Bounds, OpDef, onnx_rule, register
from ._requant import requant_args, requant_bounds, requant_kernel
from ._window import MAX_VALUES, attr, guarded

MAX_INPUTS = 4


@dataclass
class Params:
    sizes: list      # size of each distinct activation input
    part: list       # [n_out] input number, -1 = constant
    index: list      # [n_out] element of that input / of const
    const: list      # quantized constant values
    ident: list      # [k] 1: copied, 0: requantized
    zp: list         # [k] input zero points
    mult: list       # [k] multipliers (0 where ident)
    shift: int
    out_zp: int
    out_bits: int


@onnx_rule("Concat")
@guarded
def concat_rule(node, g, opset):
    axis = int(attr(node, "axis", 0))
    names = [i for i in node.input if i]
    acts = list(dict.fromkeys(i for i in names if i not in g.constants))
    if len(acts) > MAX_INPUTS:
        raise UnsupportedOpError("Concat", opset, node.name,
                                 f"{len(acts)} distinct activation inputs; at most {MAX_INPUTS} are supported")
    shapes = [list(g.constants[i].shape) if i in g.constants else list(g.shapes[i]) for i in names]
    r = len(shapes[0])
    if not -r <= axis < r or any(len(s) != r or [d for k, d in enumerate(s) if k != axis % r] !=
                                 [d for k, d in enumerate(shapes[0]) if k != axis % r] for s in shapes) \
            or sum(int(np.prod(s, dtype=object)) for s in shapes) > MAX_VALUES:
        raise UnsupportedOpError("Concat", opset, node.name, f"shapes {shapes} cannot be joined on axis {axis}")
    axis %= r
    parts, idxs, consts, off = [], [], [], 0
    for name, shape in zip(names, shapes):
        size = int(np.prod(shape))
        if name in g.constants:
            parts.append(np.full(shape, -1))
            idxs.append(np.arange(size).reshape(shape) + off)
            consts.append(np.asarray(g.constants[name], dtype=np.float64).reshape(-1))
            off += size
        else:
            parts.append(np.full(shape, acts.index(name)))
            idxs.append(np.arange(size).reshape(shape))
    part = np.concatenate(parts, axis=axis).reshape(-1)
    index = np.concatenate(idxs, axis=axis).reshape(-1)
    const = np.concatenate(consts) if consts else np.zeros(0)
    return [FNode("Concat", node.name, acts, node.output[0], {"part": part, "index": index, "const": const},
                  [f"Concat '{node.name}'"])]


@register
class Concat(OpDef):
    name = "Concat"
    Params = Params
    template_file = "layout.circom"

    def quantize(self, f: FNode, ctx):
        ins = [ctx.tensor(i) for i in f.inputs]
        const = np.asarray(f.attrs["const"], dtype=np.float64)
        t0 = ins[0]
        same = all((t.bits, t.scale, t.zero_point) == (t0.bits, t0.scale, t0.zero_point) for t in ins)
        lo, hi = t0.scale * -t0.zero_point, t0.scale * (t0.qmax - t0.zero_point)
        if same and (const.size == 0 or (const.min() >= lo - t0.scale / 2 and const.max() <= hi + t0.scale / 2)):
            out = ctx.derived_tensor(f.output, t0)
        else:
            out = ctx.new_tensor(f.output)
        ident = [int((t.bits, t.scale, t.zero_point) == (out.bits, out.scale, out.zero_point)) for t in ins]
        reals = [0.0 if i else t.scale / out.scale for t, i in zip(ins, ident)]
        mult, shift = multipliers(reals, ctx.cfg.precision) if not all(ident) else ([0] * len(ins), 1)
        cq = quantize_array(const, out.scale, out.zero_point, out.bits) if const.size else np.zeros(0, np.int64)
        p = Params([t.size for t in ins], [int(v) for v in f.attrs["part"]], [int(v) for v in f.attrs["index"]],
                   [int(v) for v in cq], ident, [t.zero_point for t in ins], mult, shift, out.zero_point, out.bits)
        return p, out

    def kernel(self, p: Params, *xs):
        segs = []
        for k, x in enumerate(xs):
            x = np.asarray(x, dtype=np.int64).reshape(-1)
            if not p.ident[k]:
                x = requant_kernel((x.astype(object) - p.zp[k]) * p.mult[k], p.shift, p.out_zp, 0, p.out_bits)
            segs.append(x)
        flat = np.concatenate(segs + [np.array(p.const, dtype=np.int64)])
        offsets = np.cumsum([0] + [s.size for s in segs])       # offsets[-1]: start of the constants
        part, index = np.array(p.part, dtype=np.int64), np.array(p.index, dtype=np.int64)
        return flat[np.where(part < 0, offsets[-1], offsets[np.maximum(part, 0)]) + index]

    def bounds(self, node, ins, out) -> Bounds:
        p: Params = node.params
        req = [k for k in range(len(ins)) if not p.ident[k]]
        if not req:
            return Bounds(max_bits=out.bits, what="value", circuit=dict(K=0, SHIFT=1, QBITS=1, LO=0, HI=0, OFF=0,
                                                                        CLAMP_LO=0, CLAMP_HI=0))
        amin = min(-p.zp[k] * p.mult[k] for k in req)
        amax = max((ins[k].qmax - p.zp[k]) * p.mult[k] for k in req)
        return requant_bounds(amin, amax, p.shift, p.out_zp, 0, p.out_bits, what="concat requantization")

    def circom(self, node, ins, out, b: Bounds):
        p: Params = node.params
        if all(p.ident) and not p.const and len(ins) == 1 and p.part == [0] * len(p.part) \
                and p.index == list(range(len(p.part))):
            return None
        k = len(ins)
        pad = lambda v, z=0: list(v) + [z] * (MAX_INPUTS - k)  # noqa: E731
        sizes = pad(p.sizes)
        args = [("NA", sizes[0]), ("NB", sizes[1]), ("NC", sizes[2]), ("ND", sizes[3]), ("NOUT", len(p.part)),
                ("PART", p.part), ("IDX", p.index), ("CV", p.const or [0]), ("REQ", pad([1 - i for i in p.ident])),
                ("ZP", pad(p.zp)), ("MU", pad(p.mult)), ("K", b.circuit["K"]), *requant_args(b)]
        return ("Concat1" if k == 1 else "Concat"), args
