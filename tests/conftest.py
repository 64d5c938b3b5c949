"""Shared fixtures: small ONNX models built in the tests and the shared model corpus."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from zkml import evm

ROOT = Path(__file__).resolve().parent.parent
SHARED_MODELS = Path(os.environ.get("ZKML_SHARED_MODELS", ROOT.parent / "shared" / "models"))
# the shared models the foundation must compile, run within tolerance and prove
FOUNDATION_MODELS = ["1l_mlp", "1l_linear", "1l_relu", "2l_relu_fc", "2l_relu_small",
                     "1l_flatten", "1l_reshape", "1l_identity"]


def shared_model(name: str) -> Path:
    p = SHARED_MODELS / name / "network.onnx"
    if not p.exists():
        pytest.skip(f"shared model {name} not present ({SHARED_MODELS})")
    return p


def make_model(nodes, inputs, outputs, inits=(), opset=13) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def vinfo(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def const(name, arr):
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


def mlp_model(sizes=(6, 5, 4), seed=0, matmul=False, opset=13) -> onnx.ModelProto:
    """Gemm(+Relu) layers, or MatMul + Add(bias) + Relu when matmul=True."""
    rng = np.random.default_rng(seed)
    nodes, inits, cur = [], [], "x"
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        w, bias = rng.normal(0, 0.6, (a, b)), rng.normal(0, 0.3, b)
        inits += [const(f"w{i}", w), const(f"b{i}", bias)]
        out = f"h{i}"
        if matmul:
            nodes += [helper.make_node("MatMul", [cur, f"w{i}"], [f"m{i}"], name=f"matmul{i}"),
                      helper.make_node("Add", [f"m{i}", f"b{i}"], [out], name=f"bias{i}")]
        else:
            inits[-2] = const(f"w{i}", w.T)
            nodes.append(helper.make_node("Gemm", [cur, f"w{i}", f"b{i}"], [out], name=f"fc{i}", transB=1))
        cur = out
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [cur], [f"r{i}"], name=f"relu{i}"))
            cur = f"r{i}"
    nodes.append(helper.make_node("Identity", [cur], ["y"], name="out"))
    return make_model(nodes, [vinfo("x", [1, sizes[0]])], [vinfo("y", [1, sizes[-1]])], inits, opset)


def residual_model(n=5, seed=1) -> onnx.ModelProto:
    """Two Gemm branches added elementwise (Add of two activations), then Relu and Softmax."""
    rng = np.random.default_rng(seed)
    inits = [const("wa", rng.normal(0, 0.5, (n, n))), const("wb", rng.normal(0, 0.5, (n, n))),
             const("ba", rng.normal(0, 0.2, n)), const("shape", [1, n])]
    inits[-1] = numpy_helper.from_array(np.array([1, n], dtype=np.int64), "shape")
    nodes = [helper.make_node("Gemm", ["x", "wa", "ba"], ["a"], name="fa"),
             helper.make_node("MatMul", ["x", "wb"], ["b"], name="fb"),
             helper.make_node("Add", ["a", "b"], ["s"], name="sum"),
             helper.make_node("Relu", ["s"], ["r"], name="relu"),
             helper.make_node("Reshape", ["r", "shape"], ["f"], name="reshape"),
             helper.make_node("Softmax", ["f"], ["y"], name="softmax", axis=-1)]
    return make_model(nodes, [vinfo("x", [1, n])], [vinfo("y", [1, n])], inits)


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, path)
    return path


# --------------------------------------------------------------------------- anvil: a real node
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def anvil():
    """A real node: anvil from node_modules on a free loopback port, for the whole session."""
    with evm.anvil_node() as url:
        yield url
