"""The digits example: quantized integer model vs the float model on the held-out test split."""
from __future__ import annotations

from pathlib import Path

import numpy as np

import zkml_runtime as rt
from zkml.onnx_import import import_onnx
from zkml.quantize import QuantConfig, calibrate, quantize, run_float

EX = Path(__file__).resolve().parent.parent / "examples" / "digits"


def test_digits_quantized_matches_float():
    fg, model = import_onnx(EX / "model.onnx")
    g = quantize(fg, calibrate(fg, model, np.load(EX / "calibration.npy").reshape(-1, 1, 64)), QuantConfig())
    assert [n.op for n in g.nodes] == ["Dense", "Dense", "Dense"] and g.meta["postprocess"]["op"] == "softmax"
    data = np.load(EX / "test_set.npz")
    probs = run_float(model, data["x"][:, None, :], ["output"])["output"][:, 0]
    float_pred = probs.argmax(1)
    q_pred = np.array([rt.run_outputs(g, rt.quantize_input(g, x[None])[0])[0].argmax() for x in data["x"]])
    agreement = (q_pred == float_pred).mean()
    float_acc, q_acc = (float_pred == data["y"]).mean(), (q_pred == data["y"]).mean()
    print(f"argmax agreement {agreement:.4f}; accuracy float {float_acc:.4f}, integer {q_acc:.4f}")
    assert agreement >= 0.98
    assert q_acc >= float_acc - 0.02
