"""A cheap synthetic model with many outputs, for on-chain tests and the gas table.

One ONNX Relu over N values: the circuit has N uint8 public outputs (packed 31 per public
signal by default, or one each with pack=False), ~18 constraints per value, so even N = 3,072
(a 32x32 RGB image) compiles, sets up and proves in ~20 s.

    python examples/onchain/wide_relu.py 3072 -o build_wide [--no-pack-outputs]
    zkml deploy build_wide --mint
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from zkml import api


def relu_model(n: int) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], f"relu{n}", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def make_build(folder: str | Path, n: int, pack: bool = True, inputs: int = 1, seed: int = 0,
               log=lambda s: None) -> dict:
    """Compile, set up (development keys) and prove `inputs` random inputs of the n-wide Relu.

    Returns {"build": folder, "proofs": [dir, ...], "seconds": {...}}; one input proves into the
    build folder itself, several into folder/proofs/NNN (zkml.api.prove_many)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    model = folder / "wide_relu.onnx"
    onnx.save(relu_model(n), model)
    np.save(folder / "calibration.npy", rng.normal(0, 1, (16, 1, n)).astype(np.float32))
    paths = []
    for k in range(inputs):
        paths.append(folder / f"input{k}.npy")
        # positive inputs: (almost) every output is nonzero, the costliest case on-chain
        np.save(paths[-1], (np.abs(rng.normal(0, 1, (1, n))) + 0.05).astype(np.float32))
    build = folder / "build"
    t = time.time()
    api.compile(model, build, folder / "calibration.npy", pack_outputs=pack, log=log)
    t1 = time.time()
    api.setup(build, log=log)
    t2 = time.time()
    results = api.prove_many(build, paths, log=log)
    t3 = time.time()
    return dict(build=build, proofs=[Path(r["dir"]) for r in results],
                seconds=dict(compile=round(t1 - t, 2), setup=round(t2 - t1, 2), prove=round(t3 - t2, 2)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, help="number of outputs")
    ap.add_argument("-o", "--out", default="build_wide", help="folder (the build goes to OUT/build)")
    ap.add_argument("--no-pack-outputs", action="store_true")
    a = ap.parse_args(argv)
    r = make_build(a.out, a.n, not a.no_pack_outputs, log=print)
    print(f"built and proved in {r['build']} ({r['seconds']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
