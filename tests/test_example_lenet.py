"""The LeNet-5-style CNN example (examples/lenet): its float model calibrated by zkml and its QDQ
copy quantized by onnxruntime, each compiled, evaluated on the test split, proven and verified
(snarkjs + Python verifier + embedded EVM) through examples/lenet/evaluate.py.

Tolerances: on the 450-sample test split the integer runtime must keep >= 95% accuracy and agree
with onnxruntime's argmax on >= 97% of the samples for the calibrated model (measured 99.8%);
for the QDQ model, whose integers onnxruntime itself defines, on >= 99% (measured 100%)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

LENET = Path(__file__).resolve().parents[1] / "examples" / "lenet"


def _evaluate_module():
    spec = importlib.util.spec_from_file_location("lenet_evaluate", LENET / "evaluate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_float_model_is_accurate_in_onnxruntime():
    d = np.load(LENET / "test_set.npz")
    sess = ort.InferenceSession(str(LENET / "model.onnx"), providers=["CPUExecutionProvider"])
    pred = np.array([sess.run(None, {"input": x[None]})[0].argmax() for x in d["x"]])
    assert (pred == d["y"]).mean() >= 0.95


@pytest.mark.parametrize("name,agree", [("model.onnx", 0.97), ("model_qdq.onnx", 0.99)])
def test_lenet_end_to_end(tmp_path, name, agree):
    r = _evaluate_module().evaluate(LENET / name, tmp_path / "build", 450, lambda s: None)
    print(f"\n{r}")
    assert r["int_acc"] >= 0.95 and r["agree"] >= agree
    assert r["valid"] and r["onchain"]
    assert r["constraints"] > 50_000 and r["circom"] == "--O2"      # the default, big layers included
