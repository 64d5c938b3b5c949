"""Smoke test of `zkml bench` on the digits MLP: the table has its columns and sane values.

No timing assertions: the figures are printed by the benchmark, not checked here. EZKL's row
runs only when the optional `ezkl` package is installed (pip install 'zkml[bench]').
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from zkml import bench, groth16
from zkml.quantize import run_float

ROOT = Path(__file__).resolve().parent.parent
HEADERS = ["model", "tool", "circuit size", "compile s", "setup s", "witness s", "prove s", "verify s",
           "compile MiB", "setup MiB", "witness MiB", "prove MiB", "proof B", "pk MiB", "verify gas",
           "max abs err", "argmax agree"]
# EIP-197/EIP-1108: a Groth16 check is 4 pairings (45,000 + 4·34,000 gas) plus the 21,000 base
PAIRING_FLOOR = 21_000 + 45_000 + 4 * 34_000


def zkml(*args, timeout=1500):
    return subprocess.run([sys.executable, "-m", "zkml.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def digits_bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    r = zkml("bench", "digits", "-o", out, "--samples", "3", "--target", "resources", "--timeout", "600")
    assert r.returncode == 0, r.stderr[-2000:] + r.stdout[-2000:]
    return out, r.stdout, json.loads((out / "bench.json").read_text())


@pytest.mark.slow
def test_table_has_the_columns_and_a_zkml_row(digits_bench):
    out, stdout, rows = digits_bench
    md = (out / "bench.md").read_text()
    header = next(ln for ln in md.splitlines() if ln.startswith("| model"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells[:len(HEADERS)] == HEADERS
    zk = [ln for ln in md.splitlines() if ln.startswith("| digits | zkml |")]
    assert len(zk) == 1 and len(zk[0].strip("|").split("|")) == len(cells)
    assert header in stdout                     # the table is printed too
    assert md.startswith("Command: `zkml bench digits")


@pytest.mark.slow
def test_zkml_row_values_are_sane(digits_bench):
    out, _, rows = digits_bench
    z = next(r for r in rows if r["tool"] == "zkml")
    assert not z.get("note"), z
    # the constraint count is the compiled circuit's (read back from its r1cs header)
    r1cs = out / "work" / "digits" / "zkml" / "main.r1cs"
    assert z["constraints"] == groth16.r1cs_info(r1cs)["constraints"] > 0
    for step in ("compile", "setup", "witness", "prove", "verify"):
        assert z[f"{step}_s"] > 0
        assert 10 < z[f"{step}_mib"] < 12 * 1024     # a Python process at least, below the bound
    assert z["proof_bytes"] == 256                    # two G1 and one G2 point, uncompressed
    assert z["pk_mib"] > 0
    assert PAIRING_FLOOR < z["gas"] < 1_000_000
    # accuracy vs onnxruntime on 3 held-out digits: at most 1 + 3 requantizing layers LSBs, argmax agrees
    assert z["n"] == 3 and z["out_size"] == 10
    assert math.isfinite(z["max_err"]) and z["max_lsb"] <= 4.0
    assert z["agree"] >= 2


@pytest.mark.slow
def test_ezkl_row_when_installed(digits_bench):
    out, _, rows = digits_bench
    if not bench.ezkl_available():
        assert [r["tool"] for r in rows] == ["zkml"]
        pytest.skip("ezkl not installed (pip install 'zkml[bench]'): zkml rows only")
    e = next(r for r in rows if r["tool"] == "ezkl (resources)")
    assert not e.get("note"), e
    assert 2 ** e["logrows"] >= e["rows"] > 0
    assert e["proof_bytes"] > 256 and e["pk_mib"] > 0
    assert PAIRING_FLOOR < e["gas"] < 15_000_000      # verified on the same embedded EVM, a forged proof refused
    assert e["n"] == 3 and e["agree"] >= 2
    assert "Ratios EZKL / zkml" in (out / "bench.md").read_text()


@pytest.mark.slow
def test_chart_written(digits_bench):
    out, _, _ = digits_bench
    pytest.importorskip("matplotlib")
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fit_growth_recovers_a_known_exponent():
    xs = [10, 20, 40, 80, 160]
    assert bench.fit_growth(xs, [3 * x ** 1.5 for x in xs]) == pytest.approx(1.5)
    assert bench.fit_growth([5], [1]) is None


def test_strip_softmax_leaves_the_logits(tmp_path):
    """The model both tools get outputs what onnxruntime computes before the final Softmax."""
    src = ROOT / "examples" / "digits" / "model.onnx"
    assert bench.strip_softmax(src, tmp_path / "m.onnx")
    m, s = onnx.load(str(src)), onnx.load(str(tmp_path / "m.onnx"))
    assert [n.op_type for n in s.graph.node] == [n.op_type for n in m.graph.node][:-1]
    x = np.load(ROOT / "examples" / "digits" / "calibration.npy")[:4].reshape(4, 1, 64)
    logits = run_float(s, x, [s.graph.output[0].name])[s.graph.output[0].name].reshape(4, -1)
    probs = run_float(m, x, [m.graph.output[0].name])[m.graph.output[0].name].reshape(4, -1)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    assert np.allclose(e / e.sum(axis=1, keepdims=True), probs, atol=1e-5)
    # a model without a trailing Softmax is copied unchanged
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])])
    onnx.save(helper.make_model(g), str(tmp_path / "r.onnx"))
    assert not bench.strip_softmax(tmp_path / "r.onnx", tmp_path / "r2.onnx")
    assert (tmp_path / "r.onnx").read_bytes() == (tmp_path / "r2.onnx").read_bytes()


def test_unknown_model_is_a_clear_error(tmp_path):
    r = zkml("bench", "no_such_model", "-o", tmp_path, "--no-ezkl", timeout=120)
    assert r.returncode == 2
    assert "unknown benchmark model 'no_such_model'" in r.stderr and "Traceback" not in r.stderr


def test_a_failing_step_becomes_a_note(tmp_path):
    """A model zkml refuses gets a row naming the step and the reason, not a crash."""
    g = helper.make_graph([helper.make_node("Cos", ["x"], ["y"], name="cosine")], "g",
                          [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(m, str(tmp_path / "cos.onnx"))
    (tmp_path / "input.json").write_text(json.dumps({"input_data": [[0.1, 0.2, 0.3]]}))
    rows = bench.bench(bench.default_models([str(tmp_path / "cos.onnx")], n_cal=4, n_samples=2),
                       tmp_path / "out", ezkl=False)
    assert len(rows) == 1 and rows[0]["note"].startswith("compile: unsupported operator Cos")
    assert "| cos | zkml |" in bench.markdown_table(rows)
