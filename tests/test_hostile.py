"""Hostile input: bad files, a mutation fuzzer over valid models, bad inputs and swapped or
tampered build files. Every case must end in success or a named ZkmlError (CLI: exit 0, or 2
with a one-line `error: ...`), a verifier rejection (exit 1), and never a traceback (exit 3),
a hang or a false accept.

* `test_malformed_onnx_file_refused`: empty, truncated, garbled, non-model protobuf files.
* `test_mutation_fuzzer`: 420 mutants of small valid models (seeded, reproducible; a CNN among
  them once the registry has Conv and MaxPool):
  byte flips / insertions / truncations of the serialized file, and protobuf-level mutations
  (random attribute values and types, dims, dtypes, dangling inputs, duplicated names, huge
  shapes, size bombs in foldable constants, cycles, random op types and opsets, NaN/inf
  weights, names with control characters). They run in one worker process (a subprocess of
  this test) with a per-mutant alarm and a global timeout; a worker that dies or hangs is
  restarted after the mutant that killed it, which is reported. Most mutants stop after
  quantize + emit (circom is stubbed); each distinct circuit among the first ones that emit is
  compiled by the real circom and its witness checked against the reference runtime.
* `test_bad_input_*`: wrong shapes, NaN / inf / huge values, out-of-range integer inputs (the
  runtime and the circuit's witness generator both refuse them).
* `test_build_*` / `test_verify_*`: build files missing, garbled or taken from another build
  (model.ir.json, main.wasm, main.r1cs, main.zkey, build.json, verification_key.json,
  proof.json, public.json, setup.json), hand-edited IR, public input + r: a clear error or a
  rejection, never "valid" for a claim the model did not compute.
* `test_packed_lane_carry_forgery_rejected`: a forged witness moving a carry between two packed
  output lanes (same public word) is rejected by the R1CS (snarkjs and zkml.r1cs).

Every case is counted in circuit_harness.TALLY ("hostile: ..." kinds); the fuzzer prints its
counts (mutants, compiled, refused per error kind). `python -m zkml.soundness_report` prints
them all.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from circuit_harness import tally
from conftest import ROOT, const, make_model, mlp_model, residual_model, save, vinfo
from zkml import api
from zkml.errors import BuildError, InputError, ModelError, ToolError, ZkmlError
from zkml.ir import BN254_R
from zkml.quantize import QuantConfig

SEED = 20250505
N_BYTE_MUTANTS = 120
N_PROTO_MUTANTS = 300
MUTANT_TIMEOUT = 20          # seconds per mutant inside the worker (SIGALRM)
FUZZ_BUDGET = 240            # seconds for the whole fuzzer, restarts included
REAL_CIRCOM = 6              # distinct emitted circuits compiled by the real circom
MEMORY_LIMIT = 6 << 30       # address-space limit of the worker while it imports/quantizes


# =========================================================================== helpers
def zkml(*args, env=None, timeout=120):
    """The CLI in a subprocess: (exit code, stdout, stderr)."""
    r = subprocess.run([sys.executable, "-m", "zkml.cli", *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, env=env, cwd=ROOT)
    return r.returncode, r.stdout, r.stderr


def assert_clean_error(code: int, out: str, err: str, *, expect: str | None = None, exit_code: int = 2):
    """Exit `exit_code`, no traceback, the error is ONE line starting with `error:`."""
    assert "Traceback" not in out + err, err
    assert code == exit_code, f"exit {code}, expected {exit_code}\nstdout: {out}\nstderr: {err}"
    if exit_code == 2:
        lines = err.strip().splitlines()
        k = next((i for i, l in enumerate(lines) if l.startswith("error: ")), None)
        assert k is not None, f"no `error:` line in stderr: {err}"
        assert k == len(lines) - 1, f"the error is not one line: {lines[k:]}"
        if expect:
            assert expect in lines[k], f"expected {expect!r} in {lines[k]!r}"


def one_line(e: BaseException) -> str:
    s = str(e)
    assert s.strip() and "\n" not in s, f"{type(e).__name__} message is not one line: {s!r}"
    return s


def copy_build(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# =========================================================================== 1. ONNX files
def _good_bytes() -> bytes:
    return mlp_model((4, 3)).SerializeToString()


def _not_a_model() -> bytes:
    return numpy_helper.from_array(np.ones((3, 3), np.float32), "t").SerializeToString()


def _no_graph() -> bytes:
    m = onnx.ModelProto(ir_version=8)
    m.opset_import.add(domain="", version=13)
    return m.SerializeToString()


def _empty_graph() -> bytes:
    m = helper.make_model(helper.make_graph([], "g", [], []), opset_imports=[helper.make_opsetid("", 13)])
    return m.SerializeToString()


def _only_input_output() -> bytes:
    m = helper.make_model(helper.make_graph([], "g", [vinfo("x", [1, 3])], [vinfo("x", [1, 3])]),
                          opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m.SerializeToString()


MALFORMED = {
    "empty": lambda: b"",
    "one_byte": lambda: b"\x08",
    "text": lambda: b"this is not an ONNX model\n",
    "json": lambda: b'{"graph": {"node": []}}',
    "zeros_4k": lambda: bytes(4096),
    "ones_4k": lambda: b"\xff" * 4096,
    "random_2k": lambda: random.Random(SEED).randbytes(2048),
    "truncated_10": lambda: _good_bytes()[:10],
    "truncated_half": lambda: _good_bytes()[: len(_good_bytes()) // 2],
    "truncated_minus_1": lambda: _good_bytes()[:-1],
    "doubled": lambda: _good_bytes() * 2,          # protobuf merges: repeated fields duplicated
    "tensor_proto": _not_a_model,
    "model_without_graph": _no_graph,
    "empty_graph": _empty_graph,
    "gzip": lambda: __import__("gzip").compress(_good_bytes()),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_onnx_file_refused(tmp_path, name):
    p = tmp_path / "bad.onnx"
    p.write_bytes(MALFORMED[name]())
    with pytest.raises(ModelError) as e:
        api.compile(p, tmp_path / "b")
    one_line(e.value)
    tally("hostile: malformed ONNX file")


def test_malformed_onnx_cli(tmp_path):
    """Through the CLI: exit 2 and a one-line error, for a truncated file and a missing path; a
    directory is refused by click's argument check (exit 2, `Error: Invalid value`)."""
    (tmp_path / "t.onnx").write_bytes(_good_bytes()[:77])
    for path, expect in [(tmp_path / "t.onnx", "not a valid ONNX file"), (tmp_path / "missing.onnx", "no such file")]:
        assert_clean_error(*zkml("compile", path, "-o", tmp_path / "b"), expect=expect)
        tally("hostile: malformed ONNX file (CLI)")
    (tmp_path / "dir.onnx").mkdir()
    code, out, err = zkml("compile", tmp_path / "dir.onnx", "-o", tmp_path / "b")
    assert code == 2 and "Error: Invalid value for 'MODEL'" in err and "Traceback" not in err
    tally("hostile: malformed ONNX file (CLI)")


