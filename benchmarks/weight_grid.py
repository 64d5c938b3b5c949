"""Benchmark: constant weights on the output's grid against uint8 weights with multipliers.

    .venv/bin/python benchmarks/weight_grid.py                 # the digits MLP and the LeNet CNN
    .venv/bin/python benchmarks/weight_grid.py lenet

For each example it compiles (temporary folders) `zkml compile --weight-grid aligned` (the
default with constant weights: requantization by a shift), `--weight-grid affine` (uint8
weights per channel, multipliers within 1/8 output LSB) and `--weight-grid affine --mult-error 0`
(16-bit multipliers), and prints per row: the R1CS constraints, the shifts of the Conv/Dense
layers, and on the example's whole test split (examples/<name>/test_set.npz) the integer
model's accuracy, its argmax agreement with onnxruntime's float model, and the error of the
dequantized integer outputs against onnxruntime's, in output LSB: the mean and the maximum
over the outputs that onnxruntime's value puts inside the output grid (an output beyond the
calibrated range is clamped, whatever the weights).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from zkml import api  # noqa: E402
from zkml.quantize import QuantConfig, run_float  # noqa: E402

EXAMPLES = {"digits": ROOT / "examples" / "digits", "lenet": ROOT / "examples" / "lenet"}
CONFIGS = [("aligned (default)", dict(weight_grid="aligned")),
           ("affine, 1/8 LSB multipliers", dict(weight_grid="affine")),
           ("affine, 16-bit multipliers", dict(weight_grid="affine", mult_error=0.0))]


def row(ex: Path, cfg: QuantConfig, work: Path) -> dict:
    import zkml_runtime as rt
    meta = api.compile(ex / "model.onnx", work, ex / "calibration.npy", cfg=cfg)
    g = api.load_graph(work)
    d = np.load(ex / "test_set.npz")
    x, y = d["x"], d["y"]
    xs = x.reshape(len(x), *g.tensors[g.inputs[0]].shape)
    o = g.tensors[g.outputs[0]]
    ref = run_float(onnx.load(str(work / "model.onnx")), xs, [g.outputs[0]])[g.outputs[0]].reshape(len(x), -1)
    ints = np.array([rt.run_outputs(g, rt.quantize_input(g, xi)[0])[0].reshape(-1) for xi in xs])
    lsb = np.abs((ints - o.zero_point) * o.scale - ref) / o.scale
    grid = ref / o.scale + o.zero_point
    inside = (grid >= 0) & (grid <= (1 << o.bits) - 1)
    return dict(constraints=meta["circuit"]["constraints"],
                shifts=[n.params.shift for n in g.nodes if hasattr(n.params, "w_bits")],
                w_bits=max(n.params.w_bits for n in g.nodes if hasattr(n.params, "w_bits")),
                acc=float((ints.argmax(1) == y).mean()), agree=float((ints.argmax(1) == ref.argmax(1)).mean()),
                mean=float(lsb.mean()), max_inside=float(lsb[inside].max()), n=len(x))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", help=f"some of {', '.join(EXAMPLES)} (default: both)")
    args = ap.parse_args(argv)
    unknown = sorted(set(args.models) - set(EXAMPLES))
    if unknown:
        ap.error(f"unknown example(s) {', '.join(unknown)}: choose from {', '.join(EXAMPLES)}")
    lines = ["| model | weights | constraints | shifts | weight bits (widest layer) | zkml acc | argmax agreement | "
             "mean error (LSB) | max error inside the grid (LSB) |", "|---|---|---|---|---|---|---|---|---|"]
    for name in args.models or list(EXAMPLES):
        for label, kw in CONFIGS:
            with tempfile.TemporaryDirectory() as tmp:
                r = row(EXAMPLES[name], QuantConfig(**kw), Path(tmp))
            lines.append(f"| {name} | {label} | {r['constraints']:,} | {', '.join(map(str, r['shifts']))} | "
                         f"{r['w_bits']} | {r['acc']:.2%} | {r['agree']:.2%} of {r['n']} | {r['mean']:.3f} | "
                         f"{r['max_inside']:.2f} |")
            print(lines[-1], flush=True)
    print("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
