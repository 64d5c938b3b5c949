"""Compile, evaluate, prove and verify the LeNet example, for the float model and its QDQ copy.

    python examples/lenet/evaluate.py [--out build/lenet] [--samples N]

For each of model.onnx (calibrated by zkml on calibration.npy) and model_qdq.onnx (quantized by
onnxruntime's static quantizer; zkml keeps its scales, zero points and integer weights), prints:
onnxruntime (float model; the QDQ model as onnxruntime runs it) and integer (zkml's reference runtime = the circuit) accuracy on the test
split, their argmax agreement, the constraint count, and the setup / prove / verify times of one
proof of input.json, verified by snarkjs, the Python verifier and on the embedded EVM.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def evaluate(model: Path, build: Path, n: int, log) -> dict:
    import zkml_runtime as rt
    from zkml import api
    from zkml.quantize import run_float

    t = time.time()
    meta = api.compile(model, build, calibration=HERE / "calibration.npy", log=log)
    compile_s = time.time() - t
    g = api.load_graph(build)
    d = np.load(HERE / "test_set.npz")
    x, y = d["x"][:n], d["y"][:n]
    import onnx
    ref = run_float(onnx.load(str(build / "model.onnx")), x.reshape(len(x), 1, *x.shape[1:]), [g.outputs[0]])
    float_pred = ref[g.outputs[0]].reshape(len(x), -1).argmax(1)
    int_pred = np.array([rt.run_outputs(g, rt.quantize_input(g, xi[None])[0])[0].reshape(-1).argmax() for xi in x])
    t = time.time()
    api.setup(build, log=log)
    setup_s = time.time() - t
    res = api.prove(build, HERE / "input.json", log=log)
    t = time.time()
    v = api.verify(build, log=log)
    verify_s = time.time() - t
    dep = api.deploy(build, log=log)
    return dict(model=model.name, constraints=meta["circuit"]["constraints"], circom=meta["circuit"].get("circom"),
                float_acc=float((float_pred == y).mean()), int_acc=float((int_pred == y).mean()),
                agree=float((float_pred == int_pred).mean()), n=len(x), compile_s=compile_s, setup_s=setup_s,
                prove_s=res["seconds"]["prove"], prover=res["prover"], verify_s=verify_s, valid=v.valid,
                onchain=dep.valid, gas=dep.verify_gas)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="build/lenet", help="parent folder of the two builds")
    ap.add_argument("--samples", type=int, default=450, help="test samples to evaluate (450 = all)")
    ap.add_argument("--only", choices=["float", "qdq"], help="evaluate one of the two models")
    a = ap.parse_args(argv)
    rows = []
    for kind, name in (("float", "model.onnx"), ("qdq", "model_qdq.onnx")):
        if a.only and a.only != kind:
            continue
        print(f"== {name}", flush=True)
        rows.append(evaluate(HERE / name, Path(a.out) / kind, a.samples, lambda s: print("  " + s, flush=True)))
    print()
    print("| model | constraints | onnxruntime acc | zkml acc | argmax agreement | compile | setup | prove | verify | on-chain |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['constraints']:,} ({r['circom']}) | {r['float_acc']:.2%} | {r['int_acc']:.2%} | "
              f"{r['agree']:.2%} of {r['n']} | {r['compile_s']:.1f} s | {r['setup_s']:.1f} s | "
              f"{r['prove_s']:.2f} s ({r['prover']}) | {r['verify_s']:.1f} s, {'valid' if r['valid'] else 'INVALID'} | "
              f"{r['onchain']}, {r['gas']} gas |")
    return 0 if all(r["valid"] and r["onchain"] for r in rows) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1]))
    sys.exit(main())
