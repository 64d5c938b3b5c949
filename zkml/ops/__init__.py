"""Operator registry: one module per IR operator.

Each operator module defines, in one place:
  - `Params`:     the dataclass stored in the IR node (integers only, scales excluded);
  - `from_onnx`:  rules turning ONNX nodes into canonical float nodes (registered by ONNX op name);
  - `quantize`:   the float node + calibrated ranges → IR node;
  - `kernel`:     the exact integer semantics (numpy), executed by the reference runtime;
  - `bounds`:     the bit-width rule for every value the circuit handles;
  - `circom`:     the circom template (file, name) and its arguments for the emitter;
  - `split_channels` (optional): the Params of the same node restricted to a range of output
                  channels, so that slicing (zkml/slicing.py) can cut one big layer across segments.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

REGISTRY: dict[str, "OpDef"] = {}          # IR op name -> definition
ONNX_RULES: dict[str, Callable] = {}       # ONNX op type -> canonicalization rule


@dataclass
class Bounds:
    """What the bound rule proved for one node."""
    max_bits: int                      # widest integer the node's constraints handle
    what: str = "accumulator"          # which value that is (for error messages)
    circuit: dict = field(default_factory=dict)  # circuit-only constants (offsets, widths)


class OpDef:
    name: str = ""
    Params: type = object
    template_file: str = ""

    def quantize(self, fnode, ctx):  # pragma: no cover - interface
        raise NotImplementedError

    def kernel(self, params, *inputs):  # pragma: no cover - interface
        raise NotImplementedError

    def bounds(self, node, ins, out) -> Bounds:  # pragma: no cover - interface
        raise NotImplementedError

    def circom(self, node, ins, out, bounds: Bounds):
        """Return (template name, [(parameter name, value), ...]) or None for a pure relabeling."""
        raise NotImplementedError  # pragma: no cover

    channel_axis: int = 1   # the output axis split_channels cuts (-1: the last axis)

    def channels(self, params) -> int:
        """How many output channels split_channels can choose from (0: the node cannot be split)."""
        return 0

    def split_channels(self, params, lo: int, hi: int):
        """Params of the node computing output channels [lo, hi) only: every output value of the
        restricted node equals the same value of the whole node (per-channel weights, bias and
        multipliers are sliced; the shift and the output grid are shared)."""
        raise NotImplementedError  # pragma: no cover


def register(cls):
    inst = cls()
    REGISTRY[inst.name] = inst
    return cls


def onnx_rule(*op_types: str):
    def deco(fn):
        for t in op_types:
            ONNX_RULES[t] = fn
        return fn
    return deco


# import the operator modules so that they register themselves
from . import dense, add, relu, reshape, conv, convpool, pool, batchnorm, clip, layout, concat, indexing, affine, sub, convtranspose, activations, argmax  # noqa: E402,F401
