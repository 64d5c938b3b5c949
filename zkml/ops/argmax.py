"""ArgMax (axis, keepdims, select_last_index), proven in the circuit; Softmax -> ArgMax.

Quantization is monotone (non-decreasing) and shared by every element of a tensor, so the
argmax of the quantized input is the float argmax except where quantization creates a tie
(values within one step of each other): the tie then goes, as in ONNX, to the first index
(select_last_index = 0) or the last (= 1). The output is the index itself: a tensor of
bits_for(K - 1) bits with scale 1 and zero point 0, so dequantizing gives the index.

Softmax followed by ArgMax over the same axis: softmax is strictly increasing along its axis,
so the ArgMax reads the Softmax's input (the logits) directly and the Softmax, left with no
consumer, disappears (zkml/onnx_import.py drops a Softmax nobody reads). A final Softmax alone
is still left to the caller (meta postprocess; the circuit proves the logits).

Integer kernel, with the input viewed as [OUTER, K, INNER] (K the reduced axis):
    y[o, i] = min {k : x[o, k, i] = max_k' x[o, k', i]}     (max {...} with select_last_index)

Circuit (circuits/argmax.circom, ArgMaxOne per reduction): a witnessed one-hot vector, the
selected value pinned as the maximum by range-checked differences, the tie rule enforced by
requiring the elements before (after) the index to be strictly smaller.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedOpError
from ..fgraph import FNode
from ..ir import Tensor, bits_for
from . import Bounds, OpDef, onnx_rule, register
from ._window import attr, guarded


@dataclass
class Params:
    outer: int
    k: int
    inner: int
    bits: int         # input bits
    last: int         # select_last_index


@onnx_rule("ArgMax")
@guarded
def argmax_rule(node, g, opset):
    x = node.input[0]
    if x in g.constants or x not in g.shapes:
        raise UnsupportedOpError("ArgMax", opset, node.name, "the input must be an activation of known shape")
    shape = g.shapes[x]
    axis = int(attr(node, "axis", 0))
    if not -len(shape) <= axis < len(shape):
        raise UnsupportedOpError("ArgMax", opset, node.name, f"axis {axis} is outside the input's rank {len(shape)}")
    axis %= len(shape)
    last = int(attr(node, "select_last_index", 0))
    if last not in (0, 1):
        raise UnsupportedOpError("ArgMax", opset, node.name, f"select_last_index={last}")
    onnx_names = [f"ArgMax '{node.name}'"]
    src = next((n for n in g.nodes if n.output == x), None)
    if src is not None and src.op == "Softmax" and src.attrs["axis"] % len(shape) == axis:
        x = src.inputs[0]            # argmax(softmax(z)) = argmax(z) along the softmax axis
        onnx_names.insert(0, f"Softmax '{src.name}' (read through: argmax of the logits)")
    return [FNode("ArgMax", node.name, [x], node.output[0], {"axis": axis, "last": last}, onnx_names)]


@register
class ArgMax(OpDef):
    name = "ArgMax"
    Params = Params
    template_file = "argmax.circom"

    def quantize(self, f: FNode, ctx):
        x = ctx.tensor(f.inputs[0])
        axis = f.attrs["axis"]
        shape = x.shape
        k = shape[axis]
        outer, inner = int(np.prod(shape[:axis], dtype=np.int64)), int(np.prod(shape[axis + 1:], dtype=np.int64))
        y = Tensor(f.output, list(ctx.shapes[f.output]), bits_for(k - 1), 1.0, 0)
        ctx.tensors[f.output] = y
        return Params(outer, k, inner, x.bits, f.attrs["last"]), y

    def kernel(self, p: Params, x):
        xv = np.asarray(x, dtype=np.int64).reshape(p.outer, p.k, p.inner)
        if p.last:
            return p.k - 1 - np.argmax(xv[:, ::-1, :], axis=1)
        return np.argmax(xv, axis=1)          # numpy returns the first maximal index

    def bounds(self, node, ins, out) -> Bounds:
        p: Params = node.params
        if p.outer * p.k * p.inner != ins[0].size or p.outer * p.inner != out.size or p.bits != ins[0].bits \
                or p.k < 1 or p.last not in (0, 1) or out.bits < bits_for(p.k - 1):
            raise ValueError("ArgMax parameters do not match its tensors")
        return Bounds(max_bits=p.bits + 1, what="argmax difference")

    def circom(self, node, ins, out, b: Bounds):
        p: Params = node.params
        return "ArgMax", [("OUTER", p.outer), ("K", p.k), ("INNER", p.inner), ("BITS", p.bits), ("LAST", p.last)]
