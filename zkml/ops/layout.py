"""Layout operators that move values without computing: Transpose and Pad (IR op IndexMap),
Squeeze and Unsqueeze (the existing Reshape relabeling).

IndexMap integer kernel, for output element i (row-major):
    y[i] = x[idx[i]]   if idx[i] >= 0
    y[i] = fill        if idx[i] == -1   (Pad mode=constant: the pad value, quantized)
The output keeps the input's scale and zero point. Transpose is a permutation; Pad in every
mode is an index map: constant (-1 = fill), edge (clamped index), reflect (mirrored without the
edge), wrap (modular); negative pads crop. Circuit: IndexMap, only equalities `out[i] <== in[j]`
and `out[i] <== FILL`, which circom --O2 substitutes away: no constraint remains.

A constant pad value must be representable at the input's scale (within half a step of
[scale*(0 - zp), scale*(2^bits - 1 - zp)]); zero always is. Otherwise the model is refused
rather than silently saturating the value.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedOpError
from ..fgraph import FNode
from . import Bounds, OpDef, onnx_rule, register
from ._window import MAX_VALUES, attr, guarded


@dataclass
class Params:
    n_in: int
    idx: list        # [n_out] source index, -1 = fill
    fill: int


@onnx_rule("Squeeze", "Unsqueeze")
@guarded
def squeeze_rule(node, g, opset):
    return [FNode("Reshape", node.name, [node.input[0]], node.output[0], {}, [f"{node.op_type} '{node.name}'"])]


@onnx_rule("Transpose")
@guarded
def transpose_rule(node, g, opset):
    x = node.input[0]
    shape = g.shapes[x]
    perm = attr(node, "perm", None)
    perm = list(reversed(range(len(shape)))) if perm is None else [int(p) for p in perm]
    if sorted(perm) != list(range(len(shape))):
        raise UnsupportedOpError("Transpose", opset, node.name,
                                 f"perm {perm} is not a permutation of {len(shape)} axes")
    idx = np.arange(int(np.prod(shape))).reshape(shape).transpose(perm).reshape(-1)
    return [FNode("IndexMap", node.name, [x], node.output[0], {"idx": idx, "fill": 0.0},
                  [f"Transpose '{node.name}'"])]


def _const_input(node, g, k, opset, what):
    name = node.input[k] if len(node.input) > k else ""
    if not name:
        return None
    if name not in g.constants:
        raise UnsupportedOpError(node.op_type, opset, node.name, f"{what} must be a constant")
    return np.asarray(g.constants[name])


def pad_source(i: int, n: int, before: int, mode: str) -> int:
    """Source index along one axis for output index i (-1: fill), per ONNX Pad modes."""
    j = i - before
    if 0 <= j < n:
        return j
    if mode == "constant":
        return -1
    if mode == "edge":
        return min(max(j, 0), n - 1)
    if mode == "wrap":
        return j % n
    # reflect: mirror without repeating the edge (period 2n - 2)
    if n == 1:
        return 0
    period = 2 * n - 2
    j %= period
    return j if j < n else period - j


def separable_index(shape: list[int], out_shape: list[int], per_axis: list) -> np.ndarray:
    """Flat source indices of an index map that acts on each axis separately: per_axis[a][o] is
    the source position along axis a of output position o (-1: fill); -1 where any axis fills."""
    r = len(shape)
    strides = np.cumprod([1] + list(shape)[::-1])[::-1][1:]
    idx = np.zeros(out_shape, dtype=np.int64)
    hole = np.zeros(out_shape, dtype=bool)
    for a in range(r):
        v = np.asarray(per_axis[a], dtype=np.int64).reshape([-1 if k == a else 1 for k in range(r)])
        idx = idx + np.where(v < 0, 0, v) * int(strides[a])
        hole = hole | (v < 0)
    return np.where(hole, -1, idx).reshape(-1)


@onnx_rule("Pad")
@guarded
def pad_rule(node, g, opset):
    x = node.input[0]
    shape = list(g.shapes[x])
    mode = attr(node, "mode", "constant")
    if mode not in ("constant", "edge", "reflect", "wrap"):
        raise UnsupportedOpError("Pad", opset, node.name, f"mode {mode!r} is not supported")
    pads = _const_input(node, g, 1, opset, "pads")
    if pads is None:
        pads = np.asarray(attr(node, "pads", [0] * (2 * len(shape))))
    value = _const_input(node, g, 2, opset, "the constant value")
    fill = 0.0 if value is None or value.size == 0 else float(value.reshape(-1)[0])
    if value is None and attr(node, "value", None) is not None:
        fill = float(attr(node, "value", 0.0))
    axes = _const_input(node, g, 3, opset, "axes")
    r = len(shape)
    axes = list(range(r)) if axes is None else [int(a) % r for a in axes.reshape(-1)]
    pads = [int(p) for p in pads.reshape(-1)]
    if len(pads) != 2 * len(axes) or len(set(axes)) != len(axes):
        raise UnsupportedOpError("Pad", opset, node.name, f"{len(pads)} pads for axes {axes}")
    before, after = [0] * r, [0] * r
    for k, a in enumerate(axes):
        before[a], after[a] = pads[k], pads[len(axes) + k]
    out_shape = [s + b + e for s, b, e in zip(shape, before, after)]
    if min(out_shape) < 1 or int(np.prod(out_shape, dtype=object)) > MAX_VALUES:
        raise UnsupportedOpError("Pad", opset, node.name, f"output shape {out_shape} is empty or too large")
    if mode == "reflect" and any(max(b, e) >= s for s, b, e in zip(shape, before, after)):
        raise UnsupportedOpError("Pad", opset, node.name, "reflect pads must be smaller than the axis")
    per_axis = [np.array([pad_source(i, shape[a], before[a], mode) for i in range(out_shape[a])])
                for a in range(r)]
    idx = separable_index(shape, out_shape, per_axis)
    return [FNode("IndexMap", node.name, [x], node.output[0], {"idx": idx, "fill": fill},
                  [f"Pad '{node.name}'"])]


@register
class IndexMap(OpDef):
    name = "IndexMap"
    Params = Params
    template_file = "layout.circom"

    def quantize(self, f: FNode, ctx):
        x = ctx.tensor(f.inputs[0])
        out = ctx.derived_tensor(f.output, x)
        idx = [int(i) for i in np.asarray(f.attrs["idx"]).reshape(-1)]
        fill = 0
        if any(i < 0 for i in idx):
            v = f.attrs["fill"] / x.scale + x.zero_point
            if not -0.5 <= v <= x.qmax + 0.5:
                raise UnsupportedOpError(f.onnx[0].split()[0] if f.onnx else "Pad", ctx.opset, f.name,
                                         f"the pad value {f.attrs['fill']} lies outside the input's calibrated "
                                         f"range [{x.scale * -x.zero_point:.4g}, "
                                         f"{x.scale * (x.qmax - x.zero_point):.4g}]")
            fill = int(min(max(round(v), 0), x.qmax))
        return Params(x.size, idx, fill), out

    def kernel(self, p: Params, x):
        xf = np.asarray(x, dtype=np.int64).reshape(-1)
        idx = np.array(p.idx, dtype=np.int64)
        return np.where(idx >= 0, xf[np.maximum(idx, 0)] if xf.size else 0, p.fill)

    def bounds(self, node, ins, out) -> Bounds:
        return Bounds(max_bits=ins[0].bits, what="value")

    def circom(self, node, ins, out, b: Bounds):
        p: Params = node.params
        if len(p.idx) == p.n_in and p.idx == list(range(p.n_in)):
            return None
        return "IndexMap", [("NIN", p.n_in), ("NOUT", len(p.idx)), ("IDX", p.idx), ("FILL", p.fill)]

