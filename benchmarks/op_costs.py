"""Per-operator constraint cost table: R1CS constraints per output value, by bits and fan-in.

    .venv/bin/python benchmarks/op_costs.py [--out docs/OP_COSTS.md] [--quick]

Each row compiles a one-operator ONNX model through the real pipeline (calibrate on random
inputs, quantize, emit, circom with the same optimization level `zkml compile` picks) and counts
the constraints attributed to that operator's node (zkml/inspect_build.py, the same attribution
as `zkml inspect`), divided by its number of output values. The input's own range check is not
counted (it is paid once per circuit input, not per operator). Writes the markdown table to
--out and prints it.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zkml import api  # noqa: E402
from zkml import inspect_build as ib  # noqa: E402
from zkml.quantize import QuantConfig  # noqa: E402

RNG = np.random.default_rng(0)


def _c(name, arr):
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


def _model(nodes, x_shape, y_shape, inits=(), opset=13, y_type=TensorProto.FLOAT):
    g = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info("y", y_type, y_shape)], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def dense(k):
    return _model([helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)], [1, k], [1, 16],
                  [_c("w", RNG.normal(0, 1 / np.sqrt(k), (16, k))), _c("b", RNG.normal(0, .1, 16))]), f"fan-in {k}"


def conv(c, k):
    return _model([helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[k // 2] * 4)], [1, c, 6, 6], [1, 4, 6, 6],
                  [_c("w", RNG.normal(0, 1 / np.sqrt(c * k * k), (4, c, k, k))), _c("b", RNG.normal(0, .1, 4))]), \
        f"fan-in {c}x{k}x{k} = {c * k * k}"


def conv_pool(c, k):
    """Conv -> MaxPool 2x2: compiled as one ConvMaxPool (pooled before requantizing, zkml/ops/convpool.py)."""
    m, desc = conv(c, k)
    m.graph.node[0].output[0] = "c"
    m.graph.node.append(helper.make_node("MaxPool", ["c"], ["y"], kernel_shape=[2, 2], strides=[2, 2]))
    m.graph.output[0].type.tensor_type.shape.dim[2].dim_value = 3
    m.graph.output[0].type.tensor_type.shape.dim[3].dim_value = 3
    return m, f"{desc}, window 2x2"


def pool(op, k):
    return _model([helper.make_node(op, ["x"], ["y"], kernel_shape=[k, k], strides=[k, k])], [1, 2, 8, 8],
                  [1, 2, 8 // k, 8 // k]), f"window {k}x{k}"


def unary(op, **attrs):
    return _model([helper.make_node(op, ["x"], ["y"], **attrs)], [1, 32], [1, 32],
                  opset=14 if op == "HardSwish" else 13), "elementwise"


def add_two():
    return _model([helper.make_node("Gemm", ["x", "w", "b"], ["a"], transB=1),
                   helper.make_node("Add", ["a", "x"], ["y"])], [1, 16], [1, 16],
                  [_c("w", RNG.normal(0, .3, (16, 16))), _c("b", np.zeros(16))]), "two tensors"


def mul_const():
    return _model([helper.make_node("Mul", ["x", "s"], ["y"])], [1, 32], [1, 32],
                  [_c("s", RNG.uniform(-2, 2, 32))]), "per-element constant"


def argmax(k):
    return _model([helper.make_node("ArgMax", ["x"], ["y"], axis=1, keepdims=1)], [1, k], [1, 1],
                  y_type=TensorProto.INT64), f"over {k}"


def transpose():
    return _model([helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 1])], [1, 4, 8], [1, 8, 4]), "relabeling"


def cases(quick: bool):
    bits = [8] if quick else [4, 8, 12]
    out = []
    for b in bits:
        for k in ([16, 256] if quick else [4, 16, 64, 256, 1024]):
            out.append(("Gemm", b, dense(k)))
        for c, k in ([(1, 3), (8, 3)] if quick else [(1, 3), (8, 3), (16, 5)]):
            out.append(("Conv", b, conv(c, k)))
        out.append(("Conv -> MaxPool", b, conv_pool(8, 3)))
        for k in [2, 4]:
            out.append(("MaxPool", b, pool("MaxPool", k)))
            out.append(("AveragePool", b, pool("AveragePool", k)))
        out.append(("Add", b, add_two()))
        out.append(("Mul (const)", b, mul_const()))
        out.append(("Clip (standalone)", b, (_model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"])], [1, 32], [1, 32],
                                                   [_c("lo", -0.5), _c("hi", 0.5)]), "elementwise")))
        if b <= 12:
            for op, attrs in [("Sigmoid", {}), ("Tanh", {}), ("LeakyRelu", {"alpha": 0.1}), ("HardSwish", {})]:
                out.append((op, b, unary(op, **attrs)))
        out.append(("ArgMax", b, argmax(16)))
        out.append(("Transpose", b, transpose()))
    return out


def measure(op, bits, model_desc, work: Path):
    model, desc = model_desc
    work.mkdir(parents=True, exist_ok=True)
    path = work / "m.onnx"
    onnx.save(model, path)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    np.save(work / "cal.npy", RNG.normal(0, 1, (32, *shape)).astype(np.float32))
    meta = api.compile(path, work / "b", calibration=work / "cal.npy", cfg=QuantConfig(bits, bits))
    counts = ib.attribute_constraints(work / "b")
    g = api.load_graph(work / "b")
    node_costs = {f"n{k}": (n, g.tensors[n.output].size) for k, n in enumerate(g.nodes)}
    last = f"n{len(g.nodes) - 1}"            # the operator under test is the last node
    n, size = node_costs[last]
    return dict(op=op, ir=n.op, bits=bits, desc=desc, constraints=counts.get(last, 0), size=size,
                per_value=counts.get(last, 0) / size, circom=meta["circuit"].get("circom", "--O2"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "OP_COSTS.md"))
    ap.add_argument("--quick", action="store_true", help="8 bits and fewer fan-ins only")
    a = ap.parse_args(argv)
    rows = []
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for i, (op, bits, md) in enumerate(cases(a.quick)):
            r = measure(op, bits, md, Path(tmp) / f"c{i}")
            print(f"  {r['op']:<18} {r['bits']:>2} bits  {r['desc']:<26} {r['per_value']:8.1f} per value", flush=True)
            rows.append(r)
    lines = ["# Constraint cost per operator",
             "",
             "Generated by `.venv/bin/python benchmarks/op_costs.py` (do not edit by hand): R1CS constraints",
             "attributed to one operator (as `zkml inspect` attributes them), per output value, for",
             "activations and weights of the given bits. Weights are circuit constants, so fan-in changes",
             "the cost only through the accumulator's width (the requantization's range check).",
             "The input's own range check (bits per input value) is not included.",
             "A Conv read only by a 2x2 MaxPool compiles to one ConvMaxPool (pooled before it is",
             "requantized): its cost per pooled value compares with 4 x Conv + MaxPool of the rows above.",
             "",
             "| ONNX op | IR op | bits | shape | constraints / output value | circom |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['op']} | {r['ir']} | {r['bits']} | {r['desc']} | {r['per_value']:.1f} | {r['circom']} |")
    lines += ["", f"({len(rows)} circuits compiled in {time.time() - t0:.0f} s.)", ""]
    Path(a.out).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
