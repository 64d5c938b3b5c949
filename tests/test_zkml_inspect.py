"""`zkml inspect BUILD` (zkml/inspect_build.py): per-node constraints, bits and error, and a chart.

Checked against what zkml/inspect_build.py does not compute itself:
  - the attributed constraints add up to the count in the .r1cs header (circom's own count);
  - a pure relabeling (Flatten -> Reshape) gets no constraint, a layer twice as wide gets twice
    the constraints of its narrower twin (the same per-output template);
  - the error column of the last node equals `zkml run`'s difference from onnxruntime for the
    same single input (a separate code path: api.run);
  - the CLI writes a real PNG and the JSON table; a missing build is a one-line error, exit 2.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from onnx import helper

from zkml import api, groth16
from zkml import inspect_build as ib

from conftest import const, make_model, save, vinfo


def two_towers(tmp_path):
    """x[1,2,2,2] -> Flatten -> Gemm(8->6) Relu -> Gemm(6->12) Relu -> Gemm(12->4)."""
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Flatten", ["x"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w0", "b0"], ["h0"], name="narrow", transB=1),
             helper.make_node("Relu", ["h0"], ["r0"], name="relu0"),
             helper.make_node("Gemm", ["r0", "w1", "b1"], ["h1"], name="wide", transB=1),
             helper.make_node("Relu", ["h1"], ["r1"], name="relu1"),
             helper.make_node("Gemm", ["r1", "w2", "b2"], ["y"], name="head", transB=1)]
    inits = [const("w0", rng.normal(0, .5, (6, 8))), const("b0", rng.normal(0, .1, 6)),
             const("w1", rng.normal(0, .5, (12, 6))), const("b1", rng.normal(0, .1, 12)),
             const("w2", rng.normal(0, .5, (4, 12))), const("b2", rng.normal(0, .1, 4))]
    m = make_model(nodes, [vinfo("x", [1, 2, 2, 2])], [vinfo("y", [1, 4])], inits)
    cal = tmp_path / "cal.npy"
    np.save(cal, rng.normal(0, 1, (32, 1, 2, 2, 2)).astype(np.float32))
    build = tmp_path / "build"
    api.compile(save(m, tmp_path / "m.onnx"), build, calibration=cal)
    return build, cal


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return two_towers(tmp_path_factory.mktemp("inspect"))


def test_constraints_add_up_and_follow_layer_width(built):
    build, _ = built
    rows, summary = ib.inspect(build, reference=False)
    assert summary["constraints"] == groth16.r1cs_info(build / "main.r1cs")["constraints"]
    by = {r.name: r for r in rows}
    assert by["flat"].op == "Reshape" and by["flat"].constraints == 0
    assert by["narrow"].constraints > 0 and by["head"].constraints > 0
    # same template per output: the wide layer (12 outputs) costs ~2x the narrow one (6 outputs)
    ratio = by["wide"].constraints / by["narrow"].constraints
    assert 1.6 < ratio < 2.4, ratio


def test_error_column_matches_zkml_run(built, tmp_path):
    build, _ = built
    x = np.random.default_rng(9).normal(0, 1, (1, 2, 2, 2)).astype(np.float32)
    np.save(tmp_path / "one.npy", x)
    rows, summary = ib.inspect(build, samples=tmp_path / "one.npy")
    r = api.run(build, tmp_path / "one.npy")
    assert rows[-1].max_err_lsb == pytest.approx(r.max_diff_lsb, rel=1e-9, abs=1e-12)
    assert all(row.max_err is not None for row in rows)
    assert str(tmp_path / "one.npy") == summary["samples"]


def test_cli_writes_table_json_and_png(built):
    build, _ = built
    p = subprocess.run([sys.executable, "-m", "zkml.cli", "inspect", str(build)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "| narrow | Dense |" in p.stdout and "**total**" in p.stdout
    assert (build / "inspect.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((build / "inspect.json").read_text())
    assert [n["name"] for n in data["nodes"]] == ["flat", "narrow", "wide", "head"]


def test_cli_missing_build_is_a_clear_error(tmp_path):
    p = subprocess.run([sys.executable, "-m", "zkml.cli", "inspect", str(tmp_path / "nope")],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "run `zkml compile` first" in p.stderr and "Traceback" not in p.stderr