def test_graph_without_nodes_is_the_identity(tmp_path):
    """Not malformed: input -> output with no node compiles to the input range check, and the
    packed public output is the (range-checked) input."""
    p = tmp_path / "id.onnx"
    p.write_bytes(_only_input_output())
    meta = api.compile(p, tmp_path / "b")
    assert meta["circuit"]["public_outputs"] == 1
    (tmp_path / "x.json").write_text("[[0.5, -1, 2]]")
    _, outs = api.witness(tmp_path / "b", tmp_path / "x.json")
    assert outs == api.run(tmp_path / "b", tmp_path / "x.json", reference=False).q_input


# =========================================================================== 2. mutation fuzzer
def _flatten_model(n=6) -> onnx.ModelProto:
    """Flatten + Gemm + Relu + Reshape(constant) + Gemm: the relabeling ops and a Constant node."""
    rng = np.random.default_rng(5)
    shape = helper.make_node("Constant", [], ["shape"], name="shape_const",
                             value=numpy_helper.from_array(np.array([1, 4], np.int64)))
    nodes = [helper.make_node("Flatten", ["x"], ["f"], name="flat", axis=1),
             helper.make_node("Gemm", ["f", "w0", "b0"], ["h"], name="fc0", transB=1),
             helper.make_node("Relu", ["h"], ["r"], name="relu"), shape,
             helper.make_node("Reshape", ["r", "shape"], ["s"], name="reshape"),
             helper.make_node("MatMul", ["s", "w1"], ["y"], name="fc1")]
    inits = [const("w0", rng.normal(0, .5, (4, n))), const("b0", rng.normal(0, .2, 4)),
             const("w1", rng.normal(0, .5, (4, 2)))]
    return make_model(nodes, [vinfo("x", [1, 2, n // 2])], [vinfo("y", [1, 2])], inits)


def _cnn_model() -> onnx.ModelProto:
    """Conv + Relu + MaxPool + Flatten + Gemm on a 1x4x4 image."""
    rng = np.random.default_rng(9)
    nodes = [helper.make_node("Conv", ["x", "cw", "cb"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w", "b"], ["y"], name="fc", transB=1)]
    return make_model(nodes, [vinfo("x", [1, 1, 4, 4])], [vinfo("y", [1, 2])],
                      [const("cw", rng.normal(0, .5, (2, 1, 3, 3))), const("cb", rng.normal(0, .1, 2)),
                       const("w", rng.normal(0, .5, (2, 8))), const("b", rng.normal(0, .1, 2))])


def base_models() -> dict[str, onnx.ModelProto]:
    """The valid models the fuzzer mutates (a CNN once the registry has Conv and MaxPool)."""
    from zkml.ops import ONNX_RULES
    models = {"gemm_mlp": mlp_model((4, 3, 2)), "matmul_mlp": mlp_model((3, 4, 2), seed=2, matmul=True),
              "residual": residual_model(3), "flatten": _flatten_model()}
    if {"Conv", "MaxPool"} <= set(ONNX_RULES):
        models["cnn"] = _cnn_model()
    return models


HUGE = [0, -1, -7, 1 << 24 + 1, 10 ** 9, 2 ** 31 - 1, 2 ** 40, 2 ** 62]
ODD_FLOATS = [0.0, -0.0, 1e-45, -1.0, 1e38, -1e38, float("nan"), float("inf"), float("-inf"), 3.5]
OP_TYPES = ["Relu", "Add", "Sub", "Mul", "Div", "Sin", "Softmax", "Conv", "MaxPool", "AveragePool", "Gemm",
            "MatMul", "Reshape", "Flatten", "Identity", "Dropout", "Transpose", "Concat", "Clip", "Pad",
            "BatchNormalization", "Squeeze", "Unsqueeze", "GlobalAveragePool", "Sigmoid", "NoSuchOp", ""]
DTYPES = [TensorProto.UNDEFINED, TensorProto.INT64, TensorProto.INT8, TensorProto.UINT8, TensorProto.STRING,
          TensorProto.BOOL, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.COMPLEX64, TensorProto.BFLOAT16,
          999]
WEIRD_NAMES = ["", "x", "y", "a\nb", "}\ncomponent evil = UintRange(1, 8);\n//", "\u2028", "\x00", "'\"\\",
               "ü" * 50, "n" * 5000, "main", "in", "out"]


def _rand_attr_value(rng: random.Random):
    return rng.choice([rng.choice(HUGE), rng.choice(ODD_FLOATS), rng.randint(-3, 3), "str", b"\xff\xfe",
                       [rng.choice(HUGE) for _ in range(rng.randint(0, 4))], [1.5, float("nan")],
                       numpy_helper.from_array(np.zeros((2, 2), np.float32), "t")])


def _set_attr(node, name, value):
    for k, a in enumerate(node.attribute):
        if a.name == name:
            del node.attribute[k]
            break
    node.attribute.append(helper.make_attribute(name, value))


def _dims(rng: random.Random, n: int) -> list:
    choice = rng.randrange(4)
    if choice == 0:
        return [rng.choice(HUGE) for _ in range(n)]
    if choice == 1:
        return [1] + [rng.choice(HUGE) for _ in range(rng.randint(0, 3))]
    if choice == 2:
        return [rng.randint(0, 9) for _ in range(rng.randint(0, 6))]
    return ["batch"] + [rng.choice(["N", 3, 0, -1]) for _ in range(rng.randint(0, 3))]


def _set_vi_shape(vi, dims):
    tt = vi.type.tensor_type
    tt.ClearField("shape")
    for d in dims:
        dim = tt.shape.dim.add()
        if isinstance(d, str):
            dim.dim_param = d
        else:
            dim.dim_value = d


KNOWN_ATTRS = {"Gemm": ["transA", "transB", "alpha", "beta"], "Flatten": ["axis"], "Softmax": ["axis"],
               "Reshape": ["allowzero"], "Constant": ["value", "value_float", "value_ints"],
               "Conv": ["kernel_shape", "pads", "strides", "dilations", "group", "auto_pad"],
               "MaxPool": ["kernel_shape", "pads", "strides", "dilations", "ceil_mode", "auto_pad",
                           "storage_order"]}


def _m_attr(m, rng):
    """A random value (of a random type) for an attribute the op knows, sometimes an unknown one."""
    n = rng.choice(m.graph.node)
    known = [a.name for a in n.attribute] + KNOWN_ATTRS.get(n.op_type, [])
    name = rng.choice(known) if known and rng.random() < .85 else rng.choice(
        ["zzz", "kernel_shape", "pads", "strides", "min", "max", "perm", "axis"])
    if rng.random() < .5 and name in ("transA", "transB", "axis", "allowzero", "group", "ceil_mode",
                                      "storage_order"):
        value = rng.choice([-2, -1, 0, 1, 2, 3, 2 ** 31, -2 ** 40])
    elif rng.random() < .6 and name in ("kernel_shape", "pads", "strides", "dilations"):
        value = [rng.choice([-1, 0, 1, 2, 3, 5, 2 ** 31]) for _ in range(rng.choice([1, 2, 2, 2, 4, 4, 3]))]
    elif rng.random() < .6 and name == "auto_pad":
        value = rng.choice(["SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET", "bogus"])
    elif rng.random() < .5 and name in ("alpha", "beta"):
        value = rng.choice(ODD_FLOATS + [1e-30, 1e30, 2.0, 0.5])
    else:
        value = _rand_attr_value(rng)
    _set_attr(n, name, value)
    return f"{n.name}.{name}"


def _m_attr_drop(m, rng):
    n = rng.choice([n for n in m.graph.node if n.attribute] or m.graph.node)
    if n.attribute:
        del n.attribute[rng.randrange(len(n.attribute))]
    return n.name


def _m_init_dims(m, rng):
    t = rng.choice(m.graph.initializer)
    del t.dims[:]
    t.dims.extend(_dims(rng, len(t.dims) or 2) if rng.random() < .6 else
                  [rng.randint(0, 8) for _ in range(rng.randint(0, 3))])
    return t.name


def _m_init_dtype(m, rng):
    t = rng.choice(m.graph.initializer)
    t.data_type = rng.choice(DTYPES)
    return t.name


def _m_init_raw(m, rng):
    t = rng.choice(m.graph.initializer)
    arr = numpy_helper.to_array(t)
    t.ClearField("float_data")
    t.ClearField("int64_data")
    t.raw_data = rng.randbytes(rng.choice([0, 1, 3, arr.nbytes - 1, arr.nbytes, arr.nbytes + 4, 64]))
    return t.name


def _m_init_values(m, rng):
    t = rng.choice([i for i in m.graph.initializer if i.data_type == TensorProto.FLOAT])
    arr = numpy_helper.to_array(t).copy()
    how = rng.randrange(5)
    if how == 0:
        arr[...] = 0                                       # all-zero weights: zero scale
    elif how == 1:
        arr.flat[rng.randrange(arr.size)] = rng.choice(ODD_FLOATS)
    elif how == 2:
        with np.errstate(over="ignore"):
            arr *= rng.choice([1e30, 1e-30, -1e20, 3.4e38])
    elif how == 3:
        arr[...] = rng.choice([1e-38, 1e38, -1.0])          # constant tensor
    else:
        arr = arr.astype(np.float64)                        # double initializer (dtype mismatch with input)
    t.CopyFrom(numpy_helper.from_array(arr.astype(arr.dtype), t.name))
    return t.name


def _m_input_dims(m, rng):
    vi = rng.choice(list(m.graph.input) + list(m.graph.output))
    _set_vi_shape(vi, _dims(rng, 2))
    return vi.name


def _m_input_dtype(m, rng):
    vi = rng.choice(list(m.graph.input) + list(m.graph.output))
    vi.type.tensor_type.elem_type = rng.choice(DTYPES)
    return vi.name


def _m_dangling(m, rng):
    n = rng.choice([n for n in m.graph.node if n.input] or m.graph.node)
    if n.input:
        n.input[rng.randrange(len(n.input))] = rng.choice(["nowhere", "", "y", n.output[0]])
    return n.name


def _m_duplicate_name(m, rng):
    how = rng.randrange(4)
    nodes = list(m.graph.node)
    if how == 0 and len(nodes) > 1:                     # two nodes write the same tensor
        a, b = rng.sample(nodes, 2)
        b.output[0] = a.output[0]
    elif how == 1:                                      # initializer named like the input
        m.graph.initializer[0].name = m.graph.input[0].name
    elif how == 2:                                      # the same initializer twice
        m.graph.initializer.append(copy.deepcopy(m.graph.initializer[-1]))
    else:                                               # every node the same name
        for n in nodes:
            n.name = "same"
    return str(how)


def _m_node_order(m, rng):
    nodes = list(m.graph.node)
    how = rng.randrange(3)
    if how == 0:
        rng.shuffle(nodes)
    elif how == 1 and len(nodes) > 1:
        nodes.pop(rng.randrange(len(nodes)))
    else:
        nodes.insert(rng.randrange(len(nodes) + 1), copy.deepcopy(rng.choice(nodes)))
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    return str(how)


def _m_cycle(m, rng):
    nodes = list(m.graph.node)
    first, last = nodes[0], nodes[-1]
    first.input[0] = last.output[0]
    return first.name


def _m_op_type(m, rng):
    n = rng.choice(m.graph.node)
    n.op_type = rng.choice(OP_TYPES)
    if rng.random() < .2:
        n.domain = rng.choice(["com.microsoft", "ai.onnx.ml", "evil"])
    return f"{n.name}->{n.op_type}"


def _m_opset(m, rng):
    m.opset_import[0].version = rng.choice([0, 1, 6, 7, 9, 11, 12, 13, 17, 21, 22, 99, 10 ** 6])
    if rng.random() < .3:
        m.ir_version = rng.choice([0, 1, 3, 7, 10, 99])
    return str(m.opset_import[0].version)


def _m_io(m, rng):
    how = rng.randrange(5)
    g = m.graph
    if how == 0:
        del g.output[:]
    elif how == 1:
        g.input.append(vinfo("x2", [1, 3]))
    elif how == 2:
        del g.input[:]
    elif how == 3:
        g.output[0].name = g.input[0].name               # output is the input
    else:
        g.output.append(copy.deepcopy(g.output[0]))       # the same output twice
    return str(how)


def _m_names(m, rng):
    """Control characters, code and huge names in node/tensor names (rename consistently)."""
    new = rng.choice(WEIRD_NAMES)
    if rng.random() < .5:
        rng.choice(m.graph.node).name = new
        return "node"
    old = rng.choice([o for n in m.graph.node for o in n.output])
    for n in m.graph.node:
        for k, i in enumerate(n.input):
            if i == old:
                n.input[k] = new
        for k, o in enumerate(n.output):
            if o == old:
                n.output[k] = new
    for o in m.graph.output:
        if o.name == old:
            o.name = new
    return "tensor"


def _m_bomb(m, rng):
    """A foldable constant subgraph that would make a huge tensor (unused, or added to the input)."""
    g = m.graph
    n = rng.randrange(4)
    big = rng.choice([(1 << 24) + 1, 1 << 26, 10 ** 9, 2 ** 40])
    inits = []
    if n == 0:
        inits = [numpy_helper.from_array(np.array([1, big], np.int64), "bomb_shape")]
        node = helper.make_node("ConstantOfShape", ["bomb_shape"], ["bomb"], name="bomb",
                                value=numpy_helper.from_array(np.array([1.0], np.float32)))
    elif n == 1:
        inits = [numpy_helper.from_array(np.array(v, np.float32), k)
                 for k, v in (("r0", 0.0), ("r1", float(big)), ("r2", 1.0))]
        node = helper.make_node("Range", ["r0", "r1", "r2"], ["bomb"], name="bomb")
    elif n == 2:
        inits = [numpy_helper.from_array(np.ones((1, 1), np.float32), "t0"),
                 numpy_helper.from_array(np.array([1, big], np.int64), "reps")]
        node = helper.make_node("Tile", ["t0", "reps"], ["bomb"], name="bomb")
    else:
        inits = [numpy_helper.from_array(np.ones((1, 1), np.float32), "t0"),
                 numpy_helper.from_array(np.array([big, 1], np.int64), "eshape")]
        node = helper.make_node("Expand", ["t0", "eshape"], ["bomb"], name="bomb")
    g.initializer.extend(inits)
    nodes = [node]
    fed = rng.random() < .5
    if fed:                          # feed it into the graph: its maximum added to the input
        nodes.append(helper.make_node("ReduceMax", ["bomb"], ["bomb_max"], name="bomb_max", keepdims=0))
        nodes.append(helper.make_node("Add", [g.node[0].input[0], "bomb_max"], ["bombed"], name="bomb_add"))
        g.node[0].input[0] = "bombed"
    nodes += list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    return f"{node.op_type}({big}) {'fed' if fed else 'dead'}"


def _m_reshape_target(m, rng):
    """A Reshape's constant target shape set to random / huge values."""
    g = m.graph
    shape = _dims(rng, 2)
    shape = [d if isinstance(d, int) else -1 for d in shape]
    for n in g.node:
        if n.op_type == "Constant" and n.output[0] == "shape":
            n.attribute[0].t.CopyFrom(numpy_helper.from_array(np.array(shape, np.int64)))
            return str(shape)
    for i in g.initializer:
        if i.name == "shape":
            i.CopyFrom(numpy_helper.from_array(np.array(shape, np.int64), "shape"))
            return str(shape)
    return "none"


PROTO_MUTATIONS = {f.__name__[3:]: f for f in [
    _m_attr, _m_attr_drop, _m_init_dims, _m_init_dtype, _m_init_raw, _m_init_values, _m_input_dims,
    _m_input_dtype, _m_dangling, _m_duplicate_name, _m_node_order, _m_cycle, _m_op_type, _m_opset, _m_io,
    _m_names, _m_bomb, _m_reshape_target]}


def _byte_mutant(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    b = bytearray(data)
    kind = rng.choice(["flip", "flip", "truncate", "insert", "delete", "splice"])
    if kind == "flip":
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] ^= rng.randint(1, 255)
    elif kind == "truncate":
        b = b[: rng.randrange(len(b))]
    elif kind == "insert":
        i = rng.randrange(len(b) + 1)
        b[i:i] = rng.randbytes(rng.randint(1, 8))
    elif kind == "delete":
        i = rng.randrange(len(b))
        del b[i:i + rng.randint(1, 8)]
    else:                                               # copy a chunk of the file elsewhere
        i, j = sorted(rng.sample(range(len(b)), 2))
        k = rng.randrange(len(b))
        b[k:k] = b[i:j][:64]
    return f"bytes:{kind}", bytes(b)


def make_mutants(folder: Path, seed: int = SEED) -> list[dict]:
    """Write the mutants to folder/NNN.onnx; return [{file, base, kind}] (deterministic for a seed)."""
    rng = random.Random(seed)
    bases = base_models()
    names = sorted(bases)
    serial = {k: m.SerializeToString() for k, m in bases.items()}
    out = []
    for i in range(N_BYTE_MUTANTS + N_PROTO_MUTANTS):
        base = rng.choice(names)
        cfg = None
        if i < N_BYTE_MUTANTS:
            kind, data = _byte_mutant(serial[base], rng)
        else:
            m = copy.deepcopy(bases[base])
            mut = sorted(PROTO_MUTATIONS)[(i - N_BYTE_MUTANTS) % len(PROTO_MUTATIONS)]
            try:
                detail = PROTO_MUTATIONS[mut](m, rng)
            except (ValueError, TypeError, IndexError) as e:   # the mutation itself did not apply
                detail = f"n/a ({type(e).__name__})"
            if rng.random() < .15:                          # sometimes two mutations at once
                mut2 = rng.choice(sorted(PROTO_MUTATIONS))
                try:
                    detail += " + " + mut2 + ":" + PROTO_MUTATIONS[mut2](m, rng)
                except (ValueError, TypeError, IndexError):
                    pass
            kind = f"proto:{mut}"
            if rng.random() < .1:                           # and hostile quantization options
                cfg = [rng.choice([-1, 0, 1, 2, 3, 8, 16, 32, 33, 64, 10 ** 6]) for _ in range(2)]
                cfg += [rng.random() < .5, rng.choice([16, 16, 3, 4, 64, 65, -5])]
                detail += f" + cfg {cfg}"
            try:
                data = m.SerializeToString()
            except Exception as e:  # noqa: BLE001 - protobuf refuses to serialize: mutate the bytes instead
                kind, data = f"{kind}(unserializable {type(e).__name__})", _byte_mutant(serial[base], rng)[1]
            kind += f" [{detail[:60]!r}]"
        f = folder / f"{i:03d}.onnx"
        f.write_bytes(data)
        out.append(dict(file=str(f), base=base, kind=kind, cfg=cfg))
    return out


# ---- the worker (runs in a subprocess: `python tests/test_hostile.py --worker LIST START`)
class _Timeout(BaseException):
    pass


class _Emitted(BaseException):
    """Raised by the circom stub: the mutant got through import, quantize and emit."""


def _worker(list_file: str, start: int) -> None:
    import resource
    import signal

    from zkml import toolchain
    real_circom = toolchain.circom
    mutants = json.loads(Path(list_file).read_text())
    work = Path(list_file).parent
    seen: set[str] = set()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)

    def limit(on: bool):
        cap = MEMORY_LIMIT if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap if on else soft, hard))

    def circom_stub(src, out, *a, **kw):
        digest = hashlib.sha256(Path(src).read_bytes()).hexdigest()
        if digest in seen or len(seen) >= REAL_CIRCOM:
            raise _Emitted()
        seen.add(digest)
        limit(False)                 # node / circom2 (WebAssembly) reserve a lot of address space
        signal.alarm(4 * MUTANT_TIMEOUT)
        return real_circom(src, out, *a, **kw)

    def on_alarm(*_):
        raise _Timeout()

    toolchain.circom = circom_stub
    signal.signal(signal.SIGALRM, on_alarm)
    for i in range(start, len(mutants)):
        m = mutants[i]
        print(json.dumps({"start": i}), flush=True)
        t = time.time()
        build = work / f"build_{i:03d}"
        res: dict = {"i": i}
        limit(True)
        signal.alarm(MUTANT_TIMEOUT)
        try:
            cfg = QuantConfig(*m["cfg"]) if m.get("cfg") else None
            api.compile(m["file"], build, cfg=cfg)
            limit(False)
            shape = json.loads((build / "build.json").read_text())["input"]["shape"]
            inp = build / "x.json"
            inp.write_text(json.dumps(np.random.default_rng(i).normal(size=shape).tolist()))
            api.witness(build, inp)          # the circuit's outputs must equal the reference runtime's
            res.update(result="compiled", circuit=json.loads((build / "build.json").read_text())["circuit"])
        except _Emitted:
            res.update(result="emitted")
        except _Timeout:
            res.update(result="TIMEOUT", error=f"no answer within {MUTANT_TIMEOUT} s")
        except ZkmlError as e:
            msg = str(e)
            bug = "zkml bug" in msg or "please report" in msg
            res.update(result="BUG" if bug else type(e).__name__, error=msg[:400])
            if "\n" in msg and not isinstance(e, ToolError):
                res.update(result="MULTILINE", error=msg[:400])
        except BaseException as e:  # noqa: BLE001 - any other exception is a bug (CLI exit 3)
            import traceback
            res.update(result="BUG", error=f"{type(e).__name__}: {str(e)[:300]}",
                       trace=traceback.format_exc()[-1500:])
        finally:
            signal.alarm(0)
            limit(False)
        res["seconds"] = round(time.time() - t, 3)
        shutil.rmtree(build, ignore_errors=True)
        print(json.dumps(res), flush=True)


MUTANT_WATCHDOG = 4 * MUTANT_TIMEOUT + 30   # parent side: no output for this long = a hang


def run_fuzzer(folder: Path, mutants: list[dict], budget: float = FUZZ_BUDGET) -> dict[int, dict]:
    """Run every mutant in worker processes. The worker announces each mutant before it starts;
    one that kills the worker (a crash) or gets no answer within MUTANT_WATCHDOG seconds (a hang
    the worker's own alarm could not break, e.g. inside C code) is recorded, and a new worker
    continues after it."""
    import selectors
    list_file = folder / "mutants.json"
    list_file.write_text(json.dumps(mutants))
    results: dict[int, dict] = {}
    deadline = time.time() + budget
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]))
    start = 0
    while start < len(mutants):
        if time.time() > deadline:
            for i in range(start, len(mutants)):
                results[i] = dict(i=i, result="TIMEOUT", error="not run: the fuzzing budget is exhausted")
            break
        with open(folder / "worker.err", "w+") as err:
            proc = subprocess.Popen([sys.executable, __file__, "--worker", str(list_file), str(start)],
                                    stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=ROOT)
            sel = selectors.DefaultSelector()
            sel.register(proc.stdout, selectors.EVENT_READ)
            current, hang = None, False
            while True:
                if not sel.select(timeout=min(MUTANT_WATCHDOG, max(1.0, deadline - time.time()))):
                    hang = True
                    proc.kill()
                    break
                line = proc.stdout.readline()
                if not line:
                    break
                d = json.loads(line)
                if "start" in d:
                    current = d["start"]
                else:
                    results[d["i"]] = d
                    current = None
            proc.wait()
            sel.close()
            proc.stdout.close()
            err.seek(0)
            tail = err.read()[-600:]
        if current is None and not hang and proc.returncode == 0:
            break                                       # every mutant done
        if current is None:                             # died between two mutants
            current = max(results, default=start - 1) + 1
            if current >= len(mutants):
                break
        results[current] = dict(i=current, result="TIMEOUT" if hang else "CRASH",
                                error=(f"HANG: no answer within {MUTANT_WATCHDOG} s" if hang else
                                       f"the worker died (exit {proc.returncode}): {tail}"))
        start = current + 1
    return results


def test_mutation_fuzzer(tmp_path):
    t0 = time.time()
    mutants = make_mutants(tmp_path)
    assert len(mutants) >= 200
    results = run_fuzzer(tmp_path, mutants)
    assert sorted(results) == list(range(len(mutants)))
    counts: dict[str, int] = {}
    for r in results.values():
        counts[r["result"]] = counts.get(r["result"], 0) + 1
    bad = {i: r for i, r in results.items() if r["result"] in ("BUG", "CRASH", "TIMEOUT", "MULTILINE")}
    by_kind: dict[str, dict[str, int]] = {}
    for i, r in results.items():
        k = mutants[i]["kind"].split(" ")[0]
        by_kind.setdefault(k, {}).setdefault(r["result"], 0)
        by_kind[k][r["result"]] += 1
    slowest = max(results.values(), key=lambda r: r.get("seconds", 0))
    print(f"\nmutation fuzzer (seed {SEED}): {len(mutants)} mutants of {len(base_models())} models in "
          f"{time.time() - t0:.1f} s (slowest: #{slowest['i']} {slowest.get('seconds')} s)")
    print("  compiled by circom + witness == runtime: {}; emitted (stopped before circom): {}".format(
        counts.get("compiled", 0), counts.get("emitted", 0)))
    print("  refused: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())
                                      if k not in ("compiled", "emitted")))
    for k in sorted(by_kind):
        print(f"  {k:28s} " + ", ".join(f"{r} {n}" for r, n in sorted(by_kind[k].items())))
    for i, r in bad.items():
        print(f"  !! #{i} {mutants[i]['kind']} ({mutants[i]['file']}): {r['result']}: {r.get('error')}\n"
              f"{r.get('trace', '')}")
    for k, d in by_kind.items():
        n = sum(d.values())
        tally(f"hostile: mutation fuzzer {k}", n, n - sum(v for r, v in d.items()
                                                          if r in ("BUG", "CRASH", "TIMEOUT", "MULTILINE")))
    assert not bad, f"{len(bad)} mutants crashed, hung or raised a non-ZkmlError (see the printed list); " \
                    f"reproduce with make_mutants(folder, seed={SEED}) and zkml compile FOLDER/NNN.onnx"
    assert counts.get("compiled", 0) >= 1, "no mutant went through circom: the fuzzer is not exercising it"



