"""Reshape, Flatten, Identity (and Dropout at inference): a relabeling of the same integers.

Integer kernel: y = x (row-major order kept). No template and no constraint: the emitter
wires the consumer to the producer's signals.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fgraph import FNode
from . import Bounds, OpDef, onnx_rule, register


@dataclass
class Params:
    shape: list


@onnx_rule("Reshape", "Flatten", "Identity")
def reshape_rule(node, g, opset):
    return [FNode("Reshape", node.name, [node.input[0]], node.output[0], {},
                  [f"{node.op_type} '{node.name}'"])]


@register
class Reshape(OpDef):
    name = "Reshape"
    Params = Params

    def quantize(self, f: FNode, ctx):
        x = ctx.tensor(f.inputs[0])
        out = ctx.derived_tensor(f.output, x)
        return Params(list(out.shape)), out

    def kernel(self, p: Params, x):
        return np.asarray(x, dtype=np.int64).reshape(p.shape)

    def bounds(self, node, ins, out) -> Bounds:
        return Bounds(max_bits=ins[0].bits, what="value")

    def circom(self, node, ins, out, b):
        return None
