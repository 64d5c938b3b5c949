"""Benchmark: what each visibility mode costs on the digits MLP (examples/digits, 64-32-16-10).

For every mode (zkml compile --input/--weights/--output, see docs/PRIVACY.md) it compiles the
model into a temporary folder and prints the R1CS constraints, the public signals and the circom
time. With --gas it also makes development keys, proves examples/digits/input.json and runs the
existing on-chain path (`zkml deploy` = zkml.api.deploy, embedded py-evm) for the output modes
public unpacked / public packed / hashed, and prints the verification gas and prove time.

    .venv/bin/python benchmarks/visibility_bench.py            # constraints only (~3 min on 2 cores)
    .venv/bin/python benchmarks/visibility_bench.py --gas      # + setup, prove, deploy (~3 min more)
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from zkml import api  # noqa: E402
from zkml.visibility import Visibility  # noqa: E402

EX = ROOT / "examples" / "digits"
# (label, input, weights, output, pack outputs)
MODES = [
    ("default: input private, weights constant, output public packed", "private", "constant", "public", True),
    ("output public, unpacked (--no-pack-outputs)", "private", "constant", "public", False),
    ("output hashed", "private", "constant", "hashed", True),
    ("output private", "private", "constant", "private", True),
    ("input public (packed)", "public", "constant", "public", True),
    ("input hashed", "hashed", "constant", "public", True),
    ("weights public (packed)", "private", "public", "public", True),
    ("weights private", "private", "private", "public", True),
    ("weights hashed", "private", "hashed", "public", True),
    ("input, weights and output hashed", "hashed", "hashed", "hashed", True),
]
GAS_MODES = [1, 0, 2]        # unpacked, packed, hashed outputs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gas", action="store_true", help="also prove and verify on the embedded EVM")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="zkml-vis-") as tmp:
        builds = {}
        for k, (label, i, w, o, pack) in enumerate(MODES):
            b = Path(tmp) / f"m{k}"
            t = time.time()
            meta = api.compile(EX / "model.onnx", b, EX / "calibration.npy", pack_outputs=pack,
                               visibility=Visibility(i, w, o))
            builds[k] = b
            c = meta["circuit"]
            rows.append((label, c["constraints"], c["public_outputs"] + c["public_inputs"], time.time() - t))
            print(f"  compiled: {label}: {c['constraints']} constraints", file=sys.stderr, flush=True)
        base = rows[0][1]
        print("\ndigits MLP (64-32-16-10, uint8), circom --O2\n")
        print(f"| {'mode':64s} | constraints | vs default | public signals | compile s |")
        print(f"|{'-' * 66}|-------------|------------|----------------|-----------|")
        for label, n, pub, s in rows:
            print(f"| {label:64s} | {n:11,d} | {n / base:9.2f}x | {pub:14d} | {s:9.1f} |")
        if a.gas:
            print(f"\non-chain verification (zkml deploy, embedded py-evm), examples/digits/input.json\n")
            print(f"| {'output mode':64s} | public signals | verify gas | prove s |")
            print(f"|{'-' * 66}|----------------|------------|---------|")
            for k in GAS_MODES:
                b = builds[k]
                res = api.prove(b, EX / "input.json")
                d = api.deploy(b)
                pub = rows[k][2]
                print(f"| {MODES[k][0]:64s} | {pub:14d} | {d.verify_gas:10,d} | {res['seconds']['prove']:7.2f} |"
                      + ("" if d.valid else "  (NOT VALID)"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
