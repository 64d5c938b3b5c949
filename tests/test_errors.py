"""Bad input never crashes with a trace: named errors and non-zero exits."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from onnx import helper

from conftest import make_model, mlp_model, save, vinfo
from zkml.errors import BitWidthError, InputError, ModelError, UnsupportedOpError
from zkml.ir import Graph, Node, Tensor, verify
from zkml.onnx_import import import_onnx
from zkml.ops.dense import Params as DenseParams


def zkml(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "zkml.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


def _unsupported(tmp_path):
    m = make_model([helper.make_node("Gemm", ["x", "w"], ["h"], name="fc", transB=1),
                    helper.make_node("Sin", ["h"], ["y"], name="my_sine")],
                   [vinfo("x", [1, 3])], [vinfo("y", [1, 2])],
                   [helper.make_tensor("w", 1, [2, 3], [0.1] * 6)], opset=13)
    return save(m, tmp_path / "sin.onnx")


def test_unsupported_op_names_op_opset_node(tmp_path):
    with pytest.raises(UnsupportedOpError) as e:
        import_onnx(_unsupported(tmp_path))
    assert (e.value.op, e.value.opset, e.value.node) == ("Sin", 13, "my_sine")


def test_unsupported_op_cli_exit_and_message(tmp_path):
    r = zkml("compile", _unsupported(tmp_path), "-o", tmp_path / "b")
    assert r.returncode != 0
    assert "Sin" in r.stderr and "opset 13" in r.stderr and "my_sine" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


@pytest.mark.parametrize("content", [b"", b"not an onnx file at all \x00\x01\x02", b"\x08\x07" * 50])
def test_malformed_model_file(tmp_path, content):
    p = tmp_path / "bad.onnx"
    p.write_bytes(content)
    with pytest.raises(ModelError):
        import_onnx(p)
    r = zkml("compile", p, "-o", tmp_path / "b")
    assert r.returncode != 0 and r.stderr.startswith("error:") and "Traceback" not in r.stderr


def test_truncated_model_file(tmp_path):
    good = save(mlp_model(), tmp_path / "m.onnx").read_bytes()
    p = tmp_path / "t.onnx"
    p.write_bytes(good[: len(good) // 2])
    r = zkml("compile", p, "-o", tmp_path / "b")
    assert r.returncode != 0 and "Traceback" not in r.stderr


def test_missing_model_file(tmp_path):
    r = zkml("compile", tmp_path / "nope.onnx")
    assert r.returncode != 0 and "no such file" in r.stderr


def test_old_opset_is_upgraded(tmp_path):
    fg, _ = import_onnx(save(mlp_model(opset=11), tmp_path / "m11.onnx"))
    assert fg.opset == 13 and [n.op for n in fg.nodes] == ["Dense", "Dense", "Reshape"]


def test_softmax_not_last_is_refused(tmp_path):
    m = make_model([helper.make_node("Softmax", ["x"], ["s"], name="sm"),
                    helper.make_node("Relu", ["s"], ["y"], name="r")],
                   [vinfo("x", [1, 3])], [vinfo("y", [1, 3])])
    with pytest.raises(UnsupportedOpError, match="last node"):
        import_onnx(save(m, tmp_path / "s.onnx"))


def test_bound_analysis_refuses_field_overflow():
    """A multiplier so large the requantization input could pass 2^252: refused, naming node and bits."""
    x = Tensor("x", [1, 4], 8, 0.1, 0)
    y = Tensor("y", [1, 2], 8, 0.1, 0)
    p = DenseParams(1, 4, 2, [[255] * 4] * 2, [0, 0], 8, [0, 0], 0, [1 << 240, 1], 8, 0, 0, 8)
    g = Graph(["x"], ["y"], {"x": x, "y": y}, [Node("Dense", "huge_layer", ["x"], "y", p)])
    with pytest.raises(BitWidthError) as e:
        verify(g)
    assert e.value.node == "huge_layer" and e.value.bits > 252
    assert "huge_layer" in str(e.value) and str(e.value.bits) in str(e.value)


def test_bad_calibration_and_inputs(tmp_path):
    model = save(mlp_model((4, 3)), tmp_path / "m.onnx")
    bad = tmp_path / "cal.json"
    bad.write_text(json.dumps([[1.0, 2.0, 3.0]]))  # 3 values, the model takes 4
    r = zkml("compile", model, "--calibration", bad, "-o", tmp_path / "b")
    assert r.returncode != 0 and "values do not make whole samples" in r.stderr
    np.save(tmp_path / "cal.npy", np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32))
    r = zkml("compile", model, "--calibration", tmp_path / "cal.npy", "-o", tmp_path / "b")
    assert r.returncode == 0, r.stderr
    for name, content in [("nan.json", '{"input_data": [[1, NaN, 2, 3]]}'), ("short.json", "[1, 2]"),
                          ("garbage.json", "{{{"), ("text.json", '{"input_data": [["a","b","c","d"]]}')]:
        (tmp_path / name).write_text(content)
        r = zkml("run", tmp_path / "b", "--input", tmp_path / name)
        assert r.returncode != 0 and r.stderr.startswith("error:"), (name, r.stderr)
        assert "Traceback" not in r.stderr
    r = zkml("run", tmp_path / "nobuild", "--input", tmp_path / "nan.json")
    assert r.returncode != 0 and "zkml compile" in r.stderr


def test_integer_input_out_of_range_rejected(tmp_path):
    from zkml_runtime.interpreter import check_integer_input
    x = Tensor("x", [1, 2], 8, 0.1, 0)
    g = Graph(["x"], ["x"], {"x": x}, [])
    with pytest.raises(InputError, match="out of range"):
        check_integer_input(g, np.array([0, 256]))