# =========================================================================== 3. inputs
IN1, IN2 = [[0.1, -0.2, 0.3, 0.5]], [[-0.9, 0.6, 0.8, -0.4]]


class Builds:
    """Two tiny models compiled, set up and proven once: A (4 -> 3) and B (4 -> 5 -> 3, another
    circuit with the same public layout), and A2: a copy of A (same keys) proven on another input."""

    def __init__(self, d: Path):
        self.dir = d
        cal = d / "cal.npy"
        np.save(cal, np.random.default_rng(0).normal(size=(32, 4)))
        self.in1, self.in2 = d / "in1.json", d / "in2.json"
        self.in1.write_text(json.dumps(IN1))
        self.in2.write_text(json.dumps(IN2))
        self.A, self.B = d / "A", d / "B"
        api.compile(save(mlp_model((4, 3)), d / "a.onnx"), self.A, calibration=cal)
        api.compile(save(mlp_model((4, 5, 3), seed=7), d / "b.onnx"), self.B, calibration=cal)
        self.out_a1 = api.prove(self.A, self.in1)["outputs"]
        self.out_b1 = api.prove(self.B, self.in1)["outputs"]
        self.A2 = copy_build(self.A, d / "A2")
        self.out_a2 = api.prove(self.A2, self.in2)["outputs"]
        assert self.out_a1 != self.out_a2 and self.out_a1 != self.out_b1

    def copy(self, name: str, src: Path | None = None) -> Path:
        return copy_build(src or self.A, self.dir / name)


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> Builds:
    return Builds(tmp_path_factory.mktemp("hostile_builds"))


