"""Elementwise activations as exact lookup tables (IR op Lut): Sigmoid, Tanh, HardSigmoid,
HardSwish, LeakyRelu and PRelu (constant slope, any unidirectional broadcast, e.g. per channel).

Quantization (once, at compile time; the only floats are here): for every input code
v in [0, 2^in_bits) the table holds

    T[v] = clamp(round_half_even(f(x_scale * (v - x_zp)) / y_scale) + y_zp, 0, 2^out_bits - 1)

with f the float activation (ONNX semantics, float64) and (y_scale, y_zp) the output's
calibrated parameters. The table is stored in the IR as integers: the runtime indexes it and
the circuit proves out = T[in], so they agree bit for bit by construction, and each output is
within 0.5 LSB of f at the dequantized input (plus float rounding). PRelu's slope is a
constant: elements whose slopes are equal share a table; `cls[i]` names element i's table.

Integer kernel: y[i] = tables[cls[i]][x[i]]   (cls = None: one table).

Circuit (circuits/lut.circom): LutOne decomposes the input into bits (Num2Bits, also its range
check), builds one-hot selectors of the low half of the bits (2^L - 2 products) and a
multiplexer tree over the high half (2^H - 1 products): BITS + 2^L + 2^H - 3 constraints per
element, 37 at 8 bits. A piecewise-linear form (sign comparator + RequantClamp) costs more at 8
bits (LessThan(8) = 9, plus a requantization with a ~16-bit remainder and ~10-bit quotient and
its clamps, ~45), so every activation here is a table. Tables grow as 2^BITS:
inputs wider than MAX_LUT_BITS bits are refused, naming the node and the bits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedOpError
from ..fgraph import FNode
from . import Bounds, OpDef, onnx_rule, register
from ._window import attr, guarded

MAX_LUT_BITS = 12      # 4096 entries per table; 12 + 64 + 64 - 3 = 137 constraints per element
MAX_TABLES = 1024      # distinct PRelu slopes


@dataclass
class Params:
    n: int
    in_bits: int
    out_bits: int
    tables: list       # [number of tables][2^in_bits] output codes
    cls: list | None   # [n] table of each element, None: every element uses tables[0]


# --------------------------------------------------------------------------- float functions
def _sigmoid(x, a):
    return 0.5 * (1.0 + np.tanh(0.5 * x))          # = 1 / (1 + e^-x), without overflow


def _tanh(x, a):
    return np.tanh(x)


def _hardsigmoid(x, a):
    return np.clip(a["alpha"] * x + a["beta"], 0.0, 1.0)


def _hardswish(x, a):
    return x * np.clip(x / 6.0 + 0.5, 0.0, 1.0)


def _leaky(x, a):
    return np.where(x >= 0, x, a["alpha"] * x)


FUNCTIONS = {            # ONNX op -> (float function, {attribute: ONNX default})
    "Sigmoid": (_sigmoid, {}),
    "Tanh": (_tanh, {}),
    "HardSigmoid": (_hardsigmoid, {"alpha": 0.2, "beta": 0.5}),
    "HardSwish": (_hardswish, {}),
    "LeakyRelu": (_leaky, {"alpha": 0.01}),
    "PRelu": (_leaky, {}),                       # alpha = the slope, per element
}


def _activation_input(node, g, opset):
    x = node.input[0]
    if x in g.constants or x not in g.shapes:
        raise UnsupportedOpError(node.op_type, opset, node.name, "the input must be an activation of known shape")
    return x


@onnx_rule("Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "LeakyRelu")
@guarded
def activation_rule(node, g, opset):
    x = _activation_input(node, g, opset)
    _, defaults = FUNCTIONS[node.op_type]
    attrs = {k: float(attr(node, k, d)) for k, d in defaults.items()}
    if not all(math.isfinite(v) for v in attrs.values()):
        raise UnsupportedOpError(node.op_type, opset, node.name, f"attributes {attrs} must be finite")
    return [FNode("Lut", node.name, [x], node.output[0], {"fn": node.op_type, **attrs},
                  [f"{node.op_type} '{node.name}'"])]


@onnx_rule("PRelu")
@guarded
def prelu_rule(node, g, opset):
    x = _activation_input(node, g, opset)
    if node.input[1] not in g.constants:
        raise UnsupportedOpError("PRelu", opset, node.name, "the slope must be a constant")
    slope = np.asarray(g.constants[node.input[1]], dtype=np.float64)
    shape = g.shapes[x]
    if not np.all(np.isfinite(slope)):
        raise UnsupportedOpError("PRelu", opset, node.name, "the slope holds NaN or infinite values")
    try:     # unidirectional broadcast: the slope takes the input's shape
        ok = list(np.broadcast_shapes(slope.shape, tuple(shape))) == list(shape)
    except ValueError:
        ok = False
    if not ok:
        raise UnsupportedOpError("PRelu", opset, node.name,
                                 f"slope of shape {list(slope.shape)} does not broadcast to the input {shape}")
    per_elem = np.broadcast_to(slope, shape).reshape(-1)
    values = sorted(set(per_elem.tolist()))
    if len(values) > MAX_TABLES:
        raise UnsupportedOpError("PRelu", opset, node.name, f"{len(values)} distinct slopes: at most {MAX_TABLES} "
                                                            "tables per node")
    return [FNode("Lut", node.name, [x], node.output[0],
                  {"fn": "PRelu", "alphas": values, "alpha_index": [values.index(s) for s in per_elem.tolist()]},
                  [f"PRelu '{node.name}'"])]


def make_table(fn: str, attrs: dict, x, y, in_bits: int) -> list[int]:
    """The exact integer table of activation `fn` from input tensor x to output tensor y."""
    f, _ = FUNCTIONS[fn]
    v = np.arange(1 << in_bits, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        real = f(x.scale * (v - x.zero_point), attrs)
        q = np.round(real / y.scale) + y.zero_point
    if not np.all(np.isfinite(q)):
        raise ValueError(f"{fn} gives non-finite values on the input grid")
    return [int(c) for c in np.clip(q, 0, y.qmax)]


@register
class Lut(OpDef):
    name = "Lut"
    Params = Params
    template_file = "lut.circom"

    def quantize(self, f: FNode, ctx):
        x = ctx.tensor(f.inputs[0])
        fn = f.attrs["fn"]
        if x.bits > MAX_LUT_BITS:
            raise UnsupportedOpError(fn, ctx.opset, f.name,
                                     f"its input has {x.bits} bits; zkml tabulates activations over at most "
                                     f"{MAX_LUT_BITS}-bit inputs (2^{x.bits} table entries); use --act-bits "
                                     f"<= {MAX_LUT_BITS}")
        y = ctx.new_tensor(f.output)
        if fn == "PRelu":
            tables = [make_table(fn, {"alpha": a}, x, y, x.bits) for a in f.attrs["alphas"]]
            cls = list(f.attrs["alpha_index"])
            # slopes that quantize to the same table share it
            uniq = []
            for t in tables:
                if t not in uniq:
                    uniq.append(t)
            remap = [uniq.index(t) for t in tables]
            tables, cls = uniq, [remap[c] for c in cls]
            if len(tables) == 1:
                cls = None
        else:
            tables, cls = [make_table(fn, f.attrs, x, y, x.bits)], None
        return Params(x.size, x.bits, y.bits, tables, cls), y

    def kernel(self, p: Params, x):
        t = np.asarray(p.tables, dtype=np.int64)
        xv = np.asarray(x, dtype=np.int64).reshape(-1)
        cls = np.zeros(xv.size, dtype=np.int64) if p.cls is None else np.asarray(p.cls, dtype=np.int64)
        return t[cls, xv]

    def bounds(self, node, ins, out) -> Bounds:
        p: Params = node.params
        if not 1 <= p.in_bits <= MAX_LUT_BITS or p.in_bits != ins[0].bits or p.out_bits != out.bits:
            raise ValueError(f"table over {p.in_bits}-bit inputs for tensors of {ins[0].bits} -> {out.bits} bits "
                             f"(at most {MAX_LUT_BITS})")
        if not p.tables or any(len(t) != 1 << p.in_bits or min(t) < 0 or max(t) > out.qmax for t in p.tables):
            raise ValueError(f"every table needs 2^{p.in_bits} entries in [0, {out.qmax}]")
        if p.n != out.size or (p.cls is not None and (len(p.cls) != p.n or min(p.cls) < 0
                                                     or max(p.cls) >= len(p.tables))):
            raise ValueError("table classes do not match the tensor")
        return Bounds(max_bits=max(p.in_bits, p.out_bits), what="table lookup")

    def circom(self, node, ins, out, b: Bounds):
        p: Params = node.params
        if p.cls is None:
            return "Lut", [("N", p.n), ("BITS", p.in_bits), ("T", p.tables[0])]
        return "LutMulti", [("N", p.n), ("BITS", p.in_bits), ("NT", len(p.tables)), ("TABLES", p.tables),
                            ("CLS", p.cls)]
