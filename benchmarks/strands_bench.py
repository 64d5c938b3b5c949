"""Benchmark: the stranded encoding (zkml compile --weights private --strands auto|off).

For each model it compiles (temporary folders)

    weights constant                    (the default: products by constants are free)
    weights private, plain              (--strands off: one constraint per product, ConvW / DenseW)
    weights private, packed             (--strands auto: circuits/strands.circom where it pays)
    weights hashed, packed              (+ the Poseidon commitment of the weights)

and prints the R1CS constraints, the constraints `zkml inspect` attributes to the Conv and the
Dense nodes, the weights' range checks (w<k>_range), the packed / plain ratios, the layout chosen
per layer and (with --prove) development-key setup and arkworks prove time. With --gas it also
proves the digits MLP with weights private packed and outputs public unpacked / packed / hashed
and verifies on the embedded EVM through `zkml deploy` (zkml.api.deploy) as is.

Models: the digits MLP, the LeNet CNN (examples/lenet/model.onnx, its calibration.npy), a Gemm
784 -> 64 layer at batch 1 (built here, random weights, random calibration), and the held-in
shared models that have a Conv or Dense layer (/work/shared/models/*/network.onnx, input.json).

    .venv/bin/python benchmarks/strands_bench.py                       # constraints, every model
    .venv/bin/python benchmarks/strands_bench.py digits gemm784 --prove --gas
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from zkml import api  # noqa: E402
from zkml.bench import BenchModel, default_models  # noqa: E402
from zkml.errors import ZkmlError  # noqa: E402
from zkml.inspect_build import attribute_constraints  # noqa: E402
from zkml.visibility import Visibility  # noqa: E402

CONFIGS = [("constant", "constant", "auto"), ("private plain", "private", "off"),
           ("private packed", "private", "auto"), ("hashed packed", "hashed", "auto")]


def gemm784(work: Path) -> BenchModel:
    """Gemm 784 -> 64 (+ bias) at batch 1, random weights; inputs uniform in [0, 1) like pixels."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 0.05, (784, 64)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.normal(0, 0.1, (64,)).astype(np.float32), "B")
    g = helper.make_graph([helper.make_node("Gemm", ["x", "W", "B"], ["y"], name="gemm784")], "gemm784",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 784])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], [w, b])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    path = work / "gemm784.onnx"
    onnx.save(m, path)
    xs = rng.random((33, 1, 784))
    return BenchModel("gemm784", path, xs[1:], xs[:1])


def node_split(build: Path) -> dict:
    """Constraints per kind: Conv nodes, Dense nodes, weight range checks, the rest."""
    g = api.load_graph(build)
    att = attribute_constraints(build)
    out = {"Conv": 0, "Dense": 0, "weights range": 0, "other": 0}
    for key, n in att.items():
        if key.startswith("n") and key[1:].isdigit():
            op = g.nodes[int(key[1:])].op
            op = "Conv" if op == "ConvMaxPool" else op      # a Conv pooled before requantizing (+ its MaxPool)
            out[op if op in ("Conv", "Dense") else "other"] += n
        elif key.startswith("w") and key.endswith("_range"):
            out["weights range"] += n
        else:
            out["other"] += n
    return out


def run_model(m: BenchModel, work: Path, prove: bool, max_prove: int, log) -> list[dict]:
    cal, inp = work / f"{m.name}_cal.npy", work / f"{m.name}_x.npy"
    np.save(cal, m.calibration)
    np.save(inp, m.samples[0])
    rows = []
    for label, weights, strands in CONFIGS:
        b = work / f"{m.name}_{label.replace(' ', '_')}"
        t = time.time()
        try:
            meta = api.compile(m.onnx, b, cal, visibility=Visibility("private", weights, "public"), strands=strands)
        except ZkmlError as e:
            log(f"  {m.name} {label}: {type(e).__name__}: {e}")
            rows.append(dict(model=m.name, config=label, error=str(e)))
            continue
        row = dict(model=m.name, config=label, constraints=meta["circuit"]["constraints"],
                   circom=meta["circuit"]["circom"], compile_s=round(time.time() - t, 1), **node_split(b),
                   layouts=[f"{p['op']}:{p['layout']}" + (f"/{p['lanes']}x{p['lane_bits']}" if p["layout"] != "plain"
                                                          else "") for p in meta["strands"]["layers"]])
        log(f"  {m.name} {label}: {row['constraints']:,} constraints ({row['circom']}, {row['compile_s']} s)")
        if prove and row["constraints"] <= max_prove:
            t = time.time()
            api.setup(b)
            row["setup_s"] = round(time.time() - t, 1)
            res = api.prove(b, inp)
            row["prove_s"] = res["seconds"]["prove"]
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    out = ["| model | weights | constraints | Conv nodes | Dense nodes | weight range checks | layouts | setup s | prove s |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['model']} | {r['config']} | refused: {r['error'][:60]} | | | | | | |")
            continue
        out.append(f"| {r['model']} | {r['config']} | {r['constraints']:,} ({r['circom']}) | {r['Conv']:,} | "
                   f"{r['Dense']:,} | {r['weights range']:,} | {' '.join(r['layouts']) or '-'} | "
                   f"{r.get('setup_s', '-')} | {r.get('prove_s', '-')} |")
    return "\n".join(out)


