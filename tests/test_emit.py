"""The emitter: generated circom stays readable and names from the ONNX file cannot inject code."""
from __future__ import annotations

import numpy as np
from onnx import helper

from conftest import const, make_model, save, vinfo
from zkml import api

INJECT = ("t'\n}\ntemplate Unused() {\n    signal input in[4];\n    signal output out[1];\n"
          "    component input_range = UintRange(4, 8);\n    input_range.in <== in;\n//")


def _model(tensor_name: str, node_name: str):
    rng = np.random.default_rng(0)
    return make_model(
        [helper.make_node("Identity", ["x"], [tensor_name], name=node_name),
         helper.make_node("Gemm", [tensor_name, "w", "b"], ["y"], name="fc", transB=1)],
        [vinfo("x", [1, 4])], [vinfo("y", [1, 2])],
        [const("w", rng.normal(size=(2, 4))), const("b", rng.normal(size=2))])


def test_names_cannot_inject_circuit_code(tmp_path):
    """A tensor/node name holding a newline and circom code (found by the hostile-input suite:
    before escaping it closed `template Model` early and left the output unconstrained)."""
    cal = tmp_path / "cal.npy"
    np.save(cal, np.random.default_rng(1).normal(size=(32, 4)))
    benign = api.compile(save(_model("t", "id"), tmp_path / "a.onnx"), tmp_path / "a", calibration=cal)
    evil = api.compile(save(_model(INJECT, INJECT + "\u2028"), tmp_path / "b.onnx"), tmp_path / "b",
                       calibration=cal)
    assert evil["circuit"]["constraints"] == benign["circuit"]["constraints"]
    src = (tmp_path / "b" / "main.circom").read_text()
    assert all(line.isascii() for line in src.splitlines())
    assert src.count("template Model()") == 1
    # the injected text survives only inside comments, escaped
    assert all(line.lstrip().startswith("//") for line in src.splitlines() if "Unused" in line)


def test_generated_circom_names_the_onnx_nodes(tmp_path):
    cal = tmp_path / "cal.npy"
    np.save(cal, np.random.default_rng(1).normal(size=(32, 4)))
    api.compile(save(_model("t", "my_identity"), tmp_path / "a.onnx"), tmp_path / "a", calibration=cal)
    src = (tmp_path / "a" / "main.circom").read_text()
    assert "Reshape <- Identity 'my_identity'" in src and "Dense <- Gemm 'fc'" in src
    assert "component n1_fc = Dense(" in src and "/*SHIFT*/" in src
