"""Hashed outputs on-chain against packed public outputs: gas and constraints (docs/ONCHAIN.md).

For each model it compiles two builds, outputs public packed (the default) and `--output hashed`,
makes development keys, proves the same input in both, then on one chain (a fresh anvil from
node_modules with EIP-7825's per-transaction gas cap on, or --rpc URL, or --embedded py-evm):

- packed: `zkml deploy` (the verifier's verifyProof, outputs as packed public inputs);
- hashed: `zkml deploy` (the verifier, the Poseidon(16) table contracts and contract, the
  ZkmlHashedOutputs consumer; verifyWithOutputs with the outputs of prove.json as calldata).

Models: the digits MLP (examples/digits, 10 outputs) and the one-node Relu of
examples/onchain/wide_relu.py with 1,024 and 3,072 uint8 outputs.

    .venv/bin/python benchmarks/gas_hashed.py [--models digits,1024,3072] [--embedded | --rpc URL]

Prints a markdown table; gas is receipts' gasUsed (21,000 base and calldata included).
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples" / "onchain"))
from wide_relu import relu_model  # noqa: E402

from zkml import api, evm, evm_hashed, evm_split, poseidon  # noqa: E402
from zkml.visibility import Visibility  # noqa: E402

DIGITS = ROOT / "examples" / "digits"


def inputs_for(work: Path, model: str) -> tuple[Path, Path, Path, str]:
    """(onnx, calibration, input, label) of a model."""
    if model == "digits":
        return DIGITS / "model.onnx", DIGITS / "calibration.npy", DIGITS / "input.json", "digits MLP (10 outputs)"
    n = int(model)
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    onnx.save(relu_model(n), work / "relu.onnx")
    np.save(work / "cal.npy", rng.normal(0, 1, (16, 1, n)).astype(np.float32))
    # positive inputs: (almost) every output nonzero, the costliest case on-chain (as gas_table.py)
    np.save(work / "x.npy", (np.abs(rng.normal(0, 1, (1, n))) + 0.05).astype(np.float32))
    return work / "relu.onnx", work / "cal.npy", work / "x.npy", f"Relu, {n:,} uint8 outputs"


def build(work: Path, onnx_path: Path, cal: Path, x: Path, output: str) -> tuple[Path, dict]:
    b = work / output
    if not (b / "proof.json").exists():
        t = time.time()
        api.compile(onnx_path, b, cal, visibility=Visibility("private", "constant", output))
        api.setup(b)
        api.prove(b, x)
        print(f"built {b} in {time.time() - t:.1f} s", file=sys.stderr, flush=True)
    import json
    return b, json.loads((b / "build.json").read_text())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="digits,1024,3072", help="'digits' and/or output counts, comma-separated")
    ap.add_argument("--budget", type=int, default=evm_split.DEFAULT_GAS_BUDGET, help="gas per transaction")
    chain = ap.add_mutually_exclusive_group()
    chain.add_argument("--rpc", help="JSON-RPC URL of a node (default: a fresh anvil, EIP-7825 on)")
    chain.add_argument("--embedded", action="store_true", help="embedded py-evm instead of anvil (slow)")
    ap.add_argument("--work", help="folder for the builds (default: a temporary one)")
    a = ap.parse_args(argv)
    rows, deploy_once = [], None
    with contextlib.ExitStack() as stack:
        work = Path(a.work) if a.work else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        rpc = a.rpc
        if not rpc and not a.embedded:
            rpc = stack.enter_context(evm.anvil_node("--enable-tx-gas-limit"))
        where = ("embedded py-evm" if a.embedded else
                 "a fresh anvil from node_modules, --enable-tx-gas-limit" if not a.rpc else a.rpc)
        for model in a.models.split(","):
            onnx_path, cal, x, label = inputs_for(work / f"m{model}", model)
            bp, mp = build(work / f"m{model}", onnx_path, cal, x, "public")
            bh, mh = build(work / f"m{model}", onnx_path, cal, x, "hashed")
            rp = evm.deploy_build(bp, rpc=rpc, gas_budget=a.budget)
            rh = evm.deploy_build(bh, rpc=rpc, gas_budget=a.budget)
            h = rh.hashed or {}
            if not (rp.valid and rh.valid):
                print(f"{label}: verification FAILED: {rp.reason} {rh.reason}", file=sys.stderr)
                return 1
            words = len(h["words"])
            pos_deploy = sum(c["deploy_gas"] for c in h["contracts"] if c["name"] != "ZkmlHashedOutputs")
            cons_deploy = sum(c["deploy_gas"] for c in h["contracts"] if c["name"] == "ZkmlHashedOutputs")
            deploy_once = pos_deploy
            cp, ch = mp["circuit"]["constraints"], mh["circuit"]["constraints"]
            rows.append(f"| {label} | {words} | {poseidon.chain_constraints(words)} | {cp:,} | {ch:,} (+{ch - cp:,}) "
                        f"| {rp.n_public} | {rp.verify_gas:,} | {rh.verify_gas:,} | {h['gas']:,} "
                        f"| {h['gas'] - rp.verify_gas:+,} | {rp.deploy_gas:,} | {rh.deploy_gas - pos_deploy - cons_deploy:,} + "
                        f"{cons_deploy:,} |")   # deploy_gas: verifier + Poseidon + consumer
            print(rows[-1], file=sys.stderr, flush=True)
        chain_desc = evm.chain_description(evm.connect(rpc))
    print(f"Chain: {where} ({chain_desc}); gas budget {a.budget:,} per transaction. The Poseidon(16) "
          f"contract and its {len(evm_hashed.table_codes(evm_hashed.CHAIN_T))} table contracts are deployed once "
          f"per chain: {deploy_once:,} gas.\n")
    print("| model | packed words | Poseidon(16) calls | constraints, packed public | constraints, hashed "
          "| public inputs, packed | verify gas, packed (verifyProof) | verifyProof, hashed (digest only) "
          "| verifyWithOutputs, hashed | hashed - packed | verifier deploy gas, packed | hashed: verifier + consumer |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