def ratios(rows: list[dict]) -> str:
    by = {(r["model"], r["config"]): r for r in rows if "error" not in r}
    out = ["| model | plain / packed: whole circuit | Conv nodes | Dense nodes | packed vs constant |",
           "|---|---|---|---|---|"]
    for model in dict.fromkeys(r["model"] for r in rows):
        pl, pk, co = by.get((model, "private plain")), by.get((model, "private packed")), by.get((model, "constant"))
        if not (pl and pk):
            continue
        f = lambda a, b: f"{a / b:.2f}x ({a:,} / {b:,})" if b else "-"          # noqa: E731
        out.append(f"| {model} | {f(pl['constraints'], pk['constraints'])} | {f(pl['Conv'], pk['Conv'])} | "
                   f"{f(pl['Dense'], pk['Dense'])} | {f(pk['constraints'], co['constraints']) if co else '-'} |")
    return "\n".join(out)


def gas(work: Path, log) -> str:
    """Digits MLP, weights private packed: verify gas per output mode (zkml deploy as is)."""
    ex = ROOT / "examples" / "digits"
    out = ["| output mode | constraints | public signals | verify gas | prove s |", "|---|---|---|---|---|"]
    for label, mode, pack in (("public, unpacked", "public", False), ("public, packed", "public", True),
                              ("hashed", "hashed", True)):
        b = work / f"gas_{mode}_{pack}"
        meta = api.compile(ex / "model.onnx", b, ex / "calibration.npy", pack_outputs=pack,
                           visibility=Visibility("private", "private", mode), strands="auto")
        api.setup(b)
        res = api.prove(b, ex / "input.json")
        d = api.deploy(b)
        c = meta["circuit"]
        log(f"  gas {label}: {d.verify_gas:,}")
        out.append(f"| {label} | {c['constraints']:,} | {c['public_outputs'] + c['public_inputs']} | "
                   f"{d.verify_gas:,}{'' if d.valid else ' (NOT VALID)'} | {res['seconds']['prove']} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="*", help="digits, lenet, gemm784, shared model names (default: all)")
    ap.add_argument("--prove", action="store_true", help="also set up development keys and prove")
    ap.add_argument("--max-prove", type=int, default=200_000, help="prove only circuits up to this many constraints")
    ap.add_argument("--gas", action="store_true", help="verify gas per output mode (digits, weights private packed)")
    ap.add_argument("--json", type=Path, help="write the rows here")
    a = ap.parse_args()
    log = lambda s: print(s, file=sys.stderr, flush=True)        # noqa: E731
    with tempfile.TemporaryDirectory(prefix="zkml-strands-") as tmp:
        work = Path(tmp)
        models = [m for m in default_models() if m.name in ("digits", "lenet") or
                  (m.onnx.name == "network.onnx" and _has_weights(m.onnx))] + [gemm784(work)]
        if a.models:
            models = [m for m in models if m.name in a.models]
        rows = []
        for m in models:
            rows += run_model(m, work, a.prove, a.max_prove, log)
            if a.json:
                a.json.write_text(json.dumps(rows, indent=1))
        print("\nconstraints per weights mode (output public packed, input private)\n")
        print(table(rows))
        print("\nprivate plain / private packed\n")
        print(ratios(rows))
        if a.gas:
            print("\ndigits MLP, weights private packed: on-chain verification per output mode (py-evm)\n")
            print(gas(work, log))
    return 0


def _has_weights(path: Path) -> bool:
    import onnx
    return any(n.op_type in ("Conv", "Gemm", "MatMul") for n in onnx.load(path).graph.node)


if __name__ == "__main__":
    sys.exit(main())
