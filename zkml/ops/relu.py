"""Relu that could not be fused into a preceding Dense/Add (e.g. on the model input).

Integer kernel: y = max(x - zp, 0); the output keeps the input's scale with zero point 0,
so no precision is lost and y fits in the input's bits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fgraph import FNode
from . import Bounds, OpDef, onnx_rule, register


@dataclass
class Params:
    n: int
    zp: int
    bits: int


@onnx_rule("Relu")
def relu_rule(node, g, opset):
    return [FNode("Relu", node.name, [node.input[0]], node.output[0], {}, [f"Relu '{node.name}'"])]


@register
class Relu(OpDef):
    name = "Relu"
    Params = Params
    template_file = "relu.circom"

    def quantize(self, f: FNode, ctx):
        x = ctx.tensor(f.inputs[0])
        out = ctx.derived_tensor(f.output, x, zero_point=0)
        return Params(x.size, x.zero_point, x.bits), out

    def kernel(self, p: Params, x):
        return np.maximum(np.asarray(x, dtype=np.int64) - p.zp, 0)

    def bounds(self, node, ins, out) -> Bounds:
        return Bounds(max_bits=node.params.bits + 1, what="relu comparison")

    def circom(self, node, ins, out, b: Bounds):
        p: Params = node.params
        return "ReluZp", [("N", p.n), ("BITS", p.bits), ("ZP", p.zp)]