BAD_INPUTS = {   # file name -> content; every one is an InputError
    "too_few.json": "[[0.1, 0.2, 0.3]]",
    "too_many.json": "[[0.1, 0.2, 0.3, 0.4, 0.5]]",
    "two_samples.json": json.dumps(IN1 + IN2),
    "empty_list.json": "[]",
    "scalar.json": "3.5",
    "ragged.json": "[[1, 2], [3]]",
    "nan.json": "[[NaN, 0, 0, 0]]",
    "inf.json": "[[Infinity, 0, 0, 0]]",
    "minus_inf.json": '{"input_data": [[0, -Infinity, 0, 0]]}',
    "overflows_to_inf.json": "[[1e400, 0, 0, 0]]",
    "null.json": "[[null, 0, 0, 0]]",
    "strings.json": '[["a", "b", "c", "d"]]',
    "dict_values.json": '{"input_data": {"a": 1}}',
    "dict_without_key.json": '{"foo": [1, 2, 3, 4]}',
    "not_json.json": "{{{",
    "empty.json": "",
    "deeply_nested.json": "[" * 100000 + "]" * 100000,
    "huge_integer.json": "[[1" + "0" * 5000 + ", 0, 0, 0]]",
    "unknown_suffix.txt": "0.1 0.2 0.3 0.4",
}


def _npy_cases(d: Path) -> list[Path]:
    out = []
    for name, arr in [("complex.npy", np.array([[1 + 2j, 0, 0, 0]])), ("object.npy", np.array([[1, "a", None, 2]],
                                                                                              dtype=object)),
                      ("strings.npy", np.array([["1", "2", "3", "4"]])), ("nan.npy", np.full((1, 4), np.nan)),
                      ("wrong_size.npy", np.zeros((1, 5)))]:
        p = d / name
        np.save(p, arr, allow_pickle=True)
        out.append(p)
    np.savez(d / "empty.npz")
    (d / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    (d / "dir.json").mkdir(exist_ok=True)
    return out + [d / "empty.npz", d / "garbage.npy", d / "dir.json", d / "missing.json"]


def test_bad_input_files_are_input_errors(builds, tmp_path):
    files = []
    for name, content in BAD_INPUTS.items():
        (tmp_path / name).write_text(content)
        files.append(tmp_path / name)
    files += _npy_cases(tmp_path)
    for f in files:
        with pytest.raises(InputError) as e:
            api.run(builds.A, f, reference=False)
        one_line(e.value)
        tally("hostile: bad input file")


def test_bad_input_cli(builds, tmp_path):
    """run and prove through the CLI: exit 2 with a one-line error (and no proof written)."""
    for name in ("nan.json", "too_few.json", "deeply_nested.json"):
        (tmp_path / name).write_text(BAD_INPUTS[name])
    b = builds.copy("bad_input_cli")
    (b / "proof.json").unlink()
    assert_clean_error(*zkml("run", b, "--input", tmp_path / "nan.json"), expect="NaN or infinite")
    assert_clean_error(*zkml("prove", b, "--input", tmp_path / "too_few.json"), expect="do not make whole samples")
    assert_clean_error(*zkml("prove", b, "--input", builds.in1, "--input", tmp_path / "deeply_nested.json"))
    assert not (b / "proof.json").exists()
    tally("hostile: bad input file (CLI)", 3)


def test_huge_finite_inputs_are_clipped_and_proven_consistently(builds, tmp_path):
    """Values far outside the calibrated range are clipped (with a warning) and the circuit's
    witness equals the reference runtime on them."""
    f = tmp_path / "huge.json"
    f.write_text(json.dumps([[1e300, -1e300, 1e-300, -1.7976931348623157e308]]))
    logs = []
    r = api.run(builds.A, f, log=logs.append, reference=False)
    assert r.clipped == 3 and any("clipped" in m for m in logs)
    b = builds.copy("huge_input")
    _, outs = api.witness(b, f)          # raises if the circuit's outputs differ from the runtime's
    assert outs == r.q_outputs
    tally("hostile: huge finite input")


@pytest.mark.parametrize("q", [[-1, 0, 0, 0], [256, 0, 0, 0], [0, 0, 0, 2 ** 62], [0.5, 0, 0, 0], [0, 0, 0],
                               [[0, 0], [0, 0]]], ids=["negative", "256", "2^62", "float", "short", "2d_ok_size"])
def test_integer_input_out_of_range_refused_by_runtime(builds, q):
    from zkml_runtime.interpreter import check_integer_input, run
    g = api.load_graph(builds.A)
    if q == [[0, 0], [0, 0]]:                 # right size, other shape: reshaped, accepted
        assert check_integer_input(g, np.array(q)).shape == (1, 4)
        return
    with pytest.raises(InputError):
        check_integer_input(g, np.array(q))
    with pytest.raises(InputError):
        run(g, np.array(q))
    tally("hostile: out-of-range integer input (runtime)")


@pytest.mark.parametrize("value", [256, 257, 1 << 64, BN254_R - 1, BN254_R, BN254_R + 3, -1],
                         ids=["256", "257", "2^64", "p-1", "p", "p+3", "-1"])
def test_integer_input_out_of_range_refused_by_the_circuit(builds, value):
    """Bypassing every Python check, the witness generator itself refuses an input outside
    [0, 2^8): the UintRange constraints fail (circom input values are taken mod p)."""
    b = builds.dir / f"circuit_input_{abs(value) % 9973}"
    if not b.exists():
        copy_build(builds.A, b)
    q = np.array([value, 3, 4, 5], dtype=object)
    with pytest.raises(ToolError, match="witness generator rejected"):
        api.witness_from_integers(b, q, [0])
    tally("hostile: out-of-range integer input (circuit)")


# =========================================================================== 4. build files
def _verify(build: Path, **files) -> api.VerifyResult:
    return api.verify(build, **{k: str(v) for k, v in files.items()})


def test_build_files_from_another_build_refused(builds):
    """model.ir.json / main.wasm / main.r1cs / main.zkey of build B copied into A: refused by name
    before any work (build.json pins the first three by hash; the zkey must fit main.r1cs)."""
    for name, cmd, expect in [("model.ir.json", "run", "does not belong to this build"),
                              ("main_js/main.wasm", "prove", "does not belong to this build"),
                              ("main.r1cs", "setup", "does not belong to this build"),
                              ("main.zkey", "prove", "does not belong to")]:
        b = builds.copy("swap_" + name.replace("/", "_"))
        shutil.copyfile(builds.B / name, b / name)
        if cmd == "run":
            with pytest.raises(BuildError, match=expect):
                api.run(b, builds.in1, reference=False)
        elif cmd == "prove":
            with pytest.raises(BuildError, match=expect):
                api.prove(b, builds.in1)
        else:
            with pytest.raises(BuildError, match=expect):
                api.setup(b)
        tally("hostile: build file from another build")


def test_build_file_swap_cli(builds):
    b = builds.copy("swap_cli")
    shutil.copyfile(builds.B / "model.ir.json", b / "model.ir.json")
    assert_clean_error(*zkml("prove", b, "--input", builds.in1), expect="does not belong to this build")
    tally("hostile: build file from another build (CLI)")


@pytest.mark.parametrize("name", ["model.ir.json", "build.json", "main_js/main.wasm", "main.r1cs", "model.onnx"])
@pytest.mark.parametrize("how", ["missing", "garbled"])
def test_missing_or_garbled_build_file(builds, name, how):
    b = builds.copy(f"{how}_{name.replace('/', '_')}")
    if how == "missing":
        (b / name).unlink()
    else:
        (b / name).write_bytes(b"{ garbage \xff\x00")
    for step in (lambda: api.run(b, builds.in1), lambda: api.prove(b, builds.in1), lambda: api.setup(b)):
        try:
            step()
        except ZkmlError as e:
            assert isinstance(e, (BuildError, ToolError)), f"{type(e).__name__}: {e}"
            if not isinstance(e, ToolError):
                one_line(e)
            tally(f"hostile: build file {how}")
            return
    pytest.fail(f"{how} {name}: run, prove and setup all went through")


def test_zkey_truncated_or_garbled(builds):
    """A zkey cut short is refused by its header check; a zkey with garbled key material either
    makes the prover fail with a named error or yields a proof that verify rejects (or, if the
    damaged bytes do not matter, one whose outputs are the right ones): never a false accept."""
    b = builds.copy("zkey_truncated")
    (b / "main.zkey").write_bytes((builds.A / "main.zkey").read_bytes()[:100])
    with pytest.raises(BuildError, match="main.zkey"):
        api.prove(b, builds.in1)
    tally("hostile: tampered zkey")
    data = (builds.A / "main.zkey").read_bytes()
    rng = random.Random(SEED)
    outcomes = []
    for k in range(3):
        b = builds.copy(f"zkey_garbled_{k}")
        d = bytearray(data)
        for _ in range(16):
            d[rng.randrange(len(d) // 4, len(d))] ^= rng.randint(1, 255)
        (b / "main.zkey").write_bytes(bytes(d))
        try:
            api.prove(b, builds.in1)
        except ZkmlError as e:
            outcomes.append(f"prover refused: {type(e).__name__}")
            tally("hostile: tampered zkey")
            continue
        r = api.verify(b)
        assert not r.valid or r.outputs == builds.out_a1, "a tampered zkey produced an accepted false claim"
        outcomes.append(f"proof {'valid (right outputs)' if r.valid else 'rejected'}")
        tally("hostile: tampered zkey")
    print("\ngarbled zkeys:", outcomes)


def test_zkey_deleted_prove_makes_new_keys_old_key_rejects(builds):
    """main.zkey deleted: prove runs a new setup (and says so); the new proof verifies with the
    new key, and the old verification key (another setup of the same circuit) rejects it."""
    b = builds.copy("zkey_deleted")
    (b / "main.zkey").unlink()
    code, out, err = zkml("prove", b, "--input", builds.in1)
    assert code == 0, err
    assert "no keys yet: running setup" in out + err and "INSECURE" in out + err
    assert zkml("verify", b)[0] == 0
    code, out, err = zkml("verify", b, "--vk", builds.A / "verification_key.json")
    assert code == 1 and "INVALID proof" in err and "Traceback" not in err
    tally("hostile: old key vs new setup")


# ---- verifier inputs: every combination is rejected unless proof, public and key belong together
def _garble(p: Path) -> Path:
    p.write_text('{"pi_a": [1, 2')
    return p


VERIFY_CASES = {
    # name: (files relative to the Builds fixture, expected exit code, expected text)
    "vk_from_other_circuit": (dict(vk="B/verification_key.json"), 1, "INVALID"),
    "public_from_other_build": (dict(public="B/public.json"), 1, "INVALID"),
    "proof_from_other_build": (dict(proof="B/proof.json"), 1, "INVALID"),
    "proof_and_public_from_other_build": (dict(proof="B/proof.json", public="B/public.json"), 1, "INVALID"),
    "proof_of_another_input": (dict(proof="A2/proof.json"), 1, "INVALID"),
    "public_of_another_input": (dict(public="A2/public.json"), 1, "INVALID"),
    "vk_garbled": (dict(vk="GARBLED"), 2, "error:"),
    "proof_garbled": (dict(proof="GARBLED"), 2, "error:"),
    "public_garbled": (dict(public="GARBLED"), 2, "error:"),
    "vk_missing": (dict(vk="MISSING"), 2, "not found"),
    # 100,000 nested brackets: py_ecc raises the recursion limit to 100,000 on import, after which
    # json.loads overflowed the C stack: `zkml verify` died of SIGSEGV (exit 139) before the fix
    "proof_deeply_nested": (dict(proof="DEEP"), 2, "not valid JSON"),
    "public_deeply_nested": (dict(public="DEEP"), 2, "not valid JSON"),
    "vk_deeply_nested": (dict(vk="DEEP"), 2, "not valid JSON"),
    "proof_missing": (dict(proof="MISSING"), 2, "not found"),
}


@pytest.mark.parametrize("case", sorted(VERIFY_CASES))
def test_verify_swapped_or_garbled_files(builds, tmp_path, case):
    files, exit_code, text = VERIFY_CASES[case]
    args = []
    for k, v in files.items():
        if v == "DEEP":
            (tmp_path / f"{k}.json").write_text("[" * 100000 + "]" * 100000)
        p = {"GARBLED": _garble(tmp_path / f"{k}.json"), "MISSING": tmp_path / "missing.json",
             "DEEP": tmp_path / f"{k}.json"}.get(v) or builds.dir / v
        args += [f"--{k}", p]
    code, out, err = zkml("verify", builds.A, *args)
    assert_clean_error(code, out, err, exit_code=exit_code)
    assert text in err, err
    assert "valid; proven outputs" not in out
    tally("hostile: verify with swapped/garbled files")


PUBLIC_TAMPERS = {
    "plus_r": lambda p: [str(int(p[0]) + BN254_R)],
    "plus_1": lambda p: [str(int(p[0]) + 1)],              # claims output lane 0 one higher
    "lane_2_changed": lambda p: [str(int(p[0]) ^ (1 << 16))],
    "negative": lambda p: ["-" + p[0]],
    "hex": lambda p: [hex(int(p[0]))],
    "float": lambda p: [float(p[0])],
    "extra": lambda p: p + ["0"],
    "empty": lambda p: [],
    "nested": lambda p: [p],
    "object": lambda p: {"0": p[0]},
    "null": lambda p: None,
    "huge_string": lambda p: ["9" * 5000],
}


def test_tampered_public_inputs_rejected(builds, tmp_path):
    """In-process (api.verify) for every tamper; exit 1 through the CLI for public + r."""
    pub = json.loads((builds.A / "public.json").read_text())
    assert api.verify(builds.A).outputs == builds.out_a1
    for name, f in PUBLIC_TAMPERS.items():
        p = tmp_path / f"public_{name}.json"
        p.write_text(json.dumps(f(list(pub))))
        r = api.verify(builds.A, public=p)
        assert not r.valid and r.outputs is None, name
        tally("hostile: tampered public inputs")
    code, out, err = zkml("verify", builds.A, "--public", tmp_path / "public_plus_r.json")
    assert code == 1 and "not below the scalar field order r" in err, err
    tally("hostile: tampered public inputs (CLI)")


def test_verify_build_json_from_another_layout(builds, tmp_path):
    """The proof is valid for its key, but build.json (which says how to decode the public signals
    into outputs) comes from a build with another output layout: refused, not decoded wrongly."""
    c = tmp_path / "C"
    api.compile(save(mlp_model((4, 40), seed=3), tmp_path / "c.onnx"), c)
    b = builds.copy("foreign_build_json")
    shutil.copyfile(c / "build.json", b / "build.json")
    with pytest.raises(BuildError, match="build.json"):
        api.verify(b)
    tally("hostile: build.json from another build")


IR_TAMPERS = {   # hand-edited model.ir.json (build.json's hash removed, so the IR checks themselves act)
    "inputs_not_a_list": lambda d: d.update(inputs=5),
    "no_outputs": lambda d: d.update(outputs=[]),
    "node_not_an_object": lambda d: d["nodes"].append(1),
    "node_name_not_text": lambda d: d["nodes"][0].update(name=7),
    "tensor_shape_huge": lambda d: d["tensors"]["x"].update(shape=[1, 1 << 40]),
    "shift_2^200": lambda d: d["nodes"][0]["params"].update(shift=1 << 200),
    "out_bits_2^40": lambda d: d["nodes"][0]["params"].update(out_bits=1 << 40),
    "param_2^300": lambda d: d["nodes"][0]["params"].update(mult=[1 << 300] * 3),
    "meta_not_an_object": lambda d: d.update(meta=3),
    "unknown_postprocess": lambda d: d["meta"].update(postprocess={"op": "evil", "axis": 0}),
    "bits_above_field": lambda d: d["tensors"]["y"].update(bits=300),
}


@pytest.mark.parametrize("name", sorted(IR_TAMPERS))
def test_hand_edited_ir_refused(builds, name):
    b = builds.copy(f"ir_{name}")
    meta = json.loads((b / "build.json").read_text())
    meta.pop("files")
    (b / "build.json").write_text(json.dumps(meta))
    d = json.loads((b / "model.ir.json").read_text())
    IR_TAMPERS[name](d)
    (b / "model.ir.json").write_text(json.dumps(d))
    with pytest.raises(ZkmlError) as e:
        api.run(b, builds.in1, reference=False)
    assert isinstance(e.value, (BuildError, ZkmlError)) and type(e.value) is not ZkmlError
    one_line(e.value)
    tally("hostile: hand-edited IR")


class _Stub(Exception):
    pass


@pytest.mark.parametrize("setup_json", ["[1, 2]", '"x"', "{bad", None], ids=["list", "string", "garbled", "missing"])
def test_deploy_with_garbled_or_missing_setup_record(builds, monkeypatch, tmp_path, setup_json):
    """The contract's header says INSECURE unless setup.json positively says otherwise; a
    garbled record is a named error, not a traceback."""
    from zkml import evm
    b = copy_build(builds.A, tmp_path / "b")
    if setup_json is None:
        (b / "setup.json").unlink()
    else:
        (b / "setup.json").write_text(setup_json)
    seen = {}

    def stub(*a, **kw):
        seen.update(kw)
        raise _Stub()
    monkeypatch.setattr(evm, "deploy_and_verify", stub)
    if setup_json is None:
        with pytest.raises(_Stub):
            evm.deploy_build(b)
        assert seen["setup_note"].startswith("DEVELOPMENT KEYS - INSECURE")
    else:
        with pytest.raises(BuildError, match="setup"):
            evm.deploy_build(b)
    tally("hostile: garbled setup record (deploy)")


# =========================================================================== 5. packed public output
def test_packed_lane_carry_forgery_rejected(builds):
    """Forged witness of the compiled model A (3 uint8 lanes packed into public word out[0]):
    lane 0 + 2^8 and lane 1 - 1 leave the packed word unchanged (a carry between lanes). Both as a
    bare change of the lanes and with the attacker recomputing each RequantClamp from q+256 / q-1
    (remainder adjusted to keep `in === q*2^SHIFT + r`): rejected (the lanes' producer pins them)."""
    import zkml_runtime as rt
    from circuit_harness import O2, Circuit, assert_accepted, assert_rejected, read_sym
    from test_forgery import requant_model
    from zkml.inputs import load_input
    from zkml.ops._requant import requant_path
    from zkml.ir import verify
    from zkml.wtns import read_wtns
    b = builds.copy("carry")
    wtns, outs = api.witness(b, builds.in1)
    w, _ = read_wtns(wtns)
    c = Circuit(b, "main", O2, read_sym(b / "main.sym"))
    assert_accepted(c, w)
    g = api.load_graph(b)
    node = next(n for n in g.nodes if n.op == "Dense")
    bd = verify(g)[node.name].circuit
    p = node.params
    xs = [int(v) for v in rt.quantize_input(g, load_input(builds.in1, g.tensors[g.inputs[0]].shape))[0].reshape(-1)]
    ns = [(sum((xs[k] - p.x_zp) * (p.w[j][k] - p.w_zp[j]) for k in range(p.n_in)) + p.bias[j]) * p.mult[j]
          + (1 << (bd["SHIFT"] - 1)) + bd["K"] * (1 << bd["SHIFT"]) for j in range(p.n_out)]
    comp = next(s for s in c.sym if s.endswith(".rq[0].out")).rsplit(".rq[0].out", 1)[0]
    word = c.value(w, "main.out[0]")
    assert outs[0] >= 0 and outs[1] >= 1 and word == outs[0] + (outs[1] << 8) + (outs[2] << 16)
    # 1. the lanes alone
    bad = c.tamper(w, {f"{comp}.out[0]": outs[0] + 256, f"{comp}.out[1]": outs[1] - 1}, skip_eliminated=True)
    assert c.value(bad, "main.out[0]") == word
    assert_rejected(c, bad, caught_in=comp + ".", kind="packed output: lane carry")
    # 2. every signal of both RequantClamps recomputed from the lying quotients, the clamp
    #    comparators claiming "inside" so that the lanes really are lane0 + 256 and lane1 - 1
    #    (on RequantClamp's aligned way, the IsZero claiming "inside" and the clamped value c set
    #    to the lie: c <= 2^B - 1 by its formula, so lane0 + 256 needs c itself forged)
    lie = {}
    for j, dq in ((0, 256), (1, -1)):
        q = ns[j] >> bd["SHIFT"]
        m = requant_model(f"{comp}.rq[{j}]", ns[j], bd, q + dq, above=0, below=0, in_range=1,
                          out_name=f"{comp}.out[{j}]")
        if requant_path(bd) == "aligned":
            assert m[f"{comp}.rq[{j}].nBits.out[{bd['SHIFT'] + bd['QBITS'] - 1}]"] == 1, "the honest lane is clamped"
            m[f"{comp}.rq[{j}].c"] = outs[j] + dq - (bd["LO"] - bd["OFF"])
            m[f"{comp}.rq[{j}].out"] = m[f"{comp}.out[{j}]"] = outs[j] + dq
        lie.update(m)
        assert lie[f"{comp}.out[{j}]"] == outs[j] + dq, "the honest lane is clamped: pick another input"
    lie["main.out[0]"] = word
    bad = c.tamper(w, lie, skip_eliminated=True)
    # q+256 leaves r negative and q-1 leaves r >= 2^SHIFT: the remainders' Num2Bits catch both
    # (rBits, or on the aligned way the decomposition of N, nBits, whose high bits are q's;
    # q itself is bounded by the clamp comparators, or by qBits where no clamp acts)
    rbits = ".nBits." if requant_path(bd) == "aligned" else ".rBits."
    names = assert_rejected(c, bad, caught_in=rbits, kind="packed output: lane carry")
    assert {n.split(rbits)[0] for n in names if rbits in n} >= {f"{comp}.rq[0]", f"{comp}.rq[1]"}
    print("\nlane carry with recomputed RequantClamps caught by constraints on:",
          sorted({f"{n.split('.')[2]}.{part}" for n in names for part in ("rBits", "qBits", "nBits", "above", "below")
                  if part in n and n.count(".") > 2}))


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--worker":
    _worker(sys.argv[2], int(sys.argv[3]))
